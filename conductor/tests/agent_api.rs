//! The ramdisk endpoints' validation (`/v1/lookup`, `/v1/heartbeat`), as
//! upstream's API answers it.

mod common;

use std::time::Duration;

use common::TestServer;
use ferrite_baremetal_client::BaremetalClient;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const MAC: &str = "52:54:00:dd:ee:01";
const CALLBACK: &str = "http://127.0.0.1:9";

async fn post_heartbeat(api: &str, node: &str, version: &str, body: &Value) -> (u16, String) {
    let reply = reqwest::Client::new()
        .post(format!("{api}/v1/heartbeat/{node}"))
        .header("X-OpenStack-Ironic-API-Version", version)
        .json(body)
        .send()
        .await
        .expect("heartbeat");
    (
        reply.status().as_u16(),
        reply.text().await.unwrap_or_default(),
    )
}

async fn get_lookup(api: &str, query: &str) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .get(format!("{api}/v1/lookup?{query}"))
        .header("X-OpenStack-Ironic-API-Version", "1.68")
        .send()
        .await
        .expect("lookup");
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

/// A `direct` node waiting for its agent in `clean wait`.
async fn waiting_node(api: &BaremetalClient) -> String {
    let node = api
        .create_node(&json!({
            "driver": "fake-hardware",
            "deploy_interface": "direct",
            "boot_interface": "fake",
        }))
        .await
        .expect("create");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    api.create_port(&json!({"address": MAC, "node_uuid": uuid}))
        .await
        .expect("port");
    api.set_provision_state(&uuid, "manage", None)
        .await
        .expect("manage");
    api.wait_for_provision_state(&uuid, "manageable", WAIT)
        .await
        .expect("manageable");
    api.set_provision_state(&uuid, "provide", None)
        .await
        .expect("provide");
    let start = std::time::Instant::now();
    loop {
        let node = api.get_node(&uuid).await.expect("node");
        if node["provision_state"] == "clean wait" {
            return uuid;
        }
        assert!(start.elapsed() < WAIT, "stuck: {node}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn heartbeat_validation_follows_upstream() {
    let server = TestServer::start("sqlite").await;
    let api = server.client();
    let uuid = waiting_node(&api).await;
    let (status, body) = get_lookup(api.base(), &format!("addresses={MAC}")).await;
    assert_eq!(status, 200, "{body}");
    let token = body["config"]["agent_token"]
        .as_str()
        .expect("token")
        .to_string();
    let base = api.base().to_string();
    let good = json!({"callback_url": CALLBACK, "agent_token": token, "agent_version": "9.0.0"});

    let get = api
        .raw(reqwest::Method::GET, &format!("/v1/heartbeat/{uuid}"), None)
        .await
        .expect("GET heartbeat");
    assert_eq!(get.status, 405);
    // Below 1.22 the endpoint does not exist.
    let (status, _) = post_heartbeat(&base, &uuid, "1.21", &good).await;
    assert_eq!(status, 404);
    // agent_version needs 1.36.
    let (status, text) = post_heartbeat(&base, &uuid, "1.35", &good).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("agent_version"), "{text}");
    // agent_verify_ca needs 1.68.
    let mut with_ca = good.clone();
    with_ca["agent_verify_ca"] = json!("-----BEGIN CERTIFICATE-----");
    let (status, text) = post_heartbeat(&base, &uuid, "1.67", &with_ca).await;
    assert_eq!(status, 400, "{text}");
    // callback_url is required and must be http(s).
    let (status, text) = post_heartbeat(
        &base,
        &uuid,
        "1.68",
        &json!({"agent_token": token, "agent_version": "9.0.0"}),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let mut ftp = good.clone();
    ftp["callback_url"] = json!("ftp://127.0.0.1:9");
    let (status, text) = post_heartbeat(&base, &uuid, "1.68", &ftp).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("callback_url"), "{text}");
    // A version is required.
    let (status, text) = post_heartbeat(
        &base,
        &uuid,
        "1.68",
        &json!({"callback_url": CALLBACK, "agent_token": token}),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Agent did not transmit a version"), "{text}");
    // Bad agent status (1.72).
    let mut status_body = good.clone();
    status_body["agent_status"] = json!("dancing");
    let (status, text) = post_heartbeat(&base, &uuid, "1.72", &status_body).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Agent status is invalid"), "{text}");
    // Unknown node.
    let (status, _) =
        post_heartbeat(&base, "00000000-0000-4000-8000-000000000000", "1.68", &good).await;
    assert_eq!(status, 404);
    // Nothing above changed the node.
    let node = api.get_node(&uuid).await.expect("node");
    assert_eq!(node["provision_state"], "clean wait");
    assert!(node["driver_internal_info"].get("agent_url").is_none());

    // In maintenance the heartbeat is recorded but nothing continues.
    let maintenance = api
        .raw(
            reqwest::Method::PUT,
            &format!("/v1/nodes/{uuid}/maintenance"),
            Some(&json!({"reason": "testing"})),
        )
        .await
        .expect("maintenance");
    assert_eq!(maintenance.status, 202, "{:?}", maintenance.body);
    let (status, text) = post_heartbeat(&base, &uuid, "1.68", &good).await;
    assert_eq!(status, 202, "{text}");
    let node = api.get_node(&uuid).await.expect("node");
    assert_eq!(node["provision_state"], "clean wait");
    assert_eq!(node["driver_internal_info"]["agent_url"], CALLBACK);
    assert_eq!(node["driver_internal_info"]["agent_version"], "9.0.0");
    assert_eq!(node["driver_internal_info"]["agent_secret_token"], "******");
    // The agent's URL may not change while it runs.
    let mut moved = good.clone();
    moved["callback_url"] = json!("http://127.0.0.1:10");
    let (status, text) = post_heartbeat(&base, &uuid, "1.68", &moved).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Detected change in ramdisk"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn lookup_by_node_uuid_and_by_any_of_several_addresses() {
    let server = TestServer::start("sqlite").await;
    let api = server.client();
    let uuid = waiting_node(&api).await;
    // Unknown and malformed addresses are ignored next to a known one.
    let (status, body) = get_lookup(
        api.base(),
        &format!("addresses=52:54:00:00:00:42,garbage,{}", MAC.to_uppercase()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["node"]["uuid"], uuid.as_str());
    let fields: Vec<&String> = body["node"].as_object().expect("node").keys().collect();
    for field in [
        "uuid",
        "properties",
        "instance_info",
        "driver_internal_info",
    ] {
        assert!(fields.iter().any(|f| f.as_str() == field), "{fields:?}");
    }
    assert!(
        body["node"].get("provision_state").is_none(),
        "restricted view"
    );
    let (status, body) = get_lookup(api.base(), "node_uuid=not-a-uuid").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = get_lookup(api.base(), &format!("node_uuid={uuid}&addresses={MAC}")).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn lookup_needs_one_of_the_nodes_registered_macs() {
    for kind in common::backends() {
        lookup_needs_a_registered_mac_on(kind).await;
    }
}

async fn lookup_needs_a_registered_mac_on(kind: &str) {
    let server = TestServer::start(kind).await;
    let api = server.client();
    let uuid = waiting_node(&api).await;
    // Another node's port: its MAC does not open this node.
    let other = api
        .create_node(&json!({"driver": "fake-hardware"}))
        .await
        .expect("create");
    let other_mac = "52:54:00:dd:ee:99";
    api.create_port(&json!({"address": other_mac, "node_uuid": other["uuid"]}))
        .await
        .expect("port");
    for query in [
        format!("node_uuid={uuid}"),
        format!("node_uuid={uuid}&addresses=52:54:00:00:00:42"),
        format!("node_uuid={uuid}&addresses={other_mac}"),
    ] {
        let (status, body) = get_lookup(api.base(), &query).await;
        assert_eq!(status, 404, "{query}: {body}");
        assert!(body.get("config").is_none(), "{query}: {body}");
    }
    // Nothing was handed out: the real agent still gets the token.
    let (status, body) = get_lookup(
        api.base(),
        &format!("node_uuid={uuid}&addresses={other_mac},{MAC}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["config"]["agent_token"].as_str().expect("token");
    assert!(token.len() > 100, "{token}");
    server.stop().await;
}

#[tokio::test]
async fn a_forged_heartbeat_is_refused_without_taking_the_nodes_lock() {
    for kind in common::backends() {
        forged_heartbeat_without_the_lock_on(kind).await;
    }
}

async fn forged_heartbeat_without_the_lock_on(kind: &str) {
    let server = TestServer::start_with(kind, |config| {
        // A power change keeps the node reserved for a while.
        config.fake.power_delay = 3.0;
        config.node_locked_retry_attempts = 1;
        config.node_locked_retry_interval_ms = 50;
    })
    .await;
    let api = server.client();
    let uuid = waiting_node(&api).await;
    let (status, body) = get_lookup(api.base(), &format!("addresses={MAC}")).await;
    assert_eq!(status, 200, "{body}");
    let token = body["config"]["agent_token"]
        .as_str()
        .expect("token")
        .to_string();
    let base = api.base().to_string();
    let power = api
        .raw(
            reqwest::Method::PUT,
            &format!("/v1/nodes/{uuid}/states/power"),
            Some(&json!({"target": "power on"})),
        )
        .await
        .expect("power");
    assert_eq!(power.status, 202, "{:?}", power.body);
    let node = api.get_node(&uuid).await.expect("node");
    assert!(node["reservation"].is_string(), "reserved: {node}");
    // A wrong token is refused as such (400), not after waiting for the
    // lock (409), and never reaches the engine.
    let mut forged = token.clone();
    forged.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
    let body = json!({"callback_url": CALLBACK, "agent_token": forged, "agent_version": "9.0.0"});
    let (status, text) = post_heartbeat(&base, &uuid, "1.68", &body).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Invalid or missing agent token"), "{text}");
    assert!(!text.contains(&token), "{text}");
    // The right token meets the lock as before.
    let body = json!({"callback_url": CALLBACK, "agent_token": token, "agent_version": "9.0.0"});
    let (status, text) = post_heartbeat(&base, &uuid, "1.68", &body).await;
    assert_eq!(status, 409, "{text}");
    server.stop().await;
}

/// How many times the stuck agent refused a command as busy.
static BUSY_REFUSALS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// An agent whose commands never finish, and which reports itself busy
/// for `standby.sync`.
async fn stuck_agent() -> (String, actix_web::dev::ServerHandle) {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/v1/commands",
                web::post().to(|body: web::Json<Value>| async move {
                    if body["name"] == "standby.sync" {
                        BUSY_REFUSALS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        return HttpResponse::Conflict().json(json!({
                            "type": "CommandExecutionError", "code": 409,
                            "message": "Agent is busy", "details": "another command is running"}));
                    }
                    HttpResponse::Ok().json(json!({"id": "c1", "command_name": body["name"],
                        "command_status": "RUNNING", "command_result": null, "command_error": null}))
                }),
            )
            .route(
                "/v1/commands",
                web::get().to(|| async {
                    HttpResponse::Ok().json(json!({"commands": [{"id": "c1",
                        "command_name": "deploy.execute_deploy_step",
                        "command_status": "RUNNING", "command_result": null, "command_error": null}]}))
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, handle)
}

#[tokio::test]
async fn agent_client_times_out_and_reports_agent_errors() {
    use ferrite_conductor::agent_client::AgentClient;
    let (url, handle) = stuck_agent().await;
    let mut client = AgentClient::new(&url, Some("t0ken".into()));
    client.command_timeout = Duration::from_millis(300);
    client.poll_interval = Duration::from_millis(50);
    client.busy_retries = 2;
    client.busy_interval = Duration::from_millis(10);
    let err = client
        .run("deploy.execute_deploy_step", json!({}))
        .await
        .expect_err("never finishes");
    assert!(err.contains("Timed out"), "{err}");
    assert!(err.contains("deploy.execute_deploy_step"), "{err}");
    let err = client
        .run_sync("standby.sync", json!({}))
        .await
        .expect_err("busy");
    assert!(err.contains("HTTP 409"), "{err}");
    assert!(
        err.contains("Agent is busy: another command is running"),
        "{err}"
    );
    assert_eq!(
        BUSY_REFUSALS.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "one attempt and two retries"
    );
    handle.stop(false).await;
    // Nobody listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let err = AgentClient::new(&dead, None)
        .send("standby.sync", json!({}), true)
        .await
        .expect_err("gone");
    assert!(err.contains("Failed to connect to the agent"), "{err}");
}
