//! ServiceAccount controller: a `default` ServiceAccount in every active namespace,
//! re-created when deleted (upstream `pkg/controller/serviceaccount`).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};

use crate::context::ControllerContext;
use crate::util::backoff::KeyBackoff;
use crate::util::informer;
use crate::util::{is_status, ApiContext, Result};

/// The accounts ensured in every namespace.
pub const SERVICE_ACCOUNTS: &[&str] = &["default"];

struct Ctx {
    client: kube::Client,
    accounts: Store<ServiceAccount>,
    backoff: KeyBackoff,
}

pub fn start(ctx: ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    Box::pin(run(ctx))
}

async fn run(ctx: ControllerContext) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let selector = format!("metadata.name={}", SERVICE_ACCOUNTS[0]);
    let (accounts, sa_stream) = informer::spawn(
        watcher(
            Api::<ServiceAccount>::all(client.clone()),
            watcher::Config::default().fields(&selector),
        )
        .default_backoff(),
    );
    // Acting before the account cache is filled would create accounts that exist.
    accounts.wait_until_ready().await?;
    let state = Arc::new(Ctx {
        client: client.clone(),
        accounts,
        backoff: KeyBackoff::default(),
    });
    let controller = Controller::new(Api::<Namespace>::all(client), watcher::Config::default())
        .watches_stream(sa_stream, |sa: ServiceAccount| {
            sa.metadata
                .namespace
                .map(|ns| ObjectRef::<Namespace>::new(&ns))
        })
        .with_config(
            ControllerConfig::default().concurrency(ctx.options.concurrent_serviceaccount_syncs),
        );
    let mut controller_stream = controller.run(reconcile, error_policy, state).boxed();
    while let Some(result) = controller_stream.next().await {
        if let Err(err) = result {
            tracing::debug!("serviceaccount controller: {err}");
        }
    }
    Ok(())
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action> {
    let name = ns.metadata.name.clone().unwrap_or_default();
    tracing::debug!(namespace = %name, "syncing namespace");
    if ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
    {
        return Ok(Action::await_change());
    }
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    for account in SERVICE_ACCOUNTS {
        if ctx
            .accounts
            .get(&ObjectRef::new(account).within(&name))
            .is_some()
        {
            tracing::debug!(namespace = %name, account, "service account exists");
            continue;
        }
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some((*account).to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => tracing::info!(namespace = %name, account, "created service account"),
            // Exists already (cache lag), or the namespace is going away.
            Err(err) if is_status(&err, 409) || is_status(&err, 403) => {
                tracing::debug!(namespace = %name, account, "service account not created: {err}");
            }
            Err(err) => {
                return Err(err).ctx(|| format!("creating serviceaccount {name}/{account}"))
            }
        }
    }
    ctx.backoff.forget(&name);
    Ok(Action::await_change())
}

fn error_policy(ns: Arc<Namespace>, err: &crate::util::Error, ctx: Arc<Ctx>) -> Action {
    let name = ns.metadata.name.clone().unwrap_or_default();
    tracing::warn!(namespace = %name, "serviceaccount sync failed: {err}");
    Action::requeue(ctx.backoff.next_delay(&name).max(Duration::from_millis(5)))
}
