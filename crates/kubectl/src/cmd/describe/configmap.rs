//! `describe configmap`.

use serde_json::Value;

use super::template::object_header;
use super::writer::{PrefixWriter, LEVEL_0};
use super::{base64_bytes, events, sorted_entries};

pub fn describe(obj: &Value, events: Option<&Vec<Value>>) -> String {
    let mut w = PrefixWriter::new();
    object_header(&mut w, obj);
    w.write(LEVEL_0, "\nData\n====\n");
    for (k, v) in sorted_entries(&obj["data"]) {
        w.write(LEVEL_0, &format!("{k}:\n----\n"));
        w.write(LEVEL_0, &format!("{}\n", v.as_str().unwrap_or_default()));
        w.write(LEVEL_0, "\n");
    }
    w.write(LEVEL_0, "\nBinaryData\n====\n");
    for (k, v) in sorted_entries(&obj["binaryData"]) {
        w.write(LEVEL_0, &format!("{k}: {} bytes\n", base64_bytes(v).len()));
    }
    w.write(LEVEL_0, "\n");
    events::describe(events, &mut w);
    w.aligned()
}
