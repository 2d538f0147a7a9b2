//! `vgi-rpc-conformance-worker`: hosts `ConformanceService` and `conformance.Secondary.v1`
//! (plus the runtime's built-in reflection protocol) with the command line of the
//! reference `vgi-rpc-conformance`.
//!
//! ```text
//! vgi-rpc-conformance-worker [--pipe | --http [PORT] | --unix PATH | --tcp [HOST:]PORT]
//!                            [--describe] [--threaded] [--max-connections N]
//!                            [--access-log PATH] [--access-log-debug]
//!                            [--fake-storage URL] [--externalize-threshold N]
//! ```
//!
//! Pipes (stdin/stdout, the default), Unix sockets, TCP and HTTP are served.
//! `--fake-storage URL` wires the reference's fake storage service: on every transport,
//! data batches from `--externalize-threshold` bytes go out as pointers, pointer inputs
//! are resolved (loopback URLs only), and `published_string` answers by reference; over
//! HTTP the worker also vends upload URLs (the other storage flags: `storage.rs`). Shared
//! memory needs no flag: on pipes and Unix sockets the worker attaches the segment a
//! client names (`vgi-rpc-test --shm SIZE`) and moves large batches through it.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

mod http;
mod s3;
mod storage;
mod usage;

use anyhow::Context as _;
use http::{HttpFlags, serve_http};
use usage::USAGE;
use vgi_rpc::transport::{
    Listener, ServeOptions, Shutdown, TcpSocketListener, UnixSocketListener, serve_listener,
};
use vgi_rpc_conformance::identity::{IdentityMode, WhoamiImpl, WhoamiServer};
use vgi_rpc_conformance::kind_probe::{KindProbeImpl, KindProbeServer};

/// Where to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Transport {
    Pipe,
    Http(Option<u16>),
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

impl Transport {
    fn flag(&self) -> &'static str {
        match self {
            Transport::Pipe => "--pipe",
            Transport::Http(_) => "--http",
            Transport::Unix(_) => "--unix",
            Transport::Tcp { .. } => "--tcp",
        }
    }
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    transport: Transport,
    describe: bool,
    threaded: bool,
    max_connections: Option<usize>,
    memory_budget: Option<u64>,
    kind_probe: bool,
    access_log: Option<PathBuf>,
    access_log_debug: bool,
    fake_storage: Option<String>,
    s3: s3::S3Flags,
    externalize_threshold: u64,
    identity: IdentityMode,
    fail_serve_start_once: bool,
    otlp_endpoint: Option<String>,
    /// `--otel-claim CLAIM=ATTRIBUTE`: claims put on server spans.
    otel_claims: Vec<(String, String)>,
    /// `--otel-through-tracer`: server spans through the global tracer (the SDK's span
    /// path) instead of straight to the exporter, so tests export both ways.
    otel_through_tracer: bool,
    http: HttpFlags,
    storage: storage::StorageFlags,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            transport: Transport::Pipe,
            describe: false,
            threaded: false,
            max_connections: None,
            memory_budget: Some(vgi_rpc::server::DEFAULT_MEMORY_BUDGET),
            kind_probe: false,
            access_log: None,
            access_log_debug: false,
            fake_storage: None,
            s3: s3::S3Flags::default(),
            externalize_threshold: 4096,
            identity: IdentityMode::Off,
            fail_serve_start_once: false,
            otlp_endpoint: None,
            otel_claims: Vec::new(),
            otel_through_tracer: false,
            http: HttpFlags::default(),
            storage: storage::StorageFlags::default(),
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Serve(Box<Options>),
    Help,
}

/// Parses `[HOST:]PORT` (host defaults to 127.0.0.1).
fn parse_tcp(address: &str) -> Result<Transport, String> {
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => (host, port),
        Some((_, port)) => ("127.0.0.1", port),
        None => ("127.0.0.1", address),
    };
    let port = port
        .parse()
        .map_err(|_| format!("argument --tcp: invalid port in {address:?}"))?;
    Ok(Transport::Tcp {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
    })
}

fn int_arg(flag: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("argument {flag}: invalid int value {value:?}"))
}

