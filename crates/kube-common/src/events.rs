//! core/v1 Events, as upstream client-go's `tools/record` writes them: recording
//! never blocks the caller (a bounded queue of 1000, dropping when full), messages
//! are truncated to 1024 bytes, and the event correlator folds repeats: an event
//! equal to one recorded before (same source, involved object incl. fieldPath, type,
//! reason and message) becomes a strategic-merge PATCH of `count`, `lastTimestamp`
//! and `message` on the Event created first; ten events about one object that
//! differ only in their message within ten minutes become one
//! `(combined from similar events): ...` Event (upstream `EventAggregator`).
//!
//! Upstream's per-object spam filter (a token bucket of 25) is not implemented.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Resource;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// Upstream's broadcaster queue length; beyond it events are dropped.
pub const MAX_QUEUED_EVENTS: usize = 1000;
/// Upstream `noteLengthLimit`.
const NOTE_LENGTH_LIMIT: usize = 1024;
/// Upstream `maxLruCacheEntries`.
const MAX_CACHE_ENTRIES: usize = 4096;
/// Upstream `defaultAggregateMaxEvents`.
const AGGREGATE_MAX_EVENTS: usize = 10;
/// Upstream `defaultAggregateIntervalInSeconds`.
const AGGREGATE_INTERVAL: SignedDuration = SignedDuration::from_secs(600);
/// Writes that failed for a reason other than the API's answer are retried this
/// often (upstream `maxTriesPerEvent` is 12 at 10 s; we are less patient).
const MAX_WRITE_ATTEMPTS: u32 = 3;

/// Upstream `truncateMessage`.
pub fn truncate_message(message: &str) -> String {
    if message.len() <= NOTE_LENGTH_LIMIT {
        return message.to_string();
    }
    let mut end = NOTE_LENGTH_LIMIT - 4;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...", &message[..end])
}

/// The object an event is about (an `ObjectReference`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped objects; their events go to `default`, as upstream.
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    /// e.g. `spec.containers{app}`.
    pub field_path: Option<String>,
}

impl ObjectRef {
    pub fn of<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectRef {
        let m = obj.meta();
        ObjectRef {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            namespace: m.namespace.clone(),
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
            resource_version: m.resource_version.clone().unwrap_or_default(),
            field_path: None,
        }
    }

    pub fn with_field_path(mut self, field_path: impl Into<String>) -> ObjectRef {
        self.field_path = Some(field_path.into());
        self
    }

    fn event_namespace(&self) -> String {
        self.namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into())
    }
}

/// Who reports: `source.component`/`source.host`, and `reportingController`/
/// `reportingInstance` (the instance defaults to the host, as upstream).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    pub component: String,
    pub host: Option<String>,
    pub instance: Option<String>,
}

impl Source {
    pub fn new(component: impl Into<String>) -> Source {
        Source {
            component: component.into(),
            host: None,
            instance: None,
        }
    }

    pub fn with_host(mut self, host: impl Into<String>) -> Source {
        self.host = Some(host.into());
        self
    }

    pub fn with_instance(mut self, instance: impl Into<String>) -> Source {
        self.instance = Some(instance.into());
        self
    }

    fn reporting_instance(&self) -> String {
        self.instance
            .clone()
            .or_else(|| self.host.clone())
            .unwrap_or_default()
    }
}

impl From<&str> for Source {
    fn from(component: &str) -> Source {
        Source::new(component)
    }
}

/// One event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub involved: ObjectRef,
    pub type_: String,
    pub reason: String,
    pub message: String,
    /// Not part of upstream's core/v1 recorder; kept when a caller has one.
    pub action: Option<String>,
}

impl EventRecord {
    pub fn new(
        involved: ObjectRef,
        type_: &str,
        reason: &str,
        message: impl Into<String>,
    ) -> EventRecord {
        EventRecord {
            involved,
            type_: type_.into(),
            reason: reason.into(),
            message: message.into(),
            action: None,
        }
    }
}

