//! PUT and PATCH: read-modify-write over a CAS txn, retried on conflict, with the
//! update strategies, admission and validation on the way in.

use super::*;

impl Store {
    /// Read-modify-write with CAS retries. `mutate` gets the current object (None if
    /// absent) and returns the desired one; `precondition_rv` pins the revision the
    /// client saw (no retry then: a mismatch is a 409). A missing object is a 404
    /// unless `allow_create`. `ownership` says whether the writer is recorded as an
    /// `Update` manager of what it changed, or `mutate` (a server-side apply) already
    /// wrote the object's `managedFields`.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_with<F>(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        opts: &WriteOptions,
        allow_create: bool,
        ownership: Ownership,
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
                // A server-side apply creates with its own `managedFields` (no `Update`
                // entry for the rest).
                match self
                    .create_inner(info, namespace, obj, opts, true, ownership)
                    .await
                {
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
            if ownership == Ownership::Writer {
                api_types::apply::update_managed_fields(
                    info,
                    Some(&old),
                    &mut obj,
                    &opts.field_manager,
                    "Update",
                    &now_rfc3339(),
                    sub.map(|s| s.name()),
                );
            }
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
        self.update_with(
            info,
            namespace,
            name,
            sub,
            opts,
            allow_create,
            Ownership::Writer,
            |_| Ok(body.clone()),
        )
        .await
    }

    /// A write through the scale subresource (PUT or PATCH): `scaled` maps the stored
    /// object to the scaled one. A scale write never creates.
    pub async fn update_scale(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        opts: &WriteOptions,
        mut scaled: impl FnMut(&Value) -> Result<Value, ApiError>,
    ) -> Result<Written, ApiError> {
        self.update_with(
            info,
            namespace,
            name,
            Some(Subresource::Scale),
            opts,
            false,
            Ownership::Writer,
            |cur| {
                let cur = cur.ok_or_else(|| {
                    ApiError::not_found(info.group, &info.qualified_plural(), name)
                })?;
                scaled(cur)
            },
        )
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
        // An apply to a missing object creates it. Either way the apply itself records
        // who owns what (its `Apply` entry); other patches make the writer an `Update`
        // manager of what they change.
        let (allow_create, ownership) = match patch_type {
            PatchType::Apply => (sub.is_none(), Ownership::AsApplied),
            _ => (false, Ownership::Writer),
        };
        self.update_with(
            info,
            namespace,
            name,
            sub,
            opts,
            allow_create,
            ownership,
            |current| {
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
                        if let Some(m) = patched.get_mut("metadata").and_then(Value::as_object_mut)
                        {
                            m.shift_remove("resourceVersion");
                        }
                    }
                }
                Ok(patched)
            },
        )
        .await
    }
}
