//! `kubectl __complete ARGS... TO_COMPLETE` (and `__completeNoDesc`): cobra's
//! dynamic completion protocol, which the scripts of `kubectl completion`
//! call on every TAB. Candidates are printed one a line (`value\tdescription`
//! unless `NoDesc`), then `:<directive>`, a bit set of cobra's
//! `ShellCompDirective`s. Names come from the server as upstream's
//! `pkg/cmd/util/completion.go` gets them.

use clap::{Arg, CommandFactory, Parser};
use serde_json::Value;

use crate::cli::Cli;
use crate::config::ConfigFlags;
use crate::context::Context;

/// cobra's `ShellCompDirective` bits.
const DIRECTIVE_DEFAULT: u8 = 0;
const DIRECTIVE_NO_SPACE: u8 = 2;
const DIRECTIVE_NO_FILE_COMP: u8 = 4;

/// The hidden command names the scripts call.
pub const COMPLETE: &str = "__complete";
pub const COMPLETE_NO_DESC: &str = "__completeNoDesc";

/// Upstream's `-o` values for `get` (`printers` + `wide`).
const GET_OUTPUT_FORMATS: [&str; 13] = [
    "json",
    "yaml",
    "name",
    "go-template",
    "go-template-file",
    "template",
    "templatefile",
    "jsonpath",
    "jsonpath-as-json",
    "jsonpath-file",
    "custom-columns",
    "custom-columns-file",
    "wide",
];

/// The types whose pods `logs`/`exec`/`attach` accept as `TYPE/NAME`.
const RESOURCES_WITH_PODS: [&str; 8] = [
    "daemonsets",
    "deployments",
    "pods",
    "jobs",
    "replicasets",
    "replicationcontrollers",
    "services",
    "statefulsets",
];

/// The completion words of `kubectl [GLOBAL FLAGS] __complete WORDS...`
/// (flags before `__complete`, e.g. `--kubeconfig=...`, apply to the run).
/// `None` when this is not a completion request.
pub fn request(args: &[String]) -> Option<Vec<String>> {
    let root = Cli::command();
    let mut at = 1;
    while let Some(word) = args.get(at).filter(|w| w.starts_with('-')) {
        let value_follows = !word.contains('=') && find_flag(&root, word).is_some_and(takes_value);
        at += if value_follows { 2 } else { 1 };
    }
    let hidden = args.get(at)?;
    if hidden != COMPLETE && hidden != COMPLETE_NO_DESC {
        return None;
    }
    let mut words = args[1..at].to_vec();
    words.extend_from_slice(&args[at + 1..]);
    Some(words)
}

/// Only the global flags, to build a [`Context`] from the words typed so far.
#[derive(Debug, Parser)]
#[command(name = "kubectl", ignore_errors = true)]
struct GlobalFlags {
    #[command(flatten)]
    config: ConfigFlags,
}

/// The words typed so far, split the way cobra's `Find` + flag parsing do.
#[derive(Debug, Default)]
struct Typed {
    /// `get`, `rollout status`.
    path: Vec<String>,
    /// Positional arguments after the command path.
    args: Vec<String>,
    /// Global flags with their values, for the server connection.
    globals: Vec<String>,
    /// The flag whose value is being completed (long name), if any.
    flag_value_of: Option<String>,
    /// Long names of the flags given.
    given_flags: Vec<String>,
}

