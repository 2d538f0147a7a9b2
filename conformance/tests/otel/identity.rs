//! The caller's identity in the server's telemetry.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;
use vgi_rpc_conformance::announce::spawn_announcing;

/// The caller's identity on the wire, as the reference exports it: principal, domain and
/// `authenticated` on server spans, configured claims (`claim_attributes`, here the
/// worker's `--otel-claim`) on spans only, and the domain — never the principal or a
/// claim — on metric points. An anonymous call says `authenticated: "false"` and nothing
/// else. Every HTTP span names the client's `user_agent.original`; a request the
/// authentication refuses is one `rpc.server.auth_failure` (`rpc.system`, `rpc.service`,
/// `error.type`), as the reference's HTTP middleware counts it.
#[test]
fn an_authenticated_callers_identity_and_claims_are_on_server_spans_only() {
    use arrow_array::{RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use vgi_rpc::client::{CallOptions, Client, ConnectOptions, HttpConnectOptions, Target};
    use vgi_rpc_conformance::identity::{AUTH_TIME_HEADER, PRINCIPAL_HEADER};

    let receiver = Receiver::start(&scratch("identity"));
    let claim_attribute = "rpc.vgi_rpc.auth.claim.auth_time";
    let (mut worker, port) = spawn_announcing(
        Command::new(WORKER)
            .args([
                "--http",
                "0",
                "--sticky-auth",
                "--otlp-endpoint",
                &receiver.url,
            ])
            .args(["--otel-claim", &format!("auth_time={claim_attribute}")])
            .args(["--otel-claim", "absent=rpc.vgi_rpc.auth.claim.absent"]),
    )
    .unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let target = Target::new("ConformanceService", Some("2.0.0"));
    let batch = |v: &str| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "value",
                DataType::Utf8,
                false,
            )])),
            vec![Arc::new(StringArray::from(vec![v]))],
        )
        .unwrap()
    };
    let authenticated = ConnectOptions::default().with_http(
        HttpConnectOptions::default()
            .with_header(PRINCIPAL_HEADER, "alice")
            .with_header(AUTH_TIME_HEADER, "1700000000"),
    );
    for (options, value) in [
        (authenticated, "as-alice"),
        (ConnectOptions::default(), "anonymous"),
    ] {
        let mut client = Client::connect_with(&address.parse().unwrap(), options).unwrap();
        let answer = client
            .call(
                &target,
                "echo_string",
                &batch(value),
                &CallOptions::default(),
            )
            .unwrap();
        assert!(answer.batch.is_some());
    }
    // A credential neither authenticator accepts: refused before dispatch, counted.
    let refused = ConnectOptions::default().with_http(
        HttpConnectOptions::default().with_header("authorization", "Bearer not-a-grant"),
    );
    let refusal = Client::connect_with(&address.parse().unwrap(), refused).and_then(|mut c| {
        c.call(
            &target,
            "echo_string",
            &batch("refused"),
            &CallOptions::default(),
        )
    });
    assert!(refusal.is_err(), "{refusal:?}");
    stop_gracefully(&mut worker);

    let requests = receiver.requests(Duration::from_secs(20));
    let all = spans(&requests);
    assert_eq!(all.len(), 2, "{all:#?}");
    let text = |span: &Value, key: &str| {
        attribute(span, key).map(|v| v["string_value"].as_str().unwrap().to_owned())
    };
    let (alice, anonymous) = (&all[0], &all[1]);
    assert_eq!(alice["name"], "vgi_rpc/echo_string");
    assert_eq!(
        text(alice, "rpc.vgi_rpc.auth.principal").as_deref(),
        Some("alice")
    );
    assert_eq!(
        text(alice, "rpc.vgi_rpc.auth.domain").as_deref(),
        Some("conformance")
    );
    assert_eq!(
        text(alice, "rpc.vgi_rpc.auth.authenticated").as_deref(),
        Some("true")
    );
    assert_eq!(text(alice, claim_attribute).as_deref(), Some("1700000000"));
    assert!(attribute(alice, "rpc.vgi_rpc.auth.claim.absent").is_none());
    assert!(
        text(alice, "client.address")
            .unwrap()
            .starts_with("127.0.0.1")
    );
    for span in [alice, anonymous] {
        assert_eq!(
            text(span, "user_agent.original").as_deref(),
            Some(vgi_rpc::transport::http::client::USER_AGENT),
            "{span:#}"
        );
    }
    assert_eq!(
        text(anonymous, "rpc.vgi_rpc.auth.authenticated").as_deref(),
        Some("false")
    );
    for absent in [
        "rpc.vgi_rpc.auth.principal",
        "rpc.vgi_rpc.auth.domain",
        claim_attribute,
    ] {
        assert!(attribute(anonymous, absent).is_none(), "{absent}");
    }

    // Metric points: by domain, never by principal or claim.
    let points: Vec<&Value> = last_metric(&requests, "rpc.server.requests")["sum"]["data_points"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(points.len(), 2, "{points:#?}");
    let domains: Vec<Option<String>> = points
        .iter()
        .map(|p| text(p, "rpc.vgi_rpc.auth.domain"))
        .collect();
    assert!(
        domains.contains(&Some("conformance".to_owned())),
        "{points:#?}"
    );
    assert!(domains.contains(&None), "{points:#?}");
    for point in &points {
        assert_eq!(point["as_int"], "1", "{point:#}");
        for absent in [
            "rpc.vgi_rpc.auth.principal",
            claim_attribute,
            "client.address",
        ] {
            assert!(attribute(point, absent).is_none(), "{absent}");
        }
    }

    // The refusal: one `rpc.server.auth_failure`, by service and error type only.
    let failures = last_metric(&requests, "rpc.server.auth_failure");
    assert_eq!(failures["unit"], "{failure}");
    let points = failures["sum"]["data_points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{points:#?}");
    assert_eq!(points[0]["as_int"], "1");
    let keys: Vec<&str> = points[0]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(text(&points[0], "rpc.system").as_deref(), Some("vgi_rpc"));
    assert_eq!(
        text(&points[0], "rpc.service").as_deref(),
        Some("ConformanceService")
    );
    assert_eq!(
        text(&points[0], "error.type").as_deref(),
        Some("ValueError")
    );
}
