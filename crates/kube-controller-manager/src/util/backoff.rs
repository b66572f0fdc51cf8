//! Rate-limited requeue: per-key exponential backoff, as client-go's
//! `DefaultControllerRateLimiter` item limiter (5 ms doubling up to 1000 s).

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

#[derive(Debug)]
pub struct KeyBackoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Default for KeyBackoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(5), Duration::from_secs(1000))
    }
}

impl KeyBackoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The delay before retrying `key` after one more failure.
    pub fn next_delay(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock();
        let n = failures.entry(key.to_string()).or_insert(0);
        let exp = (*n).min(30);
        *n = n.saturating_add(1);
        self.base.saturating_mul(1u32 << exp).min(self.max)
    }

    /// A successful sync resets the key.
    pub fn forget(&self, key: &str) {
        self.failures.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_failure_and_resets() {
        let b = KeyBackoff::new(Duration::from_millis(5), Duration::from_millis(30));
        assert_eq!(b.next_delay("a"), Duration::from_millis(5));
        assert_eq!(b.next_delay("a"), Duration::from_millis(10));
        assert_eq!(b.next_delay("a"), Duration::from_millis(20));
        assert_eq!(b.next_delay("a"), Duration::from_millis(30));
        assert_eq!(b.next_delay("b"), Duration::from_millis(5));
        b.forget("a");
        assert_eq!(b.next_delay("a"), Duration::from_millis(5));
    }
}
