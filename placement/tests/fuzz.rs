//! Malformed bodies, headers and query strings thrown at every route: the
//! service must answer with a client error in Placement's format, never a
//! 5xx and never a hang.

mod common;

use std::collections::BTreeMap;

use common::TestServer;
use ferrite_placement_client::InventoryRecord;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

const ROUTES: &[&str] = &[
    "/",
    "/resource_providers",
    "/resource_providers/{rp}",
    "/resource_providers/{rp}/inventories",
    "/resource_providers/{rp}/inventories/VCPU",
    "/resource_providers/{rp}/inventories/{word}",
    "/resource_providers/{rp}/usages",
    "/resource_providers/{rp}/aggregates",
    "/resource_providers/{rp}/allocations",
    "/resource_providers/{rp}/traits",
    "/resource_providers/{word}",
    "/allocations",
    "/allocations/{consumer}",
    "/allocations/{word}",
    "/resource_classes",
    "/resource_classes/CUSTOM_FUZZ",
    "/resource_classes/{word}",
    "/traits",
    "/traits/CUSTOM_FUZZ",
    "/traits/{word}",
    "/usages",
    "/allocation_candidates",
    "/reshaper",
    "/{word}",
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

const QUERY_KEYS: &[&str] = &[
    "resources",
    "required",
    "member_of",
    "in_tree",
    "uuid",
    "name",
    "project_id",
    "user_id",
    "consumer_type",
    "associated",
    "limit",
    "group_policy",
    "resources1",
    "required_a",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("VCPU"),
            Just("CUSTOM_X"),
            Just("11111111-2222-3333-4444-555555555555")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,10}",
                    Just("total".to_string()),
                    Just("resources".to_string()),
                    Just("allocations".to_string()),
                    Just("resource_provider_generation".to_string()),
                    Just("consumer_generation".to_string()),
                    Just("traits".to_string()),
                    Just("name".to_string()),
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Realistic bodies with one member replaced by random JSON.
fn mutated_body() -> impl Strategy<Value = Value> {
    let templates = vec![
        json!({"name": "x", "uuid": "11111111-2222-3333-4444-555555555555"}),
        json!({"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 4}}}),
        json!({"allocations": {"{rp}": {"resources": {"VCPU": 1}}}, "project_id": "p", "user_id": "u", "consumer_generation": null, "consumer_type": "INSTANCE"}),
        json!({"resource_provider_generation": 1, "traits": ["HW_CPU_X86_AVX"]}),
        json!({"resource_provider_generation": 1, "aggregates": ["11111111-2222-3333-4444-555555555555"]}),
        json!({"total": 4, "resource_class": "VCPU"}),
    ];
    (
        prop::sample::select(templates),
        "[a-z_]{1,24}",
        json_value(),
    )
        .prop_map(|(mut body, key, value)| {
            if let Some(map) = body.as_object_mut() {
                let existing: Vec<String> = map.keys().cloned().collect();
                let target = existing
                    .iter()
                    .find(|k| key.starts_with(k.chars().next().unwrap_or('z')))
                    .cloned()
                    .unwrap_or(key);
                map.insert(target, value);
            }
            body
        })
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Bytes(Vec<u8>),
    Json(Value),
}

/// JSON nested `depth` levels (past the bound from 33, past serde_json's
/// from 128), as arrays or objects.
fn deep_json(depth: usize, arrays: bool) -> Vec<u8> {
    let (open, close) = if arrays {
        ("[", "]")
    } else {
        ("{\"name\":", "}")
    };
    format!("{}1{}", open.repeat(depth), close.repeat(depth)).into_bytes()
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        4 => Just(Body::None),
        4 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Bytes),
        4 => json_value().prop_map(Body::Json),
        4 => mutated_body().prop_map(Body::Json),
        1 => (20usize..200, any::<bool>()).prop_map(|(depth, arrays)| Body::Bytes(deep_json(depth, arrays))),
        1 => (5_000usize..20_000).prop_map(|n| Body::Json(json!({"traits": vec!["CUSTOM_X"; n]}))),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    route: &'static str,
    method: &'static str,
    word: String,
    query: Vec<(String, String)>,
    version: Option<String>,
    content_type: Option<String>,
    token: Option<String>,
    body: Body,
}

fn case() -> impl Strategy<Value = Case> {
    let query_pair = (
        prop_oneof![
            prop::sample::select(QUERY_KEYS).prop_map(str::to_string),
            "[a-z_0-9]{1,8}"
        ],
        prop_oneof![
            ".{0,16}",
            "[A-Z_:,!0-9]{0,24}",
            Just("in:".to_string()),
            Just("VCPU:1,MEMORY_MB:x".to_string()),
            Just("!in:11111111-2222-3333-4444-555555555555".to_string()),
        ],
    );
    (
        prop::sample::select(ROUTES),
        prop_oneof![4 => prop::sample::select(&METHODS[..4]), 1 => prop::sample::select(METHODS)],
        prop_oneof![".{0,20}", "[A-Za-z0-9_%-]{0,40}"],
        prop::collection::vec(query_pair, 0..4),
        prop::option::of(prop_oneof![
            Just("latest".to_string()),
            Just("1.39".to_string()),
            Just("1.0".to_string()),
            Just("1.14".to_string()),
            Just("1.28".to_string()),
            "[0-9.a-z ]{0,8}",
        ]),
        prop::option::weighted(
            0.9,
            prop_oneof![Just("application/json".to_string()), "[a-z/;=-]{0,20}"],
        ),
        prop::option::weighted(
            0.95,
            prop_oneof![9 => Just("admin".to_string()), 1 => ".{0,10}"],
        ),
        body(),
    )
        .prop_map(
            |(route, method, word, query, version, content_type, token, body)| Case {
                route,
                method,
                word,
                query,
                version,
                content_type,
                token,
                body,
            },
        )
}

async fn fire(server: &TestServer, rp: &str, consumer: &str, case: &Case) -> (u16, String) {
    let encoded: String = url::form_urlencoded::byte_serialize(case.word.as_bytes()).collect();
    let path = case
        .route
        .replace("{rp}", rp)
        .replace("{consumer}", consumer)
        .replace("{word}", &encoded);
    let mut url = url::Url::parse(&format!("{}{}", server.base, path)).expect("url");
    if !case.query.is_empty() {
        url.query_pairs_mut().extend_pairs(case.query.iter());
    }
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).expect("method");
    let mut request = server
        .http
        .request(method, url)
        .header("accept", "application/json");
    if let Some(token) = &case.token {
        if let Ok(value) = reqwest::header::HeaderValue::from_str(token) {
            request = request.header("x-auth-token", value);
        }
    }
    if let Some(version) = &case.version {
        if let Ok(value) = reqwest::header::HeaderValue::from_str(&format!("placement {version}")) {
            request = request.header("openstack-api-version", value);
        }
    }
    if let Some(content_type) = &case.content_type {
        if let Ok(value) = reqwest::header::HeaderValue::from_str(content_type) {
            request = request.header("content-type", value);
        }
    }
    request = match &case.body {
        Body::None => request,
        Body::Bytes(bytes) => request.body(bytes.clone()),
        Body::Json(value) => request.body(value.to_string().replace("{rp}", rp)),
    };
    let response = tokio::time::timeout(std::time::Duration::from_secs(20), request.send())
        .await
        .expect("the server must answer within 20 s")
        .expect("transport");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_never_cause_server_errors() {
    let cases: u32 = std::env::var("FERRITE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    for kind in common::backends() {
        let server = TestServer::start(kind).await;
        let client = server.client();
        let rp = uuid::Uuid::new_v4().to_string();
        client
            .create_provider(&rp, "fuzz-target", None)
            .await
            .expect("provider");
        let inventories = BTreeMap::from([("VCPU".to_string(), InventoryRecord::total(64))]);
        client
            .set_inventories(&rp, 0, &inventories)
            .await
            .expect("inventory");
        let consumer = uuid::Uuid::new_v4().to_string();
        let allocations = BTreeMap::from([(rp.clone(), BTreeMap::from([("VCPU".to_string(), 1)]))]);
        client
            .put_allocations(&consumer, &allocations, "p", "u", None)
            .await
            .expect("claim");

        let mut runner = TestRunner::new(Config {
            cases,
            ..Config::default()
        });
        let strategy = case();
        let mut statuses: BTreeMap<u16, u32> = BTreeMap::new();
        for _ in 0..cases {
            let case = strategy.new_tree(&mut runner).expect("generate").current();
            let (status, body) = fire(&server, &rp, &consumer, &case).await;
            *statuses.entry(status).or_default() += 1;
            assert!(status < 500, "{kind}: {case:?} gave {status}: {body}");
            if status >= 400 && case.method != "HEAD" {
                let parsed: Value = serde_json::from_str(&body).unwrap_or_else(|_| {
                    panic!("{kind}: error body is not JSON for {case:?}: {body}")
                });
                // A request without a token is refused before Placement's
                // own error format applies, with the auth middleware's JSON
                // document (as upstream's).
                let well_formed = if status == 401 {
                    parsed["code"] == "401 Unauthorized" && parsed["message"].is_string()
                } else {
                    parsed["errors"][0]["status"].is_u64()
                };
                assert!(well_formed, "{kind}: error format for {case:?}: {body}");
            }
        }
        eprintln!("{kind}: statuses {statuses:?}");
        // The service is still healthy afterwards (the cases may legitimately
        // have removed the allocation and even the provider).
        match client.provider_usages(&rp).await {
            Ok(usages) => assert!(usages.usages.get("VCPU").copied().unwrap_or(0) <= 64),
            Err(err) => assert_eq!(err.status(), Some(404), "{kind}: {err}"),
        }
        server.stop().await;
    }
}
