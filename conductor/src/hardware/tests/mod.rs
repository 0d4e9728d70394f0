//! Tests of the hardware module, tables first; reply bodies are compared with upstream's captures.

mod upstream;

use std::collections::BTreeMap;

use ferrite_conductor_states::ApiVersion;
use serde_json::{json, Map, Value};

use super::*;

/// What a table row expects: a value, or upstream's (HTTP status, faultstring).
type Expected<T> = Result<T, (u16, &'static str)>;

/// A resolution case: driver, requested fields, the field's outcome.
type ResolveRow = (
    &'static str,
    Vec<(InterfaceKind, &'static str)>,
    Expected<&'static str>,
);

/// A `GET /v1/drivers` query case: microversion, `detail`, `type`, outcome.
type QueryRow = (u16, Option<bool>, Option<&'static str>, Expected<()>);

const BASE_URL: &str = "http://127.0.0.1:16385";

fn hosts() -> Vec<String> {
    vec!["ref-ironic-16385".to_owned()]
}

fn registry() -> Registry {
    Registry::new(InterfaceConfig::default()).expect("the default configuration is valid")
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("captured body is JSON")
}

fn nothing_requested() -> BTreeMap<InterfaceKind, Option<String>> {
    BTreeMap::new()
}

fn requested(pairs: &[(InterfaceKind, &str)]) -> BTreeMap<InterfaceKind, Option<String>> {
    pairs
        .iter()
        .map(|(kind, name)| (*kind, Some((*name).to_owned())))
        .collect()
}

/// Sorts the `enabled_*_interfaces` arrays: upstream builds them from a Python set, so their
/// order is arbitrary there.
fn with_sorted_enabled_lists(mut driver: Value) -> Value {
    if let Value::Object(fields) = &mut driver {
        for (key, value) in fields.iter_mut() {
            if let (true, Value::Array(items)) = (key.starts_with("enabled_"), value) {
                items.sort_by_key(|item| item.as_str().unwrap_or_default().to_owned());
            }
        }
    }
    driver
}

// ---- InterfaceKind ----

#[test]
fn kinds_are_alphabetical_and_round_trip() {
    let names: Vec<&str> = InterfaceKind::ALL
        .iter()
        .map(|kind| kind.as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    for kind in InterfaceKind::ALL {
        assert_eq!(kind.as_str().parse::<InterfaceKind>(), Ok(kind));
        assert_eq!(kind.default_field(), format!("default_{kind}_interface"));
        assert_eq!(kind.enabled_field(), format!("enabled_{kind}_interfaces"));
        assert_eq!(kind.node_field(), format!("{kind}_interface"));
    }
    assert_eq!(
        "nope".parse::<InterfaceKind>(),
        Err(UnknownInterfaceKind("nope".to_owned()))
    );
}

#[test]
fn kinds_appear_in_the_microversions_upstream_added_them() {
    use InterfaceKind as K;
    let table = [
        (K::Bios, 40, 40),
        (K::Boot, 31, 30),
        (K::Console, 31, 30),
        (K::Deploy, 31, 30),
        (K::Firmware, 86, 86),
        (K::Inspect, 31, 30),
        (K::Management, 31, 30),
        (K::Network, 20, 30),
        (K::Power, 31, 30),
        (K::Raid, 31, 30),
        (K::Rescue, 38, 38),
        (K::Storage, 33, 33),
        (K::Vendor, 31, 30),
    ];
    for (kind, node_field, driver_field) in table {
        assert_eq!(
            (
                kind.node_field_min_version(),
                kind.driver_field_min_version()
            ),
            (node_field, driver_field),
            "{kind}"
        );
    }
}

// ---- catalog ----

#[test]
fn every_supported_interface_is_in_the_catalog_once() {
    for spec in HARDWARE_TYPES {
        for kind in InterfaceKind::ALL {
            for name in spec.supported.of(kind) {
                let count = INTERFACES
                    .iter()
                    .filter(|interface| interface.kind == kind && interface.name == *name)
                    .count();
                assert_eq!(count, 1, "{} {kind} {name}", spec.name);
            }
        }
    }
    for interface in INTERFACES {
        let supported_somewhere = HARDWARE_TYPES
            .iter()
            .any(|spec| spec.supports(interface.kind, interface.name));
        assert!(supported_somewhere, "{} {}", interface.kind, interface.name);
    }
}

// ---- configuration ----

#[test]
fn configuration_reads_flat_keys_and_keeps_defaults_for_missing_ones() {
    let config: InterfaceConfig = serde_json::from_value(json!({
        "enabled_hardware_types": ["fake-hardware"],
        "enabled_boot_interfaces": ["fake"],
        "default_deploy_interface": "fake",
    }))
    .expect("valid configuration");
    assert_eq!(config.enabled_hardware_types, vec!["fake-hardware"]);
    assert_eq!(config.enabled_interfaces(InterfaceKind::Boot), ["fake"]);
    assert_eq!(
        config.default_interface(InterfaceKind::Deploy),
        Some("fake")
    );
    assert_eq!(
        config.default_interface(InterfaceKind::Storage),
        Some("noop")
    );
    assert_eq!(
        config.enabled_interfaces(InterfaceKind::Rescue),
        ["no-rescue", "fake"]
    );

    let typo = serde_json::from_value::<InterfaceConfig>(json!({"enabled_boot_interface": []}));
    assert!(typo.is_err());
}

fn config_with(change: impl FnOnce(&mut InterfaceConfig)) -> InterfaceConfig {
    let mut config = InterfaceConfig::default();
    change(&mut config);
    config
}

#[test]
fn invalid_configurations_are_refused_at_start() {
    use InterfaceKind as K;
    let strings = |list: &[&str]| {
        list.iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>()
    };
    let table: Vec<(InterfaceConfig, &str)> = vec![
        (
            config_with(|config| config.enabled_hardware_types = strings(&["", ""])),
            "no hardware types are enabled: enabled_hardware_types is empty",
        ),
        (
            config_with(|config| config.enabled_hardware_types = strings(&["ipmi"])),
            "enabled_hardware_types names unknown hardware type 'ipmi' \
             (known: fake-hardware, manual-management, redfish)",
        ),
        (
            config_with(|config| config.enabled_bios_interfaces = strings(&["redfish"])),
            "enabled_bios_interfaces names unknown bios interface 'redfish' (known: fake, no-bios)",
        ),
        (
            config_with(|config| {
                config.enabled_hardware_types = strings(&["manual-management"]);
                config.enabled_bios_interfaces = strings(&["no-bios", "fake"]);
            }),
            "bios interface 'fake' is enabled, but no enabled hardware type supports it \
             (enabled hardware types: manual-management)",
        ),
        (
            config_with(|config| config.default_console_interface = Some("fake-graphical".into())),
            "default_console_interface 'fake-graphical' is not in enabled_console_interfaces",
        ),
        (
            config_with(|config| config.default_boot_interface = Some("fake".into())),
            "default_boot_interface 'fake' is not supported by enabled hardware type \
             'manual-management'",
        ),
        (
            config_with(|config| config.enabled_boot_interfaces = strings(&["fake"])),
            "hardware type 'manual-management' has no enabled boot interface: enable one of \
             ipxe, pxe, http-ipxe, http in enabled_boot_interfaces",
        ),
    ];
    for (config, expected) in table {
        let error = Registry::new(config).expect_err(expected);
        assert_eq!(error.to_string(), expected);
    }
    assert_eq!(
        Registry::new(config_with(
            |config| config.enabled_power_interfaces = strings(&["x"])
        ))
        .expect_err("unknown power interface"),
        ConfigError::UnknownInterface {
            kind: K::Power,
            name: "x".into(),
            known: "fake, redfish, agent".into(),
        }
    );
}

#[test]
fn an_empty_enabled_list_means_each_hardware_types_first_choice() {
    let config = config_with(|config| {
        config.enabled_management_interfaces = Vec::new();
        config.enabled_power_interfaces = vec![String::new()];
        config.enabled_vendor_interfaces = vec!["fake".into(), "fake".into(), "no-vendor".into()];
    });
    let registry = Registry::new(config).expect("valid");
    assert_eq!(
        registry.enabled_interfaces(InterfaceKind::Management),
        ["fake", "noop", "redfish"]
    );
    assert_eq!(
        registry.enabled_interfaces(InterfaceKind::Power),
        ["fake", "agent", "redfish"]
    );
    assert_eq!(
        registry.enabled_interfaces(InterfaceKind::Vendor),
        ["fake", "no-vendor"]
    );
    assert_eq!(
        registry.default_interface("manual-management", InterfaceKind::Power),
        Some("agent")
    );
}

// ---- resolution ----

fn names(resolved: &BTreeMap<InterfaceKind, String>) -> BTreeMap<String, &str> {
    resolved
        .iter()
        .map(|(kind, name)| (kind.node_field(), name.as_str()))
        .collect()
}

#[test]
fn a_fake_hardware_node_without_fields_resolves_as_upstream_created_it() {
    let resolved = registry()
        .resolve("fake-hardware", &nothing_requested())
        .expect("resolves");
    let created = parse(upstream::NODE_CREATE);
    for (field, name) in names(&resolved) {
        assert_eq!(created[field.as_str()], json!(name), "{field}");
    }
    assert_eq!(resolved.len(), 13);
}

#[test]
fn a_manual_management_node_gets_its_preferred_enabled_interfaces() {
    let resolved = registry()
        .resolve("manual-management", &nothing_requested())
        .expect("resolves");
    let expected: BTreeMap<String, &str> = [
        ("bios_interface", "no-bios"),
        ("boot_interface", "ipxe"),
        ("console_interface", "no-console"),
        ("deploy_interface", "direct"),
        ("firmware_interface", "no-firmware"),
        ("inspect_interface", "no-inspect"),
        ("management_interface", "fake"),
        ("network_interface", "noop"),
        ("power_interface", "fake"),
        ("raid_interface", "no-raid"),
        ("rescue_interface", "no-rescue"),
        ("storage_interface", "noop"),
        ("vendor_interface", "no-vendor"),
    ]
    .into_iter()
    .map(|(field, name)| (field.to_owned(), name))
    .collect();
    assert_eq!(names(&resolved), expected);
}

#[test]
fn requested_interfaces_are_checked_with_upstreams_messages() {
    use InterfaceKind as K;
    let registry = registry();
    let table: Vec<ResolveRow> = vec![
        ("fake-hardware", vec![(K::Deploy, "direct")], Ok("direct")),
        // fake-hardware takes any enabled implementation, even one it does not list.
        ("fake-hardware", vec![(K::Boot, "pxe")], Ok("pxe")),
        (
            "manual-management",
            vec![(K::Deploy, "ramdisk")],
            Ok("ramdisk"),
        ),
        (
            "manual-management",
            vec![(K::Boot, "fake")],
            Err((
                400,
                "boot interface implementation 'fake' is not supported by hardware type \
                 ManualManagementHardware.",
            )),
        ),
        (
            "manual-management",
            vec![(K::Boot, "nosuch")],
            Err((
                400,
                "Could not find the following interface in the \
                 'ironic.hardware.interfaces.boot' entrypoint: nosuch. Valid interfaces are \
                 ['fake', 'ipxe', 'pxe'].",
            )),
        ),
        (
            "fake-hardware",
            vec![(K::Deploy, "noop")],
            Err((
                400,
                "Could not find the following interface in the \
                 'ironic.hardware.interfaces.deploy' entrypoint: noop. Valid interfaces are \
                 ['direct', 'fake', 'ramdisk'].",
            )),
        ),
        (
            "no-such-driver",
            vec![],
            Err((
                400,
                "No valid host was found. Reason: No conductor service registered which \
                 supports driver no-such-driver for conductor group \"\". Ensure the driver is \
                 valid and enabled.",
            )),
        ),
    ];
    for (driver, fields, expected) in table {
        let outcome = registry.resolve(driver, &requested(&fields));
        match (outcome, expected) {
            (Ok(resolved), Ok(name)) => assert_eq!(resolved[&fields[0].0], name),
            (Err(error), Err((status, text))) => {
                assert_eq!((error.status(), error.to_string().as_str()), (status, text));
            }
            (outcome, expected) => panic!("{driver} {fields:?}: {outcome:?} vs {expected:?}"),
        }
    }
}

#[test]
fn the_unknown_driver_message_is_the_one_upstream_sent() {
    let error = registry()
        .resolve("no-such-driver", &nothing_requested())
        .expect_err("unknown driver");
    assert_eq!(error.status(), 400);
    assert_eq!(error.to_string(), upstream::CREATE_BAD_DRIVER_FAULTSTRING);
}

#[test]
fn node_updates_follow_upstreams_rules() {
    use InterfaceKind as K;
    let registry = registry();
    let fake_node = registry
        .resolve("fake-hardware", &nothing_requested())
        .expect("resolves");
    let untouched = BTreeMap::new();

    // Nothing interface-related changes: stored values are kept without checking.
    let update = InterfaceUpdate {
        driver: "fake-hardware",
        driver_patched: false,
        reset_interfaces: false,
        current: &fake_node,
        patched: &untouched,
    };
    assert_eq!(registry.resolve_update(&update), Ok(fake_node.clone()));

    // Changing the driver keeps the stored values, which manual-management refuses.
    let update = InterfaceUpdate {
        driver: "manual-management",
        driver_patched: true,
        ..update
    };
    let error = registry
        .resolve_update(&update)
        .expect_err("fake boot refused");
    assert_eq!(
        error.to_string(),
        "bios interface implementation 'fake' is not supported by hardware type \
         ManualManagementHardware."
    );

    // With reset_interfaces, fields not in the patch go back to the new driver's defaults.
    let patched = requested(&[(K::Deploy, "ramdisk")]);
    let update = InterfaceUpdate {
        reset_interfaces: true,
        patched: &patched,
        ..update
    };
    let resolved = registry.resolve_update(&update).expect("resets");
    assert_eq!(resolved[&K::Deploy], "ramdisk");
    assert_eq!(resolved[&K::Boot], "ipxe");
    assert_eq!(resolved[&K::Power], "fake");

    // Removing a field brings back the default; setting one checks it.
    let patched = BTreeMap::from([(K::Rescue, None), (K::Boot, Some("pxe".to_owned()))]);
    let mut stored = fake_node.clone();
    stored.insert(K::Rescue, "no-rescue".to_owned());
    let update = InterfaceUpdate {
        driver: "fake-hardware",
        driver_patched: false,
        reset_interfaces: false,
        current: &stored,
        patched: &patched,
    };
    let resolved = registry.resolve_update(&update).expect("updates");
    assert_eq!(resolved[&K::Rescue], "fake");
    assert_eq!(resolved[&K::Boot], "pxe");

    let update = InterfaceUpdate {
        reset_interfaces: true,
        ..update
    };
    let error = registry
        .resolve_update(&update)
        .expect_err("reset without driver");
    assert_eq!(error.status(), 400);
    assert_eq!(
        error.to_string(),
        "The reset_interfaces parameter can only be used when changing the node's driver."
    );
}

// ---- Drivers API ----

#[test]
fn driver_list_matches_upstream() {
    // The reference deployment enabled redfish too, as Ferrite's defaults do.
    let expected = parse(upstream::DRIVER_LIST);
    let body = registry().drivers_list(ApiVersion::MAX, false, None, &hosts(), BASE_URL);
    assert_eq!(body, expected);
    let dynamic =
        registry().drivers_list(ApiVersion::MAX, false, Some("dynamic"), &hosts(), BASE_URL);
    assert_eq!(dynamic, expected);
}

#[test]
fn classic_drivers_are_gone() {
    let body = registry().drivers_list(ApiVersion::MAX, true, Some("classic"), &hosts(), BASE_URL);
    assert_eq!(body, json!({"drivers": []}));
}

#[test]
fn detailed_driver_list_entries_equal_driver_show() {
    let registry = registry();
    let body = registry.drivers_list(ApiVersion::MAX, true, None, &hosts(), BASE_URL);
    let shown = registry
        .driver_show("manual-management", ApiVersion::MAX, &hosts(), BASE_URL)
        .expect("enabled");
    assert_eq!(body["drivers"][1], shown);
    assert_eq!(shown["default_boot_interface"], "ipxe");
    assert_eq!(shown["enabled_boot_interfaces"], json!(["ipxe", "pxe"]));
    assert_eq!(shown["enabled_management_interfaces"], json!(["fake"]));
}

#[test]
fn driver_show_matches_upstream() {
    let shown = registry()
        .driver_show("fake-hardware", ApiVersion::MAX, &hosts(), BASE_URL)
        .expect("enabled");
    assert_eq!(
        with_sorted_enabled_lists(shown),
        with_sorted_enabled_lists(parse(upstream::DRIVER_SHOW_FAKE_HARDWARE))
    );
    let redfish = registry()
        .driver_show("redfish", ApiVersion::MAX, &hosts(), BASE_URL)
        .expect("enabled by default");
    assert_eq!(redfish["default_power_interface"], "redfish");
    assert_eq!(redfish["default_management_interface"], "redfish");
    assert_eq!(redfish["default_boot_interface"], "ipxe");
    assert_eq!(redfish["enabled_boot_interfaces"], json!(["ipxe", "pxe"]));
    assert_eq!(redfish["enabled_power_interfaces"], json!(["redfish"]));
}

#[test]
fn driver_show_fields_follow_the_microversion() {
    let registry = registry();
    let keys = |minor: u16| -> Vec<String> {
        let shown = registry
            .driver_show("fake-hardware", ApiVersion::v1(minor), &hosts(), BASE_URL)
            .expect("enabled");
        let mut keys: Vec<String> = shown
            .as_object()
            .map(|fields| fields.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    assert_eq!(keys(1), ["hosts", "links", "name"]);
    assert_eq!(keys(14), ["hosts", "links", "name", "properties"]);
    assert_eq!(keys(29), keys(14));
    // 4 base fields, 9 kinds with default and enabled fields.
    assert_eq!(keys(30).len(), 5 + 18);
    assert!(keys(30).contains(&"type".to_owned()));
    assert!(!keys(32).contains(&"default_storage_interface".to_owned()));
    assert!(keys(33).contains(&"enabled_storage_interfaces".to_owned()));
    assert!(!keys(37).contains(&"default_rescue_interface".to_owned()));
    assert!(keys(38).contains(&"default_rescue_interface".to_owned()));
    assert!(!keys(39).contains(&"default_bios_interface".to_owned()));
    assert_eq!(keys(85).len(), 5 + 24);
    assert_eq!(keys(86).len(), 5 + 26);
}

#[test]
fn detail_needs_microversion_1_30() {
    let registry = registry();
    let old = registry.drivers_list(ApiVersion::v1(29), true, None, &hosts(), BASE_URL);
    assert_eq!(old["drivers"][0].get("type"), None);
    assert_eq!(old["drivers"][0].get("enabled_boot_interfaces"), None);
    let plain = registry.drivers_list(ApiVersion::v1(30), false, None, &hosts(), BASE_URL);
    assert_eq!(plain["drivers"][0]["type"], "dynamic");
    assert_eq!(plain["drivers"][0].get("enabled_boot_interfaces"), None);
}

#[test]
fn driver_list_queries_are_checked_like_upstream() {
    let table: Vec<QueryRow> = vec![
        (1, None, None, Ok(())),
        (
            29,
            Some(false),
            None,
            Err((
                406,
                "Request not acceptable. The minimal required API version should be 1.30",
            )),
        ),
        (
            29,
            None,
            Some("dynamic"),
            Err((
                406,
                "Request not acceptable. The minimal required API version should be 1.30",
            )),
        ),
        (30, Some(true), Some("classic"), Ok(())),
        (
            115,
            None,
            Some("static"),
            Err((
                400,
                "\"type\" filter must be one of \"classic\" or \"dynamic\", if specified.",
            )),
        ),
    ];
    for (minor, detail, type_filter, expected) in table {
        let outcome = check_drivers_list_query(ApiVersion::v1(minor), detail, type_filter)
            .map_err(|error| (error.status(), error.to_string()));
        let expected = expected.map_err(|(status, text)| (status, text.to_owned()));
        assert_eq!(outcome, expected, "1.{minor} {detail:?} {type_filter:?}");
    }
}

#[test]
fn a_configured_default_the_type_does_not_list_is_shown_as_null() {
    let config = config_with(|config| {
        config.enabled_management_interfaces = vec!["fake".into(), "noop".into()];
        config.default_management_interface = Some("noop".into());
    });
    let registry = Registry::new(config).expect("valid");
    assert_eq!(
        registry.default_interface("fake-hardware", InterfaceKind::Management),
        Some("noop")
    );
    let shown = registry
        .driver_show("fake-hardware", ApiVersion::MAX, &hosts(), BASE_URL)
        .expect("enabled");
    assert_eq!(shown["default_management_interface"], Value::Null);
    assert_eq!(shown["enabled_management_interfaces"], json!(["fake"]));
}

#[test]
fn driver_properties_match_upstream() {
    let properties = registry()
        .driver_properties("fake-hardware")
        .expect("enabled");
    assert_eq!(
        serde_json::to_value(properties).expect("serializable"),
        parse(upstream::DRIVER_PROPERTIES_FAKE_HARDWARE)
    );
    let redfish = registry()
        .driver_properties("redfish")
        .expect("enabled by default");
    for key in [
        "redfish_address",
        "redfish_system_id",
        "redfish_username",
        "redfish_password",
        "redfish_verify_ca",
        "redfish_auth_type",
        "deploy_kernel",
        "deploy_ramdisk",
    ] {
        assert!(redfish.contains_key(key), "{key}");
    }
    assert!(redfish["redfish_address"].ends_with("Required"));
}

#[test]
fn manual_management_properties_unite_boot_and_deploy() {
    let properties = registry()
        .driver_properties("manual-management")
        .expect("enabled");
    let keys: Vec<&str> = properties.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "agent_verify_ca",
            "deploy_forces_oob_reboot",
            "deploy_kernel",
            "deploy_ramdisk",
            "force_persistent_boot_device",
            "image_download_source",
            "image_http_proxy",
            "image_https_proxy",
            "image_no_proxy",
            "kernel_append_params",
            "rescue_kernel",
            "rescue_ramdisk",
        ]
    );
    assert_eq!(
        properties["deploy_ramdisk"],
        "UUID (from Glance) of the ramdisk with agent that is used at deploy time. Required."
    );
}

// ---- validation ----

struct ValidationFixture {
    interfaces: BTreeMap<InterfaceKind, String>,
    driver_info: Map<String, Value>,
    instance_info: Map<String, Value>,
    traits: Vec<String>,
}

impl ValidationFixture {
    fn new(driver: &str) -> ValidationFixture {
        ValidationFixture {
            interfaces: registry()
                .resolve(driver, &nothing_requested())
                .expect("resolves"),
            driver_info: Map::new(),
            instance_info: Map::new(),
            traits: Vec::new(),
        }
    }

    fn validate(&self, driver: &str) -> Value {
        validate(&NodeValidationInput {
            node_uuid: "U1",
            driver,
            interfaces: &self.interfaces,
            driver_info: &self.driver_info,
            instance_info: &self.instance_info,
            traits: &self.traits,
        })
    }
}

#[test]
fn validation_of_a_fake_hardware_node_matches_upstream() {
    let mut fixture = ValidationFixture::new("fake-hardware");
    fixture.instance_info.insert(
        "image_source".into(),
        json!("http://example.invalid/image.qcow2"),
    );
    assert_eq!(
        fixture.validate("fake-hardware"),
        parse(upstream::NODE_VALIDATE)
    );
}

#[test]
fn validation_of_a_manual_management_node() {
    let fixture = ValidationFixture::new("manual-management");
    let body = fixture.validate("manual-management");
    let reason = |kind: &str| {
        body[kind]["reason"]
            .as_str()
            .unwrap_or("(passed)")
            .to_owned()
    };
    for kind in ["bios", "console", "firmware", "inspect", "raid", "rescue"] {
        assert_eq!(body[kind]["result"], false);
        assert_eq!(
            reason(kind),
            format!(
                "Driver manual-management does not support {kind} (disabled or not implemented)."
            )
        );
    }
    for kind in ["management", "network", "power", "storage"] {
        assert_eq!(body[kind], json!({"result": true}), "{kind}");
    }
    assert_eq!(
        reason("boot"),
        "Cannot validate PXE bootloader. Some parameters were missing in node's driver_info \
         and configuration. Missing are: ['deploy_kernel', 'deploy_ramdisk']"
    );
    assert_eq!(body.get("vendor"), None);
    assert_eq!(body.as_object().map(Map::len), Some(12));
}

#[test]
fn deploy_validation_checks_instance_traits() {
    let mut fixture = ValidationFixture::new("fake-hardware");
    fixture.traits = vec!["CUSTOM_GOLD".into()];
    let table = [
        (json!([]), json!({"result": true})),
        (json!(null), json!({"result": true})),
        (json!(["CUSTOM_GOLD"]), json!({"result": true})),
        (
            json!("CUSTOM_GOLD"),
            json!({"result": false, "reason": "Error parsing traits from Node U1 instance_info \
                   field. A list of strings is expected."}),
        ),
        (
            json!(["CUSTOM_GOLD", 7]),
            json!({"result": false, "reason": "Error parsing traits from Node U1 instance_info \
                   field. A list of strings is expected."}),
        ),
        (
            json!(["CUSTOM_GOLD", "CUSTOM_RED"]),
            json!({"result": false, "reason": "Cannot specify instance traits that are not also \
                   set on the node. Node U1 is missing traits CUSTOM_RED"}),
        ),
    ];
    for (traits, expected) in table {
        fixture
            .instance_info
            .insert("traits".into(), traits.clone());
        assert_eq!(
            fixture.validate("fake-hardware")["deploy"],
            expected,
            "{traits}"
        );
    }
}

#[test]
fn validation_reports_an_interface_the_catalog_does_not_know() {
    let mut fixture = ValidationFixture::new("fake-hardware");
    fixture
        .interfaces
        .insert(InterfaceKind::Power, "ipmitool".into());
    let body = fixture.validate("fake-hardware");
    assert_eq!(body["power"]["result"], false);
    assert_eq!(
        body["power"]["reason"],
        "The node has no usable power interface ('ipmitool')."
    );
}
