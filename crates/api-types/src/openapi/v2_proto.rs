//! Protobuf encoding of the Swagger 2.0 document as gnostic's `openapi.v2.Document`
//! (`github.com/google/gnostic-models/openapiv2/OpenAPIv2.proto`).
//!
//! client-go's `DiscoveryClient.OpenAPISchema` asks for `/openapi/v2` with
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and only parses
//! protobuf; kubectl uses it for client-side validation (e.g. of `kind: List` files) and
//! as the second source of strategic-merge metadata. Only the fields kubectl reads are
//! encoded; vendor extensions carry their value as YAML (JSON text is valid YAML).

use serde_json::{Map, Value};

const VARINT: u32 = 0;
const LEN: u32 = 2;

/// A protobuf message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from((field << 3) | wire));
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            // Truncation to the low 7 bits is the varint encoding.
            self.0.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, LEN);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    /// A proto3 string: empty strings are not written.
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn opt_str(&mut self, field: u32, v: Option<&Value>) {
        if let Some(s) = v.and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    fn strings(&mut self, field: u32, v: Option<&Value>) {
        for s in v.and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = s.as_str() {
                self.bytes(field, s.as_bytes());
            }
        }
    }

    /// A bool; `force` writes `false` too (a oneof member must be present).
    fn boolean(&mut self, field: u32, b: bool, force: bool) {
        if b || force {
            self.key(field, VARINT);
            self.varint(u64::from(b));
        }
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }
}

fn build(f: impl FnOnce(&mut Msg)) -> Msg {
    let mut m = Msg::default();
    f(&mut m);
    m
}

/// `Any { yaml = 2 }` with the value as JSON text.
fn any(value: &Value) -> Msg {
    build(|m| m.string(2, &value.to_string()))
}

/// `repeated NamedAny vendor_extension` from the `x-` keys of an object.
fn vendor_extensions(m: &mut Msg, field: u32, obj: &Map<String, Value>) {
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
        m.message(
            field,
            build(|n| {
                n.string(1, k);
                n.message(2, any(v));
            }),
        );
    }
}

fn schema(value: &Value) -> Msg {
    let Some(obj) = value.as_object() else {
        return Msg::default();
    };
    build(|m| {
        m.opt_str(1, obj.get("$ref"));
        m.opt_str(2, obj.get("format"));
        m.opt_str(3, obj.get("title"));
        m.opt_str(4, obj.get("description"));
        m.strings(19, obj.get("required"));
        for e in obj
            .get("enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            m.message(20, any(e));
        }
        match obj.get("additionalProperties") {
            Some(Value::Bool(b)) => m.message(21, build(|a| a.boolean(2, *b, true))),
            Some(s @ Value::Object(_)) => m.message(21, build(|a| a.message(1, schema(s)))),
            _ => {}
        }
        match obj.get("type") {
            Some(Value::String(t)) => m.message(22, build(|t_msg| t_msg.string(1, t))),
            Some(types @ Value::Array(_)) => {
                m.message(22, build(|t_msg| t_msg.strings(1, Some(types))))
            }
            _ => {}
        }
        match obj.get("items") {
            Some(s @ Value::Object(_)) => m.message(23, build(|i| i.message(1, schema(s)))),
            Some(Value::Array(list)) => m.message(
                23,
                build(|i| list.iter().for_each(|s| i.message(1, schema(s)))),
            ),
            _ => {}
        }
        for s in obj
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            m.message(24, schema(s));
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            m.message(
                25,
                build(|p| {
                    for (name, s) in props {
                        p.message(
                            1,
                            build(|n| {
                                n.string(1, name);
                                n.message(2, schema(s));
                            }),
                        );
                    }
                }),
            );
        }
        if let Some(Value::Bool(b)) = obj.get("readOnly") {
            m.boolean(27, *b, false);
        }
        vendor_extensions(m, 31, obj);
    })
}