/// Parses 64 hex digits into a token key.
fn parse_key(hex: &str) -> Result<[u8; 32], String> {
    let bad = || "argument --token-key: expected 64 hex digits".to_owned();
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    Ok(key)
}

/// Parses the arguments after the program name, argparse-style: `--flag value` and
/// `--flag=value`, one transport at most.
fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, String> {
    let mut options = Options::default();
    let mut transport_flag: Option<&'static str> = None;
    let mut args = args.into_iter().peekable();
    while let Some(raw) = args.next() {
        let raw = raw
            .into_string()
            .map_err(|a| format!("argument is not valid UTF-8: {a:?}"))?;
        let (flag, inline) = match raw.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (raw.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            match args.next().map(OsString::into_string) {
                Some(Ok(v)) if !v.starts_with("--") => Ok(v),
                _ => Err(format!("argument {name}: expected one argument")),
            }
        };
        let transport = match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--pipe" => Some(Transport::Pipe),
            "--http" => {
                let port = match inline.clone() {
                    Some(v) => Some(v),
                    None => match args.peek().and_then(|a| a.to_str()) {
                        Some(v) if !v.starts_with('-') => {
                            let v = v.to_owned();
                            args.next();
                            Some(v)
                        }
                        _ => None,
                    },
                };
                let port = port
                    .map(|p| {
                        p.parse::<u16>()
                            .map_err(|_| format!("argument --http: invalid port {p:?}"))
                    })
                    .transpose()?;
                Some(Transport::Http(port))
            }
            "--unix" => Some(Transport::Unix(PathBuf::from(value("--unix")?))),
            "--tcp" => Some(parse_tcp(&value("--tcp")?)?),
            "--describe" => {
                options.describe = true;
                None
            }
            "--threaded" => {
                options.threaded = true;
                None
            }
            "--access-log-debug" => {
                options.access_log_debug = true;
                None
            }
            "--max-connections" => {
                let n = value("--max-connections")?;
                let n = n
                    .parse()
                    .map_err(|_| format!("argument --max-connections: invalid int value {n:?}"))?;
                options.max_connections = Some(n);
                None
            }
            "--kind-probe" => {
                options.kind_probe = true;
                None
            }
            "--memory-budget" => {
                let n = int_arg("--memory-budget", &value("--memory-budget")?)?;
                options.memory_budget = (n > 0).then_some(n);
                None
            }
            "--access-log" => {
                options.access_log = Some(PathBuf::from(value("--access-log")?));
                None
            }
            "--otlp-endpoint" => {
                options.otlp_endpoint = Some(value("--otlp-endpoint")?);
                None
            }
            "--otel-through-tracer" => {
                options.otel_through_tracer = true;
                None
            }
            "--otel-claim" => {
                let raw = value("--otel-claim")?;
                let (claim, attribute) = raw
                    .split_once('=')
                    .filter(|(c, a)| !c.is_empty() && !a.is_empty())
                    .ok_or_else(|| {
                        format!("argument --otel-claim: expected CLAIM=ATTRIBUTE, got {raw:?}")
                    })?;
                options
                    .otel_claims
                    .push((claim.to_owned(), attribute.to_owned()));
                None
            }
            "--fake-storage" => {
                options.fake_storage = Some(value("--fake-storage")?);
                None
            }
            "--externalize-threshold" => {
                let n = value("--externalize-threshold")?;
                options.externalize_threshold = n
                    .parse()
                    .map_err(|_| "--externalize-threshold must be >= 0".to_owned())?;
                None
            }
            "--host" => {
                options.http.host = Some(value("--host")?);
                None
            }
            "--port" => {
                let p = value("--port")?;
                options.http.port = Some(
                    p.parse()
                        .map_err(|_| format!("argument --port: invalid port {p:?}"))?,
                );
                None
            }
            "--prefix" => {
                options.http.prefix = value("--prefix")?;
                None
            }
            "--max-request-bytes" => {
                options.http.max_request_bytes = Some(int_arg(
                    "--max-request-bytes",
                    &value("--max-request-bytes")?,
                )?);
                None
            }
            "--max-response-bytes" => {
                options.http.max_response_bytes = Some(int_arg(
                    "--max-response-bytes",
                    &value("--max-response-bytes")?,
                )?);
                None
            }
            "--no-compression" => {
                options.http.no_compression = true;
                None
            }
            "--cors-origin" => {
                options.http.cors_origins.push(value("--cors-origin")?);
                None
            }
            "--identity" => {
                let mode = value("--identity")?;
                options.identity = IdentityMode::parse(&mode).ok_or_else(|| {
                    format!(
                        "argument --identity: invalid choice: {mode:?} (choose from 'off', \
                         'both', 'introspect-only', 'grants')"
                    )
                })?;
                None
            }
            "--proof-mode" => {
                let mode = value("--proof-mode")?;
                if !["off", "allow", "require"].contains(&mode.as_str()) {
                    return Err(format!(
                        "argument --proof-mode: invalid choice: {mode:?} (choose from 'off', 'allow', 'require')"
                    ));
                }
                options.http.proof_mode = (mode != "off").then_some(mode);
                None
            }
            "--proof-origin-id" => {
                options.http.proof_origin_id = value("--proof-origin-id")?;
                None
            }
            "--proof-secrets" => {
                options.http.proof_secrets = value("--proof-secrets")?;
                None
            }
            "--proof-skew" => {
                options.http.proof_skew = Some(int_arg("--proof-skew", &value("--proof-skew")?)?);
                None
            }
            "--proof-no-replay-cache" => {
                options.http.proof_no_replay_cache = true;
                None
            }
            "--fail-serve-start-once" => {
                options.fail_serve_start_once = true;
                None
            }
            "--reject-all-auth" => {
                options.http.reject_all_auth = true;
                None
            }
            f if http::sticky_flag(&mut options.http.sticky, f, &mut value)? => None,
            "--token-key" => {
                options.http.token_key = Some(parse_key(&value("--token-key")?)?);
                None
            }
            "--tls-cert" => {
                options.http.tls_cert = Some(value("--tls-cert")?.into());
                None
            }
            "--tls-key" => {
                options.http.tls_key = Some(value("--tls-key")?.into());
                None
            }
            "--tls-client-ca" => {
                options.http.tls_client_ca = Some(value("--tls-client-ca")?.into());
                None
            }
            other if options.s3.take(other, &mut value)? => None,
            other => {
                if !storage::parse_flag(other, &mut value, &mut options.storage)? {
                    return Err(format!("unrecognized arguments: {other}"));
                }
                None
            }
        };
        if let Some(transport) = transport {
            if let Some(previous) = transport_flag.filter(|p| *p != transport.flag()) {
                return Err(format!(
                    "argument {}: not allowed with argument {previous}",
                    transport.flag()
                ));
            }
            transport_flag = Some(transport.flag());
            options.transport = transport;
        }
    }
    let socket = matches!(
        options.transport,
        Transport::Unix(_) | Transport::Tcp { .. }
    );
    if options.threaded && !socket {
        return Err("--threaded requires --unix or --tcp".to_owned());
    }
    if options.max_connections.is_some() && !options.threaded {
        return Err("--max-connections requires --threaded".to_owned());
    }
    options.s3.validate()?;
    if options.s3.enabled() && options.fake_storage.is_some() {
        return Err("--s3-bucket is not allowed with --fake-storage".to_owned());
    }
    let http = &options.http;
    if http.tls_cert.is_some() != http.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".to_owned());
    }
    if http.tls_client_ca.is_some() && http.tls_cert.is_none() {
        return Err("--tls-client-ca requires --tls-cert".to_owned());
    }
    if http.tls_cert.is_some() && !matches!(options.transport, Transport::Http(_)) {
        return Err("--tls-cert requires --http".to_owned());
    }
    Ok(Command::Serve(Box::new(options)))
}

