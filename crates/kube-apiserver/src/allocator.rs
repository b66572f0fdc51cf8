//! Service ClusterIP and NodePort allocation (in progress).

use api_types::ApiError;
use serde_json::Value;

pub struct ServiceAllocator;

impl ServiceAllocator {
    /// Assigns `spec.clusterIP(s)` and node ports to a new Service.
    pub async fn allocate(&self, _svc: &mut Value, _dry_run: bool) -> Result<(), ApiError> {
        Ok(())
    }

    /// Reconciles allocations for an updated Service.
    pub async fn update(&self, _new: &mut Value, _old: &Value, _dry_run: bool) -> Result<(), ApiError> {
        Ok(())
    }

    /// Returns a deleted Service's IP and ports.
    pub async fn release(&self, _svc: &Value) {}
}
