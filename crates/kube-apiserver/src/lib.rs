//! kube-apiserver: generic REST over the resource registry (`api-types`), etcd storage
//! with CAS txns, a watch cache, admission, discovery and OpenAPI.

pub mod admission;
pub mod allocator;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod cache;
pub mod certificates;
pub mod discovery;
pub mod encryption;
pub mod handlers;
pub mod malloc;
pub mod master_endpoints;
pub mod metrics;
pub mod metrics_api;
pub mod options;
pub mod pki;
pub mod proxy;
pub mod request_path;
pub mod server;
pub mod serviceaccount;
pub mod storage;
pub mod store;
pub mod strategy;
pub mod subresources;
pub mod tls;
