//! The server's resident memory and open file descriptors, read from /proc.

use std::fs;
use std::io;

/// One look at the server process.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Reading {
    /// Resident set size (VmRSS), in KiB.
    pub(crate) rss_kib: u64,
    /// Entries in /proc/PID/fd.
    pub(crate) fds: u64,
}

/// Reads `pid`'s VmRSS and counts its open descriptors.
///
/// # Errors
/// When /proc/PID is gone (the server exited) or unreadable.
pub(crate) fn read(pid: u32) -> io::Result<Reading> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no VmRSS line in /proc/{pid}/status")))?;
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok(Reading { rss_kib, fds })
}

/// Our own limit on open files (the soft one), from /proc/self/limits.
pub(crate) fn open_files_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
