//! Fetching what the conductor serves to machines (instance images, deploy
//! kernels and ramdisks) without exposing the host or hanging: which
//! sources are allowed (http(s), and `file://` only inside
//! `[deploy] file_url_allowed_paths`, never a system directory), downloads
//! bounded in bytes and time, one lock per cache entry, and the caches'
//! size bound (least recently used entries not in use go first).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{DeployConfig, SYSTEM_DIRS};

/// Where an image, kernel or ramdisk comes from, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An http(s) URL.
    Http(String),
    /// A regular file inside an allowed directory, symlinks resolved.
    File(PathBuf),
}

impl Source {
    pub fn is_file(&self) -> bool {
        matches!(self, Source::File(_))
    }
}

/// Checks an image reference: http(s) URLs pass; `file://` URLs must name
/// a regular file that stays inside one of `file_url_allowed_paths` once
/// `..` and symlinks are resolved, and never a system directory. Bare
/// paths and other schemes are refused.
pub fn resolve(reference: &str, deploy: &DeployConfig) -> Result<Source, String> {
    let lower = reference.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return url::Url::parse(reference)
            .map(|_| Source::Http(reference.to_string()))
            .map_err(|e| format!("Image URL {reference} is invalid: {e}"));
    }
    if reference.starts_with('/') {
        return Err(format!(
            "Image {reference} is a bare path; name local files as file:// URLs"
        ));
    }
    if !lower.starts_with("file://") {
        return Err(format!(
            "Image {reference} is neither an http(s) nor a file:// URL; this conductor has no image service to resolve it."
        ));
    }
    let url =
        url::Url::parse(reference).map_err(|e| format!("Image URL {reference} is invalid: {e}"))?;
    if url
        .host_str()
        .is_some_and(|h| !h.is_empty() && h != "localhost")
    {
        return Err(format!(
            "Image {reference} names another host; file:// URLs are local"
        ));
    }
    let path = url
        .to_file_path()
        .map_err(|()| format!("Image URL {reference} is not a local path"))?;
    resolve_file(reference, &path, deploy).map(Source::File)
}

/// `path` with `.` and `..` removed lexically (no file system access).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn in_system_dir(path: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|dir| path.starts_with(dir))
}

fn under_allowed(path: &Path, allowed: &[PathBuf]) -> bool {
    allowed.iter().any(|root| path.starts_with(root))
}

