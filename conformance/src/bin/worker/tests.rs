//! The command line: flags parse as the reference's worker parses them.

use super::*;

fn parse(args: &[&str]) -> Result<Command, String> {
    parse_args(args.iter().map(OsString::from))
}

fn serve_options(args: &[&str]) -> Result<Options, String> {
    match parse(args)? {
        Command::Serve(options) => Ok(*options),
        Command::Help => Err("unexpected help".to_owned()),
    }
}

#[test]
fn defaults_to_pipe() -> Result<(), String> {
    assert_eq!(serve_options(&[])?, Options::default());
    assert_eq!(
        serve_options(&["--pipe", "--describe"])?.transport,
        Transport::Pipe
    );
    Ok(())
}

#[test]
fn parses_transports() -> Result<(), String> {
    assert_eq!(serve_options(&["--http"])?.transport, Transport::Http(None));
    assert_eq!(
        serve_options(&["--http", "8080"])?.transport,
        Transport::Http(Some(8080))
    );
    assert_eq!(
        serve_options(&["--http", "--describe"])?.transport,
        Transport::Http(None)
    );
    assert_eq!(
        serve_options(&["--unix=/tmp/s.sock"])?.transport,
        Transport::Unix(PathBuf::from("/tmp/s.sock"))
    );
    let tcp = |host: &str, port| Transport::Tcp {
        host: host.to_owned(),
        port,
    };
    assert_eq!(
        serve_options(&["--tcp", "9000"])?.transport,
        tcp("127.0.0.1", 9000)
    );
    assert_eq!(
        serve_options(&["--tcp", ":0"])?.transport,
        tcp("127.0.0.1", 0)
    );
    assert_eq!(
        serve_options(&["--tcp", "0.0.0.0:1"])?.transport,
        tcp("0.0.0.0", 1)
    );
    Ok(())
}

#[test]
fn parses_options() -> Result<(), String> {
    let o = serve_options(&[
        "--tcp",
        "1",
        "--threaded",
        "--max-connections",
        "4",
        "--access-log",
        "/tmp/a.log",
        "--access-log-debug",
        "--externalize-threshold=1",
        "--otlp-endpoint",
        "http://127.0.0.1:4318",
        "--otel-claim",
        "tenant=rpc.vgi_rpc.auth.claim.tenant",
        "--otel-through-tracer",
    ])?;
    assert!(o.threaded && o.access_log_debug && o.otel_through_tracer);
    assert_eq!(o.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4318"));
    assert_eq!(
        o.otel_claims,
        [(
            "tenant".to_owned(),
            "rpc.vgi_rpc.auth.claim.tenant".to_owned()
        )]
    );
    assert!(serve_options(&["--otel-claim", "tenant"]).is_err());
    assert_eq!(o.max_connections, Some(4));
    assert_eq!(o.access_log, Some(PathBuf::from("/tmp/a.log")));
    assert_eq!(o.externalize_threshold, 1);
    Ok(())
}

#[test]
fn rejects_bad_command_lines() {
    assert!(parse(&["--bogus"]).is_err());
    assert!(parse(&["--unix"]).is_err());
    assert!(parse(&["--unix", "a", "--tcp", "1"]).is_err());
    assert!(parse(&["--pipe", "--http"]).is_err());
    assert!(parse(&["--threaded"]).is_err());
    assert!(parse(&["--tcp", "1", "--max-connections", "2"]).is_err());
    assert!(parse(&["--externalize-threshold", "-1"]).is_err());
    assert!(parse(&["--http", "notaport"]).is_err());
    assert_eq!(parse(&["-h"]), Ok(Command::Help));
}

#[test]
fn s3_flags_need_a_bucket_and_exclude_fake_storage() -> Result<(), String> {
    let options = serve_options(&[
        "--s3-bucket",
        "b",
        "--s3-endpoint=http://127.0.0.1:9",
        "--s3-presign-ttl",
        "60",
    ])?;
    assert!(options.s3.enabled());
    assert!(parse(&["--s3-endpoint", "http://127.0.0.1:9"]).is_err());
    assert!(parse(&["--s3-bucket", "b", "--fake-storage", "http://x"]).is_err());
    assert!(parse(&["--s3-bucket", "b", "--s3-presign-ttl", "soon"]).is_err());
    Ok(())
}

#[test]
fn parses_the_sticky_flags_as_the_reference_worker() -> Result<(), String> {
    let defaults = serve_options(&["--http", "0"])?.http.sticky;
    assert!(
        !defaults.off && !defaults.no_echo && !defaults.auth,
        "sticky is on by default"
    );
    assert_eq!(defaults.ttl_seconds, None);
    let o = serve_options(&[
        "--http",
        "0",
        "--sticky-ttl",
        "1",
        "--sticky-auth",
        "--no-sticky-echo",
    ])?;
    assert_eq!(o.http.sticky.ttl_seconds, Some(1.0));
    assert!(o.http.sticky.auth && o.http.sticky.no_echo);
    assert!(
        serve_options(&["--no-sticky", "--sticky-ttl=0.5"])?
            .http
            .sticky
            .off
    );
    for bad in ["0", "-1", "nan", "soon"] {
        assert!(parse(&["--sticky-ttl", bad]).is_err(), "{bad}");
    }
    Ok(())
}
