//! File writes cut into pieces the scheduler can step in between.
//!
//! Linux built without kernel preemption (Debian's default kernels, `PREEMPT_NONE`) copies a
//! whole write() into the page cache before the CPU goes to any other thread: a group commit of
//! a few MiB held a core for up to 5.9 ms (perf sched, 1 KiB persistent messages at full
//! speed), while a broker thread with a client's publish to answer waited behind it. A return
//! from a system call is where the kernel reschedules, so no single write copies more than
//! `WRITE_PIECE`.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// The most bytes one write() copies (about 40 us of copying).
pub const WRITE_PIECE: usize = 128 * 1024;

/// Append `bytes` to `file`, `WRITE_PIECE` at a time.
pub fn append(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    bytes.chunks(WRITE_PIECE).try_for_each(|piece| file.write_all(piece))
}

/// Write `bytes` to `file` at `offset`, `WRITE_PIECE` at a time.
pub fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    let mut at = offset;
    for piece in bytes.chunks(WRITE_PIECE) {
        file.write_all_at(piece, at)?;
        at += piece.len() as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_make_up_the_whole_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..WRITE_PIECE * 3 + 17).map(|i| (i % 251) as u8).collect();
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("open");
        append(&mut file, &bytes[..10]).expect("append");
        append(&mut file, &bytes[10..]).expect("append");
        assert_eq!(std::fs::read(&path).expect("read"), bytes);

        let file = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
        let patch: Vec<u8> = (0..WRITE_PIECE + 5).map(|i| (i % 7) as u8).collect();
        write_at(&file, &patch, 100).expect("write_at");
        let mut want = bytes.clone();
        want[100..100 + patch.len()].copy_from_slice(&patch);
        assert_eq!(std::fs::read(&path).expect("read"), want);
    }
}
