//! The delay before a job replaces failed pods (upstream `backoff_utils.go`):
//! 10 s after the first consecutive failure, doubling, at most 6 minutes; a
//! success resets the count. Failures are timed by their containers' finish time,
//! else by when this controller first saw them failed.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::Pod;
use parking_lot::Mutex;

use crate::util::pod::phase;

pub const BASE_SECS: i64 = 10;
pub const MAX_SECS: i64 = 6 * 60;

/// Delay after `failures` consecutive failures.
pub fn delay_secs(failures: u32) -> i64 {
    if failures == 0 {
        return 0;
    }
    BASE_SECS
        .saturating_mul(1i64 << (failures - 1).min(20))
        .min(MAX_SECS)
}

#[derive(Debug, Default)]
struct Record {
    seen: HashSet<String>,
    /// (finish time, succeeded) of every finished pod seen.
    finished: Vec<(i64, bool)>,
}

/// Per-job memory of finished pods, so a failure's time is stable across syncs.
#[derive(Debug, Default)]
pub struct PodBackoff {
    records: Mutex<HashMap<String, Record>>,
}

fn finish_time(pod: &Pod) -> Option<i64> {
    let status = pod.status.as_ref()?;
    let terminated = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0.as_second())
        .max();
    terminated.or_else(|| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready" && c.status == "False")
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0.as_second())
    })
}

impl PodBackoff {
    /// Seconds to wait before creating pods for `job` at `now` (0: go ahead).
    pub fn remaining(&self, job: &str, pods: &[Pod], now: i64) -> i64 {
        let mut records = self.records.lock();
        let rec = records.entry(job.to_string()).or_default();
        for p in pods {
            let ph = phase(p);
            if ph != "Failed" && ph != "Succeeded" {
                continue;
            }
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if rec.seen.insert(uid) {
                rec.finished
                    .push((finish_time(p).unwrap_or(now), ph == "Succeeded"));
            }
        }
        rec.finished.sort_by_key(|(t, _)| *t);
        let failures = rec.finished.iter().rev().take_while(|(_, ok)| !ok).count();
        let Some((last, _)) = rec.finished.iter().rev().find(|(_, ok)| !ok) else {
            return 0;
        };
        if failures == 0 {
            return 0;
        }
        (last + delay_secs(u32::try_from(failures).unwrap_or(u32::MAX)) - now).max(0)
    }

    pub fn forget(&self, job: &str) {
        self.records.lock().remove(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(uid: &str, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn delays_double_from_ten_seconds_to_six_minutes() {
        assert_eq!(
            [0, 1, 2, 3, 6, 7, 30].map(delay_secs),
            [0, 10, 20, 40, 320, 360, 360]
        );
    }

    #[test]
    fn failures_are_timed_when_first_seen_and_reset_by_success() {
        let b = PodBackoff::default();
        assert_eq!(b.remaining("j", &[pod("a", "Running")], 100), 0);
        assert_eq!(b.remaining("j", &[pod("a", "Failed")], 100), 10);
        assert_eq!(b.remaining("j", &[pod("a", "Failed")], 105), 5);
        assert_eq!(
            b.remaining("j", &[pod("a", "Failed"), pod("b", "Failed")], 110),
            20
        );
        assert_eq!(
            b.remaining(
                "j",
                &[
                    pod("a", "Failed"),
                    pod("b", "Failed"),
                    pod("c", "Succeeded")
                ],
                120
            ),
            0
        );
        b.forget("j");
        assert_eq!(b.remaining("j", &[], 200), 0);
    }
}
