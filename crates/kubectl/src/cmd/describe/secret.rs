//! `describe secret|serviceaccount`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::template::object_header;
use super::writer::{PrefixWriter, LEVEL_0};
use super::{base64_bytes, events, field, sorted_entries};
use crate::context::Context;
use crate::errors::Result;

/// Values are never printed, only their sizes (the token of a service
/// account token secret excepted, as upstream).
pub fn secret(obj: &Value) -> String {
    let mut w = PrefixWriter::new();
    object_header(&mut w, obj);
    let kind = field(obj, "/type");
    w.write(LEVEL_0, &format!("\nType:\t{kind}\n"));
    w.write(LEVEL_0, "\nData\n====\n");
    for (k, v) in sorted_entries(&obj["data"]) {
        let bytes = base64_bytes(v);
        if k == "token" && kind == "kubernetes.io/service-account-token" {
            w.write(
                LEVEL_0,
                &format!("{k}:\t{}\n", String::from_utf8_lossy(&bytes)),
            );
        } else {
            w.write(LEVEL_0, &format!("{k}:\t{} bytes\n", bytes.len()));
        }
    }
    w.aligned()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

pub async fn service_account(
    ctx: &Context,
    sa: &Value,
    events: Option<&Vec<Value>>,
) -> Result<String> {
    let client = ctx.client().await?;
    let namespace = field(sa, "/metadata/namespace");
    let name = field(sa, "/metadata/name");
    let uid = field(sa, "/metadata/uid");
    let mut tokens = Vec::new();
    let mut missing = BTreeSet::new();
    // upstream tolerates a failed secret list: the names are still printed
    if let Ok(list) = client
        .get(&format!("/api/v1/namespaces/{namespace}/secrets"))
        .await
    {
        let mut existing = BTreeSet::new();
        for s in list["items"].as_array().cloned().unwrap_or_default() {
            let annotations = &s["metadata"]["annotations"];
            if field(&s, "/type") == "kubernetes.io/service-account-token"
                && annotations["kubernetes.io/service-account.name"] == name
                && annotations["kubernetes.io/service-account.uid"] == uid
            {
                tokens.push(field(&s, "/metadata/name").to_string());
            }
            existing.insert(field(&s, "/metadata/name").to_string());
        }
        for n in names(&sa["secrets"])
            .into_iter()
            .chain(names(&sa["imagePullSecrets"]))
        {
            if !existing.contains(&n) {
                missing.insert(n);
            }
        }
    }
    let mut w = PrefixWriter::new();
    object_header(&mut w, sa);
    // upstream ranges over the headers sorted
    let sections = [
        ("Image pull secrets:", names(&sa["imagePullSecrets"])),
        ("Mountable secrets: ", names(&sa["secrets"])),
        ("Tokens:            ", tokens),
    ];
    for (title, list) in sections {
        if list.is_empty() {
            w.write(LEVEL_0, &format!("{title}\t<none>\n"));
            continue;
        }
        let mut prefix = title;
        for n in &list {
            if missing.contains(n) {
                w.write(LEVEL_0, &format!("{prefix}\t{n} (not found)\n"));
            } else {
                w.write(LEVEL_0, &format!("{prefix}\t{n}\n"));
            }
            prefix = "                   ";
        }
    }
    events::describe(events, &mut w);
    Ok(w.aligned())
}
