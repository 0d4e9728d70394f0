//! Fifty clients race to claim scarce capacity: nobody over-allocates, every
//! loser hears 409, and provider generations count exactly the winners.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::TestServer;
use ferrite_placement_client::InventoryRecord;

const PROVIDERS: usize = 5;
const CAPACITY: i64 = 3;
const CLIENTS: usize = 50;

async fn race(kind: &str) {
    eprintln!("racing on {kind}");
    let server = TestServer::start(kind).await;
    let client = server.client();
    client
        .ensure_resource_class("CUSTOM_BAREMETAL")
        .await
        .expect("class");
    let mut providers = Vec::new();
    for i in 0..PROVIDERS {
        let uuid = uuid::Uuid::new_v4().to_string();
        client
            .create_provider(&uuid, &format!("node-{i}"), None)
            .await
            .expect("create");
        let mut inventories = BTreeMap::new();
        inventories.insert(
            "CUSTOM_BAREMETAL".to_string(),
            InventoryRecord::total(CAPACITY),
        );
        client
            .set_inventories(&uuid, 0, &inventories)
            .await
            .expect("inventory");
        providers.push(uuid);
    }
    let providers = Arc::new(providers);
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let client = client.clone();
        let providers = providers.clone();
        tasks.push(tokio::spawn(async move {
            // Every client goes for the same provider as nine others.
            let target = providers[i % PROVIDERS].clone();
            let consumer = uuid::Uuid::new_v4().to_string();
            let mut allocations = BTreeMap::new();
            allocations.insert(
                target.clone(),
                BTreeMap::from([("CUSTOM_BAREMETAL".to_string(), 1)]),
            );
            let result = client
                .put_allocations(&consumer, &allocations, "p", "u", None)
                .await;
            (target, consumer, result)
        }));
    }
    let mut won: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut lost = 0;
    for task in tasks {
        let (target, consumer, result) = task.await.expect("join");
        match result {
            Ok(()) => won.entry(target).or_default().push(consumer),
            Err(err) => {
                assert_eq!(
                    err.status(),
                    Some(409),
                    "{kind}: a loser must get 409, got {err}"
                );
                lost += 1;
            }
        }
    }
    let winners: usize = won.values().map(Vec::len).sum();
    assert_eq!(winners + lost, CLIENTS);
    assert!(winners > 0, "{kind}: somebody must win");
    for uuid in providers.iter() {
        let usages = client.provider_usages(uuid).await.expect("usages");
        let used = usages.usages.get("CUSTOM_BAREMETAL").copied().unwrap_or(0);
        let expected = won.get(uuid).map_or(0, Vec::len) as i64;
        assert!(
            used <= CAPACITY,
            "{kind}: provider {uuid} over-allocated: {used} > {CAPACITY}"
        );
        assert_eq!(
            used, expected,
            "{kind}: usage must equal the acknowledged claims"
        );
        // One generation for the inventory, one per successful claim.
        assert_eq!(
            usages.resource_provider_generation,
            1 + expected,
            "{kind}: generation"
        );
        for consumer in won.get(uuid).into_iter().flatten() {
            let allocation = client.get_allocations(consumer).await.expect("allocations");
            assert_eq!(
                allocation["allocations"][uuid]["resources"]["CUSTOM_BAREMETAL"],
                1
            );
            assert_eq!(allocation["consumer_generation"], 1);
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_clients_never_over_allocate_on_every_backend() {
    for kind in common::backends() {
        race(kind).await;
    }
}

/// Claims that retry after a 409 eventually fill every provider exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retrying_claims_fill_capacity_exactly() {
    for kind in common::backends() {
        let server = TestServer::start(kind).await;
        let client = server.client();
        let uuid = uuid::Uuid::new_v4().to_string();
        client
            .create_provider(&uuid, "pool", None)
            .await
            .expect("create");
        let inventories = BTreeMap::from([("VCPU".to_string(), InventoryRecord::total(8))]);
        client
            .set_inventories(&uuid, 0, &inventories)
            .await
            .expect("inventory");
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let client = client.clone();
            let uuid = uuid.clone();
            tasks.push(tokio::spawn(async move {
                let consumer = uuid::Uuid::new_v4().to_string();
                let allocations =
                    BTreeMap::from([(uuid, BTreeMap::from([("VCPU".to_string(), 1)]))]);
                for _ in 0..200 {
                    match client
                        .put_allocations(&consumer, &allocations, "p", "u", None)
                        .await
                    {
                        Ok(()) => return true,
                        Err(err) if err.is_conflict() && err.to_string().contains("concurrent") => {
                            continue
                        }
                        Err(_) => return false,
                    }
                }
                false
            }));
        }
        let mut granted = 0;
        for task in tasks {
            if task.await.expect("join") {
                granted += 1;
            }
        }
        assert_eq!(granted, 8, "{kind}: exactly the capacity is granted");
        let usages = client.provider_usages(&uuid).await.expect("usages");
        assert_eq!(usages.usages["VCPU"], 8, "{kind}");
        server.stop().await;
    }
}

