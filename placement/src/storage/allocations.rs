//! Consumers and their allocations: reads, and the one write path that
//! replaces the allocations of a set of consumers atomically.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::{ConnectionTrait, Value};

use super::{
    exec, get_i64, get_opt_i64, get_opt_string, get_string, insert_or_ignore, insert_returning_id,
    is_conflict, now_micros, placeholders, providers, query_all, query_one, resource_classes,
    sum_int, Db, SResult, StorageError,
};
use crate::domain::{check_claims, Capacity, Claim, ClaimError};

#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    pub id: i64,
    pub uuid: String,
    pub project_id: String,
    pub user_id: String,
    pub generation: i64,
    pub consumer_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AllocationRow {
    pub provider_uuid: String,
    pub provider_generation: i64,
    pub consumer_uuid: String,
    pub consumer_generation: Option<i64>,
    pub resource_class: String,
    pub used: i64,
    pub modified: i64,
}

pub async fn consumer<C: ConnectionTrait>(conn: &C, uuid: &str) -> SResult<Option<Consumer>> {
    Ok(query_one(
        conn,
        "SELECT c.id, c.uuid, c.project_id, c.user_id, c.generation, ct.name AS type_name \
         FROM consumers c LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id WHERE c.uuid = ?",
        vec![uuid.into()],
    )
    .await?
    .map(|r| Consumer {
        id: get_i64(&r, "id"),
        uuid: get_string(&r, "uuid"),
        project_id: get_string(&r, "project_id"),
        user_id: get_string(&r, "user_id"),
        generation: get_i64(&r, "generation"),
        consumer_type: get_opt_string(&r, "type_name"),
    }))
}

const ALLOCATION_COLUMNS: &str = "SELECT rp.uuid AS rp_uuid, rp.generation AS rp_generation, \
     a.consumer_id, c.generation AS consumer_generation, rc.name AS rc_name, a.used, \
     a.created_at, a.updated_at FROM allocations a \
     JOIN resource_providers rp ON rp.id = a.resource_provider_id \
     JOIN resource_classes rc ON rc.id = a.resource_class_id \
     LEFT JOIN consumers c ON c.uuid = a.consumer_id";

fn allocation_from_row(r: &sea_orm::QueryResult) -> AllocationRow {
    AllocationRow {
        provider_uuid: get_string(r, "rp_uuid"),
        provider_generation: get_i64(r, "rp_generation"),
        consumer_uuid: get_string(r, "consumer_id"),
        consumer_generation: get_opt_i64(r, "consumer_generation"),
        resource_class: get_string(r, "rc_name"),
        used: get_i64(r, "used"),
        modified: get_opt_i64(r, "updated_at").unwrap_or_else(|| get_i64(r, "created_at")),
    }
}

pub async fn for_consumer<C: ConnectionTrait>(conn: &C, uuid: &str) -> SResult<Vec<AllocationRow>> {
    let sql = format!("{ALLOCATION_COLUMNS} WHERE a.consumer_id = ? ORDER BY a.id");
    Ok(query_all(conn, &sql, vec![uuid.into()])
        .await?
        .iter()
        .map(allocation_from_row)
        .collect())
}

pub async fn for_provider<C: ConnectionTrait>(
    conn: &C,
    provider_id: i64,
) -> SResult<Vec<AllocationRow>> {
    let sql = format!("{ALLOCATION_COLUMNS} WHERE a.resource_provider_id = ? ORDER BY a.id");
    Ok(query_all(conn, &sql, vec![provider_id.into()])
        .await?
        .iter()
        .map(allocation_from_row)
        .collect())
}

/// `GET /usages`: totals per class for a project (and optionally user), and
/// per consumer type from 1.38. Returns (consumer type, class, used, consumer count).
pub async fn project_usages<C: ConnectionTrait>(
    conn: &C,
    project_id: &str,
    user_id: Option<&str>,
) -> SResult<Vec<(Option<String>, String, String, i64)>> {
    let mut sql = format!(
        "SELECT ct.name AS type_name, c.uuid AS consumer_uuid, rc.name AS rc_name, {} AS used \
         FROM allocations a JOIN consumers c ON c.uuid = a.consumer_id \
         JOIN resource_classes rc ON rc.id = a.resource_class_id \
         LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id WHERE c.project_id = ?",
        sum_int(conn, "a.used")
    );
    let mut values: Vec<Value> = vec![project_id.into()];
    if let Some(user) = user_id {
        sql.push_str(" AND c.user_id = ?");
        values.push(user.into());
    }
    sql.push_str(" GROUP BY ct.name, c.uuid, rc.name");
    Ok(query_all(conn, &sql, values)
        .await?
        .iter()
        .map(|r| {
            (
                get_opt_string(r, "type_name"),
                get_string(r, "consumer_uuid"),
                get_string(r, "rc_name"),
                get_i64(r, "used"),
            )
        })
        .collect())
}

