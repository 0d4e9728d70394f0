//! Image download, verification, conversion and writing.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::hardware::Disk;
use crate::table::{self, Label, Partition, Table, ALIGN};
use crate::util::{self, SparseWriter};
use crate::{ImagingError, Result};

/// ironic-python-agent's `image_info`, as the conductor sends it with
/// `write_image`. Unknown keys are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub id: String,
    pub urls: Vec<String>,
    #[serde(default)]
    pub disk_format: Option<String>,
    #[serde(default)]
    pub container_format: Option<String>,
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    #[serde(default)]
    pub os_hash_value: Option<String>,
    /// `partition` or `whole-disk`.
    #[serde(default)]
    pub image_type: Option<String>,
    #[serde(default)]
    pub root_mb: Option<u64>,
    #[serde(default)]
    pub swap_mb: Option<u64>,
    #[serde(default)]
    pub ephemeral_mb: Option<u64>,
    #[serde(default)]
    pub ephemeral_format: Option<String>,
    #[serde(default)]
    pub preserve_ephemeral: Option<bool>,
    #[serde(default)]
    pub node_uuid: Option<String>,
    /// `uefi` or `bios`.
    #[serde(default)]
    pub boot_mode: Option<String>,
    /// `gpt` or `msdos`; default gpt for uefi, msdos for bios.
    #[serde(default)]
    pub disk_label: Option<String>,
    #[serde(default)]
    pub stream_raw_images: Option<bool>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Accept md5 `checksum` when no `os_hash_*` is given.
    pub allow_md5: bool,
    /// Scratch space for downloads and conversions.
    pub work_dir: PathBuf,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteOutcome {
    pub root_uuid: Option<String>,
    pub efi_system_partition_uuid: Option<String>,
    pub configdrive_uuid: Option<String>,
    /// Every partition created, by role (`root`, `swap`, `ephemeral`,
    /// `efi`, `bios_boot`, `configdrive`) → partition UUID.
    pub partitions: BTreeMap<String, String>,
    pub bytes_written: u64,
    pub download_seconds: f64,
    pub write_seconds: f64,
}

/// Size of the config drive partition, as upstream creates it.
pub const CONFIGDRIVE_MB: u64 = 64;
/// Size of the EFI system partition of partition images (upstream default).
pub const ESP_MB: u64 = 200;
/// Size of the BIOS boot partition of GPT partition images on BIOS.
pub const BIOS_BOOT_MB: u64 = 1;

const MIB: u64 = 1 << 20;
/// Bytes looked at to recognise an image format.
const HEAD: usize = 64 * 1024;
/// Bytes handed to the writer thread at once.
const BATCH: usize = 1 << 20;

/// The image formats [`detect_format`] recognises.
pub fn detect_format(head: &[u8]) -> &'static str {
    let at = |off: usize, magic: &[u8]| {
        head.len() >= off + magic.len() && &head[off..off + magic.len()] == magic
    };
    if at(0, b"QFI\xfb") {
        "qcow2"
    } else if at(0, b"QFI\x00") {
        "qed"
    } else if at(0, b"KDMV") || at(0, b"# Disk DescriptorFile") {
        "vmdk"
    } else if at(0, b"vhdxfile") {
        "vhdx"
    } else if at(0, b"conectix") {
        "vpc"
    } else if at(0x40, &0xbeda_107fu32.to_le_bytes()) {
        "vdi"
    } else if at(0, b"LUKS\xba\xbe") {
        "luks"
    } else if at(0x8001, b"CD001") && !at(510, &[0x55, 0xAA]) {
        "iso"
    } else {
        "raw"
    }
}

/// What an expected checksum is.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    algo: &'static str,
    value: String,
}

fn expected_checksum(info: &ImageInfo, options: &WriteOptions) -> Result<Expected> {
    let md5_refused = |what: &str| {
        ImagingError::Invalid(format!(
            "image {}: {what} is md5, which is not allowed (enable md5 checksums on the agent or give os_hash_algo sha256/sha512)",
            info.id
        ))
    };
    let hex = |v: &str| -> Result<String> {
        let v = v.trim().to_lowercase();
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ImagingError::Invalid(format!(
                "image {}: checksum {v:?} is not a hexadecimal digest",
                info.id
            )));
        }
        Ok(v)
    };
    if let (Some(algo), Some(value)) = (&info.os_hash_algo, &info.os_hash_value) {
        let algo = match algo.trim().to_lowercase().as_str() {
            "sha256" => "sha256",
            "sha384" => "sha384",
            "sha512" => "sha512",
            "md5" if options.allow_md5 => "md5",
            "md5" => return Err(md5_refused("os_hash_algo")),
            other => {
                return Err(ImagingError::Invalid(format!(
                    "image {}: os_hash_algo {other:?} is not supported (sha256, sha384, sha512)",
                    info.id
                )))
            }
        };
        return Ok(Expected {
            algo,
            value: hex(value)?,
        });
    }
    if let Some(sum) = &info.checksum {
        let value = hex(sum)?;
        let algo = match value.len() {
            32 if options.allow_md5 => "md5",
            32 => return Err(md5_refused("the legacy checksum")),
            64 => "sha256",
            96 => "sha384",
            128 => "sha512",
            n => {
                return Err(ImagingError::Invalid(format!(
                    "image {}: checksum of {n} hex digits is neither md5, sha256 nor sha512",
                    info.id
                )))
            }
        };
        return Ok(Expected { algo, value });
    }
    Err(ImagingError::Invalid(format!(
        "image {}: image_info has neither os_hash_algo/os_hash_value nor checksum",
        info.id
    )))
}

