//! A connection's side channel (shared memory) as the server engine uses it.
//!
//! The engine never opens a segment itself: a transport that can share memory with its
//! peers (pipes, Unix sockets) hands the connection a [`SideChannelHost`] (for shared
//! memory, `vgi_rpc::transport::shm::ShmHost`), and the engine asks it to attach the
//! segment a request names (`vgi_rpc.shm_segment_name`). The attachment is cached for
//! the connection, keyed by name, as the reference does. A call uses the channel when its
//! request named the segment or arrived as a pointer: its request and stream inputs may
//! then be pointers (resolved here), and its large outputs go out through the channel
//! (`Answer::batch`). Without a host, `__transport_options__` answers `shm=false` and a
//! pointer from the client is a protocol error.

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;

use super::route::Request;
use crate::wire::{BatchKind, Limits, Metadata, SideChannel, keys};
use crate::{Error, Result};

/// Attaches the side channel a client names on its requests: the transport's half of the
/// side-channel seam on the server (see the [`server`](crate::server) module docs).
pub trait SideChannelHost: Send + Sync + fmt::Debug {
    /// Attaches the channel called `name` (a shared-memory segment's name).
    ///
    /// # Errors
    /// The channel cannot be opened or is malformed; the connection then goes on
    /// without it (large answers inline).
    fn attach(&self, name: &str) -> Result<Arc<dyn SideChannel>>;
}

/// The side-channel state of one connection.
#[derive(Debug, Default)]
pub(crate) struct ConnSide {
    host: Option<Arc<dyn SideChannelHost>>,
    attached: Option<(String, Arc<dyn SideChannel>)>,
    /// Whether the current call routes its data through the channel.
    active: bool,
    /// The connection's limits: resolved batches are checked at their validation level.
    limits: Limits,
}

impl ConnSide {
    pub(crate) fn new(host: Option<Arc<dyn SideChannelHost>>, limits: Limits) -> Self {
        ConnSide {
            host,
            attached: None,
            active: false,
            limits,
        }
    }

    /// Whether this connection can use a side channel at all.
    pub(crate) fn supported(&self) -> bool {
        self.host.is_some()
    }

    /// The channel the current call uses, if any.
    pub(crate) fn channel(&self) -> Option<&dyn SideChannel> {
        if !self.active {
            return None;
        }
        self.attached.as_ref().map(|(_, c)| &**c)
    }

    /// Starts a call on `request` as read off the wire: attaches the segment it names,
    /// decides whether the call uses the channel, and resolves a pointer request in
    /// place. A pointer that cannot be resolved is left in the request as its fault, for
    /// routing to answer at the parameter stage.
    pub(crate) fn begin_call(&mut self, request: &mut Request) {
        self.active = false;
        let named = request.metadata.get(keys::SHM_SEGMENT_NAME);
        if let (Some(host), Some(name)) = (&self.host, named) {
            let cached = self.attached.as_ref().is_some_and(|(n, _)| n == name);
            if !cached {
                match host.attach(name) {
                    Ok(channel) => self.attached = Some((name.to_owned(), channel)),
                    Err(e) => {
                        tracing::warn!(segment = name, error = %e, "cannot attach the client's shm segment; answering inline");
                    }
                }
            }
        }
        let pointer = BatchKind::of(&request.batch, &request.metadata) == BatchKind::ShmPointer;
        self.active = (named.is_some() || pointer) && self.attached.is_some();
        if pointer {
            match self.resolve(&request.batch, &request.metadata) {
                Ok((batch, metadata)) => {
                    request.batch = batch;
                    request.metadata = metadata;
                }
                Err(e) => request.fault = Some(e),
            }
        }
    }

    /// Resolves a stream input: a pointer batch becomes the batch it names; anything
    /// else passes through.
    ///
    /// # Errors
    /// A pointer the call's channel cannot resolve, or a pointer without a channel.
    pub(crate) fn resolve_input(
        &self,
        batch: RecordBatch,
        metadata: Metadata,
    ) -> Result<(RecordBatch, Metadata)> {
        if BatchKind::of(&batch, &metadata) == BatchKind::ShmPointer {
            self.resolve(&batch, &metadata)
        } else {
            Ok((batch, metadata))
        }
    }

    fn resolve(
        &self,
        pointer: &RecordBatch,
        metadata: &Metadata,
    ) -> Result<(RecordBatch, Metadata)> {
        match self.channel() {
            Some(channel) => channel.resolve_with(pointer, metadata, &self.limits),
            None => Err(Error::protocol(
                "the client sent a shared-memory pointer, but no segment is attached to this call (name it with vgi_rpc.shm_segment_name on a transport that supports it)",
            )),
        }
    }
}
