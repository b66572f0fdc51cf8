//! From the metrics' recommendation to the replica count the HPA sets
//! (upstream `horizontal.go`: `normalizeDesiredReplicas` with the flag's
//! downscale stabilization window and the fixed scale-up limit, or
//! `normalizeDesiredReplicasWithBehaviors` with `spec.behavior`'s windows and
//! rate policies). Per-HPA history lives in `History`; the clock is passed in.

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

/// A condition the normalization sets: (type, status, reason, message).
pub type Condition = (&'static str, &'static str, &'static str, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recommendation {
    replicas: i32,
    at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScaleEvent {
    change: i32,
    at_ms: i64,
    outdated: bool,
}

/// What the controller remembers about one HPA between syncs.
#[derive(Debug, Default, Clone)]
pub struct History {
    recommendations: Vec<Recommendation>,
    scale_up: Vec<ScaleEvent>,
    scale_down: Vec<ScaleEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    Pods,
    Percent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    Max,
    Min,
    Disabled,
}

/// `HPAScalingRules` with upstream's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub stabilization_window_s: i64,
    pub select: Select,
    /// (type, value, periodSeconds)
    pub policies: Vec<(PolicyType, i32, i32)>,
}

impl Rules {
    /// Upstream `GenerateHPAScaleUpRules`: no window; 4 pods or 100% per 15 s.
    fn scale_up(r: Option<&HPAScalingRules>) -> Rules {
        Rules::from_api(
            r,
            0,
            vec![(PolicyType::Pods, 4, 15), (PolicyType::Percent, 100, 15)],
        )
    }

    /// Upstream `GenerateHPAScaleDownRules`: the flag's window; 100% per 15 s.
    fn scale_down(r: Option<&HPAScalingRules>, default_window_s: i64) -> Rules {
        Rules::from_api(r, default_window_s, vec![(PolicyType::Percent, 100, 15)])
    }

    fn from_api(
        r: Option<&HPAScalingRules>,
        default_window_s: i64,
        default_policies: Vec<(PolicyType, i32, i32)>,
    ) -> Rules {
        let select = match r.and_then(|r| r.select_policy.as_deref()) {
            Some("Min") => Select::Min,
            Some("Disabled") => Select::Disabled,
            _ => Select::Max,
        };
        let policies = match r
            .and_then(|r| r.policies.as_ref())
            .filter(|p| !p.is_empty())
        {
            Some(p) => p
                .iter()
                .map(|p| {
                    (
                        if p.type_ == "Percent" {
                            PolicyType::Percent
                        } else {
                            PolicyType::Pods
                        },
                        p.value,
                        p.period_seconds,
                    )
                })
                .collect(),
            None => default_policies,
        };
        let stabilization_window_s = r
            .and_then(|r| r.stabilization_window_seconds)
            .map_or(default_window_s, i64::from);
        Rules {
            stabilization_window_s,
            select,
            policies,
        }
    }
}

/// The inputs of one normalization.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    pub current: i32,
    pub desired: i32,
    pub min: i32,
    pub max: i32,
    pub behavior: Option<&'a HorizontalPodAutoscalerBehavior>,
    /// `--horizontal-pod-autoscaler-downscale-stabilization`, in seconds.
    pub downscale_window_s: i64,
    pub now_ms: i64,
}

const ABLE_TO_SCALE: &str = "AbleToScale";
const SCALING_LIMITED: &str = "ScalingLimited";

fn within_range() -> (&'static str, String) {
    (
        "DesiredWithinRange",
        "the desired count is within the acceptable range".into(),
    )
}

impl History {
    /// The replica count to set, and the AbleToScale and ScalingLimited conditions.
    pub fn normalize(&mut self, a: &Args<'_>) -> (i32, Vec<Condition>) {
        match a.behavior {
            None => self.normalize_plain(a),
            Some(b) => self.normalize_with_behaviors(a, b),
        }
    }

    fn normalize_plain(&mut self, a: &Args<'_>) -> (i32, Vec<Condition>) {
        let stabilized =
            self.stabilize(a.desired, a.now_ms - a.downscale_window_s * 1000, a.now_ms);
        let able = if stabilized != a.desired {
            (ABLE_TO_SCALE, "True", "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation".to_string())
        } else {
            (
                ABLE_TO_SCALE,
                "True",
                "ReadyForNewScale",
                "recommended size matches current size".to_string(),
            )
        };
        let (desired, reason, message) = convert_with_rules(a.current, stabilized, a.min, a.max);
        let status = if desired == stabilized {
            "False"
        } else {
            "True"
        };
        (
            desired,
            vec![able, (SCALING_LIMITED, status, reason, message)],
        )
    }

