//! Loads the provider snapshot the allocation-candidate search works on,
//! and the write epoch that tells when a cached snapshot is stale.

use sea_orm::ConnectionTrait;

use std::collections::HashSet;

use super::{
    get_f64, get_i64, get_opt_i64, get_string, now_micros, placeholders, query_all, query_one,
    sum_int, SResult,
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

/// A provider row and its (generation, modification time).
type ProviderRow = (SnapshotProvider, (i64, i64));

/// Rows of `resource_providers` with their versions.
async fn provider_rows<C: ConnectionTrait>(conn: &C) -> SResult<Vec<ProviderRow>> {
    Ok(query_all(
        conn,
        "SELECT id, uuid, parent_provider_id, root_provider_id, generation, created_at, updated_at FROM resource_providers",
        vec![],
    )
    .await?
    .iter()
    .map(provider_row)
    .collect())
}

fn provider_row(row: &sea_orm::QueryResult) -> ProviderRow {
    let id = get_i64(row, "id");
    let provider = SnapshotProvider {
        id,
        uuid: get_string(row, "uuid"),
        parent: get_opt_i64(row, "parent_provider_id"),
        root: get_opt_i64(row, "root_provider_id").unwrap_or(id),
    };
    let modified = get_opt_i64(row, "updated_at").unwrap_or_else(|| get_i64(row, "created_at"));
    (provider, (get_i64(row, "generation"), modified))
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

/// Providers whose details one query of a full load reads.
const LOAD_CHUNK: usize = 2000;

/// Loads everything.
pub async fn load<C: ConnectionTrait>(conn: &C) -> SResult<Snapshot> {
    let mut snapshot = Snapshot::default();
    let started = now_micros();
    for (provider, version) in provider_rows(conn).await? {
        snapshot.max_modified = snapshot.max_modified.max(version.1);
        snapshot.versions.insert(provider.id, version);
        snapshot.providers.insert(provider.id, provider);
    }
    snapshot.full_scan_at = started;
    // In bounded chunks: a large fleet's rows never sit in memory at once.
    let ids: Vec<i64> = snapshot.providers.keys().copied().collect();
    for chunk in ids.chunks(LOAD_CHUNK) {
        load_details(conn, &mut snapshot, Some(chunk)).await?;
    }
    load_names(conn, &mut snapshot).await?;
    snapshot.reindex();
    Ok(snapshot)
}

/// How far before the newest modification seen a refresh looks again: a
/// transaction stamps `updated_at` before it commits, so a slow commit can
/// land with a time older than what another process already committed.
const REFRESH_SLACK_MICROS: i64 = 5_000_000;

/// How often a refresh compares the whole provider table instead (heals
/// anything the time window missed, e.g. clock skew between hosts).
const FULL_SCAN_EVERY_MICROS: i64 = 30_000_000;

/// Providers created or modified at or after `since`.
async fn provider_rows_since<C: ConnectionTrait>(
    conn: &C,
    since: i64,
) -> SResult<Vec<ProviderRow>> {
    Ok(query_all(
        conn,
        "SELECT id, uuid, parent_provider_id, root_provider_id, generation, created_at, updated_at \
         FROM resource_providers WHERE updated_at >= ? OR created_at >= ?",
        vec![since.into(), since.into()],
    )
    .await?
    .iter()
    .map(provider_row)
    .collect())
}

async fn deleted_since<C: ConnectionTrait>(conn: &C, since: i64) -> SResult<Vec<i64>> {
    Ok(query_all(
        conn,
        "SELECT id FROM placement_deleted_providers WHERE deleted_at >= ?",
        vec![since.into()],
    )
    .await?
    .iter()
    .map(|r| get_i64(r, "id"))
    .collect())
}

/// Brings `snapshot` up to date by reloading only the providers whose
/// generation or modification time changed and dropping deleted ones. It
/// reads the providers modified recently (and the deletion tombstones);
/// every `FULL_SCAN_EVERY_MICROS` it compares the whole table instead, and
/// when most of the fleet changed it loads everything again.
pub async fn refresh<C: ConnectionTrait>(conn: &C, snapshot: &mut Snapshot) -> SResult<()> {
    let now = now_micros();
    let full_scan = now - snapshot.full_scan_at >= FULL_SCAN_EVERY_MICROS;
    let (rows, removed): (Vec<ProviderRow>, Vec<i64>) = if full_scan {
        let rows = provider_rows(conn).await?;
        let present: HashSet<i64> = rows.iter().map(|(p, _)| p.id).collect();
        let removed = snapshot
            .providers
            .keys()
            .copied()
            .filter(|id| !present.contains(id))
            .collect();
        (rows, removed)
    } else {
        let since = snapshot.max_modified - REFRESH_SLACK_MICROS;
        let rows = provider_rows_since(conn, since).await?;
        let removed = deleted_since(conn, since)
            .await?
            .into_iter()
            .filter(|id| snapshot.providers.contains_key(id))
            .collect();
        (rows, removed)
    };
    let changed: Vec<i64> = rows
        .iter()
        .filter(|(p, version)| {
            snapshot.versions.get(&p.id) != Some(version)
                || snapshot.providers.get(&p.id) != Some(p)
        })
        .map(|(p, _)| p.id)
        .collect();
    if changed.len() + removed.len() > (snapshot.providers.len() / 2).max(2000) {
        *snapshot = load(conn).await?;
        return Ok(());
    }
    for id in changed.iter().chain(removed.iter()) {
        snapshot.forget(*id);
    }
    let changed_set: HashSet<i64> = changed.iter().copied().collect();
    for (provider, version) in rows {
        snapshot.max_modified = snapshot.max_modified.max(version.1);
        if changed_set.contains(&provider.id) {
            snapshot.versions.insert(provider.id, version);
            snapshot.providers.insert(provider.id, provider);
        }
    }
    // Bounded IN lists.
    for chunk in changed.chunks(500) {
        load_details(conn, snapshot, Some(chunk)).await?;
    }
    let traits_before = snapshot.trait_names.len();
    let sharing_before = snapshot.sharing_trait;
    load_names(conn, snapshot).await?;
    if full_scan {
        snapshot.full_scan_at = now;
    }
    if snapshot.sharing_trait != sharing_before || snapshot.trait_names.len() < traits_before {
        snapshot.reindex();
    } else {
        for id in &changed {
            snapshot.index_provider(*id);
        }
    }
    Ok(())
}
