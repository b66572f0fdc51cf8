//! Walks an encoded message along the schema table and builds the JSON form the JSON API
//! uses for the same object.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Number, Value};

use super::schema::{Field, FieldType, Label, Message, Scalar, Schema, Special};
use super::wire::{self, WireValue};
use super::DecodeError;

/// Deeper nesting than any real object (JSONSchemaProps recurses) is refused.
const MAX_DEPTH: usize = 100;

/// Go's zero `time.Time` as Unix seconds; upstream treats it as unset.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

pub(super) struct Walker<'s> {
    pub schema: &'s Schema,
}

impl Walker<'_> {
    /// The JSON of one message; `None` when its JSON form is null (zero Time, empty
    /// RawExtension) and the field should be left out.
    pub fn message(
        &self,
        message: &Message,
        buf: &[u8],
        depth: usize,
    ) -> Result<Option<Value>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep(MAX_DEPTH));
        }
        let fields = wire::parse(buf)?;
        let field = |tag: u32| fields.get(&tag).map(Vec::as_slice).unwrap_or_default();
        match message.special {
            Special::None => {}
            Special::Time | Special::MicroTime => {
                let Some(seconds) = field(1).last() else {
                    return Ok(None);
                };
                let seconds = varint(message, 1, seconds)? as i64;
                if seconds == GO_ZERO_TIME_SECONDS {
                    return Ok(None);
                }
                // Time keeps whole seconds only, as upstream's Unmarshal does.
                let nanos = match (message.special, field(2).last()) {
                    (Special::MicroTime, Some(nanos)) => varint(message, 2, nanos)? as i32,
                    _ => 0,
                };
                let time = u32::try_from(nanos)
                    .ok()
                    .and_then(|nanos| DateTime::from_timestamp(seconds, nanos))
                    .ok_or(DecodeError::TimeOutOfRange { seconds })?;
                let text = match message.special {
                    Special::Time => time.to_rfc3339_opts(SecondsFormat::Secs, true),
                    _ => time.to_rfc3339_opts(SecondsFormat::Micros, true),
                };
                return Ok(Some(Value::String(text)));
            }
            Special::Duration => {
                let nanos = match field(1).last() {
                    Some(value) => varint(message, 1, value)? as i64,
                    None => 0,
                };
                return Ok(Some(Value::String(go_duration(nanos))));
            }
            Special::RawJson => {
                let Some(raw) = field(1).last() else {
                    return Ok(None);
                };
                let raw = bytes(message, 1, raw)?;
                return embedded_json(self, raw, depth).map(Some);
            }
            Special::IntOrString => {
                let is_string = match field(1).last() {
                    Some(kind) => varint(message, 1, kind)? == 1,
                    None => false,
                };
                return Ok(Some(if is_string {
                    let text = field(3).last().map(|v| string(message, 3, v)).transpose()?;
                    Value::String(text.unwrap_or_default())
                } else {
                    let int = field(2).last().map(|v| varint(message, 2, v)).transpose()?;
                    Value::from(int.unwrap_or(0) as i32)
                }));
            }
            Special::Quantity => {
                let text = field(1).last().map(|v| string(message, 1, v)).transpose()?;
                return Ok(Some(Value::String(
                    text.filter(|t| !t.is_empty()).unwrap_or_else(|| "0".into()),
                )));
            }
            Special::ListWrapper => {
                let mut items = Vec::new();
                for value in field(1) {
                    items.push(Value::String(string(message, 1, value)?));
                }
                return Ok(Some(Value::Array(items)));
            }
            Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
                let object = self.fields(message, &fields, depth)?;
                // Field 2 wins when set: OrArray/OrStringArray 1 schema, 2 array; OrBool
                // 1 allows, 2 schema.
                let name = |tag: u32| {
                    message
                        .fields
                        .iter()
                        .find(|f| f.tag == tag)
                        .map(|f| f.json_name)
                };
                let get = |tag: u32| name(tag).and_then(|n| object.get(n));
                let pick = get(2).or_else(|| get(1)).cloned();
                let fallback = match message.special {
                    Special::SchemaOrBool => Value::Bool(false),
                    _ => Value::Null,
                };
                return Ok(Some(pick.unwrap_or(fallback)));
            }
        }
        Ok(Some(Value::Object(self.fields(message, &fields, depth)?)))
    }

    /// The fields of a plain message in declaration order. Unknown field numbers are skipped,
    /// as upstream's generated code does.
    fn fields(
        &self,
        message: &Message,
        fields: &wire::Fields<'_>,
        depth: usize,
    ) -> Result<Map<String, Value>, DecodeError> {
        let mut object = Map::new();
        for field in &message.fields {
            let Some(values) = fields.get(&field.tag) else {
                continue;
            };
            let json = match field.label {
                Label::Repeated => {
                    let mut items = Vec::new();
                    for value in values {
                        self.repeated_item(message, field, value, depth, &mut items)?;
                    }
                    (!items.is_empty() || field.required).then_some(Value::Array(items))
                }
                Label::Map => {
                    let mut map = Map::new();
                    for entry in values {
                        let (key, value) = self.map_entry(
                            message,
                            field,
                            bytes(message, field.tag, entry)?,
                            depth,
                        )?;
                        map.insert(key, value);
                    }
                    (!map.is_empty() || field.required).then_some(Value::Object(map))
                }
                Label::Optional => match field.ty {
                    FieldType::Message(index) => {
                        // Repeated occurrences of a message field merge, which for the wire
                        // format is the same as decoding their concatenation.
                        let joined: Vec<u8> = values
                            .iter()
                            .map(|v| bytes(message, field.tag, v))
                            .collect::<Result<Vec<_>, _>>()?
                            .concat();
                        self.message(&self.schema.messages[index], &joined, depth + 1)?
                    }
                    FieldType::Scalar(scalar) => {
                        let last = values.last().ok_or(DecodeError::Truncated)?;
                        let value = scalar_json(message, field.tag, scalar, last)?;
                        (field.required || !is_empty_scalar(&value, field)).then_some(value)
                    }
                },
            };
            match json {
                Some(Value::Object(embedded)) if field.inline => object.extend(embedded),
                Some(json) => {
                    object.insert(field.json_name.to_string(), json);
                }
                None => {}
            }
        }
        Ok(object)
    }

    fn repeated_item(
        &self,
        message: &Message,
        field: &Field,
        value: &WireValue<'_>,
        depth: usize,
        items: &mut Vec<Value>,
    ) -> Result<(), DecodeError> {
        match (field.ty, value) {
            (FieldType::Message(index), value) => {
                let buf = bytes(message, field.tag, value)?;
                let item = self.message(&self.schema.messages[index], buf, depth + 1)?;
                items.push(item.unwrap_or(Value::Null));
            }
            // Packed numbers: one length-delimited run of values.
            (
                FieldType::Scalar(
                    scalar @ (Scalar::Bool | Scalar::Int32 | Scalar::Int64 | Scalar::Double),
                ),
                WireValue::Bytes(run),
            ) => {
                let mut pos = 0;
                while pos < run.len() {
                    let one = if scalar == Scalar::Double {
                        let chunk = run.get(pos..pos + 8).ok_or(DecodeError::Truncated)?;
                        pos += 8;
                        let mut raw = [0u8; 8];
                        raw.copy_from_slice(chunk);
                        WireValue::Fixed64(u64::from_le_bytes(raw))
                    } else {
                        WireValue::Varint(wire::read_varint(run, &mut pos)?)
                    };
                    items.push(scalar_json(message, field.tag, scalar, &one)?);
                }
            }
            (FieldType::Scalar(scalar), value) => {
                items.push(scalar_json(message, field.tag, scalar, value)?)
            }
        }
        Ok(())
    }

    fn map_entry(
        &self,
        message: &Message,
        field: &Field,
        entry: &[u8],
        depth: usize,
    ) -> Result<(String, Value), DecodeError> {
        let entry_fields = wire::parse(entry)?;
        let key = match entry_fields.get(&1).and_then(|v| v.last()) {
            Some(key) => string(message, field.tag, key)?,
            None => String::new(),
        };
        let value = entry_fields.get(&2).and_then(|v| v.last());
        let value = match (field.ty, value) {
            (FieldType::Message(index), value) => {
                let buf = value
                    .map(|v| bytes(message, field.tag, v))
                    .transpose()?
                    .unwrap_or_default();
                self.message(&self.schema.messages[index], buf, depth + 1)?
                    .unwrap_or(Value::Null)
            }
            (FieldType::Scalar(scalar), Some(value)) => {
                scalar_json(message, field.tag, scalar, value)?
            }
            (FieldType::Scalar(Scalar::String | Scalar::Bytes), None) => {
                Value::String(String::new())
            }
            (FieldType::Scalar(Scalar::Bool), None) => Value::Bool(false),
            (FieldType::Scalar(_), None) => Value::from(0),
        };
        Ok((key, value))
    }
}

