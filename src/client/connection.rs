//! One client connection: writes request streams and reads answer streams over a link's
//! byte stream. Everything above it (deadlines, cancel, reconnects) is the
//! [`Client`](super::Client)'s; everything below (sockets, pipes) the link's.

use std::io::{BufReader, Write};
use std::sync::Arc;

use arrow_array::RecordBatch;

use super::link::{BoxRead, BoxWrite, Link, LinkControl};
use super::{ConnectOptions, LogHandler, rpc_error_from_metadata};
use crate::log::LogRecord;
use crate::wire::{self, BatchKind, Limits, Metadata, StreamItem, keys};
use crate::{Error, LogLevel, Result};

/// The live connection and its control. Field order matters: the connection (an `exec:`
/// worker's stdin) is dropped before the control, which reaps the worker.
pub(crate) struct Active {
    pub(crate) conn: Connection,
    pub(crate) control: Arc<dyn LinkControl>,
}

impl Active {
    pub(crate) fn new(link: Link, options: &ConnectOptions) -> Active {
        Active {
            conn: Connection::new(
                link.reader,
                link.writer,
                options.limits.on_channel(link.trusted),
            ),
            control: link.control,
        }
    }
}

/// A byte-stream connection with its read buffer, limits and log handler.
pub(crate) struct Connection {
    pub(crate) reader: BufReader<BoxRead>,
    pub(crate) writer: BoxWrite,
    pub(crate) limits: Limits,
    pub(crate) log_handler: Option<LogHandler>,
}

impl Connection {
    pub(crate) fn new(reader: BoxRead, writer: BoxWrite, limits: Limits) -> Self {
        Connection {
            reader: BufReader::with_capacity(256 << 10, reader),
            writer,
            limits,
            log_handler: None,
        }
    }

    pub(crate) fn emit_log(&mut self, record: Option<&LogRecord>) {
        let Some(record) = record else { return };
        crate::log::forward_to_tracing(record);
        if let Some(handler) = self.log_handler.as_mut() {
            handler(record);
        }
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<()> {
        wire::write_chunked(&mut self.writer, bytes)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Reads one whole answer stream holding at most one data batch; returns it with its
    /// custom metadata. A void result (a zero-row batch on the empty schema) keeps its
    /// metadata: the batch is `None`, the metadata is the batch's.
    pub(crate) fn read_single_result(
        &mut self,
        logs: &mut Vec<LogRecord>,
    ) -> Result<(Option<RecordBatch>, Metadata)> {
        let mut decoder =
            wire::read_stream_start(&mut self.reader, &self.limits).map_err(closed_mid_call)?;
        let mut result = None;
        let mut error = None;
        loop {
            match wire::read_stream_item(&mut self.reader, &mut decoder, &self.limits)? {
                StreamItem::End => break,
                StreamItem::Batch(batch, md) => match classify(&batch, &md, logs) {
                    Some(Ok(())) if result.is_none() => result = Some((batch, md)),
                    Some(Ok(())) => {
                        error.get_or_insert_with(|| {
                            Error::protocol("a single-result answer carried more than one batch")
                        });
                    }
                    Some(Err(e)) => error = Some(e),
                    None => self.emit_log(logs.last()),
                },
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        Ok(match result {
            Some((batch, md)) if batch.num_columns() > 0 => (Some(batch), md),
            Some((_, md)) => (None, md),
            None => (None, Metadata::new()),
        })
    }
}

/// Sorts a received batch: `None` for a log (appended to `logs`), `Some(Err)` for an
/// EXCEPTION, `Some(Ok)` for data.
pub(crate) fn classify(
    batch: &RecordBatch,
    md: &Metadata,
    logs: &mut Vec<LogRecord>,
) -> Option<Result<()>> {
    match BatchKind::of(batch, md) {
        BatchKind::Log => {
            let level = md
                .get(keys::LOG_LEVEL)
                .and_then(LogLevel::parse)
                .unwrap_or(LogLevel::Info);
            let mut record = LogRecord::new(level, md.get(keys::LOG_MESSAGE).unwrap_or_default());
            if let Some(serde_json::Value::Object(extra)) = md
                .get(keys::LOG_EXTRA)
                .and_then(|e| serde_json::from_str(e).ok())
            {
                record.extra = extra;
            }
            logs.push(record);
            None
        }
        BatchKind::Exception => Some(Err(rpc_error_from_metadata(md).into())),
        BatchKind::ExternalPointer | BatchKind::ShmPointer => Some(Err(Error::protocol(
            "the server sent a pointer batch; external storage and shared memory are not enabled on this client",
        ))),
        BatchKind::Data | BatchKind::Continuation => Some(Ok(())),
    }
}

/// A clean close where an answer should start is a disconnect, not a protocol breach.
pub(crate) fn closed_mid_call(e: Error) -> Error {
    match e {
        Error::Closed => Error::disconnected("the server closed the connection before answering"),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::Target;

    fn request_metadata(target: &Target, extra: &Metadata) -> Vec<(String, String)> {
        let params = RecordBatch::new_empty(std::sync::Arc::new(arrow_schema::Schema::empty()));
        let mut encoder = crate::client::request::RequestEncoder::default();
        let mut cursor = encoder.encode(target, "m", &params, extra).unwrap();
        let limits = Limits::default();
        let mut decoder = wire::read_stream_start(&mut cursor, &limits).unwrap();
        match wire::read_stream_item(&mut cursor, &mut decoder, &limits).unwrap() {
            StreamItem::Batch(_, md) => md
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            StreamItem::End => panic!("no request batch"),
        }
    }

    #[test]
    fn extra_metadata_goes_first_and_framework_keys_are_never_duplicated() {
        let target = Target::new("P", Some("1.0"));
        let extra = Metadata::new()
            .with("app.a", "1")
            .with(keys::PROTOCOL, "P")
            .with(keys::METHOD, "m")
            .with("app.b", "2");
        let md = request_metadata(&target, &extra);
        let keys: Vec<&str> = md.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "app.a",
                keys::PROTOCOL,
                keys::METHOD,
                "app.b",
                keys::REQUEST_VERSION,
                keys::PROTOCOL_VERSION
            ]
        );
        // Without extras: the reference's order.
        let md = request_metadata(&Target::new("", None), &Metadata::new());
        let keys: Vec<&str> = md.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [keys::METHOD, keys::REQUEST_VERSION],
            "no protocol key"
        );
    }
}
