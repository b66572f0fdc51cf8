//! A pod spec as CRI configs: the sandbox (`PodSandboxConfig`) and each container
//! (`ContainerConfig`), as upstream's `kuberuntime_sandbox.go` and
//! `kuberuntime_container.go` build them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::resources;
use crate::cri::{api, labels};

/// Node-wide settings the configs depend on.
#[derive(Debug, Clone)]
pub struct SpecSettings {
    /// `/var/log/pods` upstream.
    pub pod_logs_dir: PathBuf,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
}

pub fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

pub fn pod_namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

pub fn pod_uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// `/var/log/pods/<ns>_<name>_<uid>`.
pub fn pod_log_dir(settings: &SpecSettings, pod: &Pod) -> PathBuf {
    settings.pod_logs_dir.join(format!(
        "{}_{}_{}",
        pod_namespace(pod),
        pod_name(pod),
        pod_uid(pod)
    ))
}

fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    HashMap::from([
        (labels::POD_NAME.to_string(), pod_name(pod).to_string()),
        (
            labels::POD_NAMESPACE.to_string(),
            pod_namespace(pod).to_string(),
        ),
        (labels::POD_UID.to_string(), pod_uid(pod).to_string()),
    ])
}

fn namespace_options(pod: &Pod) -> api::NamespaceOption {
    let spec = pod.spec.as_ref();
    let node = api::NamespaceMode::Node as i32;
    let pod_mode = api::NamespaceMode::Pod as i32;
    let host_pid = spec.and_then(|s| s.host_pid).unwrap_or(false);
    let host_ipc = spec.and_then(|s| s.host_ipc).unwrap_or(false);
    let share_pid = spec
        .and_then(|s| s.share_process_namespace)
        .unwrap_or(false);
    api::NamespaceOption {
        network: if host_network(pod) { node } else { pod_mode },
        pid: if host_pid {
            node
        } else if share_pid {
            pod_mode
        } else {
            api::NamespaceMode::Container as i32
        },
        ipc: if host_ipc { node } else { pod_mode },
        ..Default::default()
    }
}

/// The sandbox's hostname: empty for hostNetwork pods (the runtime keeps the
/// node's), else `spec.hostname` or the pod name cut to 63 characters.
pub fn sandbox_hostname(pod: &Pod) -> String {
    if host_network(pod) {
        return String::new();
    }
    let spec_hostname = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty());
    let mut name = spec_hostname.unwrap_or_else(|| pod_name(pod).to_string());
    name.truncate(63);
    name.trim_end_matches(['-', '.']).to_string()
}

fn dns_config(pod: &Pod, settings: &SpecSettings) -> Option<api::DnsConfig> {
    let spec = pod.spec.as_ref()?;
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster_first =
        policy == "ClusterFirstWithHostNet" || (policy == "ClusterFirst" && !host_network(pod));
    let mut config = if cluster_first && !settings.cluster_dns.is_empty() {
        let domain = &settings.cluster_domain;
        let ns = pod_namespace(pod);
        Some(api::DnsConfig {
            servers: settings.cluster_dns.clone(),
            searches: vec![
                format!("{ns}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.clone(),
            ],
            options: vec!["ndots:5".into()],
        })
    } else if policy == "None" {
        Some(api::DnsConfig::default())
    } else {
        // Default (or no cluster DNS): the runtime copies the node's resolv.conf.
        None
    };
    if let Some(custom) = &spec.dns_config {
        let c = config.get_or_insert_with(api::DnsConfig::default);
        c.servers
            .extend(custom.nameservers.iter().flatten().cloned());
        c.searches.extend(custom.searches.iter().flatten().cloned());
        for option in custom.options.iter().flatten() {
            let Some(name) = option.name.clone() else {
                continue;
            };
            c.options
                .retain(|o| o.split(':').next() != Some(name.as_str()));
            c.options.push(match &option.value {
                Some(v) => format!("{name}:{v}"),
                None => name,
            });
        }
    }
    config
}

fn port_mappings(pod: &Pod) -> Vec<api::PortMapping> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.is_some_and(|h| h > 0))
        .map(|p| api::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => api::Protocol::Udp as i32,
                Some("SCTP") => api::Protocol::Sctp as i32,
                _ => api::Protocol::Tcp as i32,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or_default(),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect()
}

