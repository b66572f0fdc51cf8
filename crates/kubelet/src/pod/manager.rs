//! Merges the pod sources — the API (pods bound to this node) and the static
//! pod manifests — and hands each pod to its worker; keeps static pods' mirror
//! pods in the API; removes sandboxes of pods that no longer exist (after
//! restarts, force deletions).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use parking_lot::RwLock;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::spec;
use super::static_pods;
use super::worker::{self, PodContext};
use crate::cri::{labels, Runtime};

/// How long one mirror pod API call may take before the manager moves on (the
/// API server may be down: static pods must not wait for it).
const MIRROR_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

struct Worker {
    updates: watch::Sender<Option<Arc<Pod>>>,
    task: JoinHandle<()>,
}

/// The pods this kubelet runs, by uid (served on `/pods`).
pub type PodCache = Arc<RwLock<HashMap<String, Arc<Pod>>>>;

pub struct PodManager<R> {
    ctx: Arc<PodContext<R>>,
    workers: HashMap<String, Worker>,
    cache: PodCache,
    /// Static pods by uid.
    static_pods: HashMap<String, Arc<Pod>>,
    /// Mirror pods in the API by `namespace/name`.
    mirrors: HashMap<String, Pod>,
    static_pod_path: Option<PathBuf>,
}

fn full_name(pod: &Pod) -> String {
    format!("{}/{}", spec::pod_namespace(pod), spec::pod_name(pod))
}

impl<R: Runtime> PodManager<R> {
    pub fn new(ctx: Arc<PodContext<R>>, cache: PodCache, static_pod_path: Option<PathBuf>) -> Self {
        PodManager {
            ctx,
            workers: HashMap::new(),
            cache,
            static_pods: HashMap::new(),
            mirrors: HashMap::new(),
            static_pod_path,
        }
    }

    fn dispatch(&mut self, pod: Pod) {
        let uid = spec::pod_uid(&pod).to_string();
        if uid.is_empty() {
            return;
        }
        let pod = Arc::new(pod);
        self.cache.write().insert(uid.clone(), pod.clone());
        if let Some(worker) = self.workers.get(&uid) {
            if !worker.task.is_finished() {
                let _ = worker.updates.send(Some(pod));
                return;
            }
        }
        let (tx, rx) = watch::channel(Some(pod));
        let task = tokio::spawn(worker::run_worker(self.ctx.clone(), rx));
        self.workers.insert(uid, Worker { updates: tx, task });
    }

    fn removed(&mut self, uid: &str) {
        self.cache.write().remove(uid);
        if let Some(worker) = self.workers.get(uid) {
            let _ = worker.updates.send(None);
        }
    }

    /// An API pod: mirror pods are only remembered, the others run.
    fn api_pod(&mut self, pod: Pod) {
        if static_pods::is_mirror(&pod) {
            self.mirrors.insert(full_name(&pod), pod);
        } else {
            self.dispatch(pod);
        }
    }

    fn api_pod_deleted(&mut self, pod: &Pod) {
        if static_pods::is_mirror(pod) {
            self.mirrors.remove(&full_name(pod));
        } else {
            self.removed(spec::pod_uid(pod));
        }
    }

    /// A new set of static pods from the manifest directory.
    fn static_pods_changed(&mut self, pods: Vec<Pod>) {
        let new: HashMap<String, Arc<Pod>> = pods
            .into_iter()
            .map(|p| (spec::pod_uid(&p).to_string(), Arc::new(p)))
            .collect();
        let gone: Vec<String> = self
            .static_pods
            .keys()
            .filter(|uid| !new.contains_key(*uid))
            .cloned()
            .collect();
        for uid in gone {
            info!(pod_uid = %uid, "static pod manifest removed");
            self.removed(&uid);
        }
        for (uid, pod) in &new {
            if !self.static_pods.contains_key(uid) {
                info!(pod = %full_name(pod), "static pod added");
                self.dispatch(pod.as_ref().clone());
            }
        }
        self.static_pods = new;
    }

