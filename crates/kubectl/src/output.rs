//! `-o/--output` formats of commands that print objects (`get`, `create`,
//! `apply`, ...), and the generic (non-table) printing of objects.

use serde_json::{json, Value};

use crate::errors::{Error, Result};
use crate::printers::gotemplate::GoTemplate;
use crate::printers::jsonpath::{relaxed, JsonPath};
use crate::printers::{json::to_json, tabwrite, yaml::to_yaml};

#[derive(Debug, Clone)]
pub enum OutputFormat {
    /// Tables; `wide` adds the priority > 0 columns.
    Human {
        wide: bool,
    },
    Yaml,
    Json,
    Name,
    JsonPath(JsonPath),
    CustomColumns(Vec<(String, JsonPath)>),
    GoTemplate(GoTemplate),
}

impl OutputFormat {
    pub fn parse(output: Option<&str>) -> Result<OutputFormat> {
        let Some(output) = output else {
            return Ok(OutputFormat::Human { wide: false });
        };
        let (name, arg) = match output.split_once('=') {
            Some((n, a)) => (n, Some(a)),
            None => (output, None),
        };
        let file_arg = |arg: Option<&str>| -> Result<String> {
            let path =
                arg.ok_or_else(|| Error::usage("template format specified but no template given"))?;
            std::fs::read_to_string(path).map_err(|e| {
                Error::usage(format!(
                    "error reading --template {path}, open {path}: {}",
                    crate::config::io_reason(&e)
                ))
            })
        };
        match name {
            "" => Ok(OutputFormat::Human { wide: false }),
            "wide" => Ok(OutputFormat::Human { wide: true }),
            "yaml" => Ok(OutputFormat::Yaml),
            "json" => Ok(OutputFormat::Json),
            "name" => Ok(OutputFormat::Name),
            "jsonpath" | "jsonpath-as-json" => Self::jsonpath(arg.unwrap_or("")),
            "jsonpath-file" => Self::jsonpath(&file_arg(arg)?),
            "go-template" | "template" => Self::go_template(arg.unwrap_or("")),
            "go-template-file" | "templatefile" => Self::go_template(&file_arg(arg)?),
            "custom-columns" => Self::custom_columns(arg.unwrap_or("")),
            "custom-columns-file" => Self::custom_columns_file(&file_arg(arg)?),
            _ => Err(Error::usage(format!(
                "unable to match a printer suitable for the output format \"{output}\", allowed formats are: custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,template,templatefile,wide,yaml"
            ))),
        }
    }

    fn jsonpath(template: &str) -> Result<OutputFormat> {
        if template.is_empty() {
            return Err(Error::usage(
                "template format specified but no template given",
            ));
        }
        JsonPath::parse(template)
            .map(OutputFormat::JsonPath)
            .map_err(|e| Error::usage(format!("error parsing jsonpath {template}, {e}")))
    }

    fn go_template(template: &str) -> Result<OutputFormat> {
        if template.is_empty() {
            return Err(Error::usage(
                "template format specified but no template given",
            ));
        }
        GoTemplate::parse(template)
            .map(OutputFormat::GoTemplate)
            .map_err(|e| Error::usage(format!("error parsing template {template}, {e}")))
    }

    fn custom_columns(spec: &str) -> Result<OutputFormat> {
        if spec.is_empty() {
            return Err(Error::usage(
                "custom-columns format specified but no custom columns given",
            ));
        }
        let mut columns = Vec::new();
        for part in spec.split(',') {
            let (header, path) = part.split_once(':').ok_or_else(|| {
                Error::usage(format!(
                    "unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>"
                ))
            })?;
            let parsed = JsonPath::parse(&relaxed(path))
                .map_err(|e| Error::usage(format!("error parsing jsonpath {path}, {e}")))?;
            columns.push((header.to_string(), parsed));
        }
        Ok(OutputFormat::CustomColumns(columns))
    }

