//! Partition tables (GPT and MBR), read and written in pure Rust.
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::{ImagingError, Result};

/// Logical sector size of every disk we handle.
pub const SECTOR: u64 = 512;
/// Partition alignment (1 MiB, as parted and sgdisk default to).
pub const ALIGN: u64 = 1 << 20;
/// GPT type of an EFI system partition.
pub const GPT_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// GPT type of a BIOS boot partition (GRUB's core image on GPT disks).
pub const GPT_BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
/// GPT type of Linux filesystem data.
pub const GPT_LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
/// GPT type of Linux swap.
pub const GPT_SWAP: &str = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F";

const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
const GPT_ENTRIES: u64 = 128;
const GPT_ENTRY_SIZE: u64 = 128;
/// Sectors taken by the entry array (128 entries x 128 bytes).
const GPT_ENTRY_SECTORS: u64 = GPT_ENTRIES * GPT_ENTRY_SIZE / SECTOR;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Gpt,
    Msdos,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// 1-based.
    pub number: u32,
    /// Byte offset and size.
    pub start: u64,
    pub size: u64,
    /// GPT type GUID (upper case) or MBR type byte as two hex digits.
    pub kind: String,
    /// GPT partition GUID (lower case), or `<disk id>-<nn>` for MBR, as
    /// blkid reports PARTUUID.
    pub uuid: String,
    /// GPT partition name.
    pub name: Option<String>,
    /// MBR active flag.
    pub bootable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub label: Label,
    /// GPT disk GUID or MBR disk signature (`0x…`).
    pub id: String,
    pub partitions: Vec<Partition>,
}

impl Table {
    /// The partition with GPT/MBR number `number`.
    pub fn partition(&self, number: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == number)
    }

    /// The first partition whose type is `kind` (case-insensitive).
    pub fn find_kind(&self, kind: &str) -> Option<&Partition> {
        self.partitions
            .iter()
            .find(|p| p.kind.eq_ignore_ascii_case(kind))
    }
}

fn io_err(path: &Path, what: &str, err: std::io::Error) -> ImagingError {
    ImagingError::Io(format!("{what} {}: {err}", path.display()))
}

fn read_at(file: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)
        .map_err(|e| io_err(path, "cannot read", e))?;
    Ok(buf)
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

fn guid_at(buf: &[u8], at: usize) -> uuid::Uuid {
    let mut b = [0u8; 16];
    b.copy_from_slice(&buf[at..at + 16]);
    uuid::Uuid::from_bytes_le(b)
}

fn guid_string(g: uuid::Uuid) -> String {
    g.hyphenated().to_string().to_uppercase()
}

fn parse_guid(s: &str, what: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(s)
        .map_err(|e| ImagingError::Invalid(format!("{what} {s:?} is not a GUID: {e}")))
}

/// The partition table on `path`, `None` when there is none.
///
/// GPT is recognised through its protective MBR; the primary header and
/// entry array must have valid CRC32s (the backup is used when the primary
/// is damaged). Otherwise an MBR with the 0x55AA signature and at least one
/// primary partition is reported as `msdos`.
pub fn read(path: &Path) -> Result<Option<Table>> {
    let file = File::open(path).map_err(|e| io_err(path, "cannot open", e))?;
    let size = file
        .metadata()
        .map_err(|e| io_err(path, "cannot stat", e))?
        .len();
    if size < SECTOR * 2 {
        return Ok(None);
    }
    let mbr = read_at(&file, path, 0, SECTOR as usize)?;
    if mbr[510] != 0x55 || mbr[511] != 0xAA {
        return Ok(None);
    }
    let protective = (0..4).any(|i| mbr[446 + i * 16 + 4] == 0xEE);
    if protective {
        let sectors = size / SECTOR;
        let gpt = match read_gpt_header(&file, path, 1)? {
            Some(h) => Some(h),
            None => read_gpt_header(&file, path, sectors - 1)?,
        };
        return match gpt {
            Some(h) => Ok(Some(gpt_table(&h))),
            None => Err(ImagingError::Invalid(format!(
                "{} has a protective MBR but neither a valid primary nor a valid backup GPT header",
                path.display()
            ))),
        };
    }
    // Boot indicators other than 0x00/0x80 mean these bytes are not a
    // partition table (e.g. a FAT boot sector on an unpartitioned disk).
    if (0..4).any(|i| mbr[446 + i * 16] & 0x7F != 0) {
        return Ok(None);
    }
    let table = mbr_table(&mbr);
    if table.partitions.is_empty() {
        return Ok(None);
    }
    Ok(Some(table))
}