/// `ParametersItem { Parameter parameter = 1 }`.
fn parameter(value: &Value) -> Msg {
    let get = |k: &str| value.get(k);
    let required = get("required").and_then(Value::as_bool).unwrap_or(false);
    let unique = get("uniqueItems").and_then(Value::as_bool).unwrap_or(false);
    let param = match get("in").and_then(Value::as_str) {
        Some("body") => build(|p| {
            p.message(
                1,
                build(|b| {
                    b.opt_str(1, get("description"));
                    b.opt_str(2, get("name"));
                    b.opt_str(3, get("in"));
                    b.boolean(4, required, false);
                    if let Some(s) = get("schema") {
                        b.message(5, schema(s));
                    }
                }),
            )
        }),
        Some("path") => build(|p| {
            p.message(
                2,
                build(|nb| {
                    nb.message(
                        4,
                        build(|q| {
                            q.boolean(1, required, false);
                            q.opt_str(2, get("in"));
                            q.opt_str(3, get("description"));
                            q.opt_str(4, get("name"));
                            q.opt_str(5, get("type"));
                            q.boolean(19, unique, false);
                        }),
                    )
                }),
            )
        }),
        _ => build(|p| {
            p.message(
                2,
                build(|nb| {
                    nb.message(
                        3,
                        build(|q| {
                            q.boolean(1, required, false);
                            q.opt_str(2, get("in"));
                            q.opt_str(3, get("description"));
                            q.opt_str(4, get("name"));
                            q.opt_str(6, get("type"));
                            q.boolean(20, unique, false);
                        }),
                    )
                }),
            )
        }),
    };
    build(|item| item.message(1, param))
}

fn operation(value: &Value) -> Msg {
    let Some(obj) = value.as_object() else {
        return Msg::default();
    };
    build(|m| {
        m.strings(1, obj.get("tags"));
        m.opt_str(3, obj.get("description"));
        m.opt_str(5, obj.get("operationId"));
        m.strings(6, obj.get("produces"));
        m.strings(7, obj.get("consumes"));
        for p in obj
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            m.message(8, parameter(p));
        }
        if let Some(responses) = obj.get("responses").and_then(Value::as_object) {
            m.message(
                9,
                build(|r| {
                    for (code, resp) in responses {
                        r.message(
                            1,
                            build(|named| {
                                named.string(1, code);
                                named.message(
                                    2,
                                    build(|rv| {
                                        rv.message(
                                            1,
                                            build(|resp_msg| {
                                                resp_msg.opt_str(1, resp.get("description"));
                                                if let Some(s) = resp.get("schema") {
                                                    resp_msg.message(
                                                        2,
                                                        build(|si| si.message(1, schema(s))),
                                                    );
                                                }
                                            }),
                                        )
                                    }),
                                );
                            }),
                        );
                    }
                }),
            );
        }
        m.strings(10, obj.get("schemes"));
        vendor_extensions(m, 13, obj);
    })
}

fn path_item(value: &Value) -> Msg {
    build(|m| {
        for (field, method) in [
            (2, "get"),
            (3, "put"),
            (4, "post"),
            (5, "delete"),
            (8, "patch"),
        ] {
            if let Some(op) = value.get(method) {
                m.message(field, operation(op));
            }
        }
        for p in value
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            m.message(9, parameter(p));
        }
    })
}

