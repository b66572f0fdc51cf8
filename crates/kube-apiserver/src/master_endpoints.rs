//! The `kubernetes` Service's endpoints, as upstream's lease endpoint reconciler: each
//! apiserver keeps a short-lived key `/masterleases/<advertise IP>` in etcd and writes
//! the live IPs to Endpoints `default/kubernetes` and EndpointSlice
//! `default/kubernetes` (label `kubernetes.io/service-name: kubernetes`, no
//! managed-by label, as upstream's endpoints adapter), port name `https`.

use std::{sync::Arc, time::Duration};

use serde_json::{json, Value};

use crate::{
    server::AppState,
    store::{FieldValidation, WriteOptions},
};

/// Where the leases live (upstream's `/masterleases/`).
pub const LEASE_PREFIX: &str = "/masterleases/";
/// A lease outlives a missed renewal or two.
const LEASE_TTL: Duration = Duration::from_secs(15);
/// How often this apiserver renews its lease and reconciles.
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(10);

fn write_options() -> WriteOptions {
    WriteOptions {
        dry_run: false,
        field_manager: "kube-apiserver".into(),
        field_validation: FieldValidation::Ignore,
        force: false,
        user: None,
    }
}

/// Renews this apiserver's lease.
async fn renew_lease(state: &AppState, ip: &str) -> anyhow::Result<()> {
    let key = format!("{LEASE_PREFIX}{ip}");
    let value = serde_json::to_vec(&json!({"ip": ip}))?;
    let current = state.storage.get(&key).await?;
    let expected = current.map(|s| s.mod_revision).unwrap_or(0);
    if expected == 0 {
        state.storage.create(&key, value, Some(LEASE_TTL)).await?;
    } else {
        state
            .storage
            .update(&key, value, expected, Some(LEASE_TTL))
            .await?;
    }
    Ok(())
}

/// The advertise IPs of the live apiservers (sorted, always including `own`).
async fn live_ips(state: &AppState, own: &str) -> anyhow::Result<Vec<String>> {
    let page = state.storage.list_all(LEASE_PREFIX, 0).await?;
    let mut ips: Vec<String> = page
        .items
        .iter()
        .filter_map(|(k, _)| k.strip_prefix(LEASE_PREFIX))
        .map(str::to_string)
        .collect();
    if !ips.iter().any(|i| i == own) {
        ips.push(own.to_string());
    }
    ips.sort();
    ips.dedup();
    Ok(ips)
}

/// The Endpoints object for `ips`.
pub fn endpoints(ips: &[String], port: u16) -> Value {
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": addresses, "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    })
}

/// The EndpointSlice for `ips`.
pub fn endpoint_slice(ips: &[String], port: u16) -> Value {
    let ipv6 = ips.first().is_some_and(|ip| ip.contains(':'));
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": if ipv6 { "IPv6" } else { "IPv4" },
        "endpoints": endpoints,
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    })
}

/// Writes `desired` unless the stored object already has the same content.
async fn ensure(
    state: &AppState,
    group: &str,
    plural: &str,
    desired: Value,
    fields: &[&str],
) -> anyhow::Result<()> {
    let info = api_types::registry::lookup(group, "v1", plural)
        .ok_or_else(|| anyhow::anyhow!("{plural} not registered"))?;
    let opts = write_options();
    match state.store.get(info, Some("default"), "kubernetes").await {
        Ok(current) => {
            let same = fields.iter().all(|f| current.get(*f) == desired.get(*f))
                && current.pointer("/metadata/labels") == desired.pointer("/metadata/labels");
            if same {
                return Ok(());
            }
            let mut updated = current.clone();
            for f in fields {
                updated[*f] = desired[*f].clone();
            }
            updated["metadata"]["labels"] = desired["metadata"]["labels"].clone();
            state
                .store
                .update(info, Some("default"), "kubernetes", None, updated, &opts)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
        }
        Err(e) if e.code == 404 => match state
            .store
            .create(info, Some("default"), desired, &opts)
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => anyhow::bail!(e.message),
        },
        Err(e) => anyhow::bail!(e.message),
    }
    Ok(())
}

/// One round: renew the lease, then write the live IPs to the Endpoints and the slice.
pub async fn reconcile(state: &AppState, ip: &str, port: u16) -> anyhow::Result<()> {
    renew_lease(state, ip).await?;
    let ips = live_ips(state, ip).await?;
    ensure(state, "", "endpoints", endpoints(&ips, port), &["subsets"]).await?;
    ensure(
        state,
        "discovery.k8s.io",
        "endpointslices",
        endpoint_slice(&ips, port),
        &["addressType", "endpoints", "ports"],
    )
    .await?;
    Ok(())
}

/// Reconciles now and then every [`RECONCILE_INTERVAL`] for the life of the process.
pub async fn start(state: Arc<AppState>, ip: String, port: u16) {
    if let Err(e) = reconcile(&state, &ip, port).await {
        tracing::warn!(error = %e, "reconciling the kubernetes service endpoints");
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RECONCILE_INTERVAL);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = reconcile(&state, &ip, port).await {
                tracing::warn!(error = %e, "reconciling the kubernetes service endpoints");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_have_upstream_shape() {
        let ips = vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()];
        let ep = endpoints(&ips, 6443);
        assert_eq!(
            ep.pointer("/subsets/0/addresses/1/ip"),
            Some(&json!("10.0.0.2"))
        );
        assert_eq!(ep.pointer("/subsets/0/ports/0/name"), Some(&json!("https")));
        let slice = endpoint_slice(&ips, 6443);
        assert_eq!(slice["addressType"], "IPv4");
        assert_eq!(
            slice.pointer("/metadata/labels/kubernetes.io~1service-name"),
            Some(&json!("kubernetes"))
        );
        assert!(slice
            .pointer("/metadata/labels/endpointslice.kubernetes.io~1managed-by")
            .is_none());
        assert_eq!(
            endpoint_slice(&["fd00::1".to_string()], 443)["addressType"],
            "IPv6"
        );
    }
}
