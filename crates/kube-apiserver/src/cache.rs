//! The watch cache: one etcd watch on `/registry/` feeds a per-resource cache of current
//! objects plus a bounded window of recent events, fanned out to every API watcher.
//! Lists with `resourceVersion=0` (and consistent lists, once the cache has caught up
//! with etcd's current revision) are served from here, never from etcd.

use std::{
    borrow::Cow,
    collections::{BTreeMap, VecDeque},
    sync::{Arc, LazyLock},
    time::Duration,
};

use api_types::{registry::RESOURCES, ApiError, ResourceInfo};
use bytes::Bytes;
use etcd_client::{EventType, WatchOptions};
// foldhash: these maps are looked up several times per request (SipHash showed).
use foldhash::{HashMap, HashMapExt};
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::storage::Storage;

/// A cached object: its JSON bytes (with `resourceVersion` set) and the parsed part
/// of it the apiserver reads in place.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub revision: i64,
    /// What selectors, admission, authorizers and indexes read: the object without
    /// `metadata.managedFields`, or, for pods and events (many, large, and read in place
    /// only by selectors and token checks), just the part selectors read
    /// ([`api_types::selectors::selectable_subset`]) plus `metadata.uid` and
    /// `metadata.deletionTimestamp`. Parsed managed fields are half of
    /// a parsed pod and the rest of its spec most of the other half: a cached 5.6 KB pod
    /// took 52 KB parsed. [`CachedObject::object`] parses the whole object.
    pub selectable: Value,
    /// `selectable` is only the selectable subset.
    subset: bool,
    /// The full object as served.
    pub bytes: Bytes,
}

/// What a pod or event keeps parsed besides its selectable fields: identity and
/// lifecycle, which bound service account tokens check on every request.
const KEPT_PATHS: &[&str] = &["metadata.uid", "metadata.deletionTimestamp"];

/// What the cache keeps parsed of `value` stored under `key` (see
/// [`CachedObject::selectable`]), and whether that is only the selectable subset.
fn selectable(key: &str, mut value: Value) -> (Value, bool) {
    static SUBSET_ONLY: LazyLock<Vec<(String, &'static ResourceInfo)>> = LazyLock::new(|| {
        ["pods", "events"]
            .into_iter()
            .filter_map(|plural| api_types::registry::lookup("", "v1", plural))
            .map(|info| (info.key_prefix(), info))
            .collect()
    });
    if let Some((_, info)) = SUBSET_ONLY
        .iter()
        .find(|(prefix, _)| key.starts_with(prefix.as_str()))
    {
        return (
            api_types::selectors::selectable_subset(info, value, KEPT_PATHS),
            true,
        );
    }
    api_types::meta::remove_managed_fields(&mut value);
    (value, false)
}

impl CachedObject {
    fn new(key: String, revision: i64, value: Value, bytes: Bytes) -> CachedObject {
        let (selectable, subset) = selectable(&key, value);
        CachedObject {
            key,
            revision,
            selectable,
            subset,
            bytes,
        }
    }

