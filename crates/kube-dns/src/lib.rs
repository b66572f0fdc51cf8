//! kube-dns: the cluster DNS server. Watches Services and EndpointSlices and
//! answers, as CoreDNS's `kubernetes` plugin does, for names in the cluster domain
//! (`<svc>.<ns>.svc.<domain>`, endpoints, SRV, pods, PTR); forwards the rest to the
//! upstream resolvers.
//!
//! The name → answer logic is pure ([`index`] + [`resolve`]); [`handler`] adapts it
//! to hickory-server and [`forward`] talks to upstreams; [`server`] wires the
//! reflectors, the DNS listeners and the health/metrics endpoint.

pub mod forward;
pub mod handler;
pub mod index;
pub mod options;
pub mod resolve;
pub mod server;
