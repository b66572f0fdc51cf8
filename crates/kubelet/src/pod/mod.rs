//! Pods on this node: turning specs into CRI calls and runtime state into status.

pub mod atomic_writer;
pub mod env;
pub mod lifecycle;
pub mod manager;
pub mod probe_net;
pub mod prober;
pub mod projected;
pub mod pvc;
pub mod resources;
pub mod spec;
pub mod static_pods;
pub mod status;
pub mod token;
pub mod volumes;
pub mod worker;
