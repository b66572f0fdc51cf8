//! Controller-manager against a real etcd + our apiserver (no kubelets: tests mark
//! pods Running/Ready through `pods/status` as a kubelet would).

mod bench;
mod common;
mod deployment;
mod garbagecollector;
mod leader;
mod namespace;
mod replicaset;
mod serviceaccount;
