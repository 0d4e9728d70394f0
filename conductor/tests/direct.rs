//! The `direct` deploy interface end to end: a test agent inside the test
//! (IPA's command API over actix) looks up and heartbeats like IPA, and the
//! conductor drives cleaning and deploys through it.

mod common;
mod image_servers;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::TestServer;
use ferrite_baremetal_client::BaremetalClient;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const MAC: &str = "52:54:00:aa:bb:01";
const IMAGE: &str = "http://images.example.com/ubuntu.qcow2";

/// What the test agent knows and received.
#[derive(Default)]
struct AgentState {
    token: Mutex<Option<String>>,
    /// Every command received: (name, params).
    received: Mutex<Vec<(String, Value)>>,
    /// Command records as `GET /v1/commands` reports them.
    records: Mutex<Vec<Value>>,
    fail_write_image: AtomicBool,
    /// Commands sent with a missing or wrong token.
    refused: Mutex<u32>,
}

struct TestAgent {
    state: Arc<AgentState>,
    url: String,
    handle: actix_web::dev::ServerHandle,
}

impl TestAgent {
    async fn start() -> TestAgent {
        let state = Arc::new(AgentState::default());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind agent");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v1/commands", web::post().to(run_command))
                .route("/v1/commands", web::get().to(list_commands))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        TestAgent { state, url, handle }
    }

    fn names(&self) -> Vec<String> {
        self.state
            .received
            .lock()
            .expect("lock")
            .iter()
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn params_of(&self, name: &str) -> Value {
        self.state
            .received
            .lock()
            .expect("lock")
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
            .unwrap_or(Value::Null)
    }

    fn forget(&self) {
        self.state.received.lock().expect("lock").clear();
    }

    /// IPA's start: lookup by MAC, keep the token, heartbeat once.
    async fn check_in(&self, api: &str) -> Value {
        self.check_in_with(api, &format!("addresses={MAC}")).await
    }

    async fn check_in_with(&self, api: &str, query: &str) -> Value {
        let lookup = lookup(api, query).await;
        assert_eq!(lookup.0, 200, "lookup: {}", lookup.1);
        let config = &lookup.1["config"];
        assert_eq!(config["agent_token_required"], true);
        let token = config["agent_token"].as_str().expect("token").to_string();
        assert_ne!(token, "******", "the first lookup hands out the token");
        *self.state.token.lock().expect("lock") = Some(token.clone());
        let uuid = lookup.1["node"]["uuid"].as_str().expect("uuid").to_string();
        let status = heartbeat(api, &uuid, &self.url, Some(&token)).await;
        assert_eq!(status.0, 202, "heartbeat: {}", status.1);
        lookup.1
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

fn result_of(state: &AgentState, name: &str, params: &Value) -> Result<Value, Value> {
    match name {
        "deploy.get_deploy_steps" => Ok(json!({
            "deploy_steps": {"GenericHardwareManager": [
                {"step": "write_image", "priority": 80, "interface": "deploy", "reboot_requested": false, "argsinfo": null}
            ]},
            "hardware_manager_version": {"generic_hardware_manager": "1.2"},
        })),
        "deploy.execute_deploy_step" => {
            if state.fail_write_image.load(Ordering::SeqCst) {
                Err(json!({"type": "ImageWriteError", "code": 500,
                    "message": "Error writing image to device", "details": "disk /dev/sda is on fire"}))
            } else {
                Ok(json!({"deploy_result": {}, "deploy_step": params["step"]}))
            }
        }
        "standby.get_partition_uuids" => Ok(json!({
            "root uuid": "7ca2f0b8-7c5b-4cb5-a3e6-02b3d07a0c11",
            "efi system partition uuid": "2F3A-1B2C",
            "partitions": {},
        })),
        "image.install_bootloader" | "standby.power_off" => Ok(Value::Null),
        "clean.get_clean_steps" => Ok(json!({
            "clean_steps": {"GenericHardwareManager": [
                {"step": "erase_devices", "priority": 10, "interface": "deploy", "reboot_requested": false, "abortable": true},
                {"step": "erase_devices_metadata", "priority": 99, "interface": "deploy", "reboot_requested": false, "abortable": true},
            ]},
            "hardware_manager_version": {"generic_hardware_manager": "1.2"},
        })),
        "clean.execute_clean_step" => {
            Ok(json!({"clean_result": null, "clean_step": params["step"]}))
        }
        other => Err(json!({"type": "InvalidCommandError", "code": 400,
            "message": format!("Invalid command: unknown command {other}"), "details": ""})),
    }
}

async fn run_command(
    req: HttpRequest,
    state: web::Data<Arc<AgentState>>,
    body: web::Json<Value>,
) -> HttpResponse {
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    // The conductor sends the token in a header, never in the URL.
    assert!(
        !query.iter().any(|(k, _)| k == "agent_token"),
        "agent token in the query string"
    );
    let token = req
        .headers()
        .get("X-Agent-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let wait = query.iter().any(|(k, v)| k == "wait" && v == "true");
    let expected = state.token.lock().expect("lock").clone();
    if expected.is_none() || token != expected {
        *state.refused.lock().expect("lock") += 1;
        return HttpResponse::Unauthorized().json(json!({"type": "UnauthorizedError",
            "code": 401, "message": "Unauthorized", "details": "invalid token"}));
    }
    let name = body["name"].as_str().unwrap_or("").to_string();
    let params = body["params"].clone();
    state
        .received
        .lock()
        .expect("lock")
        .push((name.clone(), params.clone()));
    let id = uuid::Uuid::new_v4().to_string();
    let finished = match result_of(&state, &name, &params) {
        Ok(result) => json!({"id": id, "command_name": name, "command_params": params,
            "command_status": "SUCCEEDED", "command_result": result, "command_error": null}),
        Err(error) => json!({"id": id, "command_name": name, "command_params": params,
            "command_status": "FAILED", "command_result": null, "command_error": error}),
    };
    state.records.lock().expect("lock").push(finished.clone());
    if wait {
        return HttpResponse::Ok().json(finished);
    }
    // Asynchronous: RUNNING now, the final record on the next poll.
    let mut running = finished;
    running["command_status"] = json!("RUNNING");
    running["command_result"] = Value::Null;
    running["command_error"] = Value::Null;
    HttpResponse::Ok().json(running)
}

async fn list_commands(req: HttpRequest, state: web::Data<Arc<AgentState>>) -> HttpResponse {
    let token = req
        .headers()
        .get("X-Agent-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let expected = state.token.lock().expect("lock").clone();
    if expected.is_none() || token != expected || req.query_string().contains("agent_token") {
        *state.refused.lock().expect("lock") += 1;
        return HttpResponse::Unauthorized().json(json!({"type": "UnauthorizedError",
            "code": 401, "message": "Unauthorized", "details": "invalid token"}));
    }
    let records = state.records.lock().expect("lock").clone();
    HttpResponse::Ok().json(json!({ "commands": records }))
}

async fn lookup(api: &str, query: &str) -> (u16, Value) {
    lookup_at(api, query, "1.68").await
}

async fn lookup_at(api: &str, query: &str, version: &str) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .get(format!("{api}/v1/lookup?{query}"))
        .header("X-OpenStack-Ironic-API-Version", version)
        .send()
        .await
        .expect("lookup request");
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

async fn heartbeat(api: &str, node: &str, callback: &str, token: Option<&str>) -> (u16, Value) {
    let mut body = json!({"callback_url": callback, "agent_version": "9.0.0"});
    if let Some(token) = token {
        body["agent_token"] = json!(token);
    }
    let reply = reqwest::Client::new()
        .post(format!("{api}/v1/heartbeat/{node}"))
        .header("X-OpenStack-Ironic-API-Version", "1.68")
        .json(&body)
        .send()
        .await
        .expect("heartbeat request");
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn start(timeout_secs: u64) -> TestServer {
    TestServer::start_with("sqlite", move |config| {
        config.deploy.callback_timeout_secs = timeout_secs;
        config.node_locked_retry_attempts = 5;
        config.node_locked_retry_interval_ms = 100;
    })
    .await
}

/// An enrolled `direct` node with fake power, management and boot, and
/// one port.
/// `manage` and wait until the node is `manageable`.
async fn manage(api: &BaremetalClient, uuid: &str) {
    api.set_provision_state(uuid, "manage", None)
        .await
        .expect("manage");
    api.wait_for_provision_state(uuid, "manageable", WAIT)
        .await
        .expect("manageable");
}

async fn direct_node(api: &BaremetalClient, name: &str) -> String {
    direct_node_with_mac(api, name, MAC).await
}

async fn direct_node_with_mac(api: &BaremetalClient, name: &str, mac: &str) -> String {
    let node = api
        .create_node(&json!({
            "driver": "fake-hardware",
            "name": name,
            "deploy_interface": "direct",
            "boot_interface": "fake",
            "network_interface": "noop",
            "properties": {"cpus": 2, "memory_mb": 2048, "local_gb": 20},
        }))
        .await
        .expect("create node");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    api.create_port(&json!({"address": mac, "node_uuid": uuid}))
        .await
        .expect("create port");
    uuid
}

/// manage → provide through an automated clean run by the agent.
async fn make_available(api: &BaremetalClient, agent: &TestAgent, uuid: &str) {
    make_available_with(api, agent, uuid, &format!("addresses={MAC}")).await
}

async fn make_available_with(api: &BaremetalClient, agent: &TestAgent, uuid: &str, query: &str) {
    api.set_provision_state(uuid, "manage", None)
        .await
        .expect("manage");
    api.wait_for_provision_state(uuid, "manageable", WAIT)
        .await
        .expect("manageable");
    api.set_provision_state(uuid, "provide", None)
        .await
        .expect("provide");
    wait_for_state(api, uuid, "clean wait").await;
    agent.check_in_with(api.base(), query).await;
    api.wait_for_provision_state(uuid, "available", WAIT)
        .await
        .expect("available after cleaning");
}

async fn wait_for_state(api: &BaremetalClient, uuid: &str, wanted: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        let node = api.get_node(uuid).await.expect("get node");
        if node["provision_state"] == wanted {
            return node;
        }
        assert!(
            start.elapsed() < WAIT,
            "node stuck in {} waiting for {wanted}: {}",
            node["provision_state"],
            node["last_error"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn set_image(api: &BaremetalClient, uuid: &str) {
    api.patch_node(
        uuid,
        &json!([
            {"op": "add", "path": "/instance_info/image_source", "value": IMAGE},
            {"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
            {"op": "add", "path": "/instance_info/image_os_hash_value", "value": "0123abcd"},
            {"op": "add", "path": "/instance_info/image_disk_format", "value": "qcow2"},
            {"op": "add", "path": "/instance_info/image_type", "value": "partition"},
            {"op": "add", "path": "/instance_info/root_gb", "value": "10"},
        ]),
    )
    .await
    .expect("instance_info");
}

#[tokio::test]
async fn automated_clean_runs_erase_devices_metadata_through_the_agent() {
    let server = start(600).await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "clean-1").await;
    manage(&api, &uuid).await;
    api.set_provision_state(&uuid, "provide", None)
        .await
        .expect("provide");
    let waiting = wait_for_state(&api, &uuid, "clean wait").await;
    assert_eq!(waiting["target_provision_state"], "available");
    let steps = &waiting["driver_internal_info"]["clean_steps"];
    assert_eq!(steps[0]["step"], "erase_devices_metadata", "{steps}");
    assert_eq!(steps[0]["priority"], 99);

    // The first lookup hands the token out; the second does not.
    let first = agent.check_in(api.base()).await;
    assert_eq!(first["node"]["uuid"], uuid.as_str());
    assert_eq!(
        first["node"]["driver_internal_info"]["agent_secret_token"], "******",
        "the node view masks the token"
    );
    let node = api
        .wait_for_provision_state(&uuid, "available", WAIT)
        .await
        .expect("available");
    assert_eq!(node["power_state"], "power off");
    assert!(node["driver_internal_info"]
        .get("agent_secret_token")
        .is_none());
    assert!(node["driver_internal_info"].get("agent_url").is_none());
    let names = agent.names();
    assert_eq!(
        names,
        vec!["clean.get_clean_steps", "clean.execute_clean_step"],
        "{names:?}"
    );
    let executed = agent.params_of("clean.execute_clean_step");
    assert_eq!(executed["step"]["step"], "erase_devices_metadata");
    assert_eq!(executed["node"]["uuid"], uuid.as_str());
    assert_eq!(executed["ports"][0]["address"], MAC);
    assert_eq!(*agent.state.refused.lock().expect("lock"), 0);

    // Not waiting for an agent any more: lookup is refused.
    let (status, _) = lookup(api.base(), &format!("addresses={MAC}")).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn second_lookup_does_not_return_the_token_again() {
    let server = start(600).await;
    let api = server.client();
    let uuid = direct_node(&api, "lookup-1").await;
    manage(&api, &uuid).await;
    api.set_provision_state(&uuid, "provide", None)
        .await
        .expect("provide");
    wait_for_state(&api, &uuid, "clean wait").await;
    // Before 1.62 there are no agent tokens: none is generated.
    let (status, early) = lookup_at(
        api.base(),
        &format!("node_uuid={uuid}&addresses={MAC}"),
        "1.22",
    )
    .await;
    assert_eq!(status, 200, "{early}");
    assert!(early["config"]["agent_token"].is_null(), "{early}");
    assert_eq!(early["node"]["uuid"], uuid.as_str());
    let (status, first) = lookup(api.base(), &format!("node_uuid={uuid}&addresses={MAC}")).await;
    assert_eq!(status, 200, "{first}");
    let token = first["config"]["agent_token"].as_str().expect("token");
    assert!(token.len() > 100, "{token}");
    assert_eq!(first["config"]["heartbeat_timeout"], 300);
    let (status, second) = lookup(api.base(), &format!("addresses={MAC}")).await;
    assert_eq!(status, 200);
    assert_eq!(second["config"]["agent_token"], "******");
    // Below 1.22 the endpoint does not exist.
    let old = reqwest::Client::new()
        .get(format!("{}/v1/lookup?addresses={MAC}", api.base()))
        .send()
        .await
        .expect("old lookup");
    assert_eq!(old.status().as_u16(), 404);
    let (status, _) = lookup(api.base(), "addresses=not-a-mac").await;
    assert_eq!(status, 400);
    let (status, _) = lookup(api.base(), "").await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn lookup_is_refused_for_nodes_not_waiting() {
    let server = start(600).await;
    let api = server.client();
    let uuid = direct_node(&api, "idle-1").await;
    let (status, body) = lookup(api.base(), &format!("addresses={MAC}")).await;
    assert_eq!(status, 404, "enroll: {body}");
    let (status, _) = lookup(api.base(), &format!("node_uuid={uuid}")).await;
    assert_eq!(status, 404);
    let (status, _) = lookup(api.base(), "addresses=52:54:00:00:00:99").await;
    assert_eq!(status, 404, "unknown MAC");
    server.stop().await;
}

#[tokio::test]
async fn heartbeat_with_a_wrong_or_missing_token_is_refused() {
    let server = start(600).await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "token-1").await;
    manage(&api, &uuid).await;
    api.set_provision_state(&uuid, "provide", None)
        .await
        .expect("provide");
    wait_for_state(&api, &uuid, "clean wait").await;
    let (status, _) = lookup(api.base(), &format!("addresses={MAC}")).await;
    assert_eq!(status, 200);
    let (status, body) = heartbeat(api.base(), &uuid, &agent.url, Some("forged")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("Invalid or missing agent token"),
        "{body}"
    );
    let (status, body) = heartbeat(api.base(), &uuid, &agent.url, None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("Agent token is required"),
        "{body}"
    );
    // Nothing moved and the agent was never called.
    let node = api.get_node(&uuid).await.expect("node");
    assert_eq!(node["provision_state"], "clean wait");
    assert!(agent.names().is_empty());
    server.stop().await;
}

/// A callback URL nobody listens on.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    url
}

#[tokio::test]
async fn the_agent_token_never_shows_in_errors_or_history() {
    for kind in common::backends() {
        token_never_in_errors_on(kind).await;
    }
}

async fn token_never_in_errors_on(kind: &str) {
    let server = TestServer::start_with(kind, |config| {
        config.deploy.callback_timeout_secs = 600;
        config.node_locked_retry_attempts = 5;
        config.node_locked_retry_interval_ms = 100;
    })
    .await;
    let api = server.client();
    let uuid = direct_node(&api, "leak-1").await;
    manage(&api, &uuid).await;
    api.set_provision_state(&uuid, "provide", None)
        .await
        .expect("provide");
    wait_for_state(&api, &uuid, "clean wait").await;
    let (status, body) = lookup(api.base(), &format!("addresses={MAC}")).await;
    assert_eq!(status, 200, "{body}");
    let token = body["config"]["agent_token"]
        .as_str()
        .expect("token")
        .to_string();
    // The agent's callback URL leads nowhere: the first command fails.
    let (status, body) = heartbeat(api.base(), &uuid, &dead_url(), Some(&token)).await;
    assert_eq!(status, 202, "{body}");
    let node = wait_for_state(&api, &uuid, "clean failed").await;
    let last_error = node["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        last_error.contains("Failed to connect to the agent"),
        "{last_error}"
    );
    assert!(
        !last_error.contains(&token),
        "token in last_error: {last_error}"
    );
    assert!(!last_error.contains("agent_token"), "{last_error}");
    let history = api
        .raw(
            reqwest::Method::GET,
            &format!("/v1/nodes/{uuid}/history?detail=true"),
            None,
        )
        .await
        .expect("history");
    let text = history.body.to_string();
    assert!(text.contains("Failed to connect"), "{text}");
    assert!(!text.contains(&token), "token in the node history: {text}");
    server.stop().await;
}

#[tokio::test]
async fn direct_deploy_writes_the_image_through_the_agent_then_undeploys() {
    let server = start(600).await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "deploy-1").await;
    make_available(&api, &agent, &uuid).await;
    agent.forget();
    set_image(&api, &uuid).await;
    let configdrive = json!({"meta_data": {"uuid": "4ab0a3c5-bd57-4b0c-9cd1-1c1f4d6c0e61", "hostname": "deploy-1"},
        "user_data": "#!/bin/sh\necho hi\n"});
    api.set_provision_state(&uuid, "active", Some(&json!({"configdrive": configdrive})))
        .await
        .expect("deploy");
    let waiting = wait_for_state(&api, &uuid, "wait call-back").await;
    assert_eq!(waiting["target_provision_state"], "active");
    assert_eq!(waiting["deploy_step"]["step"], "deploy");
    let recorded: Vec<&str> = waiting["driver_internal_info"]["deploy_steps"]
        .as_array()
        .expect("deploy steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(
        recorded,
        vec![
            "deploy",
            "write_image",
            "prepare_instance_boot",
            "tear_down_agent",
            "switch_to_tenant_network",
            "boot_instance"
        ]
    );
    agent.check_in(api.base()).await;
    let node = api
        .wait_for_provision_state(&uuid, "active", WAIT)
        .await
        .expect("active");
    assert_eq!(node["power_state"], "power on");
    assert_eq!(node["deploy_step"], json!({}));
    assert!(node["driver_internal_info"]
        .get("agent_secret_token")
        .is_none());

    let names = agent.names();
    assert_eq!(
        names,
        vec![
            "deploy.get_deploy_steps",
            "deploy.execute_deploy_step",
            "standby.get_partition_uuids",
            "image.install_bootloader",
            "standby.power_off",
        ],
        "{names:?}"
    );
    let write = agent.params_of("deploy.execute_deploy_step");
    assert_eq!(write["step"]["step"], "write_image");
    let info = &write["step"]["args"]["image_info"];
    assert_eq!(info["urls"], json!([IMAGE]));
    assert_eq!(info["os_hash_algo"], "sha256");
    assert_eq!(info["os_hash_value"], "0123abcd");
    assert_eq!(info["disk_format"], "qcow2");
    assert_eq!(info["image_type"], "partition");
    assert_eq!(info["root_mb"], 10240);
    assert_eq!(
        write["deploy_version"],
        json!({"generic_hardware_manager": "1.2"})
    );
    assert_eq!(info["node_uuid"], uuid.as_str());
    assert_eq!(info["configdrive"], write["step"]["args"]["configdrive"]);
    assert_eq!(
        write["node"]["instance_info"]["configdrive"]["meta_data"]["hostname"], "deploy-1",
        "deploy steps get the node with its config drive"
    );
    let packed = write["step"]["args"]["configdrive"]
        .as_str()
        .expect("configdrive string");
    let iso = ferrite_configdrive::unpack(packed).expect("gzip+base64");
    let files = ferrite_configdrive::read_iso_files(&iso).expect("ISO");
    assert_eq!(
        files.get("openstack/latest/user_data").map(Vec::as_slice),
        Some(&b"#!/bin/sh\necho hi\n"[..])
    );
    let meta: Value = serde_json::from_slice(
        files
            .get("openstack/latest/meta_data.json")
            .expect("meta_data"),
    )
    .expect("json");
    assert_eq!(meta["hostname"], "deploy-1");
    let bootloader = agent.params_of("image.install_bootloader");
    assert_eq!(
        bootloader["root_uuid"],
        "7ca2f0b8-7c5b-4cb5-a3e6-02b3d07a0c11"
    );
    assert_eq!(bootloader["efi_system_part_uuid"], "2F3A-1B2C");
    assert_eq!(bootloader["target_boot_mode"], "uefi");

    // Undeploy: tear down, then clean through a fresh agent boot.
    let old_token = agent.state.token.lock().expect("lock").clone();
    agent.forget();
    api.set_provision_state(&uuid, "deleted", None)
        .await
        .expect("undeploy");
    wait_for_state(&api, &uuid, "clean wait").await;
    let (status, _) = heartbeat(api.base(), &uuid, &agent.url, old_token.as_deref()).await;
    assert_eq!(status, 400, "the old agent's token is gone");
    agent.check_in(api.base()).await;
    let node = api
        .wait_for_provision_state(&uuid, "available", WAIT)
        .await
        .expect("available after undeploy");
    assert_eq!(node["power_state"], "power off");
    assert_eq!(node["instance_info"], json!({}));
    assert_eq!(
        agent.names(),
        vec!["clean.get_clean_steps", "clean.execute_clean_step"]
    );
    server.stop().await;
}

#[tokio::test]
async fn whole_disk_image_skips_the_bootloader() {
    let server = start(600).await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "wd-1").await;
    make_available(&api, &agent, &uuid).await;
    agent.forget();
    api.patch_node(
        &uuid,
        &json!([{"op": "add", "path": "/instance_info/image_source", "value": "http://images.example.com/disk.raw"},
                {"op": "add", "path": "/instance_info/image_checksum", "value": "abc"}]),
    )
    .await
    .expect("instance_info");
    api.set_provision_state(&uuid, "active", None)
        .await
        .expect("deploy");
    wait_for_state(&api, &uuid, "wait call-back").await;
    agent.check_in(api.base()).await;
    api.wait_for_provision_state(&uuid, "active", WAIT)
        .await
        .expect("active");
    assert_eq!(
        agent.names(),
        vec![
            "deploy.get_deploy_steps",
            "deploy.execute_deploy_step",
            "standby.get_partition_uuids",
            "standby.power_off"
        ]
    );
    let node = api.get_node(&uuid).await.expect("node");
    assert_eq!(
        node["driver_internal_info"]["root_uuid_or_disk_id"],
        "7ca2f0b8-7c5b-4cb5-a3e6-02b3d07a0c11"
    );
    let write = agent.params_of("deploy.execute_deploy_step");
    let info = &write["step"]["args"]["image_info"];
    assert_eq!(info["image_type"], "whole-disk");
    assert_eq!(info["checksum"], "abc");
    assert!(info.get("root_mb").is_none());
    assert!(write["step"]["args"]["configdrive"].is_null());
    server.stop().await;
}

#[tokio::test]
async fn callback_timeout_fails_the_deploy_and_a_retry_succeeds() {
    let server = start(2).await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "timeout-1").await;
    make_available(&api, &agent, &uuid).await;
    set_image(&api, &uuid).await;
    api.set_provision_state(&uuid, "active", None)
        .await
        .expect("deploy");
    // Nobody calls back.
    let failed = wait_for_state(&api, &uuid, "deploy failed").await;
    assert_eq!(
        failed["last_error"],
        format!("Timeout reached while waiting for callback for node {uuid}")
    );
    assert_eq!(failed["power_state"], "power off");
    let (status, _) = lookup(api.base(), &format!("addresses={MAC}")).await;
    assert_eq!(status, 404, "no lookup once failed");

    agent.forget();
    api.set_provision_state(&uuid, "active", None)
        .await
        .expect("retry deploy");
    wait_for_state(&api, &uuid, "wait call-back").await;
    agent.check_in(api.base()).await;
    let node = api
        .wait_for_provision_state(&uuid, "active", WAIT)
        .await
        .expect("active after retry");
    assert!(node["last_error"].is_null());
    assert!(agent
        .names()
        .contains(&"deploy.execute_deploy_step".to_string()));
    server.stop().await;
}

#[tokio::test]
async fn clean_wait_timeout_fails_the_clean() {
    let server = start(2).await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "clean-timeout-1").await;
    manage(&api, &uuid).await;
    api.set_provision_state(&uuid, "provide", None)
        .await
        .expect("provide");
    let failed = wait_for_state(&api, &uuid, "clean failed").await;
    let error = failed["last_error"].as_str().unwrap_or("");
    assert!(
        error.starts_with("Timeout reached while cleaning the node."),
        "{error}"
    );
    assert_eq!(
        failed["target_provision_state"], "available",
        "a clean wait timeout keeps the target"
    );
    assert_eq!(failed["power_state"], "power off");
    // manage from clean failed works again.
    api.set_provision_state(&uuid, "manage", None)
        .await
        .expect("manage after clean failed");
    api.wait_for_provision_state(&uuid, "manageable", WAIT)
        .await
        .expect("manageable again");
    // ... and provide, with an agent this time, makes it available.
    make_available_after_manage(&api, &agent, &uuid).await;
    server.stop().await;
}

#[tokio::test]
async fn failing_write_image_fails_the_deploy_with_the_agents_message() {
    let server = start(600).await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "fail-1").await;
    make_available(&api, &agent, &uuid).await;
    set_image(&api, &uuid).await;
    agent.state.fail_write_image.store(true, Ordering::SeqCst);
    api.set_provision_state(&uuid, "active", None)
        .await
        .expect("deploy");
    wait_for_state(&api, &uuid, "wait call-back").await;
    agent.check_in(api.base()).await;
    let failed = wait_for_state(&api, &uuid, "deploy failed").await;
    let error = failed["last_error"].as_str().unwrap_or("");
    assert!(error.contains("deploy.write_image"), "{error}");
    assert!(error.contains("Error writing image to device"), "{error}");
    assert!(error.contains("disk /dev/sda is on fire"), "{error}");
    assert!(failed["driver_internal_info"]
        .get("agent_secret_token")
        .is_none());

    // Fixed agent: deploying again succeeds.
    agent.state.fail_write_image.store(false, Ordering::SeqCst);
    api.set_provision_state(&uuid, "active", None)
        .await
        .expect("retry");
    wait_for_state(&api, &uuid, "wait call-back").await;
    agent.check_in(api.base()).await;
    api.wait_for_provision_state(&uuid, "active", WAIT)
        .await
        .expect("active after retry");
    server.stop().await;
}

/// A tiny image server counting downloads.
async fn image_server(body: Vec<u8>) -> (String, Arc<Mutex<u32>>, actix_web::dev::ServerHandle) {
    let hits = Arc::new(Mutex::new(0u32));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind images");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let counter = hits.clone();
    let body = web::Bytes::from(body);
    let server = HttpServer::new(move || {
        let counter = counter.clone();
        let body = body.clone();
        App::new().route(
            "/disk.qcow2",
            web::get().to(move || {
                let counter = counter.clone();
                let body = body.clone();
                async move {
                    *counter.lock().expect("lock") += 1;
                    HttpResponse::Ok().body(body)
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, hits, handle)
}

#[tokio::test]
async fn http_download_source_caches_converts_and_serves_the_image_once() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let qcow2 = scratch.path().join("disk.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-f", "qcow2"])
        .arg(&qcow2)
        .arg("1M")
        .output()
        .expect("qemu-img");
    assert!(made.status.success(), "{made:?}");
    let (images, hits, images_handle) = image_server(std::fs::read(&qcow2).expect("read")).await;
    let source_digest = sha256(&qcow2);
    let http_root = scratch.path().join("http");
    let cache = scratch.path().join("cache");
    let (root, cache_dir) = (http_root.clone(), cache.clone());
    let server = TestServer::start_with("sqlite", move |config| {
        config.deploy.http_root = root;
        config.deploy.image_cache_dir = cache_dir;
        config.deploy.http_url = Some("http://192.0.2.1:8080".into());
    })
    .await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let mut served_urls = Vec::new();
    for (name, mac) in [
        ("cache-1", "52:54:00:cc:00:01"),
        ("cache-2", "52:54:00:cc:00:02"),
    ] {
        let uuid = direct_node_with_mac(&api, name, mac).await;
        make_available_with(&api, &agent, &uuid, &format!("addresses={mac}")).await;
        agent.forget();
        api.patch_node(
            &uuid,
            &json!([
                {"op": "add", "path": "/instance_info/image_source", "value": format!("{images}/disk.qcow2")},
                {"op": "add", "path": "/instance_info/image_disk_format", "value": "qcow2"},
                {"op": "add", "path": "/instance_info/image_download_source", "value": "http"},
                {"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
                {"op": "add", "path": "/instance_info/image_os_hash_value", "value": source_digest},
            ]),
        )
        .await
        .expect("instance_info");
        api.set_provision_state(&uuid, "active", None)
            .await
            .expect("deploy");
        wait_for_state(&api, &uuid, "wait call-back").await;
        agent
            .check_in_with(api.base(), &format!("node_uuid={uuid}&addresses={mac}"))
            .await;
        api.wait_for_provision_state(&uuid, "active", WAIT)
            .await
            .expect("active");
        let info =
            agent.params_of("deploy.execute_deploy_step")["step"]["args"]["image_info"].clone();
        assert_eq!(info["disk_format"], "raw", "{info}");
        assert_eq!(info["os_hash_algo"], "sha256");
        let url = info["urls"][0].as_str().expect("url").to_string();
        assert!(url.starts_with("http://192.0.2.1:8080/images/"), "{url}");
        let name = url.rsplit('/').next().expect("name").to_string();
        assert!(
            name.ends_with(&format!("-{uuid}.img")),
            "one copy per node: {name}"
        );
        assert!(
            !http_root.join("images").join(&name).exists(),
            "the node's copy is no longer served once written"
        );
        let key = name.split_once('-').expect("key").0;
        let file = cache.join(format!("{key}.raw"));
        let raw = std::fs::read(&file).expect("cached image");
        assert_eq!(raw.len(), 1024 * 1024, "converted to raw");
        assert_eq!(
            info["os_hash_value"],
            sha256(&file).as_str(),
            "the checksum of what is served"
        );
        served_urls.push(key.to_string());
    }
    assert_eq!(
        served_urls[0], served_urls[1],
        "one cached copy for both nodes"
    );
    assert_eq!(*hits.lock().expect("lock"), 1, "downloaded once");
    images_handle.stop(false).await;
    server.stop().await;
}

#[tokio::test]
async fn nodes_left_waiting_by_a_previous_run_time_out() {
    let server = start(600).await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "restart-1").await;
    make_available(&api, &agent, &uuid).await;
    set_image(&api, &uuid).await;
    api.set_provision_state(&uuid, "active", None)
        .await
        .expect("deploy");
    wait_for_state(&api, &uuid, "wait call-back").await;
    let db = server.shutdown().await;
    let server = TestServer::start_on(db, |config| {
        config.deploy.callback_timeout_secs = 1;
    })
    .await;
    let api = server.client();
    let failed = wait_for_state(&api, &uuid, "deploy failed").await;
    assert_eq!(
        failed["last_error"],
        format!("Timeout reached while waiting for callback for node {uuid}")
    );
    server.stop().await;
}

#[tokio::test]
async fn manual_clean_runs_the_requested_agent_step() {
    let server = start(600).await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "manual-1").await;
    manage(&api, &uuid).await;
    let steps = json!([{"interface": "deploy", "step": "erase_devices_metadata"}]);
    api.set_provision_state(&uuid, "clean", Some(&json!({"clean_steps": steps})))
        .await
        .expect("clean");
    let waiting = wait_for_state(&api, &uuid, "clean wait").await;
    assert_eq!(waiting["target_provision_state"], "manageable");
    agent.check_in(api.base()).await;
    let node = api
        .wait_for_provision_state(&uuid, "manageable", WAIT)
        .await
        .expect("manageable after manual clean");
    assert_eq!(node["power_state"], "power off");
    let executed = agent.params_of("clean.execute_clean_step");
    assert_eq!(executed["step"]["step"], "erase_devices_metadata");
    assert_eq!(
        executed["clean_version"],
        json!({"generic_hardware_manager": "1.2"})
    );
    server.stop().await;
}

#[tokio::test]
async fn undeploy_while_waiting_for_the_agent_tears_down() {
    let server = start(600).await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "abandon-1").await;
    make_available(&api, &agent, &uuid).await;
    set_image(&api, &uuid).await;
    api.set_provision_state(&uuid, "active", None)
        .await
        .expect("deploy");
    wait_for_state(&api, &uuid, "wait call-back").await;
    let (status, _) = lookup(api.base(), &format!("addresses={MAC}")).await;
    assert_eq!(status, 200);
    api.set_provision_state(&uuid, "deleted", None)
        .await
        .expect("undeploy from wait call-back");
    // Teardown then cleaning, which boots the ramdisk again.
    let node = wait_for_state(&api, &uuid, "clean wait").await;
    assert_eq!(node["instance_info"], json!({}));
    assert!(
        node["driver_internal_info"]
            .get("agent_secret_token")
            .is_none(),
        "the deploy's token is gone"
    );
    agent.check_in(api.base()).await;
    api.wait_for_provision_state(&uuid, "available", WAIT)
        .await
        .expect("available");
    server.stop().await;
}

#[tokio::test]
async fn file_images_are_served_from_the_http_root() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let image = scratch.path().join("disk.raw");
    std::fs::write(&image, vec![7u8; 4096]).expect("image");
    let (root, cache) = (scratch.path().join("http"), scratch.path().join("cache"));
    let (allowed, cache_dir) = (scratch.path().to_path_buf(), cache.clone());
    let server = TestServer::start_with("sqlite", move |config| {
        config.deploy.http_root = root;
        config.deploy.image_cache_dir = cache;
        config.deploy.http_bind = Some("127.0.0.1:8089".into());
        config.deploy.file_url_allowed_paths = vec![allowed];
    })
    .await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "file-1").await;
    make_available(&api, &agent, &uuid).await;
    api.patch_node(
        &uuid,
        &json!([
            {"op": "add", "path": "/instance_info/image_source", "value": format!("file://{}", image.display())},
            {"op": "add", "path": "/instance_info/image_disk_format", "value": "raw"},
        ]),
    )
    .await
    .expect("instance_info");
    api.set_provision_state(&uuid, "active", None)
        .await
        .expect("deploy");
    wait_for_state(&api, &uuid, "wait call-back").await;
    agent.check_in(api.base()).await;
    api.wait_for_provision_state(&uuid, "active", WAIT)
        .await
        .expect("active");
    let info = agent.params_of("deploy.execute_deploy_step")["step"]["args"]["image_info"].clone();
    let url = info["urls"][0].as_str().expect("url");
    // Without http_url the URL comes from http_bind.
    assert!(url.starts_with("http://127.0.0.1:8089/images/"), "{url}");
    let name = url.rsplit('/').next().expect("name");
    let key = name.split_once('-').expect("key").0;
    let cached = cache_dir.join(format!("{key}.raw"));
    assert_eq!(std::fs::read(cached).expect("cached"), vec![7u8; 4096]);
    assert_eq!(info["disk_format"], "raw");
    server.stop().await;
}

#[tokio::test]
async fn a_missing_image_fails_the_deploy_with_a_clear_error() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let (root, cache) = (scratch.path().join("http"), scratch.path().join("cache"));
    let allowed = scratch.path().to_path_buf();
    let missing = scratch.path().join("nonexistent/disk.raw");
    let server = TestServer::start_with("sqlite", move |config| {
        config.deploy.http_root = root;
        config.deploy.image_cache_dir = cache;
        config.deploy.http_url = Some("http://192.0.2.1".into());
        config.deploy.file_url_allowed_paths = vec![allowed];
    })
    .await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "missing-1").await;
    make_available(&api, &agent, &uuid).await;
    agent.forget();
    api.patch_node(
        &uuid,
        &json!([{"op": "add", "path": "/instance_info/image_source", "value": format!("file://{}", missing.display())}]),
    )
    .await
    .expect("instance_info");
    api.set_provision_state(&uuid, "active", None)
        .await
        .expect("deploy");
    wait_for_state(&api, &uuid, "wait call-back").await;
    agent.check_in(api.base()).await;
    let failed = wait_for_state(&api, &uuid, "deploy failed").await;
    let error = failed["last_error"].as_str().unwrap_or("");
    assert!(error.contains("deploy.write_image"), "{error}");
    assert!(error.contains("Cannot read image"), "{error}");
    assert!(error.contains("nonexistent/disk.raw"), "{error}");
    assert!(
        !agent
            .names()
            .contains(&"deploy.execute_deploy_step".to_string()),
        "the agent was never asked to write"
    );
    server.stop().await;
}