/// What the request says about one consumer whose allocations are replaced.
#[derive(Debug, Clone)]
pub struct ConsumerWrite {
    pub consumer: String,
    pub project_id: String,
    pub user_id: String,
    /// `None`: no generation check (before 1.28). `Some(None)`: the consumer
    /// must be new. `Some(Some(g))`: it must exist at generation `g`.
    pub expected_generation: Option<Option<i64>>,
    /// Set from 1.38; kept as is otherwise.
    pub consumer_type: Option<String>,
    /// (provider uuid, class, amount). Empty: remove all of its allocations.
    pub allocations: Vec<(String, String, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("consumer generation conflict - expected {expected} but got {got}")]
    ConsumerGeneration { expected: String, got: String },
    #[error("Allocation for resource provider '{0}' that does not exist.")]
    ProviderMissing(String),
    #[error("No such resource class {0}.")]
    ClassMissing(String),
    #[error(transparent)]
    Claim(#[from] ClaimError),
    #[error(
        "Another thread concurrently updated the resource provider data. Please retry your update"
    )]
    Concurrent,
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for WriteError {
    fn from(err: StorageError) -> Self {
        if is_conflict(&err) {
            WriteError::Concurrent
        } else {
            WriteError::Storage(err)
        }
    }
}

fn show_generation(generation: Option<i64>) -> String {
    generation.map_or_else(|| "None".to_string(), |g| g.to_string())
}

async fn consumer_type_id<C: ConnectionTrait>(conn: &C, name: &str) -> SResult<i64> {
    insert_or_ignore(
        conn,
        "consumer_types",
        &["name", "created_at"],
        vec![name.into(), now_micros().into()],
    )
    .await?;
    Ok(query_one(
        conn,
        "SELECT id FROM consumer_types WHERE name = ?",
        vec![name.into()],
    )
    .await?
    .map(|row| get_i64(&row, "id"))
    .unwrap_or_default())
}

/// Replaces the allocations of every consumer in `writes` in one
/// transaction: all land, or none do.
pub async fn replace(db: &Db, writes: &[ConsumerWrite]) -> Result<(), WriteError> {
    let tx = db.begin_write().await?;
    replace_in_tx(&*tx, writes).await?;
    tx.commit().await?;
    Ok(())
}

