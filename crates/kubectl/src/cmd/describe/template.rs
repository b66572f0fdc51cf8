//! Upstream's `DescribePodTemplate` and the container/volume blocks it shares
//! with the pod describer.

use serde_json::{Map, Value};

use super::writer::{PrefixWriter, LEVEL_0, LEVEL_1, LEVEL_2, LEVEL_3};

const MAX_ANNOTATION_LEN: usize = 140;

fn string_map(v: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = v
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    pairs
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn or_none(text: &str) -> &str {
    if text.is_empty() {
        "<none>"
    } else {
        text
    }
}

/// `printLabelsMultilineWithIndent`.
/// The `Name:` and `Namespace:` lines most describers open with.
pub fn name_and_namespace(w: &mut PrefixWriter, obj: &Value) {
    w.write(
        LEVEL_0,
        &format!("Name:\t{}\n", super::field(obj, "/metadata/name")),
    );
    w.write(
        LEVEL_0,
        &format!("Namespace:\t{}\n", super::field(obj, "/metadata/namespace")),
    );
}

/// `Name:`, `Namespace:`, `Labels:` and `Annotations:`.
pub fn object_header(w: &mut PrefixWriter, obj: &Value) {
    name_and_namespace(w, obj);
    labels_multiline(w, "", "Labels", &obj["metadata"]["labels"]);
    annotations_multiline(w, "Annotations", &obj["metadata"]["annotations"]);
}

pub fn labels_multiline(w: &mut PrefixWriter, indent: &str, title: &str, labels: &Value) {
    w.write(LEVEL_0, &format!("{indent}{title}:\t"));
    let pairs = string_map(labels);
    if pairs.is_empty() {
        w.line("<none>");
        return;
    }
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i != 0 {
            w.write(LEVEL_0, &format!("{indent}\t"));
        }
        w.write(LEVEL_0, &format!("{k}={v}\n"));
    }
}

/// `printAnnotationsMultiline` (skips the last-applied configuration).
pub fn annotations_multiline(w: &mut PrefixWriter, title: &str, annotations: &Value) {
    w.write(LEVEL_0, &format!("{title}:\t"));
    let pairs: Vec<_> = string_map(annotations)
        .into_iter()
        .filter(|(k, _)| k != "kubectl.kubernetes.io/last-applied-configuration")
        .collect();
    if pairs.is_empty() {
        w.line("<none>");
        return;
    }
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i != 0 {
            w.write(LEVEL_0, "\t");
        }
        let value = v.strip_suffix('\n').unwrap_or(v);
        if value.len() + k.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w.write(LEVEL_0, &format!("{k}:\n"));
            for line in value.split('\n') {
                w.write(
                    LEVEL_0,
                    &format!("\t  {}\n", shorten(line, MAX_ANNOTATION_LEN - 2)),
                );
            }
        } else {
            w.write(LEVEL_0, &format!("{k}: {value}\n"));
        }
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.len() > max {
        format!("{}...", &text[..text.floor_char_boundary(max)])
    } else {
        text.to_string()
    }
}

/// `printTolerationsMultilineWithIndent`.
pub fn tolerations_multiline(w: &mut PrefixWriter, indent: &str, title: &str, tolerations: &Value) {
    w.write(LEVEL_0, &format!("{indent}{title}:\t"));
    let mut list = tolerations.as_array().cloned().unwrap_or_default();
    list.sort_by(|a, b| s(a, "key").cmp(s(b, "key")));
    if list.is_empty() {
        w.line("<none>");
        return;
    }
    for (i, t) in list.iter().enumerate() {
        if i != 0 {
            w.write(LEVEL_0, &format!("{indent}\t"));
        }
        let mut text = s(t, "key").to_string();
        if !s(t, "value").is_empty() {
            text.push_str(&format!("={}", s(t, "value")));
        }
        if !s(t, "effect").is_empty() {
            text.push_str(&format!(":{}", s(t, "effect")));
        }
        if s(t, "operator") == "Exists" && s(t, "value").is_empty() {
            if !s(t, "key").is_empty() || !s(t, "effect").is_empty() {
                text.push_str(" op=Exists");
            } else {
                text.push_str("op=Exists");
            }
        }
        if let Some(secs) = t["tolerationSeconds"].as_i64() {
            text.push_str(&format!(" for {secs}s"));
        }
        w.write(LEVEL_0, &format!("{text}\n"));
    }
}

