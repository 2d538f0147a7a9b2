//! Where a client connects: the one address syntax, shared by `Client::connect`, typed
//! clients, the CLI and the client driver. Adding a transport adds one arm here.
//!
//! | Form | Meaning |
//! |---|---|
//! | `exec:<command line>` | spawn a worker and speak over its stdin/stdout |
//! | `unix:<path>` | connect to a Unix domain socket |
//! | `tcp://<host>:<port>` | connect over TCP (`[v6addr]:port` for IPv6 literals) |
//! | `http://<host>[:port][/prefix]` | call an HTTP server (`https://` with TLS); the path is the server's route prefix |
//!
//! The command line of `exec:` is split like a POSIX shell splits words (single quotes,
//! double quotes with `\"`/`\\` escapes, backslash escapes outside quotes) but no shell is
//! invoked: no globbing, variables or pipes.
//!
//! Shared memory is not an address but an option of `exec:` and `unix:` connections
//! (`ConnectOptions::with_shm(size)`, the CLI's `--shm SIZE`): the worker is reached the
//! same way and large batches travel through a segment beside the byte stream. `shm:` is
//! rejected with a message saying so.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::{Error, Result};

/// A parsed client address.
///
/// | Form | Meaning |
/// |---|---|
/// | `exec:<command line>` | spawn a worker and speak over its stdin/stdout |
/// | `unix:<path>` | connect to a Unix domain socket |
/// | `tcp://<host>:<port>` | connect over TCP (`[v6addr]:port` for IPv6 literals) |
/// | `http://<host>[:port][/prefix]` | call an HTTP server (`https://` with TLS) |
///
/// The command line of `exec:` is split like a POSIX shell splits words (quotes and
/// backslash escapes) but no shell is invoked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// `exec:<command line>`: the worker's argv (program first, never empty).
    Exec(Vec<String>),
    /// `unix:<path>`: a Unix domain socket path.
    Unix(PathBuf),
    /// `tcp://host:port`.
    Tcp(String, u16),
    /// `http://…` or `https://…`: the base URL, path (the route prefix) without a
    /// trailing slash, no query or fragment.
    Http(String),
}

impl Address {
    /// Parses an address string.
    ///
    /// # Errors
    /// [`Error::InvalidAddress`] naming what is wrong: an unknown scheme, an empty command
    /// or path, an unterminated quote, a missing or invalid port.
    pub fn parse(s: &str) -> Result<Address> {
        let s = s.trim();
        if let Some(cmd) = s.strip_prefix("exec:") {
            let argv = split_command_line(cmd)?;
            if argv.is_empty() {
                return Err(bad(
                    s,
                    "`exec:` needs a command, e.g. `exec:my-worker --pipe`",
                ));
            }
            return Ok(Address::Exec(argv));
        }
        if let Some(path) = s.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(bad(
                    s,
                    "`unix:` needs a socket path, e.g. `unix:/tmp/w.sock`",
                ));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("tcp://") {
            let (host, port) = split_host_port(s, rest.trim_end_matches('/'))?;
            return Ok(Address::Tcp(host, port));
        }
        if s.starts_with("shm:") {
            return Err(bad(
                s,
                "shared memory is a connection option, not an address: give an `exec:` or `unix:` address with `--shm SIZE` (CLI) or `ConnectOptions::with_shm(size)`",
            ));
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            return parse_http(s);
        }
        if s.starts_with("pipe:") {
            return Err(bad(
                s,
                "the in-process pipe transport is not available in this client yet",
            ));
        }
        Err(bad(
            s,
            "expected `exec:<command line>`, `unix:<path>`, `tcp://host:port` or `http://host:port`",
        ))
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(s: &str) -> Result<Address> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Exec(argv) => {
                f.write_str("exec:")?;
                for (i, arg) in argv.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write_shell_word(f, arg)?;
                }
                Ok(())
            }
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
            Address::Tcp(host, port) if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Address::Tcp(host, port) => write!(f, "tcp://{host}:{port}"),
            Address::Http(url) => f.write_str(url),
        }
    }
}

fn bad(address: &str, why: &str) -> Error {
    Error::InvalidAddress {
        address: address.to_owned(),
        reason: why.to_owned(),
    }
}

