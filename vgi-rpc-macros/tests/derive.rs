//! `#[derive(ArrowRecord)]` and `#[derive(ArrowEnum)]` at run time: schemas, batches,
//! nested (struct) and top-level (IPC in `binary`) forms, enum dictionaries.

// `vgi_rpc::Error` is currently 152 bytes, which clippy flags on every handler signature.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use anyhow::{Context as _, Result};
use arrow_array::{Array, RecordBatch, StructArray};
use arrow_schema::{DataType, Field, Fields};
use vgi_rpc::{ArrowEnum, ArrowRecord, ArrowValue};

#[derive(Debug, Clone, PartialEq, vgi_rpc::ArrowRecord)]
struct Point {
    x: f64,
    #[vgi(rename = "Y")]
    y: f64,
}

#[derive(Debug, Clone, PartialEq, vgi_rpc::ArrowRecord)]
struct Shape {
    label: String,
    corner: Point,
    note: Option<String>,
    status: Status,
    r#type: i64,
}

#[derive(Debug, PartialEq, vgi_rpc::ArrowRecord)]
struct Nothing {}

#[derive(Debug, PartialEq, vgi_rpc::ArrowRecord)]
struct Unit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, vgi_rpc::ArrowEnum)]
enum Status {
    Active,
    #[vgi(rename = "OFF")]
    Inactive,
}

fn shape(label: &str, note: Option<&str>) -> Shape {
    Shape {
        label: label.into(),
        corner: Point { x: 1.5, y: -2.0 },
        note: note.map(Into::into),
        status: Status::Inactive,
        r#type: 3,
    }
}

#[test]
fn record_schema_follows_declaration_order() {
    let point_fields = Fields::from(vec![
        Field::new("x", DataType::Float64, false),
        Field::new("Y", DataType::Float64, false),
    ]);
    assert_eq!(Point::schema().fields(), &point_fields);
    let schema = Shape::schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["label", "corner", "note", "status", "type"]);
    assert_eq!(schema.field(1).data_type(), &DataType::Struct(point_fields));
    assert!(schema.field(2).is_nullable() && !schema.field(0).is_nullable());
    assert_eq!(schema.field(3).data_type(), &Status::data_type());
    assert!(
        Arc::ptr_eq(&Shape::schema(), &schema),
        "the schema is built once"
    );
}

#[test]
fn record_rows_round_trip() -> Result<()> {
    let rows = vec![shape("a", None), shape("b", Some("n"))];
    let batch = Shape::to_batch(rows.clone())?;
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.schema(), Shape::schema());
    let back = (0..2)
        .map(|i| Shape::from_batch(&batch, i))
        .collect::<vgi_rpc::Result<Vec<_>>>()?;
    assert_eq!(back, rows);
    Ok(())
}

#[test]
fn from_batch_reads_by_name() -> Result<()> {
    let batch = Point::to_batch(vec![Point { x: 1.0, y: 2.0 }])?;
    let reordered = batch.project(&[1, 0])?;
    assert_eq!(Point::from_batch(&reordered, 0)?, Point { x: 1.0, y: 2.0 });
    let missing = batch.project(&[0])?;
    assert!(Point::from_batch(&missing, 0).is_err());
    Ok(())
}

#[test]
fn empty_records_keep_their_row_count() -> Result<()> {
    let batch = Nothing::to_batch(vec![Nothing {}, Nothing {}])?;
    assert_eq!((batch.num_rows(), batch.num_columns()), (2, 0));
    assert_eq!(Nothing::from_batch(&batch, 1)?, Nothing {});
    assert_eq!(Unit::to_batch(vec![Unit])?.num_rows(), 1);
    Ok(())
}

#[test]
fn record_is_a_struct_when_nested_and_binary_at_top_level() -> Result<()> {
    let nested = Point::to_array(vec![Some(Point { x: 1.0, y: 2.0 }), None])?;
    assert_eq!(nested.data_type(), &Point::data_type());
    assert!(nested.as_any().downcast_ref::<StructArray>().is_some());
    assert!(nested.is_null(1));
    assert_eq!(
        Point::from_array(nested.as_ref(), 0)?,
        Some(Point { x: 1.0, y: 2.0 })
    );
    assert_eq!(Point::from_array(nested.as_ref(), 1)?, None);

    assert_eq!(Shape::top_level_data_type(), DataType::Binary);
    let top = Shape::to_top_level_array(vec![Some(shape("t", Some("x")))])?;
    assert_eq!(top.data_type(), &DataType::Binary);
    let back = Shape::from_top_level_array(top.as_ref(), 0)?.context("one row")?;
    assert_eq!(back, shape("t", Some("x")));
    Ok(())
}

#[test]
fn enum_names_and_dictionary() -> Result<()> {
    assert_eq!(Status::NAMES, ["Active", "OFF"]);
    assert_eq!(Status::Inactive.name(), "OFF");
    assert_eq!(Status::from_name("Active"), Some(Status::Active));
    assert_eq!(Status::from_name("Inactive"), None);
    assert_eq!(
        Status::data_type(),
        DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8))
    );
    let array = Status::to_array(vec![Some(Status::Inactive), None])?;
    assert_eq!(
        Status::from_array(array.as_ref(), 0)?,
        Some(Status::Inactive)
    );
    assert_eq!(Status::from_array(array.as_ref(), 1)?, None);
    Ok(())
}

#[test]
fn record_as_stream_header() -> Result<()> {
    use vgi_rpc::stream::StreamHeader;
    let schema = <Point as StreamHeader>::header_schema().context("a header schema")?;
    assert_eq!(schema, Point::schema());
    let batch: Option<RecordBatch> = Point { x: 0.0, y: 1.0 }.into_header_batch()?;
    assert_eq!(batch.map(|b| b.num_rows()), Some(1));
    Ok(())
}