pub fn sandbox_config(pod: &Pod, attempt: u32, settings: &SpecSettings) -> api::PodSandboxConfig {
    let mut labels = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect::<HashMap<_, _>>();
    labels.extend(pod_labels(pod));
    let security = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let privileged = pod
        .spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .any(|c| {
            c.security_context
                .as_ref()
                .and_then(|sc| sc.privileged)
                .unwrap_or(false)
        });
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: pod_name(pod).into(),
            uid: pod_uid(pod).into(),
            namespace: pod_namespace(pod).into(),
            attempt,
        }),
        hostname: sandbox_hostname(pod),
        log_directory: pod_log_dir(settings, pod).to_string_lossy().into_owned(),
        dns_config: dns_config(pod, settings),
        port_mappings: port_mappings(pod),
        labels,
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(api::LinuxPodSandboxConfig {
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                run_as_user: security
                    .and_then(|s| s.run_as_user)
                    .map(|value| api::Int64Value { value }),
                run_as_group: security
                    .and_then(|s| s.run_as_group)
                    .map(|value| api::Int64Value { value }),
                supplemental_groups: security
                    .and_then(|s| s.supplemental_groups.clone())
                    .unwrap_or_default(),
                privileged,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `<container>/<restartCount>.log`, relative to the sandbox's log directory.
pub fn container_log_path(name: &str, attempt: u32) -> String {
    Path::new(name)
        .join(format!("{attempt}.log"))
        .to_string_lossy()
        .into_owned()
}

/// A container's CRI config; `env` is already resolved, `mounts` already prepared.
pub fn container_config(
    pod: &Pod,
    container: &Container,
    attempt: u32,
    env: Vec<(String, String)>,
    mounts: Vec<api::Mount>,
) -> api::ContainerConfig {
    let defined: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expand_all = |v: &Option<Vec<String>>| {
        v.iter()
            .flatten()
            .map(|s| super::env::expand(s, &defined))
            .collect::<Vec<_>>()
    };
    let command = expand_all(&container.command);
    let args = expand_all(&container.args);
    let mut labels = pod_labels(pod);
    labels.insert(labels::CONTAINER_NAME.into(), container.name.clone());
    let grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    let annotations = HashMap::from([
        (
            labels::CONTAINER_RESTART_COUNT.to_string(),
            attempt.to_string(),
        ),
        (
            labels::POD_TERMINATION_GRACE_PERIOD.to_string(),
            grace.to_string(),
        ),
        (
            "io.kubernetes.container.terminationMessagePath".to_string(),
            container
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
    ]);
    let sc = container.security_context.as_ref();
    let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or_else(|| pod_sc.and_then(|s| s.run_as_user));
    let run_as_group = sc
        .and_then(|s| s.run_as_group)
        .or_else(|| pod_sc.and_then(|s| s.run_as_group));
    let capabilities = sc
        .and_then(|s| s.capabilities.as_ref())
        .map(|c| api::Capability {
            add_capabilities: c.add.clone().unwrap_or_default(),
            drop_capabilities: c.drop.clone().unwrap_or_default(),
            ..Default::default()
        });
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: container.name.clone(),
            attempt,
        }),
        image: Some(api::ImageSpec {
            image: container.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command,
        args,
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: env
            .into_iter()
            .map(|(key, value)| api::KeyValue { key, value })
            .collect(),
        mounts,
        labels,
        annotations,
        log_path: container_log_path(&container.name, attempt),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(resources::linux_resources(container)),
            security_context: Some(api::LinuxContainerSecurityContext {
                capabilities,
                privileged: sc.and_then(|s| s.privileged).unwrap_or(false),
                namespace_options: Some(namespace_options(pod)),
                run_as_user: run_as_user.map(|value| api::Int64Value { value }),
                run_as_group: run_as_group.map(|value| api::Int64Value { value }),
                readonly_rootfs: sc
                    .and_then(|s| s.read_only_root_filesystem)
                    .unwrap_or(false),
                no_new_privs: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn settings() -> SpecSettings {
        SpecSettings {
            pod_logs_dir: "/var/log/pods".into(),
            cluster_dns: vec!["10.254.0.10".into()],
            cluster_domain: "cluster.local".into(),
        }
    }

    fn pod(host_network: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                host_network: Some(host_network),
                containers: vec![Container {
                    name: "httpd".into(),
                    image: Some("busybox".into()),
                    command: Some(vec!["sh".into(), "-c".into()]),
                    args: Some(vec!["echo $(MSG) $$(MSG)".into()]),
                    ports: Some(vec![ContainerPort {
                        container_port: 80,
                        host_port: Some(8080),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sandbox_has_identity_logs_dns_and_ports() {
        let config = sandbox_config(&pod(false), 1, &settings());
        let meta = config.metadata.expect("metadata");
        assert_eq!(
            (
                meta.name.as_str(),
                meta.namespace.as_str(),
                meta.uid.as_str(),
                meta.attempt
            ),
            ("web", "shop", "u-1", 1)
        );
        assert_eq!(config.hostname, "web");
        assert_eq!(config.log_directory, "/var/log/pods/shop_web_u-1");
        assert_eq!(
            config
                .labels
                .get("io.kubernetes.pod.uid")
                .map(String::as_str),
            Some("u-1")
        );
        let dns = config.dns_config.expect("dns");
        assert_eq!(
            dns.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(config.port_mappings.len(), 1);
        assert_eq!(config.port_mappings[0].host_port, 8080);
    }

    #[test]
    fn host_network_sandbox_keeps_the_node_hostname() {
        let config = sandbox_config(&pod(true), 0, &settings());
        assert_eq!(config.hostname, "");
        assert!(
            config.dns_config.is_none(),
            "ClusterFirst falls back to Default on the host network"
        );
        let ns = config
            .linux
            .and_then(|l| l.security_context)
            .and_then(|s| s.namespace_options)
            .expect("namespaces");
        assert_eq!(ns.network, api::NamespaceMode::Node as i32);
    }

    #[test]
    fn container_args_are_expanded_and_log_path_counts_restarts() {
        let p = pod(false);
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let config = container_config(&p, c, 3, vec![("MSG".into(), "hello".into())], Vec::new());
        assert_eq!(config.command, ["sh", "-c"]);
        assert_eq!(config.args, ["echo hello $(MSG)"]);
        assert_eq!(config.log_path, "httpd/3.log");
        assert_eq!(
            config
                .labels
                .get("io.kubernetes.container.name")
                .map(String::as_str),
            Some("httpd")
        );
        assert_eq!(
            config
                .annotations
                .get("io.kubernetes.container.restartCount")
                .map(String::as_str),
            Some("3")
        );
    }
}
