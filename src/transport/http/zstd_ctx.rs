//! zstd compression with one reused context per thread.
//!
//! A compression context costs far more to set up than a small body costs to compress
//! (hundreds of microseconds at level 1, against a few for a noop answer), and HTTP
//! compresses on every request: bodies, answers and sealed tokens. Each thread (the
//! blocking pool's, the client's) keeps one context and reuses it.

use std::cell::RefCell;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// `data` decompressed, when it is one frame that declares its content size and that
/// size is at most `cap`: `Ok(None)` otherwise, for the caller's streaming decoder
/// (which bounds what an undeclared frame may produce).
pub(crate) fn decompress_declared(data: &[u8], cap: usize) -> std::io::Result<Option<Vec<u8>>> {
    let declared = match zstd::zstd_safe::get_frame_content_size(data) {
        Ok(Some(size)) => size,
        _ => return Ok(None),
    };
    let Ok(size) = usize::try_from(declared) else {
        return Ok(None);
    };
    if size > cap {
        return Ok(None);
    }
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        match slot.as_mut() {
            // Capacity is the declared size: a frame that lies about it fails here.
            Some(d) => d.decompress(data, size).map(Some),
            None => Ok(None),
        }
    })
}

/// `data` compressed at `level` (the frame records its content size, which the
/// reference's eager decoders need).
pub(crate) fn compress(data: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        match slot.as_mut() {
            Some((_, compressor)) => compressor.compress(data),
            None => Err(std::io::Error::other("no zstd context")),
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn reused_contexts_compress_like_fresh_ones() {
        for level in [1, 3, 1] {
            let data = vec![5u8; 10_000];
            let packed = super::compress(&data, level).unwrap();
            assert_eq!(zstd::bulk::decompress(&packed, 10_000).unwrap(), data);
        }
    }
}
