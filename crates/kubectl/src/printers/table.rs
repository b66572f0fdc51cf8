//! Human-readable output from server-side `meta.k8s.io/v1` Tables, laid out as
//! upstream's `tablePrinter`: uppercase headers, priority-0 columns unless `-o wide`,
//! `NAMESPACE` first with `-A`, `kind/name` when several types print, label columns.

use serde_json::Value;

/// How to render one resource type's table.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    pub wide: bool,
    pub no_headers: bool,
    pub with_namespace: bool,
    /// `pod`, `deployment.apps`: prefix for names when several types print.
    pub kind_prefix: Option<String>,
    pub show_labels: bool,
    /// `-L` label keys.
    pub label_columns: Vec<String>,
}

fn cell_text(cell: &Value) -> String {
    match cell {
        Value::String(s) => match s.find(['\u{c}', '\n', '\r']) {
            Some(i) => format!("{}...", &s[..i]),
            None => s.clone(),
        },
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// `a=b,c=d` sorted by key, `<none>` when empty (upstream `labels.FormatLabels`).
pub fn format_labels(labels: Option<&Value>) -> String {
    let Some(map) = labels.and_then(Value::as_object) else {
        return "<none>".into();
    };
    if map.is_empty() {
        return "<none>".into();
    }
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// The header row (unless `no_headers`) and one row per table row.
pub fn table_rows(table: &Value, opts: &TableOptions) -> Vec<Vec<String>> {
    let columns: Vec<&Value> = table["columnDefinitions"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let shown: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| opts.wide || c["priority"].as_i64().unwrap_or(0) == 0)
        .map(|(i, _)| i)
        .collect();
    let name_column = columns
        .iter()
        .position(|c| c["format"] == "name")
        .or_else(|| columns.iter().position(|c| c["name"] == "Name"));
    let mut rows = Vec::new();
    if !opts.no_headers {
        let mut header = Vec::new();
        if opts.with_namespace {
            header.push("NAMESPACE".to_string());
        }
        for &i in &shown {
            header.push(
                columns[i]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_uppercase(),
            );
        }
        for key in &opts.label_columns {
            header.push(key.rsplit('/').next().unwrap_or(key).to_uppercase());
        }
        if opts.show_labels {
            header.push("LABELS".into());
        }
        rows.push(header);
    }
    for row in table["rows"].as_array().into_iter().flatten() {
        let cells = row["cells"].as_array().cloned().unwrap_or_default();
        let metadata = &row["object"]["metadata"];
        let mut out = Vec::new();
        if opts.with_namespace {
            out.push(
                metadata["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        for &i in &shown {
            let mut text = cells.get(i).map(cell_text).unwrap_or_default();
            if Some(i) == name_column {
                if let Some(prefix) = &opts.kind_prefix {
                    text = format!("{prefix}/{text}");
                }
            }
            out.push(text);
        }
        for key in &opts.label_columns {
            out.push(
                metadata["labels"][key.as_str()]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        if opts.show_labels {
            out.push(format_labels(metadata.get("labels")));
        }
        rows.push(out);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> Value {
        json!({"columnDefinitions": [
            {"name": "Name", "format": "name", "priority": 0},
            {"name": "Ready", "priority": 0},
            {"name": "IP", "priority": 1}],
            "rows": [{"cells": ["web", "0/1", "10.0.0.1"],
                      "object": {"metadata": {"namespace": "ns", "labels": {"tier": "fe", "app": "web"}}}}]})
    }

    #[test]
    fn columns_by_priority_and_decorations() {
        let rows = table_rows(&table(), &TableOptions::default());
        assert_eq!(rows, vec![vec!["NAME", "READY"], vec!["web", "0/1"]]);
        let rows = table_rows(
            &table(),
            &TableOptions {
                wide: true,
                with_namespace: true,
                kind_prefix: Some("pod".into()),
                show_labels: true,
                label_columns: vec!["example.com/app".into(), "app".into()],
                no_headers: false,
            },
        );
        assert_eq!(
            rows[0],
            vec!["NAMESPACE", "NAME", "READY", "IP", "APP", "APP", "LABELS"]
        );
        assert_eq!(
            rows[1],
            vec![
                "ns",
                "pod/web",
                "0/1",
                "10.0.0.1",
                "",
                "web",
                "app=web,tier=fe"
            ]
        );
    }
}
