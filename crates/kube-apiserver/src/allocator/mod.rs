//! Service ClusterIP and NodePort allocation (upstream's `ipallocator` and
//! `portallocator` with their etcd-backed bitmaps `/registry/ranges/serviceips` and
//! `/registry/ranges/servicenodeports`). Allocation happens before the Service itself
//! is written; the store releases on a failed write and on delete, and `repair` re-marks
//! every existing Service at start-up so a lost or stale bitmap never double-allocates.

pub mod bitmap;
pub mod cidr;
mod range;
mod service;

use std::{collections::BTreeSet, net::Ipv4Addr, sync::Arc};

use api_types::{meta, ApiError, StatusCause};
use serde_json::{json, Value};

use crate::storage::Storage;
use cidr::{static_band, Ipv4Cidr, PortRange};
use range::PersistedRange;
use service::{
    needs_cluster_ip, node_ports_of, plan_node_ports, real_cluster_ip, requested_cluster_ips,
    set_cluster_ip,
};

pub const SERVICE_IPS_KEY: &str = "/registry/ranges/serviceips";
pub const SERVICE_NODE_PORTS_KEY: &str = "/registry/ranges/servicenodeports";

pub struct ServiceAllocator {
    storage: Arc<Storage>,
    cidr: Ipv4Cidr,
    ports: PortRange,
    ips: PersistedRange,
    node_ports: PersistedRange,
}

/// `spec.clusterIPs: Invalid value: []string{"10.0.0.1"}: failed to allocate IP 10.0.0.1: <why>`
fn ip_error(name: &str, shown: &[String], ip: &str, why: &str) -> ApiError {
    let list = shown
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    ApiError::invalid(
        "",
        "Service",
        name,
        vec![StatusCause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: []string{{{list}}}: failed to allocate IP {ip}: {why}"
            ),
            field: "spec.clusterIPs".into(),
        }],
    )
}

fn port_error(name: &str, field: &str, port: i64, why: &str) -> ApiError {
    ApiError::invalid(
        "",
        "Service",
        name,
        vec![StatusCause::invalid(field, &json!(port), why)],
    )
}

impl ServiceAllocator {
    /// `cluster_ip_range` is `--service-cluster-ip-range` (IPv4 CIDR), `node_port_range`
    /// is `--service-node-port-range` (`30000-32767`).
    pub fn new(
        storage: Arc<Storage>,
        cluster_ip_range: &str,
        node_port_range: &str,
    ) -> anyhow::Result<Self> {
        let cidr = Ipv4Cidr::parse(cluster_ip_range)?;
        let ports = PortRange::parse(node_port_range)?;
        Ok(ServiceAllocator {
            storage,
            ips: PersistedRange::new(SERVICE_IPS_KEY, cidr.to_string(), cidr.usable()),
            node_ports: PersistedRange::new(
                SERVICE_NODE_PORTS_KEY,
                ports.to_string(),
                ports.size(),
            ),
            cidr,
            ports,
        })
    }

    pub fn cluster_ip_range(&self) -> String {
        self.cidr.to_string()
    }

    pub fn node_port_range(&self) -> String {
        self.ports.to_string()
    }

    /// The `kubernetes` Service's IP: the first of the range, never handed out at random.
    /// Nothing is marked here; create the Service with `spec.clusterIP` set to it and
    /// `allocate` takes it (after a restart the Service exists and keeps it).
    pub async fn reserve_kubernetes_service_ip(&self) -> Result<String, ApiError> {
        Ok(self.cidr.first().to_string())
    }

    fn ip_band(&self) -> u64 {
        static_band(self.cidr.size(), 16, 256, 16)
    }

    fn port_band(&self) -> u64 {
        static_band(self.ports.size(), 16, 128, 32)
    }

