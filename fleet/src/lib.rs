//! Simulated machines (issue 5): Redfish BMCs, NICs, netboot firmware and
//! file-backed disks, running the deploy agent when they netboot.
//!
//! [`Fleet::start`] creates (or reopens) the machines under a state
//! directory and serves one BMC per machine; [`Fleet::inventory`] is the
//! `baremetal create` document enrolling them with the `redfish` driver.

pub mod bootcfg;
pub mod firmware;
pub mod machine;
pub mod redfish;
pub mod tftp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrite_imaging::hardware::{Cpu, Disk, Hardware, Nic, SystemVendor};
use serde_json::{json, Value};

pub use firmware::{BootMode, DhcpOffer, Firmware, LoadedImage};
pub use machine::{
    AgentLauncher, BootOverride, InProcessAgents, Machine, MachineSpec, MachineState, RunningAgent,
};
pub use tftp::{TftpClient, TftpError};

const GIB: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("invalid fleet configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Io(String),
}

/// How to build a fleet. [`FleetConfig::new`] gives the defaults.
#[derive(Clone)]
pub struct FleetConfig {
    pub machines: usize,
    /// Machines' disks, hardware descriptions and identities live here
    /// (`<state_dir>/<name>/`); reusing it keeps UUIDs and disk contents.
    pub state_dir: PathBuf,
    /// Where the conductor writes per-MAC DHCP options (`<mac>.json`).
    pub dhcp_dir: PathBuf,
    /// The conductor's TFTP port (DHCP gives only the server's IP).
    pub tftp_port: u16,
    /// Sizes of each machine's disks, bytes (sparse files).
    pub disk_sizes: Vec<u64>,
    pub nics_per_machine: usize,
    pub boot_mode: BootMode,
    pub cpus: u32,
    pub memory_mb: u64,
    pub cpu_arch: String,
    /// BMC credentials (the same for every machine).
    pub username: String,
    pub password: String,
    /// Where BMCs listen.
    pub bmc_host: IpAddr,
    /// BMC of machine `i` on `bmc_base_port + i`; `None`: ephemeral ports.
    pub bmc_base_port: Option<u16>,
    /// Machine names are `<name_prefix><index>`.
    pub name_prefix: String,
    /// First three bytes of every MAC; the last three are
    /// `index * nics_per_machine + nic` (give fleets sharing a DHCP
    /// directory different prefixes).
    pub mac_prefix: [u8; 3],
    /// Where agents listen (port 0).
    pub agent_host: IpAddr,
    pub tftp: TftpClient,
    pub launcher: Arc<dyn AgentLauncher>,
}

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetConfig")
            .field("machines", &self.machines)
            .field("state_dir", &self.state_dir)
            .field("dhcp_dir", &self.dhcp_dir)
            .field("tftp_port", &self.tftp_port)
            .field("boot_mode", &self.boot_mode)
            .finish_non_exhaustive()
    }
}

impl FleetConfig {
    /// `machines` UEFI machines with one 10 GiB disk and one NIC each,
    /// 2 CPUs, 4 GiB of memory, BMC credentials `admin`/`password`, DHCP
    /// options read from `<state_dir>/dhcp`, TFTP port 69.
    pub fn new(machines: usize, state_dir: impl Into<PathBuf>) -> FleetConfig {
        let state_dir = state_dir.into();
        FleetConfig {
            machines,
            dhcp_dir: state_dir.join("dhcp"),
            state_dir,
            tftp_port: 69,
            disk_sizes: vec![10 * GIB],
            nics_per_machine: 1,
            boot_mode: BootMode::Uefi,
            cpus: 2,
            memory_mb: 4096,
            cpu_arch: "x86_64".into(),
            username: "admin".into(),
            password: "password".into(),
            bmc_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            bmc_base_port: None,
            name_prefix: "fleet-".into(),
            mac_prefix: [0x52, 0x54, 0x00],
            agent_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            tftp: TftpClient::default(),
            launcher: Arc::new(InProcessAgents),
        }
    }
}

