//! `kubectl exec -ti` / `attach -ti` under a pseudo-terminal: the first
//! terminal size and every size after a `SIGWINCH` go out on the resize
//! channel (4) of the `v5.channel.k8s.io` protocol as `{"Width":W,"Height":H}`.
//!
//! The server is an in-process stand-in for the apiserver: it serves the pod
//! and upgrades `pods/exec|attach` to a WebSocket whose resize frames it
//! records. Upstream kubectl v1.32 runs against it too, which shows the
//! stand-in speaks the protocol the way a real apiserver does.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rustix::termios::Winsize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const OURS: &str = env!("CARGO_BIN_EXE_kubectl");
const UPSTREAM: &str = "/usr/bin/kubectl";

const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default","uid":"1"},"spec":{"containers":[{"name":"c","image":"busybox","tty":true,"stdin":true}]},"status":{"phase":"Running"}}"#;

/// What the stand-in server saw.
#[derive(Default)]
struct Seen {
    requests: Vec<String>,
    resizes: Vec<String>,
}

/// The stand-in apiserver: its state, and a switch that ends open sessions.
struct FakeServer {
    url: String,
    seen: Arc<Mutex<Seen>>,
    finish: tokio::sync::watch::Sender<bool>,
}

impl FakeServer {
    async fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (finish, finished) = tokio::sync::watch::channel(false);
        let state = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, state.clone(), finished.clone()));
            }
        });
        FakeServer { url, seen, finish }
    }

    fn resizes(&self) -> Vec<String> {
        self.seen.lock().expect("lock").resizes.clone()
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().expect("lock").requests.clone()
    }
}

/// Reads one request head (up to the blank line); `None` when the peer closed.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

async fn serve_connection(
    mut stream: TcpStream,
    seen: Arc<Mutex<Seen>>,
    finished: tokio::sync::watch::Receiver<bool>,
) {
    while let Some(head) = read_head(&mut stream).await {
        let request_line = head.lines().next().unwrap_or_default().to_string();
        seen.lock()
            .expect("lock")
            .requests
            .push(request_line.clone());
        let path = request_line.split_whitespace().nth(1).unwrap_or_default();
        let upgrade = header(&head, "Upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        if upgrade && (path.contains("/pods/p/exec?") || path.contains("/pods/p/attach?")) {
            let offered = header(&head, "Sec-WebSocket-Protocol").unwrap_or_default();
            let key = header(&head, "Sec-WebSocket-Key").unwrap_or_default();
            if !offered.split(',').any(|p| p.trim() == "v5.channel.k8s.io") {
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
                return;
            }
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
            let ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
            run_session(ws, seen, finished).await;
            return;
        }
        let route = path.split('?').next().unwrap_or_default();
        let (status, body) = if let Some(body) = discovery(route) {
            ("200 OK", body.to_string())
        } else if route == "/api/v1/namespaces/default/pods/p" {
            ("200 OK", POD.to_string())
        } else {
            (
                "404 Not Found",
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#.to_string(),
            )
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The discovery documents upstream kubectl reads before resolving `p`.
fn discovery(route: &str) -> Option<&'static str> {
    Some(match route {
        "/version" => r#"{"major":"1","minor":"32","gitVersion":"v1.32.0"}"#,
        "/api" => r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]}"#,
        "/apis" => r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#,
        "/api/v1" => {
            r#"{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list"],"shortNames":["po"]},{"name":"pods/attach","singularName":"","namespaced":true,"kind":"PodAttachOptions","verbs":["create","get"]},{"name":"pods/exec","singularName":"","namespaced":true,"kind":"PodExecOptions","verbs":["create","get"]}]}"#
        }
        _ => return None,
    })
}

/// Records resize frames until the test says to finish, then ends the
/// command as a kubelet does: output, a `Success` status, close.
async fn run_session(
    mut ws: WebSocketStream<TcpStream>,
    seen: Arc<Mutex<Seen>>,
    mut finished: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Binary(data))) => {
                    if let Some((4, size)) = data.split_first() {
                        seen.lock().expect("lock").resizes.push(String::from_utf8_lossy(size).into_owned());
                    }
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return,
            },
            changed = async { finished.wait_for(|done| *done).await.is_ok() } => {
                if !changed {
                    return;
                }
                let mut stdout = vec![1u8];
                stdout.extend_from_slice(b"session done\r\n");
                let _ = ws.send(Message::binary(stdout)).await;
                let mut status = vec![3u8];
                status.extend_from_slice(br#"{"metadata":{},"status":"Success"}"#);
                let _ = ws.send(Message::binary(status)).await;
                // A normal closure, as the apiserver's stream proxy closes: gorilla's
                // client reads a close without a code as an error.
                let normal = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                let _ = ws.close(Some(normal)).await;
                // Drain until the client closes its side.
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
        }
    }
}

