//! The etcd side: `<prefix>/config` and `<prefix>/subnets/*`, as upstream's
//! `pkg/subnet/etcd` registry and local manager.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, TlsOptions, Txn,
    TxnOp, WatchOptions, WatchStream,
};
use ipnet::Ipv4Net;

use crate::config::NetworkConfig;
use crate::lease::{
    allocate_subnet, parse_subnet_key, subnet_key, AllocateError, Lease, LeaseAttrs, LeaseEvent,
};

/// Upstream's `subnetTTL`.
pub const SUBNET_TTL: Duration = Duration::from_secs(24 * 3600);
/// Upstream's `raceRetries`.
const RACE_RETRIES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "flannel config not found in etcd store. Did you create your config using etcdv3 API?"
    )]
    ConfigNotFound,
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("reading {path}: {source}")]
    ReadTls {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding lease: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Allocate(#[from] AllocateError),
    #[error("Max retries reached trying to acquire a subnet")]
    MaxRetries,
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// How to reach etcd.
#[derive(Debug, Clone, Default)]
pub struct EtcdConfig {
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub cafile: Option<String>,
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// A lease this node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnLease {
    pub subnet: Ipv4Net,
    pub attrs: LeaseAttrs,
    pub etcd_lease: i64,
    /// Seconds the etcd lease had left when granted or checked.
    pub ttl: i64,
}

pub struct Registry {
    client: Client,
    prefix: String,
}

fn read(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| RegistryError::ReadTls {
        path: path.to_string(),
        source,
    })
}

impl Registry {
    pub async fn connect(cfg: &EtcdConfig) -> Result<Self> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(30))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10));
        if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
            opts = opts.with_user(user.clone(), password.clone());
        }
        let tls_wanted = cfg.cafile.is_some() || cfg.certfile.is_some();
        if tls_wanted {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &cfg.cafile {
                tls = tls.ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
            }
            if let (Some(cert), Some(key)) = (&cfg.certfile, &cfg.keyfile) {
                tls = tls.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
            }
            opts = opts.with_tls(tls);
        } else {
            tracing::warn!(
                "no certificate provided: connecting to etcd with http. This is insecure"
            );
        }
        let client = Client::connect(&cfg.endpoints, Some(opts)).await?;
        Ok(Self {
            client,
            prefix: cfg.prefix.trim_end_matches('/').to_string(),
        })
    }

    fn config_key(&self) -> String {
        format!("{}/config", self.prefix)
    }

    /// `<prefix>/subnets/` (with the slash, so `subnets-old/` is not matched).
    pub fn subnets_prefix(&self) -> String {
        format!("{}/subnets/", self.prefix)
    }

    fn subnet_path(&self, subnet: &Ipv4Net) -> String {
        format!("{}{}", self.subnets_prefix(), subnet_key(subnet))
    }

    /// The config text, or [`RegistryError::ConfigNotFound`].
    pub async fn network_config(&mut self) -> Result<String> {
        let resp = self.client.get(self.config_key(), None).await?;
        let kv = resp.kvs().first().ok_or(RegistryError::ConfigNotFound)?;
        Ok(String::from_utf8_lossy(kv.value()).into_owned())
    }

    /// Every lease, and the revision to watch from (+1).
    pub async fn list_subnets(&mut self) -> Result<(Vec<Lease>, i64)> {
        let resp = self
            .client
            .get(self.subnets_prefix(), Some(GetOptions::new().with_prefix()))
            .await?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        let mut leases = Vec::new();
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key());
            match parse_lease(&key, kv.value(), kv.lease()) {
                Some(l) => leases.push(l),
                None => tracing::warn!(%key, "Ignoring bad subnet node"),
            }
        }
        Ok((leases, revision))
    }

    /// Creates the key if absent (txn `version == 0`) on a fresh etcd lease;
    /// `None` when someone else holds it.
    pub async fn create_subnet(
        &mut self,
        subnet: &Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
    ) -> Result<Option<OwnLease>> {
        let key = self.subnet_path(subnet);
        let value = serde_json::to_string(attrs)?;
        let grant = self.client.lease_grant(ttl.as_secs() as i64, None).await?;
        let txn = Txn::new()
            .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                value,
                Some(PutOptions::new().with_lease(grant.id())),
            )]);
        let result = self.client.txn(txn).await;
        match result {
            Ok(resp) if resp.succeeded() => Ok(Some(OwnLease {
                subnet: *subnet,
                attrs: attrs.clone(),
                etcd_lease: grant.id(),
                ttl: grant.ttl(),
            })),
            other => {
                if let Err(e) = self.client.lease_revoke(grant.id()).await {
                    tracing::error!(error = %e, "revoking unused etcd lease");
                }
                other.map(|_| None).map_err(Into::into)
            }
        }
    }

    /// Re-puts the key on a new etcd lease (upstream's `updateSubnet`, used to
    /// reuse a lease after restart and to renew).
    pub async fn update_subnet(
        &mut self,
        subnet: &Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
    ) -> Result<OwnLease> {
        let key = self.subnet_path(subnet);
        let value = serde_json::to_string(attrs)?;
        let grant = self.client.lease_grant(ttl.as_secs() as i64, None).await?;
        if let Err(e) = self
            .client
            .put(key, value, Some(PutOptions::new().with_lease(grant.id())))
            .await
        {
            let _ = self.client.lease_revoke(grant.id()).await;
            return Err(e.into());
        }
        Ok(OwnLease {
            subnet: *subnet,
            attrs: attrs.clone(),
            etcd_lease: grant.id(),
            ttl: grant.ttl(),
        })
    }

    pub async fn delete_subnet(&mut self, subnet: &Ipv4Net) -> Result<()> {
        self.client.delete(self.subnet_path(subnet), None).await?;
        Ok(())
    }

    /// Drops an etcd lease that no longer carries our key (after a renewal).
    pub async fn revoke(&mut self, etcd_lease: i64) {
        if let Err(e) = self.client.lease_revoke(etcd_lease).await {
            tracing::debug!(error = %e, etcd_lease, "revoking old etcd lease");
        }
    }

    /// Upstream's `AcquireLease`: reuse the lease with our public IP, else the
    /// previous subnet from the subnet file, else a random free one.
    pub async fn acquire_lease(
        &mut self,
        config: &NetworkConfig,
        attrs: &LeaseAttrs,
        previous: Option<Ipv4Net>,
    ) -> Result<OwnLease> {
        for _ in 0..RACE_RETRIES {
            let (leases, _) = self.list_subnets().await?;
            if let Some(l) = leases.iter().find(|l| l.attrs.public_ip == attrs.public_ip) {
                if config.is_compatible(&l.subnet) {
                    tracing::info!(subnet = %l.subnet, public_ip = %attrs.public_ip, "Found lease for current IP, reusing");
                    let own = self.update_subnet(&l.subnet, attrs, SUBNET_TTL).await?;
                    if l.etcd_lease != 0 {
                        self.revoke(l.etcd_lease).await;
                    }
                    return Ok(own);
                }
                tracing::info!(subnet = %l.subnet, "Found lease for current IP but not compatible with current config, deleting");
                self.delete_subnet(&l.subnet).await?;
            }
            let mut chosen = None;
            if let Some(prev) = previous {
                if !leases.iter().any(|l| l.subnet == prev) {
                    if config.is_compatible(&prev) {
                        tracing::info!(subnet = %prev, "Found previously leased subnet, reusing");
                        chosen = Some(prev);
                    } else {
                        tracing::error!(subnet = %prev, "Found previously leased subnet that is not compatible with the Etcd network config, ignoring");
                    }
                }
            }
            let subnet = match chosen {
                Some(s) => s,
                None => {
                    tracing::info!(min = %config.subnet_min, max = %config.subnet_max, "Picking subnet in range");
                    allocate_subnet(config, &leases)?
                }
            };
            if let Some(own) = self.create_subnet(&subnet, attrs, SUBNET_TTL).await? {
                tracing::info!(%subnet, public_ip = %attrs.public_ip, "Allocated lease to current node");
                return Ok(own);
            }
        }
        Err(RegistryError::MaxRetries)
    }

    /// Watches `<prefix>/subnets/` from `revision`.
    pub async fn watch_subnets(&mut self, revision: i64) -> Result<WatchStream> {
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision)
            .with_progress_notify();
        Ok(self.client.watch(self.subnets_prefix(), Some(opts)).await?)
    }
}

