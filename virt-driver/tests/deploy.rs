//! Instance lifecycle through the driver against a real conductor.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{claim, new_uuid, Cloud, WAIT};
use ferrite_virt_driver::{IronicDriver, PowerState, SpawnError, SpawnRequest};
use serde_json::json;

const GOLD: &str = "CUSTOM_BAREMETAL_GOLD";

fn request(node: &str, instance: &str) -> SpawnRequest {
    let mut request = SpawnRequest {
        node_uuid: node.into(),
        instance_uuid: instance.into(),
        instance_name: "web-1".into(),
        hostname: "web-1".into(),
        project_id: "project-1".into(),
        user_id: "user-1".into(),
        vifs: vec![new_uuid()],
        user_data: Some("I2Nsb3VkLWNvbmZpZwo=".into()),
        network_data: json!({"links": [], "networks": [], "services": []}),
        ..SpawnRequest::default()
    };
    request.image.id = "image-1".into();
    request.image.url = "http://images.example.com/ubuntu.qcow2".into();
    request.image.disk_format = "qcow2".into();
    request.image.os_hash_algo = Some("sha512".into());
    request.image.os_hash_value = Some("abc123".into());
    request.flavor.name = "baremetal".into();
    request.flavor.root_gb = 100;
    request.flavor.extra_specs = BTreeMap::from([
        (
            "resources:CUSTOM_BAREMETAL_GOLD".to_string(),
            "1".to_string(),
        ),
        ("capabilities:boot_mode".to_string(), "uefi".to_string()),
        ("trait:CUSTOM_RAID".to_string(), "required".to_string()),
    ]);
    request
        .public_keys
        .insert("default".into(), "ssh-ed25519 AAAAC3Nza test".into());
    request
}

