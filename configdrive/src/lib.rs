//! OpenStack config drives, as Nova builds them for bare-metal instances.
//!
//! [`ConfigDrive`] holds what Nova puts on a config drive; [`ConfigDrive::files`] lays it out in
//! Nova's directory tree; [`ConfigDrive::to_iso`] writes the ISO9660 image labelled `config-2`
//! (Rock Ridge names over 8.3 identifiers, written by our own pure-Rust writer); [`pack`] gzips
//! and base64-encodes it for the Bare Metal API and [`unpack`] undoes that; [`read_iso_files`]
//! reads any ISO9660 image's files back (tests, and the conductor when it inspects disks).
//!
//! The tree, for every version in [`OPENSTACK_VERSIONS`] and then `latest`, in Nova's order:
//! `openstack/<version>/meta_data.json`, `user_data` (only when there is user data),
//! `vendor_data.json` (from 2013-10-17), `network_data.json` (from 2015-10-15) and
//! `vendor_data2.json` (from 2016-10-06). Every dated directory gets the same `meta_data.json`
//! (Nova trims old versions' keys; consumers read `latest`). There is no `ec2/` tree and no
//! `openstack/content/` (file injection is gone from Nova). Identical contents are stored once in
//! the image, so the copies cost directory records only.

mod iso_read;
mod iso_write;
mod python_json;

pub use iso_read::read_iso_files;
pub use python_json::dumps as python_json_dumps;

use base64::Engine as _;
use serde_json::Value;
use std::io::Read as _;

/// The dated metadata versions Nova (2024.x and later) writes besides `latest`, oldest first:
/// Folsom, Grizzly, Havana, Liberty, Newton (two), Ocata, Rocky, Victoria.
pub const OPENSTACK_VERSIONS: [&str; 9] = [
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "2020-10-14",
];

/// The volume label cloud-init and friends look for.
pub const VOLUME_LABEL: &str = "config-2";

/// The biggest image we write or unpack. Ironic writes config drives into a 64 MiB partition,
/// so nothing bigger could be deployed anyway.
pub const MAX_IMAGE_BYTES: usize = 64 * 1024 * 1024;

/// The timestamp of every file in [`ConfigDrive::to_iso`]'s image: 2012-08-10 00:00:00 UTC
/// (the first metadata version), fixed so that the same drive always gives the same bytes.
pub const DEFAULT_IMAGE_TIME: i64 = 1_344_556_800;

const PUBLISHER: &str = "FERRITE";

/// The contents of a config drive.
#[derive(Debug, Clone, Default)]
pub struct ConfigDrive {
    /// `openstack/latest/meta_data.json` (and the dated copies).
    pub meta_data: Value,
    /// `openstack/latest/user_data`, raw bytes.
    pub user_data: Option<Vec<u8>>,
    /// `openstack/latest/network_data.json`; `{}` when absent.
    pub network_data: Option<Value>,
    /// `openstack/latest/vendor_data.json`; `{}` when absent. `vendor_data2.json` (Nova's dynamic
    /// vendor data, off by default) is always `{}`.
    pub vendor_data: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigDriveError {
    #[error("config drive too large: {0} bytes")]
    TooLarge(usize),
    #[error("path cannot be written to a config drive: {0:?}")]
    BadPath(String),
    #[error("malformed ISO9660 image: {0}")]
    Malformed(String),
    #[error("config drive is not gzipped base64: {0}")]
    BadPacking(String),
}

impl ConfigDrive {
    /// The files of the drive, `path` → bytes, in Nova's order (see the module documentation).
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let empty = Value::Object(serde_json::Map::new());
        let json = |value: &Value| python_json::dumps(value).into_bytes();
        let meta_data = json(&self.meta_data);
        let vendor_data = json(self.vendor_data.as_ref().unwrap_or(&empty));
        let network_data = json(self.network_data.as_ref().unwrap_or(&empty));
        let vendor_data2 = json(&empty);

        let mut files = Vec::new();
        let versions = OPENSTACK_VERSIONS.iter().copied().chain(["latest"]);
        for version in versions {
            // Dates compare as text; `latest` sorts after every date.
            let since = |first: &str| version >= first;
            let path = |name: &str| format!("openstack/{version}/{name}");
            files.push((path("meta_data.json"), meta_data.clone()));
            if let Some(user_data) = &self.user_data {
                files.push((path("user_data"), user_data.clone()));
            }
            if since("2013-10-17") {
                files.push((path("vendor_data.json"), vendor_data.clone()));
            }
            if since("2015-10-15") {
                files.push((path("network_data.json"), network_data.clone()));
            }
            if since("2016-10-06") {
                files.push((path("vendor_data2.json"), vendor_data2.clone()));
            }
        }
        files
    }

    /// The ISO9660 image (volume label `config-2`), every timestamp [`DEFAULT_IMAGE_TIME`].
    pub fn to_iso(&self) -> Result<Vec<u8>, ConfigDriveError> {
        self.to_iso_at(DEFAULT_IMAGE_TIME)
    }

    /// The ISO9660 image with every timestamp at `unix_time` (seconds since the epoch, UTC).
    pub fn to_iso_at(&self, unix_time: i64) -> Result<Vec<u8>, ConfigDriveError> {
        let options = iso_write::ImageOptions {
            volume_id: VOLUME_LABEL,
            publisher: PUBLISHER,
            unix_time,
        };
        iso_write::write_image(&self.files(), &options, MAX_IMAGE_BYTES)
    }
}

/// gzip + base64, the form the Bare Metal API takes.
pub fn pack(image: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(gzip(image))
}

/// The inverse of [`pack`]: base64 (standard alphabet, surrounding whitespace ignored), then gzip.
/// Refuses images over [`MAX_IMAGE_BYTES`].
pub fn unpack(packed: &str) -> Result<Vec<u8>, ConfigDriveError> {
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(packed.trim())
        .map_err(|error| ConfigDriveError::BadPacking(error.to_string()))?;
    let mut image = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .take(MAX_IMAGE_BYTES as u64 + 1)
        .read_to_end(&mut image)
        .map_err(|error| ConfigDriveError::BadPacking(error.to_string()))?;
    if image.len() > MAX_IMAGE_BYTES {
        return Err(ConfigDriveError::TooLarge(image.len()));
    }
    Ok(image)
}

/// A gzip member (RFC 1952) built by hand around an in-memory deflate, which cannot fail the way
/// `flate2`'s `Write`-based encoder nominally can. No name and a zero mtime: deterministic.
fn gzip(data: &[u8]) -> Vec<u8> {
    let deflated = miniz_oxide::deflate::compress_to_vec(data, 6);
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let mut out = Vec::with_capacity(deflated.len() + 18);
    // Magic, deflate, no flags, mtime 0, no extra flags, OS unknown.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[cfg(test)]
mod tests;
