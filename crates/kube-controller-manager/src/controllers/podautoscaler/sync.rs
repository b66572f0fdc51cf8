//! One HPA sync (upstream `reconcileAutoscaler`): read the target's `/scale`,
//! compute the replicas the metrics ask for, normalize, rescale, write status.

use api_types::quantity::{format_milli, ParsedQuantity};
use api_types::selectors::LabelSelector;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, MetricSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::ResourceExt;
use serde_json::{json, Value};

use super::normalize::{Args, Condition};
use super::replica_calculator::{self as calc, PodInfo};
use super::{metrics, Ctx};
use crate::util::events::{NORMAL, WARNING};
use crate::util::{is_not_found, key_of, ApiContext, Result};

const ABLE_TO_SCALE: &str = "AbleToScale";
const SCALING_ACTIVE: &str = "ScalingActive";

/// Upstream `setCondition`: the transition time moves only when the status does.
pub fn set_condition(
    conditions: &mut Vec<Value>,
    (type_, status, reason, message): Condition,
    now: &str,
) {
    match conditions.iter_mut().find(|c| c["type"] == type_) {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        None => conditions.push(json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": now})),
    }
}

/// What the calculator needs of a pod for `resource`.
pub fn pod_info(pod: &Pod, resource: &str) -> PodInfo {
    let status = pod.status.clone().unwrap_or_default();
    let ready = crate::util::pod::condition(pod, "Ready").map(|c| {
        (
            c.status == "True",
            c.last_transition_time
                .as_ref()
                .map_or(0, |t| t.0.as_millisecond()),
        )
    });
    let spec = pod.spec.clone().unwrap_or_default();
    // Regular containers and restartable (sidecar) init containers.
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    let (mut sum, mut missing) = (0i64, None);
    for c in spec.containers.iter().chain(sidecars) {
        let q = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource));
        match q.and_then(|q| ParsedQuantity::parse(&q.0).ok()) {
            Some(q) => sum += q.milli_value(),
            None => {
                missing.get_or_insert_with(|| c.name.clone());
            }
        }
    }
    let request = match missing {
        Some(container) => Err(container),
        None => Ok(sum),
    };
    PodInfo {
        name: pod.name_any(),
        phase: status.phase.unwrap_or_default(),
        deleting: pod.metadata.deletion_timestamp.is_some(),
        ready,
        start_time_ms: status.start_time.map(|t| t.0.as_millisecond()),
        request,
    }
}

