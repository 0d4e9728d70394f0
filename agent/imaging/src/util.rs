//! Helpers shared by the modules: external tools, blkid probing, and a
//! sparse-aware writer for disk files.
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{ImagingError, Result};

/// Runs `program` with `args`; a non-zero exit is a [`ImagingError::Tool`]
/// naming the command and its stderr. Returns stdout.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    run_env(program, args, &[])
}

/// As [`run`], with extra environment variables.
pub fn run_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .map_err(|e| ImagingError::Tool(format!("cannot run {program} (is it installed?): {e}")))?;
    if !out.status.success() {
        return Err(ImagingError::Tool(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What `blkid -p` finds at `offset` of `path` (within `size` bytes), as
/// `KEY=value` pairs (`TYPE`, `UUID`, `LABEL`…); empty when nothing.
pub fn probe(path: &Path, offset: u64, size: u64) -> Result<BTreeMap<String, String>> {
    let out = Command::new("blkid")
        .arg("-p")
        .arg("-O")
        .arg(offset.to_string())
        .arg("-S")
        .arg(size.to_string())
        .arg("-o")
        .arg("export")
        .arg(path)
        .output()
        .map_err(|e| ImagingError::Tool(format!("cannot run blkid (is it installed?): {e}")))?;
    // blkid exits 2 when it finds nothing.
    if !out.status.success() && out.status.code() != Some(2) {
        return Err(ImagingError::Tool(format!(
            "blkid -p -O {offset} {} failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

const BLOCK: usize = 4096;

static ZEROS: [u8; BLOCK] = [0u8; BLOCK];

/// Whether `data` is all zeros. Compares against a zero block, which the
/// standard library does with memcmp: fast even in unoptimised builds.
fn is_zero(data: &[u8]) -> bool {
    data.chunks(BLOCK).all(|c| c == &ZEROS[..c.len()])
}

/// Writes a byte stream into a file region, keeping the file sparse:
/// all-zero 4 KiB blocks are not written when the file already reads as
/// zeros there (holes of a fresh sparse disk), and written as zeros when
/// it does not (a redeployed disk).
pub struct SparseWriter {
    file: File,
    path: PathBuf,
    base: u64,
    limit: u64,
    pos: u64,
    extend: bool,
    scratch: Vec<u8>,
}

impl SparseWriter {
    /// Writes into `path` from byte `base`, refusing to go beyond `limit`
    /// bytes. The file must exist; it is never truncated.
    pub fn open(path: &Path, base: u64, limit: u64) -> Result<SparseWriter> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| ImagingError::Io(format!("cannot open {}: {e}", path.display())))?;
        Ok(SparseWriter {
            file,
            path: path.to_path_buf(),
            base,
            limit,
            pos: 0,
            extend: false,
            scratch: Vec::new(),
        })
    }

    /// Writes a new (staging) file that grows with the data.
    pub fn create(path: &Path) -> Result<SparseWriter> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| ImagingError::Io(format!("cannot create {}: {e}", path.display())))?;
        Ok(SparseWriter {
            file,
            path: path.to_path_buf(),
            base: 0,
            limit: u64::MAX,
            pos: 0,
            extend: true,
            scratch: Vec::new(),
        })
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn io(&self, what: &str, e: std::io::Error) -> ImagingError {
        ImagingError::Io(format!("cannot {what} {}: {e}", self.path.display()))
    }

    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if self.pos + data.len() as u64 > self.limit {
            return Err(ImagingError::TooSmall(format!(
                "the image is larger than the {} bytes available for it on {}",
                self.limit,
                self.path.display()
            )));
        }
        let mut i = 0;
        while i < data.len() {
            let end = (i + BLOCK).min(data.len());
            let zero = is_zero(&data[i..end]);
            let mut j = end;
            while j < data.len() {
                let next = (j + BLOCK).min(data.len());
                if is_zero(&data[j..next]) != zero {
                    break;
                }
                j = next;
            }
            let at = self.base + self.pos + i as u64;
            if zero {
                if !self.extend {
                    self.zero_range(at, j - i)?;
                }
            } else {
                self.file
                    .write_all_at(&data[i..j], at)
                    .map_err(|e| self.io("write", e))?;
            }
            i = j;
        }
        self.pos += data.len() as u64;
        Ok(())
    }

    /// Makes `len` bytes at `at` read as zeros, writing only where the file
    /// holds something else. Holes of a sparse target already read as
    /// zeros and are skipped without reading them (SEEK_DATA/SEEK_HOLE);
    /// where the target cannot tell (a block device, an old filesystem) the
    /// whole range is read and compared.
    fn zero_range(&mut self, at: u64, len: usize) -> Result<()> {
        use rustix::fs::{seek, SeekFrom};
        let end = at + len as u64;
        let mut pos = at;
        while pos < end {
            let data = match seek(&self.file, SeekFrom::Data(pos)) {
                Ok(data) => data,
                // Nothing but hole from `pos` to the end of the file.
                Err(rustix::io::Errno::NXIO) => return Ok(()),
                Err(_) => return self.zero_scan(pos, (end - pos) as usize),
            };
            if data >= end {
                return Ok(());
            }
            let hole = match seek(&self.file, SeekFrom::Hole(data)) {
                Ok(hole) if hole > data => hole.min(end),
                _ => end,
            };
            self.zero_scan(data, (hole - data) as usize)?;
            pos = hole;
        }
        Ok(())
    }

    /// [`Self::zero_range`] by reading: clears the 4 KiB blocks of the range
    /// that are not zero.
    fn zero_scan(&mut self, at: u64, len: usize) -> Result<()> {
        const STEP: usize = 1 << 20;
        let mut done = 0;
        while done < len {
            let n = STEP.min(len - done);
            self.scratch.resize(n, 0);
            let mut got = 0;
            while got < n {
                let r = self
                    .file
                    .read_at(&mut self.scratch[got..n], at + (done + got) as u64)
                    .map_err(|e| self.io("read", e))?;
                if r == 0 {
                    break;
                }
                got += r;
            }
            if !is_zero(&self.scratch[..got]) {
                // Clear only the 4 KiB blocks that hold something.
                let zeros = [0u8; BLOCK];
                for (k, block) in self.scratch[..got].chunks(BLOCK).enumerate() {
                    if !is_zero(block) {
                        let pos = at + (done + k * BLOCK) as u64;
                        self.file
                            .write_all_at(&zeros[..block.len()], pos)
                            .map_err(|e| {
                                ImagingError::Io(format!(
                                    "cannot write {}: {e}",
                                    self.path.display()
                                ))
                            })?;
                    }
                }
            }
            done += n;
        }
        Ok(())
    }

    /// Flushes to stable storage; a staging file gets its full length.
    /// Returns the bytes written.
    pub fn finish(self) -> Result<u64> {
        if self.extend {
            let len = self.file.metadata().map_err(|e| self.io("stat", e))?.len();
            if len < self.base + self.pos {
                self.file
                    .set_len(self.base + self.pos)
                    .map_err(|e| self.io("extend", e))?;
            }
        }
        self.file.sync_data().map_err(|e| self.io("sync", e))?;
        Ok(self.pos)
    }
}

/// Copies the whole of `src` into `dst` at `offset` (at most `limit`
/// bytes), keeping `dst` sparse. Returns the bytes copied.
pub fn copy_into(src: &Path, dst: &Path, offset: u64, limit: u64) -> Result<u64> {
    let mut input = File::open(src)
        .map_err(|e| ImagingError::Io(format!("cannot open {}: {e}", src.display())))?;
    let len = input
        .metadata()
        .map_err(|e| ImagingError::Io(format!("cannot stat {}: {e}", src.display())))?
        .len();
    if len > limit {
        return Err(ImagingError::TooSmall(format!(
            "{} ({len} bytes) does not fit the {limit} bytes available on {}",
            src.display(),
            dst.display()
        )));
    }
    let mut out = SparseWriter::open(dst, offset, limit)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input
            .read(&mut buf)
            .map_err(|e| ImagingError::Io(format!("cannot read {}: {e}", src.display())))?;
        if n == 0 {
            break;
        }
        out.write(&buf[..n])?;
    }
    out.finish()
}

/// Writes `data` at `offset` of `path`.
pub fn write_at(path: &Path, offset: u64, data: &[u8]) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| ImagingError::Io(format!("cannot open {}: {e}", path.display())))?;
    file.write_all_at(data, offset)
        .map_err(|e| ImagingError::Io(format!("cannot write {}: {e}", path.display())))?;
    file.sync_data()
        .map_err(|e| ImagingError::Io(format!("cannot sync {}: {e}", path.display())))
}

/// Reads `len` bytes at `offset` of `path`.
pub fn read_at(path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let file = File::open(path)
        .map_err(|e| ImagingError::Io(format!("cannot open {}: {e}", path.display())))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)
        .map_err(|e| ImagingError::Io(format!("cannot read {}: {e}", path.display())))?;
    Ok(buf)
}

