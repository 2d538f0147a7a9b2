//! A producer or exchange stream as the engine runs it, one turn at a time.
//!
//! After the request: an optional header stream, then lockstep over one client input
//! stream and one server output stream. The output schema goes out only once the
//! client's input has begun (the client writes its first tick without waiting). Each
//! turn's logs and batch are flushed together.
//!
//! [`StreamRun`] never reads: the transport hands it each input batch. A byte-stream
//! connection feeds it from the socket until the input's EOS; a request/response
//! transport feeds it the batches of one request body and keeps the run between
//! requests. The run owns its state object (`Box<dyn ProducerState>` /
//! `Box<dyn ExchangeState>`), so continuing a stream across HTTP requests means keeping
//! the run in a server-side table keyed by the continuation token (pinned to the worker
//! that holds it); a state type that can serialise itself can later be resumed anywhere
//! through the same `turn` without changing this module.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::CallContext;
use super::answer::{Answer, Out, Sink, answer_error, empty, externalize, site};
use super::registry::ServerInner;
use super::service::MethodSpec;
use crate::log::LogRecord;
use crate::stream::coerce_batch;
use crate::stream::{ExchangeState, ProducerState, Turn};
use crate::wire::{Metadata, keys};
use crate::{Result, RpcError};

/// The state object behind a stream call.
pub(crate) enum State {
    Producer(Box<dyn ProducerState>),
    Exchange(Box<dyn ExchangeState>),
}

impl State {
    fn output_schema(&self) -> SchemaRef {
        match self {
            State::Producer(s) => s.output_schema(),
            State::Exchange(s) => s.output_schema(),
        }
    }

    fn on_cancel(&mut self) {
        // The protocol says cancel hooks' errors are swallowed.
        let _ = match self {
            State::Producer(s) => s.on_cancel(),
            State::Exchange(s) => s.on_cancel(),
        };
    }

    /// The state as bytes for a continuation token, if it is resumable.
    pub(crate) fn save(&self) -> Option<Result<Vec<u8>>> {
        match self {
            State::Producer(s) => s.save(),
            State::Exchange(s) => s.save(),
        }
    }

    /// Whether turns consume client input batches: an exchange with input columns. (A
    /// zero-column exchange is driven like a producer on request/response transports,
    /// as the reference does.)
    pub(crate) fn takes_input(&self) -> bool {
        match self {
            State::Exchange(s) => !s.input_schema().fields().is_empty(),
            State::Producer(_) => false,
        }
    }

    fn turn(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> Result<()> {
        match self {
            State::Producer(s) => s.produce(turn),
            State::Exchange(s) => {
                let input = coerce_batch(&input, &s.input_schema())?;
                s.exchange(input, turn)
            }
        }
    }
}

/// What the transport must do once the engine has answered the request.
pub(crate) enum Next<'a> {
    /// The call is over.
    Done,
    /// The call was answered with an error, but the client still sends the stream's
    /// input: consume it.
    DrainInput,
    /// A stream is open: feed it the client's input.
    Stream(Box<StreamRun<'a>>),
}

/// Whether a stream goes on after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Waiting for the next input batch.
    Continue,
    /// The output stream has ended (finished, failed or cancelled); the rest of the
    /// client's input is to be discarded.
    Over,
    /// The stream goes on in a later request: this answer ended with its continuation
    /// token, and the state is to be kept (or was saved into the token).
    Suspended,
}

/// How a request/response transport ends a turn that did not finish the stream: the
/// metadata carrying the continuation token (for the state as it is after the turn).
///
/// A producer's answer gets a zero-row batch carrying it after the turn's batch; an
/// exchange's output batch carries it itself.
pub(crate) trait Suspend {
    /// The continuation metadata for `state`.
    ///
    /// # Errors
    /// Fails when the state cannot be saved; the stream then ends with that error.
    fn continuation(&mut self, state: &State) -> Result<Metadata>;
}

/// An open stream call.
pub(crate) struct StreamRun<'a> {
    inner: &'a ServerInner,
    spec: &'a MethodSpec,
    ctx: CallContext,
    state: State,
    output_schema: SchemaRef,
    /// Logs from init not yet sent (no header stream carried them).
    init_logs: Vec<LogRecord>,
    output: Option<Answer>,
    /// Turns run so far.
    turns: u64,
}

