//! Room on the store's disk. sled 0.34 does not come back from a full disk: a flush whose
//! write failed with ENOSPC waits forever for it (the process hangs, see the full-disk
//! test). So the store never lets sled get there: a write is refused with
//! [`StoreError::NoSpace`] while less than [`RESERVE`] is free on the store's filesystem,
//! before sled sees it. What finishes a run's record (a few hundred bytes) may dig into the
//! reserve down to [`FINAL_RESERVE`], so a run cut short says so instead of staying
//! unfinished. Reads never check: `history` works on a full disk.

use std::path::Path;

use super::StoreError;

/// Free bytes a write leaves at least: more than sled has in flight between two writes
/// (a few 512 KiB segments and the largest record, a step's output).
pub const RESERVE: u64 = 8 * 1024 * 1024;

/// Free bytes the last record of a run leaves at least.
pub const FINAL_RESERVE: u64 = 2 * 1024 * 1024;

/// Bytes free to an unprivileged writer on the filesystem holding `path`, if it can be
/// told.
pub fn available(path: &Path) -> Option<u64> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer of the right type for the kernel to fill;
    // read only when the call succeeded.
    let st = unsafe {
        if libc::statvfs(path.as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Ok when at least `reserve` bytes stay free on the disk of the store at `path`.
pub fn room(path: &Path, reserve: u64) -> Result<(), StoreError> {
    match available(path) {
        Some(free) if free < reserve => Err(StoreError::NoSpace {
            path: Some(path.to_path_buf()),
        }),
        // Unknown (an unusual filesystem): sled's own error will tell.
        _ => Ok(()),
    }
}
