//! Partition tables (GPT and MBR), read and written in pure Rust.
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::{ImagingError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Gpt,
    Msdos,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// 1-based.
    pub number: u32,
    /// Byte offset and size.
    pub start: u64,
    pub size: u64,
    /// GPT type GUID (upper case) or MBR type byte as two hex digits.
    pub kind: String,
    /// GPT partition GUID, or `<disk id>-<nn>` for MBR as blkid reports.
    pub uuid: String,
    /// GPT partition name.
    pub name: Option<String>,
    /// MBR active flag.
    pub bootable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub label: Label,
    /// GPT disk GUID or MBR disk signature (`0x…`).
    pub id: String,
    pub partitions: Vec<Partition>,
}

/// The partition table on `path`, `None` when there is none.
pub fn read(path: &Path) -> Result<Option<Table>> {
    let _ = path;
    Err(ImagingError::Invalid("not implemented".into()))
}
