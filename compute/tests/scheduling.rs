//! Scheduling, claims, recovery and the boot lifecycle against real
//! Placement and conductor servers, on every backend.
//!
//! Tests that deploy (`boot_lifecycle`, `reschedule_to_another_node`,
//! `delete_while_building`, `capabilities_pick_the_matching_node`) go
//! through the virt driver's `sync`/`spawn`/`destroy`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{backends, Stack};
use ferrite_compute::model::{vm_state, Flavor, Image, Server};
use ferrite_compute::scheduler::{ScheduleError, Scheduler};
use reqwest::Method;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn server(uuid: &str, flavor: &Flavor) -> Server {
    Server {
        uuid: uuid.to_string(),
        name: "s".into(),
        project_id: "demo".into(),
        user_id: "demo".into(),
        vm_state: vm_state::BUILDING.into(),
        task_state: None,
        power_state: 0,
        host: None,
        node: None,
        flavor: flavor.clone(),
        image: Image::default(),
        key_name: None,
        key_data: None,
        user_data: None,
        metadata: BTreeMap::new(),
        networks: Vec::new(),
        availability_zone: None,
        description: None,
        fault: None,
        launched_at: None,
        created_at: 0,
        updated_at: 0,
        version: 1,
    }
}

fn bare_metal_flavor(class: &str, extra: &[(&str, &str)]) -> Flavor {
    let mut extra_specs: BTreeMap<String, String> = [
        (format!("resources:{class}"), "1".to_string()),
        ("resources:VCPU".into(), "0".into()),
        ("resources:MEMORY_MB".into(), "0".into()),
        ("resources:DISK_GB".into(), "0".into()),
    ]
    .into_iter()
    .collect();
    for (k, v) in extra {
        extra_specs.insert(k.to_string(), v.to_string());
    }
    Flavor {
        id: "f".into(),
        name: "f".into(),
        memory_mb: 1024,
        vcpus: 2,
        root_gb: 10,
        extra_specs,
        ..Default::default()
    }
}

/// Concurrent claims never share a node: lost claims (409) move on to the
/// alternates; when the nodes run out, "No valid host was found.".
#[tokio::test]
async fn concurrent_claims_take_distinct_nodes() {
    for kind in backends() {
        let stack = Stack::start(kind).await;
        let mut nodes = BTreeSet::new();
        for i in 0..5 {
            let node = uuid::Uuid::new_v4().to_string();
            stack.provider_for(&node, "baremetal-gold").await;
            nodes.insert(node);
            let _ = i;
        }
        let mut config =
            common::compute_config(&stack.placement_url, &stack.ironic_url, "sqlite::memory:");
        config.host_subset_size = 5;
        let scheduler = std::sync::Arc::new(Scheduler::new(&config));
        let flavor = bare_metal_flavor("CUSTOM_BAREMETAL_GOLD", &[]);
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let scheduler = scheduler.clone();
            let server = server(&uuid::Uuid::new_v4().to_string(), &flavor);
            tasks.push(tokio::spawn(async move {
                scheduler.schedule(&server, &BTreeSet::new()).await
            }));
        }
        let mut claimed = BTreeSet::new();
        for task in tasks {
            let claim = task.await.expect("join").expect("claimed");
            assert!(claimed.insert(claim.node), "a node was claimed twice");
        }
        assert_eq!(claimed, nodes);
        let extra = server(&uuid::Uuid::new_v4().to_string(), &flavor);
        match scheduler.schedule(&extra, &BTreeSet::new()).await {
            Err(ScheduleError::NoValidHost(message)) => {
                assert_eq!(message, "No valid host was found. ")
            }
            other => panic!("expected no valid host, got {other:?}"),
        }
        stack.stop().await;
    }
}

