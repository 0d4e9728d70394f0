//! One simulated machine: power, boot override, firmware (disk boot or
//! netboot) and the deploy agent it runs after netbooting.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferrite_agent::{AgentConfig, AgentEvent};
use ferrite_imaging::hardware::Hardware;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::firmware::{BootMode, Firmware};

/// What a machine is doing, as the fleet's library and the BMC's Oem field
/// report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum MachineState {
    Off,
    /// The firmware is netbooting (DHCP, TFTP/HTTP downloads).
    Netbooting,
    /// The deploy agent runs and serves its API at `callback_url`.
    AgentRunning {
        callback_url: String,
    },
    /// Booted the deployed instance from disk.
    RunningInstance,
    /// Powered on but nothing could boot (reason).
    BootFailed(String),
    /// Network boot failed (reason).
    NetbootFailed(String),
}

impl MachineState {
    pub fn is_on(&self) -> bool {
        !matches!(self, MachineState::Off)
    }

    /// Short name: `off`, `netbooting`, `agent_running`, ….
    pub fn name(&self) -> &'static str {
        match self {
            MachineState::Off => "off",
            MachineState::Netbooting => "netbooting",
            MachineState::AgentRunning { .. } => "agent_running",
            MachineState::RunningInstance => "running_instance",
            MachineState::BootFailed(_) => "boot_failed",
            MachineState::NetbootFailed(_) => "netboot_failed",
        }
    }
}

/// Redfish `BootSourceOverrideTarget` values the machines accept.
pub const BOOT_TARGETS: &[&str] = &["None", "Pxe", "Hdd", "Cd", "UefiHttp", "BiosSetup"];
/// Redfish `BootSourceOverrideEnabled` values.
pub const BOOT_ENABLED: &[&str] = &["Disabled", "Once", "Continuous"];

/// The BMC's boot override settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOverride {
    pub target: String,
    /// `Disabled`, `Once` or `Continuous`.
    pub enabled: String,
    pub mode: BootMode,
}

/// A running deploy agent as the machine sees it.
pub trait RunningAgent: Send {
    fn callback_url(&self) -> String;
    /// Stops the agent (the machine lost power).
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// How machines start their deploy agent after a netboot. The default,
/// [`InProcessAgents`], calls `ferrite_agent::start`; tests substitute one
/// that records the configuration.
pub trait AgentLauncher: Send + Sync + 'static {
    fn launch(
        &self,
        config: AgentConfig,
    ) -> BoxFuture<'static, Result<Box<dyn RunningAgent>, String>>;
}

/// Runs `ferrite_agent` in-process.
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcessAgents;

struct InProcessAgent(ferrite_agent::Agent);

impl RunningAgent for InProcessAgent {
    fn callback_url(&self) -> String {
        self.0.callback_url()
    }
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.0.stop())
    }
}

impl AgentLauncher for InProcessAgents {
    fn launch(
        &self,
        config: AgentConfig,
    ) -> BoxFuture<'static, Result<Box<dyn RunningAgent>, String>> {
        Box::pin(async move {
            let agent = ferrite_agent::start(config)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Box::new(InProcessAgent(agent)) as Box<dyn RunningAgent>)
        })
    }
}

/// What machines of a fleet share.
pub(crate) struct Environment {
    pub firmware: Firmware,
    pub launcher: Arc<dyn AgentLauncher>,
    /// Address the agents listen on (port 0).
    pub agent_host: IpAddr,
}

/// Static description of a machine.
#[derive(Debug, Clone, Serialize)]
pub struct MachineSpec {
    pub index: usize,
    pub uuid: String,
    pub name: String,
    pub dir: PathBuf,
    pub hardware: Hardware,
    pub username: String,
    pub password: String,
}

struct Runtime {
    state: MachineState,
    boot: BootOverride,
    /// Bumped by every power transition; background work of an older
    /// generation discards its results.
    generation: u64,
    agent: Option<Box<dyn RunningAgent>>,
    boots: u64,
}

struct Inner {
    spec: MachineSpec,
    env: Arc<Environment>,
    runtime: Mutex<Runtime>,
    /// Serializes power transitions.
    power: tokio::sync::Mutex<()>,
    state_tx: watch::Sender<MachineState>,
    bmc_addr: Mutex<Option<SocketAddr>>,
}

/// A simulated machine (cheap to clone; clones share the machine).
#[derive(Clone)]
pub struct Machine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("name", &self.inner.spec.name)
            .field("uuid", &self.inner.spec.uuid)
            .field("state", &self.state())
            .finish()
    }
}

impl Machine {
    pub(crate) fn new(spec: MachineSpec, env: Arc<Environment>) -> Machine {
        let mode = spec
            .hardware
            .boot_mode
            .parse::<BootMode>()
            .unwrap_or(BootMode::Uefi);
        let (state_tx, _) = watch::channel(MachineState::Off);
        Machine {
            inner: Arc::new(Inner {
                spec,
                env,
                runtime: Mutex::new(Runtime {
                    state: MachineState::Off,
                    boot: BootOverride {
                        target: "None".into(),
                        enabled: "Disabled".into(),
                        mode,
                    },
                    generation: 0,
                    agent: None,
                    boots: 0,
                }),
                power: tokio::sync::Mutex::new(()),
                state_tx,
                bmc_addr: Mutex::new(None),
            }),
        }
    }

