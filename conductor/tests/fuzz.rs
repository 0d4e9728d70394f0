//! Malformed and hostile requests at every route, on every backend: the API
//! must answer each with a 4xx in Ironic's error format (or a success),
//! never a 5xx.

mod common;

use common::{backends, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn random_scalar(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..9) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen_range(-5i64..5)),
        3 => json!(rng.gen::<f64>() * 1e12),
        4 => json!(""),
        5 => json!("x".repeat(rng.gen_range(1..400))),
        6 => json!("caf\u{e9} \u{1F600} \"quoted\""),
        7 => json!(["a", 1, null]),
        _ => json!({"nested": {"deep": [1, {"k": "v"}]}}),
    }
}

const FIELDS: &[&str] = &[
    "driver",
    "name",
    "uuid",
    "instance_uuid",
    "instance_info",
    "driver_info",
    "properties",
    "extra",
    "maintenance",
    "resource_class",
    "conductor_group",
    "owner",
    "lessee",
    "shard",
    "description",
    "traits",
    "network_data",
    "boot_interface",
    "deploy_interface",
    "network_interface",
    "provision_state",
    "reservation",
    "automated_clean",
    "protected",
    "retired",
    "parent_node",
    "address",
    "node_uuid",
    "pxe_enabled",
    "local_link_connection",
    "physical_network",
    "target",
    "configdrive",
    "clean_steps",
    "rescue_password",
    "reason",
    "id",
    "boot_device",
    "persistent",
    "timeout",
    "no_such_field",
];

fn random_object(rng: &mut StdRng) -> Value {
    let mut map = serde_json::Map::new();
    for _ in 0..rng.gen_range(0..5) {
        let key = FIELDS[rng.gen_range(0..FIELDS.len())];
        map.insert(key.to_string(), random_scalar(rng));
    }
    Value::Object(map)
}

fn random_patch(rng: &mut StdRng) -> Value {
    let ops = ["add", "replace", "remove", "test", "move", "bogus"];
    let items: Vec<Value> = (0..rng.gen_range(0..4))
        .map(|_| {
            let field = FIELDS[rng.gen_range(0..FIELDS.len())];
            let path = match rng.gen_range(0..4) {
                0 => format!("/{field}"),
                1 => format!("/{field}/sub/key"),
                2 => field.to_string(),
                _ => format!("/{field}/-"),
            };
            let mut op = json!({"op": ops[rng.gen_range(0..ops.len())], "path": path});
            if rng.gen_bool(0.7) {
                op["value"] = random_scalar(rng);
            }
            op
        })
        .collect();
    if rng.gen_bool(0.1) {
        random_object(rng)
    } else {
        Value::Array(items)
    }
}

