//! The matching rules of upstream's persistentvolume binder (`pv_controller.go`
//! `syncUnboundClaim`, `index.go` `findBestMatchForClaim`), without IO.

use std::cmp::Ordering;

use api_types::quantity::ParsedQuantity;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

use crate::util::selector;

/// Set on a claim once the binder finished binding it.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on a claim (volumeName) or a volume (claimRef) the binder filled in itself.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";

pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

pub fn volume_class(volume: &PersistentVolume) -> &str {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

pub fn volume_phase(volume: &PersistentVolume) -> &str {
    volume
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn claim_phase(claim: &PersistentVolumeClaim) -> &str {
    claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn claim_volume_name(claim: &PersistentVolumeClaim) -> &str {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("")
}

/// Whether the volume's claimRef names this claim (upstream `IsVolumeBoundToClaim`):
/// same namespace and name, and the same uid unless the ref has none (pre-bound).
pub fn is_volume_bound_to_claim(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    if r.name.as_deref() != claim.metadata.name.as_deref()
        || r.namespace.as_deref() != claim.metadata.namespace.as_deref()
    {
        return false;
    }
    match (r.uid.as_deref(), claim.metadata.uid.as_deref()) {
        (None | Some(""), _) => true,
        (Some(a), Some(b)) => a == b,
        (Some(_), None) => false,
    }
}

fn quantity(
    q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
) -> Option<ParsedQuantity> {
    q.and_then(|q| ParsedQuantity::parse(&q.0).ok())
}

/// Why a volume cannot serve a claim, or `None` when it can (upstream
/// `checkVolumeSatisfyClaim`): class, access modes, capacity, volume mode, selector.
pub fn mismatch(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Option<String> {
    let (Some(vspec), Some(cspec)) = (volume.spec.as_ref(), claim.spec.as_ref()) else {
        return Some("missing spec".into());
    };
    if volume_class(volume) != claim_class(claim) {
        return Some("storageClassName does not match".into());
    }
    let offered = vspec.access_modes.clone().unwrap_or_default();
    if cspec
        .access_modes
        .iter()
        .flatten()
        .any(|m| !offered.contains(m))
    {
        return Some("incompatible accessMode".into());
    }
    let requested = quantity(
        cspec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage")),
    );
    let capacity = quantity(vspec.capacity.as_ref().and_then(|c| c.get("storage")));
    match (requested, capacity) {
        (Some(req), Some(cap)) if cap.cmp_value(&req) == Ordering::Less => {
            return Some("requested PV is too small".into())
        }
        (Some(_), None) => return Some("volume has no capacity".into()),
        _ => {}
    }
    let mode = |m: Option<&String>| m.map_or("Filesystem".to_string(), Clone::clone);
    if mode(vspec.volume_mode.as_ref()) != mode(cspec.volume_mode.as_ref()) {
        return Some("incompatible volumeMode".into());
    }
    if let Some(sel) = &cspec.selector {
        let matches = selector::from_api(sel)
            .is_some_and(|s| s.matches(&selector::labels_of(&volume.metadata.labels)));
        if !matches {
            return Some("volume labels do not match the claim's selector".into());
        }
    }
    None
}

/// The volume to bind an unbound claim to (upstream `findBestMatchForClaim`): a
/// volume pre-bound to it by claimRef wins; otherwise the smallest free volume
/// that satisfies it. `assumed` says whether a volume was just taken by another
/// claim (our writes the cache has not seen yet).
pub fn find_best_match<'a>(
    claim: &PersistentVolumeClaim,
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    assumed: impl Fn(&str) -> bool,
) -> Option<&'a PersistentVolume> {
    let mut best: Option<&PersistentVolume> = None;
    for volume in volumes {
        let name = volume.metadata.name.as_deref().unwrap_or("");
        if volume.metadata.deletion_timestamp.is_some() || mismatch(volume, claim).is_some() {
            continue;
        }
        let claim_ref = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        if claim_ref.is_some() {
            if is_volume_bound_to_claim(volume, claim) {
                return Some(volume);
            }
            continue;
        }
        // Volumes that are Released or Failed keep their claimRef; only free ones here.
        if assumed(name) || matches!(volume_phase(volume), "Released" | "Failed") {
            continue;
        }
        let size = |v: &PersistentVolume| {
            quantity(
                v.spec
                    .as_ref()
                    .and_then(|s| s.capacity.as_ref())
                    .and_then(|c| c.get("storage")),
            )
        };
        let smaller = match (best.and_then(size), size(volume)) {
            (Some(b), Some(s)) => s.cmp_value(&b) == Ordering::Less,
            (None, _) => best.is_none(),
            _ => false,
        };
        if smaller {
            best = Some(volume);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(
        name: &str,
        size: &str,
        modes: &[&str],
        class: &str,
        extra: serde_json::Value,
    ) -> PersistentVolume {
        let mut v = json!({
            "metadata": {"name": name, "labels": {"tier": "fast"}},
            "spec": {"capacity": {"storage": size}, "accessModes": modes, "storageClassName": class, "hostPath": {"path": "/tmp"}},
            "status": {"phase": "Available"},
        });
        if let Some(obj) = extra.as_object() {
            v["spec"].as_object_mut().expect("spec").extend(obj.clone());
        }
        serde_json::from_value(v).expect("pv")
    }

    fn pvc(request: &str, modes: &[&str], class: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "claim", "namespace": "ns", "uid": "u1"},
            "spec": {"accessModes": modes, "storageClassName": class, "resources": {"requests": {"storage": request}}},
        }))
        .expect("pvc")
    }

    #[test]
    fn smallest_matching_volume_wins() {
        let vols = [
            pv("big", "10Gi", &["ReadWriteOnce"], "manual", json!({})),
            pv(
                "small",
                "2Gi",
                &["ReadWriteOnce", "ReadOnlyMany"],
                "manual",
                json!({}),
            ),
            pv("tiny", "500Mi", &["ReadWriteOnce"], "manual", json!({})),
            pv("other-class", "1Gi", &["ReadWriteOnce"], "fast", json!({})),
            pv("rox-only", "1Gi", &["ReadOnlyMany"], "manual", json!({})),
        ];
        let claim = pvc("1Gi", &["ReadWriteOnce"], "manual");
        assert_eq!(
            find_best_match(&claim, &vols, |_| false).and_then(|v| v.metadata.name.as_deref()),
            Some("small")
        );
        assert_eq!(
            find_best_match(&claim, &vols, |n| n == "small")
                .and_then(|v| v.metadata.name.as_deref()),
            Some("big")
        );
        assert!(
            find_best_match(&pvc("20Gi", &["ReadWriteOnce"], "manual"), &vols, |_| false).is_none()
        );
        assert_eq!(
            mismatch(&vols[3], &claim).as_deref(),
            Some("storageClassName does not match")
        );
        assert_eq!(
            mismatch(&vols[4], &claim).as_deref(),
            Some("incompatible accessMode")
        );
    }

    #[test]
    fn claim_refs_pre_bind_and_exclude() {
        let claim = pvc("1Gi", &["ReadWriteOnce"], "");
        let pre_bound = pv(
            "pre",
            "5Gi",
            &["ReadWriteOnce"],
            "",
            json!({"claimRef": {"namespace": "ns", "name": "claim"}}),
        );
        let taken = pv(
            "taken",
            "1Gi",
            &["ReadWriteOnce"],
            "",
            json!({"claimRef": {"namespace": "ns", "name": "other", "uid": "u2"}}),
        );
        let free = pv("free", "1Gi", &["ReadWriteOnce"], "", json!({}));
        let vols = [free.clone(), taken, pre_bound];
        assert_eq!(
            find_best_match(&claim, &vols, |_| false).and_then(|v| v.metadata.name.as_deref()),
            Some("pre")
        );
        let wrong_uid = pv(
            "stale",
            "1Gi",
            &["ReadWriteOnce"],
            "",
            json!({"claimRef": {"namespace": "ns", "name": "claim", "uid": "old"}}),
        );
        assert!(!is_volume_bound_to_claim(&wrong_uid, &claim));
        assert_eq!(
            find_best_match(&claim, [&wrong_uid, &free], |_| false)
                .and_then(|v| v.metadata.name.as_deref()),
            Some("free")
        );
    }

    #[test]
    fn selector_filters_volumes() {
        let mut claim = pvc("1Gi", &["ReadWriteOnce"], "");
        claim.spec.as_mut().expect("spec").selector = Some(
            serde_json::from_value(json!({"matchLabels": {"tier": "slow"}})).expect("selector"),
        );
        let v = pv("a", "1Gi", &["ReadWriteOnce"], "", json!({}));
        assert!(mismatch(&v, &claim).is_some());
        claim.spec.as_mut().expect("spec").selector = Some(
            serde_json::from_value(json!({"matchLabels": {"tier": "fast"}})).expect("selector"),
        );
        assert_eq!(mismatch(&v, &claim), None);
    }
}
