//! Label selectors of typed objects, evaluated with `api_types::selectors`.

use std::collections::BTreeMap;

use api_types::selectors::LabelSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as ApiLabelSelector;

/// A `metav1.LabelSelector`; `None` when it cannot be parsed. An empty selector
/// matches everything (callers treat a missing selector as matching nothing).
pub fn from_api(sel: &ApiLabelSelector) -> Option<LabelSelector> {
    let json = serde_json::to_value(sel).ok()?;
    LabelSelector::from_label_selector_json(&json).ok()
}

/// The equality selector of a map (RC and Service selectors).
pub fn from_map(map: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector::from_map(map)
}

/// Labels of an object, empty when unset.
pub fn labels_of(labels: &Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    labels.clone().unwrap_or_default()
}