/// Sends events to the API in the background; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: Option<mpsc::Sender<EventRecord>>,
}

impl Recorder {
    /// Starts the sender task (needs a tokio runtime).
    pub fn new(client: kube::Client, source: impl Into<Source>) -> Recorder {
        let (tx, rx) = mpsc::channel(MAX_QUEUED_EVENTS);
        tokio::spawn(send_events(client, source.into(), rx));
        Recorder { tx: Some(tx) }
    }

    /// A recorder that drops everything (unit tests, no API).
    pub fn disabled() -> Recorder {
        Recorder { tx: None }
    }

    /// Queues `record`; never blocks. Dropped when the queue is full.
    pub fn record(&self, record: EventRecord) {
        if let Some(tx) = &self.tx {
            if tx.try_send(record).is_err() {
                tracing::debug!("event backlog full; dropping event");
            }
        }
    }

    /// An event about `obj`.
    pub fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: &str,
        reason: &str,
        message: impl Into<String>,
    ) {
        self.record(EventRecord::new(ObjectRef::of(obj), type_, reason, message));
    }
}

/// The Event for a first occurrence of `record` at `at`, named
/// `<object>.<unix nanoseconds in hex>` as upstream.
pub fn make_event(source: &Source, record: &EventRecord, at: Timestamp) -> Event {
    let i = &record.involved;
    let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", i.name, at.as_nanosecond())),
            namespace: Some(i.event_namespace()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: some(&i.api_version),
            kind: some(&i.kind),
            namespace: i.namespace.clone().filter(|n| !n.is_empty()),
            name: some(&i.name),
            uid: some(&i.uid),
            resource_version: some(&i.resource_version),
            field_path: i.field_path.clone(),
        },
        reason: Some(record.reason.clone()),
        message: Some(truncate_message(&record.message)),
        type_: Some(record.type_.clone()),
        action: record.action.clone(),
        source: Some(EventSource {
            component: Some(source.component.clone()),
            host: source.host.clone(),
        }),
        reporting_component: Some(source.component.clone()),
        reporting_instance: Some(source.reporting_instance()),
        first_timestamp: Some(Time(at)),
        last_timestamp: Some(Time(at)),
        count: Some(1),
        ..Event::default()
    }
}

/// A map that forgets its least recently used entry beyond `capacity` (upstream
/// keeps its correlator caches in LRUs of 4096).
struct Lru<K, V> {
    entries: HashMap<K, (V, u64)>,
    tick: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    fn new(capacity: usize) -> Self {
        Lru {
            entries: HashMap::new(),
            tick: 0,
            capacity,
        }
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(v, used)| {
            *used = tick;
            v
        })
    }

    fn insert(&mut self, key: K, value: V) {
        self.tick += 1;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            // Linear, but only once the cache is full.
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (value, self.tick));
    }
}

/// Upstream `aggregateRecord`: the distinct messages seen for one aggregate key.
struct AggregateRecord {
    messages: HashSet<String>,
    last: Timestamp,
}

/// Upstream `eventLog`: what the correlator last wrote for a key.
#[derive(Debug, Clone)]
struct Observation {
    count: i32,
    first_timestamp: Timestamp,
    name: String,
}

/// What to write: create `event`, or (with `patch`) PATCH the existing Event named
/// `event.metadata.name`, creating `event` if it is gone (events expire).
#[derive(Debug, Clone, PartialEq)]
pub struct Correlated {
    pub event: Event,
    pub patch: Option<Value>,
}

/// Upstream `EventCorrelator` (aggregator + logger), pure over its caches.
pub struct Correlator {
    aggregates: Lru<String, AggregateRecord>,
    observed: Lru<String, Observation>,
}

impl Default for Correlator {
    fn default() -> Self {
        Correlator {
            aggregates: Lru::new(MAX_CACHE_ENTRIES),
            observed: Lru::new(MAX_CACHE_ENTRIES),
        }
    }
}