/// The result of one metric: replicas, its `currentMetrics` entry, its name.
type MetricOutcome = std::result::Result<(i32, Value, String), (&'static str, String)>;

/// Upstream `computeStatusForResourceMetricGeneric`.
async fn resource_metric(
    ctx: &Ctx,
    ns: &str,
    selector: &str,
    pods: &[PodInfo],
    current: i32,
    spec: &MetricSpec,
    now_ms: i64,
) -> MetricOutcome {
    let failed = |e: String| ("FailedGetResourceMetric", e);
    let Some(source) = spec.resource.as_ref() else {
        return Err(failed(
            "invalid resource metric source: resource is not set".into(),
        ));
    };
    let name = source.name.as_str();
    let target = &source.target;
    let fetched = metrics::resource_metric(&ctx.client, ns, selector, name)
        .await
        .map_err(|e| format!("unable to get metrics for resource {name}: {e}"));
    if let Some(average) = target.average_value.as_ref() {
        let target_milli = ParsedQuantity::parse(&average.0)
            .map(|q| q.milli_value())
            .unwrap_or(0);
        let (m, _) = fetched.map_err(|e| failed(format!("failed to get {name} usage: {e}")))?;
        let (replicas, usage, _) =
            calc::raw_resource_replicas(current, target_milli, name, pods, m, &ctx.calc, now_ms)
                .map_err(|e| failed(format!("failed to get {name} usage: {e}")))?;
        let status = json!({"type": "Resource", "resource": {"name": name, "current": {"averageValue": format_milli(usage)}}});
        return Ok((replicas, status, format!("{name} resource")));
    }
    let Some(utilization) = target.average_utilization else {
        return Err(failed("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into()));
    };
    let (m, _) = fetched.map_err(|e| failed(format!("failed to get {name} utilization: {e}")))?;
    let u = calc::resource_replicas(current, utilization, name, pods, m, &ctx.calc, now_ms)
        .map_err(|e| failed(format!("failed to get {name} utilization: {e}")))?;
    let status = json!({"type": "Resource", "resource": {"name": name, "current": {"averageUtilization": u.utilization, "averageValue": format_milli(u.raw_average)}}});
    Ok((
        u.replicas,
        status,
        format!("{name} resource utilization (percentage of request)"),
    ))
}

/// The metrics of an HPA, with upstream's default (80% CPU) when none are given.
fn metric_specs(hpa: &HorizontalPodAutoscaler) -> Vec<MetricSpec> {
    let specs = hpa
        .spec
        .as_ref()
        .and_then(|s| s.metrics.clone())
        .unwrap_or_default();
    if !specs.is_empty() {
        return specs;
    }
    serde_json::from_value(json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])).unwrap_or_default()
}

struct Computed {
    replicas: i32,
    metric: String,
    statuses: Vec<Value>,
}

/// Upstream `computeReplicasForMetrics`: the largest proposal over all metrics.
async fn compute_replicas(
    ctx: &Ctx,
    hpa: &HorizontalPodAutoscaler,
    selector: &str,
    current: i32,
    conditions: &mut Vec<Value>,
    now: &str,
) -> std::result::Result<Computed, (String, Vec<Value>)> {
    let ns = hpa.namespace().unwrap_or_default();
    let specs = metric_specs(hpa);
    let parsed = LabelSelector::parse(selector).ok();
    let matching: Vec<Pod> = ctx
        .pods
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|p| {
            parsed
                .as_ref()
                .is_some_and(|s| s.matches(&p.metadata.labels.clone().unwrap_or_default()))
        })
        .map(|p| p.as_ref().clone())
        .collect();
    let now_ms = Timestamp::now().as_millisecond();
    let (mut replicas, mut metric, mut statuses) = (0, String::new(), Vec::new());
    let (mut invalid, mut first_error): (usize, Option<(&'static str, String)>) = (0, None);
    for spec in &specs {
        let outcome = match spec.type_.as_str() {
            "Resource" => {
                let resource = spec.resource.as_ref().map(|r| r.name.as_str()).unwrap_or("cpu");
                let pods: Vec<PodInfo> = matching.iter().map(|p| pod_info(p, resource)).collect();
                resource_metric(ctx, &ns, selector, &pods, current, spec, now_ms).await
            }
            "Pods" => Err(("FailedGetPodsMetric", "unable to get metric: the custom metrics API (custom.metrics.k8s.io) is not served".to_string())),
            "Object" => Err(("FailedGetObjectMetric", "unable to get metric: the custom metrics API (custom.metrics.k8s.io) is not served".to_string())),
            "External" => Err(("FailedGetExternalMetric", "unable to get external metric: the external metrics API (external.metrics.k8s.io) is not served".to_string())),
            "ContainerResource" => Err(("FailedGetContainerResourceMetric", "container resource metrics are not supported".to_string())),
            other => Err(("InvalidMetricSourceType", format!("unknown metric source type \"{other}\""))),
        };
        match outcome {
            Ok((r, status, name)) => {
                statuses.push(status);
                if replicas == 0 || r > replicas {
                    (replicas, metric) = (r, name);
                }
            }
            Err((reason, message)) => {
                // Upstream `getUnableComputeReplicaCountCondition`: an event per failure.
                ctx.recorder.event(hpa, WARNING, reason, message.clone());
                statuses.push(json!({"type": ""}));
                invalid += 1;
                first_error.get_or_insert((reason, message));
            }
        }
    }
    if let Some((reason, message)) = first_error {
        if invalid >= specs.len() || replicas < current {
            set_condition(
                conditions,
                (
                    SCALING_ACTIVE,
                    "False",
                    reason,
                    format!("the HPA was unable to compute the replica count: {message}"),
                ),
                now,
            );
            return Err((
                format!(
                    "invalid metrics ({invalid} invalid out of {}), first error is: {message}",
                    specs.len()
                ),
                statuses,
            ));
        }
    }
    set_condition(
        conditions,
        (
            SCALING_ACTIVE,
            "True",
            "ValidMetricFound",
            format!("the HPA was able to successfully calculate a replica count from {metric}"),
        ),
        now,
    );
    Ok(Computed {
        replicas,
        metric,
        statuses,
    })
}

fn scale_api(
    client: &kube::Client,
    ns: &str,
    api_version: &str,
    kind: &str,
) -> Option<Api<DynamicObject>> {
    let info = api_types::registry::lookup_kind(api_version, kind)
        .filter(|i| i.has_subresource(api_types::Subresource::Scale))?;
    let gvk = GroupVersionKind::gvk(info.group, info.version, info.kind);
    Some(Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, info.plural),
    ))
}