    /// The whole object but `metadata.managedFields`: borrowed where the cache keeps it
    /// parsed, parsed from the bytes for pods and events.
    pub fn without_managed_fields(&self) -> Cow<'_, Value> {
        if !self.subset {
            return Cow::Borrowed(&self.selectable);
        }
        let mut value = self.object();
        api_types::meta::remove_managed_fields(&mut value);
        Cow::Owned(value)
    }

    /// The full object (with `managedFields`), parsed from the served bytes.
    pub fn object(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|_| self.selectable.clone())
    }

    /// Decodes a stored value into the form `info` serves, stamping
    /// `metadata.resourceVersion` with `revision`.
    pub fn decode(
        info: &ResourceInfo,
        key: String,
        raw: &[u8],
        revision: i64,
    ) -> Option<CachedObject> {
        let mut value: Value = serde_json::from_slice(raw).ok()?;
        api_types::conversion::storage_to_external(info, &mut value);
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert(
                "resourceVersion".into(),
                Value::String(revision.to_string()),
            );
        }
        let bytes = Bytes::from(api_types::json::to_vec(&value));
        Some(CachedObject::new(key, revision, value, bytes))
    }

    /// A served-form object (no `resourceVersion` in it) stamped with `revision`.
    pub fn stamped(key: &str, mut value: Value, revision: i64) -> Option<CachedObject> {
        let meta = value.get_mut("metadata").and_then(Value::as_object_mut)?;
        meta.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
        let bytes = Bytes::from(api_types::json::to_vec(&value));
        Some(CachedObject::new(key.to_string(), revision, value, bytes))
    }

    /// The object stored as `stored` at `revision`, from its precomputed `selectable`
    /// part (see [`WriteSlot`]), with `metadata` closing at `metadata_end` in `stored`
    /// (see [`encode_marking_metadata`]): the served bytes are `stored` with
    /// `resourceVersion` spliced in, the bytes serializing the stamped object gives,
    /// without serializing it again.
    fn stamped_from_stored(
        key: &str,
        mut selectable: Value,
        subset: bool,
        stored: &[u8],
        metadata_end: usize,
        revision: i64,
    ) -> Option<CachedObject> {
        let rv = revision.to_string();
        let (head, tail) = (stored.get(..metadata_end)?, stored.get(metadata_end..)?);
        let mut bytes = Vec::with_capacity(stored.len() + rv.len() + 22);
        bytes.extend_from_slice(head);
        if head.last() != Some(&b'{') {
            bytes.push(b',');
        }
        bytes.extend_from_slice(b"\"resourceVersion\":\"");
        bytes.extend_from_slice(rv.as_bytes());
        bytes.push(b'"');
        bytes.extend_from_slice(tail);
        if !subset {
            // The selectable subset leaves `resourceVersion` out; the whole object has it.
            selectable
                .get_mut("metadata")
                .and_then(Value::as_object_mut)?
                .insert("resourceVersion".into(), Value::String(rv));
        }
        Some(CachedObject {
            key: key.to_string(),
            revision,
            selectable,
            subset,
            bytes: Bytes::from(bytes),
        })
    }
}

/// `serde_json::to_vec(value)` (byte for byte), plus, when `value` is an object with an
/// object `metadata`, the offset of the `}` closing that `metadata`: where a
/// `resourceVersion` appended to it goes in the JSON.
pub fn encode_marking_metadata(value: &Value) -> (Vec<u8>, Option<usize>) {
    let Value::Object(map) = value else {
        return (api_types::json::to_vec(value), None);
    };
    let mut buf = Vec::with_capacity(4096);
    let mut metadata_end = None;
    buf.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        api_types::json::write_str(&mut buf, k);
        buf.push(b':');
        api_types::json::write_value(&mut buf, v);
        if k == "metadata" && v.is_object() {
            metadata_end = Some(buf.len() - 1);
        }
    }
    buf.push(b'}');
    (buf, metadata_end)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
}

impl WatchEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEventType::Added => "ADDED",
            WatchEventType::Modified => "MODIFIED",
            WatchEventType::Deleted => "DELETED",
        }
    }
}

/// One change, shared by every watcher.
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: WatchEventType,
    pub revision: i64,
    pub object: Arc<CachedObject>,
    /// The object's state before this event (for selector transitions).
    pub prev: Option<Arc<CachedObject>>,
}

struct Inner {
    objects: BTreeMap<String, Arc<CachedObject>>,
    events: VecDeque<Arc<CacheEvent>>,
    /// Watches may start from any revision >= this one.
    oldest_revision: i64,
    tx: broadcast::Sender<Arc<CacheEvent>>,
}

/// The cache of one resource.
pub struct ResourceCache {
    pub info: &'static ResourceInfo,
    inner: RwLock<Inner>,
    capacity: usize,
}

/// What a new watch starts with: past events to replay and the live feed after them.
pub struct WatchStart {
    pub initial: Vec<Arc<CacheEvent>>,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
}

impl ResourceCache {
    fn new(info: &'static ResourceInfo, capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1024));
        ResourceCache {
            info,
            inner: RwLock::new(Inner {
                objects: BTreeMap::new(),
                events: VecDeque::new(),
                oldest_revision: 0,
                tx,
            }),
            capacity,
        }
    }

