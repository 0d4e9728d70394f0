//! `ferrite up --fleet N` with simulated hardware: machines with Redfish
//! BMCs that netboot the deploy agent from the conductor's TFTP/HTTP boot
//! servers, enrolled as `redfish` + `ipxe` + `direct` nodes, and the demo
//! image those deploys write.

use std::path::Path;
use std::time::Duration;

use ferrite_baremetal_client::BaremetalClient;
use ferrite_conductor::config::DeployConfig;
use ferrite_fleet::{Fleet, FleetConfig};
use serde_json::{json, Value};

/// Size of the demo image (a sparse raw whole-disk image).
const DEMO_IMAGE_BYTES: u64 = 64 << 20;
/// Every simulated node's resource class (the demo flavor asks for it).
pub const RESOURCE_CLASS: &str = "baremetal";
/// How long bringing one machine to `available` (cleaning included) may take.
const AVAILABLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Puts the conductor's boot and image directories under the data
/// directory (unless a config file chose others) and, for a simulated
/// fleet, starts its TFTP and HTTP boot servers on free ports of `address`.
pub fn deploy_config(
    deploy: &mut DeployConfig,
    dir: &Path,
    address: &str,
    api_url: &str,
    simulated: bool,
) {
    let defaults = DeployConfig::default();
    if deploy.tftp_root == defaults.tftp_root {
        deploy.tftp_root = dir.join("tftpboot");
    }
    if deploy.http_root == defaults.http_root {
        deploy.http_root = dir.join("httpboot");
    }
    if deploy.dhcp_dir == defaults.dhcp_dir {
        deploy.dhcp_dir = dir.join("dhcp");
    }
    if deploy.image_cache_dir == defaults.image_cache_dir {
        deploy.image_cache_dir = dir.join("image-cache");
    }
    if simulated {
        if deploy.tftp_bind.is_none() {
            deploy.tftp_bind = Some(format!("{address}:0"));
        }
        if deploy.http_bind.is_none() {
            deploy.http_bind = Some(format!("{address}:0"));
        }
        // The simulated machines all netboot from `address`: one client
        // for the TFTP server's per-client cap.
        if deploy.tftp_max_transfers_per_client == defaults.tftp_max_transfers_per_client {
            deploy.tftp_max_transfers_per_client = deploy.tftp_max_transfers;
        }
    }
    if deploy.api_url.is_none() {
        deploy.api_url = Some(api_url.to_string());
    }
    // The deploy kernel and ramdisk `up` writes are file:// URLs.
    let images = dir.join(crate::lab::DEPLOY_IMAGES_DIR);
    if !deploy.file_url_allowed_paths.contains(&images) {
        deploy.file_url_allowed_paths.push(images);
    }
}

/// Starts `machines` simulated machines (state under `dir/fleet`, kept
/// across restarts) that netboot from the conductor described by `deploy`.
pub async fn start(dir: &Path, machines: usize, deploy: &DeployConfig) -> Result<Fleet, String> {
    let tftp = deploy
        .tftp_bind
        .as_deref()
        .ok_or("the conductor runs no TFTP server")?;
    let tftp_port = tftp
        .parse::<std::net::SocketAddr>()
        .map_err(|e| format!("bad TFTP address {tftp}: {e}"))?
        .port();
    let mut config = FleetConfig::new(machines, dir.join("fleet"));
    config.dhcp_dir = deploy.dhcp_dir.clone();
    config.tftp_port = tftp_port;
    Fleet::start(config)
        .await
        .map_err(|e| format!("starting the simulated fleet: {e}"))
}

/// The node document enrolling inventory entry `entry` of machine `uuid`
/// (the lab's, with the `baremetal` resource class).
fn node_body(entry: &Value, uuid: &str, kernel: &Path, ramdisk: &Path) -> Value {
    let mut node = crate::lab::node_document(entry, uuid, "ipxe", kernel, ramdisk);
    if let Some(map) = node.as_object_mut() {
        map.insert("resource_class".into(), json!(RESOURCE_CLASS));
    }
    node
}

