//! The client side: [`Client`], the dynamic (schema-first) client that typed
//! `{Trait}Client`s and the CLI build on, and under it [`Connection`], the call engine
//! that writes a request stream, reads the response stream and drives stream sessions
//! (ticks, exchanges, cancel, close) over any byte-stream pair.
//!
//! ```no_run
//! use arrow_array::RecordBatch;
//! use vgi_rpc::client::{CallOptions, Client, Target};
//! # fn main() -> vgi_rpc::Result<()> {
//! let mut client = Client::connect("exec:my-worker --pipe")?;
//! let target = Target::new("MyService", None);
//! let params = RecordBatch::new_empty(std::sync::Arc::new(arrow_schema::Schema::empty()));
//! let answer = client.call(&target, "noop", &params, &CallOptions::default())?;
//! assert!(answer.batch.is_none());
//! # Ok(()) }
//! ```

mod address;
mod decode_error;
mod describe;
mod dynamic;
mod io;
mod options;
mod request;
mod session;
mod stream;
mod subprocess;
mod transport;
mod typed;

pub use address::{Address, split_command_line};
pub use decode_error::rpc_error_from_metadata;
pub use describe::{MethodDescription, MethodKind, ProtocolDescription, ServerDescription};
pub use dynamic::{BoxRead, BoxWrite, Client};
pub use options::{CallOptions, CancelHandle, ConnectOptions, StderrMode};
pub use request::RequestEncoder;
pub use session::StreamSession;
pub use stream::ClientStream;
pub use subprocess::Subprocess;
pub use typed::{ExchangeStream, ProducerStream};

use std::io::{BufReader, Read, Write};

use arrow_array::RecordBatch;

use crate::log::LogRecord;
use crate::wire::{self, BatchKind, Limits, Metadata, StreamEncoder, StreamItem, keys};
use crate::{Error, LogLevel, Result};

/// Where a call goes: protocol name and (optional) protocol version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Protocol wire name.
    pub protocol: String,
    /// Protocol version sent as `vgi_rpc.protocol_version`, when the protocol has one.
    pub version: Option<String>,
}

impl Target {
    /// A target protocol with an optional version.
    pub fn new(protocol: impl Into<String>, version: Option<&str>) -> Self {
        Target {
            protocol: protocol.into(),
            version: version.map(str::to_owned),
        }
    }
}

/// A unary call's answer: the result batch (`None` for void), its custom metadata and the
/// server's logs.
#[derive(Debug)]
pub struct UnaryResult {
    /// The one-row result batch, or `None` for a void method.
    pub batch: Option<RecordBatch>,
    /// The custom metadata of the result batch as received (empty for void).
    pub metadata: Metadata,
    /// Log messages the server sent before the result.
    pub logs: Vec<LogRecord>,
}

/// A callback that sees each server log message as it arrives.
pub type LogHandler = Box<dyn FnMut(&LogRecord) + Send>;

/// A client connection over a byte stream (pipes or a socket).
pub struct Connection<R: Read, W: Write> {
    pub(crate) reader: BufReader<R>,
    pub(crate) writer: W,
    pub(crate) limits: Limits,
    pub(crate) log_handler: Option<LogHandler>,
}

impl<R: Read, W: Write> Connection<R, W> {
    /// Wraps a reader/writer pair.
    pub fn new(reader: R, writer: W) -> Self {
        Connection {
            reader: BufReader::with_capacity(256 << 10, reader),
            writer,
            limits: Limits::default(),
            log_handler: None,
        }
    }

    /// Sets the callback that sees each server log message as it arrives (logs are still
    /// returned with results and by [`StreamSession::take_logs`], and are always
    /// forwarded to `tracing` under the target `vgi_rpc::remote`).
    pub fn set_log_handler(&mut self, handler: impl FnMut(&LogRecord) + Send + 'static) {
        self.log_handler = Some(Box::new(handler));
    }

