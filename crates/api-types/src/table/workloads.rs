//! Printers for workload controllers: deployments, replica sets, daemon sets,
//! stateful sets, controller revisions, jobs and cron jobs.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSetSpec, DaemonSetStatus, DeploymentSpec, DeploymentStatus,
    ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::batch::v1::{CronJobSpec, CronJobStatus, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::PodSpec;
use serde_json::Value;

use super::util::{
    age, arr, at, bool_ptr, container_cells, doc, format_label_selector, format_labels,
    has_deletion_timestamp, i, label_selector_string, name, obj, opt_i, opt_s, parse_time, s,
};
use super::{
    columns, human_duration, translate_timestamp_since, Column, ColumnsFn, Printer, Row, RowFn,
};

pub(crate) fn printer(group: &str, kind: &str) -> Option<Printer> {
    let (columns, row): (ColumnsFn, RowFn) = match (group, kind) {
        ("apps", "Deployment") => (deployment_columns, deployment_row),
        ("apps", "ReplicaSet") => (replicaset_columns, replicaset_row),
        ("apps", "DaemonSet") => (daemonset_columns, daemonset_row),
        ("apps", "StatefulSet") => (statefulset_columns, statefulset_row),
        ("apps", "ControllerRevision") => (revision_columns, revision_row),
        ("batch", "Job") => (job_columns, job_row),
        ("batch", "CronJob") => (cronjob_columns, cronjob_row),
        _ => return None,
    };
    Some(Printer { columns, row })
}

/// `spec.replicas`, defaulted to 1 as upstream's defaulting does.
fn desired_replicas(v: &Value) -> i64 {
    opt_i(v, &["spec", "replicas"]).unwrap_or(1)
}

// ---- deployments, replica sets, daemon sets, stateful sets ----

fn deployment_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Ready", "string", "Number of the pod with ready state"),
        Column::new(
            "Up-to-date",
            "string",
            doc::<DeploymentStatus>("updatedReplicas")
        ),
        Column::new(
            "Available",
            "string",
            doc::<DeploymentStatus>("availableReplicas")
        ),
        Column::age(),
        Column::containers(),
        Column::images(),
        Column::new("Selector", "string", doc::<DeploymentSpec>("selector")).wide(),
    ]
}

fn deployment_row(d: &Value, now: DateTime<Utc>) -> Row {
    let (names, images) = container_cells(at(d, &["spec", "template", "spec"]));
    let selector = label_selector_string(at(d, &["spec", "selector"]))
        .unwrap_or_else(|()| "<invalid>".to_string());
    vec![
        Value::from(name(d)),
        Value::from(format!(
            "{}/{}",
            i(d, &["status", "readyReplicas"]),
            desired_replicas(d)
        )),
        Value::from(i(d, &["status", "updatedReplicas"])),
        Value::from(i(d, &["status", "availableReplicas"])),
        age(d, now),
        names,
        images,
        Value::from(selector),
    ]
    .into()
}

fn replicaset_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Desired", "integer", doc::<ReplicaSetSpec>("replicas")),
        Column::new("Current", "integer", doc::<ReplicaSetStatus>("replicas")),
        Column::new("Ready", "integer", doc::<ReplicaSetStatus>("readyReplicas")),
        Column::age(),
        Column::containers(),
        Column::images(),
        Column::new("Selector", "string", doc::<ReplicaSetSpec>("selector")).wide(),
    ]
}

fn replicaset_row(rs: &Value, now: DateTime<Utc>) -> Row {
    let (names, images) = container_cells(at(rs, &["spec", "template", "spec"]));
    vec![
        Value::from(name(rs)),
        Value::from(desired_replicas(rs)),
        Value::from(i(rs, &["status", "replicas"])),
        Value::from(i(rs, &["status", "readyReplicas"])),
        age(rs, now),
        names,
        images,
        Value::from(format_label_selector(at(rs, &["spec", "selector"]))),
    ]
    .into()
}

