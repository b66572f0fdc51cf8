//! WebSocket `v5.channel.k8s.io` for exec and attach, served by the kubelet
//! itself: containerd's streaming server only speaks the WebSocket protocols up
//! to v4, which cannot half-close stdin. The kubelet answers the client's
//! WebSocket upgrade and talks to the runtime's streaming URL as a SPDY/3.1
//! client with `v4.channel.k8s.io`, so v5's CLOSE signal for stdin becomes a
//! FIN on the SPDY stdin stream.
//!
//! Channels (upstream `remotecommand` constants): 0 stdin, 1 stdout, 2 stderr,
//! 3 error (a JSON `metav1.Status`), 4 resize (JSON `{"Width":..,"Height":..}`);
//! a client message `[255, n]` closes channel `n`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info, warn};

use super::spdy::{self, Frame, Headers};
use super::{Error, StreamOptions};

pub const PROTOCOL_V5: &str = "v5.channel.k8s.io";
const PROTOCOL_V4: &str = "v4.channel.k8s.io";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: `[CLOSE, channel]` half-closes `channel`.
const CLOSE: u8 = 255;

/// How long the runtime gets to accept the upgrade and reply to every stream.
const RUNTIME_SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether the request is a WebSocket upgrade offering `v5.channel.k8s.io`.
pub fn wants_v5(headers: &HeaderMap) -> bool {
    let websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    websocket
        && headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == PROTOCOL_V5)
}

/// The SPDY streams opened to the runtime, by channel.
#[derive(Debug, Default, Clone, Copy)]
struct StreamIds {
    error: u32,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
}

impl StreamIds {
    fn channel_of(&self, stream_id: u32) -> Option<u8> {
        [
            (Some(self.stdout), STDOUT),
            (Some(self.stderr), STDERR),
            (Some(Some(self.error)), ERROR),
        ]
        .into_iter()
        .find_map(|(id, channel)| (id.flatten() == Some(stream_id)).then_some(channel))
    }
}

type RuntimeIo = TokioIo<hyper::upgrade::Upgraded>;

/// The write side of the SPDY connection, shared by the two directions.
struct RuntimeWriter {
    io: tokio::io::WriteHalf<RuntimeIo>,
    encoder: spdy::Encoder,
}

impl RuntimeWriter {
    async fn send(&mut self, frame: &Frame) -> Result<(), Error> {
        let bytes = self
            .encoder
            .encode(frame)
            .map_err(|e| Error::RuntimeStream(e.to_string()))?;
        self.io.write_all(&bytes).await.map_err(Error::Connect)?;
        self.io.flush().await.map_err(Error::Connect)
    }
}

/// A remote command session with the runtime's streaming server over SPDY.
struct RuntimeSession {
    reader: tokio::io::ReadHalf<RuntimeIo>,
    decoder: spdy::Decoder,
    writer: Mutex<RuntimeWriter>,
    ids: StreamIds,
}

fn runtime_error(message: impl Into<String>) -> Error {
    Error::RuntimeStream(message.into())
}