fn resolve_file(reference: &str, path: &Path, deploy: &DeployConfig) -> Result<PathBuf, String> {
    let refused = |why: &str| {
        format!(
            "Image {reference} is not allowed: {why} ([deploy] file_url_allowed_paths: {})",
            deploy
                .file_url_allowed_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let lexical = normalize(path);
    if in_system_dir(&lexical) {
        return Err(refused(&format!(
            "{} is in a system directory",
            lexical.display()
        )));
    }
    // Allowed directories as given and with their own links resolved (a
    // temporary directory may be behind a symlink).
    let mut allowed: Vec<PathBuf> = Vec::new();
    for root in &deploy.file_url_allowed_paths {
        allowed.push(normalize(root));
        if let Ok(real) = std::fs::canonicalize(root) {
            allowed.push(real);
        }
    }
    // Checked before touching the file, so a refusal says nothing about
    // whether a file outside the allowed directories exists.
    if !under_allowed(&lexical, &allowed) {
        return Err(refused(&format!(
            "{} is outside the allowed directories",
            lexical.display()
        )));
    }
    let real = std::fs::canonicalize(&lexical)
        .map_err(|e| format!("Cannot read image {}: {e}", lexical.display()))?;
    if in_system_dir(&real) || !under_allowed(&real, &allowed) {
        return Err(refused(&format!(
            "{} leads outside the allowed directories through a symbolic link",
            lexical.display()
        )));
    }
    let meta = std::fs::metadata(&real)
        .map_err(|e| format!("Cannot read image {}: {e}", real.display()))?;
    if !meta.is_file() {
        return Err(refused(&format!(
            "{} is not a regular file",
            lexical.display()
        )));
    }
    Ok(real)
}

/// What bounds one fetch.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes at most (`[deploy] image_max_bytes`).
    pub max_bytes: u64,
    /// The size the image is declared to have (`instance_info.image_size`),
    /// if any: more is refused.
    pub declared_bytes: Option<u64>,
    /// No progress for this long fails the fetch.
    pub read_timeout: Duration,
    /// The whole fetch fails after this long.
    pub deadline: Duration,
}

impl Limits {
    pub fn from_config(deploy: &DeployConfig, declared_bytes: Option<u64>) -> Limits {
        Limits {
            max_bytes: deploy.image_max_bytes,
            declared_bytes,
            read_timeout: Duration::from_secs(deploy.image_download_read_timeout_secs),
            deadline: Duration::from_secs(deploy.image_download_timeout_secs),
        }
    }

    /// The error for `bytes` past a limit, if it is.
    fn check(&self, reference: &str, bytes: u64) -> Result<(), String> {
        if bytes > self.max_bytes {
            return Err(format!(
                "Image {reference} is larger than {} bytes ([deploy] image_max_bytes)",
                self.max_bytes
            ));
        }
        if let Some(declared) = self.declared_bytes {
            if bytes > declared {
                return Err(format!(
                    "Image {reference} is larger than its declared size of {declared} bytes (instance_info.image_size)"
                ));
            }
        }
        Ok(())
    }
}

/// A file removed when dropped unless kept: partial downloads and
/// conversions never outlive a failure or a cancelled task.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    pub fn new(path: PathBuf) -> TempFile {
        TempFile { path, armed: true }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the file to `to` (same file system) and stops guarding it.
    pub async fn persist(mut self, to: &Path) -> Result<(), String> {
        tokio::fs::rename(&self.path, to).await.map_err(|e| {
            format!(
                "Cannot move {} to {}: {e}",
                self.path.display(),
                to.display()
            )
        })?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Fetches `source` into `dest` within `limits`; returns the bytes written.
pub async fn fetch(
    reference: &str,
    source: &Source,
    dest: &Path,
    limits: &Limits,
) -> Result<u64, String> {
    let work = async {
        match source {
            Source::Http(url) => download(url, dest, limits).await,
            Source::File(path) => copy_file(reference, path, dest, limits).await,
        }
    };
    match tokio::time::timeout(limits.deadline, work).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "Fetching image {reference} took longer than {} s ([deploy] image_download_timeout_secs)",
            limits.deadline.as_secs()
        )),
    }
}

async fn download(url: &str, dest: &Path, limits: &Limits) -> Result<u64, String> {
    let client = reqwest::Client::builder()
        .connect_timeout(limits.read_timeout)
        .read_timeout(limits.read_timeout)
        .build()
        .map_err(|e| format!("Cannot build an HTTP client: {e}"))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("Cannot download image {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "Cannot download image {url}: HTTP status {}",
            response.status().as_u16()
        ));
    }
    if let Some(length) = response.content_length() {
        limits.check(url, length)?;
    }
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| format!("Cannot create {}: {e}", dest.display()))?;
    let mut written: u64 = 0;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("Cannot download image {url}: {e}"))?
    {
        written = written.saturating_add(chunk.len() as u64);
        limits.check(url, written)?;
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("Cannot write {}: {e}", dest.display()))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("Cannot write {}: {e}", dest.display()))?;
    Ok(written)
}

