//! The admission chain (`--enable-admission-plugins`, classic `--admission-control`).
//! Mutating plugins run before validation, validating ones after; reads come from the
//! watch cache so a create stays a single etcd txn (ResourceQuota adds the one write it
//! inherently needs: charging the quota before the object is stored).

pub mod limit_ranger;
mod namespace;
pub mod node_restriction;
pub mod pod_security;
pub mod quota;
pub mod service_account;
pub mod tolerations;

use std::{collections::HashMap, sync::Arc};

use api_types::{meta, ApiError, ResourceInfo, Subresource};
use chrono::Utc;
use serde_json::{json, Value};

use crate::{
    cache::WatchCache,
    storage::{Storage, StorageError},
};
use api_types::quota::{add, mask, names, parse_list, to_json, Qty, ResourceList};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// What is being admitted.
pub struct Attributes<'a> {
    pub operation: Operation,
    pub info: &'static ResourceInfo,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub subresource: Option<Subresource>,
    pub dry_run: bool,
    /// The requesting user (None for the apiserver's own writes).
    pub user: Option<&'a crate::authn::UserInfo>,
}

/// Namespaces that always exist and can never be deleted.
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// Plugins this server implements (or accepts as no-ops).
const KNOWN_PLUGINS: &[&str] = &[
    "NamespaceLifecycle",
    "NamespaceExists",
    "LimitRanger",
    "ServiceAccount",
    "DefaultTolerationSeconds",
    "ResourceQuota",
    "SecurityContextDeny",
    "PodSecurity",
    "NodeRestriction",
    "AlwaysAdmit",
];

/// Attempts at charging one quota when other writers keep moving it.
const QUOTA_CAS_RETRIES: usize = 32;

pub struct Admission {
    plugins: Vec<String>,
    cache: Arc<WatchCache>,
    storage: Arc<Storage>,
    /// Quota charges in one namespace are serialized within this apiserver (upstream
    /// queues them per namespace); other apiservers are fenced by the etcd CAS.
    quota_locks: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Quotas this apiserver wrote last, by key: (revision, value), so the next charge
    /// does not lose a CAS round trip while the watch cache catches up.
    recent_quotas: parking_lot::Mutex<HashMap<String, (i64, Value)>>,
}

/// `pods "x" is forbidden: <why>` (upstream `admission.NewForbidden`).
fn forbidden(attrs: &Attributes<'_>, why: impl std::fmt::Display) -> ApiError {
    ApiError::forbidden(format!(
        "{} \"{}\" is forbidden: {why}",
        attrs.info.qualified_plural(),
        attrs.name
    ))
    .with_details(attrs.info.group, attrs.info.plural, attrs.name)
}

/// The deprecated SecurityContextDeny plugin: pods may not set the security context
/// fields it guards (upstream's messages).
fn security_context_deny(pod: &Value) -> Result<(), String> {
    let set = |v: Option<&Value>| v.is_some_and(|v| !v.is_null());
    let psc = pod.pointer("/spec/securityContext");
    let field = |name: &str| set(psc.and_then(|s| s.get(name)));
    if field("supplementalGroups") {
        return Err("pod.Spec.SecurityContext.SupplementalGroups is forbidden".into());
    }
    if field("seLinuxOptions") {
        return Err("pod.Spec.SecurityContext.SELinuxOptions is forbidden".into());
    }
    if field("runAsUser") {
        return Err("pod.Spec.SecurityContext.RunAsUser is forbidden".into());
    }
    if field("fsGroup") {
        return Err("pod.Spec.SecurityContext.FSGroup is forbidden".into());
    }
    for key in ["initContainers", "containers"] {
        for c in pod
            .pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let csc = c.get("securityContext");
            if set(csc.and_then(|s| s.get("seLinuxOptions"))) {
                return Err("SecurityContext.SELinuxOptions is forbidden".into());
            }
            if set(csc.and_then(|s| s.get("runAsUser"))) {
                return Err("SecurityContext.RunAsUser is forbidden".into());
            }
        }
    }
    Ok(())
}

