//! Objects that break the contract, served by our conformance service in this process
//! through a storage that spoils what it stores.

use std::sync::Arc;
use std::time::Duration;

use vgi_rpc::client::{Client, ConnectOptions, Link};
use vgi_rpc::external::{ExternalConfig, FetchOptions, Storage, UrlPolicy};
use vgi_rpc::wire::Metadata;
use vgi_rpc::{Error, ExternalFailure};
use vgi_rpc_conformance::fake_storage::FakeStorage;

use crate::{bounded, echo_string, published, venv};

/// How [`Tampering`] spoils what it stores.
#[derive(Debug, Clone, Copy)]
enum Spoil {
    /// Drops the object's last bytes.
    Truncate,
    /// Hands out the fake storage's redirect to `localhost`, which the client's policy
    /// (127.0.0.1 only) must refuse.
    RedirectToLocalhost,
    /// Hands out a URL to an object that does not exist.
    Missing,
}

/// A storage that stores objects and hands out spoiled URLs or bytes.
#[derive(Debug)]
struct Tampering {
    inner: vgi_rpc::external::FakeStorage,
    spoil: Spoil,
}

impl Storage for Tampering {
    fn put(&self, mut object: Vec<u8>, encoding: Option<&str>) -> vgi_rpc::Result<String> {
        if let Spoil::Truncate = self.spoil {
            object.truncate(object.len() - 16);
        }
        let url = self.inner.put(object, encoding)?;
        Ok(match self.spoil {
            Spoil::Truncate => url,
            Spoil::RedirectToLocalhost => url.replace("/download/", "/redirect-localhost/"),
            Spoil::Missing => format!("{url}-missing?X-Amz-Signature=secret"),
        })
    }
}

/// Our conformance service in this process, publishing `published_string` through
/// `storage` (nothing else is externalized), and a client of it with `options`.
pub(crate) fn in_process(storage: Arc<dyn Storage>, options: ConnectOptions) -> Client {
    let config = Arc::new(
        ExternalConfig::new()
            .with_storage(storage)
            .with_threshold(usize::MAX)
            .with_url_policy(UrlPolicy::loopback()),
    );
    let server = vgi_rpc_conformance::server_builder_with_external(config)
        .build()
        .unwrap();
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let reader = theirs.try_clone().unwrap();
    std::thread::spawn(move || vgi_rpc::server::serve_connection(&server, reader, theirs));
    let writer = ours.try_clone().unwrap();
    Client::from_link(Link::new(ours, writer), options)
}

fn external_failure(result: vgi_rpc::Result<(String, Metadata)>) -> (ExternalFailure, String) {
    match result {
        Err(Error::External { kind, message }) => (kind, message),
        other => panic!("expected an external-storage error, got {other:?}"),
    }
}

/// Objects that break the contract (a digest that differs, a truncated stream, a
/// redirect the policy forbids, an object that is too large or missing) each fail the
/// call with their typed error, no secret in the message, and the connection stays
/// usable.
#[test]
fn bad_objects_are_typed_errors_on_a_usable_connection() {
    let service = FakeStorage::start(&venv()).unwrap();
    let storage = service.handle();
    bounded(move || {
        let fake = || vgi_rpc::external::FakeStorage::new(storage.url());
        let tampering = |spoil| {
            Arc::new(Tampering {
                inner: fake(),
                spoil,
            }) as Arc<dyn Storage>
        };
        let quick = FetchOptions::default().with_retries(2, Duration::from_millis(10));
        let reader = |fetch: FetchOptions| {
            let config = ExternalConfig::new()
                .with_url_policy(UrlPolicy::loopback().with_hosts(["127.0.0.1"]))
                .with_fetch_options(fetch);
            ConnectOptions::default().with_external(Arc::new(config))
        };
        let cases: [(Arc<dyn Storage>, FetchOptions, bool, ExternalFailure); 5] = [
            (
                tampering(Spoil::Truncate),
                quick.clone(),
                true,
                ExternalFailure::Integrity,
            ),
            (
                tampering(Spoil::Truncate),
                quick.clone(),
                false,
                ExternalFailure::Invalid,
            ),
            (
                tampering(Spoil::RedirectToLocalhost),
                quick.clone(),
                true,
                ExternalFailure::UrlRejected,
            ),
            (
                Arc::new(fake()),
                quick.clone().with_max_fetch_bytes(64),
                true,
                ExternalFailure::TooLarge,
            ),
            (
                tampering(Spoil::Missing),
                quick.clone(),
                true,
                ExternalFailure::Fetch,
            ),
        ];
        for (store, fetch, sha, want) in cases {
            let mut client = in_process(store, reader(fetch));
            let (kind, message) = external_failure(published(&mut client, "spoiled", sha));
            assert_eq!(kind, want, "{message}");
            assert!(!message.contains("secret"), "{message}");
            assert!(!client.is_broken());
            assert_eq!(echo_string(&mut client, "next").unwrap(), "next");
        }
        // The forbidden redirect was refused at its first hop (the HEAD), before any
        // request reached `localhost`.
        let stats = storage.stats().unwrap();
        let hits = |route: &str| stats.get(route).and_then(serde_json::Value::as_u64);
        assert_eq!(hits("redirect_localhost_requests"), Some(1), "{stats}");
    });
}
