//! `kubectl describe` of the kinds beyond pods, deployments and services: our
//! kubectl against upstream kubectl v1.32 on the same real apiserver + etcd.
//! Objects are created by upstream kubectl in namespaces (or, cluster-scoped,
//! with names) `ours` and `theirs`; the name is masked before comparing, as are
//! ages, creation times, resource versions, uids and random volume names, and the lines of `Data` blocks (upstream
//! ranges over a Go map) are compared order-free.

mod common;

use common::{assert_no_diffs, is_age, mask_ages_in_line, rendered, with_ns, Cluster, OURS};
use test_support::{KubectlOutput, KUBECTL};

/// A uid (`8-4-4-4-12` hex digits) anywhere in `word`, masked.
fn mask_uids(line: &str) -> String {
    let bytes = line.as_bytes();
    let shape = [8, 4, 4, 4, 12];
    let mut out = String::new();
    let mut i = 0;
    'outer: while i < line.len() {
        let mut j = i;
        for (k, len) in shape.iter().enumerate() {
            let end = j + len;
            if end > bytes.len() || !bytes[j..end].iter().all(u8::is_ascii_hexdigit) {
                out.push(char::from(bytes[i]));
                i += 1;
                continue 'outer;
            }
            j = end;
            if k < 4 {
                if bytes.get(j) != Some(&b'-') {
                    out.push(char::from(bytes[i]));
                    i += 1;
                    continue 'outer;
                }
                j += 1;
            }
        }
        out.push_str("<uid>");
        i = j;
    }
    out
}

/// The random suffix of the service account token volume, masked.
fn mask_token_volume(text: &str) -> String {
    const PREFIX: &str = "kube-api-access-";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        let after = at + PREFIX.len();
        out.push_str(&rest[..after]);
        out.push_str("<random>");
        let suffix = rest[after..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len() - after);
        rest = &rest[after + suffix..];
    }
    out.push_str(rest);
    out
}

fn render(out: &KubectlOutput, ns: &str) -> String {
    let text = mask_token_volume(&rendered(out).replace(ns, "<ns>"));
    let mut lines: Vec<String> = Vec::new();
    let mut in_data = false;
    let mut block: Vec<String> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let masked = if line.starts_with("CreationTimestamp:") {
            "CreationTimestamp: <time>".to_string()
        } else if trimmed.starts_with("Creation Timestamp:")
            || trimmed.starts_with("Resource Version:")
        {
            // the generic describer's metadata dump
            trimmed.split(':').next().unwrap_or_default().to_string()
        } else {
            mask_ages_in_line(&mask_uids(line), is_age)
        };
        if in_data && !masked.is_empty() {
            block.push(masked);
            continue;
        }
        // a block ends at its first empty line
        block.sort();
        lines.append(&mut block);
        in_data = masked == "====";
        lines.push(masked);
    }
    block.sort();
    lines.append(&mut block);
    lines.join("\n")
}

fn both(cluster: &Cluster, args: &[&str]) -> (String, String) {
    let go = |bin: &str, ns: &str| {
        let all = with_ns(ns, args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        render(&cluster.run(bin, &refs, None), ns)
    };
    (go(OURS, "ours"), go(KUBECTL, "theirs"))
}

const WORKLOADS: &str = "apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  containers:
  - name: a
    image: busybox
    livenessProbe: {exec: {command: [cat, /health]}, initialDelaySeconds: 60, timeoutSeconds: 2, periodSeconds: 5, failureThreshold: 2}
    readinessProbe: {httpGet: {path: /healthz, port: 8080}}
    startupProbe: {tcpSocket: {port: 80}, periodSeconds: 3}
    env: [{name: A, value: '1'}]
  - name: b
    image: busybox
    readinessProbe: {httpGet: {path: ready, port: http, host: example.com, scheme: HTTPS}}
    livenessProbe: {grpc: {port: 9000, service: health}}
    # (upstream kubectl panics on a grpc probe whose service is unset)
    startupProbe: {grpc: {port: 9001, service: ''}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, labels: {app: agent}, annotations: {note: daemon}}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {role: edge, disk: ssd}
      tolerations: [{operator: Exists}]
      containers: [{name: c, image: busybox, livenessProbe: {tcpSocket: {port: 22}}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}, matchExpressions: [{key: tier, operator: In, values: [b, a]}]}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 1}}
  template:
    metadata: {labels: {app: db, tier: a}}
    spec: {containers: [{name: c, image: busybox}]}
  volumeClaimTemplates:
  - metadata: {name: data, labels: {k: v}}
    spec: {accessModes: [ReadWriteOnce], storageClassName: fast, resources: {requests: {storage: 1Gi}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  manualSelector: true
  selector: {matchLabels: {job: once}}
  parallelism: 2
  completions: 4
  completionMode: Indexed
  backoffLimit: 3
  activeDeadlineSeconds: 100
  ttlSecondsAfterFinished: 30
  template:
    metadata: {labels: {job: once}}
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox, command: [sh, -c, 'exit 0']}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: plain}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: '*/5 * * * *'
  startingDeadlineSeconds: 20
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: OnFailure, containers: [{name: c, image: busybox}]}
";

