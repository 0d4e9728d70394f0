//! Concurrency: locks and compare-and-swap under racing clients, on every
//! database backend.

mod common;

use std::time::Duration;

use common::{backends, TestServer};
use futures::future::join_all;
use serde_json::json;

async fn available_node(api: &ferrite_baremetal_client::BaremetalClient, name: &str) -> String {
    let node = api
        .create_node(&json!({"driver": "fake-hardware", "name": name}))
        .await
        .expect("create");
    for (target, state) in [("manage", "manageable"), ("provide", "available")] {
        api.set_provision_state(name, target, None)
            .await
            .expect("transition");
        api.wait_for_provision_state(name, state, Duration::from_secs(30))
            .await
            .expect("state");
    }
    node["uuid"].as_str().expect("uuid").to_string()
}

/// 20 clients ask to deploy the same node at once: the deploy runs long
/// enough that everyone arrives while it does, so exactly one request is
/// accepted and every other one gets 409 (the node is locked).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_clients_race_for_one_provision_state() {
    for kind in backends() {
        let server = TestServer::start_with(kind, |config| {
            config.fake.deploy_delay = 3.0;
        })
        .await;
        let api = server.client();
        let uuid = available_node(&api, "racy").await;
        let attempts = (0..20).map(|_| {
            let api = api.clone();
            let uuid = uuid.clone();
            async move {
                api.raw(
                    reqwest::Method::PUT,
                    &format!("/v1/nodes/{uuid}/states/provision"),
                    Some(&json!({"target": "active"})),
                )
                .await
                .expect("request")
            }
        });
        let results = join_all(attempts).await;
        let accepted = results.iter().filter(|r| r.status == 202).count();
        let conflicts = results.iter().filter(|r| r.status == 409).count();
        assert_eq!(accepted, 1, "{kind}: exactly one deploy is accepted");
        assert_eq!(
            conflicts,
            19,
            "{kind}: every other client gets 409: {:?}",
            results
                .iter()
                .map(|r| (r.status, r.body.clone()))
                .collect::<Vec<_>>()
        );
        for loser in results.iter().filter(|r| r.status == 409) {
            let message = ferrite_baremetal_client::fault_string(&loser.body);
            assert!(
                message.contains("is locked by host test-conductor"),
                "{kind}: {message}"
            );
        }
        let node = api
            .wait_for_provision_state(&uuid, "active", Duration::from_secs(60))
            .await
            .expect("deployed once");
        assert_eq!(node["reservation"], serde_json::Value::Null);
        server.stop().await;
    }
}

/// 20 clients each try to claim the node for a different instance: one
/// claim lands, the others see the node associated (409), and the stored
/// instance is the winner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_clients_race_to_claim_instance_uuid() {
    for kind in backends() {
        let server = TestServer::start(kind).await;
        let api = server.client();
        let uuid = available_node(&api, "claimed").await;
        let attempts = (0..20).map(|i| {
            let api = api.clone();
            let uuid = uuid.clone();
            async move {
                let instance = format!("00000000-0000-4000-8000-{i:012}");
                let raw = api
                    .raw(
                        reqwest::Method::PATCH,
                        &format!("/v1/nodes/{uuid}"),
                        Some(&json!([{"op": "add", "path": "/instance_uuid", "value": instance}])),
                    )
                    .await
                    .expect("request");
                (instance, raw)
            }
        });
        let results = join_all(attempts).await;
        let winners: Vec<&String> = results
            .iter()
            .filter(|(_, r)| r.status == 200)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(winners.len(), 1, "{kind}: one claim wins");
        assert!(
            results
                .iter()
                .filter(|(_, r)| r.status != 200)
                .all(|(_, r)| r.status == 409),
            "{kind}: losers get 409"
        );
        let node = api.get_node(&uuid).await.expect("node");
        assert_eq!(node["instance_uuid"].as_str(), Some(winners[0].as_str()));
        server.stop().await;
    }
}