    pub(crate) fn emit_log(&mut self, record: Option<&LogRecord>) {
        let Some(record) = record else { return };
        crate::log::forward_to_tracing(record);
        if let Some(handler) = self.log_handler.as_mut() {
            handler(record);
        }
    }

    /// Calls a unary method with a one-row `params` batch (zero-param methods: an empty
    /// batch).
    ///
    /// # Errors
    /// [`Error::Rpc`] for a remote error (the connection stays usable), transport and
    /// framing errors otherwise.
    pub fn call(
        &mut self,
        target: &Target,
        method: &str,
        params: &RecordBatch,
    ) -> Result<UnaryResult> {
        self.send_request(target, method, params)?;
        let mut logs = Vec::new();
        let (batch, metadata) = self.read_single_result(&mut logs)?.unzip();
        Ok(UnaryResult {
            batch,
            metadata: metadata.unwrap_or_default(),
            logs,
        })
    }

    /// Opens a producer or exchange stream. `has_header` must match the method's
    /// declaration (the header stream is read immediately).
    ///
    /// # Errors
    /// A remote error when the stream failed at init; transport errors.
    pub fn open_stream(
        &mut self,
        target: &Target,
        method: &str,
        params: &RecordBatch,
        has_header: bool,
    ) -> Result<StreamSession<'_, R, W>> {
        self.send_request(target, method, params)?;
        StreamSession::open(self, has_header)
    }

    pub(crate) fn send_request(
        &mut self,
        target: &Target,
        method: &str,
        params: &RecordBatch,
    ) -> Result<()> {
        let request = encode_request(target, method, params, &Metadata::new())?;
        self.send(&request)
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<()> {
        for chunk in bytes.chunks(1 << 30) {
            self.writer.write_all(chunk)?;
        }
        self.writer.flush()?;
        Ok(())
    }

    /// Reads one whole response stream holding at most one data batch; returns it with its
    /// custom metadata (`None` for a void result).
    pub(crate) fn read_single_result(
        &mut self,
        logs: &mut Vec<LogRecord>,
    ) -> Result<Option<(RecordBatch, Metadata)>> {
        let mut decoder =
            wire::read_stream_start(&mut self.reader, &self.limits).map_err(closed_mid_call)?;
        let mut result = None;
        let mut error = None;
        loop {
            match wire::read_stream_item(&mut self.reader, &mut decoder, &self.limits)? {
                StreamItem::End => break,
                StreamItem::Batch(batch, md) => match classify(&batch, &md, logs) {
                    Some(Ok(())) if result.is_none() => result = Some((batch, md)),
                    Some(Ok(())) => {}
                    Some(Err(e)) => error = Some(e),
                    None => self.emit_log(logs.last()),
                },
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        // A void result is a zero-row batch on the empty schema.
        Ok(result.filter(|(b, _)| b.num_columns() > 0))
    }
}

/// Encodes a whole request stream (schema, the params batch, EOS) into one buffer.
///
/// `extra` entries go first, verbatim and in order; the framework keys then replace a
/// same-named entry in place or are appended (the reference client's rule). An empty
/// `target.protocol` sends no `vgi_rpc.protocol` key.
///
/// # Errors
/// Fails when `params` cannot be encoded.
pub fn encode_request(
    target: &Target,
    method: &str,
    params: &RecordBatch,
    extra: &Metadata,
) -> Result<Vec<u8>> {
    let md = request::request_metadata(target, method, extra);
    let mut out = Vec::new();
    let mut enc = StreamEncoder::new();
    enc.schema(&mut out, &params.schema());
    enc.batch(&mut out, params, &md)?;
    enc.eos(&mut out);
    Ok(out)
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

pub(crate) fn closed_mid_call(e: Error) -> Error {
    match e {
        Error::Closed => Error::protocol("the server closed the connection before answering"),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request_metadata(target: &Target, extra: &Metadata) -> Vec<(String, String)> {
        let params = RecordBatch::new_empty(std::sync::Arc::new(arrow_schema::Schema::empty()));
        let bytes = encode_request(target, "m", &params, extra).unwrap();
        let mut cursor = &bytes[..];
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
