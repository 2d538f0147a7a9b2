#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use super::*;

/// Storage in a map: `mem://n` URLs.
#[derive(Debug, Default)]
struct Memory {
    objects: Mutex<HashMap<String, Vec<u8>>>,
}

impl ExternalLocation for Memory {
    fn threshold(&self) -> Option<usize> {
        Some(1)
    }
    fn upload(&self, object: Vec<u8>, _schema: &Schema) -> Result<String> {
        let mut objects = self.objects.lock().unwrap();
        let url = format!("mem://store/{}?X-Amz-Signature=secret", objects.len());
        objects.insert(url.clone(), object);
        Ok(url)
    }
    fn fetch(&self, url: &str) -> Result<Vec<u8>> {
        self.objects
            .lock()
            .unwrap()
            .get(url)
            .cloned()
            .ok_or_else(|| Error::external(ExternalFailure::Fetch, redact_url(url)))
    }
}

fn values(v: &[i64]) -> RecordBatch {
    RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(v.to_vec())) as _)]).unwrap()
}

fn log(message: &str) -> Metadata {
    Metadata::new()
        .with(keys::LOG_LEVEL, "INFO")
        .with(keys::LOG_MESSAGE, message)
}

#[test]
fn a_turn_round_trips_with_its_logs_and_the_inner_metadata() {
    let store = Memory::default();
    let data = values(&[1, 2, 3]);
    let schema = data.schema();
    let empty = RecordBatch::new_empty(schema.clone());
    let inner = Metadata::new().with("app.cursor", "7");
    let pointer_md =
        externalize(&store, &schema, &[(&empty, &log("one")), (&data, &inner)]).unwrap();
    assert_eq!(pointer_md.len(), 2);
    assert_eq!(
        pointer_md.get(keys::LOCATION_SHA256).map(str::len),
        Some(64)
    );
    let resolved = resolve(&store, &empty, &pointer_md, &Limits::default()).unwrap();
    assert_eq!(resolved.batch, data);
    assert_eq!(resolved.controls, [log("one")]);
    assert_eq!(resolved.metadata.get("app.cursor"), Some("7"));
    assert!(!resolved.metadata.contains(keys::LOCATION));
    assert!(!resolved.metadata.contains(keys::LOCATION_SHA256));
    assert_eq!(
        resolved.metadata.get(keys::LOCATION_SOURCE),
        pointer_md.get(keys::LOCATION)
    );
    assert!(resolved.metadata.contains(keys::LOCATION_FETCH_MS));
}

fn failure(result: Result<Resolved>) -> (ExternalFailure, String) {
    match result {
        Err(Error::External { kind, message }) => (kind, message),
        other => panic!("expected an external-storage error, got {other:?}"),
    }
}

#[test]
fn objects_that_break_the_contract_are_typed_errors_without_secrets() {
    let store = Memory::default();
    let data = values(&[1]);
    let schema = data.schema();
    let empty = RecordBatch::new_empty(schema.clone());
    let none = Metadata::new();
    let limits = Limits::default();

    // A digest that does not match.
    let good = externalize(&store, &schema, &[(&data, &none)]).unwrap();
    let url = good.get(keys::LOCATION).unwrap();
    let tampered = pointer_metadata(url, Some(&"0".repeat(64)));
    let (kind, message) = failure(resolve(&store, &empty, &tampered, &limits));
    assert_eq!(kind, ExternalFailure::Integrity);
    assert!(!message.contains("secret"), "{message}");

    // Two data batches; none; a pointer inside; another schema.
    let two = externalize(&store, &schema, &[(&data, &none), (&data, &none)]).unwrap();
    assert_eq!(
        failure(resolve(&store, &empty, &two, &limits)).0,
        ExternalFailure::Invalid
    );
    let logs_only = externalize(&store, &schema, &[(&empty, &log("x"))]).unwrap();
    assert_eq!(
        failure(resolve(&store, &empty, &logs_only, &limits)).0,
        ExternalFailure::Invalid
    );
    let nested = externalize(&store, &schema, &[(&empty, &good)]).unwrap();
    assert_eq!(
        failure(resolve(&store, &empty, &nested, &limits)).0,
        ExternalFailure::Invalid
    );
    let other = Arc::new(Schema::new(vec![Field::new("w", DataType::Int64, true)]));
    let (kind, _) = failure(resolve(
        &store,
        &RecordBatch::new_empty(other),
        &good,
        &limits,
    ));
    assert_eq!(kind, ExternalFailure::SchemaMismatch);

    // Bytes that are not an IPC stream, and a stream with trailing bytes.
    let junk = store.upload(b"not arrow".to_vec(), &schema).unwrap();
    let md = pointer_metadata(&junk, None);
    assert_eq!(
        failure(resolve(&store, &empty, &md, &limits)).0,
        ExternalFailure::Invalid
    );
    let mut padded = crate::wire::encode_stream(&schema, std::slice::from_ref(&data)).unwrap();
    padded.extend_from_slice(b"tail");
    let padded = store.upload(padded, &schema).unwrap();
    let md = pointer_metadata(&padded, None);
    assert_eq!(
        failure(resolve(&store, &empty, &md, &limits)).0,
        ExternalFailure::Invalid
    );
}

#[test]
fn only_data_batches_at_the_threshold_go_out() {
    let store = Memory::default();
    assert!(store.wants(&values(&[1])));
    assert!(!store.wants(&RecordBatch::new_empty(values(&[1]).schema())));
    assert_eq!(buffer_bytes(&values(&[1, 2])), 16);
}

#[test]
fn urls_lose_their_secrets_in_diagnostics() {
    assert_eq!(
        redact_url("https://user:pw@bucket.s3.example:443/a/b.arrow?X-Amz-Signature=s#frag"),
        "https://bucket.s3.example:443/a/b.arrow"
    );
    assert_eq!(
        redact_url("http://127.0.0.1:9/download/x"),
        "http://127.0.0.1:9/download/x"
    );
    assert_eq!(redact_url("http://h?sig=1"), "http://h");
    assert_eq!(redact_url("no scheme"), "<invalid-url>");
    assert_eq!(redact_url("http://"), "<invalid-url>");
    assert_eq!(redact_url("://host/x"), "<invalid-url>");
}