/// A pseudo-terminal: the master kept here, the slave given to the child.
struct Pty {
    master: std::os::fd::OwnedFd,
    slave: File,
}

impl Pty {
    fn open(cols: u16, rows: u16) -> Pty {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = File::options()
            .read(true)
            .write(true)
            .open(Path::new(name.to_str().expect("pts name")))
            .expect("open pts");
        let pty = Pty { master, slave };
        pty.resize(cols, rows);
        pty
    }

    fn resize(&self, cols: u16, rows: u16) {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(self.master.as_fd(), size).expect("TIOCSWINSZ");
    }

    /// Everything the child writes to the terminal, collected by a thread.
    fn output(&self) -> Arc<Mutex<Vec<u8>>> {
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut master = File::from(self.master.try_clone().expect("dup master"));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        out
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `bin <verb> -ti p ...` under a 80x24 terminal, resizes it to 132x43
/// and checks the sizes that reach the server, then ends the session.
/// `initial`: the sizes expected before the resize.
async fn check_resizes(bin: &str, verb_args: &[&str], initial: &[(u16, u16)]) {
    let server = FakeServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, test_support::kubeconfig_yaml(&server.url)).expect("kubeconfig");
    let pty = Pty::open(80, 24);
    let output = pty.output();
    let child = Command::new(bin)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(verb_args)
        .stdin(Stdio::from(pty.slave.try_clone().expect("dup slave")))
        .stdout(Stdio::from(pty.slave.try_clone().expect("dup slave")))
        .stderr(Stdio::from(pty.slave.try_clone().expect("dup slave")))
        .spawn()
        .expect("spawn kubectl");
    let mut child = KillOnDrop(child);
    let pid = rustix::process::Pid::from_child(&child.0);
    let context = |server: &FakeServer| {
        format!(
            "{bin} {verb_args:?}: requests {:?}, resizes {:?}, terminal {:?}",
            server.requests(),
            server.resizes(),
            String::from_utf8_lossy(&output.lock().expect("lock"))
        )
    };

    let size = |width: u16, height: u16| format!("{{\"Width\":{width},\"Height\":{height}}}\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.resizes().contains(&size(80, 24)) {
        assert!(
            Instant::now() < deadline,
            "no initial size: {}",
            context(&server)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    pty.resize(132, 43);
    // The pty is not kubectl's controlling terminal, so the signal is sent by
    // hand; again until seen, as kubectl may not be watching for it yet.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.resizes().contains(&size(132, 43)) {
        assert!(
            Instant::now() < deadline,
            "resize not sent: {}",
            context(&server)
        );
        rustix::process::kill_process(pid, rustix::process::Signal::WINCH).expect("SIGWINCH");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut sent = server.resizes();
    // A signal sent twice sends the same size twice.
    sent.dedup();
    let mut expected: Vec<String> = initial.iter().map(|&(w, h)| size(w, h)).collect();
    expected.push(size(132, 43));
    assert_eq!(sent, expected, "{}", context(&server));

    server.finish.send_replace(true);
    let mut status = None;
    wait_for(Duration::from_secs(30), "kubectl to exit", || {
        status = child.0.try_wait().expect("try_wait");
        status.is_some()
    })
    .await;
    let status = status.expect("exited");
    let shown = context(&server);
    assert!(status.success(), "exit {status:?}: {shown}");
    wait_for(Duration::from_secs(10), "the session output", || {
        String::from_utf8_lossy(&output.lock().expect("lock")).contains("session done")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_tty_sends_every_terminal_size() {
    check_resizes(OURS, &["exec", "-ti", "p", "--", "sh"], &[(80, 24)]).await;
    if Path::new(UPSTREAM).exists() {
        check_resizes(UPSTREAM, &["exec", "-ti", "p", "--", "sh"], &[(80, 24)]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_tty_sends_every_terminal_size() {
    // Upstream's redraw trick: one cell larger first, then the real size.
    check_resizes(OURS, &["attach", "-ti", "p"], &[(81, 25), (80, 24)]).await;
    if Path::new(UPSTREAM).exists() {
        check_resizes(UPSTREAM, &["attach", "-ti", "p"], &[(81, 25), (80, 24)]).await;
    }
}
