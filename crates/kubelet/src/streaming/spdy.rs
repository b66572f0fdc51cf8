//! A SPDY/3.1 client, just enough of it to speak the Kubernetes remote command
//! protocol (`v4.channel.k8s.io`) to the runtime's streaming server, which is
//! upstream's `httpstream/spdy` on top of moby/spdystream.
//!
//! Frames (draft 3): a control frame starts with the control bit, version 3 and
//! a 16-bit type, then 8 bits of flags and a 24-bit length; a data frame starts
//! with a 31-bit stream id, then flags and length. Header blocks are one zlib
//! stream per direction and connection, primed with the SPDY/3 dictionary and
//! flushed (sync flush) after every block. spdystream does no flow control, so
//! neither do we.

use std::collections::BTreeMap;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// Frames larger than this are refused (the protocol allows 16 MiB; the
/// streaming server writes at most 32 KiB of data at once).
const MAX_FRAME_LEN: usize = 1 << 24;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading a SPDY frame: {0}")]
    Io(#[from] std::io::Error),
    #[error("SPDY frame from version {0}; only version 3 is spoken")]
    Version(u16),
    #[error("malformed SPDY {what} frame")]
    Malformed { what: &'static str },
    #[error("SPDY header block: {0}")]
    Headers(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Header names (lower case) to their values (several are NUL-separated on the wire).
pub type Headers = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Data {
        stream_id: u32,
        fin: bool,
        data: Vec<u8>,
    },
    SynStream {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings,
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    /// A control frame type this client does not know (skipped, as spdystream does).
    Unknown {
        frame_type: u16,
    },
}

/// The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1): the
/// length-prefixed names and values below followed by a run of common text.
fn dictionary() -> Vec<u8> {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = concat!(
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized",
        "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable",
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
        "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,",
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
    );
    let mut dict = Vec::with_capacity(1423);
    for word in WORDS {
        dict.extend_from_slice(&(word.len() as u32).to_be_bytes());
        dict.extend_from_slice(word.as_bytes());
    }
    dict.extend_from_slice(TAIL.as_bytes());
    dict
}

/// Encodes frames for one direction of a connection (it owns the header
/// compressor, whose state spans the connection).
pub struct Encoder {
    compress: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        let mut compress = Compress::new(Compression::default(), true);
        // Only fails for a stream that already produced output.
        let _ = compress.set_dictionary(&dictionary());
        Encoder { compress }
    }

    fn header_block(&mut self, headers: &Headers) -> Result<Vec<u8>> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, values) in headers {
            let value = values.join("\0");
            raw.extend_from_slice(&(name.len() as u32).to_be_bytes());
            raw.extend_from_slice(name.to_ascii_lowercase().as_bytes());
            raw.extend_from_slice(&(value.len() as u32).to_be_bytes());
            raw.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let start_in = self.compress.total_in();
        loop {
            let consumed = (self.compress.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(raw.len() + 64);
            }
            self.compress
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| Error::Headers(e.to_string()))?;
            // Done once all input is in and the flush had room to finish.
            if (self.compress.total_in() - start_in) as usize == raw.len()
                && out.len() < out.capacity()
            {
                return Ok(out);
            }
        }
    }

    /// The wire bytes of `frame`.
    pub fn encode(&mut self, frame: &Frame) -> Result<Vec<u8>> {
        let control = |frame_type: u16, flags: u8, body: Vec<u8>| {
            let mut out = Vec::with_capacity(8 + body.len());
            out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
            out.extend_from_slice(&frame_type.to_be_bytes());
            out.push(flags);
            out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(&body);
            out
        };
        let fin_flag = |fin: bool| if fin { FLAG_FIN } else { 0 };
        Ok(match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                let mut out = Vec::with_capacity(8 + data.len());
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.push(fin_flag(*fin));
                out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                out.extend_from_slice(data);
                out
            }
            Frame::SynStream {
                stream_id,
                fin,
                headers,
            } => {
                let mut body = Vec::new();
                body.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                body.extend_from_slice(&0u32.to_be_bytes()); // associated-to stream
                body.extend_from_slice(&[0, 0]); // priority 0, slot 0
                body.extend(self.header_block(headers)?);
                control(TYPE_SYN_STREAM, fin_flag(*fin), body)
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            }
            | Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let frame_type = if matches!(frame, Frame::SynReply { .. }) {
                    TYPE_SYN_REPLY
                } else {
                    TYPE_HEADERS
                };
                let mut body = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                body.extend(self.header_block(headers)?);
                control(frame_type, fin_flag(*fin), body)
            }
            Frame::RstStream { stream_id, status } => {
                let mut body = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                body.extend_from_slice(&status.to_be_bytes());
                control(TYPE_RST_STREAM, 0, body)
            }
            Frame::Settings => control(TYPE_SETTINGS, 0, 0u32.to_be_bytes().to_vec()),
            Frame::Ping { id } => control(TYPE_PING, 0, id.to_be_bytes().to_vec()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                let mut body = (last_good_stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                body.extend_from_slice(&status.to_be_bytes());
                control(TYPE_GOAWAY, 0, body)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut body = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                body.extend_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
                control(TYPE_WINDOW_UPDATE, 0, body)
            }
            Frame::Unknown { frame_type } => control(*frame_type, 0, Vec::new()),
        })
    }
}

