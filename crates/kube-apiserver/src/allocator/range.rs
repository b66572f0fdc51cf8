//! One allocation range persisted in etcd as upstream's `RangeAllocation`
//! (`{"range": "10.254.0.0/16", "data": <base64 bitmap>}`), changed only by
//! compare-and-swap on the key's revision so that several apiservers sharing one etcd
//! never hand out the same value.

use api_types::ApiError;
use base64::Engine;
use serde_json::{json, Value};

use super::bitmap::Bitmap;
use crate::storage::{Storage, StorageError, Stored};

/// CAS attempts before giving up (other apiservers keep winning).
const MAX_ATTEMPTS: usize = 100;

struct Snapshot {
    bits: Bitmap,
    /// etcd mod_revision of the key; 0 when absent.
    revision: i64,
}

pub struct PersistedRange {
    key: String,
    /// The configured range, as stored in `range`.
    range: String,
    size: u64,
    /// Last known state; `modify` serializes this apiserver's changes through it.
    state: tokio::sync::Mutex<Option<Snapshot>>,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

impl PersistedRange {
    pub fn new(key: &str, range: String, size: u64) -> PersistedRange {
        PersistedRange {
            key: key.to_string(),
            range,
            size,
            state: tokio::sync::Mutex::new(None),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Encodes the stored JSON object.
    fn encode(&self, bits: &Bitmap) -> Vec<u8> {
        let data = base64::engine::general_purpose::STANDARD.encode(bits.to_bytes());
        let v = json!({
            "kind": "RangeAllocation",
            "apiVersion": "v1",
            "metadata": {"name": ""},
            "range": self.range,
            "data": data,
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// Decodes a stored value. A different `range` (the flag changed) starts empty;
    /// the start-up repair re-marks every existing Service.
    fn decode(&self, stored: &Stored) -> Snapshot {
        let parsed: Option<Value> = serde_json::from_slice(&stored.value).ok();
        let range = parsed
            .as_ref()
            .and_then(|v| v.get("range"))
            .and_then(Value::as_str);
        let bits = match (
            range,
            parsed
                .as_ref()
                .and_then(|v| v.get("data"))
                .and_then(Value::as_str),
        ) {
            (Some(r), data) if r == self.range => {
                let bytes = data
                    .map(|d| base64::engine::general_purpose::STANDARD.decode(d))
                    .transpose();
                match bytes {
                    Ok(b) => Bitmap::from_bytes(self.size, &b.unwrap_or_default()),
                    Err(e) => {
                        tracing::error!(key = %self.key, error = %e, "corrupt allocation bitmap; starting empty");
                        Bitmap::new(self.size)
                    }
                }
            }
            (other, _) => {
                tracing::warn!(key = %self.key, stored = ?other, configured = %self.range, "allocation range changed; starting empty");
                Bitmap::new(self.size)
            }
        };
        Snapshot {
            bits,
            revision: stored.mod_revision,
        }
    }

    async fn load(&self, storage: &Storage) -> Result<Snapshot, ApiError> {
        Ok(match storage.get(&self.key).await.map_err(internal)? {
            Some(stored) => self.decode(&stored),
            None => Snapshot {
                bits: Bitmap::new(self.size),
                revision: 0,
            },
        })
    }

    /// Runs `change` on the current bitmap and persists the result with a CAS, re-running
    /// it on the fresh state when another apiserver won the race. With `dry_run` (or no
    /// change) nothing is written. `change` must be idempotent on a fresh bitmap.
    pub async fn modify<T>(
        &self,
        storage: &Storage,
        dry_run: bool,
        mut change: impl FnMut(&mut Bitmap) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut state = self.state.lock().await;
        for _ in 0..MAX_ATTEMPTS {
            let (snapshot, fresh) = match state.take() {
                Some(s) => (s, false),
                None => (self.load(storage).await?, true),
            };
            let mut bits = snapshot.bits.clone();
            let result = match change(&mut bits) {
                Ok(r) => r,
                // Our copy may be stale (another apiserver released the value): a
                // refusal only counts when made on what etcd holds now.
                Err(_) if !fresh => continue,
                Err(e) => {
                    *state = Some(snapshot);
                    return Err(e);
                }
            };
            if dry_run || !bits.is_dirty() {
                *state = Some(snapshot);
                return Ok(result);
            }
            match storage
                .put_if_revision(&self.key, self.encode(&bits), snapshot.revision)
                .await
            {
                Ok(revision) => {
                    bits.mark_clean();
                    *state = Some(Snapshot { bits, revision });
                    return Ok(result);
                }
                Err(StorageError::Conflict(current)) => *state = Some(self.decode(&current)),
                // Created meanwhile (we thought it absent) or deleted: re-read.
                Err(StorageError::AlreadyExists) | Err(StorageError::NotFound) => *state = None,
                Err(e) => return Err(internal(e)),
            }
        }
        Err(internal(format!(
            "too much contention allocating from {}",
            self.key
        )))
    }
}
