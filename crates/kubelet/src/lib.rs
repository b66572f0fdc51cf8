//! The kubelet: registers its node, keeps a Lease, runs the pods bound to it on a
//! CRI v1 runtime (containerd) and writes their status back to the API.

pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod cri;
pub mod events;
pub mod node;
pub mod options;
pub mod pod;
pub mod server;
pub mod stats;
pub mod streaming;
pub mod tls;
