//! Tenant scenarios against the real `ferrite` program, over HTTP only.

use std::collections::HashSet;
use std::time::Duration;

use ferrite_tempest::Stack;
use futures::future::join_all;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ferrite-under-test");
const SETTLE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_reaches_active_and_delete_frees_everything() {
    let stack = Stack::start(BIN, 2, &[]);
    let flavor = stack.flavor("bm", "baremetal", &[]).await;
    let image = stack.image("img").await;
    let id = stack.boot("one", &flavor, &image).await;
    let server = stack.settle(&id, SETTLE).await;
    assert_eq!(server["status"], "ACTIVE", "{server}");
    let node = server["OS-EXT-SRV-ATTR:hypervisor_hostname"]
        .as_str()
        .expect("node")
        .to_string();
    let (status, bm) = stack
        .baremetal(reqwest::Method::GET, &format!("/v1/nodes/{node}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(bm["instance_uuid"], id.as_str());
    assert_eq!(bm["provision_state"], "active");
    assert_eq!(
        stack.allocations(&id).await[&node]["resources"]["CUSTOM_BAREMETAL"],
        1
    );
    assert_eq!(stack.total_usage().await, 1);

    // Actions on an active server.
    for action in [
        serde_json::json!({"reboot": {"type": "SOFT"}}),
        serde_json::json!({"os-stop": null}),
        serde_json::json!({"os-start": null}),
        serde_json::json!({"rebuild": {"imageRef": image}}),
    ] {
        let (status, body) = stack
            .compute(
                reqwest::Method::POST,
                &format!("/v2.1/servers/{id}/action"),
                Some(action.clone()),
            )
            .await;
        assert_eq!(status, 202, "{action}: {body}");
        let server = stack.settle(&id, SETTLE).await;
        let wanted = if action.get("os-stop").is_some() {
            "SHUTOFF"
        } else {
            "ACTIVE"
        };
        assert_eq!(server["status"], wanted, "{action}: {server}");
    }

    stack.delete_server(&id, SETTLE).await;
    let (_, bm) = stack
        .baremetal(reqwest::Method::GET, &format!("/v1/nodes/{node}"), None)
        .await;
    assert_eq!(bm["instance_uuid"], Value::Null);
    assert_eq!(bm["provision_state"], "available");
    assert_eq!(stack.allocations(&id).await, serde_json::json!({}));
    assert_eq!(stack.total_usage().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_storm_uses_every_node_once() {
    const NODES: usize = 8;
    let stack = Stack::start(BIN, NODES, &[]);
    let flavor = stack.flavor("bm", "baremetal", &[]).await;
    let image = stack.image("img").await;
    let ids = join_all((0..NODES).map(|i| {
        let (stack, flavor, image) = (&stack, &flavor, &image);
        async move { stack.boot(&format!("storm-{i}"), flavor, image).await }
    }))
    .await;
    let servers = join_all(ids.iter().map(|id| stack.settle(id, SETTLE))).await;
    let mut nodes = HashSet::new();
    for server in &servers {
        assert_eq!(server["status"], "ACTIVE", "{server}");
        let node = server["OS-EXT-SRV-ATTR:hypervisor_hostname"]
            .as_str()
            .expect("node")
            .to_string();
        assert!(nodes.insert(node), "a node was used twice");
    }
    assert_eq!(stack.total_usage().await, NODES as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_boots_than_nodes_fail_cleanly() {
    let stack = Stack::start(BIN, 2, &[]);
    let flavor = stack.flavor("bm", "baremetal", &[]).await;
    let image = stack.image("img").await;
    let ids = join_all((0..4).map(|i| {
        let (stack, flavor, image) = (&stack, &flavor, &image);
        async move { stack.boot(&format!("extra-{i}"), flavor, image).await }
    }))
    .await;
    let servers = join_all(ids.iter().map(|id| stack.settle(id, SETTLE))).await;
    let active = servers.iter().filter(|s| s["status"] == "ACTIVE").count();
    let errors: Vec<&Value> = servers.iter().filter(|s| s["status"] == "ERROR").collect();
    assert_eq!(active, 2, "{servers:?}");
    assert_eq!(errors.len(), 2, "{servers:?}");
    for server in errors {
        let message = server["fault"]["message"].as_str().unwrap_or("");
        assert!(message.contains("No valid host was found"), "{server}");
        let id = server["id"].as_str().expect("id");
        assert_eq!(
            stack.allocations(id).await,
            serde_json::json!({}),
            "no leaked claim"
        );
    }
    assert_eq!(stack.total_usage().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_and_trait_mismatches_find_no_host() {
    let stack = Stack::start(BIN, 2, &[]);
    let image = stack.image("img").await;
    let bios = stack
        .flavor("bios", "baremetal", &[("capabilities:boot_mode", "bios")])
        .await;
    let traited = stack
        .flavor("gpu", "baremetal", &[("trait:CUSTOM_GPU", "required")])
        .await;
    let uefi = stack
        .flavor("uefi", "baremetal", &[("capabilities:boot_mode", "uefi")])
        .await;
    for flavor in [&bios, &traited] {
        let id = stack.boot("mismatch", flavor, &image).await;
        let server = stack.settle(&id, SETTLE).await;
        assert_eq!(server["status"], "ERROR", "{server}");
        assert!(
            server["fault"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("No valid host was found"),
            "{server}"
        );
    }
    let id = stack.boot("match", &uefi, &image).await;
    assert_eq!(stack.settle(&id, SETTLE).await["status"], "ACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_failure_ends_in_error_and_frees_the_claim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conductor = dir.path().join("conductor.toml");
    std::fs::write(&conductor, "[fake]\ndeploy_delay = 4.0\n").expect("write");
    let compute = dir.path().join("compute.toml");
    std::fs::write(
        &compute,
        "deploy_timeout_secs = 1.0\npoll_interval_secs = 0.2\nmax_attempts = 1\n",
    )
    .expect("write");
    let stack = Stack::start(
        BIN,
        1,
        &[
            "--conductor-config",
            conductor.to_str().expect("path"),
            "--compute-config",
            compute.to_str().expect("path"),
        ],
    );
    let flavor = stack.flavor("bm", "baremetal", &[]).await;
    let image = stack.image("img").await;
    let id = stack.boot("doomed", &flavor, &image).await;
    let server = stack.settle(&id, SETTLE).await;
    assert_eq!(server["status"], "ERROR", "{server}");
    assert!(
        server["fault"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{server}"
    );
    // The claim is gone, and the node ends up free of the instance.
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let (_, nodes) = stack
            .baremetal(
                reqwest::Method::GET,
                "/v1/nodes?fields=instance_uuid,provision_state",
                None,
            )
            .await;
        let node = &nodes["nodes"][0];
        if stack.allocations(&id).await == serde_json::json!({}) && node["instance_uuid"].is_null()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not cleaned up: {node}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_in_the_middle_of_a_boot_leaks_no_claim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conductor = dir.path().join("conductor.toml");
    std::fs::write(&conductor, "[fake]\ndeploy_delay = 5.0\n").expect("write");
    let args = ["--conductor-config", conductor.to_str().expect("path")];
    let stack = Stack::start(BIN, 1, &args);
    let flavor = stack.flavor("bm", "baremetal", &[]).await;
    let image = stack.image("img").await;
    let id = stack.boot("interrupted", &flavor, &image).await;
    // Wait until the deploy is under way, then crash everything.
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let (_, server) = stack.server(&id).await;
        if server["OS-EXT-STS:task_state"] == "spawning" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never started spawning: {server}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let data = stack.kill();
    let stack = Stack::start_in(BIN, 0, &args, data);
    let server = stack.settle(&id, SETTLE).await;
    assert_eq!(server["status"], "ERROR", "{server}");
    let (_, nodes) = stack
        .baremetal(
            reqwest::Method::GET,
            "/v1/nodes?fields=uuid,provision_state,instance_uuid,reservation,last_error",
            None,
        )
        .await;
    eprintln!("after restart: {server} {nodes}");
    let deadline = std::time::Instant::now() + SETTLE;
    while stack.allocations(&id).await != serde_json::json!({}) {
        assert!(std::time::Instant::now() < deadline, "claim leaked");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Deleting the failed server leaves nothing behind.
    stack.delete_server(&id, SETTLE).await;
    assert_eq!(stack.total_usage().await, 0);
}

/// The README's path: `ferrite up --fleet 4` (simulated machines, real
/// deploys through the agent), then `ferrite demo` boots a server to
/// ACTIVE and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_command_boots_a_server() {
    // `ferrite up --fleet 4 & ferrite demo`: the demo starts while the
    // machines are still being enrolled and cleaned, and waits for them.
    let stack = Stack::start_simulated_early(BIN, 4);
    let (compute, baremetal) = (stack.compute.clone(), stack.baremetal.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args([
                "demo",
                "--compute-url",
                &compute,
                "--baremetal-url",
                &baremetal,
            ])
            .args(["--timeout", "240"])
            .output()
            .expect("run demo")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("is ACTIVE on node"), "{stdout}");
    let (_, servers) = stack
        .compute(reqwest::Method::GET, "/v2.1/servers/detail", None)
        .await;
    let server = &servers["servers"][0];
    assert_eq!(server["status"], "ACTIVE", "{servers}");
    let id = server["id"].as_str().expect("id").to_string();
    // A real deploy: the node is a redfish/direct node holding the
    // instance, and it was written by the agent (deploy steps recorded).
    let (status, nodes) = stack
        .baremetal(
            reqwest::Method::GET,
            &format!("/v1/nodes?instance_uuid={id}&fields=uuid,driver,deploy_interface,provision_state,power_state"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{nodes}");
    let node = &nodes["nodes"][0];
    assert_eq!(node["driver"], "redfish", "{nodes}");
    assert_eq!(node["deploy_interface"], "direct", "{nodes}");
    assert_eq!(node["provision_state"], "active", "{nodes}");
    assert_eq!(node["power_state"], "power on", "{nodes}");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    // Deleting the server tears the instance down: the node is cleaned by
    // the agent and comes back `available`, placement usage drops to 0.
    stack.delete_server(&id, SETTLE).await;
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let (_, node) = stack
            .baremetal(reqwest::Method::GET, &format!("/v1/nodes/{uuid}"), None)
            .await;
        if node["provision_state"] == "available" && node["target_provision_state"].is_null() {
            assert!(node["instance_uuid"].is_null(), "{node}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node not available again: {node}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stack.total_usage().await, 0);
}
