//! A machine's hardware as the agent sees it. The fleet writes it (one JSON
//! file per machine), the agent reads it instead of probing real devices,
//! and reports it in ironic-python-agent's inventory format.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    #[serde(default)]
    pub system_vendor: SystemVendor,
    pub cpu: Cpu,
    pub memory_mb: u64,
    pub interfaces: Vec<Nic>,
    pub disks: Vec<Disk>,
    /// `uefi` or `bios`.
    #[serde(default = "default_boot_mode")]
    pub boot_mode: String,
}

fn default_boot_mode() -> String {
    "uefi".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemVendor {
    pub product_name: String,
    pub serial_number: String,
    pub manufacturer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub model_name: String,
    pub count: u32,
    pub architecture: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    pub name: String,
    /// Lower case, colon separated.
    pub mac_address: String,
    #[serde(default)]
    pub ipv4_address: Option<String>,
    #[serde(default = "yes")]
    pub has_carrier: bool,
}

fn yes() -> bool {
    true
}

/// One disk, backed by a (sparse) file of exactly `size` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    /// Device name as the OS would show it, e.g. `/dev/sda`.
    pub name: String,
    /// The backing file.
    pub path: PathBuf,
    /// Bytes.
    pub size: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub wwn: Option<String>,
    #[serde(default)]
    pub wwn_with_extension: Option<String>,
    #[serde(default)]
    pub wwn_vendor_extension: Option<String>,
    #[serde(default)]
    pub rotational: bool,
    #[serde(default)]
    pub hctl: Option<String>,
    #[serde(default)]
    pub by_path: Option<String>,
}