fn find_flag<'a>(command: &'a clap::Command, word: &str) -> Option<&'a Arg> {
    if let Some(long) = word.strip_prefix("--") {
        command.get_arguments().find(|a| a.get_long() == Some(long))
    } else {
        let short = word.strip_prefix('-')?.chars().next()?;
        command
            .get_arguments()
            .find(|a| a.get_short() == Some(short))
    }
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// Splits the words before the one being completed.
fn split_words(root: &clap::Command, words: &[String]) -> (clap::Command, Typed) {
    let mut command = root.clone();
    let mut typed = Typed::default();
    let mut pending: Option<(String, bool)> = None; // (long name, global)
    for word in words {
        if let Some((flag, global)) = pending.take() {
            if global {
                typed.globals.push(format!("--{flag}"));
                typed.globals.push(word.clone());
            }
            continue;
        }
        if word.starts_with('-') && word.len() > 1 {
            let name = word.split('=').next().unwrap_or(word);
            let Some(arg) = find_flag(&command, name) else {
                continue;
            };
            let long = arg.get_long().unwrap_or_default().to_string();
            typed.given_flags.push(long.clone());
            let inline_value = word.contains('=') || (!word.starts_with("--") && word.len() > 2);
            if takes_value(arg) && !inline_value {
                pending = Some((long, arg.is_global_set()));
            } else if arg.is_global_set() {
                typed.globals.push(word.clone());
            }
            continue;
        }
        if typed.args.is_empty() {
            if let Some(sub) = command.find_subcommand(word).cloned() {
                typed.path.push(sub.get_name().to_string());
                command = sub;
                continue;
            }
        }
        typed.args.push(word.clone());
    }
    typed.flag_value_of = pending.map(|(flag, _)| flag);
    (command, typed)
}

/// A candidate and its description.
type Candidate = (String, String);

fn plain(values: impl IntoIterator<Item = String>) -> Vec<Candidate> {
    values.into_iter().map(|v| (v, String::new())).collect()
}