fn mbr_table(mbr: &[u8]) -> Table {
    let signature = u32_at(mbr, 440);
    let mut partitions = Vec::new();
    for i in 0..4 {
        let e = &mbr[446 + i * 16..446 + (i + 1) * 16];
        let kind = e[4];
        let start = u32_at(e, 8) as u64;
        let count = u32_at(e, 12) as u64;
        if kind == 0 || count == 0 {
            continue;
        }
        let number = i as u32 + 1;
        partitions.push(Partition {
            number,
            start: start * SECTOR,
            size: count * SECTOR,
            kind: format!("{kind:02x}"),
            uuid: format!("{signature:08x}-{number:02x}"),
            name: None,
            bootable: e[0] == 0x80,
        });
    }
    Table {
        label: Label::Msdos,
        id: format!("0x{signature:08x}"),
        partitions,
    }
}

/// A GPT header and its entry array as found on disk.
#[derive(Debug, Clone)]
pub(crate) struct GptRaw {
    pub header: Vec<u8>,
    pub entries: Vec<u8>,
}

impl GptRaw {
    fn entry_count(&self) -> usize {
        u32_at(&self.header, 80) as usize
    }
    fn entry_size(&self) -> usize {
        u32_at(&self.header, 84) as usize
    }
}

/// Largest GPT entry accepted (the specification's sizes are 128 × 2^n;
/// every real table uses 128).
const MAX_GPT_ENTRY_SIZE: u64 = 4096;
/// Largest GPT entry array accepted (the usual one is 16 KiB).
const MAX_GPT_ENTRIES_BYTES: u64 = 4 << 20;

fn read_gpt_header(file: &File, path: &Path, lba: u64) -> Result<Option<GptRaw>> {
    let header = read_at(file, path, lba * SECTOR, SECTOR as usize)?;
    if &header[0..8] != GPT_SIGNATURE {
        return Ok(None);
    }
    let header_size = u32_at(&header, 12) as usize;
    if !(92..=SECTOR as usize).contains(&header_size) {
        return Ok(None);
    }
    let mut check = header[..header_size].to_vec();
    check[16..20].fill(0);
    if crc32fast::hash(&check) != u32_at(&header, 16) {
        return Ok(None);
    }
    let entries_lba = u64_at(&header, 72);
    let count = u32_at(&header, 80) as u64;
    let entry_size = u32_at(&header, 84) as u64;
    // The header is read from the disk, which may hold anything: the entry
    // array it describes is bounded (and must lie on the disk) before a
    // buffer for it is allocated.
    let disk_size = file
        .metadata()
        .map_err(|e| io_err(path, "cannot stat", e))?
        .len();
    let array_bytes = count * entry_size;
    let fits = entries_lba
        .checked_mul(SECTOR)
        .and_then(|start| start.checked_add(array_bytes))
        .is_some_and(|end| end <= disk_size);
    if !(128..=MAX_GPT_ENTRY_SIZE).contains(&entry_size)
        || !entry_size.is_power_of_two()
        || count > 4096
        || array_bytes > MAX_GPT_ENTRIES_BYTES
        || !fits
    {
        return Ok(None);
    }
    let entries = read_at(
        file,
        path,
        entries_lba * SECTOR,
        (count * entry_size) as usize,
    )?;
    if crc32fast::hash(&entries) != u32_at(&header, 88) {
        return Ok(None);
    }
    Ok(Some(GptRaw {
        header: header[..header_size].to_vec(),
        entries,
    }))
}

