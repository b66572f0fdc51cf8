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
    let (store, [triggers]) = spawn_many(events);
    (store, triggers)
}

/// [`spawn`] for two controllers reading the same store: each gets every touched
/// object, and only once the store has it (a controller with a watch of its own
/// could be triggered by a change its store does not show yet). Watch errors go to
/// the first stream only.
pub fn spawn_pair<K, S>(
    events: S,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let (store, [first, second]) = spawn_many(events);
    (store, first, second)
}

/// The store and `N` trigger streams, each fed every touched object after the store.
fn spawn_many<K, S, const N: usize>(
    events: S,
) -> (
    Store<K>,
    [impl Stream<Item = Result<K, watcher::Error>> + Send + 'static; N],
)
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let (store, writer) = reflector::store();
    let mut senders = Vec::with_capacity(N);
    let receivers: [_; N] = std::array::from_fn(|_| {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        rx
    });
    tokio::spawn(async move {
        let mut touched = events.reflect(writer).touched_objects().boxed();
        while let Some(item) = touched.next().await {
            match item {
                Ok(object) => {
                    for tx in &senders {
                        let _ = tx.send(Ok(object.clone()));
                    }
                }
                // Errors are only logged: by the first controller.
                Err(err) => {
                    let _ = senders[0].send(Err(err));
                }
            }
            if senders.iter().all(mpsc::UnboundedSender::is_closed) {
                break;
            }
        }
    });
    let streams = receivers.map(|rx| {
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    });
    (store, streams)
}
