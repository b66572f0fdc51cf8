//! The pod printer (upstream `printPod`): Ready `1/2`, the aggregate Status
//! (`Init:0/1`, `CrashLoopBackOff`, `Completed`, `Terminating`, ...), Restarts with the
//! time since the last restart, and the wide IP/Node/Nominated Node/Readiness Gates.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
use serde_json::{json, Value};

use super::util::{arr, at, doc, i, name, opt_b, opt_s, parse_time, s};
use super::{columns, human_duration, Column, Printer, Row};

pub(crate) fn printer(group: &str, kind: &str) -> Option<Printer> {
    match (group, kind) {
        ("", "Pod") => Some(Printer {
            columns: pod_columns,
            row: pod_row,
        }),
        _ => None,
    }
}

fn pod_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
        Column::new("Status", "string", "The aggregate status of the containers in this pod."),
        Column::new(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."
        ),
        Column::age(),
        Column::new("IP", "string", doc::<PodStatus>("podIP")).wide(),
        Column::new("Node", "string", doc::<PodSpec>("nodeName")).wide(),
        Column::new("Nominated Node", "string", doc::<PodStatus>("nominatedNodeName")).wide(),
        Column::new("Readiness Gates", "string", doc::<PodSpec>("readinessGates")).wide(),
    ]
}

/// `lastState.terminated.finishedAt` of a container status, if any.
fn last_termination(status: &Value) -> Option<DateTime<Utc>> {
    at(status, &["lastState", "terminated"])?;
    parse_time(opt_s(status, &["lastState", "terminated", "finishedAt"]))
}

fn later(
    current: Option<DateTime<Utc>>,
    candidate: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (current, candidate) {
        (Some(c), Some(n)) if n > c => Some(n),
        (None, n) => n,
        (c, _) => c,
    }
}

