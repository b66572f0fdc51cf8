//! What every controller is started with, as upstream's `ControllerContext`.

use std::sync::Arc;

use kube_common::metrics::Metrics;

use crate::options::Options;

#[derive(Clone)]
pub struct ControllerContext {
    pub client: kube::Client,
    pub options: Arc<Options>,
    pub metrics: Metrics,
    /// The CA the client trusts for the apiserver (PEM), if any.
    pub root_ca: Option<String>,
}
