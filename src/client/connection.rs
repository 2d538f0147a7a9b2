//! One client connection: writes request streams and reads answer streams over a link's
//! byte stream, and resolves the shared-memory pointers among the answers (`side.rs`
//! negotiates the side channel). Everything above it (deadlines, cancel, reconnects) is
//! the [`Client`](super::Client)'s; everything below (sockets, pipes, segments) the
//! link's.

use std::io::{BufReader, Read, Write};
use std::sync::Arc;

use arrow_array::RecordBatch;

use super::link::{BoxRead, BoxWrite, Link, LinkControl, RoundTrip};
use super::{ConnectOptions, LogHandler, rpc_error_from_metadata};
use crate::log::LogRecord;
use crate::wire::{self, BatchKind, Limits, Metadata, SideChannel, StreamItem, keys};
use crate::{Error, LogLevel, Result};

/// The live connection and its control. Field order matters: the connection (an `exec:`
/// worker's stdin) is dropped before the control, which reaps the worker.
pub(crate) struct Active {
    pub(crate) conn: Connection,
    /// A request/response transport's requests (HTTP); `None` on byte streams, whose
    /// requests go through `conn`.
    pub(crate) round_trip: Option<Box<dyn RoundTrip>>,
    pub(crate) control: Arc<dyn LinkControl>,
}

impl Active {
    pub(crate) fn new(link: Link, options: &ConnectOptions) -> Active {
        let limits = options.limits.on_channel(link.trusted);
        let mut conn = Connection::new(link.reader, link.writer, limits);
        conn.side = SideState::Offered(link.side_channel);
        Active {
            conn,
            round_trip: link.round_trip,
            control: link.control,
        }
    }
}

/// Where the connection's side channel (shared memory) stands.
pub(crate) enum SideState {
    /// The link brought one (or none) and it was not offered to the worker yet.
    Offered(Option<Arc<dyn SideChannel>>),
    /// The worker accepted it; `established` once it answered a request naming it.
    Accepted {
        channel: Arc<dyn SideChannel>,
        established: bool,
    },
    /// No side channel on this connection.
    Off,
}

/// A byte-stream connection with its read buffer, limits, log handler and side channel.
pub(crate) struct Connection {
    pub(crate) reader: BufReader<BoxRead>,
    pub(crate) writer: BoxWrite,
    pub(crate) limits: Limits,
    pub(crate) log_handler: Option<LogHandler>,
    pub(crate) side: SideState,
}

impl Connection {
    pub(crate) fn new(reader: BoxRead, writer: BoxWrite, limits: Limits) -> Self {
        Connection {
            reader: BufReader::with_capacity(256 << 10, reader),
            writer,
            limits,
            log_handler: None,
            side: SideState::Off,
        }
    }

    /// The side channel in use (accepted by the worker).
    pub(crate) fn side(&self) -> Option<&Arc<dyn SideChannel>> {
        match &self.side {
            SideState::Accepted { channel, .. } => Some(channel),
            _ => None,
        }
    }

    /// The worker answered a request that named the side channel: it holds its own
    /// handle now, so the channel may drop its public name.
    pub(crate) fn mark_established(&mut self) {
        if let SideState::Accepted {
            channel,
            established,
        } = &mut self.side
            && !*established
        {
            *established = true;
            channel.established();
        }
    }

    /// Sorts a received batch (see [`receive`]) with this connection's side channel.
    pub(crate) fn receive(
        &self,
        batch: RecordBatch,
        md: Metadata,
        logs: &mut Vec<LogRecord>,
    ) -> Received {
        receive(self.side().map(|s| &**s), &self.limits, batch, md, logs)
    }

    pub(crate) fn emit_log(&mut self, record: Option<&LogRecord>) {
        emit_log(&mut self.log_handler, record);
    }