    /// Upstream `stabilizeRecommendation`: the highest recommendation within the
    /// window (the oldest expired sample's slot is reused).
    fn stabilize(&mut self, desired: i32, cutoff_ms: i64, now_ms: i64) -> i32 {
        let mut max = desired;
        let mut old = None;
        for (i, r) in self.recommendations.iter().enumerate() {
            if r.at_ms < cutoff_ms {
                old = Some(i);
            } else if r.replicas > max {
                max = r.replicas;
            }
        }
        let rec = Recommendation {
            replicas: desired,
            at_ms: now_ms,
        };
        match old {
            Some(i) => self.recommendations[i] = rec,
            None => self.recommendations.push(rec),
        }
        max
    }

    fn normalize_with_behaviors(
        &mut self,
        a: &Args<'_>,
        b: &HorizontalPodAutoscalerBehavior,
    ) -> (i32, Vec<Condition>) {
        let up = Rules::scale_up(b.scale_up.as_ref());
        let down = Rules::scale_down(b.scale_down.as_ref(), a.downscale_window_s);
        let (stabilized, reason, message) = self.stabilize_with_behaviors(a, &up, &down);
        let able = if stabilized != a.desired {
            (ABLE_TO_SCALE, "True", reason, message)
        } else {
            (
                ABLE_TO_SCALE,
                "True",
                "ReadyForNewScale",
                "recommended size matches current size".to_string(),
            )
        };
        let (desired, reason, message) = self.convert_with_behavior_rate(a, stabilized, &up, &down);
        let status = if desired == stabilized {
            "False"
        } else {
            "True"
        };
        (
            desired,
            vec![able, (SCALING_LIMITED, status, reason, message)],
        )
    }

