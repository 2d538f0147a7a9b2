//! Result sinks: a text table, JSON lines, CSV, or an Arrow IPC stream, to stdout or a
//! file. Batches are written (and flushed) as they arrive, so a producer stream prints
//! while it runs.
//!
//! The formatting is arrow-rs's own: `arrow-cast`'s pretty printer, `arrow-json`'s
//! line-delimited writer, `arrow-csv`, `arrow-ipc`'s stream writer.

use std::fs::File;
use std::io::{BufWriter, Write};

use arrow_array::RecordBatch;
use clap::ValueEnum;

use crate::args::display_value;
use crate::failure::{Failure, Outcome};

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A text table per batch (a unary scalar result prints as its bare value).
    Table,
    /// One JSON object per row.
    Json,
    /// CSV with one header line.
    Csv,
    /// An Arrow IPC stream (use with --output).
    Arrow,
}

/// Where results go and in which format.
pub(crate) struct Sink {
    format: Format,
    out: Box<dyn Write>,
    csv_started: bool,
    ipc: Option<arrow_ipc::writer::StreamWriter<Box<dyn Write>>>,
}

fn local(e: impl std::fmt::Display) -> Failure {
    Failure::local(format!("writing output: {e}"))
}

/// A closed stdout (`vgi-rpc ... | head`) ends the run quietly; other errors are local
/// failures.
pub(crate) fn io(e: std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Failure::OutputClosed
    } else {
        local(e)
    }
}

fn arrow(e: arrow_schema::ArrowError) -> Failure {
    match e {
        arrow_schema::ArrowError::IoError(_, e) => io(e),
        other => local(other),
    }
}

impl Sink {
    /// A sink writing `format` to `path` (stdout when `None` or `-`).
    pub(crate) fn open(format: Format, path: Option<&str>) -> Outcome<Sink> {
        let out: Box<dyn Write> = match path {
            None | Some("-") => Box::new(std::io::stdout()),
            Some(p) => {
                Box::new(BufWriter::new(File::create(p).map_err(|e| {
                    Failure::local(format!("cannot create {p}: {e}"))
                })?))
            }
        };
        Ok(Sink {
            format,
            out,
            csv_started: false,
            ipc: None,
        })
    }

    /// A unary result. A one-row, one-column result in table format prints as its value.
    pub(crate) fn unary(&mut self, batch: &RecordBatch) -> Outcome {
        if self.format == Format::Table && batch.num_columns() == 1 && batch.num_rows() == 1 {
            let text = display_value(batch.column(0).as_ref(), 0);
            writeln!(self.out, "{text}").map_err(io)?;
            return self.finish();
        }
        self.batch(batch)?;
        self.finish()
    }

    /// A stream header, shown before the data (text formats) or on stderr (csv, arrow).
    pub(crate) fn header(&mut self, header: &RecordBatch) -> Outcome {
        match self.format {
            Format::Table => {
                writeln!(self.out, "header:").map_err(io)?;
                self.table(header)
            }
            Format::Json => {
                let rows = json_rows(header)?;
                for row in rows {
                    writeln!(self.out, "{{\"__header__\":{row}}}").map_err(io)?;
                }
                self.out.flush().map_err(io)
            }
            Format::Csv | Format::Arrow => {
                for row in json_rows(header)? {
                    eprintln!("header: {row}");
                }
                Ok(())
            }
        }
    }

    /// One data batch.
    pub(crate) fn batch(&mut self, batch: &RecordBatch) -> Outcome {
        match self.format {
            Format::Table => self.table(batch),
            Format::Json => {
                let mut writer = json_writer(&mut self.out);
                writer.write(batch).map_err(arrow)?;
                writer.finish().map_err(arrow)?;
                self.out.flush().map_err(io)
            }
            Format::Csv => {
                let mut writer = arrow_csv::WriterBuilder::new()
                    .with_header(!self.csv_started)
                    .build(&mut self.out);
                writer.write(batch).map_err(arrow)?;
                drop(writer);
                self.csv_started = true;
                self.out.flush().map_err(io)
            }
            Format::Arrow => {
                if self.ipc.is_none() {
                    let out = std::mem::replace(&mut self.out, Box::new(std::io::sink()));
                    let writer = arrow_ipc::writer::StreamWriter::try_new(out, &batch.schema())
                        .map_err(arrow)?;
                    self.ipc = Some(writer);
                }
                if let Some(writer) = self.ipc.as_mut() {
                    writer.write(batch).map_err(arrow)?;
                    writer.flush().map_err(arrow)?;
                }
                Ok(())
            }
        }
    }

    fn table(&mut self, batch: &RecordBatch) -> Outcome {
        if batch.num_columns() == 0 {
            return Ok(());
        }
        let text = arrow_cast::pretty::pretty_format_batches(std::slice::from_ref(batch))
            .map_err(arrow)?;
        writeln!(self.out, "{text}").map_err(io)?;
        self.out.flush().map_err(io)
    }

    /// Ends the output (the IPC end-of-stream marker; flushes files).
    pub(crate) fn finish(&mut self) -> Outcome {
        if let Some(mut writer) = self.ipc.take() {
            writer.finish().map_err(arrow)?;
            let mut out = writer.into_inner().map_err(arrow)?;
            out.flush().map_err(io)?;
            return Ok(());
        }
        self.out.flush().map_err(io)
    }
}

/// A JSON-lines writer that spells out nulls (a missing key would read as "no such
/// column").
fn json_writer<W: Write>(out: W) -> arrow_json::LineDelimitedWriter<W> {
    arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::LineDelimited>(out)
}

/// The rows of a batch as JSON object texts.
pub(crate) fn json_rows(batch: &RecordBatch) -> Outcome<Vec<String>> {
    let mut buffer = Vec::new();
    let mut writer = json_writer(&mut buffer);
    writer.write(batch).map_err(arrow)?;
    writer.finish().map_err(arrow)?;
    Ok(String::from_utf8_lossy(&buffer)
        .lines()
        .map(str::to_owned)
        .collect())
}