/// The primary (or, when damaged, backup) GPT of `path`.
pub(crate) fn read_gpt_raw(path: &Path) -> Result<Option<GptRaw>> {
    let file = File::open(path).map_err(|e| io_err(path, "cannot open", e))?;
    let size = file
        .metadata()
        .map_err(|e| io_err(path, "cannot stat", e))?
        .len();
    if size < SECTOR * 4 {
        return Ok(None);
    }
    match read_gpt_header(&file, path, 1)? {
        Some(h) => Ok(Some(h)),
        None => read_gpt_header(&file, path, size / SECTOR - 1),
    }
}

fn gpt_table(raw: &GptRaw) -> Table {
    let mut partitions = Vec::new();
    let size = raw.entry_size();
    for i in 0..raw.entry_count() {
        let e = &raw.entries[i * size..(i + 1) * size];
        if e[0..16].iter().all(|b| *b == 0) {
            continue;
        }
        let first = u64_at(e, 32);
        let last = u64_at(e, 40);
        let units: Vec<u16> = e[56..128]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|u| *u != 0)
            .collect();
        let name = String::from_utf16_lossy(&units);
        partitions.push(Partition {
            number: i as u32 + 1,
            start: first * SECTOR,
            size: (last.saturating_sub(first) + 1) * SECTOR,
            kind: guid_string(guid_at(e, 0)),
            uuid: guid_at(e, 16).hyphenated().to_string(),
            name: if name.is_empty() { None } else { Some(name) },
            bootable: false,
        });
    }
    Table {
        label: Label::Gpt,
        id: guid_string(guid_at(&raw.header, 56)),
        partitions,
    }
}

fn open_rw(path: &Path) -> Result<(File, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, "cannot open for writing", e))?;
    let size = file
        .metadata()
        .map_err(|e| io_err(path, "cannot stat", e))?
        .len();
    Ok((file, size))
}

fn write_at(file: &File, path: &Path, offset: u64, data: &[u8]) -> Result<()> {
    file.write_all_at(data, offset)
        .map_err(|e| io_err(path, "cannot write", e))
}

