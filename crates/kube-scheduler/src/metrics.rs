//! Scheduler metrics with upstream's names.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use crate::queue::Pending;

type Labels = Vec<(String, String)>;

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

#[derive(Clone)]
pub struct SchedulerMetrics {
    profile: String,
    attempts: Family<Labels, Counter>,
    attempt_duration: Family<Labels, Histogram, fn() -> Histogram>,
    pending: Family<Labels, Gauge>,
    cache_size: Family<Labels, Gauge>,
}

impl SchedulerMetrics {
    pub fn new(profile: &str, registry: &kube_common::metrics::Metrics) -> Self {
        let m = SchedulerMetrics {
            profile: profile.to_string(),
            attempts: Family::default(),
            attempt_duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            pending: Family::default(),
            cache_size: Family::default(),
        };
        registry.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
            m.attempts.clone(),
        );
        registry.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            m.attempt_duration.clone(),
        );
        registry.register(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods.",
            m.pending.clone(),
        );
        registry.register(
            "scheduler_cache_size",
            "Number of nodes, pods, and assumed (bound) pods in the scheduler cache.",
            m.cache_size.clone(),
        );
        m
    }

    pub fn set_cache_size(&self, nodes: usize, pods: usize, assumed: usize) {
        for (t, n) in [("nodes", nodes), ("pods", pods), ("assumed_pods", assumed)] {
            self.cache_size
                .get_or_create(&vec![("type".to_string(), t.to_string())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Records one attempt: `result` is `scheduled`, `unschedulable` or `error`.
    pub fn attempt(&self, result: &str, seconds: f64) {
        let labels = vec![
            ("profile".to_string(), self.profile.clone()),
            ("result".to_string(), result.to_string()),
        ];
        self.attempts.get_or_create(&labels).inc();
        self.attempt_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    pub fn set_pending(&self, p: Pending) {
        for (queue, n) in [
            ("active", p.active),
            ("backoff", p.backoff),
            ("unschedulable", p.unschedulable),
        ] {
            self.pending
                .get_or_create(&vec![("queue".to_string(), queue.to_string())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_upstream_names() {
        let registry = kube_common::metrics::Metrics::new();
        let m = SchedulerMetrics::new("default-scheduler", &registry);
        m.attempt("scheduled", 0.002);
        m.set_pending(Pending {
            active: 3,
            backoff: 0,
            unschedulable: 1,
        });
        let text = registry.render();
        assert!(text.contains("scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 1"), "{text}");
        assert!(
            text.contains("scheduler_pending_pods{queue=\"active\"} 3"),
            "{text}"
        );
    }
}
