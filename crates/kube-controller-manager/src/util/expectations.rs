//! Controller expectations, as upstream's `UIDTrackingControllerExpectations`: a
//! controller that created N pods (or deleted some by name) does not act on its
//! pod cache again until the watch has shown it those creations and deletions, so
//! a lagging cache never makes it create or delete twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Upstream's `ExpectationsTimeout`: stale expectations are ignored after this.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Entry {
    adds: i64,
    deletes: HashSet<String>,
    set_at: Instant,
}

#[derive(Debug, Default)]
pub struct Expectations {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Expectations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the controller `key` may trust its cache: everything it expected was
    /// observed, or the expectation expired, or it never set any.
    pub fn satisfied(&self, key: &str) -> bool {
        let entries = self.entries.lock();
        match entries.get(key) {
            None => true,
            Some(e) => {
                (e.adds <= 0 && e.deletes.is_empty()) || e.set_at.elapsed() > EXPECTATIONS_TIMEOUT
            }
        }
    }

    /// About to create `n` pods.
    pub fn expect_creations(&self, key: &str, n: usize) {
        let mut entries = self.entries.lock();
        entries.insert(
            key.to_string(),
            Entry {
                adds: i64::try_from(n).unwrap_or(i64::MAX),
                deletes: HashSet::new(),
                set_at: Instant::now(),
            },
        );
    }

    /// About to delete these pods (`namespace/name` keys).
    pub fn expect_deletions(&self, key: &str, pods: impl IntoIterator<Item = String>) {
        let mut entries = self.entries.lock();
        entries.insert(
            key.to_string(),
            Entry {
                adds: 0,
                deletes: pods.into_iter().collect(),
                set_at: Instant::now(),
            },
        );
    }

    /// A pod of `key` appeared (or a create failed and will never appear).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.entries.lock().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// A pod of `key` went away or got a deletion timestamp (or its delete failed).
    pub fn deletion_observed(&self, key: &str, pod: &str) {
        if let Some(e) = self.entries.lock().get_mut(key) {
            e.deletes.remove(pod);
        }
    }

    /// The controller object itself is gone.
    pub fn forget(&self, key: &str) {
        self.entries.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_and_deletions_must_be_observed() {
        let e = Expectations::new();
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 2);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));

        e.expect_deletions("ns/rs", ["ns/a".to_string(), "ns/b".to_string()]);
        e.deletion_observed("ns/rs", "ns/a");
        e.deletion_observed("ns/rs", "ns/a");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 1);
        e.forget("ns/rs");
        assert!(e.satisfied("ns/rs"));
    }
}
