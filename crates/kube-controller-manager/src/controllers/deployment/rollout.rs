//! The strategies: RollingUpdate (`rolling.go`), Recreate (`recreate.go`) and
//! proportional scaling of a deployment whose replicas changed mid-rollout
//! (`sync.go` `scale`).

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::ResourceExt;

use super::sync::Rollout;
use super::util::*;
use crate::util::owner::controller_of;
use crate::util::{ApiContext, Result};

/// Upstream `NewRSNewReplicas`: how big the new ReplicaSet may be right now.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let want = replicas(d);
    if is_recreate(d) {
        return want;
    }
    let current_pods = sum(all, rs_replicas);
    let max_total = want + max_surge(d);
    if current_pods >= max_total {
        return rs_replicas(new_rs);
    }
    let scale_up = (max_total - current_pods).min(want - rs_replicas(new_rs));
    rs_replicas(new_rs) + scale_up.max(0)
}

/// Upstream `isScalingEvent`: an active ReplicaSet was sized for another replica count.
pub fn is_scaling_event(r: &Rollout<'_>) -> bool {
    let want = replicas(&r.d);
    r.all_rss()
        .into_iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .any(|rs| desired_replicas_annotation(rs).is_some_and(|d| d != want))
}

/// Upstream `rolloutRolling`.
pub async fn rolling(r: &mut Rollout<'_>) -> Result<Option<Duration>> {
    if reconcile_new_rs(r).await? {
        return r.sync_rollout_status().await;
    }
    if reconcile_old_rss(r).await? {
        return r.sync_rollout_status().await;
    }
    let status = r.calculate_status();
    if deployment_complete(&r.d, &status) {
        r.cleanup().await?;
    }
    r.sync_rollout_status().await
}

async fn reconcile_new_rs(r: &mut Rollout<'_>) -> Result<bool> {
    let Some(new_rs) = r.new_rs.clone() else {
        return Ok(false);
    };
    let want = replicas(&r.d);
    let current = rs_replicas(&new_rs);
    if current == want {
        return Ok(false);
    }
    if current > want {
        return r.scale_rs(&new_rs.name_any(), want).await;
    }
    let target = new_rs_new_replicas(&r.d, &r.all_rss(), &new_rs);
    r.scale_rs(&new_rs.name_any(), target).await
}

async fn reconcile_old_rss(r: &mut Rollout<'_>) -> Result<bool> {
    let old_pods = r.old_rss.iter().map(rs_replicas).sum::<i32>();
    if old_pods == 0 {
        return Ok(false);
    }
    let all_pods = sum(&r.all_rss(), rs_replicas);
    let min_available = replicas(&r.d) - max_unavailable(&r.d);
    let new_unavailable = r
        .new_rs
        .as_ref()
        .map_or(0, |rs| rs_replicas(rs) - rs_available(rs));
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Ok(false);
    }
    let cleaned = cleanup_unhealthy(r, max_scaled_down).await?;
    let scaled = scale_down_old_for_rolling(r).await?;
    Ok(cleaned + scaled > 0)
}

fn by_creation(rss: &[ReplicaSet]) -> Vec<(String, i32, i32)> {
    let mut v: Vec<&ReplicaSet> = rss.iter().collect();
    v.sort_by_key(|rs| {
        (
            rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
            rs.name_any(),
        )
    });
    v.into_iter()
        .map(|rs| (rs.name_any(), rs_replicas(rs), rs_available(rs)))
        .collect()
}

/// Upstream `cleanupUnhealthyReplicas`: old pods that are not available go first.
async fn cleanup_unhealthy(r: &mut Rollout<'_>, max_cleanup: i32) -> Result<i32> {
    let mut total = 0;
    for (name, spec, available) in by_creation(&r.old_rss) {
        if total >= max_cleanup {
            break;
        }
        if spec == 0 || spec == available {
            continue;
        }
        let down = (max_cleanup - total).min(spec - available);
        r.scale_rs(&name, spec - down).await?;
        total += down;
    }
    Ok(total)
}

