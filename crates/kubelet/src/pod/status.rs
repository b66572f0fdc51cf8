//! Pod status from runtime state, as upstream's `generateAPIPodStatus`,
//! `getPhase` and `pkg/kubelet/status/generate.go` compute it.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::cri::api;

/// One CRI container of the pod, with what `ContainerStatus` told us.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub attempt: u32,
    pub sandbox_id: String,
    /// `api::ContainerState` as i32.
    pub state: i32,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image_ref: String,
}

impl ContainerRecord {
    pub fn running(&self) -> bool {
        self.state == api::ContainerState::ContainerRunning as i32
    }

    pub fn exited(&self) -> bool {
        self.state == api::ContainerState::ContainerExited as i32
    }

    pub fn from_status(status: &api::ContainerStatus, sandbox_id: &str) -> ContainerRecord {
        ContainerRecord {
            id: status.id.clone(),
            name: status
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default(),
            attempt: status.metadata.as_ref().map_or(0, |m| m.attempt),
            sandbox_id: sandbox_id.to_string(),
            state: status.state,
            created_at: status.created_at,
            started_at: status.started_at,
            finished_at: status.finished_at,
            exit_code: status.exit_code,
            reason: status.reason.clone(),
            message: status.message.clone(),
            image_ref: status.image_ref.clone(),
        }
    }
}

/// What the worker knows about the pod in the runtime.
#[derive(Debug, Clone, Default)]
pub struct RuntimePod {
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    /// Every container of the pod, newest first within a name.
    pub containers: Vec<ContainerRecord>,
}

impl RuntimePod {
    /// The containers named `name`, newest (highest attempt) first.
    pub fn by_name(&self, name: &str) -> Vec<&ContainerRecord> {
        let mut found: Vec<&ContainerRecord> =
            self.containers.iter().filter(|c| c.name == name).collect();
        found.sort_by_key(|c| std::cmp::Reverse((c.attempt, c.created_at)));
        found
    }

    pub fn latest(&self, name: &str) -> Option<&ContainerRecord> {
        self.by_name(name).into_iter().next()
    }
}

/// A waiting reason the worker decided (image pull errors, back-off, config errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// Everything beyond the runtime that status depends on.
#[derive(Debug, Default)]
pub struct StatusInputs<'a> {
    pub waiting: HashMap<String, Waiting>,
    /// Readiness-probe results by container name (absent: no probe → ready when running).
    pub readiness: HashMap<String, bool>,
    /// Startup-probe results by container name (absent: started when running).
    pub started: HashMap<String, bool>,
    pub host_ip: &'a str,
    /// Whether the pod's containers will never run again (terminal phase reached).
    pub terminal: bool,
}

fn time(ns: i64) -> Option<Time> {
    (ns > 0)
        .then(|| Timestamp::from_nanosecond(i128::from(ns)).ok().map(Time))
        .flatten()
}

fn terminated(record: &ContainerRecord) -> ContainerStateTerminated {
    let reason = if !record.reason.is_empty() {
        record.reason.clone()
    } else if record.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        exit_code: record.exit_code,
        reason: Some(reason),
        message: Some(record.message.clone()).filter(|m| !m.is_empty()),
        started_at: time(record.started_at),
        finished_at: time(record.finished_at),
        container_id: Some(format!("containerd://{}", record.id)),
        signal: None,
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: message.map(str::to_string),
        }),
        ..Default::default()
    }
}