/// Upgrades a connection to `location` to SPDY/3.1 with `v4.channel.k8s.io`,
/// opens the streams `options` asks for (error first, as upstream's client
/// does) and waits until the runtime accepted each of them.
async fn connect_runtime(location: &str, options: StreamOptions) -> Result<RuntimeSession, Error> {
    let mut req = hyper::Request::builder()
        .method(hyper::Method::POST)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", PROTOCOL_V4)
        .body(Body::empty())
        .map_err(|e| runtime_error(e.to_string()))?;
    let mut resp = super::send_to_runtime(location, &mut req).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(runtime_error(format!(
            "the runtime refused the SPDY upgrade ({status}): {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    let negotiated = resp
        .headers()
        .get("X-Stream-Protocol-Version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if negotiated != PROTOCOL_V4 {
        return Err(runtime_error(format!(
            "the runtime negotiated {negotiated:?}, not {PROTOCOL_V4}"
        )));
    }
    let upgraded = hyper::upgrade::on(&mut resp).await.map_err(Error::Proxy)?;
    let (reader, io) = tokio::io::split(TokioIo::new(upgraded));
    let mut writer = RuntimeWriter {
        io,
        encoder: spdy::Encoder::new(),
    };

    let mut ids = StreamIds::default();
    let mut kinds: Vec<&str> = vec!["error"];
    if options.stdin {
        kinds.push("stdin");
    }
    if options.stdout {
        kinds.push("stdout");
    }
    if options.stderr {
        kinds.push("stderr");
    }
    if options.tty {
        kinds.push("resize");
    }
    let mut pending = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let stream_id = 1 + 2 * i as u32;
        match *kind {
            "error" => ids.error = stream_id,
            "stdin" => ids.stdin = Some(stream_id),
            "stdout" => ids.stdout = Some(stream_id),
            "stderr" => ids.stderr = Some(stream_id),
            _ => ids.resize = Some(stream_id),
        }
        let headers = Headers::from([spdy::header("streamtype", kind)]);
        writer
            .send(&Frame::SynStream {
                stream_id,
                fin: false,
                headers,
            })
            .await?;
        pending.push(stream_id);
    }
    let mut session = RuntimeSession {
        reader,
        decoder: spdy::Decoder::new(),
        writer: Mutex::new(writer),
        ids,
    };
    let wait_replies = async {
        while !pending.is_empty() {
            match session.decoder.read(&mut session.reader).await {
                Ok(Some(Frame::SynReply { stream_id, .. })) => {
                    pending.retain(|id| *id != stream_id)
                }
                Ok(Some(Frame::RstStream { stream_id, status })) => {
                    return Err(runtime_error(format!(
                        "the runtime reset stream {stream_id} (status {status})"
                    )));
                }
                Ok(Some(Frame::Ping { id })) => {
                    session
                        .writer
                        .lock()
                        .await
                        .send(&Frame::Ping { id })
                        .await?
                }
                Ok(Some(other)) => debug!(?other, "SPDY frame before all streams were accepted"),
                Ok(None) => {
                    return Err(runtime_error(
                        "the runtime closed the connection while streams were being set up",
                    ))
                }
                Err(err) => return Err(runtime_error(err.to_string())),
            }
        }
        Ok(())
    };
    tokio::time::timeout(RUNTIME_SETUP_TIMEOUT, wait_replies)
        .await
        .map_err(|_| runtime_error("timed out waiting for the runtime to accept the streams"))??;
    Ok(session)
}

/// Serves a v5 exec/attach: sets up the runtime session, answers the client's
/// upgrade, and bridges the two until the runtime ends the command.
pub async fn serve(
    location: &str,
    mut req: Request,
    options: StreamOptions,
) -> Result<Response, Error> {
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| tokio_tungstenite::tungstenite::handshake::derive_accept_key(k.as_bytes()))
        .ok_or_else(|| Error::BadRequest("missing Sec-WebSocket-Key".into()))?;
    let client_upgrade = hyper::upgrade::on(&mut req);
    let session = connect_runtime(location, options).await?;
    tokio::spawn(async move {
        match client_upgrade.await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                bridge(ws, session, options).await;
            }
            Err(err) => warn!("client upgrade failed: {err}"),
        }
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(PROTOCOL_V5),
    );
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&key).map_err(|e| Error::BadRequest(e.to_string()))?,
    );
    Ok(resp)
}

