//! FAT filesystems inside disk files (EFI system partitions), in process:
//! formatting, writing and looking up files without mtools or dosfstools,
//! so the firmware's boot check and the demo image need no external tools.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::{ImagingError, Result};

/// A window `[start, start + len)` of a file, as a stream (what the FAT
/// library reads and writes).
struct Window {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Window {
    fn open(path: &Path, start: u64, len: Option<u64>, write: bool) -> Result<Window> {
        let file = OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .map_err(|e| ImagingError::Io(format!("cannot open {}: {e}", path.display())))?;
        let len = match len {
            Some(len) => len,
            None => {
                let total = file
                    .metadata()
                    .map_err(|e| ImagingError::Io(format!("cannot stat {}: {e}", path.display())))?
                    .len();
                total.saturating_sub(start)
            }
        };
        Ok(Window {
            file,
            start,
            len,
            pos: 0,
        })
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.remaining() as usize);
        if n == 0 {
            return Ok(0);
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let read = self.file.read(&mut buf[..n])?;
        self.pos += read as u64;
        Ok(read)
    }
}

impl Write for Window {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.remaining() as usize);
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let written = self.file.write(&buf[..n])?;
        self.pos += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(n) if n <= self.len => {
                self.pos = n;
                Ok(n)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek outside the partition",
            )),
        }
    }
}

fn fat_error(what: &str, path: &Path, offset: u64) -> impl FnOnce(io::Error) -> ImagingError {
    let what = what.to_string();
    let path = path.to_path_buf();
    move |e| {
        ImagingError::Io(format!(
            "{what} (FAT filesystem at byte {offset} of {}): {e}",
            path.display()
        ))
    }
}

/// The 11-byte, space-padded, upper-case volume label FAT stores.
fn label_bytes(label: &str) -> [u8; 11] {
    let mut out = [b' '; 11];
    for (slot, byte) in out.iter_mut().zip(
        label
            .bytes()
            .filter(|b| b.is_ascii_graphic())
            .map(|b| b.to_ascii_uppercase()),
    ) {
        *slot = byte;
    }
    out
}

/// Formats `[offset, offset + size)` of `image` as FAT (the library picks
/// FAT12/16/32 by size, as mkfs.vfat does) labelled `label`.
pub fn format(image: &Path, offset: u64, size: u64, label: &str) -> Result<()> {
    let window = Window::open(image, offset, Some(size), true)?;
    fatfs::format_volume(
        window,
        fatfs::FormatVolumeOptions::new().volume_label(label_bytes(label)),
    )
    .map_err(fat_error("cannot format", image, offset))
}

fn open_fs(image: &Path, offset: u64, write: bool) -> Result<fatfs::FileSystem<Window>> {
    let window = Window::open(image, offset, None, write)?;
    fatfs::FileSystem::new(window, fatfs::FsOptions::new()).map_err(fat_error(
        "not a FAT filesystem",
        image,
        offset,
    ))
}

/// Writes `content` as `dir/name` (directories created as needed,
/// an existing file replaced) into the FAT filesystem at `offset`.
pub fn put(image: &Path, offset: u64, dir: &str, name: &str, content: &[u8]) -> Result<()> {
    let fs = open_fs(image, offset, true)?;
    {
        let mut current = fs.root_dir();
        for part in dir.split('/').filter(|s| !s.is_empty()) {
            current = current.create_dir(part).map_err(fat_error(
                "cannot create a directory",
                image,
                offset,
            ))?;
        }
        let mut file =
            current
                .create_file(name)
                .map_err(fat_error("cannot create a file", image, offset))?;
        file.truncate()
            .map_err(fat_error("cannot truncate a file", image, offset))?;
        file.write_all(content)
            .map_err(fat_error("cannot write a file", image, offset))?;
        file.flush()
            .map_err(fat_error("cannot write a file", image, offset))?;
    }
    fs.unmount()
        .map_err(fat_error("cannot unmount", image, offset))
}

/// Whether the FAT filesystem at `offset` holds the file `path` (e.g.
/// `EFI/BOOT/BOOTX64.EFI`; FAT names are case-insensitive).
pub fn has(image: &Path, offset: u64, path: &str) -> bool {
    let Ok(fs) = open_fs(image, offset, false) else {
        return false;
    };
    let path = path.trim_start_matches('/');
    let found = fs.root_dir().open_file(path).is_ok();
    found
}

/// Reads the file `path` of the FAT filesystem at `offset`.
pub fn read(image: &Path, offset: u64, path: &str) -> Result<Vec<u8>> {
    let fs = open_fs(image, offset, false)?;
    let mut file = fs
        .root_dir()
        .open_file(path.trim_start_matches('/'))
        .map_err(fat_error(&format!("no {path}"), image, offset))?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)
        .map_err(fat_error(&format!("cannot read {path}"), image, offset))?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn format_put_and_find_inside_a_disk_file() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk");
        let f = File::create(&disk).unwrap();
        f.set_len(64 << 20).unwrap();
        drop(f);
        // Something before the partition must survive.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&disk)
            .unwrap()
            .write_all(b"before")
            .unwrap();
        format(&disk, 1 << 20, 32 << 20, "efi-part").unwrap();
        assert!(!has(&disk, 1 << 20, "EFI/BOOT/BOOTX64.EFI"));
        put(&disk, 1 << 20, "EFI/BOOT", "BOOTX64.EFI", b"loader").unwrap();
        put(&disk, 1 << 20, "EFI/BOOT", "grub.cfg", b"first").unwrap();
        put(&disk, 1 << 20, "/EFI/BOOT/", "grub.cfg", b"second").unwrap();
        assert!(has(&disk, 1 << 20, "EFI/BOOT/BOOTX64.EFI"));
        assert!(has(&disk, 1 << 20, "efi/boot/bootx64.efi"));
        assert!(!has(&disk, 1 << 20, "EFI/BOOT/missing"));
        assert!(!has(&disk, 0, "EFI/BOOT/BOOTX64.EFI"));
        assert_eq!(
            read(&disk, 1 << 20, "EFI/BOOT/grub.cfg").unwrap(),
            b"second"
        );
        let mut head = [0u8; 6];
        File::open(&disk).unwrap().read_exact(&mut head).unwrap();
        assert_eq!(&head, b"before");
        // Nothing was written past the partition.
        let mut tail = vec![0u8; 1 << 20];
        let mut f = File::open(&disk).unwrap();
        f.seek(SeekFrom::Start(33 << 20)).unwrap();
        f.read_exact(&mut tail).unwrap();
        assert!(tail.iter().all(|b| *b == 0));
    }

    #[test]
    fn label_is_padded_and_upper_case() {
        assert_eq!(&label_bytes("efi-part"), b"EFI-PART   ");
        assert_eq!(&label_bytes("a very long label"), b"AVERYLONGLA");
    }
}
