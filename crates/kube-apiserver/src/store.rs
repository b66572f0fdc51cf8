//! The generic registry store (upstream's `genericregistry.Store`): create, get, update,
//! patch and delete for any kind in the resource registry, over etcd CAS txns, with
//! defaulting, strategies, admission, validation and managed fields on the way in.

use std::{sync::Arc, time::Duration};

use api_types::{
    meta, patch::PatchType, registry, ApiError, ResourceInfo, StatusCause, Subresource,
};
use chrono::Utc;
use serde_json::{json, Value};

use crate::{
    admission::{Admission, Attributes, Operation},
    allocator::ServiceAllocator,
    cache::WatchCache,
    storage::{Storage, StorageError, Stored},
    strategy,
};

mod delete;
#[cfg(test)]
mod tests;
mod update;

pub use delete::{DeleteOptions, Deleted};

/// How unknown or duplicate fields in a request are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(v: Option<&str>) -> Result<Self, ApiError> {
        match v {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}. Supported values: Ignore, Warn, Strict"
            ))),
        }
    }
}

/// Options common to every write.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: String,
    pub field_validation: FieldValidation,
    /// Server-side apply `force`.
    pub force: bool,
    /// Who writes (admission plugins such as NodeRestriction look at it).
    pub user: Option<crate::authn::UserInfo>,
}

/// A write's result plus warnings to return in `Warning` headers.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
    /// For updates: the object did not exist and was created.
    pub created: bool,
    /// `object` as JSON when the write already encoded it (the response body as is).
    pub encoded: Option<bytes::Bytes>,
}

/// Who owns the fields a write sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The writer, as an `Update` entry (a POST, a PUT, a patch other than apply).
    Writer,
    /// As the object's `managedFields` already say (a server-side apply).
    AsApplied,
}

pub struct Store {
    pub storage: Arc<Storage>,
    pub cache: Arc<WatchCache>,
    pub admission: Admission,
    pub services: ServiceAllocator,
    pub event_ttl: Duration,
}

const MAX_CAS_RETRIES: usize = 16;

fn now_rfc3339() -> String {
    meta::format_time(Utc::now())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

fn decode_stored(info: &ResourceInfo, stored: &Stored) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(&stored.value).map_err(internal)?;
    api_types::conversion::storage_to_external(info, &mut v);
    meta::set_resource_version(&mut v, &stored.mod_revision.to_string());
    Ok(v)
}

/// The stored form: no resourceVersion (it is the etcd revision).
fn encode_for_storage(info: &ResourceInfo, obj: &Value) -> Vec<u8> {
    let mut o = obj.clone();
    api_types::conversion::external_to_storage(info, &mut o);
    strip_unstored(&mut o);
    api_types::json::to_vec(&o)
}

/// Drops what is never stored: `resourceVersion` (the etcd revision) and `selfLink`.
fn strip_unstored(obj: &mut Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.shift_remove("resourceVersion");
        m.shift_remove("selfLink");
    }
}

/// Upstream's `utilrand.String(5)`: generateName suffixes, token volume names.
/// Create attempts for an object with `generateName` whose generated names are taken.
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// A name from `generateName`: the prefix, cut to 58 characters so that the name fits
/// 63, and 5 random characters (upstream's SimpleNameGenerator).
fn generated_name(prefix: &str) -> String {
    const MAX_PREFIX: usize = 63 - 5;
    let cut = prefix
        .char_indices()
        .nth(MAX_PREFIX)
        .map_or(prefix.len(), |(i, _)| i);
    format!("{}{}", &prefix[..cut], random_suffix())
}

#[cfg(test)]
thread_local! {
    /// Suffixes `random_suffix` hands out before random ones, so that a test can make
    /// generated names collide.
    static NEXT_SUFFIXES: std::cell::RefCell<std::collections::VecDeque<String>> =
        Default::default();
}