    /// Makes the API's mirror pods match the static pods: creates missing ones,
    /// deletes (grace 0, uid precondition) those being deleted, outdated or
    /// without a static pod. A deleted mirror is recreated on the next pass.
    async fn sync_mirrors(&mut self) {
        let Some(client) = self.ctx.client.clone() else {
            return;
        };
        let wanted: HashMap<String, Arc<Pod>> = self
            .static_pods
            .values()
            .map(|p| (full_name(p), p.clone()))
            .collect();
        let mut deletes: Vec<Pod> = Vec::new();
        for (name, mirror) in &self.mirrors {
            let current = wanted
                .get(name)
                .is_some_and(|p| static_pods::config_hash(p) == static_pods::mirror_hash(mirror));
            if !current || mirror.metadata.deletion_timestamp.is_some() {
                deletes.push(mirror.clone());
            }
        }
        for mirror in deletes {
            let api: Api<Pod> = Api::namespaced(client.clone(), spec::pod_namespace(&mirror));
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: mirror.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            info!(pod = %full_name(&mirror), "deleting mirror pod");
            match tokio::time::timeout(
                MIRROR_REQUEST_TIMEOUT,
                api.delete(spec::pod_name(&mirror), &params),
            )
            .await
            {
                Ok(Ok(_)) | Ok(Err(kube::Error::Api(_))) => {
                    self.mirrors.remove(&full_name(&mirror));
                }
                Ok(Err(err)) => warn!("deleting mirror pod: {err}"),
                Err(_) => warn!("deleting mirror pod timed out"),
            }
        }
        for (name, pod) in wanted {
            if self.mirrors.contains_key(&name) {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(client.clone(), spec::pod_namespace(&pod));
            match tokio::time::timeout(
                MIRROR_REQUEST_TIMEOUT,
                api.create(&PostParams::default(), &static_pods::mirror_pod(&pod)),
            )
            .await
            {
                Ok(Ok(created)) => {
                    info!(pod = %name, "mirror pod created");
                    self.mirrors.insert(name, created);
                }
                // Exists already: the watch will tell us which one it is.
                Ok(Err(kube::Error::Api(status))) if status.code == 409 => {}
                Ok(Err(err)) => warn!(pod = %name, "creating mirror pod: {err}"),
                Err(_) => warn!(pod = %name, "creating mirror pod timed out"),
            }
        }
    }

    /// Stops and removes sandboxes whose pod uid is not a known pod.
    async fn remove_orphans(&self, known: &HashSet<String>) {
        let sandboxes = match self.ctx.cri.list_pod_sandbox(None).await {
            Ok(s) => s,
            Err(err) => {
                warn!("listing sandboxes for orphans: {err}");
                return;
            }
        };
        let orphans: HashSet<String> = sandboxes
            .iter()
            .filter_map(|s| s.labels.get(labels::POD_UID))
            .filter(|uid| !known.contains(*uid) && !self.static_pods.contains_key(*uid))
            .cloned()
            .collect();
        for uid in orphans {
            info!(pod_uid = %uid, "removing orphaned pod sandbox");
            if let Err(err) = worker::kill_pod(&self.ctx, &uid, Duration::from_secs(2)).await {
                warn!(pod_uid = %uid, "killing orphan: {err}");
            }
            worker::remove_pod(&self.ctx, &uid).await;
        }
    }

    /// Runs until both sources end (never, in practice).
    pub async fn run(mut self) {
        let mut api_events = match self.ctx.client.clone() {
            Some(client) => {
                let api: Api<Pod> = Api::all(client);
                let config = watcher::Config::default()
                    .fields(&format!("spec.nodeName={}", self.ctx.node_name));
                watcher::watcher(api, config).default_backoff().boxed()
            }
            None => futures::stream::pending().boxed(),
        };
        let (static_tx, mut static_rx) = mpsc::channel(1);
        if let Some(path) = self.static_pod_path.clone() {
            tokio::spawn(static_pods::watch_manifests(
                path,
                self.ctx.node_name.clone(),
                static_tx,
            ));
        }
        let mut mirror_tick = tokio::time::interval(Duration::from_secs(10));
        let mut listed: HashSet<String> = HashSet::new();
        loop {
            let mut mirrors_changed = false;
            tokio::select! {
                event = api_events.next() => {
                    let Some(event) = event else { return };
                    match event {
                        Ok(Event::Init) => {
                            // A (re-)list: it is the truth about mirror pods too.
                            listed.clear();
                            self.mirrors.clear();
                        }
                        Ok(Event::InitApply(pod)) => {
                            listed.insert(spec::pod_uid(&pod).to_string());
                            self.api_pod(pod);
                        }
                        Ok(Event::InitDone) => {
                            let gone: Vec<String> = self
                                .workers
                                .keys()
                                .filter(|uid| !listed.contains(*uid) && !self.static_pods.contains_key(*uid))
                                .cloned()
                                .collect();
                            for uid in gone {
                                self.removed(&uid);
                            }
                            self.remove_orphans(&listed).await;
                            mirrors_changed = true;
                        }
                        Ok(Event::Apply(pod)) => {
                            mirrors_changed = static_pods::is_mirror(&pod);
                            self.api_pod(pod);
                        }
                        Ok(Event::Delete(pod)) => {
                            mirrors_changed = static_pods::is_mirror(&pod);
                            self.api_pod_deleted(&pod);
                        }
                        Err(err) => warn!("pod watch: {err}"),
                    }
                }
                Some(pods) = static_rx.recv() => {
                    self.static_pods_changed(pods);
                    mirrors_changed = true;
                }
                _ = mirror_tick.tick() => mirrors_changed = !self.static_pods.is_empty() || !self.mirrors.is_empty(),
            }
            if mirrors_changed {
                self.sync_mirrors().await;
            }
            self.workers.retain(|_, w| !w.task.is_finished());
        }
    }
}
