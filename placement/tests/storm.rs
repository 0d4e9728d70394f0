//! A boot storm: sixteen schedulers ask for candidates and claim, all at
//! once, until the fleet is full. No provider may end up over-allocated,
//! every unit of capacity must be claimed (no boot fails while capacity
//! remains), and losers only ever see 409s.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::TestServer;
use ferrite_placement_client::{InventoryRecord, PlacementClient};
use serde_json::Value;

const NODES: usize = 24;
const SCHEDULERS: usize = 16;
const CLASS: &str = "CUSTOM_BAREMETAL_GOLD";

#[derive(Default)]
struct Tally {
    claims: AtomicUsize,
    conflicts: AtomicUsize,
    other_errors: AtomicUsize,
}

async fn scheduler(client: PlacementClient, tally: Arc<Tally>) {
    let path = format!("/allocation_candidates?resources={CLASS}:1&required=CUSTOM_RAID&limit=8");
    // Bounded: each round either claims, sees a conflict, or ends the loop.
    for _ in 0..(NODES * 20) {
        let response = client
            .request(reqwest::Method::GET, &path)
            .send()
            .await
            .expect("candidates");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        let requests = body["allocation_requests"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if requests.is_empty() {
            return;
        }
        let mut claimed = false;
        for request in requests {
            let Some(providers) = request["allocations"].as_object() else {
                continue;
            };
            let allocations: BTreeMap<String, BTreeMap<String, i64>> = providers
                .iter()
                .map(|(rp, item)| {
                    let resources = item["resources"]
                        .as_object()
                        .map(|r| {
                            r.iter()
                                .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
                                .collect()
                        })
                        .unwrap_or_default();
                    (rp.clone(), resources)
                })
                .collect();
            let consumer = uuid::Uuid::new_v4().to_string();
            match client
                .put_allocations(&consumer, &allocations, "tenant", "user", None)
                .await
            {
                Ok(()) => {
                    tally.claims.fetch_add(1, Ordering::SeqCst);
                    claimed = true;
                    break;
                }
                Err(err) if err.is_conflict() => {
                    tally.conflicts.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => {
                    tally.other_errors.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        if claimed {
            // One boot per scheduler round, like a real scheduler.
            continue;
        }
    }
}

async fn storm(kind: &str, services: usize) {
    let server = TestServer::start(kind).await;
    let mut others = Vec::new();
    for _ in 1..services {
        others.push(TestServer::start_sharing(&server).await);
    }
    let client = server.client();
    client.ensure_resource_class(CLASS).await.expect("class");
    client.ensure_trait("CUSTOM_RAID").await.expect("trait");
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let uuid = uuid::Uuid::new_v4().to_string();
        client
            .create_provider(&uuid, &format!("node-{i}"), None)
            .await
            .expect("provider");
        let inventories = BTreeMap::from([(CLASS.to_string(), InventoryRecord::total(1))]);
        let generation = client
            .set_inventories(&uuid, 0, &inventories)
            .await
            .expect("inventory");
        client
            .set_traits(&uuid, generation, &["CUSTOM_RAID"])
            .await
            .expect("traits");
        nodes.push(uuid);
    }
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    // Schedulers are spread over every placement service.
    let clients: Vec<PlacementClient> = std::iter::once(client.clone())
        .chain(others.iter().map(TestServer::client))
        .collect();
    for i in 0..SCHEDULERS {
        tasks.push(tokio::spawn(scheduler(
            clients[i % clients.len()].clone(),
            tally.clone(),
        )));
    }
    for task in tasks {
        task.await.expect("scheduler");
    }
    let claims = tally.claims.load(Ordering::SeqCst);
    eprintln!(
        "{kind} ({services} services): {claims} claims, {} conflicts, {} other errors",
        tally.conflicts.load(Ordering::SeqCst),
        tally.other_errors.load(Ordering::SeqCst)
    );
    assert_eq!(
        tally.other_errors.load(Ordering::SeqCst),
        0,
        "{kind}: only 409s may be refused"
    );
    assert_eq!(claims, NODES, "{kind}: every node is booted exactly once");
    for uuid in &nodes {
        let usages = client.provider_usages(uuid).await.expect("usages");
        assert_eq!(
            usages.usages.get(CLASS).copied(),
            Some(1),
            "{kind}: node {uuid} must be used exactly once"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boot_storm_never_double_books_on_every_backend() {
    for kind in common::backends() {
        storm(kind, 1).await;
    }
}

/// Three placement services on one database, as three processes behind a
/// load balancer: their cached snapshots may lag, their claims may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boot_storm_across_three_services_sharing_one_database() {
    for kind in common::backends() {
        storm(kind, 3).await;
    }
}
