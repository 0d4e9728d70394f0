//! Malformed and hostile requests at every route, on every backend: the API
//! must answer each with a 4xx in Ironic's error format (or a success),
//! never a 5xx; after a run of deep, wide, large and odd bodies and headers
//! the process's open descriptors and memory are back to their baseline.

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

/// The tests of this file run one at a time: the hostile run measures the
/// whole process's descriptors and memory.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_never_get_a_5xx() {
    let _serial = SERIAL.lock().await;
    for kind in backends() {
        fuzz(kind).await;
    }
}

/// Every route of the Bare Metal API, with placeholders for the target
/// node (`{n}`), its port (`{p}`) and random words (`{w}`).
const ALL_ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/v1"),
    ("GET", "/v1/nodes"),
    ("POST", "/v1/nodes"),
    ("GET", "/v1/nodes/detail"),
    ("GET", "/v1/nodes/{n}"),
    ("PATCH", "/v1/nodes/{n}"),
    ("DELETE", "/v1/nodes/{w}"),
    ("GET", "/v1/nodes/{n}/states"),
    ("PUT", "/v1/nodes/{n}/states/provision"),
    ("PUT", "/v1/nodes/{n}/states/power"),
    ("PUT", "/v1/nodes/{n}/maintenance"),
    ("DELETE", "/v1/nodes/{n}/maintenance"),
    ("GET", "/v1/nodes/{n}/management/boot_device"),
    ("PUT", "/v1/nodes/{n}/management/boot_device"),
    ("GET", "/v1/nodes/{n}/management/boot_device/supported"),
    ("GET", "/v1/nodes/{n}/validate"),
    ("GET", "/v1/nodes/{n}/traits"),
    ("PUT", "/v1/nodes/{n}/traits"),
    ("DELETE", "/v1/nodes/{n}/traits"),
    ("PUT", "/v1/nodes/{n}/traits/{w}"),
    ("DELETE", "/v1/nodes/{n}/traits/{w}"),
    ("GET", "/v1/nodes/{n}/vifs"),
    ("POST", "/v1/nodes/{n}/vifs"),
    ("DELETE", "/v1/nodes/{n}/vifs/{w}"),
    ("GET", "/v1/nodes/{n}/ports"),
    ("GET", "/v1/nodes/{n}/ports/detail"),
    ("GET", "/v1/nodes/{n}/history"),
    ("GET", "/v1/nodes/{n}/history/{w}"),
    ("GET", "/v1/ports"),
    ("POST", "/v1/ports"),
    ("GET", "/v1/ports/detail"),
    ("GET", "/v1/ports/{p}"),
    ("PATCH", "/v1/ports/{p}"),
    ("DELETE", "/v1/ports/{w}"),
    ("GET", "/v1/drivers"),
    ("GET", "/v1/drivers/{w}"),
    ("GET", "/v1/drivers/fake-hardware/properties"),
    ("GET", "/v1/conductors"),
    ("GET", "/v1/conductors/{w}"),
    ("GET", "/v1/shards"),
    ("GET", "/v1/lookup"),
    ("POST", "/v1/heartbeat/{n}"),
    ("POST", "/v1/{w}"),
];

/// A hostile body: nested past every bound (and past serde_json's), very
/// wide, larger than any route takes, binary, or a plain odd document.
fn hostile_body(rng: &mut StdRng) -> (Vec<u8>, &'static str) {
    match rng.gen_range(0..8) {
        0 | 1 => {
            let depth = rng.gen_range(20..200);
            let (open, close) = if rng.gen_bool(0.5) {
                ("[", "]")
            } else {
                ("{\"k\":", "}")
            };
            let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            (text.into_bytes(), "deep")
        }
        2 => {
            let items = vec![json!(1); rng.gen_range(5_000..30_000)];
            (json!({"traits": items}).to_string().into_bytes(), "wide")
        }
        3 => {
            let size = [1 << 20, (2 << 20) + 17, 10 << 20][rng.gen_range(0..3)];
            (
                json!({"driver": "x".repeat(size)}).to_string().into_bytes(),
                "large",
            )
        }
        4 => (
            (0..rng.gen_range(0..256)).map(|_| rng.gen()).collect(),
            "binary",
        ),
        5 => (
            json!([{"op": "add", "path": format!("/extra{}", "/k".repeat(rng.gen_range(1..60))), "value": {"a": [[[[1]]]]}}])
                .to_string()
                .into_bytes(),
            "patch",
        ),
        _ => (random_object(rng).to_string().into_bytes(), "object"),
    }
}

