//! PATCH semantics of the apiserver for built-in types: JSON patch (RFC 6902), JSON
//! merge patch (RFC 7386) and strategic merge patch (upstream `strategicpatch`), as
//! upstream's `apiserver/pkg/endpoints/handlers/patch.go` applies them.

pub mod schema;
mod strategic;
mod three_way;

use serde_json::Value;

use crate::{ApiError, ResourceInfo};

pub use three_way::{three_way_merge_patch, two_way_merge_patch};

/// Upstream caps JSON patches at this many operations (`maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10000;

/// The patch formats a PATCH request may carry, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    StrategicMerge,
    Apply,
}

impl PatchType {
    /// Maps a `Content-Type` (parameters ignored) to the patch type; `None` for anything
    /// else (the apiserver answers 415).
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// A malformed strategic merge patch (upstream `mergepatch` errors, same wording).
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum PatchError {
    #[error("unknown patch type: {0}")]
    BadPatchType(String),
    #[error("map: {0} does not contain declared merge key: {1}")]
    NoMergeKey(String, String),
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
    #[error("lists of lists are not supported")]
    NoListOfLists,
    #[error("invalid JSON document")]
    BadJsonDoc,
    #[error("{0}")]
    Other(String),
}

impl From<PatchError> for ApiError {
    fn from(e: PatchError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// Applies `patch` to `original` (an object of `info`'s kind) and returns the patched
/// object. `PatchType::Apply` is not handled here: see [`crate::apply::server_side_apply`].
///
/// Errors as upstream: an undecodable JSON patch is 400 BadRequest; a JSON patch whose
/// operations fail (a failed `test`, a missing path) is 422 Invalid with the generic
/// message; a malformed strategic merge patch is 400.
// The Status error type is shared crate-wide; boxing it is status.rs's call.
#[allow(clippy::result_large_err)]
pub fn apply_patch(
    info: &ResourceInfo,
    original: &Value,
    patch_type: PatchType,
    patch: &Value,
) -> Result<Value, ApiError> {
    match patch_type {
        PatchType::Json => apply_json_patch(original, patch),
        PatchType::Merge => {
            let mut doc = original.clone();
            json_patch::merge(&mut doc, patch);
            Ok(doc)
        }
        PatchType::StrategicMerge => Ok(strategic_merge_patch(info, original, patch)?),
        PatchType::Apply => Err(ApiError::unsupported_media_type(
            PatchType::Apply.content_type(),
        )),
    }
}

#[allow(clippy::result_large_err)]
fn apply_json_patch(original: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if ops.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(ApiError::too_large(format!(
            "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
            ops.0.len()
        )));
    }
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &ops).map_err(|_| {
        // Upstream: NewGenericServerResponse(422, ...) — reason Invalid, generic message,
        // the library's detail is not passed on.
        ApiError::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        )
    })?;
    Ok(doc)
}

/// Applies a strategic merge patch to an object of `info`'s kind. Fields without type
/// information (unknown kinds or fields) merge as JSON merge patch: maps merge, lists
/// are replaced.
pub fn strategic_merge_patch(
    info: &ResourceInfo,
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    strategic_merge_patch_shape(schema::root_shape(info), original, patch)
}

pub(crate) fn strategic_merge_patch_shape(
    shape: &'static schema::Shape,
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadJsonDoc);
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => serde_json::Map::new(),
        _ => return Err(PatchError::BadJsonDoc),
    };
    Ok(Value::Object(strategic::merge_map(
        original,
        patch.clone(),
        shape,
    )?))
}

#[cfg(test)]
mod tests;
