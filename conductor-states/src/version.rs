//! Bare Metal API microversions, as far as the state machine cares about them.

use std::fmt;

/// A Bare Metal API microversion `1.N`.
///
/// Upstream only ever compares the minor number (the major is always 1), so
/// this type holds just that. Requests without a version header are served
/// as 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiVersion {
    minor: u16,
}

impl ApiVersion {
    /// The oldest microversion, also the one used when a request names none.
    pub const MIN: ApiVersion = ApiVersion::v1(1);
    /// The newest microversion of Ironic 39.0.0.
    pub const MAX: ApiVersion = ApiVersion::v1(115);

    /// The microversion `1.minor`.
    pub const fn v1(minor: u16) -> ApiVersion {
        ApiVersion { minor }
    }

    /// The minor number, `N` in `1.N`.
    pub const fn minor(self) -> u16 {
        self.minor
    }

    /// Whether this version is at least `1.minor`.
    pub const fn at_least(self, minor: u16) -> bool {
        self.minor >= minor
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "1.{}", self.minor)
    }
}