fn join_key(parts: &[&str]) -> String {
    parts.join("\u{1f}")
}

/// Upstream `EventAggregatorByReasonFunc`'s aggregate key: no fieldPath, no message.
fn aggregate_key(source: &Source, r: &EventRecord) -> String {
    let i = &r.involved;
    let (host, instance) = (
        source.host.clone().unwrap_or_default(),
        source.reporting_instance(),
    );
    let ns = i.namespace.clone().unwrap_or_default();
    join_key(&[
        "aggregate",
        &source.component,
        &host,
        &i.kind,
        &ns,
        &i.name,
        &i.uid,
        &i.api_version,
        &r.type_,
        &r.reason,
        &source.component,
        &instance,
    ])
}

/// Upstream `getEventKey`: everything that makes two events the same occurrence.
fn event_key(source: &Source, r: &EventRecord, message: &str) -> String {
    let i = &r.involved;
    let (host, instance) = (
        source.host.clone().unwrap_or_default(),
        source.reporting_instance(),
    );
    let ns = i.namespace.clone().unwrap_or_default();
    let path = i.field_path.clone().unwrap_or_default();
    join_key(&[
        "event",
        &source.component,
        &host,
        &i.kind,
        &ns,
        &i.name,
        &path,
        &i.uid,
        &i.api_version,
        &r.type_,
        &r.reason,
        message,
        &source.component,
        &instance,
    ])
}

impl Correlator {
    pub fn new() -> Correlator {
        Correlator::default()
    }

    /// Folds `record`, observed `now`, into the caches and says what to write.
    pub fn correlate(
        &mut self,
        source: &Source,
        record: &EventRecord,
        now: Timestamp,
    ) -> Correlated {
        let message = truncate_message(&record.message);
        let (mut event, key) = self.aggregate(source, record, &message, now);
        let mut patch = None;
        if let Some(last) = self.observed.get_mut(&key).filter(|o| o.count > 0) {
            event.metadata.name = Some(last.name.clone());
            event.first_timestamp = Some(Time(last.first_timestamp));
            event.count = Some(last.count + 1);
            // Upstream's two-way strategic merge patch of exactly these fields.
            patch = Some(json!({
                "count": last.count + 1,
                "lastTimestamp": event.last_timestamp,
                "message": event.message,
            }));
        }
        let observation = Observation {
            count: event.count.unwrap_or(1),
            first_timestamp: event.first_timestamp.as_ref().map_or(now, |t| t.0),
            name: event.metadata.name.clone().unwrap_or_default(),
        };
        self.observed.insert(key, observation);
        Correlated { event, patch }
    }

    /// Upstream `EventAggregate`: the event to observe and its cache key.
    fn aggregate(
        &mut self,
        source: &Source,
        record: &EventRecord,
        message: &str,
        now: Timestamp,
    ) -> (Event, String) {
        let aggregate_key = aggregate_key(source, record);
        let fresh = || AggregateRecord {
            messages: HashSet::new(),
            last: now,
        };
        let mut entry = match self.aggregates.entries.remove(&aggregate_key) {
            Some((r, _)) if now.duration_since(r.last) <= AGGREGATE_INTERVAL => r,
            _ => fresh(),
        };
        entry.messages.insert(message.to_string());
        entry.last = now;
        let similar = entry.messages.len();
        if similar >= AGGREGATE_MAX_EVENTS {
            // Upstream pops one so the set stays bounded.
            if let Some(any) = entry.messages.iter().next().cloned() {
                entry.messages.remove(&any);
            }
        }
        self.aggregates.insert(aggregate_key.clone(), entry);
        let mut event = make_event(source, record, now);
        if similar < AGGREGATE_MAX_EVENTS {
            event.message = Some(message.to_string());
            return (event, event_key(source, record, message));
        }
        event.message = Some(format!("(combined from similar events): {message}"));
        event.action = None;
        (event, aggregate_key)
    }
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code)
}

