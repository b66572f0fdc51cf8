//! exec over WebSocket `v5.channel.k8s.io`, served by the kubelet itself (it
//! speaks SPDY/3.1 to containerd's streaming server): real etcd + our apiserver +
//! containerd + the kubelet, with the upstream kubectl and a raw WebSocket client.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::cluster::{busybox, phase, pod, wait_pod, Cluster};
use futures::{SinkExt, StreamExt};
use kube::api::PostParams;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens a v5 exec session through the apiserver (which splices it to the kubelet).
async fn open_exec(cluster: &Cluster, pod: &str, query: &str) -> Ws {
    let port = cluster.apiserver.insecure_port();
    let url = format!("ws://127.0.0.1:{port}/api/v1/namespaces/default/pods/{pod}/exec?{query}");
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("v5.channel.k8s.io"),
    );
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (ws, resp) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("websocket handshake");
    assert_eq!(
        resp.headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some("v5.channel.k8s.io")
    );
    ws
}

/// Reads until the server closes: (stdout, stderr, error channel, close code).
async fn drain(ws: &mut Ws) -> (String, String, String, Option<u16>) {
    let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), Vec::new());
    let read = async {
        while let Some(msg) = ws.next().await {
            match msg.expect("websocket read") {
                Message::Binary(data) => match data.split_first() {
                    Some((1, rest)) => out.extend_from_slice(rest),
                    Some((2, rest)) => err.extend_from_slice(rest),
                    Some((3, rest)) => status.extend_from_slice(rest),
                    other => panic!("unexpected message {other:?}"),
                },
                Message::Close(frame) => return frame.map(|f| u16::from(f.code)),
                _ => {}
            }
        }
        None
    };
    let code = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the session to end");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (text(out), text(err), text(status), code)
}

#[tokio::test]
async fn exec_over_websocket_v5() {
    if !common::can_run_containers() {
        return;
    }
    let cluster = Cluster::start(false).await;
    let pods = cluster.pods();
    pods.create(
        &PostParams::default(),
        &pod(
            "shell",
            &cluster.node,
            "Always",
            serde_json::json!([busybox("main", "exec sleep 3600")]),
        ),
    )
    .await
    .expect("create pod");
    wait_pod(&pods, "shell", "Running", |p| phase(p) == "Running").await;

    // kubectl ≥ 1.31 asks for v5 only; -v=4 prints what the server chose. Piped
    // stdin ends with v5's CLOSE, which must reach `cat` for it to exit.
    let out = cluster.kubectl_stdin(&["-v=4", "exec", "-i", "shell", "--", "cat"], "hello\n");
    assert_eq!(out.status, 0, "{out}");
    assert_eq!(out.stdout, "hello\n");
    assert!(
        out.stderr.contains("The subprotocol is v5.channel.k8s.io"),
        "kubectl did not use v5:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("fallback"), "{}", out.stderr);

    // Exit codes and stderr.
    let out = cluster.kubectl(&[
        "exec",
        "shell",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status, 3, "{out}");
    assert_eq!(out.stdout, "out\n");
    assert!(out.stderr.contains("err\n"), "{out}");
    let out = cluster.kubectl_stdin(
        &["exec", "-i", "shell", "--", "sh", "-c", "wc -l; exit 0"],
        "a\nb\nc\n",
    );
    assert_eq!((out.status, out.stdout.trim()), (0, "3"), "{out}");

    // A terminal: kubectl needs one on its own stdin, which `script` provides.
    let kubectl = format!(
        "{} --kubeconfig={} exec -ti shell -- sh -c 'test -t 0 && test -t 1 && echo on-a-tty'",
        test_support::KUBECTL,
        cluster.apiserver.kubeconfig().display()
    );
    let tty = Command::new("script")
        .args(["-qec", &kubectl, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let tty_out = String::from_utf8_lossy(&tty.stdout);
    assert!(
        tty.status.success() && tty_out.contains("on-a-tty"),
        "{tty:?}"
    );

    // The raw protocol: stdin, CLOSE of stdin, stdout, the Success status, a normal close.
    let mut ws = open_exec(
        &cluster,
        "shell",
        "command=sh&command=-c&command=cat%3B%20echo%20eof&stdin=true&stdout=true&stderr=true",
    )
    .await;
    ws.send(Message::binary(b"\0line one\n".to_vec()))
        .await
        .expect("stdin");
    ws.send(Message::binary(vec![255, 0]))
        .await
        .expect("close stdin");
    let (stdout, stderr, status, code) = drain(&mut ws).await;
    assert_eq!((stdout.as_str(), stderr.as_str()), ("line one\neof\n", ""));
    let status: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    assert_eq!(status["status"], "Success", "{status}");
    assert_eq!(code, Some(1000));

    // Non-zero exit: the error channel carries upstream's NonZeroExitCode status.
    let mut ws = open_exec(
        &cluster,
        "shell",
        "command=sh&command=-c&command=exit%205&stdout=true&stderr=true",
    )
    .await;
    let (_, _, status, _) = drain(&mut ws).await;
    let status: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    assert_eq!(
        (status["status"].as_str(), status["reason"].as_str()),
        (Some("Failure"), Some("NonZeroExitCode")),
        "{status}"
    );
    assert_eq!(status["details"]["causes"][0]["message"], "5", "{status}");

    // A tty session with a resize on channel 4.
    let script = "command=sh&command=-c&command=while%20%5B%20%22%24(stty%20size)%22%20!%3D%20%2233%20100%22%20%5D%3B%20do%20sleep%200.1%3B%20done%3B%20echo%20resized";
    let mut ws = open_exec(
        &cluster,
        "shell",
        &format!("{script}&stdin=true&stdout=true&tty=true"),
    )
    .await;
    ws.send(Message::binary(
        [&[4u8][..], br#"{"Width":100,"Height":33}"#].concat(),
    ))
    .await
    .expect("resize");
    let (stdout, _, status, _) = drain(&mut ws).await;
    assert!(stdout.contains("resized"), "{stdout:?}");
    assert!(status.contains("Success"), "{status}");

    // attach goes the same way: stdin reaches the container's main process,
    // its answer comes back and the session ends with the container.
    let mut reader = busybox("main", "read line; echo got-$line");
    reader["stdin"] = serde_json::json!(true);
    reader["stdinOnce"] = serde_json::json!(true);
    pods.create(
        &PostParams::default(),
        &pod(
            "reader",
            &cluster.node,
            "Never",
            serde_json::json!([reader]),
        ),
    )
    .await
    .expect("create pod");
    wait_pod(&pods, "reader", "Running", |p| phase(p) == "Running").await;
    let out = cluster.kubectl_stdin(&["-v=4", "attach", "-i", "reader"], "hello\n");
    assert!(out.stdout.contains("got-hello"), "{out}");
    assert!(
        out.stderr.contains("The subprotocol is v5.channel.k8s.io"),
        "{}",
        out.stderr
    );
    wait_pod(&pods, "reader", "Succeeded", |p| phase(p) == "Succeeded").await;

    cluster.assert_kubelet_healthy();
}
