//! Encryption at rest (`--encryption-provider-config`) against a real etcd: values in
//! etcd carry the provider prefix and no plaintext, the API reads them back, key
//! rotation re-encrypts on replace, and a wrong key fails the read.

use std::path::{Path, PathBuf};

use test_support::{kubectl, kubectl_stdin, ApiServer, Etcd};

const KEY_A: &str = "c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyBzbz8=";
const KEY_B: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const KEY_C: &str = "bm90IHRoZSBrZXkgeW91IGFyZSBsb29raW5nIGZvciE=";

fn write_config(dir: &Path, name: &str, providers: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources:\n  - secrets\n  providers:\n{providers}"
    );
    std::fs::write(&path, text).expect("write encryption config");
    path
}

fn start(etcd: &Etcd, config: &Path) -> ApiServer {
    let flag = format!("--encryption-provider-config={}", config.display());
    ApiServer::start(
        Path::new(env!("CARGO_BIN_EXE_kube-apiserver")),
        etcd,
        &[flag.as_str()],
    )
    .expect("apiserver starts")
}

fn secret_yaml(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\nstringData:\n  password: {value}\n")
}

fn raw(etcd: &Etcd, key: &str) -> String {
    etcd.get(key)
        .expect("etcdctl get")
        .unwrap_or_else(|| panic!("{key} missing in etcd"))
}

fn password(api: &ApiServer, name: &str) -> String {
    let out = kubectl(
        api,
        &["get", "secret", name, "-o", "jsonpath={.data.password}"],
    );
    out.assert_success();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(out.stdout.trim())
        .expect("base64 data");
    String::from_utf8(bytes).expect("utf8")
}

#[test]
fn secrets_are_encrypted_and_keys_rotate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let etcd = Etcd::start().expect("etcd");

    // 1. aescbc key1 encrypts; identity lets plain values through.
    let cfg1 = write_config(dir.path(), "one.yaml", &format!("  - aescbc:\n      keys:\n      - name: key1\n        secret: {KEY_A}\n  - identity: {{}}\n"));
    let api = start(&etcd, &cfg1);
    kubectl_stdin(
        &api,
        &["apply", "-f", "-"],
        &secret_yaml("s1", "hunter2-plaintext"),
    )
    .assert_success();
    let stored = raw(&etcd, "/registry/secrets/default/s1");
    assert!(
        stored.starts_with("k8s:enc:aescbc:v1:key1:"),
        "stored value: {stored}"
    );
    assert!(
        !stored.contains("hunter2-plaintext") && !stored.contains("aHVudGVyMi1wbGFpbnRleHQ"),
        "plaintext in etcd: {stored}"
    );
    assert_eq!(password(&api, "s1"), "hunter2-plaintext");
    // Lists and the watch cache see plaintext too.
    let list = kubectl(&api, &["get", "secrets", "-o", "name"]);
    assert!(list.assert_success().stdout.contains("secret/s1"), "{list}");
    // Other resources stay plain.
    kubectl(
        &api,
        &[
            "create",
            "configmap",
            "c1",
            "--from-literal=k=visible-value",
        ],
    )
    .assert_success();
    assert!(raw(&etcd, "/registry/configmaps/default/c1").contains("visible-value"));
    drop(api);

    // 2. Rotation: a new key (secretbox key2) first, the old one second.
    let cfg2 = write_config(
        dir.path(),
        "two.yaml",
        &format!("  - secretbox:\n      keys:\n      - name: key2\n        secret: {KEY_B}\n  - aescbc:\n      keys:\n      - name: key1\n        secret: {KEY_A}\n"),
    );
    let api = start(&etcd, &cfg2);
    assert_eq!(
        password(&api, "s1"),
        "hunter2-plaintext",
        "old key still reads"
    );
    assert!(raw(&etcd, "/registry/secrets/default/s1").starts_with("k8s:enc:aescbc:v1:key1:"));
    // Re-write every secret, as the upstream rotation procedure does.
    let all = kubectl(&api, &["get", "secrets", "-A", "-o", "json"]);
    all.assert_success();
    kubectl_stdin(&api, &["replace", "-f", "-"], &all.stdout).assert_success();
    let stored = raw(&etcd, "/registry/secrets/default/s1");
    assert!(
        stored.starts_with("k8s:enc:secretbox:v1:key2:"),
        "re-encrypted with the new key: {stored}"
    );
    drop(api);

    // 3. The old key removed: still readable with the new one alone.
    let cfg3 = write_config(
        dir.path(),
        "three.yaml",
        &format!("  - secretbox:\n      keys:\n      - name: key2\n        secret: {KEY_B}\n"),
    );
    let api = start(&etcd, &cfg3);
    assert_eq!(password(&api, "s1"), "hunter2-plaintext");
    kubectl_stdin(&api, &["apply", "-f", "-"], &secret_yaml("s2", "second")).assert_success();
    assert!(raw(&etcd, "/registry/secrets/default/s2").starts_with("k8s:enc:secretbox:v1:key2:"));
    drop(api);

    // 4. A wrong key under the same name: reads fail with an error, not garbage.
    let cfg4 = write_config(
        dir.path(),
        "four.yaml",
        &format!("  - secretbox:\n      keys:\n      - name: key2\n        secret: {KEY_C}\n"),
    );
    let api = start(&etcd, &cfg4);
    let out = kubectl(&api, &["get", "secret", "s1", "-o", "json"]);
    out.assert_failure();
    assert!(out.stderr.contains("Internal error"), "{out}");
    drop(api);

    // 5. Without identity, a plain value written earlier cannot be read.
    let cfg5 = write_config(
        dir.path(),
        "five.yaml",
        &format!("  - aesgcm:\n      keys:\n      - name: key3\n        secret: {KEY_A}\n"),
    );
    etcd.etcdctl(&["put", "/registry/secrets/default/plain", r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"plain","namespace":"default","uid":"u1","creationTimestamp":"2024-01-01T00:00:00Z"}}"#])
        .expect("etcdctl put");
    let api = start(&etcd, &cfg5);
    let out = kubectl(&api, &["get", "secret", "plain"]);
    out.assert_failure();
    assert!(out.stderr.contains("no matching prefix found"), "{out}");
    kubectl_stdin(&api, &["apply", "-f", "-"], &secret_yaml("s3", "gcm")).assert_success();
    assert!(raw(&etcd, "/registry/secrets/default/s3").starts_with("k8s:enc:aesgcm:v1:key3:"));
    assert_eq!(password(&api, "s3"), "gcm");
}

#[test]
fn bad_config_fails_startup_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let etcd = Etcd::start().expect("etcd");
    let cfg = write_config(
        dir.path(),
        "bad.yaml",
        "  - rot13:\n      keys:\n      - name: k\n        secret: eA==\n",
    );
    let flag = format!("--encryption-provider-config={}", cfg.display());
    let err = ApiServer::start(
        Path::new(env!("CARGO_BIN_EXE_kube-apiserver")),
        &etcd,
        &[flag.as_str()],
    )
    .err()
    .expect("startup must fail");
    let text = format!("{err:#}");
    assert!(
        text.contains("unknown provider \\\"rot13\\\"")
            || text.contains("unknown provider \"rot13\""),
        "{text}"
    );
}