/// RawExtension bytes: JSON as upstream's JSON clients send, or a nested protobuf envelope.
fn embedded_json(walker: &Walker<'_>, raw: &[u8], depth: usize) -> Result<Value, DecodeError> {
    if raw.starts_with(super::MAGIC) {
        return super::decode_envelope(walker.schema, raw, depth + 1);
    }
    serde_json::from_slice(raw).map_err(DecodeError::EmbeddedJson)
}

fn is_empty_scalar(value: &Value, field: &Field) -> bool {
    match value {
        Value::String(text) => text.is_empty(),
        Value::Bool(set) => field.omit_zero && !set,
        Value::Number(number) => field.omit_zero && number.as_f64() == Some(0.0),
        _ => false,
    }
}

fn scalar_json(
    message: &Message,
    tag: u32,
    scalar: Scalar,
    value: &WireValue<'_>,
) -> Result<Value, DecodeError> {
    Ok(match scalar {
        Scalar::String => Value::String(string(message, tag, value)?),
        Scalar::Bytes => Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes(message, tag, value)?),
        ),
        Scalar::Bool => Value::Bool(varint(message, tag, value)? != 0),
        // Truncation to the declared width is how protobuf reads an int32 varint.
        Scalar::Int32 => Value::from(varint(message, tag, value)? as i32),
        Scalar::Int64 => Value::from(varint(message, tag, value)? as i64),
        Scalar::Double => match value {
            WireValue::Fixed64(bits) => {
                let number = f64::from_bits(*bits);
                Value::Number(Number::from_f64(number).ok_or(DecodeError::NotFinite {
                    field: field_name(message, tag),
                })?)
            }
            _ => return Err(wrong_type(message, tag, "double")),
        },
    })
}

