//! Bootloader installation and the firmware's boot check.
use serde::{Deserialize, Serialize};

use crate::hardware::Disk;
use crate::{ImagingError, Result};

/// Makes the deployed partition image bootable in `boot_mode`.
pub fn install_bootloader(
    disk: &Disk,
    root_uuid: &str,
    efi_system_partition_uuid: Option<&str>,
    boot_mode: &str,
) -> Result<()> {
    let _ = (disk, root_uuid, efi_system_partition_uuid, boot_mode);
    Err(ImagingError::Invalid("not implemented".into()))
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
    let _ = (disk, boot_mode);
    Err(ImagingError::Invalid("not implemented".into()))
}
