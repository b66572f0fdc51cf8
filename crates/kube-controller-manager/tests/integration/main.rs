//! Controller-manager against a real etcd + our apiserver (no kubelets: tests mark
//! pods Running/Ready through `pods/status` as a kubelet would).

mod bench;
mod certificates;
mod common;
mod cronjob;
mod daemonset;
mod deployment;
mod endpoints;
mod endpointslice;
mod events;
mod garbagecollector;
mod job;
mod leader;
mod namespace;
mod nodelifecycle;
mod persistentvolume;
mod podautoscaler;
mod podgc;
mod replicaset;
mod resourcequota;
mod rootcacert;
mod serviceaccount;