async fn bridge<S>(ws: WebSocketStream<S>, session: RuntimeSession, options: StreamOptions)
where
    S: tokio::io::AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let RuntimeSession {
        mut reader,
        mut decoder,
        writer,
        ids,
    } = session;
    let writer = std::sync::Arc::new(writer);

    // As upstream's server: an empty message on the lowest writable channel
    // tells the client the session is up.
    let first = if options.stdout {
        STDOUT
    } else if options.stderr {
        STDERR
    } else {
        ERROR
    };
    if ws_tx.send(Message::binary(vec![first])).await.is_err() {
        return;
    }

    // Client → runtime: stdin, resize, and v5's CLOSE of stdin.
    let to_runtime = {
        let writer = writer.clone();
        async move {
            while let Some(msg) = ws_rx.next().await {
                let data = match msg {
                    Ok(Message::Binary(data)) => data,
                    Ok(Message::Close(_)) => break,
                    Ok(_) => continue,
                    Err(err) => {
                        debug!("client websocket: {err}");
                        break;
                    }
                };
                let Some((&channel, payload)) = data.split_first() else {
                    continue;
                };
                let frame = match (channel, ids.stdin, ids.resize) {
                    (STDIN, Some(stream_id), _) => Frame::Data {
                        stream_id,
                        fin: false,
                        data: payload.to_vec(),
                    },
                    (RESIZE, _, Some(stream_id)) => Frame::Data {
                        stream_id,
                        fin: false,
                        data: payload.to_vec(),
                    },
                    (CLOSE, Some(stream_id), _) if payload.first() == Some(&STDIN) => {
                        debug!("client closed stdin");
                        Frame::Data {
                            stream_id,
                            fin: true,
                            data: Vec::new(),
                        }
                    }
                    _ => {
                        debug!(channel, "ignoring a message for a channel without a stream");
                        continue;
                    }
                };
                if payload.is_empty() && matches!(frame, Frame::Data { fin: false, .. }) {
                    continue;
                }
                if let Err(err) = writer.lock().await.send(&frame).await {
                    debug!("writing to the runtime: {err}");
                    break;
                }
            }
        }
    };

    // Runtime → client: stdout, stderr, the error status; ends with the connection.
    let from_runtime = {
        let writer = writer.clone();
        async move {
            // As upstream's stream translator: the status goes out only after all of
            // stdout/stderr, so a client that stops reading at the status (kubectl)
            // never gets output after it. Held until the output streams end (FIN)
            // or the runtime connection does.
            let mut open_outputs: Vec<u8> = [(ids.stdout, STDOUT), (ids.stderr, STDERR)]
                .into_iter()
                .filter_map(|(id, channel)| id.map(|_| channel))
                .collect();
            let mut held_status: Option<Vec<u8>> = None;
            loop {
                match decoder.read(&mut reader).await {
                    Ok(Some(Frame::Data {
                        stream_id,
                        data,
                        fin,
                    })) => {
                        let Some(channel) = ids.channel_of(stream_id) else {
                            continue;
                        };
                        if data.is_empty() {
                            // nothing to forward
                        } else if channel == ERROR {
                            held_status
                                .get_or_insert_with(|| vec![ERROR])
                                .extend_from_slice(&data);
                        } else {
                            let mut message = Vec::with_capacity(data.len() + 1);
                            message.push(channel);
                            message.extend_from_slice(&data);
                            if ws_tx.send(Message::binary(message)).await.is_err() {
                                return;
                            }
                        }
                        if fin {
                            open_outputs.retain(|c| *c != channel);
                        }
                        if open_outputs.is_empty() {
                            if let Some(status) = held_status.take() {
                                if ws_tx.send(Message::binary(status)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    Ok(Some(Frame::Ping { id })) => {
                        if writer.lock().await.send(&Frame::Ping { id }).await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(Frame::GoAway { .. })) | Ok(None) => break,
                    Ok(Some(other)) => debug!(?other, "SPDY frame from the runtime"),
                    Err(err) => {
                        debug!("reading from the runtime: {err}");
                        break;
                    }
                }
            }
            if let Some(status) = held_status.take() {
                if ws_tx.send(Message::binary(status)).await.is_err() {
                    return;
                }
            }
            let close = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            let _ = ws_tx.send(Message::Close(Some(close))).await;
            let _ = ws_tx.close().await;
        }
    };

    tokio::select! {
        () = from_runtime => info!("remote command finished"),
        () = to_runtime => info!("client went away; ending the remote command session"),
    }
    // Dropping the runtime connection ends the command's streams there too.
    let _ = writer.lock().await.io.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_offer_detected() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v4.channel.k8s.io, v5.channel.k8s.io"),
        );
        assert!(wants_v5(&h));
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v4.channel.k8s.io"),
        );
        assert!(!wants_v5(&h));
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(PROTOCOL_V5),
        );
        assert!(!wants_v5(&h));
    }

    #[test]
    fn runtime_streams_map_to_channels() {
        let ids = StreamIds {
            error: 1,
            stdin: Some(3),
            stdout: Some(5),
            stderr: None,
            resize: Some(7),
        };
        assert_eq!(ids.channel_of(1), Some(ERROR));
        assert_eq!(ids.channel_of(5), Some(STDOUT));
        assert_eq!(ids.channel_of(3), None, "stdin is write-only");
        assert_eq!(ids.channel_of(9), None);
    }
}
