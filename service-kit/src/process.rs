//! The process's own resource use, read from `/proc/self`: open file
//! descriptors and resident memory. The fuzz tests compare them before and
//! after a run (leaked sockets, files or buffers show up here); metrics
//! will report them.

/// Open file descriptors of this process (`None` off Linux).
pub fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

/// Resident set size in bytes (`VmRSS`; `None` off Linux).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        if cfg!(target_os = "linux") {
            assert!(super::open_fds().is_some_and(|n| n >= 3));
            assert!(super::rss_bytes().is_some_and(|n| n > 0));
        }
    }
}
