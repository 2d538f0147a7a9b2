//! Large bodies lent to the kernel instead of copied into it.
//!
//! Writing a 3 MB batch into a pipe copies it into the pipe's pages, and the reader
//! copies it out again. Linux can instead put the writer's own pages into the pipe
//! (`vmsplice`), so the bytes are copied once, by the reader: a C producer moving 3 MB
//! batches through a pipe on one core took 0.39–0.46 ms a batch that way against
//! 1.07–1.15 ms with `write`. The price is that the pages are lent: until the reader
//! has copied them, the writer must not change or free them, or the reader gets what
//! is there then. Arrow buffers are immutable and reference-counted, so a [`Splice`]
//! keeps a reference to every lent buffer until the reader is past its last byte. Unix
//! sockets take lent pages too, through a pipe (`splice`): 3 MB in 0.46 against 0.59 ms.
//!
//! Where a part is lent matters as much as whether: the reader's copy out of lent pages
//! runs 4x slower when it lands 1–31 bytes past its source modulo a page
//! ([`SLOW_COPY`]), so a part that would is written instead.
//!
//! The transport owns the mechanism (which descriptors, the system call, when a lent
//! buffer is released); the engines only route a message's large body parts to it, in
//! order with the bytes they write themselves, through [`Outbound`].

use std::io::Write;

use arrow_buffer::Buffer;

use super::{SPLIT_BODY_AT, write_parts};

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

/// The writing half of a byte-stream connection, both ends': it counts what it sends
/// and, when the transport gave it a [`Splice`], lends large body parts there (settling
/// the lent ones before every send, small or large, so none is kept past the reader).
pub(crate) struct Outbound<W> {
    writer: W,
    /// Bytes sent on this connection.
    written: u64,
    splice: Option<Box<dyn Splice>>,
}

impl<W: Write> Outbound<W> {
    /// Sends through `writer`, lending large parts to `splice` when there is one
    /// (`writer` must then be unbuffered: see [`Splice`]).
    pub(crate) fn new(writer: W, splice: Option<Box<dyn Splice>>) -> Self {
        Outbound {
            writer,
            written: 0,
            splice,
        }
    }

    /// Lends large parts to `splice` from now on (see [`Outbound::new`]).
    pub(crate) fn set_splice(&mut self, splice: Option<Box<dyn Splice>>) {
        self.splice = splice;
    }

    /// Bytes sent so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Sends `bytes` whole.
    ///
    /// # Errors
    /// The writer's errors.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_parts(bytes, &[])
    }

    /// Sends `head` and then every part whole, as [`write_parts`] does, except that
    /// parts of [`SPLIT_BODY_AT`] bytes and more are lent when the connection can.
    ///
    /// # Errors
    /// The writer's or the splice's errors.
    pub(crate) fn write_parts(&mut self, head: &[u8], parts: &[Buffer]) -> std::io::Result<()> {
        let Some(splice) = self.splice.as_deref_mut() else {
            write_parts(&mut self.writer, head, parts)?;
            self.written += sent(head, parts);
            return Ok(());
        };
        splice.settle(self.written);
        let (mut head, mut rest) = (head, parts);
        // Where the part at the front of `rest` starts in the message's body.
        let mut at_body = 0;
        while let Some(at) = next_to_lend(rest, at_body) {
            // The head (the first time) and the small parts before the large one, in
            // one write; then the large one, lent.
            let (small, large) = (&rest[..at], &rest[at]);
            write_parts(&mut self.writer, head, small)?;
            self.written += sent(head, small);
            splice.lend(large, self.written)?;
            self.written += large.len() as u64;
            at_body += sent(&[], small) as usize + large.len();
            (head, rest) = (&[], &rest[at + 1..]);
        }
        if !head.is_empty() || !rest.is_empty() {
            write_parts(&mut self.writer, head, rest)?;
            self.written += sent(head, rest);
        }
        Ok(())
    }

    /// Flushes the writer.
    ///
    /// # Errors
    /// The writer's errors.
    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// The window of (destination − source) offsets, modulo a page, in which the reader's
/// copy out of lent pages is slow: the kernel's `rep movsb` on AMD cores took 4x as long
/// with the destination 1 to 31 bytes past the source (2.1–2.9 ms against 0.6–0.8 ms for
/// 3 MB from a Unix socket, a C reader landing at each offset; 0, 32 and more, and
/// "negative" offsets were fast). Our reader lands every large body on a page boundary.
const SLOW_COPY: std::ops::Range<usize> = 1..32;

/// Whether `part`, at `at_body` bytes into its message's body, is worth lending: the
/// reader copies it from its own memory, and landing the body on a page boundary puts it
/// `at_body` past one, so its page offset against the part's decides the copy's speed. A
/// part that would land in [`SLOW_COPY`] is written instead (copied into the kernel's
/// pages, which lie where the reader's copy is fast). Arrow's 64-byte aligned buffers
/// at 64-byte aligned body offsets never do; sliced arrays can.
fn lands_well(at_body: usize, part: &Buffer) -> bool {
    const PAGE: usize = 4096;
    let source = part.as_ptr() as usize % PAGE;
    let destination = at_body % PAGE;
    !SLOW_COPY.contains(&((destination + PAGE - source) % PAGE))
}

