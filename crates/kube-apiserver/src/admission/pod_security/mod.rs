//! PodSecurity admission (upstream `pod-security-admission`): the namespace labels
//! `pod-security.kubernetes.io/{enforce,warn,audit}[-version]` select a Pod Security
//! Standards level; pods violating the `enforce` level are rejected, `warn`
//! violations come back as `Warning` headers, `audit` ones as audit annotations.
//! Workload templates (Deployments, Jobs, ...) only get warnings and annotations.

pub mod checks;

use serde_json::Value;

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// One mode's level and version (`restricted:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelVersion {
    pub level: Level,
    pub version: String,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// The namespace's policy for the three modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub enforce: LevelVersion,
    pub warn: LevelVersion,
    pub audit: LevelVersion,
}

pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

fn valid_version(v: &str) -> bool {
    if v == "latest" {
        return true;
    }
    let Some(rest) = v.strip_prefix("v1.") else {
        return false;
    };
    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
}

/// The policy from namespace labels. Invalid values fail closed (restricted /
/// latest) and are reported, as upstream's `PolicyToEvaluate`.
pub fn policy_from_labels(labels: Option<&Value>) -> (Policy, Vec<String>) {
    let mut errors = Vec::new();
    // The label keys are looked up by their suffix: no key is built per request.
    let get = |k: &str| {
        labels
            .and_then(Value::as_object)?
            .iter()
            .find(|(key, _)| key.strip_prefix(LABEL_PREFIX) == Some(k))
            .and_then(|(_, v)| v.as_str())
    };
    let mut mode = |m: &str, version_label: &str| {
        let level = match get(m) {
            None => Level::Privileged,
            Some(l) => Level::parse(l).unwrap_or_else(|| {
                errors.push(format!("{LABEL_PREFIX}{m}: Invalid value: {l:?}: must be one of privileged, baseline, restricted"));
                Level::Restricted
            }),
        };
        let version = match get(version_label) {
            None => "latest".to_string(),
            Some(v) if valid_version(v) => v.to_string(),
            Some(v) => {
                errors.push(format!("{LABEL_PREFIX}{m}-version: Invalid value: {v:?}: must be \"latest\" or \"v1.x\""));
                "latest".to_string()
            }
        };
        LevelVersion { level, version }
    };
    let enforce = mode("enforce", "enforce-version");
    let warn = mode("warn", "warn-version");
    let audit = mode("audit", "audit-version");
    (
        Policy {
            enforce,
            warn,
            audit,
        },
        errors,
    )
}

/// `reason (detail), reason (detail)` of every failed check at `level`, or None.
pub fn evaluate(level: Level, metadata: &Value, spec: &Value) -> Option<String> {
    let failed: Vec<String> = failed_checks(level, metadata, spec)
        .into_iter()
        .map(|v| format!("{} ({})", v.reason, v.detail))
        .collect();
    if failed.is_empty() {
        None
    } else {
        Some(failed.join(", "))
    }
}

/// Only the reasons of the failed checks (for warnings about existing pods).
pub fn evaluate_reasons(level: Level, metadata: &Value, spec: &Value) -> Option<Vec<String>> {
    let reasons: Vec<String> = failed_checks(level, metadata, spec)
        .into_iter()
        .map(|v| v.reason)
        .collect();
    (!reasons.is_empty()).then_some(reasons)
}

fn failed_checks(level: Level, metadata: &Value, spec: &Value) -> Vec<checks::Violation> {
    if level == Level::Privileged {
        return Vec::new();
    }
    let overridden: Vec<&str> = checks::CHECKS
        .iter()
        .filter(|c| c.level <= level)
        .flat_map(|c| c.overrides.iter().copied())
        .collect();
    checks::CHECKS
        .iter()
        .filter(|c| c.level <= level && !overridden.contains(&c.id))
        .filter_map(|c| (c.run)(metadata, spec))
        .collect()
}

/// The pod metadata and spec of a pod or a workload template (None: nothing to check).
pub fn pod_spec_of<'a>(
    group: &str,
    plural: &str,
    obj: &'a Value,
) -> Option<(&'a Value, &'a Value)> {
    let template = match (group, plural) {
        ("", "pods") => {
            return Some((
                obj.get("metadata").unwrap_or(&Value::Null),
                obj.get("spec")?,
            ))
        }
        ("", "replicationcontrollers" | "podtemplates")
        | ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => {
            if plural == "podtemplates" {
                obj.get("template")?
            } else {
                obj.pointer("/spec/template")?
            }
        }
        ("batch", "cronjobs") => obj.pointer("/spec/jobTemplate/spec/template")?,
        _ => return None,
    };
    Some((
        template.get("metadata").unwrap_or(&Value::Null),
        template.get("spec")?,
    ))
}

