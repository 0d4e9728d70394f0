//! The compute domain, pure: flavors, images, key pairs, servers and Nova's
//! vm/task/power states with the status they show as.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A flavor (Nova's `flavors` row plus its extra specs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    /// The API id (`flavorid`).
    pub id: String,
    pub name: String,
    pub memory_mb: u64,
    pub vcpus: u64,
    pub root_gb: u64,
    pub ephemeral_gb: u64,
    /// Swap in MiB.
    pub swap: u64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub disabled: bool,
    pub description: Option<String>,
    pub extra_specs: BTreeMap<String, String>,
}

impl Flavor {
    pub fn resources(&self) -> crate::scheduler::request::FlavorResources {
        crate::scheduler::request::FlavorResources {
            vcpus: self.vcpus,
            memory_mb: self.memory_mb,
            root_gb: self.root_gb,
            ephemeral_gb: self.ephemeral_gb,
            swap_mb: self.swap,
            extra_specs: self.extra_specs.clone(),
        }
    }

    pub fn spec(&self) -> ferrite_virt_driver::FlavorSpec {
        ferrite_virt_driver::FlavorSpec {
            id: self.id.clone(),
            name: self.name.clone(),
            vcpus: u32::try_from(self.vcpus).unwrap_or(u32::MAX),
            ram_mb: self.memory_mb,
            root_gb: self.root_gb,
            ephemeral_gb: self.ephemeral_gb,
            swap_mb: self.swap,
            extra_specs: self.extra_specs.clone(),
        }
    }
}

/// An image of our registry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    /// Where the deploy agent downloads it from.
    pub url: String,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub checksum: Option<String>,
    pub size: Option<i64>,
    pub min_disk: i64,
    pub min_ram: i64,
    pub visibility: String,
    pub owner: Option<String>,
    pub properties: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Image {
    pub fn spec(&self) -> ferrite_virt_driver::ImageSpec {
        ferrite_virt_driver::ImageSpec {
            id: self.id.clone(),
            url: self.url.clone(),
            disk_format: self.disk_format.clone().unwrap_or_else(|| "raw".into()),
            os_hash_algo: self.os_hash_algo.clone(),
            os_hash_value: self.os_hash_value.clone(),
            checksum: self.checksum.clone(),
            size: self.size.and_then(|size| u64::try_from(size).ok()),
            properties: self.properties.clone(),
        }
    }

    /// Whether `project` may see (and boot) it.
    pub fn visible_to(&self, project: &str, is_admin: bool) -> bool {
        is_admin
            || matches!(self.visibility.as_str(), "public" | "community")
            || self.owner.as_deref() == Some(project)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keypair {
    pub id: i64,
    pub name: String,
    pub user_id: String,
    pub public_key: String,
    pub fingerprint: String,
    pub key_type: String,
    pub created_at: i64,
}

/// A fault recorded on a server in ERROR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub code: u16,
    pub message: String,
    pub details: String,
    pub created: i64,
}

pub mod vm_state {
    pub const BUILDING: &str = "building";
    pub const ACTIVE: &str = "active";
    pub const STOPPED: &str = "stopped";
    pub const ERROR: &str = "error";
    pub const DELETED: &str = "deleted";
}

pub mod task_state {
    pub const SCHEDULING: &str = "scheduling";
    pub const SPAWNING: &str = "spawning";
    pub const REBOOTING: &str = "rebooting";
    pub const REBOOTING_HARD: &str = "rebooting_hard";
    pub const POWERING_ON: &str = "powering-on";
    pub const POWERING_OFF: &str = "powering-off";
    pub const REBUILDING: &str = "rebuilding";
    pub const REBUILD_SPAWNING: &str = "rebuild_spawning";
    pub const DELETING: &str = "deleting";
}

/// Nova's power states (`nova.compute.power_state`).
pub mod power_state {
    pub const NOSTATE: i32 = 0;
    pub const RUNNING: i32 = 1;
    pub const SHUTDOWN: i32 = 4;
    pub const CRASHED: i32 = 6;
}

pub fn power_state_of(state: ferrite_virt_driver::PowerState) -> i32 {
    match state {
        ferrite_virt_driver::PowerState::NoState => power_state::NOSTATE,
        ferrite_virt_driver::PowerState::Running => power_state::RUNNING,
        ferrite_virt_driver::PowerState::Shutdown => power_state::SHUTDOWN,
        ferrite_virt_driver::PowerState::Crashed => power_state::CRASHED,
    }
}

/// One port or network the server asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedNetwork {
    pub uuid: Option<String>,
    pub port: Option<String>,
    pub fixed_ip: Option<String>,
}