enum Hasher {
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algo: &str) -> Hasher {
        match algo {
            "md5" => Hasher::Md5(md5::Md5::new()),
            "sha384" => Hasher::Sha384(sha2::Sha384::new()),
            "sha512" => Hasher::Sha512(sha2::Sha512::new()),
            _ => Hasher::Sha256(sha2::Sha256::new()),
        }
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }
    fn hex(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn client() -> Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        // A server that stops sending for this long fails the attempt (the
        // next URL is tried); there is no limit on the whole transfer.
        .read_timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(|e| ImagingError::Download(format!("cannot build an HTTP client: {e}")))?;
    Ok(CLIENT.get_or_init(|| c))
}

/// Where a downloaded image goes.
#[derive(Debug, Clone)]
struct Target {
    /// Stream raw content straight into the disk at (offset, limit).
    direct: Option<(u64, u64)>,
    disk: PathBuf,
    work_dir: PathBuf,
}

struct Fetched {
    format: &'static str,
    /// The staged download, when not streamed to the disk.
    staged: Option<tempfile::TempPath>,
    bytes: u64,
    digest: String,
}

/// One attempt to download `url` into `target`.
async fn fetch_one(url: &str, algo: &'static str, target: &Target) -> Result<Fetched> {
    let mut resp = client()?
        .get(url)
        .send()
        .await
        .map_err(|e| ImagingError::Download(format!("{url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(ImagingError::Download(format!(
            "{url}: HTTP {}",
            resp.status()
        )));
    }
    let length = resp.content_length();
    let mut head = Vec::with_capacity(HEAD);
    let mut eof = false;
    while head.len() < HEAD {
        match resp
            .chunk()
            .await
            .map_err(|e| ImagingError::Download(format!("{url}: {e}")))?
        {
            Some(c) => head.extend_from_slice(&c),
            None => {
                eof = true;
                break;
            }
        }
    }
    let format = detect_format(&head);
    let (writer, staged) = match target.direct {
        Some((offset, limit)) if format == "raw" => {
            if let Some(len) = length.filter(|l| *l > limit) {
                return Err(ImagingError::TooSmall(format!(
                    "the image ({len} bytes) is larger than the {limit} bytes available for it on {}",
                    target.disk.display()
                )));
            }
            (SparseWriter::open(&target.disk, offset, limit)?, None)
        }
        _ => {
            let tmp = tempfile::Builder::new()
                .prefix("image-")
                .tempfile_in(&target.work_dir)
                .map_err(|e| {
                    ImagingError::Io(format!(
                        "cannot create a staging file in {}: {e}",
                        target.work_dir.display()
                    ))
                })?
                .into_temp_path();
            (SparseWriter::create(&tmp)?, Some(tmp))
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let worker = tokio::task::spawn_blocking(move || -> Result<(u64, String)> {
        let mut writer = writer;
        let mut hasher = Hasher::new(algo);
        while let Some(buf) = rx.blocking_recv() {
            hasher.update(&buf);
            writer.write(&buf)?;
        }
        let n = writer.finish()?;
        Ok((n, hasher.hex()))
    });
    let mut failure = None;
    let mut batch = head;
    if !eof {
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    batch.extend_from_slice(&c);
                    if batch.len() >= BATCH {
                        let full =
                            std::mem::replace(&mut batch, Vec::with_capacity(BATCH + (256 << 10)));
                        if tx.send(full).await.is_err() {
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(ImagingError::Download(format!("{url}: {e}")));
                    break;
                }
            }
        }
    }
    if failure.is_none() && !batch.is_empty() {
        let _ = tx.send(batch).await;
    }
    drop(tx);
    let written = worker
        .await
        .map_err(|e| ImagingError::Io(format!("image writer thread failed: {e}")))?;
    if let Some(f) = failure {
        return Err(f);
    }
    let (bytes, digest) = written?;
    Ok(Fetched {
        format,
        staged,
        bytes,
        digest,
    })
}

