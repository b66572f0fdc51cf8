//! `kubectl explain RESOURCE[.field.path] [--recursive] [--api-version=G/V]`:
//! the schema of a kind or field from the apiserver's OpenAPI v3 documents
//! (`/openapi/v3` → the group version's document), printed as upstream's
//! `plaintext` template.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::context::Context;
use crate::errors::{Error, Result};
use crate::resource::ApiResource;

/// Width upstream wraps descriptions to (before the 4-space indent).
const WRAP: usize = 76;

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// RESOURCE[.field.path]
    pub resource: Vec<String>,
    /// When true, print the name of all the fields recursively.
    #[arg(long)]
    pub recursive: bool,
    /// Use given api-version (group/version) of the resource.
    #[arg(long)]
    pub api_version: Option<String>,
    /// Format in which to render the schema (plaintext).
    #[arg(short = 'o', long = "output", default_value = "plaintext")]
    pub output: String,
}

/// go-wordwrap's `WrapString`: greedy, on spaces, keeping existing newlines; a
/// word longer than the limit stays whole on its own line.
pub fn wrap(text: &str, limit: usize) -> String {
    let mut out = String::new();
    for (i, para) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut line_len = 0;
        let mut spaces = String::new();
        let mut word = String::new();
        let flush =
            |out: &mut String, line_len: &mut usize, spaces: &mut String, word: &mut String| {
                if word.is_empty() {
                    return;
                }
                let w = word.chars().count();
                let s = spaces.chars().count();
                if *line_len > 0 && *line_len + s + w > limit {
                    out.push('\n');
                    *line_len = 0;
                } else {
                    out.push_str(spaces);
                    *line_len += s;
                }
                out.push_str(word);
                *line_len += w;
                spaces.clear();
                word.clear();
            };
        for ch in para.chars() {
            if ch == ' ' {
                if !word.is_empty() {
                    flush(&mut out, &mut line_len, &mut spaces, &mut word);
                }
                spaces.push(ch);
            } else {
                word.push(ch);
            }
        }
        flush(&mut out, &mut line_len, &mut spaces, &mut word);
    }
    out
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.split('\n')
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The OpenAPI v3 document of one group version, with schema lookups.
pub struct Document {
    doc: Value,
}

impl Document {
    pub fn new(doc: Value) -> Document {
        Document { doc }
    }

    fn resolve_ref(&self, reference: &str) -> Option<&Value> {
        let name = reference.strip_prefix("#/components/schemas/")?;
        self.doc["components"]["schemas"].get(name)
    }

