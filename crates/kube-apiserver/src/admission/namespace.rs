//! NamespaceLifecycle / NamespaceExists: no new content in a missing or terminating
//! namespace; the immortal namespaces cannot be deleted.

use api_types::{meta, ApiError};
use serde_json::Value;

use super::{Admission, Attributes, Operation, IMMORTAL_NAMESPACES};

impl Admission {
    pub(super) async fn namespace_lifecycle(&self, attrs: &Attributes<'_>) -> Result<(), ApiError> {
        if attrs.info.kind == "Namespace"
            && attrs.operation == Operation::Delete
            && IMMORTAL_NAMESPACES.contains(&attrs.name)
        {
            return Err(ApiError::forbidden(format!(
                "namespaces \"{}\" is forbidden: this namespace may not be deleted",
                attrs.name
            ))
            .with_details("", "namespaces", attrs.name));
        }
        if attrs.operation != Operation::Create || !attrs.info.namespaced {
            return Ok(());
        }
        // Subresource creates (bindings, evictions) on existing objects are fine.
        if attrs.subresource.is_some() {
            return Ok(());
        }
        let Some(ns) = attrs.namespace else {
            return Ok(());
        };
        let Some(ns_info) = api_types::registry::lookup("", "v1", "namespaces") else {
            return Ok(());
        };
        let Some(cache) = self.cache.resource(ns_info) else {
            return Ok(());
        };
        let key = ns_info.key(None, ns);
        // A namespace created a moment ago may not be in the cache yet: on a miss,
        // look it up live, as upstream's plugin does.
        let terminating = |obj: &Value| {
            meta::deletion_timestamp(obj).is_some()
                || meta::field(obj, "status")
                    .and_then(|s| meta::field(s, "phase"))
                    .and_then(Value::as_str)
                    == Some("Terminating")
        };
        let found: Option<bool> = match cache.get(&key) {
            Some(obj) => Some(terminating(&obj.selectable)),
            None => match self.storage.get(&key).await {
                Ok(Some(stored)) => serde_json::from_slice::<Value>(&stored.value)
                    .ok()
                    .map(|v| terminating(&v)),
                Ok(None) => None,
                Err(e) => return Err(ApiError::internal(e.to_string())),
            },
        };
        match found {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(terminating) => {
                if terminating && attrs.info.kind != "Event" {
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
