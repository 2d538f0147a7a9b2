//! Pointer batches across implementations: regions our [`ShmChannel`] writes are resolved
//! by the reference's `resolve_shm_batch`, and regions the reference writes with
//! `allocate_and_write` are resolved by ours — plain schemas (a whole IPC stream) and
//! dictionary schemas (dictionary and batch messages only) — and each side frees what it
//! read. Needs the reference venv (see `interop_tests.rs`).

use std::sync::Arc;

use arrow_array::types::Int16Type;
use arrow_array::{ArrayRef, DictionaryArray, Int16Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde_json::json;

use super::interop_tests::Py;
use super::*;
use crate::wire::{Metadata, SideChannel, keys};

const ROWS: usize = 50_000;

fn plain_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]))
}

fn dict_schema() -> SchemaRef {
    let ty = DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8));
    Arc::new(Schema::new(vec![Field::new("d", ty, true)]))
}

/// The same data the script builds.
fn plain_batch() -> RecordBatch {
    let v: ArrayRef = Arc::new(Int64Array::from_iter_values(0..ROWS as i64));
    let s: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..ROWS).map(|i| format!("r{i}")),
    ));
    RecordBatch::try_new(plain_schema(), vec![v, s]).unwrap()
}

fn dict_batch() -> RecordBatch {
    let keys = Int16Array::from_iter_values((0..4 * ROWS).map(|i| [0, 1, 0, 2][i % 4]));
    let values: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
    let d: ArrayRef = Arc::new(DictionaryArray::<Int16Type>::try_new(keys, values).unwrap());
    RecordBatch::try_new(dict_schema(), vec![d]).unwrap()
}

const PY_PEER: &str = r#"
import json, sys
import pyarrow as pa
from vgi_rpc.shm import ShmSegment, make_shm_pointer_batch, resolve_shm_batch
seg = ShmSegment.attach(sys.argv[1], int(sys.argv[2]), track=False)
n = 50000
plain = pa.schema([pa.field("v", pa.int64()), pa.field("s", pa.utf8())])
dic = pa.schema([pa.field("d", pa.dictionary(pa.int16(), pa.utf8()))])
expect = {
    "plain": pa.record_batch([pa.array(range(n), pa.int64()), pa.array([f"r{i}" for i in range(n)])], schema=plain),
    "dict": pa.record_batch([pa.DictionaryArray.from_arrays(
        pa.array([0, 1, 0, 2] * n, pa.int16()), pa.array(["a", "b", "c"]))], schema=dic),
}
req = json.loads(sys.stdin.readline())
out = {}
for kind, (off, ln) in req.items():
    b, cm = make_shm_pointer_batch(expect[kind].schema, off, ln)
    r, rcm, release = resolve_shm_batch(b, cm, seg)
    out[kind] = r.equals(expect[kind])
    del r
    release()
out["after_free"] = seg.allocator._read_allocs()
out["written"] = {kind: list(seg.allocate_and_write(batch)) for kind, batch in expect.items()}
print(json.dumps(out), flush=True)
sys.stdin.readline()
print(json.dumps({"allocs": seg.allocator._read_allocs()}), flush=True)
seg.close()
"#;

#[test]
fn pointer_batches_cross_between_implementations() {
    let channel = ShmChannel::create(16 << 20).unwrap();
    let segment = channel.segment().clone();
    let mut sent = serde_json::Map::new();
    for (kind, batch) in [("plain", plain_batch()), ("dict", dict_batch())] {
        let md = channel
            .send(&batch, &Metadata::new().with("app", "1"))
            .unwrap()
            .expect("large enough for the segment");
        assert_eq!(md.get("app"), Some("1"));
        let pointer = ShmPointer::from_metadata(&md).unwrap();
        sent.insert(kind.into(), json!([pointer.offset, pointer.length]));
    }
    assert_eq!(segment.allocations().unwrap().len(), 2);

    let mut py = Py::spawn(
        PY_PEER,
        &[segment.name().to_owned(), segment.size().to_string()],
    );
    py.send(serde_json::Value::Object(sent));
    let seen = py.recv();
    assert_eq!(seen["plain"], true, "the reference read our plain region");
    assert_eq!(
        seen["dict"], true,
        "the reference read our dictionary region"
    );
    assert_eq!(
        seen["after_free"],
        json!([]),
        "the reference freed what it read"
    );

    for (kind, expected) in [("plain", plain_batch()), ("dict", dict_batch())] {
        let at = &seen["written"][kind];
        let pointer = ShmPointer {
            offset: at[0].as_u64().unwrap(),
            length: at[1].as_u64().unwrap(),
        };
        let stub = RecordBatch::new_empty(expected.schema());
        let (batch, md) = channel
            .resolve(&stub, &pointer.annotate(&Metadata::new()))
            .unwrap();
        assert_eq!(batch, expected, "{kind}");
        assert_eq!(md.get(keys::SHM_SOURCE), Some(segment.name()));
    }
    channel.reclaim().unwrap();
    py.send(json!({}));
    assert_eq!(py.recv()["allocs"], json!([]), "we freed what we read");
    py.finish();
}

