//! The harness the kubectl comparison tests share (`mod common;` in each):
//! a real etcd + our apiserver, our kubectl and upstream kubectl v1.32 run
//! against it, writes split over namespaces `ours` and `theirs`, and the
//! rendering and masking that make two runs comparable.

// Each test file is its own crate and uses only part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use test_support::{kubectl_with, ApiServer, Etcd, KubectlOutput, KUBECTL};

/// Our kubectl, built by cargo for the integration tests.
pub const OURS: &str = env!("CARGO_BIN_EXE_kubectl");

/// A binary of this workspace in `target/debug` (e.g. `kube-apiserver`).
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let bin = target.join("debug").join(name);
    assert!(
        bin.exists(),
        "{} missing: run `cargo build -p {name} --bin {name}`",
        bin.display()
    );
    bin
}

/// etcd + our apiserver; both stop on drop.
pub struct Cluster {
    pub server: ApiServer,
    _etcd: Etcd,
}

impl Cluster {
    pub fn start() -> Cluster {
        let etcd = Etcd::start().expect("etcd");
        let server = ApiServer::start(&binary("kube-apiserver"), &etcd, &[]).expect("apiserver");
        Cluster {
            server,
            _etcd: etcd,
        }
    }

    /// [`Cluster::start`] with namespaces `ours` and `theirs`, each with its
    /// `default` service account (no controller-manager creates it).
    pub fn start_with_namespaces() -> Cluster {
        let cluster = Cluster::start();
        for ns in ["ours", "theirs"] {
            cluster.setup(&["create", "namespace", ns], None);
            cluster.setup(&["-n", ns, "create", "serviceaccount", "default"], None);
        }
        cluster
    }

    pub fn run(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> KubectlOutput {
        kubectl_with(Path::new(bin), &self.server, args, stdin)
    }

    pub fn ours(&self, args: &[&str]) -> KubectlOutput {
        self.run(OURS, args, None)
    }

    pub fn theirs(&self, args: &[&str]) -> KubectlOutput {
        self.run(KUBECTL, args, None)
    }

    /// Upstream kubectl, asserting success (to set the scene).
    pub fn setup(&self, args: &[&str], stdin: Option<&str>) {
        self.run(KUBECTL, args, stdin).assert_success();
    }

    /// [`Cluster::setup`] in `-n ours` and `-n theirs` (`{ns}` in an argument
    /// or in stdin is replaced too).
    pub fn setup_both(&self, args: &[&str], stdin: Option<&str>) {
        for ns in ["ours", "theirs"] {
            let all = with_ns(ns, args);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let input = stdin.map(|s| s.replace("{ns}", ns));
            self.setup(&refs, input.as_deref());
        }
    }
}

/// `-n NS ARGS...` with `{ns}` in the arguments replaced by `ns`.
pub fn with_ns(ns: &str, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = vec!["-n".into(), ns.into()];
    all.extend(args.iter().map(|a| a.replace("{ns}", ns)));
    all
}

/// stdout, stderr and exit code in one text to compare.
pub fn rendered(out: &KubectlOutput) -> String {
    format!(
        "{}\n--- stderr ---\n{}\n--- exit {} ---",
        out.stdout, out.stderr, out.status
    )
}

/// An age as kubectl prints it: `5s`, `3m10s`, `2d`.
pub fn is_age(token: &str) -> bool {
    let mut rest = token;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = rest.chars().next() else {
            return false;
        };
        if !"smhdy".contains(unit) {
            return false;
        }
        rest = &rest[1..];
        parts += 1;
    }
    parts > 0
}

/// `line` with ages as `<age>` (and whitespace runs collapsed) when it has any.
pub fn mask_ages_in_line(line: &str, is_age: impl Fn(&str) -> bool) -> String {
    if !line.split_whitespace().any(&is_age) {
        return line.to_string();
    }
    line.split_whitespace()
        .map(|t| if is_age(t) { "<age>" } else { t })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Ages change between two runs: mask them and the padding around them.
pub fn mask_ages(text: &str) -> String {
    text.lines()
        .map(|line| mask_ages_in_line(line, is_age))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs every command through `both` (our rendering, upstream's); fails
/// listing all differences.
pub fn assert_no_diffs(commands: &[&[&str]], mut both: impl FnMut(&[&str]) -> (String, String)) {
    let mut diffs = Vec::new();
    for args in commands {
        let (ours, theirs) = both(args);
        if ours != theirs {
            diffs.push(format!(
                "kubectl {}\n  ours:   {ours:?}\n  theirs: {theirs:?}",
                args.join(" ")
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