    /// The schema of `group/version, Kind=kind`.
    pub fn kind_schema(&self, group: &str, version: &str, kind: &str) -> Option<&Value> {
        self.doc["components"]["schemas"]
            .as_object()?
            .values()
            .find(|s| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|gvks| {
                        gvks.iter().any(|g| {
                            g["group"].as_str().unwrap_or("") == group
                                && g["version"] == version
                                && g["kind"] == kind
                        })
                    })
            })
    }

    /// The `$ref` a field schema points at (directly or as a lone `allOf`).
    fn reference<'a>(&self, schema: &'a Value) -> Option<&'a str> {
        if let Some(r) = schema["$ref"].as_str() {
            return Some(r);
        }
        match schema["allOf"].as_array() {
            Some(all) if all.len() == 1 && schema.get("properties").is_none() => {
                all[0]["$ref"].as_str()
            }
            _ => None,
        }
    }

    /// Upstream's `typeGuess`: `[]X`, `map[string]X`, a referenced type's name
    /// (its primitive type when it has one: `Time` is a `string`), or the type.
    pub fn type_name(&self, schema: &Value) -> String {
        if let Some(items) = schema.get("items") {
            return format!("[]{}", self.type_name(items));
        }
        if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            return format!("map[string]{}", self.type_name(ap));
        }
        if let Some(r) = self.reference(schema) {
            let target = self.resolve_ref(r);
            if let Some(t) = target.and_then(|t| t["type"].as_str()) {
                if t != "object" {
                    return t.to_string();
                }
            }
            return r.rsplit('.').next().unwrap_or(r).to_string();
        }
        schema["type"].as_str().unwrap_or("Object").to_string()
    }

    /// The object schema a field leads to (through `items`, maps and refs).
    pub fn descend<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut current = schema;
        for _ in 0..16 {
            if let Some(items) = current.get("items") {
                current = items;
            } else if let Some(ap) = current
                .get("additionalProperties")
                .filter(|a| a.is_object())
            {
                current = ap;
            } else if let Some(target) = self.reference(current).and_then(|r| self.resolve_ref(r)) {
                current = target;
            } else {
                break;
            }
        }
        current
    }

    /// The field's description followed by its type's (as upstream shows them).
    fn description(&self, field: &Value) -> String {
        let mut parts = Vec::new();
        if let Some(d) = field["description"].as_str().filter(|d| !d.is_empty()) {
            parts.push(d.to_string());
        }
        let target = self.descend(field);
        if !std::ptr::eq(target, field) {
            if let Some(d) = target["description"].as_str().filter(|d| !d.is_empty()) {
                parts.push(d.to_string());
            }
        }
        parts.join("\n")
    }

    fn fields(&self, schema: &Value) -> Vec<(String, Value, bool)> {
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out: Vec<(String, Value, bool)> = schema["properties"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.clone(), required.contains(&k.as_str())))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn recursive_fields(
        &self,
        schema: &Value,
        depth: usize,
        seen: &mut BTreeSet<String>,
        out: &mut String,
    ) {
        for (name, field, required) in self.fields(schema) {
            let req = if required { " -required-" } else { "" };
            out.push_str(&format!(
                "{}{name}\t<{}>{req}\n",
                "  ".repeat(depth),
                self.type_name(&field)
            ));
            let key = self.type_name(&field);
            let target = self.descend(&field);
            if target.get("properties").is_some() && seen.insert(key.clone()) {
                self.recursive_fields(target, depth + 1, seen, out);
                seen.remove(&key);
            }
        }
    }
}

