//! Every input is bounded (issue 12): JSON depth and field sizes, request
//! bodies per route, query strings, links never from an untrusted `Host`,
//! per-client rate limits, and one unreadable row never breaking a list.

mod common;

use common::{backends, TestServer};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};

/// `{"k": {"k": … "leaf"}}`, `levels` objects deep.
fn nested(levels: usize) -> Value {
    let mut value = json!("leaf");
    for _ in 0..levels {
        value = json!({ "k": value });
    }
    value
}

fn ironic_fault(body: &str) -> String {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let inner: Value = parsed["error_message"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    inner["faultstring"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The start of a body, for assertion messages.
fn short(body: &str) -> &str {
    &body[..body.char_indices().nth(400).map_or(body.len(), |(i, _)| i)]
}

async fn send(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<String>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut request = http
        .request(method.parse().expect("method"), url)
        .header("X-OpenStack-Ironic-API-Version", "latest");
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap_or_default())
}

/// Two PATCH operations, each within serde_json's limit, that together
/// would store a field deeper than storage can read back: refused with a
/// 400, and the node list keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_deeper_than_storage_reads_is_refused() {
    for kind in backends() {
        let server = TestServer::start(kind).await;
        let api = server.client();
        let node = api
            .create_node(&json!({"driver": "fake-hardware", "name": "deep"}))
            .await
            .expect("node");
        let uuid = node["uuid"].as_str().expect("uuid").to_string();
        let http = reqwest::Client::new();
        let inner_path: String = "/k".repeat(100);
        let patch = json!([
            {"op": "add", "path": "/extra/d", "value": nested(110)},
            {"op": "add", "path": format!("/extra/d{inner_path}"), "value": nested(100)},
        ]);
        let url = format!("{}/v1/nodes/{uuid}", server.base);
        let (status, _, body) = send(&http, "PATCH", &url, Some(patch.to_string())).await;
        assert_eq!(status, 400, "{kind}: {}", short(&body));
        assert!(
            ironic_fault(&body).contains("nested"),
            "{kind}: {}",
            short(&body)
        );
        // One deep value in a create body is refused too.
        let (status, _, body) = send(
            &http,
            "POST",
            &format!("{}/v1/nodes", server.base),
            Some(json!({"driver": "fake-hardware", "extra": {"d": nested(60)}}).to_string()),
        )
        .await;
        assert_eq!(status, 400, "{kind}: {}", short(&body));
        for path in [
            "/v1/nodes",
            "/v1/nodes/detail",
            &format!("/v1/nodes/{uuid}"),
        ] {
            let (status, _, body) =
                send(&http, "GET", &format!("{}{path}", server.base), None).await;
            assert_eq!(status, 200, "{kind}: {path}: {}", short(&body));
        }
        server.stop().await;
    }
}

/// A row whose document cannot be read (planted straight in the database)
/// is skipped by lists and periodics with a log line, and a show of that
/// node says which node is unreadable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_row_never_breaks_a_list() {
    for kind in backends() {
        let server = TestServer::start(kind).await;
        let api = server.client();
        let mut uuids = Vec::new();
        for name in ["good-1", "broken", "good-2"] {
            let node = api
                .create_node(&json!({"driver": "fake-hardware", "name": name}))
                .await
                .expect("node");
            uuids.push(node["uuid"].as_str().expect("uuid").to_string());
        }
        api.create_port(&json!({"address": "52:54:00:00:00:01", "node_uuid": uuids[0]}))
            .await
            .expect("port");
        api.create_port(&json!({"address": "52:54:00:00:00:02", "node_uuid": uuids[1]}))
            .await
            .expect("port");
        let db = Database::connect(&server.url()).await.expect("connect");
        db.execute_unprepared(&format!(
            "UPDATE nodes SET body = '{{\"truncated' WHERE uuid = '{}'",
            uuids[1]
        ))
        .await
        .expect("plant a bad node row");
        db.execute_unprepared(
            "UPDATE ports SET body = 'not json' WHERE address = '52:54:00:00:00:02'",
        )
        .await
        .expect("plant a bad port row");
        drop(db);

        let http = reqwest::Client::new();
        for path in ["/v1/nodes", "/v1/nodes/detail", "/v1/nodes?limit=1"] {
            let (status, _, body) =
                send(&http, "GET", &format!("{}{path}", server.base), None).await;
            assert_eq!(status, 200, "{kind}: {path}: {}", short(&body));
            let listed: Value = serde_json::from_str(&body).expect("json");
            let names: Vec<&str> = listed["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .filter_map(|n| n["uuid"].as_str())
                .collect();
            assert!(
                !names.contains(&uuids[1].as_str()),
                "{kind}: {path}: {}",
                short(&body)
            );
            assert!(
                names.contains(&uuids[0].as_str()),
                "{kind}: {path}: {}",
                short(&body)
            );
        }
        // Paging walks past the bad row: two good nodes in pages of one.
        let (_, _, body) = send(
            &http,
            "GET",
            &format!("{}/v1/nodes?limit=1&marker={}", server.base, uuids[0]),
            None,
        )
        .await;
        let page: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            page["nodes"][0]["uuid"],
            json!(uuids[2]),
            "{kind}: {}",
            short(&body)
        );

        let (status, _, body) =
            send(&http, "GET", &format!("{}/v1/ports", server.base), None).await;
        assert_eq!(status, 200, "{kind}: {}", short(&body));
        let ports: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            ports["ports"].as_array().map(Vec::len),
            Some(1),
            "{kind}: {}",
            short(&body)
        );

        let (status, _, body) = send(
            &http,
            "GET",
            &format!("{}/v1/nodes/{}", server.base, uuids[1]),
            None,
        )
        .await;
        assert_eq!(status, 500, "{kind}: {}", short(&body));
        assert!(
            ironic_fault(&body).contains(&uuids[1])
                && ironic_fault(&body).contains("cannot be read"),
            "{kind}: {}",
            short(&body)
        );
        // The periodics' listing skips it too.
        let conn = ferrite_conductor::storage::connect(&server.url(), 2)
            .await
            .expect("connect");
        let rows = ferrite_conductor::storage::list_nodes(
            conn.conn(),
            &Default::default(),
            "id",
            false,
            None,
            None,
        )
        .await
        .expect("a list with a bad row still succeeds");
        assert_eq!(rows.len(), 2, "{kind}");
        drop(conn);
        server.stop().await;
    }
}

