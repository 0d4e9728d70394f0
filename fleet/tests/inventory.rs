//! Machines on disk and the enrollment document.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::RecordingLauncher;
use ferrite_fleet::{mac_address, BootMode, Fleet, FleetConfig, MachineState};
use ferrite_imaging::hardware::Hardware;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_is_a_baremetal_create_document() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = RecordingLauncher::default();
    let mut config = common::config(3, dir.path(), &launcher);
    config.nics_per_machine = 2;
    config.boot_mode = BootMode::Bios;
    config.cpus = 8;
    config.memory_mb = 16384;
    config.disk_sizes = vec![20 << 30, 8 << 30];
    config.username = "root".into();
    config.password = "calvin".into();
    let fleet = common::start(config).await;
    let inventory = fleet.inventory();
    let nodes = inventory["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let mut macs = HashSet::new();
    for (i, (node, machine)) in nodes.iter().zip(fleet.machines()).enumerate() {
        assert_eq!(node["name"], format!("fleet-{i}"));
        assert_eq!(node["driver"], "redfish");
        let info = &node["driver_info"];
        assert_eq!(info["redfish_address"], machine.bmc_url());
        assert!(machine.bmc_url().starts_with("http://127.0.0.1:"));
        assert_eq!(
            info["redfish_system_id"],
            format!("/redfish/v1/Systems/{}", machine.uuid())
        );
        assert_eq!(info["redfish_username"], "root");
        assert_eq!(info["redfish_password"], "calvin");
        let props = &node["properties"];
        assert_eq!(props["cpus"], 8);
        assert_eq!(props["memory_mb"], 16384);
        // The smallest disk (8 GiB) minus 1 GiB.
        assert_eq!(props["local_gb"], 7);
        assert_eq!(props["cpu_arch"], "x86_64");
        assert_eq!(props["capabilities"], "boot_mode:bios");
        let ports = node["ports"].as_array().unwrap();
        assert_eq!(ports.len(), 2);
        for (n, port) in ports.iter().enumerate() {
            let mac = port["address"].as_str().unwrap();
            assert_eq!(mac, mac_address([0x52, 0x54, 0x00], 2, i, n));
            assert!(macs.insert(mac.to_string()), "duplicate MAC {mac}");
        }
    }
    fleet.stop().await;
}

