//! Images and disks for tests and benchmarks of this and other crates:
//! ext4 root filesystems (`mkfs.ext4 -d`), whole-disk images (GPT with a
//! BIOS boot partition, an EFI system partition holding
//! `EFI/BOOT/BOOTX64.EFI`, and an ext4 root), qcow2 conversion and sparse
//! disks. Needs mkfs.ext4, mkfs.vfat and qemu-img, except
//! [`tool_free_whole_disk_image`].
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::hardware::Disk;
use crate::table::{self, Label, Partition, Table};
use crate::{boot, image, util, ImagingError, Result};

const MIB: u64 = 1 << 20;

/// A sparse file of `size` bytes at `dir/<name>.img`, described as disk
/// `/dev/<name>`.
pub fn sparse_disk(dir: &Path, name: &str, size: u64) -> Result<Disk> {
    let path = dir.join(format!("{name}.img"));
    let file = std::fs::File::create(&path)
        .map_err(|e| ImagingError::Io(format!("cannot create {}: {e}", path.display())))?;
    file.set_len(size)
        .map_err(|e| ImagingError::Io(format!("cannot size {}: {e}", path.display())))?;
    Ok(Disk {
        name: format!("/dev/{name}"),
        path,
        size,
        model: "Ferrite Virtual Disk".into(),
        vendor: "FERRITE".into(),
        serial: Some(format!("FERRITE-{name}")),
        wwn: None,
        wwn_with_extension: None,
        wwn_vendor_extension: None,
        rotational: false,
        hctl: None,
        by_path: None,
    })
}

/// A small root filesystem's files: `/etc/hostname`, `/etc/os-release`
/// and `/boot/grub/grub.cfg`.
pub fn root_files(hostname: &str) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    files.insert("etc/hostname".into(), format!("{hostname}\n").into_bytes());
    files.insert(
        "etc/os-release".into(),
        b"NAME=\"Ferrite Test OS\"\nID=ferrite\nVERSION_ID=1\n".to_vec(),
    );
    files.insert(
        "boot/grub/grub.cfg".into(),
        b"menuentry 'Ferrite Test OS' { linux /boot/vmlinuz root=LABEL=root }\n".to_vec(),
    );
    files
}

