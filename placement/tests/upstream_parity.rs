//! Answers where the gabbi suite is silent but upstream Placement 16 is not:
//! one test per root cause the differential (`scripts/placement-differential`)
//! found. Each asserts what upstream answers to the same request.

mod common;

use common::{json, TestServer};
use reqwest::Method;
use serde_json::json as j;

async fn create_provider(server: &TestServer, uuid: &str, name: &str) {
    let status = server
        .req(Method::POST, "/resource_providers", "1.20")
        .json(&j!({"uuid": uuid, "name": name}))
        .send()
        .await
        .expect("send")
        .status()
        .as_u16();
    assert_eq!(status, 200);
}

async fn generation(server: &TestServer, uuid: &str) -> i64 {
    let (_, body) = json(
        server
            .req(Method::GET, &format!("/resource_providers/{uuid}"), "1.14")
            .send()
            .await
            .expect("send"),
    )
    .await;
    body["generation"].as_i64().expect("generation")
}

/// Root cause 1: upstream truncates `(total - reserved) * allocation_ratio`
/// to a whole number before checking it, so a ratio that leaves less than
/// one unit is a capacity of 0: refused before 1.26 by every inventory
/// write, accepted from 1.26 (where reserved may equal total).
async fn scenario_capacity_is_truncated(server: &TestServer, kind: &str) {
    let rp = "19000000-0000-0000-0000-000000000001";
    create_provider(server, rp, "capacity").await;
    let record = j!({"allocation_ratio": 0.5, "step_size": 2, "total": 1});
    let gen = generation(server, rp).await;
    let (status, body) = json(
        server
            .req(
                Method::PUT,
                &format!("/resource_providers/{rp}/inventories"),
                "1.8",
            )
            .json(&j!({"resource_provider_generation": gen, "inventories": {"VCPU": record}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400, "{kind}: {body}");
    let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("The reserved value is greater than or equal to total."),
        "{kind}: {detail}"
    );
    let mut one = record.clone();
    one["resource_class"] = j!("VCPU");
    let (status, _) = json(
        server
            .req(
                Method::POST,
                &format!("/resource_providers/{rp}/inventories"),
                "1.8",
            )
            .json(&one)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400, "{kind}: POST");
    // Nothing was written, the generation did not move.
    assert_eq!(generation(server, rp).await, gen, "{kind}");
    // A whole unit after the ratio is fine at 1.8.
    let (status, body) = json(
        server
            .req(
                Method::PUT,
                &format!("/resource_providers/{rp}/inventories"),
                "1.8",
            )
            .json(&j!({"resource_provider_generation": gen,
                       "inventories": {"VCPU": {"allocation_ratio": 0.5, "total": 2}}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    // The single-class PUT checks the same rule.
    let (status, _) = json(
        server
            .req(
                Method::PUT,
                &format!("/resource_providers/{rp}/inventories/VCPU"),
                "1.8",
            )
            .json(
                &j!({"resource_provider_generation": gen + 1, "total": 1, "allocation_ratio": 0.5}),
            )
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400, "{kind}: PUT one");
    // From 1.26 a capacity of 0 is allowed.
    let (status, body) = json(
        server
            .req(
                Method::PUT,
                &format!("/resource_providers/{rp}/inventories/VCPU"),
                "1.26",
            )
            .json(
                &j!({"resource_provider_generation": gen + 1, "total": 1, "allocation_ratio": 0.5}),
            )
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
}

/// Root cause 5: a class upstream refused (root cause 1) never shows in
/// the provider summaries of allocation candidates.
async fn scenario_refused_class_not_in_summaries(server: &TestServer, kind: &str) {
    let rp = "19000000-0000-0000-0000-000000000005";
    create_provider(server, rp, "summaries").await;
    let (status, _) = json(
        server
            .req(
                Method::PUT,
                &format!("/resource_providers/{rp}/inventories"),
                "1.8",
            )
            .json(&j!({"resource_provider_generation": 0, "inventories": {
                "VCPU": {"total": 4},
                "DISK_GB": {"allocation_ratio": 0.5, "step_size": 2, "total": 1}}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400, "{kind}");
    let (status, _) = json(
        server
            .req(
                Method::PUT,
                &format!("/resource_providers/{rp}/inventories"),
                "1.8",
            )
            .json(&j!({"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4}}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}");
    let (status, body) = json(
        server
            .req(
                Method::GET,
                "/allocation_candidates?resources=VCPU:1",
                "1.30",
            )
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    let resources = &body["provider_summaries"][rp]["resources"];
    assert_eq!(
        resources,
        &j!({"VCPU": {"capacity": 4, "used": 0}}),
        "{kind}"
    );
}

/// Root cause 2: errors upstream raises outside its handlers (routing,
/// policy, an uncaught provider lookup) carry no `vary`; errors a handler
/// returns, and successes, do.
async fn scenario_vary_on_errors(server: &TestServer, kind: &str) {
    let missing = "19000000-0000-0000-0000-00000000dead";
    let get = |path: &str, token: &str| {
        server
            .http
            .get(format!("{}{path}", server.base))
            .header("x-auth-token", token)
            .header("openstack-api-version", "placement 1.30")
            .header("accept", "application/json")
            .send()
    };
    for (path, token, status, vary) in [
        ("/nothing/here", "admin", 404, false),
        (
            &*format!("/resource_providers/{missing}"),
            "admin",
            404,
            false,
        ),
        ("/resource_classes/CUSTOM_NONE", "admin", 404, false),
        ("/resource_providers", "user:project", 403, false),
        // The inventory handlers catch the lookup and answer themselves.
        (
            &*format!("/resource_providers/{missing}/inventories"),
            "admin",
            404,
            true,
        ),
        ("/resource_providers", "admin", 200, true),
    ] {
        let response = get(path, token).await.expect("send");
        assert_eq!(response.status().as_u16(), status, "{kind}: {path}");
        assert_eq!(
            response.headers().get("vary").is_some(),
            vary,
            "{kind}: {path}"
        );
        assert_eq!(
            response
                .headers()
                .get("openstack-api-version")
                .and_then(|v| v.to_str().ok()),
            Some("placement 1.30"),
            "{kind}: {path}"
        );
    }
}

/// Root cause 3: no token is upstream's auth middleware's own JSON
/// document, not Placement's `errors` list.
async fn scenario_401_body(server: &TestServer, kind: &str) {
    let response = server
        .http
        .get(format!("{}/resource_providers", server.base))
        .header("accept", "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 401, "{kind}");
    assert!(response.headers().get("openstack-api-version").is_none());
    let (_, body) = json(response).await;
    assert_eq!(body["code"], "401 Unauthorized", "{kind}: {body}");
    assert_eq!(body["title"], "Unauthorized", "{kind}: {body}");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("This server could not verify")));
    assert!(body.get("errors").is_none(), "{kind}: {body}");
}

/// Root cause 4: an unknown route is Placement's JSON error with no detail
/// of its own, never an empty body without a content type.
async fn scenario_404_body(server: &TestServer, kind: &str) {
    for path in [
        "/nothing",
        "/traits/X/Y",
        "/resource_providers/19000000-0000-0000-0000-000000000001/inventories/VCPU/x",
    ] {
        let response = server
            .req(Method::GET, path, "1.30")
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 404, "{kind}: {path}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert_eq!(content_type, "application/json", "{kind}: {path}");
        let (_, body) = json(response).await;
        assert_eq!(
            body["errors"][0]["detail"], "The resource could not be found.\n\n   ",
            "{kind}: {path}"
        );
        assert_eq!(body["errors"][0]["code"], "placement.undefined_code");
    }
}

/// Root cause 6 (deliberate difference D1): upstream crashes (500) on a
/// key of `inventories` that is no class name when its value is not a
/// record; we answer its 400 "Unknown resource class" whatever the value.
/// A real unknown top-level field is a 400 on both sides.
async fn scenario_unknown_inventories_field(server: &TestServer, kind: &str) {
    let rp = "19000000-0000-0000-0000-000000000006";
    create_provider(server, rp, "unknown-field").await;
    let path = format!("/resource_providers/{rp}/inventories");
    for inventories in [
        j!({"vcpu": 5}),
        j!({"VCPU": {"total": 1}, "x-y": []}),
        j!({"vcpu": {"total": 1}}),
    ] {
        let (status, body) = json(
            server
                .req(Method::PUT, &path, "1.30")
                .json(&j!({"resource_provider_generation": 0, "inventories": inventories}))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 400, "{kind}: {body}");
        let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("Unknown resource class in inventory"),
            "{kind}: {detail}"
        );
    }
    let (status, body) = json(
        server
            .req(Method::PUT, &path, "1.30")
            .json(&j!({"resource_provider_generation": 0, "inventories": {}, "colour": "red"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400, "{kind}: {body}");
    let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("'colour' was unexpected"),
        "{kind}: {detail}"
    );
    assert_eq!(generation(server, rp).await, 0, "{kind}");
}

/// Found by the differential: setting the traits a provider already has,
/// or deleting none, leaves the generation alone; an empty inventory list
/// has no last-modified; the first update of a child provider has none
/// either while a root provider's has one; every provider lacking
/// inventory is named in the allocation error.
async fn scenario_further_findings(server: &TestServer, kind: &str) {
    let rp = "19000000-0000-0000-0000-000000000007";
    let other = "19000000-0000-0000-0000-000000000008";
    create_provider(server, rp, "further").await;
    create_provider(server, other, "further-2").await;
    for _ in 0..2 {
        let (status, body) = json(
            server
                .req(
                    Method::PUT,
                    &format!("/resource_providers/{rp}/traits"),
                    "1.30",
                )
                .json(&j!({"resource_provider_generation": 0, "traits": []}))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(body["resource_provider_generation"], 0, "{kind}");
    }
    let status = server
        .req(
            Method::DELETE,
            &format!("/resource_providers/{rp}/traits"),
            "1.30",
        )
        .send()
        .await
        .expect("send")
        .status()
        .as_u16();
    assert_eq!(status, 204);
    assert_eq!(generation(server, rp).await, 0, "{kind}");

    let response = server
        .req(
            Method::GET,
            &format!("/resource_providers/{rp}/inventories"),
            "1.30",
        )
        .send()
        .await
        .expect("send");
    assert!(response.headers().get("last-modified").is_none(), "{kind}");
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-cache")
    );

    let child = "19000000-0000-0000-0000-000000000009";
    let status = server
        .req(Method::POST, "/resource_providers", "1.30")
        .json(&j!({"uuid": child, "name": "child", "parent_provider_uuid": rp}))
        .send()
        .await
        .expect("send")
        .status()
        .as_u16();
    assert_eq!(status, 200);
    for (uuid, name, shown) in [
        (child, "child-renamed", false),
        (other, "other-renamed", true),
    ] {
        let response = server
            .req(Method::PUT, &format!("/resource_providers/{uuid}"), "1.30")
            .json(&j!({"name": name}))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers().get("last-modified").is_some(),
            shown,
            "{kind}: {name}"
        );
    }

    let (status, body) = json(
        server
            .req(
                Method::PUT,
                "/allocations/19000000-0000-0000-0000-0000000000c1",
                "1.30",
            )
            .json(&j!({"allocations": {
                    rp: {"resources": {"VCPU": 1}},
                    other: {"resources": {"VCPU": 1}}},
                "project_id": "p", "user_id": "u", "consumer_generation": null}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 409, "{kind}: {body}");
    let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("on resource provider '{rp}, {other}' invalid")),
        "{kind}: {detail}"
    );
}

/// Found by the differential: errors follow the client's `accept` as
/// upstream's web framework renders them (plain text when neither JSON nor
/// HTML is acceptable, JSON without a header or for `*/*`).
async fn scenario_error_flavours(server: &TestServer, kind: &str) {
    for (accept, content_type, starts) in [
        (None, "application/json", "{"),
        (Some("*/*"), "application/json", "{"),
        (
            Some("text/plain"),
            "text/plain; charset=UTF-8",
            "404 Not Found\n\nThe resource could not be found.\n\n   ",
        ),
        (
            Some("application/xml"),
            "text/plain; charset=UTF-8",
            "404 Not Found",
        ),
        (Some("text/html"), "text/html; charset=UTF-8", "<html>"),
        (Some("text/*"), "text/html; charset=UTF-8", "<html>"),
        (Some("application/*"), "application/json", "{"),
    ] {
        let mut request = server
            .http
            .get(format!("{}/nothing", server.base))
            .header("x-auth-token", "admin");
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.expect("send");
        assert_eq!(response.status().as_u16(), 404);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some(content_type),
            "{kind}: {accept:?}"
        );
        let text = response.text().await.unwrap_or_default();
        assert!(text.starts_with(starts), "{kind}: {accept:?}: {text:?}");
    }
    let page = server
        .http
        .get(format!("{}/nothing", server.base))
        .header("x-auth-token", "admin")
        .header("accept", "text/html")
        .send()
        .await
        .expect("send")
        .text()
        .await
        .unwrap_or_default();
    assert!(
        page.contains("  The resource could not be found.<br /><br />\n\n\n\n </body>"),
        "{kind}: {page:?}"
    );
}

/// Found by the differential: the 400 for a malformed microversion ends
/// with the reason Python gave, as upstream's does.
async fn scenario_microversion_messages(server: &TestServer, kind: &str) {
    for (header, reason) in [
        ("1.", "invalid literal for int() with base 10: ''"),
        ("x.y", "invalid literal for int() with base 10: 'x'"),
        (
            "1",
            "Version.__new__() missing 1 required positional argument: 'minor'",
        ),
    ] {
        let (status, body) = json(
            server
                .req(Method::GET, "/resource_providers", header)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 400, "{kind}: {header}");
        let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("invalid version string: {header}; {reason}")),
            "{kind}: {detail}"
        );
    }
}

/// Found by the differential: a class or trait created a moment ago is
/// known to allocation candidates at once (its creation bumps the write
/// epoch the cached snapshot follows); an unknown class in a later request
/// group is only an error when the earlier groups have candidates.
async fn scenario_candidates_know_new_names(server: &TestServer, kind: &str) {
    let rp = "19000000-0000-0000-0000-00000000000b";
    create_provider(server, rp, "vcpu-host").await;
    let (status, _) = json(
        server
            .req(
                Method::PUT,
                &format!("/resource_providers/{rp}/inventories"),
                "1.30",
            )
            .json(&j!({"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4}}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}");
    // Warm the candidates cache first.
    let get = |query: &str| {
        server
            .req(
                Method::GET,
                &format!("/allocation_candidates?{query}"),
                "1.33",
            )
            .send()
    };
    let (status, _) = json(get("resources=VCPU:1").await.expect("send")).await;
    assert_eq!(status, 200, "{kind}");
    let status = server
        .req(Method::POST, "/resource_classes", "1.2")
        .json(&j!({"name": "CUSTOM_FRESH"}))
        .send()
        .await
        .expect("send")
        .status()
        .as_u16();
    assert_eq!(status, 201);
    let status = server
        .req(Method::PUT, "/traits/CUSTOM_FRESH_TRAIT", "1.6")
        .send()
        .await
        .expect("send")
        .status()
        .as_u16();
    assert_eq!(status, 201);
    let (status, body) = json(
        get("resources=CUSTOM_FRESH:1&required=CUSTOM_FRESH_TRAIT")
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    assert_eq!(body["allocation_requests"], j!([]), "{kind}");

    // No provider has CUSTOM_FRESH: the unsuffixed group matches nothing,
    // so the unknown class of group 1 is never looked at.
    let (status, body) = json(
        get("resources=CUSTOM_FRESH:1&resources1=CUSTOM_NOPE:1&group_policy=none")
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    assert_eq!(
        body,
        j!({"allocation_requests": [], "provider_summaries": {}})
    );
    // Group 1 alone would be refused.
    let (status, _) = json(
        get("resources=VCPU:1&resources1=CUSTOM_NOPE:1&group_policy=none")
            .await
            .expect("send"),
    )
    .await;
    // VCPU has a provider, so the unknown class is reached and refused.
    assert_eq!(status, 400, "{kind}");
}

/// Found by the differential: replacing inventories with an unknown class
/// while dropping a class in use is refused for the unknown class (400),
/// as upstream looks the names up first, not for the class in use (409).
async fn scenario_unknown_class_before_in_use(server: &TestServer, kind: &str) {
    let rp = "19000000-0000-0000-0000-00000000000a";
    create_provider(server, rp, "in-use").await;
    let path = format!("/resource_providers/{rp}/inventories");
    let (status, _) = json(
        server
            .req(Method::PUT, &path, "1.30")
            .json(&j!({"resource_provider_generation": 0, "inventories": {"IPV4_ADDRESS": {"total": 4}}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{kind}");
    let (status, body) = json(
        server
            .req(
                Method::PUT,
                "/allocations/19000000-0000-0000-0000-0000000000c9",
                "1.30",
            )
            .json(
                &j!({"allocations": {rp: {"resources": {"IPV4_ADDRESS": 1}}},
                       "project_id": "p", "user_id": "u", "consumer_generation": null}),
            )
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 204, "{kind}: {body}");
    let gen = generation(server, rp).await;
    let (status, body) = json(
        server
            .req(Method::PUT, &path, "1.30")
            .json(&j!({"resource_provider_generation": gen, "inventories": {"CUSTOM_MISSING": {"total": 1}}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400, "{kind}: {body}");
    let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("No such resource class CUSTOM_MISSING."),
        "{kind}: {detail}"
    );
}

/// Found by the differential: `GET /resource_providers` answers "none"
/// for a missing `in_tree` provider, or required traits no provider has,
/// before it looks at the class names of `resources` (as upstream does);
/// otherwise an unknown class is a 400.
async fn scenario_provider_list_short_circuits(server: &TestServer, kind: &str) {
    let missing = "19000000-0000-0000-0000-0000000000ff";
    for (query, status) in [
        (format!("resources=CUSTOM_NOPE:1&in_tree={missing}"), 200),
        (
            "resources=CUSTOM_NOPE:1&required=HW_NIC_SRIOV".to_string(),
            200,
        ),
        (format!("resources=CUSTOM_NOPE:1&member_of={missing}"), 200),
        ("resources=CUSTOM_NOPE:1".to_string(), 400),
        (format!("required=CUSTOM_NO_TRAIT&in_tree={missing}"), 200),
    ] {
        let (got, body) = json(
            server
                .req(Method::GET, &format!("/resource_providers?{query}"), "1.35")
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(got, status, "{kind}: {query}: {body}");
        if status == 200 {
            assert_eq!(body, j!({"resource_providers": []}), "{kind}: {query}");
        }
    }
}

/// Found by the differential: a body that is not JSON is explained in
/// Python's json module's words, as upstream explains it.
async fn scenario_malformed_json_reason(server: &TestServer, kind: &str) {
    let rp = "19000000-0000-0000-0000-00000000000c";
    create_provider(server, rp, "malformed").await;
    for (body, reason) in [
        ("{\"name\": ", "Expecting value: line 1 column 10 (char 9)"),
        (
            "{\"name\": \"x\",}",
            "Expecting property name enclosed in double quotes: line 1 column 14 (char 13)",
        ),
        (
            "{\"name\": \"x\"} y",
            "Extra data: line 1 column 15 (char 14)",
        ),
    ] {
        let (status, response) = json(
            server
                .req(Method::PUT, &format!("/resource_providers/{rp}"), "1.30")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 400, "{kind}: {body}");
        let detail = response["errors"][0]["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("Malformed JSON: {reason}")),
            "{kind}: {detail}"
        );
    }
}

/// One test per finding, each on a fresh server per configured backend.
macro_rules! parity_test {
    ($name:ident, $scenario:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for kind in common::backends() {
                let server = TestServer::start(kind).await;
                $scenario(&server, kind).await;
                server.stop().await;
            }
        }
    };
}

parity_test!(
    rc1_inventory_capacity_is_truncated,
    scenario_capacity_is_truncated
);
parity_test!(
    rc2_no_vary_on_errors_raised_outside_handlers,
    scenario_vary_on_errors
);
parity_test!(rc3_401_is_the_auth_middleware_document, scenario_401_body);
parity_test!(rc4_unknown_route_404_has_a_json_body, scenario_404_body);
parity_test!(
    rc5_refused_class_not_in_candidate_summaries,
    scenario_refused_class_not_in_summaries
);
parity_test!(
    rc6_non_class_inventory_key_is_a_400,
    scenario_unknown_inventories_field
);
parity_test!(
    traits_noop_generation_last_modified_and_missing_inventory,
    scenario_further_findings
);
parity_test!(errors_follow_the_accept_header, scenario_error_flavours);
parity_test!(
    malformed_microversion_reason,
    scenario_microversion_messages
);
parity_test!(
    candidates_know_new_names_and_stop_at_empty_group,
    scenario_candidates_know_new_names
);
parity_test!(
    unknown_class_refused_before_class_in_use,
    scenario_unknown_class_before_in_use
);
parity_test!(
    provider_list_short_circuits_before_class_names,
    scenario_provider_list_short_circuits
);
parity_test!(
    malformed_json_explained_as_python_does,
    scenario_malformed_json_reason
);
