//! A shared informer: a watch reflected into a cache, driven by its own task, with
//! the touched objects forwarded to a controller as triggers.
//!
//! The cache is driven separately (not inside the controller's trigger stream) so
//! the controller can wait for it to be filled once, before it starts: kube-runtime's
//! `Store::wait_until_ready` wakes only one of several concurrent waiters.

use std::fmt::Debug;
use std::hash::Hash;

use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use tokio::sync::mpsc;

/// Runs `events` (a watcher stream, possibly with an inspection step) into a new
/// store; returns the store and the stream of touched objects.
pub fn spawn<K, S>(
    events: S,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let (store, writer) = reflector::store();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut touched = events.reflect(writer).touched_objects().boxed();
        while let Some(item) = touched.next().await {
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    let triggers = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (store, triggers)
}
