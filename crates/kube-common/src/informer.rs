//! Informers shared by the daemons that keep a derived view of the cluster
//! (kube-proxy's rules, kube-dns's index): a kube-rs reflector whose every change
//! pokes a `Notify`, so one loop can rebuild from all stores, batching bursts.

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tokio::sync::Notify;

/// Starts a reflector for `K` (with kube-rs's default backoff on errors) and
/// returns its store; every event, once applied to the store, notifies `notify`.
pub fn reflect_notify<K>(api: Api<K>, notify: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => notify.notify_one(),
                Err(err) => tracing::warn!("watch error: {err}"),
            }
        }
    });
    store
}