#[test]
fn macs_are_deterministic_and_lower_case() {
    assert_eq!(
        mac_address([0x52, 0x54, 0x00], 1, 0, 0),
        "52:54:00:00:00:00"
    );
    assert_eq!(
        mac_address([0xAA, 0x54, 0x0B], 2, 300, 1),
        "aa:54:0b:00:02:59"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machines_keep_identity_and_disks_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = RecordingLauncher::default();
    let fleet = common::start(common::config(2, dir.path(), &launcher)).await;
    let uuids: Vec<String> = fleet
        .machines()
        .iter()
        .map(|m| m.uuid().to_string())
        .collect();
    assert_ne!(uuids[0], uuids[1]);
    let machine = &fleet.machines()[0];
    let hw_path = machine.spec().dir.join("hardware.json");
    let hardware: Hardware =
        serde_json::from_str(&std::fs::read_to_string(&hw_path).unwrap()).unwrap();
    assert_eq!(&hardware, machine.hardware());
    assert_eq!(hardware.boot_mode, "uefi");
    assert_eq!(hardware.interfaces[0].mac_address, machine.macs()[0]);
    let disk = &hardware.disks[0];
    assert_eq!(disk.name, "/dev/sda");
    assert_eq!(disk.size, 8 << 30);
    assert_eq!(std::fs::metadata(&disk.path).unwrap().len(), 8 << 30);
    // Something "deployed" on the disk survives a restart of the fleet.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&disk.path)
            .unwrap();
        f.seek(SeekFrom::Start(1 << 20)).unwrap();
        f.write_all(b"deployed").unwrap();
    }
    let disk_path = disk.path.clone();
    fleet.stop().await;

    let again = common::start(common::config(2, dir.path(), &launcher)).await;
    let uuids_again: Vec<String> = again
        .machines()
        .iter()
        .map(|m| m.uuid().to_string())
        .collect();
    assert_eq!(uuids, uuids_again);
    let mut bytes = [0u8; 8];
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&disk_path).unwrap();
        f.seek(SeekFrom::Start(1 << 20)).unwrap();
        f.read_exact(&mut bytes).unwrap();
    }
    assert_eq!(&bytes, b"deployed");
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_bmc_ports_and_bad_configs() {
    let dir = tempfile::tempdir().unwrap();
    // Two consecutive free ports: ask the OS for one, and try again when
    // the next one is taken (other tests bind ephemeral ports meanwhile).
    let launcher = RecordingLauncher::default();
    let mut started = None;
    for attempt in 0..50 {
        let base = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        if base == u16::MAX {
            continue;
        }
        let mut config = common::config(2, &dir.path().join(format!("try{attempt}")), &launcher);
        config.bmc_base_port = Some(base);
        match Fleet::start(config).await {
            Ok(fleet) => {
                started = Some((fleet, base));
                break;
            }
            Err(e) if e.to_string().contains("Address already in use") => continue,
            Err(e) => panic!("fleet with fixed BMC ports: {e}"),
        }
    }
    let (fleet, base) = started.expect("two consecutive free ports in 50 attempts");
    assert_eq!(
        fleet.machines()[0].bmc_url(),
        format!("http://127.0.0.1:{base}")
    );
    assert_eq!(
        fleet.machines()[1].bmc_url(),
        format!("http://127.0.0.1:{}", base + 1)
    );
    // A second fleet on the same ports fails with a clear error.
    let mut clash = common::config(1, &dir.path().join("other"), &launcher);
    clash.bmc_base_port = Some(base);
    let err = Fleet::start(clash).await.err().unwrap();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{base}")),
        "{err}"
    );
    fleet.stop().await;
    let mut no_nic = FleetConfig::new(1, dir.path().join("x"));
    no_nic.nics_per_machine = 0;
    assert!(Fleet::start(no_nic).await.is_err());
}

/// Disk boot: a GPT disk with an EFI system partition holding a UEFI
/// bootloader boots the instance. Needs the real ferrite-imaging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootable_disk_boots_the_instance() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = RecordingLauncher::default();
    let mut config = common::config(1, dir.path(), &launcher);
    config.disk_sizes = vec![256 << 20];
    let fleet = common::start(config).await;
    let machine = &fleet.machines()[0];
    let disk = machine.hardware().disks[0].path.clone();
    let run = |cmd: &str, args: &[&str]| {
        let status = std::process::Command::new(cmd).args(args).status().unwrap();
        assert!(status.success(), "{cmd} {args:?}");
    };
    let disk_s = disk.to_str().unwrap();
    run(
        "sgdisk",
        &[
            "-n",
            "1:2048:+64M",
            "-t",
            "1:EF00",
            "-n",
            "2:0:0",
            "-t",
            "2:8300",
            disk_s,
        ],
    );
    let esp = dir.path().join("esp.img");
    run("truncate", &["-s", "64M", esp.to_str().unwrap()]);
    run("mkfs.vfat", &[esp.to_str().unwrap()]);
    run(
        "mmd",
        &["-i", esp.to_str().unwrap(), "::/EFI", "::/EFI/BOOT"],
    );
    let loader = dir.path().join("BOOTX64.EFI");
    std::fs::write(&loader, b"MZ loader").unwrap();
    run(
        "mcopy",
        &[
            "-i",
            esp.to_str().unwrap(),
            loader.to_str().unwrap(),
            "::/EFI/BOOT/BOOTX64.EFI",
        ],
    );
    run(
        "dd",
        &[
            &format!("if={}", esp.display()),
            &format!("of={disk_s}"),
            "bs=512",
            "seek=2048",
            "conv=notrunc",
            "status=none",
        ],
    );
    machine.power_on().await;
    let state = machine
        .wait_for(Duration::from_secs(10), |s| *s != MachineState::Netbooting)
        .await
        .unwrap();
    assert_eq!(state, MachineState::RunningInstance);
    assert!(launcher.launches().is_empty());
    fleet.stop().await;
}
