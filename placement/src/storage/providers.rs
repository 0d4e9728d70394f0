//! Resource providers (nested trees), their inventories and aggregates.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, Value};

use super::{
    exec, get_f64, get_i64, get_opt_i64, get_opt_string, get_string, insert_or_ignore,
    insert_returning_id, now_micros, placeholders, query_all, query_one, sum_int, SResult,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub generation: i64,
    pub parent_id: Option<i64>,
    pub root_id: i64,
    pub parent_uuid: Option<String>,
    pub root_uuid: String,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl Provider {
    /// The time clients see as `last-modified`.
    pub fn modified(&self) -> i64 {
        self.updated_at.unwrap_or(self.created_at)
    }
}

const PROVIDER_COLUMNS: &str = "rp.id, rp.uuid, rp.name, rp.generation, rp.parent_provider_id, \
     rp.root_provider_id, rp.created_at, rp.updated_at, p.uuid AS parent_uuid, r.uuid AS root_uuid \
     FROM resource_providers rp \
     LEFT JOIN resource_providers p ON p.id = rp.parent_provider_id \
     LEFT JOIN resource_providers r ON r.id = rp.root_provider_id";

fn provider_from_row(row: &sea_orm::QueryResult) -> Provider {
    let id = get_i64(row, "id");
    let uuid = get_string(row, "uuid");
    Provider {
        id,
        generation: get_i64(row, "generation"),
        name: get_string(row, "name"),
        parent_id: get_opt_i64(row, "parent_provider_id"),
        root_id: get_opt_i64(row, "root_provider_id").unwrap_or(id),
        parent_uuid: get_opt_string(row, "parent_uuid"),
        root_uuid: get_opt_string(row, "root_uuid").unwrap_or_else(|| uuid.clone()),
        uuid,
        created_at: get_i64(row, "created_at"),
        updated_at: get_opt_i64(row, "updated_at"),
    }
}

pub async fn get_by_uuid<C: ConnectionTrait>(conn: &C, uuid: &str) -> SResult<Option<Provider>> {
    let sql = format!("SELECT {PROVIDER_COLUMNS} WHERE rp.uuid = ?");
    Ok(query_one(conn, &sql, vec![uuid.into()])
        .await?
        .as_ref()
        .map(provider_from_row))
}

pub async fn get_by_uuids<C: ConnectionTrait>(
    conn: &C,
    uuids: &[String],
) -> SResult<Vec<Provider>> {
    if uuids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {PROVIDER_COLUMNS} WHERE rp.uuid IN ({})",
        placeholders(uuids.len())
    );
    Ok(query_all(
        conn,
        &sql,
        uuids.iter().map(|u| u.as_str().into()).collect(),
    )
    .await?
    .iter()
    .map(provider_from_row)
    .collect())
}

pub async fn name_taken<C: ConnectionTrait>(conn: &C, name: &str, except_id: i64) -> SResult<bool> {
    Ok(query_one(
        conn,
        "SELECT id FROM resource_providers WHERE name = ? AND id <> ?",
        vec![name.into(), except_id.into()],
    )
    .await?
    .is_some())
}

/// Inserts a provider. `parent` is the parent's (id, root id).
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    uuid: &str,
    name: &str,
    parent: Option<(i64, i64)>,
) -> SResult<i64> {
    let now = now_micros();
    let id = insert_returning_id(
        conn,
        "INSERT INTO resource_providers (uuid, name, generation, parent_provider_id, root_provider_id, created_at) VALUES (?, ?, 0, ?, ?, ?)",
        vec![
            uuid.into(),
            name.into(),
            parent.map(|p| p.0).into(),
            parent.map(|p| p.1).into(),
            now.into(),
        ],
    )
    .await?;
    if parent.is_none() {
        // Pointing a new root at itself is a second write of the row, which
        // upstream's ORM stamps with an update time: a root provider has an
        // `updated_at` from birth (a child has none), which shows in the
        // `last-modified` of the first `PUT /resource_providers/{uuid}`.
        exec(
            conn,
            "UPDATE resource_providers SET root_provider_id = ?, updated_at = ? WHERE id = ?",
            vec![id.into(), now.into(), id.into()],
        )
        .await?;
    }
    Ok(id)
}

