//! The HTTP server end against hand-built requests: the reference's status codes and
//! bodies for every kind of bad request, stream continuation through sealed tokens (on
//! the worker that started a stream and on another sharing its key), the response cap,
//! a server that keeps serving others while a request misbehaves, and sticky sessions
//! (our client against our worker).
//!
//! Requests are written as raw HTTP/1.1 over a TCP socket, so a test can lie about a
//! length or stall mid-body; answers are parsed just as far as the assertions need.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adversarial;
mod auth;
mod nginx;
mod raw;
mod sticky;
mod streams;
