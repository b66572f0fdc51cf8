//! Our kubectl against upstream kubectl v1.32 on the same real apiserver + etcd:
//! the same commands must print the same output and exit with the same code.
//! Writes run in two namespaces (`ours`, `theirs`) so both binaries do the same
//! work; the namespace name is masked before comparing, as are ages.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{mask_ages, rendered, Cluster, OURS};
use test_support::{kubectl_with, KubectlOutput, KUBECTL};

impl Cluster {
    fn both_stdin(&self, args: &[&str], stdin: &str) -> (KubectlOutput, KubectlOutput) {
        (
            self.run(OURS, args, Some(stdin)),
            self.run(KUBECTL, args, Some(stdin)),
        )
    }
}

fn render(out: &KubectlOutput, namespace: Option<&str>, mask: bool) -> String {
    let text = rendered(out);
    let text = match namespace {
        Some(ns) => text.replace(ns, "<ns>"),
        None => text,
    };
    if mask {
        mask_ages(&text)
    } else {
        text
    }
}

/// Runs `args` with both binaries and asserts identical output and exit code.
fn assert_same(cluster: &Cluster, args: &[&str], mask: bool) {
    let ours = render(&cluster.ours(args), None, mask);
    let theirs = render(&cluster.theirs(args), None, mask);
    assert_eq!(ours, theirs, "kubectl {}", args.join(" "));
}

/// Runs `args` in namespace `ours` with our binary and `theirs` with upstream's.
fn assert_same_in_namespaces(cluster: &Cluster, args: &[&str], stdin: Option<&str>) {
    let with_ns = |ns: &str| {
        let mut a: Vec<&str> = vec!["-n", ns];
        a.extend_from_slice(args);
        a.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let ours_args = with_ns("ours");
    let theirs_args = with_ns("theirs");
    let ours_refs: Vec<&str> = ours_args.iter().map(String::as_str).collect();
    let theirs_refs: Vec<&str> = theirs_args.iter().map(String::as_str).collect();
    let ours = kubectl_with(Path::new(OURS), &cluster.server, &ours_refs, stdin);
    let theirs = kubectl_with(Path::new(KUBECTL), &cluster.server, &theirs_refs, stdin);
    assert_eq!(
        render(&ours, Some("ours"), true),
        render(&theirs, Some("theirs"), true),
        "kubectl {}",
        args.join(" ")
    );
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web, tier: frontend}
  annotations:
    description: a pod with a rather long description that go-yaml folds past the eightieth column of the line
spec:
  containers:
  - name: main
    image: busybox
    args: [sleep, '3600']
    env:
    - {name: GREETING, value: \"hello: world\"}
    - {name: EMPTY, value: ''}
";

const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: web}
data:
  mode: 'on'
  count: '3'
  script: |
    echo one
    echo two
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: busybox
        ports: [{containerPort: 80}]
";

/// Strings that go-yaml quotes, folds or escapes in its own ways.
const TRICKY_STRINGS: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"tricky","labels":{"a10":"x","a2":"y","B":"z"},"annotations":{"a.b/c-d":"true"}},"data":{
 "long":"word word word word word word word word word word word word word word word word word word word word word word word word word",
 "longcolon":"key: value and more text key: value and more text key: value and more text key: value and more text",
 "longquoted":"'quoted start' more words more words more words more words more words more words more words more words",
 "longdq":"tab\there more words more words more words more words more words more words more words more words",
 "lead":" leading","trail":"trailing ","tab":"a\tb","nl":"line1\nline2","nlend":"line1\nline2\n","nlnl":"a\n\n","nlspace":"a \nb",
 "leadnl":"\nabc","spacenl":"  indented\nnext\n","num":"123","float":"1.5","exp":"1e3","octal":"0755","hex":"0x1F","bool":"yes",
 "null":"null","tilde":"~","empty":"","date":"2024-01-02","ts":"2024-01-02T03:04:05Z","colon":"a:b","colonsp":"a: b","hash":"a #b",
 "star":"*x","dash":"- x","dash2":"-x","q2":"? x","brace":"{x}","quote":"'x'","dq":"\"x\"","uni":"héllo wörld","emoji":"😀",
 "ctrl":"a\u0001b","base60":"1:20","dots":"...","plus":"+1","under":"1_000","inf":".inf","y":"y","on":"On","crlf":"a\r\nb",
 "html":"<a href='x'>&</a>","ls":"a\u2028b"}}"#;

