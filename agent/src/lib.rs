//! The deploy agent: ironic-python-agent's API (lookup, heartbeat,
//! commands) over the disk operations of `ferrite-imaging`.
//!
//! Contract used by the fleet (which runs agents in-process) and the binary:
//! [`start`] with an [`AgentConfig`] returns a running [`Agent`].

use std::net::SocketAddr;
use std::path::PathBuf;

use ferrite_imaging::hardware::Hardware;
use tokio::sync::mpsc;

/// What the agent asks of the machine it runs on (a real agent would call
/// the OS; the fleet's machines act on these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// `standby.power_off`: the machine must power off.
    PowerOff,
    /// `standby.run_image` / reboot requests.
    Reboot,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The kernel command line the agent was booted with
    /// (`ipa-api-url=… BOOTIF=01-aa-bb-… ipa-global-request-id=…`).
    pub cmdline: String,
    pub hardware: Hardware,
    /// Where the command API listens (port 9999 upstream; port 0 allowed).
    pub listen: SocketAddr,
    /// Host put in `callback_url` (default: the listen address's IP).
    pub advertise_host: Option<String>,
    /// Scratch space (downloads, conversions).
    pub work_dir: PathBuf,
    /// Where machine-level requests go; `None`: ignored (logged).
    pub events: Option<mpsc::UnboundedSender<AgentEvent>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(String),
}

/// A running agent.
pub struct Agent {
    _private: (),
}

impl Agent {
    /// `http://host:port` the conductor calls back on.
    pub fn callback_url(&self) -> String {
        String::new()
    }

    /// Stops heartbeating and serving (the machine powered off).
    pub async fn stop(self) {}
}

/// Binds the command API, then looks the node up and heartbeats in the
/// background; returns once the API is listening.
pub async fn start(config: AgentConfig) -> Result<Agent, AgentError> {
    let _ = config;
    Err(AgentError::Config("not implemented".into()))
}
