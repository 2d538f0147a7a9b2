//! What a peer may make a reader allocate: [`Limits`] on metadata and body sizes, the
//! validation level, and the shared [`MemoryBudget`] large bodies are charged to.

use std::sync::Arc;

use super::Validation;
use super::budget::MemoryBudget;

/// Default [`Limits::max_untrusted_body`]: 4 GiB, so a batch past the int32 offsets
/// (which the reference's conformance runner sends over sockets) still travels inline.
/// Lower it where peers are not trusted with that much: larger batches between machines
/// belong in external storage, and between processes of one machine in shared memory.
pub const DEFAULT_MAX_UNTRUSTED_BODY: u64 = 4 << 30;

/// Upper bounds on what a peer may make us allocate, and how much of what it sends is
/// checked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Largest flatbuffer metadata block accepted (bytes).
    pub max_metadata: usize,
    /// Largest message body accepted (bytes) from a trusted peer: the process that
    /// started this worker, or the worker a client started.
    pub max_body: u64,
    /// Largest message body accepted (bytes) from any other peer (a socket, HTTP):
    /// [`DEFAULT_MAX_UNTRUSTED_BODY`] unless set. The smaller of this and
    /// [`Limits::max_body`] applies.
    pub max_untrusted_body: u64,
    /// Set only through the `unsafe` [`Limits::with_validation`].
    validation: Validation,
    /// Shared by every reader these limits are cloned into.
    budget: Option<Arc<MemoryBudget>>,
}

impl PartialEq for Limits {
    fn eq(&self, other: &Self) -> bool {
        self.max_metadata == other.max_metadata
            && self.max_body == other.max_body
            && self.max_untrusted_body == other.max_untrusted_body
            && self.validation == other.validation
            && match (&self.budget, &other.budget) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (a, b) => a.is_none() && b.is_none(),
            }
    }
}

impl Limits {
    /// How much of each received batch is checked (see [`Validation`]).
    pub fn validation(&self) -> Validation {
        self.validation
    }

    /// Sets the validation level of received batches.
    ///
    /// # Safety
    /// A level below [`Validation::Full`] skips checks arrow relies on for memory safety
    /// (UTF-8, offsets, dictionary keys): the peer must be trusted to send well-formed
    /// Arrow data. The engines apply such a level only on channels to a process the caller
    /// controls (an `exec:` worker, a worker's stdio, shared memory) and use
    /// [`Validation::Full`] on sockets regardless.
    #[must_use]
    #[allow(unsafe_code)]
    pub unsafe fn with_validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// These limits as a channel gets them: where the peer is trusted (the process that
    /// started this worker, or the worker a client started) the configured validation
    /// level and no budget; elsewhere [`Validation::Full`], the smaller body limit and
    /// the budget.
    pub(crate) fn on_channel(mut self, trusted: bool) -> Self {
        self.validation = self.validation.on_channel(trusted);
        if trusted {
            self.budget = None;
        } else {
            self.max_body = self.max_body.min(self.max_untrusted_body);
        }
        self
    }
    /// Sets [`Limits::max_metadata`].
    #[must_use]
    pub fn with_max_metadata(mut self, bytes: usize) -> Self {
        self.max_metadata = bytes;
        self
    }

    /// Sets [`Limits::max_body`].
    #[must_use]
    pub fn with_max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sets [`Limits::max_untrusted_body`].
    #[must_use]
    pub fn with_max_untrusted_body(mut self, bytes: u64) -> Self {
        self.max_untrusted_body = bytes;
        self
    }

    /// Counts every large body read under these limits (and their clones) against
    /// `budget`; a body that does not fit is skipped and reported as
    /// [`Error::OverBudget`](crate::Error::OverBudget).
    #[must_use]
    pub fn with_budget(mut self, budget: Arc<MemoryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// These limits without their budget.
    pub(crate) fn without_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// The memory budget bodies are counted against, if any.
    pub fn budget(&self) -> Option<&Arc<MemoryBudget>> {
        self.budget.as_ref()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_metadata: 64 << 20,
            max_body: 16 << 30,
            max_untrusted_body: DEFAULT_MAX_UNTRUSTED_BODY,
            validation: Validation::Full,
            budget: None,
        }
    }
}
