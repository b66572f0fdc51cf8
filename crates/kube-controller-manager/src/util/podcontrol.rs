//! Creating and deleting an owner's pods (upstream `RealPodControl` plus the
//! expectations/slow-start dance every pod-owning controller repeats): the
//! expected creations/deletions are registered first, calls that fail or are
//! skipped are un-expected, and each call records SuccessfulCreate/FailedCreate
//! or SuccessfulDelete/FailedDelete on the owner.

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Resource, ResourceExt};

use super::batch::slow_start_batch;
use super::events::{Recorder, NORMAL, WARNING};
use super::expectations::Expectations;
use super::is_not_found;

/// Upstream prints the Status message of an API error.
fn message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// What a pod-owning controller hands to these helpers.
pub struct PodControl<'a, K> {
    pub client: &'a kube::Client,
    pub expectations: &'a Expectations,
    pub recorder: &'a Recorder,
    /// The owner's expectations key.
    pub key: &'a str,
    pub owner: &'a K,
}

impl<K: Resource<DynamicType = ()>> PodControl<'_, K> {
    /// Creates `pods` (each in its own namespace) in slow-start batches; returns the
    /// first error, after un-expecting the creations that did not happen.
    pub async fn create(&self, pods: &[Pod]) -> Result<(), kube::Error> {
        let n = pods.len();
        if n == 0 {
            return Ok(());
        }
        self.expectations.expect_creations(self.key, n);
        let created = slow_start_batch(n, |i| {
            let pod = &pods[i];
            let api: Api<Pod> = Api::namespaced(
                self.client.clone(),
                pod.metadata.namespace.as_deref().unwrap_or("default"),
            );
            async move {
                match api.create(&PostParams::default(), pod).await {
                    Ok(p) => {
                        self.recorder.event(
                            self.owner,
                            NORMAL,
                            "SuccessfulCreate",
                            format!("Created pod: {}", p.name_any()),
                        );
                        Ok(())
                    }
                    Err(err) => {
                        self.recorder.event(
                            self.owner,
                            WARNING,
                            "FailedCreate",
                            format!("Error creating: {}", message(&err)),
                        );
                        Err(err)
                    }
                }
            }
        })
        .await;
        // Creations that failed or were skipped will never be observed.
        for _ in created.succeeded..n {
            self.expectations.creation_observed(self.key);
        }
        created.error.map_or(Ok(()), Err)
    }

    /// Deletes `pods` (namespace, name) in parallel; a pod already gone is not an error.
    pub async fn delete(&self, pods: &[(String, String)]) -> Result<(), kube::Error> {
        if pods.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = pods
            .iter()
            .map(|(ns, name)| format!("{ns}/{name}"))
            .collect();
        self.expectations.expect_deletions(self.key, keys.clone());
        let results = join_all(pods.iter().map(|(ns, name)| {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            async move {
                let result = api.delete(name, &DeleteParams::default()).await;
                match &result {
                    Ok(_) => self.recorder.event(
                        self.owner,
                        NORMAL,
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    ),
                    Err(err) if !is_not_found(err) => self.recorder.event(
                        self.owner,
                        WARNING,
                        "FailedDelete",
                        format!("Error deleting: {}", message(err)),
                    ),
                    Err(_) => {}
                }
                result
            }
        }))
        .await;
        let mut first_error = None;
        for (result, pod_key) in results.into_iter().zip(keys) {
            if let Err(err) = result {
                self.expectations.deletion_observed(self.key, &pod_key);
                if !is_not_found(&err) && first_error.is_none() {
                    first_error = Some(err);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// (namespace, name) of pods, for `PodControl::delete`.
pub fn targets<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Vec<(String, String)> {
    pods.into_iter()
        .map(|p| (p.namespace().unwrap_or_default(), p.name_any()))
        .collect()
}
