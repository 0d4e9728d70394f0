//! TEMPORARY STUB (replaced by the real registry).
use ferrite_conductor_states::ApiVersion;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
impl InterfaceKind {
    pub const ALL: &'static [InterfaceKind] = &[
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
    pub fn as_str(self) -> &'static str {
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
    pub fn node_field(self) -> String {
        format!("{}_interface", self.as_str())
    }
}
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct InterfaceConfig {}
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HardwareError {
    message: String,
}
impl HardwareError {
    pub fn status(&self) -> u16 {
        400
    }
}
pub struct Registry {}
impl Registry {
    pub fn new(_c: InterfaceConfig) -> Result<Registry, ConfigError> {
        Ok(Registry {})
    }
    pub fn enabled_hardware_types(&self) -> Vec<String> {
        vec!["fake-hardware".into(), "manual-management".into()]
    }
    pub fn resolve(
        &self,
        driver: &str,
        requested: &BTreeMap<InterfaceKind, Option<String>>,
    ) -> Result<BTreeMap<InterfaceKind, String>, HardwareError> {
        if driver != "fake-hardware" && driver != "manual-management" {
            return Err(HardwareError {
                message: format!(
                    "Could not find the following driver(s) or hardware type(s): {driver}."
                ),
            });
        }
        Ok(InterfaceKind::ALL
            .iter()
            .map(|k| {
                (
                    *k,
                    requested
                        .get(k)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| match k {
                            InterfaceKind::Network | InterfaceKind::Storage => "noop".into(),
                            _ => "fake".into(),
                        }),
                )
            })
            .collect())
    }
    pub fn drivers_list(
        &self,
        _v: ApiVersion,
        _detail: bool,
        _t: Option<&str>,
        _hosts: &[String],
        _base: &str,
    ) -> Value {
        Value::Null
    }
    pub fn driver_show(
        &self,
        _n: &str,
        _v: ApiVersion,
        _hosts: &[String],
        _base: &str,
    ) -> Option<Value> {
        None
    }
    pub fn driver_properties(&self, _n: &str) -> Option<BTreeMap<String, String>> {
        None
    }
    pub fn validate(
        &self,
        _r: &BTreeMap<InterfaceKind, String>,
        _d: &Map<String, Value>,
        _i: &Map<String, Value>,
        _v: ApiVersion,
    ) -> Value {
        Value::Null
    }
}
