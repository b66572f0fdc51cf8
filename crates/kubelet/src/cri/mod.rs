//! The container runtime as the kubelet sees it: CRI v1 (`runtime.v1`) behind two
//! traits, like upstream's `internalapi.RuntimeService` / `ImageManagerService`,
//! so pod logic can be tested with a fake and the real client against containerd.

use std::future::Future;
use std::time::Duration;

pub use k8s_cri::v1 as api;

mod remote;

pub use remote::RemoteRuntime;

/// CRI labels and annotations the kubelet puts on sandboxes and containers
/// (upstream `pkg/kubelet/types/labels.go`, `kuberuntime/labels.go`).
pub mod labels {
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
    pub const CONTAINER_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
    pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
    pub const POD_TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
    /// `io.kubernetes.container.name` of a sandbox, as upstream's kubelet sets it.
    pub const POD_INFRA_CONTAINER_NAME: &str = "POD";
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connecting to the CRI runtime at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("CRI {method} failed: {} ({:?})", source.message(), source.code())]
    Rpc {
        method: &'static str,
        #[source]
        source: tonic::Status,
    },
    #[error("CRI {method} returned no {what}")]
    MissingField {
        method: &'static str,
        what: &'static str,
    },
}

impl Error {
    /// Whether the runtime answered NotFound (the object is already gone).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Rpc { source, .. } if source.code() == tonic::Code::NotFound)
    }

    /// The error as Go's gRPC client prints it (`rpc error: code = X desc = ...`),
    /// which is what upstream's kubelet puts in events and statuses.
    pub fn go_string(&self) -> String {
        match self {
            Error::Rpc { source, .. } => format!(
                "rpc error: code = {:?} desc = {}",
                source.code(),
                source.message()
            ),
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The sandbox and container half of CRI.
pub trait RuntimeService: Send + Sync + 'static {
    fn version(&self) -> impl Future<Output = Result<api::VersionResponse>> + Send;
    fn status(&self) -> impl Future<Output = Result<api::StatusResponse>> + Send;

    fn run_pod_sandbox(
        &self,
        config: api::PodSandboxConfig,
        runtime_handler: String,
    ) -> impl Future<Output = Result<String>> + Send;
    fn stop_pod_sandbox(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn remove_pod_sandbox(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn pod_sandbox_status(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<api::PodSandboxStatus>> + Send;
    fn list_pod_sandbox(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> impl Future<Output = Result<Vec<api::PodSandbox>>> + Send;

    fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> impl Future<Output = Result<String>> + Send;
    fn start_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Stops with SIGTERM (or the image's stop signal), SIGKILL after `timeout`.
    fn stop_container(
        &self,
        id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<()>> + Send;
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn list_containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> impl Future<Output = Result<Vec<api::Container>>> + Send;
    fn container_status(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<api::ContainerStatus>> + Send;
    fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> impl Future<Output = Result<api::ExecSyncResponse>> + Send;
    fn list_container_stats(&self)
        -> impl Future<Output = Result<Vec<api::ContainerStats>>> + Send;
    fn list_pod_sandbox_stats(
        &self,
    ) -> impl Future<Output = Result<Vec<api::PodSandboxStats>>> + Send;
    /// A URL of the runtime's streaming server serving this exec (one use).
    fn exec(&self, request: api::ExecRequest) -> impl Future<Output = Result<String>> + Send;
    fn attach(&self, request: api::AttachRequest) -> impl Future<Output = Result<String>> + Send;
    fn port_forward(
        &self,
        request: api::PortForwardRequest,
    ) -> impl Future<Output = Result<String>> + Send;
}

/// The image half of CRI.
pub trait ImageService: Send + Sync + 'static {
    /// The image as the runtime has it, `None` when not present.
    fn image_status(&self, image: &str) -> impl Future<Output = Result<Option<api::Image>>> + Send;
    /// Pulls and returns the image reference (digest) the runtime resolved.
    fn pull_image(
        &self,
        image: &str,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> impl Future<Output = Result<String>> + Send;
    fn list_images(&self) -> impl Future<Output = Result<Vec<api::Image>>> + Send;
}

/// Both halves: what the pod workers need.
pub trait Runtime: RuntimeService + ImageService {}
impl<T: RuntimeService + ImageService> Runtime for T {}