    /// Sends bytes, the end of one of this side's turns. The side channel's releases (the
    /// previous answers' regions, dropped since) are applied first, while this side
    /// still holds the turn.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(side) = self.side()
            && let Err(e) = side.reclaim()
        {
            tracing::warn!(error = %e, "cannot release shared-memory answers");
        }
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
        let Connection {
            reader,
            limits,
            log_handler,
            side,
            ..
        } = self;
        let side = match side {
            SideState::Accepted { channel, .. } => Some(&**channel),
            _ => None,
        };
        let answer = read_single(reader, limits, side, log_handler, logs)?;
        self.mark_established();
        Ok(answer)
    }

    /// [`Connection::read_single_result`] over an answer body a request/response
    /// transport returned (no side channel there).
    pub(crate) fn read_single_body(
        &mut self,
        body: &mut impl Read,
        logs: &mut Vec<LogRecord>,
    ) -> Result<(Option<RecordBatch>, Metadata)> {
        read_single(body, &self.limits, None, &mut self.log_handler, logs)
    }
}

/// Reads one whole answer stream holding at most one data batch (see
/// [`Connection::read_single_result`]).
fn read_single(
    reader: &mut impl Read,
    limits: &Limits,
    side: Option<&dyn SideChannel>,
    log_handler: &mut Option<LogHandler>,
    logs: &mut Vec<LogRecord>,
) -> Result<(Option<RecordBatch>, Metadata)> {
    let mut decoder = wire::read_stream_start(reader, limits).map_err(closed_mid_call)?;
    let mut result = None;
    let mut error = None;
    loop {
        match wire::read_stream_item(reader, &mut decoder, limits)? {
            StreamItem::End => break,
            StreamItem::Batch(batch, md) => match receive(side, limits, batch, md, logs) {
                Received::Data(batch, md) if result.is_none() => result = Some((batch, md)),
                Received::Data(..) => {
                    error.get_or_insert_with(|| {
                        Error::protocol("a single-result answer carried more than one batch")
                    });
                }
                Received::Failed(e) => error = Some(e),
                Received::Log => emit_log(log_handler, logs.last()),
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

/// Forwards a log record to tracing and to the connection's handler.
pub(crate) fn emit_log(handler: &mut Option<LogHandler>, record: Option<&LogRecord>) {
    let Some(record) = record else { return };
    crate::log::forward_to_tracing(record);
    if let Some(handler) = handler.as_mut() {
        handler(record);
    }
}

/// What a received batch turned out to be.
pub(crate) enum Received {
    /// A log record, appended to the caller's list.
    Log,
    /// Data (a shared-memory pointer already resolved), with its metadata.
    Data(RecordBatch, Metadata),
    /// An EXCEPTION (the call failed) or a batch this client cannot take.
    Failed(Error),
}

/// Sorts a received batch, resolving a shared-memory pointer through `side`.
pub(crate) fn receive(
    side: Option<&dyn SideChannel>,
    limits: &Limits,
    batch: RecordBatch,
    md: Metadata,
    logs: &mut Vec<LogRecord>,
) -> Received {
    match (classify(&batch, &md, logs), side) {
        (Some(Ok(())), _) => Received::Data(batch, md),
        (Some(Err(e)), _) => Received::Failed(e),
        (None, Some(side)) if BatchKind::of(&batch, &md) == BatchKind::ShmPointer => {
            match side.resolve_with(&batch, &md, limits) {
                Ok((batch, md)) => Received::Data(batch, md),
                Err(e) => Received::Failed(e),
            }
        }
        (None, None) if BatchKind::of(&batch, &md) == BatchKind::ShmPointer => {
            Received::Failed(Error::protocol(
                "the server sent a shared-memory pointer, but this connection has no segment",
            ))
        }
        (None, _) => Received::Log,
    }
}

/// Sorts a received batch: `None` for a log (appended to `logs`) or a shared-memory
/// pointer (for [`receive`] to resolve), `Some(Err)` for an EXCEPTION or an external
/// pointer, `Some(Ok)` for data.
fn classify(batch: &RecordBatch, md: &Metadata, logs: &mut Vec<LogRecord>) -> Option<Result<()>> {
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
        BatchKind::ShmPointer => None,
        BatchKind::ExternalPointer => Some(Err(Error::protocol(
            "the server sent an external-storage pointer; external storage is not enabled on this client",
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
        let mut cursor = encoder.encode(target, "m", &params, extra, None).unwrap();
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
