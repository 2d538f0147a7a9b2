//! One client connection: writes request streams and reads answer streams over a link's
//! byte stream, and resolves the shared-memory pointers among the answers (`side.rs`
//! negotiates the side channel). Everything above it (deadlines, cancel, reconnects) is
//! the [`Client`](super::Client)'s; everything below (sockets, pipes, segments) the
//! link's.

use std::io::{BufReader, Read};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;

use super::link::{BoxRead, BoxWrite, Link, LinkControl, RoundTrip};
use super::request::Request;
use super::{ConnectOptions, LogHandler, rpc_error_from_metadata};
use crate::log::LogRecord;
use crate::wire::{
    self, BatchKind, ExternalLocation, Limits, Metadata, SideChannel, StreamItem, keys,
};
use crate::{Error, ExternalFailure, LogLevel, Result};

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
        let limits = options.limits.clone().on_channel(link.trusted);
        let mut conn = Connection::new(link.reader, link.writer, limits);
        conn.side = SideState::Offered(link.side_channel);
        conn.writer.set_splice(link.lender);
        conn.external = options.external.clone();
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
    /// Where requests go; large bodies are lent when the link can ([`wire::Splice`]).
    pub(crate) writer: wire::Outbound<BoxWrite>,
    pub(crate) limits: Limits,
    pub(crate) log_handler: Option<LogHandler>,
    pub(crate) side: SideState,
    /// Resolves external-storage pointers (`None`: they fail their call).
    pub(crate) external: Option<Arc<dyn ExternalLocation>>,
    /// The last answer body read whole that was one void result ([`wire::Repeat`]).
    repeat: wire::Repeat,
}