fn scene(cluster: &Cluster) {
    cluster.setup(&["create", "serviceaccount", "default"], None);
    cluster.setup(&["create", "-f", "-"], Some(POD));
    cluster.setup(&["create", "-f", "-"], Some(CONFIG));
    cluster.setup(
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
        None,
    );
    cluster.setup(&["create", "namespace", "other"], None);
    cluster.setup(
        &[
            "create",
            "configmap",
            "elsewhere",
            "-n",
            "other",
            "--from-literal=a=b",
        ],
        None,
    );
    cluster.setup(&["create", "-f", "-"], Some(TRICKY_STRINGS));
}

#[test]
fn read_commands_print_as_upstream() {
    let cluster = Cluster::start();
    scene(&cluster);
    for args in [
        &["get", "pods"][..],
        &["get", "po", "-o", "wide"],
        &["get", "pod", "web", "-o", "yaml"],
        &["get", "pod/web", "-o", "json"],
        &["get", "pods", "-o", "yaml"],
        &["get", "configmaps", "-o", "yaml"],
        &["get", "configmap", "tricky", "-o", "json"],
        &["get", "configmap", "tricky", "-o", "jsonpath={.data}"],
        &["get", "deploy", "web", "-o", "yaml"],
        &["get", "svc", "web", "-o", "yaml"],
        &["get", "pods,svc,cm", "-o", "name"],
        &["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"],
        &["get", "pod", "web", "-o", "jsonpath={range .spec.containers[*].env[*]}{.name}={.value}{\"\\n\"}{end}"],
        &["get", "pod", "web", "-o", "jsonpath={.metadata.labels} {.spec.containers[0].args}"],
        &["get", "pods", "-o", "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[*].image,NODE:.spec.nodeName"],
        &["get", "pods,svc"],
        &["get", "all"],
        &["get", "cm", "-A"],
        &["get", "cm", "-A", "--no-headers"],
        &["get", "pods", "--show-labels", "-L", "tier"],
        &["get", "cm", "-l", "app=web"],
        &["get", "pods", "--field-selector", "metadata.name=nope"],
        &["get", "ns"],
        &["get", "deployments.apps"],
        &["get", "deploy.v1.apps", "web"],
        &["api-resources"],
        &["api-resources", "-o", "wide"],
        &["api-resources", "-o", "name"],
        &["api-resources", "--namespaced=false"],
        &["api-resources", "--api-group=apps"],
        &["api-versions"],
        &["cluster-info"],
        &["get", "nope"],
        &["get", "pods", "nope"],
        &["get", "pods", "web", "nope"],
        &["get"],
        &["get", "pods", "-n", "empty"],
        &["get", "nodes"],
        &["get", "cm", "-A", "--sort-by=.metadata.name"],
        &["get", "cm", "-A", "--sort-by=.metadata.name", "-o", "name"],
        &["get", "pods", "-o", "jsonpath={.items[5]}"],
        &["get", "pods", "-l", "app=web", "web"],
        &["get", "pods", "--bogus"],
        &["config", "view", "--bogus"],
        &["get", "pods", "-o", "bogus"],
    ] {
        assert_same(&cluster, args, true);
    }
}

#[test]
fn writes_print_as_upstream() {
    let cluster = Cluster::start();
    for ns in ["ours", "theirs"] {
        cluster.setup(&["create", "namespace", ns], None);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, CONFIG).expect("write");
    let changed = dir.path().join("changed.yaml");
    std::fs::write(
        &changed,
        CONFIG
            .replace("count: '3'", "extra: 'x'")
            .replace("replicas: 1", "replicas: 2"),
    )
    .expect("write");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n",
    )
    .expect("write");
    let config = config.to_str().expect("utf-8 path");
    let changed = changed.to_str().expect("utf-8 path");
    let bad = bad.to_str().expect("utf-8 path");
    // Error messages name the file as given.
    let (dir_path, config_name) = (dir.path(), "config.yaml");
    let _ = (dir_path, config_name);
    for args in [
        &["create", "-f", config][..],
        &["create", "-f", config],
        &["apply", "-f", config],
        &["apply", "-f", config],
        &["apply", "-f", changed],
        &[
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.data} {.metadata.annotations}",
        ],
        &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"],
        &["replace", "-f", config],
        &["label", "cm", "settings", "x=1"],
        &["label", "cm", "settings", "x=2"],
        &["label", "cm", "settings", "x=2", "--overwrite"],
        &["label", "cm/settings", "x-"],
        &["annotate", "cm", "settings", "note=hi"],
        &["annotate", "cm", "settings", "note=ho"],
        &["patch", "cm", "settings", "-p", "{\"data\":{\"c\":\"3\"}}"],
        &["patch", "cm", "settings", "-p", "{\"data\":{\"c\":\"3\"}}"],
        &[
            "patch",
            "cm",
            "settings",
            "--type=merge",
            "-p",
            "{\"data\":{\"c\":null}}",
        ],
        &[
            "patch",
            "deploy",
            "web",
            "--type=json",
            "-p",
            "[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":3}]",
        ],
        &["scale", "deploy", "web", "--replicas=4"],
        &["scale", "deployment/web", "--replicas=1"],
        &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"],
        &[
            "create",
            "configmap",
            "c2",
            "--from-literal=k=v",
            "--from-literal=k2=v2",
        ],
        &["create", "secret", "generic", "s2", "--from-literal=k=v"],
        &[
            "create",
            "deployment",
            "d2",
            "--image=busybox:1.36",
            "--replicas=2",
        ],
        &["create", "service", "clusterip", "sv2", "--tcp=80:8080"],
        &["create", "service", "nodeport", "np3", "--tcp=80"],
        &[
            "create",
            "deployment",
            "d3",
            "--image=busybox",
            "--dry-run=client",
            "-o",
            "yaml",
        ],
        &["get", "cm", "c2", "-o", "jsonpath={.data}"],
        &["get", "secret", "s2", "-o", "jsonpath={.data}"],
        &["get", "deploy", "d2", "-o", "jsonpath={.spec}"],
        &["create", "-f", bad],
        &["create", "-f", "/nonexistent/file.yaml"],
        &["delete", "cm", "c2"],
        &["delete", "cm", "c2"],
        &["delete", "cm", "c2", "--ignore-not-found"],
        &["delete", "-f", config],
        &["delete", "-f", config],
        &["delete", "deploy,svc", "--all"],
        &["delete", "secret", "-l", "nothing=here"],
        &["delete", "cm"],
        &["delete"],
    ] {
        assert_same_in_namespaces(&cluster, args, None);
    }
}