/// The MAC of NIC `nic` of machine `index`.
pub fn mac_address(prefix: [u8; 3], nics_per_machine: usize, index: usize, nic: usize) -> String {
    let n = (index * nics_per_machine + nic) as u32;
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        prefix[0],
        prefix[1],
        prefix[2],
        (n >> 16) & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

/// A running fleet.
pub struct Fleet {
    machines: Vec<Machine>,
    server: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<()>,
    username: String,
    password: String,
    cpu_arch: String,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> FleetError {
    FleetError::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// Reads the machine's identity file or creates one.
fn identity(dir: &Path) -> Result<String, FleetError> {
    let path = dir.join("machine.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| FleetError::Io(format!("bad {}: {e}", path.display())))?;
            value
                .get("uuid")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| FleetError::Io(format!("{} has no uuid", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let uuid = uuid::Uuid::new_v4().to_string();
            std::fs::write(&path, json!({ "uuid": uuid }).to_string())
                .map_err(|e| io_err("write", &path, e))?;
            Ok(uuid)
        }
        Err(e) => Err(io_err("read", &path, e)),
    }
}

/// Creates the sparse disk file, or resizes an existing one to `size`.
fn disk_file(path: &Path, size: u64) -> Result<(), FleetError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| io_err("create", path, e))?;
    let current = file
        .metadata()
        .map_err(|e| io_err("inspect", path, e))?
        .len();
    if current != size {
        file.set_len(size).map_err(|e| io_err("size", path, e))?;
    }
    Ok(())
}

fn build_spec(config: &FleetConfig, index: usize) -> Result<MachineSpec, FleetError> {
    let name = format!("{}{index}", config.name_prefix);
    let dir = config.state_dir.join(&name);
    std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
    let uuid = identity(&dir)?;
    let mut disks = Vec::new();
    for (d, size) in config.disk_sizes.iter().enumerate() {
        let path = dir.join(format!("disk{d}.img"));
        disk_file(&path, *size)?;
        let letter = char::from(b'a' + (d % 26) as u8);
        let serial = format!("FRT{:06}{d}", index);
        disks.push(Disk {
            name: format!("/dev/sd{letter}"),
            path,
            size: *size,
            model: "Ferrite Virtual Disk".into(),
            vendor: "FERRITE".into(),
            serial: Some(serial),
            wwn: Some(format!("0x5000c5{:010x}", index * 16 + d)),
            wwn_with_extension: None,
            wwn_vendor_extension: None,
            rotational: false,
            hctl: Some(format!("{d}:0:0:0")),
            by_path: Some(format!("/dev/disk/by-path/pci-0000:00:1f.2-ata-{}", d + 1)),
        });
    }
    let interfaces = (0..config.nics_per_machine)
        .map(|n| Nic {
            name: format!("eth{n}"),
            mac_address: mac_address(config.mac_prefix, config.nics_per_machine, index, n),
            ipv4_address: None,
            has_carrier: true,
        })
        .collect();
    let hardware = Hardware {
        system_vendor: SystemVendor {
            product_name: "Ferrite Simulated Machine".into(),
            serial_number: format!("FRT-{index:06}"),
            manufacturer: "Ferrite".into(),
        },
        cpu: Cpu {
            model_name: "Ferrite Virtual CPU".into(),
            count: config.cpus,
            architecture: config.cpu_arch.clone(),
        },
        memory_mb: config.memory_mb,
        interfaces,
        disks,
        boot_mode: config.boot_mode.as_str().into(),
    };
    let hw_path = dir.join("hardware.json");
    let text = serde_json::to_string_pretty(&hardware)
        .map_err(|e| FleetError::Io(format!("cannot encode the hardware description: {e}")))?;
    std::fs::write(&hw_path, text).map_err(|e| io_err("write", &hw_path, e))?;
    Ok(MachineSpec {
        index,
        uuid,
        name,
        dir,
        hardware,
        username: config.username.clone(),
        password: config.password.clone(),
    })
}

impl Fleet {
    /// Creates the machines (powered off) and starts their BMCs.
    pub async fn start(config: FleetConfig) -> Result<Fleet, FleetError> {
        if config.nics_per_machine == 0 {
            return Err(FleetError::Config("machines need at least one NIC".into()));
        }
        if config.machines.saturating_mul(config.nics_per_machine) > 1 << 24 {
            return Err(FleetError::Config(
                "too many NICs for distinct MACs under one prefix".into(),
            ));
        }
        if let Some(base) = config.bmc_base_port {
            if usize::from(base) + config.machines > 65536 {
                return Err(FleetError::Config(format!(
                    "{} BMCs do not fit in ports from {base}",
                    config.machines
                )));
            }
        }
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| io_err("create", &config.state_dir, e))?;
        let env = Arc::new(machine::Environment {
            firmware: Firmware::new(
                config.dhcp_dir.clone(),
                config.tftp_port,
                config.tftp.clone(),
            ),
            launcher: config.launcher.clone(),
            agent_host: config.agent_host,
        });
        let mut machines = Vec::with_capacity(config.machines);
        let mut listeners = Vec::with_capacity(config.machines);
        for index in 0..config.machines {
            let spec = build_spec(&config, index)?;
            let port = config.bmc_base_port.map_or(0, |b| b + index as u16);
            let addr = SocketAddr::new(config.bmc_host, port);
            let listener = TcpListener::bind(addr)
                .map_err(|e| FleetError::Io(format!("cannot listen on {addr} for a BMC: {e}")))?;
            listeners.push(listener);
            machines.push(Machine::new(spec, env.clone()));
        }
        let server = redfish::serve(machines.clone(), listeners)
            .map_err(|e| FleetError::Io(format!("cannot start the BMCs: {e}")))?;
        let handle = server.handle();
        let task = tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "BMC server failed");
            }
        });
        Ok(Fleet {
            machines,
            server: handle,
            task,
            username: config.username,
            password: config.password,
            cpu_arch: config.cpu_arch,
        })
    }

    pub fn machines(&self) -> &[Machine] {
        &self.machines
    }

    pub fn machine(&self, name_or_uuid: &str) -> Option<&Machine> {
        self.machines
            .iter()
            .find(|m| m.name() == name_or_uuid || m.uuid() == name_or_uuid)
    }

    /// The `baremetal create` document enrolling every machine with the
    /// `redfish` driver.
    pub fn inventory(&self) -> Value {
        let nodes: Vec<Value> = self
            .machines
            .iter()
            .map(|m| {
                let hw = m.hardware();
                // Like inspection: the smallest disk, minus 1 GiB for the
                // partition table and alignment.
                let root = hw.disks.iter().map(|d| d.size).min().unwrap_or(0);
                let local_gb = (root / GIB).saturating_sub(1);
                json!({
                    "name": m.name(),
                    "driver": "redfish",
                    "driver_info": {
                        "redfish_address": m.bmc_url(),
                        "redfish_system_id": format!("/redfish/v1/Systems/{}", m.uuid()),
                        "redfish_username": self.username,
                        "redfish_password": self.password,
                    },
                    "properties": {
                        "cpus": hw.cpu.count,
                        "memory_mb": hw.memory_mb,
                        "local_gb": local_gb,
                        "cpu_arch": self.cpu_arch,
                        "capabilities": format!("boot_mode:{}", hw.boot_mode),
                    },
                    "ports": hw.interfaces.iter().map(|n| json!({"address": n.mac_address})).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "nodes": nodes })
    }

    /// Powers every machine off (stopping agents) and stops the BMCs.
    pub async fn stop(self) {
        futures::future::join_all(self.machines.iter().map(|m| m.power_off())).await;
        self.server.stop(true).await;
        let _ = self.task.await;
    }
}