/// Copies a resolved local file, checking that what is opened is still
/// the file that was checked (no swap in between).
async fn copy_file(
    reference: &str,
    path: &Path,
    dest: &Path,
    limits: &Limits,
) -> Result<u64, String> {
    let checked = std::fs::metadata(path)
        .map_err(|e| format!("Cannot read image {}: {e}", path.display()))?;
    let mut source = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("Cannot read image {}: {e}", path.display()))?;
    let opened = source
        .metadata()
        .await
        .map_err(|e| format!("Cannot read image {}: {e}", path.display()))?;
    if !opened.is_file() || opened.dev() != checked.dev() || opened.ino() != checked.ino() {
        return Err(format!(
            "Image {reference} changed while it was being opened; refusing it"
        ));
    }
    limits.check(reference, opened.len())?;
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| format!("Cannot create {}: {e}", dest.display()))?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut written: u64 = 0;
    loop {
        let n = source
            .read(&mut buffer)
            .await
            .map_err(|e| format!("Cannot read image {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        written = written.saturating_add(n as u64);
        limits.check(reference, written)?;
        file.write_all(&buffer[..n])
            .await
            .map_err(|e| format!("Cannot write {}: {e}", dest.display()))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("Cannot write {}: {e}", dest.display()))?;
    Ok(written)
}

type EntryLock = Arc<tokio::sync::Mutex<()>>;

/// The lock of every cache entry somebody holds or waits for, by path.
/// Entries nobody references any more are dropped as the map is used, so
/// it holds at most one entry per fetch in flight (plus stale ones until
/// the next lookup).
fn locks() -> &'static Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    LOCKS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn entry_lock(entry: &Path) -> EntryLock {
    let mut map = match locks().lock() {
        Ok(map) => map,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.retain(|_, weak| weak.strong_count() > 0);
    if let Some(lock) = map.get(entry).and_then(Weak::upgrade) {
        return lock;
    }
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    map.insert(entry.to_path_buf(), Arc::downgrade(&lock));
    lock
}

/// Takes the lock of one cache entry: fills of the same entry run one at
/// a time, fills of different entries in parallel.
pub async fn lock_entry(entry: &Path) -> tokio::sync::OwnedMutexGuard<()> {
    entry_lock(entry).lock_owned().await
}

/// Marks a cache entry as just used (its modification time orders the
/// eviction).
pub fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().write(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// One cache entry as eviction sees it.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    /// The file whose lock and modification time stand for the entry.
    pub path: PathBuf,
    /// Every file of the entry, removed together.
    pub files: Vec<PathBuf>,
    /// Disk space the entry takes.
    pub bytes: u64,
    pub used: SystemTime,
    /// Held by a node (a hard link elsewhere): never evicted.
    pub in_use: bool,
}

impl CacheEntry {
    /// An entry of one file, in use while it has other hard links.
    pub fn single(path: PathBuf) -> Option<CacheEntry> {
        let meta = std::fs::metadata(&path).ok()?;
        Some(CacheEntry {
            files: vec![path.clone()],
            bytes: meta.blocks().saturating_mul(512),
            used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            in_use: meta.nlink() > 1,
            path,
        })
    }
}

/// Removes the least recently used entries, except `keep`, entries in
/// use and entries whose lock somebody holds, until the entries take at
/// most `max_bytes`. Returns the paths of the evicted entries.
pub fn evict(mut entries: Vec<CacheEntry>, max_bytes: u64, keep: &Path) -> Vec<PathBuf> {
    let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
    entries.sort_by_key(|e| e.used);
    let mut evicted = Vec::new();
    for entry in entries {
        if total <= max_bytes {
            break;
        }
        if entry.path == keep || entry.in_use {
            continue;
        }
        // Held while the files go, so nobody serves the entry meanwhile;
        // an entry somebody fills or serves right now is skipped.
        let Ok(_held) = entry_lock(&entry.path).try_lock_owned() else {
            continue;
        };
        for file in &entry.files {
            match std::fs::remove_file(file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "cannot evict a cache entry");
                }
            }
        }
        tracing::info!(entry = %entry.path.display(), bytes = entry.bytes, "evicted from the image cache");
        total = total.saturating_sub(entry.bytes);
        evicted.push(entry.path);
    }
    evicted
}