/// The body of [`replace`], inside a transaction the caller commits (the
/// reshaper combines it with inventory changes).
pub async fn replace_in_tx<C: ConnectionTrait>(
    tx: &C,
    writes: &[ConsumerWrite],
) -> Result<(), WriteError> {
    // Consumers first: generation checks answer before anything else.
    let mut existing: HashMap<String, Consumer> = HashMap::new();
    for write in writes {
        let found = consumer(tx, &write.consumer).await?;
        if let Some(expected) = write.expected_generation {
            let actual = found.as_ref().map(|c| c.generation);
            if actual != expected {
                return Err(WriteError::ConsumerGeneration {
                    expected: actual.map_or_else(|| "null".to_string(), |g| g.to_string()),
                    got: show_generation(expected),
                });
            }
        }
        if let Some(found) = found {
            existing.insert(write.consumer.clone(), found);
        }
    }

    // Providers are read (with their generations) before any usage is read,
    // so a claim that commits in between makes our generation stale.
    let mut claims: Vec<Claim> = Vec::new();
    for write in writes {
        if write.allocations.is_empty() {
            for row in for_consumer(tx, &write.consumer).await? {
                claims.push(Claim {
                    provider: row.provider_uuid,
                    resource_class: row.resource_class,
                    amount: 0,
                });
            }
        } else {
            for (provider, class, amount) in &write.allocations {
                claims.push(Claim {
                    provider: provider.clone(),
                    resource_class: class.clone(),
                    amount: *amount,
                });
            }
        }
    }
    let provider_uuids: Vec<String> = claims
        .iter()
        .map(|c| c.provider.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let found = providers::get_by_uuids(tx, &provider_uuids).await?;
    let providers_by_uuid: HashMap<String, providers::Provider> =
        found.into_iter().map(|p| (p.uuid.clone(), p)).collect();
    for write in writes {
        for (provider, _, _) in &write.allocations {
            if !providers_by_uuid.contains_key(provider) {
                return Err(WriteError::ProviderMissing(provider.clone()));
            }
        }
    }
    let class_names: Vec<String> = claims
        .iter()
        .map(|c| c.resource_class.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let class_ids = resource_classes::ids_by_name(tx, &class_names).await?;
    if let Some(missing) = class_names.iter().find(|n| !class_ids.contains_key(*n)) {
        return Err(WriteError::ClassMissing(missing.clone()));
    }

    let provider_ids: Vec<i64> = providers_by_uuid.values().map(|p| p.id).collect();
    let class_id_list: Vec<i64> = class_ids.values().copied().collect();
    let previous = usage_sums(tx, &provider_ids, &class_id_list).await?;

    let consumer_uuids: Vec<&str> = writes.iter().map(|w| w.consumer.as_str()).collect();
    let previous_holders = providers_of_consumers(tx, &consumer_uuids).await?;
    exec(
        tx,
        &format!(
            "DELETE FROM allocations WHERE consumer_id IN ({})",
            placeholders(consumer_uuids.len())
        ),
        consumer_uuids.iter().map(|u| (*u).into()).collect(),
    )
    .await?;
    let current = usage_sums(tx, &provider_ids, &class_id_list).await?;

    let mut capacities: BTreeMap<(String, String), Capacity> = BTreeMap::new();
    if !provider_ids.is_empty() {
        let sql = format!(
            "SELECT resource_provider_id, resource_class_id, total, reserved, min_unit, max_unit, step_size, allocation_ratio \
             FROM inventories WHERE resource_provider_id IN ({}) AND resource_class_id IN ({})",
            placeholders(provider_ids.len()),
            placeholders(class_id_list.len())
        );
        let mut values: Vec<Value> = provider_ids.iter().map(|i| (*i).into()).collect();
        values.extend(class_id_list.iter().map(|i| (*i).into()));
        let uuid_by_id: HashMap<i64, &str> = providers_by_uuid
            .values()
            .map(|p| (p.id, p.uuid.as_str()))
            .collect();
        let name_by_id: HashMap<i64, &str> =
            class_ids.iter().map(|(n, i)| (*i, n.as_str())).collect();
        for row in query_all(tx, &sql, values).await? {
            let provider_id = get_i64(&row, "resource_provider_id");
            let class_id = get_i64(&row, "resource_class_id");
            let key = (provider_id, class_id);
            let (Some(p), Some(c)) = (uuid_by_id.get(&provider_id), name_by_id.get(&class_id))
            else {
                continue;
            };
            capacities.insert(
                (p.to_string(), c.to_string()),
                Capacity {
                    total: get_i64(&row, "total"),
                    reserved: get_i64(&row, "reserved"),
                    min_unit: get_i64(&row, "min_unit"),
                    max_unit: get_i64(&row, "max_unit"),
                    step_size: get_i64(&row, "step_size"),
                    allocation_ratio: super::get_f64(&row, "allocation_ratio"),
                    used: current.get(&key).copied().unwrap_or(0),
                    previous_used: previous.get(&key).copied().unwrap_or(0),
                },
            );
        }
    }
    check_claims(&claims, &capacities)?;

    // Consumers: create the new ones, bring the others up to date.
    let now = now_micros();
    let mut consumer_state: Vec<(i64, i64, bool)> = Vec::new(); // (id, generation, has allocations)
    for write in writes {
        let type_id = match &write.consumer_type {
            Some(name) => Some(consumer_type_id(tx, name).await?),
            None => None,
        };
        let has_allocations = !write.allocations.is_empty();
        match existing.get(&write.consumer) {
            Some(found) => {
                if found.project_id != write.project_id || found.user_id != write.user_id {
                    exec(
                        tx,
                        "UPDATE consumers SET project_id = ?, user_id = ?, updated_at = ? WHERE id = ?",
                        vec![write.project_id.as_str().into(), write.user_id.as_str().into(), now.into(), found.id.into()],
                    )
                    .await?;
                }
                if let Some(type_id) = type_id {
                    exec(
                        tx,
                        "UPDATE consumers SET consumer_type_id = ?, updated_at = ? WHERE id = ?",
                        vec![type_id.into(), now.into(), found.id.into()],
                    )
                    .await?;
                }
                consumer_state.push((found.id, found.generation, has_allocations));
            }
            None => {
                let id = insert_returning_id(
                    tx,
                    "INSERT INTO consumers (uuid, project_id, user_id, generation, consumer_type_id, created_at) VALUES (?, ?, ?, 0, ?, ?)",
                    vec![
                        write.consumer.as_str().into(),
                        write.project_id.as_str().into(),
                        write.user_id.as_str().into(),
                        type_id.into(),
                        now.into(),
                    ],
                )
                .await?;
                consumer_state.push((id, 0, has_allocations));
            }
        }
        for (provider, class, amount) in &write.allocations {
            let (Some(p), Some(c)) = (providers_by_uuid.get(provider), class_ids.get(class)) else {
                continue;
            };
            exec(
                tx,
                "INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used, created_at) VALUES (?, ?, ?, ?, ?)",
                vec![p.id.into(), write.consumer.as_str().into(), (*c).into(), (*amount).into(), now.into()],
            )
            .await?;
        }
    }

    // The compare-and-swap that makes concurrent claims safe. Sorted to keep
    // lock order stable across transactions.
    // Providers that only lost allocations keep their generation (as
    // upstream) but get a new updated_at, so cached snapshots notice.
    let mut order: BTreeMap<i64, Option<i64>> =
        previous_holders.into_iter().map(|id| (id, None)).collect();
    for provider in providers_by_uuid.values() {
        order.insert(provider.id, Some(provider.generation));
    }
    for (id, generation) in order {
        match generation {
            Some(generation) => {
                if !providers::bump_generation(tx, id, generation).await? {
                    return Err(WriteError::Concurrent);
                }
            }
            None => providers::touch(tx, &[id]).await?,
        }
    }
    for (id, generation, has_allocations) in consumer_state {
        let changed = exec(
            tx,
            "UPDATE consumers SET generation = ?, updated_at = ? WHERE id = ? AND generation = ?",
            vec![
                (generation + 1).into(),
                now.into(),
                id.into(),
                generation.into(),
            ],
        )
        .await?;
        if changed != 1 {
            return Err(WriteError::Concurrent);
        }
        if !has_allocations {
            exec(tx, "DELETE FROM consumers WHERE id = ?", vec![id.into()]).await?;
        }
    }
    Ok(())
}

/// Ids of the providers holding allocations of these consumers.
async fn providers_of_consumers<C: ConnectionTrait>(
    conn: &C,
    consumers: &[&str],
) -> SResult<BTreeSet<i64>> {
    if consumers.is_empty() {
        return Ok(BTreeSet::new());
    }
    let sql = format!(
        "SELECT DISTINCT resource_provider_id FROM allocations WHERE consumer_id IN ({})",
        placeholders(consumers.len())
    );
    Ok(
        query_all(conn, &sql, consumers.iter().map(|c| (*c).into()).collect())
            .await?
            .iter()
            .map(|r| get_i64(r, "resource_provider_id"))
            .collect(),
    )
}

/// Sum of `used` per (provider id, class id).
async fn usage_sums<C: ConnectionTrait>(
    conn: &C,
    provider_ids: &[i64],
    class_ids: &[i64],
) -> SResult<HashMap<(i64, i64), i64>> {
    if provider_ids.is_empty() || class_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT resource_provider_id, resource_class_id, {} AS used FROM allocations \
         WHERE resource_provider_id IN ({}) AND resource_class_id IN ({}) \
         GROUP BY resource_provider_id, resource_class_id",
        sum_int(conn, "used"),
        placeholders(provider_ids.len()),
        placeholders(class_ids.len())
    );
    let mut values: Vec<Value> = provider_ids.iter().map(|i| (*i).into()).collect();
    values.extend(class_ids.iter().map(|i| (*i).into()));
    Ok(query_all(conn, &sql, values)
        .await?
        .iter()
        .map(|r| {
            (
                (
                    get_i64(r, "resource_provider_id"),
                    get_i64(r, "resource_class_id"),
                ),
                get_i64(r, "used"),
            )
        })
        .collect())
}

/// Deletes every allocation of a consumer and the consumer. False when it
/// had none.
pub async fn delete_consumer(db: &Db, uuid: &str) -> Result<bool, WriteError> {
    let tx = db.begin_write().await?;
    let holders: Vec<i64> = providers_of_consumers(&*tx, &[uuid])
        .await?
        .into_iter()
        .collect();
    let removed = exec(
        &*tx,
        "DELETE FROM allocations WHERE consumer_id = ?",
        vec![uuid.into()],
    )
    .await?;
    providers::touch(&*tx, &holders).await?;
    exec(
        &*tx,
        "DELETE FROM consumers WHERE uuid = ?",
        vec![uuid.into()],
    )
    .await?;
    tx.commit().await?;
    Ok(removed > 0)
}
