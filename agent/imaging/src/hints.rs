//! Root device hints with upstream's operator grammar.
use crate::hardware::Disk;
use crate::{ImagingError, Result};

/// The disk to deploy to: the smallest disk matching `hints` (a JSON object
/// as in a node's `properties.root_device`), or without hints the smallest
/// disk of at least 4 GiB.
pub fn select_root_device<'a>(
    disks: &'a [Disk],
    hints: Option<&serde_json::Value>,
) -> Result<&'a Disk> {
    let _ = (disks, hints);
    Err(ImagingError::Invalid("not implemented".into()))
}
