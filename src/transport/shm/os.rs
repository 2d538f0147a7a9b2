//! The operating-system side of a segment's life, with no access to its memory: names,
//! `shm_open` / `shm_unlink`, `fstat` and creating the mapping object.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};
use rustix::fd::OwnedFd;
use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::shm;

use super::{NAME_PREFIX, ShmError};
use crate::{Error, Result};

/// Unlinks a just-created name unless creation got as far as building the segment.
pub(super) struct UnlinkOnError(pub(super) Option<String>);

impl UnlinkOnError {
    pub(super) fn name(&self) -> &str {
        self.0.as_deref().unwrap_or_default()
    }

    pub(super) fn defuse(mut self) -> String {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for UnlinkOnError {
    fn drop(&mut self) {
        if let Some(name) = self.0.take()
            && let Ok(path) = shm_path(&name)
        {
            let _ = shm::unlink(path.as_str());
        }
    }
}

/// `shm_open(O_CREAT | O_EXCL)` under fresh random names until one is free.
pub(super) fn open_new() -> Result<(String, OwnedFd)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last = Errno::EXIST;
    for _ in 0..64 {
        let seed = (std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        // RandomState is keyed from the OS's randomness; unpredictability only matters
        // against name squatting, which O_EXCL turns into a retry.
        let name = format!(
            "{NAME_PREFIX}{:08x}",
            RandomState::new().hash_one(seed) as u32
        );
        let flags = shm::OFlags::CREATE | shm::OFlags::EXCL | open_flags();
        match shm::open(format!("/{name}").as_str(), flags, Mode::RUSR | Mode::WUSR) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EXIST) => last = Errno::EXIST,
            Err(e) => return Err(io_error("shm_open", &name, e)),
        }
    }
    Err(io_error("shm_open", NAME_PREFIX, last))
}

/// Read-write, and (Linux) refusing a symlink planted under the name.
pub(super) fn open_flags() -> shm::OFlags {
    shm::OFlags::RDWR | nofollow()
}

/// `O_NOFOLLOW` where the `shm_open` implementation passes it through.
pub(super) fn nofollow() -> shm::OFlags {
    #[cfg(target_os = "linux")]
    {
        shm::OFlags::from_bits_retain(rustix::fs::OFlags::NOFOLLOW.bits())
    }
    #[cfg(not(target_os = "linux"))]
    {
        shm::OFlags::empty()
    }
}

/// The `shm_open` path of a peer-supplied name: a single component of portable
/// characters (leading slashes tolerated).
pub(super) fn shm_path(name: &str) -> Result<String, ShmError> {
    let bare = name.trim_start_matches('/');
    let portable = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if bare.is_empty() || bare.len() > 250 || bare.starts_with('.') || !bare.chars().all(portable) {
        return Err(ShmError::BadName(name.to_owned()));
    }
    Ok(format!("/{bare}"))
}

pub(super) fn file_size(fd: &OwnedFd, name: &str) -> Result<u64> {
    let stat = rustix::fs::fstat(fd).map_err(|e| io_error("fstat", name, e))?;
    Ok(u64::try_from(stat.st_size).unwrap_or(0))
}

pub(super) fn map(fd: &OwnedFd, size: u64, name: &str) -> Result<MmapRaw> {
    // `check_segment_size` bounded `size` by isize::MAX.
    let len = usize::try_from(size).map_err(|_| ShmError::BadSize(size))?;
    MmapOptions::new()
        .len(len)
        .map_raw(fd)
        .map_err(|e| Error::Io(std::io::Error::new(e.kind(), format!("mmap {name}: {e}"))))
}

pub(super) fn io_error(what: &str, name: &str, e: Errno) -> Error {
    let e = std::io::Error::from(e);
    Error::Io(std::io::Error::new(e.kind(), format!("{what} {name}: {e}")))
}