fn daemonset_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new(
            "Desired",
            "integer",
            doc::<DaemonSetStatus>("desiredNumberScheduled")
        ),
        Column::new(
            "Current",
            "integer",
            doc::<DaemonSetStatus>("currentNumberScheduled")
        ),
        Column::new("Ready", "integer", doc::<DaemonSetStatus>("numberReady")),
        Column::new(
            "Up-to-date",
            "integer",
            doc::<DaemonSetStatus>("updatedNumberScheduled")
        ),
        Column::new(
            "Available",
            "integer",
            doc::<DaemonSetStatus>("numberAvailable")
        ),
        Column::new("Node Selector", "string", doc::<PodSpec>("nodeSelector")),
        Column::age(),
        Column::containers(),
        Column::images(),
        Column::new("Selector", "string", doc::<DaemonSetSpec>("selector")).wide(),
    ]
}

fn daemonset_row(ds: &Value, now: DateTime<Utc>) -> Row {
    let (names, images) = container_cells(at(ds, &["spec", "template", "spec"]));
    let status = |field: &str| Value::from(i(ds, &["status", field]));
    vec![
        Value::from(name(ds)),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        Value::from(format_labels(obj(
            ds,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        age(ds, now),
        names,
        images,
        Value::from(format_label_selector(at(ds, &["spec", "selector"]))),
    ]
    .into()
}

fn statefulset_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Ready", "string", "Number of the pod with ready state"),
        Column::age(),
        Column::containers(),
        Column::images(),
    ]
}

fn statefulset_row(sts: &Value, now: DateTime<Utc>) -> Row {
    let (names, images) = container_cells(at(sts, &["spec", "template", "spec"]));
    vec![
        Value::from(name(sts)),
        Value::from(format!(
            "{}/{}",
            i(sts, &["status", "readyReplicas"]),
            desired_replicas(sts)
        )),
        age(sts, now),
        names,
        images,
    ]
    .into()
}

fn revision_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Controller", "string", "Controller of the object"),
        Column::new("Revision", "string", doc::<ControllerRevision>("revision")),
        Column::age(),
    ]
}

fn revision_row(cr: &Value, now: DateTime<Utc>) -> Row {
    let controller = arr(cr, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| at(o, &["controller"]).and_then(Value::as_bool) == Some(true));
    let controller_name = match controller {
        None => "<none>".to_string(),
        Some(owner) => {
            let api_version = s(owner, &["apiVersion"]);
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            let kind = s(owner, &["kind"]);
            let owner_name = s(owner, &["name"]);
            if group.is_empty() && kind.is_empty() {
                owner_name.to_string()
            } else if group.is_empty() {
                format!("{}/{owner_name}", kind.to_lowercase())
            } else {
                format!(
                    "{}.{}/{owner_name}",
                    kind.to_lowercase(),
                    group.to_lowercase()
                )
            }
        }
    };
    vec![
        Value::from(name(cr)),
        Value::from(controller_name),
        Value::from(i(cr, &["revision"])),
        age(cr, now),
    ]
    .into()
}

// ---- jobs and cron jobs ----

fn job_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Status", "string", "Status of the job."),
        Column::new("Completions", "string", doc::<JobStatus>("succeeded")),
        Column::new("Duration", "string", "Time required to complete the job."),
        Column::age(),
        Column::containers(),
        Column::images(),
        Column::new("Selector", "string", doc::<JobSpec>("selector")).wide(),
    ]
}