fn varint(message: &Message, tag: u32, value: &WireValue<'_>) -> Result<u64, DecodeError> {
    match value {
        WireValue::Varint(v) => Ok(*v),
        _ => Err(wrong_type(message, tag, "varint")),
    }
}

fn bytes<'a>(message: &Message, tag: u32, value: &WireValue<'a>) -> Result<&'a [u8], DecodeError> {
    match value {
        WireValue::Bytes(b) => Ok(b),
        _ => Err(wrong_type(message, tag, "length-delimited")),
    }
}

/// Go does not check UTF-8 in protobuf strings; its JSON encoder replaces bad sequences.
fn string(message: &Message, tag: u32, value: &WireValue<'_>) -> Result<String, DecodeError> {
    Ok(String::from_utf8_lossy(bytes(message, tag, value)?).into_owned())
}

fn wrong_type(message: &Message, tag: u32, expected: &'static str) -> DecodeError {
    DecodeError::WrongWireType {
        field: field_name(message, tag),
        expected,
    }
}

fn field_name(message: &Message, tag: u32) -> String {
    let name = message
        .fields
        .iter()
        .find(|f| f.tag == tag)
        .map_or("?", |f| f.json_name);
    format!("{}.{name}", message.short_name())
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(super) fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs();
    let body = if magnitude < 1_000_000_000 {
        let (unit, scale) = match magnitude {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        format!("{}{unit}", fraction(magnitude, scale))
    } else {
        let total_seconds = magnitude / 1_000_000_000;
        let seconds = format!("{}s", fraction(magnitude % 60_000_000_000, 1_000_000_000));
        let (hours, minutes) = (total_seconds / 3600, total_seconds / 60 % 60);
        match (hours, minutes) {
            (0, 0) => seconds,
            (0, m) => format!("{m}m{seconds}"),
            (h, m) => format!("{h}h{m}m{seconds}"),
        }
    };
    format!("{sign}{body}")
}

/// `value / scale` with the remainder as trimmed decimals.
fn fraction(value: u64, scale: u64) -> String {
    let (whole, rest) = (value / scale, value % scale);
    if rest == 0 {
        return whole.to_string();
    }
    let digits = scale.ilog10() as usize;
    let decimals = format!("{rest:0digits$}");
    format!("{whole}.{}", decimals.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1), "1ns");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(2_000_000), "2ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(-5_000_000_000), "-5s");
    }
}
