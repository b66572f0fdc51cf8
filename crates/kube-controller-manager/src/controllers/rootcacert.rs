//! Root CA certificate publisher (upstream `pkg/controller/certificates/rootcacertpublisher`):
//! a ConfigMap `kube-root-ca.crt` with key `ca.crt` in every active namespace, holding
//! the CA of `--root-ca-file` (else the CA this controller-manager trusts for the
//! apiserver), re-created when deleted and corrected when edited. Pods' projected
//! token volumes read it into /var/run/secrets/kubernetes.io/serviceaccount/ca.crt.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};

use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::informer;
use crate::util::{is_status, ApiContext, Result};

pub const CONFIG_MAP: &str = "kube-root-ca.crt";
pub const KEY: &str = "ca.crt";
/// Upstream's description annotation, verbatim.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

struct Ctx {
    client: kube::Client,
    maps: Store<ConfigMap>,
    ca: String,
    backoff: KeyBackoff,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

/// The CA to publish: `--root-ca-file`, else the client's trusted CA (none for a
/// plain-HTTP apiserver).
async fn root_ca(ctx: &ControllerContext) -> anyhow::Result<Option<String>> {
    if let Some(path) = ctx
        .options
        .root_ca_file
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let pem = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| anyhow::anyhow!("reading --root-ca-file {path}: {e}"))?;
        return Ok(Some(pem));
    }
    Ok(ctx.root_ca.clone())
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let Some(ca) = root_ca(&ctx).await? else {
        tracing::info!("root-ca-certificate-publisher: no --root-ca-file and no CA in the client config; nothing to publish");
        std::future::pending::<()>().await;
        return Ok(());
    };
    let client = ctx.client.clone();
    let selector = format!("metadata.name={CONFIG_MAP}");
    let (maps, map_stream) = informer::spawn(
        watcher(
            Api::<ConfigMap>::all(client.clone()),
            watcher::Config::default().fields(&selector),
        )
        .default_backoff(),
    );
    maps.wait_until_ready().await?;
    let state = Arc::new(Ctx {
        client: client.clone(),
        maps,
        ca,
        backoff: KeyBackoff::default(),
    });
    let controller = Controller::new(Api::<Namespace>::all(client), watcher::Config::default())
        .watches_stream(map_stream, |cm: ConfigMap| {
            cm.metadata
                .namespace
                .map(|ns| ObjectRef::<Namespace>::new(&ns))
        })
        .with_config(ControllerConfig::default().concurrency(2));
    let mut stream = controller.run(reconcile, error_policy, state).boxed();
    while let Some(result) = stream.next().await {
        if let Err(err) = result {
            tracing::debug!("root-ca-certificate-publisher: {err}");
        }
    }
    Ok(())
}

fn wanted(ca: &str, existing: Option<&ConfigMap>) -> ConfigMap {
    let mut annotations = existing
        .and_then(|c| c.metadata.annotations.clone())
        .unwrap_or_default();
    annotations.insert("kubernetes.io/description".into(), DESCRIPTION.into());
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIG_MAP.into()),
            annotations: Some(annotations),
            resource_version: existing.and_then(|c| c.metadata.resource_version.clone()),
            ..existing.map(|c| c.metadata.clone()).unwrap_or_default()
        },
        data: Some(BTreeMap::from([(KEY.to_string(), ca.to_string())])),
        ..Default::default()
    }
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action> {
    let name = ns.metadata.name.clone().unwrap_or_default();
    if ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
    {
        return Ok(Action::await_change());
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
    let existing = ctx.maps.get(&ObjectRef::new(CONFIG_MAP).within(&name));
    let result = match existing.as_deref() {
        None => api
            .create(&PostParams::default(), &wanted(&ctx.ca, None))
            .await
            .map(|_| ()),
        Some(cm) => {
            let same_data = cm
                .data
                .as_ref()
                .and_then(|d| d.get(KEY))
                .map(String::as_str)
                == Some(ctx.ca.as_str())
                && cm.data.as_ref().is_some_and(|d| d.len() == 1);
            let described = cm
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/description"))
                .is_some();
            if same_data && described {
                return Ok(Action::await_change());
            }
            api.replace(
                CONFIG_MAP,
                &PostParams::default(),
                &wanted(&ctx.ca, Some(cm)),
            )
            .await
            .map(|_| ())
        }
    };
    match result {
        Ok(()) => tracing::info!(namespace = %name, "published {CONFIG_MAP}"),
        // Cache lag (409) or a namespace going away (403/404): the next event settles it.
        Err(err) if is_status(&err, 409) || is_status(&err, 403) || is_status(&err, 404) => {
            tracing::debug!(namespace = %name, "{CONFIG_MAP} not written: {err}");
        }
        Err(err) => return Err(err).ctx(|| format!("writing configmap {name}/{CONFIG_MAP}")),
    }
    ctx.backoff.forget(&name);
    Ok(Action::await_change())
}

fn error_policy(ns: Arc<Namespace>, err: &crate::util::Error, ctx: Arc<Ctx>) -> Action {
    let name = ns.metadata.name.clone().unwrap_or_default();
    tracing::warn!(namespace = %name, "root-ca-certificate-publisher sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&name).max(Duration::from_millis(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_keeps_other_annotations_and_sets_only_the_ca() {
        let mut existing = wanted("old", None);
        existing.metadata.resource_version = Some("7".into());
        existing
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert("team".into(), "x".into());
        existing
            .data
            .get_or_insert_with(BTreeMap::new)
            .insert("extra".into(), "y".into());
        let cm = wanted("PEM", Some(&existing));
        assert_eq!(
            cm.data,
            Some(BTreeMap::from([(KEY.to_string(), "PEM".to_string())]))
        );
        let annotations = cm.metadata.annotations.expect("annotations");
        assert_eq!(annotations.get("team").map(String::as_str), Some("x"));
        assert!(annotations.contains_key("kubernetes.io/description"));
        assert_eq!(cm.metadata.resource_version.as_deref(), Some("7"));
    }
}