/// Encodes a Swagger 2.0 JSON document as an `openapi.v2.Document`.
pub(crate) fn encode(doc: &Value) -> Vec<u8> {
    let m = build(|m| {
        m.opt_str(1, doc.get("swagger"));
        if let Some(info) = doc.get("info") {
            m.message(
                2,
                build(|i| {
                    i.opt_str(1, info.get("title"));
                    i.opt_str(2, info.get("version"));
                }),
            );
        }
        if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            m.message(
                8,
                build(|p| {
                    for (path, item) in paths {
                        p.message(
                            2,
                            build(|named| {
                                named.string(1, path);
                                named.message(2, path_item(item));
                            }),
                        );
                    }
                }),
            );
        }
        if let Some(defs) = doc.get("definitions").and_then(Value::as_object) {
            m.message(
                9,
                build(|d| {
                    for (name, s) in defs {
                        d.message(
                            1,
                            build(|named| {
                                named.string(1, name);
                                named.message(2, schema(s));
                            }),
                        );
                    }
                }),
            );
        }
        for req in doc
            .get("security")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(req) = req.as_object() else { continue };
            m.message(
                12,
                build(|r| {
                    for (name, scopes) in req {
                        r.message(
                            1,
                            build(|named| {
                                named.string(1, name);
                                named.message(2, build(|arr| arr.strings(1, Some(scopes))));
                            }),
                        );
                    }
                }),
            );
        }
        if let Some(defs) = doc.get("securityDefinitions").and_then(Value::as_object) {
            m.message(
                13,
                build(|sd| {
                    for (name, def) in defs {
                        sd.message(
                            1,
                            build(|named| {
                                named.string(1, name);
                                named.message(
                                    2,
                                    build(|item| {
                                        item.message(
                                            2,
                                            build(|k| {
                                                k.opt_str(1, def.get("type"));
                                                k.opt_str(2, def.get("name"));
                                                k.opt_str(3, def.get("in"));
                                                k.opt_str(4, def.get("description"));
                                            }),
                                        );
                                    }),
                                );
                            }),
                        );
                    }
                }),
            );
        }
    });
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    // The subset of gnostic's messages the test decodes (unknown fields are skipped).
    #[derive(Clone, PartialEq, Message)]
    struct Document {
        #[prost(string, tag = "1")]
        swagger: String,
        #[prost(message, optional, tag = "9")]
        definitions: Option<Definitions>,
    }
    #[derive(Clone, PartialEq, Message)]
    struct Definitions {
        #[prost(message, repeated, tag = "1")]
        additional_properties: Vec<NamedSchema>,
    }
    #[derive(Clone, PartialEq, Message)]
    struct NamedSchema {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, optional, tag = "2")]
        value: Option<Schema>,
    }
    #[derive(Clone, PartialEq, Message)]
    struct Schema {
        #[prost(string, tag = "1")]
        reference: String,
        #[prost(string, tag = "4")]
        description: String,
        #[prost(message, optional, tag = "22")]
        r#type: Option<TypeItem>,
        #[prost(message, optional, tag = "25")]
        properties: Option<Definitions>,
        #[prost(message, repeated, tag = "31")]
        vendor_extension: Vec<NamedAny>,
    }
    #[derive(Clone, PartialEq, Message)]
    struct TypeItem {
        #[prost(string, repeated, tag = "1")]
        value: Vec<String>,
    }
    #[derive(Clone, PartialEq, Message)]
    struct NamedAny {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(message, optional, tag = "2")]
        value: Option<Any>,
    }
    #[derive(Clone, PartialEq, Message)]
    struct Any {
        #[prost(string, tag = "2")]
        yaml: String,
    }

    #[test]
    fn encodes_definitions_as_gnostic_messages() {
        let doc = serde_json::json!({
            "swagger": "2.0",
            "definitions": {
                "io.k8s.api.core.v1.Pod": {
                    "description": "Pod is a collection of containers.",
                    "type": "object",
                    "properties": {
                        "spec": {"$ref": "#/definitions/io.k8s.api.core.v1.PodSpec", "description": "d"},
                    },
                    "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}],
                },
            },
        });
        let decoded = Document::decode(encode(&doc).as_slice()).expect("valid protobuf");
        assert_eq!(decoded.swagger, "2.0");
        let defs = decoded
            .definitions
            .expect("definitions")
            .additional_properties;
        assert_eq!(defs[0].name, "io.k8s.api.core.v1.Pod");
        let pod = defs[0].value.as_ref().expect("schema");
        assert_eq!(
            pod.r#type.as_ref().map(|t| t.value.clone()),
            Some(vec!["object".to_string()])
        );
        let spec = &pod
            .properties
            .as_ref()
            .expect("properties")
            .additional_properties[0];
        assert_eq!(spec.name, "spec");
        assert_eq!(
            spec.value.as_ref().map(|s| s.reference.as_str()),
            Some("#/definitions/io.k8s.api.core.v1.PodSpec")
        );
        let ext = &pod.vendor_extension[0];
        assert_eq!(ext.name, "x-kubernetes-group-version-kind");
        assert_eq!(
            ext.value.as_ref().map(|a| a.yaml.as_str()),
            Some(r#"[{"group":"","kind":"Pod","version":"v1"}]"#)
        );
    }

    #[test]
    fn full_document_round_trips_every_definition() {
        let json = crate::openapi::v2_value();
        let decoded = Document::decode(crate::openapi::v2_document_protobuf().as_slice())
            .expect("valid protobuf");
        let defs = decoded
            .definitions
            .expect("definitions")
            .additional_properties;
        let expected = json["definitions"].as_object().map(|d| d.len());
        assert_eq!(Some(defs.len()), expected);
        let deployment = defs
            .iter()
            .find(|d| d.name == "io.k8s.api.apps.v1.Deployment")
            .and_then(|d| d.value.as_ref())
            .expect("Deployment definition");
        assert!(deployment.description.starts_with("Deployment enables"));
    }
}