/// Runs `call` again after transport errors and throttling (429); the API's other
/// answers are final.
async fn with_retries<T, F, Fut>(mut call: F) -> kube::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kube::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(err)
                if attempt < MAX_WRITE_ATTEMPTS
                    && (is_status(&err, 429) || !matches!(err, kube::Error::Api(_))) =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

async fn write(client: &kube::Client, correlated: Correlated) {
    let Correlated { mut event, patch } = correlated;
    let namespace = event
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = event.metadata.name.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Some(patch) = patch {
        let (params, patch) = (PatchParams::default(), Patch::Strategic(&patch));
        match with_retries(|| api.patch(&name, &params, &patch)).await {
            Ok(_) => return,
            // Expired (events have a TTL) or deleted: create it anew, keeping the count.
            Err(err) if is_status(&err, 404) => event.metadata.resource_version = None,
            Err(err) => {
                tracing::debug!(event = %name, "updating event: {err}");
                return;
            }
        }
    }
    let params = PostParams::default();
    match with_retries(|| api.create(&params, &event)).await {
        Ok(_) => {}
        Err(err) if is_status(&err, 409) => tracing::debug!(event = %name, "event already exists"),
        Err(err) => tracing::debug!(event = %name, reason = ?event.reason, "creating event: {err}"),
    }
}

