//! Kubeconfig files as kubectl reads them: `--kubeconfig`, else every file of
//! `KUBECONFIG` merged (the first file to name a cluster, user or context wins, as
//! the first `current-context` does), else `~/.kube/config`; then the command line
//! overrides (`--context`, `--server`, `--token`, ...) on top.
//!
//! Files are handled as JSON values so that `kubectl config` commands rewrite them
//! without losing fields; the client is built with kube-rs from the merged value.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Map, Value};

use crate::errors::{Error, Result};
use crate::printers::yaml::to_yaml;

/// The name of the lists in a kubeconfig whose entries are `{name, <item key>: {...}}`.
pub const NAMED_LISTS: [(&str, &str); 3] = [
    ("clusters", "cluster"),
    ("users", "user"),
    ("contexts", "context"),
];

/// Upstream's default server when nothing configures one.
pub const DEFAULT_SERVER: &str = "http://localhost:8080";

/// The global connection flags (upstream `genericclioptions.ConfigFlags`).
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFlags {
    /// Path to the kubeconfig file to use for CLI requests.
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// The address and port of the Kubernetes API server
    #[arg(short = 's', long, global = true)]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Path to a client certificate file for TLS
    #[arg(long, global = true)]
    pub client_certificate: Option<String>,
    /// Path to a client key file for TLS
    #[arg(long, global = true)]
    pub client_key: Option<String>,
    /// Path to a cert file for the certificate authority
    #[arg(long, global = true)]
    pub certificate_authority: Option<String>,
    /// If true, the server's certificate will not be checked for validity.
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
    /// If present, the namespace scope for this CLI request
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Username to impersonate for the operation. User could be a regular user or a service account in a namespace.
    #[arg(long = "as", global = true)]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation, this flag can be repeated to specify multiple groups.
    #[arg(long = "as-group", global = true)]
    pub as_group: Vec<String>,
    /// UID to impersonate for the operation.
    #[arg(long = "as-uid", global = true)]
    pub as_uid: Option<String>,
}

/// The kubeconfig files of this run and their merge.
#[derive(Debug, Clone)]
pub struct Kubeconfig {
    /// Where `kubectl config` writes.
    pub write_target: PathBuf,
    pub merged: Value,
}

fn home_config() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".kube").join("config")
}

/// An empty kubeconfig as upstream writes one.
pub fn empty_config() -> Value {
    json!({"apiVersion": "v1", "kind": "Config", "preferences": {},
           "clusters": [], "users": [], "contexts": [], "current-context": ""})
}