/// Ids of the provider and all its descendants.
pub async fn subtree_ids<C: ConnectionTrait>(conn: &C, id: i64, root_id: i64) -> SResult<Vec<i64>> {
    let rows = query_all(
        conn,
        "SELECT id, parent_provider_id FROM resource_providers WHERE root_provider_id = ?",
        vec![root_id.into()],
    )
    .await?;
    let edges: Vec<(i64, Option<i64>)> = rows
        .iter()
        .map(|r| (get_i64(r, "id"), get_opt_i64(r, "parent_provider_id")))
        .collect();
    let mut result = vec![id];
    let mut frontier = vec![id];
    while let Some(current) = frontier.pop() {
        for (child, parent) in &edges {
            if *parent == Some(current) && !result.contains(child) {
                result.push(*child);
                frontier.push(*child);
            }
        }
    }
    Ok(result)
}

/// Updates name, parent and root; `subtree_root` moves descendants too.
pub async fn update<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    name: &str,
    parent_id: Option<i64>,
    root_id: i64,
    subtree: &[i64],
) -> SResult<i64> {
    let now = now_micros();
    exec(
        conn,
        "UPDATE resource_providers SET name = ?, parent_provider_id = ?, root_provider_id = ?, updated_at = ? WHERE id = ?",
        vec![name.into(), parent_id.into(), root_id.into(), now.into(), id.into()],
    )
    .await?;
    for other in subtree.iter().filter(|s| **s != id) {
        exec(
            conn,
            "UPDATE resource_providers SET root_provider_id = ?, updated_at = ? WHERE id = ?",
            vec![root_id.into(), now.into(), (*other).into()],
        )
        .await?;
    }
    Ok(now)
}

pub async fn has_children<C: ConnectionTrait>(conn: &C, id: i64) -> SResult<bool> {
    Ok(query_one(
        conn,
        "SELECT 1 AS x FROM resource_providers WHERE parent_provider_id = ? LIMIT 1",
        vec![id.into()],
    )
    .await?
    .is_some())
}

pub async fn has_allocations<C: ConnectionTrait>(conn: &C, id: i64) -> SResult<bool> {
    Ok(query_one(
        conn,
        "SELECT 1 AS x FROM allocations WHERE resource_provider_id = ? LIMIT 1",
        vec![id.into()],
    )
    .await?
    .is_some())
}

pub async fn delete<C: ConnectionTrait>(conn: &C, id: i64) -> SResult<()> {
    for sql in [
        "DELETE FROM inventories WHERE resource_provider_id = ?",
        "DELETE FROM resource_provider_traits WHERE resource_provider_id = ?",
        "DELETE FROM resource_provider_aggregates WHERE resource_provider_id = ?",
        "DELETE FROM resource_providers WHERE id = ?",
    ] {
        exec(conn, sql, vec![id.into()]).await?;
    }
    // A tombstone tells cached snapshots (of every process) to drop it;
    // tombstones older than an hour have served their purpose.
    let now = now_micros();
    exec(
        conn,
        "INSERT INTO placement_deleted_providers (id, deleted_at) VALUES (?, ?)",
        vec![id.into(), now.into()],
    )
    .await?;
    exec(
        conn,
        "DELETE FROM placement_deleted_providers WHERE deleted_at < ?",
        vec![(now - 3_600_000_000).into()],
    )
    .await?;
    Ok(())
}

/// Marks providers as changed without a generation bump (their usage or
/// aggregates changed in a way upstream does not version).
pub async fn touch<C: ConnectionTrait>(conn: &C, ids: &[i64]) -> SResult<()> {
    let now = now_micros();
    for id in ids {
        exec(
            conn,
            "UPDATE resource_providers SET updated_at = ? WHERE id = ?",
            vec![now.into(), (*id).into()],
        )
        .await?;
    }
    Ok(())
}

/// Compare-and-swap of a provider's generation. False: someone else won.
pub async fn bump_generation<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    expected: i64,
) -> SResult<bool> {
    let changed = exec(
        conn,
        "UPDATE resource_providers SET generation = ?, updated_at = ? WHERE id = ? AND generation = ?",
        vec![(expected + 1).into(), now_micros().into(), id.into(), expected.into()],
    )
    .await?;
    Ok(changed == 1)
}

/// Filters of `GET /resource_providers`. Trait and class names are already
/// resolved to ids by the caller.
#[derive(Debug, Default, Clone)]
pub struct ProviderFilter {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub in_tree_root: Option<i64>,
    pub member_of: Vec<BTreeSet<String>>,
    pub forbidden_aggregates: BTreeSet<String>,
    /// Each entry: provider has at least one of these trait ids.
    pub required_traits: Vec<Vec<i64>>,
    pub forbidden_traits: Vec<i64>,
    /// resource class id → amount that must fit.
    pub resources: BTreeMap<i64, i64>,
}

