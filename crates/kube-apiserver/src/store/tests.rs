//! Store behaviour that needs a real etcd but no HTTP in front.

use std::{sync::Arc, time::Duration};

use serde_json::{json, Value};

use super::*;
use crate::{
    admission::Admission,
    allocator::ServiceAllocator,
    storage::{EtcdTls, Storage},
};

async fn store(etcd: &test_support::Etcd) -> Store {
    let storage = Arc::new(
        Storage::connect(&[etcd.endpoint()], &EtcdTls::default())
            .await
            .expect("etcd connects"),
    );
    let cache = WatchCache::start(storage.clone(), 100)
        .await
        .expect("watch cache");
    Store {
        admission: Admission::new(Vec::new(), cache.clone(), storage.clone()),
        services: ServiceAllocator::new(storage.clone(), "10.254.0.0/24", "30000-30099")
            .expect("ranges"),
        storage,
        cache,
        event_ttl: Duration::from_secs(3600),
    }
}

fn opts() -> WriteOptions {
    WriteOptions {
        dry_run: false,
        field_manager: "test".into(),
        field_validation: FieldValidation::Strict,
        force: false,
        user: None,
    }
}

/// Creates a ConfigMap with `meta` in `default`.
async fn create_config_map(store: &Store, meta: Value) -> Result<Written, ApiError> {
    let info = api_types::registry::lookup("", "v1", "configmaps").expect("configmaps");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}});
    store.create(info, Some("default"), cm, &opts()).await
}

fn suffixes(s: &[&str]) {
    NEXT_SUFFIXES.with(|q| q.borrow_mut().extend(s.iter().map(|s| s.to_string())));
}

/// Upstream's RetryGenerateName: a generated name that is taken is replaced, up to 8
/// attempts in all; then the create fails with 409 AlreadyExists.
#[tokio::test]
async fn a_taken_generated_name_is_retried_with_another() {
    let etcd = test_support::Etcd::start().expect("etcd starts");
    let store = store(&etcd).await;
    for name in ["cm-bbbbb", "cm-ccccc"] {
        create_config_map(&store, json!({"name": name}))
            .await
            .expect("named create");
    }

    suffixes(&["bbbbb", "ccccc", "ddddd"]);
    let written = create_config_map(&store, json!({"generateName": "cm-"}))
        .await
        .expect("third name is free");
    assert_eq!(written.object["metadata"]["name"], "cm-ddddd");
    assert_eq!(written.object["metadata"]["generateName"], "cm-");

    suffixes(&["bbbbb"; 9]);
    let err = create_config_map(&store, json!({"generateName": "cm-"}))
        .await
        .expect_err("8 taken names");
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    // A ninth suffix was never drawn.
    assert_eq!(NEXT_SUFFIXES.with(|q| q.borrow_mut().drain(..).count()), 1);

    // A long prefix is cut so that the name stays a valid 63-character name.
    let long = "x".repeat(70);
    let written = create_config_map(&store, json!({"generateName": long}))
        .await
        .expect("long generateName");
    let name = written.object["metadata"]["name"].as_str().expect("name");
    assert_eq!(name.len(), 63, "{name}");
    assert!(name.starts_with(&"x".repeat(58)), "{name}");
}
