//! Bodies of the Drivers API (`GET /v1/drivers`, `/v1/drivers/{name}`,
//! `/v1/drivers/{name}/properties`), gated by microversion as upstream gates them.

use std::collections::BTreeMap;

use ferrite_conductor_states::ApiVersion;
use serde_json::{json, Map, Value};

use super::catalog;
use super::kind::{InterfaceKind, DYNAMIC_DRIVERS};
use super::registry::{EnabledHardwareType, HardwareError, Registry};

/// The microversion from which drivers link to their properties.
const DRIVER_PROPERTIES_LINKS: u16 = 14;

/// Checks the query of `GET /v1/drivers` before the body is built: `detail` and `type` need 1.30
/// (406 before, even `detail=false`), and `type` must be `classic` or `dynamic`.
pub fn check_drivers_list_query(
    version: ApiVersion,
    detail: Option<bool>,
    type_filter: Option<&str>,
) -> Result<(), HardwareError> {
    if (detail.is_some() || type_filter.is_some()) && !version.at_least(DYNAMIC_DRIVERS) {
        return Err(HardwareError::NotAcceptable {
            minimum: DYNAMIC_DRIVERS,
        });
    }
    match type_filter {
        None | Some("classic") | Some("dynamic") => Ok(()),
        Some(_) => Err(HardwareError::InvalidDriverTypeFilter),
    }
}

/// `self` and `bookmark` links to `{base_url}/v1/drivers/{path}` and `{base_url}/drivers/{path}`.
fn links(base_url: &str, path: &str) -> Value {
    json!([
        {"href": format!("{base_url}/v1/drivers/{path}"), "rel": "self"},
        {"href": format!("{base_url}/drivers/{path}"), "rel": "bookmark"},
    ])
}

impl Registry {
    /// The body of `GET /v1/drivers`. Every enabled hardware type is listed with `hosts`, the
    /// conductors serving it. `type_filter` `classic` lists nothing (classic drivers are gone);
    /// call `check_drivers_list_query` first for the query's errors. `detail` has effect from 1.30.
    pub fn drivers_list(
        &self,
        version: ApiVersion,
        detail: bool,
        type_filter: Option<&str>,
        hosts: &[String],
        base_url: &str,
    ) -> Value {
        let drivers: Vec<Value> = match type_filter {
            None | Some("dynamic") => self
                .hardware_types
                .iter()
                .map(|enabled_type| driver_body(enabled_type, version, detail, hosts, base_url))
                .collect(),
            Some(_) => Vec::new(),
        };
        json!({ "drivers": drivers })
    }

    /// The body of `GET /v1/drivers/{name}` (always detailed), or `None` for a driver that is not
    /// enabled, which upstream answers with `HardwareError::DriverNotFound`.
    pub fn driver_show(
        &self,
        name: &str,
        version: ApiVersion,
        hosts: &[String],
        base_url: &str,
    ) -> Option<Value> {
        let enabled_type = self.find(name)?;
        Some(driver_body(enabled_type, version, true, hosts, base_url))
    }

    /// The body of `GET /v1/drivers/{name}/properties`: the `driver_info` properties of the
    /// hardware type's default interfaces, united (a later kind, alphabetically, wins a name
    /// two kinds share). `None` for a driver that is not enabled.
    pub fn driver_properties(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let enabled_type = self.find(name)?;
        let mut properties = BTreeMap::new();
        for (kind, interface_name) in &enabled_type.defaults {
            let Some(spec) = catalog::interface(*kind, interface_name) else {
                continue;
            };
            for (property, description) in spec.properties {
                properties.insert((*property).to_owned(), (*description).to_owned());
            }
        }
        Some(properties)
    }
}

/// One driver as the Drivers API shows it, in upstream's key order.
fn driver_body(
    enabled_type: &EnabledHardwareType,
    version: ApiVersion,
    detail: bool,
    hosts: &[String],
    base_url: &str,
) -> Value {
    let name = enabled_type.spec.name;
    let mut body = Map::new();
    body.insert("name".to_owned(), json!(name));
    body.insert("hosts".to_owned(), json!(hosts));
    body.insert("links".to_owned(), links(base_url, name));
    if version.at_least(DRIVER_PROPERTIES_LINKS) {
        body.insert(
            "properties".to_owned(),
            links(base_url, &format!("{name}/properties")),
        );
    }
    if version.at_least(DYNAMIC_DRIVERS) {
        body.insert("type".to_owned(), json!("dynamic"));
        if detail {
            for kind in InterfaceKind::ALL {
                if !version.at_least(kind.driver_field_min_version()) {
                    continue;
                }
                let usable = enabled_type
                    .usable
                    .get(&kind)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                // Upstream reports the default only when it is one of the listed implementations;
                // fake-hardware may default to an enabled implementation it does not list.
                let default = enabled_type
                    .defaults
                    .get(&kind)
                    .filter(|default| usable.contains(default));
                body.insert(kind.default_field(), json!(default));
                body.insert(kind.enabled_field(), json!(usable));
            }
        }
    }
    Value::Object(body)
}