fn sha256(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn a_cached_image_with_a_wrong_checksum_fails_the_deploy() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let image = scratch.path().join("disk.raw");
    std::fs::write(&image, vec![1u8; 1024]).expect("image");
    let (root, cache) = (scratch.path().join("http"), scratch.path().join("cache"));
    let cache_dir = cache.clone();
    let allowed = scratch.path().to_path_buf();
    let server = TestServer::start_with("sqlite", move |config| {
        config.deploy.http_root = root;
        config.deploy.image_cache_dir = cache;
        config.deploy.http_url = Some("http://192.0.2.1".into());
        config.deploy.file_url_allowed_paths = vec![allowed];
    })
    .await;
    let api = server.client();
    let agent = TestAgent::start().await;
    let uuid = direct_node(&api, "checksum-1").await;
    make_available(&api, &agent, &uuid).await;
    agent.forget();
    let wrong = "0".repeat(64);
    api.patch_node(
        &uuid,
        &json!([
            {"op": "add", "path": "/instance_info/image_source", "value": format!("file://{}", image.display())},
            {"op": "add", "path": "/instance_info/image_disk_format", "value": "raw"},
            {"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
            {"op": "add", "path": "/instance_info/image_os_hash_value", "value": wrong},
        ]),
    )
    .await
    .expect("instance_info");
    api.set_provision_state(&uuid, "active", None)
        .await
        .expect("deploy");
    wait_for_state(&api, &uuid, "wait call-back").await;
    agent.check_in(api.base()).await;
    let failed = wait_for_state(&api, &uuid, "deploy failed").await;
    let error = failed["last_error"].as_str().unwrap_or("");
    assert!(error.contains("does not match"), "{error}");
    assert!(error.contains(&sha256(&image)), "{error}");
    assert!(
        !agent
            .names()
            .contains(&"deploy.execute_deploy_step".to_string()),
        "nothing written"
    );
    let cached: Vec<_> = std::fs::read_dir(&cache_dir)
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        cached.is_empty(),
        "a bad download is not cached: {cached:?}"
    );
    server.stop().await;
}

