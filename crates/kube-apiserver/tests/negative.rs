//! The negative battery: malformed, foreign and expired client certificates,
//! truncated/tampered/expired tokens, impersonation without permission, path
//! traversal, overlong names, oversized and malformed bodies, bad content types —
//! each rejected with the right status, and etcd holds no new keys afterwards.
//!
//! Requests are written by hand over rustls so the request line and headers are
//! exactly what a hostile client sends (HTTP clients would normalize the paths).

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use test_support::{
    Ca, Etcd, Identities, Issued, SecureApiServer, Validity, SERVICE_ACCOUNT_ISSUER as ISSUER,
};

/// A client identity: certificate chain (DER) and PKCS#8 key.
#[derive(Clone)]
struct Identity {
    chain: Vec<Vec<u8>>,
    key: Vec<u8>,
}

impl From<Issued> for Identity {
    fn from(issued: Issued) -> Identity {
        Identity {
            chain: vec![issued.cert_der],
            key: issued.key_der,
        }
    }
}

struct Cluster {
    api: SecureApiServer,
    etcd: Etcd,
    ca: Ca,
    admin: Identity,
    jane: Identity,
    sa_key: PathBuf,
    sa_pub: PathBuf,
}

/// Status code and whole raw response, or the transport error (TLS refusal).
type Answer = Result<(u16, String), String>;

impl Cluster {
    fn start() -> Cluster {
        let etcd = Etcd::start().expect("etcd");
        let api = SecureApiServer::start(
            Path::new(env!("CARGO_BIN_EXE_kube-apiserver")),
            &etcd,
            Identities::default(),
            &["--enable-bootstrap-token-auth"],
        )
        .expect("apiserver");
        let ca = api.ca().expect("cluster CA");
        let admin = ca
            .client_cert("admin", &["system:masters"], Validity::Current)
            .expect("admin")
            .into();
        let jane = ca
            .client_cert("jane", &[], Validity::Current)
            .expect("jane")
            .into();
        Cluster {
            sa_key: api.pki_file("sa.key"),
            sa_pub: api.pki_file("sa.pub"),
            api,
            etcd,
            ca,
            admin,
            jane,
        }
    }

    /// One raw HTTPS request (`head` = extra header lines) over a fresh connection.
    fn raw(
        &self,
        who: Option<&Identity>,
        method: &str,
        path: &str,
        head: &[&str],
        body: &[u8],
    ) -> Answer {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.cert_der().to_vec()))
            .map_err(|e| e.to_string())?;
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
        let config = match who {
            Some(id) => builder
                .with_client_auth_cert(
                    id.chain.iter().cloned().map(CertificateDer::from).collect(),
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key.clone())),
                )
                .map_err(|e| e.to_string())?,
            None => builder.with_no_client_auth(),
        };
        let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
        let tcp =
            TcpStream::connect(("127.0.0.1", self.api.secure_port())).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for h in head {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        tls.write_all(body).map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        match tls.read_to_end(&mut raw) {
            Ok(_) => {}
            // Servers may close without close_notify after a full response.
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => return Err(e.to_string()),
        }
        let text = String::from_utf8_lossy(&raw).into_owned();
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no HTTP response: {text:?}"))?;
        Ok((code, text))
    }

    fn keys(&self) -> Vec<String> {
        self.etcd.keys("/registry/").expect("etcd keys")
    }

    /// Runs `request`, checks its answer with `expect`, and that etcd gained no keys.
    fn rejected(
        &self,
        what: &str,
        request: impl FnOnce() -> Answer,
        expect: impl FnOnce(&Answer) -> bool,
    ) {
        let before = self.keys();
        let answer = request();
        assert!(expect(&answer), "{what}: unexpected answer {answer:?}");
        let after = self.keys();
        let new: Vec<&String> = after.iter().filter(|k| !before.contains(k)).collect();
        assert!(new.is_empty(), "{what}: etcd gained keys {new:?}");
    }
}

fn status(code: u16) -> impl FnOnce(&Answer) -> bool {
    move |a| matches!(a, Ok((c, _)) if *c == code)
}

fn status_with(code: u16, text: &'static str) -> impl FnOnce(&Answer) -> bool {
    move |a| matches!(a, Ok((c, body)) if *c == code && body.contains(text))
}

/// Refused: a TLS failure, or 401.
fn refused(a: &Answer) -> bool {
    a.is_err() || matches!(a, Ok((401, _)))
}

fn configmap(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"a":"b"}}}}"#
    )
}

