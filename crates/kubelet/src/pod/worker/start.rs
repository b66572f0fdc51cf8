//! Starting a pod's containers: image pulls as the pull policy says, restarts with
//! back-off, and the events upstream records for each step.

use super::*;

/// Starts and restarts the containers of one pod in its sandbox.
pub(super) struct Starter<'a, R> {
    pub(super) ctx: &'a PodContext<R>,
    pub(super) pod: &'a Pod,
    pub(super) sandbox_id: &'a str,
    pub(super) sandbox_config: &'a api::PodSandboxConfig,
    pub(super) refs: &'a mut Option<Referenced>,
    pub(super) runtime: &'a RuntimePod,
}

impl<R: Runtime> Starter<'_, R> {
    pub(super) async fn restart_with_backoff(
        &mut self,
        container: &Container,
        exited: &ContainerRecord,
        state: &mut WorkerState,
    ) {
        let now = Instant::now();
        if let Some(b) = state.backoff.get(&container.name) {
            if now.duration_since(b.last) < b.delay {
                let message = format!(
                    "Back-off restarting failed container {} in pod {}_{}({})",
                    container.name,
                    spec::pod_name(self.pod),
                    spec::pod_namespace(self.pod),
                    spec::pod_uid(self.pod)
                );
                // Once per back-off period, not on every resync.
                if state
                    .waiting
                    .get(&container.name)
                    .is_none_or(|w| w.reason != "CrashLoopBackOff")
                {
                    self.ctx.recorder.container_event(
                        self.pod,
                        &container.name,
                        events::WARNING,
                        "BackOff",
                        message,
                    );
                }
                state.waiting.insert(
                    container.name.clone(),
                    Waiting {
                        reason: "CrashLoopBackOff".into(),
                        message: format!(
                            "back-off {}s restarting failed container={} pod={}_{}({})",
                            b.delay.as_secs(),
                            container.name,
                            spec::pod_name(self.pod),
                            spec::pod_namespace(self.pod),
                            spec::pod_uid(self.pod)
                        ),
                    },
                );
                return;
            }
        }
        let delay = state
            .backoff
            .get(&container.name)
            .map_or(BACKOFF_INITIAL, |b| (b.delay * 2).min(BACKOFF_MAX));
        state
            .backoff
            .insert(container.name.clone(), Backoff { delay, last: now });
        info!(container = %container.name, exit_code = exited.exit_code, "restarting container");
        self.start(container, exited.attempt + 1, state).await;
    }

    pub(super) async fn referenced(&mut self) -> &Referenced {
        if self.refs.is_none() {
            *self.refs = Some(
                projected::fetch_referenced(
                    self.ctx.client.as_ref(),
                    &self.ctx.tokens,
                    self.pod,
                    projected::Scope::All,
                )
                .await,
            );
        }
        self.refs.get_or_insert_with(Referenced::default)
    }

    /// Pulls (per policy), creates and starts one container; failures become the
    /// container's waiting reason as upstream reports them.
    pub(super) async fn start(
        &mut self,
        container: &Container,
        attempt: u32,
        state: &mut WorkerState,
    ) {
        match self.try_start(container, attempt, state).await {
            Ok(()) => {
                state.waiting.remove(&container.name);
            }
            Err(waiting) if state.waiting.get(&container.name) == Some(&waiting) => {}
            // Recorded as FailedPostStartHook already.
            Err(waiting) if waiting.reason == "PostStartHookError" => {
                state.waiting.insert(container.name.clone(), waiting);
            }
            Err(waiting) => {
                warn!(container = %container.name, reason = %waiting.reason, "{}", waiting.message);
                let message = match waiting.reason.as_str() {
                    "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                        format!("Error: {}", waiting.message)
                    }
                    reason => format!("Error: {reason}"),
                };
                self.ctx.recorder.container_event(
                    self.pod,
                    &container.name,
                    events::WARNING,
                    "Failed",
                    message,
                );
                state.waiting.insert(container.name.clone(), waiting);
            }
        }
    }

    async fn try_start(
        &mut self,
        container: &Container,
        attempt: u32,
        state: &mut WorkerState,
    ) -> Result<(), Waiting> {
        let image = container.image.clone().unwrap_or_default();
        let events = ContainerEvents {
            recorder: &self.ctx.recorder,
            pod: self.pod,
            container: &container.name,
        };
        ensure_image(
            self.ctx.cri.as_ref(),
            &image,
            container.image_pull_policy.as_deref(),
            self.sandbox_config,
            state,
            &events,
        )
        .await?;
        let facts = PodFacts {
            pod_ip: self.runtime.pod_ip.clone().unwrap_or_default(),
            host_ip: self.ctx.host_ip.clone(),
            node_name: self.ctx.node_name.clone(),
        };
        let pod = self.pod;
        let mut refs = self.referenced().await.clone();
        refs.claims.clone_from(&state.claims);
        let env = env::make_environment(pod, container, &refs, &facts).map_err(|err| Waiting {
            reason: "CreateContainerConfigError".into(),
            message: err.to_string(),
        })?;
        let pod_dir = self.ctx.root_dir.join("pods").join(spec::pod_uid(pod));
        let mounts =
            volumes::prepare_mounts(pod, container, &pod_dir, &refs, &facts).map_err(|err| {
                Waiting {
                    reason: "CreateContainerConfigError".into(),
                    message: err.to_string(),
                }
            })?;
        let config = spec::container_config(pod, container, attempt, env, mounts);
        let id = self
            .ctx
            .cri
            .create_container(self.sandbox_id, config, self.sandbox_config.clone())
            .await
            .map_err(|err| Waiting {
                reason: "CreateContainerError".into(),
                message: err.to_string(),
            })?;
        events.normal("Created", format!("Created container: {}", container.name));
        self.ctx
            .cri
            .start_container(&id)
            .await
            .map_err(|err| Waiting {
                reason: "RunContainerError".into(),
                message: err.to_string(),
            })?;
        events.normal("Started", format!("Started container {}", container.name));
        info!(container = %container.name, id = %id, attempt, "container started");
        let pod_ip = if spec::host_network(pod) {
            self.ctx.host_ip.clone()
        } else {
            facts.pod_ip.clone()
        };
        lifecycle::post_start(
            self.ctx.cri.as_ref(),
            &self.ctx.recorder,
            pod,
            container,
            &id,
            &pod_ip,
        )
        .await
        .map_err(|message| Waiting {
            reason: "PostStartHookError".into(),
            message,
        })
    }
}

