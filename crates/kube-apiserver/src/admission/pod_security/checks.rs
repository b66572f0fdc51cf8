//! The Pod Security Standards checks (upstream `pod-security-admission/policy`), over
//! the JSON pod spec. Each check has upstream's ID (checks run in ID order), level,
//! forbidden reason and detail wording.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Level;

/// A failed check: `reason (detail)` in the aggregated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
    pub detail: String,
}

pub struct Check {
    pub id: &'static str,
    pub level: Level,
    /// Baseline checks a restricted check replaces.
    pub overrides: &'static [&'static str],
    pub run: fn(&Value, &Value) -> Option<Violation>,
}

/// Every check, sorted by ID as upstream's registry orders them.
pub const CHECKS: &[Check] = &[
    Check {
        id: "allowPrivilegeEscalation",
        level: Level::Restricted,
        overrides: &[],
        run: allow_privilege_escalation,
    },
    Check {
        id: "appArmorProfile",
        level: Level::Baseline,
        overrides: &[],
        run: app_armor,
    },
    Check {
        id: "capabilities_baseline",
        level: Level::Baseline,
        overrides: &[],
        run: capabilities_baseline,
    },
    Check {
        id: "capabilities_restricted",
        level: Level::Restricted,
        overrides: &["capabilities_baseline"],
        run: capabilities_restricted,
    },
    Check {
        id: "hostNamespaces",
        level: Level::Baseline,
        overrides: &[],
        run: host_namespaces,
    },
    Check {
        id: "hostPathVolumes",
        level: Level::Baseline,
        overrides: &[],
        run: host_path_volumes,
    },
    Check {
        id: "hostPorts",
        level: Level::Baseline,
        overrides: &[],
        run: host_ports,
    },
    Check {
        id: "privileged",
        level: Level::Baseline,
        overrides: &[],
        run: privileged,
    },
    Check {
        id: "procMount",
        level: Level::Baseline,
        overrides: &[],
        run: proc_mount,
    },
    Check {
        id: "restrictedVolumes",
        level: Level::Restricted,
        overrides: &["hostPathVolumes"],
        run: restricted_volumes,
    },
    Check {
        id: "runAsNonRoot",
        level: Level::Restricted,
        overrides: &[],
        run: run_as_non_root,
    },
    Check {
        id: "runAsUser",
        level: Level::Restricted,
        overrides: &[],
        run: run_as_user,
    },
    Check {
        id: "seLinuxOptions",
        level: Level::Baseline,
        overrides: &[],
        run: se_linux_options,
    },
    Check {
        id: "seccompProfile_baseline",
        level: Level::Baseline,
        overrides: &[],
        run: seccomp_baseline,
    },
    Check {
        id: "seccompProfile_restricted",
        level: Level::Restricted,
        overrides: &["seccompProfile_baseline"],
        run: seccomp_restricted,
    },
    Check {
        id: "sysctls",
        level: Level::Baseline,
        overrides: &[],
        run: sysctls,
    },
    Check {
        id: "windowsHostProcess",
        level: Level::Baseline,
        overrides: &[],
        run: windows_host_process,
    },
];

fn pluralize(singular: &str, plural: &str, n: usize) -> String {
    if n == 1 { singular } else { plural }.to_string()
}

/// `"a", "b"` as upstream's joinQuote.
fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("{:?}", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// containers, initContainers and ephemeralContainers, in that order.
fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| spec.get(k).and_then(Value::as_array).into_iter().flatten())
}

fn name(c: &Value) -> &str {
    c.get("name").and_then(Value::as_str).unwrap_or("")
}

fn sc<'a>(c: &'a Value, field: &str) -> Option<&'a Value> {
    c.get("securityContext")
        .and_then(|s| s.get(field))
        .filter(|v| !v.is_null())
}

fn fail(reason: &str, detail: String) -> Option<Violation> {
    Some(Violation {
        reason: reason.into(),
        detail,
    })
}

fn allow_privilege_escalation(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = containers(spec)
        .filter(|c| sc(c, "allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail(
        "allowPrivilegeEscalation != false",
        format!(
            "{} {} must set securityContext.allowPrivilegeEscalation=false",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad)
        ),
    )
}

