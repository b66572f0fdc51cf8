//! Node status as the kubelet and kubectl write it: a merge patch to `nodes/status`
//! changes only the fields it names (`status.daemonEndpoints` survives a patch of
//! another status field), and the main resource cannot write status.

use std::path::Path;

use test_support::{kubectl, kubectl_stdin, ApiServer, Etcd};

const NODE: &str = "apiVersion: v1
kind: Node
metadata:
  name: n1
status:
  daemonEndpoints:
    kubeletEndpoint:
      Port: 10250
  nodeInfo:
    kubeletVersion: v1.33.0
  addresses:
  - type: InternalIP
    address: 10.0.0.1
";

fn start() -> (ApiServer, Etcd) {
    let etcd = Etcd::start().expect("etcd");
    let api = ApiServer::start(Path::new(env!("CARGO_BIN_EXE_kube-apiserver")), &etcd, &[])
        .expect("apiserver");
    (api, etcd)
}

fn jsonpath(api: &ApiServer, path: &str) -> String {
    kubectl(
        api,
        &["get", "node", "n1", "-o", &format!("jsonpath={path}")],
    )
    .assert_success()
    .stdout
    .clone()
}

/// `kubectl patch node n1 --type=<patch_type> -p <patch>` (`--subresource=status`
/// when `status`), which must succeed.
fn patch_node(api: &ApiServer, status: bool, patch_type: &str, patch: &str) {
    let mut args = vec!["patch", "node", "n1", "--type", patch_type, "-p", patch];
    if status {
        args.push("--subresource=status");
    }
    kubectl(api, &args).assert_success();
}

const KUBELET_PORT: &str = "{.status.daemonEndpoints.kubeletEndpoint.Port}";

#[test]
fn merge_patch_of_node_status_keeps_daemon_endpoints() {
    let (api, _etcd) = start();
    kubectl_stdin(&api, &["create", "-f", "-"], NODE).assert_success();
    assert_eq!(
        jsonpath(&api, KUBELET_PORT),
        "10250",
        "create keeps node status"
    );

    let capacity = r#"{"status":{"capacity":{"cpu":"4","memory":"8Gi","pods":"110"}}}"#;
    patch_node(&api, true, "merge", capacity);
    assert_eq!(
        jsonpath(&api, "{.status.capacity.cpu}"),
        "4",
        "the patch applied"
    );
    assert_eq!(
        jsonpath(&api, KUBELET_PORT),
        "10250",
        "status.daemonEndpoints dropped by a merge patch of status.capacity: {}",
        kubectl(&api, &["get", "node", "n1", "-o", "json"]).stdout
    );
    let others = "{.status.nodeInfo.kubeletVersion} {.status.addresses[0].address}";
    assert_eq!(jsonpath(&api, others), "v1.33.0 10.0.0.1");

    // A strategic merge patch (kubectl's default) of the conditions, as the kubelet sends.
    let conditions = r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ok","lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#;
    patch_node(&api, true, "strategic", conditions);
    assert_eq!(
        jsonpath(&api, "{.status.conditions[0].reason}"),
        "KubeletReady"
    );
    assert_eq!(jsonpath(&api, KUBELET_PORT), "10250");

    // A JSON patch and a forced server-side apply of other status fields.
    let json_patch = r#"[{"op":"replace","path":"/status/capacity/pods","value":"200"}]"#;
    patch_node(&api, true, "json", json_patch);
    let apply =
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\nstatus:\n  capacity:\n    cpu: \"8\"\n";
    let server_side = [
        "apply",
        "--server-side",
        "--force-conflicts",
        "--subresource=status",
        "--field-manager=test",
        "-f",
        "-",
    ];
    kubectl_stdin(&api, &server_side, apply).assert_success();
    assert_eq!(
        jsonpath(&api, "{.status.capacity.cpu} {.status.capacity.pods}"),
        "8 200"
    );
    assert_eq!(jsonpath(&api, KUBELET_PORT), "10250");

    // The main resource ignores status.
    patch_node(
        &api,
        false,
        "merge",
        r#"{"status":{"capacity":{"cpu":"64"}}}"#,
    );
    assert_eq!(jsonpath(&api, "{.status.capacity.cpu}"), "8");
    assert_eq!(jsonpath(&api, KUBELET_PORT), "10250");
}
