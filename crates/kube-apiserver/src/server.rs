//! Wiring: connect etcd, start the watch cache, build the store and the router, create
//! the default namespaces and the `kubernetes` Service, and serve both ports.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::{
    admission::Admission,
    allocator::ServiceAllocator,
    cache::WatchCache,
    handlers,
    metrics::ApiMetrics,
    options::Options,
    storage::{EtcdTls, Storage},
    store::{FieldValidation, Store, WriteOptions},
};

pub struct AppState {
    pub storage: Arc<Storage>,
    pub cache: Arc<WatchCache>,
    pub store: Store,
    pub metrics: ApiMetrics,
    pub readonly_inflight: Arc<Semaphore>,
    pub mutating_inflight: Arc<Semaphore>,
    /// host:port clients are told to use (discovery `serverAddressByClientCIDRs`).
    pub advertise: String,
}

impl AppState {
    pub async fn etcd_ready(&self) -> bool {
        matches!(tokio::time::timeout(Duration::from_secs(2), self.storage.current_revision()).await, Ok(Ok(_)))
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handlers::dispatch).with_state(state)
}

/// Builds the whole server state from options.
pub async fn build(opts: &Options) -> anyhow::Result<Arc<AppState>> {
    let tls = EtcdTls { ca_file: opts.etcd_cafile.clone(), cert_file: opts.etcd_certfile.clone(), key_file: opts.etcd_keyfile.clone() };
    let storage = Arc::new(loop {
        match Storage::connect(&opts.etcd_servers, &tls).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, servers = ?opts.etcd_servers, "cannot reach etcd; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    let cache = WatchCache::start(storage.clone(), opts.watch_cache_size).await.context("starting the watch cache")?;
    let admission = Admission::new(opts.admission_plugins(), cache.clone(), storage.clone());
    let services = ServiceAllocator::new(storage.clone(), &opts.service_cluster_ip_range, &opts.service_node_port_range)
        .context("service IP / node port ranges")?;
    let store = Store { storage: storage.clone(), cache: cache.clone(), admission, services, event_ttl: opts.event_ttl };
    let advertise_ip = opts.advertise_address.map(|a| a.to_string()).unwrap_or_else(|| "127.0.0.1".into());
    let state = Arc::new(AppState {
        storage,
        cache,
        store,
        metrics: ApiMetrics::new(),
        readonly_inflight: Arc::new(Semaphore::new(opts.max_requests_inflight.max(1))),
        mutating_inflight: Arc::new(Semaphore::new(opts.max_mutating_requests_inflight.max(1))),
        advertise: format!("{advertise_ip}:{}", opts.secure_port),
    });
    bootstrap(&state).await?;
    Ok(state)
}

/// Namespaces that exist from the start, as upstream's system namespaces controller.
async fn bootstrap(state: &Arc<AppState>) -> anyhow::Result<()> {
    let opts = WriteOptions { dry_run: false, field_manager: "kube-apiserver".into(), field_validation: FieldValidation::Ignore, force: false };
    let ns_info = api_types::registry::lookup("", "v1", "namespaces").context("namespaces registered")?;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        match state.store.create(ns_info, None, obj, &opts).await {
            Ok(_) => tracing::info!(namespace = ns, "created system namespace"),
            Err(e) if e.code == 409 => {}
            Err(e) => anyhow::bail!("creating namespace {ns}: {}", e.message),
        }
    }
    // The cache must see them before admission checks namespace existence.
    let rev = state.storage.current_revision().await?;
    state.cache.wait_for(rev, Duration::from_secs(5)).await;
    Ok(())
}