pub async fn sync_hpa(hpa: &HorizontalPodAutoscaler, ctx: &Ctx) -> Result<()> {
    let key = key_of(&hpa.metadata);
    let ns = hpa.namespace().unwrap_or_default();
    let spec = hpa.spec.clone().unwrap_or_default();
    let old = hpa.status.clone().unwrap_or_default();
    let old_json = serde_json::to_value(&old).unwrap_or(Value::Null);
    let mut status = old_json.clone();
    if !status.is_object() {
        status = json!({});
    }
    let mut conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let now_time = crate::util::time::now();
    let now = now_time.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let target = &spec.scale_target_ref;
    let reference = format!("{}/{}/{}", target.kind, ns, target.name);
    let api_version = target.api_version.clone().unwrap_or_default();

    let scale = match scale_api(&ctx.client, &ns, &api_version, &target.kind) {
        None => Err(format!(
            "no matches for kind \"{}\" in group \"{}\"",
            target.kind,
            api_types::registry::split_api_version(&api_version).0
        )),
        Some(api) => api.get_scale(&target.name).await.map_err(|e| e.to_string()),
    };
    let scale = match scale {
        Ok(s) => s,
        Err(e) => {
            ctx.recorder
                .event(hpa, WARNING, "FailedGetScale", e.clone());
            set_condition(
                &mut conditions,
                (
                    ABLE_TO_SCALE,
                    "False",
                    "FailedGetScale",
                    format!("the HPA controller was unable to get the target's current scale: {e}"),
                ),
                &now,
            );
            status["conditions"] = json!(conditions);
            write_status(ctx, hpa, &old_json, status).await?;
            tracing::warn!(hpa = %key, "failed to query scale subresource for {reference}: {e}");
            return Ok(());
        }
    };
    set_condition(
        &mut conditions,
        (
            ABLE_TO_SCALE,
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale".into(),
        ),
        &now,
    );
    let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let selector = scale
        .status
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    let mut statuses = status
        .get("currentMetrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut desired;
    let (mut rescale, mut reason) = (true, String::new());

    if current == 0 && min != 0 {
        desired = 0;
        rescale = false;
        set_condition(
            &mut conditions,
            (
                SCALING_ACTIVE,
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero".into(),
            ),
            &now,
        );
    } else if current > max {
        reason = "Current number of replicas above Spec.MaxReplicas".into();
        desired = max;
    } else if current < min {
        reason = "Current number of replicas below Spec.MinReplicas".into();
        desired = min;
    } else if selector.is_empty() {
        ctx.recorder
            .event(hpa, WARNING, "SelectorRequired", "selector is required");
        set_condition(
            &mut conditions,
            (
                SCALING_ACTIVE,
                "False",
                "InvalidSelector",
                "the HPA target's scale is missing a selector".into(),
            ),
            &now,
        );
        status["conditions"] = json!(conditions);
        status["currentReplicas"] = json!(current);
        write_status(ctx, hpa, &old_json, status).await?;
        return Ok(());
    } else {
        match compute_replicas(ctx, hpa, &selector, current, &mut conditions, &now).await {
            Err((message, failed_statuses)) => {
                status["conditions"] = json!(conditions);
                status["currentReplicas"] = json!(current);
                status["currentMetrics"] = json!(failed_statuses);
                write_status(ctx, hpa, &old_json, status).await?;
                ctx.recorder.event(
                    hpa,
                    WARNING,
                    "FailedComputeMetricsReplicas",
                    message.clone(),
                );
                tracing::warn!(hpa = %key, "failed to compute desired number of replicas based on listed metrics for {reference}: {message}");
                return Ok(());
            }
            Ok(computed) => {
                statuses = computed.statuses;
                if computed.replicas > current {
                    reason = format!("{} above target", computed.metric);
                } else if computed.replicas < current {
                    reason = "All metrics below target".into();
                }
                let args = Args {
                    current,
                    desired: computed.replicas,
                    min,
                    max,
                    behavior: spec.behavior.as_ref(),
                    downscale_window_s: i64::try_from(ctx.downscale_stabilization.as_secs())
                        .unwrap_or(i64::MAX),
                    now_ms: Timestamp::now().as_millisecond(),
                };
                let (normalized, conds) = ctx
                    .history
                    .lock()
                    .entry(key.clone())
                    .or_default()
                    .normalize(&args);
                for c in conds {
                    set_condition(&mut conditions, c, &now);
                }
                desired = normalized;
                rescale = desired != current;
            }
        }
    }

    if rescale {
        let patched = match scale_api(&ctx.client, &ns, &api_version, &target.kind) {
            Some(api) => api
                .patch_scale(
                    &target.name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"spec": {"replicas": desired}})),
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("the target is not scalable".to_string()),
        };
        if let Err(e) = patched {
            ctx.recorder.event(
                hpa,
                WARNING,
                "FailedRescale",
                format!("New size: {desired}; reason: {reason}; error: {e}"),
            );
            set_condition(
                &mut conditions,
                (
                    ABLE_TO_SCALE,
                    "False",
                    "FailedUpdateScale",
                    format!("the HPA controller was unable to update the target scale: {e}"),
                ),
                &now,
            );
            status["conditions"] = json!(conditions);
            status["currentReplicas"] = json!(current);
            status["currentMetrics"] = json!(statuses);
            write_status(ctx, hpa, &old_json, status).await?;
            tracing::warn!(hpa = %key, "failed to rescale {reference}: {e}");
            return Ok(());
        }
        set_condition(
            &mut conditions,
            (
                ABLE_TO_SCALE,
                "True",
                "SucceededRescale",
                format!("the HPA controller was able to update the target scale to {desired}"),
            ),
            &now,
        );
        ctx.recorder.event(
            hpa,
            NORMAL,
            "SuccessfulRescale",
            format!("New size: {desired}; reason: {reason}"),
        );
        ctx.history
            .lock()
            .entry(key.clone())
            .or_default()
            .record_scale(
                spec.behavior.as_ref(),
                current,
                desired,
                Timestamp::now().as_millisecond(),
            );
        tracing::info!(hpa = %key, %reference, current, desired, %reason, "successfully rescaled");
        status["lastScaleTime"] = json!(now);
    } else {
        desired = current;
    }
    status["currentReplicas"] = json!(current);
    status["desiredReplicas"] = json!(desired);
    status["currentMetrics"] = if statuses.is_empty() {
        Value::Null
    } else {
        json!(statuses)
    };
    status["conditions"] = json!(conditions);
    write_status(ctx, hpa, &old_json, status).await
}

