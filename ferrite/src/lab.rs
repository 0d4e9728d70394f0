//! A deploy lab: the conductor in-process (SQLite in a temp dir, the
//! built-in TFTP and HTTP boot servers on ephemeral ports) and a simulated
//! fleet (`ferrite_fleet`) sharing its DHCP directory, with the helpers the
//! end-to-end deploy tests and `deploy-bench` share: enrollment through the
//! Bare Metal API, images published on the conductor's HTTP server, config
//! drives, and waits on provision states.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferrite_baremetal_client::{BaremetalClient, ClientError};
use ferrite_fleet::{BootMode, Fleet, FleetConfig, Machine};
use serde_json::{json, Value};

/// Microversion the lab speaks (agent tokens, config drives as objects).
pub const API_VERSION: &str = "1.94";

/// What the lab runs.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub machines: usize,
    /// Sizes of each machine's disks, bytes.
    pub disk_sizes: Vec<u64>,
    pub boot_mode: BootMode,
    /// `[deploy] callback_timeout_secs`; `None`: the conductor's default.
    pub callback_timeout_secs: Option<u64>,
    /// SQLite pool size; `None`: the conductor's default.
    pub max_connections: Option<u32>,
}

impl LabOptions {
    pub fn new(machines: usize) -> LabOptions {
        LabOptions {
            machines,
            disk_sizes: vec![10 << 30],
            boot_mode: BootMode::Uefi,
            callback_timeout_secs: None,
            max_connections: None,
        }
    }
}

/// A lab failure, operator-readable.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("lab setup: {0}")]
    Setup(String),
    #[error(transparent)]
    Api(#[from] ClientError),
    #[error("{0}")]
    Failed(String),
}

pub type LabResult<T> = Result<T, LabError>;

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> LabError + '_ {
    move |e| LabError::Setup(format!("{what}: {e}"))
}

/// A running lab. [`Lab::stop`] shuts it down; dropping it leaves the
/// servers to the runtime's end.
pub struct Lab {
    dir: tempfile::TempDir,
    pub api: BaremetalClient,
    pub api_url: String,
    /// The conductor's HTTP boot server (also serves published images).
    pub http_url: String,
    pub http_root: PathBuf,
    pub dhcp_dir: PathBuf,
    pub tftp_addr: String,
    pub fleet: Fleet,
    pub deploy_kernel: PathBuf,
    pub deploy_ramdisk: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// How one node is enrolled.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub boot_interface: String,
}

