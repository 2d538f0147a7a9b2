//! Input batches: Arrow IPC files (stream or file format) and JSON lines.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Seek};
use std::sync::Arc;

use arrow_array::RecordBatch;

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

/// Reads JSON lines, one input batch (one row) per non-blank line, with the schema
/// inferred from that line (integers as int64, decimals as float64; the server casts a
/// compatible input to its declared schema).
pub(crate) struct JsonLines<R> {
    reader: R,
    line: String,
    number: usize,
}

impl<R: BufRead> JsonLines<R> {
    pub(crate) fn new(reader: R) -> Self {
        JsonLines {
            reader,
            line: String::new(),
            number: 0,
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
                Ok(_) => return Some(json_line(self.line.trim(), self.number)),
                Err(e) => return Some(Err(Failure::local(format!("reading stdin: {e}")))),
            }
        }
    }
}

fn json_line(line: &str, number: usize) -> Outcome<RecordBatch> {
    let bad = |e: &dyn std::fmt::Display| Failure::usage(format!("input line {number}: {e}"));
    let (schema, _) =
        arrow_json::reader::infer_json_schema(Cursor::new(line), Some(1)).map_err(|e| bad(&e))?;
    let mut reader = arrow_json::ReaderBuilder::new(Arc::new(schema))
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
    use arrow_schema::DataType;

    #[test]
    fn json_lines_become_one_row_batches_and_blank_lines_are_skipped() {
        let text = "{\"value\": 2.5}\n\n{\"value\": 3.0}\n";
        let batches: Vec<_> = JsonLines::new(Cursor::new(text))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].schema().field(0).data_type(), &DataType::Float64);
        assert!(matches!(
            JsonLines::new(Cursor::new("not json\n")).next(),
            Some(Err(Failure::Usage(_)))
        ));
    }
}
