//! The REST API directly (hyper) and through kube-rs: bad input, concurrency, watch,
//! pagination — against a real etcd.

mod common;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{json, Value};

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Api {
    base: String,
    client: HttpClient,
}

impl Api {
    fn new(c: &common::Cluster) -> Api {
        Api {
            base: c.api.url(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> (u16, Value) {
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(Full::new(body.into()))
            .expect("request");
        let resp = self.client.request(req).await.expect("response");
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        self.call(method, path, "application/json", body.to_string())
            .await
    }
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

#[tokio::test]
async fn bad_input_is_rejected_with_status_and_nothing_reaches_etcd() {
    let c = common::start();
    let api = Api::new(&c);
    let pods = "/api/v1/namespaces/default/pods";

    let (code, st) = api
        .call(
            "POST",
            pods,
            "application/json",
            "{\"apiVersion\": \"v1\", \"kind\": ",
        )
        .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (400, Some("BadRequest")),
        "{st}"
    );
    assert_eq!(st["kind"], "Status");

    let (code, st) = api
        .call(
            "POST",
            pods,
            "application/yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n",
        )
        .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (400, Some("BadRequest")),
        "{st}"
    );

    let mut unknown = pod("strict-1");
    unknown["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always");
    let (code, st) = api
        .json("POST", &format!("{pods}?fieldValidation=Strict"), &unknown)
        .await;
    assert_eq!(code, 400, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap_or("")
            .contains("unknown field \"spec.containers[0].imagePullPolicyy\""),
        "{st}"
    );

    let (code, st) = api.json("POST", pods, &pod("Bad_Name")).await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (422, Some("Invalid")),
        "{st}"
    );
    assert_eq!(st["details"]["causes"][0]["field"], "metadata.name");

    let mut no_image = pod("no-image");
    no_image["spec"]["containers"][0]
        .as_object_mut()
        .expect("container")
        .remove("image");
    let (code, st) = api.json("POST", pods, &no_image).await;
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap_or("")
            .contains("spec.containers[0].image: Required value"),
        "{st}"
    );

    let (code, st) = api
        .json(
            "POST",
            "/api/v1/namespaces/nosuch/configmaps",
            &json!({"metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!(
        (code, st["message"].as_str()),
        (404, Some("namespaces \"nosuch\" not found")),
        "{st}"
    );

    let big = json!({"metadata": {"name": "big"}, "data": {"k": "x".repeat(4 * 1024 * 1024)}});
    let (code, _) = api
        .json("POST", "/api/v1/namespaces/default/configmaps", &big)
        .await;
    assert_eq!(code, 413);

    let (code, st) = api
        .json("POST", "/api/v1/namespaces/default/foos", &json!({}))
        .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (404, Some("NotFound")),
        "{st}"
    );

    let (code, st) = api
        .call(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "text/plain",
            "hello",
        )
        .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (415, Some("UnsupportedMediaType")),
        "{st}"
    );