/// Tries every URL in order; download errors move on to the next one.
async fn fetch(urls: &[String], algo: &'static str, target: &Target) -> Result<Fetched> {
    let mut errors = Vec::new();
    for url in urls {
        match fetch_one(url, algo, target).await {
            Ok(f) => return Ok(f),
            Err(ImagingError::Download(m)) => {
                tracing::warn!("image download failed, trying the next URL: {m}");
                errors.push(m);
            }
            Err(other) => return Err(other),
        }
    }
    Err(ImagingError::Download(format!(
        "image download failed from every URL: {}",
        if errors.is_empty() {
            "no URLs given".to_string()
        } else {
            errors.join("; ")
        }
    )))
}

/// The qcow2 header fields that matter: virtual size, and refusal of
/// external files (backing file, data file) as upstream's inspector does.
fn qcow2_virtual_size(path: &Path) -> Result<u64> {
    let h = util::read_at(path, 0, 104).or_else(|_| util::read_at(path, 0, 72))?;
    let be64 = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[at..at + 8]);
        u64::from_be_bytes(b)
    };
    let version = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    if be64(8) != 0 {
        return Err(ImagingError::Invalid(
            "the qcow2 image refers to a backing file, which is refused for security reasons"
                .into(),
        ));
    }
    if version >= 3 && h.len() >= 80 && be64(72) & 0b100 != 0 {
        return Err(ImagingError::Invalid(
            "the qcow2 image uses an external data file, which is refused for security reasons"
                .into(),
        ));
    }
    Ok(be64(24))
}

/// Escapes a value for qemu's `key=value,…` option syntax.
fn qemu_opt(value: &str) -> String {
    value.replace(',', ",,")
}

/// Converts a staged qcow2 image into `disk` at (offset, limit).
fn convert_qcow2(staged: &Path, disk: &Path, offset: u64, limit: u64) -> Result<u64> {
    let virtual_size = qcow2_virtual_size(staged)?;
    if virtual_size > limit {
        return Err(ImagingError::TooSmall(format!(
            "the image (virtual size {virtual_size} bytes) is larger than the {limit} bytes available for it on {}",
            disk.display()
        )));
    }
    let target = format!(
        "driver=raw,offset={offset},size={virtual_size},file.driver=file,file.filename={}",
        qemu_opt(&disk.to_string_lossy())
    );
    let src = staged.to_string_lossy();
    util::run(
        "qemu-img",
        &[
            "convert",
            "-n",
            "-f",
            "qcow2",
            &src,
            "--target-image-opts",
            &target,
        ],
    )?;
    Ok(virtual_size)
}

/// Largest config drive download: a raw image as large as its partition,
/// or the base64 text of one (4/3 of it) with room for line breaks.
pub const MAX_CONFIGDRIVE_DOWNLOAD: u64 = CONFIGDRIVE_MB * MIB * 4 / 3 + 4 * MIB;

/// The config drive's bytes: a gzip+base64 string, or an http(s) URL whose
/// content is gzip+base64 or a plain image. Bounded throughout: the
/// download is streamed and cut at [`MAX_CONFIGDRIVE_DOWNLOAD`], the
/// decompressed drive at its partition's size (a gzip bomb is refused
/// without ever holding its expanded size).
async fn configdrive_bytes(configdrive: &str) -> Result<Vec<u8>> {
    let limit = CONFIGDRIVE_MB * MIB;
    let trimmed = configdrive.trim();
    let is_url = trimmed.starts_with("http://") || trimmed.starts_with("https://");
    let data = if is_url {
        let mut resp = client()?
            .get(trimmed)
            .send()
            .await
            .map_err(|e| ImagingError::Download(format!("config drive {trimmed}: {e}")))?;
        if !resp.status().is_success() {
            return Err(ImagingError::Download(format!(
                "config drive {trimmed}: HTTP {}",
                resp.status()
            )));
        }
        let too_large = || {
            ImagingError::TooSmall(format!(
                "the config drive at {trimmed} is larger than {MAX_CONFIGDRIVE_DOWNLOAD} bytes"
            ))
        };
        if resp
            .content_length()
            .is_some_and(|len| len > MAX_CONFIGDRIVE_DOWNLOAD)
        {
            return Err(too_large());
        }
        let mut data = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ImagingError::Download(format!("config drive {trimmed}: {e}")))?
        {
            if (data.len() + chunk.len()) as u64 > MAX_CONFIGDRIVE_DOWNLOAD {
                return Err(too_large());
            }
            data.extend_from_slice(&chunk);
        }
        data
    } else {
        trimmed.as_bytes().to_vec()
    };
    let compact: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    use base64::Engine;
    let decoded = match base64::engine::general_purpose::STANDARD.decode(&compact) {
        Ok(d) => d,
        Err(_) if is_url => return Ok(data),
        Err(e) => {
            return Err(ImagingError::Invalid(format!(
                "the config drive is neither an http(s) URL nor gzip+base64 data: {e}"
            )))
        }
    };
    drop(compact);
    drop(data);
    gunzip_bounded(&decoded, limit)
}