/// Odd headers: long values, garbage versions and hosts, lying encodings.
fn hostile_headers(rng: &mut StdRng) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if rng.gen_bool(0.3) {
        headers.push(("x-junk", "j".repeat(rng.gen_range(1..4000))));
    }
    if rng.gen_bool(0.3) {
        let versions = [
            "latest",
            "1.115",
            "1.1",
            "1.9999999999",
            "-1.5",
            "1..2",
            "ç",
        ];
        headers.push((
            "x-openstack-ironic-api-version",
            versions[rng.gen_range(0..versions.len())].to_string(),
        ));
    } else {
        headers.push(("x-openstack-ironic-api-version", "latest".to_string()));
    }
    if rng.gen_bool(0.2) {
        let hosts =
            ["evil.example", "a b", "[::1", "x".repeat(300).as_str(), ""].map(str::to_string);
        headers.push(("host", hosts[rng.gen_range(0..hosts.len())].clone()));
    }
    if rng.gen_bool(0.1) {
        headers.push(("content-encoding", "gzip".to_string()));
    }
    let types = [
        "application/json",
        "text/plain",
        "application/json; charset=latin1",
        "",
    ];
    headers.push((
        "content-type",
        types[rng.gen_range(0..types.len())].to_string(),
    ));
    if rng.gen_bool(0.1) {
        headers.push(("x-forwarded-for", "203.0.113.9".to_string()));
    }
    headers
}

async fn hostile_run(kind: &str) {
    let server = TestServer::start(kind).await;
    let api = server.client();
    let node = api
        .create_node(&json!({"driver": "fake-hardware", "name": "target"}))
        .await
        .expect("node");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    let port = api
        .create_port(&json!({"address": "52:54:00:00:00:01", "node_uuid": uuid}))
        .await
        .expect("port");
    let port_uuid = port["uuid"].as_str().expect("uuid").to_string();
    let mut rng = StdRng::seed_from_u64(0x12);
    let words = [
        "target",
        "x",
        "%00",
        "CUSTOM_T",
        "..",
        "fake-hardware",
        "a%2Fb",
    ];
    let fire = |http: reqwest::Client,
                method: &'static str,
                path: String,
                body: Vec<u8>,
                headers: Vec<(&'static str, String)>| {
        let base = server.base.clone();
        async move {
            let mut request =
                http.request(method.parse().expect("method"), format!("{base}{path}"));
            for (name, value) in headers {
                if let Ok(value) = reqwest::header::HeaderValue::from_str(&value) {
                    request = request.header(name, value);
                }
            }
            let response = request.body(body).send().await.expect("response");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    };
    // Warm up the pools (database connections, workers) before measuring.
    let http = reqwest::Client::new();
    for (method, route) in ALL_ROUTES {
        let path = route
            .replace("{n}", &uuid)
            .replace("{p}", &port_uuid)
            .replace("{w}", "x");
        fire(
            http.clone(),
            method,
            path,
            b"{}".to_vec(),
            vec![("content-type", "application/json".into())],
        )
        .await;
    }
    drop(http);
    let fds_before = ferrite_service_kit::process::open_fds().unwrap_or(0);
    let rss_before = ferrite_service_kit::process::rss_bytes().unwrap_or(0);
    let http = reqwest::Client::new();
    let mut seen = std::collections::BTreeMap::<(&str, u16), u32>::new();
    for round in 0..400 {
        let (method, route) = ALL_ROUTES[round % ALL_ROUTES.len()];
        let word = words[rng.gen_range(0..words.len())];
        let path = route
            .replace("{n}", &uuid)
            .replace("{p}", &port_uuid)
            .replace("{w}", word);
        let (body, shape) = hostile_body(&mut rng);
        let headers = hostile_headers(&mut rng);
        let (status, text) = fire(http.clone(), method, path.clone(), body, headers.clone()).await;
        *seen.entry((shape, status)).or_default() += 1;
        let shown = &text[..text.len().min(300)];
        assert!(
            status < 500,
            "{kind}: {method} {path} ({shape}, {headers:?}) answered {status}: {shown}"
        );
        if status >= 400 {
            let parsed: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
                panic!("{kind}: {method} {path} ({shape}): error body is not JSON: {shown}")
            });
            assert!(
                parsed["error_message"].is_string(),
                "{kind}: {method} {path} ({shape}): {shown}"
            );
        }
    }
    eprintln!("{kind}: (shape, status) counts {seen:?}");
    // The service still serves, and nothing a request opened or buffered
    // outlives it.
    // (The run may have deleted the node: a DELETE of "target" is valid.)
    api.list_nodes("").await.expect("list after the run");
    drop(http);
    let mut fds_after = usize::MAX;
    for _ in 0..100 {
        fds_after = ferrite_service_kit::process::open_fds().unwrap_or(0);
        if fds_after <= fds_before + 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let rss_after = ferrite_service_kit::process::rss_bytes().unwrap_or(0);
    eprintln!(
        "{kind}: fds {fds_before} -> {fds_after}, rss {} -> {} MiB",
        rss_before >> 20,
        rss_after >> 20
    );
    assert!(
        fds_after <= fds_before + 2,
        "{kind}: descriptors {fds_before} -> {fds_after}"
    );
    // Bodies up to 10 MiB were refused and freed; what the allocator keeps
    // for reuse stays far below what 400 buffered requests would hold.
    assert!(
        rss_after <= rss_before + (48 << 20),
        "{kind}: RSS {} -> {} MiB",
        rss_before >> 20,
        rss_after >> 20
    );
    server.stop().await;
}

/// Deep, wide, large and odd JSON and headers at every route of the Bare
/// Metal API, on every backend: no 5xx, no panic, errors in Ironic's
/// format, and the process's descriptors and memory back to their
/// baseline afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_at_every_route_leave_no_trace() {
    let _serial = SERIAL.lock().await;
    for kind in backends() {
        hostile_run(kind).await;
    }
}
