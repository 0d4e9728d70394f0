//! The `erase_devices_metadata` clean step.
use crate::hardware::Disk;
use crate::{table, util, ImagingError, Result};

/// Bytes cleared at the start of every partition: covers the signatures of
/// the filesystems blkid probes first (FAT, ext*, xfs, swap, ISO 9660,
/// btrfs at 64 KiB, LUKS).
const PARTITION_HEAD: u64 = 128 << 10;
/// Bytes cleared at each end of the disk: MBR, both GPTs and anything
/// written before the first 1 MiB-aligned partition.
const DISK_EDGE: u64 = 1 << 20;
/// Bytes cleared at the end of every partition (md / LVM style metadata).
const PARTITION_TAIL: u64 = 64 << 10;

/// Removes partition tables and filesystem signatures from `disk`: both
/// GPT headers and entry arrays, the MBR, and the signatures at the start
/// (and metadata at the end) of every partition — what `wipefs --all` on
/// the partitions and the disk plus `sgdisk -Z` achieve. The file keeps
/// its size; untouched areas are not written (sparse files stay sparse).
pub fn erase_metadata(disk: &Disk) -> Result<()> {
    let size = std::fs::metadata(&disk.path)
        .map_err(|e| {
            ImagingError::Io(format!("disk {} ({}): {e}", disk.name, disk.path.display()))
        })?
        .len();
    // A damaged table is erased anyway.
    let partitions = match table::read(&disk.path) {
        Ok(Some(t)) => t.partitions,
        Ok(None) | Err(_) => Vec::new(),
    };
    for p in &partitions {
        let end = (p.start + p.size).min(size);
        if p.start >= end {
            continue;
        }
        let len = end - p.start;
        util::zero(&disk.path, p.start, len.min(PARTITION_HEAD))?;
        let tail = len.min(PARTITION_TAIL);
        util::zero(&disk.path, end - tail, tail)?;
    }
    util::zero(&disk.path, 0, size.min(DISK_EDGE))?;
    let tail = size.min(DISK_EDGE);
    util::zero(&disk.path, size - tail, tail)?;
    Ok(())
}
