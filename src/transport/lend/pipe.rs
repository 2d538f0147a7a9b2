//! Lending to a pipe the connection writes into: the reader copies straight from the
//! lent pages.
//!
//! [`PipeLender`] keeps a reference to each lent buffer, with the stream position of its
//! last byte, and lets it go only once the reader is past that position: everything sent
//! minus what the pipe still holds (`FIONREAD`). Anything else writing into the same
//! pipe can only make that look smaller, so a buffer is never released early. A buffer
//! the reader never reached when the connection ends is leaked rather than freed (its
//! memory could otherwise be reused while the pipe still shows it); the pipe holds at
//! most its capacity, so that is at most about a megabyte, and only for a reader that
//! stopped reading.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use arrow_buffer::Buffer;

use super::Lent;
use crate::wire::Splice;

/// Lends body parts to the pipe written through `fd` (see the module docs).
pub(super) struct PipeLender {
    fd: OwnedFd,
    /// The kernel refused to lend (`vmsplice` unavailable, e.g. under a seccomp filter):
    /// parts are written instead from then on.
    refused: bool,
    /// Lent buffers not yet known to be read, each with the stream position just past it.
    lent: VecDeque<(u64, Buffer)>,
}

impl PipeLender {
    /// A lender for `fd` when it is the write end of a pipe on Linux.
    pub(super) fn for_fd(fd: BorrowedFd<'_>) -> Option<Self> {
        if !cfg!(any(target_os = "linux", target_os = "android")) {
            return None;
        }
        let stat = rustix::fs::fstat(fd).ok()?;
        let fifo = rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Fifo;
        let flags = rustix::fs::fcntl_getfl(fd).ok()?;
        let write_only = flags & rustix::fs::OFlags::ACCMODE == rustix::fs::OFlags::WRONLY;
        // Only the write end: `vmsplice` on a read end would write into the lent memory.
        if !(fifo && write_only) {
            return None;
        }
        Some(PipeLender {
            fd: fd.try_clone_to_owned().ok()?,
            refused: false,
            lent: VecDeque::new(),
        })
    }
}

/// Moves `bytes` into the pipe `fd`, by reference where the kernel takes them.
fn vmsplice(fd: BorrowedFd<'_>, bytes: &mut &[u8]) -> std::io::Result<Lent> {
    while !bytes.is_empty() {
        #[allow(unsafe_code)]
        // SAFETY: `fd` is the write end of a pipe (checked in `for_fd`); the lender keeps
        // the buffer in `lent` until the reader is past it.
        let Some(n) = (unsafe { super::vmsplice_once(fd, bytes) })? else {
            return Ok(Lent::Refused);
        };
        *bytes = &bytes[n..];
    }
    Ok(Lent::Whole)
}

impl Splice for PipeLender {
    fn lend(&mut self, part: &Buffer, written: u64) -> std::io::Result<()> {
        self.settle(written);
        let fd = self.fd.as_fd();
        if super::send_part(fd, false, part, &mut self.refused, |rest| {
            vmsplice(fd, rest)
        })? {
            self.lent
                .push_back((written + part.len() as u64, part.clone()));
        }
        Ok(())
    }

    fn settle(&mut self, written: u64) {
        if self.lent.is_empty() {
            return;
        }
        let Ok(unread) = rustix::io::ioctl_fionread(&self.fd) else {
            return;
        };
        let read = written.saturating_sub(unread);
        while self.lent.front().is_some_and(|(end, _)| *end <= read) {
            self.lent.pop_front();
        }
    }
}

impl Drop for PipeLender {
    fn drop(&mut self) {
        let unread = rustix::io::ioctl_fionread(&self.fd).unwrap_or(u64::MAX);
        if unread != 0 && !self.lent.is_empty() {
            // The reader may still copy these pages: never hand them back to the allocator.
            tracing::debug!(
                buffers = self.lent.len(),
                "a pipe closed with lent buffers unread; leaking them"
            );
            std::mem::forget(std::mem::take(&mut self.lent));
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::transport::lend::LENT;

    #[test]
    fn lent_bytes_arrive_whole_and_stay_held_until_the_reader_is_past_them() {
        let (reader, writer) = rustix::pipe::pipe().unwrap();
        let _ = rustix::pipe::fcntl_setpipe_size(&writer, 1 << 20);
        assert!(
            PipeLender::for_fd(reader.as_fd()).is_none(),
            "never a read end"
        );
        let mut lender = PipeLender::for_fd(writer.as_fd()).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let part = Buffer::from_vec(data.clone());
        let before = LENT.load(Ordering::Relaxed);
        let reading = std::thread::spawn(move || {
            let mut got = vec![0u8; 3_000_000 + 10];
            std::fs::File::from(reader).read_exact(&mut got).unwrap();
            got
        });
        lender.lend(&part, 0).unwrap();
        assert!(
            LENT.load(Ordering::Relaxed) >= before + 3_000_000,
            "went by vmsplice"
        );
        drop(part);
        assert_eq!(
            lender.lent.len(),
            1,
            "held while the pipe may still show it"
        );
        rustix::io::write(&lender.fd, &[7u8; 10]).unwrap();
        let got = reading.join().unwrap();
        assert_eq!(&got[..3_000_000], &data[..]);
        assert_eq!(&got[3_000_000..], &[7u8; 10]);
        lender.settle(3_000_010);
        assert!(lender.lent.is_empty(), "released once read");
    }

    #[test]
    fn where_the_kernel_refuses_to_lend_the_bytes_are_written() {
        let (reader, writer) = rustix::pipe::pipe().unwrap();
        let mut lender = PipeLender::for_fd(writer.as_fd()).unwrap();
        lender.refused = true;
        let part = Buffer::from_vec(vec![9u8; 100_000]);
        let reading = std::thread::spawn(move || {
            let mut got = vec![0u8; 100_000];
            std::fs::File::from(reader).read_exact(&mut got).unwrap();
            got
        });
        lender.lend(&part, 0).unwrap();
        assert!(lender.lent.is_empty(), "nothing lent, nothing held");
        assert_eq!(reading.join().unwrap(), vec![9u8; 100_000]);
    }

    #[test]
    fn a_socket_or_a_file_gets_no_lender() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(PipeLender::for_fd(a.as_fd()).is_none());
        let file = tempfile_in_target();
        assert!(PipeLender::for_fd(file.as_fd()).is_none());
    }

    fn tempfile_in_target() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("vgi-lend-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        file
    }
}
