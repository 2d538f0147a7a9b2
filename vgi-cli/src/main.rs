//! `vgi-rpc`: describe and call any vgi-rpc worker, whatever language it is written in,
//! over any transport the client speaks (`exec:`, `unix:`, `tcp://`, `http(s)://`).
//!
//! Everything it knows about a worker comes from the worker itself, through the
//! `vgi_rpc.Reflection.v1` protocol: `describe` prints it, `call` uses it to parse
//! `name=value` arguments by their declared Arrow types.

mod args;
mod call;
mod describe;
mod failure;
mod input;
mod output;
mod progress;
mod render;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use vgi_rpc::client::{CallOptions, Client, ClientIdentity, ConnectOptions, HttpConnectOptions};
use vgi_rpc::transport::Address;
use vgi_rpc::wire::Validation;

use crate::failure::{Failure, Outcome};
use crate::output::{Format, Sink};

const AFTER_HELP: &str = "\
Addresses:
  exec:<command line>   start the worker as a subprocess and talk over its stdin/stdout
  unix:<path>           connect to a Unix domain socket
  tcp://<host>:<port>   connect over TCP
  http://<host>:<port>[/prefix]  call an HTTP server (https:// with TLS; --ca-cert to trust
                        a private CA, --client-cert/--client-key for mTLS)
With --shm SIZE (exec: and unix: only) large batches travel through a shared-memory
segment of SIZE bytes (e.g. 64MiB) beside the connection, when the worker supports it.

Examples:
  vgi-rpc describe 'exec:my-worker --pipe'
  vgi-rpc describe unix:/tmp/worker.sock --format json
  vgi-rpc call tcp://127.0.0.1:9000 echo_string value=hi
  vgi-rpc call unix:/tmp/w.sock produce_n count=1000 --limit 10 --format json
  echo '{\"value\": 2.0}' | vgi-rpc call 'exec:my-worker' exchange_scale factor=3

Exit status: 0 ok, 1 remote error, 2 usage error, 3 transport failure, 4 local file error.";

const DESCRIBE_HELP: &str = "\
Examples:
  vgi-rpc describe 'exec:my-worker --pipe'
  vgi-rpc describe unix:/tmp/worker.sock --protocol ConformanceService
  vgi-rpc describe tcp://127.0.0.1:9000 --all --format json | jq '.protocols[].hash'";

const CALL_HELP: &str = "\
Arguments are parsed by the parameter's declared Arrow type: integers, floats, booleans
and strings as written; lists, maps and structs as JSON (xs='[1,2]'); dates, times and
timestamps as ISO text; bytes as hex (0x00ff) or base64 (base64:AP8=); name=@file.arrows
takes the value from an Arrow IPC file and a bare @file.arrows supplies every parameter it
has a column for. Omitted parameters take their declared defaults when the server reports
them; nullable ones are sent as null.

Examples:
  vgi-rpc call 'exec:my-worker' echo_string value=hi
  vgi-rpc call 'exec:my-worker' ConformanceService.with_defaults required=7
  vgi-rpc call unix:/tmp/w.sock produce_n count=3 --format csv
  vgi-rpc call unix:/tmp/w.sock produce_large_batches rows_per_batch=1000 batch_count=5 \\
      --output out.arrows
  printf '{\"value\": 1.5}\\n{\"value\": 2.5}\\n' | vgi-rpc call tcp://127.0.0.1:9000 exchange_scale factor=2
  vgi-rpc call tcp://127.0.0.1:9000 exchange_scale factor=2 --input in.arrows";

/// Describe and call vgi-rpc workers.
#[derive(Debug, Parser)]
#[command(name = "vgi-rpc", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Default `--timeout`: long enough for any interactive call, short enough that a
/// silent server does not hang a script.
const DEFAULT_TIMEOUT_SECS: f64 = 30.0;

