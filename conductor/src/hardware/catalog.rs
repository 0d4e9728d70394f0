//! The hardware types and interface implementations Ferrite knows, as data.
//!
//! Adding a hardware type (say `redfish`) means adding one `HardwareTypeSpec` to `HARDWARE_TYPES`
//! and an `InterfaceSpec` for each implementation it names that is not listed yet; the registry,
//! the Drivers API and node validation pick them up without code changes.

use super::kind::InterfaceKind;
use super::validate::{accept, has_no_implementation_here, InterfaceCheck};

/// Checks a node before it uses one interface implementation; `Err` carries the reason text.
pub type Validator = fn(&InterfaceCheck<'_>) -> Result<(), String>;

/// One interface implementation, e.g. the `ipxe` boot interface.
#[derive(Debug)]
pub struct InterfaceSpec {
    pub kind: InterfaceKind,
    pub name: &'static str,
    /// The `driver_info` keys this implementation reads, with their descriptions, in upstream's
    /// order. `GET /v1/drivers/{name}/properties` unites these over a hardware type's defaults.
    pub properties: &'static [(&'static str, &'static str)],
    /// What `GET /v1/nodes/{id}/validate` runs for this implementation.
    pub validate: Validator,
}

/// The implementations a hardware type supports, per kind, most preferred first: without a node
/// field or a configured default, the first enabled entry is used.
#[derive(Debug)]
pub struct SupportedInterfaces {
    pub bios: &'static [&'static str],
    pub boot: &'static [&'static str],
    pub console: &'static [&'static str],
    pub deploy: &'static [&'static str],
    pub firmware: &'static [&'static str],
    pub inspect: &'static [&'static str],
    pub management: &'static [&'static str],
    pub network: &'static [&'static str],
    pub power: &'static [&'static str],
    pub raid: &'static [&'static str],
    pub rescue: &'static [&'static str],
    pub storage: &'static [&'static str],
    pub vendor: &'static [&'static str],
}

impl SupportedInterfaces {
    /// The supported implementations of one kind.
    pub fn of(&self, kind: InterfaceKind) -> &'static [&'static str] {
        match kind {
            InterfaceKind::Bios => self.bios,
            InterfaceKind::Boot => self.boot,
            InterfaceKind::Console => self.console,
            InterfaceKind::Deploy => self.deploy,
            InterfaceKind::Firmware => self.firmware,
            InterfaceKind::Inspect => self.inspect,
            InterfaceKind::Management => self.management,
            InterfaceKind::Network => self.network,
            InterfaceKind::Power => self.power,
            InterfaceKind::Raid => self.raid,
            InterfaceKind::Rescue => self.rescue,
            InterfaceKind::Storage => self.storage,
            InterfaceKind::Vendor => self.vendor,
        }
    }
}

/// A hardware type (what the API calls a driver), e.g. `manual-management`.
#[derive(Debug)]
pub struct HardwareTypeSpec {
    pub name: &'static str,
    /// Upstream's class name for the type; its "not supported by hardware type" error names it.
    pub class_name: &'static str,
    /// Whether a node may name any enabled implementation, supported or not. Upstream grants this
    /// to `fake-hardware` alone so tests can combine anything; its `supported` lists then only
    /// decide defaults and what the Drivers API shows.
    pub accepts_any_enabled_interface: bool,
    pub supported: SupportedInterfaces,
}

impl HardwareTypeSpec {
    /// Whether `name` is in this type's supported list for `kind`.
    pub fn supports(&self, kind: InterfaceKind, name: &str) -> bool {
        self.supported.of(kind).contains(&name)
    }

    /// Whether a node of this type may use the (enabled) implementation `name`.
    pub fn accepts(&self, kind: InterfaceKind, name: &str) -> bool {
        self.accepts_any_enabled_interface || self.supports(kind, name)
    }
}

/// Every hardware type Ferrite knows. Only those in `enabled_hardware_types` are served.
pub static HARDWARE_TYPES: &[HardwareTypeSpec] = &[FAKE_HARDWARE, MANUAL_MANAGEMENT, REDFISH];

/// Looks up a known hardware type by name.
pub fn hardware_type(name: &str) -> Option<&'static HardwareTypeSpec> {
    HARDWARE_TYPES.iter().find(|spec| spec.name == name)
}

/// Looks up a known interface implementation.
pub fn interface(kind: InterfaceKind, name: &str) -> Option<&'static InterfaceSpec> {
    INTERFACES
        .iter()
        .find(|spec| spec.kind == kind && spec.name == name)
}

