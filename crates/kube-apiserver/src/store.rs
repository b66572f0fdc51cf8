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

/// `DeleteOptions` as sent by clients.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
    /// Who deletes.
    pub user: Option<crate::authn::UserInfo>,
}

impl DeleteOptions {
    /// Merges the JSON body (`DeleteOptions`) over query parameters.
    pub fn merge_body(&mut self, body: &Value) {
        if let Some(g) = body.get("gracePeriodSeconds").and_then(Value::as_i64) {
            self.grace_period_seconds = Some(g);
        }
        if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation_policy = Some(p.to_string());
        }
        if let Some(o) = body.get("orphanDependents").and_then(Value::as_bool) {
            self.orphan_dependents = Some(o);
        }
        if let Some(u) = body.pointer("/preconditions/uid").and_then(Value::as_str) {
            self.precondition_uid = Some(u.to_string());
        }
        if let Some(r) = body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            self.precondition_resource_version = Some(r.to_string());
        }
        if let Some(d) = body.get("dryRun").and_then(Value::as_array) {
            self.dry_run |= d.iter().any(|v| v == "All");
        }
    }
}

/// Result of a delete: the last state and whether it is gone already.
#[derive(Debug)]
pub struct Deleted {
    pub object: Value,
    pub deleted_now: bool,
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
fn encode_for_storage(info: &ResourceInfo, obj: &Value) -> Result<Vec<u8>, ApiError> {
    let mut o = obj.clone();
    api_types::conversion::external_to_storage(info, &mut o);
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.shift_remove("resourceVersion");
        m.remove("selfLink");
    }
    serde_json::to_vec(&o).map_err(internal)
}

