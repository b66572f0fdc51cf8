//! Upstream `replica_calculator.go` for resource metrics: the usage/request
//! ratio over the ready pods, the tolerance band, and the conservative
//! treatment of pods with missing metrics and of not-yet-ready pods.
//! Pure: pods, metrics and the clock come in as values.

use std::collections::{BTreeMap, BTreeSet};

/// One pod's metric: a milli-value (millicores, or milli-bytes) measured at
/// `timestamp_ms` over `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodMetric {
    pub timestamp_ms: i64,
    pub window_ms: i64,
    pub value: i64,
}

/// Metrics by pod name.
pub type PodMetrics = BTreeMap<String, PodMetric>;

/// What the calculator needs of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub name: String,
    pub phase: String,
    pub deleting: bool,
    /// The Ready condition: (status is "True", lastTransitionTime in ms).
    pub ready: Option<(bool, i64)>,
    /// `status.startTime` in ms.
    pub start_time_ms: Option<i64>,
    /// Sum of the containers' requests of the resource (milli); `Err` names the
    /// container without one.
    pub request: Result<i64, String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// `--horizontal-pod-autoscaler-tolerance` (0.1).
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period` (5 min).
    pub cpu_initialization_period_ms: i64,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay` (30 s).
    pub delay_of_initial_readiness_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tolerance: 0.1,
            cpu_initialization_period_ms: 300_000,
            delay_of_initial_readiness_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoMetricsForPods,
    #[error("no metrics returned matched known pods")]
    NoMatchingMetrics,
    #[error("missing request for {resource} in container {container} of Pod {pod}")]
    MissingRequest {
        resource: String,
        container: String,
        pod: String,
    },
}

/// The result of a utilization calculation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utilization {
    pub replicas: i32,
    /// Percentage of request, over the pods counted.
    pub utilization: i32,
    /// Average milli-value per pod.
    pub raw_average: i64,
    /// The oldest metric's timestamp.
    pub timestamp_ms: i64,
}

struct Groups {
    ready_count: usize,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

/// Upstream `groupPods`.
fn group_pods(
    pods: &[PodInfo],
    metrics: &PodMetrics,
    is_cpu: bool,
    cfg: &Config,
    now_ms: i64,
) -> Groups {
    let mut g = Groups {
        ready_count: 0,
        unready: BTreeSet::new(),
        missing: BTreeSet::new(),
        ignored: BTreeSet::new(),
    };
    for pod in pods {
        if pod.deleting || pod.phase == "Failed" || pod.phase == "Pending" {
            g.ignored.insert(pod.name.clone());
            continue;
        }
        let Some(metric) = metrics.get(&pod.name) else {
            g.missing.insert(pod.name.clone());
            continue;
        };
        if is_cpu {
            let unready = match (pod.ready, pod.start_time_ms) {
                (Some((ready, transition)), Some(start)) => {
                    if start + cfg.cpu_initialization_period_ms > now_ms {
                        // Still initializing: ignore unready pods and samples not
                        // taken over a full window since the last transition.
                        !ready || metric.timestamp_ms < transition + metric.window_ms
                    } else {
                        // Ignore pods that are unready and have never been ready.
                        !ready && start + cfg.delay_of_initial_readiness_ms > transition
                    }
                }
                _ => true,
            };
            if unready {
                g.unready.insert(pod.name.clone());
                continue;
            }
        }
        g.ready_count += 1;
    }
    g
}

fn requests_of(pods: &[PodInfo], resource: &str) -> Result<BTreeMap<String, i64>, Error> {
    pods.iter()
        .map(|p| match &p.request {
            Ok(r) => Ok((p.name.clone(), *r)),
            Err(container) => Err(Error::MissingRequest {
                resource: resource.into(),
                container: container.clone(),
                pod: p.name.clone(),
            }),
        })
        .collect()
}

/// Upstream `GetResourceUtilizationRatio`: (ratio, utilization %, raw average).
fn utilization_ratio(
    metrics: &PodMetrics,
    requests: &BTreeMap<String, i64>,
    target: i32,
) -> Result<(f64, i32, i64), Error> {
    let (mut total, mut requested, mut n) = (0i64, 0i64, 0i64);
    for (name, m) in metrics {
        if let Some(r) = requests.get(name) {
            total += m.value;
            requested += r;
            n += 1;
        }
    }
    if requested == 0 {
        return Err(Error::NoMatchingMetrics);
    }
    let utilization = i32::try_from(total * 100 / requested).unwrap_or(i32::MAX);
    Ok((
        f64::from(utilization) / f64::from(target),
        utilization,
        total / n,
    ))
}

/// Upstream `GetMetricUsageRatio`: (ratio, average).
fn usage_ratio(metrics: &PodMetrics, target: i64) -> (f64, i64) {
    let n = i64::try_from(metrics.len()).unwrap_or(1).max(1);
    let average = metrics.values().map(|m| m.value).sum::<i64>() / n;
    (average as f64 / target as f64, average)
}

fn ceil_replicas(ratio: f64, count: usize) -> i32 {
    (ratio * count as f64).ceil() as i32
}

fn oldest(metrics: &PodMetrics) -> i64 {
    metrics.values().map(|m| m.timestamp_ms).min().unwrap_or(0)
}

/// The shared tail of both calculations: the ratio recomputed with missing pods
/// assumed at `missing_low` (scale down) or 0 (scale up) and unready pods at 0
/// when scaling up, and no change when that flips or narrows the direction.
fn conservative(
    current: i32,
    ratio: f64,
    groups: &Groups,
    metrics: &mut PodMetrics,
    missing_low: &dyn Fn(&str) -> i64,
    recompute: &dyn Fn(&PodMetrics) -> Result<f64, Error>,
    tolerance: f64,
) -> Result<i32, Error> {
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if (1.0 - ratio).abs() <= tolerance {
            return Ok(current);
        }
        return Ok(ceil_replicas(ratio, groups.ready_count));
    }
    let fill = |metrics: &mut PodMetrics, name: &str, value: i64| {
        metrics.insert(
            name.to_string(),
            PodMetric {
                timestamp_ms: 0,
                window_ms: 0,
                value,
            },
        );
    };
    if ratio < 1.0 {
        for name in &groups.missing {
            fill(metrics, name, missing_low(name));
        }
    } else if ratio > 1.0 {
        for name in &groups.missing {
            fill(metrics, name, 0);
        }
    }
    if scale_up_with_unready {
        for name in &groups.unready {
            fill(metrics, name, 0);
        }
    }
    let new_ratio = recompute(metrics)?;
    if (1.0 - new_ratio).abs() <= tolerance
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(current);
    }
    let replicas = ceil_replicas(new_ratio, metrics.len());
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(current);
    }
    Ok(replicas)
}