    fn stabilize_with_behaviors(
        &mut self,
        a: &Args<'_>,
        up: &Rules,
        down: &Rules,
    ) -> (i32, &'static str, String) {
        let up_cutoff = a.now_ms - up.stabilization_window_s * 1000;
        let down_cutoff = a.now_ms - down.stabilization_window_s * 1000;
        let (mut up_rec, mut down_rec) = (a.desired, a.desired);
        let mut old = None;
        for (i, r) in self.recommendations.iter().enumerate() {
            if r.at_ms > up_cutoff {
                up_rec = up_rec.min(r.replicas);
            }
            if r.at_ms > down_cutoff {
                down_rec = down_rec.max(r.replicas);
            }
            if r.at_ms < up_cutoff && r.at_ms < down_cutoff {
                old = Some(i);
            }
        }
        let recommendation = a.current.max(up_rec).min(down_rec);
        let rec = Recommendation {
            replicas: a.desired,
            at_ms: a.now_ms,
        };
        match old {
            Some(i) => self.recommendations[i] = rec,
            None => self.recommendations.push(rec),
        }
        if a.desired >= a.current {
            (recommendation, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation".into())
        } else {
            (recommendation, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation".into())
        }
    }

    fn convert_with_behavior_rate(
        &self,
        a: &Args<'_>,
        desired: i32,
        up: &Rules,
        down: &Rules,
    ) -> (i32, &'static str, String) {
        if desired > a.current {
            let limit = scale_up_limit(a.current, &self.scale_up, &self.scale_down, up, a.now_ms)
                .max(a.current);
            let (max, reason, message) = if a.max > limit {
                (
                    limit,
                    "ScaleUpLimit",
                    "the desired replica count is increasing faster than the maximum scale rate",
                )
            } else {
                (
                    a.max,
                    "TooManyReplicas",
                    "the desired replica count is more than the maximum replica count",
                )
            };
            if desired > max {
                return (max, reason, message.into());
            }
        } else if desired < a.current {
            let limit =
                scale_down_limit(a.current, &self.scale_up, &self.scale_down, down, a.now_ms)
                    .min(a.current);
            let (min, reason, message) = if a.min < limit {
                (
                    limit,
                    "ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate",
                )
            } else {
                (
                    a.min,
                    "TooFewReplicas",
                    "the desired replica count is less than the minimum replica count",
                )
            };
            if desired < min {
                return (min, reason, message.into());
            }
        }
        let (reason, message) = within_range();
        (desired, reason, message)
    }

    /// Upstream `storeScaleEvent` (only HPAs with a behavior keep events).
    pub fn record_scale(
        &mut self,
        behavior: Option<&HorizontalPodAutoscalerBehavior>,
        previous: i32,
        new: i32,
        now_ms: i64,
    ) {
        let Some(b) = behavior else { return };
        let (events, rules) = if new > previous {
            (&mut self.scale_up, Rules::scale_up(b.scale_up.as_ref()))
        } else {
            (
                &mut self.scale_down,
                Rules::scale_down(b.scale_down.as_ref(), 0),
            )
        };
        let longest = rules
            .policies
            .iter()
            .map(|p| i64::from(p.2))
            .max()
            .unwrap_or(0);
        for e in events.iter_mut() {
            if e.at_ms <= now_ms - longest * 1000 {
                e.outdated = true;
            }
        }
        let event = ScaleEvent {
            change: (new - previous).abs(),
            at_ms: now_ms,
            outdated: false,
        };
        match events.iter_mut().find(|e| e.outdated) {
            Some(slot) => *slot = event,
            None => events.push(event),
        }
    }
}

/// Upstream `convertDesiredReplicasWithRules` (no behavior): min, max, and at most
/// doubling (or 4) per sync.
fn convert_with_rules(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
) -> (i32, &'static str, String) {
    let scale_up_limit = (2.0 * f64::from(current)).max(4.0) as i32;
    let (maximum, mut reason, mut message) = if max > scale_up_limit {
        (
            scale_up_limit,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        )
    } else {
        (
            max,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    };
    if desired < min {
        reason = "TooFewReplicas";
        message = "the desired replica count is less than the minimum replica count";
        return (min, reason, message.into());
    }
    if desired > maximum {
        return (maximum, reason, message.into());
    }
    let (reason, message) = within_range();
    (desired, reason, message)
}

fn change_in_period(period_s: i32, events: &[ScaleEvent], now_ms: i64) -> i32 {
    let cutoff = now_ms - i64::from(period_s) * 1000;
    events
        .iter()
        .filter(|e| e.at_ms > cutoff)
        .map(|e| e.change)
        .sum()
}

fn scale_up_limit(
    current: i32,
    ups: &[ScaleEvent],
    downs: &[ScaleEvent],
    rules: &Rules,
    now_ms: i64,
) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
        Select::Disabled => return current,
        Select::Min => (i32::MAX, std::cmp::min as fn(i32, i32) -> i32),
        Select::Max => (i32::MIN, std::cmp::max as fn(i32, i32) -> i32),
    };
    for &(ty, value, period) in &rules.policies {
        let start = current - change_in_period(period, ups, now_ms)
            + change_in_period(period, downs, now_ms);
        let proposed = match ty {
            PolicyType::Pods => start + value,
            PolicyType::Percent => {
                (f64::from(start) * (1.0 + f64::from(value) / 100.0)).ceil() as i32
            }
        };
        result = pick(result, proposed);
    }
    result
}

fn scale_down_limit(
    current: i32,
    ups: &[ScaleEvent],
    downs: &[ScaleEvent],
    rules: &Rules,
    now_ms: i64,
) -> i32 {
    let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
        Select::Disabled => return current,
        Select::Min => (i32::MIN, std::cmp::max as fn(i32, i32) -> i32),
        Select::Max => (i32::MAX, std::cmp::min as fn(i32, i32) -> i32),
    };
    for &(ty, value, period) in &rules.policies {
        let start = current - change_in_period(period, ups, now_ms)
            + change_in_period(period, downs, now_ms);
        let proposed = match ty {
            PolicyType::Pods => start - value,
            PolicyType::Percent => (f64::from(start) * (1.0 - f64::from(value) / 100.0)) as i32,
        };
        result = pick(result, proposed);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::autoscaling::v2::HPAScalingPolicy;

    fn args(current: i32, desired: i32, now_s: i64) -> Args<'static> {
        Args {
            current,
            desired,
            min: 1,
            max: 10,
            behavior: None,
            downscale_window_s: 300,
            now_ms: now_s * 1000,
        }
    }

