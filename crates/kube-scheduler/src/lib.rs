//! kube-scheduler: watches unscheduled pods and nodes, picks a node for each pod with
//! upstream's default plugins, and binds it through `pods/binding`.

#![forbid(unsafe_code)]

pub mod algorithm;
pub mod cache;
pub mod events;
pub mod framework;
pub mod handlers;
pub mod informer;
pub mod labels;
pub mod metrics;
pub mod options;
pub mod plugins;
pub mod queue;
pub mod resources;
pub mod retry;
pub mod scheduler;
pub mod server;
