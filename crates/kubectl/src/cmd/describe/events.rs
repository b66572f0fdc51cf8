//! Upstream's `searchEvents` and `DescribeEvents`.

use serde_json::Value;

use super::writer::{PrefixWriter, LEVEL_0, LEVEL_1};
use crate::context::Context;
use crate::errors::Result;
use crate::resource::ApiResource;

/// Events whose `involvedObject` is `obj` (name, namespace, kind, uid).
pub async fn for_object(ctx: &Context, resource: &ApiResource, obj: &Value) -> Result<Vec<Value>> {
    let client = ctx.client().await?;
    let meta = &obj["metadata"];
    let namespace = meta["namespace"].as_str().unwrap_or_default();
    let mut selector = vec![format!(
        "involvedObject.name={}",
        meta["name"].as_str().unwrap_or_default()
    )];
    if !namespace.is_empty() {
        selector.push(format!("involvedObject.namespace={namespace}"));
    }
    selector.push(format!("involvedObject.kind={}", resource.kind));
    if let Some(uid) = meta["uid"].as_str() {
        selector.push(format!("involvedObject.uid={uid}"));
    }
    let base = if namespace.is_empty() {
        "/api/v1/events".to_string()
    } else {
        format!("/api/v1/namespaces/{namespace}/events")
    };
    let path = format!(
        "{base}?fieldSelector={}&limit=500",
        crate::client::encode(&selector.join(","))
    );
    let list = client.get(&path).await?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

fn since(ts: Option<&str>) -> String {
    api_types::table::translate_timestamp_since(ts, chrono::Utc::now())
}

/// `DescribeEvents` (nothing when `events` is None: `--show-events=false`).
pub fn describe(events: Option<&Vec<Value>>, w: &mut PrefixWriter) {
    let Some(events) = events else {
        return;
    };
    if events.is_empty() {
        w.write(LEVEL_0, "Events:\t<none>\n");
        return;
    }
    w.flush();
    let mut sorted = events.clone();
    sorted.sort_by(|a, b| {
        let ts = |e: &Value| e["lastTimestamp"].as_str().unwrap_or_default().to_string();
        ts(a).cmp(&ts(b))
    });
    w.write(LEVEL_0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    w.write(LEVEL_1, "----\t------\t----\t----\t-------\n");
    for e in &sorted {
        let event_time = e["eventTime"].as_str().filter(|t| !t.is_empty());
        let first = match event_time {
            Some(t) => since(Some(t)),
            None => since(e["firstTimestamp"].as_str()),
        };
        let count = e["count"].as_i64().unwrap_or(0);
        let interval = if e["series"].is_object() {
            format!(
                "{} (x{} over {first})",
                since(e["series"]["lastObservedTime"].as_str()),
                e["series"]["count"].as_i64().unwrap_or(0)
            )
        } else if count > 1 {
            format!(
                "{} (x{count} over {first})",
                since(e["lastTimestamp"].as_str())
            )
        } else {
            first
        };
        let mut source = e["source"]["component"].as_str().unwrap_or_default();
        if source.is_empty() {
            source = e["reportingComponent"].as_str().unwrap_or_default();
        }
        w.write(
            LEVEL_1,
            &format!(
                "{}\t{}\t{interval}\t{source}\t{}\n",
                e["type"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default(),
                e["message"].as_str().unwrap_or_default().trim()
            ),
        );
    }
}
