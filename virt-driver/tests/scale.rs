//! The periodic at fleet size: the first sync creates every provider with
//! bounded concurrency, the next makes no Placement call. The fleet is
//! `FERRITE_VD_SCALE_NODES` nodes (default 300; 10,000 is the target the
//! timings in the report were measured at).

mod common;

use std::time::Instant;

use common::Cloud;
use futures::StreamExt;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fleet_sync_first_and_steady_state() {
    let count: usize = std::env::var("FERRITE_VD_SCALE_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let cloud = Cloud::start().await;
    let ironic = cloud.ironic();
    let started = Instant::now();
    let created: Vec<()> = futures::stream::iter(0..count)
        .map(|i| {
            let ironic = ironic.clone();
            async move {
                let body = json!({"driver": "fake-hardware", "name": format!("n{i}"), "resource_class": "baremetal"});
                ironic.create_node(&body).await.expect("create node");
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(created.len(), count);
    eprintln!("enrolled {count} nodes in {:?}", started.elapsed());

    let driver = cloud.driver();
    let started = Instant::now();
    let first = driver.sync().await.expect("first sync");
    let first_time = started.elapsed();
    assert_eq!(
        (first.providers_created, first.provider_errors),
        (count, 0),
        "{first:?}"
    );

    let started = Instant::now();
    let steady = driver.sync().await.expect("steady sync");
    let steady_time = started.elapsed();
    eprintln!(
        "{count} nodes: first sync {first_time:?} ({} Placement calls), steady sync {steady_time:?} ({} Bare Metal pages)",
        first.placement_calls, steady.ironic_calls
    );
    assert_eq!(steady.placement_calls, 0, "{steady:?}");
    // Pages of 1,000, plus an empty one when the last page is full.
    assert!(steady.ironic_calls <= count / 1000 + 1, "{steady:?}");
}