/// A server (Nova's `instances` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    pub uuid: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: i32,
    /// The compute host (set once scheduled).
    pub host: Option<String>,
    /// The bare-metal node (= resource provider) uuid.
    pub node: Option<String>,
    /// The flavor as it was at boot.
    pub flavor: Flavor,
    /// The image as it was at boot (or last rebuild).
    pub image: Image,
    pub key_name: Option<String>,
    pub key_data: Option<String>,
    /// Base64 user data.
    pub user_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub networks: Vec<RequestedNetwork>,
    pub availability_zone: Option<String>,
    pub description: Option<String>,
    pub fault: Option<Fault>,
    pub launched_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Compare-and-swap counter, bumped by every update.
    pub version: i64,
}

/// What a server shows as `status`, from Nova's `_STATE_MAP`.
pub fn status(vm: &str, task: Option<&str>) -> &'static str {
    use self::task_state as t;
    let task_state = task;
    match vm {
        vm_state::BUILDING => "BUILD",
        vm_state::ACTIVE => match task_state {
            Some(t::REBOOTING) => "REBOOT",
            Some(t::REBOOTING_HARD) => "HARD_REBOOT",
            Some(t::REBUILDING) | Some(t::REBUILD_SPAWNING) => "REBUILD",
            _ => "ACTIVE",
        },
        vm_state::STOPPED => match task_state {
            Some(t::REBUILDING) | Some(t::REBUILD_SPAWNING) => "REBUILD",
            Some(t::REBOOTING_HARD) => "HARD_REBOOT",
            _ => "SHUTOFF",
        },
        vm_state::ERROR => match task_state {
            Some(t::REBUILDING) | Some(t::REBUILD_SPAWNING) => "REBUILD",
            _ => "ERROR",
        },
        vm_state::DELETED => "DELETED",
        _ => "UNKNOWN",
    }
}

impl Server {
    pub fn status(&self) -> &'static str {
        status(&self.vm_state, self.task_state.as_deref())
    }
}

/// The MD5 fingerprint of an OpenSSH public key (`aa:bb:…`), or None when
/// the key is not `type base64 [comment]`.
pub fn ssh_fingerprint(public_key: &str) -> Option<String> {
    use base64::Engine;
    use md5::Digest;
    let mut parts = public_key.split_whitespace();
    let kind = parts.next()?;
    let blob = parts.next()?;
    if !(kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-")) {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .ok()?;
    // The blob starts with the key type as an SSH string.
    let declared_len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    if bytes.get(4..4 + declared_len)? != kind.as_bytes() {
        return None;
    }
    let digest = md5::Md5::digest(&bytes);
    Some(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let table = [
            ("building", None, "BUILD"),
            ("building", Some("scheduling"), "BUILD"),
            ("active", None, "ACTIVE"),
            ("active", Some("rebooting"), "REBOOT"),
            ("active", Some("rebooting_hard"), "HARD_REBOOT"),
            ("active", Some("rebuilding"), "REBUILD"),
            ("active", Some("deleting"), "ACTIVE"),
            ("active", Some("powering-off"), "ACTIVE"),
            ("stopped", None, "SHUTOFF"),
            ("stopped", Some("powering-on"), "SHUTOFF"),
            ("error", None, "ERROR"),
            ("error", Some("rebuilding"), "REBUILD"),
        ];
        for (vm, task, expected) in table {
            assert_eq!(status(vm, task), expected, "{vm} {task:?}");
        }
    }

    #[test]
    fn fingerprints() {
        // A real ed25519 key.
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGaNrmqDg6t5ZMxcOvW0pvUDnBDTYOuuQ7ZpqWCgR0mN test@example";
        let fingerprint = ssh_fingerprint(key).expect("valid key");
        assert_eq!(fingerprint.len(), 47);
        assert_eq!(fingerprint.matches(':').count(), 15);
        assert_eq!(ssh_fingerprint("ssh-rsa notbase64!"), None);
        assert_eq!(ssh_fingerprint("hello"), None);
        assert_eq!(
            ssh_fingerprint(
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGaNrmqDg6t5ZMxcOvW0pvUDnBDTYOuuQ7ZpqWCgR0mN"
            ),
            None
        );
    }
}
