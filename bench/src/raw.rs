//! Physical baselines, client side: 1-byte ping-pong and bulk bytes against
//! `vgi-rpc-bench raw-server` over the same transport, and memcpy of the same bytes.

use std::io::{Read, Write};

use crate::transport::RawConnection;
use crate::worker::{CMD_BULK, CMD_PING};

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
}

impl Baseline for RawConnection {
    fn ping(&mut self) -> std::io::Result<()> {
        let mut b = [CMD_PING];
        self.writer.write_all(&b)?;
        self.writer.flush()?;
        self.reader.read_exact(&mut b)
    }

    fn bulk(&mut self, n: u64, buf: &mut [u8]) -> std::io::Result<u64> {
        ask_bulk(self, n)?;
        let mut left = n as usize;
        while left > 0 {
            let take = left.min(buf.len());
            let got = self.reader.read(&mut buf[..take])?;
            if got == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            left -= got;
        }
        Ok(n)
    }

    fn bulk_landed(&mut self, n: u64, buf: &mut [u8]) -> std::io::Result<u64> {
        ask_bulk(self, n)?;
        let len = usize::try_from(n).map_err(std::io::Error::other)?;
        let room = buf.len();
        let landing = buf.get_mut(..len).ok_or_else(|| {
            std::io::Error::other(format!("{n} bytes do not fit a {room} byte buffer"))
        })?;
        self.reader.read_exact(landing)?;
        Ok(n)
    }
}

/// Asks the raw server for `n` bytes.
fn ask_bulk(conn: &mut RawConnection, n: u64) -> std::io::Result<()> {
    let mut req = [0u8; 9];
    req[0] = CMD_BULK;
    req[1..].copy_from_slice(&n.to_le_bytes());
    conn.writer.write_all(&req)?;
    conn.writer.flush()
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
