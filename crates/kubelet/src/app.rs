//! Wiring: settings → API client, CRI connection, node registration + lease,
//! pod manager and the HTTP server; runs until SIGTERM.

use std::collections::{BTreeMap, HashMap};
use std::net::UdpSocket;
use std::sync::Arc;

use anyhow::Context;
use parking_lot::RwLock;
use tracing::{info, warn};

use crate::auth::KubeletAuth;
use crate::cri::RemoteRuntime;
use crate::node::{self, NodeInfo};
use crate::options::Settings;
use crate::pod::manager::PodManager;
use crate::pod::spec::SpecSettings;
use crate::pod::worker::PodContext;
use crate::server::{self, ServerState};

/// The node name: `--hostname-override`, else the lowercased hostname.
pub fn node_name(settings: &Settings) -> String {
    settings.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_lowercase())
            .unwrap_or_else(|_| "localhost".into())
    })
}

/// `--node-ip`, else the source address the kernel picks for the default route
/// (a UDP connect sends nothing), else loopback.
pub fn node_ip(settings: &Settings) -> String {
    if let Some(ip) = settings.node_ip.clone().filter(|ip| !ip.is_empty()) {
        return ip;
    }
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:53").and_then(|()| s.local_addr()))
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".into())
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let name = node_name(&settings);
    let host_ip = node_ip(&settings);
    info!(node = %name, ip = %host_ip, runtime = %settings.runtime_endpoint, "starting kubelet");
    match (&settings.bootstrap_kubeconfig, &settings.kubeconfig) {
        (Some(bootstrap), Some(kubeconfig)) => {
            crate::bootstrap::ensure_client_certificate(bootstrap, kubeconfig, &settings.tls.cert_dir, &name).await.context("TLS bootstrap")?
        }
        (Some(_), None) => warn!("--bootstrap-kubeconfig needs --kubeconfig (where the bootstrapped credentials go); ignored"),
        _ => {}
    }
    // Neither an API server nor a kubeconfig: standalone mode, static pods only
    // (as upstream's kubelet without --kubeconfig).
    let client = if settings.master.is_none() && settings.kubeconfig.is_none() {
        info!("no API server configured: running in standalone mode");
        None
    } else {
        Some(
            kube_common::client::build_client(
                settings.master.as_deref(),
                settings.kubeconfig.as_deref(),
                &format!("kubelet/{}", crate::node::KUBELET_VERSION),
            )
            .await?,
        )
    };
    let cri = Arc::new(
        RemoteRuntime::connect(&settings.runtime_endpoint)
            .await
            .context("connecting to the container runtime")?,
    );
    std::fs::create_dir_all(&settings.root_dir)
        .with_context(|| format!("creating {}", settings.root_dir.display()))?;

    let info = NodeInfo {
        name: name.clone(),
        internal_ip: host_ip.clone(),
        hostname: name.clone(),
        labels: settings
            .node_labels
            .iter()
            .cloned()
            .collect::<BTreeMap<_, _>>(),
        pod_cidr: settings.pod_cidr.clone(),
        root_dir: settings.root_dir.clone(),
        max_pods: settings.max_pods,
        kubelet_port: settings.port,
    };
    if let Some(client) = client.clone().filter(|_| settings.register_node) {
        tokio::spawn(node::run(
            client,
            cri.clone(),
            info,
            settings.node_status_update_frequency,
        ));
    }

    let ctx = Arc::new(PodContext {
        cri: cri.clone(),
        client: client.clone(),
        settings: SpecSettings {
            pod_logs_dir: settings.pod_logs_dir.clone(),
            cluster_dns: settings.cluster_dns.clone(),
            cluster_domain: settings.cluster_domain.clone(),
        },
        node_name: name.clone(),
        host_ip: host_ip.clone(),
        root_dir: settings.root_dir.clone(),
        recorder: client
            .clone()
            .map_or_else(crate::events::Recorder::disabled, |c| {
                crate::events::Recorder::new(c, name.clone())
            }),
        tokens: Default::default(),
    });
    let node_ip_for_cert = host_ip;
    let cache = Arc::new(RwLock::new(HashMap::new()));
    let manager = PodManager::new(ctx, cache.clone(), settings.static_pod_path.clone());
    let pods = tokio::spawn(manager.run());

    let metrics = kube_common::metrics::Metrics::new();
    let state = Arc::new(ServerState {
        cri,
        pods: cache,
        node_name: name.clone(),
        cpu_samples: Default::default(),
    });
    let auth = Arc::new(
        KubeletAuth::new(&settings.auth, client.clone(), &name)
            .context("kubelet authentication")?,
    );
    let app = server::router(state.clone(), metrics.clone()).layer(
        axum::middleware::from_fn_with_state(auth, crate::auth::filter),
    );
    let tls = crate::tls::server_config(
        &settings.tls,
        settings.auth.client_ca_file.as_deref(),
        &name,
        &node_ip_for_cert,
    )
    .context("serving TLS")?;
    if settings.read_only_port != 0 {
        let addr = format!("{}:{}", settings.address, settings.read_only_port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        info!(%addr, "serving the read-only port (plain HTTP, unauthenticated)");
        let app = server::read_only_router(state.clone(), metrics.clone());
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                warn!(%err, "read-only server ended");
            }
        });
    }
    let addr = format!("{}:{}", settings.address, settings.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let plain_http = settings.auth.allows_everyone();
    info!(%addr, plain_http, "serving HTTPS");
    let serve = crate::tls::serve(
        listener,
        tls,
        plain_http,
        app,
        kube_common::signals::shutdown_signal(),
    );
    tokio::select! {
        _ = serve => {}
        _ = pods => warn!("pod manager ended"),
    }
    info!("kubelet stopped; containers keep running");
    Ok(())
}
