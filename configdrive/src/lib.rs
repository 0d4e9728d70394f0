//! OpenStack config drives (CONTRACT; the body is being written).
//!
//! [`ConfigDrive`] holds what Nova puts on a config drive;
//! [`ConfigDrive::to_iso`] writes the ISO9660 image labelled `config-2`;
//! [`pack`] gzips and base64-encodes it for the Bare Metal API.

use serde_json::Value;

/// The contents of a config drive.
#[derive(Debug, Clone, Default)]
pub struct ConfigDrive {
    /// `openstack/latest/meta_data.json` (and the dated copies).
    pub meta_data: Value,
    /// `openstack/latest/user_data`, raw bytes.
    pub user_data: Option<Vec<u8>>,
    /// `openstack/latest/network_data.json`.
    pub network_data: Option<Value>,
    /// `openstack/latest/vendor_data.json`.
    pub vendor_data: Option<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigDriveError {
    #[error("config drive too large: {0} bytes")]
    TooLarge(usize),
}

impl ConfigDrive {
    /// The ISO9660 image (volume label `config-2`).
    pub fn to_iso(&self) -> Result<Vec<u8>, ConfigDriveError> {
        Err(ConfigDriveError::TooLarge(0))
    }
}

/// gzip + base64, the form the Bare Metal API takes.
pub fn pack(image: &[u8]) -> String {
    let _ = image;
    String::new()
}