/// Upstream `scaleDownOldReplicaSetsForRollingUpdate`.
async fn scale_down_old_for_rolling(r: &mut Rollout<'_>) -> Result<i32> {
    let min_available = replicas(&r.d) - max_unavailable(&r.d);
    let available = sum(&r.all_rss(), rs_available);
    if available <= min_available {
        return Ok(0);
    }
    let total_down = available - min_available;
    let mut done = 0;
    for (name, spec, _) in by_creation(&r.old_rss) {
        if done >= total_down {
            break;
        }
        if spec == 0 {
            continue;
        }
        let down = spec.min(total_down - done);
        r.scale_rs(&name, spec - down).await?;
        done += down;
    }
    Ok(done)
}

/// Upstream `rolloutRecreate`: all old pods gone before the new ReplicaSet scales up.
pub async fn recreate(r: &mut Rollout<'_>, rss: Vec<ReplicaSet>) -> Result<Option<Duration>> {
    let mut scaled = false;
    for (name, spec, _) in by_creation(&r.old_rss) {
        if spec > 0 {
            scaled |= r.scale_rs(&name, 0).await?;
        }
    }
    if scaled {
        return r.sync_rollout_status().await;
    }
    if old_pods_running(r).await? {
        return r.sync_rollout_status().await;
    }
    if r.new_rs.is_none() {
        let d = r.d.clone();
        *r = Rollout::load(r.client, r.recorder, d, rss, true).await?;
    }
    if let Some(new_rs) = r.new_rs.clone() {
        r.scale_rs(&new_rs.name_any(), replicas(&r.d)).await?;
    }
    let status = r.calculate_status();
    if deployment_complete(&r.d, &status) {
        r.cleanup().await?;
    }
    r.sync_rollout_status().await
}

/// Upstream `oldPodsRunning`: any old ReplicaSet still reports pods, or a pod of
/// one is not terminated.
async fn old_pods_running(r: &Rollout<'_>) -> Result<bool> {
    if r.old_rss.iter().map(rs_status_replicas).sum::<i32>() > 0 {
        return Ok(true);
    }
    let old_uids: Vec<String> = r
        .old_rss
        .iter()
        .filter_map(|rs| rs.metadata.uid.clone())
        .collect();
    if old_uids.is_empty() {
        return Ok(false);
    }
    let ns = r.d.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(r.client.clone(), &ns);
    let list = pods
        .list(&ListParams::default())
        .await
        .ctx(|| format!("listing pods in {ns}"))?;
    Ok(list.items.iter().any(|p| {
        let owned = controller_of(&p.metadata).is_some_and(|c| old_uids.contains(&c.uid));
        let phase = crate::util::pod::phase(p);
        owned && phase != "Succeeded" && phase != "Failed"
    }))
}

/// Upstream `FindActiveOrLatest`.
fn active_or_latest(r: &Rollout<'_>) -> Option<String> {
    let active: Vec<&ReplicaSet> = r
        .all_rss()
        .into_iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .collect();
    match active.len() {
        0 => r.new_rs.as_ref().map(|rs| rs.name_any()).or_else(|| {
            r.old_rss
                .iter()
                .max_by_key(|rs| {
                    (
                        rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
                        rs.name_any(),
                    )
                })
                .map(|rs| rs.name_any())
        }),
        1 => Some(active[0].name_any()),
        _ => None,
    }
}

/// Upstream `scale`: a deployment resized mid-rollout resizes its ReplicaSets
/// proportionally to their current sizes.
pub async fn scale(r: &mut Rollout<'_>) -> Result<()> {
    let want = replicas(&r.d);
    if let Some(name) = active_or_latest(r) {
        r.scale_rs(&name, want).await?;
        return Ok(());
    }
    // Saturated: the new ReplicaSet is fully available; the old ones go.
    if let Some(new_rs) = r.new_rs.as_ref() {
        if rs_replicas(new_rs) == want
            && desired_replicas_annotation(new_rs) == Some(want)
            && rs_available(new_rs) == want
        {
            let old: Vec<String> = r
                .old_rss
                .iter()
                .filter(|rs| rs_replicas(rs) > 0)
                .map(|rs| rs.name_any())
                .collect();
            for name in old {
                r.scale_rs(&name, 0).await?;
            }
            return Ok(());
        }
    }
    if is_recreate(&r.d) {
        return Ok(());
    }
    let targets = proportional_targets(&r.d, &r.all_rss());
    for (name, size) in targets {
        r.scale_rs(&name, size).await?;
    }
    Ok(())
}

