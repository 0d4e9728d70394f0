//! Every input is bounded (issue 12) in the compute API: one unreadable
//! row (a node in the conductor, a server here) never breaks a list or the
//! driver's sync; bodies, JSON and query strings are bounded in Nova's
//! fault format; links never come from an untrusted `Host`; clients over
//! their rate get Nova's 429.

mod common;

use std::time::Duration;

use common::{backends, Stack};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};

fn short(body: &str) -> &str {
    &body[..body.char_indices().nth(400).map_or(body.len(), |(i, _)| i)]
}

async fn raw(
    stack: &Stack,
    method: Method,
    path: &str,
    body: Option<String>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = stack.req(method, path, "admin", "latest");
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

/// A node row the conductor cannot read no longer fails the driver's sync:
/// the other nodes still get their providers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_node_does_not_stop_the_sync() {
    for kind in backends() {
        let stack = Stack::start(kind).await;
        let good = stack.enroll_node("good", "baremetal", "").await;
        let bad = stack.enroll_node("bad", "baremetal", "").await;
        let db = Database::connect(&stack.conductor_db.url)
            .await
            .expect("connect");
        db.execute_unprepared(&format!(
            "UPDATE nodes SET body = '{{\"truncated' WHERE uuid = '{bad}'"
        ))
        .await
        .expect("plant a bad row");
        drop(db);
        stack
            .driver()
            .sync()
            .await
            .expect("the sync survives a bad row");
        let provider = stack.placement().get_provider(&good).await;
        assert!(provider.is_ok(), "{kind}: {provider:?}");
        stack.stop().await;
    }
}

/// A server row that cannot be read is skipped by the lists (and by the
/// recovery at start) and named by a show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_server_never_breaks_a_list() {
    for kind in backends() {
        let mut stack = Stack::start(kind).await;
        let flavor = stack.create_flavor("bm", "CUSTOM_NONE", &[]).await;
        let image = stack.create_image("img").await;
        let mut ids = Vec::new();
        for name in ["first", "second"] {
            let (status, body) = stack.boot("admin", name, &flavor, &image).await;
            assert_eq!(status, 202, "{kind}: {body}");
            let id = body["server"]["id"].as_str().expect("id").to_string();
            stack
                .wait_status(&id, &["ERROR", "ACTIVE"], Duration::from_secs(30))
                .await;
            ids.push(id);
        }
        let db = Database::connect(&stack.compute_db.url)
            .await
            .expect("connect");
        db.execute_unprepared(&format!(
            "UPDATE instances SET body = 'not json' WHERE uuid = '{}'",
            ids[1]
        ))
        .await
        .expect("plant a bad row");
        drop(db);
        for path in ["/v2.1/servers", "/v2.1/servers/detail"] {
            let (status, body) = stack.admin(Method::GET, path, None).await;
            assert_eq!(status, 200, "{kind}: {path}: {body}");
            let listed: Vec<&str> = body["servers"]
                .as_array()
                .expect("servers")
                .iter()
                .filter_map(|s| s["id"].as_str())
                .collect();
            assert_eq!(listed, vec![ids[0].as_str()], "{kind}: {path}");
        }
        let (status, body) = stack
            .admin(Method::GET, &format!("/v2.1/servers/{}", ids[1]), None)
            .await;
        assert_eq!(status, 500, "{kind}: {body}");
        let message = body["computeFault"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&ids[1]), "{kind}: {body}");
        // A restart (whose recovery lists servers) still works.
        stack.stop_compute().await;
        stack.start_compute(|_| {}).await;
        let (status, _) = stack.admin(Method::GET, "/v2.1/servers", None).await;
        assert_eq!(status, 200, "{kind}");
        stack.stop().await;
    }
}

/// Bodies over the limit are 413 `overLimit`, JSON nested too deep is a
/// 400 `badRequest`, long query strings are 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_json_and_query_strings_are_bounded() {
    let stack = Stack::start("sqlite").await;
    let big = json!({"flavor": {"name": "x".repeat(200 << 10), "ram": 1, "vcpus": 1, "disk": 1}});
    let (status, _, body) = raw(&stack, Method::POST, "/v2.1/flavors", Some(big.to_string())).await;
    assert_eq!(status, 413, "{}", short(&body));
    let fault: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(fault["overLimit"]["code"], 413, "{}", short(&body));
    let mut deep = json!("leaf");
    for _ in 0..60 {
        deep = json!([deep]);
    }
    let (status, _, body) = raw(
        &stack,
        Method::POST,
        "/v2.1/os-keypairs",
        Some(json!({"keypair": {"name": "k", "public_key": deep}}).to_string()),
    )
    .await;
    assert_eq!(status, 400, "{}", short(&body));
    let fault: Value = serde_json::from_str(&body).expect("json");
    let message = fault["badRequest"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nested"), "{}", short(&body));
    let (status, _, body) = raw(
        &stack,
        Method::GET,
        &format!("/v2.1/servers?name={}", "n".repeat(9000)),
        None,
    )
    .await;
    assert_eq!(status, 400, "{}", short(&body));
    stack.stop().await;
}

/// Links are built on `public_endpoint`, else on the address the request
/// arrived on; `Host` and `X-Forwarded-*` only when the operator trusts
/// the Host header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_never_come_from_an_untrusted_host_header() {
    for trust in [false, true] {
        let stack = Stack::start_with("sqlite", |c| c.trust_host_header = trust).await;
        let flavor = stack.create_flavor("bm", "CUSTOM_X", &[]).await;
        let response = stack
            .req(
                Method::GET,
                &format!("/v2.1/flavors/{flavor}"),
                "admin",
                "latest",
            )
            .header("host", "evil.example:666")
            .header("x-forwarded-host", "evil-forwarded.example")
            .send()
            .await
            .expect("send");
        let body: Value = response.json().await.expect("json");
        let href = body["flavor"]["links"][0]["href"]
            .as_str()
            .unwrap_or_default();
        if trust {
            assert!(href.starts_with("http://evil.example:666/"), "{href}");
        } else {
            assert!(
                href.starts_with(&format!("{}/", stack.compute_url)),
                "{href}"
            );
        }
        stack.stop().await;
    }
}

/// Over its rate a client gets Nova's 429 `overLimit` with `retryAfter`
/// and a `Retry-After` header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_their_rate_get_429() {
    let stack = Stack::start_with("sqlite", |c| {
        c.rate_limit = ferrite_service_kit::RateLimitConfig {
            exempt_loopback: false,
            ..ferrite_service_kit::RateLimitConfig::per_client(0.2, 3)
        };
    })
    .await;
    for _ in 0..3 {
        let (status, _, body) = raw(&stack, Method::GET, "/v2.1/flavors", None).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, headers, body) = raw(&stack, Method::GET, "/v2.1/flavors", None).await;
    assert_eq!(status, 429, "{body}");
    let retry: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    let fault: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(fault["overLimit"]["code"], 429, "{body}");
    assert_eq!(
        fault["overLimit"]["retryAfter"],
        json!(retry.to_string()),
        "{body}"
    );
    stack.stop().await;
}
