//! `describe job|cronjob`.

use serde_json::Value;

use super::pod::rfc1123z;
use super::template::name_and_namespace;
use super::template::{annotations_multiline, describe_pod_template, labels_multiline};
use super::writer::{PrefixWriter, LEVEL_0};
use super::{controller, events, field, int};
use crate::cmd::rollout::selector_string;

fn header(w: &mut PrefixWriter, obj: &Value) {
    name_and_namespace(w, obj);
}

/// `capIndexesListOrNone`.
fn cap_indexes(indexes: &str, soft_limit: usize) -> String {
    if indexes.is_empty() {
        return "<none>".into();
    }
    match indexes.get(soft_limit..).and_then(|rest| rest.find(',')) {
        Some(pos) => format!("{}...", &indexes[..soft_limit + pos + 1]),
        None => indexes.to_string(),
    }
}

pub fn job(job: &Value, events: Option<&Vec<Value>>) -> String {
    let spec = &job["spec"];
    let status = &job["status"];
    let mut w = PrefixWriter::new();
    header(&mut w, job);
    w.write(
        LEVEL_0,
        &format!("Selector:\t{}\n", selector_string(&spec["selector"])),
    );
    labels_multiline(&mut w, "", "Labels", &job["metadata"]["labels"]);
    annotations_multiline(&mut w, "Annotations", &job["metadata"]["annotations"]);
    if let Some(c) = controller(job) {
        w.write(LEVEL_0, &format!("Controlled By:\t{c}\n"));
    }
    if let Some(p) = spec["parallelism"].as_i64() {
        w.write(LEVEL_0, &format!("Parallelism:\t{p}\n"));
    }
    match spec["completions"].as_i64() {
        Some(c) => w.write(LEVEL_0, &format!("Completions:\t{c}\n")),
        None => w.write(LEVEL_0, "Completions:\t<unset>\n"),
    }
    if let Some(mode) = spec["completionMode"].as_str() {
        w.write(LEVEL_0, &format!("Completion Mode:\t{mode}\n"));
    }
    if let Some(suspend) = spec["suspend"].as_bool() {
        w.write(LEVEL_0, &format!("Suspend:\t{suspend}\n"));
    }
    if let Some(limit) = spec["backoffLimit"].as_i64() {
        w.write(LEVEL_0, &format!("Backoff Limit:\t{limit}\n"));
    }
    if let Some(ttl) = spec["ttlSecondsAfterFinished"].as_i64() {
        w.write(LEVEL_0, &format!("TTL Seconds After Finished:\t{ttl}\n"));
    }
    let start = status["startTime"].as_str();
    let completion = status["completionTime"].as_str();
    if let Some(t) = start {
        w.write(LEVEL_0, &format!("Start Time:\t{}\n", rfc1123z(t)));
    }
    if let Some(t) = completion {
        w.write(LEVEL_0, &format!("Completed At:\t{}\n", rfc1123z(t)));
    }
    if let (Some(s), Some(c)) = (start, completion) {
        let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
        if let (Some(s), Some(c)) = (parse(s), parse(c)) {
            w.write(
                LEVEL_0,
                &format!(
                    "Duration:\t{}\n",
                    api_types::table::human_duration(c.signed_duration_since(s))
                ),
            );
        }
    }
    if let Some(d) = spec["activeDeadlineSeconds"].as_i64() {
        w.write(LEVEL_0, &format!("Active Deadline Seconds:\t{d}s\n"));
    }
    match status["ready"].as_i64() {
        None => w.write(
            LEVEL_0,
            &format!(
                "Pods Statuses:\t{} Active / {} Succeeded / {} Failed\n",
                int(&status["active"]),
                int(&status["succeeded"]),
                int(&status["failed"])
            ),
        ),
        Some(ready) => w.write(
            LEVEL_0,
            &format!(
                "Pods Statuses:\t{} Active ({ready} Ready) / {} Succeeded / {} Failed\n",
                int(&status["active"]),
                int(&status["succeeded"]),
                int(&status["failed"])
            ),
        ),
    }
    if spec["completionMode"] == "Indexed" {
        w.write(
            LEVEL_0,
            &format!(
                "Completed Indexes:\t{}\n",
                cap_indexes(field(status, "/completedIndexes"), 50)
            ),
        );
    }
    describe_pod_template(&spec["template"], &mut w);
    events::describe(events, &mut w);
    w.aligned()
}