/// The regular files of `dir` whose names pass `wanted`.
pub fn files_in(dir: &Path, wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| wanted(&e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allowed: &[&Path]) -> DeployConfig {
        DeployConfig {
            file_url_allowed_paths: allowed.iter().map(|p| p.to_path_buf()).collect(),
            ..DeployConfig::default()
        }
    }

    #[test]
    fn references_by_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("k"), b"k").expect("write");
        let deploy = config(&[dir.path()]);
        assert_eq!(
            resolve("http://x/k", &deploy),
            Ok(Source::Http("http://x/k".into()))
        );
        assert!(resolve("HTTPS://x/k", &deploy).is_ok());
        let real = std::fs::canonicalize(dir.path().join("k")).expect("real");
        let url = format!("file://{}", dir.path().join("k").display());
        assert_eq!(resolve(&url, &deploy), Ok(Source::File(real.clone())));
        let localhost = format!("file://localhost{}", dir.path().join("k").display());
        assert_eq!(resolve(&localhost, &deploy), Ok(Source::File(real)));
        let bare = dir.path().join("k").display().to_string();
        assert!(resolve(&bare, &deploy)
            .expect_err("bare")
            .contains("bare path"));
        assert!(resolve("glance-uuid", &deploy).is_err());
        assert!(resolve("ftp://x/k", &deploy).is_err());
        let remote = format!("file://server{}", dir.path().join("k").display());
        assert!(resolve(&remote, &deploy)
            .expect_err("remote")
            .contains("another host"));
    }

    #[test]
    fn allowed_directories_and_system_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let allowed = dir.path().join("allowed");
        std::fs::create_dir_all(allowed.join("sub")).expect("mkdir");
        std::fs::write(allowed.join("sub/image"), b"x").expect("write");
        std::fs::write(dir.path().join("secret"), b"x").expect("write");
        let deploy = config(&[&allowed]);
        let url = |p: &Path| format!("file://{}", p.display());
        assert!(resolve(&url(&allowed.join("sub/image")), &deploy).is_ok());
        assert!(resolve(&url(&allowed.join("sub/../sub/image")), &deploy).is_ok());
        for bad in [
            dir.path().join("secret"),
            allowed.join("../secret"),
            allowed.join("missing"),
            allowed.join("sub"),
        ] {
            assert!(resolve(&url(&bad), &deploy).is_err(), "{}", bad.display());
        }
        // A prefix of a name is not a parent directory.
        std::fs::write(dir.path().join("allowed-not"), b"x").expect("write");
        assert!(resolve(&url(&dir.path().join("allowed-not")), &deploy).is_err());
        let everything = config(&[Path::new("/")]);
        for system in [
            "/dev/zero",
            "/proc/self/environ",
            "/etc/passwd",
            "/sys/kernel/uevent_seqnum",
            "/dev/../etc/passwd",
        ] {
            let err = resolve(&format!("file://{system}"), &everything).expect_err(system);
            assert!(err.contains("system directory"), "{err}");
        }
    }

    #[test]
    fn limits_refuse_past_the_maximum_and_the_declared_size() {
        let limits = Limits {
            max_bytes: 100,
            declared_bytes: Some(50),
            read_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(1),
        };
        assert!(limits.check("i", 50).is_ok());
        assert!(limits
            .check("i", 51)
            .expect_err("declared")
            .contains("declared size of 50"));
        let open = Limits {
            declared_bytes: None,
            ..limits
        };
        assert!(open.check("i", 100).is_ok());
        assert!(open
            .check("i", 101)
            .expect_err("max")
            .contains("image_max_bytes"));
    }

    #[test]
    fn eviction_goes_least_recently_used_first_and_spares_entries_in_use() {
        let t = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let dir = tempfile::tempdir().expect("tempdir");
        let entry = |name: &str, bytes, used, in_use| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"x").expect("write");
            CacheEntry {
                files: vec![path.clone()],
                path,
                bytes,
                used,
                in_use,
            }
        };
        let entries = vec![
            entry("old-in-use", 10, t(1), true),
            entry("old", 10, t(2), false),
            entry("middle", 10, t(3), false),
            entry("new", 10, t(4), false),
            entry("kept", 10, t(0), false),
        ];
        let evicted = evict(entries, 35, &dir.path().join("kept"));
        assert_eq!(
            evicted,
            vec![dir.path().join("old"), dir.path().join("middle")]
        );
        assert!(!dir.path().join("old").exists());
        assert!(dir.path().join("old-in-use").exists());
        assert!(dir.path().join("new").exists());
    }
}