#[test]
fn small_and_empty_batches_are_declined() {
    let channel = ShmChannel::over(Segment::create(4 << 20).unwrap());
    let small = RecordBatch::try_from_iter([(
        "v",
        Arc::new(Int64Array::from_iter_values(0..100)) as ArrayRef,
    )])
    .unwrap();
    assert!(channel.send(&small, &Metadata::new()).unwrap().is_none());
    let empty = RecordBatch::new_empty(plain_schema());
    assert!(channel.send(&empty, &Metadata::new()).unwrap().is_none());
    let tiny = ShmChannel::over(Segment::create(4 << 20).unwrap()).with_min_batch_bytes(1);
    assert!(tiny.send(&small, &Metadata::new()).unwrap().is_some());
    assert!(tiny.send(&empty, &Metadata::new()).unwrap().is_none());
}

#[test]
fn bad_pointers_are_typed_errors() {
    let channel = ShmChannel::over(Segment::create(1 << 20).unwrap());
    let stub = RecordBatch::new_empty(plain_schema());
    let resolve = |offset: u64, length: u64| {
        channel.resolve(
            &stub,
            &ShmPointer { offset, length }.annotate(&Metadata::new()),
        )
    };
    for (offset, length) in [(0, 10), (1 << 20, 1), (u64::MAX, 2), (65536, 1 << 20)] {
        let e = resolve(offset, length).unwrap_err();
        assert!(matches!(e, crate::Error::Protocol(_)), "{e:?}");
    }
    // Inside the segment but not a batch.
    assert!(matches!(resolve(65536, 64), Err(crate::Error::Protocol(_))));
    let garbage = Metadata::new()
        .with(keys::SHM_OFFSET, "x")
        .with(keys::SHM_LENGTH, "1");
    assert!(channel.resolve(&stub, &garbage).is_err());
}

/// A resolved region is checked at the validation level of the connection's limits:
/// fully by default (invalid UTF-8 is refused), structure only where the caller lowered
/// the level for a trusted peer.
#[test]
#[allow(unsafe_code)]
fn resolution_checks_at_the_connections_validation_level() {
    use crate::wire::{Limits, RegionEncoding, Validation};

    let channel = ShmChannel::over(Segment::create(1 << 20).unwrap());
    let column: ArrayRef = Arc::new(StringArray::from(vec!["ab", "cd"]));
    let batch = RecordBatch::try_from_iter([("s", column)]).unwrap();
    let encoding = RegionEncoding::new(&batch).unwrap();
    let mut region = channel.segment().allocate(encoding.len()).unwrap().unwrap();
    let written = encoding.write_into(region.as_mut_slice()).unwrap();
    let bytes = &mut region.as_mut_slice()[..written];
    let at = bytes.windows(4).position(|w| w == b"abcd").unwrap();
    bytes[at] = 0xff;
    let pointer = region.publish(written).unwrap().annotate(&Metadata::new());
    let stub = RecordBatch::new_empty(batch.schema());

    let err = channel.resolve(&stub, &pointer).unwrap_err();
    assert!(err.to_string().contains("utf"), "{err}");
    let full = channel.resolve_with(&stub, &pointer, &Limits::default());
    assert!(full.is_err(), "full validation is the default");
    // SAFETY (test): the unvalidated batch is only inspected through its raw buffers.
    let standard = unsafe { Limits::default().with_validation(Validation::Standard) };
    let (resolved, _) = channel.resolve_with(&stub, &pointer, &standard).unwrap();
    let data = resolved.column(0).to_data();
    assert_eq!(
        &data.buffers()[1].as_slice()[..4],
        &[0xff, b'b', b'c', b'd']
    );
}