    /// Current objects under `prefix` (a namespace or the whole resource).
    pub fn list(&self, prefix: &str) -> Vec<Arc<CachedObject>> {
        let inner = self.inner.read();
        inner
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.inner.read().objects.get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.inner.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a watch after `revision` (None: from now, replaying current state as
    /// ADDED events when `initial_state` is set). Too old → 410 Gone.
    pub fn watch(
        &self,
        prefix: &str,
        revision: Option<i64>,
        initial_state: bool,
    ) -> Result<WatchStart, ApiError> {
        let inner = self.inner.read();
        let live = inner.tx.subscribe();
        let initial = match revision {
            None => {
                if initial_state {
                    inner
                        .objects
                        .range(prefix.to_string()..)
                        .take_while(|(k, _)| k.starts_with(prefix))
                        .map(|(_, o)| {
                            Arc::new(CacheEvent {
                                kind: WatchEventType::Added,
                                revision: o.revision,
                                object: o.clone(),
                                prev: None,
                            })
                        })
                        .collect()
                } else {
                    Vec::new()
                }
            }
            Some(rv) => {
                if rv < inner.oldest_revision {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        inner.oldest_revision
                    )));
                }
                inner
                    .events
                    .iter()
                    .filter(|e| e.revision > rv && e.object.key.starts_with(prefix))
                    .cloned()
                    .collect()
            }
        };
        Ok(WatchStart { initial, live })
    }

    fn apply(&self, event: CacheEvent) {
        let event = Arc::new(event);
        let mut inner = self.inner.write();
        match event.kind {
            WatchEventType::Deleted => {
                inner.objects.remove(&event.object.key);
            }
            _ => {
                inner
                    .objects
                    .insert(event.object.key.clone(), event.object.clone());
            }
        }
        inner.events.push_back(event.clone());
        while inner.events.len() > self.capacity {
            if let Some(old) = inner.events.pop_front() {
                inner.oldest_revision = old.revision;
            }
        }
        let _ = inner.tx.send(event);
    }

    /// Replaces the whole state after a (re)list; live watchers are cut off so that
    /// they re-list, as upstream does after the cache loses continuity.
    fn reset(&self, objects: BTreeMap<String, Arc<CachedObject>>, revision: i64) {
        let mut inner = self.inner.write();
        inner.objects = objects;
        inner.events.clear();
        inner.oldest_revision = revision;
        let (tx, _) = broadcast::channel(self.capacity.max(1024));
        inner.tx = tx;
    }
}

/// A write of this apiserver in flight: the exact bytes stored and what the cache keeps
/// parsed of the object ([`CachedObject::selectable`]). The write's watch event and the
/// writer both turn it into the served object (with `resourceVersion` and JSON bytes)
/// through [`WriteSlot::finish`]; whoever comes first does the work once, so the event
/// does not decode the value from etcd again.
///
/// The parsed part is taken when the slot is made, before the write goes to etcd: the
/// rest of the object's tree is freed by the request that built it, on its thread and
/// while its memory is still in the cache, instead of living on through the etcd round
/// trip (under load, dozens of requests wait there) to be freed by the watch task.
pub struct WriteSlot {
    stored: Vec<u8>,
    /// Where `metadata` closes in `stored` (see [`encode_marking_metadata`]), when
    /// `resourceVersion` can be spliced in there.
    metadata_end: Option<usize>,
    /// The slot's object had `managedFields` of its own; otherwise any in `stored`
    /// were appended by the writer (see [`WriteSlot::into_value`]).
    had_managed_fields: bool,
    state: parking_lot::Mutex<SlotState>,
}

enum SlotState {
    Waiting { selectable: Value, subset: bool },
    Done(Arc<CachedObject>),
    Empty,
}