/// Upstream `GetResourceReplicas` (target type Utilization).
pub fn resource_replicas(
    current: i32,
    target_utilization: i32,
    resource: &str,
    pods: &[PodInfo],
    mut metrics: PodMetrics,
    cfg: &Config,
    now_ms: i64,
) -> Result<Utilization, Error> {
    if pods.is_empty() {
        return Err(Error::NoPods);
    }
    let groups = group_pods(pods, &metrics, resource == "cpu", cfg, now_ms);
    metrics.retain(|name, _| !groups.ignored.contains(name) && !groups.unready.contains(name));
    if metrics.is_empty() {
        return Err(Error::NoMetricsForPods);
    }
    let requests = requests_of(pods, resource)?;
    let timestamp_ms = oldest(&metrics);
    let (ratio, utilization, raw_average) =
        utilization_ratio(&metrics, &requests, target_utilization)?;
    let fallback = i64::from(target_utilization.max(100));
    let missing_low = |name: &str| requests.get(name).copied().unwrap_or(0) * fallback / 100;
    let recompute =
        |m: &PodMetrics| utilization_ratio(m, &requests, target_utilization).map(|(r, _, _)| r);
    let replicas = conservative(
        current,
        ratio,
        &groups,
        &mut metrics,
        &missing_low,
        &recompute,
        cfg.tolerance,
    )?;
    Ok(Utilization {
        replicas,
        utilization,
        raw_average,
        timestamp_ms,
    })
}