// The generic hardware type's lists, which most real hardware types start from.
const GENERIC_BOOT: &[&str] = &["ipxe", "pxe", "http-ipxe", "http"];
const GENERIC_NETWORK: &[&str] = &["flat", "neutron", "ironic-networking", "noop"];
const GENERIC_STORAGE: &[&str] = &["noop", "cinder", "external"];

/// The test hardware type: fake implementations first, everything else generic still supported.
const FAKE_HARDWARE: HardwareTypeSpec = HardwareTypeSpec {
    name: "fake-hardware",
    class_name: "FakeHardware",
    accepts_any_enabled_interface: true,
    supported: SupportedInterfaces {
        bios: &["fake", "no-bios"],
        boot: &["fake", "ipxe", "pxe", "http-ipxe", "http"],
        console: &["fake", "no-console", "fake-graphical"],
        deploy: &[
            "fake",
            "autodetect",
            "direct",
            "ansible",
            "ramdisk",
            "anaconda",
            "bootc",
            "custom-agent",
        ],
        firmware: &["fake", "no-firmware"],
        inspect: &["fake", "agent", "no-inspect"],
        management: &["fake"],
        network: GENERIC_NETWORK,
        power: &["fake"],
        raid: &["fake", "no-raid", "agent"],
        rescue: &["fake", "no-rescue", "agent"],
        storage: &["fake", "noop", "cinder", "external"],
        vendor: &["fake", "no-vendor"],
    },
};

/// Machines whose power and boot device an operator handles by hand.
const MANUAL_MANAGEMENT: HardwareTypeSpec = HardwareTypeSpec {
    name: "manual-management",
    class_name: "ManualManagementHardware",
    accepts_any_enabled_interface: false,
    supported: SupportedInterfaces {
        bios: &["no-bios"],
        boot: GENERIC_BOOT,
        console: &["no-console", "fake-graphical"],
        deploy: &[
            "autodetect",
            "direct",
            "ansible",
            "ramdisk",
            "anaconda",
            "bootc",
            "custom-agent",
            "noop",
        ],
        firmware: &["no-firmware"],
        inspect: &["agent", "no-inspect"],
        management: &["noop", "fake"],
        network: GENERIC_NETWORK,
        power: &["agent", "fake"],
        raid: &["no-raid", "agent"],
        rescue: &["no-rescue", "agent"],
        storage: GENERIC_STORAGE,
        vendor: &["no-vendor"],
    },
};

/// Machines with a Redfish BMC. Upstream's lists, less the implementations this conductor does
/// not have (redfish bios/inspect/raid/vendor/firmware/console, virtual media and HTTPS boot).
const REDFISH: HardwareTypeSpec = HardwareTypeSpec {
    name: "redfish",
    class_name: "RedfishHardware",
    accepts_any_enabled_interface: false,
    supported: SupportedInterfaces {
        bios: &["no-bios"],
        boot: &["ipxe", "pxe"],
        console: &["no-console", "fake-graphical"],
        deploy: &[
            "autodetect",
            "direct",
            "ansible",
            "ramdisk",
            "anaconda",
            "bootc",
            "custom-agent",
        ],
        firmware: &["no-firmware"],
        inspect: &["agent", "no-inspect"],
        management: &["redfish", "noop"],
        network: GENERIC_NETWORK,
        power: &["redfish"],
        raid: &["no-raid", "agent"],
        rescue: &["no-rescue", "agent"],
        storage: GENERIC_STORAGE,
        vendor: &["no-vendor"],
    },
};

/// An implementation that accepts every node and reads nothing from `driver_info`.
const fn accepting(kind: InterfaceKind, name: &'static str) -> InterfaceSpec {
    InterfaceSpec {
        kind,
        name,
        properties: &[],
        validate: accept,
    }
}

/// An implementation that refuses every request: the `no-*` placeholders of optional kinds.
const fn refusing(kind: InterfaceKind, name: &'static str) -> InterfaceSpec {
    InterfaceSpec {
        kind,
        name,
        properties: &[],
        validate: super::validate::unsupported_extension,
    }
}

/// A real implementation that hardware types list but Ferrite does not carry out yet. It can be
/// enabled and shown, but node validation reports it as unavailable.
const fn not_here(
    kind: InterfaceKind,
    name: &'static str,
    properties: &'static [(&'static str, &'static str)],
) -> InterfaceSpec {
    InterfaceSpec {
        kind,
        name,
        properties,
        validate: has_no_implementation_here,
    }
}