const APPARMOR_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn app_armor(meta: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let allowed_type = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    if let Some(t) = spec
        .pointer("/securityContext/appArmorProfile/type")
        .and_then(Value::as_str)
    {
        if !allowed_type(t) {
            bad.push(format!(
                "pod must not set securityContext.appArmorProfile.type to {t:?}"
            ));
        }
    }
    for c in containers(spec) {
        if let Some(t) = sc(c, "appArmorProfile")
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
        {
            if !allowed_type(t) {
                bad.push(format!(
                    "container {:?} must not set securityContext.appArmorProfile.type to {t:?}",
                    name(c)
                ));
            }
        }
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let mut keys: Vec<_> = annotations.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in keys {
            let v = v.as_str().unwrap_or("");
            if k.starts_with(APPARMOR_PREFIX)
                && !(v.is_empty() || v == "runtime/default" || v.starts_with("localhost/"))
            {
                bad.push(format!("{k}={v:?}"));
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    bad.sort();
    fail(
        &pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            bad.len(),
        ),
        bad.join(", "),
    )
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_capabilities(c: &Value) -> Vec<&str> {
    sc(c, "capabilities")
        .and_then(|caps| caps.get("add"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn capabilities_baseline(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let extra: Vec<&str> = added_capabilities(c)
            .into_iter()
            .filter(|cap| !BASELINE_CAPABILITIES.contains(cap))
            .collect();
        if !extra.is_empty() {
            bad.push(name(c));
            caps.extend(extra);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let caps: Vec<&str> = caps.into_iter().collect();
    fail(
        "non-default capabilities",
        format!(
            "{} {} must not include {} in securityContext.capabilities.add",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad),
            join_quote(&caps)
        ),
    )
}

fn capabilities_restricted(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let dropped_all = sc(c, "capabilities")
            .and_then(|caps| caps.get("drop"))
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "ALL"));
        if !dropped_all {
            missing_drop.push(name(c));
        }
        let extra: Vec<&str> = added_capabilities(c)
            .into_iter()
            .filter(|cap| *cap != "NET_BIND_SERVICE")
            .collect();
        if !extra.is_empty() {
            adding.push(name(c));
            caps.extend(extra);
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} {} must set securityContext.capabilities.drop=[\"ALL\"]",
            pluralize("container", "containers", missing_drop.len()),
            join_quote(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        let caps: Vec<&str> = caps.into_iter().collect();
        details.push(format!(
            "{} {} must not include {} in securityContext.capabilities.add",
            pluralize("container", "containers", adding.len()),
            join_quote(&adding),
            join_quote(&caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    fail("unrestricted capabilities", details.join("; "))
}

fn host_namespaces(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = [
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
        ("hostIPC", "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(f, _)| spec.get(*f).and_then(Value::as_bool) == Some(true))
    .map(|(_, d)| d)
    .collect();
    if bad.is_empty() {
        return None;
    }
    fail("host namespaces", bad.join(", "))
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn host_path_volumes(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = volumes(spec)
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad)
        ),
    )
}

fn host_ports(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    for c in containers(spec) {
        let used: Vec<String> = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("hostPort").and_then(Value::as_i64))
            .filter(|p| *p != 0)
            .map(|p| p.to_string())
            .collect();
        if !used.is_empty() {
            bad.push(name(c));
            ports.extend(used);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    fail(
        "hostPort",
        format!(
            "{} {} {} {} {}",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

fn privileged(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = containers(spec)
        .filter(|c| sc(c, "privileged").and_then(Value::as_bool) == Some(true))
        .map(name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail(
        "privileged",
        format!(
            "{} {} must not set securityContext.privileged=true",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad)
        ),
    )
}

fn proc_mount(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut values = BTreeSet::new();
    for c in containers(spec) {
        if let Some(m) = sc(c, "procMount").and_then(Value::as_str) {
            if m != "Default" {
                bad.push(name(c));
                values.insert(m);
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let values: Vec<&str> = values.into_iter().collect();
    fail(
        "procMount",
        format!(
            "{} {} must not set securityContext.procMount to {}",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad),
            join_quote(&values)
        ),
    )
}

const ALLOWED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn restricted_volumes(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in volumes(spec) {
        let Some(o) = v.as_object() else { continue };
        let source: Vec<&str> = o
            .iter()
            .filter(|(k, val)| k.as_str() != "name" && !val.is_null())
            .map(|(k, _)| k.as_str())
            .collect();
        if source.iter().any(|t| !ALLOWED_VOLUME_TYPES.contains(t)) {
            bad.push(name(v));
            types.extend(
                source
                    .into_iter()
                    .filter(|t| !ALLOWED_VOLUME_TYPES.contains(t)),
            );
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<&str> = types.into_iter().collect();
    fail(
        "restricted volume types",
        format!(
            "{} {} {} restricted volume {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ),
    )
}

/// The restricted checks on a pod-level field that containers may override:
/// (explicitly bad setters, containers that inherit nothing good).
fn pod_or_containers<'a>(
    spec: &'a Value,
    field: &str,
    good: impl Fn(&Value) -> bool,
    bad_values: &mut BTreeSet<String>,
) -> (Vec<String>, Vec<&'a str>) {
    let mut setters = Vec::new();
    let mut pod_ok = false;
    if let Some(v) = spec
        .get("securityContext")
        .and_then(|s| s.get(field))
        .filter(|v| !v.is_null())
    {
        if good(v) {
            pod_ok = true;
        } else {
            setters.push("pod".to_string());
            bad_values.insert(value_text(v));
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        match sc(c, field) {
            Some(v) if !good(v) => {
                explicit.push(name(c));
                bad_values.insert(value_text(v));
            }
            Some(_) => {}
            None if !pod_ok => implicit.push(name(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(format!(
            "{} {}",
            pluralize("container", "containers", explicit.len()),
            join_quote(&explicit)
        ));
    }
    (setters, implicit)
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        other => other.to_string(),
    }
}

fn run_as_non_root(_meta: &Value, spec: &Value) -> Option<Violation> {
    let (setters, implicit) = pod_or_containers(
        spec,
        "runAsNonRoot",
        |v| v.as_bool() == Some(true),
        &mut BTreeSet::new(),
    );
    if !setters.is_empty() {
        return fail(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if !implicit.is_empty() {
        return fail(
            "runAsNonRoot != true",
            format!(
                "pod or {} {} must set securityContext.runAsNonRoot=true",
                pluralize("container", "containers", implicit.len()),
                join_quote(&implicit)
            ),
        );
    }
    None
}

fn run_as_user(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut setters = Vec::new();
    if spec
        .pointer("/securityContext/runAsUser")
        .and_then(Value::as_i64)
        == Some(0)
    {
        setters.push("pod".to_string());
    }
    let bad: Vec<&str> = containers(spec)
        .filter(|c| sc(c, "runAsUser").and_then(Value::as_i64) == Some(0))
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(format!(
            "{} {}",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad)
        ));
    }
    if setters.is_empty() {
        return None;
    }
    fail(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn se_linux_options(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut bad_types = BTreeSet::new();
    let mut user = false;
    let mut role = false;
    let mut check = |o: &Value| -> bool {
        let mut ok = true;
        if let Some(t) = o.get("type").and_then(Value::as_str) {
            if !SELINUX_TYPES.contains(&t) {
                bad_types.insert(t.to_string());
                ok = false;
            }
        }
        if o.get("user")
            .and_then(Value::as_str)
            .is_some_and(|u| !u.is_empty())
        {
            user = true;
            ok = false;
        }
        if o.get("role")
            .and_then(Value::as_str)
            .is_some_and(|r| !r.is_empty())
        {
            role = true;
            ok = false;
        }
        ok
    };
    if let Some(o) = spec.pointer("/securityContext/seLinuxOptions") {
        if !check(o) {
            setters.push("pod".to_string());
        }
    }
    let mut bad = Vec::new();
    for c in containers(spec) {
        if let Some(o) = sc(c, "seLinuxOptions") {
            if !check(o) {
                bad.push(name(c));
            }
        }
    }
    if !bad.is_empty() {
        setters.push(format!(
            "{} {}",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad)
        ));
    }
    if setters.is_empty() {
        return None;
    }
    // As upstream, user/role are only named alongside a bad type.
    let mut what = Vec::new();
    if !bad_types.is_empty() {
        let t: Vec<String> = bad_types.into_iter().collect();
        what.push(format!(
            "{} {}",
            pluralize("type", "types", t.len()),
            join_quote(&t)
        ));
        if user {
            what.push("user may not be set".to_string());
        }
        if role {
            what.push("role may not be set".to_string());
        }
    }
    fail(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            what.join("; ")
        ),
    )
}

fn seccomp_type(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

fn seccomp_baseline(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut setters = Vec::new();
    if spec
        .pointer("/securityContext/seccompProfile")
        .is_some_and(|p| seccomp_type(p) == "Unconfined")
    {
        setters.push("pod".to_string());
    }
    let bad: Vec<&str> = containers(spec)
        .filter(|c| sc(c, "seccompProfile").is_some_and(|p| seccomp_type(p) == "Unconfined"))
        .map(name)
        .collect();
    if !bad.is_empty() {
        setters.push(format!(
            "{} {}",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad)
        ));
    }
    if setters.is_empty() {
        return None;
    }
    fail(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
            setters.join(" and ")
        ),
    )
}

fn seccomp_restricted(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut bad_values = BTreeSet::new();
    let good = |p: &Value| matches!(seccomp_type(p), "RuntimeDefault" | "Localhost");
    let (setters, implicit) = pod_or_containers(spec, "seccompProfile", good, &mut bad_values);
    if !setters.is_empty() {
        let values: Vec<String> = bad_values.into_iter().collect();
        return fail(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&values)
            ),
        );
    }
    if !implicit.is_empty() {
        return fail(
            "seccompProfile",
            format!(
                "pod or {} {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                pluralize("container", "containers", implicit.len()),
                join_quote(&implicit)
            ),
        );
    }
    None
}

const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

fn sysctls(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = spec
        .pointer("/securityContext/sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail("forbidden sysctls", bad.join(", "))
}

fn windows_host_process(_meta: &Value, spec: &Value) -> Option<Violation> {
    let host = |v: Option<&Value>| {
        v.and_then(|o| o.get("hostProcess"))
            .and_then(Value::as_bool)
            == Some(true)
    };
    let pod = host(spec.pointer("/securityContext/windowsOptions"));
    let bad: Vec<&str> = containers(spec)
        .filter(|c| host(sc(c, "windowsOptions")))
        .map(name)
        .collect();
    let mut setters = Vec::new();
    if pod {
        setters.push("pod".to_string());
    }
    if !bad.is_empty() {
        setters.push(format!(
            "{} {}",
            pluralize("container", "containers", bad.len()),
            join_quote(&bad)
        ));
    }
    if setters.is_empty() {
        return None;
    }
    fail(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn detail(
        f: fn(&Value, &Value) -> Option<Violation>,
        meta: Value,
        spec: Value,
    ) -> Option<String> {
        f(&meta, &spec).map(|v| format!("{} ({})", v.reason, v.detail))
    }

    #[test]
    fn restricted_volume_types() {
        let spec = json!({"volumes": [{"name": "a", "hostPath": {"path": "/"}}, {"name": "b", "emptyDir": {}}, {"name": "c", "nfs": {"server": "x", "path": "/"}}]});
        assert_eq!(
            detail(restricted_volumes, Value::Null, spec).as_deref(),
            Some("restricted volume types (volumes \"a\", \"c\" use restricted volume types \"hostPath\", \"nfs\")")
        );
    }

    #[test]
    fn run_as_user_and_non_root() {
        let spec = json!({"securityContext": {"runAsUser": 0, "runAsNonRoot": false}, "containers": [{"name": "c", "securityContext": {"runAsUser": 0}}]});
        assert_eq!(
            detail(run_as_user, Value::Null, spec.clone()).as_deref(),
            Some("runAsUser=0 (pod and container \"c\" must not set runAsUser=0)")
        );
        assert_eq!(
            detail(run_as_non_root, Value::Null, spec).as_deref(),
            Some("runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)")
        );
    }

    #[test]
    fn selinux_proc_mount_sysctls_apparmor() {
        let spec = json!({"containers": [{"name": "c", "securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "u"}, "procMount": "Unmasked"}}]});
        assert_eq!(
            detail(se_linux_options, Value::Null, spec.clone()).as_deref(),
            Some("seLinuxOptions (container \"c\" set forbidden securityContext.seLinuxOptions: type \"spc_t\"; user may not be set)")
        );
        assert_eq!(detail(proc_mount, Value::Null, spec).as_deref(), Some("procMount (container \"c\" must not set securityContext.procMount to \"Unmasked\")"));
        let spec = json!({"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies"}, {"name": "kernel.sem"}]}, "containers": []});
        assert_eq!(
            detail(sysctls, Value::Null, spec).as_deref(),
            Some("forbidden sysctls (kernel.sem)")
        );
        let meta = json!({"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}});
        assert_eq!(
            detail(app_armor, meta, json!({"containers": []})).as_deref(),
            Some("forbidden AppArmor profile (container.apparmor.security.beta.kubernetes.io/c=\"unconfined\")")
        );
    }

    #[test]
    fn plural_host_ports() {
        let spec = json!({"containers": [
            {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}]},
            {"name": "b", "ports": [{"containerPort": 443, "hostPort": 8443}]}
        ]});
        assert_eq!(
            detail(host_ports, Value::Null, spec).as_deref(),
            Some("hostPort (containers \"a\", \"b\" use hostPorts 8080, 8443)")
        );
    }
}
