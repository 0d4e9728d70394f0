//! The conductor's hardware configuration: which hardware types and interfaces it serves.
//!
//! The keys are those of upstream's `[DEFAULT]` section, flat, so an `ironic.conf` translates
//! line by line. In the conductor's TOML file (under whatever table the conductor mounts this):
//!
//! ```toml
//! enabled_hardware_types = ["fake-hardware", "manual-management"]
//! enabled_boot_interfaces = ["ipxe", "pxe", "fake"]
//! default_boot_interface = "pxe"          # optional; omit to use the hardware type's preference
//! enabled_management_interfaces = []      # empty: each enabled hardware type's first choice
//! ```
//!
//! A missing key keeps its default (see `InterfaceConfig::default`); an unknown key is an error.

use serde::{Deserialize, Serialize};

use super::kind::InterfaceKind;

/// Which hardware types and interface implementations are enabled, and the configured defaults.
///
/// An empty `enabled_<kind>_interfaces` list means "the first supported implementation of each
/// enabled hardware type", as upstream computes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterfaceConfig {
    pub enabled_hardware_types: Vec<String>,
    pub enabled_bios_interfaces: Vec<String>,
    pub default_bios_interface: Option<String>,
    pub enabled_boot_interfaces: Vec<String>,
    pub default_boot_interface: Option<String>,
    pub enabled_console_interfaces: Vec<String>,
    pub default_console_interface: Option<String>,
    pub enabled_deploy_interfaces: Vec<String>,
    pub default_deploy_interface: Option<String>,
    pub enabled_firmware_interfaces: Vec<String>,
    pub default_firmware_interface: Option<String>,
    pub enabled_inspect_interfaces: Vec<String>,
    pub default_inspect_interface: Option<String>,
    pub enabled_management_interfaces: Vec<String>,
    pub default_management_interface: Option<String>,
    pub enabled_network_interfaces: Vec<String>,
    pub default_network_interface: Option<String>,
    pub enabled_power_interfaces: Vec<String>,
    pub default_power_interface: Option<String>,
    pub enabled_raid_interfaces: Vec<String>,
    pub default_raid_interface: Option<String>,
    pub enabled_rescue_interfaces: Vec<String>,
    pub default_rescue_interface: Option<String>,
    pub enabled_storage_interfaces: Vec<String>,
    pub default_storage_interface: Option<String>,
    pub enabled_vendor_interfaces: Vec<String>,
    pub default_vendor_interface: Option<String>,
}

impl InterfaceConfig {
    /// The configured `enabled_<kind>_interfaces` list.
    pub fn enabled_interfaces(&self, kind: InterfaceKind) -> &[String] {
        match kind {
            InterfaceKind::Bios => &self.enabled_bios_interfaces,
            InterfaceKind::Boot => &self.enabled_boot_interfaces,
            InterfaceKind::Console => &self.enabled_console_interfaces,
            InterfaceKind::Deploy => &self.enabled_deploy_interfaces,
            InterfaceKind::Firmware => &self.enabled_firmware_interfaces,
            InterfaceKind::Inspect => &self.enabled_inspect_interfaces,
            InterfaceKind::Management => &self.enabled_management_interfaces,
            InterfaceKind::Network => &self.enabled_network_interfaces,
            InterfaceKind::Power => &self.enabled_power_interfaces,
            InterfaceKind::Raid => &self.enabled_raid_interfaces,
            InterfaceKind::Rescue => &self.enabled_rescue_interfaces,
            InterfaceKind::Storage => &self.enabled_storage_interfaces,
            InterfaceKind::Vendor => &self.enabled_vendor_interfaces,
        }
    }

    /// The configured `default_<kind>_interface`, if any.
    pub fn default_interface(&self, kind: InterfaceKind) -> Option<&str> {
        let value = match kind {
            InterfaceKind::Bios => &self.default_bios_interface,
            InterfaceKind::Boot => &self.default_boot_interface,
            InterfaceKind::Console => &self.default_console_interface,
            InterfaceKind::Deploy => &self.default_deploy_interface,
            InterfaceKind::Firmware => &self.default_firmware_interface,
            InterfaceKind::Inspect => &self.default_inspect_interface,
            InterfaceKind::Management => &self.default_management_interface,
            InterfaceKind::Network => &self.default_network_interface,
            InterfaceKind::Power => &self.default_power_interface,
            InterfaceKind::Raid => &self.default_raid_interface,
            InterfaceKind::Rescue => &self.default_rescue_interface,
            InterfaceKind::Storage => &self.default_storage_interface,
            InterfaceKind::Vendor => &self.default_vendor_interface,
        };
        value.as_deref()
    }
}

/// Strings from string literals, for the defaults below.
fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

impl Default for InterfaceConfig {
    /// Ferrite's defaults: the `fake-hardware`, `manual-management` and `redfish` hardware types
    /// (upstream's defaults enable `redfish` too) with the
    /// interfaces of the reference deployment the transcripts were taken from, so that a
    /// `fake-hardware` node without interface fields gets fake everything except `noop` network
    /// and storage. Storage defaults to `noop` explicitly, as upstream's option does.
    fn default() -> InterfaceConfig {
        InterfaceConfig {
            enabled_hardware_types: names(&["fake-hardware", "manual-management", "redfish"]),
            enabled_bios_interfaces: names(&["no-bios", "fake"]),
            default_bios_interface: None,
            enabled_boot_interfaces: names(&["ipxe", "pxe", "fake"]),
            default_boot_interface: None,
            enabled_console_interfaces: names(&["no-console", "fake"]),
            default_console_interface: None,
            enabled_deploy_interfaces: names(&["direct", "ramdisk", "fake"]),
            default_deploy_interface: None,
            enabled_firmware_interfaces: names(&["no-firmware", "fake"]),
            default_firmware_interface: None,
            enabled_inspect_interfaces: names(&["no-inspect", "fake"]),
            default_inspect_interface: None,
            enabled_management_interfaces: names(&["fake", "redfish"]),
            default_management_interface: None,
            enabled_network_interfaces: names(&["noop"]),
            default_network_interface: None,
            enabled_power_interfaces: names(&["fake", "redfish"]),
            default_power_interface: None,
            enabled_raid_interfaces: names(&["no-raid", "fake"]),
            default_raid_interface: None,
            enabled_rescue_interfaces: names(&["no-rescue", "fake"]),
            default_rescue_interface: None,
            enabled_storage_interfaces: names(&["noop", "fake"]),
            default_storage_interface: Some("noop".to_owned()),
            enabled_vendor_interfaces: names(&["no-vendor", "fake"]),
            default_vendor_interface: None,
        }
    }
}
