//! Traits and provider–trait associations.

use std::collections::{BTreeSet, HashMap, HashSet};

use ferrite_resource_classes::STANDARD_TRAITS;
use sea_orm::ConnectionTrait;

use super::{
    exec, get_i64, get_opt_i64, get_string, insert_returning_id, now_micros, placeholders,
    query_all, query_one, Db, SResult,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Trait {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

fn from_row(row: &sea_orm::QueryResult) -> Trait {
    Trait {
        id: get_i64(row, "id"),
        name: get_string(row, "name"),
        created_at: get_i64(row, "created_at"),
        updated_at: get_opt_i64(row, "updated_at"),
    }
}

/// Inserts the standard traits that are missing.
pub async fn sync_standard(db: &Db) -> SResult<()> {
    let tx = db.begin_setup().await?;
    let existing: HashSet<String> = query_all(&*tx, "SELECT name FROM traits", vec![])
        .await?
        .iter()
        .map(|r| get_string(r, "name"))
        .collect();
    let now = now_micros();
    for name in STANDARD_TRAITS {
        if !existing.contains(*name) {
            exec(
                &*tx,
                "INSERT INTO traits (name, created_at) VALUES (?, ?)",
                vec![(*name).into(), now.into()],
            )
            .await?;
        }
    }
    tx.commit().await
}

/// Filters of `GET /traits`.
#[derive(Debug, Default)]
pub struct TraitFilter {
    pub name_in: Option<Vec<String>>,
    pub name_prefix: Option<String>,
    pub associated: Option<bool>,
}

pub async fn list<C: ConnectionTrait>(conn: &C, filter: &TraitFilter) -> SResult<Vec<Trait>> {
    let mut sql =
        "SELECT t.id, t.name, t.created_at, t.updated_at FROM traits t WHERE 1 = 1".to_string();
    let mut values: Vec<sea_orm::Value> = Vec::new();
    if let Some(names) = &filter.name_in {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        sql.push_str(&format!(" AND t.name IN ({})", placeholders(names.len())));
        values.extend(names.iter().map(|n| n.as_str().into()));
    }
    if let Some(prefix) = &filter.name_prefix {
        // Compare the prefix directly: LIKE would treat `_` as a wildcard.
        sql.push_str(" AND SUBSTR(t.name, 1, ?) = ?");
        values.push(
            i32::try_from(prefix.chars().count())
                .unwrap_or(i32::MAX)
                .into(),
        );
        values.push(prefix.as_str().into());
    }
    match filter.associated {
        Some(true) => sql.push_str(
            " AND EXISTS (SELECT 1 FROM resource_provider_traits rpt WHERE rpt.trait_id = t.id)",
        ),
        Some(false) => sql.push_str(
            " AND NOT EXISTS (SELECT 1 FROM resource_provider_traits rpt WHERE rpt.trait_id = t.id)",
        ),
        None => {}
    }
    sql.push_str(" ORDER BY t.name");
    Ok(query_all(conn, &sql, values)
        .await?
        .iter()
        .map(from_row)
        .collect())
}

pub async fn get_by_name<C: ConnectionTrait>(conn: &C, name: &str) -> SResult<Option<Trait>> {
    Ok(query_one(
        conn,
        "SELECT id, name, created_at, updated_at FROM traits WHERE name = ?",
        vec![name.into()],
    )
    .await?
    .as_ref()
    .map(from_row))
}

/// Maps names to ids; unknown names are absent.
pub async fn ids_by_name<C: ConnectionTrait>(
    conn: &C,
    names: &BTreeSet<String>,
) -> SResult<HashMap<String, i64>> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT id, name FROM traits WHERE name IN ({})",
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

pub async fn create<C: ConnectionTrait>(conn: &C, name: &str) -> SResult<Trait> {
    let now = now_micros();
    let id = insert_returning_id(
        conn,
        "INSERT INTO traits (name, created_at) VALUES (?, ?)",
        vec![name.into(), now.into()],
    )
    .await?;
    Ok(Trait {
        id,
        name: name.to_string(),
        created_at: now,
        updated_at: None,
    })
}

pub async fn in_use<C: ConnectionTrait>(conn: &C, id: i64) -> SResult<bool> {
    Ok(query_one(
        conn,
        "SELECT 1 AS x FROM resource_provider_traits WHERE trait_id = ? LIMIT 1",
        vec![id.into()],
    )
    .await?
    .is_some())
}

pub async fn delete<C: ConnectionTrait>(conn: &C, id: i64) -> SResult<u64> {
    exec(conn, "DELETE FROM traits WHERE id = ?", vec![id.into()]).await
}

/// The traits of one provider, sorted by name.
pub async fn of_provider<C: ConnectionTrait>(conn: &C, provider_id: i64) -> SResult<Vec<Trait>> {
    Ok(query_all(
        conn,
        "SELECT t.id, t.name, t.created_at, t.updated_at FROM traits t \
         JOIN resource_provider_traits rpt ON rpt.trait_id = t.id \
         WHERE rpt.resource_provider_id = ? ORDER BY t.name",
        vec![provider_id.into()],
    )
    .await?
    .iter()
    .map(from_row)
    .collect())
}

/// Replaces a provider's traits (the caller bumps the generation).
pub async fn replace_for_provider<C: ConnectionTrait>(
    conn: &C,
    provider_id: i64,
    trait_ids: &[i64],
) -> SResult<()> {
    exec(
        conn,
        "DELETE FROM resource_provider_traits WHERE resource_provider_id = ?",
        vec![provider_id.into()],
    )
    .await?;
    let now = now_micros();
    for id in trait_ids {
        exec(
            conn,
            "INSERT INTO resource_provider_traits (resource_provider_id, trait_id, created_at) VALUES (?, ?, ?)",
            vec![provider_id.into(), (*id).into(), now.into()],
        )
        .await?;
    }
    Ok(())
}
