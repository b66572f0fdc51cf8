//! `describe namespace`.

use serde_json::Value;

use super::template::{annotations_multiline, labels_multiline};
use super::writer::{PrefixWriter, LEVEL_0};
use super::{field, sorted_entries};
use crate::context::Context;
use crate::errors::Result;

pub async fn describe(ctx: &Context, obj: &Value) -> Result<String> {
    let client = ctx.client().await?;
    let name = field(obj, "/metadata/name");
    let mut w = PrefixWriter::new();
    w.write(LEVEL_0, &format!("Name:\t{name}\n"));
    labels_multiline(&mut w, "", "Labels", &obj["metadata"]["labels"]);
    annotations_multiline(&mut w, "Annotations", &obj["metadata"]["annotations"]);
    w.write(
        LEVEL_0,
        &format!("Status:\t{}\n", field(obj, "/status/phase")),
    );
    let quotas = client
        .get(&format!("/api/v1/namespaces/{name}/resourcequotas"))
        .await?;
    let quotas = quotas["items"].as_array().cloned().unwrap_or_default();
    if quotas.is_empty() {
        w.write(LEVEL_0, "\nNo resource quota.\n");
    } else {
        w.write(LEVEL_0, "\nResource Quotas\n");
        for q in &quotas {
            w.write(
                LEVEL_0,
                &format!("  Name:\t{}\n", field(q, "/metadata/name")),
            );
            w.write(LEVEL_0, "  Resource\tUsed\tHard\n");
            w.write(LEVEL_0, "  --------\t---\t---\n");
            for (k, v) in sorted_entries(&q["status"]["hard"]) {
                let used = q["status"]["used"][k.as_str()].as_str().unwrap_or("0");
                w.write(
                    LEVEL_0,
                    &format!("  {k}\t{used}\t{}\n", v.as_str().unwrap_or_default()),
                );
            }
        }
    }
    let limits = client
        .get(&format!("/api/v1/namespaces/{name}/limitranges"))
        .await?;
    if limits["items"].as_array().is_none_or(|l| l.is_empty()) {
        w.write(LEVEL_0, "\nNo LimitRange resource.\n");
    }
    Ok(w.aligned())
}
