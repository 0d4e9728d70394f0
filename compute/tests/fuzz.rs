//! Malformed and hostile requests at every route of the compute API, on
//! every backend: deep, wide, large and odd JSON bodies and headers must
//! get a success or a 4xx in Nova's fault format, never a 5xx or a panic,
//! and afterwards the process's open descriptors and memory are back to
//! their baseline.

mod common;

use common::{backends, Stack};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Every route, with placeholders for a flavor (`{f}`), a server (`{s}`),
/// an image (`{i}`) and random words (`{w}`).
const ALL_ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/v2.1"),
    ("GET", "/v2.1/flavors"),
    ("POST", "/v2.1/flavors"),
    ("GET", "/v2.1/flavors/detail"),
    ("GET", "/v2.1/flavors/{f}"),
    ("PUT", "/v2.1/flavors/{f}"),
    ("DELETE", "/v2.1/flavors/{w}"),
    ("GET", "/v2.1/flavors/{f}/os-extra_specs"),
    ("POST", "/v2.1/flavors/{f}/os-extra_specs"),
    ("GET", "/v2.1/flavors/{f}/os-extra_specs/{w}"),
    ("PUT", "/v2.1/flavors/{f}/os-extra_specs/{w}"),
    ("DELETE", "/v2.1/flavors/{f}/os-extra_specs/{w}"),
    ("GET", "/v2.1/servers"),
    ("POST", "/v2.1/servers"),
    ("GET", "/v2.1/servers/detail"),
    ("GET", "/v2.1/servers/{s}"),
    ("PUT", "/v2.1/servers/{s}"),
    ("DELETE", "/v2.1/servers/{w}"),
    ("POST", "/v2.1/servers/{s}/action"),
    ("GET", "/v2.1/os-keypairs"),
    ("POST", "/v2.1/os-keypairs"),
    ("GET", "/v2.1/os-keypairs/{w}"),
    ("DELETE", "/v2.1/os-keypairs/{w}"),
    ("GET", "/v2.1/images"),
    ("GET", "/v2.1/images/detail"),
    ("GET", "/v2.1/images/{i}"),
    ("GET", "/v2.1/os-availability-zone"),
    ("GET", "/v2.1/project/servers"),
    ("GET", "/v2/images"),
    ("POST", "/v2/images"),
    ("GET", "/v2/images/{i}"),
    ("DELETE", "/v2/images/{w}"),
    ("PATCH", "/v2.1/{w}"),
];

fn odd_value(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..8) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => json!(rng.gen::<f64>() * 1e300),
        4 => json!("caf\u{e9} \u{1F600} \"q\" \\ \u{7}"),
        5 => json!("x".repeat(rng.gen_range(0..600))),
        6 => json!([1, "a", null, {"k": []}]),
        _ => json!({"k": {"k": {"k": 1}}}),
    }
}

/// A hostile body: nested past every bound (and past serde_json's), very
/// wide, larger than the API takes, binary, or a plausible document with
/// odd members.
fn hostile_body(rng: &mut StdRng) -> (Vec<u8>, &'static str) {
    match rng.gen_range(0..8) {
        0 | 1 => {
            let depth = rng.gen_range(20..200);
            let (open, close) = if rng.gen_bool(0.5) {
                ("[", "]")
            } else {
                ("{\"server\":", "}")
            };
            let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            (text.into_bytes(), "deep")
        }
        2 => {
            let items = vec![json!("a"); rng.gen_range(5_000..20_000)];
            (
                json!({"extra_specs": items}).to_string().into_bytes(),
                "wide",
            )
        }
        3 => {
            let size = [120 << 10, (2 << 20) + 17, 10 << 20][rng.gen_range(0..3)];
            (
                json!({"server": {"user_data": "x".repeat(size)}})
                    .to_string()
                    .into_bytes(),
                "large",
            )
        }
        4 => (
            (0..rng.gen_range(0..256)).map(|_| rng.gen()).collect(),
            "binary",
        ),
        _ => {
            let roots = [
                "server",
                "flavor",
                "keypair",
                "extra_specs",
                "reboot",
                "rebuild",
                "os-stop",
                "name",
            ];
            let fields = [
                "name",
                "flavorRef",
                "imageRef",
                "networks",
                "ram",
                "vcpus",
                "disk",
                "id",
                "public_key",
                "type",
                "metadata",
                "user_data",
                "url",
                "disk_format",
                "min_ram",
                "visibility",
            ];
            let mut inner = serde_json::Map::new();
            for _ in 0..rng.gen_range(0..6) {
                inner.insert(
                    fields[rng.gen_range(0..fields.len())].to_string(),
                    odd_value(rng),
                );
            }
            let mut outer = serde_json::Map::new();
            outer.insert(
                roots[rng.gen_range(0..roots.len())].to_string(),
                Value::Object(inner.clone()),
            );
            if rng.gen_bool(0.3) {
                outer.extend(inner);
            }
            (Value::Object(outer).to_string().into_bytes(), "object")
        }
    }
}

