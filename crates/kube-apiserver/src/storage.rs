//! etcd storage, as DESIGN §3: keys `/registry/<resource>/<namespace>/<name>`, JSON
//! values without `resourceVersion` (it is the etcd `mod_revision`), and every write a
//! compare-and-swap: create-if-absent (concurrent creates share one txn, see `batch`),
//! update-if-unchanged, delete-if-unchanged.

use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, TlsOptions, Txn, TxnOp,
    TxnOpResponse,
};
use parking_lot::Mutex;

mod batch;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("etcd request failed: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("reading etcd TLS files: {0}")]
    Tls(#[source] std::io::Error),
    #[error("key already exists")]
    AlreadyExists,
    #[error("key not found")]
    NotFound,
    /// The object changed since the given revision; carries the current value.
    #[error("object has been modified")]
    Conflict(Stored),
    /// Encryption at rest failed on the way in or out.
    #[error("{0}")]
    Transform(#[from] crate::encryption::EncryptionError),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// One stored value and the revision it was last written at.
#[derive(Debug, Clone)]
pub struct Stored {
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

/// One page of a list read.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<(String, Stored)>,
    /// More keys follow the last returned one.
    pub more: bool,
    /// The revision the page was read at (pass it back for the next page).
    pub revision: i64,
}

/// Lease reuse as upstream's LeaseManager: objects with a TTL (events) share one etcd
/// lease per minute instead of granting one per write.
struct LeaseCache {
    id: i64,
    granted_at: Instant,
}

const LEASE_REUSE: Duration = Duration::from_secs(60);

pub struct Storage {
    client: Client,
    /// The watch cache's own connection: its event stream never shares HTTP/2 flow
    /// control (or the connection task) with the request path's txns.
    watch_client: Client,
    lease: Mutex<Option<LeaseCache>>,
    /// Creates go to etcd through here, several to a txn under load.
    creates: batch::CreateBatcher,
    /// Encryption at rest (`--encryption-provider-config`).
    encryption: Option<std::sync::Arc<crate::encryption::Encryption>>,
}

/// TLS material for the etcd connection.
#[derive(Debug, Clone, Default)]
pub struct EtcdTls {
    pub ca_file: Option<std::path::PathBuf>,
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
}

impl Storage {
    pub async fn connect(endpoints: &[String], tls: &EtcdTls) -> Result<Storage> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10))
            .with_keep_alive_while_idle(true);
        if tls.ca_file.is_some() || tls.cert_file.is_some() {
            let mut t = TlsOptions::new();
            if let Some(ca) = &tls.ca_file {
                let pem = std::fs::read(ca).map_err(StorageError::Tls)?;
                t = t.ca_certificate(etcd_client::Certificate::from_pem(pem));
            }
            if let (Some(c), Some(k)) = (&tls.cert_file, &tls.key_file) {
                let cert = std::fs::read(c).map_err(StorageError::Tls)?;
                let key = std::fs::read(k).map_err(StorageError::Tls)?;
                t = t.identity(etcd_client::Identity::from_pem(cert, key));
            }
            opts = opts.with_tls(t);
        }
        let client = Client::connect(endpoints, Some(opts.clone())).await?;
        let watch_client = Client::connect(endpoints, Some(opts)).await?;
        Ok(Storage {
            creates: batch::CreateBatcher::start(client.clone()),
            client,
            watch_client,
            lease: Mutex::new(None),
            encryption: None,
        })
    }

    /// Transforms values of the configured resources on write and read.
    pub fn with_encryption(
        mut self,
        encryption: std::sync::Arc<crate::encryption::Encryption>,
    ) -> Storage {
        self.encryption = Some(encryption);
        self
    }

    /// The bytes written to etcd for `key`.
    fn seal(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>> {
        match &self.encryption {
            Some(e) => Ok(e.seal(key, value)?),
            None => Ok(value),
        }
    }

    /// The plaintext of a value read from etcd under `key`; borrowed unless it was
    /// encrypted (the watch cache uses it on watch events).
    pub fn open<'a>(&self, key: &str, stored: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>> {
        match &self.encryption {
            Some(e) => Ok(e.open(key, stored)?),
            None => Ok(std::borrow::Cow::Borrowed(stored)),
        }
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A client on the connection reserved for watches.
    pub fn watch_client(&self) -> Client {
        self.watch_client.clone()
    }

    /// The current etcd revision (one cheap range read).
    pub async fn current_revision(&self) -> Result<i64> {
        let resp = self
            .client
            .kv_client()
            .get(
                "\u{0}revision-probe",
                Some(GetOptions::new().with_keys_only()),
            )
            .await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Stored>> {
        let resp = self.client.kv_client().get(key, None).await?;
        match resp.kvs().first() {
            Some(kv) => Ok(Some(Stored {
                value: self.open(key, kv.value())?.into_owned(),
                mod_revision: kv.mod_revision(),
            })),
            None => Ok(None),
        }
    }

    /// Creates `key` if absent; returns the revision of the write.
    pub async fn create(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<i64> {
        let value = self.seal(key, value)?;
        let put_opts = self.put_options(ttl).await?;
        self.creates.create(key, value, put_opts).await
    }

    /// Replaces `key` if its mod_revision is still `expected`; on a mismatch returns
    /// `Conflict` with the current value (read in the same txn), or `NotFound`.
    pub async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: i64,
        ttl: Option<Duration>,
    ) -> Result<i64> {
        let value = self.seal(key, value)?;
        let put_opts = self.put_options(ttl).await?;
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::put(key, value, put_opts)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.client.kv_client().txn(txn).await?;
        if resp.succeeded() {
            return Ok(resp.header().map(|h| h.revision()).unwrap_or(0));
        }
        Err(self.current_from_else(key, resp.op_responses()))
    }

    /// Deletes `key` if its mod_revision is still `expected`; returns the delete revision.
    pub async fn delete(&self, key: &str, expected: i64) -> Result<i64> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::delete(key, None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.client.kv_client().txn(txn).await?;
        if resp.succeeded() {
            return Ok(resp.header().map(|h| h.revision()).unwrap_or(0));
        }
        Err(self.current_from_else(key, resp.op_responses()))
    }

    fn current_from_else(&self, key: &str, ops: Vec<TxnOpResponse>) -> StorageError {
        for op in ops {
            if let TxnOpResponse::Get(g) = op {
                if let Some(kv) = g.kvs().first() {
                    return match self.open(key, kv.value()) {
                        Ok(value) => StorageError::Conflict(Stored {
                            value: value.into_owned(),
                            mod_revision: kv.mod_revision(),
                        }),
                        Err(e) => e,
                    };
                }
            }
        }
        StorageError::NotFound
    }

    /// Reads up to `limit` keys under `prefix` starting at `start` (inclusive), at
    /// `revision` (0 = latest). Never reads an unbounded range: `limit` 0 means 500.
    pub async fn list(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: i64,
        revision: i64,
    ) -> Result<ListPage> {
        let limit = if limit <= 0 { 500 } else { limit };
        let end = prefix_end(prefix);
        let from = start.unwrap_or(prefix);
        let mut opts = GetOptions::new().with_range(end).with_limit(limit);
        if revision > 0 {
            opts = opts.with_revision(revision);
        }
        let resp = self.client.kv_client().get(from, Some(opts)).await?;
        let mut items = Vec::with_capacity(resp.kvs().len());
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            match self.open(&key, kv.value()) {
                Ok(value) => items.push((
                    key,
                    Stored {
                        value: value.into_owned(),
                        mod_revision: kv.mod_revision(),
                    },
                )),
                // One undecryptable value must not take every list (and the watch
                // cache's load) down; reading it by name reports the error.
                Err(e) => {
                    tracing::error!(%key, error = %e, "cannot transform the value read from etcd; skipped")
                }
            }
        }
        Ok(ListPage {
            items,
            more: resp.more(),
            revision: resp.header().map(|h| h.revision()).unwrap_or(0),
        })
    }

    /// Reads every key under `prefix` at one revision, page by page.
    pub async fn list_all(&self, prefix: &str, revision: i64) -> Result<ListPage> {
        let mut out = Vec::new();
        let mut rev = revision;
        let mut start: Option<String> = None;
        loop {
            let page = self.list(prefix, start.as_deref(), 1000, rev).await?;
            rev = page.revision;
            let more = page.more;
            if let Some((last, _)) = page.items.last() {
                start = Some(format!("{last}\u{0}"));
            }
            out.extend(page.items);
            if !more {
                break;
            }
        }
        Ok(ListPage {
            items: out,
            more: false,
            revision: rev,
        })
    }

    /// Plain put without preconditions (used for allocator bitmaps under their own CAS).
    pub async fn put_if_revision(&self, key: &str, value: Vec<u8>, expected: i64) -> Result<i64> {
        if expected == 0 {
            self.create(key, value, None).await
        } else {
            self.update(key, value, expected, None).await
        }
    }

    async fn put_options(&self, ttl: Option<Duration>) -> Result<Option<PutOptions>> {
        let Some(ttl) = ttl else { return Ok(None) };
        {
            let guard = self.lease.lock();
            if let Some(l) = guard.as_ref() {
                if l.granted_at.elapsed() < LEASE_REUSE {
                    return Ok(Some(PutOptions::new().with_lease(l.id)));
                }
            }
        }
        let secs = (ttl + LEASE_REUSE).as_secs() as i64;
        let resp = self.client.lease_client().grant(secs, None).await?;
        let id = resp.id();
        *self.lease.lock() = Some(LeaseCache {
            id,
            granted_at: Instant::now(),
        });
        Ok(Some(PutOptions::new().with_lease(id)))
    }
}

/// The end of the range covering every key with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
