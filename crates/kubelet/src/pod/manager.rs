//! Watches the pods bound to this node and hands each to its worker; removes
//! sandboxes of pods that no longer exist (after restarts, force deletions).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use parking_lot::RwLock;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::spec;
use super::worker::{self, PodContext};
use crate::cri::{labels, Runtime};

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
}

impl<R: Runtime> PodManager<R> {
    pub fn new(ctx: Arc<PodContext<R>>, cache: PodCache) -> Self {
        PodManager { ctx, workers: HashMap::new(), cache }
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

    /// Stops and removes sandboxes whose pod uid is not a known pod.
    async fn remove_orphans(&self, known: &HashSet<String>) {
        let sandboxes = match self.ctx.cri.list_pod_sandbox(None).await {
            Ok(s) => s,
            Err(err) => {
                warn!("listing sandboxes for orphans: {err}");
                return;
            }
        };
        let orphans: HashSet<String> =
            sandboxes.iter().filter_map(|s| s.labels.get(labels::POD_UID)).filter(|uid| !known.contains(*uid)).cloned().collect();
        for uid in orphans {
            info!(pod_uid = %uid, "removing orphaned pod sandbox");
            if let Err(err) = worker::kill_pod(&self.ctx, &uid, std::time::Duration::from_secs(2)).await {
                warn!(pod_uid = %uid, "killing orphan: {err}");
            }
            worker::remove_pod(&self.ctx, &uid).await;
        }
    }

    /// Runs until the watch stream ends (never, in practice).
    pub async fn run(mut self) {
        let api: Api<Pod> = Api::all(self.ctx.client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={}", self.ctx.node_name));
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut listed: HashSet<String> = HashSet::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => listed.clear(),
                Ok(Event::InitApply(pod)) => {
                    listed.insert(spec::pod_uid(&pod).to_string());
                    self.dispatch(pod);
                }
                Ok(Event::InitDone) => {
                    let gone: Vec<String> = self.workers.keys().filter(|uid| !listed.contains(*uid)).cloned().collect();
                    for uid in gone {
                        self.removed(&uid);
                    }
                    self.remove_orphans(&listed).await;
                }
                Ok(Event::Apply(pod)) => self.dispatch(pod),
                Ok(Event::Delete(pod)) => self.removed(spec::pod_uid(&pod)),
                Err(err) => warn!("pod watch: {err}"),
            }
            self.workers.retain(|_, w| !w.task.is_finished());
        }
    }
}
