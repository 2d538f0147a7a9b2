//! Physical baselines, client side: 1-byte ping-pong and bulk bytes against
//! `vgi-rpc-bench raw-server` over the same transport, and memcpy of the same bytes.

use std::io::{Read, Write};

use crate::transport::RawConnection;
use crate::worker::{CMD_BULK, CMD_BULK_LENT, CMD_PING};

/// Size of the client's read buffer in bulk transfers (as large as a batch read).
pub const READ_CHUNK: usize = 4 << 20;

/// The baseline protocol over a raw connection to `vgi-rpc-bench raw-server`.
pub trait Baseline {
    /// One 1-byte round trip.
    ///
    /// # Errors
    /// I/O errors.
    fn ping(&mut self) -> std::io::Result<()>;

    /// Asks for `n` bytes and reads them all into `buf` chunks; returns `n`.
    ///
    /// # Errors
    /// I/O errors.
    fn bulk(&mut self, n: u64, buf: &mut [u8]) -> std::io::Result<u64>;

    /// As [`Baseline::bulk`] for `n` no larger than `buf`, but the bytes land one after
    /// the other in `buf`, whole, as a received batch must (`bulk` reads every chunk into
    /// the start of `buf`, a window the cache keeps hot).
    ///
    /// # Errors
    /// I/O errors.
    fn bulk_landed(&mut self, n: u64, buf: &mut [u8]) -> std::io::Result<u64>;

    /// [`Baseline::bulk`] from a raw server that lends its bytes to a pipe (`vmsplice`)
    /// instead of writing them, where it can (elsewhere it writes them).
    ///
    /// # Errors
    /// I/O errors.
    fn bulk_lent(&mut self, n: u64, buf: &mut [u8]) -> std::io::Result<u64>;
}

impl Baseline for RawConnection {
    fn ping(&mut self) -> std::io::Result<()> {
        let mut b = [CMD_PING];
        self.writer.write_all(&b)?;
        self.writer.flush()?;
        self.reader.read_exact(&mut b)
    }

    fn bulk(&mut self, n: u64, buf: &mut [u8]) -> std::io::Result<u64> {
        ask_bulk(self, CMD_BULK, n)?;
        read_window(self, n, buf)
    }

    fn bulk_landed(&mut self, n: u64, buf: &mut [u8]) -> std::io::Result<u64> {
        ask_bulk(self, CMD_BULK, n)?;
        read_whole(self, n, buf)
    }

    fn bulk_lent(&mut self, n: u64, buf: &mut [u8]) -> std::io::Result<u64> {
        ask_bulk(self, CMD_BULK_LENT, n)?;
        read_window(self, n, buf)
    }
}

/// Reads `n` bytes chunk by chunk into the start of `buf` (a window the cache keeps hot).
fn read_window(conn: &mut RawConnection, n: u64, buf: &mut [u8]) -> std::io::Result<u64> {
    let mut left = n as usize;
    while left > 0 {
        let take = left.min(buf.len());
        let got = conn.reader.read(&mut buf[..take])?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        left -= got;
    }
    Ok(n)
}

/// Reads `n` bytes (no more than `buf` holds) one after the other into `buf`.
fn read_whole(conn: &mut RawConnection, n: u64, buf: &mut [u8]) -> std::io::Result<u64> {
    let len = usize::try_from(n).map_err(std::io::Error::other)?;
    let room = buf.len();
    let landing = buf.get_mut(..len).ok_or_else(|| {
        std::io::Error::other(format!("{n} bytes do not fit a {room} byte buffer"))
    })?;
    conn.reader.read_exact(landing)?;
    Ok(n)
}

/// Asks the raw server for `n` bytes with `command`.
fn ask_bulk(conn: &mut RawConnection, command: u8, n: u64) -> std::io::Result<()> {
    let mut req = [0u8; 9];
    req[0] = command;
    req[1..].copy_from_slice(&n.to_le_bytes());
    conn.writer.write_all(&req)?;
    conn.writer.flush()
}

/// Where [`lockstep`] puts each batch's bytes.
#[derive(Clone, Copy, Debug)]
pub enum Landing {
    /// Every chunk into the start of the buffer ([`Baseline::bulk`]).
    Window,
    /// Each batch whole, one byte after the other ([`Baseline::bulk_landed`]).
    Whole,
}

/// `batches` transfers of `batch` bytes, one request each (as a producer makes them),
/// landed as `landing` says; returns the bytes moved.
///
/// # Errors
/// I/O errors.
pub fn lockstep(
    conn: &mut impl Baseline,
    batches: usize,
    batch: u64,
    buf: &mut [u8],
    landing: Landing,
) -> std::io::Result<u64> {
    (0..batches).try_fold(0, |sum, _| {
        let moved = match landing {
            Landing::Window => conn.bulk(batch, buf)?,
            Landing::Whole => conn.bulk_landed(batch, buf)?,
        };
        Ok(sum + moved)
    })
}

/// The page size the raw loops align their buffers to.
const PAGE: usize = 4096;

/// A zeroed buffer that starts on a page boundary, for the raw loops to land bytes in.
///
/// Where a copy lands matters on AMD cores with fast `rep movsb` (the kernel's copy to
/// user memory): with the destination 8 or 16 bytes past the source modulo 4 KiB, reading
/// 1 MiB out of a pipe took 2.3x as long (600 against 260 µs here, a C loop landing at
/// each offset). A `Vec` of megabytes starts 16 bytes past a page (glibc's header on a
/// mapped block) while pipe pages start on one, so a raw loop reading into a plain `Vec`
/// was a baseline slower than a careful program, and flattered the producer over pipes.
pub struct PageAligned {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl PageAligned {
    /// `len` zero bytes from a page boundary.
    pub fn zeroed(len: usize) -> Self {
        Self::filled(len, 0)
    }

    /// `len` bytes of `byte` from a page boundary.
    pub fn filled(len: usize, byte: u8) -> Self {
        let storage = vec![byte; len + PAGE];
        let start = (PAGE - storage.as_ptr().addr() % PAGE) % PAGE;
        PageAligned {
            storage,
            start,
            len,
        }
    }
}

impl std::ops::Deref for PageAligned {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }
}

impl std::ops::DerefMut for PageAligned {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// Copies `total` bytes in `chunk`-sized memcpys from `src` into `dst`; returns `total`.
pub fn memcpy(src: &[u8], dst: &mut [u8], total: u64) -> u64 {
    let chunk = src.len().min(dst.len()).max(1);
    let mut left = total as usize;
    while left > 0 {
        let take = left.min(chunk);
        dst[..take].copy_from_slice(&src[..take]);
        std::hint::black_box(&mut *dst);
        left -= take;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_aligned_buffers_start_on_a_page_and_hold_what_was_asked() {
        for len in [0, 1, 5000, 1 << 20] {
            let mut buf = PageAligned::filled(len, 7);
            assert_eq!(buf.as_ptr().addr() % PAGE, 0);
            assert_eq!(buf.len(), len);
            assert!(buf.iter().all(|b| *b == 7));
            buf.fill(1);
            assert!(PageAligned::zeroed(len).iter().all(|b| *b == 0));
        }
    }
}