/// `DescribePodTemplate`.
pub fn describe_pod_template(template: &Value, w: &mut PrefixWriter) {
    w.write(LEVEL_0, "Pod Template:\n");
    if template.is_null() {
        w.write(LEVEL_1, "<unset>");
        return;
    }
    let meta = &template["metadata"];
    let spec = &template["spec"];
    labels_multiline(w, "", "  Labels", &meta["labels"]);
    if meta["annotations"]
        .as_object()
        .is_some_and(|m| !m.is_empty())
    {
        annotations_multiline(w, "  Annotations", &meta["annotations"]);
    }
    if !s(spec, "serviceAccountName").is_empty() {
        w.write(
            LEVEL_1,
            &format!("Service Account:\t{}\n", s(spec, "serviceAccountName")),
        );
    }
    if spec["initContainers"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
    {
        describe_containers("Init Containers", &spec["initContainers"], None, w, "  ");
    }
    describe_containers("Containers", &spec["containers"], None, w, "  ");
    describe_volumes(&spec["volumes"], w, "  ");
    labels_multiline(w, "", "  Node-Selectors", &spec["nodeSelector"]);
    tolerations_multiline(w, "", "  Tolerations", &spec["tolerations"]);
    if !s(spec, "priorityClassName").is_empty() {
        w.write(
            LEVEL_1,
            &format!("Priority Class Name:\t{}\n", s(spec, "priorityClassName")),
        );
    }
}

fn ports(container: &Value, field: &str) -> String {
    container["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p[field].as_i64().unwrap_or(0),
                        p["protocol"].as_str().unwrap_or("TCP")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `describeContainers`; `statuses` are the pod's container statuses (None for
/// templates).
pub fn describe_containers(
    label: &str,
    containers: &Value,
    statuses: Option<&Value>,
    w: &mut PrefixWriter,
    space: &str,
) {
    let list = containers.as_array().cloned().unwrap_or_default();
    let none = if list.is_empty() { " <none>" } else { "" };
    w.write(LEVEL_0, &format!("{space}{label}:{none}\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in &list {
        let status = statuses
            .and_then(Value::as_array)
            .and_then(|st| st.iter().find(|st| st["name"] == c["name"]));
        w.write(LEVEL_1, &format!("{name_indent}{}:\n", s(c, "name")));
        if let Some(st) = status {
            w.write(
                LEVEL_2,
                &format!("Container ID:\t{}\n", s(st, "containerID")),
            );
        }
        w.write(LEVEL_2, &format!("Image:\t{}\n", s(c, "image")));
        if let Some(st) = status {
            w.write(LEVEL_2, &format!("Image ID:\t{}\n", s(st, "imageID")));
        }
        let p = ports(c, "containerPort");
        if p.contains(',') {
            w.write(LEVEL_2, &format!("Ports:\t{p}\n"));
        } else {
            w.write(LEVEL_2, &format!("Port:\t{}\n", or_none(&p)));
        }
        let hp = ports(c, "hostPort");
        if hp.contains(',') {
            w.write(LEVEL_2, &format!("Host Ports:\t{hp}\n"));
        } else {
            w.write(LEVEL_2, &format!("Host Port:\t{}\n", or_none(&hp)));
        }
        if let Some(policy) = c["restartPolicy"].as_str() {
            w.write(LEVEL_2, &format!("Restart Policy:\t{policy}\n"));
        }
        for (field, title) in [("command", "Command"), ("args", "Args")] {
            if let Some(items) = c[field].as_array().filter(|a| !a.is_empty()) {
                w.write(LEVEL_2, &format!("{title}:\n"));
                for item in items {
                    for line in item.as_str().unwrap_or_default().split('\n') {
                        w.write(LEVEL_3, &format!("{line}\n"));
                    }
                }
            }
        }
        if let Some(st) = status {
            super::pod::describe_container_state(st, w);
        }
        describe_resources(&c["resources"], w);
        describe_probes(c, w);
        describe_env(c, w);
        describe_mounts(c, w);
    }
}

fn sorted_resources(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    // upstream: cpu, memory, ephemeral-storage first, then the rest sorted
    let rank = |k: &str| match k {
        "cpu" => 0,
        "memory" => 1,
        "ephemeral-storage" => 2,
        _ => 3,
    };
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)).then(a.0.cmp(b.0)));
    v
}

fn describe_resources(resources: &Value, w: &mut PrefixWriter) {
    for (field, title) in [("limits", "Limits"), ("requests", "Requests")] {
        if let Some(m) = resources[field].as_object().filter(|m| !m.is_empty()) {
            w.write(LEVEL_2, &format!("{title}:\n"));
            for (k, v) in sorted_resources(m) {
                w.write(
                    LEVEL_3,
                    &format!("{k}:\t{}\n", v.as_str().unwrap_or_default()),
                );
            }
        }
    }
}

/// `describeContainerProbe`.
fn describe_probes(c: &Value, w: &mut PrefixWriter) {
    for (field, title) in [
        ("livenessProbe", "Liveness"),
        ("readinessProbe", "Readiness"),
        ("startupProbe", "Startup"),
    ] {
        if c[field].is_object() {
            w.write(
                LEVEL_2,
                &format!("{title}:\t{}\n", describe_probe(&c[field])),
            );
        }
    }
}

fn port_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "0".into(),
    }
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `DescribeProbe`.
pub fn describe_probe(probe: &Value) -> String {
    let num = |k: &str| probe[k].as_i64().unwrap_or(0);
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        num("initialDelaySeconds"),
        num("timeoutSeconds"),
        num("periodSeconds"),
        num("successThreshold"),
        num("failureThreshold")
    );
    if let Some(exec) = probe.get("exec") {
        let command: Vec<&str> = exec["command"]
            .as_array()
            .map(|a| a.iter().map(|c| c.as_str().unwrap_or_default()).collect())
            .unwrap_or_default();
        return format!("exec [{}] {attrs}", command.join(" "));
    }
    if let Some(http) = probe.get("httpGet") {
        let scheme = s(http, "scheme").to_lowercase();
        let port = port_string(&http["port"]);
        let host = if port.is_empty() {
            s(http, "host").to_string()
        } else {
            join_host_port(s(http, "host"), &port)
        };
        let mut path = s(http, "path").to_string();
        if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
            path.insert(0, '/');
        }
        let url = if scheme.is_empty() {
            format!("//{host}{path}")
        } else {
            format!("{scheme}://{host}{path}")
        };
        return format!("http-get {url} {attrs}");
    }
    if let Some(tcp) = probe.get("tcpSocket") {
        return format!(
            "tcp-socket {}:{} {attrs}",
            s(tcp, "host"),
            port_string(&tcp["port"])
        );
    }
    if let Some(grpc) = probe.get("grpc") {
        return format!(
            "grpc <pod>:{} {} {attrs}",
            grpc["port"].as_i64().unwrap_or(0),
            s(grpc, "service")
        );
    }
    format!("unknown {attrs}")
}

