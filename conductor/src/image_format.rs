//! The disk image format inspector: recognises an image's format from its
//! own headers (never from what the user declared) and refuses what would
//! make qemu-img read other files of the host — qcow2 backing files and
//! external data files, QED backing files, VHD differencing disks, VMDK
//! descriptors and extents — before qemu-img is run on it, always with
//! `-f` (as upstream's `disk_image_format_inspector`).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes read to recognise a format (an ISO's volume descriptor is at
/// 32 KiB, a GPT header at 512 or 4096).
const HEAD: u64 = 64 * 1024;
/// Largest VMDK descriptor read (they are a few hundred bytes).
const MAX_VMDK_DESCRIPTOR: u64 = 1 << 20;
/// qcow2 header extensions read at most.
const MAX_QCOW2_EXTENSIONS: usize = 64;

/// What the inspector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// `raw`, `gpt`, `iso`, `qcow2`, `qed`, `vmdk`, `vpc`, `vhdx`, `vdi` or
    /// `luks` (qemu's names; `gpt` is a raw disk with a GUID partition
    /// table).
    pub format: &'static str,
    /// The disk's size when the header says it.
    pub virtual_size: Option<u64>,
}

impl Inspection {
    /// Whether the bytes are the disk as is (no conversion needed).
    pub fn is_raw(&self) -> bool {
        matches!(self.format, "raw" | "gpt" | "iso")
    }
}

fn at(head: &[u8], offset: usize, magic: &[u8]) -> bool {
    head.get(offset..offset + magic.len()) == Some(magic)
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        x.copy_from_slice(s);
    }
    u32::from_be_bytes(x)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        x.copy_from_slice(s);
    }
    u64::from_be_bytes(x)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        x.copy_from_slice(s);
    }
    u64::from_le_bytes(x)
}

/// The format the first bytes of an image say.
pub fn detect(head: &[u8]) -> &'static str {
    if at(head, 0, b"QFI\xfb") {
        "qcow2"
    } else if at(head, 0, b"QED\0") {
        "qed"
    } else if at(head, 0, b"KDMV") || at(head, 0, b"# Disk DescriptorFile") {
        "vmdk"
    } else if at(head, 0, b"vhdxfile") {
        "vhdx"
    } else if at(head, 0, b"conectix") {
        "vpc"
    } else if at(head, 0x40, &0xbeda_107fu32.to_le_bytes()) {
        "vdi"
    } else if at(head, 0, b"LUKS\xba\xbe") {
        "luks"
    } else if has_gpt(head) {
        "gpt"
    } else if at(head, 0x8001, b"CD001") && !at(head, 510, &[0x55, 0xAA]) {
        "iso"
    } else {
        "raw"
    }
}

/// A protective MBR and a GPT header (512- or 4096-byte sectors).
fn has_gpt(head: &[u8]) -> bool {
    let protective =
        at(head, 510, &[0x55, 0xAA]) && (0..4).any(|i| head.get(0x1BE + 16 * i + 4) == Some(&0xEE));
    protective && (at(head, 512, b"EFI PART") || at(head, 4096, b"EFI PART"))
}

fn read_at(file: &mut std::fs::File, offset: u64, len: u64) -> Result<Vec<u8>, String> {
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("cannot read the image: {e}"))?;
    let mut buf = Vec::new();
    file.take(len)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read the image: {e}"))?;
    Ok(buf)
}

/// The format of the image at `path`, from its first bytes.
pub fn detect_file(path: &Path) -> Result<&'static str, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open the image: {e}"))?;
    Ok(detect(&read_at(&mut file, 0, HEAD)?))
}

/// Reads `path`'s headers: its format, and an error when it refers to
/// other files or cannot be checked.
pub fn inspect(path: &Path) -> Result<Inspection, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open the image: {e}"))?;
    let size = file
        .metadata()
        .map_err(|e| format!("cannot read the image: {e}"))?
        .len();
    let head = read_at(&mut file, 0, HEAD)?;
    let format = detect(&head);
    let virtual_size = match format {
        "qcow2" => Some(check_qcow2(&mut file, &head)?),
        "qed" => Some(check_qed(&head)?),
        "vmdk" => Some(check_vmdk(&mut file, &head)?),
        "vpc" => check_vpc(&head)?,
        "luks" => return Err("encrypted (LUKS) images are not supported".into()),
        "raw" | "gpt" | "iso" => Some(size),
        _ => None,
    };
    Ok(Inspection {
        format,
        virtual_size,
    })
}