#[test]
fn stdin_directories_and_lists() {
    let cluster = Cluster::start();
    for ns in ["ours", "theirs"] {
        cluster.setup(&["create", "namespace", ns], None);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("nested");
    std::fs::create_dir(&nested).expect("mkdir");
    std::fs::write(
        dir.path().join("a.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").expect("write");
    std::fs::write(nested.join("b.json"), r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}]}"#).expect("write");
    let d = dir.path().to_str().expect("utf-8 path");
    assert_same_in_namespaces(&cluster, &["create", "-f", d], None);
    assert_same_in_namespaces(&cluster, &["apply", "-R", "-f", d], None);
    assert_same_in_namespaces(&cluster, &["get", "cm", "-o", "name"], None);
    let stdin = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: v}\n";
    assert_same_in_namespaces(&cluster, &["create", "-f", "-"], Some(stdin));
    assert_same_in_namespaces(&cluster, &["apply", "-f", "-", "-o", "name"], Some(stdin));
    assert_same_in_namespaces(
        &cluster,
        &["apply", "--server-side", "-f", "-"],
        Some(stdin),
    );
    let (ours, theirs) = cluster.both_stdin(
        &["apply", "-f", "-"],
        "kind: ConfigMap\nmetadata: {name: x}\n",
    );
    assert_eq!(render(&ours, None, false), render(&theirs, None, false));
}

