//! Lending to a Unix stream socket: `vmsplice` into a private pipe, then `splice` from
//! it into the socket.
//!
//! Since Linux 6.5 a `splice` into a Unix socket moves the pipe's page references into
//! the socket's buffers (`MSG_SPLICE_PAGES`) instead of copying, so the peer's read is
//! the only copy. A C producer of 3 MB batches on one core, a request per batch, spent
//! 460.9 µs a batch that way against 591.6 µs with `write` (558–726 against 657–880 µs
//! at the 25th percentile in a noisier run).
//!
//! A socket cannot say how far the peer has read, only how much of what this end sent
//! is still queued for it (`SIOCOUTQ`): so [`SocketLender`] releases its lent buffers
//! all at once, when that is zero. In a lockstep exchange it is, before every send (the
//! peer read the whole answer before it asked again). A connection that ends with lent
//! bytes still queued (the peer stopped reading but keeps its end open) hands them to a
//! [`Graveyard`] with its socket shut down, and they are freed once the peer's end is
//! gone (its queue with it): never while the peer could still read them, and never
//! forgotten for good.
//!
//! A socket that lends also asks for a send buffer that holds a whole batch of a few MB
//! ([`LENDING_SOCKET_BUFFER`]), so that the sender queues it at once instead of waiting
//! for the reader every 208 KiB.

use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use arrow_buffer::Buffer;

use super::Lent;
use crate::transport::direct::Direct;
use crate::wire::Splice;

/// The private pipe's size asked for (the default user maximum): each `splice` moves up
/// to this much.
const PIPE_SIZE: usize = 1 << 20;

/// The send buffer a Unix socket that lends asks for (`SO_SNDBUF`; Linux doubles it for
/// its own bookkeeping and caps it at `net.core.wmem_max`), set on its first large body.
///
/// With the default (`net.core.wmem_default`, 208 KiB) a batch of a few MB reaches the
/// reader in pieces of that size, the sender waiting for the reader between any two;
/// on one core every wait is a switch from one process to the other and back. With
/// room for a whole batch the sender queues it at once — the lent pages are referenced,
/// not copied, and stay ours until read (`SIOCOUTQ`) — and the reader takes it in a few
/// reads. A producer of 3 MB batches over a Unix socket, client and worker on one core,
/// 8 alternating runs of 1000 batches: 0.586–0.694 s (median 0.654) against
/// 0.688–0.999 s (0.797) with the default. Bytes that are written rather than lent
/// (small parts, a refusing kernel) may then hold up to twice this much of the kernel's
/// memory while the peer does not read (about what a lent batch it has not read holds
/// of ours anyway).
pub const LENDING_SOCKET_BUFFER: usize = 4 << 20;

/// Lends body parts to the Unix stream socket `socket` (see the module docs).
pub(super) struct SocketLender {
    socket: OwnedFd,
    /// The private pipe, made on the first lend (most connections never send a large
    /// body, and it costs two descriptors); empty between calls.
    pipe: Option<Private>,
    /// The kernel refused to lend: parts are sent as copies from then on.
    refused: bool,
    /// Lent buffers, released when nothing sent is still queued for the peer.
    lent: Vec<Buffer>,
}

impl SocketLender {
    /// A lender for `fd` when it is a connected Unix stream socket on Linux and the
    /// process ignores `SIGPIPE`.
    pub(super) fn for_fd(fd: BorrowedFd<'_>) -> Option<Self> {
        if !cfg!(any(target_os = "linux", target_os = "android")) {
            return None;
        }
        let unix =
            rustix::net::sockopt::socket_domain(fd).ok()? == rustix::net::AddressFamily::UNIX;
        let stream = rustix::net::sockopt::socket_type(fd).ok()? == rustix::net::SocketType::STREAM;
        if !(unix && stream && sigpipe_ignored()) {
            return None;
        }
        GRAVEYARD.sweep();
        Some(SocketLender {
            socket: fd.try_clone_to_owned().ok()?,
            pipe: None,
            refused: false,
            lent: Vec::new(),
        })
    }
}

impl Splice for SocketLender {
    fn lend(&mut self, part: &Buffer, written: u64) -> std::io::Result<()> {
        self.settle(written);
        let (socket, pipe) = (self.socket.as_fd(), &mut self.pipe);
        let splice = |rest: &mut &[u8]| splice(socket, pipe, rest);
        if super::send_part(socket, true, part, &mut self.refused, splice)? {
            self.lent.push(part.clone());
        }
        Ok(())
    }

    fn settle(&mut self, _written: u64) {
        if !self.lent.is_empty() && queued(self.socket.as_fd()).is_ok_and(|q| q == 0) {
            self.lent.clear();
        }
    }
}