    /// Takes the requested (or a random) cluster IP; returns its offset.
    async fn allocate_ip(&self, svc: &mut Value, dry_run: bool) -> Result<Option<u64>, ApiError> {
        let name = meta::name(svc).unwrap_or_default().to_string();
        let requested = requested_cluster_ips(svc);
        let offset = match requested.first().map(String::as_str) {
            Some("None") => {
                set_cluster_ip(svc, "None");
                return Ok(None);
            }
            Some(ip_text) => {
                let ip_text = ip_text.to_string();
                let not_in_range = || {
                    ip_error(
                        &name,
                        &requested,
                        &ip_text,
                        &format!(
                            "the provided IP ({ip_text}) is not in the valid range. The range of valid IPs is {}",
                            self.cidr
                        ),
                    )
                };
                let ip: Ipv4Addr = ip_text.parse().map_err(|_| not_in_range())?;
                let offset = self.cidr.offset_of(ip).ok_or_else(not_in_range)?;
                self.ips
                    .modify(&self.storage, dry_run, |bits| {
                        if bits.set(offset) {
                            Ok(offset)
                        } else {
                            Err(ip_error(
                                &name,
                                &requested,
                                &ip_text,
                                "provided IP is already allocated",
                            ))
                        }
                    })
                    .await?
            }
            None => {
                let band = self.ip_band();
                self.ips
                    .modify(&self.storage, dry_run, |bits| {
                        let offset = bits.random_free(band, &[0]).ok_or_else(|| {
                            ApiError::internal("failed to allocate a serviceIP: range is full")
                        })?;
                        bits.set(offset);
                        Ok(offset)
                    })
                    .await?
            }
        };
        let ip = self
            .cidr
            .ip_at(offset)
            .ok_or_else(|| ApiError::internal("allocated IP out of range"))?;
        set_cluster_ip(svc, &ip.to_string());
        Ok(Some(offset))
    }

    async fn release_ip_offset(&self, offset: u64) {
        if let Err(e) = self
            .ips
            .modify(&self.storage, false, |bits| Ok(bits.clear(offset)))
            .await
        {
            tracing::error!(error = %e.message, "releasing a service IP failed");
        }
    }

    /// Allocates the node ports `svc` needs beyond those of `old`, and frees the ones
    /// `old` had that `svc` no longer uses; fills in the random picks.
    async fn allocate_node_ports(
        &self,
        svc: &mut Value,
        old: Option<&Value>,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let name = meta::name(svc).unwrap_or_default().to_string();
        let old_ports: BTreeSet<i64> = old.map(node_ports_of).unwrap_or_default();
        let plan =
            plan_node_ports(svc, old, &old_ports, &self.ports).map_err(|(field, port)| {
                port_error(
                    &name,
                    &field,
                    port,
                    &format!(
                        "provided port is not in the valid range. The range of valid ports is {}",
                        self.ports
                    ),
                )
            })?;
        if plan.is_empty() {
            return Ok(());
        }
        let band = self.port_band();
        let ports = self.ports;
        let picked = self
            .node_ports
            .modify(&self.storage, dry_run, |bits| {
                for (field, port) in &plan.specific {
                    let offset = ports.offset_of(*port).unwrap_or(u64::MAX);
                    if !bits.set(offset) {
                        return Err(port_error(
                            &name,
                            field,
                            *port,
                            "provided port is already allocated",
                        ));
                    }
                }
                let mut picked = Vec::new();
                for _ in 0..plan.random {
                    let offset = bits.random_free(band, &[]).ok_or_else(|| {
                        ApiError::internal("failed to allocate a nodePort: range is full")
                    })?;
                    bits.set(offset);
                    picked.push(ports.port_at(offset).map(i64::from).unwrap_or_default());
                }
                for port in &plan.release {
                    if let Some(offset) = ports.offset_of(*port) {
                        bits.clear(offset);
                    }
                }
                Ok(picked)
            })
            .await?;
        plan.fill(svc, &picked);
        Ok(())
    }

