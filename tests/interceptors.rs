//! Interceptors and what handlers see of a call (`CallContext::metadata`, `peer`,
//! `extension`), through the real engines over an in-process pipe pair, plus per-call
//! options on the typed client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use arrow_schema::SchemaRef;
use vgi_rpc::client::{CallOptions, Client, ConnectOptions, Link};
use vgi_rpc::prelude::*;
use vgi_rpc::server::{CallHook, CallInfo, CallRecord, Peer, serve_connection_from};
use vgi_rpc::wire::Metadata;
use vgi_rpc::{ErrorCode, RecordRows};

/// A service that reports what it was told about its caller.
#[vgi_rpc::service(protocol = "Tenancy", version = "1.0.0")]
pub trait Tenancy: Send + Sync + 'static {
    /// `tenant@peer-address metadata[x-trace]`.
    fn whoami(&self, ctx: &CallContext) -> Result<String>;
    /// One row per tick, `n` of them.
    fn ticks(&self, n: i64) -> Result<Producer<Ticks>>;
}

/// The tenant an interceptor attached.
struct Tenant(String);

/// One produced row.
#[derive(Debug, ArrowRecord, PartialEq)]
pub struct Tick {
    /// Its number.
    pub n: i64,
}

/// Counts up to `n`.
pub struct Ticks {
    at: i64,
    n: i64,
}

impl ProducerState for Ticks {
    fn output_schema(&self) -> SchemaRef {
        Tick::schema()
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> Result<()> {
        if self.at == self.n {
            turn.finish();
            return Ok(());
        }
        self.at += 1;
        turn.emit_rows(vec![Tick { n: self.at }])
    }
}

struct Impl;

impl Tenancy for Impl {
    fn whoami(&self, ctx: &CallContext) -> Result<String> {
        let tenant = ctx.extension::<Tenant>().map_or("?", |t| t.0.as_str());
        let trace = ctx.metadata().get("x-trace").unwrap_or("-");
        let addr = ctx.peer().remote_addr_or_empty();
        Ok(format!("{tenant}@{addr} {trace}"))
    }

    fn ticks(&self, n: i64) -> Result<Producer<Ticks>> {
        Ok(Producer::new(Ticks { at: 0, n }))
    }
}

/// Refuses calls without `x-tenant`; attaches the tenant otherwise.
fn require_tenant(call: &mut CallInfo<'_>) -> Result<()> {
    let Some(tenant) = call.metadata().get("x-tenant") else {
        return Err(
            RpcError::new("PermissionError", format!("{}: no tenant", call.method()))
                .with_code(ErrorCode::Unauthenticated)
                .into(),
        );
    };
    let tenant = Tenant(tenant.to_owned());
    call.insert(tenant);
    Ok(())
}

/// Collects each call's method and error code.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, Option<ErrorCode>)>>);

impl CallHook for Seen {
    fn on_call(&self, record: &CallRecord<'_>) {
        let entry = (record.method.to_owned(), record.error.map(|e| e.code));
        self.0.lock().unwrap().push(entry);
    }
}

/// A typed client served over a pipe pair by a server with the interceptor and hook.
fn connect(seen: &Arc<Seen>) -> (TenancyClient, thread::JoinHandle<()>) {
    let server = Server::builder()
        .service(TenancyServer::new(Impl))
        .interceptor(require_tenant)
        .hook(seen.clone())
        .build()
        .unwrap();
    let (req_r, req_w) = std::io::pipe().unwrap();
    let (resp_r, resp_w) = std::io::pipe().unwrap();
    let serving = thread::spawn(move || {
        serve_connection_from(&server, Peer::tcp("192.0.2.7:4242"), req_r, resp_w).unwrap();
    });
    let client = Client::from_link(Link::new(resp_r, req_w), ConnectOptions::default());
    (TenancyClient::from_client(client), serving)
}

fn tenant(name: &str) -> CallOptions {
    CallOptions::default().with_metadata(Metadata::new().with("x-tenant", name))
}

#[test]
fn interceptor_refuses_in_band_and_attaches_values_for_handlers() {
    let seen = Arc::new(Seen::default());
    let (mut client, serving) = connect(&seen);

    // Refused: the caller gets the interceptor's error; the handler never runs.
    let err = client.whoami().unwrap_err();
    let rpc = err.as_rpc().expect("a remote error");
    assert_eq!(rpc.code, ErrorCode::Unauthenticated);
    assert_eq!(rpc.message, "whoami: no tenant");

    // The connection is still in step: the next call, with a tenant, goes through and the
    // handler sees the attached value, the request metadata and the peer.
    let md = Metadata::new()
        .with("x-tenant", "acme")
        .with("x-trace", "t-1");
    let me = client
        .call_with(CallOptions::default().with_metadata(md))
        .whoami()
        .unwrap();
    assert_eq!(me, "acme@192.0.2.7:4242 t-1");

    // A refused stream: its input is drained, the connection stays usable.
    let refused: Vec<_> = client.ticks(2).unwrap().collect();
    assert_eq!(refused.len(), 1);
    let err = refused.into_iter().next().unwrap().unwrap_err();
    assert_eq!(err.as_rpc().unwrap().code, ErrorCode::Unauthenticated);
    let rows: Vec<Tick> = client
        .call_with(tenant("acme"))
        .ticks(3)
        .unwrap()
        .into_rows::<Tick>()
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(rows, [Tick { n: 1 }, Tick { n: 2 }, Tick { n: 3 }]);

    // Per-call options did not change the client's defaults.
    assert!(client.options().metadata.is_empty());
    assert!(client.whoami().is_err());

    drop(client);
    serving.join().unwrap();
    let seen = seen.0.lock().unwrap();
    let codes: Vec<_> = seen.iter().map(|(m, c)| (m.as_str(), *c)).collect();
    let denied = Some(ErrorCode::Unauthenticated);
    assert_eq!(
        codes,
        [
            ("whoami", denied),
            ("whoami", None),
            ("ticks", denied),
            ("ticks", None),
            ("whoami", denied)
        ],
        "hooks see refused calls as errors"
    );
}

#[test]
fn default_options_apply_to_calls_without_their_own() {
    let seen = Arc::new(Seen::default());
    let (client, serving) = connect(&seen);
    let mut client = client.with_options(tenant("initech").with_timeout(Duration::from_secs(5)));
    assert_eq!(client.whoami().unwrap(), "initech@192.0.2.7:4242 -");
    let batch = client
        .call_with(tenant("umbrella"))
        .ticks(1)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.rows::<Tick>().unwrap(), [Tick { n: 1 }]);
    assert_eq!(client.whoami().unwrap(), "initech@192.0.2.7:4242 -");
    drop(client);
    serving.join().unwrap();
}

#[test]
fn void_results_keep_their_metadata() {
    // `__transport_options__` answers with metadata on a void result: the shm negotiation.
    let seen = Arc::new(Seen::default());
    let (client, serving) = connect(&seen);
    let mut client = client.into_client();
    let empty = arrow_array::RecordBatch::new_empty(Arc::new(arrow_schema::Schema::empty()));
    let answer = client
        .call(
            &vgi_rpc::client::Target::new("", None),
            "__transport_options__",
            &empty,
            &CallOptions::default(),
        )
        .unwrap();
    assert!(answer.batch.is_none());
    assert_eq!(answer.metadata.get("vgi_rpc.transport.shm"), Some("false"));
    assert_eq!(answer.metadata.get("vgi_rpc.request_version"), Some("1"));
    drop(client);
    serving.join().unwrap();
}
