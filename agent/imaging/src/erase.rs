//! The `erase_devices_metadata` clean step.
use crate::hardware::Disk;
use crate::{ImagingError, Result};

/// Removes partition tables and filesystem signatures from `disk`.
pub fn erase_metadata(disk: &Disk) -> Result<()> {
    let _ = disk;
    Err(ImagingError::Invalid("not implemented".into()))
}