    fn runtime(&self) -> MutexGuard<'_, Runtime> {
        self.inner
            .runtime
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_state(&self, rt: &mut Runtime, state: MachineState) {
        tracing::info!(machine = %self.inner.spec.name, state = state.name(), "machine state");
        rt.state = state.clone();
        self.inner.state_tx.send_replace(state);
    }

    pub fn spec(&self) -> &MachineSpec {
        &self.inner.spec
    }
    pub fn uuid(&self) -> &str {
        &self.inner.spec.uuid
    }
    pub fn name(&self) -> &str {
        &self.inner.spec.name
    }
    pub fn hardware(&self) -> &Hardware {
        &self.inner.spec.hardware
    }
    /// MACs of the NICs, lower case, colon separated.
    pub fn macs(&self) -> Vec<String> {
        self.inner
            .spec
            .hardware
            .interfaces
            .iter()
            .map(|n| n.mac_address.clone())
            .collect()
    }

    pub fn state(&self) -> MachineState {
        self.runtime().state.clone()
    }

    /// Number of times the machine started booting since the fleet started.
    pub fn boot_count(&self) -> u64 {
        self.runtime().boots
    }

    pub fn boot_override(&self) -> BootOverride {
        self.runtime().boot.clone()
    }

    /// The BMC's address (`http://…` is [`Machine::bmc_url`]).
    pub fn bmc_addr(&self) -> Option<SocketAddr> {
        *self
            .inner
            .bmc_addr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn set_bmc_addr(&self, addr: SocketAddr) {
        *self
            .inner
            .bmc_addr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(addr);
    }

    pub fn bmc_url(&self) -> String {
        self.bmc_addr()
            .map(|a| format!("http://{a}"))
            .unwrap_or_default()
    }

    /// Waits until `predicate` holds for the state, at most `timeout`;
    /// returns the last state seen.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        predicate: impl Fn(&MachineState) -> bool,
    ) -> Result<MachineState, MachineState> {
        let mut rx = self.inner.state_tx.subscribe();
        let result = tokio::time::timeout(timeout, rx.wait_for(|s| predicate(s))).await;
        match result {
            Ok(Ok(state)) => Ok(state.clone()),
            _ => Err(self.state()),
        }
    }

    /// Sets the boot override (validated by the caller).
    pub fn set_boot_override(
        &self,
        target: Option<&str>,
        enabled: Option<&str>,
        mode: Option<BootMode>,
    ) {
        let mut rt = self.runtime();
        if let Some(t) = target {
            rt.boot.target = t.to_string();
            // Redfish: a target without a frequency means once.
            if enabled.is_none() && rt.boot.enabled == "Disabled" && t != "None" {
                rt.boot.enabled = "Once".into();
            }
        }
        if let Some(e) = enabled {
            rt.boot.enabled = e.to_string();
        }
        if let Some(m) = mode {
            rt.boot.mode = m;
        }
    }

    /// Powers on (no-op when on) and boots in the background.
    pub async fn power_on(&self) {
        let _guard = self.inner.power.lock().await;
        if self.state().is_on() {
            return;
        }
        self.start_boot();
    }

    /// Cuts power (no-op when off): the agent stops.
    pub async fn power_off(&self) {
        let _guard = self.inner.power.lock().await;
        self.cut_power().await;
    }

    /// Power cycle when on (no-op when off, as sushy-tools' drivers do).
    pub async fn restart(&self) {
        let _guard = self.inner.power.lock().await;
        if !self.state().is_on() {
            return;
        }
        self.cut_power().await;
        self.start_boot();
    }

    /// Called with the power lock held. The state turns `Off` once the
    /// agent has stopped, so "off" always means no agent is answering.
    async fn cut_power(&self) {
        let agent = {
            let mut rt = self.runtime();
            // Background boot work of the old generation is now stale.
            rt.generation += 1;
            rt.agent.take()
        };
        if let Some(agent) = agent {
            agent.stop().await;
        }
        let mut rt = self.runtime();
        if rt.state != MachineState::Off {
            self.set_state(&mut rt, MachineState::Off);
        }
    }

    fn start_boot(&self) {
        let generation = {
            let mut rt = self.runtime();
            rt.generation += 1;
            rt.boots += 1;
            // Powered on, not booted yet: the firmware decides next.
            self.set_state(&mut rt, MachineState::Netbooting);
            rt.generation
        };
        let machine = self.clone();
        tokio::spawn(async move { machine.boot(generation).await });
    }

    /// Applies `state` if `generation` is still current.
    fn commit(&self, generation: u64, state: MachineState) -> bool {
        let mut rt = self.runtime();
        if rt.generation != generation {
            return false;
        }
        self.set_state(&mut rt, state);
        true
    }

