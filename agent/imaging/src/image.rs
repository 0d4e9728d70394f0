//! Image download, verification, conversion and writing.
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::hardware::Disk;
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

/// Downloads, verifies and writes the image to `disk`, with `configdrive`
/// (gzip+base64 or a URL) written to its partition when given.
pub async fn write_image(
    disk: &Disk,
    info: &ImageInfo,
    configdrive: Option<&str>,
    options: &WriteOptions,
) -> Result<WriteOutcome> {
    let _ = (disk, info, configdrive, options);
    Err(ImagingError::Invalid("not implemented".into()))
}