/// Decompresses `gz`, refusing output beyond `limit` bytes (read at most
/// one byte past it).
fn gunzip_bounded(gz: &[u8], limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ImagingError::Invalid(format!(
                "the config drive is base64 but not gzip-compressed: {e}"
            ))
        })?;
    if out.len() as u64 > limit {
        return Err(ImagingError::TooSmall(format!(
            "the config drive expands to more than {limit} bytes, the size of its partition ({CONFIGDRIVE_MB} MiB)"
        )));
    }
    Ok(out)
}

/// One partition of a partition image's layout.
#[derive(Debug, Clone)]
struct Planned {
    role: &'static str,
    /// Bytes; 0 = the rest of the disk.
    size: u64,
    gpt_kind: &'static str,
    mbr_kind: &'static str,
    name: &'static str,
}

/// The partition table for a partition image, in upstream's order.
fn plan_partitions(
    disk: &Disk,
    info: &ImageInfo,
    boot_mode: &str,
    configdrive: bool,
) -> Result<Table> {
    let label = match info.disk_label.as_deref().map(str::to_lowercase).as_deref() {
        _ if boot_mode == "uefi" => Label::Gpt,
        Some("gpt") => Label::Gpt,
        Some("msdos") | None => Label::Msdos,
        Some(other) => {
            return Err(ImagingError::Invalid(format!(
                "disk_label {other:?} is not supported (gpt, msdos)"
            )))
        }
    };
    let mut plan = Vec::new();
    if boot_mode == "uefi" {
        plan.push(Planned {
            role: "efi",
            size: ESP_MB * MIB,
            gpt_kind: table::GPT_ESP,
            mbr_kind: "ef",
            name: "efi-part",
        });
    } else if label == Label::Gpt {
        plan.push(Planned {
            role: "bios_boot",
            size: BIOS_BOOT_MB * MIB,
            gpt_kind: table::GPT_BIOS_BOOT,
            mbr_kind: "ef",
            name: "bios-boot",
        });
    }
    if let Some(mb) = info.ephemeral_mb.filter(|m| *m > 0) {
        plan.push(Planned {
            role: "ephemeral",
            size: mb * MIB,
            gpt_kind: table::GPT_LINUX,
            mbr_kind: "83",
            name: "ephemeral0",
        });
    }
    if let Some(mb) = info.swap_mb.filter(|m| *m > 0) {
        plan.push(Planned {
            role: "swap",
            size: mb * MIB,
            gpt_kind: table::GPT_SWAP,
            mbr_kind: "82",
            name: "swap1",
        });
    }
    if configdrive {
        plan.push(Planned {
            role: "configdrive",
            size: CONFIGDRIVE_MB * MIB,
            gpt_kind: table::GPT_LINUX,
            mbr_kind: "83",
            name: "config-2",
        });
    }
    plan.push(Planned {
        role: "root",
        size: info.root_mb.unwrap_or(0) * MIB,
        gpt_kind: table::GPT_LINUX,
        mbr_kind: "83",
        name: "root",
    });
    if label == Label::Msdos && plan.len() > 4 {
        return Err(ImagingError::Invalid(format!(
            "{} partitions do not fit an msdos label without logical partitions; use disk_label gpt",
            plan.len()
        )));
    }
    let (lo, hi) = table::usable_range(label, disk.size);
    let mut cursor = lo.div_ceil(ALIGN) * ALIGN;
    let mut partitions = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        let size = if p.size == 0 {
            hi.saturating_sub(cursor) / table::SECTOR * table::SECTOR
        } else {
            p.size
        };
        if size < MIB || cursor + size > hi {
            let wanted: u64 = plan.iter().map(|p| p.size).sum::<u64>() + lo;
            return Err(ImagingError::TooSmall(format!(
                "disk {} ({} MiB) is too small for the requested partitions ({}: at least {} MiB)",
                disk.name,
                disk.size / MIB,
                plan.iter()
                    .map(|p| format!("{} {} MiB", p.role, p.size / MIB))
                    .collect::<Vec<_>>()
                    .join(", "),
                wanted / MIB + 1
            )));
        }
        partitions.push(Partition {
            number: i as u32 + 1,
            start: cursor,
            size,
            kind: if label == Label::Gpt {
                p.gpt_kind.to_string()
            } else {
                p.mbr_kind.to_string()
            },
            uuid: String::new(),
            name: Some(p.name.to_string()),
            bootable: label == Label::Msdos && p.role == "root" && boot_mode != "uefi",
        });
        cursor = (cursor + size).div_ceil(ALIGN) * ALIGN;
    }
    Ok(Table {
        label,
        id: String::new(),
        partitions,
    })
}