/// qcow2: no backing file, no external data file (flag or header
/// extension), no encryption. Returns the virtual size.
fn check_qcow2(file: &mut std::fs::File, head: &[u8]) -> Result<u64, String> {
    if head.len() < 72 {
        return Err("the qcow2 header is truncated".into());
    }
    let version = be32(head, 4);
    if !(2..=3).contains(&version) {
        return Err(format!("qcow2 version {version} is not supported"));
    }
    if be64(head, 8) != 0 {
        return Err("the qcow2 image has a backing file (another file of the host would be read into it); refused".into());
    }
    if be32(head, 32) != 0 {
        return Err("encrypted qcow2 images are not supported".into());
    }
    let (extensions_at, incompatible) = if version >= 3 {
        if head.len() < 104 {
            return Err("the qcow2 header is truncated".into());
        }
        (u64::from(be32(head, 100)), be64(head, 72))
    } else {
        (72, 0)
    };
    const EXTERNAL_DATA_FILE: u64 = 1 << 2;
    if incompatible & EXTERNAL_DATA_FILE != 0 {
        return Err("the qcow2 image keeps its data in an external data file (another file of the host would be read); refused".into());
    }
    // Header extensions: (type u32, length u32, data padded to 8 bytes).
    const END: u32 = 0;
    const DATA_FILE_NAME: u32 = 0x4441_5441;
    let cluster_bits = be32(head, 20);
    if !(9..=21).contains(&cluster_bits) {
        return Err(format!("qcow2 cluster_bits {cluster_bits} is invalid"));
    }
    let first_cluster = 1u64 << cluster_bits;
    let mut offset = extensions_at;
    for _ in 0..MAX_QCOW2_EXTENSIONS {
        if offset + 8 > first_cluster {
            break;
        }
        let header = read_at(file, offset, 8)?;
        if header.len() < 8 {
            break;
        }
        let (kind, length) = (be32(&header, 0), u64::from(be32(&header, 4)));
        if kind == END {
            break;
        }
        if kind == DATA_FILE_NAME {
            return Err("the qcow2 image names an external data file (another file of the host would be read); refused".into());
        }
        offset += 8 + length.div_ceil(8) * 8;
    }
    Ok(be64(head, 24))
}

/// QED: no backing file. Returns the virtual size.
fn check_qed(head: &[u8]) -> Result<u64, String> {
    const HAS_BACKING_FILE: u64 = 1;
    if le64(head, 16) & HAS_BACKING_FILE != 0 {
        return Err("the QED image has a backing file (another file of the host would be read into it); refused".into());
    }
    Ok(le64(head, 48))
}

/// VHD (`vpc`): a differencing disk names its parent file.
fn check_vpc(head: &[u8]) -> Result<Option<u64>, String> {
    const DIFFERENCING: u32 = 4;
    if be32(head, 60) == DIFFERENCING {
        return Err("the VHD image is a differencing disk (its parent, another file of the host, would be read); refused".into());
    }
    Ok(Some(be64(head, 48)))
}

/// VMDK: only a single-file sparse image (`monolithicSparse` or
/// `streamOptimized`) whose embedded descriptor names no other extent; a
/// descriptor file, or a header qemu would send to its descriptor
/// (capacity 0), is refused. Returns the virtual size.
fn check_vmdk(file: &mut std::fs::File, head: &[u8]) -> Result<u64, String> {
    if at(head, 0, b"# Disk DescriptorFile") {
        return Err(
            "the image is a VMDK descriptor whose extents are other files of the host; refused"
                .into(),
        );
    }
    let capacity = le64(head, 12);
    let (descriptor_at, descriptor_len) = (le64(head, 28), le64(head, 36));
    if capacity == 0 {
        return Err("the VMDK image has no capacity of its own and would be read through its descriptor's extents; refused".into());
    }
    if descriptor_at == 0 || descriptor_len == 0 {
        return Err("the VMDK image has no embedded descriptor to check; refused".into());
    }
    let descriptor_len = descriptor_len.saturating_mul(512);
    if descriptor_len > MAX_VMDK_DESCRIPTOR {
        return Err(format!(
            "the VMDK descriptor ({descriptor_len} bytes) is too large; refused"
        ));
    }
    let descriptor = read_at(file, descriptor_at.saturating_mul(512), descriptor_len)?;
    let text = String::from_utf8_lossy(&descriptor);
    check_vmdk_descriptor(&text)?;
    Ok(capacity.saturating_mul(512))
}