#[derive(Debug, Args)]
struct Global {
    /// Deadline for each call (a stream: the whole stream), in seconds; 0 for none.
    /// A silent or endless server then fails with exit status 3 instead of hanging.
    #[arg(long, global = true, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS)]
    timeout: f64,
    /// Show remote tracebacks and log every message in and out on stderr
    /// (`-v`: each batch; `-vv`: also stream starts and ends).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// How much of each received batch is checked. `standard` and `none` skip checks that
    /// guard against malformed data and apply only to `exec:` workers you trust; sockets
    /// are always checked in full.
    #[arg(long, global = true, value_name = "LEVEL", default_value = "full")]
    validation: ValidationArg,
    /// Do not print server log messages.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Move large batches through a shared-memory segment of SIZE bytes (e.g. 64MiB;
    /// exec: and unix: addresses), if the worker accepts it.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    shm: Option<usize>,
    /// PEM certificate (chain) presented to https:// servers that require client
    /// certificates (mTLS); needs --client-key.
    #[arg(long, global = true, value_name = "PEM")]
    client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, global = true, value_name = "PEM")]
    client_key: Option<PathBuf>,
    /// PEM CA certificate(s) trusted for https:// servers, besides the built-in roots.
    #[arg(long, global = true, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// HTTP: send `Authorization: Bearer TOKEN` (a JWT, a sealed grant, an API key).
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "VGI_RPC_BEARER",
        hide_env_values = true
    )]
    bearer: Option<String>,
    /// HTTP: send a header with every request, as `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', global = true, value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
}

