//! The client-side call engine: write a request stream, read the response stream, and
//! drive stream sessions (ticks, exchanges, cancel, close) over any byte-stream
//! connection. Typed clients and tools build on [`Connection`].

mod decode_error;
mod session;
mod subprocess;

pub use decode_error::rpc_error_from_metadata;
pub use session::StreamSession;
pub use subprocess::Subprocess;

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

/// A unary call's answer: the result batch (`None` for void) and the server's logs.
#[derive(Debug)]
pub struct UnaryResult {
    /// The one-row result batch, or `None` for a void method.
    pub batch: Option<RecordBatch>,
    /// Log messages the server sent before the result.
    pub logs: Vec<LogRecord>,
}

/// A client connection over a byte stream (pipes or a socket).
pub struct Connection<R: Read, W: Write> {
    pub(crate) reader: BufReader<R>,
    pub(crate) writer: W,
    pub(crate) limits: Limits,
}

impl<R: Read, W: Write> Connection<R, W> {
    /// Wraps a reader/writer pair.
    pub fn new(reader: R, writer: W) -> Self {
        Connection {
            reader: BufReader::with_capacity(256 << 10, reader),
            writer,
            limits: Limits::default(),
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
        let batch = self.read_single_result(&mut logs)?;
        Ok(UnaryResult { batch, logs })
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
        let mut md = Metadata::new()
            .with(keys::METHOD, method)
            .with(keys::REQUEST_VERSION, keys::REQUEST_VERSION_VALUE)
            .with(keys::PROTOCOL, target.protocol.clone());
        if let Some(version) = &target.version {
            md.insert(keys::PROTOCOL_VERSION, version.clone());
        }
        let mut out = Vec::new();
        let mut enc = StreamEncoder::new();
        enc.schema(&mut out, &params.schema());
        enc.batch(&mut out, params, &md)?;
        enc.eos(&mut out);
        self.send(&out)
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) -> Result<()> {
        for chunk in bytes.chunks(1 << 30) {
            self.writer.write_all(chunk)?;
        }
        self.writer.flush()?;
        Ok(())
    }

    /// Reads one whole response stream holding at most one data batch.
    pub(crate) fn read_single_result(
        &mut self,
        logs: &mut Vec<LogRecord>,
    ) -> Result<Option<RecordBatch>> {
        let mut decoder =
            wire::read_stream_start(&mut self.reader, &self.limits).map_err(closed_mid_call)?;
        let mut result = None;
        let mut error = None;
        loop {
            match wire::read_stream_item(&mut self.reader, &mut decoder, &self.limits)? {
                StreamItem::End => break,
                StreamItem::Batch(batch, md) => match classify(&batch, &md, logs) {
                    Some(Ok(())) if result.is_none() => result = Some(batch),
                    Some(Ok(())) => {}
                    Some(Err(e)) => error = Some(e),
                    None => {}
                },
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        // A void result is a zero-row batch on the empty schema.
        Ok(result.filter(|b| b.num_columns() > 0))
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

pub(crate) fn closed_mid_call(e: Error) -> Error {
    match e {
        Error::Closed => Error::protocol("the server closed the connection before answering"),
        other => other,
    }
}
