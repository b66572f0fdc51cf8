//! The writes a deployment sync makes and the status it computes (upstream
//! `sync.go`, `progress.go`).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

use super::util::*;
use crate::util::events::{Recorder, NORMAL};
use crate::util::owner::{is_controlled_by, new_controller_ref};
use crate::util::{is_not_found, is_status, ApiContext, Error, Result};

/// The ReplicaSets of one deployment during one sync, updated in place as it writes.
pub struct Rollout<'a> {
    pub client: &'a kube::Client,
    pub recorder: &'a Recorder,
    pub d: Deployment,
    pub new_rs: Option<ReplicaSet>,
    pub old_rss: Vec<ReplicaSet>,
}

impl<'a> Rollout<'a> {
    fn ns(&self) -> String {
        self.d.namespace().unwrap_or_default()
    }

    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), &self.ns())
    }

    pub fn all_rss(&self) -> Vec<&ReplicaSet> {
        self.old_rss.iter().chain(self.new_rs.iter()).collect()
    }

    /// Upstream `getAllReplicaSetsAndSyncRevision`: splits `rss` into the new one
    /// (template equal to the deployment's) and the old ones, creating the new one
    /// when asked and bringing its revision annotations up to date.
    pub async fn load(
        client: &'a kube::Client,
        recorder: &'a Recorder,
        d: Deployment,
        mut rss: Vec<ReplicaSet>,
        create: bool,
    ) -> Result<Rollout<'a>> {
        rss.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)
                .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
                .then(a.name_any().cmp(&b.name_any()))
        });
        let template = d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let new_idx = rss.iter().position(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignore_hash(t, &template))
        });
        let new_rs = new_idx.map(|i| rss.remove(i));
        let mut r = Rollout {
            client,
            recorder,
            d,
            new_rs,
            old_rss: rss,
        };
        r.sync_new_rs(create).await?;
        Ok(r)
    }

    async fn sync_new_rs(&mut self, create: bool) -> Result<()> {
        let new_revision = max_revision(&self.old_rss) + 1;
        if let Some(existing) = self.new_rs.clone() {
            let mut copy = existing.clone();
            let mut changed = set_new_rs_annotations(&self.d, &mut copy, new_revision);
            let min_ready = min_ready_seconds(&self.d);
            if let Some(spec) = copy.spec.as_mut() {
                if spec.min_ready_seconds.unwrap_or(0) != min_ready {
                    spec.min_ready_seconds = Some(min_ready);
                    changed = true;
                }
            }
            if changed {
                self.new_rs = Some(self.update_rs(&copy).await?);
            }
            let revision = self.new_rs.as_ref().map(rs_revision).unwrap_or(0);
            self.set_deployment_revision(revision).await?;
            let mut status = self.d.status.clone().unwrap_or_default();
            if progress_deadline_seconds(&self.d).is_some()
                && condition(&status, "Progressing").is_none()
            {
                let msg = format!("Found new replica set {:?}", existing.name_any());
                set_condition(
                    &mut status,
                    new_condition("Progressing", "True", FOUND_NEW_RS, msg),
                );
                self.write_status(status).await?;
            }
            return Ok(());
        }
        if !create {
            return Ok(());
        }
        let rs = self.new_replica_set(new_revision);
        let name = rs.name_any();
        let created = match self.rs_api().create(&PostParams::default(), &rs).await {
            Ok(created) => created,
            Err(err) if is_status(&err, 409) => {
                // Ours (a stale cache) or a hash collision.
                let existing = self
                    .rs_api()
                    .get(&name)
                    .await
                    .ctx(|| format!("reading replicaset {name}"))?;
                let template = self
                    .d
                    .spec
                    .as_ref()
                    .map(|s| s.template.clone())
                    .unwrap_or_default();
                let same = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| equal_ignore_hash(t, &template));
                if same
                    && is_controlled_by(
                        &existing.metadata,
                        self.d.metadata.uid.as_deref().unwrap_or(""),
                    )
                {
                    existing
                } else {
                    let mut status = self.d.status.clone().unwrap_or_default();
                    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                    self.write_status(status).await?;
                    return Err(Error::Invalid {
                        object: name,
                        message: "pod-template-hash collision; retrying with a new collisionCount"
                            .into(),
                    });
                }
            }
            Err(err) => return Err(err).ctx(|| format!("creating replicaset {name}")),
        };
        tracing::info!(deployment = %self.d.name_any(), replicaset = %name, "created new replica set");
        let replicas = rs_replicas(&created);
        if replicas > 0 {
            self.recorder.event(
                &self.d,
                NORMAL,
                "ScalingReplicaSet",
                format!("Scaled up replica set {name} from 0 to {replicas}"),
            );
        }
        self.new_rs = Some(created);
        self.set_deployment_revision(new_revision).await?;
        if progress_deadline_seconds(&self.d).is_some() {
            let mut status = self.d.status.clone().unwrap_or_default();
            let msg = format!("Created new replica set {name:?}");
            set_condition(
                &mut status,
                new_condition("Progressing", "True", NEW_RS_CREATED, msg),
            );
            self.write_status(status).await?;
        }
        Ok(())
    }

    /// The new ReplicaSet: `<deployment>-<hash>`, the hash in its selector, labels
    /// and template labels, sized by `NewRSNewReplicas`.
    fn new_replica_set(&self, revision: i64) -> ReplicaSet {
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision = self.d.status.as_ref().and_then(|s| s.collision_count);
        let mut template = spec.template.clone();
        let hash = compute_hash(&template, collision);
        let meta = template.metadata.get_or_insert_with(Default::default);
        meta.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(DEFAULT_LABEL_KEY.into(), hash.clone());
        let labels = meta.labels.clone();
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(DEFAULT_LABEL_KEY.into(), hash.clone());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", self.d.name_any())),
                namespace: self.d.namespace(),
                labels,
                owner_references: Some(vec![new_controller_ref(&self.d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let mut all: Vec<&ReplicaSet> = self.old_rss.iter().collect();
        all.push(&rs);
        let replicas = super::rollout::new_rs_new_replicas(&self.d, &all, &rs);
        if let Some(s) = rs.spec.as_mut() {
            s.replicas = Some(replicas);
        }
        set_new_rs_annotations(&self.d, &mut rs, revision);
        rs
    }

    /// Writes the deployment's revision annotation when it differs.
    async fn set_deployment_revision(&mut self, revision: i64) -> Result<()> {
        if revision == 0 || revision_of(&self.d.metadata.annotations) == revision {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.ns());
        let patch =
            json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision.to_string()}}});
        let updated = api
            .patch(
                &self.d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .ctx(|| format!("setting the revision of deployment {}", self.d.name_any()))?;
        self.d.metadata = updated.metadata;
        Ok(())
    }

    pub async fn update_rs(&self, rs: &ReplicaSet) -> Result<ReplicaSet> {
        self.rs_api()
            .replace(&rs.name_any(), &PostParams::default(), rs)
            .await
            .ctx(|| format!("updating replicaset {}", rs.name_any()))
    }

    /// Upstream `scaleReplicaSet`: size and replicas annotations in one update.
    /// Returns whether anything was written.
    pub async fn scale_rs(&mut self, name: &str, new_scale: i32) -> Result<bool> {
        let d_replicas = replicas(&self.d);
        let max = d_replicas + max_surge(&self.d);
        let is_new = self.new_rs.as_ref().is_some_and(|rs| rs.name_any() == name);
        let slot = if is_new {
            self.new_rs.as_mut()
        } else {
            self.old_rss.iter_mut().find(|rs| rs.name_any() == name)
        };
        let Some(rs) = slot else { return Ok(false) };
        let mut copy = rs.clone();
        let size_changed = rs_replicas(&copy) != new_scale;
        let annotations_changed = set_replicas_annotations(
            copy.metadata.annotations.get_or_insert_with(BTreeMap::new),
            d_replicas,
            max,
        );
        if !size_changed && !annotations_changed {
            return Ok(false);
        }
        if let Some(spec) = copy.spec.as_mut() {
            spec.replicas = Some(new_scale);
        }
        let updated = Api::<ReplicaSet>::namespaced(
            self.client.clone(),
            &copy.namespace().unwrap_or_default(),
        )
        .replace(name, &PostParams::default(), &copy)
        .await
        .ctx(|| format!("scaling replicaset {name}"))?;
        if size_changed {
            let (from, direction) = (
                rs_replicas(rs),
                if new_scale > rs_replicas(rs) {
                    "up"
                } else {
                    "down"
                },
            );
            tracing::info!(deployment = %self.d.name_any(), replicaset = name, from, to = new_scale, "scaled replica set");
            self.recorder.event(
                &self.d,
                NORMAL,
                "ScalingReplicaSet",
                format!("Scaled {direction} replica set {name} from {from} to {new_scale}"),
            );
        }
        *rs = updated;
        Ok(size_changed)
    }

    /// Upstream `calculateStatus`.
    pub fn calculate_status(&self) -> DeploymentStatus {
        let all = self.all_rss();
        let available = sum(&all, rs_available);
        let total = sum(&all, rs_replicas);
        let mut status = self.d.status.clone().unwrap_or_default();
        status.observed_generation = self.d.metadata.generation;
        status.replicas = Some(sum(&all, rs_status_replicas));
        status.updated_replicas = Some(self.new_rs.as_ref().map_or(0, rs_status_replicas));
        status.ready_replicas = Some(sum(&all, rs_ready));
        status.available_replicas = Some(available);
        status.unavailable_replicas = Some((total - available).max(0));
        if available >= replicas(&self.d) - max_unavailable(&self.d) {
            set_condition(
                &mut status,
                new_condition(
                    "Available",
                    "True",
                    MIN_AVAILABLE,
                    "Deployment has minimum availability.".into(),
                ),
            );
        } else {
            set_condition(
                &mut status,
                new_condition(
                    "Available",
                    "False",
                    MIN_UNAVAILABLE,
                    "Deployment does not have minimum availability.".into(),
                ),
            );
        }
        status
    }

    /// Writes status when it differs from what the deployment has.
    pub async fn write_status(&mut self, status: DeploymentStatus) -> Result<()> {
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.ns());
        let patch = json!({ "status": status });
        match api
            .patch_status(
                &self.d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(updated) => {
                self.d.status = updated.status;
                self.d.metadata.resource_version = updated.metadata.resource_version;
                Ok(())
            }
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => {
                Err(err).ctx(|| format!("updating status of deployment {}", self.d.name_any()))
            }
        }
    }

    /// Upstream `syncDeploymentStatus` (scaling and paused paths: no progress logic).
    pub async fn sync_status(&mut self) -> Result<()> {
        let status = self.calculate_status();
        self.write_status(status).await
    }

    /// Upstream `syncRolloutStatus`: status plus the Progressing condition; returns
    /// when to check the progress deadline again.
    pub async fn sync_rollout_status(&mut self) -> Result<Option<Duration>> {
        let mut status = self.calculate_status();
        let now = Timestamp::now();
        if progress_deadline_seconds(&self.d).is_none() {
            if let Some(c) = status.conditions.as_mut() {
                c.retain(|c| c.type_ != "Progressing");
            }
        }
        let current = condition(&status, "Progressing").cloned();
        let complete = status.replicas == status.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
        let rs_name = self.new_rs.as_ref().map(|rs| rs.name_any());
        if progress_deadline_seconds(&self.d).is_some() && !complete {
            if deployment_complete(&self.d, &status) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet {n:?} has successfully progressed."),
                    None => format!(
                        "Deployment {:?} has successfully progressed.",
                        self.d.name_any()
                    ),
                };
                set_condition(
                    &mut status,
                    new_condition("Progressing", "True", NEW_RS_AVAILABLE, msg),
                );
            } else if deployment_progressing(&self.d, &status) {
                let msg = format!(
                    "ReplicaSet {:?} is progressing.",
                    rs_name.clone().unwrap_or_default()
                );
                let mut cond = new_condition("Progressing", "True", RS_UPDATED, msg);
                if let Some(c) = current.as_ref().filter(|c| c.status == "True") {
                    cond.last_transition_time = c.last_transition_time.clone();
                }
                if let Some(c) = status.conditions.as_mut() {
                    c.retain(|c| c.type_ != "Progressing");
                }
                set_condition(&mut status, cond);
            } else if deployment_timed_out(&self.d, &status, now) {
                let msg = format!(
                    "ReplicaSet {:?} has timed out progressing.",
                    rs_name.clone().unwrap_or_default()
                );
                set_condition(
                    &mut status,
                    new_condition("Progressing", "False", TIMED_OUT, msg),
                );
            }
        }
        let requeue = self.stuck_requeue(&status, now);
        self.write_status(status).await?;
        Ok(requeue)
    }

    /// Upstream `requeueStuckDeployment`: when the progress deadline would pass.
    fn stuck_requeue(&self, status: &DeploymentStatus, now: Timestamp) -> Option<Duration> {
        let deadline = progress_deadline_seconds(&self.d)?;
        let cond = condition(status, "Progressing")?;
        if deployment_complete(&self.d, status) || cond.reason.as_deref() == Some(TIMED_OUT) {
            return None;
        }
        let last = cond.last_update_time.as_ref()?.0.as_second();
        let after = last + i64::from(deadline) - now.as_second();
        Some(Duration::from_secs(
            u64::try_from(after.max(0)).unwrap_or(0) + 1,
        ))
    }

    /// Upstream `cleanupDeployment`: delete the oldest fully scaled-down old
    /// ReplicaSets beyond revisionHistoryLimit.
    pub async fn cleanup(&mut self) -> Result<()> {
        let limit = usize::try_from(revision_history_limit(&self.d).max(0)).unwrap_or(0);
        let mut cleanable: Vec<&ReplicaSet> = self
            .old_rss
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        if cleanable.len() <= limit {
            return Ok(());
        }
        let diff = cleanable.len() - limit;
        cleanable.sort_by_key(|rs| rs_revision(rs));
        let mut deleted = Vec::new();
        for rs in cleanable.into_iter().take(diff) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if rs_status_replicas(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            match self
                .rs_api()
                .delete(&rs.name_any(), &DeleteParams::background())
                .await
            {
                Ok(_) => deleted.push(rs.name_any()),
                Err(err) if is_not_found(&err) => {}
                Err(err) => {
                    return Err(err).ctx(|| format!("deleting old replicaset {}", rs.name_any()))
                }
            }
        }
        self.old_rss.retain(|rs| !deleted.contains(&rs.name_any()));
        Ok(())
    }

    /// Upstream `checkPausedConditions`.
    pub async fn check_paused_conditions(&mut self) -> Result<()> {
        if progress_deadline_seconds(&self.d).is_none() {
            return Ok(());
        }
        let mut status = self.d.status.clone().unwrap_or_default();
        let cond = condition(&status, "Progressing");
        if cond.and_then(|c| c.reason.as_deref()) == Some(TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = cond.and_then(|c| c.reason.as_deref()) == Some(PAUSED);
        if paused(&self.d) && !paused_cond {
            set_condition(
                &mut status,
                new_condition(
                    "Progressing",
                    "Unknown",
                    PAUSED,
                    "Deployment is paused".into(),
                ),
            );
        } else if !paused(&self.d) && paused_cond {
            set_condition(
                &mut status,
                new_condition(
                    "Progressing",
                    "Unknown",
                    RESUMED,
                    "Deployment is resumed".into(),
                ),
            );
        } else {
            return Ok(());
        }
        self.write_status(status).await
    }
}