impl WriteSlot {
    /// A slot for `value` (served form, without `resourceVersion`) stored under `key`
    /// as `stored`, whose `metadata` closes at `metadata_end`. `stored` is `value`'s
    /// JSON, with a `managedFields` appended to `metadata` when `value` has none.
    fn new(key: &str, stored: Vec<u8>, metadata_end: Option<usize>, value: Value) -> WriteSlot {
        // A `resourceVersion` already there would be replaced in place, not appended.
        let metadata_end = metadata_end.filter(|&end| {
            stored.get(end) == Some(&b'}')
                && value
                    .get("metadata")
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.contains_key("resourceVersion"))
        });
        let had_managed_fields = value
            .get("metadata")
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key("managedFields"));
        let (selectable, subset) = selectable(key, value);
        WriteSlot {
            stored,
            metadata_end,
            had_managed_fields,
            state: parking_lot::Mutex::new(SlotState::Waiting { selectable, subset }),
        }
    }

    /// The object of a write that did not happen, as the writer handed it over: parsed
    /// from the bytes it would have stored, without the `managedFields` spliced into
    /// them.
    pub fn into_value(&self) -> Value {
        let mut value = serde_json::from_slice(&self.stored).unwrap_or(Value::Null);
        if !self.had_managed_fields {
            api_types::meta::remove_managed_fields(&mut value);
        }
        value
    }

    /// The object as written at `revision` under `key`.
    pub fn finish(&self, key: &str, revision: i64) -> Option<Arc<CachedObject>> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, SlotState::Empty) {
            SlotState::Done(o) if o.revision == revision => {
                *state = SlotState::Done(o.clone());
                Some(o)
            }
            SlotState::Done(o) => {
                // The same bytes written again at another revision (rare).
                let value = o.object();
                *state = SlotState::Done(o);
                drop(state);
                CachedObject::stamped(key, value, revision).map(Arc::new)
            }
            SlotState::Waiting { selectable, subset } => {
                let o = match self.metadata_end {
                    Some(end) => CachedObject::stamped_from_stored(
                        key,
                        selectable,
                        subset,
                        &self.stored,
                        end,
                        revision,
                    )?,
                    // No place to splice `resourceVersion` into: encode afresh.
                    None => CachedObject::stamped(
                        key,
                        serde_json::from_slice(&self.stored).ok()?,
                        revision,
                    )?,
                };
                let o = Arc::new(o);
                *state = SlotState::Done(o.clone());
                Some(o)
            }
            SlotState::Empty => None,
        }
    }
}

/// Every resource's cache plus the revision the caches have caught up to.
pub struct WatchCache {
    by_plural: HashMap<&'static str, Vec<Arc<ResourceCache>>>,
    by_resource: HashMap<(&'static str, &'static str, &'static str), Arc<ResourceCache>>,
    revision_tx: watch::Sender<i64>,
    storage: Arc<Storage>,
    progress: tokio::sync::Mutex<Option<etcd_client::WatchRequestSender>>,
    /// Writes of this apiserver waiting for their watch event, by key.
    pending: parking_lot::Mutex<HashMap<String, Arc<WriteSlot>>>,
}

impl WatchCache {
    /// Loads every resource at one revision and starts the etcd watch.
    pub async fn start(storage: Arc<Storage>, capacity: usize) -> anyhow::Result<Arc<WatchCache>> {
        let mut by_plural: HashMap<&'static str, Vec<Arc<ResourceCache>>> = HashMap::new();
        let mut by_resource = HashMap::new();
        for info in RESOURCES {
            let c = Arc::new(ResourceCache::new(info, capacity));
            by_plural.entry(info.plural).or_default().push(c.clone());
            by_resource.insert((info.group, info.version, info.plural), c);
        }
        let (revision_tx, _) = watch::channel(0);
        let cache = Arc::new(WatchCache {
            by_plural,
            by_resource,
            revision_tx,
            storage,
            progress: tokio::sync::Mutex::new(None),
            pending: parking_lot::Mutex::new(HashMap::new()),
        });
        let rev = cache.load().await?;
        let c2 = cache.clone();
        tokio::spawn(async move { c2.run(rev).await });
        Ok(cache)
    }

    pub fn resource(&self, info: &ResourceInfo) -> Option<&Arc<ResourceCache>> {
        self.by_resource
            .get(&(info.group, info.version, info.plural))
    }

    /// Whether `info` is the only view of its stored objects (no other group or
    /// version serves the same etcd keys). Only then is the served form the stored
    /// form plus `resourceVersion`, so a written object can stand in for its decoded
    /// watch event.
    pub fn single_view(&self, info: &ResourceInfo) -> bool {
        self.by_plural
            .get(info.plural)
            .is_some_and(|c| c.len() == 1 && std::ptr::eq(c[0].info, info))
    }