/// No node of the flavor's class: the server goes to ERROR with Nova's fault.
#[tokio::test]
async fn no_valid_host_fault() {
    for kind in backends() {
        let stack = Stack::start(kind).await;
        let flavor = stack.create_flavor("bm.none", "CUSTOM_NOTHING", &[]).await;
        let image = stack.create_image("img").await;
        let (status, body) = stack.boot("demo", "s1", &flavor, &image).await;
        assert_eq!(status, 202, "{body}");
        let id = body["server"]["id"].as_str().expect("id").to_string();
        let body = stack.wait_status(&id, &["ERROR"], WAIT).await;
        let server = &body["server"];
        assert_eq!(server["OS-EXT-STS:vm_state"], "error");
        assert_eq!(server["OS-EXT-STS:task_state"], json!(null));
        assert_eq!(server["fault"]["code"], 500);
        assert_eq!(server["fault"]["message"], "No valid host was found. ");
        assert!(server["fault"]["created"].is_string());
        // The owner sees it too (without the details of a 500).
        let (status, body) = stack
            .call(
                Method::GET,
                &format!("/v2.1/servers/{id}"),
                "demo",
                "latest",
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert!(body["server"]["fault"].get("details").is_none());
        assert!(body["server"].get("OS-EXT-SRV-ATTR:host").is_none());
        // Lists and filters.
        let (_, body) = stack
            .call(
                Method::GET,
                "/v2.1/servers/detail?status=ERROR",
                "demo",
                "latest",
                None,
            )
            .await;
        assert_eq!(body["servers"].as_array().map(Vec::len), Some(1));
        let (_, body) = stack
            .call(
                Method::GET,
                "/v2.1/servers?name=^s1$",
                "demo",
                "latest",
                None,
            )
            .await;
        assert_eq!(body["servers"][0]["id"], id);
        let (_, body) = stack
            .call(
                Method::GET,
                "/v2.1/servers?name=zzz",
                "demo",
                "latest",
                None,
            )
            .await;
        assert_eq!(body["servers"], json!([]));
        let (_, body) = stack
            .call(Method::GET, "/v2.1/servers", "other", "latest", None)
            .await;
        assert_eq!(body["servers"], json!([]));
        let (_, body) = stack
            .call(
                Method::GET,
                "/v2.1/servers?all_tenants=1",
                "admin",
                "latest",
                None,
            )
            .await;
        assert_eq!(body["servers"].as_array().map(Vec::len), Some(1));
        // Actions refused in ERROR where Nova refuses them.
        let (status, body) = stack
            .call(
                Method::POST,
                &format!("/v2.1/servers/{id}/action"),
                "demo",
                "latest",
                Some(json!({"reboot": {"type": "SOFT"}})),
            )
            .await;
        assert_eq!(status, 409);
        assert_eq!(
            body["conflictingRequest"]["message"],
            format!("Cannot 'reboot' instance {id} while it is in vm_state error")
        );
        let (status, _) = stack
            .call(
                Method::POST,
                &format!("/v2.1/servers/{id}/action"),
                "demo",
                "latest",
                Some(json!({"os-start": null})),
            )
            .await;
        assert_eq!(status, 409);
        // Deleting an ERROR server without a node needs no driver.
        let (status, _) = stack
            .call(
                Method::DELETE,
                &format!("/v2.1/servers/{id}"),
                "demo",
                "latest",
                None,
            )
            .await;
        assert_eq!(status, 204);
        stack.wait_status(&id, &["DELETED"], WAIT).await;
        stack.stop().await;
    }
}

/// A compute restart fails builds it interrupted and frees their claims.
#[tokio::test]
async fn restart_fails_interrupted_builds_and_frees_claims() {
    for kind in backends() {
        // A Placement that accepts connections and never answers keeps
        // the build in BUILD/scheduling.
        let blackhole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let blackhole_url = format!("http://{}", blackhole.local_addr().expect("addr"));
        let mut stack =
            Stack::start_with(kind, |config| config.placement_url = blackhole_url.clone()).await;
        let flavor = stack.create_flavor("bm", "CUSTOM_BAREMETAL", &[]).await;
        let image = stack.create_image("img").await;
        let (status, body) = stack.boot("demo", "stuck", &flavor, &image).await;
        assert_eq!(status, 202);
        let id = body["server"]["id"].as_str().expect("id").to_string();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, body) = stack.server(&id).await;
        assert_eq!(body["server"]["status"], "BUILD");
        assert_eq!(body["server"]["OS-EXT-STS:task_state"], "scheduling");
        // Pretend the claim went through before the crash.
        let node = uuid::Uuid::new_v4().to_string();
        stack.provider_for(&node, "baremetal").await;
        let claim: BTreeMap<String, BTreeMap<String, i64>> = [(
            node.clone(),
            [("CUSTOM_BAREMETAL".to_string(), 1)].into_iter().collect(),
        )]
        .into_iter()
        .collect();
        stack
            .placement()
            .put_allocations(&id, &claim, "demo", "demo", None)
            .await
            .expect("claim");

        stack.stop_compute().await;
        stack.start_compute(|_| {}).await;
        let body = stack.wait_status(&id, &["ERROR"], WAIT).await;
        assert!(body["server"]["fault"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("interrupted by a restart"));
        let allocations = stack
            .placement()
            .get_allocations(&id)
            .await
            .expect("allocations");
        assert_eq!(allocations["allocations"], json!({}));
        drop(blackhole);
        stack.stop().await;
    }
}

/// Only the node whose capabilities match is chosen; the claim is on it.
#[tokio::test]
async fn capabilities_pick_the_matching_node() {
    for kind in backends() {
        let stack = Stack::start(kind).await;
        let bios = stack
            .enroll_node("bios", "baremetal-gold", "boot_mode:bios,cpus:8")
            .await;
        let uefi = stack
            .enroll_node("uefi", "baremetal-gold", "boot_mode:uefi,cpus:16")
            .await;
        let _ = bios;
        stack.driver().sync().await.expect("driver sync");
        let flavor = stack
            .create_flavor(
                "bm.uefi",
                "CUSTOM_BAREMETAL_GOLD",
                &[
                    ("capabilities:boot_mode", "uefi"),
                    ("capabilities:cpus", ">= 12"),
                ],
            )
            .await;
        let image = stack.create_image("img").await;
        let (status, body) = stack.boot("demo", "s", &flavor, &image).await;
        assert_eq!(status, 202);
        let id = body["server"]["id"].as_str().expect("id").to_string();
        let body = stack.wait_status(&id, &["ACTIVE", "ERROR"], WAIT).await;
        assert_eq!(
            body["server"]["OS-EXT-SRV-ATTR:hypervisor_hostname"],
            uefi.as_str(),
            "{body}"
        );
        assert_eq!(body["server"]["OS-EXT-SRV-ATTR:host"], "test-compute");
        let allocations = stack
            .placement()
            .get_allocations(&id)
            .await
            .expect("allocations");
        assert_eq!(
            allocations["allocations"][&uefi]["resources"]["CUSTOM_BAREMETAL_GOLD"],
            1
        );
        stack.stop().await;
    }
}

async fn action(stack: &Stack, id: &str, body: serde_json::Value) -> u16 {
    stack
        .call(
            Method::POST,
            &format!("/v2.1/servers/{id}/action"),
            "demo",
            "latest",
            Some(body),
        )
        .await
        .0
}

/// Boot, power actions, rebuild and delete through the virt driver.
#[tokio::test]
async fn boot_lifecycle() {
    for kind in backends() {
        let stack = Stack::start(kind).await;
        let node = stack
            .enroll_node("n1", "baremetal-gold", "boot_mode:uefi")
            .await;
        stack.driver().sync().await.expect("driver sync");
        let flavor = stack
            .create_flavor("bm.gold", "CUSTOM_BAREMETAL_GOLD", &[])
            .await;
        let image = stack.create_image("img").await;
        let (status, body) = stack.boot("demo", "s", &flavor, &image).await;
        assert_eq!(status, 202);
        let id = body["server"]["id"].as_str().expect("id").to_string();
        let body = stack.wait_status(&id, &["ACTIVE", "ERROR"], WAIT).await;
        let server = &body["server"];
        assert_eq!(server["status"], "ACTIVE", "{body}");
        assert_eq!(server["OS-EXT-STS:power_state"], 1);
        assert_eq!(server["OS-EXT-SRV-ATTR:hypervisor_hostname"], node.as_str());
        assert!(server["OS-SRV-USG:launched_at"].is_string());
        let ironic = stack.baremetal().get_node(&node).await.expect("node");
        assert_eq!(ironic["instance_uuid"], id.as_str());
        assert_eq!(ironic["provision_state"], "active");

        assert_eq!(
            action(&stack, &id, json!({"reboot": {"type": "SOFT"}})).await,
            202
        );
        stack.wait_status(&id, &["ACTIVE"], WAIT).await;
        assert_eq!(action(&stack, &id, json!({"os-stop": null})).await, 202);
        let body = stack.wait_status(&id, &["SHUTOFF"], WAIT).await;
        assert_eq!(body["server"]["OS-EXT-STS:power_state"], 4);
        assert_eq!(
            action(&stack, &id, json!({"reboot": {"type": "SOFT"}})).await,
            409
        );
        assert_eq!(action(&stack, &id, json!({"os-start": null})).await, 202);
        stack.wait_status(&id, &["ACTIVE"], WAIT).await;
        assert_eq!(
            action(&stack, &id, json!({"reboot": {"type": "HARD"}})).await,
            202
        );
        stack.wait_status(&id, &["ACTIVE"], WAIT).await;
        assert_eq!(
            action(&stack, &id, json!({"rebuild": {"imageRef": image}})).await,
            202
        );
        let body = stack.wait_status(&id, &["ACTIVE", "ERROR"], WAIT).await;
        assert_eq!(body["server"]["status"], "ACTIVE", "{body}");

        let (status, _) = stack
            .call(
                Method::DELETE,
                &format!("/v2.1/servers/{id}"),
                "demo",
                "latest",
                None,
            )
            .await;
        assert_eq!(status, 204);
        stack.wait_status(&id, &["DELETED"], WAIT).await;
        let allocations = stack
            .placement()
            .get_allocations(&id)
            .await
            .expect("allocations");
        assert_eq!(allocations["allocations"], json!({}));
        let ironic = stack.baremetal().get_node(&node).await.expect("node");
        assert_eq!(ironic["instance_uuid"], json!(null));
        stack.stop().await;
    }
}

/// A node taken behind the scheduler's back makes spawn ask for a
/// reschedule: the claim moves to the other node.
#[tokio::test]
async fn reschedule_to_another_node() {
    for kind in backends() {
        let stack = Stack::start_with(kind, |config| config.host_subset_size = 1).await;
        let first = stack.enroll_node("a", "baremetal-gold", "").await;
        let second = stack.enroll_node("b", "baremetal-gold", "").await;
        stack.driver().sync().await.expect("driver sync");
        // Whichever node the scheduler tries first: take one of them in
        // Ironic only, so that spawn there must reschedule.
        let taken = first.clone();
        stack
            .baremetal()
            .patch_node(&taken, &json!([{"op": "add", "path": "/instance_uuid", "value": uuid::Uuid::new_v4().to_string()}]))
            .await
            .expect("take node");
        let flavor = stack
            .create_flavor("bm.gold", "CUSTOM_BAREMETAL_GOLD", &[])
            .await;
        let image = stack.create_image("img").await;
        let (_, body) = stack.boot("demo", "s", &flavor, &image).await;
        let id = body["server"]["id"].as_str().expect("id").to_string();
        let body = stack.wait_status(&id, &["ACTIVE", "ERROR"], WAIT).await;
        assert_eq!(body["server"]["status"], "ACTIVE", "{body}");
        assert_eq!(
            body["server"]["OS-EXT-SRV-ATTR:hypervisor_hostname"],
            second.as_str()
        );
        let allocations = stack
            .placement()
            .get_allocations(&id)
            .await
            .expect("allocations");
        assert!(allocations["allocations"].get(&taken).is_none());
        stack.stop().await;
    }
}

/// Deleting a server while it deploys cancels the build, tears the node
/// down and frees the claim.
#[tokio::test]
async fn delete_while_building() {
    for kind in backends() {
        let stack =
            Stack::start_custom(kind, |conductor| conductor.fake.deploy_delay = 2.0, |_| {}).await;
        let node = stack.enroll_node("n1", "baremetal-gold", "").await;
        stack.driver().sync().await.expect("driver sync");
        let flavor = stack
            .create_flavor("bm.gold", "CUSTOM_BAREMETAL_GOLD", &[])
            .await;
        let image = stack.create_image("img").await;
        let (_, body) = stack.boot("demo", "s", &flavor, &image).await;
        let id = body["server"]["id"].as_str().expect("id").to_string();
        let start = std::time::Instant::now();
        loop {
            let (_, body) = stack.server(&id).await;
            if body["server"]["OS-EXT-STS:task_state"] == "spawning" {
                break;
            }
            assert!(start.elapsed() < WAIT, "never spawned: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, _) = stack
            .call(
                Method::DELETE,
                &format!("/v2.1/servers/{id}"),
                "demo",
                "latest",
                None,
            )
            .await;
        assert_eq!(status, 204);
        stack.wait_status(&id, &["DELETED"], WAIT).await;
        let allocations = stack
            .placement()
            .get_allocations(&id)
            .await
            .expect("allocations");
        assert_eq!(allocations["allocations"], json!({}));
        stack
            .baremetal()
            .wait_for_provision_state(&node, "available", WAIT)
            .await
            .expect("node available again");
        stack.stop().await;
    }
}