/// `--header`: `Name: value`.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not a header such as 'X-Team: data'"))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
    {
        return Err(format!("{name:?} is not a header name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// `SIZE` of `--shm`: bytes, optionally with a binary unit (`K`/`KiB`, `M`/`MiB`,
/// `G`/`GiB`; case-insensitive).
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 67108864 or 64MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the protocols and methods a worker hosts.
    #[command(after_help = DESCRIBE_HELP)]
    Describe(DescribeArgs),
    /// Call a method and print its result.
    #[command(after_help = CALL_HELP)]
    Call(CallArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DescribeFormat {
    /// Aligned, for people.
    Table,
    /// One JSON document, for scripts.
    Json,
}

#[derive(Debug, Args)]
struct DescribeArgs {
    /// The worker: exec:CMD, unix:PATH, tcp://HOST:PORT or http(s)://HOST:PORT[/PREFIX].
    address: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    format: DescribeFormat,
    /// Describe only this protocol.
    #[arg(long)]
    protocol: Option<String>,
    /// Include framework protocols (vgi_rpc.*).
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
struct CallArgs {
    /// The worker: exec:CMD, unix:PATH, tcp://HOST:PORT or http(s)://HOST:PORT[/PREFIX].
    address: String,
    /// METHOD or PROTOCOL.METHOD.
    method: String,
    /// Parameters as name=value (or @file.arrows).
    #[arg(value_name = "NAME=VALUE")]
    args: Vec<String>,
    /// Output format (default: table; arrow when --output ends in .arrows/.arrow).
    #[arg(long, short, value_enum)]
    format: Option<Format>,
    /// Write results to this file instead of stdout.
    #[arg(long, short, value_name = "PATH")]
    output: Option<String>,
    /// Producer streams: stop (cancel) after this many rows.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Exchange streams: read input batches from this Arrow IPC file (default: JSON
    /// lines on stdin).
    #[arg(long, short, value_name = "PATH")]
    input: Option<String>,
    /// Never show the progress line.
    #[arg(long)]
    no_progress: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report(cli.global.verbose > 0);
            failure.exit_code()
        }
    }
}

fn run(cli: &Cli) -> Outcome {
    wire_log(cli.global.verbose);
    let mut options = CallOptions::default();
    let secs = cli.global.timeout;
    if secs != 0.0 {
        let timeout = Duration::try_from_secs_f64(secs)
            .map_err(|e| Failure::usage(format!("--timeout {secs}: {e}")))?;
        options = options.with_timeout(timeout);
    }
    match &cli.command {
        Command::Describe(a) => {
            let mut client = connect(&a.address, &cli.global)?;
            describe(&mut client, &options, a)
        }
        Command::Call(a) => {
            let format = match (a.format, a.output.as_deref()) {
                (Some(f), _) => f,
                (None, Some(p)) if p.ends_with(".arrows") || p.ends_with(".arrow") => Format::Arrow,
                (None, _) => Format::Table,
            };
            let mut client = connect(&a.address, &cli.global)?;
            let request = call::CallRequest {
                method: a.method.clone(),
                args: a.args.clone(),
                limit: a.limit,
                input: a.input.clone(),
                progress: !a.no_progress && !cli.global.quiet,
            };
            let mut sink = Sink::open(format, a.output.as_deref())?;
            call::run(&mut client, &options, &request, &mut sink)
        }
    }
}

/// Validation levels as the command line spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ValidationArg {
    Full,
    Standard,
    None,
}

/// `-v`: wire events (`vgi_rpc::wire`) at DEBUG on stderr; `-vv`: TRACE.
fn wire_log(verbosity: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = match verbosity {
        0 => return,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let filter = Targets::new().with_target(vgi_rpc::wire::trace::TARGET, level);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
}

fn connect(address: &str, global: &Global) -> Outcome<Client> {
    let address: Address = address.parse()?;
    let validation = match global.validation {
        ValidationArg::Full => Validation::Full,
        ValidationArg::Standard => Validation::Standard,
        ValidationArg::None => Validation::None,
    };
    #[allow(unsafe_code)]
    // SAFETY: a level below full is the user's explicit, documented choice for a worker
    // they trust (`--validation`); the library applies it only to `exec:` workers.
    let mut options = unsafe { ConnectOptions::default().with_validation(validation) };
    if let Some(size) = global.shm {
        options = options.with_shm(size);
    }
    let mut http = https_options(global)?;
    for (name, value) in &global.headers {
        http = http.with_header(name, value);
    }
    if let Some(token) = &global.bearer {
        http = http.with_bearer(token);
    }
    options = options.with_http(http);
    let mut client = Client::connect_with(&address, options)?;
    if !global.quiet {
        client.set_log_handler(|record| {
            if record.extra.is_empty() {
                eprintln!("[{}] {}", record.level.as_str(), record.message);
            } else {
                eprintln!(
                    "[{}] {} {}",
                    record.level.as_str(),
                    record.message,
                    serde_json::Value::Object(record.extra.clone())
                );
            }
        });
    }
    Ok(client)
}

/// The certificates of `--client-cert`, `--client-key` and `--ca-cert`.
fn https_options(global: &Global) -> Outcome<HttpConnectOptions> {
    let read = |flag: &str, path: &Path| {
        std::fs::read(path)
            .map_err(|e| Failure::local(format!("cannot read {flag} {}: {e}", path.display())))
    };
    let mut http = HttpConnectOptions::default();
    match (&global.client_cert, &global.client_key) {
        (Some(cert), Some(key)) => {
            http = http.with_client_identity(ClientIdentity::from_pem(
                read("--client-cert", cert)?,
                read("--client-key", key)?,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(Failure::usage("--client-cert and --client-key go together"));
        }
    }
    if let Some(ca) = &global.ca_cert {
        http = http.with_ca_certificate_pem(read("--ca-cert", ca)?);
    }
    Ok(http)
}

fn describe(client: &mut Client, options: &CallOptions, a: &DescribeArgs) -> Outcome {
    let server = describe::list_protocols(client, options)?;
    let names: Vec<String> = server
        .protocols
        .iter()
        .filter(|p| match &a.protocol {
            Some(wanted) => &p.protocol == wanted,
            None => a.all || !p.is_framework(),
        })
        .map(|p| p.protocol.clone())
        .collect();
    if let (Some(wanted), true) = (&a.protocol, names.is_empty()) {
        let hosted: Vec<&str> = server
            .protocols
            .iter()
            .map(|p| p.protocol.as_str())
            .collect();
        return Err(Failure::usage(format!(
            "the server hosts no protocol `{wanted}`; hosted: {}",
            hosted.join(", ")
        )));
    }
    let mut protocols = Vec::with_capacity(names.len());
    for name in &names {
        protocols.push(client.describe_protocol(name, options)?);
    }
    let text = match a.format {
        DescribeFormat::Table => render::text(&server, &protocols),
        DescribeFormat::Json => format!("{:#}\n", render::json(&server, &protocols)),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(output::io)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn shm_sizes_take_binary_units() {
        assert_eq!(parse_size("67108864"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("64 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("-1").is_err());
    }
}