/// Upstream's plaintext rendering of `schema` (reached through `path`).
pub fn render(
    doc: &Document,
    resource: &ApiResource,
    kind_schema: &Value,
    path: &[String],
    recursive: bool,
) -> std::result::Result<String, (String, Error)> {
    let mut out = String::new();
    if !resource.group.is_empty() {
        out.push_str(&format!("GROUP:      {}\n", resource.group));
    }
    out.push_str(&format!("KIND:       {}\n", resource.kind));
    out.push_str(&format!("VERSION:    {}\n\n", resource.version));
    let mut schema = kind_schema.clone();
    let mut field: Option<(String, Value)> = None;
    for segment in path {
        let target = doc.descend(&schema).clone();
        let Some(next) = target["properties"].get(segment.as_str()) else {
            return Err((
                out,
                Error::usage(format!("field \"{segment}\" does not exist")),
            ));
        };
        field = Some((segment.clone(), next.clone()));
        schema = next.clone();
    }
    let description = match &field {
        Some((name, f)) => {
            out.push_str(&format!("FIELD: {name} <{}>\n\n\n", doc.type_name(f)));
            doc.description(f)
        }
        None => kind_schema["description"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    };
    out.push_str("DESCRIPTION:\n");
    out.push_str(&indent(&wrap(&description, WRAP), 4));
    out.push_str("\n    \n");
    let target = doc.descend(&schema);
    let fields = doc.fields(target);
    if !fields.is_empty() {
        out.push_str("FIELDS:\n");
        if recursive {
            let mut seen = BTreeSet::new();
            doc.recursive_fields(target, 1, &mut seen, &mut out);
        } else {
            for (name, f, required) in fields {
                let req = if required { " -required-" } else { "" };
                out.push_str(&format!("  {name}\t<{}>{req}\n", doc.type_name(&f)));
                let d = f["description"].as_str().unwrap_or("");
                let d = if d.is_empty() { "<no description>" } else { d };
                out.push_str(&indent(&wrap(d, WRAP), 4));
                out.push_str("\n\n");
            }
        }
    }
    out.push('\n');
    Ok(out)
}

pub async fn run(ctx: &Context, args: ExplainArgs) -> Result<()> {
    if args.output != "plaintext" {
        return Err(Error::usage(format!(
            "unable to find output format \"{}\".",
            args.output
        )));
    }
    let [spec] = args.resource.as_slice() else {
        if args.resource.is_empty() {
            return Err(Error::usage("You must specify the type of resource to explain. Use \"kubectl api-resources\" for a complete list of supported resources."));
        }
        return Err(Error::usage("We accept only this format: explain RESOURCE"));
    };
    let discovery = ctx.discovery().await?;
    // the longest dotted prefix naming a resource (`deployments.apps.spec`)
    let parts: Vec<&str> = spec.split('.').collect();
    let found = (1..=parts.len()).rev().find_map(|i| {
        let candidate = parts[..i].join(".");
        let resource = discovery.resolve(&candidate).ok()?.into_iter().next()?;
        Some((resource, i))
    });
    let Some((mut resource, used)) = found else {
        return Err(Error::Transport(format!(
            "the server doesn't have a resource type \"{}\"",
            parts[0]
        )));
    };
    let path: Vec<String> = parts[used..].iter().map(|p| p.to_string()).collect();
    if let Some(gv) = &args.api_version {
        let (group, version) = gv.split_once('/').unwrap_or(("", gv));
        resource = discovery
            .resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.name == resource.name)
            .cloned()
            .ok_or_else(|| {
                Error::usage(format!(
                    "couldn't find resource for \"{group}/{version}, Resource={}\"",
                    resource.name
                ))
            })?;
    }
    let client = ctx.client().await?;
    let index = client.get("/openapi/v3").await?;
    let key = if resource.group.is_empty() {
        format!("api/{}", resource.version)
    } else {
        format!("apis/{}/{}", resource.group, resource.version)
    };
    let url = index["paths"][&key]["serverRelativeURL"]
        .as_str()
        .ok_or_else(|| {
            Error::usage(format!(
                "couldn't find resource for \"{}, Kind={}\"",
                resource.api_version(),
                resource.kind
            ))
        })?;
    let doc = Document::new(client.get(url).await?);
    let kind_schema = doc
        .kind_schema(&resource.group, &resource.version, &resource.kind)
        .cloned()
        .ok_or_else(|| {
            Error::usage(format!(
                "couldn't find resource for \"{}, Kind={}\"",
                resource.api_version(),
                resource.kind
            ))
        })?;
    match render(&doc, &resource, &kind_schema, &path, args.recursive) {
        Ok(text) => {
            print!("{text}");
            Ok(())
        }
        Err((partial, err)) => {
            print!("{partial}");
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wraps_like_go_wordwrap() {
        assert_eq!(wrap("aaa bbb ccc", 7), "aaa bbb\nccc");
        assert_eq!(wrap("a  b\n\nc", 10), "a  b\n\nc");
        assert_eq!(
            wrap("averyveryverylongword b", 5),
            "averyveryverylongword\nb"
        );
        assert_eq!(indent("a\n\nb", 4), "    a\n    \n    b");
    }

    #[test]
    fn type_names_follow_refs() {
        let doc = Document::new(json!({"components": {"schemas": {
            "io.k8s.api.core.v1.Container": {"type": "object", "description": "C.",
                "properties": {"name": {"type": "string"}}, "required": ["name"]},
            "io.k8s.apimachinery.pkg.apis.meta.v1.Time": {"type": "string"},
            "io.k8s.apimachinery.pkg.api.resource.Quantity": {"oneOf": []}}}}));
        let t = |v: Value| doc.type_name(&v);
        assert_eq!(
            t(
                json!({"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}]}})
            ),
            "[]Container"
        );
        assert_eq!(
            t(
                json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time"}]})
            ),
            "string"
        );
        assert_eq!(
            t(
                json!({"type": "object", "additionalProperties": {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"}]}})
            ),
            "map[string]Quantity"
        );
        assert_eq!(
            t(json!({"type": "object", "additionalProperties": {"type": "string"}})),
            "map[string]string"
        );
        let field = json!({"description": "List.", "type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}]}});
        assert_eq!(doc.description(&field), "List.\nC.");
    }
}
