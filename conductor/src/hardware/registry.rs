//! The registry built from the configuration at start: enabled hardware types and interfaces,
//! every default computed up front, and the rules that pick a node's interfaces.

use std::collections::BTreeMap;

use super::catalog::{self, HardwareTypeSpec, HARDWARE_TYPES};
use super::config::InterfaceConfig;
use super::kind::InterfaceKind;

/// Why a configuration cannot be served; the conductor refuses to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("no hardware types are enabled: enabled_hardware_types is empty")]
    NoHardwareTypes,
    #[error("enabled_hardware_types names unknown hardware type '{name}' (known: {known})")]
    UnknownHardwareType { name: String, known: String },
    #[error("enabled_{kind}_interfaces names unknown {kind} interface '{name}' (known: {known})")]
    UnknownInterface {
        kind: InterfaceKind,
        name: String,
        known: String,
    },
    #[error(
        "{kind} interface '{name}' is enabled, but no enabled hardware type supports it \
         (enabled hardware types: {hardware_types})"
    )]
    UnsupportedInterface {
        kind: InterfaceKind,
        name: String,
        hardware_types: String,
    },
    #[error("default_{kind}_interface '{name}' is not in enabled_{kind}_interfaces")]
    DefaultNotEnabled { kind: InterfaceKind, name: String },
    #[error(
        "default_{kind}_interface '{name}' is not supported by enabled hardware type \
         '{hardware_type}'"
    )]
    DefaultNotSupported {
        hardware_type: String,
        kind: InterfaceKind,
        name: String,
    },
    #[error(
        "hardware type '{hardware_type}' has no enabled {kind} interface: enable one of \
         {supported} in enabled_{kind}_interfaces"
    )]
    NoUsableInterface {
        hardware_type: String,
        kind: InterfaceKind,
        supported: String,
    },
}

/// A refused request about drivers or node interfaces. `Display` is upstream's faultstring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HardwareError {
    /// A node names a driver that no conductor of its group serves (node create or update).
    #[error(
        "No valid host was found. Reason: No conductor service registered which supports driver \
         {driver} for conductor group \"{conductor_group}\". Ensure the driver is valid and enabled."
    )]
    NoConductorForDriver {
        driver: String,
        conductor_group: String,
    },
    /// A driver looked up through the Drivers API does not exist.
    #[error("Could not find the following driver(s) or hardware type(s): {driver}.")]
    DriverNotFound { driver: String },
    /// A node names an implementation that is unknown or not enabled.
    #[error(
        "Could not find the following interface in the 'ironic.hardware.interfaces.{kind}' \
         entrypoint: {name}. Valid interfaces are {}.",
        python_list(valid)
    )]
    InterfaceNotFound {
        kind: InterfaceKind,
        name: String,
        /// The enabled implementations of `kind`, sorted as upstream lists them.
        valid: Vec<String>,
    },
    /// A node names an enabled implementation its hardware type does not support.
    #[error(
        "{kind} interface implementation '{name}' is not supported by hardware type \
         {hardware_class}."
    )]
    IncompatibleInterface {
        kind: InterfaceKind,
        name: String,
        hardware_class: String,
    },
    /// `?reset_interfaces` was given on a node update that does not touch `driver`.
    #[error("The reset_interfaces parameter can only be used when changing the node's driver.")]
    ResetInterfacesWithoutDriver,
    /// A Drivers API query parameter older microversions do not know.
    #[error("Request not acceptable. The minimal required API version should be 1.{minimum}")]
    NotAcceptable { minimum: u16 },
    /// `GET /v1/drivers?type=` with something else than `classic` or `dynamic`.
    #[error("\"type\" filter must be one of \"classic\" or \"dynamic\", if specified.")]
    InvalidDriverTypeFilter,
}

impl HardwareError {
    /// The HTTP status upstream answers with.
    pub fn status(&self) -> u16 {
        match self {
            HardwareError::DriverNotFound { .. } => 404,
            HardwareError::NotAcceptable { .. } => 406,
            HardwareError::NoConductorForDriver { .. }
            | HardwareError::InterfaceNotFound { .. }
            | HardwareError::IncompatibleInterface { .. }
            | HardwareError::ResetInterfacesWithoutDriver
            | HardwareError::InvalidDriverTypeFilter => 400,
        }
    }
}

/// Renders names the way Python prints a list of strings, which upstream's messages embed.
fn python_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// An enabled hardware type with what the configuration makes of it.
#[derive(Debug)]
pub(super) struct EnabledHardwareType {
    pub(super) spec: &'static HardwareTypeSpec,
    /// Per kind, the enabled implementations the type supports, in configuration order. This is
    /// what the Drivers API shows as `enabled_<kind>_interfaces`.
    pub(super) usable: BTreeMap<InterfaceKind, Vec<&'static str>>,
    /// Per kind, what a node without that field gets.
    pub(super) defaults: BTreeMap<InterfaceKind, &'static str>,
}

