//! The cheap proof that a body is clean, tried before the typed decode.
//!
//! A walk over the JSON value against a graph of the typed kinds' schemas (the same
//! k8s-openapi `schemars` schemas `patch::schema` reads). It answers `true` only when
//! the typed decode in [`super::check`] would give `Ok(vec![])`: every key is a known
//! property, every value is of the type the k8s-openapi struct takes. Values of the
//! k8s-openapi types with their own decoding (`Time`, `MicroTime`, `Quantity`,
//! `IntOrString`, `ByteString`, `FieldsV1`, `RawExtension`) and of the integer types
//! are judged by running that very type's `Deserialize` on the value, so their rules
//! (RFC 3339 parsing, base64, integer ranges, numbers for quantities) are the decoder's
//! own. Anything else — an unknown key, a mismatch, a schema shape not listed here —
//! answers `false` and the typed decode decides.

use std::sync::LazyLock;

use foldhash::{HashMap, HashMapExt};
use k8s_openapi::apimachinery::pkg::{
    api::resource::Quantity,
    apis::meta::v1::{FieldsV1, MicroTime, Time},
    runtime::RawExtension,
    util::intstr::IntOrString,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::TYPED;
use crate::patch::schema::ref_name;

/// What a value at some place must be.
#[derive(Debug)]
enum Ty {
    /// A scalar or a k8s-openapi type with its own decoding: the value is clean when
    /// this says so (for `null` too: it is asked only inside lists and maps).
    Leaf(fn(&Value) -> bool),
    /// An object of the definition with this index in [`Graph::defs`].
    Struct(usize),
    /// `Vec<T>`: a JSON array.
    List(Box<Ty>),
    /// `BTreeMap<String, T>`: a JSON object.
    Map(Box<Ty>),
    /// Not sure what the typed decode does: never clean.
    Unsure,
}

#[derive(Debug)]
struct Field {
    ty: Ty,
    /// `null` decodes (as `None`, or as the default of a required field).
    null_ok: bool,
}

#[derive(Debug, Default)]
struct Def {
    fields: HashMap<String, Field>,
    /// Required fields whose type has no safe default: absent or `null` is not clean.
    must_have: Vec<String>,
    /// A shape this walk does not model: never clean.
    unsure: bool,
}

struct Graph {
    defs: Vec<Def>,
    /// The root definition of each entry of [`TYPED`], by the same index.
    roots: Vec<Option<usize>>,
}

static GRAPH: LazyLock<Graph> = LazyLock::new(build);

/// Whether the typed decode of `obj` as `TYPED[index]` surely gives `Ok(vec![])`.
pub(super) fn is_clean(index: usize, obj: &Value) -> bool {
    let graph = &*GRAPH;
    match (graph.roots.get(index).copied().flatten(), obj.as_object()) {
        (Some(root), Some(map)) => struct_ok(graph, root, map, true),
        _ => false,
    }
}

fn struct_ok(graph: &Graph, def: usize, obj: &Map<String, Value>, root: bool) -> bool {
    let Some(def) = graph.defs.get(def) else {
        return false;
    };
    if def.unsure {
        return false;
    }
    if def
        .must_have
        .iter()
        .any(|f| crate::meta::map_field(obj, f).is_none_or(Value::is_null))
    {
        return false;
    }
    obj.iter().all(|(key, value)| {
        // The typed decode pins the root's apiVersion/kind to the served ones.
        if root && (key == "apiVersion" || key == "kind") {
            return true;
        }
        match def.fields.get(key.as_str()) {
            None => false,
            Some(field) if value.is_null() => field.null_ok,
            Some(field) => value_ok(graph, &field.ty, value),
        }
    })
}

fn value_ok(graph: &Graph, ty: &Ty, value: &Value) -> bool {
    match ty {
        Ty::Leaf(ok) => ok(value),
        Ty::Struct(def) => value
            .as_object()
            .is_some_and(|m| struct_ok(graph, *def, m, false)),
        Ty::List(inner) => value
            .as_array()
            .is_some_and(|a| a.iter().all(|v| value_ok(graph, inner, v))),
        Ty::Map(inner) => value
            .as_object()
            .is_some_and(|m| m.values().all(|v| value_ok(graph, inner, v))),
        Ty::Unsure => false,
    }
}

/// The value decodes as `T` with `T`'s own `Deserialize` (the one the typed decode runs).
fn decodes<T: DeserializeOwned>(value: &Value) -> bool {
    T::deserialize(value).is_ok()
}

fn is_string(value: &Value) -> bool {
    value.is_string()
}

/// The k8s-openapi types with their own decoding, by definition name. Each is both a
/// leaf and a type without a safe default when required (`Time` has none at all).
fn custom_leaf(name: &str) -> Option<fn(&Value) -> bool> {
    Some(match name {
        "io.k8s.apimachinery.pkg.apis.meta.v1.Time" => decodes::<Time>,
        "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime" => decodes::<MicroTime>,
        "io.k8s.apimachinery.pkg.api.resource.Quantity" => decodes::<Quantity>,
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => decodes::<IntOrString>,
        "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1" => decodes::<FieldsV1>,
        "io.k8s.apimachinery.pkg.runtime.RawExtension" => decodes::<RawExtension>,
        _ => return None,
    })
}

/// Schema keys this walk understands on a property; any other makes it unsure.
const PROPERTY_KEYS: &[&str] = &[
    "$ref",
    "type",
    "format",
    "items",
    "additionalProperties",
    "description",
];
/// Schema keys this walk understands on a struct definition.
const DEF_KEYS: &[&str] = &["type", "properties", "required", "description"];

/// Discovery kinds: resources (their apiVersion/kind are checked) without metadata.
const METALESS_RESOURCES: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
];