/// Reads one kubeconfig file; relative file references become absolute.
pub fn read_file(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("open {}: {}", path.display(), io_reason(&e))))?;
    let mut value: Value = if text.trim().is_empty() {
        empty_config()
    } else {
        serde_norway::from_str(&text).map_err(|e| {
            Error::usage(format!(
                "error loading config file \"{}\": {e}",
                path.display()
            ))
        })?
    };
    if value.is_null() {
        value = empty_config();
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    for (list, item) in NAMED_LISTS {
        if let Some(entries) = value.get_mut(list).and_then(Value::as_array_mut) {
            for entry in entries {
                if let Some(obj) = entry.get_mut(item).and_then(Value::as_object_mut) {
                    for key in [
                        "certificate-authority",
                        "client-certificate",
                        "client-key",
                        "tokenFile",
                    ] {
                        if let Some(Value::String(p)) = obj.get_mut(key) {
                            if !p.is_empty() && Path::new(p.as_str()).is_relative() {
                                *p = dir.join(&*p).display().to_string();
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(value)
}

/// Go's wording of common I/O errors (`no such file or directory`).
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Merges `next` into `base`: named entries and scalar fields already in `base` win.
pub fn merge(base: &mut Value, next: &Value) {
    let (Some(base_obj), Some(next_obj)) = (base.as_object_mut(), next.as_object()) else {
        return;
    };
    for (key, value) in next_obj {
        if NAMED_LISTS.iter().any(|(list, _)| list == key) {
            let entries = base_obj
                .entry(key.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !entries.is_array() {
                *entries = Value::Array(Vec::new());
            }
            if let (Some(existing), Some(new)) = (entries.as_array_mut(), value.as_array()) {
                for item in new {
                    let name = item.get("name");
                    if !existing.iter().any(|e| e.get("name") == name) {
                        existing.push(item.clone());
                    }
                }
            }
        } else {
            let empty = match base_obj.get(key) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                _ => false,
            };
            if empty {
                base_obj.insert(key.clone(), value.clone());
            }
        }
    }
}

impl Kubeconfig {
    /// Loads the files selected by `--kubeconfig`, `KUBECONFIG` or the home default.
    pub fn load(flags: &ConfigFlags) -> Result<Kubeconfig> {
        let (candidates, explicit) = match &flags.kubeconfig {
            Some(path) => (vec![path.clone()], true),
            None => match std::env::var("KUBECONFIG") {
                Ok(list) if !list.is_empty() => (
                    std::env::split_paths(&list)
                        .filter(|p| !p.as_os_str().is_empty())
                        .collect(),
                    false,
                ),
                _ => (vec![home_config()], false),
            },
        };
        let write_target = candidates
            .iter()
            .find(|p| p.exists())
            .or(candidates.first())
            .cloned()
            .unwrap_or_else(home_config);
        let mut merged = Value::Object(Map::new());
        for path in &candidates {
            if !path.exists() {
                if explicit {
                    return Err(Error::usage(format!(
                        "stat {}: no such file or directory",
                        path.display()
                    )));
                }
                continue;
            }
            merge(&mut merged, &read_file(path)?);
        }
        merge(&mut merged, &empty_config());
        Ok(Kubeconfig {
            write_target,
            merged,
        })
    }

    pub fn current_context(&self) -> &str {
        self.merged
            .get("current-context")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The context in effect: `--context`, else `current-context`.
    pub fn context_name(&self, flags: &ConfigFlags) -> String {
        flags
            .context
            .clone()
            .unwrap_or_else(|| self.current_context().to_string())
    }

    /// The `context` object of the named context.
    pub fn context(&self, name: &str) -> Option<&Value> {
        named(&self.merged, "contexts", name).and_then(|c| c.get("context"))
    }

    /// The namespace of this run: `-n`, else the context's, else `default`.
    pub fn namespace(&self, flags: &ConfigFlags) -> String {
        if let Some(ns) = &flags.namespace {
            return ns.clone();
        }
        self.context(&self.context_name(flags))
            .and_then(|c| c.get("namespace"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string()
    }

    /// A kubeconfig holding only what the client uses, with the overrides applied:
    /// one context `kubectl`, its cluster and user.
    /// The kubeconfig user entry this run authenticates as (`--user`, else the
    /// context's).
    pub fn user_name(&self, flags: &ConfigFlags) -> Option<String> {
        flags.user.clone().or_else(|| {
            self.context(&self.context_name(flags))
                .and_then(context_user)
        })
    }

    pub fn effective(&self, flags: &ConfigFlags) -> Result<Value> {
        let context_name = self.context_name(flags);
        let context = match self.context(&context_name) {
            Some(c) => c.clone(),
            None if flags.context.is_some() => {
                return Err(Error::usage(format!(
                    "context was not found for specified context: {context_name}"
                )))
            }
            None => json!({}),
        };
        let cluster_name = flags.cluster.clone().or_else(|| {
            context
                .get("cluster")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let user_name = flags.user.clone().or_else(|| context_user(&context));
        let mut cluster = cluster_name
            .as_deref()
            .and_then(|n| named(&self.merged, "clusters", n))
            .and_then(|c| c.get("cluster"))
            .cloned()
            .unwrap_or_else(|| json!({}));
        if let Some(name) = &flags.cluster {
            if named(&self.merged, "clusters", name).is_none() {
                return Err(Error::usage(format!("cluster \"{name}\" does not exist")));
            }
        }
        let mut user = user_name
            .as_deref()
            .and_then(|n| named(&self.merged, "users", n))
            .and_then(|u| u.get("user"))
            .cloned()
            .unwrap_or_else(|| json!({}));
        if let Some(server) = &flags.server {
            cluster["server"] = json!(normalize_server(server));
        }
        if cluster
            .get("server")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            cluster["server"] = json!(DEFAULT_SERVER);
        }
        if let Some(ca) = &flags.certificate_authority {
            cluster["certificate-authority"] = json!(ca);
            if let Some(obj) = cluster.as_object_mut() {
                obj.remove("certificate-authority-data");
            }
        }
        if flags.insecure_skip_tls_verify {
            cluster["insecure-skip-tls-verify"] = json!(true);
        }
        if let Some(token) = &flags.token {
            user["token"] = json!(token);
        }
        if let Some(cert) = &flags.client_certificate {
            user["client-certificate"] = json!(cert);
        }
        if let Some(key) = &flags.client_key {
            user["client-key"] = json!(key);
        }
        if let Some(name) = &flags.as_user {
            user["as"] = json!(name);
        }
        if !flags.as_group.is_empty() {
            user["as-groups"] = json!(flags.as_group);
        }
        if let Some(uid) = &flags.as_uid {
            user["as-uid"] = json!(uid);
        }
        let mut ctx = json!({"cluster": "kubectl", "user": "kubectl"});
        ctx["namespace"] = json!(self.namespace(flags));
        Ok(json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubectl", "cluster": cluster}],
            "users": [{"name": "kubectl", "user": user}],
            "contexts": [{"name": "kubectl", "context": ctx}],
            "current-context": "kubectl",
        }))
    }
}

fn context_user(context: &Value) -> Option<String> {
    context
        .get("user")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// `-s 127.0.0.1:8080` means `http://127.0.0.1:8080` to upstream too.
fn normalize_server(server: &str) -> String {
    if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    }
}

/// The entry named `name` in list `list` (`clusters`, `users`, `contexts`).
pub fn named<'a>(config: &'a Value, list: &str, name: &str) -> Option<&'a Value> {
    config
        .get(list)?
        .as_array()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

/// The entry named `name`, created (`{name, item: {}}`) when missing; the flag says
/// whether it existed.
pub fn named_mut<'a>(
    config: &'a mut Value,
    list: &str,
    item: &str,
    name: &str,
) -> (&'a mut Value, bool) {
    if !config.get(list).is_some_and(Value::is_array) {
        config[list] = json!([]);
    }
    let Some(entries) = config.get_mut(list).and_then(Value::as_array_mut) else {
        unreachable!("just made an array")
    };
    let pos = entries
        .iter()
        .position(|e| e.get("name").and_then(Value::as_str) == Some(name));
    let existed = pos.is_some();
    let index = match pos {
        Some(i) => i,
        None => {
            entries.push(json!({ "name": name, item: {} }));
            entries.len() - 1
        }
    };
    let entry = &mut entries[index];
    if !entry.get(item).is_some_and(Value::is_object) {
        entry[item] = json!({});
    }
    (&mut entry[item], existed)
}

/// A kubeconfig as upstream serializes one: named lists sorted by name, the
/// standard fields present.
pub fn normalized(config: &Value) -> Value {
    let mut out = config.clone();
    for (list, item) in NAMED_LISTS {
        let mut entries: Vec<Value> = out
            .get(list)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for e in &mut entries {
            if !e.get(item).is_some_and(Value::is_object) {
                e[item] = json!({});
            }
            // Go's Context struct always writes these two.
            if item == "context" {
                for key in ["cluster", "user"] {
                    if e[item].get(key).is_none() {
                        e[item][key] = json!("");
                    }
                }
            }
        }
        entries.sort_by(|a, b| {
            a.get("name")
                .and_then(Value::as_str)
                .cmp(&b.get("name").and_then(Value::as_str))
        });
        out[list] = if entries.is_empty() {
            Value::Null
        } else {
            Value::Array(entries)
        };
    }
    out["apiVersion"] = json!("v1");
    out["kind"] = json!("Config");
    if !out.get("preferences").is_some_and(Value::is_object) {
        out["preferences"] = json!({});
    }
    if let Some(obj) = out.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
        if obj.get("current-context").and_then(Value::as_str) == Some("") {
            obj.remove("current-context");
        }
    }
    out
}

/// Writes `config` to `path` as upstream's `clientcmd.WriteToFile` would.
pub fn write_file(path: &Path, config: &Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let mut out = normalized(config);
    // Upstream always writes these (empty) lists and the current context.
    for (list, _) in NAMED_LISTS {
        if out.get(list).is_none() {
            out[list] = Value::Null;
        }
    }
    if out.get("current-context").is_none() {
        out["current-context"] = json!("");
    }
    std::fs::write(path, to_yaml(&out))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_the_first_definition() {
        let mut a = json!({"current-context": "a", "clusters": [{"name": "c", "cluster": {"server": "https://a"}}]});
        let b = json!({"current-context": "b", "clusters": [{"name": "c", "cluster": {"server": "https://b"}},
                                                            {"name": "d", "cluster": {"server": "https://d"}}],
                       "users": [{"name": "u", "user": {"token": "t"}}]});
        merge(&mut a, &b);
        assert_eq!(a["current-context"], "a");
        assert_eq!(a["clusters"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            named(&a, "clusters", "c").map(|c| &c["cluster"]["server"]),
            Some(&json!("https://a"))
        );
        assert!(named(&a, "users", "u").is_some());
    }

    #[test]
    fn overrides_build_the_effective_config() {
        let kc = Kubeconfig {
            write_target: PathBuf::from("/nonexistent"),
            merged: json!({"current-context": "x",
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "ns1"}}],
                "clusters": [{"name": "c", "cluster": {"server": "https://c:6443"}}],
                "users": [{"name": "u", "user": {"token": "old"}}]}),
        };
        let flags = ConfigFlags {
            token: Some("new".into()),
            ..Default::default()
        };
        let eff = kc.effective(&flags).expect("effective");
        assert_eq!(eff["clusters"][0]["cluster"]["server"], "https://c:6443");
        assert_eq!(eff["users"][0]["user"]["token"], "new");
        assert_eq!(kc.namespace(&flags), "ns1");
        let flags = ConfigFlags {
            server: Some("127.0.0.1:8080".into()),
            namespace: Some("n2".into()),
            ..Default::default()
        };
        let eff = kc.effective(&flags).expect("effective");
        assert_eq!(
            eff["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:8080"
        );
        assert_eq!(kc.namespace(&flags), "n2");
        let flags = ConfigFlags {
            context: Some("nope".into()),
            ..Default::default()
        };
        assert!(kc.effective(&flags).is_err());
    }
}
