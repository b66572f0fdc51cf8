//! Helpers shared by controllers, as upstream's `pkg/controller` package:
//! owner references, pod predicates and ordering, expectations, rate-limited requeue.

pub mod backoff;
pub mod batch;
pub mod endpoints;
pub mod events;
pub mod expectations;
pub mod informer;
pub mod ownedpods;
pub mod owner;
pub mod pod;
pub mod podcontrol;
pub mod selector;
pub mod time;
pub mod workqueue;

/// The error every reconcile returns: an API call failed, or an object was malformed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action}: {source}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("invalid object {object}: {message}")]
    Invalid { object: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds what was being done to a kube error.
pub trait ApiContext<T> {
    fn ctx(self, action: impl FnOnce() -> String) -> Result<T>;
}

impl<T> ApiContext<T> for std::result::Result<T, kube::Error> {
    fn ctx(self, action: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Api {
            action: action(),
            source,
        })
    }
}

/// Whether a kube error is an API Status with this HTTP code.
pub fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code)
}

/// Whether the error is a 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    is_status(err, 404)
}

/// `namespace/name` (or `name`) of an object, for logs and queue keys.
pub fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    match &meta.namespace {
        Some(ns) => format!("{ns}/{}", meta.name.as_deref().unwrap_or("")),
        None => meta.name.clone().unwrap_or_default(),
    }
}
