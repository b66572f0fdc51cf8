//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's
//! `leaderelection` package does it for kube-scheduler and kube-controller-manager.
//!
//! The rules (client-go `tryAcquireOrRenew`):
//! - No lease: create one holding it (`leaseTransitions` 0).
//! - Someone else holds it and the record was last *observed to change* less than
//!   `leaseDuration` ago (by our own monotonic clock, so clock skew between hosts does
//!   not matter): wait.
//! - Otherwise write ourselves as holder with the `resourceVersion` we read (optimistic
//!   concurrency: of two contenders only one update succeeds); `acquireTime` and
//!   `leaseTransitions + 1` when the holder changes.
//! - The leader renews every `retryPeriod`; if it could not renew for `renewDeadline`
//!   it has lost leadership and the process exits (upstream: `klog.Fatalf("leaderelection
//!   lost")`). `renewDeadline < leaseDuration` guarantees the old leader stops before a
//!   new one can take over.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// Re-exported for the flag definitions that have always imported it from here.
pub use crate::duration::parse_go_duration;

/// The leader election flags of upstream's component-base `LeaderElectionConfiguration`.
#[derive(Debug, Clone, Args)]
pub struct LeaderElectionArgs {
    /// Start a leader election client and gain leadership before executing the main loop.
    #[arg(
        long = "leader-elect",
        num_args = 0..=1,
        default_value = "true",
        default_missing_value = "true",
        value_parser = crate::flags::parse_go_bool,
    )]
    pub leader_elect: bool,
    /// How long non-leader candidates wait after observing a leadership renewal before
    /// trying to acquire leadership.
    #[arg(long = "leader-elect-lease-duration", default_value = "15s", value_parser = parse_go_duration)]
    pub lease_duration: Duration,
    /// How long the acting leader keeps retrying to renew before it gives up leadership.
    #[arg(long = "leader-elect-renew-deadline", default_value = "10s", value_parser = parse_go_duration)]
    pub renew_deadline: Duration,
    /// How long clients wait between attempts to acquire and renew leadership.
    #[arg(long = "leader-elect-retry-period", default_value = "2s", value_parser = parse_go_duration)]
    pub retry_period: Duration,
    /// The type of resource object used for locking; only `leases` is supported.
    #[arg(long = "leader-elect-resource-lock", default_value = "leases")]
    pub resource_lock: String,
    /// The namespace of the lock object.
    #[arg(
        long = "leader-elect-resource-namespace",
        default_value = "kube-system"
    )]
    pub resource_namespace: String,
    /// The name of the lock object (defaults to the component's name).
    #[arg(long = "leader-elect-resource-name")]
    pub resource_name: Option<String>,
}

impl Default for LeaderElectionArgs {
    fn default() -> Self {
        Self {
            leader_elect: true,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            resource_lock: "leases".to_string(),
            resource_namespace: "kube-system".to_string(),
            resource_name: None,
        }
    }
}

impl LeaderElectionArgs {
    /// Upstream's validation: `leaseDuration > renewDeadline > retryPeriod * 1.2`.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.resource_lock != "leases" {
            anyhow::bail!(
                "--leader-elect-resource-lock={:?} is not supported (only \"leases\")",
                self.resource_lock
            );
        }
        if self.lease_duration <= self.renew_deadline {
            anyhow::bail!("leaseDuration must be greater than renewDeadline");
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            anyhow::bail!("renewDeadline must be greater than retryPeriod*JitterFactor");
        }
        if self.retry_period.is_zero() {
            anyhow::bail!("retryPeriod must be greater than zero");
        }
        Ok(())
    }
}

/// client-go's `JitterFactor` for the acquire loop.
const JITTER_FACTOR: f64 = 1.2;

/// The fields of a Lease that leader election reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderRecord {
    pub holder_identity: String,
    pub lease_duration_seconds: i32,
    pub acquire_time: Option<Timestamp>,
    pub renew_time: Option<Timestamp>,
    pub lease_transitions: i32,
}

impl LeaderRecord {
    fn from_spec(spec: &LeaseSpec) -> Self {
        Self {
            holder_identity: spec.holder_identity.clone().unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
            acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            lease_transitions: spec.lease_transitions.unwrap_or(0),
        }
    }

    fn to_spec(&self) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.holder_identity.clone()),
            lease_duration_seconds: Some(self.lease_duration_seconds),
            acquire_time: self.acquire_time.map(MicroTime),
            renew_time: self.renew_time.map(MicroTime),
            lease_transitions: Some(self.lease_transitions),
            ..LeaseSpec::default()
        }
    }
}