    /// Registers a write about to store `stored` (the exact value bytes) under `key`,
    /// for `value` (served form, without `resourceVersion`), whose JSON `stored` is,
    /// with a `managedFields` appended to its `metadata` when `value` has none. Only for
    /// [`WatchCache::single_view`] resources. The writer calls [`WriteSlot::finish`]
    /// once the write succeeded, or [`WatchCache::forget_write`] when it failed.
    pub fn expect_write(
        &self,
        key: &str,
        stored: Vec<u8>,
        metadata_end: Option<usize>,
        value: Value,
    ) -> Arc<WriteSlot> {
        let slot = Arc::new(WriteSlot::new(key, stored, metadata_end, value));
        self.pending.lock().insert(key.to_string(), slot.clone());
        slot
    }

    /// Drops a registered write that did not happen (or whose event is not wanted).
    pub fn forget_write(&self, key: &str, slot: &Arc<WriteSlot>) {
        let mut pending = self.pending.lock();
        if pending.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            pending.remove(key);
        }
    }

    /// The registered write that stored exactly `value` under `key`, if any.
    fn take_write(&self, key: &str, value: &[u8]) -> Option<Arc<WriteSlot>> {
        let mut pending = self.pending.lock();
        if pending.get(key).is_some_and(|s| s.stored == value) {
            return pending.remove(key);
        }
        None
    }

    /// The revision every cache reflects.
    pub fn revision(&self) -> i64 {
        *self.revision_tx.borrow()
    }

