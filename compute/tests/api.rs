//! The compute API without deploys: versions, auth, microversions, flavors
//! and extra specs, key pairs, images, server validation — on every backend.

mod common;

use common::{backends, Stack};
use reqwest::Method;
use serde_json::{json, Value};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGaNrmqDg6t5ZMxcOvW0pvUDnBDTYOuuQ7ZpqWCgR0mN test@example";

#[tokio::test]
async fn versions_auth_and_microversions() {
    let stack = Stack::start("sqlite").await;
    let (status, body) = common::json_of(
        stack
            .http
            .get(format!("{}/", stack.compute_url))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["versions"][0]["id"], "v2.1");
    assert_eq!(body["versions"][0]["version"], "2.96");
    assert_eq!(body["versions"][0]["min_version"], "2.1");

    let (status, body) = common::json_of(
        stack
            .http
            .get(format!("{}/v2.1/flavors", stack.compute_url))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 401, "{body}");

    let response = stack
        .req(Method::GET, "/v2.1/flavors", "demo:demo", "2.61")
        .send()
        .await
        .expect("send");
    assert_eq!(response.headers()["openstack-api-version"], "compute 2.61");
    assert_eq!(response.headers()["x-openstack-nova-api-version"], "2.61");
    assert_eq!(response.status().as_u16(), 200);

    let (status, body) = stack
        .call(Method::GET, "/v2.1/flavors", "demo", "2.200", None)
        .await;
    assert_eq!(status, 406);
    assert_eq!(
        body,
        json!({"computeFault": {"code": 406, "message": "Version 2.200 is not supported by the API. Minimum is 2.1 and maximum is 2.96."}})
    );
    let (status, body) = stack
        .call(Method::GET, "/v2.1/flavors", "demo", "2.x", None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["badRequest"]["message"],
        "API Version String 2.x is of invalid format. Must be of format MajorNum.MinorNum."
    );
    let (status, body) = stack
        .call(Method::GET, "/v2.1/nothing", "demo", "2.1", None)
        .await;
    assert_eq!(status, 404);
    assert!(body["itemNotFound"]["message"].is_string());
    // Legacy URLs with the project id.
    let (status, _) = stack
        .call(Method::GET, "/v2.1/demo/flavors", "demo", "2.1", None)
        .await;
    assert_eq!(status, 200);
    stack.stop().await;
}

