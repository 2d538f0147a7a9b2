//! The loopback HTTP/1.1 server behind [`LocalStorage`](super::LocalStorage): serves the
//! files under one directory to URLs it signed, with `HEAD`, single byte ranges
//! (`206`/`416`), keep-alive, and `Content-Encoding` told by the key's suffix
//! (`.zst`, `.gz`).
//!
//! It trusts nothing in a request: the request head is bounded (64 lines, 16 KiB), the
//! path must be a plain relative key (`[A-Za-z0-9._-]` segments, no `.` or `..`), and
//! the signature and expiry are checked before the file system is touched. One thread
//! accepts and each connection has its own thread, as the byte-stream transports do;
//! bodies go out with `io::copy`, which the standard library turns into `sendfile`.

use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::signed::{EXPIRES, SIGNATURE, UrlKey, unix_now};
use super::store::random_bytes;

/// A running server; stops accepting when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    key: UrlKey,
    stop: Arc<AtomicBool>,
    port: u16,
}

struct Shared {
    key: UrlKey,
    root: PathBuf,
}

/// Binds `127.0.0.1:0` and serves `root` on a background thread.
pub(crate) fn start(root: PathBuf) -> io::Result<Server> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    let key = UrlKey::new(format!("http://127.0.0.1:{port}"), random_bytes::<32>()?);
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        key: key.clone(),
        root,
    });
    let stopping = stop.clone();
    std::thread::Builder::new()
        .name("vgi-rpc-local-storage".into())
        .spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                let _ = std::thread::Builder::new()
                    .name("vgi-rpc-local-storage-conn".into())
                    .spawn(move || {
                        let _ = serve_connection(stream, &shared);
                    });
            }
        })?;
    Ok(Server { key, stop, port })
}

impl Server {
    pub(crate) fn key(&self) -> UrlKey {
        self.key.clone()
    }

    pub(crate) fn key_ref(&self) -> &UrlKey {
        &self.key
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One parsed request head.
struct Request {
    method: String,
    target: String,
    range: Option<String>,
    close: bool,
    has_body: bool,
}

const MAX_HEAD_LINES: usize = 64;
const MAX_HEAD_BYTES: u64 = 16 * 1024;

fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(request) = read_head(&mut reader)? {
        let keep = respond(&mut writer, &request, shared)?;
        if !keep || request.close {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

/// Reads a request head; `None` at a clean end of the connection.
fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut head = reader.take(MAX_HEAD_BYTES);
    let mut line = String::new();
    if head.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    let mut request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        range: None,
        close: false,
        has_body: false,
    };
    for _ in 0..MAX_HEAD_LINES {
        line.clear();
        if head.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let text = line.trim_end();
        if text.is_empty() {
            return Ok(Some(request));
        }
        let Some((name, value)) = text.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "range" => request.range = Some(value.to_owned()),
            "connection" => request.close = value.eq_ignore_ascii_case("close"),
            "content-length" => request.has_body = value != "0",
            "transfer-encoding" => request.has_body = true,
            _ => {}
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "request head too long",
    ))
}

/// Answers one request; `false` when the connection must close.
fn respond(out: &mut TcpStream, request: &Request, shared: &Shared) -> io::Result<bool> {
    let head_only = request.method == "HEAD";
    let status = |out: &mut TcpStream, code: &str, text: &str| status(out, code, text, head_only);
    if request.has_body {
        status(out, "400 Bad Request", "requests carry no body here")?;
        return Ok(false);
    }
    if !head_only && request.method != "GET" {
        status(out, "405 Method Not Allowed", "GET or HEAD")?;
        return Ok(true);
    }
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    let key = path.trim_start_matches('/');
    if !valid_key(key) {
        status(out, "400 Bad Request", "invalid object key")?;
        return Ok(true);
    }
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let expires = param(EXPIRES).and_then(|e| e.parse::<u64>().ok());
    let signed = match (expires, param(SIGNATURE)) {
        (Some(expires), Some(sig)) => shared.key.verify(key, expires, sig).then_some(expires),
        _ => None,
    };
    match signed {
        None => {
            status(out, "403 Forbidden", "signature does not match")?;
            return Ok(true);
        }
        Some(expires) if expires < unix_now() => {
            status(out, "403 Forbidden", "the URL has expired")?;
            return Ok(true);
        }
        Some(_) => {}
    }
    let Ok(mut file) = std::fs::File::open(shared.root.join(key)) else {
        status(out, "404 Not Found", "no such object")?;
        return Ok(true);
    };
    let size = file.metadata()?.len();
    let (code, start, len, content_range) = match request.range.as_deref().map(|r| range(r, size)) {
        None => ("200 OK", 0, size, None),
        Some(Some((start, end))) => (
            "206 Partial Content",
            start,
            end - start + 1,
            Some(format!("bytes {start}-{end}/{size}")),
        ),
        Some(None) => {
            write!(
                out,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\nContent-Length: 0\r\n\r\n"
            )?;
            return Ok(true);
        }
    };
    let mut head = format!(
        "HTTP/1.1 {code}\r\nContent-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\nContent-Length: {len}\r\n"
    );
    if let Some(encoding) = encoding(key) {
        head.push_str(&format!("Content-Encoding: {encoding}\r\n"));
    }
    if let Some(content_range) = content_range {
        head.push_str(&format!("Content-Range: {content_range}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if !head_only {
        file.seek(SeekFrom::Start(start))?;
        let sent = io::copy(&mut file.take(len), out)?;
        if sent != len {
            // The file shrank under us: the length promised cannot be kept.
            return Ok(false);
        }
    }
    Ok(true)
}

/// A short plain-text answer (its body left out for `HEAD`).
fn status(out: &mut TcpStream, code: &str, text: &str, head_only: bool) -> io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {code}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
        text.len(),
        if head_only { "" } else { text }
    )
}

/// A key is relative segments of `[A-Za-z0-9._-]`, none of them `.` or `..`.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

fn encoding(key: &str) -> Option<&'static str> {
    if key.ends_with(".zst") {
        Some("zstd")
    } else if key.ends_with(".gz") {
        Some("gzip")
    } else {
        None
    }
}

/// One `bytes=` range of an object of `size` bytes, as inclusive offsets; `None` when
/// it cannot be satisfied. Several ranges are not served (a reader asks for one).
fn range(spec: &str, size: u64) -> Option<(u64, u64)> {
    let spec = spec.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (start, end) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.saturating_sub(n), size - 1)
        }
        (first, "") => (first.parse().ok()?, size - 1),
        (first, last) => (first.parse().ok()?, last.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_keys() {
        assert_eq!(range("bytes=0-0", 10), Some((0, 0)));
        assert_eq!(range("bytes=2-", 10), Some((2, 9)));
        assert_eq!(range("bytes=-3", 10), Some((7, 9)));
        assert_eq!(range("bytes=5-100", 10), Some((5, 9)));
        assert_eq!(range("bytes=10-", 10), None);
        assert_eq!(range("bytes=3-2", 10), None);
        assert_eq!(range("bytes=0-1,3-4", 10), None);
        assert_eq!(range("items=0-1", 10), None);
        assert!(valid_key("vgi-rpc/0af.arrow.zst"));
        for bad in ["", "/a", "a//b", "../a", "a/./b", "a b", "a%2f"] {
            assert!(!valid_key(bad), "{bad}");
        }
    }
}