    fn custom_columns_file(text: &str) -> Result<OutputFormat> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let headers: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        let paths: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        if headers.len() != paths.len() {
            return Err(Error::usage(format!(
                "expected {} columns, found {}",
                headers.len(),
                paths.len()
            )));
        }
        let spec: Vec<String> = headers
            .iter()
            .zip(paths)
            .map(|(h, p)| format!("{h}:{p}"))
            .collect();
        Self::custom_columns(&spec.join(","))
    }

    pub fn is_human(&self) -> bool {
        matches!(self, OutputFormat::Human { .. })
    }
}

/// `deployment.apps/x` for an object (upstream's name printer).
pub fn object_name(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or_default().to_lowercase();
    let group = obj["apiVersion"]
        .as_str()
        .and_then(|av| av.split_once('/'))
        .map(|(g, _)| g)
        .unwrap_or("");
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}.{group}/{name}")
    }
}

/// A `kind: List` of `items` as kubectl prints several objects.
pub fn as_list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
}

/// Prints objects in a non-table format. `single` prints the lone object as
/// itself rather than inside a List.
pub fn print_objects(format: &OutputFormat, items: Vec<Value>, single: bool) -> Result<String> {
    let data = if single && items.len() == 1 {
        items.into_iter().next().unwrap_or(Value::Null)
    } else {
        as_list(items)
    };
    print_value(format, &data)
}

/// Prints one value (an object or a List) in a non-table format.
pub fn print_value(format: &OutputFormat, data: &Value) -> Result<String> {
    let items: Vec<&Value> = if data["kind"] == "List" {
        data["items"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    } else {
        vec![data]
    };
    Ok(match format {
        OutputFormat::Yaml => to_yaml(data),
        OutputFormat::Json => to_json(data),
        OutputFormat::Name => items.iter().map(|o| object_name(o) + "\n").collect(),
        OutputFormat::JsonPath(path) => path.execute(data).map_err(|e| {
            Error::usage(format!(
                "error executing jsonpath {:?}: Error executing template: {e}. Printing more information for debugging the template:\n\ttemplate was:\n\t\t{}\n\tobject given to jsonpath engine was:\n\t\t{}\n\n",
                path.template(),
                path.template(),
                crate::printers::jsonpath::go_syntax(data)
            ))
        })?,
        OutputFormat::GoTemplate(template) => template.execute(data).map_err(|e| {
            Error::usage(format!("error executing template {:?}: {e}", template.source()))
        })?,
        OutputFormat::CustomColumns(columns) => {
            let mut rows = vec![columns.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>()];
            for item in items {
                let mut row = Vec::new();
                for (_, path) in columns {
                    let values = path.values(item).unwrap_or_default();
                    let texts: Vec<String> = values
                        .iter()
                        .map(crate::printers::jsonpath::value_text)
                        .collect();
                    row.push(if texts.is_empty() {
                        "<none>".to_string()
                    } else {
                        texts.join(",")
                    });
                }
                rows.push(row);
            }
            tabwrite(&rows)
        }
        OutputFormat::Human { .. } => items.iter().map(|o| object_name(o) + "\n").collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lists_and_columns() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                         "spec": {"containers": [{"image": "a"}, {"image": "b"}]}});
        let deploy =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        assert_eq!(object_name(&deploy), "deployment.apps/d");
        let out = print_objects(&OutputFormat::Name, vec![pod.clone(), deploy], false)
            .unwrap_or_default();
        assert_eq!(out, "pod/web\ndeployment.apps/d\n");
        let cc = OutputFormat::parse(Some(
            "custom-columns=NAME:.metadata.name,IMAGES:.spec.containers[*].image,X:.x",
        ))
        .expect("parse");
        assert_eq!(
            print_objects(&cc, vec![pod.clone()], true).unwrap_or_default(),
            "NAME   IMAGES   X\nweb    a,b      <none>\n"
        );
        let yaml = print_objects(&OutputFormat::Yaml, vec![], false).unwrap_or_default();
        assert_eq!(
            yaml,
            "apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n"
        );
        assert!(OutputFormat::parse(Some("bogus")).is_err());
    }
}