fn describe_env(c: &Value, w: &mut PrefixWriter) {
    if let Some(from) = c["envFrom"].as_array().filter(|a| !a.is_empty()) {
        w.write(LEVEL_2, "Environment Variables from:\n");
        for e in from {
            let (kind, r) = if e["configMapRef"].is_object() {
                ("ConfigMap", &e["configMapRef"])
            } else {
                ("Secret", &e["secretRef"])
            };
            let optional = r["optional"].as_bool().unwrap_or(false);
            let prefix = s(e, "prefix");
            if prefix.is_empty() {
                w.write(
                    LEVEL_3,
                    &format!("{}\t{kind}\tOptional: {optional}\n", s(r, "name")),
                );
            } else {
                w.write(
                    LEVEL_3,
                    &format!(
                        "{}\t{kind} with prefix '{prefix}'\tOptional: {optional}\n",
                        s(r, "name")
                    ),
                );
            }
        }
    }
    let env = c["env"].as_array().cloned().unwrap_or_default();
    let none = if env.is_empty() { "\t<none>" } else { "" };
    w.write(LEVEL_2, &format!("Environment:{none}\n"));
    for e in &env {
        let name = s(e, "name");
        let from = &e["valueFrom"];
        if from.is_null() {
            for (i, line) in s(e, "value").split('\n').enumerate() {
                if i == 0 {
                    w.write(LEVEL_3, &format!("{name}:\t{line}\n"));
                } else {
                    w.write(LEVEL_3, &format!("\t{line}\n"));
                }
            }
        } else if from["fieldRef"].is_object() {
            let r = &from["fieldRef"];
            w.write(
                LEVEL_3,
                &format!("{name}:\t ({}:{})\n", s(r, "apiVersion"), s(r, "fieldPath")),
            );
        } else if from["secretKeyRef"].is_object() {
            let r = &from["secretKeyRef"];
            w.write(
                LEVEL_3,
                &format!(
                    "{name}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                    s(r, "key"),
                    s(r, "name"),
                    r["optional"].as_bool().unwrap_or(false)
                ),
            );
        } else if from["configMapKeyRef"].is_object() {
            let r = &from["configMapKeyRef"];
            w.write(
                LEVEL_3,
                &format!(
                    "{name}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                    s(r, "key"),
                    s(r, "name"),
                    r["optional"].as_bool().unwrap_or(false)
                ),
            );
        } else if from["resourceFieldRef"].is_object() {
            let r = &from["resourceFieldRef"];
            w.write(
                LEVEL_3,
                &format!(
                    "{name}:\t{} ({})\n",
                    s(r, "containerName"),
                    s(r, "resource")
                ),
            );
        }
    }
}

