//! The agent against a fake conductor: lookup, heartbeats, the command API
//! and the commands of a direct deploy.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use ferrite_agent::{AgentConfig, AgentError, AgentEvent, AgentOptions, CustomCommand};
use futures::FutureExt;
use serde_json::{json, Value};

fn fast() -> AgentOptions {
    AgentOptions {
        min_heartbeat_interval: Duration::from_millis(200),
        lookup_max_interval: Duration::from_millis(200),
        lookup_conflict_pause: Duration::from_millis(50),
        ..AgentOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_retries_then_heartbeats_with_the_token() {
    let conductor = FakeConductor::start(1.0).await;
    conductor
        .state
        .lookup_failures
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let run = start_agent(&conductor, fast()).await;
    run.wait_for_token().await;
    assert_eq!(run.agent.agent_token().as_deref(), Some(TOKEN));
    assert_eq!(run.agent.node().unwrap()["uuid"], NODE_UUID);

    // Two 404s, then the lookup that found the node.
    let lookups = conductor.lookups();
    assert_eq!(lookups.len(), 3, "{lookups:?}");
    for lookup in &lookups {
        let query: HashMap<String, String> = url::form_urlencoded::parse(lookup.query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            query.get("addresses").map(String::as_str),
            Some(format!("{MAC},{OTHER_MAC}").as_str())
        );
        assert!(!query.contains_key("node_uuid"));
        // Discovered 1.99, capped at the token version as upstream.
        assert_eq!(lookup.headers["x-openstack-ironic-api-version"], "1.62");
        assert_eq!(
            lookup.headers["x-openstack-request-id"],
            "req-3c0f1ea4-test"
        );
    }

    // heartbeat_timeout 1 s: a heartbeat every 0.3–0.6 s.
    assert!(
        wait_until(Duration::from_secs(10), || conductor.heartbeats().len()
            >= 5)
        .await
    );
    let beats = conductor.heartbeats();
    for beat in &beats {
        assert_eq!(beat.path, format!("/v1/heartbeat/{NODE_UUID}"));
        assert_eq!(beat.headers["x-openstack-ironic-api-version"], "1.68");
        assert_eq!(
            beat.body,
            json!({"callback_url": run.agent.callback_url(), "agent_token": TOKEN, "agent_version": "13.0.0"})
        );
    }
    let gaps: Vec<f64> = beats
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    assert!(gaps.iter().all(|g| *g >= 0.25), "{gaps:?}");
    assert!((0.28..=1.0).contains(&mean), "{gaps:?}");
    assert!(run.agent.callback_url().starts_with("http://127.0.0.1:"));

    // Stopping ends heartbeats and the API.
    let callback = run.agent.callback_url();
    run.agent.stop().await;
    let count = conductor.heartbeats().len();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(conductor.heartbeats().len(), count);
    assert!(reqwest::get(format!("{callback}/v1/status")).await.is_err());
    conductor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_conflicts_are_retried_sooner() {
    // With a 30 s timeout a successful heartbeat is followed by 9–18 s of
    // silence; a 409 by a retry after 0.2–0.4 s (min interval × 1–2).
    let conductor = FakeConductor::start(30.0).await;
    conductor
        .state
        .heartbeat_conflicts
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let run = start_agent(&conductor, fast()).await;
    assert!(wait_until(Duration::from_secs(5), || conductor.heartbeats().len() >= 3).await);
    let beats = conductor.heartbeats();
    for gap in beats.windows(2).map(|w| w[1].at - w[0].at) {
        assert!(
            gap >= Duration::from_millis(190) && gap < Duration::from_millis(1500),
            "{gap:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        conductor.heartbeats().len(),
        3,
        "heartbeat after success came too soon"
    );
    run.agent.stop().await;
    conductor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_need_the_agent_token() {
    let conductor = FakeConductor::start(30.0).await;
    let run = start_agent(&conductor, fast()).await;
    run.wait_for_token().await;

    // Status and versions are open.
    let (status, body) = run.get("/v1/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], "13.0.0");
    assert!(body["started_at"].as_f64().unwrap() > 1.0e9);
    let (status, body) = run.get("/", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["default_version"]["id"], "v1");
    assert_eq!(body["versions"][0]["links"][0]["href"], run.url("/v1"));

    for token in [None, Some("wrong-token-wrong-token-wrong-token-0")] {
        let (status, body) = run.command("standby.sync", json!({}), token, true).await;
        assert_eq!(status, 401);
        assert_eq!(
            body,
            json!({"faultcode": "Client", "faultstring": "401 Unauthorized: Token invalid."})
        );
        let (status, _) = run.get("/v1/commands/", token).await;
        assert_eq!(status, 401);
    }
    let (status, body) = run.get("/v1/commands/", Some(TOKEN)).await;
    assert_eq!((status, body), (200, json!({"commands": []})));

    let (status, body) = run
        .command("standby.sync", json!({}), Some(TOKEN), true)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["command_name"], "sync");
    assert_eq!(body["command_status"], "SUCCEEDED");
    assert_eq!(body["command_error"], Value::Null);

    // Unknown things, as upstream.
    let (status, body) = run
        .command("standby.nope", json!({}), Some(TOKEN), true)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["faultstring"],
        "Invalid command: Unknown command: nope"
    );
    let (status, body) = run.command("nope.nope", json!({}), Some(TOKEN), true).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["faultstring"],
        "Not found: Extension with id nope not found."
    );
    let (status, body) = run.command("nodot", json!({}), Some(TOKEN), true).await;
    assert_eq!(status, 400);
    assert!(body["faultstring"]
        .as_str()
        .unwrap()
        .starts_with("Invalid command"));
    let (status, body) = run.get("/v1/commands/no-such-id", Some(TOKEN)).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["faultstring"],
        "Not found: Command Result with id no-such-id not found."
    );
    let response = run
        .http
        .post(run.url("/v1/commands/"))
        .query(&[("agent_token", TOKEN)])
        .body("{\"name\": \"standby.sync\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let response = run.http.delete(run.url("/v1/status")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);

    run.agent.stop().await;
    conductor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_travels_in_a_header() {
    let conductor = FakeConductor::start(30.0).await;
    let run = start_agent(&conductor, fast()).await;
    run.wait_for_token().await;
    let send = |token: &'static str| {
        run.http
            .post(run.url("/v1/commands/"))
            .query(&[("wait", "true")])
            .header("X-Agent-Token", token)
            .json(&json!({"name": "standby.sync", "params": {}}))
            .send()
    };
    let response = send(TOKEN).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let response = send("wrong-token-wrong-token-wrong-token-0").await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let listed = run
        .http
        .get(run.url("/v1/commands/"))
        .header("X-Agent-Token", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status().as_u16(), 200);
    // A wrong header is not rescued by a right query string.
    let response = run
        .http
        .get(run.url("/v1/commands/"))
        .query(&[("agent_token", TOKEN)])
        .header("X-Agent-Token", "wrong-token-wrong-token-wrong-token-0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    run.agent.stop().await;
    conductor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_agent_refuses_and_async_commands_are_polled() {
    let conductor = FakeConductor::start(30.0).await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut options = fast();
    let command_gate = gate.clone();
    let block: CustomCommand = Arc::new(move |params| {
        let gate = command_gate.clone();
        async move {
            gate.notified().await;
            Ok(json!({ "echo": params.get("value").cloned().unwrap_or(Value::Null) }))
        }
        .boxed()
    });
    options.commands.insert("test.block".to_string(), block);
    let run = start_agent(&conductor, options).await;
    run.wait_for_token().await;

    let (status, started) = run
        .command("test.block", json!({"value": 7}), Some(TOKEN), false)
        .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["command_status"], "RUNNING");
    assert_eq!(started["command_name"], "block");
    let id = started["id"].as_str().unwrap().to_string();

    let (status, body) = run
        .command("standby.sync", json!({}), Some(TOKEN), true)
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        body,
        json!({"faultcode": "Client", "faultstring": "Agent is busy: executing command block"})
    );
    let (_, polled) = run.get(&format!("/v1/commands/{id}"), Some(TOKEN)).await;
    assert_eq!(polled["command_status"], "RUNNING");

    // A waiting GET returns once the command finished.
    let waiter = {
        let http = run.http.clone();
        let url = run.url(&format!("/v1/commands/{id}"));
        tokio::spawn(async move {
            http.get(url)
                .query(&[("agent_token", TOKEN), ("wait", "true")])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.notify_one();
    let done = waiter.await.unwrap();
    assert_eq!(done["command_status"], "SUCCEEDED");
    assert_eq!(done["command_result"], json!({"echo": 7}));

    let (_, list) = run.get("/v1/commands", Some(TOKEN)).await;
    assert_eq!(list["commands"].as_array().unwrap().len(), 1);
    assert_eq!(list["commands"][0]["id"], id.as_str());
    // Not busy any more.
    let (status, _) = run
        .command("standby.sync", json!({}), Some(TOKEN), true)
        .await;
    assert_eq!(status, 200);
    run.agent.stop().await;
    conductor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_have_upstream_shapes() {
    let conductor = FakeConductor::start(30.0).await;
    let run = start_agent(&conductor, fast()).await;
    run.wait_for_token().await;
    let node = conductor.state.node.lock().unwrap().clone();

    let (status, body) = run
        .command(
            "deploy.get_deploy_steps",
            json!({"node": node, "ports": []}),
            Some(TOKEN),
            true,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["command_name"], "get_deploy_steps");
    assert_eq!(body["command_status"], "SUCCEEDED");
    let result = &body["command_result"];
    assert_eq!(
        result["hardware_manager_version"],
        json!({"generic_hardware_manager": "1.2"})
    );
    let steps = result["deploy_steps"]["GenericHardwareManager"]
        .as_array()
        .unwrap();
    let write = steps.iter().find(|s| s["step"] == "write_image").unwrap();
    assert_eq!(
        write,
        &json!({"step": "write_image", "priority": 0, "interface": "deploy", "reboot_requested": false})
    );

    let (status, body) = run
        .command(
            "clean.get_clean_steps",
            json!({"node": node, "ports": []}),
            Some(TOKEN),
            true,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let steps = body["command_result"]["clean_steps"]["GenericHardwareManager"]
        .as_array()
        .unwrap()
        .clone();
    let erase = steps
        .iter()
        .find(|s| s["step"] == "erase_devices_metadata")
        .unwrap();
    assert_eq!(
        erase,
        &json!({"step": "erase_devices_metadata", "priority": 99, "interface": "deploy",
                "reboot_requested": false, "abortable": true})
    );
    assert_eq!(
        body["command_result"]["hardware_manager_version"]["generic_hardware_manager"],
        "1.2"
    );

    // Ironic sends the versions it got back; a different one restarts the flow.
    let (_, body) = run
        .command(
            "clean.execute_clean_step",
            json!({"step": {"step": "erase_devices_metadata", "interface": "deploy", "priority": 99},
                   "node": node, "ports": [], "clean_version": {"generic_hardware_manager": "1.0"}}),
            Some(TOKEN),
            true,
        )
        .await;
    assert_eq!(body["command_status"], "CLEAN_VERSION_MISMATCH");
    assert_eq!(body["command_error"]["type"], "VersionMismatch");

    // An unknown step fails the command with upstream's error.
    let (_, body) = run
        .command(
            "deploy.execute_deploy_step",
            json!({"step": {"step": "frobnicate", "interface": "deploy", "priority": 0},
                   "node": node, "ports": []}),
            Some(TOKEN),
            true,
        )
        .await;
    assert_eq!(body["command_status"], "FAILED");
    assert_eq!(
        body["command_error"]["details"],
        "Could not find method: frobnicate"
    );
    run.agent.stop().await;
    conductor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_off_asks_the_machine() {
    let conductor = FakeConductor::start(30.0).await;
    let mut run = start_agent(&conductor, fast()).await;
    run.wait_for_token().await;
    let (status, body) = run
        .command("standby.power_off", json!({}), Some(TOKEN), false)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["command_name"], "power_off");
    let event = tokio::time::timeout(Duration::from_secs(5), run.events.recv())
        .await
        .unwrap();
    assert_eq!(event, Some(AgentEvent::PowerOff));
    let done = run.poll(body["id"].as_str().unwrap()).await;
    assert_eq!(done["command_status"], "SUCCEEDED");
    assert_eq!(done["command_result"], Value::Null);
    run.agent.stop().await;
    conductor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_write_image_ends_failed_with_the_imaging_message() {
    let conductor = FakeConductor::start(30.0).await;
    let run = start_agent(&conductor, fast()).await;
    run.wait_for_token().await;
    let hints = json!({"serial": "no-such-serial"});
    let mut node = conductor.state.node.lock().unwrap().clone();
    node["properties"]["root_device"] = hints.clone();
    // Whatever the imaging crate answers to these hints is what the
    // conductor must see.
    let hw = hardware(run.dir.path());
    let expected = ferrite_imaging::hints::select_root_device(&hw.disks, Some(&hints))
        .expect_err("no disk has this serial")
        .to_string();

    let image_info = json!({
        "id": "c1f7a3b6-0000-4000-8000-000000000001",
        "urls": [format!("{}/images/missing.raw", conductor.url)],
        "disk_format": "raw",
        "container_format": "bare",
        "os_hash_algo": "sha256",
        "os_hash_value": "0".repeat(64),
        "node_uuid": NODE_UUID,
    });
    let step = json!({"step": "write_image", "interface": "deploy", "priority": 80,
                      "args": {"image_info": image_info, "configdrive": null}});
    let (status, body) = run
        .command(
            "deploy.execute_deploy_step",
            json!({"step": step, "node": node, "ports": [], "deploy_version": {"generic_hardware_manager": "1.2"}}),
            Some(TOKEN),
            false,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["command_name"], "execute_deploy_step");
    let done = run.poll(body["id"].as_str().unwrap()).await;
    assert_eq!(done["command_status"], "FAILED", "{done}");
    let details = done["command_error"]["details"].as_str().unwrap();
    assert!(
        details.contains(&expected),
        "{details:?} lacks {expected:?}"
    );
    assert!(done["command_error"]["type"].as_str().is_some());
    assert!(done["command_error"]["code"].as_u64().is_some());

    // Nothing was written.
    let (_, body) = run
        .command("standby.get_partition_uuids", json!({}), Some(TOKEN), true)
        .await;
    assert_eq!(body["command_result"], json!({}));
    assert!(run.agent.last_write().is_none());

    // Missing image fields are refused as upstream validates them.
    let (_, body) = run
        .command(
            "deploy.execute_deploy_step",
            json!({"step": {"step": "write_image", "interface": "deploy", "priority": 80,
                            "args": {"image_info": {"id": "x"}}}, "node": node, "ports": []}),
            Some(TOKEN),
            true,
        )
        .await;
    assert_eq!(body["command_status"], "FAILED");
    assert_eq!(body["command_error"]["type"], "InvalidCommandParamsError");
    assert_eq!(
        body["command_error"]["details"],
        "Image is missing 'urls' field."
    );
    run.agent.stop().await;
    conductor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_logs_are_a_gzipped_tar() {
    use base64::Engine;
    use std::io::Read;
    let conductor = FakeConductor::start(30.0).await;
    let run = start_agent(&conductor, fast()).await;
    run.wait_for_token().await;
    let (status, body) = run
        .command("log.collect_system_logs", json!({}), Some(TOKEN), true)
        .await;
    assert_eq!(status, 200, "{body}");
    let packed = body["command_result"]["system_logs"].as_str().unwrap();
    let gz = base64::engine::general_purpose::STANDARD
        .decode(packed)
        .unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    let path = run.dir.path().join("logs.tar");
    std::fs::write(&path, tar).unwrap();
    let out_dir = run.dir.path().join("logs");
    std::fs::create_dir_all(&out_dir).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&path)
        .arg("-C")
        .arg(&out_dir)
        .status()
        .unwrap();
    assert!(status.success());
    let log = std::fs::read_to_string(out_dir.join("ironic-python-agent.log")).unwrap();
    assert!(
        log.contains(&format!("lookup succeeded, node {NODE_UUID}")),
        "{log}"
    );
    let hw: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("hardware.json")).unwrap()).unwrap();
    assert_eq!(hw["interfaces"][0]["mac_address"], MAC);
    run.agent.stop().await;
    conductor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_command_line_and_no_api_url() {
    let dir = tempfile::tempdir().unwrap();
    let hw = hardware(dir.path());
    let config = AgentConfig::new(
        "BOOTIF=zz",
        hw.clone(),
        "127.0.0.1:0".parse().unwrap(),
        dir.path().to_path_buf(),
    );
    match ferrite_agent::start(config).await {
        Err(AgentError::Config(message)) => assert!(message.contains("BOOTIF"), "{message}"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a malformed BOOTIF was accepted"),
    }
    // Without ipa-api-url the API serves but no token is ever issued, so
    // commands are refused (as upstream without a lookup).
    let config = AgentConfig::new(
        "nofb",
        hw,
        "127.0.0.1:0".parse().unwrap(),
        dir.path().to_path_buf(),
    );
    let agent = ferrite_agent::start(config).await.unwrap();
    let status = reqwest::get(format!("{}/v1/status", agent.callback_url()))
        .await
        .unwrap();
    assert_eq!(status.status().as_u16(), 200);
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/commands/?wait=true&agent_token=anything",
            agent.callback_url()
        ))
        .json(&json!({"name": "standby.sync", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert!(started.elapsed() < Duration::from_secs(5));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_command_forces_a_heartbeat() {
    // 30 s timeout: the regular next heartbeat is 9–18 s away, so a second
    // heartbeat within a few seconds can only be the forced one.
    let conductor = FakeConductor::start(30.0).await;
    let options = AgentOptions {
        node_uuid: Some(NODE_UUID.to_string()),
        ..fast()
    };
    let run = start_agent(&conductor, options).await;
    run.wait_for_token().await;
    assert!(wait_until(Duration::from_secs(5), || conductor.heartbeats().len() == 1).await);
    let lookup = &conductor.lookups()[0];
    assert!(
        lookup.query.contains(&format!("node_uuid={NODE_UUID}")),
        "{}",
        lookup.query
    );

    // A synchronous command does not force one…
    let (status, _) = run
        .command("standby.sync", json!({}), Some(TOKEN), true)
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(conductor.heartbeats().len(), 1);
    // …the end of an asynchronous one does.
    let (status, body) = run
        .command("standby.power_off", json!({}), Some(TOKEN), true)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["command_status"], "SUCCEEDED");
    assert!(wait_until(Duration::from_secs(3), || conductor.heartbeats().len() == 2).await);
    run.agent.stop().await;
    conductor.stop().await;
}

/// A disk like the agent's first one, on a scratch file.
fn scratch_disk(dir: &std::path::Path) -> ferrite_imaging::hardware::Disk {
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut disk = hardware(&scratch).disks[0].clone();
    disk.path = scratch.join("sda.img");
    disk
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_and_bootloader_commands_report_imaging_outcomes() {
    let conductor = FakeConductor::start(30.0).await;
    let run = start_agent(&conductor, fast()).await;
    run.wait_for_token().await;
    let node = conductor.state.node.lock().unwrap().clone();
    let step = json!({"step": "erase_devices_metadata", "interface": "deploy", "priority": 99});

    // What the imaging crate does to such a disk decides the outcome.
    let erase = ferrite_imaging::erase::erase_metadata(&scratch_disk(run.dir.path()));
    let (_, body) = run
        .command(
            "clean.execute_clean_step",
            json!({"step": step, "node": node, "ports": [],
                   "clean_version": {"generic_hardware_manager": "1.2"}}),
            Some(TOKEN),
            true,
        )
        .await;
    assert_eq!(body["command_name"], "execute_clean_step");
    match erase {
        Ok(()) => {
            assert_eq!(body["command_status"], "SUCCEEDED", "{body}");
            assert_eq!(
                body["command_result"],
                json!({"clean_result": null, "clean_step": step})
            );
        }
        Err(err) => {
            assert_eq!(body["command_status"], "FAILED", "{body}");
            assert_eq!(body["command_error"]["type"], "BlockDeviceEraseError");
            assert_eq!(
                body["command_error"]["details"],
                format!(
                    "Failed to erase the metadata on the device(s): \"/dev/sda\": {err}; \"/dev/sdb\": {err}"
                )
            );
        }
    }

    // A whole disk image booting in BIOS mode needs no bootloader.
    let (_, body) = run
        .command(
            "image.install_bootloader",
            json!({"root_uuid": null, "efi_system_part_uuid": null,
                   "prep_boot_part_uuid": null, "target_boot_mode": "bios"}),
            Some(TOKEN),
            true,
        )
        .await;
    assert_eq!(body["command_name"], "install_bootloader");
    assert_eq!(body["command_status"], "SUCCEEDED", "{body}");

    // Otherwise the imaging crate installs it (an empty disk has no root
    // partition to boot).
    let root = "5b1e2c3d-0000-4000-8000-00000000abcd";
    let esp = "5b1e2c3d-0000-4000-8000-00000000ef00";
    let expected = ferrite_imaging::boot::install_bootloader(
        &scratch_disk(run.dir.path()),
        root,
        Some(esp),
        "uefi",
    );
    let (_, body) = run
        .command(
            "image.install_bootloader",
            json!({"root_uuid": root, "efi_system_part_uuid": esp,
                   "prep_boot_part_uuid": null, "target_boot_mode": "uefi"}),
            Some(TOKEN),
            true,
        )
        .await;
    match expected {
        Ok(()) => assert_eq!(body["command_status"], "SUCCEEDED", "{body}"),
        Err(err) => {
            assert_eq!(body["command_status"], "FAILED", "{body}");
            assert_eq!(body["command_error"]["details"], err.to_string());
        }
    }
    // ignore_bootloader_failure turns a failure into success.
    let (_, body) = run
        .command(
            "image.install_bootloader",
            json!({"root_uuid": root, "efi_system_part_uuid": esp, "target_boot_mode": "uefi",
                   "ignore_bootloader_failure": true}),
            Some(TOKEN),
            true,
        )
        .await;
    assert_eq!(body["command_status"], "SUCCEEDED", "{body}");
    run.agent.stop().await;
    conductor.stop().await;
}
