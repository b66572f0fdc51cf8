//! Daemon plumbing shared by every component: upstream-style flag normalization,
//! logging flags and tracing setup, the `/healthz` + `/metrics` server, and signals.

pub mod client;
pub mod duration;
pub mod events;
pub mod flags;
pub mod informer;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod signals;
