//! Shared set-up for the apiserver integration tests: a real etcd and our apiserver.
#![allow(dead_code)]

use std::path::Path;

#[allow(unused_imports)]
pub use test_support::{kubectl, kubectl_stdin, ApiServer, Etcd};

pub struct Cluster {
    pub api: ApiServer,
    pub etcd: Etcd,
}

/// etcd + apiserver with the default admission chain; the `default` ServiceAccount
/// exists (the controller-manager would create it).
pub fn start() -> Cluster {
    start_with(&[])
}

pub fn start_with(args: &[&str]) -> Cluster {
    let etcd = Etcd::start().expect("etcd starts");
    let api = ApiServer::start(Path::new(env!("CARGO_BIN_EXE_kube-apiserver")), &etcd, args)
        .expect("apiserver starts");
    kubectl_stdin(
        &api,
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: default\n",
    )
    .assert_success();
    Cluster { api, etcd }
}

pub const POD_YAML: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web-1
  labels:
    app: web
spec:
  containers:
  - name: web
    image: busybox
    command: [\"sh\", \"-c\", \"httpd -f -p 80\"]
    ports:
    - containerPort: 80
";

pub const DEPLOYMENT_YAML: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox:1.36
        ports:
        - containerPort: 80
";

/// Writes `content` to `<dir>/<name>` and returns the path as a string.
pub fn write_file(dir: &Path, name: &str, content: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write file");
    p.display().to_string()
}
