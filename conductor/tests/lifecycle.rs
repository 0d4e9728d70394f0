//! The whole node lifecycle over HTTP, on every database backend.

mod common;

use std::time::Duration;

use common::{backends, TestServer};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

async fn lifecycle(kind: &str) {
    let server = TestServer::start(kind).await;
    let api = server.client();
    let node = api
        .create_node(&json!({
            "driver": "fake-hardware",
            "name": "node-1",
            "resource_class": "baremetal-gold",
            "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100, "capabilities": "boot_mode:uefi"},
        }))
        .await
        .expect("create node");
    let uuid = node["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(node["provision_state"], "enroll", "{kind}");
    assert_eq!(node["deploy_interface"], "fake", "{kind}");
    assert_eq!(node["network_interface"], "noop", "{kind}");

    let port = api
        .create_port(&json!({"address": "52:54:00:12:34:56", "node_uuid": uuid}))
        .await
        .expect("create port");
    assert_eq!(port["address"], "52:54:00:12:34:56");
    let duplicate = api
        .create_port(&json!({"address": "52:54:00:12:34:56", "node_uuid": uuid}))
        .await
        .expect_err("duplicate MAC");
    assert_eq!(duplicate.status(), Some(409), "{kind}");

    api.set_provision_state("node-1", "manage", None)
        .await
        .expect("manage");
    api.wait_for_provision_state("node-1", "manageable", WAIT)
        .await
        .expect("manageable");
    api.set_provision_state("node-1", "provide", None)
        .await
        .expect("provide");
    api.wait_for_provision_state("node-1", "available", WAIT)
        .await
        .expect("available");

    api.patch_node(
        "node-1",
        &json!([{"op": "add", "path": "/instance_info/image_source", "value": "http://example.com/image.qcow2"}]),
    )
    .await
    .expect("instance_info");
    let instance = "11111111-1111-4111-8111-111111111111";
    api.patch_node(
        "node-1",
        &json!([{"op": "add", "path": "/instance_uuid", "value": instance}]),
    )
    .await
    .expect("claim");
    let replaced = api
        .patch_node(
            "node-1",
            &json!([{"op": "replace", "path": "/instance_uuid", "value": "22222222-2222-4222-8222-222222222222"}]),
        )
        .await
        .expect_err("replacing the instance");
    assert_eq!(replaced.status(), Some(409), "{kind}");
    assert!(
        replaced.to_string().contains(&format!(
            "Node {uuid} is associated with instance {instance}."
        )),
        "{replaced}"
    );
    // Setting the same instance again is fine.
    api.patch_node(
        "node-1",
        &json!([{"op": "replace", "path": "/instance_uuid", "value": instance}]),
    )
    .await
    .expect("same instance");

    api.attach_vif("node-1", "33333333-3333-4333-8333-333333333333")
        .await
        .expect("vif attach");
    // The noop network interface keeps no VIFs, as upstream's.
    assert_eq!(
        api.list_vifs("node-1").await.expect("vifs"),
        Vec::<String>::new()
    );
    api.detach_vif("node-1", "33333333-3333-4333-8333-333333333333")
        .await
        .expect("vif detach");

    api.set_provision_state(
        "node-1",
        "active",
        Some(&json!({"configdrive": {"meta_data": {"hostname": "node-1"}}})),
    )
    .await
    .expect("deploy");
    let active = api
        .wait_for_provision_state("node-1", "active", WAIT)
        .await
        .expect("active");
    assert_eq!(active["instance_uuid"], instance);

    for (target, state) in [
        ("power off", "power off"),
        ("power on", "power on"),
        ("rebooting", "power on"),
    ] {
        api.set_power_state("node-1", target).await.expect("power");
        api.wait_for_power_state("node-1", state, WAIT)
            .await
            .expect("power state");
    }

    api.set_provision_state("node-1", "rebuild", None)
        .await
        .expect("rebuild");
    api.wait_for_provision_state("node-1", "active", WAIT)
        .await
        .expect("active after rebuild");

    let refused = api.delete_node("node-1").await.expect_err("delete active");
    assert_eq!(refused.status(), Some(409), "{kind}");

    api.set_provision_state("node-1", "undeploy", None)
        .await
        .expect("undeploy");
    let available = api
        .wait_for_provision_state("node-1", "available", WAIT)
        .await
        .expect("available after undeploy");
    assert_eq!(available["instance_uuid"], Value::Null);
    assert_eq!(available["instance_info"], json!({}));

    let raw = api
        .raw(
            reqwest::Method::PUT,
            "/v1/nodes/node-1/maintenance",
            Some(&json!({"reason": "testing"})),
        )
        .await
        .expect("maintenance");
    assert_eq!(raw.status, 202);
    let node = api.get_node("node-1").await.expect("node");
    assert_eq!(node["maintenance"], true);
    assert_eq!(node["maintenance_reason"], "testing");
    let raw = api
        .raw(
            reqwest::Method::DELETE,
            "/v1/nodes/node-1/maintenance",
            None,
        )
        .await
        .expect("unset maintenance");
    assert_eq!(raw.status, 202);
    let node = api.get_node("node-1").await.expect("node");
    assert_eq!(node["maintenance"], false);
    assert_eq!(node["maintenance_reason"], Value::Null);

    api.delete_node("node-1").await.expect("delete");
    let gone = api.get_node(&uuid).await.expect_err("deleted");
    assert_eq!(gone.status(), Some(404));
    let ports = api
        .raw(reqwest::Method::GET, "/v1/ports", None)
        .await
        .expect("ports");
    assert_eq!(ports.body["ports"], json!([]), "ports go with their node");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_on_every_backend() {
    for kind in backends() {
        lifecycle(kind).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_negotiation_and_errors() {
    let server = TestServer::start("sqlite").await;
    let api = server.client();
    let old = api.with_version("1.1");
    let raw = reqwest::get(format!("{}/v1/nodes", server.base))
        .await
        .expect("get");
    assert_eq!(
        raw.headers()["x-openstack-ironic-api-version"]
            .to_str()
            .ok(),
        Some("1.1")
    );
    assert_eq!(
        raw.headers()["x-openstack-ironic-api-maximum-version"]
            .to_str()
            .ok(),
        Some("1.115")
    );
    assert!(raw.headers().contains_key("x-openstack-request-id"));
    assert!(raw.headers().contains_key("openstack-request-id"));

    let too_high = api
        .with_version("1.999")
        .raw(reqwest::Method::GET, "/v1/nodes", None)
        .await
        .expect("request");
    assert_eq!(too_high.status, 406);
    assert_eq!(
        too_high.body["error_message"],
        "{\"code\": 406, \"title\": \"Not Acceptable\", \"description\": \"Version 1.999 was requested but the minor version is not supported by this service. The supported version range is: [1.1, 1.115].\"}"
    );
    let malformed = api
        .with_version("1.x")
        .raw(reqwest::Method::GET, "/v1/nodes", None)
        .await
        .expect("request");
    assert_eq!(malformed.status, 406);
    assert!(!malformed
        .headers
        .contains_key("x-openstack-ironic-api-minimum-version"));

    let missing = old
        .raw(
            reqwest::Method::GET,
            "/v1/nodes/00000000-0000-4000-8000-000000000000",
            None,
        )
        .await
        .expect("request");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body["error_message"],
        "{\"faultcode\": \"Client\", \"faultstring\": \"Node 00000000-0000-4000-8000-000000000000 could not be found.\", \"debuginfo\": null}"
    );

    let bad_json = api
        .raw(reqwest::Method::POST, "/v1/nodes", None)
        .await
        .expect("request");
    assert_eq!(bad_json.status, 400, "empty body is a client error");

    let bad_driver = api
        .create_node(&json!({"driver": "no-such-driver"}))
        .await
        .expect_err("unknown driver");
    assert_eq!(bad_driver.status(), Some(400));
    assert!(bad_driver.to_string().contains("No valid host was found. Reason: No conductor service registered which supports driver no-such-driver for conductor group \"\"."), "{bad_driver}");

    api.create_node(&json!({"driver": "fake-hardware", "name": "dup"}))
        .await
        .expect("create");
    let dup = api
        .create_node(&json!({"driver": "fake-hardware", "name": "dup"}))
        .await
        .expect_err("duplicate name");
    assert_eq!(dup.status(), Some(409));
    assert!(dup
        .to_string()
        .contains("A node with name dup already exists."));

    let invalid = api
        .set_provision_state("dup", "provide", None)
        .await
        .expect_err("provide from enroll");
    assert_eq!(invalid.status(), Some(400));
    let bogus_power = api
        .set_power_state("dup", "bogus")
        .await
        .expect_err("bogus power target");
    assert_eq!(bogus_power.status(), Some(400));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_list_pagination_and_filters() {
    let server = TestServer::start("sqlite").await;
    let api = server.client();
    for i in 0..5 {
        api.create_node(&json!({
            "driver": "fake-hardware",
            "name": format!("n{i}"),
            "resource_class": if i % 2 == 0 { "gold" } else { "silver" },
        }))
        .await
        .expect("create");
    }
    let page = api
        .raw(reqwest::Method::GET, "/v1/nodes?limit=2", None)
        .await
        .expect("page");
    assert_eq!(page.body["nodes"].as_array().map(Vec::len), Some(2));
    let next = page.body["next"].as_str().expect("next link").to_string();
    assert!(
        next.contains("limit=2") && next.contains("marker="),
        "{next}"
    );
    let mut seen = 2;
    let mut next = Some(next);
    while let Some(link) = next {
        let path = link.trim_start_matches(&server.base).to_string();
        let page = api
            .raw(reqwest::Method::GET, &path, None)
            .await
            .expect("page");
        seen += page.body["nodes"].as_array().map_or(0, Vec::len);
        next = page.body["next"].as_str().map(str::to_string);
    }
    assert_eq!(seen, 5);
    let gold = api
        .list_nodes("?resource_class=gold")
        .await
        .expect("filter");
    assert_eq!(gold.len(), 3);
    let sorted = api
        .list_nodes("?sort_key=name&sort_dir=desc")
        .await
        .expect("sorted");
    let names: Vec<&str> = sorted.iter().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(names, ["n4", "n3", "n2", "n1", "n0"]);
    let bad_sort = api
        .raw(reqwest::Method::GET, "/v1/nodes?sort_key=properties", None)
        .await
        .expect("bad sort");
    assert_eq!(bad_sort.status, 400);
    let old = api
        .with_version("1.20")
        .raw(reqwest::Method::GET, "/v1/nodes?resource_class=gold", None)
        .await
        .expect("old version");
    assert_eq!(old.status, 406, "resource_class filter needs 1.21");
    server.stop().await;
}