struct Builder<'a> {
    /// Definition name → index, for every definition with properties.
    index: HashMap<&'a str, usize>,
}

impl Builder<'_> {
    fn ty(&self, schema: &Value) -> Ty {
        let Some(map) = schema.as_object() else {
            return Ty::Unsure;
        };
        if map.keys().any(|k| !PROPERTY_KEYS.contains(&k.as_str())) {
            return Ty::Unsure;
        }
        if let Some(name) = ref_name(schema) {
            if map.len() > 2 || (map.len() == 2 && !map.contains_key("description")) {
                return Ty::Unsure;
            }
            return match (self.index.get(name), custom_leaf(name)) {
                (Some(&def), _) => Ty::Struct(def),
                (None, Some(leaf)) => Ty::Leaf(leaf),
                (None, None) => Ty::Unsure,
            };
        }
        let format = map.get("format").and_then(Value::as_str);
        match (map.get("type").and_then(Value::as_str), format) {
            (Some("string"), None) => Ty::Leaf(is_string),
            (Some("string"), Some("byte")) => Ty::Leaf(decodes::<k8s_openapi::ByteString>),
            (Some("boolean"), None) => Ty::Leaf(decodes::<bool>),
            (Some("integer"), Some("int32")) => Ty::Leaf(decodes::<i32>),
            (Some("integer"), Some("int64")) => Ty::Leaf(decodes::<i64>),
            (Some("number"), Some("double")) => Ty::Leaf(decodes::<f64>),
            (Some("array"), None) => match map.get("items") {
                Some(items) if !map.contains_key("additionalProperties") => {
                    Ty::List(Box::new(self.ty(items)))
                }
                _ => Ty::Unsure,
            },
            (Some("object"), None) => match map.get("additionalProperties") {
                Some(inner) if inner.is_object() && !map.contains_key("items") => {
                    Ty::Map(Box::new(self.ty(inner)))
                }
                _ => Ty::Unsure,
            },
            _ => Ty::Unsure,
        }
    }

    fn def(&self, name: &str, schema: &Value, props: &Map<String, Value>) -> Def {
        let unsure = schema.get("type").and_then(Value::as_str) != Some("object")
            || schema
                .as_object()
                .is_some_and(|m| m.keys().any(|k| !DEF_KEYS.contains(&k.as_str())));
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // A resource nested in another object has its apiVersion/kind checked against
        // its own; only the root's are pinned.
        let resource = props.contains_key("apiVersion")
            && props.contains_key("kind")
            && (props.contains_key("metadata") || METALESS_RESOURCES.contains(&name));
        let mut fields = HashMap::with_capacity(props.len());
        let mut must_have = Vec::new();
        for (field, prop) in props {
            let ty = if resource && (field == "apiVersion" || field == "kind") {
                Ty::Unsure
            } else {
                self.ty(prop)
            };
            // Required fields decode absent/null as their default, except types with
            // their own decoding (no default, as `Time`) and ones we are unsure of.
            let defaultable = !matches!(ty, Ty::Unsure)
                && ref_name(prop).is_none_or(|n| self.index.contains_key(n));
            let null_ok =
                !matches!(ty, Ty::Unsure) && (defaultable || !required.contains(&field.as_str()));
            if !defaultable && required.contains(&field.as_str()) {
                must_have.push(field.clone());
            }
            fields.insert(field.clone(), Field { ty, null_ok });
        }
        Def {
            fields,
            must_have,
            unsure,
        }
    }
}

fn build() -> Graph {
    let mut gen = schemars::SchemaGenerator::default();
    let root_names: Vec<Option<String>> = TYPED
        .iter()
        .map(|t| ref_name((t.schema)(&mut gen).as_value()).map(str::to_string))
        .collect();
    let definitions = gen.definitions();
    let with_props: Vec<(&str, &Value, &Map<String, Value>)> = definitions
        .iter()
        .filter_map(|(name, schema)| {
            let props = schema.get("properties").and_then(Value::as_object)?;
            Some((name.as_str(), schema, props))
        })
        .collect();
    let builder = Builder {
        index: with_props
            .iter()
            .enumerate()
            .map(|(i, (name, _, _))| (*name, i))
            .collect(),
    };
    let defs = with_props
        .iter()
        .map(|(name, schema, props)| builder.def(name, schema, props))
        .collect();
    let roots = root_names
        .iter()
        .map(|n| n.as_deref().and_then(|n| builder.index.get(n).copied()))
        .collect();
    Graph { defs, roots }
}

#[cfg(test)]
mod tests;
