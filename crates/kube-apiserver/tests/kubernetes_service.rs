//! The `kubernetes` Service's Endpoints and EndpointSlice, kept by the apiservers'
//! lease reconciler: one apiserver, then a second one on the same etcd.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use serde_json::Value;
use test_support::{kubectl, ApiServer, Etcd};

fn get_json(api: &ApiServer, args: &[&str]) -> Value {
    let out = kubectl(api, args);
    out.assert_success();
    serde_json::from_str(&out.stdout).expect("json")
}

fn endpoint_ips(api: &ApiServer) -> Vec<String> {
    let ep = get_json(
        api,
        &[
            "get",
            "endpoints",
            "kubernetes",
            "-n",
            "default",
            "-o",
            "json",
        ],
    );
    ep.pointer("/subsets/0/addresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x["ip"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kubernetes_endpoints_follow_the_apiservers() {
    let etcd = Etcd::start().expect("etcd");
    let bin = Path::new(env!("CARGO_BIN_EXE_kube-apiserver"));
    let api = ApiServer::start(bin, &etcd, &[]).expect("apiserver");
    let port = api.secure_port();

    let ep = get_json(
        &api,
        &[
            "get",
            "endpoints",
            "kubernetes",
            "-n",
            "default",
            "-o",
            "json",
        ],
    );
    assert_eq!(endpoint_ips(&api), vec!["127.0.0.1".to_string()]);
    assert_eq!(
        ep.pointer("/subsets/0/ports/0/name"),
        Some(&Value::from("https"))
    );
    assert_eq!(
        ep.pointer("/subsets/0/ports/0/port"),
        Some(&Value::from(port))
    );
    assert_eq!(
        ep.pointer("/metadata/labels/endpointslice.kubernetes.io~1skip-mirror"),
        Some(&Value::from("true"))
    );

    let slice = get_json(
        &api,
        &[
            "get",
            "endpointslices",
            "kubernetes",
            "-n",
            "default",
            "-o",
            "json",
        ],
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice.pointer("/metadata/labels/kubernetes.io~1service-name"),
        Some(&Value::from("kubernetes"))
    );
    assert_eq!(
        slice.pointer("/endpoints/0/addresses/0"),
        Some(&Value::from("127.0.0.1"))
    );
    assert_eq!(
        slice.pointer("/endpoints/0/conditions/ready"),
        Some(&Value::Bool(true))
    );
    assert_eq!(slice.pointer("/ports/0/name"), Some(&Value::from("https")));
    assert_eq!(slice.pointer("/ports/0/port"), Some(&Value::from(port)));
    // kubectl finds the slice by the Service's label.
    let by_label = kubectl(
        &api,
        &[
            "get",
            "endpointslices",
            "-n",
            "default",
            "-l",
            "kubernetes.io/service-name=kubernetes",
            "-o",
            "name",
        ],
    );
    assert!(
        by_label
            .assert_success()
            .stdout
            .contains("endpointslice.discovery.k8s.io/kubernetes"),
        "{by_label}"
    );

    // A second apiserver advertising another loopback address joins the endpoints.
    let second =
        ApiServer::start(bin, &etcd, &["--advertise-address=127.0.0.2"]).expect("second apiserver");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ips = endpoint_ips(&api);
        if ips == ["127.0.0.1", "127.0.0.2"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "endpoints never listed both apiservers: {ips:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let slice = get_json(
        &second,
        &[
            "get",
            "endpointslices",
            "kubernetes",
            "-n",
            "default",
            "-o",
            "json",
        ],
    );
    assert_eq!(
        slice["endpoints"].as_array().map(Vec::len),
        Some(2),
        "{slice}"
    );
}