/// What to do after reading the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create the lease with this record (it did not exist).
    Create(LeaderRecord),
    /// Write this record over the one read (conditional on its resourceVersion).
    Update(LeaderRecord),
    /// Someone else holds a valid lease.
    Wait,
}

/// The lease state machine without IO: it remembers the last record it saw and when
/// (on the caller's monotonic clock) that record last changed.
#[derive(Debug)]
pub struct Elector {
    identity: String,
    lease_duration: Duration,
    observed: Option<(LeaderRecord, Instant)>,
}

impl Elector {
    pub fn new(identity: String, lease_duration: Duration) -> Self {
        Self {
            identity,
            lease_duration,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Decides from the current record (`None`: no lease) at monotonic time `now` and
    /// wall time `wall`.
    pub fn decide(
        &mut self,
        current: Option<&LeaderRecord>,
        now: Instant,
        wall: Timestamp,
    ) -> Decision {
        let lease_duration_seconds =
            i32::try_from(self.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(current) = current else {
            return Decision::Create(LeaderRecord {
                holder_identity: self.identity.clone(),
                lease_duration_seconds,
                acquire_time: Some(wall),
                renew_time: Some(wall),
                lease_transitions: 0,
            });
        };
        // Remember when the record last changed by our own clock.
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|(seen, _)| seen != current);
        if changed {
            self.observed = Some((current.clone(), now));
        }
        let observed_at = self.observed.as_ref().map_or(now, |(_, at)| *at);
        let held_by_other =
            !current.holder_identity.is_empty() && current.holder_identity != self.identity;
        // A released lease (empty holder) is free at once; otherwise trust the duration
        // written in the record, as client-go does.
        let record_duration =
            Duration::from_secs(u64::try_from(current.lease_duration_seconds.max(0)).unwrap_or(0));
        if held_by_other && observed_at + record_duration > now {
            return Decision::Wait;
        }
        let mut next = LeaderRecord {
            holder_identity: self.identity.clone(),
            lease_duration_seconds,
            acquire_time: current.acquire_time,
            renew_time: Some(wall),
            lease_transitions: current.lease_transitions,
        };
        if current.holder_identity != self.identity {
            next.acquire_time = Some(wall);
            next.lease_transitions = current.lease_transitions.saturating_add(1);
        }
        Decision::Update(next)
    }

    /// Records a successful write so the next read of the same record does not count
    /// as a change.
    pub fn written(&mut self, record: LeaderRecord, now: Instant) {
        self.observed = Some((record, now));
    }

    /// Whether our last observation says we are the holder.
    pub fn is_leader(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|(r, _)| r.holder_identity == self.identity)
    }
}

/// The lease client: one Api<Lease> and one elector.
struct LeaseLock {
    api: Api<Lease>,
    name: String,
    elector: Elector,
}

impl LeaseLock {
    /// One `tryAcquireOrRenew`: `Ok(true)` when we hold the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> anyhow::Result<bool> {
        let existing = self
            .api
            .get_opt(&self.name)
            .await
            .context("reading the leader lease")?;
        let now = Instant::now();
        // The apiserver keeps microseconds; compare like with like.
        let wall = truncate_to_micros(Timestamp::now());
        let current = existing
            .as_ref()
            .map(|l| LeaderRecord::from_spec(&l.spec.clone().unwrap_or_default()));
        match self.elector.decide(current.as_ref(), now, wall) {
            Decision::Wait => Ok(false),
            Decision::Create(record) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(record.to_spec()),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => {
                        self.elector.written(record, now);
                        Ok(true)
                    }
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                    Err(err) => Err(err).context("creating the leader lease"),
                }
            }
            Decision::Update(record) => {
                let Some(mut lease) = existing else {
                    return Ok(false);
                };
                let mut spec = lease.spec.take().unwrap_or_default();
                let fresh = record.to_spec();
                spec.holder_identity = fresh.holder_identity;
                spec.lease_duration_seconds = fresh.lease_duration_seconds;
                spec.acquire_time = fresh.acquire_time;
                spec.renew_time = fresh.renew_time;
                spec.lease_transitions = fresh.lease_transitions;
                lease.spec = Some(spec);
                // `lease.metadata.resourceVersion` is the one we read: a concurrent
                // writer makes this a 409.
                match self
                    .api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => {
                        self.elector.written(record, now);
                        Ok(true)
                    }
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                    Err(err) => Err(err).context("updating the leader lease"),
                }
            }
        }
    }

    /// Gives the lease up (holder cleared, duration 1 s) so a successor need not wait.
    async fn release(&mut self) -> anyhow::Result<()> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.take().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.elector.identity()) {
            return Ok(());
        }
        let wall = MicroTime(Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(wall.clone());
        spec.acquire_time = Some(wall);
        lease.spec = Some(spec);
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }
}

