//! Every input is bounded (issue 12) in Placement: bodies per route (413),
//! JSON depth (400), query strings (400), `Location` never from an
//! untrusted `Host`, per-client rate limits (429 with `Retry-After`), each
//! in Placement's error format.

mod common;

use common::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

fn short(body: &str) -> &str {
    &body[..body.char_indices().nth(400).map_or(body.len(), |(i, _)| i)]
}

async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<String>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = server.req(method, path, "latest");
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap_or_default())
}

fn placement_error(body: &str) -> (u64, String) {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    (
        parsed["errors"][0]["status"].as_u64().unwrap_or(0),
        parsed["errors"][0]["detail"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_json_and_query_strings_are_bounded() {
    let server = TestServer::start("sqlite").await;
    // 2 MiB to a route that takes a small document.
    let big = json!({"name": "x".repeat(2 << 20)});
    let (status, _, body) = send(
        &server,
        Method::POST,
        "/resource_providers",
        Some(big.to_string()),
    )
    .await;
    assert_eq!(status, 413, "{}", short(&body));
    assert_eq!(placement_error(&body).0, 413, "{}", short(&body));
    // Nested deeper than the bound.
    let mut deep = json!("leaf");
    for _ in 0..60 {
        deep = json!({ "k": deep });
    }
    let (status, _, body) = send(
        &server,
        Method::POST,
        "/resource_providers",
        Some(json!({"name": "deep", "x": deep}).to_string()),
    )
    .await;
    assert_eq!(status, 400, "{}", short(&body));
    assert!(
        placement_error(&body).1.contains("nested"),
        "{}",
        short(&body)
    );
    // A query string past the bound.
    let (status, _, body) = send(
        &server,
        Method::GET,
        &format!("/resource_providers?name={}", "n".repeat(9000)),
        None,
    )
    .await;
    assert_eq!(status, 400, "{}", short(&body));
    assert!(
        placement_error(&body).1.contains("query string"),
        "{}",
        short(&body)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_never_comes_from_an_untrusted_host_header() {
    for trust in [false, true] {
        let server = TestServer::start_with("sqlite", |c| c.trust_host_header = trust).await;
        let response = server
            .req(Method::POST, "/resource_providers", "1.19")
            .header("host", "evil.example:666")
            .json(&json!({"name": "rp"}))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 201);
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if trust {
            assert!(
                location.starts_with("http://evil.example:666/"),
                "{location}"
            );
        } else {
            assert!(
                location.starts_with(&format!("{}/", server.base)),
                "{location}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_their_rate_get_429() {
    let server = TestServer::start_with("sqlite", |c| {
        c.rate_limit = ferrite_service_kit::RateLimitConfig {
            exempt_loopback: false,
            ..ferrite_service_kit::RateLimitConfig::per_client(0.2, 3)
        };
    })
    .await;
    for _ in 0..3 {
        let (status, _, body) = send(&server, Method::GET, "/resource_providers", None).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, headers, body) = send(&server, Method::GET, "/resource_providers", None).await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.get("retry-after").is_some(), "{headers:?}");
    assert_eq!(placement_error(&body).0, 429, "{body}");
    server.stop().await;
}
