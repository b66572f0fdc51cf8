//! The pod describer's pieces.

use chrono::DateTime;
use serde_json::Value;

use super::writer::{PrefixWriter, LEVEL_2, LEVEL_3};

/// Go's `time.RFC1123Z` (`Mon, 02 Jan 2006 15:04:05 -0700`), in UTC.
pub fn rfc1123z(ts: &str) -> String {
    DateTime::parse_from_rfc3339(ts)
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S %z").to_string())
        .unwrap_or_else(|_| "Mon, 01 Jan 0001 00:00:00 +0000".to_string())
}

fn describe_status(name: &str, state: &Value, w: &mut PrefixWriter) {
    let str_of = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    if let Some(r) = state.get("running") {
        w.write(LEVEL_2, &format!("{name}:\tRunning\n"));
        w.write(
            LEVEL_3,
            &format!("Started:\t{}\n", rfc1123z(&str_of(r, "startedAt"))),
        );
    } else if let Some(t) = state.get("terminated") {
        w.write(LEVEL_2, &format!("{name}:\tTerminated\n"));
        if !str_of(t, "reason").is_empty() {
            w.write(LEVEL_3, &format!("Reason:\t{}\n", str_of(t, "reason")));
        }
        if !str_of(t, "message").is_empty() {
            w.write(LEVEL_3, &format!("Message:\t{}\n", str_of(t, "message")));
        }
        w.write(
            LEVEL_3,
            &format!("Exit Code:\t{}\n", t["exitCode"].as_i64().unwrap_or(0)),
        );
        if let Some(sig) = t["signal"].as_i64().filter(|s| *s > 0) {
            w.write(LEVEL_3, &format!("Signal:\t{sig}\n"));
        }
        w.write(
            LEVEL_3,
            &format!("Started:\t{}\n", rfc1123z(&str_of(t, "startedAt"))),
        );
        w.write(
            LEVEL_3,
            &format!("Finished:\t{}\n", rfc1123z(&str_of(t, "finishedAt"))),
        );
    } else {
        w.write(LEVEL_2, &format!("{name}:\tWaiting\n"));
        if let Some(reason) = state["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            w.write(LEVEL_3, &format!("Reason:\t{reason}\n"));
        }
    }
}

pub fn print_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// `describeContainerState`.
pub fn describe_container_state(status: &Value, w: &mut PrefixWriter) {
    describe_status("State", &status["state"], w);
    if status["lastState"].get("terminated").is_some() {
        describe_status("Last State", &status["lastState"], w);
    }
    w.write(
        LEVEL_2,
        &format!(
            "Ready:\t{}\n",
            print_bool(status["ready"].as_bool().unwrap_or(false))
        ),
    );
    w.write(
        LEVEL_2,
        &format!(
            "Restart Count:\t{}\n",
            status["restartCount"].as_i64().unwrap_or(0)
        ),
    );
}

