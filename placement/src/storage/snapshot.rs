//! Loads the provider snapshot the allocation-candidate search works on,
//! and the write epoch that tells when a cached snapshot is stale.

use sea_orm::ConnectionTrait;

use super::{get_f64, get_i64, get_opt_i64, get_string, query_all, query_one, sum_int, SResult};
use crate::candidates::{Snapshot, SnapshotInventory, SnapshotProvider, SHARES_VIA_AGGREGATE};

/// The counter every write transaction bumps just before it commits.
pub async fn epoch<C: ConnectionTrait>(conn: &C) -> SResult<i64> {
    Ok(query_one(
        conn,
        "SELECT value FROM placement_epoch WHERE id = 1",
        vec![],
    )
    .await?
    .map(|r| get_i64(&r, "value"))
    .unwrap_or_default())
}

pub async fn load<C: ConnectionTrait>(conn: &C) -> SResult<Snapshot> {
    let mut snapshot = Snapshot::default();
    for row in query_all(
        conn,
        "SELECT id, uuid, parent_provider_id, root_provider_id FROM resource_providers",
        vec![],
    )
    .await?
    {
        let id = get_i64(&row, "id");
        snapshot.providers.insert(
            id,
            SnapshotProvider {
                id,
                uuid: get_string(&row, "uuid"),
                parent: get_opt_i64(&row, "parent_provider_id"),
                root: get_opt_i64(&row, "root_provider_id").unwrap_or(id),
            },
        );
    }
    for row in query_all(
        conn,
        "SELECT resource_provider_id, resource_class_id, total, reserved, min_unit, max_unit, step_size, allocation_ratio FROM inventories",
        vec![],
    )
    .await?
    {
        snapshot
            .inventories
            .entry(get_i64(&row, "resource_provider_id"))
            .or_default()
            .insert(
                get_i64(&row, "resource_class_id"),
                SnapshotInventory {
                    total: get_i64(&row, "total"),
                    reserved: get_i64(&row, "reserved"),
                    min_unit: get_i64(&row, "min_unit"),
                    max_unit: get_i64(&row, "max_unit"),
                    step_size: get_i64(&row, "step_size"),
                    allocation_ratio: get_f64(&row, "allocation_ratio"),
                },
            );
    }
    let sql = format!(
        "SELECT resource_provider_id, resource_class_id, {} AS used FROM allocations GROUP BY resource_provider_id, resource_class_id",
        sum_int(conn, "used")
    );
    for row in query_all(conn, &sql, vec![]).await? {
        snapshot.usage.insert(
            (
                get_i64(&row, "resource_provider_id"),
                get_i64(&row, "resource_class_id"),
            ),
            get_i64(&row, "used"),
        );
    }
    for row in query_all(
        conn,
        "SELECT resource_provider_id, trait_id FROM resource_provider_traits",
        vec![],
    )
    .await?
    {
        snapshot
            .traits
            .entry(get_i64(&row, "resource_provider_id"))
            .or_default()
            .insert(get_i64(&row, "trait_id"));
    }
    for row in query_all(
        conn,
        "SELECT rpa.resource_provider_id, pa.uuid FROM resource_provider_aggregates rpa JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id",
        vec![],
    )
    .await?
    {
        snapshot
            .aggregates
            .entry(get_i64(&row, "resource_provider_id"))
            .or_default()
            .insert(get_string(&row, "uuid"));
    }
    for row in query_all(conn, "SELECT id, name FROM resource_classes", vec![]).await? {
        snapshot
            .class_names
            .insert(get_i64(&row, "id"), get_string(&row, "name"));
    }
    for row in query_all(conn, "SELECT id, name FROM traits", vec![]).await? {
        let id = get_i64(&row, "id");
        let name = get_string(&row, "name");
        if name == SHARES_VIA_AGGREGATE {
            snapshot.sharing_trait = Some(id);
        }
        snapshot.trait_names.insert(id, name);
    }
    Ok(snapshot)
}
