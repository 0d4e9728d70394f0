//! Issue 5 end to end: the conductor (redfish hardware type, pxe/ipxe boot,
//! direct deploy) drives simulated machines (Redfish BMCs, netboot
//! firmware, the in-process deploy agent) through cleaning, deploys and
//! undeploys; the machines' disk files are inspected afterwards with our
//! readers and with the system tools (sfdisk, blkid, debugfs). Every test
//! runs its own lab.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferrite::lab::{self, Enrollment, ImageSpec, Lab, LabOptions};
use ferrite_fleet::MachineState;
use ferrite_imaging::table;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const MIB: u64 = 1 << 20;

fn ipxe() -> Enrollment {
    Enrollment {
        boot_interface: "ipxe".into(),
    }
}

fn pxe() -> Enrollment {
    Enrollment {
        boot_interface: "pxe".into(),
    }
}

fn disk_of(lab: &Lab, index: usize) -> PathBuf {
    lab.machine(index).expect("machine").hardware().disks[0]
        .path
        .clone()
}

/// Runs a tool and returns its stdout; panics with its stderr on failure.
fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `blkid -p -O <offset>` of the partition at `offset`: KEY → value.
fn blkid_at(disk: &Path, offset: u64) -> std::collections::BTreeMap<String, String> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export", "-O", &offset.to_string()])
        .arg(disk)
        .output()
        .expect("blkid");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Copies `size` bytes at `offset` of `disk` into a (sparse) file.
fn extract(disk: &Path, offset: u64, size: u64, to: &Path) {
    let mut src = std::fs::File::open(disk).expect("open disk");
    src.seek(SeekFrom::Start(offset)).expect("seek");
    let mut dst = std::fs::File::create(to).expect("create extract");
    let mut buf = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        src.read_exact(&mut buf[..n]).expect("read disk");
        if buf[..n].iter().all(|b| *b == 0) {
            dst.seek(SeekFrom::Current(n as i64)).expect("skip");
        } else {
            dst.write_all(&buf[..n]).expect("write extract");
        }
        left -= n as u64;
    }
    dst.set_len(size).expect("size extract");
}

/// What a deployed disk holds.
struct Inspected {
    table: table::Table,
    /// (number, LABEL, TYPE) per partition, from blkid.
    probed: Vec<(u32, String, String)>,
    hostname: String,
    meta_data: Value,
}

/// Reads the partition table with our reader and with `sfdisk --json`
/// (they must agree), probes every partition with blkid, reads
/// `/etc/hostname` from the ext4 root with debugfs and the config drive's
/// `openstack/latest/meta_data.json`.
fn inspect(disk: &Path, work: &Path) -> Inspected {
    let table = table::read(disk)
        .expect("read table")
        .expect("the deployed disk has a partition table");
    let sfdisk: Value =
        serde_json::from_str(&tool("sfdisk", &["--json", &disk.display().to_string()]))
            .expect("sfdisk json");
    let parts = sfdisk["partitiontable"]["partitions"]
        .as_array()
        .expect("sfdisk partitions");
    assert_eq!(parts.len(), table.partitions.len(), "sfdisk: {sfdisk}");
    let label = match table.label {
        table::Label::Gpt => "gpt",
        table::Label::Msdos => "dos",
    };
    assert_eq!(sfdisk["partitiontable"]["label"], label);
    for (ours, theirs) in table.partitions.iter().zip(parts) {
        assert_eq!(theirs["start"].as_u64(), Some(ours.start / 512), "{theirs}");
        assert_eq!(theirs["size"].as_u64(), Some(ours.size / 512), "{theirs}");
    }
    let mut probed = Vec::new();
    let mut hostname = None;
    let mut meta_data = None;
    for p in &table.partitions {
        let info = blkid_at(disk, p.start);
        let label = info.get("LABEL").cloned().unwrap_or_default();
        let kind = info.get("TYPE").cloned().unwrap_or_default();
        if label == "root" && kind == "ext4" {
            let root = work.join(format!("root-{}.img", p.number));
            extract(disk, p.start, p.size, &root);
            hostname = Some(tool(
                "debugfs",
                &["-R", "cat /etc/hostname", &root.display().to_string()],
            ));
            let _ = std::fs::remove_file(&root);
        }
        if label == "config-2" {
            let drive = work.join(format!("config-{}.iso", p.number));
            extract(disk, p.start, p.size, &drive);
            let image = std::fs::read(&drive).expect("read config drive");
            let files = ferrite_configdrive::read_iso_files(&image).expect("read config-2");
            let text = files
                .get("openstack/latest/meta_data.json")
                .expect("openstack/latest/meta_data.json on config-2");
            meta_data = Some(serde_json::from_slice(text).expect("meta_data json"));
        }
        probed.push((p.number, label, kind));
    }
    Inspected {
        table,
        probed,
        hostname: hostname.unwrap_or_default(),
        meta_data: meta_data.unwrap_or(Value::Null),
    }
}

