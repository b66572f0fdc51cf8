//! Kubernetes API types for every crate of the project: re-exports of `k8s-openapi`
//! plus what upstream keeps in apimachinery — the resource registry, defaulting,
//! validation, label/field selectors, quantities, table printing, patches, protobuf
//! decoding, OpenAPI documents and the `Status` error. No IO.

pub use k8s_openapi;

pub mod apply;
pub mod conversion;
pub mod defaults;
pub mod json;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod quota;
pub mod registry;
pub mod selectors;
pub mod status;
pub mod strict;
pub mod table;
pub mod validation;

pub use registry::{ResourceInfo, Subresource};
pub use status::{ApiError, StatusCause};
