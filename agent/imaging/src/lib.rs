//! What a deploy agent does to disks, without any HTTP API: the machine's
//! hardware description ([`hardware`]), root device hints ([`hints`]),
//! partition tables ([`table`]), image download/verification/conversion and
//! writing ([`image`]), bootloader installation and boot checks ([`boot`]),
//! metadata erasure ([`erase`]); [`fixtures`] builds images and disks for
//! tests and benchmarks, [`util`] holds the sparse writer and tool runners.
//!
//! Disks are regular (sparse) files: every operation takes the backing path
//! from [`hardware::Disk::path`], so the same code would work on a block
//! device path.

pub mod boot;
pub mod erase;
pub mod fat;
pub mod fixtures;
pub mod hardware;
pub mod hints;
pub mod image;
pub mod table;
pub mod util;

/// Errors of this crate. `Display` is what ends up in the conductor's
/// `last_error`, so it must say what went wrong in operator terms.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// Bad input: unparsable hints, unsupported format, bad image_info.
    #[error("{0}")]
    Invalid(String),
    /// No disk matches the root device hints / no disk is big enough.
    #[error("{0}")]
    NoDisk(String),
    /// The image (plus partitions / config drive) does not fit the disk.
    #[error("{0}")]
    TooSmall(String),
    /// Download failed (HTTP status, connection).
    #[error("{0}")]
    Download(String),
    /// Checksum of the downloaded image differs from the expected one.
    #[error("{0}")]
    Checksum(String),
    /// An external tool (qemu-img, mkfs.*, mkswap, mcopy…) failed.
    #[error("{0}")]
    Tool(String),
    #[error("{0}")]
    Io(String),
}

impl From<std::io::Error> for ImagingError {
    fn from(err: std::io::Error) -> ImagingError {
        ImagingError::Io(err.to_string())
    }
}

pub type Result<T> = std::result::Result<T, ImagingError>;
