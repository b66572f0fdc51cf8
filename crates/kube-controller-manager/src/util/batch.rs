//! Upstream `slowStartBatch` for controllers outside the replica controller
//! (the replica controller keeps its own copy in `replicaset::sync`).

use futures::future::join_all;

pub struct BatchOutcome {
    pub succeeded: usize,
    pub error: Option<kube::Error>,
}

/// Batches of 1, 2, 4, ... run in parallel; the first failing batch stops the rest,
/// so a quota or admission error costs one call, not N.
pub async fn slow_start_batch<F, Fut>(count: usize, make: F) -> BatchOutcome
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    let mut batch = 1usize;
    let mut succeeded = 0;
    let mut index = 0;
    while index < count {
        let size = batch.min(count - index);
        let results = join_all((index..index + size).map(&make)).await;
        index += size;
        let mut error = None;
        for r in results {
            match r {
                Ok(()) => succeeded += 1,
                Err(err) => {
                    error.get_or_insert(err);
                }
            }
        }
        if error.is_some() {
            return BatchOutcome { succeeded, error };
        }
        batch *= 2;
    }
    BatchOutcome {
        succeeded,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stops_after_the_failing_batch() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let outcome = slow_start_batch(10, |i| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if i == 1 {
                    Err(kube::Error::LinesCodecMaxLineLengthExceeded)
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(outcome.succeeded, 2);
        assert!(outcome.error.is_some());
    }
}