fn roles_of(
    table: &Table,
    info: &ImageInfo,
    boot_mode: &str,
    configdrive: bool,
) -> Vec<(&'static str, Partition)> {
    let mut roles = Vec::new();
    if boot_mode == "uefi" {
        roles.push("efi");
    } else if table.label == Label::Gpt {
        roles.push("bios_boot");
    }
    if info.ephemeral_mb.unwrap_or(0) > 0 {
        roles.push("ephemeral");
    }
    if info.swap_mb.unwrap_or(0) > 0 {
        roles.push("swap");
    }
    if configdrive {
        roles.push("configdrive");
    }
    roles.push("root");
    roles
        .into_iter()
        .zip(table.partitions.iter().cloned())
        .collect()
}

/// A partition named or labelled `config-2` on `disk`, if any.
fn existing_configdrive(disk: &Path) -> Result<Option<Partition>> {
    let Some(t) = table::read(disk)? else {
        return Ok(None);
    };
    for p in &t.partitions {
        if p.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case("config-2"))
        {
            return Ok(Some(p.clone()));
        }
        let found = util::probe(disk, p.start, p.size)?;
        if found
            .get("LABEL")
            .is_some_and(|l| l.eq_ignore_ascii_case("config-2"))
        {
            return Ok(Some(p.clone()));
        }
    }
    Ok(None)
}

/// The disk's current table when it has exactly the `planned` layout
/// (same partitions, types and boundaries), so that a rebuild keeps the
/// ephemeral partition and its data (`preserve_ephemeral`).
fn preserved_table(disk: &Disk, planned: &Table) -> Result<Table> {
    let refuse = |why: String| {
        ImagingError::Invalid(format!(
            "cannot preserve the ephemeral partition of disk {}: {why}",
            disk.name
        ))
    };
    let current =
        table::read(&disk.path)?.ok_or_else(|| refuse("the disk has no partition table".into()))?;
    let shape = |t: &Table| -> Vec<(u32, u64, u64, String)> {
        t.partitions
            .iter()
            .map(|p| (p.number, p.start, p.size, p.kind.to_uppercase()))
            .collect()
    };
    if current.label != planned.label || shape(&current) != shape(planned) {
        return Err(refuse(format!(
            "its {:?} table does not have the requested layout",
            current.label
        )));
    }
    Ok(current)
}

/// Makes a filesystem of `kind` labelled `label` in `part` of `disk`.
pub fn make_filesystem(
    disk: &Path,
    part: &Partition,
    kind: &str,
    label: &str,
    work_dir: &Path,
) -> Result<()> {
    let path = disk.to_string_lossy();
    let kib = format!("{}", part.size / 1024);
    match kind {
        "ext2" | "ext3" | "ext4" => {
            let offset = format!("offset={}", part.start);
            util::run(
                &format!("mkfs.{kind}"),
                &[
                    "-F",
                    "-q",
                    "-L",
                    label,
                    "-E",
                    &offset,
                    &path,
                    &format!("{kib}k"),
                ],
            )?;
        }
        "vfat" | "fat32" => {
            let sectors = format!("{}", part.start / 512);
            // Decide the FAT size from the partition, not from the whole
            // disk mkfs.vfat would look at: FAT32 (as UEFI prefers) when
            // there are enough clusters for it, else FAT16.
            let fat: &[&str] = if part.size >= 64 << 20 {
                &["-F", "32", "-s", "1"]
            } else {
                &["-F", "16"]
            };
            let mut args: Vec<&str> = fat.to_vec();
            args.extend_from_slice(&["-n", label, "--offset", &sectors, &path, &kib]);
            util::run("mkfs.vfat", &args)?;
        }
        "swap" => {
            // mkswap cannot write at an offset: build the header in a
            // scratch file and copy it in.
            let tmp = tempfile::Builder::new()
                .prefix("swap-")
                .tempfile_in(work_dir)
                .map_err(|e| {
                    ImagingError::Io(format!(
                        "cannot create a scratch file in {}: {e}",
                        work_dir.display()
                    ))
                })?
                .into_temp_path();
            std::fs::File::options()
                .write(true)
                .open(&tmp)
                .and_then(|f| f.set_len(part.size))
                .map_err(|e| ImagingError::Io(format!("cannot size {}: {e}", tmp.display())))?;
            util::run("mkswap", &["-L", label, &tmp.to_string_lossy()])?;
            util::copy_into(&tmp, disk, part.start, part.size)?;
        }
        other => {
            return Err(ImagingError::Invalid(format!(
                "filesystem {other:?} is not supported (ext2, ext3, ext4, vfat, swap)"
            )))
        }
    }
    Ok(())
}