/// Upstream `GetRawResourceReplicas` (target type AverageValue, milli-units):
/// (replicas, average milli-value, timestamp).
pub fn raw_resource_replicas(
    current: i32,
    target_average: i64,
    resource: &str,
    pods: &[PodInfo],
    mut metrics: PodMetrics,
    cfg: &Config,
    now_ms: i64,
) -> Result<(i32, i64, i64), Error> {
    if pods.is_empty() {
        return Err(Error::NoPods);
    }
    let groups = group_pods(pods, &metrics, resource == "cpu", cfg, now_ms);
    metrics.retain(|name, _| !groups.ignored.contains(name) && !groups.unready.contains(name));
    if metrics.is_empty() {
        return Err(Error::NoMetricsForPods);
    }
    let timestamp_ms = oldest(&metrics);
    let (ratio, average) = usage_ratio(&metrics, target_average);
    let missing_low = |_: &str| target_average;
    let recompute = |m: &PodMetrics| Ok::<f64, Error>(usage_ratio(m, target_average).0);
    let replicas = conservative(
        current,
        ratio,
        &groups,
        &mut metrics,
        &missing_low,
        &recompute,
        cfg.tolerance,
    )?;
    Ok((replicas, average, timestamp_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 10_000_000;
    const LONG_AGO: i64 = NOW - 3_600_000;

    fn pod(name: &str, request: i64) -> PodInfo {
        PodInfo {
            name: name.into(),
            phase: "Running".into(),
            deleting: false,
            ready: Some((true, LONG_AGO)),
            start_time_ms: Some(LONG_AGO),
            request: Ok(request),
        }
    }

    fn metrics(values: &[(&str, i64)]) -> PodMetrics {
        values
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    PodMetric {
                        timestamp_ms: NOW - 1_000,
                        window_ms: 30_000,
                        value: *v,
                    },
                )
            })
            .collect()
    }

    fn cpu(
        current: i32,
        target: i32,
        pods: &[PodInfo],
        m: &[(&str, i64)],
    ) -> Result<Utilization, Error> {
        resource_replicas(
            current,
            target,
            "cpu",
            pods,
            metrics(m),
            &Config::default(),
            NOW,
        )
    }

    #[test]
    fn scales_by_the_usage_to_request_ratio() {
        let pods = [pod("a", 1000), pod("b", 1000), pod("c", 1000)];
        // 90% average against a 30% target: 3 * 3 = 9.
        let u = cpu(3, 30, &pods, &[("a", 900), ("b", 900), ("c", 900)]).expect("calc");
        assert_eq!((u.replicas, u.utilization, u.raw_average), (9, 90, 900));
        // 10% against 50%: ceil(0.2 * 3) = 1.
        assert_eq!(
            cpu(3, 50, &pods, &[("a", 100), ("b", 100), ("c", 100)])
                .expect("calc")
                .replicas,
            1
        );
        // Uneven usage averages over the requests: (500+100+300)/3000 = 30%.
        let u = cpu(3, 20, &pods, &[("a", 500), ("b", 100), ("c", 300)]).expect("calc");
        assert_eq!((u.utilization, u.replicas), (30, 5));
        assert_eq!(u.timestamp_ms, NOW - 1_000);
    }

    #[test]
    fn within_tolerance_keeps_the_current_count() {
        let pods = [pod("a", 1000), pod("b", 1000)];
        // 54% vs 50%: ratio 1.08, inside the 0.1 tolerance.
        assert_eq!(
            cpu(2, 50, &pods, &[("a", 540), ("b", 540)])
                .expect("calc")
                .replicas,
            2
        );
        assert_eq!(
            cpu(2, 50, &pods, &[("a", 450), ("b", 450)])
                .expect("calc")
                .replicas,
            2
        );
        // 56%: ratio 1.12, outside: ceil(1.12 * 2) = 3.
        assert_eq!(
            cpu(2, 50, &pods, &[("a", 560), ("b", 560)])
                .expect("calc")
                .replicas,
            3
        );
    }

    #[test]
    fn pending_failed_and_deleting_pods_are_ignored() {
        let mut pending = pod("p", 1000);
        pending.phase = "Pending".into();
        let mut failed = pod("f", 1000);
        failed.phase = "Failed".into();
        let mut deleting = pod("d", 1000);
        deleting.deleting = true;
        let pods = [pod("a", 1000), pending, failed, deleting];
        // Only "a" counts, even though "d" reports metrics: 100% vs 50% → 2.
        let u = cpu(4, 50, &pods, &[("a", 1000), ("d", 0)]).expect("calc");
        assert_eq!((u.replicas, u.utilization), (2, 100));
    }

    #[test]
    fn unready_cpu_pods_count_as_zero_when_scaling_up() {
        let mut never_ready = pod("u", 1000);
        never_ready.ready = Some((false, LONG_AGO + 10_000));
        let pods = [pod("a", 1000), pod("b", 1000), never_ready];
        // Ready pods at 100% vs 50%: ratio 2; with the unready pod as 0: 2000/3000
        // = 66% → ratio 1.32 → ceil(1.32 * 3) = 4.
        let u = cpu(3, 50, &pods, &[("a", 1000), ("b", 1000), ("u", 1000)]).expect("calc");
        assert_eq!((u.replicas, u.utilization), (4, 100));
        // Scaling down, unready pods are simply left out: 10% vs 50% over 2 pods → 1.
        assert_eq!(
            cpu(3, 50, &pods, &[("a", 100), ("b", 100), ("u", 1000)])
                .expect("calc")
                .replicas,
            1
        );
    }

    #[test]
    fn readiness_during_cpu_initialization() {
        let mut starting = pod("s", 1000);
        starting.start_time_ms = Some(NOW - 60_000);
        // Ready 10 s before a sample with a 30 s window: the sample predates readiness.
        starting.ready = Some((true, NOW - 10_000));
        let pods = [pod("a", 1000), starting.clone()];
        let u = cpu(2, 50, &pods, &[("a", 1000), ("s", 1000)]).expect("calc");
        // "s" is unready → counted as 0 on scale-up: 1000/2000 = 50% → within tolerance.
        assert_eq!(u.replicas, 2);
        // Ready long enough before the sample: counted.
        starting.ready = Some((true, NOW - 120_000));
        let pods = [pod("a", 1000), starting];
        assert_eq!(
            cpu(2, 50, &pods, &[("a", 1000), ("s", 1000)])
                .expect("calc")
                .replicas,
            4
        );
        // Pods without a Ready condition or start time are unready.
        let mut bare = pod("x", 1000);
        bare.ready = None;
        assert_eq!(
            cpu(1, 50, &[bare], &[("x", 1000)]),
            Err(Error::NoMetricsForPods)
        );
    }

    #[test]
    fn missing_pods_are_assumed_conservatively() {
        let pods = [pod("a", 1000), pod("b", 1000), pod("m", 1000)];
        // Scale up: the missing pod counts as 0: (1000+1000+0)/3000 = 66% vs 50% →
        // ceil(1.33 * 3) = 4.
        assert_eq!(
            cpu(3, 50, &pods, &[("a", 1000), ("b", 1000)])
                .expect("calc")
                .replicas,
            4
        );
        // Scale down: the missing pod counts at 100% of request: (100+100+1000)/3000
        // = 40% vs 50% → ratio 0.8 → ceil(0.8 * 3) = 3, no change.
        assert_eq!(
            cpu(3, 50, &pods, &[("a", 100), ("b", 100)])
                .expect("calc")
                .replicas,
            3
        );
        // ... and when that flips the direction, nothing changes either.
        assert_eq!(
            cpu(3, 60, &pods, &[("a", 500), ("b", 500)])
                .expect("calc")
                .replicas,
            3
        );
        // Far below: (0+0+1000)/3000 = 33% vs 80% → ceil(0.41 * 3) = 2.
        assert_eq!(
            cpu(3, 80, &pods, &[("a", 0), ("b", 0)])
                .expect("calc")
                .replicas,
            2
        );
    }

    #[test]
    fn errors_as_upstream() {
        assert_eq!(cpu(1, 50, &[], &[]), Err(Error::NoPods));
        assert_eq!(
            cpu(1, 50, &[pod("a", 1000)], &[]),
            Err(Error::NoMetricsForPods)
        );
        let mut no_request = pod("a", 0);
        no_request.request = Err("c".into());
        let err = cpu(1, 50, &[no_request], &[("a", 10)]).expect_err("no request");
        assert_eq!(
            err.to_string(),
            "missing request for cpu in container c of Pod a"
        );
        assert_eq!(
            cpu(1, 50, &[pod("a", 0)], &[("a", 10)]),
            Err(Error::NoMatchingMetrics)
        );
    }

    #[test]
    fn average_value_targets() {
        let pods = [pod("a", 0), pod("b", 0)];
        let calc = |current, target, m: &[(&str, i64)]| {
            raw_resource_replicas(
                current,
                target,
                "memory",
                &pods,
                metrics(m),
                &Config::default(),
                NOW,
            )
            .expect("calc")
        };
        // 300m average vs 100m: ceil(3 * 2) = 6.
        assert_eq!(
            calc(2, 100, &[("a", 300), ("b", 300)]),
            (6, 300, NOW - 1_000)
        );
        // Within tolerance.
        assert_eq!(calc(2, 100, &[("a", 105), ("b", 95)]).0, 2);
        // Missing pod on scale-down is assumed at the target: (10+100)/2 = 55 → ratio
        // 0.55 → ceil(1.1) = 2.
        assert_eq!(calc(2, 100, &[("a", 10)]).0, 2);
        // Missing pod on scale-up counts as 0: (400+0)/2 = 200 → 4.
        assert_eq!(calc(2, 100, &[("a", 400)]).0, 4);
    }
}
