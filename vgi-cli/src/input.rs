//! Input batches: Arrow IPC files (stream or file format) and JSON lines.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Seek};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema, SchemaRef};

use crate::args::{describe_params, type_name};
use crate::failure::{Failure, Outcome};

/// Every batch of an Arrow IPC stream or file.
///
/// # Errors
/// A local error for an unreadable or malformed file.
pub(crate) fn read_ipc_batches(path: &str) -> Outcome<Vec<RecordBatch>> {
    let fail = |e: &dyn std::fmt::Display| Failure::local(format!("cannot read {path}: {e}"));
    let mut file = File::open(path).map_err(|e| fail(&e))?;
    if let Ok(reader) = arrow_ipc::reader::FileReader::try_new(&mut file, None) {
        return reader.collect::<Result<_, _>>().map_err(|e| fail(&e));
    }
    file.rewind().map_err(|e| fail(&e))?;
    arrow_ipc::reader::StreamReader::try_new(BufReader::new(file), None)
        .map_err(|e| fail(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&e))
}

/// Reads JSON lines, one input batch (one row) per non-blank line. The first line's
/// inferred schema (integers as int64, numbers with a point as float64) is the input
/// stream's schema, so every later line is read as that schema: an exchange's input is a
/// single IPC stream with one schema. The server casts a compatible input to its declared
/// schema.
pub(crate) struct JsonLines<R> {
    reader: R,
    line: String,
    number: usize,
    schema: Option<SchemaRef>,
}

impl<R: BufRead> JsonLines<R> {
    pub(crate) fn new(reader: R) -> Self {
        JsonLines {
            reader,
            line: String::new(),
            number: 0,
            schema: None,
        }
    }
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = Outcome<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.line.clear();
            self.number += 1;
            match self.reader.read_line(&mut self.line) {
                Ok(0) => return None,
                Ok(_) if self.line.trim().is_empty() => continue,
                Ok(_) => {
                    let line = self.line.trim();
                    let own = match infer(line, self.number) {
                        Ok(schema) => schema,
                        Err(e) => return Some(Err(e)),
                    };
                    let schema = self.schema.get_or_insert(own.clone()).clone();
                    if let Err(e) = fits(&own, &schema, self.number) {
                        return Some(Err(e));
                    }
                    return Some(json_line(line, self.number, schema));
                }
                Err(e) => return Some(Err(Failure::local(format!("reading stdin: {e}")))),
            }
        }
    }
}

fn bad_line(number: usize, e: &dyn std::fmt::Display) -> Failure {
    Failure::usage(format!("input line {number}: {e}"))
}

fn infer(line: &str, number: usize) -> Outcome<SchemaRef> {
    let (schema, _) = arrow_json::reader::infer_json_schema(Cursor::new(line), Some(1))
        .map_err(|e| bad_line(number, &e))?;
    Ok(Arc::new(schema))
}

/// A later line may leave out fields, give nulls, or give an integer where the first
/// line fixed a float; anything else would be silently converted (or truncated) by the
/// JSON reader, so it is refused.
fn fits(own: &Schema, fixed: &Schema, number: usize) -> Outcome {
    for field in own.fields() {
        let ok = match fixed.field_with_name(field.name()) {
            Ok(want) => {
                want.data_type() == field.data_type()
                    || field.data_type() == &DataType::Null
                    || (field.data_type() == &DataType::Int64
                        && want.data_type() == &DataType::Float64)
            }
            Err(_) => false,
        };
        if !ok {
            return Err(bad_line(
                number,
                &format!(
                    "`{}` is {} here, but the first line fixed the input as {{{}}}",
                    field.name(),
                    type_name(field.data_type()),
                    describe_params(fixed)
                ),
            ));
        }
    }
    Ok(())
}

fn json_line(line: &str, number: usize, schema: SchemaRef) -> Outcome<RecordBatch> {
    let bad = |e: &dyn std::fmt::Display| bad_line(number, e);
    let mut reader = arrow_json::ReaderBuilder::new(schema)
        .build(Cursor::new(line))
        .map_err(|e| bad(&e))?;
    match reader.next() {
        Some(Ok(batch)) => Ok(batch),
        Some(Err(e)) => Err(bad(&e)),
        None => Err(bad(&"no JSON object")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_become_one_row_batches_and_blank_lines_are_skipped() {
        let text = "{\"value\": 2.5}\n\n{\"value\": 3}\n";
        let batches: Vec<_> = JsonLines::new(Cursor::new(text))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(batches.len(), 2);
        // The first line fixes the schema: the later integer is read as float64.
        assert_eq!(batches[1].schema(), batches[0].schema());
        assert_eq!(batches[1].schema().field(0).data_type(), &DataType::Float64);
        let mixed: Vec<_> =
            JsonLines::new(Cursor::new("{\"value\": 2}\n{\"value\": 1.5}\n")).collect();
        assert!(mixed[0].is_ok());
        assert!(matches!(&mixed[1], Err(Failure::Usage(m)) if m.contains("line 2")));
        assert!(matches!(
            JsonLines::new(Cursor::new("not json\n")).next(),
            Some(Err(Failure::Usage(_)))
        ));
    }
}
