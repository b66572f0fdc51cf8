//! Pods on this node: turning specs into CRI calls and runtime state into status.

pub mod env;
pub mod resources;
pub mod spec;
pub mod status;
pub mod volumes;
pub mod worker;
pub mod manager;
pub mod prober;
pub mod static_pods;