const JSON: &str = "Content-Type: application/json";

#[test]
fn hostile_requests_are_rejected_without_state_change() {
    let c = Cluster::start();
    let cm = configmap("probe");
    let post = |who: Option<&Identity>, head: &[&str]| {
        c.raw(
            who,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            head,
            cm.as_bytes(),
        )
    };
    // The control: admin can create (then delete) the object every probe tries.
    assert!(matches!(post(Some(&c.admin), &[JSON]), Ok((201, _))));
    assert!(matches!(
        c.raw(
            Some(&c.admin),
            "DELETE",
            "/api/v1/namespaces/default/configmaps/probe",
            &[],
            b""
        ),
        Ok((200, _))
    ));

    // Client certificates: garbage DER, another CA's, expired.
    let garbage = Identity {
        chain: vec![b"-----BEGIN CERTIFICATE-----garbage".to_vec()],
        key: c.admin.key.clone(),
    };
    c.rejected(
        "garbage client certificate",
        || post(Some(&garbage), &[JSON]),
        refused,
    );
    let foreign: Identity = Ca::new("evil")
        .and_then(|evil| evil.client_cert("admin", &["system:masters"], Validity::Current))
        .expect("foreign certificate")
        .into();
    c.rejected(
        "client certificate from another CA",
        || post(Some(&foreign), &[JSON]),
        refused,
    );
    let expired: Identity =
        c.ca.client_cert("admin", &["system:masters"], Validity::Expired)
            .expect("expired")
            .into();
    c.rejected(
        "expired client certificate",
        || post(Some(&expired), &[JSON]),
        refused,
    );

    // Bearer tokens: a real one works; truncated, tampered and expired ones are 401.
    let keys = kube_apiserver::serviceaccount::TokenKeys::from_files(
        Some(&c.sa_key),
        std::slice::from_ref(&c.sa_pub),
        vec![ISSUER.into()],
        vec![ISSUER.into()],
    )
    .expect("keys")
    .expect("configured");
    let now = chrono::Utc::now().timestamp();
    let sa_uid = {
        let (code, text) = c
            .raw(
                Some(&c.admin),
                "POST",
                "/api/v1/namespaces/default/serviceaccounts",
                &[JSON],
                br#"{"metadata":{"name":"probe"}}"#,
            )
            .expect("sa");
        assert_eq!(code, 201, "{text}");
        let body = &text[text.find("\r\n\r\n").expect("body") + 4..];
        let start = body.find("\"uid\":\"").expect("uid") + 7;
        body[start..start + 36].to_string()
    };
    let claims = keys.claims(
        "default",
        "probe",
        &sa_uid,
        &[ISSUER.to_string()],
        now,
        3600,
        None,
        None,
    );
    let good = keys.sign(&claims).expect("sign");
    let auth = |t: &str| format!("Authorization: Bearer {t}");
    let good_auth = auth(&good);
    let who = c.raw(
        None,
        "GET",
        "/api/v1/namespaces/default/pods",
        &[&good_auth],
        b"",
    );
    assert!(
        matches!(&who, Ok((403, body)) if body.contains("system:serviceaccount:default:probe")),
        "the control token authenticates: {who:?}"
    );
    let expired_token = keys
        .sign(&keys.claims(
            "default",
            "probe",
            &sa_uid,
            &[ISSUER.to_string()],
            now - 7200,
            600,
            None,
            None,
        ))
        .expect("sign");
    let mut tampered = good.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("utf8");
    let truncated = good[..good.len() - 12].to_string();
    for (what, token) in [
        ("truncated token", truncated),
        ("tampered token", tampered),
        ("expired token", expired_token),
        (
            "expired bootstrap-like junk",
            "abcdef.0123456789abcdef".into(),
        ),
    ] {
        let h = auth(&token);
        c.rejected(
            what,
            || post(None, &[JSON, &h]),
            status_with(401, "Unauthorized"),
        );
    }
    // An expired bootstrap token.
    let secret = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"bootstrap-token-abcdef","namespace":"kube-system"},"type":"bootstrap.kubernetes.io/token","stringData":{"token-id":"abcdef","token-secret":"0123456789abcdef","usage-bootstrap-authentication":"true","expiration":"2020-01-01T00:00:00Z"}}"#;
    assert!(matches!(
        c.raw(
            Some(&c.admin),
            "POST",
            "/api/v1/namespaces/kube-system/secrets",
            &[JSON],
            secret.as_bytes()
        ),
        Ok((201, _))
    ));
    let h = auth("abcdef.0123456789abcdef");
    c.rejected(
        "expired bootstrap token",
        || post(None, &[JSON, &h]),
        status_with(401, "Unauthorized"),
    );

    // Header smuggling: impersonation without the impersonate verb.
    c.rejected(
        "Impersonate-User",
        || post(Some(&c.jane), &[JSON, "Impersonate-User: admin"]),
        status_with(403, "cannot impersonate resource \\\"users\\\""),
    );
    c.rejected(
        "Impersonate-Group",
        || {
            post(
                Some(&c.jane),
                &[
                    JSON,
                    "Impersonate-User: jane",
                    "Impersonate-Group: system:masters",
                ],
            )
        },
        status(403),
    );

    // Path traversal and path tricks, for the admin (who could read the target).
    for path in [
        "/api/v1/namespaces/../secrets",
        "/api/v1/namespaces/default/../kube-system/secrets",
        "/api/v1/namespaces/%2e%2e/secrets",
        "/api/v1/namespaces/%2E%2E/kube-system/secrets",
        "/api/v1/namespaces/default/configmaps/..%2fsecrets",
        "/api/v1//namespaces/default/configmaps",
        "//api/v1/namespaces/default/configmaps",
    ] {
        c.rejected(
            path,
            || c.raw(Some(&c.admin), "POST", path, &[JSON], cm.as_bytes()),
            |a| matches!(a, Ok((400, _))),
        );
        c.rejected(
            path,
            || c.raw(Some(&c.admin), "GET", path, &[], b""),
            |a| matches!(a, Ok((400, _))),
        );
    }

    // Overlong names: 254 characters for a DNS subdomain, 64 for a DNS label.
    let long = "a".repeat(254);
    let body = configmap(&long);
    c.rejected(
        "254-character name",
        || {
            c.raw(
                Some(&c.admin),
                "POST",
                "/api/v1/namespaces/default/configmaps",
                &[JSON],
                body.as_bytes(),
            )
        },
        status_with(422, "must be no more than 253 characters"),
    );
    let ns = format!(
        r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{}"}}}}"#,
        "n".repeat(64)
    );
    c.rejected(
        "64-character namespace",
        || {
            c.raw(
                Some(&c.admin),
                "POST",
                "/api/v1/namespaces",
                &[JSON],
                ns.as_bytes(),
            )
        },
        status_with(422, "must be no more than 63 characters"),
    );
    let label = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"l","labels":{{"k":"{}"}}}}}}"#,
        "v".repeat(64)
    );
    c.rejected(
        "64-character label value",
        || {
            c.raw(
                Some(&c.admin),
                "POST",
                "/api/v1/namespaces/default/configmaps",
                &[JSON],
                label.as_bytes(),
            )
        },
        status(422),
    );

    // Bodies: oversized, malformed JSON and YAML (400 naming the position), bad types.
    let huge = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"huge"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(4 << 20)
    );
    c.rejected(
        "4 MiB body",
        || {
            c.raw(
                Some(&c.admin),
                "POST",
                "/api/v1/namespaces/default/configmaps",
                &[JSON],
                huge.as_bytes(),
            )
        },
        status(413),
    );
    c.rejected(
        "malformed JSON",
        || {
            c.raw(
                Some(&c.admin),
                "POST",
                "/api/v1/namespaces/default/configmaps",
                &[JSON],
                br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"#,
            )
        },
        status_with(400, "line 1 column"),
    );
    c.rejected(
        "malformed YAML",
        || {
            c.raw(
                Some(&c.admin),
                "POST",
                "/api/v1/namespaces/default/configmaps",
                &["Content-Type: application/yaml"],
                b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n",
            )
        },
        status_with(400, "line "),
    );
    c.rejected(
        "text/plain body",
        || {
            c.raw(
                Some(&c.admin),
                "POST",
                "/api/v1/namespaces/default/configmaps",
                &["Content-Type: text/plain"],
                cm.as_bytes(),
            )
        },
        status(415),
    );
    c.rejected(
        "patch with a bad type",
        || {
            c.raw(
                Some(&c.admin),
                "PATCH",
                "/api/v1/namespaces/default/serviceaccounts/probe",
                &["Content-Type: application/xml"],
                b"<x/>",
            )
        },
        status(415),
    );

    // Nothing above reached etcd.
    let leaked: Vec<String> = c
        .keys()
        .into_iter()
        .filter(|k| k.contains("/configmaps/") && !k.ends_with("kube-root-ca.crt"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
}