/// Enrolls every machine of `fleet` that is not a node yet (node UUID =
/// machine UUID, name = machine name), points existing nodes at their
/// BMC's current address, and brings all of them to `available`
/// (cleaning through the agent), concurrently.
pub async fn enroll(api: &BaremetalClient, fleet: &Fleet, dir: &Path) -> Result<(), String> {
    let (kernel, ramdisk) = crate::lab::deploy_images(dir)
        .map_err(|e| format!("cannot write the deploy images in {}: {e}", dir.display()))?;
    let inventory = fleet.inventory();
    let mut names = Vec::new();
    for (index, machine) in fleet.machines().iter().enumerate() {
        let entry = inventory["nodes"]
            .get(index)
            .ok_or_else(|| format!("no inventory entry for {}", machine.name()))?;
        let name = machine.name().to_string();
        match api.get_node(machine.uuid()).await {
            Ok(node) => {
                // The BMC's address changes with every start; the deploy
                // images moved to their own directory once.
                let wanted = [
                    (
                        "redfish_address",
                        entry["driver_info"]["redfish_address"].clone(),
                    ),
                    (
                        "deploy_kernel",
                        json!(format!("file://{}", kernel.display())),
                    ),
                    (
                        "deploy_ramdisk",
                        json!(format!("file://{}", ramdisk.display())),
                    ),
                ];
                let patch: Vec<Value> = wanted
                    .iter()
                    .filter(|(key, value)| &node["driver_info"][*key] != value)
                    .map(|(key, value)| {
                        json!({"op": "add", "path": format!("/driver_info/{key}"), "value": value})
                    })
                    .collect();
                if !patch.is_empty() {
                    api.patch_node(machine.uuid(), &Value::Array(patch))
                        .await
                        .map_err(|e| format!("updating the driver_info of {name}: {e}"))?;
                }
            }
            Err(err) if err.status() == Some(404) => {
                api.create_node(&node_body(entry, machine.uuid(), &kernel, &ramdisk))
                    .await
                    .map_err(|e| format!("enrolling {name}: {e}"))?;
                for mac in machine.macs() {
                    api.create_port(
                        &json!({"address": mac, "node_uuid": machine.uuid(), "pxe_enabled": true}),
                    )
                    .await
                    .map_err(|e| format!("port {mac} of {name}: {e}"))?;
                }
            }
            Err(err) => return Err(format!("looking up {name}: {err}")),
        }
        names.push((name, machine.uuid().to_string()));
    }
    let results = futures::future::join_all(
        names
            .iter()
            .map(|(name, uuid)| make_available(api, name, uuid)),
    )
    .await;
    results.into_iter().collect()
}

/// manage (when enrolled), provide (when manageable), and wait for
/// `available`; nodes in other states are left as they are.
async fn make_available(api: &BaremetalClient, name: &str, uuid: &str) -> Result<(), String> {
    let node = api
        .get_node(uuid)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let state = node["provision_state"].as_str().unwrap_or("").to_string();
    let steps: &[(&str, &str)] = match state.as_str() {
        "enroll" => &[("manage", "manageable"), ("provide", "available")],
        "manageable" | "clean failed" => &[("provide", "available")],
        _ => &[],
    };
    if state == "clean failed" {
        api.set_provision_state(uuid, "manage", None)
            .await
            .map_err(|e| format!("manage {name}: {e}"))?;
        api.wait_for_provision_state(uuid, "manageable", AVAILABLE_TIMEOUT)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
    }
    for (target, wanted) in steps {
        api.set_provision_state(uuid, target, None)
            .await
            .map_err(|e| format!("{target} {name}: {e}"))?;
        api.wait_for_provision_state(uuid, wanted, AVAILABLE_TIMEOUT)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// Builds the demo image in the HTTP boot server's `images/` (once) and
/// returns its URL and sha256.
pub fn demo_image(deploy: &DeployConfig) -> Result<(String, String), String> {
    let http_url = deploy
        .http_url
        .as_deref()
        .ok_or("the conductor runs no HTTP boot server")?;
    let images = deploy.http_root.join("images");
    std::fs::create_dir_all(&images)
        .map_err(|e| format!("cannot create {}: {e}", images.display()))?;
    let path = images.join(crate::demo_image::FILE);
    if !path.exists() {
        let partial = images.join(format!("{}.partial", crate::demo_image::FILE));
        ferrite_imaging::fixtures::tool_free_whole_disk_image(&partial, DEMO_IMAGE_BYTES)
            .map_err(|e| format!("building the demo image: {e}"))?;
        std::fs::rename(&partial, &path)
            .map_err(|e| format!("cannot move the demo image into place: {e}"))?;
    }
    let sha256 = ferrite_imaging::fixtures::file_digest(&path, "sha256")
        .map_err(|e| format!("checksumming the demo image: {e}"))?;
    Ok((
        format!(
            "{}/images/{}",
            http_url.trim_end_matches('/'),
            crate::demo_image::FILE
        ),
        sha256,
    ))
}