fn condition_true(pod: &Value, ty: &str) -> bool {
    arr(pod, &["status", "conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == ty)
        .is_some_and(|c| s(c, &["status"]) == "True")
}

fn has_pod_ready_condition(pod: &Value) -> bool {
    arr(pod, &["status", "conditions"])
        .iter()
        .any(|c| s(c, &["type"]) == "Ready" && s(c, &["status"]) == "True")
}

/// The reason printed for a terminated container without a reason.
fn exit_reason(terminated: &Value, prefix: &str) -> String {
    let signal = i(terminated, &["signal"]);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", i(terminated, &["exitCode"]))
    }
}

fn pod_row(pod: &Value, now: DateTime<Utc>) -> Row {
    let init_containers = arr(pod, &["spec", "initContainers"]);
    let is_restartable = |container_name: &str| {
        init_containers
            .iter()
            .find(|c| s(c, &["name"]) == container_name)
            .is_some_and(|c| s(c, &["restartPolicy"]) == "Always")
    };

    let mut restarts = 0i64;
    let mut restartable_init_restarts = 0i64;
    let total_containers = arr(pod, &["spec", "containers"]).len()
        + init_containers
            .iter()
            .filter(|c| s(c, &["restartPolicy"]) == "Always")
            .count();
    let mut ready_containers = 0usize;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_restartable_init_restart: Option<DateTime<Utc>> = None;

    let phase = s(pod, &["status", "phase"]);
    let mut reason = phase.to_string();
    let status_reason = s(pod, &["status", "reason"]);
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    if arr(pod, &["status", "conditions"])
        .iter()
        .any(|c| s(c, &["type"]) == "PodScheduled" && s(c, &["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let conditions = match phase {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."
        }])),
        _ => None,
    };

    let mut initializing = false;
    for (idx, status) in arr(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let restart_count = i(status, &["restartCount"]);
        restarts += restart_count;
        let terminated_at = last_termination(status);
        last_restart = later(last_restart, terminated_at);
        let restartable = is_restartable(s(status, &["name"]));
        if restartable {
            restartable_init_restarts += restart_count;
            last_restartable_init_restart = later(last_restartable_init_restart, terminated_at);
        }
        let terminated = at(status, &["state", "terminated"]).filter(|t| t.is_object());
        let waiting_reason = s(status, &["state", "waiting", "reason"]);
        match terminated {
            Some(t) if i(t, &["exitCode"]) == 0 => continue,
            _ if restartable && opt_b(status, &["started"]) == Some(true) => {
                if opt_b(status, &["ready"]) == Some(true) {
                    ready_containers += 1;
                }
                continue;
            }
            Some(t) => {
                let r = s(t, &["reason"]);
                reason = if r.is_empty() {
                    exit_reason(t, "Init:")
                } else {
                    format!("Init:{r}")
                };
            }
            None if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" => {
                reason = format!("Init:{waiting_reason}");
            }
            None => reason = format!("Init:{idx}/{}", init_containers.len()),
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for status in arr(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += i(status, &["restartCount"]);
            last_restart = later(last_restart, last_termination(status));
            let waiting_reason = s(status, &["state", "waiting", "reason"]);
            let terminated = at(status, &["state", "terminated"]).filter(|t| t.is_object());
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                let r = s(t, &["reason"]);
                reason = if r.is_empty() {
                    exit_reason(t, "")
                } else {
                    r.to_string()
                };
            } else if opt_b(status, &["ready"]) == Some(true)
                && at(status, &["state", "running"]).is_some_and(Value::is_object)
            {
                has_running = true;
                ready_containers += 1;
            }
        }
        // A pod whose last container completed but another still runs is not Completed.
        if reason == "Completed" && has_running {
            reason = if has_pod_ready_condition(pod) {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    let deleting = super::util::has_deletion_timestamp(pod);
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            human_duration(now.signed_duration_since(t))
        ),
        _ => restarts.to_string(),
    };

    // The v1 `podIP` is authoritative over `podIPs[0]` (upstream's v1 conversion).
    let pod_ip = Some(s(pod, &["status", "podIP"]))
        .filter(|ip| !ip.is_empty())
        .or_else(|| {
            arr(pod, &["status", "podIPs"])
                .first()
                .map(|p| s(p, &["ip"]))
        })
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    let none_if_empty = |v: &str| {
        if v.is_empty() {
            "<none>".to_string()
        } else {
            v.to_string()
        }
    };

    let gates = arr(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr(pod, &["status", "conditions"]);
        let true_count = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| s(c, &["type"]) == s(g, &["conditionType"]))
                    .is_some_and(|c| s(c, &["status"]) == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };

    Row {
        cells: vec![
            Value::from(name(pod)),
            Value::from(format!("{ready_containers}/{total_containers}")),
            Value::from(reason),
            Value::from(restarts_cell),
            super::util::age(pod, now),
            Value::from(pod_ip),
            Value::from(none_if_empty(s(pod, &["spec", "nodeName"]))),
            Value::from(none_if_empty(s(pod, &["status", "nominatedNodeName"]))),
            Value::from(readiness_gates),
        ],
        conditions,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ago, column_names, print_one};
    use serde_json::{json, Value};

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": ago(3 * 86400 + 5 * 3600)},
            "spec": spec,
            "status": status,
        })
    }

    fn one_container() -> Value {
        json!({"containers": [{"name": "app", "image": "busybox"}], "nodeName": "node-1"})
    }

    fn status_cells(spec: Value, status: Value) -> Vec<Value> {
        print_one("", "Pod", pod(spec, status)).1
    }

    #[test]
    fn columns_match_upstream() {
        let (t, _) = print_one("", "Pod", pod(one_container(), json!({})));
        let names: Vec<(String, i64)> = column_names(&t);
        let want = [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1),
        ];
        assert_eq!(
            names,
            want.iter()
                .map(|(n, p)| (n.to_string(), *p))
                .collect::<Vec<_>>()
        );
        assert_eq!(t["columnDefinitions"][3]["type"], "string");
        assert!(t["columnDefinitions"][5]["description"]
            .as_str()
            .is_some_and(|d| d.contains("IP address allocated to the pod")));
    }

    #[test]
    fn running_pod() {
        let cells = status_cells(
            one_container(),
            json!({
                "phase": "Running", "podIP": "10.1.2.3", "podIPs": [{"ip": "10.1.2.3"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": ago(100)}}}]
            }),
        );
        assert_eq!(
            cells,
            vec![
                json!("web-1"),
                json!("1/1"),
                json!("Running"),
                json!("0"),
                json!("3d5h"),
                json!("10.1.2.3"),
                json!("node-1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pending_pod_without_status() {
        let cells = status_cells(
            json!({"containers": [{"name": "a"}, {"name": "b"}]}),
            json!({"phase": "Pending"}),
        );
        assert_eq!(cells[1], "0/2");
        assert_eq!(cells[2], "Pending");
        assert_eq!(cells[5], "<none>");
        assert_eq!(cells[6], "<none>");
    }

    #[test]
    fn crash_loop_with_last_restart_age() {
        let cells = status_cells(
            one_container(),
            json!({
                "phase": "Running",
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 5,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(300)}}}]
            }),
        );
        assert_eq!(cells[1], "0/1");
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], "5 (5m ago)");
    }

    #[test]
    fn image_pull_errors_and_terminated_reasons() {
        let waiting = |reason: &str| {
            status_cells(
                one_container(),
                json!({"phase": "Pending", "containerStatuses": [{"name": "app", "restartCount": 0,
                    "state": {"waiting": {"reason": reason}}}]}),
            )[2]
            .clone()
        };
        assert_eq!(waiting("ErrImagePull"), "ErrImagePull");
        assert_eq!(waiting("ImagePullBackOff"), "ImagePullBackOff");

        let terminated = |t: Value| {
            status_cells(
                one_container(),
                json!({"phase": "Failed", "containerStatuses": [{"name": "app", "state": {"terminated": t}}]}),
            )[2]
                .clone()
        };
        assert_eq!(
            terminated(json!({"exitCode": 137, "reason": "OOMKilled"})),
            "OOMKilled"
        );
        assert_eq!(terminated(json!({"exitCode": 2})), "ExitCode:2");
        assert_eq!(terminated(json!({"exitCode": 0, "signal": 9})), "Signal:9");
    }

    #[test]
    fn completed_pod_has_row_condition() {
        let p = pod(
            one_container(),
            json!({"phase": "Succeeded", "containerStatuses": [{"name": "app",
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        );
        let (t, cells) = print_one("", "Pod", p);
        assert_eq!(cells[2], "Completed");
        assert_eq!(t["rows"][0]["conditions"][0]["type"], "Completed");
        assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
    }

    #[test]
    fn completed_container_with_running_sibling() {
        let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        let status = |ready_cond: &str| {
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": ready_cond}],
            "containerStatuses": [
                {"name": "a", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "ready": true, "state": {"running": {}}}
            ]})
        };
        // Statuses are walked last to first, so `a` (Completed) sets the reason last.
        assert_eq!(status_cells(spec.clone(), status("True"))[2], "Running");
        assert_eq!(status_cells(spec, status("False"))[2], "NotReady");
    }

    #[test]
    fn init_containers() {
        let spec = json!({
            "initContainers": [{"name": "init-a"}, {"name": "init-b"}],
            "containers": [{"name": "app"}]
        });
        let cells = status_cells(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "init-a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "init-b", "state": {"running": {}}}
            ], "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
        );
        assert_eq!(cells[2], "Init:1/2");
        assert_eq!(cells[1], "0/1");

        let cells = status_cells(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "init-a", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(20)}}}
            ]}),
        );
        assert_eq!(cells[2], "Init:CrashLoopBackOff");
        assert_eq!(cells[3], "3 (20s ago)");

        let cells = status_cells(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "init-a", "state": {"terminated": {"exitCode": 1}}}
            ]}),
        );
        assert_eq!(cells[2], "Init:ExitCode:1");

        let cells = status_cells(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "init-a", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
            ]}),
        );
        assert_eq!(cells[2], "Init:Error");

        // All init containers done: the app container's waiting reason shows.
        let cells = status_cells(
            spec,
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "init-a", "state": {"terminated": {"exitCode": 0}}},
                {"name": "init-b", "state": {"terminated": {"exitCode": 0}}}
            ], "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
        );
        assert_eq!(cells[2], "PodInitializing");
    }

    #[test]
    fn sidecar_init_containers_count_as_containers() {
        let spec = json!({
            "initContainers": [{"name": "sidecar", "restartPolicy": "Always"}],
            "containers": [{"name": "app"}]
        });
        let cells = status_cells(
            spec,
            json!({"phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                "initContainerStatuses": [{"name": "sidecar", "started": true, "ready": true, "restartCount": 2,
                    "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(7200)}}}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 1, "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(600)}}}]}),
        );
        assert_eq!(cells[1], "2/2");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "3 (10m ago)");
    }

    #[test]
    fn terminating_and_node_lost() {
        let mut p = pod(one_container(), json!({"phase": "Running"}));
        p["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(print_one("", "Pod", p.clone()).1[2], "Terminating");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(print_one("", "Pod", p.clone()).1[2], "Unknown");
        p["status"] = json!({"phase": "Succeeded"});
        assert_eq!(print_one("", "Pod", p).1[2], "Succeeded");
    }

    #[test]
    fn scheduling_gated_and_status_reason() {
        let cells = status_cells(
            one_container(),
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
        );
        assert_eq!(cells[2], "SchedulingGated");
        let cells = status_cells(
            one_container(),
            json!({"phase": "Failed", "reason": "Evicted"}),
        );
        assert_eq!(cells[2], "Evicted");
    }

    #[test]
    fn wide_cells() {
        let mut spec = one_container();
        spec["readinessGates"] = json!([{"conditionType": "a"}, {"conditionType": "b"}]);
        let cells = status_cells(
            spec,
            json!({"phase": "Running", "podIPs": [{"ip": "fd00::5"}], "nominatedNodeName": "node-2",
                "conditions": [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}]}),
        );
        assert_eq!(cells[5], "fd00::5");
        assert_eq!(cells[6], "node-1");
        assert_eq!(cells[7], "node-2");
        assert_eq!(cells[8], "1/2");
    }

    #[test]
    fn tolerates_garbage() {
        let p =
            json!({"metadata": {"name": "x"}, "spec": "nope", "status": {"containerStatuses": 5}});
        let cells = print_one("", "Pod", p).1;
        assert_eq!(cells[0], "x");
        assert_eq!(cells[1], "0/0");
        assert_eq!(cells[2], "");
        assert_eq!(cells[4], "<unknown>");
    }
}