/// One lease from a key and value; `None` for keys that are not subnets or bad JSON.
pub fn parse_lease(key: &str, value: &[u8], etcd_lease: i64) -> Option<Lease> {
    let subnet = parse_subnet_key(key)?;
    let attrs: LeaseAttrs = serde_json::from_slice(value).ok()?;
    Some(Lease {
        subnet,
        attrs,
        etcd_lease,
    })
}

/// Turns a watch event into a lease event.
pub fn parse_event(event: &etcd_client::Event) -> Option<LeaseEvent> {
    let kv = event.kv()?;
    let key = String::from_utf8_lossy(kv.key());
    match event.event_type() {
        EventType::Delete => parse_subnet_key(&key).map(LeaseEvent::Removed),
        EventType::Put => match parse_lease(&key, kv.value(), kv.lease()) {
            Some(l) => Some(LeaseEvent::Added(l)),
            None => {
                tracing::warn!(%key, "ignoring bad subnet event");
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lease_rejects_junk() {
        let ok = parse_lease(
            "/coreos.com/network/subnets/10.1.94.0-24",
            br#"{"PublicIP":"192.168.213.2","BackendType":"host-gw"}"#,
            7,
        )
        .expect("lease");
        assert_eq!(ok.subnet.to_string(), "10.1.94.0/24");
        assert_eq!(ok.etcd_lease, 7);
        assert_eq!(parse_lease("/p/subnets/10.1.94.0-24", b"not json", 0), None);
        assert_eq!(
            parse_lease("/p/subnets/zzz", br#"{"PublicIP":"1.2.3.4"}"#, 0),
            None
        );
    }

    #[test]
    fn config_not_found_message_is_upstreams() {
        assert_eq!(
            RegistryError::ConfigNotFound.to_string(),
            "flannel config not found in etcd store. Did you create your config using etcdv3 API?"
        );
    }
}
