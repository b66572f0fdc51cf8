//! A shared Prometheus registry and the `/healthz`, `/readyz`, `/livez`, `/metrics`
//! router every daemon serves.

use std::sync::Arc;

use axum::{http::header, response::IntoResponse, routing::get, Router};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;

/// The process-wide metrics registry.
#[derive(Clone, Default)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a metric family.
    pub fn register<M: prometheus_client::registry::Metric>(
        &self,
        name: &str,
        help: &str,
        metric: M,
    ) {
        self.registry.lock().register(name, help, metric);
    }

    /// Renders the Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry.lock()).is_err() {
            out.clear();
        }
        out
    }

    /// `/metrics` response.
    pub fn response(&self) -> impl IntoResponse {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            self.render(),
        )
    }
}

/// A router with `/healthz`, `/livez`, `/readyz` (all `ok`) and `/metrics`.
pub fn health_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { m.response() }
            }),
        )
}