/// `http(s)://authority[/prefix]`: checks the authority and keeps the URL with the
/// prefix's trailing slashes removed.
fn parse_http(s: &str) -> Result<Address> {
    let (scheme, rest) = s.split_once("://").unwrap_or(("http", s));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.starts_with(':') {
        return Err(bad(s, "missing host, e.g. `http://127.0.0.1:8000`"));
    }
    if authority.contains('@') {
        return Err(bad(
            s,
            "credentials in the URL are not supported: send an `Authorization` header (ConnectOptions::with_http)",
        ));
    }
    if path.contains(['?', '#']) || authority.contains(['?', '#']) {
        return Err(bad(s, "an HTTP address takes no query or fragment"));
    }
    let host_end = authority.rfind(']').unwrap_or(0);
    if let Some((_, port)) = authority[host_end..].rsplit_once(':')
        && port.parse::<u16>().is_err()
    {
        return Err(bad(
            s,
            &format!("port {port:?} is not a number in 0..=65535"),
        ));
    }
    let path = path.trim_end_matches('/');
    Ok(Address::Http(format!("{scheme}://{authority}{path}")))
}

fn split_host_port(address: &str, rest: &str) -> Result<(String, u16)> {
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad(address, "unterminated `[` in an IPv6 host"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad(address, "missing `:port` after the IPv6 host"))?;
        (host, port)
    } else {
        rest.rsplit_once(':')
            .ok_or_else(|| bad(address, "missing `:port`, e.g. `tcp://127.0.0.1:9000`"))?
    };
    if host.is_empty() {
        return Err(bad(address, "missing host before `:port`"));
    }
    let port = port.parse::<u16>().map_err(|_| {
        bad(
            address,
            &format!("port {port:?} is not a number in 0..=65535"),
        )
    })?;
    Ok((host.to_owned(), port))
}

/// Splits a command line into words the way a POSIX shell would, without running one.
///
/// # Errors
/// An unterminated quote or a trailing backslash.
pub fn split_command_line(line: &str) -> Result<Vec<String>> {
    let err = |why: &str| Error::InvalidAddress {
        address: line.to_owned(),
        reason: format!("invalid command line: {why}"),
    };
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(err("unterminated single quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(err("unterminated double quote")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(err("unterminated double quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => return Err(err("trailing backslash")),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn write_shell_word(f: &mut fmt::Formatter<'_>, word: &str) -> fmt::Result {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        f.write_str(word)
    } else {
        write!(f, "'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exec_splits_like_a_shell() {
        let a = Address::parse(r#"exec:worker --name 'a b' "c \"d\"" e\ f"#).unwrap();
        assert_eq!(
            a,
            Address::Exec(vec![
                "worker".into(),
                "--name".into(),
                "a b".into(),
                "c \"d\"".into(),
                "e f".into()
            ])
        );
        assert_eq!(Address::parse(&a.to_string()).unwrap(), a);
        assert_eq!(
            Address::parse("exec:a ''").unwrap(),
            Address::Exec(vec!["a".into(), String::new()])
        );
    }

    #[test]
    fn unix_and_tcp() {
        assert_eq!(
            Address::parse("unix:/tmp/x.sock").unwrap(),
            Address::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            Address::parse("tcp://127.0.0.1:9000").unwrap(),
            Address::Tcp("127.0.0.1".into(), 9000)
        );
        let v6 = Address::parse("tcp://[::1]:80").unwrap();
        assert_eq!(v6, Address::Tcp("::1".into(), 80));
        assert_eq!(v6.to_string(), "tcp://[::1]:80");
    }

    #[test]
    fn http_keeps_the_prefix_without_trailing_slashes() {
        assert_eq!(
            Address::parse("http://127.0.0.1:8000").unwrap(),
            Address::Http("http://127.0.0.1:8000".into())
        );
        let a = Address::parse("https://[::1]:443/vgi/").unwrap();
        assert_eq!(a, Address::Http("https://[::1]:443/vgi".into()));
        assert_eq!(a.to_string(), "https://[::1]:443/vgi");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let msg = |s: &str| Address::parse(s).unwrap_err().to_string();
        assert!(msg("exec:").contains("needs a command"));
        assert!(msg("exec:a 'b").contains("unterminated single quote"));
        assert!(msg("exec:a \"b").contains("unterminated double quote"));
        assert!(msg("unix:").contains("socket path"));
        assert!(msg("tcp://host").contains("missing `:port`"));
        assert!(msg("tcp://h:99999").contains("not a number"));
        assert!(msg("tcp://:1").contains("missing host"));
        assert!(msg("http://").contains("missing host"));
        assert!(msg("http://h:x").contains("not a number"));
        assert!(msg("http://u:p@h").contains("Authorization"));
        assert!(msg("shm:64MiB").contains("--shm SIZE"));
        assert!(msg("ftp://x").contains("expected"));
    }
}