fn serve(options: &Options) -> anyhow::Result<()> {
    // Installed before any runtime starts; dropped (flushing) when serving ends.
    let otlp = match &options.otlp_endpoint {
        Some(url) => Some(vgi_rpc::otel::otlp::install(
            Some(url),
            "vgi-rpc-conformance-worker",
        )?),
        None if vgi_rpc::otel::otlp::endpoint_in_env() => Some(vgi_rpc::otel::otlp::install(
            None,
            "vgi-rpc-conformance-worker",
        )?),
        None => None,
    };
    let external = match &options.fake_storage {
        Some(url) => Some(storage::external_config(
            url,
            options.externalize_threshold,
            &options.storage,
        )),
        None => options.s3.config(options.externalize_threshold)?,
    };
    let mut builder = match external {
        Some(config) => {
            vgi_rpc_conformance::server_builder_with_external(std::sync::Arc::new(config))
        }
        None => vgi_rpc_conformance::server_builder(),
    };
    if let Some(path) = &options.access_log {
        let level = if options.access_log_debug {
            vgi_rpc::server::AccessLogLevel::Debug
        } else {
            vgi_rpc::server::AccessLogLevel::Info
        };
        builder = builder.access_log(path, level);
    }
    if let Some(identity) = options.identity.identity()? {
        builder = builder.identity(identity);
    }
    if options.fail_serve_start_once {
        // Test only: the first serve-start notification fails, its retry succeeds.
        let failed = std::sync::atomic::AtomicBool::new(false);
        builder = builder.on_serve_start(move |_| {
            if failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                Ok(())
            } else {
                Err(vgi_rpc::RpcError::runtime_error("injected serve-start failure").into())
            }
        });
    }
    if options.identity == IdentityMode::Grants || options.http.tls_client_ca.is_some() {
        builder = builder.service(WhoamiServer::new(WhoamiImpl));
    }
    if options.kind_probe {
        builder = builder.service(KindProbeServer::new(KindProbeImpl));
    }
    if let Some(otlp) = &otlp {
        let config = options.otel_claims.iter().fold(
            vgi_rpc::otel::ServerTelemetryConfig::default(),
            |config, (claim, attribute)| config.with_claim_attribute(claim, attribute),
        );
        builder = builder.hook(std::sync::Arc::new(if options.otel_through_tracer {
            vgi_rpc::otel::ServerTelemetry::with_config(config)
        } else {
            otlp.server_telemetry(config)
        }));
    }
    let server = builder
        .memory_budget(options.memory_budget)
        .build()
        .context("building the server")?;
    let served = serve_on(&server, options);
    drop(server);
    drop(otlp);
    served
}