fn or_unset(v: &Value, suffix: &str) -> String {
    v.as_i64()
        .map_or("<unset>".to_string(), |n| format!("{n}{suffix}"))
}

pub fn cron_job(cj: &Value, events: Option<&Vec<Value>>) -> String {
    let spec = &cj["spec"];
    let mut w = PrefixWriter::new();
    header(&mut w, cj);
    labels_multiline(&mut w, "", "Labels", &cj["metadata"]["labels"]);
    annotations_multiline(&mut w, "Annotations", &cj["metadata"]["annotations"]);
    w.write(
        LEVEL_0,
        &format!("Schedule:\t{}\n", field(spec, "/schedule")),
    );
    w.write(
        LEVEL_0,
        &format!(
            "Concurrency Policy:\t{}\n",
            field(spec, "/concurrencyPolicy")
        ),
    );
    let suspend = spec["suspend"]
        .as_bool()
        .map_or("<unset>", super::pod::print_bool);
    w.write(LEVEL_0, &format!("Suspend:\t{suspend}\n"));
    w.write(
        LEVEL_0,
        &format!(
            "Successful Job History Limit:\t{}\n",
            or_unset(&spec["successfulJobsHistoryLimit"], "")
        ),
    );
    w.write(
        LEVEL_0,
        &format!(
            "Failed Job History Limit:\t{}\n",
            or_unset(&spec["failedJobsHistoryLimit"], "")
        ),
    );
    w.write(
        LEVEL_0,
        &format!(
            "Starting Deadline Seconds:\t{}\n",
            or_unset(&spec["startingDeadlineSeconds"], "s")
        ),
    );
    // describeJobTemplate
    let job_spec = &spec["jobTemplate"]["spec"];
    if job_spec["selector"].is_object() {
        w.write(
            LEVEL_0,
            &format!("Selector:\t{}\n", selector_string(&job_spec["selector"])),
        );
    } else {
        w.write(LEVEL_0, "Selector:\t<unset>\n");
    }
    w.write(
        LEVEL_0,
        &format!("Parallelism:\t{}\n", or_unset(&job_spec["parallelism"], "")),
    );
    w.write(
        LEVEL_0,
        &format!("Completions:\t{}\n", or_unset(&job_spec["completions"], "")),
    );
    if let Some(d) = job_spec["activeDeadlineSeconds"].as_i64() {
        w.write(LEVEL_0, &format!("Active Deadline Seconds:\t{d}s\n"));
    }
    describe_pod_template(&job_spec["template"], &mut w);
    match cj["status"]["lastScheduleTime"].as_str() {
        Some(t) => w.write(LEVEL_0, &format!("Last Schedule Time:\t{}\n", rfc1123z(t))),
        None => w.write(LEVEL_0, "Last Schedule Time:\t<unset>\n"),
    }
    let active: Vec<&str> = cj["status"]["active"]
        .as_array()
        .map(|a| a.iter().map(|r| field(r, "/name")).collect())
        .unwrap_or_default();
    if active.is_empty() {
        w.write(LEVEL_0, "Active Jobs:\t<none>\n");
    } else {
        w.write(LEVEL_0, &format!("Active Jobs:\t{}\n", active.join(", ")));
    }
    events::describe(events, &mut w);
    w.aligned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_capped_at_a_comma() {
        assert_eq!(cap_indexes("", 50), "<none>");
        assert_eq!(cap_indexes("1-3,5", 2), "1-3,...");
        assert_eq!(cap_indexes("1-3", 2), "1-3");
    }
}