fn container_status(
    container: &Container,
    runtime: &RuntimePod,
    inputs: &StatusInputs,
    default_waiting: &str,
) -> ContainerStatus {
    let records = runtime.by_name(&container.name);
    let override_waiting = inputs.waiting.get(&container.name);
    let image = container.image.clone().unwrap_or_default();
    let mut status = ContainerStatus {
        name: container.name.clone(),
        image: image.clone(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        ..Default::default()
    };
    let Some(latest) = records.first() else {
        let (reason, message) = override_waiting.map_or((default_waiting, None), |w| {
            (w.reason.as_str(), Some(w.message.as_str()))
        });
        status.state = Some(waiting(reason, message));
        return status;
    };
    status.restart_count = latest.attempt as i32;
    status.image_id = latest.image_ref.clone();
    status.container_id = Some(format!("containerd://{}", latest.id));
    let previous = records
        .get(1)
        .filter(|p| p.exited())
        .map(|p| ContainerState {
            terminated: Some(terminated(p)),
            ..Default::default()
        });
    if latest.running() {
        status.state = Some(ContainerState {
            running: Some(ContainerStateRunning {
                started_at: time(latest.started_at),
            }),
            ..Default::default()
        });
        status.last_state = previous;
        status.started = Some(inputs.started.get(&container.name).copied().unwrap_or(true));
        let has_probe = container.readiness_probe.is_some();
        status.ready = inputs
            .readiness
            .get(&container.name)
            .copied()
            .unwrap_or(!has_probe);
    } else if latest.exited() {
        match override_waiting {
            Some(w) => {
                // Waiting to be restarted: the exited one becomes lastState.
                status.state = Some(waiting(&w.reason, Some(&w.message)));
                status.last_state = Some(ContainerState {
                    terminated: Some(terminated(latest)),
                    ..Default::default()
                });
            }
            None => {
                status.state = Some(ContainerState {
                    terminated: Some(terminated(latest)),
                    ..Default::default()
                });
                status.last_state = previous;
            }
        }
    } else {
        let (reason, message) = override_waiting.map_or(("ContainerCreating", None), |w| {
            (w.reason.as_str(), Some(w.message.as_str()))
        });
        status.state = Some(waiting(reason, message));
        status.last_state = previous;
    }
    status
        .last_state
        .get_or_insert_with(ContainerState::default);
    status
}

/// Upstream `getPhase` (kubelet_pods.go), without restartable init containers.
pub fn phase(
    pod: &Pod,
    init: &[ContainerStatus],
    app: &[ContainerStatus],
    terminal: bool,
) -> &'static str {
    let restart_policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let state = |s: &ContainerStatus| s.state.clone().unwrap_or_default();
    let last_terminated =
        |s: &ContainerStatus| s.last_state.as_ref().and_then(|l| l.terminated.clone());
    let (mut pending_init, mut failed_init) = (0, 0);
    for s in init {
        let st = state(s);
        if st.running.is_some() {
            pending_init += 1;
        } else if let Some(t) = st.terminated {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else if st.waiting.is_some() {
            match last_terminated(s) {
                Some(t) if t.exit_code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            }
        } else {
            pending_init += 1;
        }
    }
    let (mut unknown, mut running, mut waiting_n, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for s in app {
        let st = state(s);
        if st.running.is_some() {
            running += 1;
        } else if let Some(t) = st.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if st.waiting.is_some() {
            if last_terminated(s).is_some() {
                stopped += 1;
            } else {
                waiting_n += 1;
            }
        } else {
            unknown += 1;
        }
    }
    if failed_init > 0 && restart_policy == "Never" {
        return "Failed";
    }
    let any_regular_started = app.iter().any(|s| {
        let st = state(s);
        st.running.is_some() || st.terminated.is_some() || last_terminated(s).is_some()
    });
    if (pending_init > 0 && !any_regular_started) || waiting_n > 0 {
        return "Pending";
    }
    if running > 0 && unknown == 0 {
        return "Running";
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if terminal {
            return if stopped == succeeded {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if restart_policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if restart_policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    previous: Option<&PodStatus>,
    now: &Time,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let old = previous.and_then(|p| p.conditions.iter().flatten().find(|c| c.type_ == type_));
    let last_transition_time = match old {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Some(now.clone()),
    };
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: if ok { None } else { reason.map(str::to_string) },
        message: if ok { None } else { message },
        last_transition_time,
        last_probe_time: None,
        observed_generation: None,
    }
}

/// The pod status the kubelet reports; `now` stamps condition transitions.
pub fn compute(
    pod: &Pod,
    runtime: &RuntimePod,
    inputs: &StatusInputs,
    now: Timestamp,
) -> PodStatus {
    let now = Time(now);
    let spec = pod.spec.clone().unwrap_or_default();
    let previous = pod.status.as_ref();
    let init_containers = spec.init_containers.clone().unwrap_or_default();
    let init: Vec<ContainerStatus> = init_containers
        .iter()
        .map(|c| container_status(c, runtime, inputs, "PodInitializing"))
        .collect();
    let initialized = init.iter().all(|s| {
        s.state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .is_some_and(|t| t.exit_code == 0)
    });
    let app_default = if initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let app: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, runtime, inputs, app_default))
        .collect();
    let phase = phase(pod, &init, &app, inputs.terminal);

    let not_ready: Vec<&str> = app
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let incomplete: Vec<&str> = init
        .iter()
        .filter(|s| {
            s.state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .is_none_or(|t| t.exit_code != 0)
        })
        .map(|s| s.name.as_str())
        .collect();
    let terminal_phase = phase == "Succeeded" || phase == "Failed";
    let ready_reason = if terminal_phase {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let containers_ready = not_ready.is_empty() && !terminal_phase;
    let unready_message = Some(format!(
        "containers with unready status: [{}]",
        not_ready.join(" ")
    ));
    let mut conditions = vec![
        condition(
            "PodReadyToStartContainers",
            runtime.sandbox_ready,
            None,
            None,
            previous,
            &now,
        ),
        condition(
            "Initialized",
            incomplete.is_empty() || (terminal_phase && !init.is_empty() && initialized),
            Some(if terminal_phase {
                "PodCompleted"
            } else {
                "ContainersNotInitialized"
            }),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
            previous,
            &now,
        ),
        condition(
            "Ready",
            containers_ready,
            Some(ready_reason),
            unready_message.clone(),
            previous,
            &now,
        ),
        condition(
            "ContainersReady",
            containers_ready,
            Some(ready_reason),
            unready_message,
            previous,
            &now,
        ),
    ];
    // PodScheduled is the scheduler's: keep it as it is.
    if let Some(scheduled) = previous.and_then(|p| {
        p.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled")
    }) {
        conditions.push(scheduled.clone());
    } else {
        conditions.push(condition("PodScheduled", true, None, None, None, &now));
    }
    if terminal_phase {
        // Upstream leaves PodReadyToStartContainers False once the sandbox is gone.
        conditions[0] = condition(
            "PodReadyToStartContainers",
            false,
            None,
            None,
            previous,
            &now,
        );
    }

    let pod_ip = runtime
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
        .or_else(|| previous.and_then(|p| p.pod_ip.clone()));
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(inputs.host_ip.to_string()).filter(|s| !s.is_empty()),
        host_ips: Some(vec![HostIP {
            ip: inputs.host_ip.to_string(),
        }])
        .filter(|_| !inputs.host_ip.is_empty()),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: previous.and_then(|p| p.start_time.clone()).or(Some(now)),
        init_container_statuses: Some(init).filter(|v| !v.is_empty()),
        container_statuses: Some(app),
        qos_class: Some(qos_class(&spec.containers, &init_containers).into()),
        ..Default::default()
    }
}

/// Upstream `GetPodQOS`: Guaranteed when every container has equal cpu and memory
/// requests and limits, BestEffort when none has any, else Burstable.
pub fn qos_class(containers: &[Container], init: &[Container]) -> &'static str {
    let all: Vec<&Container> = containers.iter().chain(init).collect();
    let get = |c: &Container, limits: bool, name: &str| {
        c.resources
            .as_ref()
            .and_then(|r| {
                if limits {
                    r.limits.as_ref()
                } else {
                    r.requests.as_ref()
                }
            })
            .and_then(|m| m.get(name))
            .map(|q| q.0.clone())
    };
    let any = all.iter().any(|c| {
        ["cpu", "memory"]
            .iter()
            .any(|n| get(c, true, n).is_some() || get(c, false, n).is_some())
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = all.iter().all(|c| {
        ["cpu", "memory"].iter().all(|n| {
            let limit = get(c, true, n);
            let request = get(c, false, n).or_else(|| limit.clone());
            limit.is_some() && request == limit
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(restart_policy: &str, init: &[&str], app: &[&str]) -> Pod {
        let c = |n: &&str| Container {
            name: n.to_string(),
            image: Some("busybox".into()),
            ..Default::default()
        };
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(restart_policy.into()),
                init_containers: Some(init.iter().map(c).collect()),
                containers: app.iter().map(c).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn record(
        name: &str,
        attempt: u32,
        state: api::ContainerState,
        exit_code: i32,
    ) -> ContainerRecord {
        ContainerRecord {
            id: format!("{name}-{attempt}"),
            name: name.into(),
            attempt,
            state: state as i32,
            created_at: 1_000 + i64::from(attempt),
            started_at: 1_700_000_000_000_000_000,
            finished_at: if state == api::ContainerState::ContainerExited {
                1_700_000_001_000_000_000
            } else {
                0
            },
            exit_code,
            ..Default::default()
        }
    }

    fn inputs() -> StatusInputs<'static> {
        StatusInputs {
            host_ip: "192.168.1.5",
            ..Default::default()
        }
    }

    fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
        s.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == t)
            .expect("condition")
    }

    #[test]
    fn two_running_containers_are_running_and_ready() {
        let p = pod("Always", &[], &["a", "b"]);
        let rt = RuntimePod {
            sandbox_ready: true,
            pod_ip: Some("10.88.0.5".into()),
            containers: vec![
                record("a", 0, api::ContainerState::ContainerRunning, 0),
                record("b", 0, api::ContainerState::ContainerRunning, 0),
            ],
        };
        let s = compute(&p, &rt, &inputs(), Timestamp::now());
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(s.pod_ip.as_deref(), Some("10.88.0.5"));
        assert_eq!(s.host_ip.as_deref(), Some("192.168.1.5"));
        let a = &s.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(a.container_id.as_deref(), Some("containerd://a-0"));
        assert!(a.ready);
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    }

    #[test]
    fn one_pending_container_keeps_the_pod_pending_and_unready() {
        let p = pod("Always", &[], &["a", "b"]);
        let rt = RuntimePod {
            sandbox_ready: true,
            pod_ip: None,
            containers: vec![record("a", 0, api::ContainerState::ContainerRunning, 0)],
        };
        let s = compute(&p, &rt, &inputs(), Timestamp::now());
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let ready = cond(&s, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("ContainersNotReady"))
        );
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [b]")
        );
    }

    #[test]
    fn never_policy_ends_succeeded_or_failed() {
        let p = pod("Never", &[], &["a"]);
        let ok = RuntimePod {
            containers: vec![record("a", 0, api::ContainerState::ContainerExited, 0)],
            ..Default::default()
        };
        assert_eq!(
            compute(&p, &ok, &inputs(), Timestamp::now())
                .phase
                .as_deref(),
            Some("Succeeded")
        );
        let failed = RuntimePod {
            containers: vec![record("a", 0, api::ContainerState::ContainerExited, 3)],
            ..Default::default()
        };
        let s = compute(&p, &failed, &inputs(), Timestamp::now());
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        let t = s.container_statuses.expect("statuses")[0]
            .state
            .clone()
            .expect("state")
            .terminated
            .expect("terminated");
        assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
    }

    #[test]
    fn crash_loop_shows_waiting_with_last_state_and_restart_count() {
        let p = pod("Always", &[], &["a"]);
        let rt = RuntimePod {
            sandbox_ready: true,
            containers: vec![
                record("a", 0, api::ContainerState::ContainerExited, 1),
                record("a", 1, api::ContainerState::ContainerExited, 1),
            ],
            ..Default::default()
        };
        let mut inp = inputs();
        inp.waiting.insert(
            "a".into(),
            Waiting {
                reason: "CrashLoopBackOff".into(),
                message: "back-off 10s".into(),
            },
        );
        let s = compute(&p, &rt, &inp, Timestamp::now());
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let a = &s.container_statuses.expect("statuses")[0];
        assert_eq!(a.restart_count, 1);
        assert_eq!(
            a.state
                .as_ref()
                .and_then(|st| st.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("CrashLoopBackOff")
        );
        assert_eq!(
            a.last_state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .map(|t| t.exit_code),
            Some(1)
        );
    }

    #[test]
    fn init_containers_gate_the_pod() {
        let p = pod("Always", &["i1", "i2"], &["a"]);
        let rt = RuntimePod {
            sandbox_ready: true,
            containers: vec![
                record("i1", 0, api::ContainerState::ContainerExited, 0),
                record("i2", 0, api::ContainerState::ContainerRunning, 0),
            ],
            ..Default::default()
        };
        let s = compute(&p, &rt, &inputs(), Timestamp::now());
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(
            cond(&s, "Initialized").message.as_deref(),
            Some("containers with incomplete status: [i2]")
        );
        let a = &s.container_statuses.expect("statuses")[0];
        assert_eq!(
            a.state
                .as_ref()
                .and_then(|st| st.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("PodInitializing")
        );
        let failed_never = pod("Never", &["i1"], &["a"]);
        let rt = RuntimePod {
            containers: vec![record("i1", 0, api::ContainerState::ContainerExited, 2)],
            ..Default::default()
        };
        assert_eq!(
            compute(&failed_never, &rt, &inputs(), Timestamp::now())
                .phase
                .as_deref(),
            Some("Failed")
        );
    }
}