pub(crate) fn random_suffix() -> String {
    #[cfg(test)]
    if let Some(s) = NEXT_SUFFIXES.with(|q| q.borrow_mut().pop_front()) {
        return s;
    }
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn conflict(info: &ResourceInfo, name: &str) -> ApiError {
    ApiError::conflict(
        info.group,
        &info.qualified_plural(),
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
    )
}

impl Store {
    fn ttl(&self, info: &ResourceInfo) -> Option<Duration> {
        info.ttl.then_some(self.event_ttl)
    }

    /// The bytes to store for `obj` under `key`, and the write in flight. Without a
    /// conversion between the served and the stored form (see
    /// [`WatchCache::single_view`]) `obj` itself is encoded (after dropping
    /// `resourceVersion` and `selfLink` from it) and handed to the watch cache, whose
    /// event for this write then shares the served object instead of decoding it.
    /// `managed_fields`, a create's `managedFields` value as JSON bytes (single-view
    /// kinds only), goes in as the last field of `metadata`: the bytes serializing
    /// `obj` with it appended there would give.
    fn prepare_write<'a>(
        &'a self,
        info: &'static ResourceInfo,
        key: &'a str,
        mut obj: Value,
        managed_fields: Option<&[u8]>,
    ) -> Result<(Vec<u8>, PendingWrite<'a>), ApiError> {
        if !self.cache.single_view(info) {
            debug_assert!(
                managed_fields.is_none(),
                "spliced managedFields need a single-view kind"
            );
            let bytes = encode_for_storage(info, &obj);
            return Ok((
                bytes,
                PendingWrite {
                    cache: &self.cache,
                    key,
                    slot: None,
                    plain: Some(obj),
                },
            ));
        }
        strip_unstored(&mut obj);
        let (mut bytes, mut metadata_end) = crate::cache::encode_marking_metadata(&obj);
        if let Some(mf) = managed_fields {
            let end = metadata_end
                .ok_or_else(|| ApiError::internal("a created object without metadata"))?;
            // One copy into a buffer of the final size (a `splice` of the inserted
            // bytes moves them one at a time).
            let comma = bytes.get(end.wrapping_sub(1)) != Some(&b'{');
            let mut spliced = Vec::with_capacity(bytes.len() + mf.len() + 20);
            spliced.extend_from_slice(&bytes[..end]);
            if comma {
                spliced.push(b',');
            }
            spliced.extend_from_slice(br#""managedFields":"#);
            spliced.extend_from_slice(mf);
            metadata_end = Some(spliced.len());
            spliced.extend_from_slice(&bytes[end..]);
            bytes = spliced;
        }
        let slot = self
            .cache
            .expect_write(key, bytes.clone(), metadata_end, obj);
        Ok((
            bytes,
            PendingWrite {
                cache: &self.cache,
                key,
                slot: Some(slot),
                plain: None,
            },
        ))
    }

    /// Checks `apiVersion`/`kind` of a body against the URL's resource (setting them
    /// when absent) and the namespace against the URL's.
    pub fn check_type_and_namespace(
        info: &ResourceInfo,
        obj: &mut Value,
        namespace: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        };
        let want_av = info.api_version();
        match map.get("apiVersion").and_then(Value::as_str) {
            Some(av) if av != want_av => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({want_av})"
                )))
            }
            Some(_) => {}
            None => {
                map.insert("apiVersion".into(), json!(want_av));
            }
        }
        match map.get("kind").and_then(Value::as_str) {
            Some(k) if k != info.kind => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    info.kind
                )))
            }
            Some(_) => {}
            None => {
                map.insert("kind".into(), json!(info.kind));
            }
        }
        if let Some(v) = map.get("metadata") {
            if !v.is_object() && !v.is_null() {
                return Err(ApiError::bad_request("metadata must be an object"));
            }
        }
        let body_ns = meta::namespace(obj).map(str::to_string);
        if info.namespaced {
            match (namespace, body_ns.as_deref()) {
                (Some(url), Some(b)) if !b.is_empty() && b != url => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                (Some(url), _) => meta::set_namespace(obj, url),
                (None, _) => {}
            }
        } else if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            if m.get("namespace")
                .and_then(Value::as_str)
                .is_some_and(str::is_empty)
            {
                m.remove("namespace");
            }
        }
        Ok(())
    }

    /// Strict/Warn field validation: unknown fields become errors or warnings.
    fn check_fields(
        info: &ResourceInfo,
        obj: &Value,
        mode: FieldValidation,
    ) -> Result<Vec<String>, ApiError> {
        if mode == FieldValidation::Ignore {
            return Ok(Vec::new());
        }
        match api_types::strict::check_fields(info, obj) {
            Ok(unknown) if unknown.is_empty() => Ok(Vec::new()),
            Ok(unknown) => {
                let msgs: Vec<String> = unknown
                    .iter()
                    .map(|p| format!("unknown field \"{p}\""))
                    .collect();
                if mode == FieldValidation::Strict {
                    Err(ApiError::bad_request(format!(
                        "strict decoding error: {}",
                        msgs.join(", ")
                    )))
                } else {
                    Ok(msgs)
                }
            }
            Err(msg) => Err(ApiError::bad_request(msg)),
        }
    }

    fn validate_create(info: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
        let causes = api_types::validation::validate_create(info, obj);
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                info.group,
                info.kind,
                meta::name(obj).unwrap_or(""),
                causes,
            ))
        }
    }

    fn validate_update(info: &ResourceInfo, new: &Value, old: &Value) -> Result<(), ApiError> {
        let causes = api_types::validation::validate_update(info, new, old);
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                info.group,
                info.kind,
                meta::name(new).unwrap_or(""),
                causes,
            ))
        }
    }

    /// POST: creates a new object.
    pub async fn create(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        self.create_inner(info, namespace, obj, opts, true, Ownership::Writer)
            .await
    }

    /// POST as the handler needs it: `Written::encoded` carries the answer and, when it
    /// does, `Written::object` is left `null` (saves copying the object).
    pub async fn create_for_response(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        self.create_inner(info, namespace, obj, opts, false, Ownership::Writer)
            .await
    }

    /// Gives the writer of a create every field `obj` has now, as one `Update` entry.
    /// The usual create gets that entry as JSON, spliced straight into the written
    /// bytes (the object itself never holds it: the cache would drop it); otherwise it
    /// is set in `obj`.
    fn writer_owns(
        &self,
        info: &'static ResourceInfo,
        obj: &mut Value,
        opts: &WriteOptions,
        now: &str,
    ) -> Option<Option<Vec<u8>>> {
        let spliced = match opts.dry_run || !self.cache.single_view(info) {
            true => None,
            false => api_types::apply::created_managed_fields_json(
                info,
                obj,
                &opts.field_manager,
                "Update",
                now,
                None,
            )
            .ok(),
        };
        if spliced.is_none() {
            api_types::apply::update_managed_fields(
                info,
                None,
                obj,
                &opts.field_manager,
                "Update",
                now,
                None,
            );
        }
        spliced
    }

    async fn create_inner(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
        want_object: bool,
        ownership: Ownership,
    ) -> Result<Written, ApiError> {
        Self::check_type_and_namespace(info, &mut obj, namespace)?;
        if meta::resource_version(&obj).is_some_and(|rv| !rv.is_empty()) {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let warnings = Self::check_fields(info, &obj, opts.field_validation)?;
        let generated = meta::name(&obj).is_none_or(str::is_empty);
        if generated {
            match meta::generate_name(&obj) {
                Some(prefix) if !prefix.is_empty() => {
                    let name = generated_name(prefix);
                    meta::set_name(&mut obj, &name);
                }
                _ => {
                    return Err(ApiError::invalid(
                        info.group,
                        info.kind,
                        "",
                        vec![StatusCause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    ))
                }
            }
        }
        let name = meta::name(&obj).unwrap_or_default().to_string();
        api_types::defaults::apply_defaults(info, &mut obj);
        let now = now_rfc3339();
        // The writer's fields are recorded here, after defaulting and before admission
        // and the create strategy, as upstream's create handler does: what a mutating
        // admission plugin (default tolerations, a LimitRange's requests) or the server
        // (a Service's cluster IP, a Job's selector) fills in is nobody's.
        let spliced = match ownership {
            Ownership::AsApplied => None,
            Ownership::Writer => self.writer_owns(info, &mut obj, opts, &now),
        };
        let attrs = Attributes {
            operation: Operation::Create,
            info,
            namespace,
            name: &name,
            subresource: None,
            dry_run: opts.dry_run,
            user: opts.user.as_ref(),
        };
        self.admission.admit(&attrs, &mut obj, None).await?;
        strategy::prepare_for_create(info, &mut obj, &uuid::Uuid::new_v4().to_string(), &now);
        crate::certificates::on_create(info, &mut obj, opts.user.as_ref())?;
        if info.kind == "Job" {
            api_types::defaults::generate_job_selector(&mut obj);
        }
        Self::validate_create(info, &obj)?;
        let mut warnings = warnings;
        warnings.extend(self.admission.validate(&attrs, &obj, None).await?);
        if info.kind == "Service" {
            self.services.allocate(&mut obj, opts.dry_run).await?;
        }
        if opts.dry_run {
            return Ok(Written {
                object: obj,
                warnings,
                created: true,
                encoded: None,
            });
        }
        let mut name = name;
        // A generated name that is taken gets another, up to 8 attempts in all
        // (upstream's RetryGenerateName).
        let mut attempts_left = if generated {
            GENERATE_NAME_ATTEMPTS - 1
        } else {
            0
        };
        loop {
            let key = info.key(namespace, &name);
            let managed_fields = spliced.as_ref().and_then(|m| m.as_deref());
            let (bytes, pending) = self.prepare_write(info, &key, obj, managed_fields)?;
            let err = match self.storage.create(&key, bytes, self.ttl(info)).await {
                Ok(rev) => {
                    let (object, encoded) = pending.succeeded(rev, want_object)?;
                    return Ok(Written {
                        object,
                        warnings,
                        created: true,
                        encoded,
                    });
                }
                Err(e) => e,
            };
            obj = pending.failed();
            match err {
                StorageError::AlreadyExists if attempts_left > 0 => {
                    attempts_left -= 1;
                    let prefix = meta::generate_name(&obj).unwrap_or_default().to_string();
                    name = generated_name(&prefix);
                    meta::set_name(&mut obj, &name);
                }
                StorageError::AlreadyExists => {
                    if info.kind == "Service" {
                        self.services.release(&obj).await;
                    }
                    return Err(ApiError::already_exists(
                        info.group,
                        &info.qualified_plural(),
                        &name,
                    ));
                }
                other => {
                    if info.kind == "Service" {
                        self.services.release(&obj).await;
                    }
                    return Err(internal(other));
                }
            }
        }
    }

    /// GET of one object (a consistent read from etcd).
    pub async fn get(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let key = info.key(namespace, name);
        decode_stored(info, &self.read(info, &key, name).await?)
    }

    /// The stored object `name` under `key` (a consistent read from etcd), or 404.
    pub(super) async fn read(
        &self,
        info: &ResourceInfo,
        key: &str,
        name: &str,
    ) -> Result<Stored, ApiError> {
        match self.storage.get(key).await.map_err(internal)? {
            Some(s) => Ok(s),
            None => Err(ApiError::not_found(
                info.group,
                &info.qualified_plural(),
                name,
            )),
        }
    }
}

/// A failed CAS write of `name`: `None` when the object changed since it was read
/// (the caller reads it again and retries), else the error to answer with.
fn cas_failure(info: &ResourceInfo, name: &str, err: StorageError) -> Option<ApiError> {
    match err {
        StorageError::Conflict(_) => None,
        StorageError::NotFound => Some(ApiError::not_found(
            info.group,
            &info.qualified_plural(),
            name,
        )),
        other => Some(internal(other)),
    }
}

/// Kinds whose PUT creates a missing object (upstream `AllowCreateOnUpdate`).
fn allows_create_on_update(info: &ResourceInfo) -> bool {
    matches!(info.kind, "Endpoints" | "Event")
}

/// Equal apart from managedFields timestamps.
fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.shift_remove("resourceVersion");
            // Only the times of the managedFields entries do not count (upstream's
            // IgnoreManagedFieldsTimestampsTransformer): a request that changes the
            // entries themselves (kubectl moving client-side apply's fields to
            // server-side apply) changes the object.
            if let Some(entries) = m.get_mut("managedFields").and_then(Value::as_array_mut) {
                for e in entries.iter_mut().filter_map(Value::as_object_mut) {
                    e.shift_remove("time");
                }
            }
        }
        v
    };
    strip(a) == strip(b)
}

