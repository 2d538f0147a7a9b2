//! The generated `ConformanceClient` (typed, from the same trait as our worker) against
//! ours and the Python reference (vgi-rpc 0.52.2): the typed client's request schemas,
//! defaults, result decoding, headers and streams, checked against an independent
//! implementation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Float64Array, RecordBatch};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use vgi_rpc::schema::{Blob, Bytes, DictString, LargeBinary, LargeString};
use vgi_rpc::{ArrowRecord, Error, LogLevel};
use vgi_rpc_conformance::types::{
    AllTypes, BoundingBox, ConformanceHeader, Point, RichHeader, ScaleRow, Status,
};

use crate::harness::Backend;

matrix!(conformance: scalars, temporal_and_decimal, containers_records_and_enums, defaults_and_annotated, errors_and_logs, producers, exchanges);

fn point(x: f64, y: f64) -> Point {
    Point { x, y }
}

fn scalars(b: &mut Backend) {
    let mut c = b.typed();
    assert_eq!(c.echo_string("héllo".into()).unwrap(), "héllo");
    assert_eq!(
        c.echo_bytes(Blob::from(vec![0u8, 1, 255])).unwrap(),
        Blob::from(vec![0u8, 1, 255])
    );
    assert_eq!(c.echo_int(i64::MIN).unwrap(), i64::MIN);
    assert_eq!(c.echo_float(-0.25).unwrap(), -0.25);
    assert!(c.echo_bool(true).unwrap());
    c.void_noop().unwrap();
    c.void_with_param(3).unwrap();
    assert_eq!(c.echo_int8(-128).unwrap(), -128);
    assert_eq!(c.echo_int16(-300).unwrap(), -300);
    assert_eq!(c.echo_int32(1 << 30).unwrap(), 1 << 30);
    assert_eq!(c.echo_uint8(255).unwrap(), 255);
    assert_eq!(c.echo_uint16(65535).unwrap(), 65535);
    assert_eq!(c.echo_uint32(u32::MAX).unwrap(), u32::MAX);
    assert_eq!(c.echo_uint64(u64::MAX).unwrap(), u64::MAX);
    assert_eq!(c.echo_float32(1.5).unwrap(), 1.5);
    assert_eq!(
        &*c.echo_large_string(LargeString::from("big".to_owned()))
            .unwrap(),
        "big"
    );
    assert_eq!(
        &*c.echo_large_binary(LargeBinary::from(vec![9u8; 3]))
            .unwrap(),
        &[9u8; 3]
    );
    assert_eq!(c.echo_fixed_binary(*b"abcdefgh").unwrap(), *b"abcdefgh");
    assert_eq!(
        &*c.echo_dict_encoded_string(DictString::from("dict".to_owned()))
            .unwrap(),
        "dict"
    );
}

fn temporal_and_decimal(b: &mut Backend) {
    let mut c = b.typed();
    let date = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    assert_eq!(c.echo_date(date).unwrap(), date);
    let stamp = date.and_hms_micro_opt(23, 59, 58, 123_456).unwrap();
    assert_eq!(c.echo_timestamp(stamp).unwrap(), stamp);
    let utc: DateTime<Utc> = stamp.and_utc();
    assert_eq!(c.echo_timestamp_utc(utc).unwrap(), utc);
    let time = NaiveTime::from_hms_micro_opt(1, 2, 3, 4).unwrap();
    assert_eq!(c.echo_time(time).unwrap(), time);
    let duration = TimeDelta::microseconds(-1_500_000);
    assert_eq!(c.echo_duration(duration).unwrap(), duration);
    let decimal = "-12345.6789".parse().unwrap();
    assert_eq!(c.echo_decimal(decimal).unwrap(), decimal);
}

fn containers_records_and_enums(b: &mut Backend) {
    let mut c = b.typed();
    assert_eq!(c.echo_enum(Status::Closed).unwrap(), Status::Closed);
    assert_eq!(c.echo_list(vec!["a".into(), "".into()]).unwrap(), ["a", ""]);
    let map = BTreeMap::from([("one".to_owned(), 1), ("two".to_owned(), 2)]);
    assert_eq!(c.echo_dict(map.clone()).unwrap(), map);
    assert_eq!(
        c.echo_nested_list(vec![vec![1], vec![], vec![2, 3]])
            .unwrap(),
        vec![vec![1], vec![], vec![2, 3]]
    );
    assert_eq!(c.echo_optional_string(None).unwrap(), None);
    assert_eq!(c.echo_optional_int(Some(5)).unwrap(), Some(5));
    assert_eq!(c.echo_optional_point(None).unwrap(), None);
    assert_eq!(
        c.echo_optional_point(Some(point(1.0, 2.0))).unwrap(),
        Some(point(1.0, 2.0))
    );
    assert_eq!(c.echo_point(point(-1.0, 0.5)).unwrap(), point(-1.0, 0.5));
    let bbox = BoundingBox {
        top_left: point(0.0, 1.0),
        bottom_right: point(1.0, 0.0),
        label: "unit".into(),
    };
    assert_eq!(c.echo_bounding_box(bbox.clone()).unwrap(), bbox);
    assert_eq!(c.inspect_point(point(1.5, 2.0)).unwrap(), "Point(1.5, 2.0)");
    assert_eq!(
        c.echo_status_list(vec![Status::Active, Status::Pending])
            .unwrap(),
        [Status::Active, Status::Pending]
    );
    let all = AllTypes {
        str_field: "s".into(),
        bytes_field: Bytes::from(vec![1, 2]),
        int_field: 7,
        float_field: 0.5,
        bool_field: false,
        list_of_int: vec![1, 2],
        list_of_str: vec!["x".into()],
        dict_field: BTreeMap::from([("k".to_owned(), 1)]),
        enum_field: Status::Active,
        nested_point: point(1.0, 1.0),
        optional_str: None,
        optional_int: Some(3),
        optional_nested: Some(point(2.0, 2.0)),
        list_of_nested: vec![point(3.0, 3.0)],
        annotated_int32: -4,
        annotated_float32: 0.25,
        nested_list: vec![vec![1], vec![]],
        dict_str_str: BTreeMap::from([("a".to_owned(), "b".to_owned())]),
    };
    assert_eq!(c.echo_all_types(all.clone()).unwrap(), all);
}

