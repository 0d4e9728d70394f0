//! The `fleet` binary: serves BMCs and writes the enrollment document.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_writes_nodes_json_and_serves_bmcs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let dhcp = dir.path().join("dhcp");
    let _child = Kill(
        std::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
            .args(["--machines", "2", "--disk-gb", "1", "--boot-mode", "bios"])
            .arg("--state-dir")
            .arg(&state)
            .arg("--dhcp-dir")
            .arg(&dhcp)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let nodes_path = state.join("nodes.json");
    let mut nodes = None;
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(&nodes_path) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                nodes = Some(v);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let nodes = nodes.expect("nodes.json was not written");
    let list = nodes["nodes"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(dhcp.is_dir());
    assert_eq!(list[1]["properties"]["capabilities"], "boot_mode:bios");
    let info = &list[1]["driver_info"];
    let url = format!(
        "{}{}",
        info["redfish_address"].as_str().unwrap(),
        info["redfish_system_id"].as_str().unwrap()
    );
    let system: serde_json::Value = reqwest::Client::new()
        .get(url)
        .basic_auth("admin", Some("password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(system["Name"], "fleet-1");
    assert_eq!(system["PowerState"], "Off");
    assert_eq!(system["Boot"]["BootSourceOverrideMode"], "Legacy");
}