fn describe_mounts(c: &Value, w: &mut PrefixWriter) {
    let mut mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
    let none = if mounts.is_empty() { "\t<none>" } else { "" };
    w.write(LEVEL_2, &format!("Mounts:{none}\n"));
    mounts.sort_by(|a, b| s(a, "mountPath").cmp(s(b, "mountPath")));
    for m in &mounts {
        let mut flags = vec![if m["readOnly"].as_bool().unwrap_or(false) {
            "ro".to_string()
        } else {
            "rw".to_string()
        }];
        if !s(m, "subPath").is_empty() {
            flags.push(format!("path={:?}", s(m, "subPath")));
        }
        w.write(
            LEVEL_3,
            &format!(
                "{} from {} ({})\n",
                s(m, "mountPath"),
                s(m, "name"),
                flags.join(",")
            ),
        );
    }
}

fn opt_bool(v: &Value) -> String {
    v.as_bool().map_or("<nil>".to_string(), |b| b.to_string())
}

/// `describeVolumes`.
pub fn describe_volumes(volumes: &Value, w: &mut PrefixWriter, space: &str) {
    let list = volumes.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        w.write(LEVEL_0, &format!("{space}Volumes:\t<none>\n"));
        return;
    }
    w.write(LEVEL_0, &format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in &list {
        w.write(LEVEL_1, &format!("{name_indent}{}:\n", s(v, "name")));
        if let Some(e) = v.get("emptyDir") {
            w.write(
                LEVEL_2,
                &format!(
                    "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t{}\n    SizeLimit:\t{}\n",
                    s(e, "medium"),
                    e["sizeLimit"].as_str().unwrap_or("<unset>")
                ),
            );
        } else if let Some(h) = v.get("hostPath") {
            w.write(
                LEVEL_2,
                &format!(
                    "Type:\tHostPath (bare host directory volume)\n    Path:\t{}\n    HostPathType:\t{}\n",
                    s(h, "path"),
                    h["type"].as_str().unwrap_or("<none>")
                ),
            );
        } else if let Some(c) = v.get("configMap") {
            w.write(
                LEVEL_2,
                &format!(
                    "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{}\n    Optional:\t{}\n",
                    s(c, "name"),
                    c["optional"].as_bool().unwrap_or(false)
                ),
            );
        } else if let Some(c) = v.get("secret") {
            w.write(
                LEVEL_2,
                &format!(
                    "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t{}\n    Optional:\t{}\n",
                    s(c, "secretName"),
                    c["optional"].as_bool().unwrap_or(false)
                ),
            );
        } else if let Some(p) = v.get("projected") {
            w.write(
                LEVEL_2,
                "Type:\tProjected (a volume that contains injected data from multiple sources)\n",
            );
            for src in p["sources"].as_array().cloned().unwrap_or_default() {
                if let Some(sec) = src.get("secret") {
                    w.write(
                        LEVEL_2,
                        &format!(
                            "SecretName:\t{}\n    SecretOptionalName:\t{}\n",
                            s(sec, "name"),
                            opt_bool(&sec["optional"])
                        ),
                    );
                } else if src.get("downwardAPI").is_some() {
                    w.write(LEVEL_2, "DownwardAPI:\ttrue\n");
                } else if let Some(cm) = src.get("configMap") {
                    w.write(
                        LEVEL_2,
                        &format!(
                            "ConfigMapName:\t{}\n    ConfigMapOptional:\t{}\n",
                            s(cm, "name"),
                            opt_bool(&cm["optional"])
                        ),
                    );
                } else if let Some(t) = src.get("serviceAccountToken") {
                    w.write(
                        LEVEL_2,
                        &format!(
                            "TokenExpirationSeconds:\t{}\n",
                            t["expirationSeconds"].as_i64().unwrap_or(3607)
                        ),
                    );
                }
            }
        } else if let Some(c) = v.get("persistentVolumeClaim") {
            w.write(
                LEVEL_2,
                &format!(
                    "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t{}\n    ReadOnly:\t{}\n",
                    s(c, "claimName"),
                    c["readOnly"].as_bool().unwrap_or(false)
                ),
            );
        } else {
            w.write(LEVEL_2, "<unknown>\n");
        }
    }
}