/// The UUID upstream reports for a partition: the filesystem UUID, or the
/// partition UUID when there is no filesystem.
fn reported_uuid(disk: &Path, part: &Partition) -> Result<String> {
    let found = util::probe(disk, part.start, part.size)?;
    Ok(found
        .get("UUID")
        .cloned()
        .unwrap_or_else(|| part.uuid.clone()))
}

fn check_declared_format(info: &ImageInfo, detected: &str) -> Result<()> {
    if detected != "raw" && detected != "qcow2" {
        return Err(ImagingError::Invalid(format!(
            "image {} is in {detected} format, which is not supported (raw, qcow2)",
            info.id
        )));
    }
    if let Some(declared) = info.disk_format.as_deref().map(str::to_lowercase) {
        if declared != detected {
            return Err(ImagingError::Invalid(format!(
                "image {} declares disk_format {declared} but its content is {detected}; refusing it",
                info.id
            )));
        }
    }
    Ok(())
}

/// Downloads, verifies and writes the image to `disk`, with `configdrive`
/// (gzip+base64 or a URL) written to its partition when given.
///
/// Whole-disk images (`image_type` `whole-disk` or absent) are written at
/// offset 0; a config drive then gets a 64 MiB partition at the end of the
/// disk. Partition images (`partition`) get a new table (GPT for uefi or
/// `disk_label` gpt, else msdos) with EFI system / BIOS boot, ephemeral,
/// swap, config drive and root partitions in that order.
pub async fn write_image(
    disk: &Disk,
    info: &ImageInfo,
    configdrive: Option<&str>,
    options: &WriteOptions,
) -> Result<WriteOutcome> {
    if info.urls.is_empty() {
        return Err(ImagingError::Invalid(format!(
            "image {}: image_info has no urls",
            info.id
        )));
    }
    let partition_image = match info.image_type.as_deref() {
        None | Some("whole-disk") | Some("whole_disk") => false,
        Some("partition") => true,
        Some(other) => {
            return Err(ImagingError::Invalid(format!(
                "image {}: image_type {other:?} is not supported (partition, whole-disk)",
                info.id
            )))
        }
    };
    let boot_mode = info.boot_mode.as_deref().unwrap_or("uefi").to_lowercase();
    if boot_mode != "uefi" && boot_mode != "bios" {
        return Err(ImagingError::Invalid(format!(
            "boot_mode {boot_mode:?} is not supported (uefi, bios)"
        )));
    }
    if let Some(declared) = info.disk_format.as_deref() {
        check_declared_format(info, &declared.to_lowercase())?;
    }
    let expected = expected_checksum(info, options)?;
    let actual_size = std::fs::metadata(&disk.path)
        .map_err(|e| {
            ImagingError::Io(format!("disk {} ({}): {e}", disk.name, disk.path.display()))
        })?
        .len();
    let disk = &Disk {
        size: actual_size,
        ..disk.clone()
    };
    let drive = match configdrive {
        Some(cd) if !cd.trim().is_empty() => {
            let bytes = configdrive_bytes(cd).await?;
            if bytes.len() as u64 > CONFIGDRIVE_MB * MIB {
                return Err(ImagingError::TooSmall(format!(
                    "the config drive ({} bytes) is larger than its {CONFIGDRIVE_MB} MiB partition",
                    bytes.len()
                )));
            }
            Some(bytes)
        }
        _ => None,
    };
    std::fs::create_dir_all(&options.work_dir).map_err(|e| {
        ImagingError::Io(format!("cannot create {}: {e}", options.work_dir.display()))
    })?;
    let stream = info.stream_raw_images.unwrap_or(true);
    let mut outcome = WriteOutcome::default();

    // Partition images: the table and the small filesystems come first.
    let mut roles = Vec::new();
    let (offset, limit) = if partition_image {
        let planned = plan_partitions(disk, info, &boot_mode, drive.is_some())?;
        let preserve =
            info.preserve_ephemeral.unwrap_or(false) && info.ephemeral_mb.unwrap_or(0) > 0;
        let written = if preserve {
            preserved_table(disk, &planned)?
        } else {
            table::write(&disk.path, &planned)?
        };
        roles = roles_of(&written, info, &boot_mode, drive.is_some());
        for (role, part) in &roles {
            match *role {
                "ephemeral" if preserve => {}
                "efi" => make_filesystem(&disk.path, part, "vfat", "efi-part", &options.work_dir)?,
                "ephemeral" => {
                    let fs = info.ephemeral_format.as_deref().unwrap_or("ext4");
                    make_filesystem(&disk.path, part, fs, "ephemeral0", &options.work_dir)?
                }
                "swap" => make_filesystem(&disk.path, part, "swap", "swap1", &options.work_dir)?,
                "configdrive" => {
                    if let Some(bytes) = &drive {
                        util::write_at(&disk.path, part.start, bytes)?;
                    }
                }
                _ => {}
            }
        }
        let root = roles
            .iter()
            .find(|(r, _)| *r == "root")
            .map(|(_, p)| p.clone())
            .ok_or_else(|| ImagingError::Invalid("no root partition was planned".into()))?;
        (root.start, root.size)
    } else {
        (0, disk.size)
    };

    let target = Target {
        direct: if stream { Some((offset, limit)) } else { None },
        disk: disk.path.clone(),
        work_dir: options.work_dir.clone(),
    };
    let started = Instant::now();
    let fetched = fetch(&info.urls, expected.algo, &target).await?;
    outcome.download_seconds = started.elapsed().as_secs_f64();
    if fetched.digest != expected.value {
        return Err(ImagingError::Checksum(format!(
            "image {}: {} checksum mismatch: expected {}, got {}",
            info.id, expected.algo, expected.value, fetched.digest
        )));
    }
    check_declared_format(info, fetched.format)?;
    let started = Instant::now();
    outcome.bytes_written = match (&fetched.staged, fetched.format) {
        (None, _) => fetched.bytes,
        (Some(staged), "qcow2") => {
            let (staged, disk_path) = (staged.to_path_buf(), disk.path.clone());
            tokio::task::spawn_blocking(move || convert_qcow2(&staged, &disk_path, offset, limit))
                .await
                .map_err(|e| ImagingError::Io(format!("conversion thread failed: {e}")))??
        }
        (Some(staged), _) => {
            let (staged, disk_path) = (staged.to_path_buf(), disk.path.clone());
            tokio::task::spawn_blocking(move || util::copy_into(&staged, &disk_path, offset, limit))
                .await
                .map_err(|e| ImagingError::Io(format!("copy thread failed: {e}")))??
        }
    };
    drop(fetched);

    if partition_image {
        for (role, part) in &roles {
            outcome
                .partitions
                .insert(role.to_string(), part.uuid.clone());
            match *role {
                "root" => outcome.root_uuid = Some(reported_uuid(&disk.path, part)?),
                "efi" => outcome.efi_system_partition_uuid = Some(reported_uuid(&disk.path, part)?),
                "configdrive" => outcome.configdrive_uuid = Some(part.uuid.clone()),
                _ => {}
            }
        }
    } else {
        // The image's backup GPT sits where the image ended: move it to the
        // disk's end, as upstream does with `sgdisk -e`.
        match table::read(&disk.path) {
            Ok(Some(Table {
                label: Label::Gpt, ..
            })) => table::relocate_backup_gpt(&disk.path)?,
            Ok(_) => {}
            Err(e) if drive.is_some() => return Err(e),
            Err(e) => tracing::warn!("image {}: partition table not fixed up: {e}", info.id),
        }
    }
    if let (false, Some(bytes)) = (partition_image, &drive) {
        // An image that brings its own config drive partition (GPT name or
        // filesystem label config-2) gets it overwritten, as upstream does.
        let part = match existing_configdrive(&disk.path)? {
            Some(p) if (bytes.len() as u64) <= p.size => p,
            Some(p) => {
                return Err(ImagingError::TooSmall(format!(
                    "the config drive ({} bytes) does not fit the image's config-2 partition {} ({} bytes)",
                    bytes.len(),
                    p.number,
                    p.size
                )))
            }
            None => table::append_partition(
                &disk.path,
                CONFIGDRIVE_MB * MIB,
                table::GPT_LINUX,
                "83",
                Some("config-2"),
            )?,
        };
        util::write_at(&disk.path, part.start, bytes)?;
        outcome
            .partitions
            .insert("configdrive".into(), part.uuid.clone());
        outcome.configdrive_uuid = Some(part.uuid);
    }
    if !partition_image {
        // Upstream reports a whole disk's MBR disk signature as its root.
        outcome.root_uuid = Some(disk_identifier(&disk.path)?);
    }
    outcome.write_seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// The disk identifier as upstream reads it (`0x` and the four bytes at
/// offset 440 as a little-endian number).
fn disk_identifier(path: &std::path::Path) -> Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(440))?;
    let mut bytes = [0u8; 4];
    file.read_exact(&mut bytes)?;
    Ok(format!("0x{:08x}", u32::from_le_bytes(bytes)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn opts(allow_md5: bool) -> WriteOptions {
        WriteOptions {
            allow_md5,
            work_dir: PathBuf::from("/tmp"),
        }
    }

    #[test]
    fn formats_are_recognised_by_content() {
        assert_eq!(detect_format(b"QFI\xfb\0\0\0\x03"), "qcow2");
        assert_eq!(detect_format(b"KDMV...."), "vmdk");
        assert_eq!(detect_format(b"vhdxfile"), "vhdx");
        let mut iso = vec![0u8; 0x9000];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(detect_format(&iso), "iso");
        iso[510] = 0x55;
        iso[511] = 0xAA;
        assert_eq!(
            detect_format(&iso),
            "raw",
            "a hybrid ISO with an MBR is a disk image"
        );
        assert_eq!(detect_format(&[0u8; 100]), "raw");
    }

    #[test]
    fn checksum_selection() {
        let mut info = ImageInfo {
            id: "img".into(),
            ..Default::default()
        };
        assert!(matches!(
            expected_checksum(&info, &opts(true)),
            Err(ImagingError::Invalid(_))
        ));
        info.checksum = Some("d41d8cd98f00b204e9800998ecf8427e".into());
        assert!(
            matches!(expected_checksum(&info, &opts(false)), Err(ImagingError::Invalid(m)) if m.contains("md5"))
        );
        assert_eq!(
            expected_checksum(&info, &opts(true)).ok().map(|e| e.algo),
            Some("md5")
        );
        info.os_hash_algo = Some("SHA512".into());
        info.os_hash_value = Some("AB".repeat(64));
        let e = expected_checksum(&info, &opts(false)).ok();
        assert_eq!(
            e,
            Some(Expected {
                algo: "sha512",
                value: "ab".repeat(64)
            })
        );
        info.os_hash_algo = Some("crc32".into());
        assert!(matches!(
            expected_checksum(&info, &opts(true)),
            Err(ImagingError::Invalid(_))
        ));
    }

    #[test]
    fn declared_format_must_match_content() {
        let info = ImageInfo {
            id: "img".into(),
            disk_format: Some("raw".into()),
            ..Default::default()
        };
        assert!(check_declared_format(&info, "raw").is_ok());
        assert!(
            matches!(check_declared_format(&info, "qcow2"), Err(ImagingError::Invalid(m)) if m.contains("declares disk_format raw"))
        );
        assert!(
            matches!(check_declared_format(&info, "vmdk"), Err(ImagingError::Invalid(m)) if m.contains("vmdk"))
        );
    }

    #[tokio::test]
    async fn a_gzip_bomb_config_drive_is_refused() {
        use base64::Engine;
        use std::io::Write;
        // 128 MiB of zeros, a few hundred KiB compressed.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..128 {
            gz.write_all(&zeros).unwrap();
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        assert!(encoded.len() < 4 << 20);
        match configdrive_bytes(&encoded).await {
            Err(ImagingError::TooSmall(message)) => {
                assert!(message.contains("expands to more than"), "{message}")
            }
            other => panic!("{:?}", other.map(|b| b.len())),
        }
        // The bound itself: one byte past the limit is all that is read.
        let mut small = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        small.write_all(&[0u8; 100]).unwrap();
        let small = small.finish().unwrap();
        assert_eq!(gunzip_bounded(&small, 100).unwrap().len(), 100);
        assert!(matches!(
            gunzip_bounded(&small, 99),
            Err(ImagingError::TooSmall(_))
        ));
    }

    #[tokio::test]
    async fn an_endless_config_drive_url_is_cut_off() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/configdrive", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
            );
            // Valid base64 text, far more than any config drive; no length.
            let chunk = vec![b'A'; 1 << 20];
            let mut sent = 0u64;
            while sent < 2 * MAX_CONFIGDRIVE_DOWNLOAD {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len() as u64;
            }
            sent
        });
        match configdrive_bytes(&url).await {
            Err(ImagingError::TooSmall(message)) => {
                assert!(message.contains("is larger than"), "{message}")
            }
            other => panic!("{:?}", other.map(|b| b.len())),
        }
        // Joined off the runtime: the connection is closed by a task on it.
        let sent = tokio::task::spawn_blocking(move || server.join().unwrap())
            .await
            .unwrap();
        assert!(sent < 2 * MAX_CONFIGDRIVE_DOWNLOAD, "the agent read it all");
    }

    #[tokio::test]
    async fn configdrive_decoding() {
        use base64::Engine;
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"ISO bytes").unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        assert_eq!(configdrive_bytes(&encoded).await.unwrap(), b"ISO bytes");
        assert!(matches!(
            configdrive_bytes("%%%not").await,
            Err(ImagingError::Invalid(_))
        ));
        let not_gzip = base64::engine::general_purpose::STANDARD.encode(b"plain");
        assert!(
            matches!(configdrive_bytes(&not_gzip).await, Err(ImagingError::Invalid(m)) if m.contains("gzip"))
        );
    }
}