    /// Waits until the caches reflect at least `revision` (asking etcd for a progress
    /// notification when no event would move them), up to `timeout`.
    pub async fn wait_for(&self, revision: i64, timeout: Duration) -> bool {
        let mut rx = self.revision_tx.subscribe();
        if *rx.borrow() >= revision {
            return true;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut asked = false;
        loop {
            let wait = if asked {
                deadline
            } else {
                tokio::time::Instant::now() + Duration::from_millis(5)
            };
            match tokio::time::timeout_at(wait.min(deadline), rx.changed()).await {
                Ok(Ok(())) => {
                    if *rx.borrow() >= revision {
                        return true;
                    }
                }
                Ok(Err(_)) => return false,
                Err(_) => {
                    if tokio::time::Instant::now() >= deadline {
                        return *rx.borrow() >= revision;
                    }
                    if !asked {
                        asked = true;
                        if let Some(w) = self.progress.lock().await.as_mut() {
                            let _ = w.request_progress().await;
                        }
                    }
                }
            }
        }
    }

    async fn load(&self) -> anyhow::Result<i64> {
        let rev = self.storage.current_revision().await?;
        // Writes up to `rev` are covered by this list (the writers still finish theirs).
        self.pending.lock().clear();
        for (plural, caches) in &self.by_plural {
            let page = self
                .storage
                .list_all(&format!("/registry/{plural}/"), rev)
                .await?;
            for c in caches {
                let mut objects = BTreeMap::new();
                for (key, stored) in &page.items {
                    if let Some(o) = CachedObject::decode(
                        c.info,
                        key.clone(),
                        &stored.value,
                        stored.mod_revision,
                    ) {
                        objects.insert(key.clone(), Arc::new(o));
                    }
                }
                c.reset(objects, rev);
            }
        }
        self.revision_tx.send_replace(rev);
        Ok(rev)
    }

    async fn run(self: Arc<Self>, mut rev: i64) {
        loop {
            match self.watch_from(rev).await {
                Ok(()) => tracing::warn!("etcd watch ended; re-listing"),
                Err(e) => tracing::warn!(error = %e, "etcd watch failed; re-listing"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.load().await {
                Ok(r) => rev = r,
                Err(e) => tracing::error!(error = %e, "re-list failed"),
            }
        }
    }

    async fn watch_from(&self, rev: i64) -> anyhow::Result<()> {
        let mut client = self.storage.watch_client();
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(rev + 1)
            .with_progress_notify();
        let (sender, mut stream) = client.watch("/registry/", Some(opts)).await?.split();
        *self.progress.lock().await = Some(sender);
        while let Some(resp) = stream.message().await? {
            if resp.compact_revision() > 0 || resp.canceled() {
                anyhow::bail!("watch compacted or canceled at {}", resp.compact_revision());
            }
            let header_rev = resp.header().map(|h| h.revision()).unwrap_or(0);
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                let Some(plural) = key
                    .strip_prefix("/registry/")
                    .and_then(|r| r.split('/').next())
                else {
                    continue;
                };
                let Some(caches) = self.by_plural.get(plural) else {
                    continue;
                };
                let revision = kv.mod_revision();
                // Encrypted values are decrypted here: the cache holds plaintext.
                let is_put = ev.event_type() == EventType::Put;
                let value = match is_put {
                    true => match self.storage.open(&key, kv.value()) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            tracing::error!(%key, error = %e, "cannot transform the value read from etcd");
                            None
                        }
                    },
                    false => None,
                };
                // A write of this apiserver's own: its object is (being) made already.
                let remembered = match &value {
                    Some(v) if caches.len() == 1 => self
                        .take_write(&key, v)
                        .and_then(|slot| slot.finish(&key, revision)),
                    _ => None,
                };
                // No prev_kv from etcd (it would cost etcd a read per event): the
                // previous state is the cached object, as every event passes through here.
                for c in caches {
                    let prev = c.get(&key);
                    let (kind, object) = match ev.event_type() {
                        EventType::Put => {
                            let object = match &remembered {
                                Some(o) => o.clone(),
                                None => match value.as_deref().and_then(|v| {
                                    CachedObject::decode(c.info, key.clone(), v, revision)
                                }) {
                                    Some(o) => Arc::new(o),
                                    None => continue,
                                },
                            };
                            let kind = if kv.create_revision() == revision {
                                WatchEventType::Added
                            } else {
                                WatchEventType::Modified
                            };
                            (kind, object)
                        }
                        EventType::Delete => {
                            // The last state, stamped with the deletion revision, as upstream sends it.
                            let Some(p) = &prev else { continue };
                            let Some(o) = CachedObject::stamped(&key, p.object(), revision) else {
                                continue;
                            };
                            (WatchEventType::Deleted, Arc::new(o))
                        }
                    };
                    c.apply(CacheEvent {
                        kind,
                        revision,
                        object,
                        prev,
                    });
                }
            }
            // Only after a whole response (or a progress notification) do the caches
            // reflect everything up to its last revision. One revision can hold several
            // events (batched creates share a txn), and etcd never splits a revision
            // across responses: publishing per event would let a consistent list, a
            // bookmark or a closing watch see half of one.
            if resp.events().is_empty() || header_rev > 0 {
                let last_event = resp
                    .events()
                    .last()
                    .and_then(|e| e.kv())
                    .map(|kv| kv.mod_revision())
                    .unwrap_or(0);
                let upto = if resp.events().is_empty() {
                    header_rev
                } else {
                    last_event
                };
                self.revision_tx.send_if_modified(|r| {
                    if upto > *r {
                        *r = upto;
                        true
                    } else {
                        false
                    }
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slot(key: &str, value: Value) -> WriteSlot {
        let (stored, metadata_end) = encode_marking_metadata(&value);
        assert_eq!(
            stored,
            serde_json::to_vec(&value).expect("json"),
            "encodes as serde_json does"
        );
        WriteSlot::new(key, stored, metadata_end, value)
    }

    #[test]
    fn spliced_resource_versions_are_the_bytes_serde_json_writes() {
        // Pods keep their selectable subset parsed, config maps the whole object.
        for plural in ["pods", "configmaps"] {
            let info = api_types::registry::lookup("", "v1", plural).expect(plural);
            let key = format!("/registry/{plural}/d/p");
            let key = key.as_str();
            for obj in [
                json!({"metadata": {}}),
                json!({"metadata": {}, "spec": {}}),
                json!({"kind": "Pod", "metadata": {"name": "p\"q\\\u{1}é", "annotations": {"}": "{,\"resourceVersion\""}}, "spec": {"x": [1, 2.5, null, true]}}),
                json!({"spec": {"metadata": {"a": 1}}, "metadata": {"name": "last"}}),
                json!({"metadata": {"name": "p", "managedFields": [{"manager": "m"}], "labels": {"a": "b"}}, "data": {}}),
                json!({"metadata": "not an object"}),
                json!({"metadata": {"name": "p", "resourceVersion": "7"}, "status": {}}),
            ] {
                let s = slot(key, obj.clone());
                // The parsed part is compared as text: key order included.
                let finished = s.finish(key, 1234567).map(|o| {
                    (
                        serde_json::to_string(&o.selectable).expect("json"),
                        o.bytes.clone(),
                    )
                });
                let expected = CachedObject::stamped(key, obj, 1234567)
                    .map(|o| (serde_json::to_string(&o.selectable).expect("json"), o.bytes));
                assert_eq!(finished, expected);
                if let Some((_, bytes)) = &finished {
                    let decoded = CachedObject::decode(info, key.to_string(), &s.stored, 1234567)
                        .expect("decoded");
                    assert_eq!(bytes, &decoded.bytes);
                }
            }
        }
    }

    #[test]
    fn a_finished_write_is_what_decoding_its_stored_bytes_gives() {
        let pods = api_types::registry::lookup("", "v1", "pods").expect("pods");
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d", "uid": "u1", "labels": {"a": "b"}, "annotations": {"x": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let key = "/registry/pods/d/p";
        let s = slot(key, obj.clone());
        let finished = s.finish(key, 42).expect("finished");
        let decoded = CachedObject::decode(pods, key.to_string(), &s.stored, 42).expect("decoded");
        assert_eq!(finished.selectable, decoded.selectable);
        assert_eq!(finished.bytes, decoded.bytes);
        assert_eq!(finished.object()["metadata"]["resourceVersion"], "42");
        // A pod keeps only its selectable part parsed; the rest is in its bytes.
        assert_eq!(
            finished.selectable,
            json!({"metadata": {"name": "p", "namespace": "d", "labels": {"a": "b"}, "uid": "u1"}})
        );
        assert_eq!(finished.object()["spec"]["containers"][0]["name"], "c");
        assert_eq!(
            finished
                .without_managed_fields()
                .pointer("/spec/containers/0/image"),
            Some(&json!("i"))
        );
        // The watch event and the writer share one object.
        let again = s.finish(key, 42).expect("finished");
        assert!(Arc::ptr_eq(&finished, &again));
        // The same bytes at another revision get their own stamp.
        let other = s.finish(key, 43).expect("finished");
        assert_eq!(other.object()["metadata"]["resourceVersion"], "43");
        assert_eq!(finished.object()["metadata"]["resourceVersion"], "42");
    }
    #[test]
    fn a_failed_write_gives_back_the_object_it_was_handed() {
        let key = "/registry/pods/d/p";
        let obj = json!({"metadata": {"name": "p", "namespace": "d", "labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}});
        // A create's managedFields, appended to `metadata` in the stored bytes only.
        let (bytes, end) = encode_marking_metadata(&obj);
        let end = end.expect("metadata");
        let mut stored = bytes[..end].to_vec();
        stored.extend_from_slice(br#","managedFields":[{"manager":"m"}]"#);
        let spliced_end = stored.len();
        stored.extend_from_slice(&bytes[end..]);
        let s = WriteSlot::new(key, stored, Some(spliced_end), obj.clone());
        assert_eq!(s.into_value(), obj);
        let done = s.finish(key, 9).expect("finished");
        assert_eq!(
            done.object()["metadata"]["managedFields"][0]["manager"],
            "m"
        );
        assert_eq!(done.object()["metadata"]["resourceVersion"], "9");
        assert_eq!(
            done.selectable,
            json!({"metadata": {"name": "p", "namespace": "d", "labels": {"a": "b"}}})
        );
        // Managed fields the object carried itself (an update) come back with it.
        let obj = json!({"metadata": {"name": "q", "managedFields": [{"manager": "m"}]}, "data": {"k": "v"}});
        let (stored, end) = encode_marking_metadata(&obj);
        let s = WriteSlot::new("/registry/configmaps/d/q", stored, end, obj.clone());
        assert_eq!(s.into_value(), obj);
        // A whole object is kept parsed for other kinds, without managed fields and
        // with its resourceVersion.
        let done = s.finish("/registry/configmaps/d/q", 10).expect("finished");
        assert_eq!(
            done.selectable,
            json!({"metadata": {"name": "q", "resourceVersion": "10"}, "data": {"k": "v"}})
        );
    }
}