    fn reason<'a>(conds: &'a [Condition], ty: &str) -> (&'a str, &'a str) {
        conds
            .iter()
            .find(|c| c.0 == ty)
            .map(|c| (c.1, c.2))
            .expect("condition")
    }

    #[test]
    fn scale_down_waits_for_the_stabilization_window() {
        let mut h = History::default();
        assert_eq!(h.normalize(&args(5, 5, 0)).0, 5);
        // Load drops: the recommendation of 5 made 100 s ago still holds.
        let (n, conds) = h.normalize(&args(5, 2, 100));
        assert_eq!(n, 5);
        assert_eq!(
            reason(&conds, "AbleToScale"),
            ("True", "ScaleDownStabilized")
        );
        // Past the window only the lower recommendations remain.
        let (n, conds) = h.normalize(&args(5, 2, 301));
        assert_eq!(n, 2);
        assert_eq!(reason(&conds, "AbleToScale"), ("True", "ReadyForNewScale"));
        assert_eq!(
            reason(&conds, "ScalingLimited"),
            ("False", "DesiredWithinRange")
        );
    }

    #[test]
    fn scale_up_is_immediate_but_limited_and_clamped() {
        let mut h = History::default();
        // At most max(2 * current, 4) per sync.
        let (n, conds) = h.normalize(&args(1, 9, 0));
        assert_eq!(n, 4);
        assert_eq!(reason(&conds, "ScalingLimited"), ("True", "ScaleUpLimit"));
        let (n, conds) = h.normalize(&args(8, 30, 1));
        assert_eq!(n, 10);
        assert_eq!(
            reason(&conds, "ScalingLimited"),
            ("True", "TooManyReplicas")
        );
        let mut h = History::default();
        let (n, conds) = h.normalize(&Args {
            min: 2,
            ..args(3, 1, 0)
        });
        // Stabilized at 1 (no history), then raised to min.
        assert_eq!(n, 2);
        assert_eq!(reason(&conds, "ScalingLimited"), ("True", "TooFewReplicas"));
    }

    fn rules(
        window: Option<i32>,
        select: Option<&str>,
        policies: &[(&str, i32, i32)],
    ) -> HPAScalingRules {
        HPAScalingRules {
            stabilization_window_seconds: window,
            select_policy: select.map(str::to_string),
            policies: Some(
                policies
                    .iter()
                    .map(|(t, v, p)| HPAScalingPolicy {
                        type_: t.to_string(),
                        value: *v,
                        period_seconds: *p,
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn behaviors_windows_and_rate_policies() {
        // Scale up by at most 2 pods per 60 s; scale down with a 30 s window.
        let b = HorizontalPodAutoscalerBehavior {
            scale_up: Some(rules(None, None, &[("Pods", 2, 60)])),
            scale_down: Some(rules(Some(30), None, &[("Percent", 50, 60)])),
        };
        let mut h = History::default();
        let with = |current, desired, now_s| Args {
            behavior: Some(&b),
            ..args(current, desired, now_s)
        };
        let (n, conds) = h.normalize(&with(2, 8, 0));
        assert_eq!(n, 4);
        assert_eq!(reason(&conds, "ScalingLimited"), ("True", "ScaleUpLimit"));
        h.record_scale(Some(&b), 2, 4, 0);
        // 10 s later the 2 added in this period use up the budget.
        assert_eq!(h.normalize(&with(4, 8, 10)).0, 4);
        // After the period, 2 more.
        assert_eq!(h.normalize(&with(4, 8, 61)).0, 6);
        // Scale down: within 30 s of the recommendation of 8, held.
        let (n, conds) = h.normalize(&with(6, 1, 80));
        assert_eq!(n, 6);
        assert_eq!(
            reason(&conds, "AbleToScale"),
            ("True", "ScaleDownStabilized")
        );
        // Later: at most 50% per 60 s → 3.
        let (n, conds) = h.normalize(&with(6, 1, 200));
        assert_eq!(n, 3);
        assert_eq!(reason(&conds, "ScalingLimited"), ("True", "ScaleDownLimit"));
        // Disabled scale-down never goes down.
        let off = HorizontalPodAutoscalerBehavior {
            scale_up: None,
            scale_down: Some(rules(Some(0), Some("Disabled"), &[])),
        };
        let mut h = History::default();
        assert_eq!(
            h.normalize(&Args {
                behavior: Some(&off),
                ..args(6, 1, 0)
            })
            .0,
            6
        );
    }

    #[test]
    fn default_rules_match_upstream() {
        assert_eq!(
            Rules::scale_up(None),
            Rules {
                stabilization_window_s: 0,
                select: Select::Max,
                policies: vec![(PolicyType::Pods, 4, 15), (PolicyType::Percent, 100, 15)]
            }
        );
        assert_eq!(Rules::scale_down(None, 300).stabilization_window_s, 300);
        // Default scale-up from 10: max(10 + 4, 10 * 2) = 20.
        assert_eq!(scale_up_limit(10, &[], &[], &Rules::scale_up(None), 0), 20);
        assert_eq!(
            scale_down_limit(10, &[], &[], &Rules::scale_down(None, 300), 0),
            0
        );
    }
}