fn first_line(text: Option<&clap::builder::StyledStr>) -> String {
    text.map(|t| t.to_string().lines().next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// `--flag\tusage` (and `-f\tusage`) for every visible flag, inherited ones
/// first as cobra lists them.
fn flag_names(command: &clap::Command, to_complete: &str, given: &[String]) -> Vec<Candidate> {
    let mut flags: Vec<&Arg> = command
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set())
        .collect();
    flags.sort_by_key(|a| {
        (
            !a.is_global_set(),
            a.get_long().unwrap_or_default().to_string(),
        )
    });
    let mut out = Vec::new();
    for arg in flags {
        let Some(long) = arg.get_long() else { continue };
        // Flags already given are not offered again (cobra: unless repeatable).
        let repeatable = matches!(arg.get_action(), clap::ArgAction::Append);
        if given.iter().any(|g| g == long) && !repeatable {
            continue;
        }
        let help = first_line(arg.get_help());
        out.push((format!("--{long}"), help.clone()));
        if let Some(short) = arg.get_short() {
            if !to_complete.starts_with("--") {
                out.push((format!("-{short}"), help));
            }
        }
    }
    out.retain(|(name, _)| name.starts_with(to_complete));
    out
}

struct Completer {
    ctx: Option<Context>,
}

impl Completer {
    /// Names of `kubeconfig` entries in `list` (`contexts`, `clusters`, `users`).
    fn kubeconfig_names(&self, list: &str) -> Vec<String> {
        let Some(ctx) = &self.ctx else {
            return Vec::new();
        };
        ctx.kubeconfig.merged[list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["name"].as_str().map(str::to_string))
            .collect()
    }

    /// Upstream's `CompGetResource`: names of objects of `types` (a comma
    /// list) in the namespace of the run, in the server's order.
    async fn object_names(&self, types: &str) -> Vec<String> {
        let Some(ctx) = &self.ctx else {
            return Vec::new();
        };
        let (Ok(discovery), Ok(client)) = (ctx.discovery().await, ctx.client().await) else {
            return Vec::new();
        };
        let namespace = ctx.namespace();
        let mut names = Vec::new();
        for kind in types.split(',') {
            let Some(resource) = discovery
                .resolve(kind)
                .ok()
                .and_then(|r| r.into_iter().next())
            else {
                continue;
            };
            let Ok(list) = client
                .get(&resource.collection_path(Some(&namespace)))
                .await
            else {
                continue;
            };
            names.extend(
                list["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string)),
            );
        }
        names
    }

    /// Upstream's `CompGetResourceList`: `api-resources -o name --verbs=get`.
    async fn resource_types(&self, to_complete: &str) -> Vec<String> {
        let Some(ctx) = &self.ctx else {
            return Vec::new();
        };
        let Ok(discovery) = ctx.discovery().await else {
            return Vec::new();
        };
        let mut resources: Vec<_> = discovery
            .preferred()
            .filter(|r| r.has_verb("get"))
            .collect();
        resources.sort_by(|a, b| (&a.group, &a.name).cmp(&(&b.group, &b.name)));
        // A comma list completes its last element.
        let (prefix, last) = match to_complete.rfind(',') {
            Some(i) => to_complete.split_at(i + 1),
            None => ("", to_complete),
        };
        resources
            .into_iter()
            .map(|r| r.qualified_name())
            .filter(|name| name.starts_with(last))
            .map(|name| format!("{prefix}{name}"))
            .collect()
    }

    /// `TYPE NAME...` or `TYPE/NAME...` (get, describe, delete, edit, label, annotate).
    async fn type_and_name(&self, args: &[String], to_complete: &str) -> (Vec<String>, u8) {
        if let Some(first) = args.first().filter(|a| !a.contains('/')) {
            let names = self.object_names(first).await;
            let fresh = names
                .into_iter()
                .filter(|n| !args[1..].contains(n))
                .collect();
            return (fresh, DIRECTIVE_NO_FILE_COMP);
        }
        if let Some((kind, _)) = to_complete.split_once('/') {
            let names = self.object_names(kind).await;
            return (
                names.into_iter().map(|n| format!("{kind}/{n}")).collect(),
                DIRECTIVE_NO_FILE_COMP,
            );
        }
        if args.is_empty() {
            return (
                self.resource_types(to_complete).await,
                DIRECTIVE_NO_FILE_COMP,
            );
        }
        // After a TYPE/NAME every argument is TYPE/NAME: offer the types.
        let types = self.resource_types(to_complete).await;
        (
            types.into_iter().map(|t| format!("{t}/")).collect(),
            DIRECTIVE_NO_FILE_COMP | DIRECTIVE_NO_SPACE,
        )
    }

    /// `TYPE NAME` where TYPE is one of `allowed` (scale, rollout).
    async fn specified_type_and_name(
        &self,
        allowed: &[&str],
        args: &[String],
    ) -> (Vec<String>, u8) {
        match args {
            [] => (
                allowed.iter().map(|s| s.to_string()).collect(),
                DIRECTIVE_NO_FILE_COMP,
            ),
            [kind, names @ ..] => {
                let all = self.object_names(kind).await;
                (
                    all.into_iter().filter(|n| !names.contains(n)).collect(),
                    DIRECTIVE_NO_FILE_COMP,
                )
            }
        }
    }

    /// `POD` or `TYPE/NAME` of a pod-bearing type, then container names (logs, exec, attach).
    async fn pod_and_container(&self, args: &[String], to_complete: &str) -> (Vec<String>, u8) {
        match args {
            [] => {}
            [pod] => return (self.container_names(pod).await, DIRECTIVE_NO_FILE_COMP),
            _ => return (Vec::new(), DIRECTIVE_NO_FILE_COMP),
        }
        if let Some((kind, _)) = to_complete.split_once('/') {
            let names = self.object_names(kind).await;
            return (
                names.into_iter().map(|n| format!("{kind}/{n}")).collect(),
                DIRECTIVE_NO_FILE_COMP,
            );
        }
        let mut comps = self.object_names("pod").await;
        let mut directive = DIRECTIVE_NO_FILE_COMP;
        if comps.iter().all(|p| !p.starts_with(to_complete)) {
            // Only `TYPE/` is left to complete: no space after the slash.
            directive |= DIRECTIVE_NO_SPACE;
        }
        comps.extend(RESOURCES_WITH_PODS.iter().map(|r| format!("{r}/")));
        (comps, directive)
    }

    async fn container_names(&self, pod: &str) -> Vec<String> {
        let Some(ctx) = &self.ctx else {
            return Vec::new();
        };
        if pod.contains('/') {
            return Vec::new();
        }
        let Ok(client) = ctx.client().await else {
            return Vec::new();
        };
        let path = format!("/api/v1/namespaces/{}/pods/{pod}", ctx.namespace());
        let Ok(obj) = client.get(&path).await else {
            return Vec::new();
        };
        ["initContainers", "containers"]
            .iter()
            .flat_map(|f| obj["spec"][*f].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    }

    async fn namespaces(&self) -> Vec<String> {
        let Some(ctx) = &self.ctx else {
            return Vec::new();
        };
        let Ok(client) = ctx.client().await else {
            return Vec::new();
        };
        let Ok(list) = client.get("/api/v1/namespaces").await else {
            return Vec::new();
        };
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o: &Value| o["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    /// Values of `--flag` in `command_path`; `None` when the flag has no completion (files).
    async fn flag_values(&self, flag: &str, command_path: &[String]) -> Option<Vec<String>> {
        Some(match flag {
            "namespace" => self.namespaces().await,
            "context" => self.kubeconfig_names("contexts"),
            "cluster" => self.kubeconfig_names("clusters"),
            "user" => self.kubeconfig_names("users"),
            "output" if command_path == ["get"] => {
                GET_OUTPUT_FORMATS.iter().map(|s| s.to_string()).collect()
            }
            _ => return None,
        })
    }
}

/// Completes `words` (the last one is the word under the cursor). Returns
/// the lines to print, the directive line included.
pub async fn complete(words: &[String], descriptions: bool) -> Vec<String> {
    let (to_complete, before) = match words.split_last() {
        Some((last, before)) => (last.as_str(), before),
        None => ("", &[][..]),
    };
    let mut root = Cli::command();
    root.build();
    let (command, mut typed) = split_words(&root, before);
    // `--flag=val<TAB>`: the value of that flag, printed without the flag.
    let mut to_complete = to_complete.to_string();
    if to_complete.starts_with('-') {
        if let Some((flag, value)) = to_complete.clone().split_once('=') {
            if let Some(arg) = find_flag(&command, flag) {
                typed.flag_value_of = arg.get_long().map(str::to_string);
                to_complete = value.to_string();
            }
        }
    }
    let globals = GlobalFlags::try_parse_from(
        std::iter::once("kubectl".to_string()).chain(typed.globals.clone()),
    );
    let ctx = globals.ok().and_then(|g| Context::new(g.config).ok());
    let completer = Completer { ctx };

    let (candidates, directive): (Vec<Candidate>, u8) = if let Some(flag) = &typed.flag_value_of {
        match completer.flag_values(flag, &typed.path).await {
            Some(values) => (plain(values), DIRECTIVE_NO_FILE_COMP),
            None => (Vec::new(), DIRECTIVE_DEFAULT),
        }
    } else if to_complete.starts_with('-') {
        (
            flag_names(&command, &to_complete, &typed.given_flags),
            DIRECTIVE_NO_FILE_COMP,
        )
    } else if command.has_subcommands() && typed.args.is_empty() {
        // cobra lists commands sorted by name.
        let mut subs: Vec<Candidate> = command
            .get_subcommands()
            // clap's own `help` subcommand; cobra has `help` only at the top.
            .filter(|s| !s.is_hide_set() && (s.get_name() != "help" || typed.path.is_empty()))
            .map(|s| (s.get_name().to_string(), first_line(s.get_about())))
            .collect();
        subs.sort();
        (subs, DIRECTIVE_NO_FILE_COMP)
    } else {
        let path: Vec<&str> = typed.path.iter().map(String::as_str).collect();
        let args = &typed.args;
        let (values, directive) = match path.as_slice() {
            ["get" | "describe" | "delete" | "edit" | "label" | "annotate"] => {
                completer.type_and_name(args, &to_complete).await
            }
            ["logs" | "exec" | "attach"] => completer.pod_and_container(args, &to_complete).await,
            ["scale"] => {
                completer
                    .specified_type_and_name(
                        &[
                            "deployment",
                            "replicaset",
                            "replicationcontroller",
                            "statefulset",
                        ],
                        args,
                    )
                    .await
            }
            ["rollout", "pause" | "resume"] => {
                completer
                    .specified_type_and_name(&["deployment"], args)
                    .await
            }
            ["rollout", _] => {
                completer
                    .specified_type_and_name(&["deployment", "daemonset", "statefulset"], args)
                    .await
            }
            ["cordon" | "uncordon" | "drain"] if args.is_empty() => {
                (completer.object_names("node").await, DIRECTIVE_NO_FILE_COMP)
            }
            ["config", "use-context" | "delete-context" | "rename-context"] if args.is_empty() => (
                completer.kubeconfig_names("contexts"),
                DIRECTIVE_NO_FILE_COMP,
            ),
            _ => (Vec::new(), DIRECTIVE_DEFAULT),
        };
        let mut candidates = plain(values);
        // cobra offers required flags not yet given along with the arguments.
        if path == ["scale"]
            && to_complete.is_empty()
            && !typed.given_flags.iter().any(|f| f == "replicas")
        {
            if let Some(arg) = find_flag(&command, "--replicas") {
                candidates.insert(0, ("--replicas".to_string(), first_line(arg.get_help())));
            }
        }
        (candidates, directive)
    };

    let mut lines: Vec<String> = candidates
        .into_iter()
        .filter(|(value, _)| value.starts_with(to_complete.as_str()))
        .map(|(value, help)| {
            if descriptions && !help.is_empty() {
                format!("{value}\t{help}")
            } else {
                value
            }
        })
        .collect();
    lines.push(format!(":{directive}"));
    lines
}

/// Runs `__complete`/`__completeNoDesc` (`args` after the command name) and
/// prints the result; cobra's debug line goes to stderr.
pub async fn run(args: &[String], descriptions: bool) {
    let lines = complete(args, descriptions).await;
    for line in &lines {
        println!("{line}");
    }
    let directive = lines
        .last()
        .and_then(|l| l.strip_prefix(':'))
        .and_then(|d| d.parse::<u8>().ok());
    if let Some(directive) = directive {
        eprintln!(
            "Completion ended with directive: {}",
            directive_names(directive)
        );
    }
}

/// cobra's `ShellCompDirective.string()`.
fn directive_names(directive: u8) -> String {
    const NAMES: [(u8, &str); 6] = [
        (1, "ShellCompDirectiveError"),
        (DIRECTIVE_NO_SPACE, "ShellCompDirectiveNoSpace"),
        (DIRECTIVE_NO_FILE_COMP, "ShellCompDirectiveNoFileComp"),
        (8, "ShellCompDirectiveFilterFileExt"),
        (16, "ShellCompDirectiveFilterDirs"),
        (32, "ShellCompDirectiveKeepOrder"),
    ];
    if directive == DIRECTIVE_DEFAULT {
        return "ShellCompDirectiveDefault".to_string();
    }
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| directive & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn words_split_into_path_args_and_flags() {
        let mut root = Cli::command();
        root.build();
        let (_, typed) = split_words(
            &root,
            &words(&["-n", "demo", "get", "pods", "--context=x", "web"]),
        );
        assert_eq!(typed.path, ["get"]);
        assert_eq!(typed.args, ["pods", "web"]);
        assert_eq!(typed.globals, ["--namespace", "demo", "--context=x"]);
        assert_eq!(typed.flag_value_of, None);
        let (_, typed) = split_words(&root, &words(&["get", "pods", "-n"]));
        assert_eq!(typed.flag_value_of.as_deref(), Some("namespace"));
        let (_, typed) = split_words(&root, &words(&["rollout", "status"]));
        assert_eq!(typed.path, ["rollout", "status"]);
    }

    #[test]
    fn requests_keep_the_global_flags_before_them() {
        assert_eq!(request(&words(&["kubectl", "get", "pods"])), None);
        assert_eq!(
            request(&words(&[
                "kubectl",
                "--kubeconfig",
                "k",
                "-v=2",
                "__complete",
                "get",
                ""
            ])),
            Some(words(&["--kubeconfig", "k", "-v=2", "get", ""]))
        );
        assert_eq!(
            request(&words(&["kubectl", "__completeNoDesc", "g"])),
            Some(words(&["g"]))
        );
    }

    #[tokio::test]
    async fn commands_and_flags_complete_without_a_server() {
        let out = complete(&words(&["--kubeconfig", "/nonexistent", "g"]), true).await;
        assert_eq!(out, ["get\tDisplay one or many resources", ":4"]);
        let out = complete(
            &words(&["--kubeconfig", "/nonexistent", "get", "--namesp"]),
            false,
        )
        .await;
        assert_eq!(out, ["--namespace", ":4"]);
        let out = complete(
            &words(&[
                "--kubeconfig",
                "/nonexistent",
                "scale",
                "deployment",
                "x",
                "--replicas",
                "",
            ]),
            false,
        )
        .await;
        assert_eq!(out, [":0"]);
    }
}
