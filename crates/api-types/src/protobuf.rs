//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`).
//!
//! kubectl's generator commands (`kubectl create deployment|service|secret ...`, `run`,
//! `expose`) POST protobuf and never retry with JSON, so the apiserver decodes them here into
//! the same JSON the JSON API would have received.
//!
//! Upstream format (apimachinery `runtime/serializer/protobuf`): the 4 bytes `k8s\0`, then a
//! `runtime.Unknown` message — 1 typeMeta {1 apiVersion, 2 kind}, 2 raw (the object's
//! generated message), 3 contentEncoding, 4 contentType.
//!
//! Decoding is generic: `schema` is a table of every built-in message (field numbers, wire
//! types, JSON names) generated from the `k8s-pb` and `k8s-openapi` sources, and `json`
//! walks the wire bytes along it, with the apimachinery types that have their own JSON form
//! (Time, MicroTime, Duration, IntOrString, Quantity, RawExtension, ...) special-cased.

use serde_json::{Map, Value};

use crate::ApiError;

mod json;
mod schema;
mod wire;

#[cfg(test)]
mod tests;

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be decoded. Every variant is a client error (400).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    BadMagic,
    #[error("proto: unexpected end of message (truncated)")]
    Truncated,
    #[error("proto: integer overflow in varint")]
    VarintOverflow,
    #[error("proto: illegal field number")]
    BadFieldNumber,
    #[error("proto: illegal wire type {wire_type} for field {field}")]
    BadWireType { field: u32, wire_type: u64 },
    #[error("proto: field {field}: expected wire type {expected}")]
    WrongWireType {
        field: String,
        expected: &'static str,
    },
    #[error("Object 'Kind' is missing in protobuf body")]
    MissingKind,
    #[error("Object 'apiVersion' is missing in protobuf body")]
    MissingVersion,
    #[error("no kind \"{kind}\" is registered for version \"{api_version}\"")]
    UnknownKind { api_version: String, kind: String },
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    #[error("embedded object is not valid JSON: {0}")]
    EmbeddedJson(#[source] serde_json::Error),
    #[error("timestamp {seconds} is out of range")]
    TimeOutOfRange { seconds: i64 },
    #[error("field {field}: number is not finite")]
    NotFinite { field: String },
    #[error("object nesting exceeds {0} levels")]
    TooDeep(usize),
}

impl From<DecodeError> for ApiError {
    fn from(err: DecodeError) -> Self {
        ApiError::bad_request(err.to_string())
    }
}

/// True when `content_type` (parameters allowed) is the Kubernetes protobuf media type.
pub fn is_protobuf(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case(CONTENT_TYPE)
}

/// Decodes a protobuf request body into the object's JSON form, exactly as the JSON API
/// would have received it (`apiVersion`/`kind` first, camelCase fields, RFC 3339 times,
/// quantities as strings, bytes as base64, empty optional fields left out).
// The apiserver's handlers all return `ApiError`; boxing it here alone would not help them.
#[allow(clippy::result_large_err)]
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    Ok(decode_envelope(&schema::SCHEMA, body, 0)?)
}

/// Decodes `k8s\0` + runtime.Unknown; also used for envelopes nested in a RawExtension.
fn decode_envelope(
    schema: &schema::Schema,
    body: &[u8],
    depth: usize,
) -> Result<Value, DecodeError> {
    let unknown = body.strip_prefix(MAGIC).ok_or(DecodeError::BadMagic)?;
    let fields = wire::parse(unknown)?;
    let last_bytes = |tag: u32| -> Result<&[u8], DecodeError> {
        match fields.get(&tag).and_then(|values| values.last()) {
            None => Ok(&[]),
            Some(wire::WireValue::Bytes(bytes)) => Ok(bytes),
            Some(_) => Err(DecodeError::WrongWireType {
                field: format!("Unknown.{tag}"),
                expected: "length-delimited",
            }),
        }
    };
    let type_meta = wire::parse(last_bytes(1)?)?;
    let type_meta_string = |tag: u32| match type_meta.get(&tag).and_then(|values| values.last()) {
        Some(wire::WireValue::Bytes(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    };
    let (api_version, kind) = (type_meta_string(1), type_meta_string(2));
    if kind.is_empty() {
        return Err(DecodeError::MissingKind);
    }
    if api_version.is_empty() {
        return Err(DecodeError::MissingVersion);
    }
    let content_encoding = String::from_utf8_lossy(last_bytes(3)?).into_owned();
    if !content_encoding.is_empty() {
        return Err(DecodeError::ContentEncoding(content_encoding));
    }
    let message = schema
        .kind(&api_version, &kind)
        .ok_or_else(|| DecodeError::UnknownKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?;
    let walker = json::Walker { schema };
    let body = walker.message(message, last_bytes(2)?, depth)?;
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    if let Some(Value::Object(fields)) = body {
        object.extend(fields);
    }
    Ok(Value::Object(object))
}
