//! A machine's network boot firmware: DHCP options (as files the conductor
//! writes), PXE over TFTP with pxelinux or grub configs, or iPXE over HTTP.
//! The result is what a bootloader would hand to the kernel: the kernel,
//! the ramdisk and the command line.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::bootcfg::{self, BootEntry, IpxeOutcome};
use crate::tftp::{TftpClient, TftpError};

/// `uefi` or `bios`, as ironic's `boot_mode` capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootMode {
    Uefi,
    Bios,
}

impl BootMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BootMode::Uefi => "uefi",
            BootMode::Bios => "bios",
        }
    }

    /// Redfish's `BootSourceOverrideMode`.
    pub fn redfish(self) -> &'static str {
        match self {
            BootMode::Uefi => "UEFI",
            BootMode::Bios => "Legacy",
        }
    }

    pub fn from_redfish(value: &str) -> Option<BootMode> {
        match value {
            "UEFI" => Some(BootMode::Uefi),
            "Legacy" => Some(BootMode::Bios),
            _ => None,
        }
    }
}

impl std::str::FromStr for BootMode {
    type Err = String;
    fn from_str(s: &str) -> Result<BootMode, String> {
        match s.to_ascii_lowercase().as_str() {
            "uefi" => Ok(BootMode::Uefi),
            "bios" | "legacy" => Ok(BootMode::Bios),
            other => Err(format!("unknown boot mode {other:?} (uefi or bios)")),
        }
    }
}

/// One upstream-style DHCP option.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DhcpOption {
    pub opt_name: String,
    pub opt_value: String,
    #[serde(default)]
    pub ip_version: Option<u8>,
}

/// The DHCP options offered to one MAC.
#[derive(Debug, Clone, Default)]
pub struct DhcpOffer {
    pub options: Vec<DhcpOption>,
}

impl DhcpOffer {
    /// `<dhcp_dir>/<mac>.json`; `Ok(None)` when there is no such file (no
    /// DHCP server would answer a PXE request from this MAC).
    pub fn load(dhcp_dir: &Path, mac: &str) -> Result<Option<DhcpOffer>, String> {
        let path = dhcp_dir.join(format!("{}.json", mac.to_ascii_lowercase()));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let options: Vec<DhcpOption> = serde_json::from_str(&text)
            .map_err(|e| format!("bad DHCP options in {}: {e}", path.display()))?;
        Ok(Some(DhcpOffer { options }))
    }

    /// The value of option `name` (IPv4 options only).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|o| o.opt_name == name && o.ip_version.unwrap_or(4) == 4)
            .map(|o| o.opt_value.as_str())
    }

    /// The bootfile a plain PXE ROM gets.
    pub fn bootfile(&self) -> Option<&str> {
        self.get("tag:!ipxe,67").or_else(|| self.get("67"))
    }

    /// The iPXE script URL an iPXE client gets.
    pub fn ipxe_script(&self) -> Option<&str> {
        self.get("tag:ipxe,67")
    }

    /// The TFTP server: `server-ip-address` (siaddr), 150, 66 or 255.
    pub fn tftp_server(&self) -> Option<&str> {
        ["server-ip-address", "150", "66", "255"]
            .iter()
            .find_map(|name| self.get(name))
    }

    /// pxelinux's path prefix (option 210).
    pub fn path_prefix(&self) -> Option<&str> {
        self.get("210")
    }
}

/// What the firmware loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The NIC that booted.
    pub mac: String,
    /// `pxelinux`, `grub` or `ipxe`.
    pub loader: &'static str,
    pub kernel: Vec<u8>,
    pub ramdisk: Vec<u8>,
    /// Final kernel command line (with `BOOTIF`).
    pub cmdline: String,
}

/// Firmware settings shared by the machines of a fleet.
#[derive(Debug, Clone)]
pub struct Firmware {
    pub dhcp_dir: PathBuf,
    /// The TFTP server's UDP port (a DHCP option cannot carry one).
    pub tftp_port: u16,
    pub tftp: TftpClient,
    pub http: reqwest::Client,
}

