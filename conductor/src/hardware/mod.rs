//! Hardware types and driver interfaces: what the conductor serves, which interfaces a node
//! gets, the Drivers API bodies and node validation.
//!
//! Pure: no I/O, no HTTP. The catalog (`catalog.rs`) is data; the registry (`registry.rs`) is
//! built from the configuration (`config.rs`) once at start and then only read.

mod catalog;
mod config;
mod drivers_api;
mod kind;
mod registry;
mod validate;

#[cfg(test)]
mod tests;

pub use catalog::{
    HardwareTypeSpec, InterfaceSpec, SupportedInterfaces, Validator, HARDWARE_TYPES, INTERFACES,
};
pub use config::InterfaceConfig;
pub use drivers_api::check_drivers_list_query;
pub use kind::{InterfaceKind, UnknownInterfaceKind};
pub use registry::{ConfigError, HardwareError, InterfaceUpdate, Registry};
pub use validate::{validate, InterfaceCheck, NodeValidationInput};