fn defaults_and_annotated(b: &mut Backend) {
    let mut c = b.typed();
    assert_eq!(
        c.concatenate_with_defaults("a".into(), "b".into()).unwrap(),
        "a-b"
    );
    assert_eq!(
        c.concatenate("a".into(), "b".into(), "+".into()).unwrap(),
        "a+b"
    );
    assert_eq!(
        c.with_defaults_with_defaults(1).unwrap(),
        "required=1, optional_str=default, optional_int=42"
    );
    assert_eq!(c.echo_annotated_optional_int(None).unwrap(), None);
    assert_eq!(c.echo_outer_optional_non_null(-7).unwrap(), -7);
}

fn errors_and_logs(b: &mut Backend) {
    let mut c = b.typed();
    let err = c.raise_value_error("bad input".into()).unwrap_err();
    let Error::Rpc(rpc) = err else {
        panic!("expected a remote error, got {err:?}");
    };
    assert_eq!(rpc.error_type, "ValueError");
    assert!(rpc.message.contains("bad input"), "{}", rpc.message);
    assert!(!rpc.traceback.is_empty());
    assert_eq!(c.echo_int(1).unwrap(), 1);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    c.client_mut().set_log_handler(move |record| {
        sink.lock()
            .unwrap()
            .push((record.level, record.message.clone()));
    });
    assert_eq!(c.echo_with_info_log("v".into()).unwrap(), "v");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, LogLevel::Info);
}

fn int_column(batches: &[RecordBatch], name: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(name)
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

fn producers(b: &mut Backend) {
    let mut c = b.typed();
    let batches = c
        .produce_n(3)
        .unwrap()
        .collect::<vgi_rpc::Result<Vec<_>>>()
        .unwrap();
    assert_eq!(int_column(&batches, "index"), [0, 1, 2]);
    assert!(c.produce_empty().unwrap().next().is_none());

    let stream = c.produce_with_header(2).unwrap();
    assert_eq!(
        stream.header(),
        &ConformanceHeader {
            total_expected: 2,
            description: "producing 2 batches".into()
        }
    );
    assert_eq!(stream.count(), 2);

    let stream = c.produce_with_rich_header(5, 1).unwrap();
    assert_eq!(stream.header(), &RichHeader::from_seed(5).unwrap());
    stream.close().unwrap();

    // Without a header there is nothing to read at open: an init error is the first item.
    let mut stream = c.produce_error_on_init().unwrap();
    assert!(matches!(stream.next(), Some(Err(Error::Rpc(_)))));
    assert!(stream.next().is_none());
    drop(stream);

    let mut stream = c.produce_error_mid_stream(1).unwrap();
    assert!(stream.next().unwrap().is_ok());
    assert!(matches!(stream.next(), Some(Err(Error::Rpc(_)))));
    assert!(stream.next().is_none());
    drop(stream);

    let mut stream = c.cancellable_producer().unwrap();
    stream.next().unwrap().unwrap();
    stream.cancel().unwrap();
    assert_eq!(c.echo_int(2).unwrap(), 2);
}

fn scale_rows(values: &[f64]) -> RecordBatch {
    ScaleRow::to_batch(
        values
            .iter()
            .map(|&v| ScaleRow { value: Some(v) })
            .collect(),
    )
    .unwrap()
}

fn floats(batch: &RecordBatch) -> Vec<f64> {
    let column: &Float64Array = batch
        .column_by_name("value")
        .unwrap()
        .as_primitive::<Float64Type>();
    column.values().to_vec()
}

fn exchanges(b: &mut Backend) {
    let mut c = b.typed();
    let mut session = c.exchange_scale(2.0).unwrap();
    assert_eq!(
        floats(&session.exchange(&scale_rows(&[1.0, 3.0])).unwrap()),
        [2.0, 6.0]
    );
    assert_eq!(
        floats(&session.exchange(&scale_rows(&[0.5])).unwrap()),
        [1.0]
    );
    session.close().unwrap();

    let mut session = c.exchange_with_header(3.0).unwrap();
    assert_eq!(session.header().description, "scale by 3.0");
    assert_eq!(
        floats(&session.exchange(&scale_rows(&[1.0])).unwrap()),
        [3.0]
    );
    session.cancel().unwrap();

    let mut session = c.exchange_error_on_nth(2).unwrap();
    session.exchange(&scale_rows(&[1.0])).unwrap();
    assert!(matches!(
        session.exchange(&scale_rows(&[1.0])),
        Err(Error::Rpc(_))
    ));
    drop(session);
    assert_eq!(c.echo_int(3).unwrap(), 3);
}