impl Firmware {
    pub fn new(dhcp_dir: PathBuf, tftp_port: u16, tftp: TftpClient) -> Firmware {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Firmware {
            dhcp_dir,
            tftp_port,
            tftp,
            http,
        }
    }

    /// Network boot: tries each NIC in order (MACs lower case, colon
    /// separated) and boots from the first that gets a DHCP offer.
    pub async fn netboot(&self, macs: &[String], mode: BootMode) -> Result<LoadedImage, String> {
        for mac in macs {
            // A file caught mid-write does not parse: look again shortly.
            let mut offer = DhcpOffer::load(&self.dhcp_dir, mac);
            for _ in 0..3 {
                if offer.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                offer = DhcpOffer::load(&self.dhcp_dir, mac);
            }
            if let Some(offer) = offer? {
                return self.boot_from(mac, macs, &offer, mode).await;
            }
        }
        Err(format!(
            "no DHCP offer for any NIC ({}) in {}",
            macs.join(", "),
            self.dhcp_dir.display()
        ))
    }

    async fn boot_from(
        &self,
        mac: &str,
        macs: &[String],
        offer: &DhcpOffer,
        mode: BootMode,
    ) -> Result<LoadedImage, String> {
        let tftp_server = match offer.tftp_server() {
            Some(ip) => Some(
                ip.parse::<IpAddr>()
                    .map(|ip| SocketAddr::new(ip, self.tftp_port))
                    .map_err(|_| format!("DHCP offer for {mac}: bad TFTP server address {ip:?}"))?,
            ),
            None => None,
        };
        if let Some(script_url) = offer.ipxe_script() {
            // A plain PXE ROM first chainloads the iPXE binary over TFTP;
            // iPXE then asks DHCP again and gets the script URL.
            if let (Some(binary), Some(server)) = (offer.bootfile(), tftp_server) {
                self.tftp_fetch(server, offer, binary).await?;
            }
            return self.ipxe_boot(mac, macs, script_url).await;
        }
        let server =
            tftp_server.ok_or_else(|| format!("DHCP offer for {mac} names no TFTP server"))?;
        let bootfile = offer
            .bootfile()
            .ok_or_else(|| format!("DHCP offer for {mac} names no bootfile (option 67)"))?;
        self.tftp_fetch(server, offer, bootfile).await?;
        let hyphens = mac.replace(':', "-");
        let (loader, entry) = match mode {
            BootMode::Bios => {
                let text = self
                    .tftp_first(
                        server,
                        offer,
                        &[
                            format!("pxelinux.cfg/01-{hyphens}"),
                            "pxelinux.cfg/default".to_string(),
                        ],
                    )
                    .await?;
                ("pxelinux", bootcfg::parse_pxelinux(&text)?)
            }
            BootMode::Uefi => {
                let text = self
                    .tftp_first(
                        server,
                        offer,
                        &[format!("grub.cfg-01-{hyphens}"), format!("{mac}.conf")],
                    )
                    .await?;
                ("grub", bootcfg::parse_grub(&text)?)
            }
        };
        let kernel = self.tftp_fetch(server, offer, &entry.kernel).await?;
        let ramdisk = self.tftp_fetch(server, offer, &entry.initrd).await?;
        Ok(LoadedImage {
            mac: mac.to_string(),
            loader,
            kernel,
            ramdisk,
            cmdline: cmdline(&entry, mac),
        })
    }