/// The new size of every active ReplicaSet under proportional scaling.
pub fn proportional_targets(d: &Deployment, all: &[&ReplicaSet]) -> Vec<(String, i32)> {
    let want = replicas(d);
    let mut active: Vec<&ReplicaSet> = all
        .iter()
        .copied()
        .filter(|rs| rs_replicas(rs) > 0)
        .collect();
    let current = sum(&active, rs_replicas);
    let allowed = if want > 0 { want + max_surge(d) } else { 0 };
    let to_add = allowed - current;
    // Scaling up: largest (then newest) first; down: largest (then oldest) first.
    active.sort_by(|a, b| {
        let size = rs_replicas(b).cmp(&rs_replicas(a));
        let (ta, tb) = (
            a.metadata.creation_timestamp.as_ref().map(|t| t.0),
            b.metadata.creation_timestamp.as_ref().map(|t| t.0),
        );
        size.then(if to_add > 0 { tb.cmp(&ta) } else { ta.cmp(&tb) })
    });
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = Vec::new();
    for rs in &active {
        let mut proportion = 0;
        if to_add != 0 && to_add != added {
            let fraction = if want == 0 {
                -rs_replicas(rs)
            } else {
                let deployment_replicas = want + max_surge(d);
                let annotated = max_replicas_annotation(rs)
                    .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
                if annotated == 0 {
                    0
                } else {
                    let new_size = f64::from(rs_replicas(rs)) * f64::from(deployment_replicas)
                        / f64::from(annotated);
                    new_size.round() as i32 - rs_replicas(rs)
                }
            };
            let allowed_left = to_add - added;
            proportion = if to_add > 0 {
                fraction.min(allowed_left)
            } else {
                fraction.max(allowed_left)
            };
        }
        added += proportion;
        sizes.push((rs.name_any(), rs_replicas(rs) + proportion));
    }
    // The leftover goes to the first (largest) ReplicaSet.
    if to_add != added {
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStatus, ReplicaSetSpec, ReplicaSetStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;

    fn d(replicas: i32) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                replicas: Some(replicas),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn rs(name: &str, replicas: i32, max_annotation: Option<i32>, created: i64) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(Timestamp::from_second(created).expect("ts"))),
                annotations: max_annotation
                    .map(|m| [(MAX_REPLICAS_ANNOTATION.to_string(), m.to_string())].into()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn new_rs_grows_within_surge() {
        // 10 replicas, surge 3 (25% up): old 10 + new 0 → new may reach 3.
        let deploy = d(10);
        let old = rs("old", 10, None, 1);
        let new = rs("new", 0, None, 2);
        assert_eq!(new_rs_new_replicas(&deploy, &[&old, &new], &new), 3);
        // At the surge limit nothing more.
        let new3 = rs("new", 3, None, 2);
        assert_eq!(new_rs_new_replicas(&deploy, &[&old, &new3], &new3), 3);
        // Old scaled down to 7: new can grow to 6.
        let old7 = rs("old", 7, None, 1);
        assert_eq!(new_rs_new_replicas(&deploy, &[&old7, &new3], &new3), 6);
    }

    #[test]
    fn proportional_scaling_mid_rollout() {
        // Upstream example: 10 replicas, surge 3 → max 13: old 8, new 5. Scaled to 15
        // (max 19): old 8*19/13 ≈ 12, new 5*19/13 ≈ 7.
        let mut deploy = d(15);
        deploy.status = Some(DeploymentStatus {
            replicas: Some(13),
            ..Default::default()
        });
        let old = rs("old", 8, Some(13), 1);
        let new = rs("new", 5, Some(13), 2);
        let mut t = proportional_targets(&deploy, &[&old, &new]);
        t.sort();
        assert_eq!(t, vec![("new".to_string(), 7), ("old".to_string(), 12)]);
    }
}