    let (code, st) = api
        .json(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!(code, 400, "{st}");

    // Nothing of the above was stored.
    assert_eq!(
        c.etcd.keys("/registry/pods/").expect("keys"),
        Vec::<String>::new()
    );
    assert_eq!(
        c.etcd.keys("/registry/configmaps/").expect("keys"),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn concurrent_writers_never_lose_an_update() {
    let c = common::start();
    let api = Arc::new(Api::new(&c));
    let path = "/api/v1/namespaces/default/configmaps";
    let (code, _) = api
        .json(
            "POST",
            path,
            &json!({"metadata": {"name": "counter"}, "data": {}}),
        )
        .await;
    assert_eq!(code, 201);
    let conflicts = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..32 {
        let api = api.clone();
        let conflicts = conflicts.clone();
        tasks.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for n in 0..5 {
                loop {
                    let (_, mut cm) = api
                        .json(
                            "GET",
                            "/api/v1/namespaces/default/configmaps/counter",
                            &Value::Null,
                        )
                        .await;
                    cm["data"][format!("w{w}-{n}")] = json!("1");
                    let (code, body) = api
                        .json("PUT", "/api/v1/namespaces/default/configmaps/counter", &cm)
                        .await;
                    match code {
                        200 => {
                            accepted.push(format!("w{w}-{n}"));
                            break;
                        }
                        409 => {
                            assert_eq!(body["reason"], "Conflict");
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("unexpected {other}: {body}"),
                    }
                }
            }
            accepted
        }));
    }
    let mut accepted = Vec::new();
    for t in tasks {
        accepted.extend(t.await.expect("writer"));
    }
    let (_, cm) = api
        .json(
            "GET",
            "/api/v1/namespaces/default/configmaps/counter",
            &Value::Null,
        )
        .await;
    let data = cm["data"].as_object().expect("data");
    assert_eq!(accepted.len(), 160);
    for k in &accepted {
        assert!(data.contains_key(k), "accepted update {k} lost");
    }
    assert_eq!(data.len(), 160);
    assert!(
        conflicts.load(Ordering::Relaxed) > 0,
        "32 racing writers must see some 409s"
    );
}

#[tokio::test]
async fn pagination_selectors_and_too_old_watch() {
    let c = common::start_with(&["--watch-cache-size=10"]);
    let api = Api::new(&c);
    for i in 0..25 {
        let (code, _) = api.json("POST", "/api/v1/namespaces/default/configmaps", &json!({"metadata": {"name": format!("cm-{i:02}"), "labels": {"parity": if i % 2 == 0 {"even"} else {"odd"}}}})).await;
        assert_eq!(code, 201);
    }
    let mut names = Vec::new();
    let mut cont = String::new();
    let mut pages = 0;
    loop {
        let (code, list) = api
            .json(
                "GET",
                &format!("/api/v1/namespaces/default/configmaps?limit=10&continue={cont}"),
                &Value::Null,
            )
            .await;
        assert_eq!(code, 200, "{list}");
        pages += 1;
        names.extend(
            list["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string()),
        );
        match list["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => cont = c.to_string(),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);
    names.dedup();
    assert_eq!(names.len(), 25);

    let (_, odd) = api
        .json(
            "GET",
            "/api/v1/namespaces/default/configmaps?labelSelector=parity%3Dodd&limit=5",
            &Value::Null,
        )
        .await;
    assert_eq!(odd["items"].as_array().map(Vec::len), Some(5));
    assert!(
        odd["metadata"]["continue"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "12 odd ones, limit 5: {odd}"
    );

    let (code, st) = api
        .json(
            "GET",
            "/api/v1/namespaces/default/configmaps?fieldSelector=spec.foo%3Dbar",
            &Value::Null,
        )
        .await;
    assert_eq!(code, 400, "{st}");

    // The cache window holds 10 events; a watch from the first write's RV is gone.
    let (_, first) = api
        .json(
            "GET",
            "/api/v1/namespaces/default/configmaps/cm-00",
            &Value::Null,
        )
        .await;
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let (code, st) = api
        .json(
            "GET",
            &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"),
            &Value::Null,
        )
        .await;
    assert_eq!(
        (code, st["reason"].as_str()),
        (410, Some("Expired")),
        "{st}"
    );
}

#[tokio::test]
async fn kube_rs_client_crud_watch_and_paginated_list_of_10k() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::{
        api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
        runtime::watcher,
        Api as KApi,
    };

    let c = common::start();
    let config = kube::Config::new(c.api.url().parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    let cms: KApi<ConfigMap> = KApi::namespaced(client.clone(), "default");

    let mut w = watcher(
        cms.clone(),
        watcher::Config::default().labels("app=kube-rs"),
    )
    .boxed();
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("typed".into());
    cm.metadata.labels = Some([("app".to_string(), "kube-rs".to_string())].into());
    cm.data = Some([("a".to_string(), "1".to_string())].into());
    let created = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some());
    let patched = cms
        .patch(
            "typed",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"b": "2"}})),
        )
        .await
        .expect("patch");
    assert_eq!(
        patched
            .data
            .as_ref()
            .and_then(|d| d.get("b"))
            .map(String::as_str),
        Some("2")
    );

