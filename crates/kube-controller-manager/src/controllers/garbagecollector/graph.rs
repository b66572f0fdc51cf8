//! The dependency graph of every object with its owners (upstream `graph.go`,
//! `graph_builder.go`), without IO.

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
pub const ORPHAN_FINALIZER: &str = "orphan";

#[derive(Debug, Clone)]
pub struct Node {
    /// Index into `api_types::registry::RESOURCES`.
    pub resource: usize,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub resource_version: Option<String>,
    pub owners: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    pub deleting: bool,
}

impl Node {
    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }
}

#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn dependents(&self, uid: &str) -> Vec<Node> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d))
            .cloned()
            .collect()
    }

    /// Adds or replaces a node; returns the uids to look at again: the node, its
    /// owners (a foreground owner waits on it) and, when it is being deleted, its
    /// dependents.
    pub fn upsert(&mut self, node: Node) -> Vec<String> {
        let uid = node.uid.clone();
        if let Some(old) = self.nodes.remove(&uid) {
            for o in &old.owners {
                if let Some(set) = self.dependents.get_mut(&o.uid) {
                    set.remove(&uid);
                }
            }
        }
        for o in &node.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        let mut dirty = vec![uid.clone()];
        dirty.extend(node.owners.iter().map(|o| o.uid.clone()));
        if node.deleting {
            dirty.extend(self.dependents.get(&uid).into_iter().flatten().cloned());
        }
        self.nodes.insert(uid, node);
        dirty
    }

    /// Removes a node; returns its dependents (maybe dangling now) and owners.
    pub fn remove(&mut self, uid: &str) -> Vec<String> {
        let mut dirty: Vec<String> = self
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if let Some(old) = self.nodes.remove(uid) {
            for o in &old.owners {
                if let Some(set) = self.dependents.get_mut(&o.uid) {
                    set.remove(uid);
                }
                dirty.push(o.uid.clone());
            }
        }
        dirty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(uid: &str, owners: &[&str], deleting: bool) -> Node {
        Node {
            resource: 0,
            namespace: Some("ns".into()),
            name: uid.into(),
            uid: uid.into(),
            resource_version: None,
            owners: owners
                .iter()
                .map(|o| OwnerReference {
                    uid: (*o).into(),
                    ..Default::default()
                })
                .collect(),
            finalizers: Vec::new(),
            deleting,
        }
    }

    #[test]
    fn tracks_dependents_and_reports_what_to_revisit() {
        let mut g = Graph::default();
        g.upsert(node("owner", &[], false));
        assert_eq!(g.upsert(node("a", &["owner"], false)), ["a", "owner"]);
        g.upsert(node("b", &["owner"], false));
        let mut deps: Vec<String> = g.dependents("owner").into_iter().map(|n| n.uid).collect();
        deps.sort();
        assert_eq!(deps, ["a", "b"]);
        let mut dirty = g.upsert(node("owner", &[], true));
        dirty.sort();
        assert_eq!(dirty, ["a", "b", "owner"]);
        // b drops its owner reference.
        g.upsert(node("b", &[], false));
        assert_eq!(g.dependents("owner").len(), 1);
        let mut dirty = g.remove("owner");
        dirty.sort();
        assert_eq!(dirty, ["a"]);
        assert_eq!(g.remove("a"), ["owner"]);
    }
}
