//! flanneld: the flannel overlay network agent in etcd mode.
//!
//! Reads the network config from `<prefix>/config`, leases a subnet under
//! `<prefix>/subnets/`, programs routes to every other node's subnet (vxlan or
//! host-gw backend through rtnetlink), optionally masquerades, and writes
//! `/run/flannel/subnet.env` plus a CNI conflist for containerd.

pub mod backend;
pub mod cni;
pub mod config;
pub mod daemon;
pub mod lease;
pub mod masq;
pub mod notify;
pub mod options;
pub mod registry;
pub mod subnet_file;