/// A resource looked up by URL parts, with a 404 naming the resource when unknown.
pub fn resource_or_404(
    group: &str,
    version: &str,
    plural: &str,
) -> Result<&'static ResourceInfo, ApiError> {
    registry::lookup(group, version, plural).ok_or_else(|| {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(group, plural, "")
    })
}

impl Store {
    /// Read-modify-write that bypasses the strategies and validation, for
    /// server-internal subresources such as `pods/binding`. `mutate` returns None to
    /// leave the object as it is.
    pub async fn update_raw<F>(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        mut mutate: F,
    ) -> Result<Value, ApiError>
    where
        F: FnMut(&Value) -> Result<Option<Value>, ApiError>,
    {
        let key = info.key(namespace, name);
        for _ in 0..MAX_CAS_RETRIES {
            let current = self.read(info, &key, name).await?;
            let old = decode_stored(info, &current)?;
            let Some(mut obj) = mutate(&old)? else {
                return Ok(old);
            };
            if self
                .put_if_unchanged(info, &key, name, &mut obj, current.mod_revision)
                .await?
            {
                return Ok(obj);
            }
        }
        Err(conflict(info, name))
    }

    /// Writes `obj` under `key` if the stored object is still at `expected`, and sets
    /// the write's `resourceVersion` on it: true when written, false when the object
    /// changed meanwhile (the caller reads it again and retries).
    pub(super) async fn put_if_unchanged(
        &self,
        info: &ResourceInfo,
        key: &str,
        name: &str,
        obj: &mut Value,
        expected: i64,
    ) -> Result<bool, ApiError> {
        let bytes = encode_for_storage(info, obj);
        match self
            .storage
            .update(key, bytes, expected, self.ttl(info))
            .await
        {
            Ok(rev) => {
                meta::set_resource_version(obj, &rev.to_string());
                Ok(true)
            }
            Err(e) => match cas_failure(info, name, e) {
                None => Ok(false),
                Some(err) => Err(err),
            },
        }
    }
}

