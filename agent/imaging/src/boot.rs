//! Bootloader installation and the firmware's boot check.
//!
//! [`install_bootloader`] simulates `grub-install` but leaves real evidence
//! a firmware (or [`boot_check`]) can find: for UEFI the removable-media
//! loader `EFI/BOOT/BOOTX64.EFI` and a `grub.cfg` naming the root
//! filesystem in the EFI system partition (written in process, see `fat`); for BIOS
//! boot code in the MBR's first 440 bytes and, on GPT, a core image in the
//! BIOS boot partition.
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::hardware::Disk;
use crate::table::{self, Label, Partition, Table};
use crate::{util, ImagingError, Result};

/// The first bytes of the simulated boot code (a short jump, as GRUB's
/// boot.img starts).
pub const BOOT_CODE_MAGIC: &[u8] = b"\xEB\x63\x90FERRITE-GRUB";
/// The first bytes of the simulated core image in a BIOS boot partition.
pub const CORE_IMAGE_MAGIC: &[u8] = b"FERRITE-GRUB-CORE";
/// The first bytes of the simulated UEFI loader (a PE image starts "MZ").
pub const EFI_LOADER_MAGIC: &[u8] = b"MZ FERRITE-GRUB-EFI";

/// The simulated UEFI loader.
pub fn efi_loader() -> Vec<u8> {
    let mut v = EFI_LOADER_MAGIC.to_vec();
    v.extend_from_slice(b"\nsimulated GRUB for x86_64-efi\n");
    v
}

/// The grub.cfg written next to the loader.
pub fn grub_cfg(root_uuid: &str) -> String {
    format!(
        "search --no-floppy --fs-uuid --set=root {root_uuid}\nset prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n"
    )
}

fn is_esp(p: &Partition) -> bool {
    p.kind.eq_ignore_ascii_case(table::GPT_ESP) || p.kind.eq_ignore_ascii_case("ef")
}

fn read_table(disk: &Disk) -> Result<Table> {
    table::read(&disk.path)?
        .ok_or_else(|| ImagingError::Invalid(format!("disk {} has no partition table", disk.name)))
}

fn find_esp(disk: &Disk, t: &Table, uuid: Option<&str>) -> Result<Partition> {
    let esps: Vec<&Partition> = t.partitions.iter().filter(|p| is_esp(p)).collect();
    if let Some(wanted) = uuid {
        for p in &esps {
            if p.uuid.eq_ignore_ascii_case(wanted) {
                return Ok((*p).clone());
            }
            let found = util::probe(&disk.path, p.start, p.size)?;
            if found
                .get("UUID")
                .is_some_and(|u| u.eq_ignore_ascii_case(wanted))
            {
                return Ok((*p).clone());
            }
        }
    }
    esps.first().map(|p| (*p).clone()).ok_or_else(|| {
        ImagingError::Invalid(format!(
            "disk {} has no EFI system partition (GPT type {} or MBR type ef)",
            disk.name,
            table::GPT_ESP
        ))
    })
}

/// Writes `name` with `content` into the FAT filesystem at `offset`.
fn fat_put(image: &Path, offset: u64, dir: &str, name: &str, content: &[u8]) -> Result<()> {
    crate::fat::put(image, offset, dir, name, content)
}

/// Whether the FAT filesystem at `offset` holds `path` (e.g.
/// `EFI/BOOT/BOOTX64.EFI`, case-insensitive as FAT is).
pub fn fat_has(image: &Path, offset: u64, path: &str) -> bool {
    crate::fat::has(image, offset, path)
}

/// Makes the deployed partition image bootable in `boot_mode`.
pub fn install_bootloader(
    disk: &Disk,
    root_uuid: &str,
    efi_system_partition_uuid: Option<&str>,
    boot_mode: &str,
) -> Result<()> {
    let t = read_table(disk)?;
    match boot_mode.to_lowercase().as_str() {
        "uefi" => {
            let esp = find_esp(disk, &t, efi_system_partition_uuid)?;
            let found = util::probe(&disk.path, esp.start, esp.size)?;
            if found.get("TYPE").map(String::as_str) != Some("vfat") {
                return Err(ImagingError::Invalid(format!(
                    "EFI system partition {} of disk {} holds no FAT filesystem",
                    esp.number, disk.name
                )));
            }
            fat_put(
                &disk.path,
                esp.start,
                "EFI/BOOT",
                "BOOTX64.EFI",
                &efi_loader(),
            )?;
            fat_put(
                &disk.path,
                esp.start,
                "EFI/BOOT",
                "grub.cfg",
                grub_cfg(root_uuid).as_bytes(),
            )?;
            Ok(())
        }
        "bios" => {
            let mut code = BOOT_CODE_MAGIC.to_vec();
            code.extend_from_slice(format!(" root={root_uuid}").as_bytes());
            code.resize(440, 0);
            if t.label == Label::Gpt {
                let bb = t.find_kind(table::GPT_BIOS_BOOT).ok_or_else(|| {
                    ImagingError::Invalid(format!(
                        "disk {} has a GPT but no BIOS boot partition (type {}): GRUB has nowhere to embed its core image",
                        disk.name,
                        table::GPT_BIOS_BOOT
                    ))
                })?;
                let mut core = CORE_IMAGE_MAGIC.to_vec();
                core.extend_from_slice(format!(" root={root_uuid}\n").as_bytes());
                if core.len() as u64 > bb.size {
                    return Err(ImagingError::TooSmall(format!(
                        "BIOS boot partition {} of disk {} is too small",
                        bb.number, disk.name
                    )));
                }
                util::write_at(&disk.path, bb.start, &core)?;
            }
            util::write_at(&disk.path, 0, &code)
        }
        other => Err(ImagingError::Invalid(format!(
            "boot_mode {other:?} is not supported (uefi, bios)"
        ))),
    }
}