/// The embedded descriptor of a single-file VMDK: its type and extents.
fn check_vmdk_descriptor(text: &str) -> Result<(), String> {
    let mut create_type = None;
    let mut extents = Vec::new();
    for line in text.lines().map(str::trim) {
        let line = line.trim_end_matches('\0');
        if let Some(value) = line.strip_prefix("createType") {
            let value = value.trim_start().trim_start_matches('=').trim();
            create_type = Some(value.trim_matches('"').to_string());
        } else if ["RW ", "RDONLY ", "NOACCESS "]
            .iter()
            .any(|access| line.starts_with(access))
        {
            extents.push(line.to_string());
        }
    }
    let create_type = create_type.unwrap_or_default();
    if !matches!(create_type.as_str(), "monolithicSparse" | "streamOptimized") {
        return Err(format!(
            "the VMDK image is of type {create_type:?}, whose extents are separate files; only monolithicSparse and streamOptimized are accepted"
        ));
    }
    if extents.len() > 1 {
        return Err("the VMDK image names more than one extent; refused".into());
    }
    if let Some(extent) = extents.first() {
        let kind = extent.split_whitespace().nth(2).unwrap_or("");
        if kind != "SPARSE" {
            return Err(format!(
                "the VMDK image's extent is of type {kind:?}, not SPARSE; refused"
            ));
        }
    }
    Ok(())
}

/// Upstream's spelling of a declared format (Glance's `disk_format`)
/// mapped onto the inspector's names.
fn declared_as_detected(declared: &str) -> &str {
    match declared {
        "vhd" => "vpc",
        "ami" | "ari" | "aki" => "raw",
        other => other,
    }
}

/// Refuses an image whose content is not the format it was declared as (a
/// raw declaration covers a GPT disk).
pub fn check_declared(declared: Option<&str>, detected: &str) -> Result<(), String> {
    let Some(declared) = declared else {
        return Ok(());
    };
    let declared = declared.to_ascii_lowercase();
    let expected = declared_as_detected(&declared);
    if expected == detected || (expected == "raw" && detected == "gpt") {
        return Ok(());
    }
    Err(format!(
        "the image is declared {declared} (image_disk_format) but its content is {detected}; refused"
    ))
}

/// Refuses formats outside `permitted` (`[deploy] permitted_image_formats`).
pub fn check_permitted(detected: &str, permitted: &[String]) -> Result<(), String> {
    if permitted.iter().any(|f| f == detected) {
        return Ok(());
    }
    Err(format!(
        "the image's format {detected} is not allowed ([deploy] permitted_image_formats: {})",
        permitted.join(", ")
    ))
}

