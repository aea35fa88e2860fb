//! The CPU time slice warren asks the Linux scheduler for (`--sched-slice-us`).
//!
//! On a small box the broker shares its cores with its own clients, and a busy publisher or a
//! consumer written in Python runs its whole slice (1.4 ms by default on 2 cores) before a
//! broker thread woken by another connection gets the core. Linux 6.12+ (EEVDF) lets a thread
//! ask for a shorter slice: it then runs sooner after a wake-up, for the same share of the CPU.
//! Threads inherit the setting, so it is asked for once, before any thread starts.

/// Why the slice could not be set (the kernel's refusal; warren runs on with its default).
#[derive(Debug, thiserror::Error)]
pub enum SliceError {
    #[error("sched_setattr: {0}")]
    Refused(std::io::Error),
    #[cfg(not(target_os = "linux"))]
    #[error("custom scheduler slices need Linux")]
    Unsupported,
}

/// Ask for a slice of `micros` microseconds for this thread and the threads it starts
/// (the kernel keeps it within 100 us..100 ms).
#[cfg(target_os = "linux")]
pub fn request_slice(micros: u64) -> Result<(), SliceError> {
    // struct sched_attr of <linux/sched/types.h>, its first version (48 bytes)
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    // sched_setattr sets the nice value too: keep the one warren was started with
    // SAFETY: getpriority only reads the calling process's nice value.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        nice,
        priority: 0,
        runtime: micros.saturating_mul(1000),
        deadline: 0,
        period: 0,
    };
    // SAFETY: `attr` is a valid sched_attr of the size it declares, alive for the call; pid 0
    // is the calling thread.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r == 0 { Ok(()) } else { Err(SliceError::Refused(std::io::Error::last_os_error())) }
}

#[cfg(not(target_os = "linux"))]
pub fn request_slice(_micros: u64) -> Result<(), SliceError> {
    Err(SliceError::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slice lands where the kernel shows it (`se.slice` in /proc/<pid>/task/<tid>/sched),
    /// on kernels that have custom slices (6.12+; older ones do not show the field).
    #[test]
    #[cfg(target_os = "linux")]
    fn a_requested_slice_is_what_the_kernel_shows() {
        std::thread::spawn(|| {
            request_slice(300).expect("sched_setattr");
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            let sched = std::fs::read_to_string(format!("/proc/self/task/{tid}/sched")).unwrap_or_default();
            if let Some(line) = sched.lines().find(|l| l.starts_with("se.slice")) {
                let ns: u64 = line.rsplit(':').next().unwrap_or_default().trim().parse().expect("a number");
                assert_eq!(ns, 300_000, "{line}");
            }
        })
        .join()
        .expect("the thread ran");
    }
}
