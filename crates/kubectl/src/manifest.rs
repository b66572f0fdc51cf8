//! `-f/--filename` sources: files, directories (`-R` to recurse), `-` for stdin;
//! multi-document YAML or JSON, `kind: List` expanded into its items.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::errors::{Error, Result};

/// One object read from a manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file name as given (`STDIN` for `-`), for messages.
    pub source: String,
    pub object: Value,
}

/// The `-f` flags of the object-changing verbs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilenameArgs {
    /// Filename, directory, or URL to files to use
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

const EXTENSIONS: [&str; 3] = ["json", "yaml", "yml"];

impl FilenameArgs {
    pub fn is_empty(&self) -> bool {
        self.filenames.is_empty()
    }

    /// Every object of every source, in order.
    pub fn read(&self) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for name in &self.filenames {
            if name == "-" {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text)?;
                out.extend(parse_documents(&text, "STDIN")?);
                continue;
            }
            let path = Path::new(name);
            if !path.exists() {
                return Err(Error::usage(format!("the path \"{name}\" does not exist")));
            }
            if path.is_dir() {
                let mut files = Vec::new();
                collect_dir(path, self.recursive, &mut files)?;
                for file in files {
                    let text = std::fs::read_to_string(&file)?;
                    out.extend(parse_documents(&text, &file)?);
                }
            } else {
                let text = std::fs::read_to_string(path)?;
                out.extend(parse_documents(&text, name)?);
            }
        }
        if out.is_empty() {
            return Err(Error::usage("no objects passed to create"));
        }
        Ok(out)
    }
}

fn collect_dir(dir: &Path, recursive: bool, out: &mut Vec<String>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            if recursive {
                collect_dir(&path, recursive, out)?;
            }
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            out.push(path.display().to_string());
        }
    }
    Ok(())
}

/// Splits `text` into objects (YAML documents or JSON), validating kind/apiVersion.
pub fn parse_documents(text: &str, source: &str) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| yaml_error(source, &e))?;
        if value.is_null() {
            continue;
        }
        if !value.is_object() {
            return Err(Error::usage(format!(
                "error validating \"{source}\": error validating data: invalid object to validate; if you choose to ignore these errors, turn validation off with --validate=false"
            )));
        }
        for field in ["apiVersion", "kind"] {
            if value
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                return Err(Error::usage(format!(
                    "error validating \"{source}\": error validating data: {field} not set; if you choose to ignore these errors, turn validation off with --validate=false"
                )));
            }
        }
        if value["kind"] == "List" {
            for item in value["items"].as_array().cloned().unwrap_or_default() {
                out.push(Manifest {
                    source: source.to_string(),
                    object: item,
                });
            }
        } else {
            out.push(Manifest {
                source: source.to_string(),
                object: value,
            });
        }
    }
    Ok(out)
}

/// Upstream's wording: `error parsing x.yaml: error converting YAML to JSON: yaml: line 3: ...`.
fn yaml_error(source: &str, err: &serde_norway::Error) -> Error {
    let text = err.to_string();
    let message = match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text.clone(),
    };
    match err.location() {
        Some(loc) => Error::usage(format!(
            "error parsing {source}: error converting YAML to JSON: yaml: line {}: {message}",
            go_yaml_line(loc.line(), &message)
        )),
        None => Error::usage(format!(
            "error parsing {source}: error converting YAML to JSON: yaml: {message}"
        )),
    }
}

/// go-yaml reports parser errors at the 0-based line of the problem (scanner
/// errors at the 1-based one); libyaml's messages tell which kind it was.
fn go_yaml_line(line: usize, message: &str) -> usize {
    const SCANNER: [&str; 4] = [
        "comment or line break",
        "alphabetic or numeric",
        "hexdecimal",
        "URI escaped",
    ];
    let parser_error = message.starts_with("did not find expected")
        && !SCANNER.iter().any(|s| message.contains(s));
    if parser_error {
        line.saturating_sub(1).max(1)
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_and_lists() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"b\"}}]}\n";
        let docs = parse_documents(text, "x.yaml").expect("parse");
        let names: Vec<&str> = docs
            .iter()
            .filter_map(|d| d.object["metadata"]["name"].as_str())
            .collect();
        assert_eq!(names, vec!["a", "b"]);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = parse_documents(
            "kind: Pod\napiVersion: v1\nmetadata:\n  name: x\n   bad: [\n",
            "p.yaml",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.starts_with(
                "error: error parsing p.yaml: error converting YAML to JSON: yaml: line "
            ),
            "{err}"
        );
        let err = parse_documents("apiVersion: v1\nmetadata: {name: x}\n", "p.yaml")
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("error: error validating \"p.yaml\": error validating data: kind not set; if you choose to ignore these errors, turn validation off with --validate=false"));
    }
}
