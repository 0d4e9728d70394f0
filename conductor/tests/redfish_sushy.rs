//! The `redfish` interfaces against upstream's Redfish emulator
//! (sushy-tools, fake driver). Ignored by default: run them with
//! `scripts/redfish-sushy-check`, which starts the emulator and sets
//! `FERRITE_SUSHY_URL`.

mod common;

use std::time::Duration;

use common::TestServer;
use ferrite_conductor::redfish::{self, RedfishClient};
use serde_json::{json, Map, Value};

fn sushy_url() -> String {
    std::env::var("FERRITE_SUSHY_URL").expect(
        "FERRITE_SUSHY_URL must name a running sushy-emulator (scripts/redfish-sushy-check)",
    )
}

/// The emulator's two systems (scripts/sushy-emulator): each test drives
/// its own, since the tests run in parallel and a power change is applied
/// by the fake driver 1-11 s after it was asked for.
const SYSTEM_A: &str = "/redfish/v1/Systems/27946b59-9e44-4fa7-8e91-f3527a1ef094";
const SYSTEM_B: &str = "/redfish/v1/Systems/5c0e1a7e-1d6b-4d2f-9a4e-0b7d8f3c2a61";

fn info(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sushy-emulator (scripts/redfish-sushy-check)"]
async fn client_against_sushy() {
    let url = sushy_url();
    // Without redfish_system_id a BMC that manages two systems is an error
    // that says what to set.
    let ambiguous = RedfishClient::new(
        redfish::parse_driver_info("sushy-node", &info(json!({"redfish_address": url})))
            .expect("valid"),
    )
    .expect("client");
    let err = ambiguous.system_path().await.expect_err("two systems");
    assert!(err.to_string().contains("manages 2 systems"), "{err}");
    let client = RedfishClient::new(
        redfish::parse_driver_info(
            "sushy-node",
            &info(json!({"redfish_address": url, "redfish_system_id": SYSTEM_A})),
        )
        .expect("valid"),
    )
    .expect("client");
    assert_eq!(client.system_path().await.expect("path"), SYSTEM_A);

    client.reset("ForceOff").await.expect("off");
    redfish::wait_for_power_state(
        &client,
        "power off",
        Duration::from_secs(30),
        Duration::from_millis(200),
    )
    .await
    .expect("reached off");
    client.reset("On").await.expect("on");
    redfish::wait_for_power_state(
        &client,
        "power on",
        Duration::from_secs(30),
        Duration::from_millis(200),
    )
    .await
    .expect("reached on");

    client
        .set_boot_override("Pxe", true, Some("UEFI"))
        .await
        .expect("boot override");
    let boot = client.boot_override().await.expect("boot");
    assert_eq!(boot.device.as_deref(), Some("pxe"));
    assert_eq!(boot.persistent, Some(true));
    client
        .set_boot_override("Hdd", false, None)
        .await
        .expect("boot override");
    let boot = client.boot_override().await.expect("boot");
    assert_eq!(boot.device.as_deref(), Some("disk"));
    // (The emulator's fake driver keeps BootSourceOverrideEnabled as it
    // was, so "Once" is not checked here; tests/redfish.rs checks it.)

    // An unknown system is the BMC's 404.
    let mut wrong = info(json!({"redfish_address": sushy_url()}));
    wrong.insert(
        "redfish_system_id".into(),
        json!("/redfish/v1/Systems/nope"),
    );
    let client = RedfishClient::new(redfish::parse_driver_info("n", &wrong).expect("valid"))
        .expect("client");
    let err = client.power_state().await.expect_err("404");
    assert_eq!(err.status(), Some(404), "{err}");
}

async fn settled(server: &TestServer, uuid: &str) -> Value {
    for _ in 0..600 {
        let node = server.client().get_node(uuid).await.expect("node");
        if node["target_power_state"].is_null() && node["reservation"].is_null() {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("power change did not settle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sushy-emulator (scripts/redfish-sushy-check)"]
async fn api_power_and_boot_device_against_sushy() {
    let server = TestServer::start("sqlite").await;
    let client = server.client();
    let node = client
        .create_node(&json!({
            "driver": "redfish",
            "properties": {"capabilities": "boot_mode:uefi"},
            "driver_info": {"redfish_address": sushy_url(), "redfish_system_id": SYSTEM_B},
        }))
        .await
        .expect("create");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    for (target, expected) in [
        ("power off", "power off"),
        ("power on", "power on"),
        ("rebooting", "power on"),
        ("power off", "power off"),
    ] {
        client
            .set_power_state(&uuid, target)
            .await
            .expect("accepted");
        let node = settled(&server, &uuid).await;
        assert_eq!(node["last_error"], Value::Null, "{target}");
        assert_eq!(node["power_state"], expected, "{target}");
    }
    let reply = client
        .raw(
            reqwest::Method::PUT,
            &format!("/v1/nodes/{uuid}/management/boot_device"),
            Some(&json!({"boot_device": "pxe", "persistent": true})),
        )
        .await
        .expect("boot device");
    assert_eq!(reply.status, 204, "{}", reply.body);
    let bmc = RedfishClient::new(
        redfish::parse_driver_info(
            "n",
            &info(json!({"redfish_address": sushy_url(), "redfish_system_id": SYSTEM_B})),
        )
        .expect("valid"),
    )
    .expect("client");
    let boot = bmc.boot_override().await.expect("boot");
    assert_eq!(boot.device.as_deref(), Some("pxe"));
    assert_eq!(boot.persistent, Some(true));
    assert_eq!(boot.mode.as_deref(), Some("UEFI"));
    server.stop().await;
}
