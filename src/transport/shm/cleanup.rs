//! Removal of segments left behind by creators that were killed before unlinking them
//! (see "No leaked segments" in the [module docs](super)).

use std::fs::File;
use std::os::unix::fs::FileExt;

use rustix::fs::{FileType, FlockOperation, Mode};
use rustix::shm;

use super::NAME_PREFIX;
use super::header::{HEADER_SIZE, MAGIC, OWNER_TAG, OWNER_TAG_AT};
use super::os::nofollow;
use crate::Result;

const SHM_DIR: &str = "/dev/shm";

/// Unlinks `psm_*` segments created by this crate in processes that no longer exist, and
/// returns their names.
///
/// A segment qualifies when its header starts with `VGIS`, carries this crate's owner tag
/// and no process holds the creator's `flock` on it. Live segments, segments of other
/// users and segments created by other implementations are left alone. Reads go through
/// `pread`, never a mapping, so a damaged file cannot fault.
///
/// # Errors
/// [`crate::Error::Io`] if `/dev/shm` cannot be listed; problems with single entries
/// (e.g. permission denied) just skip them.
pub fn sweep_orphans() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let Ok(entry) = entry else { continue };
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with(NAME_PREFIX) && is_orphan(&name) {
            match shm::unlink(format!("/{name}").as_str()) {
                Ok(()) => removed.push(name),
                Err(e) => tracing::debug!(%name, error = %e, "cannot unlink orphaned shm segment"),
            }
        }
    }
    Ok(removed)
}

/// Ours, and its creator is gone. Our exclusive lock is released when `fd` closes.
fn is_orphan(name: &str) -> bool {
    let flags = shm::OFlags::RDONLY | nofollow();
    let Ok(fd) = shm::open(format!("/{name}").as_str(), flags, Mode::empty()) else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(&fd) else {
        return false;
    };
    if !FileType::from_raw_mode(stat.st_mode).is_file()
        || u64::try_from(stat.st_size).unwrap_or(0) < HEADER_SIZE
    {
        return false;
    }
    // EWOULDBLOCK: the creator (or another sweeper) holds it.
    if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
        return false;
    }
    let file = File::from(fd);
    let mut magic = [0u8; 4];
    let mut tag = [0u8; 8];
    file.read_exact_at(&mut magic, 0).is_ok()
        && file.read_exact_at(&mut tag, OWNER_TAG_AT as u64).is_ok()
        && magic == MAGIC
        && tag == OWNER_TAG
}
