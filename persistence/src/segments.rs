//! Segment files, the journal's and each stream's: named after a number (the journal's
//! sequence, a stream's first offset), listed in order, and read back record by record.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::StoreError;
use crate::record::{self, Read, Record};

/// The file name of segment `n`.
pub(crate) fn segment_name(n: u64) -> String {
    format!("{n:020}.seg")
}

/// The number a segment file is named after (0 for a name that is not one).
pub(crate) fn segment_number(path: &Path) -> u64 {
    path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The segment files of a directory, in order.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| StoreError::io(dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Read a segment's records. A torn record at the end of the last segment is cut off (the
/// write never completed, so it was never confirmed); anything else unreadable is corruption.
pub(crate) fn read_segment(
    path: &Path,
    is_last: bool,
    mut each: impl FnMut(Record, usize, usize),
) -> Result<(), StoreError> {
    let data = Bytes::from(fs::read(path).map_err(|e| StoreError::io(path, e))?);
    let mut at = 0;
    while at < data.len() {
        match record::decode(&data.slice(at..)) {
            Read::Record(r, used) => {
                each(r, at, used);
                at += used;
            }
            Read::Truncated | Read::Corrupt(_) if is_last => {
                tracing::warn!(path = %path.display(), offset = at, "cutting off a torn write at the end of the journal");
                let file = OpenOptions::new().write(true).open(path).map_err(|e| StoreError::io(path, e))?;
                file.set_len(at as u64).map_err(|e| StoreError::io(path, e))?;
                file.sync_all().map_err(|e| StoreError::io(path, e))?;
                break;
            }
            Read::Truncated => return Err(StoreError::corrupt(path, at as u64, "record cut short")),
            Read::Corrupt(why) => return Err(StoreError::corrupt(path, at as u64, why)),
        }
    }
    Ok(())
}