use InterfaceKind as K;

/// Every interface implementation Ferrite knows, grouped by kind.
pub static INTERFACES: &[InterfaceSpec] = &[
    accepting(K::Bios, "fake"),
    refusing(K::Bios, "no-bios"),
    accepting(K::Boot, "fake"),
    InterfaceSpec {
        kind: K::Boot,
        name: "ipxe",
        properties: PXE_FAMILY_BOOT_PROPERTIES,
        validate: super::validate::pxe_boot,
    },
    InterfaceSpec {
        kind: K::Boot,
        name: "pxe",
        properties: PXE_FAMILY_BOOT_PROPERTIES,
        validate: super::validate::pxe_boot,
    },
    not_here(K::Boot, "http-ipxe", PXE_FAMILY_BOOT_PROPERTIES),
    not_here(K::Boot, "http", PXE_FAMILY_BOOT_PROPERTIES),
    accepting(K::Console, "fake"),
    accepting(K::Console, "fake-graphical"),
    refusing(K::Console, "no-console"),
    accepting(K::Deploy, "fake"),
    accepting(K::Deploy, "noop"),
    not_here(K::Deploy, "autodetect", &[]),
    InterfaceSpec {
        kind: K::Deploy,
        name: "direct",
        properties: AGENT_DEPLOY_PROPERTIES,
        validate: validate_direct,
    },
    not_here(K::Deploy, "ansible", ANSIBLE_DEPLOY_PROPERTIES),
    not_here(K::Deploy, "ramdisk", &[]),
    not_here(K::Deploy, "anaconda", &[]),
    not_here(K::Deploy, "bootc", AGENT_DEPLOY_PROPERTIES),
    not_here(K::Deploy, "custom-agent", AGENT_DEPLOY_PROPERTIES),
    accepting(K::Firmware, "fake"),
    refusing(K::Firmware, "no-firmware"),
    accepting(K::Inspect, "fake"),
    refusing(K::Inspect, "no-inspect"),
    not_here(K::Inspect, "agent", &[]),
    accepting(K::Management, "fake"),
    accepting(K::Management, "noop"),
    InterfaceSpec {
        kind: K::Management,
        name: "redfish",
        properties: crate::redfish::PROPERTIES,
        validate: super::validate::redfish,
    },
    accepting(K::Network, "noop"),
    not_here(K::Network, "flat", &[]),
    not_here(K::Network, "neutron", &[]),
    not_here(K::Network, "ironic-networking", &[]),
    accepting(K::Power, "fake"),
    InterfaceSpec {
        kind: K::Power,
        name: "redfish",
        properties: crate::redfish::PROPERTIES,
        validate: super::validate::redfish,
    },
    not_here(K::Power, "agent", &[]),
    accepting(K::Raid, "fake"),
    refusing(K::Raid, "no-raid"),
    not_here(K::Raid, "agent", &[]),
    accepting(K::Rescue, "fake"),
    refusing(K::Rescue, "no-rescue"),
    not_here(K::Rescue, "agent", &[]),
    accepting(K::Storage, "fake"),
    accepting(K::Storage, "noop"),
    not_here(K::Storage, "cinder", &[]),
    not_here(K::Storage, "external", &[]),
    InterfaceSpec {
        kind: K::Vendor,
        name: "fake",
        properties: FAKE_VENDOR_PROPERTIES,
        validate: accept,
    },
    refusing(K::Vendor, "no-vendor"),
];

/// The `direct` deploy interface needs an image to write.
fn validate_direct(check: &InterfaceCheck<'_>) -> Result<(), String> {
    let has_image = check
        .node
        .instance_info
        .get("image_source")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|source| !source.is_empty());
    if has_image {
        Ok(())
    } else {
        Err(format!(
            "Cannot validate image information for node {} because one or more parameters are missing from its instance_info. Missing are: ['image_source']",
            check.node.node_uuid
        ))
    }
}