/// Bodies are capped per route, stored JSON fields are capped in size, and
/// long query strings are refused, each in Ironic's error format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_fields_and_query_strings_are_bounded() {
    let server = TestServer::start("sqlite").await;
    let api = server.client();
    let node = api
        .create_node(&json!({"driver": "fake-hardware"}))
        .await
        .expect("node");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    let http = reqwest::Client::new();
    let url = format!("{}/v1/nodes/{uuid}", server.base);
    // 2 MiB of JSON to a route that takes small documents.
    let huge = json!([{"op": "add", "path": "/extra/big", "value": "x".repeat(2 << 20)}]);
    let (status, _, body) = send(&http, "PATCH", &url, Some(huge.to_string())).await;
    assert_eq!(status, 413, "{}", short(&body));
    assert!(
        ironic_fault(&body).contains("larger than"),
        "{}",
        short(&body)
    );
    // A field over its size bound, in a body the route accepts.
    let large = json!([{"op": "add", "path": "/extra/big", "value": "x".repeat(300 << 10)}]);
    let (status, _, body) = send(&http, "PATCH", &url, Some(large.to_string())).await;
    assert_eq!(status, 400, "{}", short(&body));
    assert!(ironic_fault(&body).contains("extra"), "{}", short(&body));
    // Many small additions cannot grow a field past the bound either.
    for i in 0..3 {
        let chunk = json!([{"op": "add", "path": format!("/extra/part{i}"), "value": "y".repeat(100 << 10)}]);
        let (status, _, body) = send(&http, "PATCH", &url, Some(chunk.to_string())).await;
        assert_eq!(
            status,
            if i < 2 { 200 } else { 400 },
            "part {i}: {}",
            short(&body)
        );
    }
    // A query string past 8 KiB.
    let long = format!("{}/v1/nodes?name={}", server.base, "n".repeat(9000));
    let (status, _, body) = send(&http, "GET", &long, None).await;
    assert_eq!(status, 400, "{}", short(&body));
    assert!(
        ironic_fault(&body).contains("query string"),
        "{}",
        short(&body)
    );
    // The provision route still takes a config drive of several MiB.
    let (status, _, body) = send(
        &http,
        "PUT",
        &format!("{url}/states/provision"),
        Some(json!({"target": "manage"}).to_string()),
    )
    .await;
    assert!(status.is_success(), "{}", short(&body));
    server.stop().await;
}

/// Links come from `public_endpoint`, else from the address the request
/// arrived on; the `Host` header only when the operator trusts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_never_come_from_an_untrusted_host_header() {
    for trust in [false, true] {
        let server = TestServer::start_with("sqlite", |c| c.trust_host_header = trust).await;
        let api = server.client();
        let node = api
            .create_node(&json!({"driver": "fake-hardware"}))
            .await
            .expect("node");
        let uuid = node["uuid"].as_str().expect("uuid").to_string();
        let response = reqwest::Client::new()
            .get(format!("{}/v1/nodes/{uuid}", server.base))
            .header("X-OpenStack-Ironic-API-Version", "latest")
            .header("host", "evil.example:666")
            .send()
            .await
            .expect("send");
        let body: Value = response.json().await.expect("json");
        let href = body["links"][0]["href"].as_str().unwrap_or_default();
        if trust {
            assert!(href.starts_with("http://evil.example:666/"), "{href}");
        } else {
            assert!(href.starts_with(&format!("{}/", server.base)), "{href}");
        }
        server.stop().await;
    }
}

/// Over its rate a client gets a 429 with `Retry-After` in Ironic's
/// format, on the API and on the agent endpoints, each with its own
/// budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_their_rate_get_429() {
    let server = TestServer::start_with("sqlite", |c| {
        c.rate_limit = ferrite_service_kit::RateLimitConfig {
            exempt_loopback: false,
            ..ferrite_service_kit::RateLimitConfig::per_client(0.2, 3)
        };
        c.agent_rate_limit = ferrite_service_kit::RateLimitConfig {
            exempt_loopback: false,
            ..ferrite_service_kit::RateLimitConfig::per_client(0.2, 2)
        };
    })
    .await;
    let http = reqwest::Client::new();
    let nodes = format!("{}/v1/nodes", server.base);
    for _ in 0..3 {
        let (status, _, body) = send(&http, "GET", &nodes, None).await;
        assert_eq!(status, 200, "{}", short(&body));
    }
    let (status, headers, body) = send(&http, "GET", &nodes, None).await;
    assert_eq!(status, 429, "{}", short(&body));
    let retry: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=5).contains(&retry), "{retry}");
    assert!(!ironic_fault(&body).is_empty(), "{}", short(&body));
    // The agent endpoints have their own budget.
    let lookup = format!("{}/v1/lookup?addresses=52:54:00:00:00:09", server.base);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(send(&http, "GET", &lookup, None).await.0.as_u16());
    }
    assert_eq!(statuses[..2], [404, 404], "{statuses:?}");
    assert_eq!(statuses[2], 429, "{statuses:?}");
    server.stop().await;
}
