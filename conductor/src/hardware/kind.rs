//! The thirteen driver interface kinds a node is composed of, and when the API learned about each.

use std::fmt;
use std::str::FromStr;

/// One kind of driver interface (`boot`, `power`, ...).
///
/// A node names one implementation per kind in its `<kind>_interface` field; a hardware type lists
/// the implementations it supports per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InterfaceKind {
    Bios,
    Boot,
    Console,
    Deploy,
    Firmware,
    Inspect,
    Management,
    Network,
    Power,
    Raid,
    Rescue,
    Storage,
    Vendor,
}

/// The microversion that added the `network_interface` node field.
const NETWORK_NODE_FIELD: u16 = 20;
/// The microversion that added the driver composition fields of `/v1/drivers` (`type`, `detail`,
/// `default_*`/`enabled_*` of the original interface kinds).
pub const DYNAMIC_DRIVERS: u16 = 30;
/// The microversion that added the remaining original `<kind>_interface` node fields.
const DYNAMIC_INTERFACES: u16 = 31;
/// The microversion that added storage interfaces (node and driver fields).
const STORAGE_INTERFACE: u16 = 33;
/// The microversion that added rescue interfaces (node and driver fields).
const RESCUE_INTERFACE: u16 = 38;
/// The microversion that added BIOS interfaces (node and driver fields).
const BIOS_INTERFACE: u16 = 40;
/// The microversion that added firmware interfaces (node and driver fields).
const FIRMWARE_INTERFACE: u16 = 86;

impl InterfaceKind {
    /// Every kind, in alphabetical order.
    pub const ALL: [InterfaceKind; 13] = [
        InterfaceKind::Bios,
        InterfaceKind::Boot,
        InterfaceKind::Console,
        InterfaceKind::Deploy,
        InterfaceKind::Firmware,
        InterfaceKind::Inspect,
        InterfaceKind::Management,
        InterfaceKind::Network,
        InterfaceKind::Power,
        InterfaceKind::Raid,
        InterfaceKind::Rescue,
        InterfaceKind::Storage,
        InterfaceKind::Vendor,
    ];

    /// The kinds `GET /v1/nodes/{id}/validate` reports, in the order upstream builds its reply:
    /// the core kinds first, then the optional ones. Vendor interfaces are never validated there.
    pub const VALIDATED: [InterfaceKind; 12] = [
        InterfaceKind::Boot,
        InterfaceKind::Deploy,
        InterfaceKind::Management,
        InterfaceKind::Network,
        InterfaceKind::Power,
        InterfaceKind::Bios,
        InterfaceKind::Console,
        InterfaceKind::Firmware,
        InterfaceKind::Inspect,
        InterfaceKind::Raid,
        InterfaceKind::Rescue,
        InterfaceKind::Storage,
    ];

    /// The wire name of the kind, e.g. `boot`.
    pub const fn as_str(self) -> &'static str {
        match self {
            InterfaceKind::Bios => "bios",
            InterfaceKind::Boot => "boot",
            InterfaceKind::Console => "console",
            InterfaceKind::Deploy => "deploy",
            InterfaceKind::Firmware => "firmware",
            InterfaceKind::Inspect => "inspect",
            InterfaceKind::Management => "management",
            InterfaceKind::Network => "network",
            InterfaceKind::Power => "power",
            InterfaceKind::Raid => "raid",
            InterfaceKind::Rescue => "rescue",
            InterfaceKind::Storage => "storage",
            InterfaceKind::Vendor => "vendor",
        }
    }

    /// The node field naming this kind's implementation, e.g. `boot_interface`.
    pub fn node_field(self) -> String {
        format!("{}_interface", self.as_str())
    }

    /// The driver field (and configuration key) holding this kind's default, e.g.
    /// `default_boot_interface`.
    pub fn default_field(self) -> String {
        format!("default_{}_interface", self.as_str())
    }

    /// The driver field (and configuration key) listing this kind's enabled implementations, e.g.
    /// `enabled_boot_interfaces`.
    pub fn enabled_field(self) -> String {
        format!("enabled_{}_interfaces", self.as_str())
    }

    /// The entry point upstream loads this kind's implementations from; its error texts name it.
    pub fn entrypoint(self) -> String {
        format!("ironic.hardware.interfaces.{}", self.as_str())
    }

    /// The minor microversion from which the node's `<kind>_interface` field exists.
    pub const fn node_field_min_version(self) -> u16 {
        match self {
            InterfaceKind::Network => NETWORK_NODE_FIELD,
            InterfaceKind::Storage => STORAGE_INTERFACE,
            InterfaceKind::Rescue => RESCUE_INTERFACE,
            InterfaceKind::Bios => BIOS_INTERFACE,
            InterfaceKind::Firmware => FIRMWARE_INTERFACE,
            InterfaceKind::Boot
            | InterfaceKind::Console
            | InterfaceKind::Deploy
            | InterfaceKind::Inspect
            | InterfaceKind::Management
            | InterfaceKind::Power
            | InterfaceKind::Raid
            | InterfaceKind::Vendor => DYNAMIC_INTERFACES,
        }
    }

    /// The minor microversion from which a driver shows `default_<kind>_interface` and
    /// `enabled_<kind>_interfaces`.
    pub const fn driver_field_min_version(self) -> u16 {
        match self {
            InterfaceKind::Storage => STORAGE_INTERFACE,
            InterfaceKind::Rescue => RESCUE_INTERFACE,
            InterfaceKind::Bios => BIOS_INTERFACE,
            InterfaceKind::Firmware => FIRMWARE_INTERFACE,
            InterfaceKind::Boot
            | InterfaceKind::Console
            | InterfaceKind::Deploy
            | InterfaceKind::Inspect
            | InterfaceKind::Management
            | InterfaceKind::Network
            | InterfaceKind::Power
            | InterfaceKind::Raid
            | InterfaceKind::Vendor => DYNAMIC_DRIVERS,
        }
    }
}

impl fmt::Display for InterfaceKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A string that names no interface kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown interface kind '{0}'")]
pub struct UnknownInterfaceKind(pub String);

impl FromStr for InterfaceKind {
    type Err = UnknownInterfaceKind;

    fn from_str(text: &str) -> Result<InterfaceKind, UnknownInterfaceKind> {
        InterfaceKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownInterfaceKind(text.to_owned()))
    }
}
