//! Blocking disk I/O from code that runs on the async runtime's threads.

/// Run `io` (an fsync, a pread) telling a multi-threaded runtime that this worker is about to
/// block, so its other tasks move to another thread meanwhile; on a current-thread runtime
/// (tests) or outside a runtime it simply runs.
pub fn blocking<T>(io: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) if rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(io),
        _ => io(),
    }
}