/// Makes `len` bytes at `offset` of `path` read as zeros, writing only
/// where something else is stored (holes stay holes).
pub fn zero(path: &Path, offset: u64, len: u64) -> Result<()> {
    let mut w = SparseWriter::open(path, offset, len)?;
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(1 << 20) as usize;
        let at = offset + done;
        w.zero_range(at, n)?;
        done += n as u64;
    }
    w.file
        .sync_data()
        .map_err(|e| ImagingError::Io(format!("cannot sync {}: {e}", path.display())))
}

/// The `file@@offset` image spec mtools takes.
pub fn mtools_image(path: &Path, offset: u64) -> String {
    format!("{}@@{offset}", path.display())
}

/// Runs an mtools command (`mmd`, `mcopy`, `mdir`…) with the drive check
/// disabled, as needed for filesystems inside disk image files.
pub fn mtools(program: &str, args: &[&str]) -> Result<String> {
    run_env(program, args, &[("MTOOLS_SKIP_CHECK", "1")])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sparse_writer_skips_zeros_and_clears_old_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        let f = File::create(&path).unwrap();
        f.set_len(64 << 20).unwrap();
        // Old data where the new image has zeros.
        f.write_all_at(&[0xAB; 8192], 4 << 20).unwrap();
        let mut data = vec![0u8; 16 << 20];
        data[..4096].fill(1);
        data[(12 << 20)..(12 << 20) + 10].fill(2);
        let mut w = SparseWriter::open(&path, 0, 64 << 20).unwrap();
        w.write(&data).unwrap();
        assert_eq!(w.finish().unwrap(), 16 << 20);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 64 << 20);
        // Three touched blocks plus the cleared old data: far below 16 MiB.
        assert!(
            meta.blocks() * 512 < (256 << 10),
            "{} bytes allocated",
            meta.blocks() * 512
        );
        assert_eq!(read_at(&path, 4 << 20, 8192).unwrap(), vec![0u8; 8192]);
        assert_eq!(read_at(&path, 0, 2).unwrap(), vec![1, 1]);
        assert_eq!(read_at(&path, 12 << 20, 1).unwrap(), vec![2]);
    }

    #[test]
    fn zeros_clear_every_old_extent_between_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        let f = File::create(&path).unwrap();
        f.set_len(64 << 20).unwrap();
        // Old data in several extents, holes between them, one extent
        // straddling the end of the image and one past it.
        for at in [
            1u64 << 20,
            5 << 20,
            (9 << 20) + 4096,
            (16 << 20) - 4096,
            20 << 20,
        ] {
            f.write_all_at(&[0xCD; 8192], at).unwrap();
        }
        let data = vec![0u8; 16 << 20];
        let mut w = SparseWriter::open(&path, 0, 64 << 20).unwrap();
        w.write(&data).unwrap();
        w.finish().unwrap();
        for at in [1u64 << 20, 5 << 20, (9 << 20) + 4096, (16 << 20) - 4096] {
            assert_eq!(
                read_at(&path, at, 4096).unwrap(),
                vec![0u8; 4096],
                "at {at}"
            );
        }
        // The byte right after the image is old data the image does not cover.
        assert_eq!(read_at(&path, 16 << 20, 1).unwrap(), vec![0xCD]);
        assert_eq!(read_at(&path, 20 << 20, 1).unwrap(), vec![0xCD]);
    }

    #[test]
    fn sparse_writer_refuses_beyond_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        File::create(&path).unwrap().set_len(1 << 20).unwrap();
        let mut w = SparseWriter::open(&path, 4096, 8192).unwrap();
        assert!(w.write(&[1u8; 8192]).is_ok());
        assert!(matches!(w.write(&[1u8; 1]), Err(ImagingError::TooSmall(_))));
    }
}