    let mut saw_apply = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, w.try_next())
        .await
        .expect("watch in time")
        .map_err(|e| panic!("{e}"))
    {
        if let watcher::Event::Apply(o) | watcher::Event::InitApply(o) = ev {
            if o.data.as_ref().is_some_and(|d| d.contains_key("b")) {
                saw_apply = true;
                break;
            }
        }
    }
    assert!(saw_apply, "watcher saw the patched object");
    cms.delete("typed", &DeleteParams::default())
        .await
        .expect("delete");

    // 10 000 objects, listed page by page.
    let raw = kube::Api::<ConfigMap>::namespaced(client.clone(), "default");
    futures::stream::iter(0..10_000)
        .map(|i| {
            let raw = raw.clone();
            async move {
                let mut cm = ConfigMap::default();
                cm.metadata.name = Some(format!("bulk-{i:05}"));
                raw.create(&PostParams::default(), &cm).await.map(|_| ())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .expect("bulk create");
    let mut total = 0;
    let mut pages = 0;
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = raw.list(&lp).await.expect("page");
        total += page.items.len();
        pages += 1;
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(total, 10_000);
    assert_eq!(pages, 20);
    let all = raw.list(&ListParams::default()).await.expect("unpaginated");
    assert_eq!(all.items.len(), 10_000);
}

#[tokio::test]
async fn max_requests_inflight_answers_429_with_retry_after() {
    let c = common::start_with(&["--max-requests-inflight=1"]);
    let api = Arc::new(Api::new(&c));
    for i in 0..300 {
        let data: serde_json::Map<String, Value> = (0..20)
            .map(|k| (format!("k{k}"), json!("v".repeat(100))))
            .collect();
        let (code, _) = api
            .json(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                &json!({"metadata": {"name": format!("cm-{i}")}, "data": data}),
            )
            .await;
        assert_eq!(code, 201);
    }
    let mut lists = Vec::new();
    for _ in 0..32 {
        let api = api.clone();
        lists.push(tokio::spawn(async move {
            let req =
                hyper::Request::get(format!("{}/api/v1/namespaces/default/configmaps", api.base))
                    .body(Full::new(Bytes::new()))
                    .expect("req");
            let resp = api.client.request(req).await.expect("resp");
            (
                resp.status().as_u16(),
                resp.headers().get("retry-after").is_some(),
            )
        }));
    }
    let mut codes = Vec::new();
    for t in lists {
        codes.push(t.await.expect("list"));
    }
    assert!(codes.iter().any(|(c, _)| *c == 200), "{codes:?}");
    assert!(
        codes.iter().any(|(c, retry)| *c == 429 && *retry),
        "one in-flight read at a time must turn some away: {codes:?}"
    );
    assert!(
        codes.iter().all(|(c, _)| *c == 200 || *c == 429),
        "{codes:?}"
    );
}

/// The names and resourceVersions of the ADDED events a watch from `rv` delivers
/// before its `timeoutSeconds` ends it.
async fn added_since(api: &Api, rv: &str, timeout_s: u32) -> Vec<(String, String)> {
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds={timeout_s}"
    );
    let req = hyper::Request::builder()
        .uri(format!("{}{}", api.base, path))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = api.client.request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("event line"))
        .filter(|ev| ev["type"] == "ADDED")
        .map(|ev| {
            let meta = &ev["object"]["metadata"];
            (
                meta["name"].as_str().unwrap_or_default().to_string(),
                meta["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn concurrent_creates_share_txns_and_reach_every_watcher_once() {
    let c = common::start();
    let api = Arc::new(Api::new(&c));
    let path = "/api/v1/namespaces/default/configmaps";
    let (_, list) = api.json("GET", path, &Value::Null).await;
    let start_rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("list rv")
        .to_string();
    // A watcher from before the creates, fed live.
    let live = {
        let api = api.clone();
        let rv = start_rv.clone();
        tokio::spawn(async move { added_since(&api, &rv, 4).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // 48 distinct names and 8 creates racing for one more.
    let names: Vec<String> = (0..48)
        .map(|i| format!("b-{i}"))
        .chain((0..8).map(|_| "dup".to_string()))
        .collect();
    let creates = names.iter().map(|name| {
        let api = api.clone();
        let body = json!({"metadata": {"name": name}, "data": {"k": name}});
        async move { api.json("POST", path, &body).await }
    });
    let mut created: Vec<(String, String)> = Vec::new();
    let mut rejected = 0;
    for (code, body) in futures::future::join_all(creates).await {
        match code {
            201 => created.push((
                body["metadata"]["name"].as_str().expect("name").to_string(),
                body["metadata"]["resourceVersion"]
                    .as_str()
                    .expect("rv")
                    .to_string(),
            )),
            409 => {
                assert_eq!(body["reason"], "AlreadyExists", "{body}");
                assert_eq!(body["details"]["name"], "dup", "{body}");
                rejected += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((created.len(), rejected), (49, 7), "{created:?}");
    let mut revisions: Vec<i64> = created
        .iter()
        .map(|(_, rv)| rv.parse().expect("rv"))
        .collect();
    revisions.sort_unstable();
    revisions.dedup();
    assert!(
        revisions.len() < created.len(),
        "56 racing creates went out as {} txns: none shared one",
        revisions.len()
    );
    // Each stored object is readable with the revision its create answered.
    for (name, rv) in &created {
        let (_, got) = api
            .json("GET", &format!("{path}/{name}"), &Value::Null)
            .await;
        assert_eq!(
            got["metadata"]["resourceVersion"].as_str(),
            Some(rv.as_str())
        );
        assert_eq!(got["data"]["k"].as_str(), Some(name.as_str()));
    }

    // A watch from before the creates gets each one once, with its revision, whether
    // it watched them happen or replays them; a watch resumed from any of those
    // revisions gets exactly the later ones.
    let mut want = created.clone();
    want.sort();
    let mut seen_live = live.await.expect("live watcher");
    seen_live.sort();
    assert_eq!(seen_live, want, "live watcher");
    let mut replayed = added_since(&api, &start_rv, 1).await;
    replayed.sort();
    assert_eq!(replayed, want, "replay");
    let resumed = revisions.iter().map(|r| {
        let api = api.clone();
        async move { (*r, added_since(&api, &r.to_string(), 1).await) }
    });
    for (r, mut got) in futures::future::join_all(resumed).await {
        got.sort();
        let later: Vec<_> = want
            .iter()
            .filter(|(_, rv)| rv.parse::<i64>().expect("rv") > r)
            .cloned()
            .collect();
        assert_eq!(got, later, "watch from {r}");
    }
}