pub async fn list<C: ConnectionTrait>(conn: &C, filter: &ProviderFilter) -> SResult<Vec<Provider>> {
    let mut sql = format!("SELECT {PROVIDER_COLUMNS} WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    if let Some(uuid) = &filter.uuid {
        sql.push_str(" AND rp.uuid = ?");
        values.push(uuid.as_str().into());
    }
    if let Some(name) = &filter.name {
        sql.push_str(" AND rp.name = ?");
        values.push(name.as_str().into());
    }
    if let Some(root) = filter.in_tree_root {
        sql.push_str(" AND rp.root_provider_id = ?");
        values.push(root.into());
    }
    for any_of in &filter.member_of {
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM resource_provider_aggregates rpa JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id WHERE rpa.resource_provider_id = rp.id AND pa.uuid IN ({}))",
            placeholders(any_of.len())
        ));
        values.extend(any_of.iter().map(|u| u.as_str().into()));
    }
    if !filter.forbidden_aggregates.is_empty() {
        sql.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM resource_provider_aggregates rpa JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id WHERE rpa.resource_provider_id = rp.id AND pa.uuid IN ({}))",
            placeholders(filter.forbidden_aggregates.len())
        ));
        values.extend(
            filter
                .forbidden_aggregates
                .iter()
                .map(|u| u.as_str().into()),
        );
    }
    for any_of in &filter.required_traits {
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM resource_provider_traits rpt WHERE rpt.resource_provider_id = rp.id AND rpt.trait_id IN ({}))",
            placeholders(any_of.len())
        ));
        values.extend(any_of.iter().map(|id| (*id).into()));
    }
    if !filter.forbidden_traits.is_empty() {
        sql.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM resource_provider_traits rpt WHERE rpt.resource_provider_id = rp.id AND rpt.trait_id IN ({}))",
            placeholders(filter.forbidden_traits.len())
        ));
        values.extend(filter.forbidden_traits.iter().map(|id| (*id).into()));
    }
    let used = sum_int(conn, "a.used");
    for (class_id, amount) in &filter.resources {
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM inventories i WHERE i.resource_provider_id = rp.id \
             AND i.resource_class_id = ? AND i.min_unit <= ? AND i.max_unit >= ? AND ? % i.step_size = 0 \
             AND (i.total - i.reserved) * i.allocation_ratio >= ? + \
             (SELECT {used} FROM allocations a WHERE a.resource_provider_id = rp.id AND a.resource_class_id = i.resource_class_id))"
        ));
        values.extend([
            (*class_id).into(),
            (*amount).into(),
            (*amount).into(),
            (*amount).into(),
            (*amount).into(),
        ]);
    }
    sql.push_str(" ORDER BY rp.id");
    Ok(query_all(conn, &sql, values)
        .await?
        .iter()
        .map(provider_from_row)
        .collect())
}

// ---------------------------------------------------------------------------
// Inventories

#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    pub resource_class: String,
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl Inventory {
    /// The capacity allocations may use, as upstream computes it when it
    /// validates an inventory write: `(total - reserved) * allocation_ratio`
    /// truncated toward zero to a whole number. So `total: 1` with a ratio
    /// of 0.5 has capacity 0 (refused before 1.26, as upstream refuses it).
    pub fn capacity(&self) -> i64 {
        ((self.total - self.reserved) as f64 * self.allocation_ratio).trunc() as i64
    }
}

pub async fn inventories<C: ConnectionTrait>(
    conn: &C,
    provider_id: i64,
) -> SResult<Vec<Inventory>> {
    Ok(query_all(
        conn,
        "SELECT rc.name AS rc_name, i.total, i.reserved, i.min_unit, i.max_unit, i.step_size, \
         i.allocation_ratio, i.created_at, i.updated_at FROM inventories i \
         JOIN resource_classes rc ON rc.id = i.resource_class_id \
         WHERE i.resource_provider_id = ? ORDER BY i.id",
        vec![provider_id.into()],
    )
    .await?
    .iter()
    .map(|r| Inventory {
        resource_class: get_string(r, "rc_name"),
        total: get_i64(r, "total"),
        reserved: get_i64(r, "reserved"),
        min_unit: get_i64(r, "min_unit"),
        max_unit: get_i64(r, "max_unit"),
        step_size: get_i64(r, "step_size"),
        allocation_ratio: get_f64(r, "allocation_ratio"),
        created_at: get_i64(r, "created_at"),
        updated_at: get_opt_i64(r, "updated_at"),
    })
    .collect())
}

