//! The HTTP client end (in progress).
