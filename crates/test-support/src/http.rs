//! A minimal blocking HTTP/1.1 client (std only) for readiness checks and
//! simple requests in tests.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

/// Status and body of an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// `GET url` with `Connection: close`; `url` must be `http://host:port/path`.
/// Chunked bodies are decoded. Times out after a few seconds.
pub fn http_get(url: &str) -> anyhow::Result<HttpResponse> {
    http_request("GET", url, None)
}

/// Sends one request with an optional JSON body and reads the whole response.
pub fn http_request(
    method: &str,
    url: &str,
    json_body: Option<&str>,
) -> anyhow::Result<HttpResponse> {
    http_request_with(method, url, json_body, &[])
}

/// [`http_request`] with extra request headers.
pub fn http_request_with(
    method: &str,
    url: &str,
    json_body: Option<&str>,
    headers: &[(&str, &str)],
) -> anyhow::Result<HttpResponse> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// URLs are supported: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .ok_or_else(|| anyhow!("{authority} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;

    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = json_body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    if let Some(body) = json_body {
        request.push_str(body);
    }
    stream
        .write_all(request.as_bytes())
        .context("sending request")?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).context("reading response")?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> anyhow::Result<HttpResponse> {
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("response has no end of headers"))?;
    let head = std::str::from_utf8(&raw[..header_end]).context("response headers are not UTF-8")?;
    let body = &raw[header_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("bad status line: {status_line:?}"))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        decode_chunked(body)?
    } else {
        body.to_vec()
    };
    Ok(HttpResponse {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn decode_chunked(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("truncated chunk size line"))?;
        let size_text = std::str::from_utf8(&data[..line_end])?;
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn parses_content_length_response() {
        let resp =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").expect("parse");
        assert_eq!(
            resp,
            HttpResponse {
                status: 200,
                body: "ok".into()
            }
        );
    }

    #[test]
    fn decodes_chunked_body() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot \r\n5;x=y\r\nready\r\n0\r\n\r\n";
        let resp = parse_response(raw).expect("parse");
        assert_eq!(resp.status, 503);
        assert_eq!(resp.body, "not ready");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 abc\r\n\r\n").is_err());
        assert!(http_get("https://127.0.0.1:1/").is_err());
    }

    #[test]
    fn get_against_a_real_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).expect("read");
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .expect("write");
            request
        });
        let resp = http_get(&format!("http://127.0.0.1:{port}/readyz?verbose")).expect("get");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, "ok");
        let request = server.join().expect("server thread");
        assert!(
            request.starts_with("GET /readyz?verbose HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{request}"
        );
    }
}