#[test]
fn client_side_apply_merges_three_ways_like_upstream() {
    let cluster = Cluster::start();
    for ns in ["ours", "theirs"] {
        cluster.setup(&["create", "namespace", ns], None);
    }
    let v1 = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, labels: {a: '1', b: '2'}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: x}}\n    spec:\n      containers:\n      - {name: one, image: busybox, env: [{name: A, value: '1'}, {name: B, value: '2'}]}\n      - {name: two, image: busybox}\n";
    let v2 = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, labels: {a: '1'}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: x}}\n    spec:\n      containers:\n      - {name: one, image: busybox:2, env: [{name: A, value: '1'}]}\n";
    assert_same_in_namespaces(&cluster, &["apply", "-f", "-"], Some(v1));
    // A change made outside apply survives the next apply.
    for ns in ["ours", "theirs"] {
        cluster.setup(&["-n", ns, "label", "deploy", "app", "live=yes"], None);
    }
    assert_same_in_namespaces(&cluster, &["apply", "-f", "-"], Some(v2));
    assert_same_in_namespaces(
        &cluster,
        &[
            "get",
            "deploy",
            "app",
            "-o",
            "jsonpath={.metadata.labels} {.spec.template.spec.containers} {.metadata.annotations}",
        ],
        None,
    );
    let labels = cluster.theirs(&[
        "-n",
        "ours",
        "get",
        "deploy",
        "app",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert_eq!(labels.stdout, r#"{"a":"1","live":"yes"}"#);
}

#[test]
fn config_commands_edit_files_as_upstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = test_support::kubeconfig_yaml("http://127.0.0.1:1");
    let ours_file = dir.path().join("ours");
    let theirs_file = dir.path().join("theirs");
    for f in [&ours_file, &theirs_file] {
        std::fs::write(f, &seed).expect("write");
    }
    let run = |bin: &str, file: &Path, args: &[&str]| {
        let out = Command::new(bin)
            .env_remove("KUBECONFIG")
            .arg(format!("--kubeconfig={}", file.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl");
        let text = format!(
            "{}\n--- stderr ---\n{}\n--- exit {:?} ---",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            out.status.code()
        );
        text.replace(&file.display().to_string(), "<file>")
    };
    for args in [
        &["config", "view"][..],
        &["config", "get-contexts"],
        &["config", "set-credentials", "bob", "--token=secret"],
        &[
            "config",
            "set-cluster",
            "c2",
            "--server=https://10.0.0.1:6443",
            "--insecure-skip-tls-verify",
        ],
        &["config", "set-context", "c2", "--cluster=c2", "--user=bob"],
        &["config", "set-context", "c2", "--namespace=dev"],
        &["config", "use-context", "c2"],
        &[
            "config",
            "set-context",
            "--current",
            "--namespace=kube-system",
        ],
        &["config", "view"],
        &["config", "view", "--minify"],
        &["config", "view", "--raw"],
        &[
            "config",
            "view",
            "-o",
            "jsonpath={.contexts[*].name} {.current-context}",
        ],
        &["config", "get-contexts"],
        &["config", "get-contexts", "-o", "name"],
        &["config", "current-context"],
        &["config", "delete-context", "test"],
        &["config", "delete-context", "nope"],
        &["config", "use-context", "nope"],
    ] {
        assert_eq!(
            run(OURS, &ours_file, args),
            run(KUBECTL, &theirs_file, args),
            "kubectl {}",
            args.join(" ")
        );
    }
    assert_eq!(
        std::fs::read_to_string(&ours_file).expect("read"),
        std::fs::read_to_string(&theirs_file).expect("read")
    );
}

#[test]
fn kubeconfig_env_list_and_overrides() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // First file: only a context pointing at a cluster defined in the second.
    let first = dir.path().join("first");
    std::fs::write(&first, "apiVersion: v1\nkind: Config\ncurrent-context: split\ncontexts:\n- name: split\n  context: {cluster: real, user: nobody, namespace: kube-system}\n").expect("write");
    let second = dir.path().join("second");
    std::fs::write(&second, format!("apiVersion: v1\nkind: Config\nclusters:\n- name: real\n  cluster: {{server: '{}'}}\nusers:\n- name: nobody\n  user: {{}}\n", cluster.server.url())).expect("write");
    let list = format!("{}:{}", first.display(), second.display());
    let run = |bin: &str, args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(bin)
            .env_remove("KUBECONFIG")
            .envs(env.iter().copied())
            .args(args)
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let env = [("KUBECONFIG", list.as_str())];
    for args in [
        &["get", "serviceaccounts", "-o", "name"][..],
        &["config", "view"],
        &["config", "get-contexts"],
        &[
            "get",
            "ns",
            "default",
            "-o",
            "name",
            "-s",
            cluster.server.url().as_str(),
        ],
    ] {
        assert_eq!(
            run(OURS, args, &env),
            run(KUBECTL, args, &env),
            "kubectl {}",
            args.join(" ")
        );
    }
    let unreachable = [("KUBECONFIG", "/nonexistent")];
    let refused = ["get", "pods", "--server=http://127.0.0.1:1"];
    let (code, _, stderr) = run(OURS, &refused, &unreachable);
    assert_eq!(code, Some(1));
    assert_eq!(stderr, "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n");
}

#[test]
fn watch_prints_rows_as_objects_change() {
    let cluster = Cluster::start();
    cluster.setup(&["create", "configmap", "first"], None);
    let mut child = Command::new(OURS)
        .arg(format!(
            "--kubeconfig={}",
            cluster.server.kubeconfig().display()
        ))
        .args(["get", "configmaps", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kubectl get -w");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut created = false;
    while Instant::now() < deadline && !lines.iter().any(|l: &String| l.starts_with("second ")) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
        if !created && lines.iter().any(|l| l.starts_with("first ")) {
            cluster.setup(&["create", "configmap", "second"], None);
            created = true;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("NAME    DATA   AGE"),
        "{lines:?}"
    );
    let second = lines
        .iter()
        .find(|l| l.starts_with("second "))
        .unwrap_or_else(|| panic!("no row for the new object: {lines:?}"));
    // Columns keep the widths remembered from the header (DATA is 7 wide, not 6).
    assert!(second.starts_with("second   0      "), "{lines:?}");
}