/// What `qemu-img info --output=json` says about an image, checked a
/// second time: no backing file, no data file, no extent but the image.
pub fn check_qemu_info(info: &serde_json::Value, path: &Path) -> Result<Option<u64>, String> {
    if info.get("backing-filename").is_some() || info.get("full-backing-filename").is_some() {
        return Err("qemu-img reports a backing file; refused".into());
    }
    let data = &info["format-specific"]["data"];
    if data.get("data-file").is_some() {
        return Err("qemu-img reports an external data file; refused".into());
    }
    if let Some(extents) = data.get("extents").and_then(serde_json::Value::as_array) {
        let own = path.to_string_lossy();
        for extent in extents {
            let name = extent["filename"].as_str().unwrap_or("");
            if name != own {
                return Err(format!(
                    "qemu-img reports an extent in another file ({name}); refused"
                ));
            }
        }
    }
    Ok(info["virtual-size"].as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes to place at an offset of a test header.
    type Parts<'a> = &'a [(usize, &'a [u8])];

    fn padded(parts: Parts, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        for (offset, bytes) in parts {
            buf[*offset..*offset + bytes.len()].copy_from_slice(bytes);
        }
        buf
    }

    #[test]
    fn formats_by_magic() {
        let cases: &[(Parts, &str)] = &[
            (&[(0, b"QFI\xfb")], "qcow2"),
            (&[(0, b"QED\0")], "qed"),
            (&[(0, b"KDMV")], "vmdk"),
            (&[(0, b"# Disk DescriptorFile\n")], "vmdk"),
            (&[(0, b"vhdxfile")], "vhdx"),
            (&[(0, b"conectix")], "vpc"),
            (&[(0x40, &[0x7f, 0x10, 0xda, 0xbe])], "vdi"),
            (&[(0, b"LUKS\xba\xbe")], "luks"),
            (
                &[
                    (0x1BE + 4, &[0xEE]),
                    (510, &[0x55, 0xAA]),
                    (512, b"EFI PART"),
                ],
                "gpt",
            ),
            (&[(0x1BE + 4, &[0x83]), (510, &[0x55, 0xAA])], "raw"),
            (&[(0x8001, b"CD001")], "iso"),
            (&[], "raw"),
        ];
        for (parts, expected) in cases {
            assert_eq!(detect(&padded(parts, 64 * 1024)), *expected, "{parts:?}");
        }
        assert_eq!(detect(b"QF"), "raw", "too short for any magic");
    }

    #[test]
    fn declared_formats() {
        assert!(check_declared(None, "qcow2").is_ok());
        assert!(check_declared(Some("raw"), "gpt").is_ok());
        assert!(check_declared(Some("QCOW2"), "qcow2").is_ok());
        assert!(check_declared(Some("vhd"), "vpc").is_ok());
        let err = check_declared(Some("raw"), "qcow2").expect_err("mismatch");
        assert!(
            err.contains("declared raw") && err.contains("qcow2"),
            "{err}"
        );
        assert!(check_declared(Some("qcow2"), "raw").is_err());
        let permitted = vec!["raw".to_string(), "qcow2".to_string()];
        assert!(check_permitted("qcow2", &permitted).is_ok());
        assert!(check_permitted("vmdk", &permitted)
            .expect_err("vmdk")
            .contains("permitted_image_formats: raw, qcow2"));
    }

    #[test]
    fn vmdk_descriptors() {
        let sparse = "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicSparse\"\nRW 2048 SPARSE \"disk.vmdk\"\n";
        assert!(check_vmdk_descriptor(sparse).is_ok());
        let flat = "createType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/shadow\" 0\n";
        assert!(check_vmdk_descriptor(flat).is_err());
        let sneaky = "createType=\"monolithicSparse\"\nRW 2048 FLAT \"/etc/shadow\" 0\n";
        assert!(check_vmdk_descriptor(sneaky).is_err());
        let two = "createType=\"streamOptimized\"\nRW 1 SPARSE \"a\"\nRW 1 SPARSE \"b\"\n";
        assert!(check_vmdk_descriptor(two).is_err());
    }

    #[test]
    fn qemu_info_second_opinion() {
        let path = Path::new("/cache/x.part");
        let clean = serde_json::json!({"virtual-size": 1048576, "format": "qcow2"});
        assert_eq!(check_qemu_info(&clean, path), Ok(Some(1_048_576)));
        let backing = serde_json::json!({"backing-filename": "/etc/shadow"});
        assert!(check_qemu_info(&backing, path).is_err());
        let data =
            serde_json::json!({"format-specific": {"type": "qcow2", "data": {"data-file": "/x"}}});
        assert!(check_qemu_info(&data, path).is_err());
        let extents = serde_json::json!({"format-specific": {"type": "vmdk", "data": {"extents": [{"filename": "/etc/shadow"}]}}});
        assert!(check_qemu_info(&extents, path).is_err());
        let own = serde_json::json!({"format-specific": {"type": "vmdk", "data": {"extents": [{"filename": "/cache/x.part"}]}}});
        assert!(check_qemu_info(&own, path).is_ok());
    }
}
