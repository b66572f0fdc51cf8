//! ResourceQuota arithmetic shared by quota admission (kube-apiserver) and the
//! resourcequota controller (kube-controller-manager), so `status.used` agrees with
//! what admission charges: resource lists and their arithmetic (upstream
//! `k8s.io/apiserver/pkg/quota/v1`) and what each kind uses under quota names
//! (`pkg/quota/v1/evaluator/core`). Pure: no IO, the clock is a parameter.

mod evaluator;
mod list;

pub use evaluator::{
    constraints, matches_scopes, matching_resources, object_count_name, source_of, tracks, usage,
};
pub use list::{
    add, container_resources, equals, less_than_or_equal, mask, max, names, parse_list,
    pod_aggregate, pretty_print, remove_zeros, subtract_non_negative, to_json, Qty, ResourceList,
};
