//! Upstream's controller roles (`bootstrappolicy/controller_policy.go`): one
//! `system:controller:<name>` ClusterRole per controller, bound to the ServiceAccount
//! `kube-system/<name>` the controller-manager runs that controller as with
//! `--use-service-account-credentials`.
//!
//! One deliberate difference: upstream controllers read through informers the
//! controller-manager runs with its own credentials, so their roles omit some
//! list/watch rights. Ours watch with the controller's own client, so those rules
//! are added here (marked "own watch"); and ours write status (and deployments,
//! PV claims) with PATCH where upstream's PUT, so `patch` accompanies `update` on
//! those resources.

use serde_json::Value;

use super::bootstrap_policy::{binding_to_service_account, rule, system_cluster_role};

pub const ROLE_PREFIX: &str = "system:controller:";

const READ: &[&str] = &["get", "list", "watch"];

fn events() -> Value {
    rule(
        &["create", "update", "patch"],
        &["", "events.k8s.io"],
        &["events"],
    )
}

/// (service account name, rules) of every controller role.
fn roles() -> Vec<(&'static str, Vec<Value>)> {
    let core = &[""];
    let apps_ext = &["apps", "extensions"];
    vec![
        (
            "attachdetach-controller",
            vec![
                rule(
                    &["list", "watch"],
                    core,
                    &["persistentvolumes", "persistentvolumeclaims"],
                ),
                rule(READ, core, &["nodes"]),
                rule(&["patch", "update"], core, &["nodes/status"]),
                rule(&["list", "watch"], core, &["pods"]),
                events(),
                rule(
                    &["get", "create", "delete", "list", "watch"],
                    &["storage.k8s.io"],
                    &["volumeattachments"],
                ),
                rule(
                    &["get", "watch", "list"],
                    &["storage.k8s.io"],
                    &["csidrivers"],
                ),
                rule(
                    &["get", "watch", "list"],
                    &["storage.k8s.io"],
                    &["csinodes"],
                ),
            ],
        ),
        (
            "clusterrole-aggregation-controller",
            vec![rule(
                &["escalate", "get", "list", "watch", "update", "patch"],
                &["rbac.authorization.k8s.io"],
                &["clusterroles"],
            )],
        ),
        (
            "cronjob-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &["batch"],
                    &["cronjobs"],
                ),
                rule(
                    &[
                        "get", "list", "watch", "create", "update", "delete", "patch",
                    ],
                    &["batch"],
                    &["jobs"],
                ),
                rule(&["update", "patch"], &["batch"], &["cronjobs/status"]),
                rule(&["update"], &["batch"], &["cronjobs/finalizers"]),
                rule(&["list", "watch", "delete"], core, &["pods"]),
                events(),
            ],
        ),
        (
            "daemon-set-controller",
            vec![
                rule(READ, apps_ext, &["daemonsets"]),
                rule(&["update", "patch"], apps_ext, &["daemonsets/status"]),
                rule(&["update"], apps_ext, &["daemonsets/finalizers"]),
                rule(&["list", "watch"], core, &["nodes"]),
                rule(
                    &["list", "watch", "create", "delete", "patch"],
                    core,
                    &["pods"],
                ),
                rule(&["create"], core, &["pods/binding"]),
                rule(
                    &[
                        "get", "list", "watch", "create", "delete", "update", "patch",
                    ],
                    &["apps"],
                    &["controllerrevisions"],
                ),
                events(),
            ],
        ),
        (
            "deployment-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    apps_ext,
                    &["deployments"],
                ),
                rule(&["update", "patch"], apps_ext, &["deployments/status"]),
                rule(&["update"], apps_ext, &["deployments/finalizers"]),
                rule(
                    &[
                        "get", "list", "watch", "create", "update", "patch", "delete",
                    ],
                    &["apps", "extensions"],
                    &["replicasets"],
                ),
                rule(&["get", "list", "watch", "update"], core, &["pods"]),
                events(),
            ],
        ),
        (
            "disruption-controller",
            vec![
                rule(READ, apps_ext, &["deployments"]),
                rule(READ, &["apps", "extensions"], &["replicasets"]),
                rule(READ, core, &["replicationcontrollers"]),
                rule(READ, &["policy"], &["poddisruptionbudgets"]),
                rule(READ, &["apps"], &["statefulsets"]),
                rule(&["update"], &["policy"], &["poddisruptionbudgets/status"]),
                rule(&["patch", "update"], core, &["pods/status"]),
                rule(&["get"], &["*"], &["*/scale"]),
                events(),
            ],
        ),
        (
            "endpoint-controller",
            vec![
                rule(READ, core, &["services", "pods"]),
                rule(
                    &["get", "list", "watch", "create", "update", "delete"],
                    core,
                    &["endpoints"],
                ),
                rule(&["create"], core, &["endpoints/restricted"]),
                events(),
            ],
        ),
        (
            "endpointslice-controller",
            vec![
                rule(READ, core, &["services", "pods", "nodes"]),
                rule(&["update"], core, &["services/finalizers"]),
                rule(
                    &["get", "list", "watch", "create", "update", "delete"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
                events(),
            ],
        ),
        (
            "endpointslicemirroring-controller",
            vec![
                rule(READ, core, &["services", "endpoints"]),
                rule(&["update"], core, &["services/finalizers"]),
                rule(&["update"], core, &["endpoints/finalizers"]),
                rule(
                    &["get", "list", "watch", "create", "update", "delete"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
                events(),
            ],
        ),
        (
            "generic-garbage-collector",
            vec![
                rule(
                    &["get", "list", "watch", "patch", "update", "delete"],
                    &["*"],
                    &["*"],
                ),
                events(),
            ],
        ),
        (
            "horizontal-pod-autoscaler",
            vec![
                rule(READ, &["autoscaling"], &["horizontalpodautoscalers"]),
                rule(
                    &["update", "patch"],
                    &["autoscaling"],
                    &["horizontalpodautoscalers/status"],
                ),
                rule(&["get", "update"], &["*"], &["*/scale"]),
                rule(&["list", "watch"], core, &["pods"]),
                rule(&["list", "watch"], &["metrics.k8s.io"], &["pods"]),
                rule(READ, &["custom.metrics.k8s.io"], &["*"]),
                rule(READ, &["external.metrics.k8s.io"], &["*"]),
                events(),
            ],
        ),
        (
            "job-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &["batch"],
                    &["jobs"],
                ),
                rule(&["update", "patch"], &["batch"], &["jobs/status"]),
                rule(&["update"], &["batch"], &["jobs/finalizers"]),
                rule(
                    &["list", "watch", "create", "delete", "patch"],
                    core,
                    &["pods"],
                ),
                events(),
            ],
        ),
        (
            "namespace-controller",
            vec![
                rule(&["get", "list", "watch", "delete"], core, &["namespaces"]),
                rule(
                    &["update"],
                    core,
                    &["namespaces/finalize", "namespaces/status"],
                ),
                rule(
                    &["get", "list", "watch", "delete", "deletecollection"],
                    &["*"],
                    &["*"],
                ),
            ],
        ),
        (
            "node-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update", "delete", "patch"],
                    core,
                    &["nodes"],
                ),
                rule(&["patch", "update"], core, &["nodes/status"]),
                rule(&["patch", "update"], core, &["pods/status"]),
                rule(&["list", "watch", "get", "delete"], core, &["pods"]),
                events(),
                // own watch: node heartbeats.
                rule(READ, &["coordination.k8s.io"], &["leases"]),
            ],
        ),
        (
            "persistent-volume-binder",
            vec![
                rule(
                    &["get", "list", "watch", "update", "create", "delete"],
                    core,
                    &["persistentvolumes"],
                ),
                rule(&["update", "patch"], core, &["persistentvolumes/status"]),
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    core,
                    &["persistentvolumeclaims"],
                ),
                rule(
                    &["update", "patch"],
                    core,
                    &["persistentvolumeclaims/status"],
                ),
                rule(
                    &["list", "watch", "get", "create", "delete"],
                    core,
                    &["pods"],
                ),
                rule(READ, &["storage.k8s.io"], &["storageclasses"]),
                rule(&["list", "watch"], core, &["nodes"]),
                events(),
                rule(&["watch"], core, &["events"]),
                rule(&["get"], core, &["services"]),
            ],
        ),
        (
            "pod-garbage-collector",
            vec![
                rule(&["list", "watch", "delete"], core, &["pods"]),
                rule(READ, core, &["nodes"]),
                rule(&["patch"], core, &["pods/status"]),
            ],
        ),
        (
            "replicaset-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &["apps", "extensions"],
                    &["replicasets"],
                ),
                rule(
                    &["update", "patch"],
                    &["apps", "extensions"],
                    &["replicasets/status"],
                ),
                rule(
                    &["update"],
                    &["apps", "extensions"],
                    &["replicasets/finalizers"],
                ),
                rule(
                    &["list", "watch", "patch", "create", "delete"],
                    core,
                    &["pods"],
                ),
                events(),
            ],
        ),
        (
            "replication-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    core,
                    &["replicationcontrollers"],
                ),
                rule(
                    &["update", "patch"],
                    core,
                    &["replicationcontrollers/status"],
                ),
                rule(&["update"], core, &["replicationcontrollers/finalizers"]),
                rule(
                    &["list", "watch", "patch", "create", "delete"],
                    core,
                    &["pods"],
                ),
                events(),
            ],
        ),
        (
            "resourcequota-controller",
            vec![
                rule(&["list", "watch"], &["*"], &["*"]),
                rule(&["update", "patch"], core, &["resourcequotas/status"]),
                events(),
            ],
        ),
        (
            "route-controller",
            vec![
                rule(&["list", "watch"], core, &["nodes"]),
                rule(&["patch"], core, &["nodes/status"]),
                events(),
            ],
        ),
        (
            "service-account-controller",
            vec![
                rule(&["create"], core, &["serviceaccounts"]),
                events(),
                // own watch: namespaces and their accounts.
                rule(&["list", "watch"], core, &["namespaces", "serviceaccounts"]),
            ],
        ),
        (
            "service-controller",
            vec![
                rule(READ, core, &["services"]),
                rule(&["patch", "update"], core, &["services/status"]),
                rule(&["list", "watch"], core, &["nodes"]),
                events(),
            ],
        ),
        (
            "statefulset-controller",
            vec![
                rule(&["list", "watch"], core, &["pods"]),
                rule(READ, &["apps"], &["statefulsets"]),
                rule(&["update"], &["apps"], &["statefulsets/status"]),
                rule(&["update"], &["apps"], &["statefulsets/finalizers"]),
                rule(
                    &["get", "create", "delete", "update", "patch"],
                    core,
                    &["pods"],
                ),
                rule(
                    &[
                        "get", "create", "delete", "update", "patch", "list", "watch",
                    ],
                    &["apps"],
                    &["controllerrevisions"],
                ),
                rule(
                    &["get", "create", "list", "watch"],
                    core,
                    &["persistentvolumeclaims"],
                ),
                rule(&["update", "delete"], core, &["persistentvolumeclaims"]),
                rule(&["update"], core, &["pods/finalizers"]),
                events(),
            ],
        ),
        (
            "ttl-controller",
            vec![
                rule(&["update", "patch", "list", "watch"], core, &["nodes"]),
                events(),
            ],
        ),
        (
            "certificate-controller",
            vec![
                rule(
                    &["get", "list", "watch", "delete"],
                    &["certificates.k8s.io"],
                    &["certificatesigningrequests"],
                ),
                rule(
                    &["update"],
                    &["certificates.k8s.io"],
                    &[
                        "certificatesigningrequests/status",
                        "certificatesigningrequests/approval",
                    ],
                ),
                super::bootstrap_policy::named_rule(
                    &["approve"],
                    &["certificates.k8s.io"],
                    &["signers"],
                    &["kubernetes.io/kube-apiserver-client-kubelet"],
                ),
                super::bootstrap_policy::named_rule(
                    &["sign"],
                    &["certificates.k8s.io"],
                    &["signers"],
                    &[
                        "kubernetes.io/legacy-unknown",
                        "kubernetes.io/kube-apiserver-client",
                        "kubernetes.io/kube-apiserver-client-kubelet",
                        "kubernetes.io/kubelet-serving",
                    ],
                ),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
                events(),
            ],
        ),
        (
            "pvc-protection-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    core,
                    &["persistentvolumeclaims"],
                ),
                rule(&["list", "watch", "get"], core, &["pods"]),
                events(),
            ],
        ),
        (
            "pv-protection-controller",
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    core,
                    &["persistentvolumes"],
                ),
                events(),
            ],
        ),
        (
            "ttl-after-finished-controller",
            vec![
                rule(&["get", "list", "watch", "delete"], &["batch"], &["jobs"]),
                events(),
            ],
        ),
        (
            "root-ca-cert-publisher",
            vec![
                rule(&["create", "update"], core, &["configmaps"]),
                events(),
                // own watch: namespaces and the published ConfigMaps.
                rule(&["list", "watch"], core, &["namespaces", "configmaps"]),
            ],
        ),
    ]
}

/// The `system:controller:*` ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    roles()
        .into_iter()
        .map(|(name, rules)| system_cluster_role(&format!("{ROLE_PREFIX}{name}"), rules))
        .collect()
}

/// One binding per role, to `kube-system/<name>`.
pub fn cluster_role_bindings() -> Vec<Value> {
    roles()
        .into_iter()
        .map(|(name, _)| {
            let role = format!("{ROLE_PREFIX}{name}");
            binding_to_service_account(&role, &role, "kube-system", name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_a_binding_to_its_service_account() {
        let roles = cluster_roles();
        let bindings = cluster_role_bindings();
        assert_eq!(roles.len(), bindings.len());
        let rs = bindings
            .iter()
            .find(|b| b["metadata"]["name"] == "system:controller:replicaset-controller")
            .expect("binding");
        assert_eq!(rs["subjects"][0]["kind"], "ServiceAccount");
        assert_eq!(rs["subjects"][0]["namespace"], "kube-system");
        assert_eq!(rs["subjects"][0]["name"], "replicaset-controller");
        assert_eq!(
            rs["roleRef"]["name"],
            "system:controller:replicaset-controller"
        );
    }
}