/// Inserts or updates one inventory row.
pub async fn upsert_inventory<C: ConnectionTrait>(
    conn: &C,
    provider_id: i64,
    class_id: i64,
    inv: &Inventory,
) -> SResult<()> {
    let now = now_micros();
    let changed = exec(
        conn,
        "UPDATE inventories SET total = ?, reserved = ?, min_unit = ?, max_unit = ?, step_size = ?, allocation_ratio = ?, updated_at = ? WHERE resource_provider_id = ? AND resource_class_id = ?",
        vec![
            inv.total.into(),
            inv.reserved.into(),
            inv.min_unit.into(),
            inv.max_unit.into(),
            inv.step_size.into(),
            inv.allocation_ratio.into(),
            now.into(),
            provider_id.into(),
            class_id.into(),
        ],
    )
    .await?;
    // MySQL reports 0 changed rows for an identical update, so look before
    // inserting a duplicate.
    if changed == 0
        && query_one(
            conn,
            "SELECT 1 AS x FROM inventories WHERE resource_provider_id = ? AND resource_class_id = ?",
            vec![provider_id.into(), class_id.into()],
        )
        .await?
        .is_none()
    {
        exec(
            conn,
            "INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved, min_unit, max_unit, step_size, allocation_ratio, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                provider_id.into(),
                class_id.into(),
                inv.total.into(),
                inv.reserved.into(),
                inv.min_unit.into(),
                inv.max_unit.into(),
                inv.step_size.into(),
                inv.allocation_ratio.into(),
                now.into(),
            ],
        )
        .await?;
    }
    Ok(())
}

pub async fn delete_inventory<C: ConnectionTrait>(
    conn: &C,
    provider_id: i64,
    class_id: i64,
) -> SResult<u64> {
    exec(
        conn,
        "DELETE FROM inventories WHERE resource_provider_id = ? AND resource_class_id = ?",
        vec![provider_id.into(), class_id.into()],
    )
    .await
}

/// Usage per resource class name on one provider (only classes in use).
pub async fn usages<C: ConnectionTrait>(
    conn: &C,
    provider_id: i64,
) -> SResult<BTreeMap<String, i64>> {
    let sql = format!(
        "SELECT rc.name AS rc_name, {} AS used FROM allocations a \
         JOIN resource_classes rc ON rc.id = a.resource_class_id \
         WHERE a.resource_provider_id = ? GROUP BY rc.name",
        sum_int(conn, "a.used")
    );
    Ok(query_all(conn, &sql, vec![provider_id.into()])
        .await?
        .iter()
        .map(|r| (get_string(r, "rc_name"), get_i64(r, "used")))
        .collect())
}

// ---------------------------------------------------------------------------
// Aggregates

pub async fn aggregates<C: ConnectionTrait>(conn: &C, provider_id: i64) -> SResult<Vec<String>> {
    Ok(query_all(
        conn,
        "SELECT pa.uuid FROM placement_aggregates pa JOIN resource_provider_aggregates rpa \
         ON rpa.aggregate_id = pa.id WHERE rpa.resource_provider_id = ? ORDER BY pa.uuid",
        vec![provider_id.into()],
    )
    .await?
    .iter()
    .map(|r| get_string(r, "uuid"))
    .collect())
}

pub async fn replace_aggregates<C: ConnectionTrait>(
    conn: &C,
    provider_id: i64,
    uuids: &[String],
) -> SResult<()> {
    exec(
        conn,
        "DELETE FROM resource_provider_aggregates WHERE resource_provider_id = ?",
        vec![provider_id.into()],
    )
    .await?;
    let now = now_micros();
    for uuid in uuids {
        // Concurrent writers may name the same new aggregate: the loser of
        // that race simply uses the winner's row.
        insert_or_ignore(
            conn,
            "placement_aggregates",
            &["uuid"],
            vec![uuid.as_str().into()],
        )
        .await?;
        let aggregate_id = query_one(
            conn,
            "SELECT id FROM placement_aggregates WHERE uuid = ?",
            vec![uuid.as_str().into()],
        )
        .await?
        .map(|row| get_i64(&row, "id"))
        .unwrap_or_default();
        exec(
            conn,
            "INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id, created_at) VALUES (?, ?, ?)",
            vec![provider_id.into(), aggregate_id.into(), now.into()],
        )
        .await?;
    }
    Ok(())
}