/// Upstream's `utilrand.String(5)`: generateName suffixes, token volume names.
pub(crate) fn random_suffix() -> String {
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
            let bytes = encode_for_storage(info, &obj)?;
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
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.shift_remove("resourceVersion");
            m.shift_remove("selfLink");
        }
        let (mut bytes, mut metadata_end) =
            crate::cache::encode_marking_metadata(&obj).map_err(internal)?;
        if let Some(mf) = managed_fields {
            let end = metadata_end
                .ok_or_else(|| ApiError::internal("a created object without metadata"))?;
            let mut insert = Vec::with_capacity(mf.len() + 20);
            if bytes.get(end.wrapping_sub(1)) != Some(&b'{') {
                insert.push(b',');
            }
            insert.extend_from_slice(br#""managedFields":"#);
            insert.extend_from_slice(mf);
            bytes.splice(end..end, insert.iter().copied());
            metadata_end = Some(end + insert.len());
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
        self.create_inner(info, namespace, obj, opts, true).await
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
        self.create_inner(info, namespace, obj, opts, false).await
    }

    async fn create_inner(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
        want_object: bool,
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
                    let name = format!("{prefix}{}", random_suffix());
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
        let now = now_rfc3339();
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
        let key = info.key(namespace, &name);
        // The usual create: its one managedFields entry is encoded straight into the
        // written bytes; the object itself never holds it (the cache would drop it).
        let spliced = match opts.dry_run || !self.cache.single_view(info) {
            true => None,
            false => api_types::apply::created_managed_fields_json(
                info,
                &obj,
                &opts.field_manager,
                "Update",
                &now,
                None,
            )
            .ok(),
        };
        let (bytes, pending) = match spliced {
            Some(managed_fields) => {
                self.prepare_write(info, &key, obj, managed_fields.as_deref())?
            }
            None => {
                api_types::apply::update_managed_fields(
                    info,
                    None,
                    &mut obj,
                    &opts.field_manager,
                    "Update",
                    &now,
                    None,
                );
                if opts.dry_run {
                    return Ok(Written {
                        object: obj,
                        warnings,
                        created: true,
                        encoded: None,
                    });
                }
                self.prepare_write(info, &key, obj, None)?
            }
        };
        match self.storage.create(&key, bytes, self.ttl(info)).await {
            Ok(rev) => {
                let (object, encoded) = pending.succeeded(rev, want_object)?;
                Ok(Written {
                    object,
                    warnings,
                    created: true,
                    encoded,
                })
            }
            Err(e) => {
                let obj = pending.failed();
                if info.kind == "Service" {
                    self.services.release(&obj).await;
                }
                match e {
                    StorageError::AlreadyExists => Err(ApiError::already_exists(
                        info.group,
                        &info.qualified_plural(),
                        &name,
                    )),
                    other => Err(internal(other)),
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
        match self.storage.get(&key).await.map_err(internal)? {
            Some(s) => decode_stored(info, &s),
            None => Err(ApiError::not_found(
                info.group,
                &info.qualified_plural(),
                name,
            )),
        }
    }

    /// Read-modify-write with CAS retries. `mutate` gets the current object (None if
    /// absent) and returns the desired one; `precondition_rv` pins the revision the
    /// client saw (no retry then: a mismatch is a 409).
    #[allow(clippy::too_many_arguments)]
    pub async fn update_with<F>(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        opts: &WriteOptions,
        allow_create: bool,
        mut mutate: F,
    ) -> Result<Written, ApiError>
    where
        F: FnMut(Option<&Value>) -> Result<Value, ApiError>,
    {
        let key = info.key(namespace, name);
        for _ in 0..MAX_CAS_RETRIES {
            let current = self.storage.get(&key).await.map_err(internal)?;
            let Some(current) = current else {
                if !allow_create {
                    return Err(ApiError::not_found(
                        info.group,
                        &info.qualified_plural(),
                        name,
                    ));
                }
                let mut obj = mutate(None)?;
                if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.shift_remove("resourceVersion");
                }
                meta::set_name(&mut obj, name);
                match self.create(info, namespace, obj, opts).await {
                    Err(e) if e.reason == "AlreadyExists" => continue,
                    other => return other,
                }
            };
            let old = decode_stored(info, &current)?;
            let mut new = mutate(Some(&old))?;
            Self::check_type_and_namespace(info, &mut new, namespace)?;
            if meta::name(&new).is_some_and(|n| n != name) {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&new).unwrap_or_default()
                )));
            }
            meta::set_name(&mut new, name);
            let precondition = meta::resource_version(&new)
                .filter(|rv| !rv.is_empty())
                .map(str::to_string);
            if let Some(rv) = &precondition {
                if rv != &current.mod_revision.to_string() {
                    return Err(conflict(info, name));
                }
            }
            let warnings = Self::check_fields(info, &new, opts.field_validation)?;
            api_types::defaults::apply_defaults(info, &mut new);
            let mut obj = strategy::prepare_for_update(info, new, &old, sub);
            let attrs = Attributes {
                operation: Operation::Update,
                info,
                namespace,
                name,
                subresource: sub,
                dry_run: opts.dry_run,
                user: opts.user.as_ref(),
            };
            self.admission.admit(&attrs, &mut obj, Some(&old)).await?;
            Self::validate_update(info, &obj, &old)?;
            crate::certificates::validate_update(info, &obj, &old, sub)?;
            let mut warnings = warnings;
            warnings.extend(self.admission.validate(&attrs, &obj, Some(&old)).await?);
            if info.kind == "Service" && sub.is_none() {
                self.services.update(&mut obj, &old, opts.dry_run).await?;
            }
            let now = now_rfc3339();
            api_types::apply::update_managed_fields(
                info,
                Some(&old),
                &mut obj,
                &opts.field_manager,
                "Update",
                &now,
                sub.map(|s| s.name()),
            );
            meta::set_resource_version(&mut obj, &current.mod_revision.to_string());
            if same_object(&obj, &old) {
                // A no-op update is not written, as upstream.
                return Ok(Written {
                    object: old,
                    warnings,
                    created: false,
                    encoded: None,
                });
            }
            if opts.dry_run {
                return Ok(Written {
                    object: obj,
                    warnings,
                    created: false,
                    encoded: None,
                });
            }
            // The last finalizer removed from a deleting object: it goes away now.
            if meta::deletion_timestamp(&obj).is_some()
                && meta::finalizers(&obj).is_empty()
                && obj
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    == 0
            {
                return match self.storage.delete(&key, current.mod_revision).await {
                    Ok(rev) => {
                        meta::set_resource_version(&mut obj, &rev.to_string());
                        self.after_delete(info, &obj).await;
                        Ok(Written {
                            object: obj,
                            warnings,
                            created: false,
                            encoded: None,
                        })
                    }
                    Err(StorageError::Conflict(_)) if precondition.is_none() => continue,
                    Err(StorageError::Conflict(_)) => Err(conflict(info, name)),
                    Err(StorageError::NotFound) => Err(ApiError::not_found(
                        info.group,
                        &info.qualified_plural(),
                        name,
                    )),
                    Err(e) => Err(internal(e)),
                };
            }
            let (bytes, pending) = self.prepare_write(info, &key, obj, None)?;
            let result = self
                .storage
                .update(&key, bytes, current.mod_revision, self.ttl(info))
                .await;
            let error = match result {
                Ok(rev) => {
                    let (object, encoded) = pending.succeeded(rev, true)?;
                    return Ok(Written {
                        object,
                        warnings,
                        created: false,
                        encoded,
                    });
                }
                Err(e) => e,
            };
            let obj = pending.failed();
            if info.kind == "Service" && sub.is_none() {
                // Undo this attempt's allocation changes (the update from `obj` back to
                // `old` releases what was added and re-takes what was released).
                let mut revert = old.clone();
                if let Err(e) = self.services.update(&mut revert, &obj, false).await {
                    tracing::warn!(error = %e.message, "reverting service allocations after a failed update");
                }
            }
            match error {
                StorageError::Conflict(_) if precondition.is_none() => continue,
                StorageError::Conflict(_) => return Err(conflict(info, name)),
                StorageError::NotFound => {
                    return Err(ApiError::not_found(
                        info.group,
                        &info.qualified_plural(),
                        name,
                    ))
                }
                e => return Err(internal(e)),
            }
        }
        Err(conflict(info, name))
    }

    /// PUT of the main resource or a subresource.
    pub async fn update(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let allow_create = sub.is_none() && allows_create_on_update(info);
        self.update_with(info, namespace, name, sub, opts, allow_create, |_| {
            Ok(body.clone())
        })
        .await
    }

    /// PATCH of the main resource or a subresource.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        patch_type: PatchType,
        patch: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let now = now_rfc3339();
        let allow_create = patch_type == PatchType::Apply && sub.is_none();
        self.update_with(info, namespace, name, sub, opts, allow_create, |current| {
            if patch_type == PatchType::Apply {
                let mut applied = patch.clone();
                Self::check_type_and_namespace(info, &mut applied, namespace)?;
                return api_types::apply::server_side_apply(
                    info,
                    current,
                    &applied,
                    &opts.field_manager,
                    opts.force,
                    &now,
                    sub.map(|s| s.name()),
                );
            }
            let Some(current) = current else {
                return Err(ApiError::not_found(
                    info.group,
                    &info.qualified_plural(),
                    name,
                ));
            };
            let mut patched = api_types::patch::apply_patch(info, current, patch_type, &patch)?;
            // Without an explicit resourceVersion in the patch, the patch applies to
            // whatever is current (the CAS loop retries on races).
            let patch_rv = patch
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            match patch_rv {
                Some(rv) => meta::set_resource_version(&mut patched, &rv),
                None => {
                    if let Some(m) = patched.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.shift_remove("resourceVersion");
                    }
                }
            }
            Ok(patched)
        })
        .await
    }

    /// DELETE of one object, graceful for pods and objects with finalizers.
    pub async fn delete(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let key = info.key(namespace, name);
        for _ in 0..MAX_CAS_RETRIES {
            let Some(current) = self.storage.get(&key).await.map_err(internal)? else {
                return Err(ApiError::not_found(
                    info.group,
                    &info.qualified_plural(),
                    name,
                ));
            };
            let mut obj = decode_stored(info, &current)?;
            if let Some(uid) = &opts.precondition_uid {
                if meta::uid(&obj) != Some(uid.as_str()) {
                    return Err(ApiError::conflict(
                        info.group,
                        &info.qualified_plural(),
                        name,
                        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta::uid(&obj).unwrap_or("")),
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_resource_version {
                if rv != &current.mod_revision.to_string() {
                    return Err(ApiError::conflict(
                        info.group,
                        &info.qualified_plural(),
                        name,
                        &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", current.mod_revision),
                    ));
                }
            }
            let attrs = Attributes {
                operation: Operation::Delete,
                info,
                namespace,
                name,
                subresource: None,
                dry_run: opts.dry_run,
                user: opts.user.as_ref(),
            };
            self.admission.admit(&attrs, &mut obj, None).await?;

            let grace = self.grace_period(info, &obj, opts);
            let mut finalizers = meta::finalizers(&obj);
            let policy = opts
                .propagation_policy
                .as_deref()
                .or(match opts.orphan_dependents {
                    Some(true) => Some("Orphan"),
                    _ => None,
                });
            match policy {
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                    finalizers.push("foregroundDeletion".into())
                }
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                    finalizers.push("orphan".into())
                }
                Some("Foreground") | Some("Orphan") | Some("Background") | None => {}
                Some(other) => {
                    return Err(ApiError::invalid(
                        "meta.k8s.io",
                        "DeleteOptions",
                        "",
                        vec![StatusCause::not_supported(
                            "propagationPolicy",
                            &json!(other),
                            &["Foreground", "Background", "Orphan", "nil"],
                        )],
                    ))
                }
            }
            let is_namespace = info.kind == "Namespace";
            let graceful = grace.is_some_and(|g| g > 0);
            if is_namespace || !finalizers.is_empty() || graceful {
                // Mark for deletion; the owner of the finalizer (or the kubelet) finishes it.
                let already = meta::deletion_timestamp(&obj).is_some();
                let existing_grace = obj
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64);
                let new_grace = grace.unwrap_or(0);
                let mut changed = meta::finalizers(&obj) != finalizers;
                {
                    let m = meta::meta_mut(&mut obj);
                    if !already || existing_grace.is_some_and(|g| new_grace < g) {
                        let when = Utc::now() + chrono::Duration::seconds(new_grace);
                        m.insert("deletionTimestamp".into(), json!(meta::format_time(when)));
                        m.insert("deletionGracePeriodSeconds".into(), json!(new_grace));
                        changed = true;
                    }
                    m.insert("finalizers".into(), json!(finalizers));
                    if finalizers.is_empty() {
                        m.remove("finalizers");
                    }
                }
                if is_namespace
                    && obj.pointer("/status/phase").and_then(Value::as_str) != Some("Terminating")
                {
                    if let Some(o) = obj.as_object_mut() {
                        o.insert("status".into(), json!({"phase": "Terminating"}));
                    }
                    changed = true;
                }
                // A namespace with no finalizers left (spec or metadata) goes at once.
                let spec_finalizers_empty = obj
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_none_or(|a| a.is_empty());
                let pending =
                    !finalizers.is_empty() || graceful || (is_namespace && !spec_finalizers_empty);
                if pending {
                    if opts.dry_run || !changed {
                        return Ok(Deleted {
                            object: obj,
                            deleted_now: false,
                        });
                    }
                    let bytes = encode_for_storage(info, &obj)?;
                    match self
                        .storage
                        .update(&key, bytes, current.mod_revision, self.ttl(info))
                        .await
                    {
                        Ok(rev) => {
                            meta::set_resource_version(&mut obj, &rev.to_string());
                            return Ok(Deleted {
                                object: obj,
                                deleted_now: false,
                            });
                        }
                        Err(StorageError::Conflict(_)) => continue,
                        Err(StorageError::NotFound) => {
                            return Err(ApiError::not_found(
                                info.group,
                                &info.qualified_plural(),
                                name,
                            ))
                        }
                        Err(e) => return Err(internal(e)),
                    }
                }
            }
            if opts.dry_run {
                return Ok(Deleted {
                    object: obj,
                    deleted_now: true,
                });
            }
            match self.storage.delete(&key, current.mod_revision).await {
                Ok(rev) => {
                    meta::set_resource_version(&mut obj, &rev.to_string());
                    self.after_delete(info, &obj).await;
                    return Ok(Deleted {
                        object: obj,
                        deleted_now: true,
                    });
                }
                Err(StorageError::Conflict(_)) => continue,
                Err(StorageError::NotFound) => {
                    return Err(ApiError::not_found(
                        info.group,
                        &info.qualified_plural(),
                        name,
                    ))
                }
                Err(e) => return Err(internal(e)),
            }
        }
        Err(conflict(info, name))
    }

    async fn after_delete(&self, info: &ResourceInfo, obj: &Value) {
        if info.kind == "Service" {
            self.services.release(obj).await;
        }
    }

    /// The grace period a delete uses (pods only; None for immediate deletion).
    fn grace_period(&self, info: &ResourceInfo, obj: &Value, opts: &DeleteOptions) -> Option<i64> {
        if info.kind != "Pod" {
            return None;
        }
        // Unscheduled or finished pods go at once, as upstream's pod strategy.
        let scheduled = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !scheduled || phase == "Succeeded" || phase == "Failed" {
            return Some(0);
        }
        let g = opts
            .grace_period_seconds
            .or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30);
        // An explicit 0 without force is raised to 1 by kubectl; the server honours 0.
        Some(g.max(0))
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
            m.shift_remove("managedFields");
            m.shift_remove("resourceVersion");
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
            let Some(current) = self.storage.get(&key).await.map_err(internal)? else {
                return Err(ApiError::not_found(
                    info.group,
                    &info.qualified_plural(),
                    name,
                ));
            };
            let old = decode_stored(info, &current)?;
            let Some(mut obj) = mutate(&old)? else {
                return Ok(old);
            };
            let bytes = encode_for_storage(info, &obj)?;
            match self
                .storage
                .update(&key, bytes, current.mod_revision, self.ttl(info))
                .await
            {
                Ok(rev) => {
                    meta::set_resource_version(&mut obj, &rev.to_string());
                    return Ok(obj);
                }
                Err(StorageError::Conflict(_)) => continue,
                Err(StorageError::NotFound) => {
                    return Err(ApiError::not_found(
                        info.group,
                        &info.qualified_plural(),
                        name,
                    ))
                }
                Err(e) => return Err(internal(e)),
            }
        }
        Err(conflict(info, name))
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
