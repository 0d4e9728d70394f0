//! Behaviour of the Placement API on every configured database: the SQL
//! differs per backend, so each scenario runs on each.

mod common;

use common::{json, TestServer};
use reqwest::Method;
use serde_json::json as j;

const V: &str = "1.39";

async fn scenario_providers_inventories_and_filters(server: &TestServer, kind: &str) {
    let root = "11111111-0000-0000-0000-000000000001";
    let child = "11111111-0000-0000-0000-000000000002";
    let other = "11111111-0000-0000-0000-000000000003";
    for (uuid, name, parent) in [
        (root, "root", None),
        (child, "child", Some(root)),
        (other, "other", None),
    ] {
        let mut body = j!({"uuid": uuid, "name": name});
        if let Some(parent) = parent {
            body["parent_provider_uuid"] = j!(parent);
        }
        let (status, created) = json(
            server
                .req(Method::POST, "/resource_providers", V)
                .json(&body)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 200, "{kind}: {created}");
        assert_eq!(
            created["root_provider_uuid"],
            root.replace(
                "0001",
                if parent.is_some() || uuid == root {
                    "0001"
                } else {
                    "0003"
                }
            )
        );
    }
    // Duplicate names are refused with the stable code.
    let (status, body) = json(
        server
            .req(Method::POST, "/resource_providers", V)
            .json(&j!({"name": "root"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 409, "{kind}");
    assert_eq!(body["errors"][0]["code"], "placement.duplicate_name");

    // Inventories with step sizes, then the resources filter (SUM and modulo in SQL).
    let inventories = j!({"resource_provider_generation": 0, "inventories": {
        "VCPU": {"total": 8, "allocation_ratio": 2.0},
        "MEMORY_MB": {"total": 4096, "step_size": 512, "min_unit": 512, "reserved": 512}}});
    let (status, body) = json(
        server
            .req(
                Method::PUT,
                &format!("/resource_providers/{child}/inventories"),
                V,
            )
            .json(&inventories)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    assert_eq!(body["resource_provider_generation"], 1);
    for (query, expected) in [
        ("resources=VCPU:16", vec![child]),
        ("resources=VCPU:17", vec![]),
        ("resources=MEMORY_MB:1024", vec![child]),
        ("resources=MEMORY_MB:1000", vec![]),
        ("resources=MEMORY_MB:3584", vec![child]),
        ("resources=MEMORY_MB:4096", vec![]),
        (&format!("in_tree={child}") as &str, vec![root, child]),
        ("name=other", vec![other]),
    ] {
        let (status, body) = json(
            server
                .req(Method::GET, &format!("/resource_providers?{query}"), V)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 200, "{kind} {query}: {body}");
        let got: Vec<&str> = body["resource_providers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|p| p["uuid"].as_str())
            .collect();
        assert_eq!(got, expected, "{kind}: {query}");
    }

    // Traits: custom trait, provider traits, required/forbidden filters and prefix listing.
    assert_eq!(
        server
            .req(Method::PUT, "/traits/CUSTOM_GOLD", V)
            .send()
            .await
            .expect("send")
            .status(),
        201
    );
    let (status, body) = json(
        server
            .req(Method::PUT, &format!("/resource_providers/{other}/traits"), V)
            .json(&j!({"resource_provider_generation": 0, "traits": ["CUSTOM_GOLD", "HW_CPU_X86_AVX2"]}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    for (query, expected) in [
        ("required=CUSTOM_GOLD", vec![other]),
        ("required=!CUSTOM_GOLD", vec![root, child]),
        ("required=in:CUSTOM_GOLD,HW_CPU_X86_SSE", vec![other]),
    ] {
        let (_, body) = json(
            server
                .req(Method::GET, &format!("/resource_providers?{query}"), V)
                .send()
                .await
                .expect("send"),
        )
        .await;
        let got: Vec<&str> = body["resource_providers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|p| p["uuid"].as_str())
            .collect();
        assert_eq!(got, expected, "{kind}: {query}");
    }
    let (_, body) = json(
        server
            .req(Method::GET, "/traits?name=startswith:CUSTOM_", V)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(body["traits"], j!(["CUSTOM_GOLD"]), "{kind}");
    let (_, body) = json(
        server
            .req(
                Method::GET,
                "/traits?associated=true&name=in:CUSTOM_GOLD,HW_CPU_X86_SSE",
                V,
            )
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(body["traits"], j!(["CUSTOM_GOLD"]), "{kind}");

    // Aggregates and member_of.
    let agg = "22222222-0000-0000-0000-000000000001";
    let (status, body) = json(
        server
            .req(
                Method::PUT,
                &format!("/resource_providers/{root}/aggregates"),
                V,
            )
            .json(&j!({"resource_provider_generation": 0, "aggregates": [agg]}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    assert_eq!(body["resource_provider_generation"], 1);
    let (_, body) = json(
        server
            .req(
                Method::GET,
                &format!("/resource_providers?member_of={agg}"),
                V,
            )
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(body["resource_providers"][0]["uuid"], root, "{kind}");
    let (_, body) = json(
        server
            .req(
                Method::GET,
                &format!("/resource_providers?member_of=!{agg}"),
                V,
            )
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        body["resource_providers"].as_array().map(Vec::len),
        Some(2),
        "{kind}"
    );

    // Re-parenting (1.37) moves the whole subtree's root.
    let (status, body) = json(
        server
            .req(Method::PUT, &format!("/resource_providers/{root}"), V)
            .json(&j!({"name": "root", "parent_provider_uuid": other}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    let (_, body) = json(
        server
            .req(Method::GET, &format!("/resource_providers/{child}"), V)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(body["root_provider_uuid"], other, "{kind}");
    let (status, _) = json(
        server
            .req(Method::DELETE, &format!("/resource_providers/{other}"), V)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 409, "{kind}: a parent cannot be deleted");
}

async fn scenario_allocations(server: &TestServer, kind: &str) {
    let a = "33333333-0000-0000-0000-00000000000a";
    let b = "33333333-0000-0000-0000-00000000000b";
    for (uuid, name) in [(a, "a"), (b, "b")] {
        let status = server
            .req(Method::POST, "/resource_providers", V)
            .json(&j!({"uuid": uuid, "name": name}))
            .send()
            .await
            .expect("send")
            .status();
        assert_eq!(status, 200);
        let status = server
            .req(Method::PUT, &format!("/resource_providers/{uuid}/inventories"), V)
            .json(&j!({"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4}, "DISK_GB": {"total": 100}}}))
            .send()
            .await
            .expect("send")
            .status();
        assert_eq!(status, 200);
    }
    let consumer = "44444444-0000-0000-0000-000000000001";
    let put = |generation: serde_json::Value, provider: &str, vcpu: i64| {
        j!({"allocations": {provider: {"resources": {"VCPU": vcpu, "DISK_GB": 10}}},
            "project_id": "proj", "user_id": "user", "consumer_generation": generation, "consumer_type": "INSTANCE"})
    };
    let status = server
        .req(Method::PUT, &format!("/allocations/{consumer}"), V)
        .json(&put(j!(null), a, 2))
        .send()
        .await
        .expect("send")
        .status();
    assert_eq!(status, 204, "{kind}");
    // A stale consumer generation loses.
    let (status, body) = json(
        server
            .req(Method::PUT, &format!("/allocations/{consumer}"), V)
            .json(&put(j!(null), a, 1))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 409, "{kind}");
    assert_eq!(body["errors"][0]["code"], "placement.concurrent_update");
    // Too much is refused, nothing changes.
    let (status, body) = json(
        server
            .req(Method::PUT, &format!("/allocations/{consumer}"), V)
            .json(&put(j!(1), a, 5))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 409, "{kind}: {body}");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("would exceed the capacity"),
        "{kind}"
    );
    // Move to b with POST /allocations (a migration-like swap of two consumers).
    let migration = "44444444-0000-0000-0000-000000000002";
    let body = j!({
        consumer: {"allocations": {b: {"resources": {"VCPU": 2, "DISK_GB": 10}}}, "project_id": "proj", "user_id": "user", "consumer_generation": 1, "consumer_type": "INSTANCE"},
        migration: {"allocations": {a: {"resources": {"VCPU": 2, "DISK_GB": 10}}}, "project_id": "proj", "user_id": "user", "consumer_generation": null, "consumer_type": "MIGRATION"},
    });
    let (status, response) = json(
        server
            .req(Method::POST, "/allocations", V)
            .json(&body)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 204, "{kind}: {response}");
    let (_, body) = json(
        server
            .req(Method::GET, &format!("/allocations/{consumer}"), V)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(body["allocations"][b]["resources"]["VCPU"], 2, "{kind}");
    assert_eq!(body["consumer_generation"], 2, "{kind}");
    let (_, body) = json(
        server
            .req(Method::GET, "/usages?project_id=proj", V)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(body["usages"]["INSTANCE"]["VCPU"], 2, "{kind}: {body}");
    assert_eq!(body["usages"]["MIGRATION"]["consumer_count"], 1, "{kind}");
    let (_, body) = json(
        server
            .req(Method::GET, "/usages?project_id=proj", "1.9")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(body["usages"], j!({"VCPU": 4, "DISK_GB": 20}), "{kind}");
    let (_, body) = json(
        server
            .req(
                Method::GET,
                &format!("/resource_providers/{a}/allocations"),
                V,
            )
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        body["allocations"][migration]["resources"]["DISK_GB"], 10,
        "{kind}"
    );
    // Classes in use cannot be removed from inventory.
    let (status, body) = json(
        server
            .req(
                Method::DELETE,
                &format!("/resource_providers/{a}/inventories"),
                V,
            )
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 409, "{kind}");
    assert_eq!(body["errors"][0]["code"], "placement.inventory.inuse");
    // Empty allocations remove the consumer.
    let empty = j!({"allocations": {}, "project_id": "proj", "user_id": "user", "consumer_generation": 1, "consumer_type": "MIGRATION"});
    assert_eq!(
        server
            .req(Method::PUT, &format!("/allocations/{migration}"), V)
            .json(&empty)
            .send()
            .await
            .expect("send")
            .status(),
        204
    );
    assert_eq!(
        server
            .req(Method::DELETE, &format!("/allocations/{consumer}"), V)
            .send()
            .await
            .expect("send")
            .status(),
        204
    );
    assert_eq!(
        server
            .req(Method::DELETE, &format!("/allocations/{consumer}"), V)
            .send()
            .await
            .expect("send")
            .status(),
        404
    );
    let (_, body) = json(
        server
            .req(Method::GET, &format!("/resource_providers/{b}/usages"), V)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(body["usages"], j!({"VCPU": 0, "DISK_GB": 0}), "{kind}");
    assert_eq!(
        server
            .req(Method::DELETE, &format!("/resource_providers/{a}"), V)
            .send()
            .await
            .expect("send")
            .status(),
        204
    );
}

async fn scenario_classes_and_errors(server: &TestServer, kind: &str) {
    let (status, body) = json(
        server
            .req(Method::POST, "/resource_classes", V)
            .json(&j!({"name": "CUSTOM_IRON"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 201, "{kind}: {body}");
    let (status, body) = json(
        server
            .req(Method::POST, "/resource_classes", V)
            .json(&j!({"name": "VCPU"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400, "{kind}: {body}");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("does not match"),
        "{kind}"
    );
    let (status, _) = json(
        server
            .req(Method::DELETE, "/resource_classes/VCPU", V)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400, "{kind}");
    let (status, body) = json(
        server
            .req(Method::GET, "/resource_classes", V)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["resource_classes"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names.first(),
        Some(&"VCPU"),
        "{kind}: standard classes come first, in upstream order"
    );
    assert_eq!(names.last(), Some(&"CUSTOM_IRON"), "{kind}");
    // Malformed JSON, a bad UUID and an unknown query parameter, all in the error format.
    let (status, body) = json(
        server
            .req(Method::POST, "/resource_providers", V)
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400, "{kind}");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("Malformed JSON"),
        "{kind}"
    );
    let (status, body) = json(
        server
            .req(Method::GET, "/resource_providers?uuid=nope", V)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400, "{kind}: {body}");
    let (status, body) = json(
        server
            .req(Method::GET, "/resource_providers?cow=moo", V)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400, "{kind}");
    assert_eq!(body["errors"][0]["code"], "placement.undefined_code");
    let response = server
        .http
        .get(format!("{}/resource_providers", server.base))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401, "{kind}: no token, no service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_behaves_the_same_on_every_backend() {
    for kind in common::backends() {
        let server = TestServer::start(kind).await;
        scenario_providers_inventories_and_filters(&server, kind).await;
        scenario_allocations(&server, kind).await;
        scenario_classes_and_errors(&server, kind).await;
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    let server = TestServer::start("sqlite").await;
    let client = server.client();
    let uuid = uuid::Uuid::new_v4().to_string();
    client
        .create_provider(&uuid, "durable", None)
        .await
        .expect("create");
    let url = server.db.url.clone();
    // A second service on the same database sees the committed provider.
    let state = ferrite_placement::prepare(ferrite_placement::Config::for_database(url))
        .await
        .expect("prepare");
    let found = ferrite_placement::storage::providers::get_by_uuid(state.db.conn(), &uuid)
        .await
        .expect("query");
    assert_eq!(found.map(|p| p.name), Some("durable".to_string()));
    server.stop().await;
}
