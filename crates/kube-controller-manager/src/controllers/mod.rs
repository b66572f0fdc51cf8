//! The controllers, one module each, and the descriptor table `--controllers`
//! selects from (upstream `NewControllerDescriptors`).

pub mod deployment;
pub mod garbagecollector;
pub mod namespace;
pub mod replicaset;
pub mod serviceaccount;

use crate::descriptors::ControllerDescriptor;

pub static DESCRIPTORS: &[ControllerDescriptor] = &[
    ControllerDescriptor {
        name: "serviceaccount-controller",
        aliases: &["serviceaccount"],
        enabled_by_default: true,
        start: serviceaccount::start,
    },
    ControllerDescriptor {
        name: "garbage-collector-controller",
        aliases: &["garbagecollector"],
        enabled_by_default: true,
        start: garbagecollector::start,
    },
    ControllerDescriptor {
        name: "namespace-controller",
        aliases: &["namespace"],
        enabled_by_default: true,
        start: namespace::start,
    },
    ControllerDescriptor {
        name: "replicaset-controller",
        aliases: &["replicaset"],
        enabled_by_default: true,
        start: replicaset::start_replicaset,
    },
    ControllerDescriptor {
        name: "deployment-controller",
        aliases: &["deployment"],
        enabled_by_default: true,
        start: deployment::start,
    },
    ControllerDescriptor {
        name: "replicationcontroller-controller",
        aliases: &["replicationcontroller"],
        enabled_by_default: true,
        start: replicaset::start_replicationcontroller,
    },
];