/// The hardware types and interfaces this conductor serves. Built once at start, then read-only.
#[derive(Debug)]
pub struct Registry {
    /// Sorted by name, the order the Drivers API lists them in.
    pub(super) hardware_types: Vec<EnabledHardwareType>,
    /// Per kind, the enabled implementations in configuration order.
    pub(super) enabled: BTreeMap<InterfaceKind, Vec<&'static str>>,
}

/// A node update that may change the driver or interface fields (`PATCH /v1/nodes/{id}`).
#[derive(Debug, Clone, Copy)]
pub struct InterfaceUpdate<'a> {
    /// The node's driver after the patch.
    pub driver: &'a str,
    /// Whether the patch sets `/driver` (even to its current value).
    pub driver_patched: bool,
    /// The `?reset_interfaces=true` query flag (microversion 1.45 and later).
    pub reset_interfaces: bool,
    /// The interface fields stored on the node before the patch.
    pub current: &'a BTreeMap<InterfaceKind, String>,
    /// The interface fields the patch sets; `None` for removed or nulled fields.
    pub patched: &'a BTreeMap<InterfaceKind, Option<String>>,
}

/// The configured names without blanks and repeats, first occurrence kept.
fn cleaned(names: &[String]) -> Vec<&str> {
    let mut kept: Vec<&str> = Vec::new();
    for name in names.iter().map(String::as_str) {
        if !name.is_empty() && !kept.contains(&name) {
            kept.push(name);
        }
    }
    kept
}

impl Registry {
    /// Checks the configuration and computes every hardware type's defaults, as upstream's
    /// conductor does when it starts and registers its hardware interfaces.
    pub fn new(config: InterfaceConfig) -> Result<Registry, ConfigError> {
        let mut specs: Vec<&'static HardwareTypeSpec> = Vec::new();
        for name in cleaned(&config.enabled_hardware_types) {
            let spec =
                catalog::hardware_type(name).ok_or_else(|| ConfigError::UnknownHardwareType {
                    name: name.to_owned(),
                    known: known_hardware_types(),
                })?;
            specs.push(spec);
        }
        if specs.is_empty() {
            return Err(ConfigError::NoHardwareTypes);
        }

        let mut enabled = BTreeMap::new();
        for kind in InterfaceKind::ALL {
            enabled.insert(kind, enabled_interfaces(&config, kind, &specs)?);
        }

        let mut hardware_types = Vec::new();
        for spec in &specs {
            let mut usable = BTreeMap::new();
            let mut defaults = BTreeMap::new();
            for kind in InterfaceKind::ALL {
                let kind_enabled = enabled.get(&kind).map(Vec::as_slice).unwrap_or_default();
                let default = default_for(&config, spec, kind, kind_enabled)?;
                defaults.insert(kind, default);
                let supported: Vec<&'static str> = kind_enabled
                    .iter()
                    .copied()
                    .filter(|name| spec.supports(kind, name))
                    .collect();
                usable.insert(kind, supported);
            }
            hardware_types.push(EnabledHardwareType {
                spec,
                usable,
                defaults,
            });
        }
        hardware_types.sort_by_key(|enabled_type| enabled_type.spec.name);
        Ok(Registry {
            hardware_types,
            enabled,
        })
    }

    /// The names of the enabled hardware types, sorted.
    pub fn enabled_hardware_types(&self) -> Vec<String> {
        self.hardware_types
            .iter()
            .map(|enabled_type| enabled_type.spec.name.to_owned())
            .collect()
    }

    /// Whether `driver` names an enabled hardware type.
    pub fn is_enabled(&self, driver: &str) -> bool {
        self.find(driver).is_some()
    }

    /// The enabled implementations of `kind`, in configuration order.
    pub fn enabled_interfaces(&self, kind: InterfaceKind) -> &[&'static str] {
        self.enabled
            .get(&kind)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// What a node of `driver` without a `kind` field gets; `None` for a driver not enabled.
    pub fn default_interface(&self, driver: &str, kind: InterfaceKind) -> Option<&'static str> {
        self.find(driver)?.defaults.get(&kind).copied()
    }

    pub(super) fn find(&self, driver: &str) -> Option<&EnabledHardwareType> {
        self.hardware_types
            .iter()
            .find(|enabled_type| enabled_type.spec.name == driver)
    }

    /// The interfaces a node of `driver` ends up with, given the fields it names (missing or
    /// `None` entries get the default). For node create, and whenever a driver is built for a
    /// node. Errors carry upstream's texts; an unknown driver reports conductor group `""`.
    pub fn resolve(
        &self,
        driver: &str,
        requested: &BTreeMap<InterfaceKind, Option<String>>,
    ) -> Result<BTreeMap<InterfaceKind, String>, HardwareError> {
        let enabled_type =
            self.find(driver)
                .ok_or_else(|| HardwareError::NoConductorForDriver {
                    driver: driver.to_owned(),
                    conductor_group: String::new(),
                })?;
        let mut resolved = BTreeMap::new();
        for kind in InterfaceKind::ALL {
            let name = match requested.get(&kind).and_then(Option::as_deref) {
                Some(name) => {
                    self.check_requested(enabled_type.spec, kind, name)?;
                    name.to_owned()
                }
                None => enabled_type
                    .defaults
                    .get(&kind)
                    .map(|name| (*name).to_owned())
                    .unwrap_or_default(),
            };
            resolved.insert(kind, name);
        }
        Ok(resolved)
    }