async fn reserved(cloud: &Cloud, node: &str) -> i64 {
    let (_, inventories) = cloud
        .placement()
        .get_inventories(node)
        .await
        .expect("inventories");
    inventories[GOLD].reserved
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spawn_power_rebuild_destroy() {
    common::init_logs();
    let cloud = Cloud::start().await;
    let node = cloud
        .available_node("gold", Some("baremetal-gold"), &["CUSTOM_RAID"])
        .await;
    let driver = cloud.driver();
    driver.sync().await.expect("sync");
    assert_eq!(reserved(&cloud, &node).await, 0);

    let instance = new_uuid();
    claim(&cloud.placement(), &node, GOLD, &instance).await;
    let spawn = request(&node, &instance);
    driver.spawn(&spawn).await.expect("spawn");

    let body = cloud.node(&node).await;
    assert_eq!(body["provision_state"], "active");
    assert_eq!(body["instance_uuid"], json!(instance));
    let info = &body["instance_info"];
    assert_eq!(
        info["image_source"],
        "http://images.example.com/ubuntu.qcow2"
    );
    assert_eq!(info["image_os_hash_algo"], "sha512");
    assert_eq!(info["root_gb"], "100");
    assert_eq!(info["capabilities"], "{\"boot_mode\":\"uefi\"}");
    assert_eq!(info["traits"], json!(["CUSTOM_RAID"]));
    assert_eq!(info["display_name"], "web-1");
    assert_eq!(
        cloud.ironic().list_vifs(&node).await.expect("vifs"),
        spawn.vifs
    );

    // In use: reserved, on the next sync.
    let report = driver.sync().await.expect("sync");
    assert_eq!(report.providers_updated, 1, "{report:?}");
    assert_eq!(reserved(&cloud, &node).await, 1);

    // Power.
    let info = driver.get_info(&node).await.expect("info");
    assert_eq!(
        (info.provision_state.as_str(), info.node_uuid.as_str()),
        ("active", node.as_str())
    );
    driver.power_off(&node).await.expect("power off");
    assert_eq!(
        driver.get_info(&node).await.expect("info").power_state,
        PowerState::Shutdown
    );
    driver.power_on(&node).await.expect("power on");
    assert_eq!(
        driver.get_info(&node).await.expect("info").power_state,
        PowerState::Running
    );
    driver.reboot(&node, true).await.expect("soft reboot");
    driver.reboot(&node, false).await.expect("hard reboot");
    assert_eq!(
        driver.get_info(&node).await.expect("info").power_state,
        PowerState::Running
    );

    // Rebuild with another image.
    let mut rebuild = spawn.clone();
    rebuild.image.url = "http://images.example.com/debian.qcow2".into();
    driver.rebuild(&rebuild).await.expect("rebuild");
    let body = cloud.node(&node).await;
    assert_eq!(body["provision_state"], "active");
    assert_eq!(
        body["instance_info"]["image_source"],
        "http://images.example.com/debian.qcow2"
    );

    // Destroy: back to available, instance and VIFs gone; idempotent.
    driver.destroy(&node, &instance).await.expect("destroy");
    let body = cloud
        .ironic()
        .wait_for_provision_state(&node, "available", WAIT)
        .await
        .expect("available");
    assert_eq!(body["instance_uuid"], json!(null));
    assert_eq!(body["instance_info"], json!({}));
    assert!(cloud
        .ironic()
        .list_vifs(&node)
        .await
        .expect("vifs")
        .is_empty());
    driver
        .destroy(&node, &instance)
        .await
        .expect("destroy again");
    cloud
        .placement()
        .delete_allocations(&instance)
        .await
        .expect("free claim");
    driver.sync().await.expect("sync");
    assert_eq!(reserved(&cloud, &node).await, 0, "free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_spawns_one_wins_the_other_reschedules() {
    common::init_logs();
    let cloud = Cloud::start_with(|c| c.fake.deploy_delay = 0.5).await;
    let node = cloud
        .available_node("gold", Some("baremetal-gold"), &["CUSTOM_RAID"])
        .await;
    let driver = cloud.driver();
    let (first, second) = (new_uuid(), new_uuid());
    let (ra, rb) = (request(&node, &first), request(&node, &second));
    let (a, b) = tokio::join!(driver.spawn(&ra), driver.spawn(&rb));
    let (winner, loser) = match (&a, &b) {
        (Ok(()), Err(e)) => (&first, e.clone()),
        (Err(e), Ok(())) => (&second, e.clone()),
        other => panic!("exactly one spawn must win: {other:?}"),
    };
    assert!(matches!(loser, SpawnError::Reschedule(..)), "{loser:?}");
    let body = cloud.node(&node).await;
    assert_eq!(body["instance_uuid"], json!(winner));
    assert_eq!(body["provision_state"], "active");
    // A node in maintenance or already used is refused up front too.
    let again = driver
        .spawn(&request(&node, &new_uuid()))
        .await
        .expect_err("taken");
    assert!(matches!(again, SpawnError::Reschedule(..)), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_timeout_fails_and_frees_the_node() {
    common::init_logs();
    let cloud = Cloud::start_with(|c| c.fake.deploy_delay = 1.5).await;
    let node = cloud
        .available_node("gold", Some("baremetal-gold"), &["CUSTOM_RAID"])
        .await;
    let mut config = cloud.config("compute-1");
    config.deploy_timeout = Duration::from_millis(300);
    let driver = IronicDriver::with_options(config, common::test_options());
    let instance = new_uuid();
    let spawn = request(&node, &instance);
    let error = driver.spawn(&spawn).await.expect_err("times out");
    assert!(
        matches!(&error, SpawnError::DeployFailed(m) if m.contains("timed out")),
        "{error:?}"
    );
    let body = cloud.node(&node).await;
    assert_eq!(body["instance_uuid"], json!(null), "{body}");
    assert!(cloud
        .ironic()
        .list_vifs(&node)
        .await
        .expect("vifs")
        .is_empty());
    cloud
        .ironic()
        .wait_for_provision_state(&node, "available", WAIT)
        .await
        .expect("available again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validation_failure_fails_and_frees_the_node() {
    common::init_logs();
    let cloud = Cloud::start().await;
    let node = cloud
        .available_node("gold", Some("baremetal-gold"), &["CUSTOM_RAID"])
        .await;
    // An enabled deploy interface this conductor does not implement.
    cloud
        .ironic()
        .patch_node(
            &node,
            &json!([{"op": "replace", "path": "/deploy_interface", "value": "ramdisk"}]),
        )
        .await
        .expect("deploy interface");
    let driver = cloud.driver();
    let error = driver
        .spawn(&request(&node, &new_uuid()))
        .await
        .expect_err("invalid");
    assert!(
        matches!(&error, SpawnError::DeployFailed(m) if m.contains("failed to validate")),
        "{error:?}"
    );
    let body = cloud.node(&node).await;
    assert_eq!(body["instance_uuid"], json!(null));
    assert_eq!(body["instance_info"], json!({}));
    assert_eq!(body["provision_state"], "available");
    assert!(cloud
        .ironic()
        .list_vifs(&node)
        .await
        .expect("vifs")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn image_urls_other_than_http_are_refused_before_the_node_is_taken() {
    let cloud = Cloud::start().await;
    let node = cloud
        .available_node("gold", Some("baremetal-gold"), &["CUSTOM_RAID"])
        .await;
    let mut spawn = request(&node, &new_uuid());
    spawn.image.url = "file:///etc/shadow".into();
    let error = cloud.driver().spawn(&spawn).await.expect_err("refused");
    assert!(
        matches!(&error, SpawnError::DeployFailed(m) if m.contains("file:///etc/shadow")),
        "{error:?}"
    );
    let body = cloud.node(&node).await;
    assert_eq!(body["instance_uuid"], json!(null), "the node was not taken");
    assert_eq!(body["instance_info"], json!({}));
    assert_eq!(body["provision_state"], "available");
    // An operator may allow more schemes; the conductor still decides
    // which files it reads.
    let options = ferrite_virt_driver::DriverOptions {
        image_url_schemes: vec!["http".into(), "https".into(), "file".into()],
        ..ferrite_virt_driver::DriverOptions::default()
    };
    let driver = IronicDriver::with_options(cloud.config("compute-1"), options);
    let instance = new_uuid();
    let mut spawn = request(&node, &instance);
    spawn.image.url = "file:///srv/images/ubuntu.qcow2".into();
    driver.spawn(&spawn).await.expect("spawn");
    let body = cloud.node(&node).await;
    assert_eq!(
        body["instance_info"]["image_source"],
        "file:///srv/images/ubuntu.qcow2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn maintenance_node_reschedules() {
    let cloud = Cloud::start().await;
    let node = cloud
        .available_node("gold", Some("baremetal-gold"), &["CUSTOM_RAID"])
        .await;
    cloud
        .ironic()
        .raw(
            reqwest::Method::PUT,
            &format!("/v1/nodes/{node}/maintenance"),
            Some(&json!({})),
        )
        .await
        .expect("maintenance");
    let error = cloud
        .driver()
        .spawn(&request(&node, &new_uuid()))
        .await
        .expect_err("refused");
    assert!(matches!(error, SpawnError::Reschedule(..)), "{error:?}");
    assert_eq!(cloud.node(&node).await["instance_uuid"], json!(null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spawn_with_config_drive() {
    common::init_logs();
    let cloud = Cloud::start().await;
    let node = cloud
        .available_node("gold", Some("baremetal-gold"), &["CUSTOM_RAID"])
        .await;
    let options = ferrite_virt_driver::DriverOptions {
        force_config_drive: true,
        ..ferrite_virt_driver::DriverOptions::default()
    };
    let driver = IronicDriver::with_options(cloud.config("compute-1"), options);
    let instance = new_uuid();
    driver
        .spawn(&request(&node, &instance))
        .await
        .expect("spawn");
    let body = cloud.node(&node).await;
    assert_eq!(body["provision_state"], "active");
    assert_eq!(
        body["instance_info"]["configdrive"], "******",
        "masked by the API"
    );
}