/// Writes `files` (relative path → content) under `dir`.
pub fn write_tree(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    for (rel, content) in files {
        let rel = rel.trim_start_matches('/');
        if rel.split('/').any(|c| c == "..") {
            return Err(ImagingError::Invalid(format!(
                "file path {rel:?} leaves the tree"
            )));
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                ImagingError::Io(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        std::fs::write(&path, content)
            .map_err(|e| ImagingError::Io(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Makes an ext4 filesystem of `size` bytes labelled `label` holding the
/// tree at `dir`, in `path` at byte `offset` (the file is created or
/// extended as needed, never truncated). Returns the filesystem UUID.
pub fn ext4_from_dir(
    path: &Path,
    offset: u64,
    size: u64,
    dir: &Path,
    label: &str,
) -> Result<String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| ImagingError::Io(format!("cannot open {}: {e}", path.display())))?;
    let len = file
        .metadata()
        .map_err(|e| ImagingError::Io(format!("cannot stat {}: {e}", path.display())))?
        .len();
    if len < offset + size {
        file.set_len(offset + size)
            .map_err(|e| ImagingError::Io(format!("cannot size {}: {e}", path.display())))?;
    }
    drop(file);
    let fs_uuid = uuid::Uuid::new_v4().to_string();
    util::run(
        "mkfs.ext4",
        &[
            "-F",
            "-q",
            "-L",
            label,
            "-U",
            &fs_uuid,
            "-E",
            &format!("offset={offset}"),
            "-d",
            &dir.to_string_lossy(),
            &path.to_string_lossy(),
            &format!("{}k", size / 1024),
        ],
    )?;
    Ok(fs_uuid)
}

/// An ext4 filesystem image (a partition image) of `size` bytes at `path`
/// holding `files`, labelled `root`. Returns the filesystem UUID.
pub fn ext4_image(path: &Path, size: u64, files: &BTreeMap<String, Vec<u8>>) -> Result<String> {
    let tree = tempfile::tempdir()
        .map_err(|e| ImagingError::Io(format!("cannot create a temp dir: {e}")))?;
    write_tree(tree.path(), files)?;
    if path.exists() {
        std::fs::remove_file(path)
            .map_err(|e| ImagingError::Io(format!("cannot replace {}: {e}", path.display())))?;
    }
    ext4_from_dir(path, 0, size, tree.path(), "root")
}

/// What [`whole_disk_image`] made.
#[derive(Debug, Clone)]
pub struct WholeDiskImage {
    pub path: PathBuf,
    pub size: u64,
    pub table: Table,
    /// ext4 UUID of the root filesystem (last partition); for
    /// [`tool_free_whole_disk_image`], the root partition's UUID.
    pub root_uuid: String,
    /// The root partition (number, byte offset, size).
    pub root: Partition,
    /// The EFI system partition.
    pub esp: Partition,
}

/// A raw whole-disk image of `size` bytes (at least 48 MiB) at `path`:
/// GPT with a 1 MiB BIOS boot partition, a 32 MiB EFI system partition
/// (FAT, holding `EFI/BOOT/BOOTX64.EFI` and `grub.cfg`) and an ext4 root
/// holding `files` over the rest; boot code in the MBR, so it boots in
/// both UEFI and BIOS mode.
pub fn whole_disk_image(
    path: &Path,
    size: u64,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<WholeDiskImage> {
    let (written, esp, root) = whole_disk_layout(path, size)?;
    image::make_filesystem(path, &esp, "vfat", "EFI-PART", &std::env::temp_dir())?;
    let tree = tempfile::tempdir()
        .map_err(|e| ImagingError::Io(format!("cannot create a temp dir: {e}")))?;
    write_tree(tree.path(), files)?;
    let root_uuid = ext4_from_dir(path, root.start, root.size, tree.path(), "root")?;
    finish_whole_disk(path, size, written, esp, root, root_uuid)
}

/// The same layout as [`whole_disk_image`] made without external tools
/// (only `blkid`, which every Linux has): the EFI system partition is
/// formatted in process and the root partition holds no filesystem, its
/// partition UUID stands for the root. What `ferrite up` deploys to its
/// simulated fleet.
pub fn tool_free_whole_disk_image(path: &Path, size: u64) -> Result<WholeDiskImage> {
    let (written, esp, root) = whole_disk_layout(path, size)?;
    crate::fat::format(path, esp.start, esp.size, "EFI-PART")?;
    let root_uuid = root.uuid.clone();
    finish_whole_disk(path, size, written, esp, root, root_uuid)
}

/// A sparse file of `size` bytes with the whole-disk partition table;
/// returns the table, the ESP and the root partition.
fn whole_disk_layout(path: &Path, size: u64) -> Result<(Table, Partition, Partition)> {
    if size < 48 * MIB {
        return Err(ImagingError::TooSmall(format!(
            "a whole-disk image needs at least 48 MiB, not {size} bytes"
        )));
    }
    if path.exists() {
        std::fs::remove_file(path)
            .map_err(|e| ImagingError::Io(format!("cannot replace {}: {e}", path.display())))?;
    }
    let file = std::fs::File::create(path)
        .map_err(|e| ImagingError::Io(format!("cannot create {}: {e}", path.display())))?;
    file.set_len(size)
        .map_err(|e| ImagingError::Io(format!("cannot size {}: {e}", path.display())))?;
    drop(file);
    let (_, hi) = table::usable_range(Label::Gpt, size);
    let part = |number: u32, start: u64, size: u64, kind: &str, name: &str| Partition {
        number,
        start,
        size,
        kind: kind.into(),
        uuid: String::new(),
        name: Some(name.into()),
        bootable: false,
    };
    let root_start = 34 * MIB;
    let wanted = Table {
        label: Label::Gpt,
        id: String::new(),
        partitions: vec![
            part(1, MIB, MIB, table::GPT_BIOS_BOOT, "bios-boot"),
            part(2, 2 * MIB, 32 * MIB, table::GPT_ESP, "efi-part"),
            part(
                3,
                root_start,
                (hi - root_start) / 4096 * 4096,
                table::GPT_LINUX,
                "root",
            ),
        ],
    };
    let written = table::write(path, &wanted)?;
    let esp = written.partitions[1].clone();
    let root = written.partitions[2].clone();
    Ok((written, esp, root))
}

/// An image file of `size` bytes seen as a disk (no identity fields).
fn image_disk(path: &Path, size: u64) -> Disk {
    Disk {
        name: path.display().to_string(),
        path: path.to_path_buf(),
        size,
        model: String::new(),
        vendor: String::new(),
        serial: None,
        wwn: None,
        wwn_with_extension: None,
        wwn_vendor_extension: None,
        rotational: false,
        hctl: None,
        by_path: None,
    }
}

/// Installs the UEFI and BIOS boot evidence naming `root_uuid`.
fn finish_whole_disk(
    path: &Path,
    size: u64,
    written: Table,
    esp: Partition,
    root: Partition,
    root_uuid: String,
) -> Result<WholeDiskImage> {
    let disk = image_disk(path, size);
    boot::install_bootloader(&disk, &root_uuid, None, "uefi")?;
    boot::install_bootloader(&disk, &root_uuid, None, "bios")?;
    Ok(WholeDiskImage {
        path: path.to_path_buf(),
        size,
        table: written,
        root_uuid,
        root,
        esp,
    })
}

/// Converts the raw image `raw` to qcow2 at `qcow2`.
pub fn to_qcow2(raw: &Path, qcow2: &Path) -> Result<()> {
    util::run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            &raw.to_string_lossy(),
            &qcow2.to_string_lossy(),
        ],
    )?;
    Ok(())
}

/// Hex digest of `path` with `algo` (`md5`, `sha256`, `sha384`, `sha512`;
/// anything else is an error).
pub fn file_digest(path: &Path, algo: &str) -> Result<String> {
    use sha2::Digest;
    use std::io::Read;
    if !["md5", "sha256", "sha384", "sha512"].contains(&algo) {
        return Err(ImagingError::Invalid(format!("unknown digest {algo:?}")));
    }
    let mut f = std::fs::File::open(path)
        .map_err(|e| ImagingError::Io(format!("cannot open {}: {e}", path.display())))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut md5 = md5::Md5::new();
    let mut s256 = sha2::Sha256::new();
    let mut s384 = sha2::Sha384::new();
    let mut s512 = sha2::Sha512::new();
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| ImagingError::Io(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        match algo {
            "md5" => md5.update(&buf[..n]),
            "sha384" => s384.update(&buf[..n]),
            "sha512" => s512.update(&buf[..n]),
            _ => s256.update(&buf[..n]),
        }
    }
    let bytes = match algo {
        "md5" => md5.finalize().to_vec(),
        "sha384" => s384.finalize().to_vec(),
        "sha512" => s512.finalize().to_vec(),
        _ => s256.finalize().to_vec(),
    };
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `content` gzip-compressed and base64-encoded, as a config drive is
/// passed to the agent.
pub fn gzip_base64(content: &[u8]) -> Result<String> {
    use base64::Engine;
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(content)
        .map_err(|e| ImagingError::Io(format!("gzip: {e}")))?;
    let raw = gz
        .finish()
        .map_err(|e| ImagingError::Io(format!("gzip: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(raw))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tool_free_image_boots_in_both_modes_and_names_its_root() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.raw");
        let made = tool_free_whole_disk_image(&path, 64 * MIB).unwrap();
        assert_eq!(made.table.partitions.len(), 3);
        assert_eq!(made.root_uuid, made.root.uuid);
        let disk = image_disk(&path, 64 * MIB);
        let uefi = boot::boot_check(&disk, "uefi").unwrap();
        assert_eq!(uefi.partition, made.esp.number);
        let bios = boot::boot_check(&disk, "bios").unwrap();
        assert_eq!(bios.partition, made.root.number);
        let cfg = crate::fat::read(&path, made.esp.start, "EFI/BOOT/grub.cfg").unwrap();
        let cfg = String::from_utf8(cfg).unwrap();
        assert!(cfg.contains(&made.root_uuid), "{cfg}");
        // The ESP is a FAT filesystem other tools recognise.
        let found = util::probe(&path, made.esp.start, made.esp.size).unwrap();
        assert_eq!(found.get("TYPE").map(String::as_str), Some("vfat"));
        assert_eq!(found.get("LABEL").map(String::as_str), Some("EFI-PART"));
        // Sparse: far less on disk than its size.
        use std::os::unix::fs::MetadataExt;
        assert!(std::fs::metadata(&path).unwrap().blocks() * 512 < 8 * MIB);
    }
}
