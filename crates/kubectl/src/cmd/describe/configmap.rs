//! `describe configmap`.

use serde_json::Value;

use super::template::{object_header};
use super::writer::{PrefixWriter, LEVEL_0};
use super::events;

pub fn describe(obj: &Value, events: Option<&Vec<Value>>) -> String {
    let mut w = PrefixWriter::new();
    object_header(&mut w, obj);
    w.write(LEVEL_0, "\nData\n====\n");
    let mut data: Vec<(&String, &Value)> = obj["data"]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    data.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in data {
        w.write(LEVEL_0, &format!("{k}:\n----\n"));
        w.write(LEVEL_0, &format!("{}\n", v.as_str().unwrap_or_default()));
        w.write(LEVEL_0, "\n");
    }
    w.write(LEVEL_0, "\nBinaryData\n====\n");
    let mut binary: Vec<(&String, &Value)> = obj["binaryData"]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    binary.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in binary {
        use base64::Engine;
        let len = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map(|b| b.len())
            .unwrap_or(0);
        w.write(LEVEL_0, &format!("{k}: {len} bytes\n"));
    }
    w.write(LEVEL_0, "\n");
    events::describe(events, &mut w);
    w.aligned()
}
