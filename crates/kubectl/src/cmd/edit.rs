//! `kubectl edit (TYPE NAME | TYPE/NAME | -f FILE) [-o yaml|json]`: the live
//! object(s) in `$KUBE_EDITOR` / `$EDITOR` / `vi`, then a patch from what was
//! fetched to what was saved.
//!
//! As upstream's `NormalEditMode`: one file (a `List` for several objects), a
//! header comment (YAML only), an unchanged file cancels, an invalid file
//! (unparsable, or a 422 from the server) is re-opened with the reasons as
//! comments at the top, and re-saving it unchanged gives up, keeping a copy.
//! As upstream, the patch is the two-way diff of fetched vs saved, so it only
//! carries `metadata.resourceVersion` when the user changed it: a concurrent
//! change to other fields is merged, not refused (upstream 1.32 does the same).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::cmd::create::strip_managed_fields;
use crate::cmd::{display_name, manifest_target, parse_targets};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::manifest::FilenameArgs;
use crate::printers::{json::to_json, yaml::to_yaml};
use crate::resource::ApiResource;

const HEADER: &str = "# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
";

#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// (TYPE NAME | TYPE/NAME)
    pub resources: Vec<String>,
    /// Output format. One of: (json, yaml).
    #[arg(short = 'o', long, default_value = "yaml")]
    pub output: String,
    /// Name of the manager used to track field ownership.
    #[arg(long, default_value = "kubectl-edit")]
    pub field_manager: String,
    /// Defaults to the line ending native to your platform.
    #[arg(long)]
    pub windows_line_endings: bool,
    #[command(flatten)]
    pub filenames: FilenameArgs,
    #[command(flatten)]
    pub validate: crate::cmd::create::ValidateArgs,
}

/// One object being edited.
struct Edited {
    resource: ApiResource,
    namespace: String,
    original: Value,
}

/// Why the last save was refused: `head` and its `* ...` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub head: String,
    pub causes: Vec<String>,
}

/// The file's text: the header, the reasons of the last failure, the objects.
pub fn render_file(body: &str, reasons: &[Reason], yaml: bool) -> String {
    if !yaml {
        return body.to_string();
    }
    let mut out = HEADER.to_string();
    for r in reasons {
        out.push_str(&format!("# {}:\n", r.head));
        for c in &r.causes {
            out.push_str(&format!("# * {c}\n"));
        }
        out.push_str("#\n");
    }
    out.push_str(body);
    out
}

/// `cmdutil.StripComments`: drops the lines starting with `#`.
pub fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The causes of a 422 `Status` message (`Kind "x" is invalid: field: msg, ...`).
pub fn invalid_causes(message: &str) -> Vec<String> {
    let Some((_, rest)) = message.split_once(" is invalid: ") else {
        return vec![message.to_string()];
    };
    let rest = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .map_or_else(
            || vec![rest.to_string()],
            |inner| inner.split(", ").map(str::to_string).collect(),
        );
    rest
}

/// The editor command line: `KUBE_EDITOR`, then `EDITOR`, then `vi`.
fn editor() -> String {
    for var in ["KUBE_EDITOR", "EDITOR"] {
        if let Ok(e) = std::env::var(var) {
            if !e.trim().is_empty() {
                return e;
            }
        }
    }
    "vi".to_string()
}

fn launch_editor(path: &Path) -> Result<()> {
    let editor = editor();
    let mut command = if editor.contains(char::is_whitespace) {
        let mut c = std::process::Command::new("sh");
        c.arg("-c").arg(format!("{editor} \"$0\"")).arg(path);
        c
    } else {
        let mut c = std::process::Command::new(&editor);
        c.arg(path);
        c
    };
    let status = command.status().map_err(|e| {
        Error::usage(format!(
            "unable to launch the editor \"{editor}\": {}",
            crate::config::io_reason(&e)
        ))
    })?;
    if !status.success() {
        return Err(Error::usage(format!(
            "there was a problem with the editor \"{editor}\""
        )));
    }
    Ok(())
}

/// A fresh `/tmp/kubectl-edit-NNNN.{yaml,json}`.
fn temp_file(ext: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = u64::from(nanos) ^ (u64::from(std::process::id()) << 20);
    std::env::temp_dir().join(format!("kubectl-edit-{}.{ext}", n % 10_000_000_000))
}

