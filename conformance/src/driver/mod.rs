//! The client driver: the reference's shared conformance suite drives OUR client through
//! this relay (`tools/cross-port/specs/CLIENT_DRIVER_PROTOCOL.md`, vgi-rpc 0.52.2).
//!
//! One JSON request per stdin line, one JSON response per stdout line, strict lockstep,
//! one connection per process. The driver is a relay: batches cross as IPC bytes, the
//! method name and the whole request metadata go to the client untouched, and errors and
//! logs are what the client reported. Nothing here repairs the client's output; a gap in
//! the client shows up as a failing conformance test, which is the point.
//!
//! Streams use the nested design (§5): `stream_open` enters a sub-loop that owns stdin
//! until the stream's terminal event, so at most one stream can exist and the stream's
//! borrow of the client is lexically scoped.

mod describe;
mod ipc;
mod reply;
mod sessions;
mod stream;
mod upload;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use vgi_rpc::LogRecord;
use vgi_rpc::client::{
    CallOptions, Client, ConnectOptions, HttpConnectOptions, StickySessions, Target,
};
use vgi_rpc::transport::Address;
use vgi_rpc::wire::{Metadata, keys};

use reply::{Reply, call_error, ok, refused, with_logs};

/// Ops only an HTTP connection can carry (§4.10).
const HTTP_ONLY_OPS: [&str; 7] = [
    "capabilities",
    "request_upload_urls",
    "session_begin",
    "session_token",
    "session_echo_headers",
    "session_detach",
    "session_end",
];

/// Ops valid only inside an open stream.
const STREAM_OPS: [&str; 5] = ["tick", "next_with_token", "exchange", "cancel", "close"];

/// Whether the main loop goes on after an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Read the next request.
    Continue,
    /// `shutdown`: tear down, answer `{"ok": true}`, exit 0.
    Shutdown,
    /// EOF on stdin: the same teardown, without an answer.
    Eof,
}

/// The control channel: request lines in, response lines out.
pub(crate) struct Channel<R, W> {
    input: R,
    output: W,
}

impl<R: BufRead, W: Write> Channel<R, W> {
    /// Reads the next request object. `None` at EOF (or when stdin fails): shutdown.
    /// A line that is not a JSON object is answered with a refusal here and skipped.
    pub(crate) fn next_request(&mut self) -> Option<Map<String, Value>> {
        loop {
            let mut line = String::new();
            match self.input.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(Value::Object(request)) => return Some(request),
                Ok(_) => self.send(refused("malformed control line: not a JSON object")),
                Err(e) => self.send(refused(format!("malformed control line: {e}"))),
            }
        }
    }

    /// Writes one response line and flushes. A closed stdout ends the process: nobody is
    /// listening any more.
    pub(crate) fn send(&mut self, reply: Reply) {
        let line = Value::Object(reply).to_string();
        if writeln!(self.output, "{line}")
            .and_then(|()| self.output.flush())
            .is_err()
        {
            std::process::exit(0);
        }
    }
}

/// The one connection, once `connect` has succeeded.
pub(crate) struct Session {
    client: Client,
    protocol: String,
    logs: Arc<Mutex<Vec<LogRecord>>>,
    /// The base URL and options of an `http` connection (for the HTTP-only ops).
    http: Option<(String, ConnectOptions)>,
    /// The sticky-session scopes every HTTP request of this connection carries (§4.10).
    sessions: StickySessions,
}

