//! The resource periodic against real Placement and Bare Metal services.

mod common;

use std::collections::BTreeSet;

use common::{claim, Cloud};
use ferrite_virt_driver::IronicDriver;
use serde_json::json;

const GOLD: &str = "CUSTOM_BAREMETAL_GOLD";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_mirrors_nodes_and_writes_only_changes() {
    common::init_logs();
    let cloud = Cloud::start().await;
    let placement = cloud.placement();
    let ironic = cloud.ironic();
    let gold = cloud
        .available_node("gold", Some("baremetal-gold"), &["CUSTOM_RAID"])
        .await;
    let spare = cloud
        .available_node("spare", Some("baremetal-gold"), &[])
        .await;
    let bare = cloud.enrolled_node("bare", None, &[]).await;
    let driver = cloud.driver();

    // First sync: one provider per node.
    let first = driver.sync().await.expect("sync");
    assert_eq!(
        (first.nodes_seen, first.nodes_owned, first.providers_created),
        (3, 3, 3),
        "{first:?}"
    );
    assert_eq!(first.provider_errors, 0);
    let rp = placement.get_provider(&gold).await.expect("provider");
    assert_eq!(rp.name, gold, "named after the node like Nova");
    let (_, inventories) = placement.get_inventories(&gold).await.expect("inventories");
    let gold_inventory = &inventories[GOLD];
    assert_eq!(
        (
            gold_inventory.total,
            gold_inventory.reserved,
            gold_inventory.min_unit,
            gold_inventory.max_unit,
            gold_inventory.step_size
        ),
        (1, 0, 1, 1, 1)
    );
    assert_eq!(gold_inventory.allocation_ratio, 1.0);
    assert_eq!(inventories.len(), 1);
    let (_, traits) = placement.get_traits(&gold).await.expect("traits");
    let traits: BTreeSet<String> = traits.into_iter().collect();
    for t in [
        "CUSTOM_RAID",
        "COMPUTE_NODE",
        "OWNER_NOVA",
        "COMPUTE_NET_ATTACH_INTERFACE",
        "COMPUTE_IMAGE_TYPE_RAW",
    ] {
        assert!(traits.contains(t), "{t} in {traits:?}");
    }
    // No resource class: a provider without inventory. Enrolled: its
    // traits still carry the marks.
    let (_, none) = placement.get_inventories(&bare).await.expect("inventories");
    assert!(none.is_empty(), "{none:?}");

    // Nothing changed: no Placement call at all.
    let generations = |uuids: Vec<String>| {
        let placement = placement.clone();
        async move {
            let mut out = Vec::new();
            for u in uuids {
                out.push(
                    placement
                        .get_provider(&u)
                        .await
                        .expect("provider")
                        .generation,
                );
            }
            out
        }
    };
    let before = generations(vec![gold.clone(), spare.clone(), bare.clone()]).await;
    let steady = driver.sync().await.expect("sync");
    assert_eq!(
        (
            steady.providers_created,
            steady.providers_updated,
            steady.providers_deleted,
            steady.placement_calls
        ),
        (0, 0, 0, 0),
        "{steady:?}"
    );
    assert_eq!(steady.ironic_calls, 1, "one page of nodes");
    assert_eq!(
        generations(vec![gold.clone(), spare.clone(), bare.clone()]).await,
        before
    );

    // Maintenance: reserved on the next sync, and only that provider moves.
    ironic
        .raw(
            reqwest::Method::PUT,
            &format!("/v1/nodes/{spare}/maintenance"),
            Some(&json!({"reason": "disk"})),
        )
        .await
        .expect("maintenance");
    let report = driver.sync().await.expect("sync");
    assert_eq!(
        (report.providers_updated, report.placement_calls),
        (1, 1),
        "{report:?}"
    );
    let (_, inventories) = placement
        .get_inventories(&spare)
        .await
        .expect("inventories");
    assert_eq!(inventories[GOLD].reserved, 1);

    // Someone else bumps a generation (an allocation): our stale write gets
    // a 409, we re-read and retry.
    claim(&placement, &gold, GOLD, &common::new_uuid()).await;
    ironic
        .raw(
            reqwest::Method::PUT,
            &format!("/v1/nodes/{gold}/traits/CUSTOM_NEW"),
            None,
        )
        .await
        .expect("trait");
    let report = driver.sync().await.expect("sync");
    assert_eq!(
        (report.providers_updated, report.provider_errors),
        (1, 0),
        "{report:?}"
    );
    assert!(
        report.placement_calls >= 4,
        "write, 409, two reads, write: {report:?}"
    );
    let (_, traits) = placement.get_traits(&gold).await.expect("traits");
    assert!(traits.iter().any(|t| t == "CUSTOM_NEW"), "{traits:?}");

    // A node deleted from Ironic loses its provider.
    ironic.delete_node(&bare).await.expect("delete node");
    let report = driver.sync().await.expect("sync");
    assert_eq!(
        (report.providers_deleted, report.nodes_seen),
        (1, 2),
        "{report:?}"
    );
    let gone = placement
        .get_provider(&bare)
        .await
        .expect_err("provider gone");
    assert_eq!(gone.status(), Some(404));

    // A restarted driver reads Placement once and writes nothing.
    let restarted = cloud.driver();
    let report = restarted.sync().await.expect("sync");
    assert_eq!(
        (
            report.providers_created,
            report.providers_updated,
            report.providers_deleted
        ),
        (0, 0, 0),
        "{report:?}"
    );
    assert_eq!(
        report.placement_calls,
        1 + 2 * 2,
        "list + inventories and traits per provider"
    );
    let again = restarted.sync().await.expect("sync");
    assert_eq!(again.placement_calls, 0, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarted_driver_removes_orphans_it_made() {
    common::init_logs();
    let cloud = Cloud::start().await;
    let placement = cloud.placement();
    let kept = cloud.enrolled_node("kept", Some("gold"), &[]).await;
    let doomed = cloud.enrolled_node("doomed", Some("gold"), &[]).await;
    cloud.driver().sync().await.expect("sync");
    // A provider someone else made (not named after its UUID) stays.
    let foreign = common::new_uuid();
    placement
        .create_provider(&foreign, "someone-else", None)
        .await
        .expect("create");
    // The node goes while no driver runs.
    cloud
        .ironic()
        .delete_node(&doomed)
        .await
        .expect("delete node");
    let report = cloud.driver().sync().await.expect("sync");
    assert_eq!(report.providers_deleted, 1, "{report:?}");
    assert_eq!(
        placement
            .get_provider(&doomed)
            .await
            .expect_err("gone")
            .status(),
        Some(404)
    );
    placement.get_provider(&kept).await.expect("kept");
    placement
        .get_provider(&foreign)
        .await
        .expect("foreign kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hash_ring_splits_nodes_between_peers() {
    common::init_logs();
    let cloud = Cloud::start().await;
    let mut all = BTreeSet::new();
    for i in 0..24 {
        all.insert(
            cloud
                .enrolled_node(&format!("n{i}"), Some("gold"), &[])
                .await,
        );
    }
    let peers = vec!["compute-a".to_string(), "compute-b".to_string()];
    let driver = |host: &str| {
        let mut config = cloud.config(host);
        config.peers = peers.clone();
        IronicDriver::with_options(config, common::test_options())
    };
    let (a, b) = (driver("compute-a"), driver("compute-b"));
    let (ra, rb) = tokio::join!(a.sync(), b.sync());
    let (ra, rb) = (ra.expect("sync a"), rb.expect("sync b"));
    let owned = |d: &IronicDriver| -> BTreeSet<String> {
        all.iter().filter(|u| d.owns_node(u)).cloned().collect()
    };
    let (oa, ob) = (owned(&a), owned(&b));
    assert!(oa.is_disjoint(&ob), "no node on both hosts");
    assert_eq!(
        oa.union(&ob).cloned().collect::<BTreeSet<_>>(),
        all,
        "every node on a host"
    );
    assert!(
        !oa.is_empty() && !ob.is_empty(),
        "{} / {}",
        oa.len(),
        ob.len()
    );
    assert_eq!((ra.nodes_owned, rb.nodes_owned), (oa.len(), ob.len()));
    assert_eq!(ra.providers_created + rb.providers_created, all.len());
    let cached: BTreeSet<String> = a.owned_nodes().await.into_iter().map(|n| n.uuid).collect();
    assert_eq!(cached, oa);
    // Each host's second sync is quiet.
    let (ra, rb) = tokio::join!(a.sync(), b.sync());
    assert_eq!(
        ra.expect("a").placement_calls + rb.expect("b").placement_calls,
        0
    );
}
