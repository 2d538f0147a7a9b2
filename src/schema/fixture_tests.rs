//! Reads values out of golden captures from the Python reference
//! (`tests/fixtures/protocol`), proving the mapping matches what pyarrow writes.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use arrow_array::{BinaryArray, RecordBatch};

use crate::schema::test_support::{Point, Status, p};
use crate::schema::{ArrowValue, DictString, types_equal_ignoring_child_names};
use crate::wire;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protocol/");

/// The single batch of the IPC stream at `range` of fixture `file`.
fn capture(file: &str, range: std::ops::Range<usize>) -> RecordBatch {
    let bytes =
        std::fs::read(format!("{FIXTURES}{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (_, mut batches) = wire::decode_stream(&bytes[range]).unwrap();
    batches.pop().unwrap()
}

#[test]
fn enum_from_reference() {
    let request = capture("pipe_unary.c2s.bin", 2864..3616);
    let column = request.column_by_name("status").unwrap();
    assert_eq!(column.data_type(), &Status::data_type());
    assert_eq!(
        Status::from_top_level_array(column.as_ref(), 0).unwrap(),
        Some(Status::Active)
    );
    let response = capture("pipe_unary.s2c.bin", 2984..3488);
    let column = response.column(0);
    assert_eq!(
        DictString::from_array(column.as_ref(), 0).unwrap(),
        Some("ACTIVE".into())
    );
}

#[test]
fn dataclass_from_reference() {
    let request = capture("pipe_unary.c2s.bin", 3616..4544);
    let column = request.column_by_name("point").unwrap();
    assert_eq!(column.data_type(), &Point::top_level_data_type());
    assert_eq!(
        Point::from_top_level_array(column.as_ref(), 0).unwrap(),
        Some(p(1.5, -2.0))
    );
    let response = capture("pipe_unary.s2c.bin", 3488..4168);
    assert_eq!(
        Point::from_top_level_array(response.column(0).as_ref(), 0).unwrap(),
        Some(p(1.5, -2.0))
    );
}

/// Our nested stream decodes to the same schema and batch as the reference's. (The bytes
/// differ only in the schema message's flatbuffer layout: arrow-rs and Arrow C++ order
/// flatbuffer tables differently.)
#[test]
fn dataclass_stream_matches_reference() {
    let response = capture("pipe_unary.s2c.bin", 3488..4168);
    let theirs = response
        .column(0)
        .as_any()
        .downcast_ref::<BinaryArray>()
        .unwrap()
        .value(0);
    let ours = Point::to_top_level_array(vec![Some(p(1.5, -2.0))]).unwrap();
    let ours = ours
        .as_any()
        .downcast_ref::<BinaryArray>()
        .unwrap()
        .value(0);
    assert_eq!(
        wire::decode_stream(ours).unwrap(),
        wire::decode_stream(theirs).unwrap()
    );
}

#[test]
fn optional_and_map_from_reference() {
    let null_int = capture("pipe_unary.s2c.bin", 4168..4472);
    assert_eq!(
        <Option<i64>>::from_top_level_array(null_int.column(0).as_ref(), 0).unwrap(),
        Some(None)
    );
    assert_eq!(
        i64::from_array(null_int.column(0).as_ref(), 0).unwrap(),
        None
    );

    let map = capture("pipe_unary.s2c.bin", 4472..5096);
    let column = map.column(0);
    assert_eq!(column.data_type(), &<HashMap<String, i64>>::data_type());
    assert!(types_equal_ignoring_child_names(
        column.data_type(),
        &<BTreeMap<String, i64>>::data_type()
    ));
    let expected: BTreeMap<String, i64> = [("a".to_owned(), 1), ("b".to_owned(), 2)].into();
    assert_eq!(
        <BTreeMap<String, i64>>::from_array(column.as_ref(), 0).unwrap(),
        Some(expected)
    );
}