impl Session {
    /// Takes the log records received since the last response.
    pub(crate) fn drain_logs(&self) -> Vec<LogRecord> {
        match self.logs.lock() {
            Ok(mut logs) => std::mem::take(&mut *logs),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    /// The call target and options for a request batch's metadata: the routing key from
    /// `connect`, the protocol version and the whole metadata map exactly as the harness
    /// stamped them.
    fn route(&self, metadata: &Metadata) -> Result<(String, Target, CallOptions), String> {
        let method = metadata.get(keys::METHOD).ok_or_else(|| {
            format!(
                "the request batch carries no `{}` metadata (harness or IPC reader bug)",
                keys::METHOD
            )
        })?;
        let target = Target::new(self.protocol.clone(), metadata.get(keys::PROTOCOL_VERSION));
        let options = CallOptions::default().with_metadata(metadata.clone());
        Ok((method.to_owned(), target, options))
    }
}

/// Runs the driver over `input` / `output` until `shutdown` or EOF.
pub(crate) fn run(input: impl BufRead, output: impl Write) {
    let mut channel = Channel { input, output };
    let mut session: Option<Session> = None;
    while let Some(request) = channel.next_request() {
        let op = request
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let flow = match (op, session.as_mut()) {
            ("shutdown", _) => Flow::Shutdown,
            ("connect", None) => {
                match connect(&request) {
                    Ok(s) => {
                        session = Some(s);
                        channel.send(ok());
                    }
                    Err(e) => channel.send(refused(e)),
                }
                Flow::Continue
            }
            ("connect", Some(_)) => {
                channel.send(refused(
                    "`connect` arrives once; this driver is already connected",
                ));
                Flow::Continue
            }
            ("", _) => {
                channel.send(refused("the request has no string `op`"));
                Flow::Continue
            }
            (_, None) => {
                channel.send(refused(format!(
                    "`{op}` before `connect`: no connection yet"
                )));
                Flow::Continue
            }
            ("unary", Some(s)) => {
                channel.send(unary(s, &request));
                Flow::Continue
            }
            ("describe", Some(s)) => {
                let reply = match describe::describe(&mut s.client) {
                    Ok(description) => {
                        let mut reply = ok();
                        reply.insert("describe".into(), description);
                        reply.insert("error".into(), Value::Null);
                        reply
                    }
                    Err(e) => {
                        let mut reply = ok();
                        reply.insert("error".into(), call_error(&e));
                        reply
                    }
                };
                channel.send(with_logs(reply, s.drain_logs()));
                Flow::Continue
            }
            ("stream_open", Some(s)) => stream::open(s, &request, &mut channel),
            (op, Some(_)) if STREAM_OPS.contains(&op) && matches!(op, "cancel" | "close") => {
                // No stream is open: a successful no-op (§4.8, §4.9).
                channel.send(ok());
                Flow::Continue
            }
            (op, Some(_)) if STREAM_OPS.contains(&op) => {
                channel.send(refused(format!("`{op}` with no stream open")));
                Flow::Continue
            }
            ("capabilities", Some(s)) if s.http.is_some() => {
                channel.send(capabilities(s));
                Flow::Continue
            }
            (op, Some(s)) if op.starts_with("session_") && s.http.is_some() => {
                channel.send(sessions::op(s, op, &request));
                Flow::Continue
            }
            ("request_upload_urls", Some(s)) if s.http.is_some() => {
                channel.send(upload::request_upload_urls(s, &request));
                Flow::Continue
            }
            (op, Some(s)) if HTTP_ONLY_OPS.contains(&op) && s.http.is_some() => {
                channel.send(refused(format!(
                    "`{op}` is not implemented by vgi-rpc-rs's HTTP client yet"
                )));
                Flow::Continue
            }
            (op, Some(_)) if HTTP_ONLY_OPS.contains(&op) => {
                channel.send(refused("op requires http transport"));
                Flow::Continue
            }
            (op, Some(_)) => {
                channel.send(refused(format!("unknown op `{op}`")));
                Flow::Continue
            }
        };
        if flow != Flow::Continue {
            // Close the connection (kills and reaps an exec: worker) before answering,
            // ending its open session scopes innermost-out.
            if let Some(s) = &session {
                sessions::end_all(s);
            }
            drop(session.take());
            if flow == Flow::Shutdown {
                channel.send(ok());
            }
            return;
        }
    }
    // EOF on stdin is a shutdown without a response.
    if let Some(s) = &session {
        sessions::end_all(s);
    }
    drop(session);
}

/// The `connect` op: parse the transport and target, open the connection.
fn connect(request: &Map<String, Value>) -> Result<Session, String> {
    let protocol = request
        .get("protocol")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or("connect: `protocol` (the routing key) is required")?;
    let transport = request
        .get("transport")
        .and_then(Value::as_str)
        .ok_or("connect: `transport` is required")?;
    let target = request.get("target").unwrap_or(&Value::Null);
    // The driver is one connection: a failed call must not silently open another.
    let mut options = ConnectOptions::default().with_reconnect(false);
    let sessions = StickySessions::new();
    let address = match transport {
        "stdio" | "shm" => {
            let argv: Option<Vec<String>> = target
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
                .and_then(|v: Option<Vec<String>>| v);
            if transport == "shm" {
                options = options.with_shm(shm_size(request)?);
            }
            match argv {
                Some(argv) if !argv.is_empty() => Address::Exec(argv),
                _ => {
                    return Err(format!(
                        "connect: {transport} `target` must be a non-empty argv array"
                    ));
                }
            }
        }
        "unix" => match target.as_str() {
            Some(path) if !path.is_empty() => Address::Unix(PathBuf::from(path)),
            _ => return Err("connect: unix `target` must be a socket path".into()),
        },
        "tcp" => tcp_address(target.as_str().unwrap_or_default())?,
        "http" => {
            let url = target
                .as_str()
                .filter(|u| !u.is_empty())
                .ok_or("connect: http `target` must be a base URL")?;
            options =
                options.with_http(http_options(request)?.with_sticky_sessions(sessions.clone()));
            Address::parse(url).map_err(|e| format!("connect: {e}"))?
        }
        other => return Err(format!("connect: unknown transport `{other}`")),
    };
    if request.get("external").and_then(Value::as_bool) == Some(true) {
        options = options.with_external(Arc::new(driver_external()));
    }
    let mut client = Client::connect_with(&address, options.clone())
        .map_err(|e| format!("connect to {transport} {target} failed: {e}"))?;
    let logs: Arc<Mutex<Vec<LogRecord>>> = Arc::default();
    let sink = Arc::clone(&logs);
    client.set_log_handler(move |record| {
        if let Ok(mut logs) = sink.lock() {
            logs.push(record.clone());
        }
    });
    let http = match &address {
        Address::Http(url) => Some((url.clone(), options)),
        _ => None,
    };
    Ok(Session {
        client,
        protocol: protocol.to_owned(),
        logs,
        http,
        sessions,
    })
}

/// What `external: true` turns on (§4.1): the client resolves pointer batches itself.
/// The shared suite's fake storage vends `http://127.0.0.1:<port>` URLs, so the policy
/// is plain HTTP to the loopback addresses, and nothing else: its `localhost` redirect
/// alias is refused, as the suite's fetch-security fixture requires.
fn driver_external() -> vgi_rpc::external::ExternalConfig {
    use vgi_rpc::external::{ExternalConfig, UrlPolicy};
    ExternalConfig::new().with_url_policy(UrlPolicy::loopback().with_hosts(["127.0.0.1", "::1"]))
}

/// The HTTP options of `connect` (§4.1): `headers` sent on every request, and the
/// tri-state `compression_level` (absent: the client's default, `null`: off, an
/// integer: that zstd level).
fn http_options(request: &Map<String, Value>) -> Result<HttpConnectOptions, String> {
    let mut http = HttpConnectOptions::default();
    match request.get("compression_level") {
        None => {}
        Some(Value::Null) => http = http.with_compression_level(None),
        Some(v) => {
            let level = v
                .as_i64()
                .and_then(|l| i32::try_from(l).ok())
                .ok_or_else(|| {
                    format!("connect: `compression_level` must be an integer or null, got {v}")
                })?;
            http = http.with_compression_level(Some(level));
        }
    }
    match request.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                let value = value
                    .as_str()
                    .ok_or_else(|| format!("connect: header {name:?} must be a string"))?;
                http = http.with_header(name.clone(), value);
            }
        }
        Some(v) => return Err(format!("connect: `headers` must be an object, got {v}")),
    }
    Ok(http)
}

