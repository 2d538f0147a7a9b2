//! Hand-written records and enums shaped like the conformance service's `Point` and
//! `Status`, standing in for derive output in this module's tests, plus the shared
//! column round-trip check.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::Result;
use crate::private::record_field;
use crate::schema::{ArrowEnum, ArrowRecord, ArrowValue};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub(crate) x: f64,
    pub(crate) y: f64,
}

impl ArrowRecord for Point {
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("y", DataType::Float64, false),
        ]))
    }

    fn to_batch(rows: Vec<Self>) -> Result<RecordBatch> {
        let (xs, ys) = rows.into_iter().map(|p| (Some(p.x), Some(p.y))).unzip();
        Ok(RecordBatch::try_new(
            Self::schema(),
            vec![f64::to_array(xs)?, f64::to_array(ys)?],
        )?)
    }

    fn from_batch(batch: &RecordBatch, index: usize) -> Result<Self> {
        Ok(Point {
            x: record_field(batch, "x", index)?,
            y: record_field(batch, "y", index)?,
        })
    }
}

crate::__impl_record_value!(Point);

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shape {
    pub(crate) label: String,
    pub(crate) corner: Option<Point>,
    pub(crate) points: Vec<Point>,
}

impl ArrowRecord for Shape {
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("label", String::data_type(), false),
            Field::new("corner", Point::data_type(), true),
            Field::new("points", <Vec<Point>>::data_type(), false),
        ]))
    }

    fn to_batch(rows: Vec<Self>) -> Result<RecordBatch> {
        let mut labels = Vec::new();
        let mut corners = Vec::new();
        let mut points = Vec::new();
        for row in rows {
            labels.push(Some(row.label));
            corners.push(Some(row.corner));
            points.push(Some(row.points));
        }
        let columns = vec![
            String::to_array(labels)?,
            <Option<Point>>::to_array(corners)?,
            <Vec<Point>>::to_array(points)?,
        ];
        Ok(RecordBatch::try_new(Self::schema(), columns)?)
    }

    fn from_batch(batch: &RecordBatch, index: usize) -> Result<Self> {
        Ok(Shape {
            label: record_field(batch, "label", index)?,
            corner: record_field(batch, "corner", index)?,
            points: record_field(batch, "points", index)?,
        })
    }
}

crate::__impl_record_value!(Shape);

pub(crate) fn p(x: f64, y: f64) -> Point {
    Point { x, y }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Active,
    Inactive,
    Pending,
}

impl ArrowEnum for Status {
    const NAMES: &'static [&'static str] = &["ACTIVE", "INACTIVE", "PENDING"];

    fn name(&self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Inactive => "INACTIVE",
            Status::Pending => "PENDING",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "ACTIVE" => Some(Status::Active),
            "INACTIVE" => Some(Status::Inactive),
            "PENDING" => Some(Status::Pending),
            _ => None,
        }
    }
}

crate::__impl_enum_value!(Status);

/// Writes `items` as a column, checks its type, and reads every row back unchanged.
#[allow(clippy::unwrap_used)]
pub(crate) fn round_trip<T: ArrowValue + Clone + PartialEq + std::fmt::Debug>(
    items: Vec<Option<T>>,
) {
    let array = T::to_array(items.clone()).unwrap();
    assert_eq!(array.data_type(), &T::data_type());
    let back: Vec<Option<T>> = (0..items.len())
        .map(|i| T::from_array(array.as_ref(), i).unwrap())
        .collect();
    assert_eq!(back, items);
}
