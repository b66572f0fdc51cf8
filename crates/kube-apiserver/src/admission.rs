//! The admission chain (`--enable-admission-plugins`, classic `--admission-control`).
//! Mutating plugins run before validation, validating ones after; reads come from the
//! watch cache so a create stays a single etcd txn.

use std::sync::Arc;

use api_types::{meta, ApiError, ResourceInfo, Subresource};
use serde_json::Value;

use crate::cache::WatchCache;

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
}

pub struct Admission {
    plugins: Vec<String>,
    cache: Arc<WatchCache>,
}

/// Namespaces that always exist and can never be deleted.
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

impl Admission {
    pub fn new(plugins: Vec<String>, cache: Arc<WatchCache>) -> Self {
        for p in &plugins {
            if p == "SecurityContextDeny" {
                tracing::warn!("admission plugin SecurityContextDeny is deprecated upstream and has no effect");
            }
        }
        Admission { plugins, cache }
    }

    fn enabled(&self, name: &str) -> bool {
        self.plugins.iter().any(|p| p == name)
    }

    /// Mutating admission: may change `obj`.
    pub async fn admit(&self, attrs: &Attributes<'_>, obj: &mut Value, _old: Option<&Value>) -> Result<(), ApiError> {
        if self.enabled("NamespaceLifecycle") || self.enabled("NamespaceExists") {
            self.namespace_lifecycle(attrs)?;
        }
        let _ = obj;
        Ok(())
    }

    /// Validating admission: may only reject.
    pub async fn validate(&self, _attrs: &Attributes<'_>, _obj: &Value, _old: Option<&Value>) -> Result<(), ApiError> {
        Ok(())
    }

    /// NamespaceLifecycle / NamespaceExists: no new content in a missing or terminating
    /// namespace; the immortal namespaces cannot be deleted.
    fn namespace_lifecycle(&self, attrs: &Attributes<'_>) -> Result<(), ApiError> {
        if attrs.info.kind == "Namespace" && attrs.operation == Operation::Delete && IMMORTAL_NAMESPACES.contains(&attrs.name) {
            return Err(ApiError::forbidden(format!("namespaces \"{}\" is forbidden: this namespace may not be deleted", attrs.name))
                .with_details("", "namespaces", attrs.name));
        }
        if attrs.operation != Operation::Create || !attrs.info.namespaced {
            return Ok(());
        }
        // Subresource creates (bindings, evictions) on existing objects are fine.
        if attrs.subresource.is_some() {
            return Ok(());
        }
        let Some(ns) = attrs.namespace else { return Ok(()) };
        let Some(ns_info) = api_types::registry::lookup("", "v1", "namespaces") else { return Ok(()) };
        let Some(cache) = self.cache.resource(ns_info) else { return Ok(()) };
        match cache.get(&ns_info.key(None, ns)) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(obj) => {
                let terminating = meta::deletion_timestamp(&obj.value).is_some()
                    || obj.value.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
                if terminating && !(attrs.info.kind == "Event") {
                    Err(ApiError::forbidden(format!(
                        "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                        attrs.info.qualified_plural(),
                        attrs.name,
                        ns
                    ))
                    .with_details(attrs.info.group, attrs.info.plural, attrs.name))
                } else {
                    Ok(())
                }
            }
        }
    }
}
