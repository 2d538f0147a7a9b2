//! Large bodies lent to the kernel instead of copied into it.
//!
//! Writing a 3 MB batch into a pipe copies it into the pipe's pages, and the reader
//! copies it out again. Linux can instead put the writer's own pages into the pipe
//! (`vmsplice`), so the bytes are copied once, by the reader: a C producer moving 3 MB
//! batches through a pipe on one core took 0.39–0.46 ms a batch that way against
//! 1.07–1.15 ms with `write`. The price is that the pages are lent: until the reader
//! has copied them, the writer must not change or free them, or the reader gets what
//! is there then. Arrow buffers are immutable and reference-counted, so a [`Splice`]
//! keeps a reference to every lent buffer until the reader is past its last byte.
//!
//! The transport owns the mechanism (which descriptors, the system call, when a lent
//! buffer is released); the engines only route a message's large body parts to it, in
//! order with the bytes they write themselves, through [`write_parts_lending`].

use std::io::Write;

use arrow_buffer::Buffer;

use super::{SPLIT_BODY_AT, write_chunked, write_parts};

/// Where a connection's large body parts can be lent to the kernel (see the module
/// docs). The connection's writer must not buffer: the parts go around it, and must
/// land between the bytes written before and after them.
pub(crate) trait Splice: Send {
    /// Sends `part` whole, lending its memory until the reader has read it; `written`
    /// is how many bytes the connection had sent before it (the part's position in the
    /// stream, which tells when the reader is past it).
    ///
    /// # Errors
    /// The descriptor's errors.
    fn lend(&mut self, part: &Buffer, written: u64) -> std::io::Result<()>;

    /// Lets go of the lent buffers the reader is past, `written` bytes having been sent
    /// (called before every send, so a lent body is not kept longer than a turn of a
    /// lockstep exchange).
    fn settle(&mut self, written: u64);
}

/// Writes `head` and `parts` as [`write_parts`] does, except that parts of
/// [`SPLIT_BODY_AT`] bytes and more go through `splice`. `written` counts the
/// connection's bytes and is advanced by everything sent here.
///
/// # Errors
/// The writer's or the splice's errors.
pub(crate) fn write_parts_lending<W: Write + ?Sized>(
    writer: &mut W,
    splice: &mut dyn Splice,
    written: &mut u64,
    head: &[u8],
    parts: &[Buffer],
) -> std::io::Result<()> {
    splice.settle(*written);
    let mut head = head;
    let mut rest = parts;
    while let Some(at) = rest.iter().position(|p| p.len() >= SPLIT_BODY_AT) {
        // The head (first time) and the small parts before the large one, in one write.
        write_parts(writer, head, &rest[..at])?;
        *written += (head.len() + rest[..at].iter().map(Buffer::len).sum::<usize>()) as u64;
        head = &[];
        let large = &rest[at];
        splice.lend(large, *written)?;
        *written += large.len() as u64;
        rest = &rest[at + 1..];
    }
    if head.is_empty() && rest.is_empty() {
        return Ok(());
    }
    match rest {
        [] => write_chunked(writer, head)?,
        _ => write_parts(writer, head, rest)?,
    }
    *written += (head.len() + rest.iter().map(Buffer::len).sum::<usize>()) as u64;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A transcript of every byte sent, and what was lent where.
    #[derive(Clone, Default)]
    struct Transcript(Arc<Mutex<Vec<u8>>>, Arc<Mutex<Vec<(u64, usize)>>>);

    impl Splice for Transcript {
        fn lend(&mut self, part: &Buffer, written: u64) -> std::io::Result<()> {
            let mut bytes = self.0.lock().unwrap();
            assert_eq!(written as usize, bytes.len(), "in order");
            self.1.lock().unwrap().push((written, part.len()));
            bytes.extend_from_slice(part);
            Ok(())
        }

        fn settle(&mut self, _written: u64) {}
    }

    impl Write for Transcript {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn large_parts_are_lent_in_place_and_the_bytes_stay_in_order() {
        let big = |b: u8| Buffer::from_vec(vec![b; SPLIT_BODY_AT + 3]);
        let parts = [
            Buffer::from_vec(vec![1u8; 8]),
            big(2),
            Buffer::from_vec(vec![3u8; 5]),
            big(4),
            big(5),
            Buffer::from_vec(vec![6u8; 8]),
        ];
        let transcript = Transcript::default();
        transcript.0.lock().unwrap().resize(100, 0);
        let (mut writer, mut splice) = (transcript.clone(), transcript.clone());
        let mut written = 100;
        write_parts_lending(&mut writer, &mut splice, &mut written, b"head", &parts).unwrap();
        let mut expected = vec![0u8; 100];
        expected.extend_from_slice(b"head");
        parts.iter().for_each(|p| expected.extend_from_slice(p));
        assert_eq!(*transcript.0.lock().unwrap(), expected);
        assert_eq!(written as usize, expected.len());
        let n = SPLIT_BODY_AT + 3;
        assert_eq!(
            *transcript.1.lock().unwrap(),
            [
                (112, n),
                (112 + n as u64 + 5, n),
                (112 + 2 * n as u64 + 5, n)
            ],
            "only the large parts are lent, each at its position"
        );
    }
}
