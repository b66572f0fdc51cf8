//! Group commit of creates. Creates that arrive while earlier ones are in flight to etcd
//! go out together as one txn of nested txns. Each nested txn is the same
//! create-if-absent as a lone create (`create_revision == 0` → put) and succeeds or fails
//! on its own. All of them share the one etcd revision of the outer txn.
//!
//! One txn is in flight at a time, and the next batch gathers meanwhile. There is no
//! waiting for a batch to fill: a create that finds nothing in flight is sent at once,
//! so an idle apiserver adds no latency. Under load, etcd's cost per txn (raft entry,
//! gRPC call, the apply loop) is paid once per batch, not once per object. (Two txns
//! in flight made smaller batches: etcd spent ~8 µs more CPU per create in the
//! benchmark, at the same throughput.)

use etcd_client::{Client, Compare, CompareOp, KvClient, PutOptions, Txn, TxnOp, TxnOpResponse};
use tokio::sync::{mpsc, oneshot};

use super::{Result, StorageError};

/// Nested txns per batch; etcd's `--max-txn-ops` defaults to 128.
const MAX_OPS: usize = 64;
/// Value bytes per batch, well under etcd's 1.5 MiB `--max-request-bytes`. A larger
/// value goes alone.
const MAX_BYTES: usize = 512 * 1024;

struct Pending {
    key: String,
    value: Vec<u8>,
    opts: Option<PutOptions>,
    done: oneshot::Sender<Result<i64>>,
}

/// The queue in front of the create txns.
pub(super) struct CreateBatcher {
    tx: mpsc::UnboundedSender<Pending>,
}

impl CreateBatcher {
    pub(super) fn start(client: Client) -> CreateBatcher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(client.kv_client(), rx));
        CreateBatcher { tx }
    }

    /// Creates `key` if absent; the revision of the write, or `AlreadyExists`.
    pub(super) async fn create(
        &self,
        key: &str,
        value: Vec<u8>,
        opts: Option<PutOptions>,
    ) -> Result<i64> {
        let (done, rx) = oneshot::channel();
        let pending = Pending {
            key: key.to_string(),
            value,
            opts,
            done,
        };
        if let Err(mpsc::error::SendError(p)) = self.tx.send(pending) {
            // The batching task is gone: the runtime is shutting down.
            return Err(StorageError::Etcd(etcd_client::Error::InvalidArgs(
                format!("create of {} after the storage shut down", p.key),
            )));
        }
        rx.await.unwrap_or_else(|_| {
            Err(StorageError::Etcd(etcd_client::Error::InvalidArgs(
                "create batch dropped".into(),
            )))
        })
    }
}

async fn run(kv: KvClient, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = first.value.len();
        let mut batch = vec![first];
        while batch.len() < MAX_OPS && bytes < MAX_BYTES {
            let Ok(p) = rx.try_recv() else { break };
            // etcd refuses a txn that writes one key twice; a too-big value waits
            // for the next batch.
            if bytes + p.value.len() > MAX_BYTES || batch.iter().any(|b| b.key == p.key) {
                carried = Some(p);
                break;
            }
            bytes += p.value.len();
            batch.push(p);
        }
        commit(kv.clone(), batch).await;
    }
}

fn create_txn(key: &str, value: Vec<u8>, opts: Option<PutOptions>) -> Txn {
    Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key, value, opts)])
}

async fn commit_one(mut kv: KvClient, p: Pending) {
    let result = kv
        .txn(create_txn(&p.key, p.value, p.opts))
        .await
        .map_err(StorageError::from)
        .and_then(|resp| match resp.succeeded() {
            true => Ok(resp.header().map(|h| h.revision()).unwrap_or(0)),
            false => Err(StorageError::AlreadyExists),
        });
    let _ = p.done.send(result);
}

async fn commit(mut kv: KvClient, mut batch: Vec<Pending>) {
    if batch.len() == 1 {
        let p = batch.pop().expect("one pending create");
        return commit_one(kv, p).await;
    }
    // The values move into the request; a failed batch is retried one by one, so
    // keep them until etcd has answered.
    let ops: Vec<TxnOp> = batch
        .iter()
        .map(|p| TxnOp::txn(create_txn(&p.key, p.value.clone(), p.opts.clone())))
        .collect();
    match kv.txn(Txn::new().and_then(ops)).await {
        Ok(resp) => {
            let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
            let results = resp.op_responses();
            for (p, op) in batch.into_iter().zip(results) {
                let result = match op {
                    TxnOpResponse::Txn(t) if t.succeeded() => Ok(revision),
                    _ => Err(StorageError::AlreadyExists),
                };
                let _ = p.done.send(result);
            }
        }
        Err(e) => {
            // One bad member (or an etcd limit) fails the whole txn: each create then
            // gets its own answer.
            tracing::debug!(error = %e, size = batch.len(), "batched create failed; retrying one by one");
            let retries = batch.into_iter().map(|p| commit_one(kv.clone(), p));
            futures::future::join_all(retries).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Concurrent creates against a real etcd share txns, and each gets its own answer
    /// whether it shared one or not: a member that makes etcd refuse the whole txn (a
    /// lease that does not exist) fails alone, a taken key gets `AlreadyExists`.
    #[tokio::test]
    async fn each_batched_create_gets_its_own_answer() {
        let etcd = test_support::Etcd::start().expect("etcd starts");
        let client = Client::connect([etcd.endpoint()], None)
            .await
            .expect("etcd connects");
        let batcher = CreateBatcher::start(client.clone());
        let create_all = |keys: Vec<(String, Option<PutOptions>)>| {
            let batcher = &batcher;
            futures::future::join_all(keys.into_iter().map(|(key, opts)| async move {
                let result = batcher.create(&key, vec![b'x'; 100], opts).await;
                (key, result)
            }))
        };

        let first = create_all((0..20).map(|i| (format!("/t/a{i}"), None)).collect()).await;
        let mut revisions: Vec<i64> = first
            .iter()
            .map(|(key, r)| *r.as_ref().unwrap_or_else(|e| panic!("{key}: {e}")))
            .collect();
        revisions.sort_unstable();
        revisions.dedup();
        assert!(revisions.len() < 20, "20 concurrent creates shared no txn");

        let bad_lease = Some(PutOptions::new().with_lease(0x7fff_0000_0000));
        let second = create_all(
            (0..20)
                .map(|i| match i {
                    7 => ("/t/a3".to_string(), None),
                    13 => ("/t/bad-lease".to_string(), bad_lease.clone()),
                    _ => (format!("/t/b{i}"), None),
                })
                .collect(),
        )
        .await;
        for (key, result) in &second {
            match (key.as_str(), result) {
                ("/t/a3", Err(StorageError::AlreadyExists)) => {}
                ("/t/bad-lease", Err(StorageError::Etcd(e))) => {
                    assert!(e.to_string().contains("lease not found"), "{e}")
                }
                (k, Ok(_)) if k.starts_with("/t/b") => {}
                (k, other) => panic!("{k}: {other:?}"),
            }
        }
        let mut kv = client.kv_client();
        let stored = kv
            .get("/t/", Some(etcd_client::GetOptions::new().with_prefix()))
            .await
            .expect("get");
        let keys: Vec<_> = stored
            .kvs()
            .iter()
            .map(|kv| kv.key_str().unwrap_or_default())
            .collect();
        assert_eq!(keys.len(), 38, "{keys:?}");
        assert!(!keys.contains(&"/t/bad-lease"));
    }
}