/// `metadata.labels` of `obj` (`pointer` would allocate for each path segment).
fn labels_of(obj: &Value) -> Option<&Value> {
    meta::field(obj, "metadata").and_then(|m| meta::field(m, "labels"))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

fn is_core(attrs: &Attributes<'_>, plural: &str) -> bool {
    attrs.info.group.is_empty() && attrs.info.plural == plural
}

impl Admission {
    pub fn new(plugins: Vec<String>, cache: Arc<WatchCache>, storage: Arc<Storage>) -> Self {
        for p in &plugins {
            if p == "SecurityContextDeny" {
                tracing::warn!(
                    "admission plugin SecurityContextDeny is deprecated (removed upstream in 1.30); use PodSecurity instead"
                );
            } else if !KNOWN_PLUGINS.contains(&p.as_str()) {
                tracing::warn!(plugin = %p, "unknown admission plugin ignored");
            }
        }
        Admission {
            plugins,
            cache,
            storage,
            quota_locks: parking_lot::Mutex::new(HashMap::new()),
            recent_quotas: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self, name: &str) -> bool {
        self.plugins.iter().any(|p| p == name)
    }

    /// Mutating admission: may change `obj`.
    pub async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if self.enabled("NamespaceLifecycle") || self.enabled("NamespaceExists") {
            self.namespace_lifecycle(attrs).await?;
        }
        if self.enabled("NodeRestriction") {
            node_restriction::admit(attrs, obj, _old)?;
        }
        if attrs.operation == Operation::Delete || attrs.subresource.is_some() {
            return Ok(());
        }
        if is_core(attrs, "pods") {
            // Containers are immutable, so LimitRanger only defaults on create (upstream).
            if attrs.operation == Operation::Create && self.enabled("LimitRanger") {
                for lr in self.limit_ranges(attrs, obj) {
                    limit_ranger::default_pod(&lr, obj);
                }
            }
            if attrs.operation == Operation::Create && self.enabled("ServiceAccount") {
                self.service_account(attrs, obj).await?;
            }
            if self.enabled("DefaultTolerationSeconds") {
                tolerations::add_default_tolerations(obj);
            }
        }
        Ok(())
    }

    /// Validating admission: may only reject (ResourceQuota also charges the quota).
    /// Returns warnings for the client (`Warning` headers).
    pub async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let mut warnings = Vec::new();
        if attrs.operation == Operation::Delete || attrs.subresource.is_some() {
            return Ok(warnings);
        }
        if self.enabled("LimitRanger") {
            self.validate_limit_ranges(attrs, obj, old)?;
        }
        if self.enabled("SecurityContextDeny") && is_core(attrs, "pods") {
            security_context_deny(obj).map_err(|why| forbidden(attrs, why))?;
        }
        if self.enabled("PodSecurity") {
            warnings.extend(self.pod_security(attrs, obj, old)?);
        }
        if self.enabled("ResourceQuota") {
            self.resource_quota(attrs, obj, old).await?;
        }
        Ok(warnings)
    }

    /// PodSecurity: enforce on pods, warn (and audit) on pods and workload templates.
    fn pod_security(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        if is_core(attrs, "namespaces") {
            return self.pod_security_namespace(attrs, obj, old);
        }
        let Some((metadata, spec)) =
            pod_security::pod_spec_of(attrs.info.group, attrs.info.plural, obj)
        else {
            return Ok(Vec::new());
        };
        let is_pod = is_core(attrs, "pods");
        if is_pod
            && attrs.operation == Operation::Update
            && old.is_some_and(|o| !pod_security::significant_pod_update(obj, o))
        {
            return Ok(Vec::new());
        }
        let Some(ns) = Self::namespace_of(attrs, obj) else {
            return Ok(Vec::new());
        };
        let namespace = self.cached_namespace(ns);
        let labels = namespace.as_ref().and_then(|n| labels_of(&n.selectable));
        let (policy, errors) = pod_security::policy_from_labels(labels);
        let outcome = pod_security::admit(&policy, &errors, metadata, spec, is_pod);
        for (k, v) in &outcome.audit_annotations {
            crate::audit::annotate(k, v);
        }
        if let Some(why) = outcome.denied {
            return Err(forbidden(attrs, why));
        }
        Ok(outcome.warnings)
    }

    /// PodSecurity on namespaces: labels must be valid (when set or changed), and a
    /// tightened enforce level warns about existing pods that violate it.
    fn pod_security_namespace(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let (policy, errors) = pod_security::policy_from_labels(labels_of(obj));
        let old_policy = old.map(|o| pod_security::policy_from_labels(labels_of(o)));
        let changed_errors = match &old_policy {
            Some((_, old_errors)) => !errors.is_empty() && errors != *old_errors,
            None => !errors.is_empty(),
        };
        if changed_errors {
            return Err(
                ApiError::new(422, "Invalid", errors.join(", ")).with_details(
                    attrs.info.group,
                    attrs.info.plural,
                    attrs.name,
                ),
            );
        }
        let Some((old_policy, _)) = old_policy else {
            return Ok(Vec::new());
        };
        let (new, prev) = (&policy.enforce, &old_policy.enforce);
        if new == prev
            || new.level == pod_security::Level::Privileged
            || (new.version == prev.version && new.level <= prev.level)
        {
            return Ok(Vec::new());
        }
        let mut violations = Vec::new();
        for pod in self.cached_list("pods", attrs.name).iter().take(3000) {
            let Some((metadata, spec)) = pod_security::pod_spec_of("", "pods", pod) else {
                continue;
            };
            if let Some(reasons) = pod_security::evaluate_reasons(new.level, metadata, spec) {
                violations.push(format!(
                    "{}: {}",
                    meta::name(pod).unwrap_or(""),
                    reasons.join(", ")
                ));
            }
        }
        if violations.is_empty() {
            return Ok(Vec::new());
        }
        let mut warnings = vec![format!(
            "existing pods in namespace {:?} violate the new PodSecurity enforce level {:?}",
            attrs.name,
            new.to_string()
        )];
        warnings.extend(violations);
        Ok(warnings)
    }

    /// A namespace from the watch cache.
    fn cached_namespace(&self, ns: &str) -> Option<Arc<crate::cache::CachedObject>> {
        let info = api_types::registry::lookup("", "v1", "namespaces")?;
        self.cache.resource(info)?.get(&info.key(None, ns))
    }

    fn namespace_of<'a>(attrs: &Attributes<'a>, obj: &'a Value) -> Option<&'a str> {
        attrs
            .namespace
            .or_else(|| meta::namespace(obj))
            .filter(|ns| !ns.is_empty())
    }

    /// Every object of a core resource in `namespace`, from the watch cache.
    fn cached_list(&self, plural: &str, namespace: &str) -> Vec<Value> {
        let Some(info) = api_types::registry::lookup("", "v1", plural) else {
            return Vec::new();
        };
        let Some(cache) = self.cache.resource(info) else {
            return Vec::new();
        };
        cache
            .list(&info.list_prefix(Some(namespace)))
            .iter()
            .map(|o| o.without_managed_fields().into_owned())
            .collect()
    }

    fn limit_ranges(&self, attrs: &Attributes<'_>, obj: &Value) -> Vec<Value> {
        match Self::namespace_of(attrs, obj) {
            Some(ns) => self.cached_list("limitranges", ns),
            None => Vec::new(),
        }
    }

    fn validate_limit_ranges(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let pod = is_core(attrs, "pods") && attrs.operation == Operation::Create;
        let pvc = is_core(attrs, "persistentvolumeclaims");
        if !(pod || pvc) || old.is_some_and(|o| meta::deletion_timestamp(o).is_some()) {
            return Ok(());
        }
        for lr in self.limit_ranges(attrs, obj) {
            let checked = if pod {
                limit_ranger::validate_pod(&lr, obj)
            } else {
                limit_ranger::validate_pvc(&lr, obj)
            };
            checked.map_err(|why| forbidden(attrs, why))?;
        }
        Ok(())
    }

    /// ServiceAccount: default the account and require it to exist (cache first; one
    /// etcd read only when the cache has not seen it, as upstream's live lookup).
    async fn service_account(
        &self,
        attrs: &Attributes<'_>,
        pod: &mut Value,
    ) -> Result<(), ApiError> {
        if service_account::is_mirror_pod(pod) {
            return Ok(());
        }
        let Some(ns) = Self::namespace_of(attrs, pod).map(str::to_string) else {
            return Ok(());
        };
        let name = service_account::default_service_account_name(pod);
        let Some(info) = api_types::registry::lookup("", "v1", "serviceaccounts") else {
            return Ok(());
        };
        let key = info.key(Some(&ns), &name);
        let cached = self
            .cache
            .resource(info)
            .and_then(|c| c.get(&key))
            .map(|o| o.selectable.clone());
        let account = match cached {
            Some(a) => a,
            None => match self.storage.get(&key).await.map_err(internal)? {
                Some(stored) => serde_json::from_slice(&stored.value).map_err(internal)?,
                None => {
                    return Err(forbidden(
                        attrs,
                        service_account::not_found_message(&ns, &name),
                    ))
                }
            },
        };
        service_account::apply_image_pull_secrets(pod, &account);
        service_account::mount_token_volume(pod, &account, &crate::store::random_suffix());
        Ok(())
    }

    fn quota_lock(&self, namespace: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.quota_locks
            .lock()
            .entry(namespace.to_string())
            .or_default()
            .clone()
    }

    /// The newest known state of a quota: the watch cache's, or our own last write.
    fn freshest_quota(&self, key: &str, revision: i64, value: &Value) -> (i64, Value) {
        let mut recent = self.recent_quotas.lock();
        match recent.get(key) {
            Some((rev, v)) if *rev > revision => (*rev, v.clone()),
            Some(_) => {
                recent.remove(key);
                (revision, value.clone())
            }
            None => (revision, value.clone()),
        }
    }

    /// What the namespace uses now under `tracked`, from the watch cache (upstream's
    /// quota controller `CalculateUsage`), for quotas without recorded usage.
    /// What the namespace uses of `tracked`, counting only objects `quota_obj`'s
    /// scopes select (as the quota controller computes `status.used`).
    fn namespace_usage(
        &self,
        namespace: &str,
        tracked: &std::collections::BTreeSet<String>,
        quota_obj: &Value,
    ) -> ResourceList {
        let now = Utc::now();
        let mut total = ResourceList::new();
        for info in api_types::registry::RESOURCES
            .iter()
            .filter(|i| i.namespaced && tracked.iter().any(|n| quota::tracks(i, n)))
        {
            let Some(cache) = self.cache.resource(info) else {
                continue;
            };
            for o in cache.list(&info.list_prefix(Some(namespace))) {
                let obj = o.without_managed_fields();
                if !quota::matches_scopes(info, quota_obj, &obj) {
                    continue;
                }
                total = add(&total, &mask(&quota::usage(info, &obj, now), tracked));
            }
        }
        for name in tracked {
            total.entry(name.clone()).or_insert(Qty::count(0));
        }
        total
    }

    /// Checks one quota; `Some((hard, new_used))` when it must be charged.
    fn evaluate_quota(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        namespace: &str,
        quota_obj: &Value,
        delta: &ResourceList,
    ) -> Result<Option<(ResourceList, ResourceList)>, ApiError> {
        let quota_name = meta::name(quota_obj).unwrap_or_default();
        let hard = parse_list(quota_obj.pointer("/spec/hard"));
        let matched = quota::matching_resources(attrs.info, &hard);
        if matched.is_empty() || !quota::matches_scopes(attrs.info, quota_obj, obj) {
            return Ok(None);
        }
        quota::constraints(attrs.info, obj, &matched)
            .map_err(|e| forbidden(attrs, format!("failed quota: {quota_name}: {e}")))?;
        let mut used = parse_list(quota_obj.pointer("/status/used"));
        let hard_names = names(&hard);
        if hard_names.iter().any(|n| !used.contains_key(n)) {
            for (k, v) in self.namespace_usage(namespace, &hard_names, quota_obj) {
                used.entry(k).or_insert(v);
            }
        }
        match quota::charge(quota_name, &hard, &used, delta) {
            Err(why) => Err(forbidden(attrs, why)),
            Ok(None) => Ok(None),
            Ok(Some(new_used)) => Ok(Some((hard.clone(), mask(&new_used, &hard_names)))),
        }
    }

    /// ResourceQuota: reject writes that exceed a quota of the namespace, and charge the
    /// quota's `status.used` (CAS) before the object is written.
    async fn resource_quota(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !quota::handles(attrs.info, attrs.operation) {
            return Ok(());
        }
        let Some(ns) = Self::namespace_of(attrs, obj) else {
            return Ok(());
        };
        let Some(quota_info) = api_types::registry::lookup("", "v1", "resourcequotas") else {
            return Ok(());
        };
        let Some(quota_cache) = self.cache.resource(quota_info) else {
            return Ok(());
        };
        let quotas = quota_cache.list(&quota_info.list_prefix(Some(ns)));
        if quotas.is_empty() {
            return Ok(());
        }
        let old = if attrs.operation == Operation::Update {
            old
        } else {
            None
        };
        let delta = quota::delta(attrs.info, obj, old, Utc::now());
        if delta.is_empty() {
            return Ok(());
        }
        let lock = self.quota_lock(ns);
        let _serialized = lock.lock().await;

        // Check every quota before charging any.
        let mut charges = Vec::new();
        for q in &quotas {
            let (revision, value) = self.freshest_quota(&q.key, q.revision, &q.selectable);
            if let Some((hard, used)) = self.evaluate_quota(attrs, obj, ns, &value, &delta)? {
                charges.push((q.key.clone(), revision, value, hard, used));
            }
        }
        if attrs.dry_run {
            return Ok(());
        }
        for (key, mut revision, mut value, mut hard, mut used) in charges {
            let mut attempts = 0;
            loop {
                attempts += 1;
                let mut updated = value.clone();
                if let Some(m) = updated.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.shift_remove("resourceVersion");
                }
                if let Some(o) = updated.as_object_mut() {
                    o.insert(
                        "status".into(),
                        json!({"hard": to_json(&hard), "used": to_json(&used)}),
                    );
                }
                let bytes = serde_json::to_vec(&updated).map_err(internal)?;
                match self.storage.update(&key, bytes, revision, None).await {
                    Ok(rev) => {
                        self.recent_quotas.lock().insert(key.clone(), (rev, updated));
                        break;
                    }
                    Err(StorageError::Conflict(current)) if attempts < QUOTA_CAS_RETRIES => {
                        // Someone else charged (or the controller recomputed): re-check.
                        value = serde_json::from_slice(&current.value).map_err(internal)?;
                        revision = current.mod_revision;
                        match self.evaluate_quota(attrs, obj, ns, &value, &delta)? {
                            Some((h, u)) => (hard, used) = (h, u),
                            None => break,
                        }
                    }
                    Err(StorageError::NotFound) => break,
                    Err(StorageError::Conflict(_)) => {
                        return Err(ApiError::conflict(
                            "",
                            "resourcequotas",
                            meta::name(&value).unwrap_or_default(),
                            "the object has been modified; please apply your changes to the latest version and try again",
                        ))
                    }
                    Err(e) => return Err(internal(e)),
                }
            }
        }
        Ok(())
    }
}