    /// The interfaces of a node after an update, following upstream's update rules: when neither
    /// the driver nor an interface field is patched nothing is checked and the stored values stay;
    /// otherwise stored values are kept (and must suit the new driver) unless the driver is
    /// patched with `reset_interfaces`, in which case the fields the patch does not set go back to
    /// the new driver's defaults.
    pub fn resolve_update(
        &self,
        update: &InterfaceUpdate<'_>,
    ) -> Result<BTreeMap<InterfaceKind, String>, HardwareError> {
        if update.reset_interfaces && !update.driver_patched {
            return Err(HardwareError::ResetInterfacesWithoutDriver);
        }
        if !update.driver_patched && update.patched.is_empty() {
            return Ok(update.current.clone());
        }
        let mut requested = BTreeMap::new();
        for kind in InterfaceKind::ALL {
            let value = match update.patched.get(&kind) {
                Some(patched) => patched.clone(),
                None if update.driver_patched && update.reset_interfaces => None,
                None => update.current.get(&kind).cloned(),
            };
            requested.insert(kind, value);
        }
        self.resolve(update.driver, &requested)
    }

    /// Whether a node of `spec` may name `name` for `kind`.
    fn check_requested(
        &self,
        spec: &HardwareTypeSpec,
        kind: InterfaceKind,
        name: &str,
    ) -> Result<(), HardwareError> {
        let enabled = self.enabled_interfaces(kind);
        if !enabled.contains(&name) {
            let mut valid: Vec<String> = enabled.iter().map(|name| (*name).to_owned()).collect();
            valid.sort();
            return Err(HardwareError::InterfaceNotFound {
                kind,
                name: name.to_owned(),
                valid,
            });
        }
        if !spec.accepts(kind, name) {
            return Err(HardwareError::IncompatibleInterface {
                kind,
                name: name.to_owned(),
                hardware_class: spec.class_name.to_owned(),
            });
        }
        Ok(())
    }
}

fn known_hardware_types() -> String {
    let names: Vec<&str> = HARDWARE_TYPES.iter().map(|spec| spec.name).collect();
    names.join(", ")
}

/// The enabled implementations of one kind: the configured list, or when that is empty the first
/// supported implementation of each enabled hardware type. Each must be known and supported by
/// at least one enabled hardware type.
fn enabled_interfaces(
    config: &InterfaceConfig,
    kind: InterfaceKind,
    specs: &[&'static HardwareTypeSpec],
) -> Result<Vec<&'static str>, ConfigError> {
    let mut names: Vec<&str> = cleaned(config.enabled_interfaces(kind));
    if names.is_empty() {
        for spec in specs {
            if let Some(first) = spec.supported.of(kind).first() {
                if !names.contains(first) {
                    names.push(first);
                }
            }
        }
    }
    let mut enabled = Vec::new();
    for name in names {
        let spec = catalog::interface(kind, name).ok_or_else(|| {
            let known: Vec<&str> = catalog::INTERFACES
                .iter()
                .filter(|spec| spec.kind == kind)
                .map(|spec| spec.name)
                .collect();
            ConfigError::UnknownInterface {
                kind,
                name: name.to_owned(),
                known: known.join(", "),
            }
        })?;
        if !specs.iter().any(|hardware| hardware.supports(kind, name)) {
            let hardware_types: Vec<&str> = specs.iter().map(|hardware| hardware.name).collect();
            return Err(ConfigError::UnsupportedInterface {
                kind,
                name: name.to_owned(),
                hardware_types: hardware_types.join(", "),
            });
        }
        enabled.push(spec.name);
    }
    Ok(enabled)
}

/// One hardware type's default for one kind: the configured default if the type accepts it,
/// otherwise the first supported implementation that is enabled.
fn default_for(
    config: &InterfaceConfig,
    spec: &HardwareTypeSpec,
    kind: InterfaceKind,
    enabled: &[&'static str],
) -> Result<&'static str, ConfigError> {
    if let Some(configured) = config.default_interface(kind) {
        let Some(name) = enabled.iter().copied().find(|name| *name == configured) else {
            return Err(ConfigError::DefaultNotEnabled {
                kind,
                name: configured.to_owned(),
            });
        };
        if !spec.accepts(kind, name) {
            return Err(ConfigError::DefaultNotSupported {
                hardware_type: spec.name.to_owned(),
                kind,
                name: name.to_owned(),
            });
        }
        return Ok(name);
    }
    spec.supported
        .of(kind)
        .iter()
        .copied()
        .find(|name| enabled.contains(name))
        .ok_or_else(|| ConfigError::NoUsableInterface {
            hardware_type: spec.name.to_owned(),
            kind,
            supported: spec.supported.of(kind).join(", "),
        })
}