/// Upstream's default pull policy: `Always` for `:latest` or untagged images.
pub fn effective_pull_policy(image: &str, policy: Option<&str>) -> String {
    if let Some(p) = policy.filter(|p| !p.is_empty()) {
        return p.to_string();
    }
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent".into(),
        _ if image.contains('@') => "IfNotPresent".into(),
        _ => "Always".into(),
    }
}

/// Events about one container of a pod.
struct ContainerEvents<'a> {
    recorder: &'a Recorder,
    pod: &'a Pod,
    container: &'a str,
}

impl ContainerEvents<'_> {
    fn normal(&self, reason: &'static str, message: String) {
        self.recorder
            .container_event(self.pod, self.container, events::NORMAL, reason, message);
    }

    fn warning(&self, reason: &'static str, message: String) {
        self.recorder
            .container_event(self.pod, self.container, events::WARNING, reason, message);
    }
}

async fn ensure_image<R: Runtime>(
    cri: &R,
    image: &str,
    policy: Option<&str>,
    sandbox_config: &api::PodSandboxConfig,
    state: &mut WorkerState,
    events: &ContainerEvents<'_>,
) -> Result<(), Waiting> {
    let policy = effective_pull_policy(image, policy);
    let present = cri
        .image_status(image)
        .await
        .map_err(|err| Waiting {
            reason: "ErrImagePull".into(),
            message: err.to_string(),
        })?
        .is_some();
    match policy.as_str() {
        "Never" if !present => {
            let message =
                format!("Container image \"{image}\" is not present with pull policy of Never");
            events.warning("ErrImageNeverPull", message.clone());
            return Err(Waiting {
                reason: "ErrImageNeverPull".into(),
                message,
            });
        }
        "Never" | "IfNotPresent" if present => {
            events.normal(
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            );
            return Ok(());
        }
        _ => {}
    }
    let now = Instant::now();
    if let Some(b) = state.image_backoff.get(image) {
        if now.duration_since(b.last) < b.delay {
            let message = format!("Back-off pulling image \"{image}\"");
            if state
                .waiting
                .get(events.container)
                .is_none_or(|w| w.reason != "ImagePullBackOff")
            {
                events.normal("BackOff", message.clone());
            }
            return Err(Waiting {
                reason: "ImagePullBackOff".into(),
                message,
            });
        }
    }
    events.normal("Pulling", format!("Pulling image \"{image}\""));
    match cri.pull_image(image, Some(sandbox_config.clone())).await {
        Ok(_) => {
            state.image_backoff.remove(image);
            let took = now.elapsed();
            events.normal("Pulled", format!("Successfully pulled image \"{image}\" in {took:.3?} ({took:.3?} including waiting)"));
            Ok(())
        }
        Err(err) => {
            events.warning(
                "Failed",
                format!("Failed to pull image \"{image}\": {}", err.go_string()),
            );
            let delay = state
                .image_backoff
                .get(image)
                .map_or(BACKOFF_INITIAL, |b| (b.delay * 2).min(BACKOFF_MAX));
            state
                .image_backoff
                .insert(image.to_string(), Backoff { delay, last: now });
            Err(Waiting {
                reason: "ErrImagePull".into(),
                message: err.go_string(),
            })
        }
    }
}
