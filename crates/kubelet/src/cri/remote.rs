//! The real CRI client: tonic over the runtime's unix socket.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::{api, Error, ImageService, Result, RuntimeService};

/// How long one unary CRI call may take (upstream `--runtime-request-timeout`, 2m).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A CRI v1 runtime and image service on one connection.
#[derive(Clone)]
pub struct RemoteRuntime {
    runtime: RuntimeServiceClient<Channel>,
    image: ImageServiceClient<Channel>,
}

fn rpc(method: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |source| Error::Rpc { method, source }
}

impl RemoteRuntime {
    /// Connects to `endpoint`: `unix:///run/containerd/containerd.sock` or a bare
    /// socket path (as upstream's `--container-runtime-endpoint` accepts).
    pub async fn connect(endpoint: &str) -> Result<RemoteRuntime> {
        let path = PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint));
        let connect_error = |source| Error::Connect {
            endpoint: endpoint.to_string(),
            source,
        };
        // The URI is required by tonic but unused: the connector dials the socket.
        let channel =
            Endpoint::from_static("http://cri.local")
                .timeout(DEFAULT_REQUEST_TIMEOUT)
                .connect_timeout(Duration::from_secs(10))
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }))
                .await
                .map_err(connect_error)?;
        Ok(RemoteRuntime {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(16 * 1024 * 1024),
            image: ImageServiceClient::new(channel).max_decoding_message_size(16 * 1024 * 1024),
        })
    }
}

impl RuntimeService for RemoteRuntime {
    async fn version(&self) -> Result<api::VersionResponse> {
        let req = api::VersionRequest {
            version: "v1".into(),
        };
        Ok(self
            .runtime
            .clone()
            .version(req)
            .await
            .map_err(rpc("Version"))?
            .into_inner())
    }

    async fn status(&self) -> Result<api::StatusResponse> {
        let req = api::StatusRequest { verbose: false };
        Ok(self
            .runtime
            .clone()
            .status(req)
            .await
            .map_err(rpc("Status"))?
            .into_inner())
    }

    async fn run_pod_sandbox(
        &self,
        config: api::PodSandboxConfig,
        runtime_handler: String,
    ) -> Result<String> {
        let req = api::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler,
        };
        let resp = self
            .runtime
            .clone()
            .run_pod_sandbox(req)
            .await
            .map_err(rpc("RunPodSandbox"))?;
        Ok(resp.into_inner().pod_sandbox_id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let req = api::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.runtime
            .clone()
            .stop_pod_sandbox(req)
            .await
            .map_err(rpc("StopPodSandbox"))?;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let req = api::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.runtime
            .clone()
            .remove_pod_sandbox(req)
            .await
            .map_err(rpc("RemovePodSandbox"))?;
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatus> {
        let req = api::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: false,
        };
        let resp = self
            .runtime
            .clone()
            .pod_sandbox_status(req)
            .await
            .map_err(rpc("PodSandboxStatus"))?;
        resp.into_inner().status.ok_or(Error::MissingField {
            method: "PodSandboxStatus",
            what: "status",
        })
    }

