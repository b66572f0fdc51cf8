//! Request paths that must never resolve to a resource: empty interior segments
//! (`//`), dot segments (`.`, `..`) and their percent-encoded spellings, and encoded
//! slashes. Clients never send them; accepting them would let a path name something
//! other than what authorization looked at, so they are refused with 400 before
//! routing.

use std::borrow::Cow;

use api_types::ApiError;

/// A segment as a client could mean it after percent-decoding dots and slashes
/// (borrowed when it has no `%`, as nearly every segment has not).
fn decoded(segment: &str) -> Cow<'_, str> {
    if !segment.contains('%') {
        return Cow::Borrowed(segment);
    }
    let decoded = segment
        .replace("%2e", ".")
        .replace("%2E", ".")
        .replace("%2f", "/")
        .replace("%2F", "/")
        .replace("%5c", "\\")
        .replace("%5C", "\\");
    Cow::Owned(decoded)
}

/// Ok for a clean path; 400 otherwise.
pub fn check(path: &str) -> Result<(), ApiError> {
    let inner = path.strip_prefix('/').unwrap_or(path);
    // A single trailing slash (`/version/`) is fine; empty segments elsewhere are not.
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    if inner.is_empty() {
        return Ok(());
    }
    for segment in inner.split('/') {
        let d = decoded(segment);
        if segment.is_empty() || d == "." || d == ".." || d.contains('/') || d.contains('\\') {
            return Err(ApiError::bad_request(format!(
                "invalid request path {path:?}: empty, dot or encoded-slash segments are not allowed"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn clean_paths_pass_and_tricks_do_not() {
        for ok in [
            "/",
            "/api",
            "/version/",
            "/api/v1/namespaces/default/pods",
            "/apis/apps/v1/deployments",
            "/healthz",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/api/v1/namespaces/../secrets",
            "/api/v1/namespaces/%2e%2e/secrets",
            "/api/v1/namespaces/%2E%2E/secrets",
            "//api/v1/namespaces/default/secrets",
            "/api/v1//namespaces/default/secrets",
            "/api/v1/namespaces/./secrets",
            "/api/v1/namespaces/default%2fsecrets",
        ] {
            assert_eq!(check(bad).map_err(|e| e.code), Err(400), "{bad}");
        }
    }
}