    async fn release_node_ports(&self, ports: &BTreeSet<i64>) {
        if ports.is_empty() {
            return;
        }
        let range = self.ports;
        let result = self
            .node_ports
            .modify(&self.storage, false, |bits| {
                for p in ports {
                    if let Some(offset) = range.offset_of(*p) {
                        bits.clear(offset);
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e.message, "releasing node ports failed");
        }
    }

    /// Assigns `spec.clusterIP(s)` and node ports to a new Service.
    pub async fn allocate(&self, svc: &mut Value, dry_run: bool) -> Result<(), ApiError> {
        let ip_offset = if needs_cluster_ip(svc) {
            service::default_ip_families(svc);
            self.allocate_ip(svc, dry_run).await?
        } else {
            None
        };
        if let Err(e) = self.allocate_node_ports(svc, None, dry_run).await {
            if let (Some(offset), false) = (ip_offset, dry_run) {
                self.release_ip_offset(offset).await;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Reconciles allocations for an updated Service: an IP when it stops being
    /// ExternalName (released when it becomes one), node ports on type and port changes.
    pub async fn update(
        &self,
        new: &mut Value,
        old: &Value,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let old_ip = real_cluster_ip(old).and_then(|ip| self.cidr.offset_of(ip));
        let mut new_ip = None;
        if needs_cluster_ip(new) {
            if requested_cluster_ips(new).is_empty() {
                if let Some(ip) = old
                    .pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .filter(|ip| !ip.is_empty())
                {
                    set_cluster_ip(new, ip);
                }
            }
            let had_ip = needs_cluster_ip(old) && !requested_cluster_ips(old).is_empty();
            if !had_ip {
                service::default_ip_families(new);
                new_ip = self.allocate_ip(new, dry_run).await?;
            }
        }
        if let Err(e) = self.allocate_node_ports(new, Some(old), dry_run).await {
            if let (Some(offset), false) = (new_ip, dry_run) {
                self.release_ip_offset(offset).await;
            }
            return Err(e);
        }
        if let (Some(offset), false, false) = (old_ip, needs_cluster_ip(new), dry_run) {
            self.release_ip_offset(offset).await;
        }
        Ok(())
    }

    /// Returns a deleted Service's IP and ports.
    pub async fn release(&self, svc: &Value) {
        if let Some(offset) = real_cluster_ip(svc).and_then(|ip| self.cidr.offset_of(ip)) {
            self.release_ip_offset(offset).await;
        }
        self.release_node_ports(&node_ports_of(svc)).await;
    }

    /// Marks every existing Service's IP and node ports allocated (upstream's repair
    /// controllers), so a lost or stale bitmap never hands them out again. Values outside
    /// the configured ranges and duplicates are logged.
    pub async fn repair(&self, services: &[Value]) {
        let mut ips = BTreeSet::new();
        let mut ports = BTreeSet::new();
        for svc in services {
            let who = format!(
                "{}/{}",
                meta::namespace(svc).unwrap_or_default(),
                meta::name(svc).unwrap_or_default()
            );
            if let Some(ip) = real_cluster_ip(svc) {
                match self.cidr.offset_of(ip) {
                    Some(o) if !ips.insert(o) => {
                        tracing::warn!(service = %who, %ip, "cluster IP assigned to multiple services")
                    }
                    Some(_) => {}
                    None => {
                        tracing::warn!(service = %who, %ip, range = %self.cidr, "cluster IP is not within the service CIDR")
                    }
                }
            }
            for p in node_ports_of(svc) {
                match self.ports.offset_of(p) {
                    Some(o) if !ports.insert(o) => {
                        tracing::warn!(service = %who, port = p, "node port assigned to multiple services")
                    }
                    Some(_) => {}
                    None => {
                        tracing::warn!(service = %who, port = p, range = %self.ports, "node port is not within the node port range")
                    }
                }
            }
        }
        let mark = |set: BTreeSet<u64>| {
            move |bits: &mut bitmap::Bitmap| {
                for o in &set {
                    bits.set(*o);
                }
                Ok(())
            }
        };
        if let Err(e) = self.ips.modify(&self.storage, false, mark(ips)).await {
            tracing::error!(key = self.ips.key(), error = %e.message, "repairing service IP allocations failed");
        }
        if let Err(e) = self
            .node_ports
            .modify(&self.storage, false, mark(ports))
            .await
        {
            tracing::error!(key = self.node_ports.key(), error = %e.message, "repairing node port allocations failed");
        }
    }
}
