//! PodSecurity admission (on by default) and the deprecated SecurityContextDeny
//! plugin, driven by the real kubectl against real etcd + our apiserver.

mod common;

use common::{kubectl, kubectl_stdin};

fn namespace(api: &test_support::ApiServer, name: &str, labels: &[(&str, &str)]) {
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("    {k}: {v}\n"))
        .collect();
    let yaml =
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n{labels}");
    kubectl_stdin(api, &["apply", "-f", "-"], &yaml).assert_success();
    kubectl_stdin(api, &["apply", "-f", "-"], &format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: {name}\n"))
        .assert_success();
}

const PLAIN_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\nspec:\n  containers:\n  - name: c\n    image: busybox\n";

const PRIVILEGED_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: priv\nspec:\n  hostNetwork: true\n  containers:\n  - name: c\n    image: busybox\n    securityContext:\n      privileged: true\n";

const RESTRICTED_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: good\nspec:\n  securityContext:\n    runAsNonRoot: true\n    seccompProfile:\n      type: RuntimeDefault\n  containers:\n  - name: c\n    image: busybox\n    securityContext:\n      allowPrivilegeEscalation: false\n      capabilities:\n        drop: [ALL]\n";

#[test]
fn pod_security_levels_enforce_and_warn() {
    let cluster = common::start();
    let api = &cluster.api;

    // restricted: a plain pod is rejected with upstream's exact message.
    namespace(
        api,
        "locked",
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    );
    let out = kubectl_stdin(api, &["apply", "-n", "locked", "-f", "-"], PLAIN_POD);
    out.assert_failure();
    assert!(
        out.stderr.contains(
            "pods \"plain\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        ),
        "{out}"
    );
    let out = kubectl_stdin(api, &["apply", "-n", "locked", "-f", "-"], PRIVILEGED_POD);
    out.assert_failure();
    assert!(
        out.stderr.contains(
            "violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
        ),
        "{out}"
    );
    assert!(
        out.stderr.contains("host namespaces (hostNetwork=true), privileged (container \"c\" must not set securityContext.privileged=true), runAsNonRoot != true"),
        "{out}"
    );
    kubectl_stdin(api, &["apply", "-n", "locked", "-f", "-"], RESTRICTED_POD).assert_success();

    // baseline: a plain pod passes, a privileged one does not.
    namespace(
        api,
        "base",
        &[
            ("pod-security.kubernetes.io/enforce", "baseline"),
            ("pod-security.kubernetes.io/enforce-version", "v1.32"),
        ],
    );
    kubectl_stdin(api, &["apply", "-n", "base", "-f", "-"], PLAIN_POD).assert_success();
    let out = kubectl_stdin(api, &["apply", "-n", "base", "-f", "-"], PRIVILEGED_POD);
    out.assert_failure();
    assert!(
        out.stderr.contains(
            "pods \"priv\" is forbidden: violates PodSecurity \"baseline:v1.32\": host namespaces (hostNetwork=true), privileged (container \"c\" must not set securityContext.privileged=true)"
        ),
        "{out}"
    );

    // warn: admitted, and kubectl prints the Warning header.
    namespace(
        api,
        "warned",
        &[("pod-security.kubernetes.io/warn", "restricted")],
    );
    let out = kubectl_stdin(api, &["apply", "-n", "warned", "-f", "-"], PLAIN_POD);
    out.assert_success();
    assert!(out.stderr.contains("Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"), "{out}");
    // A compliant pod gets no warning.
    let out = kubectl_stdin(api, &["apply", "-n", "warned", "-f", "-"], RESTRICTED_POD);
    out.assert_success();
    assert!(!out.stderr.contains("would violate"), "{out}");

    // Workloads are only warned about, even where pods are enforced.
    namespace(
        api,
        "strict",
        &[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/warn", "restricted"),
        ],
    );
    let out = kubectl(
        api,
        &[
            "create",
            "deployment",
            "web",
            "-n",
            "strict",
            "--image=nginx",
        ],
    );
    out.assert_success();
    assert!(out.stderr.contains("Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"nginx\""), "{out}");

    // No labels: privileged, anything goes.
    kubectl_stdin(api, &["apply", "-n", "default", "-f", "-"], PRIVILEGED_POD).assert_success();

    // Invalid labels are rejected; tightening enforce warns about existing pods.
    let out = kubectl(api, &["create", "namespace", "typo"]);
    out.assert_success();
    let out = kubectl(
        api,
        &[
            "label",
            "namespace",
            "typo",
            "pod-security.kubernetes.io/enforce=strict",
        ],
    );
    out.assert_failure();
    assert!(
        out.stderr.contains("The namespaces \"typo\" is invalid"),
        "{out}"
    );
    let labels = kubectl(
        api,
        &[
            "get",
            "namespace",
            "typo",
            "-o",
            "jsonpath={.metadata.labels}",
        ],
    );
    assert!(
        !labels.assert_success().stdout.contains("strict"),
        "{labels}"
    );
    let out = kubectl(
        api,
        &[
            "label",
            "namespace",
            "default",
            "pod-security.kubernetes.io/enforce=baseline",
        ],
    );
    out.assert_success();
    assert!(out.stderr.contains("Warning: existing pods in namespace \"default\" violate the new PodSecurity enforce level \"baseline:latest\""), "{out}");
    assert!(
        out.stderr
            .contains("Warning: priv: host namespaces, privileged"),
        "{out}"
    );
}

#[test]
fn security_context_deny_rejects_guarded_fields() {
    let cluster = common::start_with(&["--enable-admission-plugins=SecurityContextDeny"]);
    let api = &cluster.api;
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: runas\nspec:\n  securityContext:\n    runAsUser: 1000\n  containers:\n  - name: c\n    image: busybox\n";
    let out = kubectl_stdin(api, &["apply", "-f", "-"], pod);
    out.assert_failure();
    assert!(
        out.stderr.contains(
            "pods \"runas\" is forbidden: pod.Spec.SecurityContext.RunAsUser is forbidden"
        ),
        "{out}"
    );
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: selinux\nspec:\n  containers:\n  - name: c\n    image: busybox\n    securityContext:\n      seLinuxOptions:\n        level: s0\n";
    let out = kubectl_stdin(api, &["apply", "-f", "-"], pod);
    out.assert_failure();
    assert!(
        out.stderr
            .contains("SecurityContext.SELinuxOptions is forbidden"),
        "{out}"
    );
    kubectl_stdin(api, &["apply", "-f", "-"], PLAIN_POD).assert_success();
    assert!(cluster
        .api
        .log()
        .contains("SecurityContextDeny is deprecated"));
}
