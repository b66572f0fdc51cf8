//! DELETE: preconditions, graceful pod deletion (`deletionTimestamp`, 202),
//! finalizers, and the delete txn.

use super::*;

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

impl Store {
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
            let current = self.read(info, &key, name).await?;
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
                    if self
                        .put_if_unchanged(info, &key, name, &mut obj, current.mod_revision)
                        .await?
                    {
                        return Ok(Deleted {
                            object: obj,
                            deleted_now: false,
                        });
                    }
                    continue;
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
                Err(e) => match cas_failure(info, name, e) {
                    None => continue,
                    Some(err) => return Err(err),
                },
            }
        }
        Err(conflict(info, name))
    }

    pub(super) async fn after_delete(&self, info: &ResourceInfo, obj: &Value) {
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