    async fn list_pod_sandbox(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> Result<Vec<api::PodSandbox>> {
        let req = api::ListPodSandboxRequest { filter };
        Ok(self
            .runtime
            .clone()
            .list_pod_sandbox(req)
            .await
            .map_err(rpc("ListPodSandbox"))?
            .into_inner()
            .items)
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        let req = api::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        let resp = self
            .runtime
            .clone()
            .create_container(req)
            .await
            .map_err(rpc("CreateContainer"))?;
        Ok(resp.into_inner().container_id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let req = api::StartContainerRequest {
            container_id: id.into(),
        };
        self.runtime
            .clone()
            .start_container(req)
            .await
            .map_err(rpc("StartContainer"))?;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        let req = api::StopContainerRequest {
            container_id: id.into(),
            timeout: timeout.as_secs() as i64,
        };
        let mut request = tonic::Request::new(req);
        // The call itself lasts up to the grace period: give it room beyond that.
        request.set_timeout(timeout + DEFAULT_REQUEST_TIMEOUT);
        self.runtime
            .clone()
            .stop_container(request)
            .await
            .map_err(rpc("StopContainer"))?;
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let req = api::RemoveContainerRequest {
            container_id: id.into(),
        };
        self.runtime
            .clone()
            .remove_container(req)
            .await
            .map_err(rpc("RemoveContainer"))?;
        Ok(())
    }

    async fn list_containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> Result<Vec<api::Container>> {
        let req = api::ListContainersRequest { filter };
        Ok(self
            .runtime
            .clone()
            .list_containers(req)
            .await
            .map_err(rpc("ListContainers"))?
            .into_inner()
            .containers)
    }

    async fn container_status(&self, id: &str) -> Result<api::ContainerStatus> {
        let req = api::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        let resp = self
            .runtime
            .clone()
            .container_status(req)
            .await
            .map_err(rpc("ContainerStatus"))?;
        resp.into_inner().status.ok_or(Error::MissingField {
            method: "ContainerStatus",
            what: "status",
        })
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<api::ExecSyncResponse> {
        let req = api::ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout: timeout.as_secs() as i64,
        };
        let mut request = tonic::Request::new(req);
        request.set_timeout(timeout + DEFAULT_REQUEST_TIMEOUT);
        Ok(self
            .runtime
            .clone()
            .exec_sync(request)
            .await
            .map_err(rpc("ExecSync"))?
            .into_inner())
    }

    async fn list_container_stats(&self) -> Result<Vec<api::ContainerStats>> {
        let req = api::ListContainerStatsRequest { filter: None };
        Ok(self
            .runtime
            .clone()
            .list_container_stats(req)
            .await
            .map_err(rpc("ListContainerStats"))?
            .into_inner()
            .stats)
    }

    async fn list_pod_sandbox_stats(&self) -> Result<Vec<api::PodSandboxStats>> {
        let req = api::ListPodSandboxStatsRequest { filter: None };
        Ok(self
            .runtime
            .clone()
            .list_pod_sandbox_stats(req)
            .await
            .map_err(rpc("ListPodSandboxStats"))?
            .into_inner()
            .stats)
    }

    async fn exec(&self, request: api::ExecRequest) -> Result<String> {
        Ok(self
            .runtime
            .clone()
            .exec(request)
            .await
            .map_err(rpc("Exec"))?
            .into_inner()
            .url)
    }

    async fn attach(&self, request: api::AttachRequest) -> Result<String> {
        Ok(self
            .runtime
            .clone()
            .attach(request)
            .await
            .map_err(rpc("Attach"))?
            .into_inner()
            .url)
    }

    async fn port_forward(&self, request: api::PortForwardRequest) -> Result<String> {
        Ok(self
            .runtime
            .clone()
            .port_forward(request)
            .await
            .map_err(rpc("PortForward"))?
            .into_inner()
            .url)
    }
}

impl ImageService for RemoteRuntime {
    async fn image_status(&self, image: &str) -> Result<Option<api::Image>> {
        let req = api::ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        Ok(self
            .image
            .clone()
            .image_status(req)
            .await
            .map_err(rpc("ImageStatus"))?
            .into_inner()
            .image)
    }

    async fn pull_image(
        &self,
        image: &str,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> Result<String> {
        let req = api::PullImageRequest {
            image: Some(image_spec(image)),
            auth: None,
            sandbox_config,
        };
        Ok(self
            .image
            .clone()
            .pull_image(req)
            .await
            .map_err(rpc("PullImage"))?
            .into_inner()
            .image_ref)
    }

    async fn list_images(&self) -> Result<Vec<api::Image>> {
        let req = api::ListImagesRequest { filter: None };
        Ok(self
            .image
            .clone()
            .list_images(req)
            .await
            .map_err(rpc("ListImages"))?
            .into_inner()
            .images)
    }
}

fn image_spec(image: &str) -> api::ImageSpec {
    api::ImageSpec {
        image: image.into(),
        ..Default::default()
    }
}
