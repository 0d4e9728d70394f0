//! Netboot through the firmware, with configs rendered as the conductor's
//! pxe/ipxe boot interfaces render them (upstream's templates), and the
//! agent start observed through a recording launcher.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{HttpFiles, RecordingLauncher, TftpServer, TftpServerOptions};
use ferrite_agent::AgentEvent;
use ferrite_fleet::{BootMode, Machine, MachineState};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);
const API: &str = "http://127.0.0.1:6385";

async fn wait_agent(machine: &Machine) -> String {
    match machine
        .wait_for(WAIT, |s| {
            !matches!(s, MachineState::Netbooting | MachineState::Off)
        })
        .await
    {
        Ok(MachineState::AgentRunning { callback_url }) => callback_url,
        other => panic!("machine did not start its agent: {other:?}"),
    }
}

fn tftp_options(bootfile: &str) -> serde_json::Value {
    json!([
        {"opt_name": "67", "opt_value": bootfile, "ip_version": 4},
        {"opt_name": "210", "opt_value": "/tftpboot/", "ip_version": 4},
        {"opt_name": "66", "opt_value": "127.0.0.1", "ip_version": 4},
        {"opt_name": "150", "opt_value": "127.0.0.1", "ip_version": 4},
        {"opt_name": "server-ip-address", "opt_value": "127.0.0.1", "ip_version": 4},
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pxe_bios_boots_pxelinux_config_and_starts_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let tftp_root = dir.path().join("tftpboot");
    let launcher = RecordingLauncher::default();
    let mut config = common::config(1, dir.path(), &launcher);
    config.boot_mode = BootMode::Bios;
    let tftp = TftpServer::start(TftpServerOptions::new(&tftp_root)).await;
    config.tftp_port = tftp.addr.port();
    let dhcp_dir = config.dhcp_dir.clone();
    let fleet = common::start(config).await;
    let machine = &fleet.machines()[0];
    let mac = machine.macs()[0].clone();
    let hyphens = mac.replace(':', "-");
    let node = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123";

    common::write(&tftp_root.join("pxelinux.0"), b"pxelinux");
    common::write(
        &tftp_root.join(format!("{node}/deploy_kernel")),
        vec![1u8; 3000],
    );
    common::write(
        &tftp_root.join(format!("{node}/deploy_ramdisk")),
        vec![2u8; 5000],
    );
    common::write(
        &tftp_root.join(format!("pxelinux.cfg/01-{hyphens}")),
        format!(
            "default deploy\n\nlabel deploy\nkernel {node}/deploy_kernel\n\
             append initrd={node}/deploy_ramdisk selinux=0 troubleshoot=0 text nofb vga=normal ipa-api-url={API}\n\
             ipappend 2\n\n\
             label boot_whole_disk\nCOM32 chain.c32\nappend mbr:0x12345678\n\n\
             label boot_ramdisk\nkernel {node}/kernel\nappend initrd={node}/ramdisk root=/dev/ram0 text\n"
        ),
    );
    common::write(
        &dhcp_dir.join(format!("{mac}.json")),
        tftp_options("pxelinux.0").to_string(),
    );

    machine.power_on().await;
    let callback = wait_agent(machine).await;
    let launches = launcher.launches();
    assert_eq!(launches.len(), 1);
    assert_eq!(callback, launches[0].callback_url);
    let system = ferrite_fleet::redfish::system_json(machine);
    assert_eq!(system["Oem"]["Ferrite"]["MachineState"], "agent_running");
    assert_eq!(system["Oem"]["Ferrite"]["CallbackUrl"], callback.as_str());
    assert_eq!(system["PowerState"], "On");
    assert_eq!(
        launches[0].config.cmdline,
        format!(
            "initrd={node}/deploy_ramdisk selinux=0 troubleshoot=0 text nofb vga=normal \
             ipa-api-url={API} BOOTIF=01-{hyphens}"
        )
    );
    assert_eq!(launches[0].config.hardware.boot_mode, "bios");
    assert_eq!(launches[0].config.listen.port(), 0);
    assert_eq!(
        tftp.requests(),
        vec![
            "pxelinux.0".to_string(),
            format!("pxelinux.cfg/01-{hyphens}"),
            format!("{node}/deploy_kernel"),
            format!("{node}/deploy_ramdisk"),
        ]
    );

    // Power off stops the agent.
    machine.power_off().await;
    assert_eq!(machine.state(), MachineState::Off);
    assert_eq!(launcher.stops(), vec![callback]);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pxe_uefi_boots_grub_config() {
    let dir = tempfile::tempdir().unwrap();
    let tftp_root = dir.path().join("tftpboot");
    let launcher = RecordingLauncher::default();
    let mut config = common::config(1, dir.path(), &launcher);
    config.nics_per_machine = 2;
    let tftp = TftpServer::start(TftpServerOptions::new(&tftp_root)).await;
    config.tftp_port = tftp.addr.port();
    let dhcp_dir = config.dhcp_dir.clone();
    let fleet = common::start(config).await;
    let machine = &fleet.machines()[0];
    // Only the second NIC is known to DHCP: the firmware tries NICs in order.
    let mac = machine.macs()[1].clone();
    let hyphens = mac.replace(':', "-");
    let node = "5e0d4bf0-74cf-4a7b-a4d4-64a1a1f2b7aa";

    common::write(&tftp_root.join("bootx64.efi"), b"shim");
    common::write(&tftp_root.join(format!("{node}/deploy_kernel")), b"kernel");
    common::write(
        &tftp_root.join(format!("{node}/deploy_ramdisk")),
        b"ramdisk",
    );
    common::write(
        &tftp_root.join(format!("grub.cfg-01-{hyphens}")),
        format!(
            "set default=deploy\nset timeout=5\nset hidden_timeout_quiet=false\n\n\
             menuentry \"deploy\"  {{\n    linuxefi {node}/deploy_kernel selinux=0 troubleshoot=0 text \
             ipa-api-url={API} boot_server=127.0.0.1\n    initrdefi {node}/deploy_ramdisk\n}}\n\n\
             menuentry \"boot_ramdisk\"  {{\n    linuxefi {node}/kernel root=/dev/ram0 text\n    \
             initrdefi {node}/ramdisk\n}}\n"
        ),
    );
    common::write(
        &dhcp_dir.join(format!("{mac}.json")),
        tftp_options("bootx64.efi").to_string(),
    );

    machine.power_on().await;
    wait_agent(machine).await;
    let launches = launcher.launches();
    assert_eq!(
        launches[0].config.cmdline,
        format!(
            "selinux=0 troubleshoot=0 text ipa-api-url={API} boot_server=127.0.0.1 BOOTIF=01-{hyphens}"
        )
    );
    assert_eq!(launches[0].config.hardware.boot_mode, "uefi");
    assert_eq!(
        tftp.requests(),
        vec![
            "bootx64.efi".to_string(),
            format!("grub.cfg-01-{hyphens}"),
            format!("{node}/deploy_kernel"),
            format!("{node}/deploy_ramdisk"),
        ]
    );
    fleet.stop().await;
    // Stopping the fleet powers machines off.
    assert_eq!(launcher.stops().len(), 1);
}

const BOOT_IPXE: &str = r#"#!ipxe

set netid:int32 -1
:loop
inc netid || chain pxelinux.cfg/${mac:hexhyp} || goto old_rom
isset ${net${netid}/mac} || goto loop_done
echo Attempting to boot from MAC ${net${netid}/mac:hexhyp}
chain pxelinux.cfg/${net${netid}/mac:hexhyp} || goto loop

echo Exiting pxe config to allow boot to continue on next device
exit 0

:loop_done
echo PXE boot failed! No configuration found for any of the present NICs.
prompt --timeout 180
reboot

:old_rom
echo PXE boot failed! No configuration found for NIC ${mac:hexhyp}.
prompt --timeout 180
reboot
"#;

fn ipxe_config(http: &str, node: &str) -> String {
    format!(
        "#!ipxe\n\nset attempts:int32 10\nset i:int32 0\n\ngoto deploy\n\n:deploy\nimgfree\n\
         kernel {http}/{node}/deploy_kernel selinux=0 troubleshoot=0 text nofb ipa-api-url={API} \
         BOOTIF=${{mac}} initrd=deploy_ramdisk || goto retry\n\n\
         initrd {http}/{node}/deploy_ramdisk || goto retry\nboot\n\n\
         :retry\niseq ${{i}} ${{attempts}} && goto fail ||\ninc i\necho No response, retrying in ${{i}} seconds.\n\
         sleep ${{i}}\ngoto deploy\n\n:fail\necho Failed\nsleep 30\npoweroff\n\n\
         :boot_whole_disk\nsanboot --no-describe || exit 0\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipxe_chainloads_and_boots_the_per_mac_script() {
    let dir = tempfile::tempdir().unwrap();
    let tftp_root = dir.path().join("tftpboot");
    let http_root = dir.path().join("httpboot");
    std::fs::create_dir_all(&http_root).unwrap();
    let launcher = RecordingLauncher::default();
    let mut config = common::config(1, dir.path(), &launcher);
    config.nics_per_machine = 2;
    let tftp = TftpServer::start(TftpServerOptions::new(&tftp_root)).await;
    let http = HttpFiles::start(&http_root).await;
    config.tftp_port = tftp.addr.port();
    let dhcp_dir = config.dhcp_dir.clone();
    let fleet = common::start(config).await;
    let machine = &fleet.machines()[0];
    let macs = machine.macs();
    // The second NIC has the DHCP offer and the config: boot.ipxe's loop
    // tries net0 first (404) and then net1.
    let mac = macs[1].clone();
    let hyphens = mac.replace(':', "-");
    let node = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

    common::write(&tftp_root.join("snponly.efi"), b"ipxe");
    common::write(&http_root.join("boot.ipxe"), BOOT_IPXE);
    common::write(
        &http_root.join(format!("pxelinux.cfg/{hyphens}")),
        ipxe_config(&http.url, node),
    );
    common::write(&http_root.join(format!("{node}/deploy_kernel")), b"k");
    common::write(&http_root.join(format!("{node}/deploy_ramdisk")), b"r");
    let mut options = tftp_options("snponly.efi");
    let list = options.as_array_mut().unwrap();
    list[0] = json!({"opt_name": "tag:!ipxe,67", "opt_value": "snponly.efi", "ip_version": 4});
    list.insert(
        1,
        json!({"opt_name": "tag:ipxe,67", "opt_value": format!("{}/boot.ipxe", http.url), "ip_version": 4}),
    );
    common::write(&dhcp_dir.join(format!("{mac}.json")), options.to_string());

    machine.power_on().await;
    wait_agent(machine).await;
    let launches = launcher.launches();
    assert_eq!(
        launches[0].config.cmdline,
        format!(
            "selinux=0 troubleshoot=0 text nofb ipa-api-url={API} BOOTIF={mac} initrd=deploy_ramdisk"
        )
    );
    assert_eq!(tftp.requests(), vec!["snponly.efi".to_string()]);
    assert_eq!(
        http.requests(),
        vec![
            "boot.ipxe".to_string(),
            format!("pxelinux.cfg/{}", macs[0].replace(':', "-")),
            format!("pxelinux.cfg/{hyphens}"),
            format!("{node}/deploy_kernel"),
            format!("{node}/deploy_ramdisk"),
        ]
    );
    fleet.stop().await;
    http.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netboot_fails_without_dhcp_options() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = RecordingLauncher::default();
    let fleet = common::start(common::config(1, dir.path(), &launcher)).await;
    let machine = &fleet.machines()[0];
    machine.power_on().await;
    let state = machine
        .wait_for(WAIT, |s| matches!(s, MachineState::NetbootFailed(_)))
        .await
        .unwrap();
    let MachineState::NetbootFailed(reason) = state else {
        unreachable!()
    };
    assert!(reason.contains("no DHCP offer"), "{reason}");
    assert!(reason.contains(&machine.macs()[0]), "{reason}");
    assert!(launcher.launches().is_empty());
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netboot_fails_when_the_config_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let tftp_root = dir.path().join("tftpboot");
    let launcher = RecordingLauncher::default();
    let mut config = common::config(1, dir.path(), &launcher);
    let tftp = TftpServer::start(TftpServerOptions::new(&tftp_root)).await;
    config.tftp_port = tftp.addr.port();
    let dhcp_dir = config.dhcp_dir.clone();
    let fleet = common::start(config).await;
    let machine = &fleet.machines()[0];
    let mac = machine.macs()[0].clone();
    common::write(&tftp_root.join("bootx64.efi"), b"shim");
    common::write(
        &dhcp_dir.join(format!("{mac}.json")),
        tftp_options("bootx64.efi").to_string(),
    );
    machine.power_on().await;
    let state = machine
        .wait_for(WAIT, |s| matches!(s, MachineState::NetbootFailed(_)))
        .await
        .unwrap();
    let MachineState::NetbootFailed(reason) = state else {
        unreachable!()
    };
    assert!(reason.contains("no boot configuration"), "{reason}");
    // With option 210, the prefixed name is tried too.
    let hyphens = mac.replace(':', "-");
    assert!(tftp
        .requests()
        .contains(&format!("/tftpboot/grub.cfg-01-{hyphens}")));
    fleet.stop().await;
}

/// A machine with a ready netboot setup (BIOS pxelinux).
async fn ready_machine(
    dir: &std::path::Path,
    launcher: &RecordingLauncher,
) -> (ferrite_fleet::Fleet, TftpServer) {
    let tftp_root = dir.join("tftpboot");
    let mut config = common::config(1, dir, launcher);
    config.boot_mode = BootMode::Bios;
    let tftp = TftpServer::start(TftpServerOptions::new(&tftp_root)).await;
    config.tftp_port = tftp.addr.port();
    let dhcp_dir = config.dhcp_dir.clone();
    let fleet = common::start(config).await;
    let mac = fleet.machines()[0].macs()[0].clone();
    common::write(&tftp_root.join("pxelinux.0"), b"p");
    common::write(&tftp_root.join("n/deploy_kernel"), b"k");
    common::write(&tftp_root.join("n/deploy_ramdisk"), b"r");
    common::write(
        &tftp_root.join(format!("pxelinux.cfg/01-{}", mac.replace(':', "-"))),
        format!("default deploy\nlabel deploy\nkernel n/deploy_kernel\nappend initrd=n/deploy_ramdisk ipa-api-url={API}\nipappend 2\n"),
    );
    common::write(
        &dhcp_dir.join(format!("{mac}.json")),
        tftp_options("pxelinux.0").to_string(),
    );
    (fleet, tftp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_power_off_request_powers_the_machine_off() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = RecordingLauncher::default();
    let (fleet, _tftp) = ready_machine(dir.path(), &launcher).await;
    let machine = &fleet.machines()[0];
    machine.power_on().await;
    let callback = wait_agent(machine).await;
    launcher.launches()[0]
        .events
        .send(AgentEvent::PowerOff)
        .unwrap();
    machine
        .wait_for(WAIT, |s| *s == MachineState::Off)
        .await
        .unwrap();
    assert_eq!(launcher.stops(), vec![callback]);
    assert_eq!(machine.boot_count(), 1);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_reboot_request_boots_again() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = RecordingLauncher::default();
    let (fleet, _tftp) = ready_machine(dir.path(), &launcher).await;
    let machine = &fleet.machines()[0];
    machine.power_on().await;
    let first = wait_agent(machine).await;
    launcher.launches()[0]
        .events
        .send(AgentEvent::Reboot)
        .unwrap();
    // Blank disk: the default boot order falls back to the network, and a
    // second agent starts.
    let second = machine
        .wait_for(
            WAIT,
            |s| matches!(s, MachineState::AgentRunning { callback_url } if *callback_url != first),
        )
        .await
        .unwrap();
    assert!(matches!(second, MachineState::AgentRunning { .. }));
    assert_eq!(machine.boot_count(), 2);
    assert_eq!(launcher.stops(), vec![first]);
    assert_eq!(launcher.launches().len(), 2);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_that_fails_to_start_is_a_boot_failure() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = RecordingLauncher::default();
    *launcher.fail.lock().unwrap() = Some("bad cmdline".into());
    let (fleet, _tftp) = ready_machine(dir.path(), &launcher).await;
    let machine = &fleet.machines()[0];
    machine.power_on().await;
    let state = machine
        .wait_for(WAIT, |s| matches!(s, MachineState::BootFailed(_)))
        .await
        .unwrap();
    assert_eq!(
        state,
        MachineState::BootFailed("the deploy agent did not start: bad cmdline".into())
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_off_during_netboot_discards_the_boot() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = RecordingLauncher::default();
    let mut config = common::config(1, dir.path(), &launcher);
    // A TFTP "server" that never answers: each netboot takes
    // (retries + 1) * timeout = 800 ms before failing.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    config.tftp_port = silent.local_addr().unwrap().port();
    let dhcp_dir = config.dhcp_dir.clone();
    let fleet = common::start(config).await;
    let machine = &fleet.machines()[0];
    let mac = machine.macs()[0].clone();
    common::write(
        &dhcp_dir.join(format!("{mac}.json")),
        tftp_options("bootx64.efi").to_string(),
    );
    machine.power_on().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(machine.state(), MachineState::Netbooting);
    machine.power_off().await;
    assert_eq!(machine.state(), MachineState::Off);
    // The abandoned netboot times out later without touching the state.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(machine.state(), MachineState::Off);
    // A new power-on boots again and its own failure is reported.
    machine.power_on().await;
    let state = machine
        .wait_for(WAIT, |s| matches!(s, MachineState::NetbootFailed(_)))
        .await
        .unwrap();
    let MachineState::NetbootFailed(reason) = state else {
        unreachable!()
    };
    assert!(reason.contains("timed out"), "{reason}");
    assert_eq!(machine.boot_count(), 2);
    fleet.stop().await;
}

/// With the real agent (ferrite_agent::start) instead of the recording
/// launcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_agent_starts_after_netboot() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = RecordingLauncher::default();
    let (fleet, _tftp) = {
        // Same setup as ready_machine, with the default launcher.
        let tftp_root = dir.path().join("tftpboot");
        let mut config = common::config(1, dir.path(), &launcher);
        config.launcher = std::sync::Arc::new(ferrite_fleet::InProcessAgents);
        config.boot_mode = BootMode::Bios;
        let tftp = TftpServer::start(TftpServerOptions::new(&tftp_root)).await;
        config.tftp_port = tftp.addr.port();
        let dhcp_dir = config.dhcp_dir.clone();
        let fleet = common::start(config).await;
        let mac = fleet.machines()[0].macs()[0].clone();
        common::write(&tftp_root.join("pxelinux.0"), b"p");
        common::write(&tftp_root.join("n/deploy_kernel"), b"k");
        common::write(&tftp_root.join("n/deploy_ramdisk"), b"r");
        common::write(
            &tftp_root.join(format!("pxelinux.cfg/01-{}", mac.replace(':', "-"))),
            format!("default deploy\nlabel deploy\nkernel n/deploy_kernel\nappend initrd=n/deploy_ramdisk ipa-api-url={API}\nipappend 2\n"),
        );
        common::write(
            &dhcp_dir.join(format!("{mac}.json")),
            tftp_options("pxelinux.0").to_string(),
        );
        (fleet, tftp)
    };
    let machine = &fleet.machines()[0];
    machine.power_on().await;
    let callback = wait_agent(machine).await;
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    machine.power_off().await;
    assert_eq!(machine.state(), MachineState::Off);
    fleet.stop().await;
}