/// Writes the status when it changed (upstream `updateStatusIfNeeded`).
async fn write_status(
    ctx: &Ctx,
    hpa: &HorizontalPodAutoscaler,
    old: &Value,
    mut status: Value,
) -> Result<()> {
    if let Some(o) = status.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    if &status == old {
        return Ok(());
    }
    let api: Api<HorizontalPodAutoscaler> =
        Api::namespaced(ctx.client.clone(), &hpa.namespace().unwrap_or_default());
    let mut patch = json!({"status": status});
    // Fields gone from the new status are removed by the merge patch.
    if let Some(o) = old.as_object() {
        for k in o.keys() {
            if patch["status"].get(k).is_none() {
                patch["status"][k] = Value::Null;
            }
        }
    }
    match api
        .patch_status(
            &hpa.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err).ctx(|| {
            format!(
                "updating status of horizontalpodautoscaler {}",
                key_of(&hpa.metadata)
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn infos(pods: &[Pod], resource: &str) -> BTreeMap<String, PodInfo> {
        pods.iter()
            .map(|p| (p.name_any(), pod_info(p, resource)))
            .collect()
    }

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn pod_requests_sum_containers_and_sidecars() {
        let p = pod(json!({
            "metadata": {"name": "a"},
            "spec": {
                "containers": [{"name": "x", "resources": {"requests": {"cpu": "250m"}}}, {"name": "y", "resources": {"requests": {"cpu": "1"}}}],
                "initContainers": [{"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}}, {"name": "init"}],
            },
            "status": {"phase": "Running", "startTime": "2024-05-01T10:00:00Z", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:10Z"}]},
        }));
        let missing = pod(
            json!({"metadata": {"name": "b"}, "spec": {"containers": [{"name": "x", "resources": {"requests": {"memory": "1Mi"}}}]}}),
        );
        let i = infos(&[p, missing], "cpu");
        assert_eq!(i["a"].request, Ok(1350));
        assert_eq!(i["a"].phase, "Running");
        assert!(i["a"].ready.is_some_and(|(r, t)| r && t > 0));
        assert!(i["a"].start_time_ms.is_some());
        assert_eq!(i["b"].request, Err("x".to_string()));
        assert_eq!(i["b"].ready, None);
    }

    #[test]
    fn conditions_keep_their_transition_time_until_status_flips() {
        let mut c = Vec::new();
        set_condition(
            &mut c,
            ("AbleToScale", "True", "SucceededGetScale", "m".into()),
            "t1",
        );
        set_condition(
            &mut c,
            ("AbleToScale", "True", "ReadyForNewScale", "m2".into()),
            "t2",
        );
        assert_eq!(
            (c[0]["reason"].as_str(), c[0]["lastTransitionTime"].as_str()),
            (Some("ReadyForNewScale"), Some("t1"))
        );
        set_condition(
            &mut c,
            ("AbleToScale", "False", "FailedGetScale", "m3".into()),
            "t3",
        );
        assert_eq!(c[0]["lastTransitionTime"], "t3");
        set_condition(
            &mut c,
            ("ScalingActive", "True", "ValidMetricFound", "m".into()),
            "t4",
        );
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn default_metric_is_cpu_at_80_percent() {
        let specs = metric_specs(&HorizontalPodAutoscaler::default());
        let r = specs[0].resource.as_ref().expect("resource");
        assert_eq!(
            (
                specs[0].type_.as_str(),
                r.name.as_str(),
                r.target.average_utilization
            ),
            ("Resource", "cpu", Some(80))
        );
    }
}
