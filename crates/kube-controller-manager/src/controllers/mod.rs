//! The controllers, one module each, and the descriptor table `--controllers`
//! selects from (upstream `NewControllerDescriptors`).

pub mod serviceaccount;

use crate::descriptors::ControllerDescriptor;

pub static DESCRIPTORS: &[ControllerDescriptor] = &[
    ControllerDescriptor {
        name: "serviceaccount-controller",
        aliases: &["serviceaccount"],
        enabled_by_default: true,
        start: serviceaccount::start,
    },
];