    /// The first of `names` that exists, as text.
    async fn tftp_first(
        &self,
        server: SocketAddr,
        offer: &DhcpOffer,
        names: &[String],
    ) -> Result<String, String> {
        let mut last = String::new();
        for name in names {
            match self.tftp_get(server, offer, name).await {
                Ok(bytes) => return Ok(String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) if e.is_not_found() => last = e.to_string(),
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!("no boot configuration for this machine: {last}"))
    }

    async fn tftp_fetch(
        &self,
        server: SocketAddr,
        offer: &DhcpOffer,
        name: &str,
    ) -> Result<Vec<u8>, String> {
        self.tftp_get(server, offer, name)
            .await
            .map_err(|e| e.to_string())
    }

    /// `name` as given; when the server has no such file and option 210
    /// gives a path prefix, `<prefix><name>` as pxelinux would ask.
    async fn tftp_get(
        &self,
        server: SocketAddr,
        offer: &DhcpOffer,
        name: &str,
    ) -> Result<Vec<u8>, TftpError> {
        match self.tftp.get(server, name).await {
            Err(e) if e.is_not_found() => match offer.path_prefix() {
                Some(prefix) if !prefix.is_empty() && !name.starts_with('/') => {
                    let joined = if prefix.ends_with('/') {
                        format!("{prefix}{name}")
                    } else {
                        format!("{prefix}/{name}")
                    };
                    self.tftp.get(server, &joined).await.map_err(|_| e)
                }
                _ => Err(e),
            },
            other => other,
        }
    }

    async fn http_get(&self, url: &str) -> Result<Vec<u8>, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("HTTP GET {url} failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("HTTP GET {url}: {}", response.status()));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("HTTP GET {url} failed: {e}"))?;
        Ok(bytes.to_vec())
    }

    async fn ipxe_boot(
        &self,
        mac: &str,
        macs: &[String],
        script_url: &str,
    ) -> Result<LoadedImage, String> {
        let mut vars = HashMap::new();
        vars.insert("mac".to_string(), mac.to_string());
        for (i, m) in macs.iter().enumerate() {
            vars.insert(format!("net{i}/mac"), m.clone());
        }
        let mut url = script_url.to_string();
        let mut script = self.http_get(&url).await?;
        for _ in 0..16 {
            let text = String::from_utf8_lossy(&script).into_owned();
            // Chain targets that failed to load: the script is run again
            // and takes its fallback path (`chain … || goto …`).
            let mut failed: Vec<String> = Vec::new();
            let outcome = loop {
                let known_bad = failed.clone();
                let outcome = bootcfg::run_ipxe(&text, &url, &vars, &mut |u: &str| {
                    !known_bad.iter().any(|b| b == u)
                })
                .map_err(|e| format!("{e} (script {url})"))?;
                match outcome {
                    IpxeOutcome::Chain(next) => match self.http_get(&next).await {
                        Ok(body) => break Ok((next, body)),
                        Err(e) => {
                            tracing::debug!(error = %e, "iPXE chain failed");
                            if failed.len() > 32 {
                                return Err(e);
                            }
                            failed.push(next);
                        }
                    },
                    IpxeOutcome::Boot(entry) => break Err(entry),
                }
            };
            match outcome {
                Ok((next, body)) => {
                    url = next;
                    script = body;
                }
                Err(entry) => {
                    let kernel = self.http_get(&entry.kernel).await?;
                    let ramdisk = self.http_get(&entry.initrd).await?;
                    return Ok(LoadedImage {
                        mac: mac.to_string(),
                        loader: "ipxe",
                        kernel,
                        ramdisk,
                        cmdline: cmdline(&entry, mac),
                    });
                }
            }
        }
        Err(format!("iPXE: too many chained scripts from {script_url}"))
    }
}

/// The kernel command line of `entry`, with `BOOTIF=01-<mac>` appended when
/// the config does not set one (pxelinux's `ipappend 2` does the same).
pub fn cmdline(entry: &BootEntry, mac: &str) -> String {
    let mut params = entry
        .params
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if !params.split_whitespace().any(|w| w.starts_with("BOOTIF=")) {
        if !params.is_empty() {
            params.push(' ');
        }
        params.push_str(&format!("BOOTIF=01-{}", mac.replace(':', "-")));
    }
    params
}
