//! A worker in this process, raw HTTP/1.1 requests to it, and Arrow bodies both ways.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use vgi_rpc::transport::Shutdown;
use vgi_rpc::transport::http::{HttpOptions, serve};
use vgi_rpc::wire::{self, Limits, Metadata, StreamEncoder, StreamItem, keys};

/// The conformance service served over HTTP on a free port, stopped on drop.
pub(crate) struct Worker {
    pub(crate) port: u16,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub(crate) fn start(options: HttpOptions) -> Worker {
        Self::start_with(options, vgi_rpc_conformance::server_builder())
    }

    pub(crate) fn start_with(
        options: HttpOptions,
        builder: vgi_rpc::server::ServerBuilder,
    ) -> Worker {
        let server = builder.build().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shutdown = Shutdown::new().unwrap();
        let stop = shutdown.clone();
        let thread = std::thread::spawn(move || serve(&server, &options, listener, &stop).unwrap());
        Worker {
            port,
            shutdown,
            thread: Some(thread),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Every batch of every IPC stream in the body, with its metadata.
    pub(crate) fn batches(&self) -> Vec<(RecordBatch, Metadata)> {
        let limits = Limits::default();
        let mut rest = &self.body[..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let mut decoder = wire::read_stream_start(&mut rest, &limits).unwrap();
            while let StreamItem::Batch(batch, md) =
                wire::read_stream_item(&mut rest, &mut decoder, &limits).unwrap()
            {
                out.push((batch, md));
            }
        }
        out
    }

    /// The EXCEPTION message the body carries (`"<Type>: <message>"`), if any.
    pub(crate) fn exception(&self) -> Option<String> {
        self.batches().into_iter().find_map(|(_, md)| {
            (md.get(keys::LOG_LEVEL) == Some("EXCEPTION"))
                .then(|| md.get(keys::LOG_MESSAGE).unwrap_or_default().to_owned())
        })
    }

    /// The metadata value `key` on any batch of the body.
    pub(crate) fn token(&self, key: &str) -> Option<String> {
        self.batches()
            .into_iter()
            .find_map(|(_, md)| md.get(key).map(str::to_owned))
    }
}

/// Sends raw bytes as one request on a fresh connection and reads the whole answer.
pub(crate) fn send_raw(port: u16, raw: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(raw)?;
    read_reply(&mut stream)
}

/// Reads one response (Content-Length or chunked) from `stream`.
pub(crate) fn read_reply(stream: &mut TcpStream) -> std::io::Result<Reply> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other(
                "connection closed before the headers",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = buf[head_end + 4..].to_vec();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < length {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(length);
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            if body.windows(5).any(|w| w == b"0\r\n\r\n") {
                break;
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body = dechunk(&body);
    }
    let mut reply = Reply {
        status,
        headers,
        body,
    };
    if let Some(coding) = reply.header("content-encoding").map(str::to_owned) {
        reply.body = match coding.as_str() {
            "zstd" => zstd::stream::decode_all(&reply.body[..])?,
            "gzip" => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&reply.body[..]).read_to_end(&mut out)?;
                out
            }
            _ => reply.body,
        };
    }
    Ok(reply)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = body.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&body[..i]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[i + 2..i + 2 + size]);
        body = &body[i + 2 + size + 2..];
    }
    out
}

/// A POST with `body` and extra headers (`Content-Type` is the Arrow one unless given).
pub(crate) fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut raw = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        raw.push_str("Content-Type: application/vnd.apache.arrow.stream\r\n");
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    send_raw(port, &bytes).unwrap()
}

/// A bodiless request.
pub(crate) fn get(port: u16, method: &str, path: &str) -> Reply {
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    send_raw(port, raw.as_bytes()).unwrap()
}

/// The request metadata of `method` of the conformance service.
pub(crate) fn request_md(method: &str) -> Metadata {
    Metadata::new()
        .with(keys::METHOD, method)
        .with(keys::REQUEST_VERSION, keys::REQUEST_VERSION_VALUE)
        .with(keys::PROTOCOL, "ConformanceService")
        .with(keys::PROTOCOL_VERSION, vgi_rpc_conformance_version())
}

fn vgi_rpc_conformance_version() -> String {
    vgi_rpc_conformance::ConformanceServer::<()>::spec()
        .version
        .unwrap_or_default()
}

/// One IPC stream of `batch` carrying `md`.
pub(crate) fn stream(batch: &RecordBatch, md: &Metadata) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut buf, &batch.schema());
    enc.batch(&mut buf, batch, md).unwrap();
    enc.eos(&mut buf);
    buf
}

/// A one-row request with int64 parameters.
pub(crate) fn int_request(method: &str, params: &[(&str, i64)]) -> Vec<u8> {
    let fields: Vec<Field> = params
        .iter()
        .map(|(n, _)| Field::new(*n, DataType::Int64, false))
        .collect();
    let columns: Vec<ArrayRef> = params
        .iter()
        .map(|(_, v)| Arc::new(Int64Array::from(vec![*v])) as ArrayRef)
        .collect();
    let batch = if params.is_empty() {
        RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(0)),
        )
        .unwrap()
    } else {
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    };
    stream(&batch, &request_md(method))
}

/// A producer tick (or cancel) carrying the tokens of a previous answer.
pub(crate) fn tick(cursor: &str, call: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut md = Metadata::new()
        .with(keys::STREAM_STATE, cursor)
        .with(keys::CALL_STATE, call);
    for (k, v) in extra {
        md.insert(*k, *v);
    }
    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
    stream(&empty, &md)
}