#[test]
fn describe_workload_kinds_match_upstream() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["create", "-f", "-"], Some(WORKLOADS));
    assert_no_diffs(
        &[
            &["describe", "pod", "probed"][..],
            &["describe", "ds", "agent"],
            &["describe", "daemonsets"],
            &["describe", "statefulset", "db"],
            &["describe", "job", "once"],
            &["describe", "job", "plain"],
            &["describe", "cronjob", "tick"],
            &["describe", "cj/tick", "--show-events=false"],
        ],
        |args| both(&cluster, args),
    );
}

const CONFIG: &str = "apiVersion: v1
kind: Secret
metadata: {name: creds, labels: {a: b}}
type: Opaque
data: {password: c2VjcmV0, user: YWRtaW4=, empty: ''}
---
apiVersion: v1
kind: Secret
metadata: {name: tls}
type: kubernetes.io/tls
data: {tls.crt: Y2VydA==, tls.key: a2V5}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot}
secrets: [{name: creds}, {name: gone}]
imagePullSecrets: [{name: pull}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets:
- addresses: [{ip: 10.0.0.1}, {ip: 10.0.0.2}]
  notReadyAddresses: [{ip: 10.0.0.3}]
  ports: [{name: http, port: 80, protocol: TCP}, {port: 53, protocol: UDP}]
- addresses: [{ip: 10.0.1.1}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
  hostname: pod-1
  nodeName: node-a
  targetRef: {kind: Pod, name: web-1}
- addresses: [10.0.0.2]
  conditions: {}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: empty}
addressType: IPv6
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules:
- apiGroups: ['', apps]
  resources: [pods, deployments/scale]
  verbs: [get, list]
- apiGroups: ['']
  resources: [pods]
  verbs: [watch]
- apiGroups: ['']
  resources: [configmaps]
  resourceNames: [one, two]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects:
- {kind: ServiceAccount, name: robot, namespace: '{ns}'}
- {kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: '{ns}-viewer', annotations: {purpose: test}}
rules:
- nonResourceURLs: [/healthz, /metrics]
  verbs: [get]
- apiGroups: ['*']
  resources: ['*']
  verbs: ['*']
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: '{ns}-view'}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: '{ns}-viewer'}
subjects: [{kind: Group, name: devs, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: lock, labels: {x: z}}
spec: {holderIdentity: me, leaseDurationSeconds: 15, renewTime: '2024-01-01T00:00:00.000000Z'}
";

#[test]
fn describe_config_and_rbac_kinds_match_upstream() {
    let cluster = Cluster::start_with_namespaces();
    cluster.setup_both(&["create", "-f", "-"], Some(CONFIG));
    assert_no_diffs(
        &[
            &["describe", "secret", "creds"][..],
            &["describe", "secret/tls"],
            &["describe", "sa", "robot"],
            &["describe", "sa", "default"],
            &["describe", "ep", "web"],
            &["describe", "endpointslice", "web-abc"],
            &["describe", "endpointslice", "empty"],
            &["describe", "role", "reader"],
            &["describe", "rolebinding", "read"],
            &["describe", "clusterrole", "{ns}-viewer"],
            &["describe", "clusterrolebinding", "{ns}-view"],
            &["describe", "lease", "lock"],
            &["describe", "leases"],
        ],
        |args| both(&cluster, args),
    );
}

#[test]
fn uids_are_masked() {
    assert_eq!(
        mask_uids("uid=0b4f1c8e-1a2b-4c3d-8e9f-0123456789ab, x"),
        "uid=<uid>, x"
    );
    assert_eq!(mask_uids("deadbeef-12"), "deadbeef-12");
    assert_eq!(
        mask_token_volume("kube-api-access-x2b9q:\n from kube-api-access-abcde (ro)"),
        "kube-api-access-<random>:\n from kube-api-access-<random> (ro)"
    );
}