/// Whether a pod update changes anything PodSecurity looks at (upstream
/// `isSignificantPodUpdate`: image-only and metadata-only updates are not).
pub fn significant_pod_update(new: &Value, old: &Value) -> bool {
    let strip = |p: &Value| {
        let mut spec = p.get("spec").cloned().unwrap_or(Value::Null);
        for key in ["initContainers", "containers", "ephemeralContainers"] {
            if let Some(cs) = spec.get_mut(key).and_then(Value::as_array_mut) {
                for c in cs {
                    if let Some(o) = c.as_object_mut() {
                        o.remove("image");
                    }
                }
            }
        }
        if let Some(o) = spec.as_object_mut() {
            o.remove("activeDeadlineSeconds");
            o.remove("tolerations");
        }
        let apparmor: Vec<(String, Value)> = p
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .map(|a| {
                a.iter()
                    .filter(|(k, _)| k.starts_with(APPARMOR_PREFIX))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        (spec, apparmor)
    };
    strip(new) != strip(old)
}

const APPARMOR_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// What PodSecurity says about one object.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The enforce violation message (`violates PodSecurity "restricted:latest": ...`).
    pub denied: Option<String>,
    pub warnings: Vec<String>,
    /// Audit annotations (`pod-security.kubernetes.io/audit-violations`, ...).
    pub audit_annotations: Vec<(String, String)>,
}

/// Evaluates a pod (enforce=true) or a workload template (enforce=false) against the
/// namespace's policy.
pub fn admit(
    policy: &Policy,
    policy_errors: &[String],
    metadata: &Value,
    spec: &Value,
    enforce: bool,
) -> Outcome {
    let mut out = Outcome::default();
    if !policy_errors.is_empty() {
        out.audit_annotations.push((
            "pod-security.kubernetes.io/error".into(),
            format!("Failed to parse policy: {}", policy_errors.join(", ")),
        ));
    }
    if enforce {
        out.audit_annotations.push((
            "pod-security.kubernetes.io/enforce-policy".into(),
            policy.enforce.to_string(),
        ));
        if let Some(why) = evaluate(policy.enforce.level, metadata, spec) {
            out.denied = Some(format!(
                "violates PodSecurity {:?}: {why}",
                policy.enforce.to_string()
            ));
            return out;
        }
    }
    if let Some(why) = evaluate(policy.audit.level, metadata, spec) {
        out.audit_annotations.push((
            "pod-security.kubernetes.io/audit-violations".into(),
            format!(
                "would violate PodSecurity {:?}: {why}",
                policy.audit.to_string()
            ),
        ));
    }
    // A warning repeats nothing the enforce check already covered.
    let warn_covered = enforce && policy.warn == policy.enforce;
    if !warn_covered {
        if let Some(why) = evaluate(policy.warn.level, metadata, spec) {
            out.warnings.push(format!(
                "would violate PodSecurity {:?}: {why}",
                policy.warn.to_string()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plain_pod() -> Value {
        json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    }

    #[test]
    fn restricted_message_matches_upstream() {
        let pod = plain_pod();
        let why = evaluate(Level::Restricted, &pod["metadata"], &pod["spec"]).expect("violates");
        assert_eq!(
            why,
            "allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert_eq!(
            evaluate(Level::Baseline, &pod["metadata"], &pod["spec"]),
            None
        );
    }

    #[test]
    fn baseline_checks() {
        let pod = json!({"spec": {
            "hostNetwork": true, "hostPID": true,
            "containers": [
                {"name": "a", "image": "i", "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN", "CHOWN"]}}, "ports": [{"containerPort": 80, "hostPort": 80}]},
                {"name": "b", "image": "i", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}
            ],
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
            "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}
        }});
        let why = evaluate(Level::Baseline, &Value::Null, &pod["spec"]).expect("violates");
        assert_eq!(
            why,
            "non-default capabilities (container \"a\" must not include \"NET_ADMIN\" in securityContext.capabilities.add), \
             host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume \"h\"), \
             hostPort (container \"a\" uses hostPort 80), privileged (container \"a\" must not set securityContext.privileged=true), \
             seccompProfile (container \"b\" must not set securityContext.seccompProfile.type to \"Unconfined\"), \
             forbidden sysctls (kernel.msgmax)"
        );
    }

    #[test]
    fn compliant_restricted_pod_passes() {
        let pod = json!({"spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": "i", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
            "volumes": [{"name": "v", "emptyDir": {}}]
        }});
        assert_eq!(
            evaluate(Level::Restricted, &Value::Null, &pod["spec"]),
            None
        );
    }

    #[test]
    fn labels_and_modes() {
        let labels = json!({"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/warn-version": "v1.30"});
        let (p, errs) = policy_from_labels(Some(&labels));
        assert!(errs.is_empty());
        assert_eq!(p.enforce.to_string(), "baseline:latest");
        assert_eq!(p.warn.to_string(), "restricted:v1.30");
        let pod = plain_pod();
        let out = admit(&p, &errs, &pod["metadata"], &pod["spec"], true);
        assert_eq!(out.denied, None);
        assert_eq!(out.warnings.len(), 1);
        assert!(out.warnings[0].starts_with(
            "would violate PodSecurity \"restricted:v1.30\": allowPrivilegeEscalation != false"
        ));
        let (bad, errs) = policy_from_labels(Some(
            &json!({"pod-security.kubernetes.io/enforce": "strict"}),
        ));
        assert_eq!(bad.enforce.level, Level::Restricted);
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn templates_are_found() {
        let d = json!({"spec": {"template": {"metadata": {}, "spec": {"containers": []}}}});
        assert!(pod_spec_of("apps", "deployments", &d).is_some());
        let cj =
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
        assert!(pod_spec_of("batch", "cronjobs", &cj).is_some());
        assert!(pod_spec_of("", "configmaps", &d).is_none());
    }
}