fn truncate_to_micros(t: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)
}

/// A small jitter (0..=factor × period) without pulling in an RNG.
fn jittered(period: Duration, factor: f64) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(Instant::now()) as f64 / u64::MAX as f64;
    period + period.mul_f64(factor * random)
}

/// Runs `run` once this process holds the lease, renewing it meanwhile.
///
/// - `--leader-elect=false`: just runs `run`.
/// - Leadership lost (no successful renewal within the renew deadline): `run` is
///   dropped and `Err("leaderelection lost")` returned — callers exit the process, as
///   upstream does.
/// - `run` finishes: the lease is released and `run`'s result returned.
pub async fn run_leader_elected<F, Fut>(
    client: kube::Client,
    args: &LeaderElectionArgs,
    default_name: &str,
    identity: String,
    run: F,
) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if !args.leader_elect {
        return run().await;
    }
    args.validate()?;
    let name = args
        .resource_name
        .clone()
        .unwrap_or_else(|| default_name.to_string());
    let mut lock = LeaseLock {
        api: Api::namespaced(client, &args.resource_namespace),
        name: name.clone(),
        elector: Elector::new(identity.clone(), args.lease_duration),
    };
    let lease_desc = format!("{}/{}", args.resource_namespace, name);
    tracing::info!(lease = %lease_desc, %identity, "attempting to acquire leader lease");

    // Acquire: JitterUntil(retryPeriod, 1.2).
    loop {
        match lock.try_acquire_or_renew().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(lease = %lease_desc, "error retrieving resource lock: {err:#}")
            }
        }
        tokio::time::sleep(jittered(args.retry_period, JITTER_FACTOR)).await;
    }
    tracing::info!(lease = %lease_desc, %identity, "successfully acquired lease");

    let renew = async {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(args.retry_period).await;
            let attempt =
                tokio::time::timeout(args.renew_deadline, lock.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(true)) => last_renewal = Instant::now(),
                Ok(Ok(false)) => {
                    tracing::warn!(lease = %lease_desc, "lease held by another candidate")
                }
                Ok(Err(err)) => {
                    tracing::warn!(lease = %lease_desc, "failed to renew lease: {err:#}")
                }
                Err(_) => tracing::warn!(lease = %lease_desc, "renewing the lease timed out"),
            }
            if last_renewal.elapsed() >= args.renew_deadline {
                tracing::error!(lease = %lease_desc, "failed to renew lease: timed out waiting for the condition");
                return;
            }
        }
    };

    let outcome = tokio::select! {
        result = run() => Some(result),
        () = renew => None,
    };
    match outcome {
        Some(result) => {
            if let Err(err) = lock.release().await {
                tracing::warn!(lease = %lease_desc, "releasing the lease: {err:#}");
            }
            result
        }
        None => anyhow::bail!("leaderelection lost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        le: LeaderElectionArgs,
    }

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("timestamp")
    }

    #[test]
    fn flags_parse_with_go_syntax() {
        let cli = Cli::parse_from(["x"]);
        assert!(cli.le.leader_elect);
        assert_eq!(cli.le.lease_duration, Duration::from_secs(15));
        assert_eq!(cli.le.renew_deadline, Duration::from_secs(10));
        assert_eq!(cli.le.retry_period, Duration::from_secs(2));
        assert_eq!(cli.le.resource_namespace, "kube-system");
        let cli = Cli::parse_from([
            "x",
            "--leader-elect=false",
            "--leader-elect-lease-duration=1m30s",
            "--leader-elect-retry-period=500ms",
        ]);
        assert!(!cli.le.leader_elect);
        assert_eq!(cli.le.lease_duration, Duration::from_secs(90));
        assert_eq!(cli.le.retry_period, Duration::from_millis(500));
        let cli = Cli::parse_from(["x", "--leader-elect"]);
        assert!(cli.le.leader_elect);
        assert!(Cli::try_parse_from(["x", "--leader-elect-renew-deadline=10"]).is_err());
    }

    #[test]
    fn validation_matches_upstream() {
        let mut args = LeaderElectionArgs::default();
        args.validate().expect("defaults valid");
        args.renew_deadline = Duration::from_secs(15);
        assert!(args.validate().is_err());
        args.renew_deadline = Duration::from_secs(2);
        assert!(
            args.validate().is_err(),
            "renew deadline must exceed 1.2 × retry period"
        );
    }

    #[test]
    fn creates_missing_lease() {
        let mut e = Elector::new("a".into(), Duration::from_secs(15));
        let d = e.decide(None, Instant::now(), ts(0));
        let Decision::Create(r) = d else {
            panic!("{d:?}")
        };
        assert_eq!(r.holder_identity, "a");
        assert_eq!(r.lease_duration_seconds, 15);
        assert_eq!(r.lease_transitions, 0);
        assert_eq!(r.acquire_time, Some(ts(0)));
        assert_eq!(r.renew_time, Some(ts(0)));
    }

    #[test]
    fn waits_while_other_holder_renews_and_takes_over_after_duration() {
        let start = Instant::now();
        let held = |renew: i64| LeaderRecord {
            holder_identity: "b".into(),
            lease_duration_seconds: 15,
            acquire_time: Some(ts(0)),
            renew_time: Some(ts(renew)),
            lease_transitions: 3,
        };
        let mut e = Elector::new("a".into(), Duration::from_secs(15));
        assert_eq!(e.decide(Some(&held(0)), start, ts(0)), Decision::Wait);
        // b renews at +10 s: the observation clock restarts.
        assert_eq!(
            e.decide(Some(&held(10)), start + Duration::from_secs(10), ts(10)),
            Decision::Wait
        );
        // Unchanged until +24 s: still within 15 s of the last observed change.
        assert_eq!(
            e.decide(Some(&held(10)), start + Duration::from_secs(24), ts(24)),
            Decision::Wait
        );
        // At +26 s the lease has expired by our clock: take over.
        let d = e.decide(Some(&held(10)), start + Duration::from_secs(26), ts(26));
        let Decision::Update(r) = d else {
            panic!("{d:?}")
        };
        assert_eq!(r.holder_identity, "a");
        assert_eq!(r.lease_transitions, 4);
        assert_eq!(r.acquire_time, Some(ts(26)));
        assert_eq!(r.renew_time, Some(ts(26)));
        e.written(r, start + Duration::from_secs(26));
        assert!(e.is_leader());
    }

    #[test]
    fn skewed_renew_time_does_not_matter() {
        // The holder's clock is far behind ours; we still wait a full duration from
        // when we first saw the record.
        let start = Instant::now();
        let rec = LeaderRecord {
            holder_identity: "b".into(),
            lease_duration_seconds: 15,
            acquire_time: Some(ts(-10_000)),
            renew_time: Some(ts(-10_000)),
            lease_transitions: 0,
        };
        let mut e = Elector::new("a".into(), Duration::from_secs(15));
        assert_eq!(e.decide(Some(&rec), start, ts(0)), Decision::Wait);
        assert!(matches!(
            e.decide(Some(&rec), start + Duration::from_secs(16), ts(16)),
            Decision::Update(_)
        ));
    }

    #[test]
    fn renewal_keeps_acquire_time_and_transitions() {
        let now = Instant::now();
        let mine = LeaderRecord {
            holder_identity: "a".into(),
            lease_duration_seconds: 15,
            acquire_time: Some(ts(0)),
            renew_time: Some(ts(2)),
            lease_transitions: 7,
        };
        let mut e = Elector::new("a".into(), Duration::from_secs(15));
        let d = e.decide(Some(&mine), now, ts(4));
        assert_eq!(
            d,
            Decision::Update(LeaderRecord {
                renew_time: Some(ts(4)),
                ..mine.clone()
            })
        );
    }

    #[test]
    fn released_lease_is_taken_at_once() {
        let rec = LeaderRecord {
            holder_identity: String::new(),
            lease_duration_seconds: 1,
            acquire_time: Some(ts(0)),
            renew_time: Some(ts(0)),
            lease_transitions: 2,
        };
        let mut e = Elector::new("a".into(), Duration::from_secs(15));
        let d = e.decide(Some(&rec), Instant::now(), ts(0));
        let Decision::Update(r) = d else {
            panic!("{d:?}")
        };
        assert_eq!(r.lease_transitions, 3);
        assert_eq!(r.lease_duration_seconds, 15);
    }
}
