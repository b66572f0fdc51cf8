//! The scheduling queue (upstream `PriorityQueue`): activeQ ordered by priority then
//! age, backoffQ (1 s doubling to 10 s per attempt), unschedulable pods parked until
//! a cluster event that could help them (or 5 minutes) moves them back. Pods popped
//! for scheduling are "in flight" until their binding finishes, so deletes and updates
//! meanwhile are not lost.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::framework::PodInfo;
use crate::plugins::{
    inter_pod_affinity::InterPodAffinity, node_basic::NodePorts, noderesources::Fit,
    topology_spread::PodTopologySpread,
};

/// Upstream `DefaultPodMaxInUnschedulablePodsDuration`.
const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(300);
/// How often the unschedulable leftovers are checked (upstream: 30 s).
const UNSCHEDULABLE_FLUSH_PERIOD: Duration = Duration::from_secs(30);

/// A cluster change that may make unschedulable pods schedulable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusterEvent {
    NodeAdd,
    /// Labels, taints, allocatable or `spec.unschedulable` changed.
    NodeUpdate,
    AssignedPodAdd,
    AssignedPodUpdate,
    AssignedPodDelete,
}

impl ClusterEvent {
    /// Whether a pod rejected by `plugins` may now fit (upstream event registration:
    /// every plugin registers Node/Add; pod events matter to these few).
    fn may_help(self, plugins: &HashSet<&'static str>) -> bool {
        if plugins.is_empty() {
            return true;
        }
        let interested: &[&str] = match self {
            ClusterEvent::NodeAdd | ClusterEvent::NodeUpdate => return true,
            ClusterEvent::AssignedPodAdd | ClusterEvent::AssignedPodUpdate => {
                &[InterPodAffinity::NAME, PodTopologySpread::NAME]
            }
            ClusterEvent::AssignedPodDelete => &[
                Fit::NAME,
                NodePorts::NAME,
                InterPodAffinity::NAME,
                PodTopologySpread::NAME,
            ],
        };
        interested.iter().any(|p| plugins.contains(p))
    }
}

/// A pod waiting in the queue, with its scheduling history.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    /// When it was (re-)queued; orders equal priorities and starts the backoff.
    pub timestamp: Instant,
    pub attempts: u32,
    pub initial_attempt: Option<Instant>,
    pub unschedulable_plugins: HashSet<&'static str>,
    /// The scheduling cycle in which it was last popped.
    pub cycle: u64,
}

impl QueuedPod {
    fn new(info: Arc<PodInfo>) -> Self {
        QueuedPod {
            info,
            timestamp: Instant::now(),
            attempts: 0,
            initial_attempt: None,
            unschedulable_plugins: HashSet::new(),
            cycle: 0,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct HeapEntry {
    priority: i32,
    timestamp: Instant,
    seq: u64,
    key: String,
}

impl Ord for HeapEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Max-heap: higher priority first, then older first.
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.timestamp.cmp(&self.timestamp))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for HeapEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Default)]
struct InFlight {
    /// The newest version seen while in flight.
    updated: Option<Arc<PodInfo>>,
    deleted: bool,
}

#[derive(Debug, Default)]
struct Inner {
    heap: BinaryHeap<HeapEntry>,
    /// key → (current heap seq, pod).
    active: HashMap<String, (u64, QueuedPod)>,
    backoff: HashMap<String, QueuedPod>,
    unschedulable: HashMap<String, QueuedPod>,
    in_flight: HashMap<String, InFlight>,
    seq: u64,
    scheduling_cycle: u64,
    /// Per event kind, the scheduling cycle current when it last happened (upstream
    /// records events that arrive while pods are in flight, for their requeueing).
    event_cycles: HashMap<ClusterEvent, u64>,
    closed: bool,
    last_unschedulable_flush: Option<Instant>,
}

/// Queue sizes, for the `scheduler_pending_pods` metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
}

pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    ready: Condvar,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl SchedulingQueue {
    pub fn new(initial_backoff: Duration, max_backoff: Duration) -> Self {
        SchedulingQueue {
            inner: Mutex::new(Inner::default()),
            ready: Condvar::new(),
            initial_backoff,
            max_backoff,
        }
    }

    /// Upstream `calculateBackoffDuration`.
    fn backoff_duration(&self, attempts: u32) -> Duration {
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            if d > self.max_backoff.saturating_sub(d) {
                return self.max_backoff;
            }
            d += d;
        }
        d.min(self.max_backoff)
    }

    fn backoff_expiry(&self, p: &QueuedPod) -> Instant {
        p.timestamp + self.backoff_duration(p.attempts)
    }

    fn push_active(inner: &mut Inner, p: QueuedPod) {
        inner.seq += 1;
        let seq = inner.seq;
        inner.heap.push(HeapEntry {
            priority: p.info.priority,
            timestamp: p.timestamp,
            seq,
            key: p.info.key.clone(),
        });
        inner.active.insert(p.info.key.clone(), (seq, p));
    }

    /// To backoffQ while its backoff runs, else to activeQ.
    fn requeue(&self, inner: &mut Inner, p: QueuedPod, now: Instant) {
        if p.attempts > 0 && self.backoff_expiry(&p) > now {
            inner.backoff.insert(p.info.key.clone(), p);
        } else {
            Self::push_active(inner, p);
        }
    }

    /// A new unscheduled pod.
    pub fn add(&self, info: Arc<PodInfo>) {
        let mut inner = self.inner.lock();
        let key = info.key.clone();
        if inner.active.contains_key(&key)
            || inner.backoff.contains_key(&key)
            || inner.unschedulable.contains_key(&key)
            || inner.in_flight.contains_key(&key)
        {
            drop(inner);
            self.update(info);
            return;
        }
        Self::push_active(&mut inner, QueuedPod::new(info));
        drop(inner);
        self.ready.notify_one();
    }

    /// A newer version of an unscheduled pod.
    pub fn update(&self, info: Arc<PodInfo>) {
        let mut inner = self.inner.lock();
        let key = info.key.clone();
        if let Some(f) = inner.in_flight.get_mut(&key) {
            f.updated = Some(info);
            return;
        }
        if let Some((_, p)) = inner.active.get_mut(&key) {
            p.info = info;
            return;
        }
        if let Some(p) = inner.backoff.get_mut(&key) {
            p.info = info;
            return;
        }
        if let Some(mut p) = inner.unschedulable.remove(&key) {
            // Upstream `isPodUpdated`: any change outside status and resourceVersion may
            // make it schedulable.
            let changed = p.info.pod.spec != info.pod.spec
                || p.info.pod.metadata.labels != info.pod.metadata.labels
                || p.info.pod.metadata.annotations != info.pod.metadata.annotations;
            p.info = info;
            if changed {
                self.requeue(&mut inner, p, Instant::now());
                drop(inner);
                self.ready.notify_one();
            } else {
                inner.unschedulable.insert(key, p);
            }
            return;
        }
        Self::push_active(&mut inner, QueuedPod::new(info));
        drop(inner);
        self.ready.notify_one();
    }

    /// The pod was deleted or got assigned.
    pub fn delete(&self, key: &str) {
        let mut inner = self.inner.lock();
        inner.active.remove(key);
        inner.backoff.remove(key);
        inner.unschedulable.remove(key);
        if let Some(f) = inner.in_flight.get_mut(key) {
            f.deleted = true;
        }
    }

    /// Blocks until a pod is ready to schedule; `None` once closed.
    pub fn pop(&self) -> Option<QueuedPod> {
        let mut inner = self.inner.lock();
        loop {
            if inner.closed {
                return None;
            }
            let now = Instant::now();
            self.flush(&mut inner, now);
            while let Some(e) = inner.heap.pop() {
                let current = inner
                    .active
                    .get(&e.key)
                    .is_some_and(|(seq, _)| *seq == e.seq);
                if !current {
                    continue;
                }
                let Some((_, mut p)) = inner.active.remove(&e.key) else {
                    continue;
                };
                inner.scheduling_cycle += 1;
                p.attempts += 1;
                p.cycle = inner.scheduling_cycle;
                p.initial_attempt.get_or_insert(now);
                inner.in_flight.insert(e.key, InFlight::default());
                return Some(p);
            }
            let next_backoff = inner.backoff.values().map(|p| self.backoff_expiry(p)).min();
            let wait = next_backoff.map_or(Duration::from_secs(1), |t| {
                t.saturating_duration_since(now).min(Duration::from_secs(1))
            });
            self.ready
                .wait_for(&mut inner, wait.max(Duration::from_millis(1)));
        }
    }

    /// Moves completed backoffs to activeQ and long-parked unschedulable pods back.
    fn flush(&self, inner: &mut Inner, now: Instant) {
        if !inner.backoff.is_empty() {
            let done: Vec<String> = inner
                .backoff
                .iter()
                .filter(|(_, p)| self.backoff_expiry(p) <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for k in done {
                if let Some(p) = inner.backoff.remove(&k) {
                    Self::push_active(inner, p);
                }
            }
        }
        let due = inner
            .last_unschedulable_flush
            .is_none_or(|t| now.duration_since(t) >= UNSCHEDULABLE_FLUSH_PERIOD);
        if due {
            inner.last_unschedulable_flush = Some(now);
            let stale: Vec<String> = inner
                .unschedulable
                .iter()
                .filter(|(_, p)| now.duration_since(p.timestamp) > MAX_IN_UNSCHEDULABLE)
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                if let Some(p) = inner.unschedulable.remove(&k) {
                    self.requeue(inner, p, now);
                }
            }
        }
    }

    /// Scheduling (and binding, if any) of a popped pod finished.
    pub fn done(&self, key: &str) {
        self.inner.lock().in_flight.remove(key);
    }

    /// A popped pod failed: park it as unschedulable, or back off when a move request
    /// came in during its attempt, when it failed with an error, or when it changed
    /// meanwhile. Dropped if it was deleted or assigned meanwhile.
    pub fn add_unschedulable(
        &self,
        mut p: QueuedPod,
        plugins: HashSet<&'static str>,
        is_error: bool,
    ) {
        let mut inner = self.inner.lock();
        let key = p.info.key.clone();
        let flight = inner.in_flight.remove(&key).unwrap_or_default();
        if flight.deleted {
            return;
        }
        let updated = flight.updated.is_some();
        if let Some(info) = flight.updated {
            p.info = info;
        }
        if inner.active.contains_key(&key)
            || inner.backoff.contains_key(&key)
            || inner.unschedulable.contains_key(&key)
        {
            return;
        }
        let now = Instant::now();
        p.timestamp = now;
        p.unschedulable_plugins = plugins;
        let helped_meanwhile = inner
            .event_cycles
            .iter()
            .any(|(e, c)| *c >= p.cycle && e.may_help(&p.unschedulable_plugins));
        if is_error || updated || helped_meanwhile || p.unschedulable_plugins.is_empty() {
            self.requeue(&mut inner, p, now);
            drop(inner);
            self.ready.notify_one();
        } else {
            inner.unschedulable.insert(key, p);
        }
    }

    /// A cluster event: unschedulable pods it may help go back to active/backoff.
    pub fn move_all(&self, event: ClusterEvent) {
        let mut inner = self.inner.lock();
        let cycle = inner.scheduling_cycle;
        inner.event_cycles.insert(event, cycle);
        if inner.unschedulable.is_empty() {
            return;
        }
        let keys: Vec<String> = inner
            .unschedulable
            .iter()
            .filter(|(_, p)| event.may_help(&p.unschedulable_plugins))
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return;
        }
        let now = Instant::now();
        for k in keys {
            if let Some(p) = inner.unschedulable.remove(&k) {
                self.requeue(&mut inner, p, now);
            }
        }
        drop(inner);
        self.ready.notify_all();
    }

    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.ready.notify_all();
    }

    pub fn pending(&self) -> Pending {
        let inner = self.inner.lock();
        Pending {
            active: inner.active.len(),
            backoff: inner.backoff.len(),
            unschedulable: inner.unschedulable.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::pod;
    use serde_json::json;

    fn info(name: &str, priority: i32) -> Arc<PodInfo> {
        Arc::new(pod(
            json!({"metadata": {"name": name}, "spec": {"priority": priority, "containers": [{"name": "c"}]}}),
        ))
    }

    fn queue() -> SchedulingQueue {
        SchedulingQueue::new(Duration::from_millis(50), Duration::from_millis(200))
    }

    #[test]
    fn priority_then_age() {
        let q = queue();
        q.add(info("a", 0));
        q.add(info("b", 10));
        q.add(info("c", 0));
        let order: Vec<String> = (0..3)
            .map(|_| q.pop().expect("pod").info.name.clone())
            .collect();
        assert_eq!(order, ["b", "a", "c"]);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let q = SchedulingQueue::new(Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(q.backoff_duration(1), Duration::from_secs(1));
        assert_eq!(q.backoff_duration(2), Duration::from_secs(2));
        assert_eq!(q.backoff_duration(4), Duration::from_secs(8));
        assert_eq!(q.backoff_duration(5), Duration::from_secs(10));
        assert_eq!(q.backoff_duration(30), Duration::from_secs(10));
    }

    #[test]
    fn unschedulable_until_a_helpful_event() {
        let q = queue();
        q.add(info("a", 0));
        let p = q.pop().expect("pod");
        let plugins: HashSet<&'static str> = [Fit::NAME].into_iter().collect();
        q.add_unschedulable(p, plugins, false);
        assert_eq!(
            q.pending(),
            Pending {
                active: 0,
                backoff: 0,
                unschedulable: 1
            }
        );
        // A new assigned pod does not free resources.
        q.move_all(ClusterEvent::AssignedPodAdd);
        assert_eq!(q.pending().unschedulable, 1);
        q.move_all(ClusterEvent::AssignedPodDelete);
        assert_eq!(q.pending().unschedulable, 0);
        // Still backing off, then active.
        let again = q.pop().expect("pod after backoff");
        assert_eq!(again.attempts, 2);
    }

    #[test]
    fn move_request_during_attempt_means_backoff() {
        let q = queue();
        q.add(info("a", 0));
        let p = q.pop().expect("pod");
        q.move_all(ClusterEvent::NodeAdd);
        q.add_unschedulable(p, [Fit::NAME].into_iter().collect(), false);
        assert_eq!(q.pending().unschedulable, 0);
        assert_eq!(q.pending().backoff, 1);
    }

    #[test]
    fn unrelated_events_during_attempt_do_not_requeue() {
        let q = queue();
        q.add(info("a", 0));
        let p = q.pop().expect("pod");
        q.move_all(ClusterEvent::AssignedPodAdd);
        q.add_unschedulable(p, [Fit::NAME].into_iter().collect(), false);
        assert_eq!(q.pending().unschedulable, 1);
    }

    #[test]
    fn deleted_in_flight_pods_are_dropped() {
        let q = queue();
        q.add(info("a", 0));
        let p = q.pop().expect("pod");
        q.delete("default/a");
        q.add_unschedulable(p, HashSet::new(), true);
        assert_eq!(q.pending(), Pending::default());
    }

    #[test]
    fn updates_while_in_flight_are_kept() {
        let q = queue();
        q.add(info("a", 0));
        let p = q.pop().expect("pod");
        q.update(info("a", 5));
        assert_eq!(q.pending(), Pending::default(), "not queued twice");
        q.add_unschedulable(p, [Fit::NAME].into_iter().collect(), false);
        let p = q.pop().expect("requeued");
        assert_eq!(p.info.priority, 5);
    }

    #[test]
    fn close_unblocks_pop() {
        let q = Arc::new(queue());
        let q2 = q.clone();
        let t = std::thread::spawn(move || q2.pop().is_none());
        std::thread::sleep(Duration::from_millis(50));
        q.close();
        assert!(t.join().expect("join"));
    }
}