/// Puts a GPT with one partition on the machine's disk, so that cleaning
/// (erase_devices_metadata) has something to erase.
fn seed_table(disk: &Path) {
    let size = std::fs::metadata(disk).expect("disk").len();
    let (lo, hi) = table::usable_range(table::Label::Gpt, size);
    let wanted = table::Table {
        label: table::Label::Gpt,
        id: String::new(),
        partitions: vec![table::Partition {
            number: 1,
            start: lo.max(MIB),
            size: (hi - lo.max(MIB)) / MIB * MIB,
            kind: table::GPT_LINUX.into(),
            uuid: String::new(),
            name: Some("old".into()),
            bootable: false,
        }],
    };
    table::write(disk, &wanted).expect("seed table");
    assert!(table::read(disk).expect("read").is_some());
}

fn last_error(node: &Value) -> String {
    node["last_error"].as_str().unwrap_or("").to_string()
}

async fn available(lab: &Lab, index: usize, enrollment: &Enrollment) -> String {
    let uuid = lab.enroll(index, enrollment).await.expect("enroll");
    lab.make_available(&uuid, WAIT)
        .await
        .expect("manage and provide");
    uuid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ipxe_and_pxe_machines_clean_deploy_and_undeploy() {
    let lab = Lab::start(LabOptions::new(2)).await.expect("lab");
    let work = tempfile::tempdir().expect("work dir");
    let disks = [disk_of(&lab, 0), disk_of(&lab, 1)];
    for disk in &disks {
        seed_table(disk);
    }

    // Enroll (redfish + ipxe, redfish + pxe; direct, noop) and provide:
    // cleaning runs erase_devices_metadata through the agent.
    let node_ipxe = lab.enroll(0, &ipxe()).await.expect("enroll ipxe");
    let node_pxe = lab.enroll(1, &pxe()).await.expect("enroll pxe");
    let node = lab.api.get_node(&node_ipxe).await.expect("node");
    assert_eq!(node["driver"], "redfish");
    assert_eq!(node["boot_interface"], "ipxe");
    assert_eq!(node["deploy_interface"], "direct");
    assert_eq!(
        lab.api.get_node(&node_pxe).await.expect("node")["boot_interface"],
        "pxe"
    );
    let (a, b) = tokio::join!(
        lab.make_available(&node_ipxe, WAIT),
        lab.make_available(&node_pxe, WAIT)
    );
    a.expect("ipxe node available");
    b.expect("pxe node available");
    for (i, disk) in disks.iter().enumerate() {
        assert!(
            table::read(disk).expect("read").is_none(),
            "cleaning erased machine {i}'s partition table"
        );
        assert!(lab.machine(i).expect("m").boot_count() >= 1);
        assert_eq!(lab.machine(i).expect("m").state(), MachineState::Off);
    }
    // Netboot left nothing behind for the DHCP server.
    assert_eq!(
        std::fs::read_dir(&lab.dhcp_dir).expect("dhcp dir").count(),
        0
    );

    // A qcow2 partition image (ipxe machine) and a raw whole-disk image
    // (pxe machine), both with a config drive.
    let partition = lab::partition_image_qcow2(work.path(), "root.qcow2", 32 * MIB, "part-host")
        .expect("partition image");
    let partition = ImageSpec::publish(&lab, &partition, "root.qcow2", "qcow2", false)
        .expect("publish partition image");
    let whole = lab::whole_disk_image(work.path(), "whole.raw", 64 * MIB, "whole-host")
        .expect("whole-disk image");
    let whole_spec = ImageSpec::publish(&lab, &whole.path, "whole.raw", "raw", true)
        .expect("publish whole-disk image");
    let drive_ipxe = lab::config_drive(&node_ipxe, "part-host").expect("config drive");
    let drive_pxe = lab::config_drive(&node_pxe, "whole-host").expect("config drive");
    lab.deploy(&node_ipxe, &partition, Some(&drive_ipxe))
        .await
        .expect("deploy partition image");
    lab.deploy(&node_pxe, &whole_spec, Some(&drive_pxe))
        .await
        .expect("deploy whole-disk image");
    let (a, b) = tokio::join!(
        lab.api.wait_for_provision_state(&node_ipxe, "active", WAIT),
        lab.api.wait_for_provision_state(&node_pxe, "active", WAIT)
    );
    a.expect("partition image active");
    b.expect("whole-disk image active");
    for i in 0..2 {
        let state = lab
            .machine(i)
            .expect("m")
            .wait_for(Duration::from_secs(10), |s| {
                *s == MachineState::RunningInstance
            })
            .await;
        assert_eq!(
            state,
            Ok(MachineState::RunningInstance),
            "machine {i} boots the instance from disk"
        );
    }

    // The partition image: a root partition holding our ext4 root, and
    // config-2.
    let got = inspect(&disks[0], work.path());
    assert_eq!(got.hostname, "part-host\n");
    assert_eq!(got.meta_data["uuid"], json!(node_ipxe));
    assert!(
        got.probed
            .iter()
            .any(|(_, l, t)| l == "config-2" && t == "iso9660"),
        "{:?}",
        got.probed
    );
    let root = got
        .probed
        .iter()
        .find(|(_, l, t)| l == "root" && t == "ext4")
        .expect("root partition");
    let root_part = got.table.partition(root.0).expect("root entry");
    assert_eq!(root_part.size, 1 << 30, "root_gb=1: {root_part:?}");
    // UEFI: an EFI system partition for the bootloader.
    assert!(
        got.table.find_kind(table::GPT_ESP).is_some() || got.table.label == table::Label::Msdos,
        "{:?}",
        got.table
    );

    // The whole-disk image: its three partitions where the image had
    // them, the config drive after them.
    let got = inspect(&disks[1], work.path());
    assert_eq!(got.hostname, "whole-host\n");
    assert_eq!(got.meta_data["uuid"], json!(node_pxe));
    assert_eq!(got.table.label, table::Label::Gpt);
    for p in &whole.table.partitions {
        let deployed = got.table.partition(p.number).expect("image partition");
        assert_eq!((deployed.start, deployed.size), (p.start, p.size));
    }
    let labels: Vec<(String, String)> = got
        .probed
        .iter()
        .map(|(_, l, t)| (l.clone(), t.clone()))
        .collect();
    assert!(
        labels.contains(&("EFI-PART".into(), "vfat".into())),
        "{labels:?}"
    );
    assert!(
        labels.contains(&("root".into(), "ext4".into())),
        "{labels:?}"
    );
    let config = got
        .probed
        .iter()
        .find(|(_, l, _)| l == "config-2")
        .expect("config-2 partition");
    let config_part = got.table.partition(config.0).expect("config entry");
    assert!(
        config_part.start >= whole.size,
        "config drive after the image"
    );

    // Undeploy: cleaning again, back to available, disks wiped.
    lab.api
        .set_provision_state(&node_ipxe, "deleted", None)
        .await
        .expect("undeploy");
    lab.api
        .set_provision_state(&node_pxe, "deleted", None)
        .await
        .expect("undeploy");
    let (a, b) = tokio::join!(
        lab.api
            .wait_for_provision_state(&node_ipxe, "available", WAIT),
        lab.api
            .wait_for_provision_state(&node_pxe, "available", WAIT)
    );
    let a = a.expect("ipxe node available again");
    b.expect("pxe node available again");
    assert!(a["instance_info"]
        .as_object()
        .is_none_or(|i| !i.contains_key("image_source")));
    for (i, disk) in disks.iter().enumerate() {
        assert!(
            table::read(disk).expect("read").is_none(),
            "undeploy cleaned machine {i}'s disk"
        );
        assert_eq!(lab.machine(i).expect("m").state(), MachineState::Off);
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checksum_mismatch_fails_the_deploy_then_a_retry_works() {
    let lab = Lab::start(LabOptions::new(1)).await.expect("lab");
    let uuid = available(&lab, 0, &ipxe()).await;
    let image = lab::whole_disk_image(lab.dir(), "img.raw", 48 * MIB, "sum-host").expect("image");
    let good = ImageSpec::publish(&lab, &image.path, "img.raw", "raw", true).expect("publish");
    let mut bad = good.clone();
    bad.sha256 = "0".repeat(64);
    lab.deploy(&uuid, &bad, None).await.expect("deploy");
    let node = lab
        .wait_state(&uuid, "deploy failed", WAIT)
        .await
        .expect("deploy failed");
    let error = last_error(&node).to_lowercase();
    assert!(
        error.contains("checksum") || error.contains("hash"),
        "{error}"
    );
    assert!(
        error.contains(&"0".repeat(64)) || error.contains(&good.sha256),
        "{error}"
    );
    // The ramdisk's network boot is gone (the DHCP options with it).
    assert_eq!(
        std::fs::read_dir(&lab.dhcp_dir).expect("dhcp dir").count(),
        0
    );

    lab.deploy(&uuid, &good, None).await.expect("redeploy");
    let node = lab
        .api
        .wait_for_provision_state(&uuid, "active", WAIT)
        .await
        .expect("active after retry");
    assert!(node["last_error"].is_null(), "{}", node["last_error"]);
    let got = inspect(&disk_of(&lab, 0), lab.dir());
    assert_eq!(got.hostname, "sum-host\n");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_that_never_calls_back_times_out_then_a_retry_works() {
    let mut options = LabOptions::new(1);
    options.callback_timeout_secs = Some(4);
    let lab = Lab::start(options).await.expect("lab");
    // Enrolled with a port whose MAC is not the machine's (a cabling
    // mistake): the machine gets no DHCP offer, no agent ever calls back.
    let mut body = lab.node_body(0, &ipxe()).expect("body");
    body["name"] = json!("miscabled");
    let node = lab.api.create_node(&body).await.expect("create");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    let port = lab
        .api
        .create_port(&json!({"address": "52:54:00:ee:ee:01", "node_uuid": uuid}))
        .await
        .expect("port");
    lab.api
        .set_provision_state(&uuid, "manage", None)
        .await
        .expect("manage");
    lab.api
        .wait_for_provision_state(&uuid, "manageable", WAIT)
        .await
        .expect("manageable");
    lab.api
        .set_provision_state(&uuid, "provide", None)
        .await
        .expect("provide");
    let node = lab
        .wait_state(&uuid, "clean failed", WAIT)
        .await
        .expect("clean failed");
    let error = last_error(&node).to_lowercase();
    assert!(
        error.contains("timeout") || error.contains("timed out"),
        "{error}"
    );
    let machine = lab.machine(0).expect("m");
    assert!(
        matches!(machine.state(), MachineState::NetbootFailed(ref r) if r.contains("DHCP"))
            || machine.state() == MachineState::Off,
        "{:?}",
        machine.state()
    );

    // Fix the port, retry.
    lab.api
        .set_provision_state(&uuid, "manage", None)
        .await
        .expect("manage again");
    lab.api
        .wait_for_provision_state(&uuid, "manageable", WAIT)
        .await
        .expect("manageable again");
    let mac = machine.macs()[0].clone();
    let port_uuid = port["uuid"].as_str().expect("port uuid");
    let reply = lab
        .api
        .raw(
            reqwest::Method::PATCH,
            &format!("/v1/ports/{port_uuid}"),
            Some(&json!([{"op": "replace", "path": "/address", "value": mac}])),
        )
        .await
        .expect("patch port");
    assert_eq!(reply.status, 200, "{}", reply.body);
    lab.api
        .set_provision_state(&uuid, "provide", None)
        .await
        .expect("provide again");
    let node = lab
        .api
        .wait_for_provision_state(&uuid, "available", WAIT)
        .await
        .expect("available after the fix");
    assert!(node["last_error"].is_null(), "{}", node["last_error"]);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_bmc_fails_the_deploy_then_a_retry_works() {
    let lab = Lab::start(LabOptions::new(1)).await.expect("lab");
    let uuid = available(&lab, 0, &pxe()).await;
    let image = lab::whole_disk_image(lab.dir(), "img.raw", 48 * MIB, "bmc-host").expect("image");
    let spec = ImageSpec::publish(&lab, &image.path, "img.raw", "raw", true).expect("publish");
    // A closed port: bound, then released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let good = lab.machine(0).expect("m").bmc_url();
    let set_bmc = |url: String| {
        let api = lab.api.clone();
        let uuid = uuid.clone();
        async move {
            api.patch_node(
                &uuid,
                &json!([{"op": "replace", "path": "/driver_info/redfish_address", "value": url}]),
            )
            .await
            .expect("patch redfish_address")
        }
    };
    set_bmc(format!("http://{closed}")).await;
    lab.deploy(&uuid, &spec, None).await.expect("deploy");
    let node = lab
        .wait_state(&uuid, "deploy failed", WAIT)
        .await
        .expect("deploy failed");
    let error = last_error(&node);
    assert!(error.contains(&closed.to_string()), "{error}");
    assert_eq!(lab.machine(0).expect("m").state(), MachineState::Off);

    set_bmc(good).await;
    lab.deploy(&uuid, &spec, None).await.expect("redeploy");
    lab.api
        .wait_for_provision_state(&uuid, "active", WAIT)
        .await
        .expect("active after the BMC is back");
    assert_eq!(inspect(&disk_of(&lab, 0), lab.dir()).hostname, "bmc-host\n");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disk_too_small_fails_the_deploy_then_a_smaller_root_works() {
    // 5 GiB: above the agent's 4 GiB minimum root device, below the root
    // partition asked for first.
    let mut options = LabOptions::new(1);
    options.disk_sizes = vec![5 << 30];
    let lab = Lab::start(options).await.expect("lab");
    let uuid = available(&lab, 0, &ipxe()).await;
    let image =
        lab::partition_image_qcow2(lab.dir(), "root.qcow2", 32 * MIB, "small-host").expect("image");
    let mut spec = ImageSpec::publish(&lab, &image, "root.qcow2", "qcow2", false).expect("publish");
    spec.root_gb = 8;
    lab.deploy(&uuid, &spec, None).await.expect("deploy");
    let node = lab
        .wait_state(&uuid, "deploy failed", WAIT)
        .await
        .expect("deploy failed");
    let error = last_error(&node);
    assert!(error.contains("too small"), "{error}");
    assert_eq!(node["target_provision_state"], "active");

    spec.root_gb = 2;
    lab.deploy(&uuid, &spec, None).await.expect("redeploy");
    lab.api
        .wait_for_provision_state(&uuid, "active", WAIT)
        .await
        .expect("active with a root that fits");
    let got = inspect(&disk_of(&lab, 0), lab.dir());
    assert_eq!(got.hostname, "small-host\n");
    let root = got
        .probed
        .iter()
        .find(|(_, l, _)| l == "root")
        .and_then(|(n, _, _)| got.table.partition(*n))
        .expect("root partition");
    assert_eq!(root.size, 2 << 30);
    lab.stop().await;
}

async fn heartbeat(lab: &Lab, uuid: &str, token: Option<&str>, callback: &str) -> (u16, Value) {
    let mut body = json!({"callback_url": callback, "agent_version": "9.0.0"});
    if let Some(token) = token {
        body["agent_token"] = json!(token);
    }
    let reply = lab
        .api
        .with_version("1.68")
        .raw(
            reqwest::Method::POST,
            &format!("/v1/heartbeat/{uuid}"),
            Some(&body),
        )
        .await
        .expect("heartbeat request");
    (reply.status, reply.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heartbeats_with_a_wrong_or_missing_agent_token_are_refused() {
    let lab = Lab::start(LabOptions::new(1)).await.expect("lab");
    // No machine answers this port's MAC, so the node waits in clean wait
    // and the test plays the agent.
    let mac = "52:54:00:ee:ee:02";
    let body = lab.node_body(0, &ipxe()).expect("body");
    let node = lab.api.create_node(&body).await.expect("create");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    lab.api
        .create_port(&json!({"address": mac, "node_uuid": uuid}))
        .await
        .expect("port");
    lab.api
        .set_provision_state(&uuid, "manage", None)
        .await
        .expect("manage");
    lab.api
        .wait_for_provision_state(&uuid, "manageable", WAIT)
        .await
        .expect("manageable");
    lab.api
        .set_provision_state(&uuid, "provide", None)
        .await
        .expect("provide");
    lab.wait_state(&uuid, "clean wait", WAIT)
        .await
        .expect("clean wait");

    let lookup = lab
        .api
        .with_version("1.68")
        .raw(
            reqwest::Method::GET,
            &format!("/v1/lookup?addresses={mac}"),
            None,
        )
        .await
        .expect("lookup");
    assert_eq!(lookup.status, 200, "{}", lookup.body);
    assert_eq!(lookup.body["node"]["uuid"], json!(uuid));
    let token = lookup.body["config"]["agent_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_ne!(token, "******");

    let callback = "http://127.0.0.1:9";
    let (status, body) = heartbeat(&lab, &uuid, None, callback).await;
    assert!(
        (400..500).contains(&status),
        "missing token: {status} {body}"
    );
    let (status, body) = heartbeat(&lab, &uuid, Some("not-the-token"), callback).await;
    assert!((400..500).contains(&status), "wrong token: {status} {body}");
    let node = lab.api.get_node(&uuid).await.expect("node");
    assert_eq!(node["provision_state"], "clean wait");
    // The right token is accepted (so the refusals above were about the
    // token).
    let (status, body) = heartbeat(&lab, &uuid, Some(&token), callback).await;
    assert_eq!(status, 202, "right token: {body}");
    lab.stop().await;
}