#[tokio::test]
async fn flavors_and_extra_specs() {
    for kind in backends() {
        let stack = Stack::start(kind).await;
        let create = json!({"flavor": {"name": "bm.gold", "ram": 4096, "vcpus": 8, "disk": 100, "id": "gold"}});
        let (status, body) = stack
            .call(
                Method::POST,
                "/v2.1/flavors",
                "demo",
                "2.61",
                Some(create.clone()),
            )
            .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(
            body["forbidden"]["message"],
            "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed."
        );
        let (status, body) = stack
            .call(
                Method::POST,
                "/v2.1/flavors",
                "admin",
                "2.61",
                Some(create.clone()),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let flavor = &body["flavor"];
        assert_eq!(flavor["id"], "gold");
        assert_eq!(flavor["ram"], 4096);
        assert_eq!(flavor["vcpus"], 8);
        assert_eq!(flavor["disk"], 100);
        assert_eq!(flavor["OS-FLV-EXT-DATA:ephemeral"], 0);
        assert_eq!(flavor["swap"], "");
        assert_eq!(flavor["rxtx_factor"], 1.0);
        assert_eq!(flavor["os-flavor-access:is_public"], true);
        assert_eq!(flavor["description"], Value::Null);
        assert_eq!(flavor["extra_specs"], json!({}));
        assert!(flavor["links"][0]["href"]
            .as_str()
            .unwrap_or("")
            .ends_with("/flavors/gold"));

        let (status, body) = stack
            .call(
                Method::POST,
                "/v2.1/flavors",
                "admin",
                "2.61",
                Some(create.clone()),
            )
            .await;
        assert_eq!(status, 409);
        assert_eq!(
            body["conflictingRequest"]["message"],
            "Flavor with ID gold already exists."
        );
        let (status, body) = stack
            .call(
                Method::POST,
                "/v2.1/flavors",
                "admin",
                "2.61",
                Some(json!({"flavor": {"name": "bm.gold", "ram": 1, "vcpus": 1, "disk": 0}})),
            )
            .await;
        assert_eq!(status, 409);
        assert_eq!(
            body["conflictingRequest"]["message"],
            "Flavor with name bm.gold already exists."
        );
        let (status, _) = stack
            .call(
                Method::POST,
                "/v2.1/flavors",
                "admin",
                "2.61",
                Some(json!({"flavor": {"name": "x", "ram": 0, "vcpus": 1, "disk": 0}})),
            )
            .await;
        assert_eq!(status, 400);

        // Extra specs.
        let specs = json!({"extra_specs": {"resources:CUSTOM_BAREMETAL_GOLD": "1", "resources:VCPU": 0, "capabilities:boot_mode": "uefi"}});
        let (status, _) = stack
            .call(
                Method::POST,
                "/v2.1/flavors/gold/os-extra_specs",
                "demo",
                "2.61",
                Some(specs.clone()),
            )
            .await;
        assert_eq!(status, 403);
        let (status, body) = stack
            .call(
                Method::POST,
                "/v2.1/flavors/gold/os-extra_specs",
                "admin",
                "2.61",
                Some(specs),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["extra_specs"]["resources:VCPU"], "0");
        let (status, body) = stack
            .call(
                Method::GET,
                "/v2.1/flavors/gold/os-extra_specs",
                "demo",
                "2.61",
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["extra_specs"].as_object().map(|m| m.len()), Some(3));
        let (status, body) = stack
            .call(
                Method::GET,
                "/v2.1/flavors/gold/os-extra_specs/capabilities:boot_mode",
                "demo",
                "2.61",
                None,
            )
            .await;
        assert_eq!(
            (status, body),
            (200, json!({"capabilities:boot_mode": "uefi"}))
        );
        let (status, body) = stack
            .call(
                Method::PUT,
                "/v2.1/flavors/gold/os-extra_specs/capabilities:boot_mode",
                "admin",
                "2.61",
                Some(json!({"capabilities:boot_mode": "bios"})),
            )
            .await;
        assert_eq!(
            (status, body),
            (200, json!({"capabilities:boot_mode": "bios"}))
        );
        let (status, body) = stack
            .call(
                Method::PUT,
                "/v2.1/flavors/gold/os-extra_specs/capabilities:boot_mode",
                "admin",
                "2.61",
                Some(json!({"other": "x"})),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(
            body["badRequest"]["message"],
            "Request body and URI mismatch"
        );
        let (status, _) = stack
            .call(
                Method::DELETE,
                "/v2.1/flavors/gold/os-extra_specs/capabilities:boot_mode",
                "admin",
                "2.61",
                None,
            )
            .await;
        assert_eq!(status, 202);
        let (status, body) = stack
            .call(
                Method::GET,
                "/v2.1/flavors/gold/os-extra_specs/capabilities:boot_mode",
                "admin",
                "2.61",
                None,
            )
            .await;
        assert_eq!(status, 404);
        assert_eq!(
            body["itemNotFound"]["message"],
            "Flavor gold has no extra specs with key capabilities:boot_mode."
        );

        // Show/list with extra_specs from 2.61 only.
        let (_, body) = stack
            .call(Method::GET, "/v2.1/flavors/gold", "demo", "2.61", None)
            .await;
        assert_eq!(
            body["flavor"]["extra_specs"]["resources:CUSTOM_BAREMETAL_GOLD"],
            "1"
        );
        let (_, body) = stack
            .call(Method::GET, "/v2.1/flavors/gold", "demo", "2.60", None)
            .await;
        assert!(body["flavor"].get("extra_specs").is_none());
        assert!(body["flavor"].get("description").is_some());
        let (_, body) = stack
            .call(Method::GET, "/v2.1/flavors/gold", "demo", "2.75", None)
            .await;
        assert_eq!(body["flavor"]["swap"], 0);
        let (_, body) = stack
            .call(Method::GET, "/v2.1/flavors", "demo", "2.1", None)
            .await;
        assert_eq!(
            body["flavors"][0],
            json!({"id": "gold", "name": "bm.gold", "links": body["flavors"][0]["links"].clone()})
        );
        let (_, body) = stack
            .call(
                Method::GET,
                "/v2.1/flavors/detail?minRam=8192",
                "demo",
                "2.1",
                None,
            )
            .await;
        assert_eq!(body["flavors"], json!([]));

        // Delete.
        let (status, _) = stack
            .call(Method::DELETE, "/v2.1/flavors/gold", "demo", "2.61", None)
            .await;
        assert_eq!(status, 403);
        let (status, _) = stack
            .call(Method::DELETE, "/v2.1/flavors/gold", "admin", "2.61", None)
            .await;
        assert_eq!(status, 202);
        let (status, body) = stack
            .call(Method::GET, "/v2.1/flavors/gold", "admin", "2.61", None)
            .await;
        assert_eq!(status, 404);
        assert_eq!(
            body,
            json!({"itemNotFound": {"code": 404, "message": "Flavor gold could not be found."}})
        );
        stack.stop().await;
    }
}

#[tokio::test]
async fn keypairs() {
    for kind in backends() {
        let stack = Stack::start(kind).await;
        let (status, body) = stack
            .call(
                Method::POST,
                "/v2.1/os-keypairs",
                "alice:demo",
                "2.2",
                Some(json!({"keypair": {"name": "k1", "public_key": KEY}})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["keypair"]["user_id"], "alice");
        assert_eq!(body["keypair"]["type"], "ssh");
        assert_eq!(
            body["keypair"]["fingerprint"].as_str().map(str::len),
            Some(47)
        );
        let (status, body) = stack
            .call(
                Method::POST,
                "/v2.1/os-keypairs",
                "alice:demo",
                "2.2",
                Some(json!({"keypair": {"name": "k1", "public_key": KEY}})),
            )
            .await;
        assert_eq!(status, 409);
        assert_eq!(
            body["conflictingRequest"]["message"],
            "Key pair 'k1' already exists."
        );
        let (status, body) = stack
            .call(
                Method::POST,
                "/v2.1/os-keypairs",
                "alice:demo",
                "2.2",
                Some(json!({"keypair": {"name": "k2", "public_key": "ssh-rsa garbage"}})),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(
            body["badRequest"]["message"],
            "Keypair data is invalid: failed to generate fingerprint"
        );
        let (status, body) = stack
            .call(
                Method::POST,
                "/v2.1/os-keypairs",
                "alice:demo",
                "2.2",
                Some(json!({"keypair": {"name": "bad/name", "public_key": KEY}})),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(
            body["badRequest"]["message"],
            "Keypair data is invalid: Keypair name contains unsafe characters"
        );

        let (_, body) = stack
            .call(Method::GET, "/v2.1/os-keypairs", "alice:demo", "2.2", None)
            .await;
        assert_eq!(body["keypairs"][0]["keypair"]["name"], "k1");
        let (_, body) = stack
            .call(Method::GET, "/v2.1/os-keypairs", "bob:demo", "2.2", None)
            .await;
        assert_eq!(body["keypairs"], json!([]));
        let (status, body) = stack
            .call(
                Method::GET,
                "/v2.1/os-keypairs/k1",
                "alice:demo",
                "2.2",
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["keypair"]["public_key"], KEY);
        assert_eq!(body["keypair"]["deleted"], false);
        let (status, body) = stack
            .call(Method::GET, "/v2.1/os-keypairs/k1", "bob:demo", "2.2", None)
            .await;
        assert_eq!(status, 404);
        assert_eq!(
            body["itemNotFound"]["message"],
            "Keypair k1 not found for user bob"
        );
        let (status, _) = stack
            .call(
                Method::DELETE,
                "/v2.1/os-keypairs/k1",
                "alice:demo",
                "2.2",
                None,
            )
            .await;
        assert_eq!(status, 204);
        let (status, _) = stack
            .call(
                Method::DELETE,
                "/v2.1/os-keypairs/k1",
                "alice:demo",
                "2.1",
                None,
            )
            .await;
        assert_eq!(status, 404);
        stack.stop().await;
    }
}

#[tokio::test]
async fn images() {
    for kind in backends() {
        let stack = Stack::start(kind).await;
        let id = stack.create_image("ubuntu").await;
        let glance = |method: Method, path: &str, token: &str| {
            stack
                .http
                .request(method, format!("{}{path}", stack.compute_url))
                .header("x-auth-token", token.to_string())
        };
        let (status, body) = common::json_of(
            glance(Method::GET, &format!("/v2/images/{id}"), "demo")
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["direct_url"], "http://images.example.com/ubuntu.raw");
        assert_eq!(body["status"], "active");
        assert_eq!(body["os_hash_algo"], "sha256");
        // Extra fields are properties, shown at the top level.
        let (status, body) = common::json_of(
            glance(Method::POST, "/v2/images", "demo")
                .json(&json!({"name": "private", "url": "http://x/y.qcow2", "disk_format": "qcow2", "hw_firmware_type": "uefi", "trait:CUSTOM_X": "required"}))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["hw_firmware_type"], "uefi");
        assert_eq!(body["visibility"], "shared");
        let private = body["id"].as_str().unwrap_or_default().to_string();
        let (status, _) = common::json_of(
            glance(Method::POST, "/v2/images", "demo")
                .json(&json!({"name": "nourl"}))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 400);
        let (status, _) = common::json_of(
            glance(Method::POST, "/v2/images", "demo")
                .json(&json!({"url": "http://x", "disk_format": "floppy"}))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 400);
        // Visibility: other projects see public images only.
        let (_, body) = common::json_of(
            glance(Method::GET, "/v2/images", "other")
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(body["images"].as_array().map(Vec::len), Some(1));
        let (_, body) = common::json_of(
            glance(Method::GET, "/v2/images", "demo")
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(body["images"].as_array().map(Vec::len), Some(2));
        // Nova's proxy, read-only, up to 2.35.
        let (status, body) = stack
            .call(
                Method::GET,
                &format!("/v2.1/images/{private}"),
                "demo",
                "2.35",
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["image"]["metadata"]["hw_firmware_type"], "uefi");
        assert_eq!(body["image"]["status"], "ACTIVE");
        let (status, _) = stack
            .call(Method::GET, "/v2.1/images", "demo", "2.36", None)
            .await;
        assert_eq!(status, 404);
        // Delete: the owner or an admin.
        let (status, _) = common::json_of(
            glance(Method::DELETE, &format!("/v2/images/{id}"), "demo")
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 403);
        let (status, _) = common::json_of(
            glance(Method::DELETE, &format!("/v2/images/{private}"), "demo")
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 204);
        let (status, body) = common::json_of(
            glance(Method::GET, &format!("/v2/images/{private}"), "demo")
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 404);
        assert_eq!(
            body["itemNotFound"]["message"],
            format!("Image {private} could not be found.")
        );
        stack.stop().await;
    }
}

#[tokio::test]
async fn server_create_validation() {
    for kind in backends() {
        let stack = Stack::start(kind).await;
        let flavor = stack.create_flavor("bm", "CUSTOM_BAREMETAL", &[]).await;
        let image = stack.create_image("img").await;
        let boot = |body: Value, version: &'static str| {
            let stack = &stack;
            async move {
                stack
                    .call(
                        Method::POST,
                        "/v2.1/servers",
                        "demo",
                        version,
                        Some(json!({"server": body})),
                    )
                    .await
            }
        };
        let (status, body) = boot(
            json!({"name": "s", "flavorRef": "nope", "imageRef": image, "networks": "none"}),
            "2.37",
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            body["badRequest"]["message"],
            "Flavor nope could not be found."
        );
        let (status, body) = boot(json!({"name": "s", "flavorRef": flavor, "imageRef": "c0ffee00-0000-0000-0000-000000000000", "networks": "none"}), "2.37").await;
        assert_eq!(status, 400);
        assert_eq!(
            body["badRequest"]["message"],
            "Image c0ffee00-0000-0000-0000-000000000000 could not be found."
        );
        let (status, body) = boot(
            json!({"name": "s", "flavorRef": flavor, "imageRef": image}),
            "2.37",
        )
        .await;
        assert_eq!(status, 400);
        assert!(body["badRequest"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("'networks' is a required property"));
        let (status, body) = boot(json!({"name": "s", "flavorRef": flavor, "imageRef": image, "networks": "none", "key_name": "missing"}), "2.37").await;
        assert_eq!(status, 400);
        assert_eq!(
            body["badRequest"]["message"],
            "Keypair missing not found for user demo"
        );
        let (status, body) = boot(json!({"name": "s", "flavorRef": flavor, "imageRef": image, "networks": "none", "user_data": "%%%"}), "2.37").await;
        assert_eq!(status, 400);
        assert_eq!(
            body["badRequest"]["message"],
            "User data needs to be valid base 64."
        );
        let (status, body) = boot(
            json!({"flavorRef": flavor, "imageRef": image, "networks": "none"}),
            "2.37",
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = boot(json!({"name": "s", "flavorRef": flavor, "imageRef": image, "networks": "none", "availability_zone": "nova::node"}), "2.37").await;
        assert_eq!(status, 403);
        let (status, body) = stack
            .call(
                Method::GET,
                "/v2.1/servers/c0ffee00-0000-0000-0000-000000000000",
                "demo",
                "2.1",
                None,
            )
            .await;
        assert_eq!(status, 404);
        assert_eq!(
            body,
            json!({"itemNotFound": {"code": 404, "message": "Instance c0ffee00-0000-0000-0000-000000000000 could not be found."}})
        );
        // Networks may be omitted before 2.37; a port list is accepted.
        let (status, body) = boot(
            json!({"name": "ok", "flavorRef": flavor, "imageRef": image}),
            "2.1",
        )
        .await;
        assert_eq!(status, 202, "{body}");
        assert!(body["server"]["adminPass"].is_string());
        let port = "6f0b2bd1-3a14-4d0e-9a6e-0dc2a0ba5c4b";
        let (status, _) = boot(json!({"name": "ok2", "flavorRef": flavor, "imageRef": image, "networks": [{"port": port}], "metadata": {"a": "b"}}), "2.37").await;
        assert_eq!(status, 202);
        stack.stop().await;
    }
}

#[tokio::test]
async fn image_urls_are_limited_to_http_by_default() {
    for kind in backends() {
        let stack = Stack::start(kind).await;
        let create = |url: &str| {
            stack
                .http
                .post(format!("{}/v2/images", stack.compute_url))
                .header("x-auth-token", "demo")
                .json(&json!({"name": "host-file", "url": url, "disk_format": "raw"}))
                .send()
        };
        for url in [
            "file:///etc/shadow",
            "file:///var/lib/ironic/images/x.raw",
            "ftp://images.example.com/x.raw",
            "/etc/shadow",
        ] {
            let (status, body) = common::json_of(create(url).await.expect("send")).await;
            assert_eq!(status, 400, "{kind} {url}: {body}");
            let message = body["badRequest"]["message"].as_str().unwrap_or("");
            assert!(message.contains(url), "{kind}: {message}");
        }
        let (status, body) = common::json_of(
            create("https://images.example.com/x.raw")
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 201, "{kind}: {body}");
        stack.stop().await;
        // An operator may allow more.
        let stack = Stack::start_with(kind, |config| {
            config.image_url_schemes = vec!["http".into(), "https".into(), "file".into()];
        })
        .await;
        let (status, body) = common::json_of(
            stack
                .http
                .post(format!("{}/v2/images", stack.compute_url))
                .header("x-auth-token", "admin")
                .json(&json!({"name": "local", "url": "file:///srv/images/x.raw"}))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 201, "{kind}: {body}");
        stack.stop().await;
    }
}
