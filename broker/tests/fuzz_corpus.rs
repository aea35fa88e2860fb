//! Replays the fuzz corpus and the regression inputs (`fuzz/corpus/TARGET/`,
//! `fuzz/regressions/TARGET/`) through the drivers the fuzz targets call
//! (`warren_broker::fuzzing`), on the stable toolchain: every input must run without a panic.

use std::path::{Path, PathBuf};

use warren_broker::fuzzing::{Driver, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir/TARGET/` for every known target, with the target's driver.
fn inputs(dir: &Path) -> Vec<(PathBuf, Driver)> {
    let mut found = Vec::new();
    for (target, driver) in TARGETS {
        let Ok(entries) = std::fs::read_dir(dir.join(target)) else { continue };
        for entry in entries {
            let path = entry.expect("read a corpus directory entry").path();
            let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                found.push((path, *driver));
            }
        }
    }
    found.sort();
    found
}

/// Run every input, then fail naming each one that panicked.
fn replay(inputs: &[(PathBuf, Driver)]) {
    let mut failed = Vec::new();
    for (path, driver) in inputs {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if std::panic::catch_unwind(|| driver(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{} inputs panicked:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn corpus_and_regressions_replay_without_panics() {
    let corpus = fuzz_dir().join("corpus");
    let mut all = inputs(&corpus);
    for (target, _) in TARGETS {
        let count = all.iter().filter(|(p, _)| p.starts_with(corpus.join(target))).count();
        assert!(count > 0, "no corpus for fuzz target {target} in {}", corpus.join(target).display());
    }
    // Inputs that once crashed a target (the directory exists once there is one).
    all.extend(inputs(&fuzz_dir().join("regressions")));
    replay(&all);
}
