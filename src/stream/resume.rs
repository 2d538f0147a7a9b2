//! Stream states that survive a move between workers.
//!
//! On a byte stream the server keeps a stream's state in memory for the life of the
//! connection. Over HTTP every turn is its own request and may land on any worker behind a
//! load balancer, so the state travels with the client inside a sealed continuation
//! token. A state type opts in by being [`Resumable`]: deriving serde's `Serialize` and
//! `Deserialize` is enough. A state that is not resumable still works over HTTP, held in
//! the memory of the worker that started it; only that worker can continue the stream.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// A stream state that can be saved into a continuation token and restored on any worker.
///
/// Every `Serialize + Deserialize` type is resumable (encoded as JSON inside the sealed,
/// compressed token). Implement the trait by hand for a state serde cannot describe, for
/// instance one holding an Arrow schema.
///
/// `#[vgi_rpc::service]` notices the implementation: a stream method whose state type is
/// `Resumable` continues on any worker holding the server's token key, with nothing else
/// to write. A hand-written [`Service`](crate::server::Service) overrides
/// [`ProducerState::save`](super::ProducerState::save) /
/// [`ExchangeState::save`](super::ExchangeState::save) and
/// [`Service::resume`](crate::server::Service::resume) instead.
///
/// # Example
/// ```
/// use serde::{Deserialize, Serialize};
///
/// /// Counts to `limit`; resumable because it derives serde.
/// #[derive(Serialize, Deserialize)]
/// struct Countdown {
///     left: i64,
/// }
///
/// let saved = vgi_rpc::stream::Resumable::save(&Countdown { left: 3 })?;
/// let back: Countdown = vgi_rpc::stream::Resumable::restore(&saved)?;
/// assert_eq!(back.left, 3);
/// # Ok::<(), vgi_rpc::Error>(())
/// ```
pub trait Resumable: Sized {
    /// The state as bytes.
    ///
    /// # Errors
    /// Fails when the state cannot be encoded; the turn then ends the stream with that
    /// error.
    fn save(&self) -> Result<Vec<u8>>;

    /// The state [`Resumable::save`] encoded.
    ///
    /// # Errors
    /// Fails when `saved` is not such an encoding.
    fn restore(saved: &[u8]) -> Result<Self>;
}

impl<T: Serialize + DeserializeOwned> Resumable for T {
    fn save(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self)
            .map_err(|e| Error::protocol(format!("cannot save stream state: {e}")))
    }

    fn restore(saved: &[u8]) -> Result<Self> {
        serde_json::from_slice(saved)
            .map_err(|e| Error::protocol(format!("cannot restore stream state: {e}")))
    }
}
