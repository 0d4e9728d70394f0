//! The provision verbs beyond the deploy lifecycle, each through its
//! transient state and back to rest, plus power and boot-device targets.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_reaches_its_resting_state() {
    let server = TestServer::start("sqlite").await;
    let api = server.client();
    api.create_node(&json!({"driver": "fake-hardware", "name": "v"}))
        .await
        .expect("create");
    api.set_provision_state("v", "manage", None)
        .await
        .expect("manage");
    api.wait_for_provision_state("v", "manageable", WAIT)
        .await
        .expect("manageable");

    api.set_provision_state("v", "inspect", None)
        .await
        .expect("inspect");
    api.wait_for_provision_state("v", "manageable", WAIT)
        .await
        .expect("inspected");

    let missing = api
        .set_provision_state("v", "clean", None)
        .await
        .expect_err("clean needs steps");
    assert_eq!(missing.status(), Some(400));
    api.set_provision_state(
        "v",
        "clean",
        Some(&json!({"clean_steps": [{"interface": "deploy", "step": "erase_devices"}]})),
    )
    .await
    .expect("manual clean");
    api.wait_for_provision_state("v", "manageable", WAIT)
        .await
        .expect("cleaned");

    api.set_provision_state("v", "adopt", None)
        .await
        .expect("adopt");
    api.wait_for_provision_state("v", "active", WAIT)
        .await
        .expect("adopted");

    let no_password = api
        .set_provision_state("v", "rescue", None)
        .await
        .expect_err("rescue needs a password");
    assert_eq!(no_password.status(), Some(400));
    api.set_provision_state("v", "rescue", Some(&json!({"rescue_password": "secret"})))
        .await
        .expect("rescue");
    let rescued = api
        .wait_for_provision_state("v", "rescue", WAIT)
        .await
        .expect("rescued");
    assert_eq!(
        rescued["instance_info"]["rescue_password"], "******",
        "masked"
    );
    api.set_provision_state("v", "unrescue", None)
        .await
        .expect("unrescue");
    let unrescued = api
        .wait_for_provision_state("v", "active", WAIT)
        .await
        .expect("unrescued");
    assert_eq!(unrescued["instance_info"].get("rescue_password"), None);

    api.set_provision_state(
        "v",
        "service",
        Some(&json!({"service_steps": [{"interface": "vendor", "step": "log_passthrough"}]})),
    )
    .await
    .expect("service");
    api.wait_for_provision_state("v", "active", WAIT)
        .await
        .expect("serviced");
    let old = api.with_version("1.86");
    let too_old = old
        .set_provision_state("v", "service", Some(&json!({"service_steps": []})))
        .await
        .expect_err("service needs 1.87");
    assert_eq!(too_old.status(), Some(406));

    let abort = api
        .set_provision_state("v", "abort", None)
        .await
        .expect_err("nothing to abort");
    assert_eq!(abort.status(), Some(400));

    api.set_power_state("v", "soft power off")
        .await
        .expect("soft off");
    api.wait_for_power_state("v", "power off", WAIT)
        .await
        .expect("off");
    let old_soft = api
        .with_version("1.26")
        .set_power_state("v", "soft rebooting")
        .await
        .expect_err("soft power needs 1.27");
    assert_eq!(old_soft.status(), Some(400));

    let set = api
        .raw(
            reqwest::Method::PUT,
            "/v1/nodes/v/management/boot_device",
            Some(&json!({"boot_device": "pxe", "persistent": true})),
        )
        .await
        .expect("boot device");
    assert_eq!(set.status, 204);
    let got = api
        .raw(
            reqwest::Method::GET,
            "/v1/nodes/v/management/boot_device",
            None,
        )
        .await
        .expect("get boot device");
    assert_eq!(got.body, json!({"boot_device": "pxe", "persistent": true}));
    let bad = api
        .raw(
            reqwest::Method::PUT,
            "/v1/nodes/v/management/boot_device",
            Some(&json!({"boot_device": "floppy"})),
        )
        .await
        .expect("bad boot device");
    assert_eq!(bad.status, 400);

    let history = api
        .raw(reqwest::Method::GET, "/v1/nodes/v/history", None)
        .await
        .expect("history");
    let events: Vec<&str> = history.body["history"]
        .as_array()
        .map(|items| items.iter().filter_map(|h| h["event"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        events.iter().any(|e| e.starts_with("Starting manual cleaning with steps=[{'interface': 'deploy', 'step': 'erase_devices'}]")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("Servicing completed successfully")),
        "{events:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traits_conductors_and_shards() {
    let server = TestServer::start("sqlite").await;
    let api = server.client();
    api.create_node(&json!({"driver": "fake-hardware", "name": "t", "shard": "s1"}))
        .await
        .expect("create");
    let put = api
        .raw(
            reqwest::Method::PUT,
            "/v1/nodes/t/traits",
            Some(&json!({"traits": ["CUSTOM_GOLD", "HW_CPU_X86_AVX2"]})),
        )
        .await
        .expect("traits");
    assert_eq!(put.status, 204);
    let bad = api
        .raw(reqwest::Method::PUT, "/v1/nodes/t/traits/not-a-trait", None)
        .await
        .expect("bad trait");
    assert_eq!(bad.status, 400);
    let node = api.get_node("t").await.expect("node");
    assert_eq!(node["traits"], json!(["CUSTOM_GOLD", "HW_CPU_X86_AVX2"]));
    let removed = api
        .raw(
            reqwest::Method::DELETE,
            "/v1/nodes/t/traits/CUSTOM_GOLD",
            None,
        )
        .await
        .expect("delete trait");
    assert_eq!(removed.status, 204);
    let missing = api
        .raw(
            reqwest::Method::DELETE,
            "/v1/nodes/t/traits/CUSTOM_GOLD",
            None,
        )
        .await
        .expect("delete again");
    assert_eq!(missing.status, 404);

    let conductors = api
        .raw(reqwest::Method::GET, "/v1/conductors", None)
        .await
        .expect("conductors");
    assert_eq!(
        conductors.body["conductors"][0]["hostname"],
        "test-conductor"
    );
    assert_eq!(conductors.body["conductors"][0]["alive"], true);
    assert_eq!(node["conductor"], "test-conductor");
    let shards = api
        .raw(reqwest::Method::GET, "/v1/shards", None)
        .await
        .expect("shards");
    assert_eq!(shards.body, json!({"shards": [{"name": "s1", "count": 1}]}));
    let hidden = api
        .with_version("1.81")
        .raw(reqwest::Method::GET, "/v1/shards", None)
        .await
        .expect("shards before 1.82");
    assert_eq!(hidden.status, 404);
    let old_node = api
        .with_version("1.1")
        .get_node(node["uuid"].as_str().expect("uuid"))
        .await
        .expect("1.1 view");
    assert_eq!(
        old_node.get("traits"),
        None,
        "fields newer than the request are hidden"
    );
    assert_eq!(old_node.get("name"), None);
    assert_eq!(old_node["provision_state"], Value::from("enroll"));
    server.stop().await;
}

/// Config drives are stored with the node (masked in every view) on every
/// backend, up to the configured size; larger ones are refused with 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_drives_are_stored_masked_and_bounded() {
    for kind in common::backends() {
        let server = TestServer::start(kind).await;
        let api = server.client();
        api.create_node(&json!({"driver": "fake-hardware", "name": "cd"}))
            .await
            .expect("create");
        for (target, state) in [("manage", "manageable"), ("provide", "available")] {
            api.set_provision_state("cd", target, None)
                .await
                .expect("move");
            api.wait_for_provision_state("cd", state, WAIT)
                .await
                .expect("state");
        }
        let too_big = "A".repeat(8 * 1024 * 1024 + 1);
        let refused = api
            .set_provision_state("cd", "active", Some(&json!({"configdrive": too_big})))
            .await
            .expect_err("too big");
        assert_eq!(refused.status(), Some(400), "{kind}");
        let drive = "H4sI".to_string() + &"A".repeat(2 * 1024 * 1024);
        api.set_provision_state("cd", "active", Some(&json!({"configdrive": drive})))
            .await
            .expect("deploy with a 2 MiB config drive");
        let node = api
            .wait_for_provision_state("cd", "active", WAIT)
            .await
            .expect("active");
        assert_eq!(node["instance_info"]["configdrive"], "******", "{kind}");
        let not_for_manage = api
            .set_provision_state("cd", "deleted", Some(&json!({"configdrive": "x"})))
            .await
            .expect_err("config drive only with active/rebuild");
        assert_eq!(not_for_manage.status(), Some(400), "{kind}");
        server.stop().await;
    }
}
