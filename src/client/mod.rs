//! Client-side call engine.
