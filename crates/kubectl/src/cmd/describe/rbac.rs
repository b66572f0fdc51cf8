//! `describe role|clusterrole|rolebinding|clusterrolebinding`.

use std::collections::HashMap;

use serde_json::Value;

use super::template::{annotations_multiline, labels_multiline};
use super::writer::{PrefixWriter, LEVEL_0, LEVEL_1};
use super::{field, strings};

/// One `rbacv1.PolicyRule` with its lists.
#[derive(Debug, Clone, Default, PartialEq)]
struct Rule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

/// Go's `%v` of a `[]string`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

impl Rule {
    fn from_json(v: &Value) -> Rule {
        Rule {
            verbs: strings(&v["verbs"]),
            api_groups: strings(&v["apiGroups"]),
            resources: strings(&v["resources"]),
            resource_names: strings(&v["resourceNames"]),
            non_resource_urls: strings(&v["nonResourceURLs"]),
        }
    }

    /// The generated `PolicyRule.String()` upstream sorts by.
    fn sort_key(&self) -> String {
        format!(
            "&PolicyRule{{Verbs:{},APIGroups:{},Resources:{},ResourceNames:{},NonResourceURLs:{},}}",
            go_list(&self.verbs),
            go_list(&self.api_groups),
            go_list(&self.resources),
            go_list(&self.resource_names),
            go_list(&self.non_resource_urls)
        )
    }
}

/// `rbac.BreakdownRule`: one rule per group, resource (and resource name),
/// and one per non-resource URL.
fn breakdown(rule: &Rule) -> Vec<Rule> {
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            if rule.resource_names.is_empty() {
                out.push(Rule {
                    verbs: rule.verbs.clone(),
                    api_groups: vec![group.clone()],
                    resources: vec![resource.clone()],
                    ..Rule::default()
                });
            }
            for name in &rule.resource_names {
                out.push(Rule {
                    verbs: rule.verbs.clone(),
                    api_groups: vec![group.clone()],
                    resources: vec![resource.clone()],
                    resource_names: vec![name.clone()],
                    ..Rule::default()
                });
            }
        }
    }
    for url in &rule.non_resource_urls {
        out.push(Rule {
            verbs: rule.verbs.clone(),
            non_resource_urls: vec![url.clone()],
            ..Rule::default()
        });
    }
    out
}

/// `rbac.CompactRules`: verbs of rules on the same single resource merged.
fn compact(rules: Vec<Rule>) -> Vec<Rule> {
    let mut out = Vec::new();
    let mut simple: Vec<Rule> = Vec::new();
    let mut index: HashMap<(String, String, Option<String>), usize> = HashMap::new();
    for rule in rules {
        let is_simple = rule.non_resource_urls.is_empty()
            && rule.api_groups.len() == 1
            && rule.resources.len() == 1
            && rule.resource_names.len() <= 1;
        if !is_simple {
            out.push(rule);
            continue;
        }
        let key = (
            rule.api_groups[0].clone(),
            rule.resources[0].clone(),
            rule.resource_names.first().cloned(),
        );
        match index.get(&key) {
            Some(&i) => simple[i].verbs.extend(rule.verbs),
            None => {
                index.insert(key, simple.len());
                simple.push(rule);
            }
        }
    }
    out.extend(simple);
    out
}

/// `CombineResourceGroup`: `deployments.apps/scale`.
fn resource_group(resources: &[String], groups: &[String]) -> String {
    let Some(first) = resources.first() else {
        return String::new();
    };
    let (resource, sub) = match first.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (first.as_str(), None),
    };
    let mut text = resource.to_string();
    if let Some(g) = groups.first().filter(|g| !g.is_empty()) {
        text.push('.');
        text.push_str(g);
    }
    if let Some(s) = sub {
        text.push('/');
        text.push_str(s);
    }
    text
}

fn header(w: &mut PrefixWriter, obj: &Value) {
    w.write(
        LEVEL_0,
        &format!("Name:\t{}\n", field(obj, "/metadata/name")),
    );
    labels_multiline(w, "", "Labels", &obj["metadata"]["labels"]);
    annotations_multiline(w, "Annotations", &obj["metadata"]["annotations"]);
}

/// Role and ClusterRole.
pub fn role(obj: &Value) -> String {
    let rules: Vec<Rule> = obj["rules"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(Rule::from_json)
                .flat_map(|r| breakdown(&r))
                .collect()
        })
        .unwrap_or_default();
    let mut rules = compact(rules);
    rules.sort_by_cached_key(Rule::sort_key);
    let mut w = PrefixWriter::new();
    header(&mut w, obj);
    w.write(LEVEL_0, "PolicyRule:\n");
    w.write(
        LEVEL_1,
        "Resources\tNon-Resource URLs\tResource Names\tVerbs\n",
    );
    w.write(
        LEVEL_1,
        "---------\t-----------------\t--------------\t-----\n",
    );
    for r in &rules {
        w.write(
            LEVEL_1,
            &format!(
                "{}\t{}\t{}\t{}\n",
                resource_group(&r.resources, &r.api_groups),
                go_list(&r.non_resource_urls),
                go_list(&r.resource_names),
                go_list(&r.verbs)
            ),
        );
    }
    w.aligned()
}

/// RoleBinding and ClusterRoleBinding.
pub fn binding(obj: &Value) -> String {
    let mut w = PrefixWriter::new();
    header(&mut w, obj);
    w.write(LEVEL_0, "Role:\n");
    w.write(
        LEVEL_1,
        &format!("Kind:\t{}\n", field(obj, "/roleRef/kind")),
    );
    w.write(
        LEVEL_1,
        &format!("Name:\t{}\n", field(obj, "/roleRef/name")),
    );
    w.write(LEVEL_0, "Subjects:\n");
    w.write(LEVEL_1, "Kind\tName\tNamespace\n");
    w.write(LEVEL_1, "----\t----\t---------\n");
    for s in obj["subjects"].as_array().cloned().unwrap_or_default() {
        w.write(
            LEVEL_1,
            &format!(
                "{}\t{}\t{}\n",
                field(&s, "/kind"),
                field(&s, "/name"),
                field(&s, "/namespace")
            ),
        );
    }
    w.aligned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_broken_down_compacted_and_sorted() {
        let role_json = serde_json::json!({
            "metadata": {"name": "r"},
            "rules": [
                {"apiGroups": ["", "apps"], "resources": ["pods", "deployments/scale"], "verbs": ["get", "list"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["watch"]},
                {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}
            ]
        });
        let text = role(&role_json);
        // sorted by the rule's `String()`: verbs first, `[get list watch]`
        // before `[get list]` before `[get]`
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(6)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["pods", "[]", "[]", "[get", "list", "watch]"]);
        assert_eq!(rows[1][0], "deployments/scale");
        assert_eq!(rows[2][0], "deployments.apps/scale");
        assert_eq!(rows[3][0], "pods.apps");
        assert_eq!(rows[4], ["[/healthz]", "[]", "[get]"]);
        assert_eq!(rows.len(), 5, "{text}");
    }
}
