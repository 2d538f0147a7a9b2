//! How much of a received batch is checked before it is handed out.
//!
//! Arrow's decoder, by default, checks everything a reader relies on: buffer sizes, offsets
//! (in bounds and monotonic), UTF-8 of strings, dictionary keys, nested lengths. That is
//! [`Validation::Full`], the default everywhere and the only level used for a peer that is
//! not trusted. On the producer path it is a large share of a client's CPU (about 30 % in
//! an earlier profile), so between trusted processes a cheaper level may be chosen, as the
//! reference allows (`vgi_rpc.utils.IpcValidation`: `none`, `standard`, `full`).
//!
//! Arrow offers no *safe* way to skip those checks: its skip is an `unsafe` promise that
//! the data is valid, and a malformed string or offset read unchecked is undefined
//! behaviour. So the cheaper levels are set only through `unsafe` setters (the caller
//! vouches for the peer), and the engines honour them only on channels to a trusted
//! process: an `exec:` worker the client spawned (the client side), the stdio of a worker
//! started by its client (the server side), and shared memory with such a process. On a
//! socket, which anyone who can reach it may connect to, the level is `Full` regardless.

use std::fmt;
use std::str::FromStr;

use arrow_array::RecordBatch;
use arrow_data::ArrayData;

use crate::{Error, Result};

/// A validation level for received batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Validation {
    /// Everything arrow checks: buffer sizes, offsets, UTF-8, dictionary keys, children.
    #[default]
    Full,
    /// Structure only: every buffer is large enough for the declared lengths (arrow's
    /// `ArrayData::validate`, recursively), but string contents, offset order and
    /// dictionary keys are not checked.
    Standard,
    /// Nothing beyond what framing requires.
    None,
}

impl Validation {
    /// The reference's spelling: `full`, `standard`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Validation::Full => "full",
            Validation::Standard => "standard",
            Validation::None => "none",
        }
    }

    /// The level a channel gets: `self` where the peer is trusted, else [`Validation::Full`].
    pub(crate) fn on_channel(self, trusted: bool) -> Validation {
        if trusted || self == Validation::Full {
            return self;
        }
        tracing::warn!(
            target: "vgi_rpc::wire",
            requested = self.as_str(),
            "validation level ignored on a connection to an untrusted peer; using full"
        );
        Validation::Full
    }

    /// Checks a batch decoded without arrow's checks, as far as this level asks.
    pub(crate) fn check_unvalidated(self, batch: &RecordBatch) -> Result<()> {
        if self != Validation::Standard {
            return Ok(());
        }
        for column in batch.columns() {
            validate_layout(&column.to_data())?;
        }
        Ok(())
    }
}

fn validate_layout(data: &ArrayData) -> Result<()> {
    data.validate()
        .map_err(|e| Error::InvalidMessage(format!("invalid record batch: {e}")))?;
    data.child_data().iter().try_for_each(validate_layout)
}

impl fmt::Display for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Validation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Validation::Full),
            "standard" => Ok(Validation::Standard),
            "none" => Ok(Validation::None),
            other => Err(Error::type_error(format!(
                "unknown validation level {other:?}: expected full, standard or none"
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, unsafe_code)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};

    use super::*;
    use crate::wire::{Limits, StreamItem, encode_stream, read_stream_item, read_stream_start};

    /// A one-column utf8 stream `["ab", "cd"]` with `patch` applied to its bytes.
    fn stream(patch: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let column: ArrayRef = Arc::new(StringArray::from(vec!["ab", "cd"]));
        let batch = RecordBatch::try_from_iter([("s", column)]).unwrap();
        let mut bytes = encode_stream(&batch.schema(), &[batch]).unwrap();
        patch(&mut bytes);
        bytes
    }

    fn replace(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
        bytes[at..at + to.len()].copy_from_slice(to);
    }

    /// Invalid UTF-8 in the values buffer.
    fn bad_utf8() -> Vec<u8> {
        stream(|b| replace(b, b"abcd", &[0xff, b'b', b'c', b'd']))
    }

    /// The last offset points far past the values buffer.
    fn bad_offsets() -> Vec<u8> {
        let offsets = [0i32, 2, 4].map(i32::to_le_bytes).concat();
        let forged = [0i32, 2, 4096].map(i32::to_le_bytes).concat();
        stream(|b| replace(b, &offsets, &forged))
    }

    fn decode(bytes: &[u8], level: Validation) -> crate::Result<RecordBatch> {
        // SAFETY (test): the unvalidated batches below are only inspected through their
        // raw buffers, never through accessors that assume valid data.
        let limits = unsafe { Limits::default().with_validation(level) };
        let mut cursor = bytes;
        let mut decoder = read_stream_start(&mut cursor, &limits)?;
        match read_stream_item(&mut cursor, &mut decoder, &limits)? {
            StreamItem::Batch(batch, _) => Ok(batch),
            StreamItem::End => panic!("no batch"),
        }
    }

    #[test]
    fn full_rejects_bad_utf8_and_bad_offsets_with_a_typed_error() {
        for bytes in [bad_utf8(), bad_offsets()] {
            let err = decode(&bytes, Validation::Full).unwrap_err();
            assert!(matches!(err, Error::InvalidMessage(_)), "{err:?}");
        }
        assert_eq!(
            decode(&stream(|_| {}), Validation::Full)
                .unwrap()
                .num_rows(),
            2
        );
    }

    #[test]
    fn standard_checks_structure_not_contents() {
        // Offsets past the values buffer break the layout: caught.
        let err = decode(&bad_offsets(), Validation::Standard).unwrap_err();
        assert!(matches!(err, Error::InvalidMessage(_)), "{err:?}");
        // String contents are not checked: the batch comes back, its bytes as sent.
        let batch = decode(&bad_utf8(), Validation::Standard).unwrap();
        let data = batch.column(0).to_data();
        assert_eq!(
            &data.buffers()[1].as_slice()[..4],
            &[0xff, b'b', b'c', b'd']
        );
    }

    #[test]
    fn none_hands_the_batch_out_unchecked_without_panicking() {
        for bytes in [bad_utf8(), bad_offsets()] {
            let batch = decode(&bytes, Validation::None).unwrap();
            assert_eq!(batch.num_rows(), 2);
            assert_eq!(batch.column(0).len(), 2);
        }
    }

    #[test]
    fn cheaper_levels_apply_only_to_trusted_channels() {
        let none = unsafe { Limits::default().with_validation(Validation::None) };
        assert_eq!(none.clone().on_channel(true).validation(), Validation::None);
        assert_eq!(none.on_channel(false).validation(), Validation::Full);
        assert_eq!(
            "standard".parse::<Validation>().unwrap(),
            Validation::Standard
        );
        assert!("partial".parse::<Validation>().is_err());
    }
}