/// The `capabilities` op (§4.10): what `OPTIONS {prefix}/health` advertises.
fn capabilities(session: &Session) -> Reply {
    let Some((url, options)) = &session.http else {
        return refused("op requires http transport");
    };
    match vgi_rpc::transport::http::client::capabilities(url, options) {
        Ok(caps) => {
            let mut reply = ok();
            reply.insert(
                "caps".into(),
                serde_json::json!({
                    "sticky_enabled": caps.sticky_enabled,
                    "sticky_default_ttl": caps.sticky_default_ttl,
                    "sticky_echo_headers": caps.sticky_echo_headers,
                    "upload_url_support": caps.upload_url_support,
                    "max_request_bytes": caps.max_request_bytes,
                    "max_response_bytes": caps.max_response_bytes,
                    "max_externalized_response_bytes": caps.max_externalized_response_bytes,
                    "externalization_enabled": caps.externalization_enabled,
                    "max_upload_bytes": caps.max_upload_bytes,
                    "supported_encodings": caps.supported_encodings,
                }),
            );
            reply
        }
        Err(e) => refused(format!("capabilities: {e}")),
    }
}

/// Default segment size of the `shm` transport when `connect` names none (§4.1).
const DEFAULT_SHM_SIZE: usize = 4 << 20;

/// The `shm` transport's segment size: `shm_size` (bytes), 4 MiB when absent or null.
fn shm_size(request: &Map<String, Value>) -> Result<usize, String> {
    match request.get("shm_size") {
        None | Some(Value::Null) => Ok(DEFAULT_SHM_SIZE),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("connect: `shm_size` must be a byte count, got {v}")),
    }
}

/// `HOST:PORT` (empty host: 127.0.0.1; `[v6]:port` accepted).
fn tcp_address(target: &str) -> Result<Address, String> {
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| format!("connect: tcp `target` must be HOST:PORT, got {target:?}"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("connect: invalid tcp port in {target:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    Ok(Address::Tcp(host.to_owned(), port))
}

/// The `unary` op.
fn unary(session: &mut Session, request: &Map<String, Value>) -> Reply {
    let Some(text) = request.get("request_b64").and_then(Value::as_str) else {
        return refused("unary: `request_b64` is required");
    };
    let (params, metadata) = match ipc::decode_batch("request_b64", text) {
        Ok(decoded) => decoded,
        Err(e) => return refused(e),
    };
    let (method, target, options) = match session.route(&metadata) {
        Ok(route) => route,
        Err(e) => return refused(e),
    };
    let outcome = session.client.call(&target, &method, &params, &options);
    let mut reply = ok();
    match outcome {
        Ok(result) => {
            let encoded = match result.batch {
                Some(batch) => match ipc::encode_batch(&batch, &result.metadata) {
                    Ok(b64) => Value::String(b64),
                    Err(e) => return refused(e),
                },
                None => Value::Null,
            };
            reply.insert("result_b64".into(), encoded);
            reply.insert("error".into(), Value::Null);
        }
        Err(e) => {
            reply.insert("result_b64".into(), Value::Null);
            reply.insert("error".into(), call_error(&e));
        }
    }
    with_logs(reply, session.drain_logs())
}
