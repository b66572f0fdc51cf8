//! core/v1 Events from controllers (source `<controller>`): the shared recorder in
//! `kube_common::events` (non-blocking, bounded, upstream's event correlator).

pub use kube_common::events::{EventRecord, ObjectRef as Involved, Recorder, NORMAL, WARNING};
