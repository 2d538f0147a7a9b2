//! A reader that counts the bytes it hands out.
//!
//! It sits *above* a connection's read-ahead buffer, so it counts bytes consumed by the
//! decoder, not bytes read from the socket: the on-wire size of a request (the access
//! log's), and the length of a stream a [`Repeat`](super::Repeat) keeps.

use std::io::{BufRead, Read};

/// Counts the bytes read (and consumed) through it.
#[derive(Debug)]
pub(crate) struct Metered<R> {
    inner: R,
    /// Bytes handed out so far.
    pub consumed: u64,
}

impl<R> Metered<R> {
    pub(crate) fn new(inner: R) -> Self {
        Metered { inner, consumed: 0 }
    }
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact(buf)?;
        self.consumed += buf.len() as u64;
        Ok(())
    }
}

impl<R: BufRead> BufRead for Metered<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.consumed += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_consumed_read_ahead_count_alike() {
        let mut r = Metered::new(std::io::BufReader::new(&b"abcdefgh"[..]));
        let mut two = [0u8; 2];
        r.read_exact(&mut two).expect("reads");
        assert_eq!(r.fill_buf().expect("fills"), b"cdefgh");
        assert_eq!(r.consumed, 2, "looking ahead consumes nothing");
        r.consume(3);
        assert_eq!(r.read(&mut two).expect("reads"), 2);
        assert_eq!((&two, r.consumed), (b"fg", 7));
    }
}
