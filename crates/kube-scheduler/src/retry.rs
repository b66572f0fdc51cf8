//! Retrying writes the apiserver throttled, as client-go does: a 429 is retried after
//! its Retry-After (default 1 s), up to 10 times.

use std::future::Future;
use std::time::Duration;

/// client-go's `maxRetries` for throttled requests.
const MAX_RETRIES: u32 = 10;

/// The delay a throttled response asks for, or `None` if it is not a 429.
pub fn throttled_delay(err: &kube::Error) -> Option<Duration> {
    match err {
        kube::Error::Api(status) if status.code == 429 => {
            let secs = status
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|s| *s > 0)
                .unwrap_or(1);
            Some(Duration::from_secs(u64::from(secs)))
        }
        _ => None,
    }
}

/// Runs `call` until it is not throttled (or retries run out).
pub async fn with_retries<T, F, Fut>(mut call: F) -> kube::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = kube::Result<T>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(err) if attempt < MAX_RETRIES => match throttled_delay(&err) {
                Some(delay) => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
                None => return Err(err),
            },
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn status(code: u16) -> kube::Error {
        let mut s = kube::core::Status::failure("slow down", "TooManyRequests");
        s.code = code;
        kube::Error::Api(s.boxed())
    }

    #[tokio::test]
    async fn retries_throttled_calls_only() {
        let calls = AtomicU32::new(0);
        let r: kube::Result<u32> = with_retries(|| async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 1 {
                Err(status(429))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(r.ok(), Some(1));
        let calls = AtomicU32::new(0);
        let r: kube::Result<u32> = with_retries(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(status(409))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
