//! kube-controller-manager: the core control loops (replication, deployments,
//! namespaces, service accounts, garbage collection, ...), each registered in the
//! descriptor table that `--controllers` selects from.

pub mod app;
pub mod context;
pub mod controllers;
pub mod credentials;
pub mod descriptors;
pub mod options;
pub mod util;