impl Drop for SocketLender {
    fn drop(&mut self) {
        if !self.lent.is_empty() && !queued(self.socket.as_fd()).is_ok_and(|q| q == 0) {
            GRAVEYARD.bury(&self.socket, std::mem::take(&mut self.lent));
        }
        GRAVEYARD.sweep();
    }
}

/// Lends `bytes` into `socket` through `pipe` (made on first use, when the socket's
/// send buffer is raised too), pipe-sized piece by piece.
fn splice(
    socket: BorrowedFd<'_>,
    pipe: &mut Option<Private>,
    bytes: &mut &[u8],
) -> std::io::Result<Lent> {
    let pipe = match pipe {
        Some(made) => made,
        None => {
            let Some(made) = Private::new() else {
                return Ok(Lent::Refused);
            };
            raise_send_buffer(socket);
            pipe.insert(made)
        }
    };
    while !bytes.is_empty() {
        let piece = &bytes[..bytes.len().min(pipe.capacity)];
        #[allow(unsafe_code)]
        // SAFETY: `pipe.write` is the write end of our own pipe; the lender keeps the
        // buffer in `lent` until nothing sent is queued for the peer.
        let Some(n) = (unsafe { super::vmsplice_once(pipe.write.as_fd(), piece) })? else {
            return Ok(Lent::Refused);
        };
        pipe.drain_into(socket, n)?;
        *bytes = &bytes[n..];
    }
    Ok(Lent::Whole)
}

/// Asks for [`LENDING_SOCKET_BUFFER`] as `socket`'s send buffer unless it is larger
/// already (best effort: a socket keeps the buffer it has when the kernel refuses).
fn raise_send_buffer(socket: BorrowedFd<'_>) {
    use rustix::net::sockopt::{set_socket_send_buffer_size, socket_send_buffer_size};
    // The size read back is the doubled one the kernel keeps.
    if socket_send_buffer_size(socket).is_ok_and(|now| now < 2 * LENDING_SOCKET_BUFFER) {
        let _ = set_socket_send_buffer_size(socket, LENDING_SOCKET_BUFFER);
    }
}

/// A connection's own pipe, between `vmsplice` and `splice`.
struct Private {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes it holds.
    capacity: usize,
}