    async fn boot(&self, generation: u64) {
        let (target, mode) = {
            let mut rt = self.runtime();
            if rt.generation != generation {
                return;
            }
            let target = match rt.boot.enabled.as_str() {
                "Once" => {
                    rt.boot.enabled = "Disabled".into();
                    Some(rt.boot.target.clone())
                }
                "Continuous" => Some(rt.boot.target.clone()),
                _ => None,
            };
            (target.filter(|t| t != "None"), rt.boot.mode)
        };
        match target.as_deref() {
            Some("Pxe") | Some("UefiHttp") => self.netboot(generation, mode).await,
            Some("Hdd") => {
                let state = match self.disk_boot(mode).await {
                    Ok(()) => MachineState::RunningInstance,
                    Err(reason) => MachineState::BootFailed(reason),
                };
                self.commit(generation, state);
            }
            Some(other) => {
                self.commit(
                    generation,
                    MachineState::BootFailed(format!("no bootable device for boot target {other}")),
                );
            }
            None => match self.disk_boot(mode).await {
                Ok(()) => {
                    self.commit(generation, MachineState::RunningInstance);
                }
                Err(reason) => {
                    tracing::debug!(machine = %self.name(), %reason, "disk not bootable, trying the network");
                    self.netboot(generation, mode).await;
                }
            },
        }
    }

    /// The firmware's disk boot: the first disk that passes the boot check.
    async fn disk_boot(&self, mode: BootMode) -> Result<(), String> {
        let disks = self.inner.spec.hardware.disks.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut reasons = Vec::new();
            for disk in &disks {
                match ferrite_imaging::boot::boot_check(disk, mode.as_str()) {
                    Ok(_) => return Ok(()),
                    Err(e) => reasons.push(format!("{}: {e}", disk.name)),
                }
            }
            if reasons.is_empty() {
                reasons.push("the machine has no disk".into());
            }
            Err(format!("no bootable disk ({})", reasons.join("; ")))
        })
        .await;
        result.unwrap_or_else(|e| Err(format!("disk boot check failed: {e}")))
    }

    async fn netboot(&self, generation: u64, mode: BootMode) {
        if !self.commit(generation, MachineState::Netbooting) {
            return;
        }
        let image = match self.inner.env.firmware.netboot(&self.macs(), mode).await {
            Ok(image) => image,
            Err(reason) => {
                self.commit(generation, MachineState::NetbootFailed(reason));
                return;
            }
        };
        tracing::info!(
            machine = %self.name(),
            loader = image.loader,
            kernel_bytes = image.kernel.len(),
            ramdisk_bytes = image.ramdisk.len(),
            cmdline = %image.cmdline,
            "netbooted"
        );
        let mut hardware = self.inner.spec.hardware.clone();
        hardware.boot_mode = mode.as_str().to_string();
        let work_dir = self.inner.spec.dir.join("agent");
        if let Err(e) = std::fs::create_dir_all(&work_dir) {
            self.commit(
                generation,
                MachineState::BootFailed(format!("cannot create {}: {e}", work_dir.display())),
            );
            return;
        }
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let config = AgentConfig {
            cmdline: image.cmdline.clone(),
            hardware,
            listen: SocketAddr::new(self.inner.env.agent_host, 0),
            advertise_host: None,
            work_dir,
            events: Some(events_tx),
        };
        let agent = match self.inner.env.launcher.launch(config).await {
            Ok(agent) => agent,
            Err(e) => {
                self.commit(
                    generation,
                    MachineState::BootFailed(format!("the deploy agent did not start: {e}")),
                );
                return;
            }
        };
        let stale = {
            let mut rt = self.runtime();
            if rt.generation == generation {
                let callback_url = agent.callback_url();
                rt.agent = Some(agent);
                self.set_state(&mut rt, MachineState::AgentRunning { callback_url });
                None
            } else {
                Some(agent)
            }
        };
        if let Some(agent) = stale {
            agent.stop().await;
            return;
        }
        let machine = self.clone();
        tokio::spawn(async move { machine.agent_events(generation, events_rx).await });
    }

    /// Acts on the agent's requests while its generation is current.
    async fn agent_events(&self, generation: u64, mut rx: mpsc::UnboundedReceiver<AgentEvent>) {
        // One request ends this boot: the machine powers off or restarts.
        if let Some(event) = rx.recv().await {
            if self.runtime().generation != generation {
                return;
            }
            tracing::info!(machine = %self.name(), ?event, "agent request");
            let machine = self.clone();
            // Separate tasks: stopping the agent must not wait on itself.
            match event {
                AgentEvent::PowerOff => {
                    tokio::spawn(async move {
                        let _guard = machine.inner.power.lock().await;
                        if machine.runtime().generation == generation {
                            machine.cut_power().await;
                        }
                    });
                }
                AgentEvent::Reboot => {
                    tokio::spawn(async move {
                        let _guard = machine.inner.power.lock().await;
                        if machine.runtime().generation == generation {
                            machine.cut_power().await;
                            machine.start_boot();
                        }
                    });
                }
            }
        }
    }
}