impl<'a> StreamRun<'a> {
    /// Opens a stream: sends the header stream when the method declares one.
    pub(crate) fn open<S: Sink + ?Sized>(
        inner: &'a ServerInner,
        ctx: CallContext,
        spec: &'a MethodSpec,
        state: State,
        header: Option<RecordBatch>,
        out: &mut Out<'_, S>,
    ) -> Result<Next<'a>> {
        let mut init_logs = ctx.take_logs();
        if let Some(header_schema) = &spec.header {
            let site = site(inner, ctx.protocol(), ctx.method(), ctx.request_id());
            let Some(header) = header else {
                let err = RpcError::runtime_error(format!(
                    "{}() declared a header but returned none",
                    spec.name
                ));
                answer_error(inner, out, &empty(), &err, &site, &init_logs)?;
                return Ok(Next::DrainInput);
            };
            // Headers never travel through shared memory (the reference's clients never
            // resolve a shared-memory pointer in a header stream), but a large one goes
            // to external storage, alone: its logs stay inline.
            let side = out.side.take();
            let none = Metadata::new();
            let ids = (inner.server_id.as_str(), None);
            let pointer = match externalize(out, header_schema, &[], ids, &header, &none) {
                Some(Err(e)) => {
                    out.side = side;
                    answer_error(inner, out, &empty(), &e.to_rpc(), &site, &init_logs)?;
                    return Ok(Next::DrainInput);
                }
                Some(Ok(pointer)) => Some(pointer),
                None => None,
            };
            let mut answer = Answer::begin(out, header_schema);
            let sent = answer
                .logs(out, &init_logs, &inner.server_id, Some(ctx.request_id()))
                .and_then(|()| match &pointer {
                    Some(pointer) => answer.pointer(out, &header, pointer),
                    None => answer.batch(out, &header, &none),
                })
                .and_then(|()| answer.end(out));
            out.side = side;
            sent?;
            init_logs.clear();
        }
        let output_schema = state.output_schema();
        Ok(Next::Stream(Box::new(StreamRun {
            inner,
            spec,
            ctx,
            state,
            output_schema,
            init_logs,
            output: None,
            turns: 0,
        })))
    }

    /// A stream continued in a later request (HTTP): the state restored or taken back
    /// from where the previous request left it. No header: that went out at init.
    pub(crate) fn resume(
        inner: &'a ServerInner,
        ctx: CallContext,
        spec: &'a MethodSpec,
        state: State,
    ) -> Self {
        let output_schema = state.output_schema();
        StreamRun {
            inner,
            spec,
            init_logs: ctx.take_logs(),
            ctx,
            state,
            output_schema,
            output: None,
            turns: 0,
        }
    }

    /// Whether turns consume client input batches (see [`State::takes_input`]).
    pub(crate) fn takes_input(&self) -> bool {
        self.state.takes_input()
    }

    /// The stream's output schema.
    pub(crate) fn output_schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// Gives the state up (to be held for a later request).
    pub(crate) fn into_state(self) -> State {
        self.state
    }

    /// Ends the answer of an exchange's `/init`: the output stream carries only the
    /// continuation (no turn runs before the first input).
    pub(crate) fn suspend_idle<S: Sink + ?Sized>(
        &mut self,
        out: &mut Out<'_, S>,
        suspend: &mut dyn Suspend,
    ) -> Result<Flow> {
        let Some(mut answer) = self.output.take() else {
            return Err(crate::Error::protocol(
                "stream suspended before its output began",
            ));
        };
        match suspend.continuation(&self.state) {
            Ok(md) => {
                let stub = RecordBatch::new_empty(self.output_schema.clone());
                answer.batch(out, &stub, &md)?;
                answer.end(out)?;
                Ok(Flow::Suspended)
            }
            Err(e) => {
                let ctx = &self.ctx;
                let site = site(self.inner, ctx.protocol(), ctx.method(), ctx.request_id());
                answer.error(out, &e.to_rpc(), &site)?;
                answer.end(out)?;
                Ok(Flow::Over)
            }
        }
    }

    /// Starts the output stream (its schema and the logs from init, sent with the first
    /// turn): call once the client's input stream has begun.
    pub(crate) fn begin_output<S: Sink + ?Sized>(&mut self, out: &mut Out<'_, S>) -> Result<()> {
        let mut answer = Answer::begin(out, &self.output_schema);
        let logs = std::mem::take(&mut self.init_logs);
        let request_id = Some(self.ctx.request_id());
        answer.logs(out, &logs, &self.inner.server_id, request_id)?;
        self.output = Some(answer);
        Ok(())
    }

    /// Runs one turn on an input batch (a tick or an exchange input) and sends its logs
    /// and output, or the error that ends the stream.
    ///
    /// With `suspend` (a request/response transport) a turn that does not finish the
    /// stream ends the answer with the continuation instead of leaving it open.
    pub(crate) fn turn<S: Sink + ?Sized>(
        &mut self,
        batch: RecordBatch,
        mut metadata: Metadata,
        out: &mut Out<'_, S>,
        suspend: Option<&mut dyn Suspend>,
    ) -> Result<Flow> {
        let Some(mut answer) = self.output.take() else {
            return Err(crate::Error::protocol(
                "stream turn before its output began",
            ));
        };
        self.turns += 1;
        let _span =
            tracing::debug_span!(target: crate::wire::trace::TARGET, "turn", n = self.turns)
                .entered();
        if metadata.contains(keys::CANCEL) {
            out.meter.cancelled = true;
            self.state.on_cancel();
            answer.end(out)?;
            return Ok(Flow::Over);
        }
        if matches!(self.state, State::Exchange(_)) {
            out.meter.input(&batch);
        }
        strip_protocol_keys(&mut metadata);
        let mut turn = Turn::new(&metadata, &self.output_schema);
        let mut result = self.state.turn(batch, &mut turn);
        if result.is_ok() && turn.output.is_none() && !turn.finished {
            result = Err(RpcError::runtime_error(format!(
                "{}() turn produced no output batch",
                self.spec.name
            ))
            .into());
        }
        // A suspended turn's continuation is computed from the state after the turn.
        let continuation = match (&result, suspend) {
            (Ok(()), Some(suspend)) if !turn.finished => match suspend.continuation(&self.state) {
                Ok(md) => Some(md),
                Err(e) => {
                    result = Err(e);
                    None
                }
            },
            _ => None,
        };
        // An exchange's output batch carries the cursor; a producer's turn is followed by
        // a zero-row batch carrying it.
        let mut output = turn.output.take();
        let mut sentinel = None;
        if let Some(cursor) = continuation.clone() {
            match &mut output {
                Some((_, md)) if self.state.takes_input() => md.merge(cursor),
                _ => sentinel = Some(cursor),
            }
        }
        // The turn's logs and data batch may go to storage together (with an exchange's
        // cursor inside, as the reference writes it): the pointer stands for all of them.
        let externalized = match (&result, &output) {
            (Ok(()), Some((batch, md))) => {
                let ids = (self.inner.server_id.as_str(), None);
                externalize(out, &self.output_schema, &turn.logs, ids, batch, md)
            }
            _ => None,
        };
        let pointer = match externalized {
            Some(Ok(pointer)) => Some(pointer),
            Some(Err(e)) => {
                result = Err(e);
                None
            }
            None => None,
        };
        if pointer.is_none() {
            answer.logs(out, &turn.logs, &self.inner.server_id, None)?;
        }
        if let Err(e) = result {
            let ctx = &self.ctx;
            let site = site(self.inner, ctx.protocol(), ctx.method(), ctx.request_id());
            answer.error(out, &e.to_rpc(), &site)?;
            answer.end(out)?;
            return Ok(Flow::Over);
        }
        match (output, &pointer) {
            (Some((batch, _)), Some(pointer)) => answer.pointer(out, &batch, pointer)?,
            (Some((batch, md)), None) => answer.batch(out, &batch, &md)?,
            (None, _) => {}
        }
        if let Some(cursor) = sentinel {
            let stub = RecordBatch::new_empty(self.output_schema.clone());
            answer.batch(out, &stub, &cursor)?;
        }
        if continuation.is_some() {
            answer.end(out)?;
            return Ok(Flow::Suspended);
        }
        self.after_output(answer, out, turn.finished)
    }

    /// Ends a turn whose output is written: the stream's end, or a flush and the next
    /// turn.
    fn after_output<S: Sink + ?Sized>(
        &mut self,
        mut answer: Answer,
        out: &mut Out<'_, S>,
        finished: bool,
    ) -> Result<Flow> {
        if finished {
            answer.end(out)?;
            return Ok(Flow::Over);
        }
        answer.flush(out)?;
        self.output = Some(answer);
        Ok(Flow::Continue)
    }

    /// Ends the stream with `error` instead of running a turn (an input the transport
    /// could not deliver, such as an unresolvable shared-memory pointer).
    pub(crate) fn fail<S: Sink + ?Sized>(
        &mut self,
        error: &crate::Error,
        out: &mut Out<'_, S>,
    ) -> Result<Flow> {
        let Some(mut answer) = self.output.take() else {
            return Err(crate::Error::protocol(
                "stream turn before its output began",
            ));
        };
        let ctx = &self.ctx;
        let site = site(self.inner, ctx.protocol(), ctx.method(), ctx.request_id());
        answer.error(out, &error.to_rpc(), &site)?;
        answer.end(out)?;
        Ok(Flow::Over)
    }

    /// The client ended its input: ends the output stream.
    pub(crate) fn end<S: Sink + ?Sized>(mut self, out: &mut Out<'_, S>) -> Result<()> {
        match self.output.take() {
            Some(answer) => answer.end(out),
            None => Ok(()),
        }
    }
}

/// Removes the keys the protocol owns so application code sees only its own metadata.
fn strip_protocol_keys(md: &mut Metadata) {
    for key in [keys::CANCEL, keys::STREAM_STATE, keys::CALL_STATE] {
        md.remove(key);
    }
}