/// provide from manageable, with the agent checking in during clean wait.
async fn make_available_after_manage(api: &BaremetalClient, agent: &TestAgent, uuid: &str) {
    api.set_provision_state(uuid, "provide", None)
        .await
        .expect("provide");
    wait_for_state(api, uuid, "clean wait").await;
    agent.check_in(api.base()).await;
    let node = api
        .wait_for_provision_state(uuid, "available", WAIT)
        .await
        .expect("available");
    assert!(node["last_error"].is_null(), "{}", node["last_error"]);
}

/// Deploys `uuid` from `image_source` through the conductor's image cache
/// (the test agent checks in when the node waits for it) and waits for
/// `active` or `deploy failed`.
async fn deploy_through_the_cache(
    api: &BaremetalClient,
    agent: &TestAgent,
    uuid: &str,
    image_source: &str,
    disk_format: &str,
) -> Value {
    api.patch_node(
        uuid,
        &json!([
            {"op": "add", "path": "/instance_info/image_source", "value": image_source},
            {"op": "add", "path": "/instance_info/image_disk_format", "value": disk_format},
            {"op": "add", "path": "/instance_info/image_download_source", "value": "http"},
        ]),
    )
    .await
    .expect("instance_info");
    api.set_provision_state(uuid, "active", None)
        .await
        .expect("deploy");
    wait_for_state(api, uuid, "wait call-back").await;
    agent
        .check_in_with(api.base(), &format!("node_uuid={uuid}&addresses={MAC}"))
        .await;
    let start = std::time::Instant::now();
    loop {
        let node = api.get_node(uuid).await.expect("get node");
        if node["provision_state"] == "active" || node["provision_state"] == "deploy failed" {
            return node;
        }
        assert!(
            start.elapsed() < WAIT,
            "node stuck in {} ({})",
            node["provision_state"],
            node["last_error"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A conductor serving cached images from `scratch/http`.
async fn start_caching(
    kind: &str,
    scratch: &std::path::Path,
    adjust: impl FnOnce(&mut ferrite_conductor::Config),
) -> TestServer {
    let (root, cache) = (scratch.join("http"), scratch.join("cache"));
    TestServer::start_with(kind, move |config| {
        config.deploy.http_root = root;
        config.deploy.image_cache_dir = cache;
        config.deploy.http_url = Some("http://192.0.2.1:8080".into());
        config.node_locked_retry_attempts = 5;
        config.node_locked_retry_interval_ms = 100;
        adjust(config);
    })
    .await
}

#[tokio::test]
async fn a_qcow2_with_a_backing_file_fails_the_deploy_with_a_clear_error() {
    for kind in common::backends() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let secret = scratch.path().join("secret.raw");
        std::fs::write(&secret, b"conductor host secret").expect("secret");
        let evil = scratch.path().join("evil.qcow2");
        let made = std::process::Command::new("qemu-img")
            .args(["create", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&secret)
            .arg(&evil)
            .arg("1M")
            .output()
            .expect("qemu-img");
        assert!(made.status.success(), "{made:?}");
        let images = image_servers::ImageServer::start(vec![(
            "/evil.qcow2",
            image_servers::Reply::Full(std::fs::read(&evil).expect("read")),
        )])
        .await;
        let server = start_caching(kind, scratch.path(), |_| {}).await;
        let api = server.client();
        let agent = TestAgent::start().await;
        let uuid = direct_node(&api, "backing-1").await;
        make_available(&api, &agent, &uuid).await;
        agent.forget();
        let node = deploy_through_the_cache(
            &api,
            &agent,
            &uuid,
            &format!("{}/evil.qcow2", images.url),
            "qcow2",
        )
        .await;
        assert_eq!(node["provision_state"], "deploy failed", "{kind}");
        let error = node["last_error"].as_str().unwrap_or("");
        assert!(error.contains("deploy.write_image"), "{kind}: {error}");
        assert!(error.contains("backing file"), "{kind}: {error}");
        assert!(
            node["reservation"].is_null(),
            "{kind}: the lock is released"
        );
        assert!(
            !agent
                .names()
                .contains(&"deploy.execute_deploy_step".to_string()),
            "{kind}: the agent was never asked to write"
        );
        let served: Vec<_> = std::fs::read_dir(scratch.path().join("http/images"))
            .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(served.is_empty(), "{kind}: nothing served: {served:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_slow_drip_download_fails_the_deploy_instead_of_hanging() {
    for kind in common::backends() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let images = image_servers::ImageServer::start(vec![
            (
                "/drip.raw",
                image_servers::Reply::Drip {
                    length: 1 << 30,
                    every: Duration::from_millis(50),
                },
            ),
            (
                "/disk.raw",
                image_servers::Reply::Full(vec![9u8; 64 * 1024]),
            ),
        ])
        .await;
        let server = start_caching(kind, scratch.path(), |config| {
            config.deploy.image_download_timeout_secs = 1;
        })
        .await;
        let api = server.client();
        let agent = TestAgent::start().await;
        let uuid = direct_node(&api, "drip-1").await;
        make_available(&api, &agent, &uuid).await;
        let node = deploy_through_the_cache(
            &api,
            &agent,
            &uuid,
            &format!("{}/drip.raw", images.url),
            "raw",
        )
        .await;
        assert_eq!(node["provision_state"], "deploy failed", "{kind}");
        let error = node["last_error"].as_str().unwrap_or("");
        assert!(error.contains("/drip.raw"), "{kind}: {error}");
        assert!(
            error.contains("image_download_timeout_secs"),
            "{kind}: {error}"
        );
        assert!(
            node["reservation"].is_null(),
            "{kind}: the lock is released"
        );
        // The node is not stuck: deploying it again from a good image works.
        let node = deploy_through_the_cache(
            &api,
            &agent,
            &uuid,
            &format!("{}/disk.raw", images.url),
            "raw",
        )
        .await;
        assert_eq!(
            node["provision_state"], "active",
            "{kind}: {}",
            node["last_error"]
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_deploy_step_that_overruns_its_deadline_fails_the_deploy() {
    for kind in common::backends() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let images = image_servers::ImageServer::start(vec![(
            "/stall.raw",
            image_servers::Reply::Stall { length: 1 << 20 },
        )])
        .await;
        // The download alone would wait a minute for the next byte.
        let server = start_caching(kind, scratch.path(), |config| {
            config.deploy.image_download_read_timeout_secs = 60;
            config.deploy.deploy_step_timeout_secs = 1;
        })
        .await;
        let api = server.client();
        let agent = TestAgent::start().await;
        let uuid = direct_node(&api, "deadline-1").await;
        make_available(&api, &agent, &uuid).await;
        let node = deploy_through_the_cache(
            &api,
            &agent,
            &uuid,
            &format!("{}/stall.raw", images.url),
            "raw",
        )
        .await;
        assert_eq!(node["provision_state"], "deploy failed", "{kind}");
        let error = node["last_error"].as_str().unwrap_or("");
        assert!(error.contains("deploy.write_image"), "{kind}: {error}");
        assert!(
            error.contains("deploy_step_timeout_secs"),
            "{kind}: {error}"
        );
        assert!(
            node["reservation"].is_null(),
            "{kind}: the lock is released"
        );
        let cached: Vec<_> = std::fs::read_dir(scratch.path().join("cache"))
            .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            cached.is_empty(),
            "{kind}: no partial download left: {cached:?}"
        );
        server.stop().await;
    }
}
