//! `create quota NAME --hard=pods=2,cpu=1 [--scopes=...]` (upstream
//! `create_quota.go`).

use serde_json::{json, Map, Value};

use super::WriteOptions;
use crate::errors::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct QuotaArgs {
    pub name: String,
    /// A comma-delimited set of resource=quantity pairs that define a hard limit.
    #[arg(long)]
    pub hard: Option<String>,
    /// A comma-delimited set of quota scopes that must all match each object tracked by the quota.
    #[arg(long)]
    pub scopes: Option<String>,
    #[command(flatten)]
    pub write: WriteOptions,
}

pub fn quota(args: &QuotaArgs) -> Result<Value> {
    let mut spec = Map::new();
    if let Some(hard) = args.hard.as_deref().filter(|h| !h.is_empty()) {
        let mut limits = Map::new();
        for pair in hard.split(',') {
            let (name, quantity) = pair
                .split_once('=')
                .filter(|(n, q)| !n.is_empty() && !q.is_empty())
                .ok_or_else(|| Error::usage(format!("invalid input {pair:?}")))?;
            let parsed = api_types::quantity::ParsedQuantity::parse(quantity)
                .map_err(|_| {
                    Error::usage(
                        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    )
                })?;
            limits.insert(name.to_string(), json!(parsed.canonical()));
        }
        spec.insert("hard".into(), Value::Object(limits));
    }
    if let Some(scopes) = args.scopes.as_deref().filter(|s| !s.is_empty()) {
        let scopes: Vec<&str> = scopes.split(',').collect();
        spec.insert("scopes".into(), json!(scopes));
    }
    Ok(json!({"apiVersion": "v1", "kind": "ResourceQuota",
              "metadata": {"name": args.name}, "spec": spec, "status": {}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_limits_are_canonical_quantities() {
        let q = quota(&QuotaArgs {
            name: "q".into(),
            hard: Some("pods=2,cpu=1000m,memory=1Gi".into()),
            scopes: Some("BestEffort".into()),
            write: WriteOptions::default(),
        })
        .expect("quota");
        assert_eq!(
            q["spec"]["hard"],
            json!({"pods": "2", "cpu": "1", "memory": "1Gi"})
        );
        assert_eq!(q["spec"]["scopes"], json!(["BestEffort"]));
    }
}
