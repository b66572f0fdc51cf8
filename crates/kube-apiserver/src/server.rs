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
    pub authorizer: crate::authz::Authorizer,
    /// The secure port's authenticator chain (also answers TokenReviews).
    pub authenticator: Arc<crate::authn::Authenticator>,
    /// Service-account token keys (TokenRequest), if configured.
    pub token_keys: Option<Arc<crate::serviceaccount::TokenKeys>>,
    /// `--service-account-max-token-expiration` in seconds (0: no cap).
    pub max_token_expiration: i64,
    pub readonly_inflight: Arc<Semaphore>,
    pub mutating_inflight: Arc<Semaphore>,
    /// host:port clients are told to use (discovery `serverAddressByClientCIDRs`).
    pub advertise: String,
    /// Audit logging (`--audit-log-path` + `--audit-policy-file`), if on.
    pub audit: Option<Arc<crate::audit::Auditor>>,
}

impl AppState {
    pub async fn etcd_ready(&self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.storage.current_revision()).await,
            Ok(Ok(_))
        )
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .fallback(handlers::dispatch)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::middleware,
        ))
        .with_state(state)
}

/// Builds the whole server state from options.
pub async fn build(opts: &Options) -> anyhow::Result<Arc<AppState>> {
    let tls = EtcdTls {
        ca_file: opts.etcd_cafile.clone(),
        cert_file: opts.etcd_certfile.clone(),
        key_file: opts.etcd_keyfile.clone(),
    };
    let encryption = match &opts.encryption_provider_config {
        Some(path) => Some(Arc::new(
            crate::encryption::Encryption::load(path).with_context(|| {
                format!("loading --encryption-provider-config {}", path.display())
            })?,
        )),
        None => None,
    };
    let storage = Arc::new(loop {
        match Storage::connect(&opts.etcd_servers, &tls).await {
            Ok(s) => {
                break match &encryption {
                    Some(e) => s.with_encryption(e.clone()),
                    None => s,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, servers = ?opts.etcd_servers, "cannot reach etcd; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    let cache = WatchCache::start(storage.clone(), opts.watch_cache_size)
        .await
        .context("starting the watch cache")?;
    let admission = Admission::new(opts.admission_plugins(), cache.clone(), storage.clone());
    let services = ServiceAllocator::new(
        storage.clone(),
        &opts.service_cluster_ip_range,
        &opts.service_node_port_range,
    )
    .context("service IP / node port ranges")?;
    let store = Store {
        storage: storage.clone(),
        cache: cache.clone(),
        admission,
        services,
        event_ttl: opts.event_ttl,
    };
    let token_keys = crate::serviceaccount::from_options(opts)?;
    let authenticator = Arc::new(
        crate::authn::Authenticator::from_options(opts)?.with_cluster(
            cache.clone(),
            token_keys.clone(),
            opts.enable_bootstrap_token_auth,
        ),
    );
    let authorizer = crate::authz::Authorizer::with_cache(&opts.authorization_mode, cache.clone());
    // `--advertise-address`, else a specific `--bind-address`. Upstream would then pick
    // the default route's interface; we keep loopback as the safe default (set
    // --advertise-address for pods to reach the apiserver through the Service).
    let advertise_ip = opts
        .advertise_address
        .or_else(|| (!opts.bind_address.is_unspecified()).then_some(opts.bind_address))
        .map(|a| a.to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let state = Arc::new(AppState {
        storage,
        cache,
        store,
        metrics: ApiMetrics::new(),
        authorizer,
        authenticator,
        token_keys,
        max_token_expiration: opts.service_account_max_token_expiration.as_secs() as i64,
        readonly_inflight: Arc::new(Semaphore::new(opts.max_requests_inflight.max(1))),
        mutating_inflight: Arc::new(Semaphore::new(opts.max_mutating_requests_inflight.max(1))),
        advertise: format!("{advertise_ip}:{}", opts.secure_port),
        audit: crate::audit::Auditor::from_options(opts)?,
    });
    bootstrap(&state, opts).await?;
    // Build the lazily computed schema tables and OpenAPI documents now, off the
    // request path, so the first patch or `kubectl explain` does not pay for them.
    tokio::task::spawn_blocking(|| {
        for info in api_types::registry::RESOURCES {
            let _ = api_types::patch::schema::root_shape(info);
        }
        let _ = api_types::openapi::v2_document_protobuf();
        for (g, v) in api_types::registry::group_versions() {
            let _ = api_types::openapi::v3_document(g, v);
        }
    });
    Ok(state)
}

/// What exists from the start, as upstream's bootstrap controllers make it: the system
/// namespaces, allocator repair from the stored Services, and the `kubernetes`
/// Service + Endpoints pointing at this apiserver.
async fn bootstrap(state: &Arc<AppState>, opts: &Options) -> anyhow::Result<()> {
    let write = WriteOptions {
        dry_run: false,
        field_manager: "kube-apiserver".into(),
        field_validation: FieldValidation::Ignore,
        force: false,
        user: None,
    };
    let ns_info =
        api_types::registry::lookup("", "v1", "namespaces").context("namespaces registered")?;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        match state.store.create(ns_info, None, obj, &write).await {
            Ok(_) => tracing::info!(namespace = ns, "created system namespace"),
            Err(e) if e.code == 409 => {}
            Err(e) => anyhow::bail!("creating namespace {ns}: {}", e.message),
        }
    }
    crate::authz::bootstrap_policy::ensure(&state.store, &state.cache, &write).await?;
    // The cache must see them before admission checks namespace existence.
    let rev = state.storage.current_revision().await?;
    state.cache.wait_for(rev, Duration::from_secs(5)).await;

    let svc_info =
        api_types::registry::lookup("", "v1", "services").context("services registered")?;
    let existing: Vec<serde_json::Value> = state
        .cache
        .resource(svc_info)
        .map(|c| {
            c.list(&svc_info.key_prefix())
                .iter()
                .map(|o| o.selectable.clone())
                .collect()
        })
        .unwrap_or_default();
    state.store.services.repair(&existing).await;

    let port = if opts.secure_port != 0 {
        opts.secure_port
    } else {
        opts.insecure_port
    };
    let present = existing.iter().any(|s| {
        s.pointer("/metadata/namespace") == Some(&json!("default"))
            && s.pointer("/metadata/name") == Some(&json!("kubernetes"))
    });
    if !present {
        let ip = state
            .store
            .services
            .reserve_kubernetes_service_ip()
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}], "sessionAffinity": "None"},
        });
        match state
            .store
            .create(svc_info, Some("default"), svc, &write)
            .await
        {
            Ok(_) => tracing::info!(%ip, "created the kubernetes service"),
            Err(e) if e.code == 409 || e.code == 422 => {}
            Err(e) => anyhow::bail!("creating the kubernetes service: {}", e.message),
        }
    }
    // The Endpoints and EndpointSlice `default/kubernetes`, kept by a lease reconciler.
    let ip = state
        .advertise
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or("127.0.0.1")
        .to_string();
    crate::master_endpoints::start(state.clone(), ip, port).await;
    Ok(())
}
