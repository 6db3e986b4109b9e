//! Time and memory of processes: a child's wall time and peak RSS (from
//! `wait4`'s rusage), a running process's peak RSS (VmHWM, resettable).

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// A field of `/proc/PID/status` in KiB (`VmHWM:`, `VmRSS:`); 0 if unread.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resets the process's peak RSS to its current RSS (Linux ≥ 4.0).
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Runs `cmd` to its end, its output thrown away, and returns its wall
/// time and peak RSS in KiB (from `wait4`). Panics, with its stderr, if it
/// fails.
///
/// The child is spawned sharing this process's memory until it execs
/// (vfork), and Linux counts the peak of the memory it leaves in the child's
/// peak: this process's own peak is reset first, so the figure is the
/// larger of the child's peak and this process's RSS at the spawn.
#[allow(unsafe_code)]
pub fn run(cmd: &mut Command) -> (Duration, u64) {
    use nix::libc;
    reset_peak(std::process::id());
    let err = tempfile::tempfile().unwrap();
    let started = Instant::now();
    let child =
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err.try_clone().unwrap()).spawn().unwrap();
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `status` and `usage` are valid for writes for the whole call;
    // `wait4` fills them for the child just spawned, which nothing else
    // waits for (its `Child` handle is dropped without waiting).
    let (reaped, usage) = unsafe {
        let r = libc::wait4(child.id() as libc::pid_t, &mut status, 0, usage.as_mut_ptr());
        (r, usage.assume_init())
    };
    let took = started.elapsed();
    drop(child);
    assert!(reaped > 0, "wait4 failed");
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        use std::io::{Read, Seek};
        let mut text = String::new();
        let mut err = err;
        let _ = err.rewind().and_then(|_| err.read_to_string(&mut text));
        panic!("{cmd:?} failed (wait status {status}): {text}");
    }
    (took, u64::try_from(usage.ru_maxrss).unwrap_or(0))
}
