//! The `redfish` hardware type against a tiny Redfish BMC served inside the
//! test: power and boot-device verbs through the Bare Metal API, error
//! mapping (bad credentials, unreachable BMC, BMC failures) into
//! `last_error`, and driver_info validation.

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use common::TestServer;
use ferrite_conductor::redfish::{self, RedfishClient, VerifyCa};
use serde_json::{json, Map, Value};

const USER: &str = "admin";
const PASSWORD: &str = "secret";
const SYSTEM: &str = "/redfish/v1/Systems/sys-1";

/// What the fake BMC knows and what it was asked.
#[derive(Default)]
struct Bmc {
    power: String,
    boot: Map<String, Value>,
    /// Reset types received, in order.
    resets: Vec<String>,
    /// PATCH bodies received.
    patches: Vec<Value>,
    /// Answer every reset with this status.
    fail_resets: Option<u16>,
    /// Every GET of the system answers 500.
    fail_gets: bool,
    /// Number of systems listed.
    systems: usize,
}

type Shared = Arc<Mutex<Bmc>>;

fn authorized(req: &HttpRequest) -> bool {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
}

fn redfish_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
        .json(json!({"error": {"code": code, "message": message,
            "@Message.ExtendedInfo": [{"Message": format!("{message} (extended)")}]}}))
}

async fn bmc_handler(req: HttpRequest, body: web::Bytes, bmc: web::Data<Shared>) -> HttpResponse {
    if !authorized(&req) {
        return redfish_error(401, "Base.1.0.NoValidSession", "Authentication failed");
    }
    let mut bmc = bmc.lock().expect("bmc lock");
    let path = req.path().trim_end_matches('/').to_string();
    match (req.method().as_str(), path.as_str()) {
        ("GET", "/redfish/v1") => HttpResponse::Ok().json(json!({
            "@odata.id": "/redfish/v1/",
            "Systems": {"@odata.id": "/redfish/v1/Systems"}
        })),
        ("GET", "/redfish/v1/Systems") => {
            let members: Vec<Value> = (1..=bmc.systems)
                .map(|n| json!({"@odata.id": format!("/redfish/v1/Systems/sys-{n}")}))
                .collect();
            HttpResponse::Ok().json(json!({"Members": members, "Members@odata.count": bmc.systems}))
        }
        ("GET", SYSTEM) if bmc.fail_gets => {
            redfish_error(500, "Base.1.0.InternalError", "The BMC broke")
        }
        ("GET", SYSTEM) => HttpResponse::Ok().json(json!({
            "@odata.id": SYSTEM,
            "Id": "sys-1",
            "PowerState": bmc.power,
            "Boot": Value::Object(bmc.boot.clone()),
            "Actions": {"#ComputerSystem.Reset": {
                "target": format!("{SYSTEM}/Actions/ComputerSystem.Reset")}}
        })),
        ("PATCH", SYSTEM) => {
            let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
                return redfish_error(400, "Base.1.0.MalformedJSON", "bad body");
            };
            if let Some(Value::Object(boot)) = patch.get("Boot") {
                for (k, v) in boot {
                    bmc.boot.insert(k.clone(), v.clone());
                }
            }
            bmc.patches.push(patch);
            HttpResponse::NoContent().finish()
        }
        ("POST", p) if p == format!("{SYSTEM}/Actions/ComputerSystem.Reset") => {
            let reset = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("ResetType")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            bmc.resets.push(reset.clone());
            if let Some(status) = bmc.fail_resets {
                return redfish_error(status, "Base.1.0.InternalError", "The BMC broke");
            }
            bmc.power = match reset.as_str() {
                "On" | "ForceRestart" | "GracefulRestart" => "On".into(),
                "ForceOff" | "GracefulShutdown" => "Off".into(),
                _ => {
                    return redfish_error(400, "Base.1.0.ActionParameterNotSupported", "bad reset")
                }
            };
            HttpResponse::NoContent().finish()
        }
        _ => redfish_error(404, "Base.1.0.ResourceMissingAtURI", "no such resource"),
    }
}

struct FakeBmc {
    url: String,
    state: Shared,
    handle: actix_web::dev::ServerHandle,
}

