//! Request bodies in, responses out: content negotiation (JSON, YAML, protobuf bodies;
//! JSON, Table responses), `Status` errors and the 3 MiB body limit.

use api_types::ApiError;
use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::Response,
};
use bytes::Bytes;
use serde_json::Value;

/// Largest request body accepted (upstream: 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// A JSON response.
pub fn json(status: StatusCode, value: &Value) -> Response {
    let body = api_types::json::to_vec(value);
    raw_json(status, Bytes::from(body))
}

pub fn raw_json(status: StatusCode, body: Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A `Status` response for an error.
pub fn error(err: &ApiError) -> Response {
    let status = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json(status, &err.to_status());
    if let Some(secs) = err.retry_after_seconds {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut resp = Response::new(Body::from(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// What representation the client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    Object,
    Table,
    PartialObjectMetadata,
}

pub fn representation(headers: &HeaderMap) -> Representation {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        let p = part.replace(' ', "");
        if p.contains("as=Table") && p.contains("g=meta.k8s.io") {
            return Representation::Table;
        }
        if p.contains("as=PartialObjectMetadata") && p.contains("g=meta.k8s.io") {
            return Representation::PartialObjectMetadata;
        }
        if p.starts_with("application/json")
            || p.starts_with("*/*")
            || p.starts_with("application/yaml")
        {
            return Representation::Object;
        }
    }
    Representation::Object
}

/// Decodes a request body by its content type into a JSON value.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::too_large(
            "Request entity too large: limit is 3145728",
        ));
    }
    let ct = content_type(headers);
    if api_types::protobuf::is_protobuf(&ct) {
        return api_types::protobuf::decode(body);
    }
    let value: Value = match ct.as_str() {
        ""
        | "application/json"
        | "application/merge-patch+json"
        | "application/json-patch+json"
        | "application/strategic-merge-patch+json" => {
            // Checking the UTF-8 of the whole body once is cheaper than serde_json
            // checking each string of a byte slice; invalid UTF-8 goes the slice way
            // for serde_json's error.
            match std::str::from_utf8(body) {
                Ok(text) => serde_json::from_str(text),
                Err(_) => serde_json::from_slice(body),
            }
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON body: {e}")))?
        }
        "application/yaml"
        | "application/apply-patch+yaml"
        | "text/yaml"
        | "application/x-yaml" => {
            if body.iter().all(|b| b.is_ascii_whitespace()) {
                return Err(ApiError::bad_request("the request body is empty"));
            }
            serde_norway::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML body: {e}")))?
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    Ok(value)
}

/// The media type of the request body, without parameters, lower-case.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}
