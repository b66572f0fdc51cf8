//! Apiserver metrics: request counts and latency per verb/resource/code.

use std::time::Duration;

use kube_common::metrics::Metrics;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
};

// Static names and a numeric code: looking a series up allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    resource: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    verb: &'static str,
    resource: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0,
        30.0, 60.0,
    ])
}

#[derive(Clone)]
pub struct ApiMetrics {
    registry: Metrics,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
}

impl ApiMetrics {
    pub fn new() -> Self {
        let registry = Metrics::new();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register("apiserver_request", "Counter of apiserver requests broken out for each verb, resource and HTTP response code.", requests.clone());
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb and resource.",
            latency.clone(),
        );
        ApiMetrics {
            registry,
            requests,
            latency,
        }
    }

    pub fn observe(&self, verb: &'static str, resource: &'static str, code: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                verb,
                resource,
                code,
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels { verb, resource })
            .observe(took.as_secs_f64());
    }

    pub fn render(&self) -> String {
        self.registry.render()
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}
