//! A client-go style work queue of string keys: a key queued several times is
//! processed once, never by two workers at once, and a key added while being
//! processed is processed again afterwards. Used by controllers whose sync must
//! also run for objects that are gone (endpoints, endpoint slices), which
//! kube-runtime's `Controller` skips.

use std::collections::{HashSet, VecDeque};
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::backoff::KeyBackoff;

#[derive(Default)]
struct Inner {
    queue: VecDeque<String>,
    dirty: HashSet<String>,
    processing: HashSet<String>,
}

#[derive(Default)]
pub struct WorkQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    backoff: KeyBackoff,
}

impl WorkQueue {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: &str) {
        let mut inner = self.inner.lock();
        if !inner.dirty.insert(key.to_string()) {
            return;
        }
        if inner.processing.contains(key) {
            return;
        }
        inner.queue.push_back(key.to_string());
        drop(inner);
        self.notify.notify_one();
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: &str, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = Arc::clone(self);
        let key = key.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(&key);
        });
    }

    /// Queues `key` after its next rate-limited delay (a failed sync).
    pub fn add_rate_limited(self: &Arc<Self>, key: &str) {
        let delay = self.backoff.next_delay(key);
        self.add_after(key, delay);
    }

    /// A successful sync resets the key's backoff.
    pub fn forget(&self, key: &str) {
        self.backoff.forget(key);
    }

    /// Waits for the next key and marks it as being processed.
    pub async fn get(&self) -> String {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.inner.lock();
                if let Some(key) = inner.queue.pop_front() {
                    inner.dirty.remove(&key);
                    inner.processing.insert(key.clone());
                    let more = !inner.queue.is_empty();
                    drop(inner);
                    if more {
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Ends processing of `key`; requeues it if it was added meanwhile.
    pub fn done(&self, key: &str) {
        let mut inner = self.inner.lock();
        inner.processing.remove(key);
        if inner.dirty.contains(key) {
            inner.queue.push_back(key.to_string());
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Keys waiting (for tests).
    pub fn len(&self) -> usize {
        self.inner.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs `workers` workers over `queue` until the future is dropped. `sync`
/// returns `Ok(Some(d))` to look at the key again after `d`; errors requeue with
/// backoff.
pub async fn run_workers<F, Fut>(queue: Arc<WorkQueue>, workers: u16, name: &'static str, sync: F)
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = super::Result<Option<Duration>>> + Send + 'static,
{
    let mut handles = Vec::new();
    for _ in 0..workers.max(1) {
        let queue = Arc::clone(&queue);
        let sync = sync.clone();
        handles.push(tokio::spawn(async move {
            loop {
                let key = queue.get().await;
                match sync(key.clone()).await {
                    Ok(again) => {
                        queue.forget(&key);
                        queue.done(&key);
                        if let Some(after) = again {
                            queue.add_after(&key, after);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(controller = name, key = %key, "sync failed: {err}");
                        queue.done(&key);
                        queue.add_rate_limited(&key);
                    }
                }
            }
        }));
    }
    // Dropping this future (controller shutdown) stops the workers.
    struct AbortAll(Vec<tokio::task::AbortHandle>);
    impl Drop for AbortAll {
        fn drop(&mut self) {
            for h in &self.0 {
                h.abort();
            }
        }
    }
    let _guard = AbortAll(
        handles
            .iter()
            .map(tokio::task::JoinHandle::abort_handle)
            .collect(),
    );
    futures::future::join_all(handles).await;
}

/// A cache of `api` filled by its own task; `on_event` sees every applied or
/// deleted object after the cache has taken it in (client-go handler order).
/// `on_event(obj, deleted)`.
pub fn informer<K, F>(api: Api<K>, config: watcher::Config, mut on_event: F) -> Store<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    F: FnMut(&K, bool) + Send + 'static,
{
    let (store, writer) = reflector::store();
    tokio::spawn(async move {
        let mut events = watcher(api, config)
            .default_backoff()
            .reflect(writer)
            .boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                    on_event(&obj, false)
                }
                Ok(watcher::Event::Delete(obj)) => on_event(&obj, true),
                Ok(_) => {}
                Err(err) => tracing::debug!("watch error: {err}"),
            }
        }
    });
    store
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_and_requeued_after_processing() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.get().await;
        assert_eq!(k, "a");
        // Added while processing: not handed out twice at once, but again after done.
        q.add("a");
        assert_eq!(q.get().await, "b");
        assert!(q.is_empty());
        q.done("a");
        assert_eq!(q.get().await, "a");
        q.done("a");
        q.done("b");
        assert!(q.is_empty());
    }
}