fn protective_mbr(disk_sectors: u64, boot_code: &[u8]) -> Vec<u8> {
    let mut mbr = vec![0u8; SECTOR as usize];
    let n = boot_code.len().min(440);
    mbr[..n].copy_from_slice(&boot_code[..n]);
    let e = &mut mbr[446..462];
    e[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    e[4] = 0xEE;
    e[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&1u32.to_le_bytes());
    let count = (disk_sectors - 1).min(u32::MAX as u64) as u32;
    e[12..16].copy_from_slice(&count.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    mbr
}

/// Writes primary and backup headers for `entries` (an entry array of
/// 128 x 128 bytes) on a disk of `disk_sectors` sectors.
fn write_gpt(
    file: &File,
    path: &Path,
    disk_sectors: u64,
    disk_guid: uuid::Uuid,
    entries: &[u8],
) -> Result<()> {
    let backup_lba = disk_sectors - 1;
    let backup_entries = backup_lba - GPT_ENTRY_SECTORS;
    let first_usable = 2 + GPT_ENTRY_SECTORS;
    let last_usable = backup_entries - 1;
    let entries_crc = crc32fast::hash(entries);
    let header = |my: u64, alt: u64, entries_lba: u64| {
        let mut h = vec![0u8; 92];
        h[0..8].copy_from_slice(GPT_SIGNATURE);
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my.to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[40..48].copy_from_slice(&first_usable.to_le_bytes());
        h[48..56].copy_from_slice(&last_usable.to_le_bytes());
        h[56..72].copy_from_slice(&disk_guid.to_bytes_le());
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&(GPT_ENTRIES as u32).to_le_bytes());
        h[84..88].copy_from_slice(&(GPT_ENTRY_SIZE as u32).to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&h);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h.resize(SECTOR as usize, 0);
        h
    };
    write_at(file, path, SECTOR, &header(1, backup_lba, 2))?;
    write_at(file, path, 2 * SECTOR, entries)?;
    write_at(file, path, backup_entries * SECTOR, entries)?;
    write_at(
        file,
        path,
        backup_lba * SECTOR,
        &header(backup_lba, 1, backup_entries),
    )?;
    Ok(())
}

/// The first and last usable byte offsets (end exclusive) for partitions of
/// a new `label` table on a disk of `disk_size` bytes.
pub fn usable_range(label: Label, disk_size: u64) -> (u64, u64) {
    let sectors = disk_size / SECTOR;
    match label {
        Label::Gpt => (
            (2 + GPT_ENTRY_SECTORS) * SECTOR,
            sectors.saturating_sub(1 + GPT_ENTRY_SECTORS) * SECTOR,
        ),
        Label::Msdos => (SECTOR, sectors * SECTOR),
    }
}

/// Writes `table` to `path` (replacing any table there), keeping the
/// first 440 bytes of boot code. Partition starts and sizes must be
/// multiples of 512 and inside the usable area; GPT partition and disk
/// GUIDs are taken from the table (empty → random), MBR partitions get
/// their `uuid` from the disk signature.
pub fn write(path: &Path, table: &Table) -> Result<Table> {
    let (file, size) = open_rw(path)?;
    let sectors = size / SECTOR;
    let (lo, hi) = usable_range(table.label, size);
    if sectors < 2 * (2 + GPT_ENTRY_SECTORS) + 1 {
        return Err(ImagingError::TooSmall(format!(
            "{} ({size} bytes) is too small for a partition table",
            path.display()
        )));
    }
    let mut sorted: Vec<&Partition> = table.partitions.iter().collect();
    sorted.sort_by_key(|p| p.start);
    for (i, p) in sorted.iter().enumerate() {
        if p.start % SECTOR != 0 || p.size % SECTOR != 0 || p.size == 0 {
            return Err(ImagingError::Invalid(format!(
                "partition {} is not a whole number of 512-byte sectors (start {}, size {})",
                p.number, p.start, p.size
            )));
        }
        if p.start < lo || p.start + p.size > hi {
            return Err(ImagingError::TooSmall(format!(
                "partition {} ({} bytes at {}) does not fit the usable area {}..{} of {}",
                p.number,
                p.size,
                p.start,
                lo,
                hi,
                path.display()
            )));
        }
        if let Some(next) = sorted.get(i + 1) {
            if p.start + p.size > next.start {
                return Err(ImagingError::Invalid(format!(
                    "partitions {} and {} overlap",
                    p.number, next.number
                )));
            }
        }
    }
    let old_mbr = read_at(&file, path, 0, SECTOR as usize)?;
    let boot_code = &old_mbr[..440];
    let mut result = table.clone();
    match table.label {
        Label::Gpt => {
            let disk_guid = if table.id.is_empty() {
                uuid::Uuid::new_v4()
            } else {
                parse_guid(&table.id, "disk GUID")?
            };
            result.id = guid_string(disk_guid);
            let mut entries = vec![0u8; (GPT_ENTRIES * GPT_ENTRY_SIZE) as usize];
            for p in result.partitions.iter_mut() {
                if p.number == 0 || p.number as u64 > GPT_ENTRIES {
                    return Err(ImagingError::Invalid(format!(
                        "GPT partition number {} is out of range 1..128",
                        p.number
                    )));
                }
                let kind = parse_guid(&p.kind, "partition type")?;
                let unique = if p.uuid.is_empty() {
                    uuid::Uuid::new_v4()
                } else {
                    parse_guid(&p.uuid, "partition GUID")?
                };
                p.kind = guid_string(kind);
                p.uuid = unique.hyphenated().to_string();
                p.bootable = false;
                let at = (p.number as usize - 1) * GPT_ENTRY_SIZE as usize;
                let e = &mut entries[at..at + GPT_ENTRY_SIZE as usize];
                set_gpt_entry(
                    e,
                    kind,
                    unique,
                    p.start / SECTOR,
                    (p.start + p.size) / SECTOR - 1,
                    0,
                    p.name.as_deref(),
                );
            }
            write_at(&file, path, 0, &protective_mbr(sectors, boot_code))?;
            write_gpt(&file, path, sectors, disk_guid, &entries)?;
        }
        Label::Msdos => {
            let signature = if table.id.is_empty() {
                rand::random::<u32>() | 1
            } else {
                let hex = table.id.trim_start_matches("0x");
                u32::from_str_radix(hex, 16).map_err(|e| {
                    ImagingError::Invalid(format!("MBR disk signature {:?}: {e}", table.id))
                })?
            };
            result.id = format!("0x{signature:08x}");
            let mut mbr = vec![0u8; SECTOR as usize];
            mbr[..440].copy_from_slice(boot_code);
            mbr[440..444].copy_from_slice(&signature.to_le_bytes());
            for p in result.partitions.iter_mut() {
                if p.number == 0 || p.number > 4 {
                    return Err(ImagingError::Invalid(format!(
                        "MBR partition number {} is out of range 1..4 (no logical partitions)",
                        p.number
                    )));
                }
                let kind = u8::from_str_radix(&p.kind, 16).map_err(|e| {
                    ImagingError::Invalid(format!("MBR partition type {:?}: {e}", p.kind))
                })?;
                let start = p.start / SECTOR;
                let count = p.size / SECTOR;
                if start + count > u32::MAX as u64 {
                    return Err(ImagingError::Invalid(format!(
                        "partition {} ends beyond 2 TiB, which MBR cannot address",
                        p.number
                    )));
                }
                p.uuid = format!("{signature:08x}-{:02x}", p.number);
                p.kind = format!("{kind:02x}");
                p.name = None;
                let at = 446 + (p.number as usize - 1) * 16;
                set_mbr_entry(&mut mbr[at..at + 16], kind, start, count, p.bootable);
            }
            mbr[510] = 0x55;
            mbr[511] = 0xAA;
            write_at(&file, path, 0, &mbr)?;
            // A stale GPT would still be found by tools that look for it.
            for lba in [1, sectors - 1] {
                if read_at(&file, path, lba * SECTOR, 8)? == GPT_SIGNATURE {
                    write_at(&file, path, lba * SECTOR, &[0u8; SECTOR as usize])?;
                }
            }
        }
    }
    file.sync_data()
        .map_err(|e| io_err(path, "cannot sync", e))?;
    result.partitions.sort_by_key(|p| p.number);
    Ok(result)
}

fn set_gpt_entry(
    e: &mut [u8],
    kind: uuid::Uuid,
    unique: uuid::Uuid,
    first: u64,
    last: u64,
    attributes: u64,
    name: Option<&str>,
) {
    e.fill(0);
    e[0..16].copy_from_slice(&kind.to_bytes_le());
    e[16..32].copy_from_slice(&unique.to_bytes_le());
    e[32..40].copy_from_slice(&first.to_le_bytes());
    e[40..48].copy_from_slice(&last.to_le_bytes());
    e[48..56].copy_from_slice(&attributes.to_le_bytes());
    if let Some(name) = name {
        for (i, unit) in name.encode_utf16().take(36).enumerate() {
            e[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
    }
}

fn set_mbr_entry(e: &mut [u8], kind: u8, start: u64, count: u64, bootable: bool) {
    e.fill(0);
    e[0] = if bootable { 0x80 } else { 0 };
    // LBA addressing only: CHS fields saturated as for large disks.
    e[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[4] = kind;
    e[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&(start as u32).to_le_bytes());
    e[12..16].copy_from_slice(&(count as u32).to_le_bytes());
}

/// Moves the backup GPT to the real end of the disk and extends the last
/// usable LBA accordingly (what `sgdisk -e` does after a whole-disk image
/// smaller than the disk was written). Partitions are kept byte for byte.
pub fn relocate_backup_gpt(path: &Path) -> Result<()> {
    let raw = read_gpt_raw(path)?.ok_or_else(|| {
        ImagingError::Invalid(format!("{} has no valid GPT to relocate", path.display()))
    })?;
    let (file, size) = open_rw(path)?;
    write_gpt_raw(&file, path, size / SECTOR, &raw)
}

/// Writes `raw`'s entries as primary and backup for a disk of
/// `disk_sectors`, keeping the header's disk GUID.
fn write_gpt_raw(file: &File, path: &Path, disk_sectors: u64, raw: &GptRaw) -> Result<()> {
    let mut entries = raw.entries.clone();
    let wanted = (GPT_ENTRIES * GPT_ENTRY_SIZE) as usize;
    if raw.entry_size() != GPT_ENTRY_SIZE as usize || entries.len() > wanted {
        return Err(ImagingError::Invalid(format!(
            "{}: GPT with {} entries of {} bytes is not supported",
            path.display(),
            raw.entry_count(),
            raw.entry_size()
        )));
    }
    entries.resize(wanted, 0);
    let highest = (0..GPT_ENTRIES as usize)
        .filter(|i| entries[i * 128..i * 128 + 16].iter().any(|b| *b != 0))
        .map(|i| u64_at(&entries, i * 128 + 40))
        .max()
        .unwrap_or(0);
    if highest >= disk_sectors - 1 - GPT_ENTRY_SECTORS {
        return Err(ImagingError::TooSmall(format!(
            "{}: a partition ends at sector {highest}, beyond the disk's last usable sector",
            path.display()
        )));
    }
    let guid = guid_at(&raw.header, 56);
    let mbr = read_at(file, path, 0, SECTOR as usize)?;
    write_at(file, path, 0, &protective_mbr(disk_sectors, &mbr[..440]))?;
    write_gpt(file, path, disk_sectors, guid, &entries)
}

/// Adds a partition of `size` bytes at the end of the disk (aligned to
/// 1 MiB), after relocating a GPT's backup to the disk end. Returns the new
/// partition. `kind` is a GPT type GUID or MBR type byte (hex) as fits the
/// label.
pub fn append_partition(
    path: &Path,
    size: u64,
    kind_gpt: &str,
    kind_mbr: &str,
    name: Option<&str>,
) -> Result<Partition> {
    let table = read(path)?.ok_or_else(|| {
        ImagingError::Invalid(format!(
            "{} has no partition table to add a partition to",
            path.display()
        ))
    })?;
    let disk_size = std::fs::metadata(path)
        .map_err(|e| io_err(path, "cannot stat", e))?
        .len();
    let (_, hi) = usable_range(table.label, disk_size);
    let start = (hi.saturating_sub(size)) / ALIGN * ALIGN;
    let used_end = table
        .partitions
        .iter()
        .map(|p| p.start + p.size)
        .max()
        .unwrap_or(0);
    if start < used_end || start + size > hi {
        return Err(ImagingError::TooSmall(format!(
            "no room for a {} MiB partition at the end of {}: partitions end at byte {used_end}, the disk at {disk_size}",
            size >> 20,
            path.display()
        )));
    }
    let size = hi - start;
    match table.label {
        Label::Gpt => {
            let mut raw = read_gpt_raw(path)?.ok_or_else(|| {
                ImagingError::Invalid(format!("{} has no valid GPT", path.display()))
            })?;
            let count = raw.entry_count().min(GPT_ENTRIES as usize);
            let slot = (0..count)
                .find(|i| raw.entries[i * 128..i * 128 + 16].iter().all(|b| *b == 0))
                .ok_or_else(|| {
                    ImagingError::Invalid(format!("{}: every GPT entry is in use", path.display()))
                })?;
            let kind = parse_guid(kind_gpt, "partition type")?;
            let unique = uuid::Uuid::new_v4();
            set_gpt_entry(
                &mut raw.entries[slot * 128..slot * 128 + 128],
                kind,
                unique,
                start / SECTOR,
                (start + size) / SECTOR - 1,
                0,
                name,
            );
            let (file, disk_size) = open_rw(path)?;
            write_gpt_raw(&file, path, disk_size / SECTOR, &raw)?;
            file.sync_data()
                .map_err(|e| io_err(path, "cannot sync", e))?;
            Ok(Partition {
                number: slot as u32 + 1,
                start,
                size,
                kind: guid_string(kind),
                uuid: unique.hyphenated().to_string(),
                name: name.map(str::to_string),
                bootable: false,
            })
        }
        Label::Msdos => {
            let number = (1..=4u32)
                .find(|n| table.partition(*n).is_none())
                .ok_or_else(|| {
                    ImagingError::Invalid(format!(
                        "{}: all four primary MBR partitions are in use",
                        path.display()
                    ))
                })?;
            let mut new = table.clone();
            new.partitions.push(Partition {
                number,
                start,
                size,
                kind: kind_mbr.to_string(),
                uuid: String::new(),
                name: None,
                bootable: false,
            });
            let written = write(path, &new)?;
            written
                .partition(number)
                .cloned()
                .ok_or_else(|| ImagingError::Invalid("partition vanished after writing".into()))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A GPT header at LBA 1 of a 1 MiB file with the given entry count
    /// and size (and a valid header CRC).
    fn disk_with_gpt_header(count: u32, entry_size: u32) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(1 << 20).unwrap();
        let mut header = vec![0u8; SECTOR as usize];
        header[0..8].copy_from_slice(GPT_SIGNATURE);
        header[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        header[12..16].copy_from_slice(&92u32.to_le_bytes());
        header[24..32].copy_from_slice(&1u64.to_le_bytes());
        header[72..80].copy_from_slice(&2u64.to_le_bytes());
        header[80..84].copy_from_slice(&count.to_le_bytes());
        header[84..88].copy_from_slice(&entry_size.to_le_bytes());
        let crc = crc32fast::hash(&header[..92]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        file.as_file().write_all_at(&header, SECTOR).unwrap();
        file
    }

    #[test]
    fn a_huge_gpt_entry_size_is_not_allocated() {
        // 4096 entries of 2 GiB each: 8 TiB, which must never be allocated.
        let disk = disk_with_gpt_header(4096, 0x8000_0000);
        assert!(read_gpt_raw(disk.path()).unwrap().is_none());
        assert!(!matches!(
            read(disk.path()).unwrap(),
            Some(Table {
                label: Label::Gpt,
                ..
            })
        ));
        // Not a power of two, or an array beyond the disk: refused too.
        for (count, size) in [(128, 200), (4096, 4096)] {
            let disk = disk_with_gpt_header(count, size);
            assert!(
                read_gpt_raw(disk.path()).unwrap().is_none(),
                "{count} x {size}"
            );
        }
        // A usual (empty) table is read.
        let disk = disk_with_gpt_header(128, 128);
        let mut header = vec![0u8; SECTOR as usize];
        disk.as_file().read_exact_at(&mut header, SECTOR).unwrap();
        let entries_crc = crc32fast::hash(&vec![0u8; 128 * 128]);
        header[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        header[16..20].fill(0);
        let crc = crc32fast::hash(&header[..92]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        disk.as_file().write_all_at(&header, SECTOR).unwrap();
        assert!(read_gpt_raw(disk.path()).unwrap().is_some());
    }
}