impl Connection {
    pub(crate) fn new(reader: BoxRead, writer: BoxWrite, limits: Limits) -> Self {
        Connection {
            reader: BufReader::with_capacity(wire::READ_AHEAD, reader),
            writer: wire::Outbound::new(writer, None),
            limits,
            log_handler: None,
            side: SideState::Off,
            external: None,
            repeat: wire::Repeat::default(),
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

    /// Sorts a received batch (see [`receive`]) with this connection's side channel and
    /// external storage, and hands the logs it carried to the log handler.
    pub(crate) fn receive(
        &mut self,
        batch: RecordBatch,
        md: Metadata,
        logs: &mut Vec<LogRecord>,
    ) -> Received {
        let mark = logs.len();
        let resolvers = Resolvers {
            side: self.side().map(|s| &**s),
            external: self.external.as_deref(),
            limits: &self.limits,
        };
        let received = receive(&resolvers, batch, md, logs);
        emit_logs(&mut self.log_handler, &logs[mark..]);
        received
    }

    /// Sends bytes, the end of one of this side's turns. The side channel's releases (the
    /// previous answers' regions, dropped since) are applied first, while this side
    /// still holds the turn.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.send_parts(bytes, &[])
    }

    /// [`Connection::send`] of `head` and then `parts` (a large batch's buffers), in one
    /// vectored write where the writer takes one.
    pub(crate) fn send_parts(&mut self, head: &[u8], parts: &[Buffer]) -> Result<()> {
        if let Some(side) = self.side()
            && let Err(e) = side.reclaim()
        {
            tracing::warn!(error = %e, "cannot release shared-memory answers");
        }
        self.writer.write_parts(head, parts)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Sends an encoded request ([`Connection::send_parts`]).
    pub(crate) fn send_request(&mut self, request: &Request<'_>) -> Result<()> {
        self.send_parts(request.head(), request.body())
    }

    /// Reads one whole answer stream holding at most one data batch; returns it with its
    /// custom metadata. A void result (a zero-row batch on the empty schema) keeps its
    /// metadata: the batch is `None`, the metadata is the batch's. A void result that
    /// repeats this connection's last one byte for byte is not decoded again
    /// ([`wire::Repeat`]).
    pub(crate) fn read_single_result(
        &mut self,
        logs: &mut Vec<LogRecord>,
    ) -> Result<(Option<RecordBatch>, Metadata)> {
        let Connection {
            reader,
            limits,
            log_handler,
            side,
            repeat,
            ..
        } = self;
        if let Some((_, metadata)) = repeat.take_from(reader, limits)? {
            self.mark_established();
            return Ok((None, metadata));
        }
        let resolvers = Resolvers {
            side: match side {
                SideState::Accepted { channel, .. } => Some(&**channel),
                _ => None,
            },
            external: self.external.as_deref(),
            limits,
        };
        let mut metered = wire::Metered::new(&mut *reader);
        let (answer, keepable) = read_single(&mut metered, &resolvers, log_handler, logs)?;
        if let Some(batch) = keepable {
            let len = usize::try_from(metered.consumed).unwrap_or(usize::MAX);
            repeat.keep_noted(len, limits, &batch, &answer.1);
        }
        self.mark_established();
        Ok(answer)
    }

    /// [`Connection::read_single_result`] over the start of an answer body a
    /// request/response transport returned (no side channel there).
    pub(crate) fn read_single_body(
        &mut self,
        body: &mut impl Read,
        logs: &mut Vec<LogRecord>,
    ) -> Result<(Option<RecordBatch>, Metadata)> {
        let resolvers = Resolvers {
            side: None,
            external: self.external.as_deref(),
            limits: &self.limits,
        };
        read_single(body, &resolvers, &mut self.log_handler, logs).map(|(answer, _)| answer)
    }

    /// [`Connection::read_single_body`] over a unary call's whole answer body. A void
    /// result this connection read last time is not decoded again ([`wire::Repeat`]).
    pub(crate) fn read_unary_body(
        &mut self,
        body: &[u8],
        logs: &mut Vec<LogRecord>,
    ) -> Result<(Option<RecordBatch>, Metadata)> {
        if let Some((_, metadata)) = self.repeat.get(body, &self.limits) {
            return Ok((None, metadata));
        }
        let resolvers = Resolvers {
            side: None,
            external: self.external.as_deref(),
            limits: &self.limits,
        };
        let (answer, keepable) =
            read_single(&mut &body[..], &resolvers, &mut self.log_handler, logs)?;
        if let Some(batch) = keepable {
            self.repeat.keep(body, &self.limits, &batch, &answer.1);
        }
        Ok(answer)
    }
}

/// An answer of at most one data batch: the batch (`None` for a void result) and its
/// metadata.
type SingleAnswer = (Option<RecordBatch>, Metadata);

/// Reads one whole answer stream holding at most one data batch (see
/// [`Connection::read_single_result`]).
///
/// Besides the answer, returns what a [`wire::Repeat`] may keep of it: its batch when it
/// was a void result, the stream's only batch, column-less plain data, and brought no logs.
fn read_single(
    reader: &mut impl Read,
    resolvers: &Resolvers<'_>,
    log_handler: &mut Option<LogHandler>,
    logs: &mut Vec<LogRecord>,
) -> Result<(SingleAnswer, Option<RecordBatch>)> {
    let limits = resolvers.limits;
    let logs_before = logs.len();
    let mut plain = None;
    let mut decoder = wire::read_stream_start(reader, limits).map_err(closed_mid_call)?;
    let mut result = None;
    let mut error = None;
    let mut batches = 0usize;
    loop {
        match wire::read_stream_item(reader, &mut decoder, limits)? {
            StreamItem::End => break,
            StreamItem::Batch(batch, md) => {
                batches += 1;
                plain = (batches == 1
                    && batch.num_columns() == 0
                    && BatchKind::of(&batch, &md) == BatchKind::Data)
                    .then(|| batch.clone());
                let mark = logs.len();
                let received = receive(resolvers, batch, md, logs);
                emit_logs(log_handler, &logs[mark..]);
                match received {
                    Received::Data(batch, md) if result.is_none() => result = Some((batch, md)),
                    Received::Data(..) => {
                        error.get_or_insert_with(|| {
                            Error::protocol("a single-result answer carried more than one batch")
                        });
                    }
                    // The first failure is the call's; the stream is read to its end
                    // either way, so the connection stays in step.
                    Received::Failed(e) => {
                        error.get_or_insert(e);
                    }
                    Received::Log => {}
                }
            }
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    let answer = match result {
        Some((batch, md)) if batch.num_columns() > 0 => (Some(batch), md),
        Some((_, md)) => (None, md),
        None => (None, Metadata::new()),
    };
    let keepable = plain.filter(|_| answer.0.is_none() && logs.len() == logs_before);
    Ok((answer, keepable))
}

/// Forwards log records to tracing and to the connection's handler.
pub(crate) fn emit_logs(handler: &mut Option<LogHandler>, records: &[LogRecord]) {
    for record in records {
        crate::log::forward_to_tracing(record);
        if let Some(handler) = handler.as_mut() {
            handler(record);
        }
    }
}

/// What resolves pointer batches on a connection: its side channel (shared memory), its
/// external storage, and the limits resolved batches are checked under.
pub(crate) struct Resolvers<'a> {
    pub(crate) side: Option<&'a dyn SideChannel>,
    pub(crate) external: Option<&'a dyn ExternalLocation>,
    pub(crate) limits: &'a Limits,
}

/// What a received batch turned out to be.
pub(crate) enum Received {
    /// Log records only, appended to the caller's list.
    Log,
    /// Data (a pointer already resolved, the logs it carried appended), with its
    /// metadata.
    Data(RecordBatch, Metadata),
    /// An EXCEPTION (the call failed) or a batch this client cannot take.
    Failed(Error),
}

/// Sorts a received batch, resolving a shared-memory pointer through the side channel
/// and an external-storage pointer through the external location (whose object's logs
/// are appended to `logs` in order, and whose EXCEPTION fails the call as an inline one
/// would).
pub(crate) fn receive(
    resolvers: &Resolvers<'_>,
    batch: RecordBatch,
    md: Metadata,
    logs: &mut Vec<LogRecord>,
) -> Received {
    match BatchKind::of(&batch, &md) {
        BatchKind::ShmPointer => match resolvers.side {
            Some(side) => match side.resolve_with(&batch, &md, resolvers.limits) {
                Ok((batch, md)) => Received::Data(batch, md),
                Err(e) => Received::Failed(e),
            },
            None => Received::Failed(Error::protocol(
                "the server sent a shared-memory pointer, but this connection has no segment",
            )),
        },
        BatchKind::ExternalPointer => match resolvers.external {
            Some(external) => resolve_external(external, resolvers.limits, &batch, &md, logs),
            None => Received::Failed(Error::external(
                ExternalFailure::NotEnabled,
                "the server sent an external-storage pointer, but this client has no external storage configured (ConnectOptions::with_external)",
            )),
        },
        _ => match classify(&batch, &md, logs) {
            Some(Ok(())) => Received::Data(batch, md),
            Some(Err(e)) => Received::Failed(e),
            None => Received::Log,
        },
    }
}

/// Resolves an external pointer: the object's logs join `logs`, an EXCEPTION in it fails
/// the call, and its data batch is the answer.
fn resolve_external(
    external: &dyn ExternalLocation,
    limits: &Limits,
    pointer: &RecordBatch,
    md: &Metadata,
    logs: &mut Vec<LogRecord>,
) -> Received {
    let resolved = match wire::external::resolve(external, pointer, md, limits) {
        Ok(resolved) => resolved,
        Err(e) => return Received::Failed(e),
    };
    let stub = RecordBatch::new_empty(pointer.schema());
    for control in &resolved.controls {
        if let Some(Err(e)) = classify(&stub, control, logs) {
            return Received::Failed(e);
        }
    }
    Received::Data(resolved.batch, resolved.metadata)
}

/// Sorts a received batch that is not a pointer: `None` for a log (appended to `logs`),
/// `Some(Err)` for an EXCEPTION, `Some(Ok)` for data.
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
        BatchKind::Data
        | BatchKind::Continuation
        | BatchKind::ShmPointer
        | BatchKind::ExternalPointer => Some(Ok(())),
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
    use crate::wire::{REPEAT_HITS, repeat_tests};

    fn request_metadata(target: &Target, extra: &Metadata) -> Vec<(String, String)> {
        let mut encoder = crate::client::request::RequestEncoder::default();
        sent_metadata(&mut encoder, target, extra, &Metadata::new())
    }

    /// The metadata of the request `encoder` makes with these entries.
    fn sent_metadata(
        encoder: &mut crate::client::request::RequestEncoder,
        target: &Target,
        extra: &Metadata,
        per_call: &Metadata,
    ) -> Vec<(String, String)> {
        let params = RecordBatch::new_empty(std::sync::Arc::new(arrow_schema::Schema::empty()));
        let mut cursor = encoder
            .encode_with(target, "m", &params, extra, per_call, None)
            .unwrap()
            .head();
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
    fn per_call_entries_ride_on_the_cached_metadata_and_replace_the_callers() {
        let target = Target::new("P", Some("1.0"));
        let extra = Metadata::new()
            .with("app.a", "1")
            .with(keys::TRACEPARENT, "from-the-caller");
        let mut encoder = crate::client::request::RequestEncoder::default();
        let plain = sent_metadata(&mut encoder, &target, &extra, &Metadata::new());
        for traceparent in ["first", "second"] {
            let per_call = Metadata::new().with(keys::TRACEPARENT, traceparent);
            let sent = sent_metadata(&mut encoder, &target, &extra, &per_call);
            let mut expected = plain.clone();
            for (key, value) in &mut expected {
                if key == keys::TRACEPARENT {
                    *value = traceparent.to_owned();
                }
            }
            assert_eq!(sent, expected);
        }
        // The cache itself was left as it was.
        assert_eq!(
            sent_metadata(&mut encoder, &target, &extra, &Metadata::new()),
            plain
        );
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

    #[test]
    fn a_void_answer_repeating_the_last_is_read_from_the_connections_repeat() {
        let metadata = Metadata::new().with("vgi_rpc.request_id", "r1");
        let void = repeat_tests::stream(0, &metadata);
        let other = repeat_tests::stream(0, &other_metadata());
        let bytes = [&void[..], &void, &other, &void, &void[..void.len() - 1]].concat();
        let mut conn = Connection::new(
            Box::new(std::io::Cursor::new(bytes)),
            Box::new(std::io::sink()),
            Limits::default(),
        );
        let mut logs = Vec::new();
        let hits = REPEAT_HITS.get();
        for expected in [&metadata, &metadata, &other_metadata(), &metadata] {
            let (batch, md) = conn.read_single_result(&mut logs).expect("reads");
            assert!(batch.is_none());
            assert_eq!(&md, expected);
        }
        assert_eq!(
            REPEAT_HITS.get(),
            hits + 1,
            "only the second repeats the one before"
        );
        // A cut repeat is no hit: it is decoded, and found cut.
        assert!(matches!(
            conn.read_single_result(&mut logs),
            Err(Error::Disconnected(_))
        ));
        assert_eq!(REPEAT_HITS.get(), hits + 1);
        assert!(logs.is_empty());
    }

    fn other_metadata() -> Metadata {
        Metadata::new().with("k", "v")
    }

    #[test]
    fn a_client_reads_a_repeated_void_answer_from_its_repeat() {
        let mut conn = Connection::new(
            Box::new(std::io::empty()),
            Box::new(std::io::sink()),
            Limits::default(),
        );
        let mut metadata = Metadata::new();
        metadata.insert("vgi_rpc.request_id", "r1");
        let body = repeat_tests::stream(0, &metadata);
        let mut logs = Vec::new();
        let first = conn.read_unary_body(&body, &mut logs).expect("reads");
        let hits = REPEAT_HITS.get();
        let again = conn.read_unary_body(&body, &mut logs).expect("reads");
        assert_eq!(REPEAT_HITS.get(), hits + 1, "the second read is a hit");
        assert!(first.0.is_none() && again.0.is_none());
        assert_eq!((&again.1, &first.1), (&metadata, &metadata));
        // A log answer is read afresh each time: its log is delivered every time.
        let mut log = Metadata::new();
        log.insert(keys::LOG_LEVEL, "INFO");
        log.insert(keys::LOG_MESSAGE, "hello");
        let logged = repeat_tests::stream(0, &log);
        for round in 1..=2 {
            let _ = conn.read_unary_body(&logged, &mut logs);
            assert_eq!(logs.len(), round);
        }
        assert_eq!(REPEAT_HITS.get(), hits + 1);
    }
}