/// Which of `parts` (the first of them `at_body` bytes into its message's body) is the
/// next to lend: a large one that [`lands_well`].
fn next_to_lend(parts: &[Buffer], mut at_body: usize) -> Option<usize> {
    parts.iter().position(|part| {
        let lend = part.len() >= SPLIT_BODY_AT && lands_well(at_body, part);
        at_body += part.len();
        lend
    })
}

/// The bytes of `head` and `parts`.
fn sent(head: &[u8], parts: &[Buffer]) -> u64 {
    (head.len() + parts.iter().map(Buffer::len).sum::<usize>()) as u64
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

    /// `len` bytes of `fill` starting `page_offset` bytes past a page boundary.
    fn part_at(len: usize, fill: u8, page_offset: usize) -> Buffer {
        let whole = Buffer::from_vec(vec![fill; len + 8192]);
        let skip = (page_offset + 4096 - whole.as_ptr() as usize % 4096) % 4096;
        let part = whole.slice_with_length(skip, len);
        assert_eq!(part.as_ptr() as usize % 4096, page_offset);
        part
    }

    #[test]
    fn large_parts_are_lent_in_place_and_the_bytes_stay_in_order() {
        let n = SPLIT_BODY_AT + 3;
        // Each large part sits as far past a page as it will in the landed body.
        let parts = [
            Buffer::from_vec(vec![1u8; 8]),
            part_at(n, 2, 8),
            Buffer::from_vec(vec![3u8; 5]),
            part_at(n, 4, (8 + n + 5) % 4096),
            part_at(n, 5, (8 + 2 * n + 5) % 4096),
            Buffer::from_vec(vec![6u8; 8]),
        ];
        let transcript = Transcript::default();
        let mut out = Outbound::new(transcript.clone(), Some(Box::new(transcript.clone())));
        out.write(&[0u8; 100]).unwrap();
        out.write_parts(b"head", &parts).unwrap();
        let mut expected = vec![0u8; 100];
        expected.extend_from_slice(b"head");
        parts.iter().for_each(|p| expected.extend_from_slice(p));
        assert_eq!(*transcript.0.lock().unwrap(), expected);
        assert_eq!(out.written() as usize, expected.len());
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

    #[test]
    fn a_large_part_the_reader_would_copy_slowly_is_written_not_lent() {
        let n = SPLIT_BODY_AT;
        // Landed at body offset 64 (page offset 64), a source 48 past a page is 16 bytes
        // behind it: in the slow window. One 64 past a page is not.
        let parts = [
            Buffer::from_vec(vec![1u8; 64]),
            part_at(n, 2, 48),
            part_at(n, 3, (64 + n) % 4096),
        ];
        let transcript = Transcript::default();
        let mut out = Outbound::new(transcript.clone(), Some(Box::new(transcript.clone())));
        out.write_parts(b"head", &parts).unwrap();
        let mut expected = b"head".to_vec();
        parts.iter().for_each(|p| expected.extend_from_slice(p));
        assert_eq!(*transcript.0.lock().unwrap(), expected, "in order");
        assert_eq!(
            *transcript.1.lock().unwrap(),
            [(4 + 64 + n as u64, n)],
            "only the part that lands well is lent"
        );
        assert!(lands_well(0, &part_at(n, 0, 0)));
        assert!(!lands_well(100, &part_at(n, 0, 99)));
        assert!(
            lands_well(100, &part_at(n, 0, 101)),
            "a destination before the source"
        );
        assert!(
            lands_well(5, &part_at(n, 0, 4069)),
            "the window wraps around a page"
        );
        assert!(!lands_well(4, &part_at(n, 0, 4090)));
    }

    /// Records the positions it is asked to settle at and what it is lent.
    struct Settles(Arc<Mutex<Vec<(char, u64)>>>);

    impl Splice for Settles {
        fn lend(&mut self, _part: &Buffer, written: u64) -> std::io::Result<()> {
            self.0.lock().unwrap().push(('l', written));
            Ok(())
        }
        fn settle(&mut self, written: u64) {
            self.0.lock().unwrap().push(('s', written));
        }
    }

    #[test]
    fn every_send_settles_the_lent_buffers_and_large_parts_are_lent() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut out = Outbound::new(Vec::new(), Some(Box::new(Settles(seen.clone()))));
        out.write(b"small answer").unwrap();
        let large = part_at(SPLIT_BODY_AT, 0, 0);
        out.write_parts(b"head", &[large]).unwrap();
        out.write(b"eos").unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [
                ('s', 0),
                ('s', 12),
                ('l', 16),
                ('s', 16 + SPLIT_BODY_AT as u64)
            ]
        );
        assert_eq!(
            out.writer, b"small answerheadeos",
            "the lent part went around the writer"
        );
    }
}