/// A write in flight (see [`Store::prepare_write`]). Dropped unfinished (the write
/// failed, or the request went away), it withdraws the object from the watch cache.
struct PendingWrite<'a> {
    cache: &'a WatchCache,
    key: &'a str,
    slot: Option<Arc<crate::cache::WriteSlot>>,
    plain: Option<Value>,
}

impl PendingWrite<'_> {
    /// The written object stamped with `revision`, and its JSON when the watch cache
    /// shares it (then the object is `null` unless `want_object`).
    fn succeeded(
        mut self,
        revision: i64,
        want_object: bool,
    ) -> Result<(Value, Option<bytes::Bytes>), ApiError> {
        if let Some(mut obj) = self.plain.take() {
            meta::set_resource_version(&mut obj, &revision.to_string());
            return Ok((obj, None));
        }
        let slot = self
            .slot
            .take()
            .ok_or_else(|| ApiError::internal("write finished twice"))?;
        let done = slot
            .finish(self.key, revision)
            .ok_or_else(|| ApiError::internal("encoding the written object"))?;
        let object = if want_object {
            done.object()
        } else {
            Value::Null
        };
        Ok((object, Some(done.bytes.clone())))
    }

    /// The object of a write that did not happen.
    fn failed(mut self) -> Value {
        if let Some(obj) = self.plain.take() {
            return obj;
        }
        match self.slot.take() {
            Some(slot) => {
                self.cache.forget_write(self.key, &slot);
                slot.into_value()
            }
            None => Value::Null,
        }
    }
}

impl Drop for PendingWrite<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.cache.forget_write(self.key, &slot);
        }
    }
}