/// Whether the first condition of type `ty` is True (upstream `hasJobCondition`).
fn has_job_condition(job: &Value, ty: &str) -> bool {
    arr(job, &["status", "conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == ty)
        .is_some_and(|c| s(c, &["status"]) == "True")
}

fn job_row(job: &Value, now: DateTime<Utc>) -> Row {
    let succeeded = i(job, &["status", "succeeded"]);
    let completions = match opt_i(job, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match opt_i(job, &["spec", "parallelism"]).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = parse_time(opt_s(job, &["status", "startTime"]));
    let completion = parse_time(opt_s(job, &["status", "completionTime"]));
    let duration = match (start, completion) {
        (None, _) => String::new(),
        (Some(st), None) => human_duration(now.signed_duration_since(st)),
        (Some(st), Some(done)) => human_duration(done.signed_duration_since(st)),
    };
    let status = if has_job_condition(job, "Complete") {
        "Complete"
    } else if has_job_condition(job, "Failed") {
        "Failed"
    } else if has_deletion_timestamp(job) {
        "Terminating"
    } else if has_job_condition(job, "Suspended") {
        "Suspended"
    } else if has_job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(at(job, &["spec", "template", "spec"]));
    vec![
        Value::from(name(job)),
        Value::from(status),
        Value::from(completions),
        Value::from(duration),
        age(job, now),
        names,
        images,
        Value::from(format_label_selector(at(job, &["spec", "selector"]))),
    ]
    .into()
}

fn cronjob_columns() -> &'static [Column] {
    columns![
        Column::name(),
        Column::new("Schedule", "string", doc::<CronJobSpec>("schedule")),
        Column::new("Timezone", "string", doc::<CronJobSpec>("timeZone")),
        Column::new("Suspend", "boolean", doc::<CronJobSpec>("suspend")),
        Column::new("Active", "integer", doc::<CronJobStatus>("active")),
        Column::new(
            "Last Schedule",
            "string",
            doc::<CronJobStatus>("lastScheduleTime")
        ),
        Column::age(),
        Column::containers(),
        Column::images(),
        Column::new("Selector", "string", doc::<JobSpec>("selector")).wide(),
    ]
}

fn cronjob_row(cj: &Value, now: DateTime<Utc>) -> Row {
    let last_schedule = match opt_s(cj, &["status", "lastScheduleTime"]) {
        Some(t) => translate_timestamp_since(Some(t), now),
        None => "<none>".to_string(),
    };
    let (names, images) =
        container_cells(at(cj, &["spec", "jobTemplate", "spec", "template", "spec"]));
    vec![
        Value::from(name(cj)),
        Value::from(s(cj, &["spec", "schedule"])),
        Value::from(opt_s(cj, &["spec", "timeZone"]).unwrap_or("<none>")),
        Value::from(bool_ptr(
            at(cj, &["spec", "suspend"]).and_then(Value::as_bool),
        )),
        Value::from(arr(cj, &["status", "active"]).len()),
        Value::from(last_schedule),
        age(cj, now),
        names,
        images,
        Value::from(format_label_selector(at(
            cj,
            &["spec", "jobTemplate", "spec", "selector"],
        ))),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ago, labeled_column_names as names, meta_aged, print_one};
    use serde_json::{json, Value};

    fn meta(name: &str) -> Value {
        meta_aged(name, 90)
    }

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"}]}})
    }

    #[test]
    fn deployment() {
        let d = json!({
            "metadata": meta("web"),
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        let (t, cells) = print_one("apps", "Deployment", d);
        assert_eq!(
            names(&t),
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers(1)",
                "Images(1)",
                "Selector(1)"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("90s"),
                json!("web,log"),
                json!("nginx:1.25,busybox"),
                json!("app=web")
            ]
        );
        let empty = json!({"metadata": meta("x"), "spec": {"selector": {}}});
        let cells = print_one("apps", "Deployment", empty).1;
        assert_eq!(cells[1], "0/1");
        assert_eq!(cells[5], "");
        assert_eq!(cells[7], "");
    }

    #[test]
    fn replicaset_and_statefulset() {
        let rs = json!({
            "metadata": meta("web-abc"),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "abc"}}, "template": template()},
            "status": {"replicas": 2, "readyReplicas": 1}
        });
        let (t, cells) = print_one("apps", "ReplicaSet", rs);
        assert_eq!(
            names(&t),
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Age",
                "Containers(1)",
                "Images(1)",
                "Selector(1)"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("web-abc"),
                json!(2),
                json!(2),
                json!(1),
                json!("90s"),
                json!("web,log"),
                json!("nginx:1.25,busybox"),
                json!("app=web,pod-template-hash=abc")
            ]
        );

        let sts = json!({"metadata": meta("db"), "spec": {"replicas": 3, "template": template()}, "status": {"readyReplicas": 3}});
        let (t, cells) = print_one("apps", "StatefulSet", sts);
        assert_eq!(
            names(&t),
            ["Name", "Ready", "Age", "Containers(1)", "Images(1)"]
        );
        assert_eq!(
            cells,
            vec![
                json!("db"),
                json!("3/3"),
                json!("90s"),
                json!("web,log"),
                json!("nginx:1.25,busybox")
            ]
        );
    }

    #[test]
    fn daemonset() {
        let mut tpl = template();
        tpl["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
        let ds = json!({
            "metadata": meta("proxy"),
            "spec": {"selector": {"matchLabels": {"k8s-app": "proxy"}}, "template": tpl},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                       "updatedNumberScheduled": 3, "numberAvailable": 2}
        });
        let (t, cells) = print_one("apps", "DaemonSet", ds);
        assert_eq!(
            names(&t),
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Up-to-date",
                "Available",
                "Node Selector",
                "Age",
                "Containers(1)",
                "Images(1)",
                "Selector(1)"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("proxy"),
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux"),
                json!("90s"),
                json!("web,log"),
                json!("nginx:1.25,busybox"),
                json!("k8s-app=proxy")
            ]
        );
        let cells = print_one("apps", "DaemonSet", json!({"metadata": meta("x")})).1;
        assert_eq!(cells[6], "<none>");
        assert_eq!(cells[10], "<none>");
    }

    #[test]
    fn controller_revision() {
        let cr = json!({
            "metadata": {"name": "proxy-5d8", "creationTimestamp": ago(90),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "proxy", "controller": true}]},
            "revision": 2
        });
        let (t, cells) = print_one("apps", "ControllerRevision", cr);
        assert_eq!(names(&t), ["Name", "Controller", "Revision", "Age"]);
        assert_eq!(
            cells,
            vec![
                json!("proxy-5d8"),
                json!("daemonset.apps/proxy"),
                json!(2),
                json!("90s")
            ]
        );
        let orphan = json!({"metadata": {"name": "x"}, "revision": 1});
        assert_eq!(
            print_one("apps", "ControllerRevision", orphan).1[1],
            "<none>"
        );
    }

    #[test]
    fn job() {
        let job = |spec: Value, status: Value| {
            let mut s = spec;
            s["template"] = template();
            s["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}});
            print_one(
                "batch",
                "Job",
                json!({"metadata": meta("pi"), "spec": s, "status": status}),
            )
        };
        let (t, cells) = job(
            json!({"completions": 1}),
            json!({"succeeded": 1, "startTime": ago(80), "completionTime": ago(30),
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
        );
        assert_eq!(
            names(&t),
            [
                "Name",
                "Status",
                "Completions",
                "Duration",
                "Age",
                "Containers(1)",
                "Images(1)",
                "Selector(1)"
            ]
        );
        assert_eq!(
            cells,
            vec![
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("50s"),
                json!("90s"),
                json!("web,log"),
                json!("nginx:1.25,busybox"),
                json!("batch.kubernetes.io/controller-uid=u1")
            ]
        );
        let cells = job(
            json!({"parallelism": 3}),
            json!({"succeeded": 1, "startTime": ago(200)}),
        )
        .1;
        assert_eq!(cells[1], "Running");
        assert_eq!(cells[2], "1/1 of 3");
        assert_eq!(cells[3], "3m20s");
        let cells = job(json!({}), json!({})).1;
        assert_eq!(cells[2], "0/1");
        assert_eq!(cells[3], "");
        let cells = job(
            json!({"completions": 5}),
            json!({"failed": 6, "conditions": [{"type": "Failed", "status": "True"}]}),
        )
        .1;
        assert_eq!(cells[1], "Failed");
        assert_eq!(cells[2], "0/5");
        let cells = job(
            json!({}),
            json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
        )
        .1;
        assert_eq!(cells[1], "Suspended");
    }

    #[test]
    fn cronjob() {
        let cj = json!({
            "metadata": meta("hello"),
            "spec": {"schedule": "*/1 * * * *", "suspend": false,
                     "jobTemplate": {"spec": {"template": template()}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(45)}
        });
        let (t, cells) = print_one("batch", "CronJob", cj);
        assert_eq!(
            names(&t),
            [
                "Name",
                "Schedule",
                "Timezone",
                "Suspend",
                "Active",
                "Last Schedule",
                "Age",
                "Containers(1)",
                "Images(1)",
                "Selector(1)"
            ]
        );
        assert_eq!(t["columnDefinitions"][3]["type"], "boolean");
        assert_eq!(
            cells,
            vec![
                json!("hello"),
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("45s"),
                json!("90s"),
                json!("web,log"),
                json!("nginx:1.25,busybox"),
                json!("<none>")
            ]
        );
        let cells = print_one(
            "batch",
            "CronJob",
            json!({"metadata": meta("x"), "spec": {"timeZone": "Etc/UTC"}}),
        )
        .1;
        assert_eq!(cells[2], "Etc/UTC");
        assert_eq!(cells[3], "<unset>");
        assert_eq!(cells[5], "<none>");
    }
}
