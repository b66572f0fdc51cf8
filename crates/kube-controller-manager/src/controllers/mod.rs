//! The controllers, one module each, and the descriptor table `--controllers`
//! selects from (upstream `NewControllerDescriptors`).

pub mod certificates;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod garbagecollector;
pub mod job;
pub mod namespace;
pub mod nodelifecycle;
pub mod persistentvolume;
pub mod podautoscaler;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod rootcacert;
pub mod serviceaccount;

use crate::descriptors::ControllerDescriptor;

pub static DESCRIPTORS: &[ControllerDescriptor] = &[
    ControllerDescriptor {
        name: "endpoints-controller",
        aliases: &["endpoint"],
        enabled_by_default: true,
        start: endpoints::start,
    },
    ControllerDescriptor {
        name: "endpointslice-controller",
        aliases: &["endpointslice"],
        enabled_by_default: true,
        start: endpointslice::start,
    },
    ControllerDescriptor {
        name: "node-lifecycle-controller",
        aliases: &["nodelifecycle"],
        enabled_by_default: true,
        start: nodelifecycle::start,
    },
    ControllerDescriptor {
        name: "pod-garbage-collector-controller",
        aliases: &["podgc"],
        enabled_by_default: true,
        start: podgc::start,
    },
    ControllerDescriptor {
        name: "root-ca-certificate-publisher-controller",
        aliases: &["root-ca-cert-publisher"],
        enabled_by_default: true,
        start: rootcacert::start,
    },
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
    ControllerDescriptor {
        name: "job-controller",
        aliases: &["job"],
        enabled_by_default: true,
        start: job::start,
    },
    ControllerDescriptor {
        name: "daemonset-controller",
        aliases: &["daemonset"],
        enabled_by_default: true,
        start: daemonset::start,
    },
    ControllerDescriptor {
        name: "resourcequota-controller",
        aliases: &["resourcequota"],
        enabled_by_default: true,
        start: resourcequota::start,
    },
    ControllerDescriptor {
        name: "cronjob-controller",
        aliases: &["cronjob"],
        enabled_by_default: true,
        start: cronjob::start,
    },
    ControllerDescriptor {
        name: "horizontal-pod-autoscaler-controller",
        aliases: &["horizontalpodautoscaling"],
        enabled_by_default: true,
        start: podautoscaler::start,
    },
    ControllerDescriptor {
        name: "ttl-after-finished-controller",
        aliases: &["ttl-after-finished"],
        enabled_by_default: true,
        start: job::ttl::start,
    },
    ControllerDescriptor {
        name: "persistentvolume-binder-controller",
        aliases: &["persistentvolume-binder"],
        enabled_by_default: true,
        start: persistentvolume::start,
    },
    ControllerDescriptor {
        name: "certificatesigningrequest-approving-controller",
        aliases: &["csrapproving"],
        enabled_by_default: true,
        start: certificates::approver::start,
    },
    ControllerDescriptor {
        name: "certificatesigningrequest-signing-controller",
        aliases: &["csrsigning"],
        enabled_by_default: true,
        start: certificates::signer::start,
    },
    ControllerDescriptor {
        name: "certificatesigningrequest-cleaner-controller",
        aliases: &["csrcleaner"],
        enabled_by_default: true,
        start: certificates::cleaner::start,
    },
];