impl Private {
    fn new() -> Option<Self> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok()?;
        let capacity = rustix::pipe::fcntl_setpipe_size(&write, PIPE_SIZE)
            .or_else(|_| rustix::pipe::fcntl_getpipe_size(&write))
            .ok()?;
        Some(Private {
            read,
            write,
            capacity,
        })
    }

    /// Moves the `n` bytes the pipe holds into `socket`.
    fn drain_into(&self, socket: BorrowedFd<'_>, mut n: usize) -> std::io::Result<()> {
        use rustix::io::Errno;
        use rustix::pipe::{SpliceFlags, splice};
        while n > 0 {
            match splice(&self.read, None, socket, None, n, SpliceFlags::MOVE) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(moved) => n -= moved,
                Err(Errno::INTR) => {}
                Err(Errno::INVAL | Errno::OPNOTSUPP | Errno::NOSYS) => {
                    return self.copy_out(socket, n);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Sends the `n` bytes left in the pipe to `socket` as a copy (a kernel that cannot
    /// splice into it).
    fn copy_out(&self, socket: BorrowedFd<'_>, n: usize) -> std::io::Result<()> {
        let mut held = vec![0u8; n];
        let mut at = 0;
        while at < n {
            match rustix::io::read(&self.read, &mut held[at..]) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(got) => at += got,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Direct::socket(socket).write_all(&held)
    }
}

/// `SIOCOUTQ`: bytes of `socket`'s sending that the peer has not read yet.
fn queued(socket: BorrowedFd<'_>) -> std::io::Result<u64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::ioctl::{Getter, Opcode, ioctl};
        #[allow(unsafe_code)]
        // SAFETY: `TIOCOUTQ` (= `SIOCOUTQ`) writes an `int`.
        let n = unsafe {
            ioctl(
                socket,
                Getter::<{ libc::TIOCOUTQ as Opcode }, libc::c_int>::new(),
            )
        }?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = socket;
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

/// Whether this process ignores `SIGPIPE` (asked each time: a host may change it).
fn sigpipe_ignored() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: `sigaction` with a null new action only reads the current one into `old`,
    // a zeroed plain C struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &raw mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Lent buffers of connections that ended while the peer still held them queued.
struct Graveyard(Mutex<Vec<(OwnedFd, Vec<Buffer>)>>);

static GRAVEYARD: Graveyard = Graveyard(Mutex::new(Vec::new()));

impl Graveyard {
    /// Keeps `lent` until nothing `socket` sent is queued for its peer; the socket is
    /// shut down, so the peer still sees the connection end.
    fn bury(&self, socket: &OwnedFd, lent: Vec<Buffer>) {
        let Ok(socket) = socket.try_clone() else {
            // Without a handle to ask, never release them.
            std::mem::forget(lent);
            return;
        };
        let _ = rustix::net::shutdown(&socket, rustix::net::Shutdown::Both);
        tracing::debug!(
            buffers = lent.len(),
            "a connection ended with lent bytes unread; holding them until its peer lets go"
        );
        if let Ok(mut graves) = self.0.lock() {
            graves.push((socket, lent));
        } else {
            std::mem::forget(lent);
        }
    }

    /// Frees what no peer can read any more.
    fn sweep(&self) {
        let Ok(mut graves) = self.0.lock() else {
            return;
        };
        graves.retain(|(socket, _)| !queued(socket.as_fd()).is_ok_and(|q| q == 0));
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::transport::lend::LENT;

    #[test]
    fn lent_bytes_arrive_whole_in_order_and_stay_held_until_read() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut lender = SocketLender::for_fd(a.as_fd()).expect("a unix stream socket");
        assert!(lender.pipe.is_none(), "no descriptors spent before a lend");
        let send_buffer = || rustix::net::sockopt::socket_send_buffer_size(&a).unwrap();
        let default = send_buffer();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let part = Buffer::from_vec(data.clone());
        let before = LENT.load(Ordering::Relaxed);
        let reading = std::thread::spawn(move || {
            let mut got = vec![0u8; 3_000_000 + 3];
            b.read_exact(&mut got).unwrap();
            (got, b)
        });
        (&a).write_all(b"hd").unwrap();
        lender.lend(&part, 2).unwrap();
        assert!(lender.pipe.is_some());
        // As large as the kernel allows (it doubles what is asked, up to twice
        // `net.core.wmem_max`), never smaller than before.
        let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
            .map_or(0, |s| s.trim().parse().unwrap());
        let expected = (2 * LENDING_SOCKET_BUFFER.min(wmem_max)).max(default);
        assert_eq!(
            send_buffer(),
            expected,
            "the first lend raised the send buffer"
        );
        (&a).write_all(b"!").unwrap();
        assert!(
            LENT.load(Ordering::Relaxed) >= before + 3_000_000,
            "went by splice"
        );
        drop(part);
        let (got, _b) = reading.join().unwrap();
        assert_eq!(&got[..2], b"hd");
        assert_eq!(&got[2..3_000_002], &data[..]);
        assert_eq!(got[3_000_002], b'!');
        lender.settle(3_000_003);
        assert!(lender.lent.is_empty(), "released once nothing is queued");
    }

    #[test]
    fn a_buffer_the_peer_has_not_read_is_held_and_buried_not_freed() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut lender = SocketLender::for_fd(a.as_fd()).unwrap();
        // Small enough to fit the socket's buffer without a reader.
        let part = Buffer::from_vec(vec![3u8; 100_000]);
        lender.lend(&part, 0).unwrap();
        lender.settle(100_000);
        assert_eq!(lender.lent.len(), 1, "queued for the peer, so held");
        let weak = part.clone();
        drop(part);
        drop(lender);
        drop(a);
        let buried = |w: &Buffer| {
            GRAVEYARD
                .0
                .lock()
                .unwrap()
                .iter()
                .any(|(_, bufs)| bufs.iter().any(|x| x.as_ptr() == w.as_ptr()))
        };
        assert!(
            buried(&weak),
            "held past the connection while the peer can read"
        );
        let mut got = vec![0u8; 100_000];
        b.read_exact(&mut got).unwrap();
        assert_eq!(got, vec![3u8; 100_000]);
        let mut end = [0u8; 1];
        assert_eq!(
            b.read(&mut end).unwrap(),
            0,
            "the peer sees the connection end"
        );
        GRAVEYARD.sweep();
        assert!(!buried(&weak), "freed once read");
    }

    #[test]
    fn only_unix_stream_sockets_get_a_socket_lender() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        assert!(SocketLender::for_fd(r.as_fd()).is_none());
        assert!(SocketLender::for_fd(w.as_fd()).is_none());
        let (d, _e) = std::os::unix::net::UnixDatagram::pair().unwrap();
        assert!(SocketLender::for_fd(d.as_fd()).is_none());
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(SocketLender::for_fd(tcp.as_fd()).is_none());
    }

    #[test]
    fn where_the_kernel_refuses_the_bytes_are_sent_as_copies() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut lender = SocketLender::for_fd(a.as_fd()).unwrap();
        lender.refused = true;
        let part = Buffer::from_vec(vec![9u8; 100_000]);
        lender.lend(&part, 0).unwrap();
        assert!(lender.lent.is_empty(), "nothing lent, nothing held");
        let mut got = vec![0u8; 100_000];
        b.read_exact(&mut got).unwrap();
        assert_eq!(got, vec![9u8; 100_000]);
    }
}