/// A JSON merge patch from `from` to `to` (types without strategic metadata).
pub fn merge_diff(from: &Value, to: &Value) -> Value {
    let (Some(f), Some(t)) = (from.as_object(), to.as_object()) else {
        return to.clone();
    };
    let mut out = Map::new();
    for (k, v) in t {
        match f.get(k) {
            Some(old) if old == v => {}
            Some(old) if old.is_object() && v.is_object() => {
                out.insert(k.clone(), merge_diff(old, v));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    for k in f.keys() {
        if !t.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    Value::Object(out)
}

async fn gather(ctx: &Context, args: &EditArgs) -> Result<Vec<Edited>> {
    let discovery = ctx.discovery().await?;
    let client = ctx.client().await?;
    let namespace = ctx.namespace();
    let mut out = Vec::new();
    if !args.filenames.is_empty() {
        for m in args.filenames.read()? {
            let (resource, ns) = manifest_target(ctx, discovery, &m)?;
            let name = m.object["metadata"]["name"].as_str().unwrap_or_default();
            let original = client.get(&resource.object_path(&ns, name)).await?;
            out.push(Edited {
                resource,
                namespace: ns,
                original,
            });
        }
    }
    for target in parse_targets(discovery, &args.resources)? {
        if target.names.is_empty() {
            let list = client
                .get(&target.resource.collection_path(Some(&namespace)))
                .await?;
            for mut item in list["items"].as_array().cloned().unwrap_or_default() {
                item["apiVersion"] = json!(target.resource.api_version());
                item["kind"] = json!(target.resource.kind);
                out.push(Edited {
                    resource: target.resource.clone(),
                    namespace: namespace.clone(),
                    original: item,
                });
            }
            continue;
        }
        for name in &target.names {
            let original = client
                .get(&target.resource.object_path(&namespace, name))
                .await?;
            out.push(Edited {
                resource: target.resource.clone(),
                namespace: namespace.clone(),
                original,
            });
        }
    }
    Ok(out)
}

fn serialize(value: &Value, yaml: bool, windows: bool) -> String {
    let text = if yaml { to_yaml(value) } else { to_json(value) };
    if windows {
        text.replace('\n', "\r\n")
    } else {
        text
    }
}

fn key(obj: &Value) -> (String, String, String) {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (s("/kind"), s("/metadata/name"), s("/metadata/namespace"))
}

/// The outcome of saving one edited file.
enum Saved {
    Done,
    /// Re-open with these reasons.
    Invalid(Vec<Reason>, Error),
}

async fn save(ctx: &Context, args: &EditArgs, objects: &[Edited], text: &str) -> Result<Saved> {
    let client = ctx.client().await?;
    let stripped = strip_comments(text);
    let parsed: std::result::Result<Value, String> =
        serde_norway::from_str(&stripped).map_err(|e| {
            let msg = e.to_string();
            match e.location() {
                // go-yaml names the last line for an error at the end of input
                Some(loc) => format!(
                    "yaml: line {}: {}",
                    loc.line().min(stripped.lines().count().max(1)),
                    msg.split(" at line ").next().unwrap_or(&msg)
                ),
                None => format!("yaml: {msg}"),
            }
        });
    let first = &objects[0];
    let first_name = first.original["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let edited = match parsed {
        Ok(v) if v.is_object() => v,
        Ok(_) | Err(_) => {
            let detail = match &parsed {
                Err(e) => e.clone(),
                Ok(_) => "invalid object".to_string(),
            };
            let reason = Reason {
                head: format!(
                    "{} \"{first_name}\" was not valid",
                    first.resource.qualified_name()
                ),
                causes: vec![format!(
                    "<nil>: Invalid value: \"The edited file failed validation\": {detail}"
                )],
            };
            let err = Error::usage(format!(
                "{} \"{first_name}\" is invalid",
                first.resource.qualified_name()
            ));
            return Ok(Saved::Invalid(vec![reason], err));
        }
    };
    let items: Vec<Value> = if edited["kind"] == "List" {
        edited["items"].as_array().cloned().unwrap_or_default()
    } else {
        vec![edited]
    };
    let mut reasons = Vec::new();
    let mut last_error = None;
    for item in items {
        let Some(obj) = objects.iter().find(|o| key(&o.original) == key(&item)) else {
            return Err(Error::usage(
                "At least one of apiVersion, kind and name was changed",
            ));
        };
        let original = strip_managed_fields(obj.original.clone());
        let name = key(&item).1;
        if original == item {
            println!("{} skipped", display_name(&obj.resource, &name));
            continue;
        }
        let info = api_types::registry::lookup(
            &obj.resource.group,
            &obj.resource.version,
            &obj.resource.name,
        );
        let (patch, content_type) = match info {
            Some(info) => (
                api_types::patch::two_way_merge_patch(info, &original, &item)
                    .map_err(|e| Error::usage(format!("creating patch: {}", e.message)))?,
                "application/strategic-merge-patch+json",
            ),
            None => (merge_diff(&original, &item), "application/merge-patch+json"),
        };
        if patch.as_object().is_some_and(Map::is_empty) {
            println!("{} skipped", display_name(&obj.resource, &name));
            continue;
        }
        let path = format!(
            "{}?fieldManager={}&fieldValidation={}",
            obj.resource.object_path(&obj.namespace, &name),
            crate::client::encode(&args.field_manager),
            args.validate.directive()?
        );
        match client
            .patch(&path, content_type, serde_json::to_vec(&patch)?)
            .await
        {
            Ok(_) => println!("{} edited", display_name(&obj.resource, &name)),
            Err(Error::Server(e)) if e.code == 422 => {
                let qualified = obj.resource.qualified_name();
                reasons.push(Reason {
                    head: format!("{qualified} \"{name}\" was not valid"),
                    causes: invalid_causes(&e.message),
                });
                last_error = Some(Error::usage(format!("{qualified} \"{name}\" is invalid")));
            }
            Err(e) => return Err(e),
        }
    }
    match last_error {
        Some(err) => Ok(Saved::Invalid(reasons, err)),
        None => Ok(Saved::Done),
    }
}

pub async fn run(ctx: &Context, args: EditArgs) -> Result<()> {
    let yaml = match args.output.as_str() {
        "yaml" => true,
        "json" => false,
        other => {
            return Err(Error::usage(format!(
                "the edit mode doesn't support output the format \"{other}\""
            )))
        }
    };
    if args.resources.is_empty() && args.filenames.is_empty() {
        return Err(Error::usage("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'"));
    }
    let objects = gather(ctx, &args).await?;
    if objects.is_empty() {
        eprintln!("Edit cancelled, no objects found.");
        return Ok(());
    }
    let shown: Vec<Value> = objects
        .iter()
        .map(|o| strip_managed_fields(o.original.clone()))
        .collect();
    let value = if shown.len() == 1 {
        shown[0].clone()
    } else {
        // upstream's edit List has empty metadata
        json!({"apiVersion": "v1", "items": shown, "kind": "List", "metadata": {}})
    };
    let body = serialize(&value, yaml, args.windows_line_endings);
    let original_text = render_file(&body, &[], yaml);
    let path = temp_file(if yaml { "yaml" } else { "json" });
    let mut to_write = original_text.clone();
    // the previous failed save, when re-opened
    let mut failed: Option<(String, Error)> = None;
    loop {
        std::fs::write(&path, &to_write)?;
        launch_editor(&path)?;
        let edited = std::fs::read_to_string(&path)?;
        if let Some((previous, err)) = failed.take() {
            if strip_comments(&previous) == strip_comments(&edited) {
                err.print();
                eprintln!(
                    "A copy of your changes has been stored to \"{}\"",
                    path.display()
                );
                return Err(Error::usage("Edit cancelled, no valid changes were saved."));
            }
        }
        if strip_comments(&original_text) == strip_comments(&edited) {
            let _ = std::fs::remove_file(&path);
            eprintln!("Edit cancelled, no changes made.");
            return Ok(());
        }
        if strip_comments(&edited).trim().is_empty() {
            let _ = std::fs::remove_file(&path);
            eprintln!("Edit cancelled, saved file was empty.");
            return Ok(());
        }
        match save(ctx, &args, &objects, &edited).await {
            Ok(Saved::Done) => {
                let _ = std::fs::remove_file(&path);
                return Ok(());
            }
            Ok(Saved::Invalid(reasons, err)) => {
                to_write = render_file(&strip_comments(&edited), &reasons, yaml);
                failed = Some((to_write.clone(), err));
            }
            Err(e) => {
                eprintln!(
                    "A copy of your changes has been stored to \"{}\"",
                    path.display()
                );
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_reasons_and_comments() {
        let reasons = vec![Reason {
            head: "deployments.apps \"web\" was not valid".into(),
            causes: vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0".into(),
            ],
        }];
        let text = render_file("kind: Deployment\n", &reasons, true);
        assert_eq!(
            text,
            format!("{HEADER}# deployments.apps \"web\" was not valid:\n# * spec.replicas: Invalid value: -1: must be greater than or equal to 0\n#\nkind: Deployment\n")
        );
        assert_eq!(strip_comments(&text), "kind: Deployment\n");
        assert_eq!(render_file("{}\n", &reasons, false), "{}\n");
    }

    #[test]
    fn causes_of_invalid_status() {
        assert_eq!(
            invalid_causes("Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
            vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]
        );
        assert_eq!(
            invalid_causes("Pod \"p\" is invalid: [a: Required value, b: Invalid value: 1]"),
            vec!["a: Required value", "b: Invalid value: 1"]
        );
    }

    #[test]
    fn merge_diff_sets_and_removes() {
        let from = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4});
        let to = json!({"a": 1, "b": {"c": 5, "d": 3}});
        assert_eq!(merge_diff(&from, &to), json!({"b": {"c": 5}, "e": null}));
    }
}