fn serve_on(server: &vgi_rpc::Server, options: &Options) -> anyhow::Result<()> {
    let mut socket_options = ServeOptions::default().threaded(options.threaded);
    if let Some(limit) = options.max_connections {
        socket_options = socket_options.max_connections(limit);
    }
    match &options.transport {
        Transport::Unix(path) => {
            let listener = UnixSocketListener::bind(path)
                .with_context(|| format!("binding {}", path.display()))?;
            serve_socket(server, &listener, &socket_options)
        }
        Transport::Tcp { host, port } => {
            let listener = TcpSocketListener::bind((host.as_str(), *port))
                .with_context(|| format!("binding {host}:{port}"))?;
            serve_socket(server, &listener, &socket_options)
        }
        Transport::Http(port) => {
            let with_storage = |http| {
                storage::http_options(
                    http,
                    options.fake_storage.as_deref(),
                    options.externalize_threshold,
                    options.http.max_request_bytes,
                    &options.storage,
                )
            };
            serve_http(server, &options.http, options.identity, *port, with_storage)
        }
        Transport::Pipe => vgi_rpc::serve_stdio(server.clone()).context("serving on stdin/stdout"),
    }
}

/// Announces the bound address on stdout (the runner waits for this line), then serves
/// until SIGTERM/SIGINT.
fn serve_socket<L: Listener>(
    server: &vgi_rpc::Server,
    listener: &L,
    options: &ServeOptions,
) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", listener.discovery_line())?;
    stdout.flush()?;
    drop(stdout);
    serve_listener(server, listener, options, &shutdown).context("serving")
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Serve(options)) => *options,
        Err(message) => {
            eprintln!("{USAGE}\nvgi-rpc-conformance-worker: error: {message}");
            return ExitCode::from(2);
        }
    };
    match serve(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vgi-rpc-conformance-worker: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