async fn fuzz(kind: &str) {
    let server = TestServer::start(kind).await;
    let api = server.client();
    let node = api
        .create_node(&json!({"driver": "fake-hardware", "name": "target"}))
        .await
        .expect("node");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    api.create_port(&json!({"address": "52:54:00:00:00:01", "node_uuid": uuid}))
        .await
        .expect("port");
    let http = reqwest::Client::new();
    // Inputs upstream itself answers with a 500.
    for (method, path, body) in [
        (
            "PATCH",
            format!("/v1/nodes/{uuid}"),
            r#"[{"op": "remove", "path": "/maintenance"}]"#,
        ),
        (
            "PATCH",
            format!("/v1/nodes/{uuid}"),
            r#"[{"op": "remove", "path": "/conductor_group"}]"#,
        ),
        ("POST", "/v1/nodes".to_string(), r#"{"driver": "#),
        (
            "PATCH",
            format!("/v1/nodes/{uuid}"),
            r#"[{"op": "replace", "path": "/maintenance", "value": null}]"#,
        ),
    ] {
        let response = http
            .request(
                method.parse().expect("method"),
                format!("{}{path}", server.base),
            )
            .header("content-type", "application/json")
            .header("X-OpenStack-Ironic-API-Version", "latest")
            .body(body)
            .send()
            .await
            .expect("response");
        let status = response.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{kind}: {method} {path} {body} answered {status}"
        );
    }
    let mut rng = StdRng::seed_from_u64(0x1f0);
    let idents = [uuid.as_str(), "target", "no-such-node", "bad%20name", "%00"];
    let versions = [
        "1.1", "1.31", "1.65", "1.82", "1.115", "latest", "1.x", "9.9", "",
    ];
    for _ in 0..600 {
        let ident = idents[rng.gen_range(0..idents.len())];
        let (method, path) = match rng.gen_range(0..16) {
            0 => ("POST", "/v1/nodes".to_string()),
            1 => ("PATCH", format!("/v1/nodes/{ident}")),
            2 => ("PUT", format!("/v1/nodes/{ident}/states/provision")),
            3 => ("PUT", format!("/v1/nodes/{ident}/states/power")),
            4 => ("PUT", format!("/v1/nodes/{ident}/maintenance")),
            5 => ("POST", format!("/v1/nodes/{ident}/vifs")),
            6 => ("PUT", format!("/v1/nodes/{ident}/traits")),
            7 => ("PUT", format!("/v1/nodes/{ident}/management/boot_device")),
            8 => ("POST", "/v1/ports".to_string()),
            9 => ("PATCH", "/v1/ports/52:54:00:00:00:01".to_string()),
            10 => (
                "GET",
                format!(
                    "/v1/nodes?limit={}&sort_key={}&marker={ident}&fields=name,{}&detail={}",
                    rng.gen_range(-2..3),
                    ["name", "properties", "id", "bogus"][rng.gen_range(0..4)],
                    FIELDS[rng.gen_range(0..FIELDS.len())],
                    ["true", "false", "maybe"][rng.gen_range(0..3)]
                ),
            ),
            11 => (
                "GET",
                format!(
                    "/v1/nodes/{ident}?fields={}",
                    FIELDS[rng.gen_range(0..FIELDS.len())]
                ),
            ),
            12 => ("DELETE", format!("/v1/nodes/{ident}/vifs/{ident}")),
            13 => (
                "GET",
                format!(
                    "/v1/drivers?type={}&detail={}",
                    ["dynamic", "classic", "x"][rng.gen_range(0..3)],
                    rng.gen::<bool>()
                ),
            ),
            14 => ("GET", format!("/v1/ports?node={ident}&address=zz")),
            _ => (
                "DELETE",
                format!(
                    "/v1/nodes/{ident}/traits/{}",
                    FIELDS[rng.gen_range(0..FIELDS.len())]
                ),
            ),
        };
        let body = match method {
            "PATCH" => random_patch(&mut rng).to_string(),
            _ if rng.gen_bool(0.1) => "{\"truncated\": ".to_string(),
            _ => random_object(&mut rng).to_string(),
        };
        let version = versions[rng.gen_range(0..versions.len())];
        let mut request = http
            .request(
                method.parse().expect("method"),
                format!("{}{path}", server.base),
            )
            .header("content-type", "application/json")
            .body(body.clone());
        if !version.is_empty() {
            request = request.header("X-OpenStack-Ironic-API-Version", version);
        }
        let response = request.send().await.expect("response");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status < 500,
            "{kind}: {method} {path} v{version} body {body} answered {status}: {text}"
        );
        if status >= 400 {
            let parsed: Value = serde_json::from_str(&text).expect("error body is JSON");
            let inner = parsed["error_message"].as_str().expect("error_message");
            let inner: Value = serde_json::from_str(inner).expect("nested JSON");
            assert!(
                inner.get("faultstring").is_some() || inner.get("description").is_some(),
                "{kind}: {text}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_never_get_a_5xx() {
    for kind in backends() {
        fuzz(kind).await;
    }
}
