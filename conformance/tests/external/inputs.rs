//! Exchange inputs sent through storage by a client that has storage of its own.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use vgi_rpc::client::{CallOptions, Client, ConnectOptions};
use vgi_rpc::external::{ExternalConfig, UrlPolicy};
use vgi_rpc::transport::Address;
use vgi_rpc::wire::Metadata;
use vgi_rpc_conformance::fake_storage::{FakeStorage, StorageHandle};

use crate::{bounded, float_values, floats, primary, reference_worker, scale_stream, venv};

/// A client with storage of its own sends large exchange inputs as pointers; both our
/// worker and the reference resolve them (with the input's metadata).
fn exchange_inputs_through_storage(address: Address, storage: StorageHandle) {
    let config = ExternalConfig::new()
        .with_storage(Arc::new(vgi_rpc::external::FakeStorage::new(storage.url())))
        .with_threshold(1)
        .with_url_policy(UrlPolicy::loopback());
    let options = ConnectOptions::default().with_external(Arc::new(config));
    let mut client = Client::connect_with(&address, options).unwrap();
    let before = storage.object_count().unwrap();
    let mut stream = scale_stream(&mut client, 2.0);
    let input = floats("value", vec![1.0, 2.5]);
    let out = stream.exchange(&input).unwrap();
    assert_eq!(float_values(&out), [2.0, 5.0]);
    stream.close().unwrap();
    let mut stream = client
        .open_stream(
            &primary(),
            "exchange_input_metadata",
            &no_params(),
            &CallOptions::default(),
        )
        .unwrap();
    let md = Metadata::new().with("vgi.conformance.input", "carried");
    let (out, _) = stream.exchange_with_metadata(&input, md).unwrap();
    assert_eq!(
        out.column_by_name("seen")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "carried"
    );
    stream.close().unwrap();
    // Two inputs went out through storage (and, from a worker that externalizes, two
    // outputs came back through it).
    assert!(storage.object_count().unwrap() >= before + 2);
}

fn no_params() -> RecordBatch {
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(0));
    RecordBatch::try_new_with_options(Arc::new(arrow_schema::Schema::empty()), vec![], &options)
        .unwrap()
}

#[test]
fn our_client_externalizes_exchange_inputs() {
    let service = FakeStorage::start(&venv()).unwrap();
    let storage = service.handle();
    let ours = Address::Exec(vec![
        env!("CARGO_BIN_EXE_vgi-rpc-conformance-worker").into(),
        "--pipe".into(),
        "--fake-storage".into(),
        storage.url(),
    ]);
    let reference = reference_worker(storage);
    bounded(move || {
        exchange_inputs_through_storage(ours, storage);
        exchange_inputs_through_storage(reference, storage);
    });
}
