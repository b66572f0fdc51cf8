//! The writes of create, apply and replace (POST, PUT, PATCH): like
//! `Client::request`, but the answer's `Warning` headers are printed on stderr
//! (upstream's default warning handler, deduplicated) and a 422 keeps its
//! `details`, so it prints as upstream `cmdutil.CheckErr` does.

use std::collections::HashSet;
use std::sync::Mutex;

use http::{Method, Request};
use serde_json::Value;

use crate::client::Client;
use crate::errors::{Error, InvalidError, Result, ServerError};

static PRINTED_WARNINGS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Sends one write with a JSON (or patch) body; the answer as JSON.
pub async fn write(
    client: &Client,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<Value> {
    tracing::debug!(%method, path, "write request");
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::CONTENT_TYPE, content_type)
        .header(
            http::header::USER_AGENT,
            "kubectl/v1.32.0 (linux/amd64) kubernetes/rust",
        )
        .body(kube::client::Body::from(body))
        .map_err(|e| Error::Transport(format!("error: {e}")))?;
    let response = client
        .kube()
        .send(request)
        .await
        .map_err(|e| transport_error(client, &e))?;
    for value in response.headers().get_all(http::header::WARNING) {
        if let Some(text) = value.to_str().ok().and_then(warning_text) {
            print_warning(&text);
        }
    }
    let status = response.status();
    let bytes = response
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| transport_error(client, &e))?;
    if status.is_success() {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Default::default()));
        }
        return serde_json::from_slice(&bytes).map_err(|e| Error::Transport(format!("error: {e}")));
    }
    Err(status_error(status.as_u16(), &bytes))
}

fn transport_error(client: &Client, err: &kube::Error) -> Error {
    let text = format!("{err:?}");
    if text.contains("ConnectionRefused") || text.contains("Connection refused") {
        let host = client
            .server()
            .split_once("://")
            .map_or(client.server(), |(_, rest)| rest)
            .trim_end_matches('/')
            .to_string();
        Error::ConnectionRefused { host }
    } else {
        Error::Transport(format!("Unable to connect to the server: {err}"))
    }
}

/// The error of a failed answer: its `Status` (422 with details as
/// [`InvalidError`]), or upstream's wording for a body that is no Status.
pub fn status_error(code: u16, body: &[u8]) -> Error {
    let status: Option<kube::core::Status> = serde_json::from_slice(body).ok();
    let Some(status) = status.filter(|s| !s.reason.is_empty() || !s.message.is_empty()) else {
        let reason = match code {
            404 => "NotFound",
            403 => "Forbidden",
            401 => "Unauthorized",
            405 => "MethodNotAllowed",
            409 => "Conflict",
            _ => "",
        };
        let message = if code == 404 {
            "the server could not find the requested resource".to_string()
        } else {
            String::from_utf8_lossy(body).trim().to_string()
        };
        return Error::Server(ServerError {
            code,
            reason: reason.into(),
            message,
        });
    };
    if status.reason == "Invalid" {
        if let Some(details) = &status.details {
            let causes = details
                .causes
                .iter()
                .map(|c| format!("{}: {}", c.field, c.message));
            return Error::Invalid(InvalidError::new(
                &details.kind,
                &details.name,
                causes,
                &status.message,
            ));
        }
        return Error::Invalid(InvalidError::new("", "", Vec::new(), &status.message));
    }
    Error::Server(ServerError {
        code: if status.code == 0 { code } else { status.code },
        reason: status.reason,
        message: status.message,
    })
}

/// The text of a `Warning` header (`299 - "text" ["date"]`), unquoted.
fn warning_text(header: &str) -> Option<String> {
    let mut parts = header.splitn(3, ' ');
    let code = parts.next()?;
    let _agent = parts.next()?;
    let rest = parts.next()?.trim_start();
    if code != "299" {
        return None;
    }
    let rest = rest.strip_prefix('"')?;
    let mut text = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?),
            '"' => return Some(text),
            other => text.push(other),
        }
    }
    None
}

fn print_warning(text: &str) {
    let mut printed = PRINTED_WARNINGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if printed
        .get_or_insert_with(HashSet::new)
        .insert(text.to_string())
    {
        eprintln!("Warning: {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_headers_are_unquoted() {
        assert_eq!(
            warning_text(r#"299 - "unknown field \"metadata.label\"""#).as_deref(),
            Some(r#"unknown field "metadata.label""#)
        );
        assert_eq!(warning_text("199 - \"x\""), None);
    }

    #[test]
    fn invalid_status_keeps_its_causes() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Pod \"m\" is invalid: [a: x, b: y]","reason":"Invalid","details":{"name":"m","kind":"Pod","causes":[{"reason":"FieldValueRequired","message":"x","field":"a"},{"reason":"FieldValueRequired","message":"y","field":"b"}]},"code":422}"#;
        let Error::Invalid(e) = status_error(422, body) else {
            panic!("not invalid");
        };
        assert_eq!(e.causes, vec!["a: x", "b: y"]);
        assert_eq!(e.kind, "Pod");
    }
}