/// `qos.GetPodQOS` when the status does not carry it.
fn qos_class(pod: &Value) -> String {
    if let Some(q) = pod["status"]["qosClass"].as_str().filter(|q| !q.is_empty()) {
        return q.to_string();
    }
    let mut any = false;
    let mut guaranteed = true;
    for field in ["initContainers", "containers"] {
        for c in pod["spec"][field].as_array().cloned().unwrap_or_default() {
            let limits = c["resources"]["limits"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let requests = c["resources"]["requests"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let relevant = |k: &String| k == "cpu" || k == "memory";
            if limits.keys().any(relevant) || requests.keys().any(relevant) {
                any = true;
            }
            for r in ["cpu", "memory"] {
                let Some(limit) = limits.get(r) else {
                    guaranteed = false;
                    continue;
                };
                if let Some(req) = requests.get(r) {
                    if req != limit {
                        guaranteed = false;
                    }
                }
            }
        }
    }
    if !any {
        "BestEffort".into()
    } else if guaranteed {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}

/// `describePod`.
pub fn describe(pod: &Value, events: Option<&Vec<Value>>) -> String {
    use super::template::{
        annotations_multiline, describe_containers, describe_volumes, labels_multiline,
        tolerations_multiline,
    };
    use super::writer::{LEVEL_0, LEVEL_1};
    let meta = &pod["metadata"];
    let spec = &pod["spec"];
    let status = &pod["status"];
    let st = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let mut w = PrefixWriter::new();
    w.write(LEVEL_0, &format!("Name:\t{}\n", st(meta, "name")));
    w.write(LEVEL_0, &format!("Namespace:\t{}\n", st(meta, "namespace")));
    if let Some(p) = spec["priority"].as_i64() {
        w.write(LEVEL_0, &format!("Priority:\t{p}\n"));
    }
    if !st(spec, "priorityClassName").is_empty() {
        w.write(
            LEVEL_0,
            &format!("Priority Class Name:\t{}\n", st(spec, "priorityClassName")),
        );
    }
    if !st(spec, "runtimeClassName").is_empty() {
        w.write(
            LEVEL_0,
            &format!("Runtime Class Name:\t{}\n", st(spec, "runtimeClassName")),
        );
    }
    if !st(spec, "serviceAccountName").is_empty() {
        w.write(
            LEVEL_0,
            &format!("Service Account:\t{}\n", st(spec, "serviceAccountName")),
        );
    }
    if st(spec, "nodeName").is_empty() {
        w.write(LEVEL_0, "Node:\t<none>\n");
    } else {
        w.write(
            LEVEL_0,
            &format!("Node:\t{}/{}\n", st(spec, "nodeName"), st(status, "hostIP")),
        );
    }
    if let Some(start) = status["startTime"].as_str() {
        w.write(LEVEL_0, &format!("Start Time:\t{}\n", rfc1123z(start)));
    }
    labels_multiline(&mut w, "", "Labels", &meta["labels"]);
    annotations_multiline(&mut w, "Annotations", &meta["annotations"]);
    let phase = st(status, "phase");
    if let Some(deleted) = meta["deletionTimestamp"].as_str() {
        if phase != "Failed" && phase != "Succeeded" {
            let lasts =
                api_types::table::translate_timestamp_since(Some(deleted), chrono::Utc::now());
            w.write(LEVEL_0, &format!("Status:\tTerminating (lasts {lasts})\n"));
            w.write(
                LEVEL_0,
                &format!(
                    "Termination Grace Period:\t{}s\n",
                    meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0)
                ),
            );
        } else {
            w.write(LEVEL_0, &format!("Status:\t{phase}\n"));
        }
    } else {
        w.write(LEVEL_0, &format!("Status:\t{phase}\n"));
    }
    if !st(status, "reason").is_empty() {
        w.write(LEVEL_0, &format!("Reason:\t{}\n", st(status, "reason")));
    }
    if !st(status, "message").is_empty() {
        w.write(LEVEL_0, &format!("Message:\t{}\n", st(status, "message")));
    }
    if let Some(t) = spec["securityContext"]["seccompProfile"]["type"].as_str() {
        w.write(LEVEL_0, &format!("SeccompProfile:\t{t}\n"));
    }
    w.write(LEVEL_0, &format!("IP:\t{}\n", st(status, "podIP")));
    match status["podIPs"].as_array().filter(|a| !a.is_empty()) {
        None => w.write(LEVEL_0, "IPs:\t<none>\n"),
        Some(ips) => {
            w.write(LEVEL_0, "IPs:\n");
            for ip in ips {
                w.write(LEVEL_1, &format!("IP:\t{}\n", st(ip, "ip")));
            }
        }
    }
    if let Some(c) = super::controller(pod) {
        w.write(LEVEL_0, &format!("Controlled By:\t{c}\n"));
    }
    if !st(status, "nominatedNodeName").is_empty() {
        w.write(
            LEVEL_0,
            &format!("NominatedNodeName:\t{}\n", st(status, "nominatedNodeName")),
        );
    }
    if spec["initContainers"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
    {
        describe_containers(
            "Init Containers",
            &spec["initContainers"],
            Some(&status["initContainerStatuses"]),
            &mut w,
            "",
        );
    }
    describe_containers(
        "Containers",
        &spec["containers"],
        Some(&status["containerStatuses"]),
        &mut w,
        "",
    );
    if let Some(conditions) = status["conditions"].as_array().filter(|c| !c.is_empty()) {
        w.write(LEVEL_0, "Conditions:\n  Type\tStatus\n");
        for c in conditions {
            w.write(
                LEVEL_1,
                &format!("{} \t{} \n", st(c, "type"), st(c, "status")),
            );
        }
    }
    describe_volumes(&spec["volumes"], &mut w, "");
    w.write(LEVEL_0, &format!("QoS Class:\t{}\n", qos_class(pod)));
    labels_multiline(&mut w, "", "Node-Selectors", &spec["nodeSelector"]);
    tolerations_multiline(&mut w, "", "Tolerations", &spec["tolerations"]);
    super::events::describe(events, &mut w);
    w.aligned()
}
