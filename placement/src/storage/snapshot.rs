//! Loads the provider snapshot the allocation-candidate search works on,
//! and the write epoch that tells when a cached snapshot is stale.

use sea_orm::ConnectionTrait;

use std::collections::HashSet;

use super::{
    get_f64, get_i64, get_opt_i64, get_string, placeholders, query_all, query_one, sum_int, SResult,
};
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

/// Rows of `resource_providers` with their versions.
async fn provider_rows<C: ConnectionTrait>(
    conn: &C,
) -> SResult<Vec<(SnapshotProvider, (i64, i64))>> {
    Ok(query_all(
        conn,
        "SELECT id, uuid, parent_provider_id, root_provider_id, generation, created_at, updated_at FROM resource_providers",
        vec![],
    )
    .await?
    .iter()
    .map(|row| {
        let id = get_i64(row, "id");
        let provider = SnapshotProvider {
            id,
            uuid: get_string(row, "uuid"),
            parent: get_opt_i64(row, "parent_provider_id"),
            root: get_opt_i64(row, "root_provider_id").unwrap_or(id),
        };
        let modified = get_opt_i64(row, "updated_at").unwrap_or_else(|| get_i64(row, "created_at"));
        (provider, (get_i64(row, "generation"), modified))
    })
    .collect())
}

/// `WHERE column IN (…)` for a chunk of ids, or nothing for "all".
fn id_filter(column: &str, ids: Option<&[i64]>) -> (String, Vec<sea_orm::Value>) {
    match ids {
        None => (String::new(), Vec::new()),
        Some(ids) => (
            format!(" WHERE {column} IN ({})", placeholders(ids.len())),
            ids.iter().map(|id| (*id).into()).collect(),
        ),
    }
}

/// Loads inventories, usage, traits and aggregates of `ids` (all when None).
async fn load_details<C: ConnectionTrait>(
    conn: &C,
    snapshot: &mut Snapshot,
    ids: Option<&[i64]>,
) -> SResult<()> {
    let (filter, values) = id_filter("resource_provider_id", ids);
    for row in query_all(
        conn,
        &format!("SELECT resource_provider_id, resource_class_id, total, reserved, min_unit, max_unit, step_size, allocation_ratio FROM inventories{filter}"),
        values.clone(),
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
        "SELECT resource_provider_id, resource_class_id, {} AS used FROM allocations{filter} GROUP BY resource_provider_id, resource_class_id",
        sum_int(conn, "used")
    );
    for row in query_all(conn, &sql, values.clone()).await? {
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
        &format!("SELECT resource_provider_id, trait_id FROM resource_provider_traits{filter}"),
        values.clone(),
    )
    .await?
    {
        snapshot
            .traits
            .entry(get_i64(&row, "resource_provider_id"))
            .or_default()
            .insert(get_i64(&row, "trait_id"));
    }
    let (filter, values) = id_filter("rpa.resource_provider_id", ids);
    for row in query_all(
        conn,
        &format!("SELECT rpa.resource_provider_id, pa.uuid FROM resource_provider_aggregates rpa JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id{filter}"),
        values,
    )
    .await?
    {
        snapshot
            .aggregates
            .entry(get_i64(&row, "resource_provider_id"))
            .or_default()
            .insert(get_string(&row, "uuid"));
    }
    Ok(())
}

async fn load_names<C: ConnectionTrait>(conn: &C, snapshot: &mut Snapshot) -> SResult<()> {
    snapshot.class_names.clear();
    for row in query_all(conn, "SELECT id, name FROM resource_classes", vec![]).await? {
        snapshot
            .class_names
            .insert(get_i64(&row, "id"), get_string(&row, "name"));
    }
    snapshot.trait_names.clear();
    snapshot.sharing_trait = None;
    for row in query_all(conn, "SELECT id, name FROM traits", vec![]).await? {
        let id = get_i64(&row, "id");
        let name = get_string(&row, "name");
        if name == SHARES_VIA_AGGREGATE {
            snapshot.sharing_trait = Some(id);
        }
        snapshot.trait_names.insert(id, name);
    }
    Ok(())
}

/// Loads everything.
pub async fn load<C: ConnectionTrait>(conn: &C) -> SResult<Snapshot> {
    let mut snapshot = Snapshot::default();
    for (provider, version) in provider_rows(conn).await? {
        snapshot.versions.insert(provider.id, version);
        snapshot.providers.insert(provider.id, provider);
    }
    load_details(conn, &mut snapshot, None).await?;
    load_names(conn, &mut snapshot).await?;
    snapshot.reindex();
    Ok(snapshot)
}

/// Brings `snapshot` up to date by reloading only the providers whose
/// generation or modification time changed (and dropping deleted ones);
/// falls back to a full load when most of the fleet changed.
pub async fn refresh<C: ConnectionTrait>(conn: &C, snapshot: &mut Snapshot) -> SResult<()> {
    let rows = provider_rows(conn).await?;
    let present: HashSet<i64> = rows.iter().map(|(p, _)| p.id).collect();
    let removed: Vec<i64> = snapshot
        .providers
        .keys()
        .copied()
        .filter(|id| !present.contains(id))
        .collect();
    let changed: Vec<i64> = rows
        .iter()
        .filter(|(p, version)| {
            snapshot.versions.get(&p.id) != Some(version)
                || snapshot.providers.get(&p.id) != Some(p)
        })
        .map(|(p, _)| p.id)
        .collect();
    if changed.len() + removed.len() > (rows.len() / 2).max(2000) {
        *snapshot = load(conn).await?;
        return Ok(());
    }
    let stale: HashSet<i64> = changed.iter().chain(removed.iter()).copied().collect();
    if !stale.is_empty() {
        for id in &stale {
            snapshot.providers.remove(id);
            snapshot.versions.remove(id);
            snapshot.inventories.remove(id);
            snapshot.traits.remove(id);
            snapshot.aggregates.remove(id);
        }
        snapshot.usage.retain(|(rp, _), _| !stale.contains(rp));
        for (provider, version) in rows {
            if stale.contains(&provider.id) {
                snapshot.versions.insert(provider.id, version);
                snapshot.providers.insert(provider.id, provider);
            }
        }
        // Bounded IN lists.
        for chunk in changed.chunks(500) {
            load_details(conn, snapshot, Some(chunk)).await?;
        }
    }
    load_names(conn, snapshot).await?;
    snapshot.reindex();
    Ok(())
}