/// Decodes the frames of one direction of a connection.
pub struct Decoder {
    decompress: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            decompress: Decompress::new(true),
        }
    }

    fn inflate(&mut self, compressed: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(compressed.len() * 4 + 256);
        let start_in = self.decompress.total_in();
        loop {
            let consumed = (self.decompress.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(1024));
            }
            let before = (self.decompress.total_in(), self.decompress.total_out());
            match self.decompress.decompress_vec(
                &compressed[consumed..],
                &mut out,
                FlushDecompress::Sync,
            ) {
                Ok(Status::Ok | Status::BufError) => {
                    let all_in =
                        (self.decompress.total_in() - start_in) as usize == compressed.len();
                    let stuck = before == (self.decompress.total_in(), self.decompress.total_out());
                    if all_in && (stuck || out.len() < out.capacity()) {
                        return Ok(out);
                    }
                    if stuck {
                        return Err(Error::Headers("header block does not inflate".into()));
                    }
                }
                Ok(Status::StreamEnd) => return Ok(out),
                Err(err) if err.needs_dictionary().is_some() => {
                    self.decompress
                        .set_dictionary(&dictionary())
                        .map_err(|e| Error::Headers(e.to_string()))?;
                }
                Err(err) => return Err(Error::Headers(err.to_string())),
            }
        }
    }

    fn header_block(&mut self, compressed: &[u8]) -> Result<Headers> {
        let raw = self.inflate(compressed)?;
        let bad = || Error::Headers("truncated header block".into());
        let mut pos = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let slice = raw.get(pos..pos + n).ok_or_else(bad)?;
            pos += n;
            Ok(slice)
        };
        let count = be32(take(4)?);
        let mut headers = Headers::new();
        for _ in 0..count {
            let len = be32(take(4)?) as usize;
            let name = String::from_utf8_lossy(take(len)?).into_owned();
            let len = be32(take(4)?) as usize;
            let value = String::from_utf8_lossy(take(len)?).into_owned();
            headers
                .entry(name)
                .or_default()
                .extend(value.split('\0').map(str::to_string));
        }
        Ok(headers)
    }

    /// Reads the next frame; `None` at a clean end of the connection.
    pub async fn read<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Option<Frame>> {
        let mut head = [0u8; 8];
        match r.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let flags = head[4];
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        if len > MAX_FRAME_LEN {
            return Err(Error::Malformed { what: "oversized" });
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await?;
        let fin = flags & FLAG_FIN != 0;
        if head[0] & 0x80 == 0 {
            return Ok(Some(Frame::Data {
                stream_id: be32(&head[..4]) & 0x7fff_ffff,
                fin,
                data: body,
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != VERSION {
            return Err(Error::Version(version));
        }
        let frame_type = u16::from_be_bytes([head[2], head[3]]);
        let need = |n: usize, what: &'static str| {
            if body.len() < n {
                Err(Error::Malformed { what })
            } else {
                Ok(())
            }
        };
        let frame = match frame_type {
            TYPE_SYN_STREAM => {
                need(10, "SYN_STREAM")?;
                Frame::SynStream {
                    stream_id: be32(&body) & 0x7fff_ffff,
                    fin,
                    headers: self.header_block(&body[10..])?,
                }
            }
            TYPE_SYN_REPLY => {
                need(4, "SYN_REPLY")?;
                Frame::SynReply {
                    stream_id: be32(&body) & 0x7fff_ffff,
                    fin,
                    headers: self.header_block(&body[4..])?,
                }
            }
            TYPE_HEADERS => {
                need(4, "HEADERS")?;
                Frame::Headers {
                    stream_id: be32(&body) & 0x7fff_ffff,
                    fin,
                    headers: self.header_block(&body[4..])?,
                }
            }
            TYPE_RST_STREAM => {
                need(8, "RST_STREAM")?;
                Frame::RstStream {
                    stream_id: be32(&body) & 0x7fff_ffff,
                    status: be32(&body[4..]),
                }
            }
            TYPE_SETTINGS => Frame::Settings,
            TYPE_PING => {
                need(4, "PING")?;
                Frame::Ping { id: be32(&body) }
            }
            TYPE_GOAWAY => {
                need(8, "GOAWAY")?;
                Frame::GoAway {
                    last_good_stream_id: be32(&body) & 0x7fff_ffff,
                    status: be32(&body[4..]),
                }
            }
            TYPE_WINDOW_UPDATE => {
                need(8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate {
                    stream_id: be32(&body) & 0x7fff_ffff,
                    delta: be32(&body[4..]) & 0x7fff_ffff,
                }
            }
            frame_type => Frame::Unknown { frame_type },
        };
        Ok(Some(frame))
    }
}

/// One header of a stream, as `Headers` holds it.
pub fn header(name: &str, value: &str) -> (String, Vec<String>) {
    (name.to_ascii_lowercase(), vec![value.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_the_spdy3_one() {
        let dict = dictionary();
        assert_eq!(dict.len(), 1423);
        assert_eq!(&dict[..11], b"\0\0\0\x07options");
        assert!(dict.ends_with(b",*,enq=0."));
    }

    #[tokio::test]
    async fn frames_round_trip_with_one_compression_context() {
        let mut enc = Encoder::new();
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                fin: false,
                headers: Headers::from([header("streamType", "error")]),
            },
            Frame::SynStream {
                stream_id: 3,
                fin: false,
                headers: Headers::from([header("streamtype", "stdin")]),
            },
            Frame::SynReply {
                stream_id: 3,
                fin: false,
                headers: Headers::new(),
            },
            Frame::Data {
                stream_id: 3,
                fin: false,
                data: b"hello\n".to_vec(),
            },
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: Vec::new(),
            },
            Frame::Ping { id: 2 },
            Frame::RstStream {
                stream_id: 5,
                status: 5,
            },
            Frame::GoAway {
                last_good_stream_id: 7,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 65536,
            },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend(enc.encode(f).expect("encode"));
        }
        let mut dec = Decoder::new();
        let mut r = wire.as_slice();
        let mut back = Vec::new();
        while let Some(f) = dec.read(&mut r).await.expect("decode") {
            back.push(f);
        }
        let mut expected = frames.clone();
        expected[0] = Frame::SynStream {
            stream_id: 1,
            fin: false,
            headers: Headers::from([header("streamtype", "error")]),
        };
        assert_eq!(back, expected);
    }

    /// A SYN_STREAM as Go's spdy framer writes it (zlib level 9 with the
    /// dictionary) for `streamtype: error` on stream 1.
    #[test]
    fn go_compressed_header_block_decodes() {
        let mut go_style = Compress::new(Compression::best(), true);
        go_style.set_dictionary(&dictionary()).expect("dictionary");
        let raw = [
            &1u32.to_be_bytes()[..],
            &10u32.to_be_bytes(),
            b"streamtype",
            &5u32.to_be_bytes(),
            b"error",
        ]
        .concat();
        let mut compressed = Vec::with_capacity(256);
        go_style
            .compress_vec(&raw, &mut compressed, FlushCompress::Sync)
            .expect("compress");
        let mut dec = Decoder::new();
        let headers = dec.header_block(&compressed).expect("headers");
        assert_eq!(
            headers.get("streamtype").map(Vec::as_slice),
            Some(&["error".to_string()][..])
        );
    }
}