/// The partition holding the root filesystem our boot code names
/// (`root=<uuid>`), if any.
fn root_partition(disk: &Disk, t: &Table, mbr: &[u8]) -> Result<Option<u32>> {
    if !mbr.starts_with(BOOT_CODE_MAGIC) {
        return Ok(None);
    }
    let code = &mbr[BOOT_CODE_MAGIC.len()..440];
    let text = String::from_utf8_lossy(code);
    let Some(uuid) = text
        .trim_end_matches('\0')
        .trim()
        .strip_prefix("root=")
        .map(|u| u.trim_end_matches('\0').to_string())
    else {
        return Ok(None);
    };
    for p in &t.partitions {
        if p.uuid.eq_ignore_ascii_case(&uuid) {
            return Ok(Some(p.number));
        }
        let found = util::probe(&disk.path, p.start, p.size)?;
        if found
            .get("UUID")
            .is_some_and(|u| u.eq_ignore_ascii_case(&uuid))
        {
            return Ok(Some(p.number));
        }
    }
    Ok(None)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootInfo {
    pub boot_mode: String,
    /// The partition the firmware would boot from (ESP or active/root).
    pub partition: u32,
}

/// What a machine's firmware checks before booting from `disk`: a valid
/// partition table with something bootable for `boot_mode`.
pub fn boot_check(disk: &Disk, boot_mode: &str) -> Result<BootInfo> {
    let t = table::read(&disk.path)
        .map_err(|e| ImagingError::Invalid(format!("disk {}: {e}", disk.name)))?
        .ok_or_else(|| {
            ImagingError::Invalid(format!(
                "no bootable device: disk {} has no valid partition table",
                disk.name
            ))
        })?;
    match boot_mode.to_lowercase().as_str() {
        "uefi" => {
            let esps: Vec<&Partition> = t.partitions.iter().filter(|p| is_esp(p)).collect();
            if esps.is_empty() {
                return Err(ImagingError::Invalid(format!(
                    "no bootable device: disk {} has no EFI system partition (GPT type {} or MBR type ef)",
                    disk.name,
                    table::GPT_ESP
                )));
            }
            for p in &esps {
                if fat_has(&disk.path, p.start, "EFI/BOOT/BOOTX64.EFI") {
                    return Ok(BootInfo {
                        boot_mode: "uefi".into(),
                        partition: p.number,
                    });
                }
            }
            Err(ImagingError::Invalid(format!(
                "no bootable device: the EFI system partition of disk {} (partition {}) has no EFI/BOOT/BOOTX64.EFI",
                disk.name,
                esps.iter().map(|p| p.number.to_string()).collect::<Vec<_>>().join(", ")
            )))
        }
        "bios" => {
            let mbr = util::read_at(&disk.path, 0, 512)?;
            if mbr[510] != 0x55 || mbr[511] != 0xAA {
                return Err(ImagingError::Invalid(format!(
                    "no bootable device: disk {} has no 0x55AA boot signature",
                    disk.name
                )));
            }
            if mbr[..440].iter().all(|b| *b == 0) {
                return Err(ImagingError::Invalid(format!(
                    "no bootable device: disk {} has no boot code in its MBR",
                    disk.name
                )));
            }
            let partition = match t.label {
                Label::Gpt => {
                    let bb = t.find_kind(table::GPT_BIOS_BOOT).ok_or_else(|| {
                        ImagingError::Invalid(format!(
                            "no bootable device: disk {} is GPT without a BIOS boot partition",
                            disk.name
                        ))
                    })?;
                    let head = util::read_at(&disk.path, bb.start, 512)?;
                    if head.iter().all(|b| *b == 0) {
                        return Err(ImagingError::Invalid(format!(
                            "no bootable device: the BIOS boot partition of disk {} is empty (no core image)",
                            disk.name
                        )));
                    }
                    root_partition(disk, &t, &mbr)?.unwrap_or(bb.number)
                }
                Label::Msdos => match root_partition(disk, &t, &mbr)? {
                    Some(n) => n,
                    None => t
                        .partitions
                        .iter()
                        .find(|p| p.bootable)
                        .or_else(|| t.partitions.first())
                        .map(|p| p.number)
                        .unwrap_or(1),
                },
            };
            Ok(BootInfo {
                boot_mode: "bios".into(),
                partition,
            })
        }
        other => Err(ImagingError::Invalid(format!(
            "boot_mode {other:?} is not supported (uefi, bios)"
        ))),
    }
}
