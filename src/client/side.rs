//! The client's side channel (shared memory): offered once per connection, then used for
//! large requests, exchange inputs and answers.
//!
//! A link may bring a side channel (`ConnectOptions::with_shm` makes the transport create
//! a segment per connection). Before the connection's first call the client offers it
//! with `__transport_options__` (`vgi_rpc.transport.shm=true`) and keeps it only if the
//! worker answers `vgi_rpc.transport.shm=true`; an error answer (a worker that does not
//! know the method) or `false` drops it, and every batch travels inline. Once accepted,
//! every request names the segment, large request and exchange batches go through it,
//! and pointer answers are resolved zero-copy (`connection.rs`). The first successful
//! answer to a request that named it proves the worker holds its own mapping, and the
//! channel drops its public name (no leak if either side is then killed).

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::Schema;

use super::Target;
use super::connection::{Connection, SideState};
use super::request::RequestEncoder;
use crate::wire::{Metadata, keys};
use crate::{Error, Result};

impl Connection {
    /// Offers the link's side channel to the worker, once. A refusal is not an error.
    ///
    /// # Errors
    /// Transport failures while asking.
    pub(crate) fn negotiate_side(&mut self) -> Result<()> {
        let SideState::Offered(offered) = &mut self.side else {
            return Ok(());
        };
        let Some(channel) = offered.take() else {
            self.side = SideState::Off;
            return Ok(());
        };
        self.side = SideState::Off;
        let ask = Metadata::new().with(keys::TRANSPORT_SHM, "true");
        let mut encoder = RequestEncoder::new();
        let request = encoder.encode(
            &Target::new("", None),
            keys::TRANSPORT_OPTIONS_METHOD,
            &no_params(),
            &ask,
            None,
        )?;
        self.send_request(&request)?;
        let mut logs = Vec::new();
        match self.read_single_result(&mut logs) {
            Ok((_, answer)) if answer.get(keys::TRANSPORT_SHM) == Some("true") => {
                self.side = SideState::Accepted {
                    channel,
                    established: false,
                };
                Ok(())
            }
            Ok(_) | Err(Error::Rpc(_)) => {
                tracing::debug!("the worker declined shared memory; batches travel inline");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// A zero-row batch on the empty schema: the parameters of a method that takes none.
fn no_params() -> RecordBatch {
    let options = RecordBatchOptions::new().with_row_count(Some(0));
    RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options)
        .unwrap_or_else(|_| RecordBatch::new_empty(Arc::new(Schema::empty())))
}