/// Odd headers: long values, garbage versions, hosts and forwarding
/// headers, lying encodings and content types, odd tokens.
fn hostile_headers(rng: &mut StdRng) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    let tokens = [
        "admin",
        "user:project",
        "",
        ":",
        "a".repeat(300).as_str(),
        "admin:",
    ]
    .map(str::to_string);
    headers.push((
        "x-auth-token",
        tokens[rng.gen_range(0..tokens.len())].clone(),
    ));
    let versions = [
        "compute latest",
        "compute 2.1",
        "compute 2.96",
        "compute 2.x",
        "compute 9.9",
        "compute 2.99999999999",
        "placement 1.5",
    ];
    headers.push((
        "openstack-api-version",
        versions[rng.gen_range(0..versions.len())].to_string(),
    ));
    if rng.gen_bool(0.2) {
        headers.push(("x-openstack-nova-api-version", "2.-1".to_string()));
    }
    if rng.gen_bool(0.3) {
        headers.push(("x-junk", "j".repeat(rng.gen_range(1..4000))));
    }
    if rng.gen_bool(0.2) {
        let hosts =
            ["evil.example", "a b", "[::1", "x".repeat(300).as_str(), ""].map(str::to_string);
        headers.push(("host", hosts[rng.gen_range(0..hosts.len())].clone()));
        headers.push(("x-forwarded-host", "forwarded.example".to_string()));
        headers.push(("x-forwarded-proto", "gopher".to_string()));
    }
    if rng.gen_bool(0.1) {
        headers.push(("content-encoding", "gzip".to_string()));
    }
    let types = ["application/json", "text/plain", ""];
    headers.push((
        "content-type",
        types[rng.gen_range(0..types.len())].to_string(),
    ));
    headers
}

/// The tests of this file run one at a time: the run measures the whole
/// process's descriptors and memory.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn fire(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
    headers: &[(&'static str, String)],
) -> (u16, String) {
    let mut request = http.request(method.parse().expect("method"), format!("{base}{path}"));
    for (name, value) in headers {
        if let Ok(value) = reqwest::header::HeaderValue::from_str(value) {
            request = request.header(*name, value);
        }
    }
    let response = request.body(body).send().await.expect("response");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn hostile_run(kind: &'static str) {
    let stack = Stack::start(kind).await;
    let flavor = stack.create_flavor("bm", "CUSTOM_FUZZ", &[]).await;
    let image = stack.create_image("img").await;
    let (status, body) = stack.boot("admin", "target", &flavor, &image).await;
    assert_eq!(status, 202, "{kind}: {body}");
    let server = body["server"]["id"].as_str().expect("id").to_string();
    let substitute = |route: &str, word: &str| {
        route
            .replace("{f}", &flavor)
            .replace("{s}", &server)
            .replace("{i}", &image)
            .replace("{w}", word)
    };
    // Warm up the pools (database connections, workers) before measuring.
    let http = reqwest::Client::new();
    let plain = [
        ("x-auth-token", "admin".to_string()),
        ("content-type", "application/json".to_string()),
    ];
    for (method, route) in ALL_ROUTES {
        if *method == "GET" {
            fire(
                &http,
                &stack.compute_url,
                method,
                &substitute(route, "x"),
                Vec::new(),
                &plain,
            )
            .await;
        }
    }
    drop(http);
    let fds_before = ferrite_service_kit::process::open_fds().unwrap_or(0);
    let rss_before = ferrite_service_kit::process::rss_bytes().unwrap_or(0);
    let http = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(0xc0);
    let words = [
        "target",
        "x",
        "%00",
        "..",
        "a%2Fb",
        "resources:VCPU",
        "2147483648",
    ];
    let mut seen = std::collections::BTreeMap::<(&str, u16), u32>::new();
    for round in 0..400 {
        let (method, route) = ALL_ROUTES[round % ALL_ROUTES.len()];
        let path = substitute(route, words[rng.gen_range(0..words.len())]);
        let (body, shape) = hostile_body(&mut rng);
        let headers = hostile_headers(&mut rng);
        let (status, text) = fire(&http, &stack.compute_url, method, &path, body, &headers).await;
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
            let fault = parsed.as_object().and_then(|o| o.values().next());
            assert!(
                fault
                    .is_some_and(|f| f["code"].as_u64() == Some(u64::from(status))
                        && f["message"].is_string()),
                "{kind}: {method} {path} ({shape}): {shown}"
            );
        }
    }
    eprintln!("{kind}: (shape, status) counts {seen:?}");
    let (status, _) = stack
        .admin(reqwest::Method::GET, "/v2.1/servers", None)
        .await;
    assert_eq!(status, 200, "{kind}: the API still serves");
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
    assert!(
        rss_after <= rss_before + (48 << 20),
        "{kind}: RSS {} -> {} MiB",
        rss_before >> 20,
        rss_after >> 20
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_at_every_route_leave_no_trace() {
    let _serial = SERIAL.lock().await;
    for kind in backends() {
        hostile_run(kind).await;
    }
}
