//! A small client-go style informer over kube-runtime's watcher: a local store and
//! add/update/delete callbacks; a re-list is diffed against the store so objects
//! deleted while the watch was down still produce a delete.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Resource, ResourceExt};
use tokio::sync::watch;

/// Callbacks for one resource, in the order the watch delivers changes.
pub trait Handler<K>: Send + 'static {
    fn on_add(&mut self, obj: Arc<K>);
    fn on_update(&mut self, old: Arc<K>, new: Arc<K>);
    fn on_delete(&mut self, obj: Arc<K>);
}

fn key<K: Resource>(obj: &K) -> String {
    match obj.meta().namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

/// Runs until the stream ends (never, in practice). `synced` turns true after the
/// first complete list has been delivered.
pub async fn run<K, H>(
    api: Api<K>,
    config: watcher::Config,
    mut handler: H,
    synced: watch::Sender<bool>,
) where
    K: Resource + Clone + Debug + k8s_openapi::serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default,
    H: Handler<K>,
{
    let mut store: HashMap<String, Arc<K>> = HashMap::new();
    let mut relist: Option<HashMap<String, Arc<K>>> = None;
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => relist = Some(HashMap::new()),
            Ok(Event::InitApply(obj)) => {
                if let Some(buf) = relist.as_mut() {
                    buf.insert(key(&obj), Arc::new(obj));
                }
            }
            Ok(Event::InitDone) => {
                let fresh = relist.take().unwrap_or_default();
                for (k, old) in store.iter() {
                    if !fresh.contains_key(k) {
                        handler.on_delete(old.clone());
                    }
                }
                for (k, obj) in &fresh {
                    match store.get(k) {
                        Some(old) if old.resource_version() == obj.resource_version() => {}
                        Some(old) => handler.on_update(old.clone(), obj.clone()),
                        None => handler.on_add(obj.clone()),
                    }
                }
                store = fresh;
                let _ = synced.send(true);
            }
            Ok(Event::Apply(obj)) => {
                let k = key(&obj);
                let obj = Arc::new(obj);
                match store.insert(k, obj.clone()) {
                    Some(old) => handler.on_update(old, obj),
                    None => handler.on_add(obj),
                }
            }
            Ok(Event::Delete(obj)) => {
                let k = key(&obj);
                let old = store.remove(&k).unwrap_or_else(|| Arc::new(obj));
                handler.on_delete(old);
            }
            Err(err) => {
                tracing::warn!(kind = %K::kind(&K::DynamicType::default()), "watch error: {err}")
            }
        }
    }
}

/// Waits until every flag is true.
pub async fn wait_synced(mut flags: Vec<watch::Receiver<bool>>) {
    for f in flags.iter_mut() {
        let _ = f.wait_for(|v| *v).await;
    }
}