async fn send_events(client: kube::Client, source: Source, mut rx: mpsc::Receiver<EventRecord>) {
    let mut correlator = Correlator::new();
    while let Some(record) = rx.recv().await {
        let correlated = correlator.correlate(&source, &record, Timestamp::now());
        write(&client, correlated).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod};

    fn pod(name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).expect("time")
    }

    fn failed(pod_name: &str, message: &str) -> EventRecord {
        EventRecord::new(
            ObjectRef::of(&pod(pod_name)),
            WARNING,
            "FailedScheduling",
            message,
        )
    }

    #[test]
    fn long_messages_are_truncated() {
        let t = truncate_message(&"x".repeat(2000));
        assert_eq!(t.len(), 1024);
        assert!(t.ends_with(" ..."));
        assert_eq!(truncate_message("short"), "short");
        // Never splits a character.
        assert!(truncate_message(&"é".repeat(1000)).len() <= 1024);
    }

    #[test]
    fn first_event_names_object_and_source() {
        let source = Source::new("kubelet").with_host("n1");
        let record = EventRecord::new(
            ObjectRef::of(&pod("web")).with_field_path("spec.containers{app}"),
            WARNING,
            "Unhealthy",
            "x".repeat(2000),
        );
        let e = make_event(&source, &record, at(0));
        assert_eq!(
            e.metadata.name.as_deref(),
            Some(format!("web.{:x}", 1_700_000_000_000_000_000i128).as_str())
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            e.involved_object.field_path.as_deref(),
            Some("spec.containers{app}")
        );
        assert_eq!(
            (
                e.involved_object.kind.as_deref(),
                e.involved_object.api_version.as_deref()
            ),
            (Some("Pod"), Some("v1"))
        );
        let s = e.source.as_ref().expect("source");
        assert_eq!(
            (s.component.as_deref(), s.host.as_deref()),
            (Some("kubelet"), Some("n1"))
        );
        assert_eq!(e.reporting_instance.as_deref(), Some("n1"));
        assert_eq!(e.message.as_deref().map(str::len), Some(1024));
        assert_eq!(e.count, Some(1));
        // Cluster-scoped objects' events live in default.
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                ..ObjectMeta::default()
            },
            ..Node::default()
        };
        let e = make_event(
            &"node-controller".into(),
            &EventRecord::new(ObjectRef::of(&node), NORMAL, "NodeNotReady", "m"),
            at(0),
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(e.involved_object.namespace, None);
    }

    #[test]
    fn repeats_patch_the_first_event() {
        let source = Source::new("default-scheduler");
        let mut c = Correlator::new();
        let first = c.correlate(&source, &failed("web", "0/1 nodes are available"), at(0));
        assert_eq!(first.patch, None);
        let name = first.event.metadata.name.clone();
        for n in 2..=4 {
            let again = c.correlate(
                &source,
                &failed("web", "0/1 nodes are available"),
                at(n * 10),
            );
            assert_eq!(again.event.metadata.name, name, "same Event");
            assert_eq!(again.event.count, Some(n as i32));
            assert_eq!(again.event.first_timestamp, first.event.first_timestamp);
            let patch = again.patch.expect("a patch");
            assert_eq!(patch["count"], n);
            assert_eq!(
                patch["lastTimestamp"],
                serde_json::to_value(Time(at(n * 10))).expect("time")
            );
            assert_eq!(patch["message"], "0/1 nodes are available");
        }
    }

    #[test]
    fn different_object_message_reason_field_path_or_source_are_new_events() {
        let source = Source::new("default-scheduler");
        let mut c = Correlator::new();
        c.correlate(&source, &failed("web", "m"), at(0));
        assert_eq!(
            c.correlate(&source, &failed("db", "m"), at(1)).patch,
            None,
            "other object"
        );
        assert_eq!(
            c.correlate(&source, &failed("web", "other message"), at(2))
                .patch,
            None,
            "other message"
        );
        let mut scheduled = failed("web", "m");
        scheduled.reason = "Scheduled".into();
        assert_eq!(
            c.correlate(&source, &scheduled, at(3)).patch,
            None,
            "other reason"
        );
        let mut container = failed("web", "m");
        container.involved = container.involved.with_field_path("spec.containers{c}");
        assert_eq!(
            c.correlate(&source, &container, at(4)).patch,
            None,
            "other fieldPath"
        );
        assert_eq!(
            c.correlate(&Source::new("other-scheduler"), &failed("web", "m"), at(5))
                .patch,
            None,
            "other source"
        );
        assert!(
            c.correlate(&source, &failed("web", "m"), at(6))
                .patch
                .is_some(),
            "the first again"
        );
    }

    #[test]
    fn ten_similar_messages_are_combined() {
        let source = Source::new("kubelet").with_host("n1");
        let mut c = Correlator::new();
        for n in 0..9 {
            let out = c.correlate(&source, &failed("web", &format!("message {n}")), at(n));
            assert_eq!(
                out.event.message.as_deref(),
                Some(format!("message {n}").as_str())
            );
            assert_eq!(out.patch, None);
        }
        let combined = c.correlate(&source, &failed("web", "message 9"), at(9));
        assert_eq!(
            combined.event.message.as_deref(),
            Some("(combined from similar events): message 9")
        );
        assert_eq!(combined.patch, None, "the combined event is created");
        let name = combined.event.metadata.name.clone();
        let next = c.correlate(&source, &failed("web", "message 10"), at(10));
        assert_eq!(
            next.event.metadata.name, name,
            "later similar events patch the combined one"
        );
        assert_eq!(next.event.count, Some(2));
        let patch = next.patch.expect("a patch");
        assert_eq!(
            patch["message"],
            "(combined from similar events): message 10"
        );
    }

    #[test]
    fn similar_messages_older_than_ten_minutes_are_not_combined() {
        let source = Source::new("kubelet");
        let mut c = Correlator::new();
        for n in 0..9 {
            c.correlate(&source, &failed("web", &format!("message {n}")), at(n));
        }
        let late = c.correlate(&source, &failed("web", "message 9"), at(9 + 601));
        assert_eq!(late.event.message.as_deref(), Some("message 9"));
    }

    #[test]
    fn lru_forgets_least_recently_used() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert!(lru.get_mut(&"a").is_some());
        lru.insert("c", 3);
        assert!(lru.get_mut(&"b").is_none());
        assert!(lru.get_mut(&"a").is_some() && lru.get_mut(&"c").is_some());
    }
}