/// What the PXE and HTTP boot interfaces read from `driver_info`.
const PXE_FAMILY_BOOT_PROPERTIES: &[(&str, &str)] = &[
    ("deploy_kernel", "UUID (from Glance) of the deployment kernel. Required."),
    ("deploy_ramdisk", "UUID (from Glance) of the ramdisk that is mounted at boot time. Required."),
    ("force_persistent_boot_device", "Controls the persistency of boot order changes. 'Always' will make all changes persistent, 'Default' will make all but the final one upon instance deployment non-persistent, and 'Never' will make no persistent changes at all. The old values 'True' and 'False' are still supported but deprecated in favor of the new ones.Defaults to 'Default'. Optional."),
    ("rescue_kernel", "UUID (from Glance) of the rescue kernel. This value is required for rescue mode."),
    ("rescue_ramdisk", "UUID (from Glance) of the rescue ramdisk with agent that is used at node rescue time. This value is required for rescue mode."),
    ("kernel_append_params", "Additional kernel parameters to pass down to instance kernel. These parameters can be consumed by the kernel or by the applications by reading /proc/cmdline. Mind severe cmdline size limit. When used with virtual media, only applies to ISO images that Ironic builds, but not to pre-built ISOs provided via e.g. deploy_iso. Overrides the [pxe]/kernel_append_params configuration option, use %default% to insert its value."),
];

/// What the agent-based deploy interfaces (`direct`, `bootc`, `custom-agent`) read from `driver_info`.
const AGENT_DEPLOY_PROPERTIES: &[(&str, &str)] = &[
    ("deploy_kernel", "UUID (from Glance) of the deployment kernel. Required."),
    ("deploy_ramdisk", "UUID (from Glance) of the ramdisk with agent that is used at deploy time. Required."),
    ("image_http_proxy", "URL of a proxy server for HTTP connections. Optional."),
    ("image_https_proxy", "URL of a proxy server for HTTPS connections. Optional."),
    ("image_no_proxy", "A comma-separated list of host names, IP addresses and domain names (with optional :port) that will be excluded from proxying. To denote a domain name, use a dot to prefix the domain name. This value will be ignored if ``image_http_proxy`` and ``image_https_proxy`` are not specified. Optional."),
    ("image_download_source", "Specifies whether direct deploy interface should try to use the image source directly or if ironic should cache the image on the conductor and serve it from ironic's own HTTP server. Accepted values are \"swift\", \"http\" and \"local\". Optional."),
    ("deploy_forces_oob_reboot", "Whether Ironic should force a reboot of the Node via the out-of-band channel after deployment is complete. Provides compatibility with older deploy ramdisks. Defaults to False. Optional."),
    ("agent_verify_ca", "Either a Boolean value, a path to a CA_BUNDLE file or directory with certificates of trusted CAs. If set to True ironic will verify the agent's certificate; if False the driver will ignore verifying the SSL certificate. If it's a path the driver will use the specified certificate or one of the certificates in the directory. Defaults to True. Optional"),
];

/// What the `ansible` deploy interface reads from `driver_info`.
const ANSIBLE_DEPLOY_PROPERTIES: &[(&str, &str)] = &[
    ("ansible_username", "Deploy ramdisk username for Ansible. This user must have passwordless sudo permissions. Optional."),
    ("ansible_key_file", "Full path to private SSH key file. If not specified, default keys for user running ironic-conductor process will be used. Note that for keys with password, those must be pre-loaded into ssh-agent. Optional."),
    ("ansible_playbooks_path", "Path to folder holding playbooks to use for this node. Optional. Default is set in ironic config."),
    ("ansible_deploy_playbook", "Name of the Ansible playbook file inside the \"ansible_playbooks_path\" folder which is used for node deployment. Optional."),
    ("ansible_shutdown_playbook", "Name of the Ansible playbook file inside the \"ansible_playbooks_path\" folder which is used for node shutdown. Optional."),
    ("ansible_clean_playbook", "Name of the Ansible playbook file inside the \"ansible_playbooks_path\" folder which is used for node cleaning. Optional."),
    ("ansible_clean_steps_config", "Name of the file inside the \"ansible_playbooks_path\" folder with cleaning steps configuration. Optional."),
    ("ansible_python_interpreter", "Absolute path to the python interpreter on the managed machines. Optional."),
    ("deploy_forces_oob_reboot", "Whether Ironic should force a reboot of the Node via the out-of-band channel after deployment is complete. Provides compatibility with older deploy ramdisks. Defaults to False. Optional."),
    ("agent_verify_ca", "Either a Boolean value, a path to a CA_BUNDLE file or directory with certificates of trusted CAs. If set to True ironic will verify the agent's certificate; if False the driver will ignore verifying the SSL certificate. If it's a path the driver will use the specified certificate or one of the certificates in the directory. Defaults to True. Optional"),
];

/// The made-up properties of the `fake` vendor interface, which tests look for.
const FAKE_VENDOR_PROPERTIES: &[(&str, &str)] = &[
    ("B1", "B1 description. Required."),
    ("B2", "B2 description. Required."),
];