impl Lab {
    /// Starts the conductor and the fleet.
    pub async fn start(options: LabOptions) -> LabResult<Lab> {
        let dir = tempfile::Builder::new()
            .prefix("ferrite-lab-")
            .tempdir()
            .map_err(setup("cannot create the lab directory"))?;
        let root = dir.path().to_path_buf();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(setup("cannot bind the Bare Metal API"))?;
        let api_addr = listener
            .local_addr()
            .map_err(setup("cannot read the API address"))?;
        let api_url = format!("http://{api_addr}");

        let mut config =
            ferrite_conductor::Config::for_database(crate::up::sqlite_url(&root, "conductor.db"));
        config.bind = api_addr.to_string();
        config.host = format!("lab-{}", api_addr.port());
        if let Some(n) = options.max_connections {
            config.max_connections = n;
        }
        let deploy = &mut config.deploy;
        deploy.tftp_root = root.join("tftpboot");
        deploy.http_root = root.join("httpboot");
        deploy.dhcp_dir = root.join("dhcp");
        deploy.image_cache_dir = root.join("image-cache");
        deploy.tftp_bind = Some("127.0.0.1:0".into());
        deploy.http_bind = Some("127.0.0.1:0".into());
        deploy.api_url = Some(api_url.clone());
        deploy.file_url_allowed_paths = vec![root.join(DEPLOY_IMAGES_DIR)];
        // Every simulated machine netboots from 127.0.0.1: one client
        // address for the TFTP server's per-client cap.
        deploy.tftp_max_transfers_per_client = deploy.tftp_max_transfers;
        if let Some(secs) = options.callback_timeout_secs {
            deploy.callback_timeout_secs = secs;
        }
        let state = ferrite_conductor::prepare(config)
            .await
            .map_err(setup("cannot start the conductor"))?;
        let deploy = state.config.deploy.clone();
        let tftp_addr = deploy
            .tftp_bind
            .clone()
            .ok_or_else(|| LabError::Setup("the conductor has no TFTP server".into()))?;
        let tftp_port = tftp_addr
            .parse::<std::net::SocketAddr>()
            .map_err(setup("bad TFTP address"))?
            .port();
        let http_url = deploy
            .http_url
            .clone()
            .ok_or_else(|| LabError::Setup("the conductor has no HTTP boot server".into()))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = ferrite_conductor::serve(listener, state, shutdown).await {
                tracing::error!(error = %e, "lab conductor failed");
            }
        });

        let mut fleet_config = FleetConfig::new(options.machines, root.join("fleet"));
        fleet_config.dhcp_dir = deploy.dhcp_dir.clone();
        fleet_config.tftp_port = tftp_port;
        fleet_config.disk_sizes = options.disk_sizes.clone();
        fleet_config.boot_mode = options.boot_mode;
        let fleet = Fleet::start(fleet_config)
            .await
            .map_err(setup("cannot start the fleet"))?;

        let (deploy_kernel, deploy_ramdisk) =
            deploy_images(&root).map_err(setup("cannot write the deploy images"))?;
        std::fs::create_dir_all(deploy.http_root.join("images"))
            .map_err(setup("cannot create the image directory"))?;

        let api = BaremetalClient::new(api_url.clone(), API_VERSION);
        let lab = Lab {
            dir,
            api,
            api_url,
            http_url,
            http_root: deploy.http_root.clone(),
            dhcp_dir: deploy.dhcp_dir.clone(),
            tftp_addr,
            fleet,
            deploy_kernel,
            deploy_ramdisk,
            shutdown: Some(tx),
            server: Some(server),
        };
        lab.wait_for_api().await?;
        Ok(lab)
    }

    async fn wait_for_api(&self) -> LabResult<()> {
        let start = Instant::now();
        loop {
            match self.api.version_range().await {
                Ok(_) => return Ok(()),
                Err(e) if start.elapsed() > Duration::from_secs(10) => {
                    return Err(LabError::Setup(format!("the API never answered: {e}")))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The lab's directory (work files, images).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn machine(&self, index: usize) -> LabResult<&Machine> {
        self.fleet
            .machines()
            .get(index)
            .ok_or_else(|| LabError::Failed(format!("the lab has no machine {index}")))
    }

    /// The node document enrolling machine `index` (`uuid` = the machine's).
    pub fn node_body(&self, index: usize, enrollment: &Enrollment) -> LabResult<Value> {
        let inventory = self.fleet.inventory();
        let entry = inventory["nodes"]
            .get(index)
            .ok_or_else(|| LabError::Failed(format!("no inventory entry for machine {index}")))?;
        let machine = self.machine(index)?;
        Ok(node_document(
            entry,
            machine.uuid(),
            &enrollment.boot_interface,
            &self.deploy_kernel,
            &self.deploy_ramdisk,
        ))
    }

    /// Enrolls machine `index` (node and ports); returns the node's UUID.
    pub async fn enroll(&self, index: usize, enrollment: &Enrollment) -> LabResult<String> {
        let body = self.node_body(index, enrollment)?;
        let node = self.api.create_node(&body).await?;
        let uuid = node["uuid"]
            .as_str()
            .ok_or_else(|| LabError::Failed(format!("created node without a uuid: {node}")))?
            .to_string();
        for mac in self.machine(index)?.macs() {
            self.api
                .create_port(&json!({"address": mac, "node_uuid": uuid, "pxe_enabled": true}))
                .await?;
        }
        Ok(uuid)
    }

    /// manage, then provide (automated cleaning through the agent) until
    /// `available`.
    pub async fn make_available(&self, uuid: &str, timeout: Duration) -> LabResult<Value> {
        self.api.set_provision_state(uuid, "manage", None).await?;
        self.api
            .wait_for_provision_state(uuid, "manageable", timeout)
            .await?;
        self.api.set_provision_state(uuid, "provide", None).await?;
        Ok(self
            .api
            .wait_for_provision_state(uuid, "available", timeout)
            .await?)
    }

    /// Copies (hard-links when possible) `path` into the HTTP root's
    /// `images/` and returns its URL.
    pub fn publish(&self, path: &Path, name: &str) -> LabResult<String> {
        let target = self.http_root.join("images").join(name);
        let _ = std::fs::remove_file(&target);
        if std::fs::hard_link(path, &target).is_err() {
            std::fs::copy(path, &target)
                .map_err(|e| LabError::Setup(format!("cannot publish {}: {e}", path.display())))?;
        }
        Ok(format!("{}/images/{name}", self.http_url))
    }

    /// Sets the image fields of `instance_info`.
    pub async fn set_image(&self, uuid: &str, image: &ImageSpec) -> LabResult<()> {
        let mut ops = vec![
            json!({"op": "add", "path": "/instance_info/image_source", "value": image.url}),
            json!({"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"}),
            json!({"op": "add", "path": "/instance_info/image_os_hash_value", "value": image.sha256}),
            json!({"op": "add", "path": "/instance_info/image_disk_format", "value": image.disk_format}),
        ];
        if image.whole_disk {
            ops.push(
                json!({"op": "add", "path": "/instance_info/image_type", "value": "whole-disk"}),
            );
        } else {
            ops.push(
                json!({"op": "add", "path": "/instance_info/image_type", "value": "partition"}),
            );
            ops.push(
                json!({"op": "add", "path": "/instance_info/root_gb", "value": image.root_gb}),
            );
        }
        self.api.patch_node(uuid, &Value::Array(ops)).await?;
        Ok(())
    }

    /// Sets the image and asks for `active` with `configdrive`.
    pub async fn deploy(
        &self,
        uuid: &str,
        image: &ImageSpec,
        configdrive: Option<&str>,
    ) -> LabResult<()> {
        self.set_image(uuid, image).await?;
        let extra = configdrive.map(|c| json!({ "configdrive": c }));
        self.api
            .set_provision_state(uuid, "active", extra.as_ref())
            .await?;
        Ok(())
    }

    /// Polls until the node is in `wanted` (with no target for resting
    /// states), or fails when `timeout` passes; failure states are returned
    /// like any other when they are what is wanted.
    pub async fn wait_state(
        &self,
        uuid: &str,
        wanted: &str,
        timeout: Duration,
    ) -> LabResult<Value> {
        let start = Instant::now();
        loop {
            let node = self.api.get_node(uuid).await?;
            let target_cleared = node
                .get("target_provision_state")
                .is_none_or(Value::is_null);
            // Failure and wait states keep their target (as upstream's
            // `deploy failed` keeps `active`); resting states clear it.
            let resting = matches!(wanted, "available" | "active" | "manageable" | "enroll");
            if node["provision_state"] == wanted && (target_cleared || !resting) {
                return Ok(node);
            }
            if start.elapsed() > timeout {
                return Err(LabError::Failed(format!(
                    "node {uuid} did not reach {wanted} in {timeout:?}: provision state {}, target {}, last_error {}",
                    node["provision_state"], node["target_provision_state"], node["last_error"]
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the fleet and the conductor.
    pub async fn stop(mut self) {
        self.fleet.stop().await;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        }
    }
}

/// The subdirectory of a lab's or `ferrite up`'s directory holding the
/// deploy kernel and ramdisk: the one directory the conductor's `file://`
/// URLs may read there (the databases beside it stay out of reach).
pub const DEPLOY_IMAGES_DIR: &str = "deploy-images";

/// Placeholder deploy kernel and ramdisk under `dir/deploy-images`
/// (written once): the fleet's firmware runs the agent in process, so they
/// only have to exist for the boot interfaces to publish.
pub fn deploy_images(dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    let dir = dir.join(DEPLOY_IMAGES_DIR);
    std::fs::create_dir_all(&dir)?;
    let kernel = dir.join("deploy.kernel");
    let ramdisk = dir.join("deploy.initramfs");
    if !kernel.exists() {
        std::fs::write(&kernel, b"ferrite simulated deploy kernel\n")?;
    }
    if !ramdisk.exists() {
        std::fs::write(&ramdisk, vec![0x5a; 64 * 1024])?;
    }
    Ok((kernel, ramdisk))
}

/// The node document enrolling a machine from its fleet inventory entry:
/// node UUID = machine UUID, `boot_interface`, `direct` deploy, `noop`
/// network, the deploy kernel and ramdisk as file:// URLs.
pub fn node_document(
    entry: &Value,
    uuid: &str,
    boot_interface: &str,
    kernel: &Path,
    ramdisk: &Path,
) -> Value {
    let mut node = entry.clone();
    if let Some(map) = node.as_object_mut() {
        map.remove("ports");
        map.insert("uuid".into(), json!(uuid));
        map.insert("boot_interface".into(), json!(boot_interface));
        map.insert("deploy_interface".into(), json!("direct"));
        map.insert("network_interface".into(), json!("noop"));
    }
    if let Some(info) = node["driver_info"].as_object_mut() {
        info.insert(
            "deploy_kernel".into(),
            json!(format!("file://{}", kernel.display())),
        );
        info.insert(
            "deploy_ramdisk".into(),
            json!(format!("file://{}", ramdisk.display())),
        );
    }
    node
}

/// An image as `instance_info` describes it.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub url: String,
    pub sha256: String,
    /// `qcow2` or `raw`.
    pub disk_format: String,
    pub whole_disk: bool,
    /// Root partition size for partition images, GiB.
    pub root_gb: u64,
}

impl ImageSpec {
    /// Publishes `path` in the lab and describes it.
    pub fn publish(
        lab: &Lab,
        path: &Path,
        name: &str,
        disk_format: &str,
        whole_disk: bool,
    ) -> LabResult<ImageSpec> {
        let sha256 = ferrite_imaging::fixtures::file_digest(path, "sha256")
            .map_err(setup("cannot checksum the image"))?;
        Ok(ImageSpec {
            url: lab.publish(path, name)?,
            sha256,
            disk_format: disk_format.into(),
            whole_disk,
            root_gb: 1,
        })
    }
}

/// A config drive for `node_uuid` (meta_data.json with the node's UUID and
/// `hostname`), packed as the API takes it.
pub fn config_drive(node_uuid: &str, hostname: &str) -> LabResult<String> {
    let drive = ferrite_configdrive::ConfigDrive {
        meta_data: json!({
            "uuid": node_uuid,
            "hostname": hostname,
            "name": hostname,
            "launch_index": 0,
            "availability_zone": "nova",
            "files": [],
            "meta": {},
        }),
        ..Default::default()
    };
    let iso = drive
        .to_iso()
        .map_err(setup("cannot build the config drive"))?;
    Ok(ferrite_configdrive::pack(&iso))
}

/// A raw whole-disk image of `size` bytes whose root holds `hostname`.
pub fn whole_disk_image(
    dir: &Path,
    name: &str,
    size: u64,
    hostname: &str,
) -> LabResult<ferrite_imaging::fixtures::WholeDiskImage> {
    whole_disk_image_with(dir, name, size, hostname, 0)
}

/// [`whole_disk_image`] whose root also holds `payload` bytes of
/// incompressible data (`/var/lib/payload`), so the image is not mostly
/// holes.
pub fn whole_disk_image_with(
    dir: &Path,
    name: &str,
    size: u64,
    hostname: &str,
    payload: u64,
) -> LabResult<ferrite_imaging::fixtures::WholeDiskImage> {
    let path = dir.join(name);
    let mut files = ferrite_imaging::fixtures::root_files(hostname);
    if payload > 0 {
        files.insert("var/lib/payload".into(), noise(payload as usize));
    }
    ferrite_imaging::fixtures::whole_disk_image(&path, size, &files)
        .map_err(setup("cannot build the whole-disk image"))
}

/// `len` pseudo-random bytes (xorshift; only meant not to compress or
/// read as zeros).
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A qcow2 partition image (ext4 root of `size` bytes holding `hostname`).
pub fn partition_image_qcow2(
    dir: &Path,
    name: &str,
    size: u64,
    hostname: &str,
) -> LabResult<PathBuf> {
    let raw = dir.join(format!("{name}.raw"));
    ferrite_imaging::fixtures::ext4_image(
        &raw,
        size,
        &ferrite_imaging::fixtures::root_files(hostname),
    )
    .map_err(setup("cannot build the partition image"))?;
    let qcow2 = dir.join(name);
    ferrite_imaging::fixtures::to_qcow2(&raw, &qcow2)
        .map_err(setup("cannot convert the partition image"))?;
    let _ = std::fs::remove_file(&raw);
    Ok(qcow2)
}
