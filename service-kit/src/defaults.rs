//! Defaults every service derives the same way from its environment: the
//! host name a service reports itself under, and the data directory its
//! SQLite databases and files live in when no path is configured.

use std::path::PathBuf;

/// The machine's host name (upstream defaults `host` to it).
pub fn default_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_string())
}

/// `$FERRITE_DATA_DIR`, else `~/.local/share/ferrite`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERRITE_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/ferrite")
}