impl FakeBmc {
    fn start(power: &str) -> FakeBmc {
        let state: Shared = Arc::new(Mutex::new(Bmc {
            power: power.into(),
            systems: 1,
            ..Bmc::default()
        }));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let data = web::Data::new(state.clone());
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .default_service(web::to(bmc_handler))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeBmc { url, state, handle }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Bmc) -> T) -> T {
        f(&mut self.state.lock().expect("bmc lock"))
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn node_body(address: &str, password: &str) -> Value {
    json!({
        "driver": "redfish",
        "name": "rf-node",
        "properties": {"capabilities": "boot_mode:uefi"},
        "driver_info": {
            "redfish_address": address,
            "redfish_username": USER,
            "redfish_password": password,
            "redfish_verify_ca": false,
            "deploy_kernel": "file:///nonexistent/kernel",
            "deploy_ramdisk": "file:///nonexistent/ramdisk",
        },
    })
}

/// Waits until the node has no power change in flight and returns it.
async fn settled(server: &TestServer, uuid: &str) -> Value {
    let client = server.client();
    for _ in 0..200 {
        let node = client.get_node(uuid).await.expect("get node");
        if node["target_power_state"].is_null() && node["reservation"].is_null() {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("power change of {uuid} did not settle");
}

async fn raw(
    client: &ferrite_baremetal_client::BaremetalClient,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), ferrite_baremetal_client::ClientError> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let reply = client.raw(method, path, body).await?;
    Ok((reply.status, reply.body))
}

async fn power(server: &TestServer, uuid: &str, target: &str) -> Value {
    server
        .client()
        .set_power_state(uuid, target)
        .await
        .expect("power request accepted");
    settled(server, uuid).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_and_boot_device_drive_the_bmc() {
    let bmc = FakeBmc::start("Off");
    let server = TestServer::start("sqlite").await;
    let client = server.client();
    let node = client
        .create_node(&node_body(&bmc.url, PASSWORD))
        .await
        .expect("create redfish node");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(node["power_interface"], "redfish");
    assert_eq!(node["management_interface"], "redfish");
    assert_eq!(node["boot_interface"], "ipxe");

    let node = power(&server, &uuid, "power on").await;
    assert_eq!(node["power_state"], "power on");
    assert_eq!(node["last_error"], Value::Null);
    assert_eq!(bmc.with(|b| b.resets.clone()), vec!["On"]);

    // Already on: nothing is sent.
    let node = power(&server, &uuid, "power on").await;
    assert_eq!(node["power_state"], "power on");
    assert_eq!(bmc.with(|b| b.resets.len()), 1);

    // A hard reboot of a running machine: off, then on.
    let node = power(&server, &uuid, "rebooting").await;
    assert_eq!(node["power_state"], "power on");
    assert_eq!(bmc.with(|b| b.resets.clone()), vec!["On", "ForceOff", "On"]);

    let node = power(&server, &uuid, "soft power off").await;
    assert_eq!(node["power_state"], "power off");
    assert_eq!(
        bmc.with(|b| b.resets.last().cloned()),
        Some("GracefulShutdown".into())
    );

    // Rebooting a machine that is off just switches it on.
    let node = power(&server, &uuid, "rebooting").await;
    assert_eq!(node["power_state"], "power on");
    assert_eq!(bmc.with(|b| b.resets.last().cloned()), Some("On".into()));

    let node = power(&server, &uuid, "power off").await;
    assert_eq!(node["power_state"], "power off");
    assert_eq!(
        bmc.with(|b| b.resets.last().cloned()),
        Some("ForceOff".into())
    );

    let (status, body) = raw(
        &client,
        "PUT",
        &format!("/v1/nodes/{uuid}/management/boot_device"),
        Some(&json!({"boot_device": "pxe", "persistent": true})),
    )
    .await
    .expect("boot device");
    assert_eq!(status, 204, "{body}");
    let patch = bmc.with(|b| b.patches.last().cloned()).expect("a PATCH");
    assert_eq!(
        patch,
        json!({"Boot": {"BootSourceOverrideTarget": "Pxe",
            "BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideMode": "UEFI"}})
    );
    let (status, _) = raw(
        &client,
        "PUT",
        &format!("/v1/nodes/{uuid}/management/boot_device"),
        Some(&json!({"boot_device": "disk"})),
    )
    .await
    .expect("boot device");
    assert_eq!(status, 204);
    let boot = bmc.with(|b| b.boot.clone());
    assert_eq!(boot["BootSourceOverrideTarget"], "Hdd");
    assert_eq!(boot["BootSourceOverrideEnabled"], "Once");
    let (status, body) = raw(
        &client,
        "GET",
        &format!("/v1/nodes/{uuid}/management/boot_device"),
        None,
    )
    .await
    .expect("get boot device");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"boot_device": "disk", "persistent": false}));
    // The answer comes from the BMC, not from what the conductor last set.
    bmc.with(|b| {
        b.boot["BootSourceOverrideTarget"] = json!("Pxe");
        b.boot["BootSourceOverrideEnabled"] = json!("Continuous");
    });
    let (_, body) = raw(
        &client,
        "GET",
        &format!("/v1/nodes/{uuid}/management/boot_device"),
        None,
    )
    .await
    .expect("get boot device");
    assert_eq!(body, json!({"boot_device": "pxe", "persistent": true}));

    let (status, body) = raw(
        &client,
        "PUT",
        &format!("/v1/nodes/{uuid}/management/boot_device"),
        Some(&json!({"boot_device": "floppy"})),
    )
    .await
    .expect("boot device");
    assert_eq!(status, 400, "{body}");

    let validation = client.validate_node(&uuid).await.expect("validate");
    assert_eq!(validation["power"], json!({"result": true}));
    assert_eq!(validation["management"], json!({"result": true}));
    assert_eq!(validation["boot"], json!({"result": true}));

    server.stop().await;
    bmc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bmc_failures_end_in_last_error() {
    let bmc = FakeBmc::start("Off");
    let server = TestServer::start("sqlite").await;
    let client = server.client();

    // Wrong password: the BMC's 401 is reported, nothing changed.
    let node = client
        .create_node(&node_body(&bmc.url, "wrong"))
        .await
        .expect("create");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    let node = power(&server, &uuid, "power on").await;
    let error = node["last_error"].as_str().expect("last_error").to_string();
    assert!(
        error.starts_with("Failed to change power state to 'power on': "),
        "{error}"
    );
    assert!(error.contains("returned code 401"), "{error}");
    assert!(error.contains("Authentication failed"), "{error}");
    assert_eq!(node["power_state"], Value::Null);
    assert!(bmc.with(|b| b.resets.is_empty()));

    // The BMC fails the reset: upstream's wrapped message.
    let node = client
        .create_node(&json!({"driver": "redfish", "name": "rf-2",
            "driver_info": {"redfish_address": bmc.url, "redfish_username": USER,
                "redfish_password": PASSWORD}}))
        .await
        .expect("create");
    let uuid2 = node["uuid"].as_str().expect("uuid").to_string();
    bmc.with(|b| b.fail_resets = Some(500));
    let node = power(&server, &uuid2, "power on").await;
    let error = node["last_error"].as_str().expect("last_error").to_string();
    let prefix = format!(
        "Failed to change power state to 'power on' by 'power on': Redfish exception occurred. \
         Error: Setting power state to power on failed for node {uuid2}. Error: HTTP POST {}{SYSTEM}/Actions/ComputerSystem.Reset returned code 500. Base.1.0.InternalError: The BMC broke",
        bmc.url
    );
    assert!(error.starts_with(&prefix), "{error}");
    assert_eq!(node["target_power_state"], Value::Null);

    // A later success clears the error.
    bmc.with(|b| b.fail_resets = None);
    let node = power(&server, &uuid2, "power on").await;
    assert_eq!(node["last_error"], Value::Null);
    assert_eq!(node["power_state"], "power on");

    // The history keeps the failure.
    let (status, history) = raw(&client, "GET", &format!("/v1/nodes/{uuid2}/history"), None)
        .await
        .expect("history");
    assert_eq!(status, 200);
    let events: Vec<String> = history["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|e| e["event"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert!(events.iter().any(|e| e.starts_with(&prefix)), "{events:?}");

    // The BMC is gone: a connection error.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let node = client
        .create_node(&json!({"driver": "redfish", "name": "rf-3",
            "driver_info": {"redfish_address": dead}}))
        .await
        .expect("create");
    let uuid3 = node["uuid"].as_str().expect("uuid").to_string();
    let node = power(&server, &uuid3, "power off").await;
    let error = node["last_error"].as_str().expect("last_error").to_string();
    assert!(
        error.starts_with(&format!(
            "Failed to change power state to 'power off': Redfish connection failed for node {uuid3}: Unable to connect to {dead}/redfish/v1/"
        )),
        "{error}"
    );

    // Boot device errors are the API's answer.
    bmc.with(|b| b.fail_resets = None);
    let (status, body) = raw(
        &client,
        "PUT",
        &format!("/v1/nodes/{uuid3}/management/boot_device"),
        Some(&json!({"boot_device": "pxe"})),
    )
    .await
    .expect("boot device");
    assert_eq!(status, 500, "{body}");
    assert!(
        body.to_string().contains("Redfish connection failed"),
        "{body}"
    );

    server.stop().await;
    bmc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_messages_are_upstreams() {
    let server = TestServer::start("sqlite").await;
    let client = server.client();
    let node = client
        .create_node(&json!({"driver": "redfish", "driver_info": {}}))
        .await
        .expect("create");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    let validation = client.validate_node(&uuid).await.expect("validate");
    let missing = format!(
        "Missing the following Redfish properties in node {uuid} driver_info: ['redfish_address']"
    );
    assert_eq!(
        validation["power"],
        json!({"result": false, "reason": missing})
    );
    assert_eq!(validation["management"]["reason"], missing);
    assert_eq!(
        validation["boot"]["reason"],
        "Cannot validate PXE bootloader. Some parameters were missing in node's driver_info \
         and configuration. Missing are: ['deploy_kernel', 'deploy_ramdisk']"
    );

    // Power verbs refuse a node that does not validate.
    let err = client
        .set_power_state(&uuid, "power on")
        .await
        .expect_err("refused");
    assert_eq!(err.status(), Some(400));

    server.stop().await;
}

fn info(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[test]
fn driver_info_parsing() {
    let parsed =
        redfish::parse_driver_info("n1", &info(json!({"redfish_address": "bmc.example.com"})))
            .expect("valid");
    assert_eq!(parsed.address, "https://bmc.example.com");
    assert_eq!(parsed.root_prefix, "/redfish/v1/");
    assert_eq!(parsed.verify_ca, VerifyCa::Yes);
    assert_eq!(parsed.auth_type, "auto");

    let parsed = redfish::parse_driver_info(
        "n1",
        &info(json!({"redfish_address": "http://10.0.0.1:8000/custom/v1",
            "redfish_verify_ca": "False", "redfish_auth_type": "basic",
            "redfish_system_id": "/redfish/v1/Systems/7"})),
    )
    .expect("valid");
    assert_eq!(parsed.address, "http://10.0.0.1:8000");
    assert_eq!(parsed.root_prefix, "/custom/v1/");
    assert_eq!(parsed.verify_ca, VerifyCa::No);
    assert_eq!(parsed.system_id.as_deref(), Some("/redfish/v1/Systems/7"));

    let cases = [
        (
            json!({}),
            "Missing the following Redfish properties in node n1 driver_info: ['redfish_address']",
        ),
        (
            json!({"redfish_address": "http://"}),
            "Invalid Redfish address http:// set in driver_info/redfish_address on node n1",
        ),
        (
            json!({"redfish_address": "h", "redfish_auth_type": "digest"}),
            "Invalid value \"digest\" set in driver_info/redfish_auth_type on node n1. The value \
             should be one of \"basic\", \"session\" or \"auto\".",
        ),
        (
            json!({"redfish_address": "h", "redfish_verify_ca": "maybe"}),
            "Invalid value type set in driver_info/redfish_verify_ca on node n1. The value \
             should be a Boolean or the absolute path to a CA file, not \"maybe\"",
        ),
        (
            json!({"redfish_address": "h", "redfish_system_id": 5}),
            "Invalid value \"5\" set in driver_info/redfish_system_id on node n1. The value \
             should be a path (string) to the resource that the driver will interact with. \
             For example: /redfish/v1/Systems/1",
        ),
    ];
    for (driver_info, expected) in cases {
        assert_eq!(
            redfish::parse_driver_info("n1", &info(driver_info)),
            Err(expected.to_string())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_systems_need_a_system_id() {
    let bmc = FakeBmc::start("On");
    bmc.with(|b| b.systems = 2);
    let base = json!({"redfish_address": bmc.url, "redfish_username": USER,
        "redfish_password": PASSWORD});
    let client =
        RedfishClient::new(redfish::parse_driver_info("n1", &info(base.clone())).expect("valid"))
            .expect("client");
    let err = client.power_state().await.expect_err("ambiguous");
    assert!(err.to_string().contains("manages 2 systems"), "{err}");

    let mut with_id = info(base);
    with_id.insert("redfish_system_id".into(), json!(SYSTEM));
    let client = RedfishClient::new(redfish::parse_driver_info("n1", &with_id).expect("valid"))
        .expect("client");
    assert_eq!(
        client.power_state().await.expect("state"),
        Some("On".into())
    );
    let boot = client.boot_override().await.expect("boot");
    assert_eq!(boot.device, None);
    client
        .set_boot_override("Cd", false, None)
        .await
        .expect("patch");
    let boot = client.boot_override().await.expect("boot");
    assert_eq!(boot.device.as_deref(), Some("cdrom"));
    assert_eq!(boot.persistent, Some(false));
    bmc.stop().await;
}

/// Polls the node until `check` holds (10 s at most).
async fn until(
    server: &TestServer,
    uuid: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let client = server.client();
    let mut node = Value::Null;
    for _ in 0..200 {
        node = client.get_node(uuid).await.expect("get node");
        if check(&node) {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {node}");
}

async fn managed_node(server: &TestServer, bmc: &FakeBmc) -> String {
    let client = server.client();
    let node = client
        .create_node(&node_body(&bmc.url, PASSWORD))
        .await
        .expect("create redfish node");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    client
        .set_provision_state(&uuid, "manage", None)
        .await
        .expect("manage");
    client
        .wait_for_provision_state(&uuid, "manageable", Duration::from_secs(10))
        .await
        .expect("manageable");
    uuid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_sync_puts_the_machine_back_gives_up_and_recovers() {
    let bmc = FakeBmc::start("Off");
    let server = TestServer::start_with("sqlite", |config| {
        config.sync_power_state_interval_secs = 0.2;
        config.power_state_sync_max_retries = 2;
        // Recovery is checked below; until then the BMC stays unreadable.
        config.power_failure_recovery_interval_secs = 0.2;
    })
    .await;
    let uuid = managed_node(&server, &bmc).await;
    // The first known state is recorded.
    until(&server, &uuid, "power state recorded", |n| {
        n["power_state"] == "power off"
    })
    .await;
    let node = power(&server, &uuid, "power on").await;
    assert_eq!(node["power_state"], "power on");

    // Switched off behind the conductor's back: the sync switches it on
    // again and the record stays.
    let resets_before = bmc.with(|b| {
        b.power = "Off".into();
        b.resets.len()
    });
    for _ in 0..200 {
        if bmc.with(|b| b.power == "On") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(bmc.with(|b| b.power.clone()), "On");
    assert_eq!(
        bmc.with(|b| b.resets[resets_before..].to_vec()),
        vec!["On".to_string()]
    );
    let node = settled(&server, &uuid).await;
    assert_eq!(node["power_state"], "power on");
    assert_eq!(node["maintenance"], false);

    // A BMC that stops answering: after max_retries rounds the node goes
    // into maintenance with the power failure fault and no known power
    // state; it is not synced any more.
    bmc.with(|b| b.fail_gets = true);
    let node = until(&server, &uuid, "maintenance after retries", |n| {
        n["maintenance"] == true
    })
    .await;
    assert_eq!(node["fault"], "power failure", "{node}");
    assert_eq!(node["power_state"], Value::Null, "{node}");
    let reason = node["maintenance_reason"].as_str().unwrap_or("");
    assert!(reason.contains("maintenance"), "{reason}");
    assert_eq!(node["last_error"], node["maintenance_reason"]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let node = server.client().get_node(&uuid).await.expect("get node");
    assert_eq!(node["maintenance"], true, "{node}");

    // Once the BMC answers again, the recovery periodic takes the node out
    // of maintenance with the state the BMC reports.
    bmc.with(|b| {
        b.fail_gets = false;
        b.power = "On".into();
    });
    let node = until(&server, &uuid, "recovered from the power failure", |n| {
        n["maintenance"] == false
    })
    .await;
    assert_eq!(node["fault"], Value::Null, "{node}");
    assert_eq!(node["maintenance_reason"], Value::Null, "{node}");
    assert_eq!(node["power_state"], "power on", "{node}");

    // A machine that cannot be switched back: rounds 1 and 2 force it,
    // round 3 gives up; the record then says what the machine is. The
    // recovery brings it back (its BMC answers) and, the record now
    // matching, it stays in sync without further resets.
    bmc.with(|b| {
        b.power = "Off".into();
        b.fail_resets = Some(500);
    });
    let before = bmc.with(|b| b.resets.iter().filter(|r| *r == "On").count());
    until(&server, &uuid, "gave up, then recovered as off", |n| {
        n["power_state"] == "power off" && n["maintenance"] == false
    })
    .await;
    let tries = bmc.with(|b| b.resets.iter().filter(|r| *r == "On").count());
    assert_eq!(tries - before, 2, "two forced power-ons before giving up");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        bmc.with(|b| b.resets.iter().filter(|r| *r == "On").count()),
        tries
    );
    server.stop().await;
    bmc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_sync_without_force_follows_the_machine() {
    let bmc = FakeBmc::start("On");
    let server = TestServer::start_with("sqlite", |config| {
        config.sync_power_state_interval_secs = 0.2;
        config.force_power_state_during_sync = false;
    })
    .await;
    let uuid = managed_node(&server, &bmc).await;
    until(&server, &uuid, "power state recorded", |n| {
        n["power_state"] == "power on"
    })
    .await;
    let resets = bmc.with(|b| {
        b.power = "Off".into();
        b.resets.len()
    });
    let node = until(&server, &uuid, "record follows the machine", |n| {
        n["power_state"] == "power off"
    })
    .await;
    assert_eq!(node["maintenance"], false);
    // Nothing was sent to the machine.
    assert_eq!(bmc.with(|b| b.resets.len()), resets);
    server.stop().await;
    bmc.stop().await;
}

#[test]
fn verify_ca_is_only_a_bounded_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let small = dir.path().join("ca.pem");
    std::fs::write(&small, b"-----BEGIN CERTIFICATE-----\n").expect("write");
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'A'; 2 * 1024 * 1024]).expect("write");
    let parse = |value: &str| {
        redfish::parse_driver_info(
            "n1",
            &info(json!({"redfish_address": "h", "redfish_verify_ca": value})),
        )
    };
    let parsed = parse(&small.display().to_string()).expect("a CA file");
    assert_eq!(
        parsed.verify_ca,
        VerifyCa::Bundle(small.display().to_string())
    );
    // A directory, a device, an oversized file, a relative path: refused.
    for bad in [
        dir.path().display().to_string(),
        "/dev/zero".to_string(),
        big.display().to_string(),
        "ca.pem".to_string(),
    ] {
        let err = parse(&bad).expect_err(&bad);
        assert!(err.contains("redfish_verify_ca"), "{bad}: {err}");
    }
}

#[tokio::test]
async fn an_oversized_bmc_reply_is_cut_off() {
    use std::io::{Read as _, Write as _};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    let total = 64 * 1024 * 1024u64;
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"x\": \"",
        );
        // An endless JSON string, no length announced.
        let chunk = vec![b'a'; 1 << 20];
        let mut sent = 0u64;
        while sent < total {
            if stream.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        sent
    });
    let parsed = redfish::parse_driver_info(
        "n1",
        &info(json!({"redfish_address": address, "redfish_system_id": "/redfish/v1/Systems/1"})),
    )
    .expect("valid");
    let client = RedfishClient::new(parsed).expect("client");
    let err = client
        .get("/redfish/v1/Systems/1")
        .await
        .expect_err("too large")
        .to_string();
    assert!(err.contains("larger than"), "{err}");
    let sent = tokio::task::spawn_blocking(move || server.join().expect("join"))
        .await
        .expect("join");
    assert!(sent < total, "the whole reply was read");
}