/// Concurrent loaders (as an operator's enrollment script or several
/// compute services do) create providers, inventories, traits and shared
/// aggregates at once: every answer is a success or a retryable 409, never
/// a 500, and with retries everything lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_loading_never_fails_with_server_errors() {
    for kind in common::backends() {
        let server = TestServer::start(kind).await;
        let client = server.client();
        client
            .ensure_resource_class("CUSTOM_BAREMETAL")
            .await
            .expect("class");
        client.ensure_trait("CUSTOM_RAID").await.expect("trait");
        let shared_aggregate = uuid::Uuid::new_v4().to_string();
        let mut tasks = Vec::new();
        for loader in 0..8 {
            let client = client.clone();
            let aggregate = shared_aggregate.clone();
            tasks.push(tokio::spawn(async move {
                let mut server_errors = 0;
                for i in 0..8 {
                    let uuid = uuid::Uuid::new_v4().to_string();
                    client.create_provider(&uuid, &format!("n-{loader}-{i}"), None).await.expect("provider");
                    let mut done = false;
                    for _ in 0..50 {
                        let provider = client.get_provider(&uuid).await.expect("show");
                        let inventories =
                            BTreeMap::from([("CUSTOM_BAREMETAL".to_string(), InventoryRecord::total(1))]);
                        let step = async {
                            let generation = client.set_inventories(&uuid, provider.generation, &inventories).await?;
                            let generation = client.set_traits(&uuid, generation, &["CUSTOM_RAID"]).await?;
                            let body = serde_json::json!({"resource_provider_generation": generation, "aggregates": [aggregate]});
                            let response = client
                                .request(reqwest::Method::PUT, &format!("/resource_providers/{uuid}/aggregates"))
                                .json(&body)
                                .send()
                                .await?;
                            Ok::<u16, ferrite_placement_client::ClientError>(response.status().as_u16())
                        };
                        match step.await {
                            Ok(200) => {
                                done = true;
                                break;
                            }
                            Ok(status) if status >= 500 => server_errors += 1,
                            Ok(_) => {}
                            Err(err) if err.status().is_some_and(|s| s >= 500) => server_errors += 1,
                            Err(_) => {}
                        }
                    }
                    assert!(done, "provider {uuid} was never fully loaded");
                }
                server_errors
            }));
        }
        let mut server_errors = 0;
        for task in tasks {
            server_errors += task.await.expect("loader");
        }
        assert_eq!(
            server_errors, 0,
            "{kind}: concurrent loading must never see a 5xx"
        );
        let (status, body) = common::json(
            server
                .req(
                    reqwest::Method::GET,
                    &format!("/resource_providers?member_of={shared_aggregate}"),
                    "1.39",
                )
                .send()
                .await
                .expect("list"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            body["resource_providers"].as_array().map(Vec::len),
            Some(64),
            "{kind}"
        );
        server.stop().await;
    }
}
