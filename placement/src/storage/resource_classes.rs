//! Resource classes: the standard ones (ids by their position in the standard
//! list, as upstream) and custom ones (ids from 10000).

use std::collections::HashMap;

use ferrite_resource_classes::STANDARD_RESOURCE_CLASSES;
use sea_orm::ConnectionTrait;

use super::{
    exec, get_i64, get_opt_i64, get_string, now_micros, placeholders, query_all, query_one, Db,
    SResult,
};

pub const MIN_CUSTOM_ID: i64 = 10000;

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceClass {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl ResourceClass {
    pub fn is_standard(&self) -> bool {
        self.id < MIN_CUSTOM_ID
    }
}

fn from_row(row: &sea_orm::QueryResult) -> ResourceClass {
    ResourceClass {
        id: get_i64(row, "id"),
        name: get_string(row, "name"),
        created_at: get_i64(row, "created_at"),
        updated_at: get_opt_i64(row, "updated_at"),
    }
}

/// Inserts the standard classes that are missing (new releases add some).
pub async fn sync_standard(db: &Db) -> SResult<()> {
    let tx = db.begin_setup().await?;
    let existing: HashMap<String, i64> = query_all(
        &*tx,
        "SELECT id, name FROM resource_classes WHERE id < ?",
        vec![MIN_CUSTOM_ID.into()],
    )
    .await?
    .iter()
    .map(|r| (get_string(r, "name"), get_i64(r, "id")))
    .collect();
    let now = now_micros();
    for (id, name) in STANDARD_RESOURCE_CLASSES.iter().enumerate() {
        if existing.contains_key(*name) {
            continue;
        }
        exec(
            &*tx,
            "INSERT INTO resource_classes (id, name, created_at) VALUES (?, ?, ?)",
            vec![(id as i64).into(), (*name).into(), now.into()],
        )
        .await?;
    }
    tx.commit().await
}

pub async fn list<C: ConnectionTrait>(conn: &C) -> SResult<Vec<ResourceClass>> {
    Ok(query_all(
        conn,
        "SELECT id, name, created_at, updated_at FROM resource_classes ORDER BY id",
        vec![],
    )
    .await?
    .iter()
    .map(from_row)
    .collect())
}

pub async fn get_by_name<C: ConnectionTrait>(
    conn: &C,
    name: &str,
) -> SResult<Option<ResourceClass>> {
    Ok(query_one(
        conn,
        "SELECT id, name, created_at, updated_at FROM resource_classes WHERE name = ?",
        vec![name.into()],
    )
    .await?
    .as_ref()
    .map(from_row))
}

/// Maps names to ids; unknown names are absent from the result.
pub async fn ids_by_name<C: ConnectionTrait>(
    conn: &C,
    names: &[String],
) -> SResult<HashMap<String, i64>> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT id, name FROM resource_classes WHERE name IN ({})",
        placeholders(names.len())
    );
    Ok(query_all(
        conn,
        &sql,
        names.iter().map(|n| n.as_str().into()).collect(),
    )
    .await?
    .iter()
    .map(|r| (get_string(r, "name"), get_i64(r, "id")))
    .collect())
}

pub async fn names_by_id<C: ConnectionTrait>(conn: &C) -> SResult<HashMap<i64, String>> {
    Ok(
        query_all(conn, "SELECT id, name FROM resource_classes", vec![])
            .await?
            .iter()
            .map(|r| (get_i64(r, "id"), get_string(r, "name")))
            .collect(),
    )
}

/// Creates a custom class; `Ok(None)` when the name exists already.
pub async fn create<C: ConnectionTrait>(conn: &C, name: &str) -> SResult<Option<ResourceClass>> {
    if get_by_name(conn, name).await?.is_some() {
        return Ok(None);
    }
    let next = query_one(conn, "SELECT MAX(id) AS m FROM resource_classes", vec![])
        .await?
        .and_then(|r| get_opt_i64(&r, "m"))
        .unwrap_or(0);
    let id = (next + 1).max(MIN_CUSTOM_ID);
    let now = now_micros();
    exec(
        conn,
        "INSERT INTO resource_classes (id, name, created_at) VALUES (?, ?, ?)",
        vec![id.into(), name.into(), now.into()],
    )
    .await?;
    Ok(Some(ResourceClass {
        id,
        name: name.to_string(),
        created_at: now,
        updated_at: None,
    }))
}

pub async fn rename<C: ConnectionTrait>(conn: &C, id: i64, name: &str) -> SResult<()> {
    exec(
        conn,
        "UPDATE resource_classes SET name = ?, updated_at = ? WHERE id = ?",
        vec![name.into(), now_micros().into(), id.into()],
    )
    .await?;
    Ok(())
}

pub async fn in_use_by_inventory<C: ConnectionTrait>(conn: &C, id: i64) -> SResult<bool> {
    Ok(query_one(
        conn,
        "SELECT 1 AS x FROM inventories WHERE resource_class_id = ? LIMIT 1",
        vec![id.into()],
    )
    .await?
    .is_some())
}

pub async fn delete<C: ConnectionTrait>(conn: &C, id: i64) -> SResult<u64> {
    exec(
        conn,
        "DELETE FROM resource_classes WHERE id = ?",
        vec![id.into()],
    )
    .await
}
