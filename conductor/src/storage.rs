//! Storage: the only module of the conductor that speaks SQL.
//!
//! A node (and a port) is kept as its full JSON document (`body`) plus the
//! columns the API filters, sorts and locks on, all written together. Two
//! columns are owned by SQL rather than by the document:
//! - `reservation`: the node lock. Taken with a conditional update
//!   (`… WHERE reservation IS NULL`), released by its holder, cleared for a
//!   conductor when it restarts.
//! - `version`: bumped by every write; updates are compare-and-swap on it,
//!   so two API workers that patch the same node cannot both win.

use ferrite_db::{
    exec, get_i64, get_opt_string, get_string, query_all, query_one, readable_rows, Db, SResult,
    Schema,
};
use sea_orm::{ConnectionTrait, QueryResult, Value as SqlValue};
use serde_json::{Map, Value};

pub use ferrite_db::{is_conflict, now_micros, StorageError};

pub type Doc = Map<String, Value>;

const SCHEMA: Schema = Schema {
    version_table: "conductor_schema_version",
    migrations: MIGRATIONS,
};

const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE nodes (id {pk}, uuid VARCHAR(36) NOT NULL, name VARCHAR(255) NULL, instance_uuid VARCHAR(36) NULL, driver {str} NOT NULL, provision_state {str} NOT NULL, target_provision_state {str} NULL, power_state {str} NULL, maintenance INTEGER NOT NULL, reservation {str} NULL, resource_class {str} NULL, conductor_group {str} NOT NULL, shard {str} NULL, owner {str} NULL, lessee {str} NULL, created_at BIGINT NOT NULL, updated_at BIGINT NULL, provision_updated_at BIGINT NULL, version BIGINT NOT NULL, body {text} NOT NULL, CONSTRAINT uniq_nodes0uuid UNIQUE (uuid), CONSTRAINT uniq_nodes0name UNIQUE (name), CONSTRAINT uniq_nodes0instance_uuid UNIQUE (instance_uuid))",
    "CREATE INDEX nodes_provision_state_idx ON nodes (provision_state)",
    "CREATE INDEX nodes_reservation_idx ON nodes (reservation)",
    "CREATE INDEX nodes_conductor_group_idx ON nodes (conductor_group)",
    "CREATE INDEX nodes_shard_idx ON nodes (shard)",
    "CREATE TABLE ports (id {pk}, uuid VARCHAR(36) NOT NULL, address VARCHAR(18) NOT NULL, node_id BIGINT NOT NULL, name VARCHAR(255) NULL, created_at BIGINT NOT NULL, updated_at BIGINT NULL, version BIGINT NOT NULL, body {text} NOT NULL, CONSTRAINT uniq_ports0uuid UNIQUE (uuid), CONSTRAINT uniq_ports0address UNIQUE (address), CONSTRAINT uniq_ports0name UNIQUE (name))",
    "CREATE INDEX ports_node_id_idx ON ports (node_id)",
    "CREATE TABLE conductors (id {pk}, hostname VARCHAR(255) NOT NULL, conductor_group {str} NOT NULL, drivers {text} NOT NULL, online INTEGER NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, CONSTRAINT uniq_conductors0hostname UNIQUE (hostname))",
    "CREATE TABLE node_history (id {pk}, uuid VARCHAR(36) NOT NULL, node_id BIGINT NOT NULL, conductor {str} NULL, event {text} NOT NULL, severity {str} NOT NULL, event_type {str} NOT NULL, user_id {str} NULL, created_at BIGINT NOT NULL)",
    "CREATE INDEX node_history_node_id_idx ON node_history (node_id)",
]];

/// Connects and creates or migrates the conductor's schema.
pub async fn connect(url: &str, max_connections: u32) -> SResult<Db> {
    Db::connect(url, max_connections, &SCHEMA).await
}

/// A stored node.
#[derive(Debug, Clone)]
pub struct NodeRow {
    pub id: i64,
    pub version: i64,
    pub reservation: Option<String>,
    /// The full document; `reservation` is filled in from the column.
    pub doc: Doc,
}

impl NodeRow {
    pub fn uuid(&self) -> &str {
        doc_str(&self.doc, "uuid").unwrap_or("")
    }
    pub fn str_field(&self, name: &str) -> Option<&str> {
        doc_str(&self.doc, name)
    }
}

pub fn doc_str<'a>(doc: &'a Doc, name: &str) -> Option<&'a str> {
    doc.get(name).and_then(Value::as_str)
}

fn doc_bool(doc: &Doc, name: &str) -> bool {
    doc.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// The current time as upstream renders timestamps.
pub fn iso_now() -> (i64, String) {
    let now = chrono::Utc::now();
    (
        now.timestamp_micros(),
        now.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string(),
    )
}

/// Parses a timestamp we wrote back into microseconds.
pub fn iso_micros(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_micros())
}

fn opt(doc: &Doc, name: &str) -> SqlValue {
    doc_str(doc, name).map(str::to_string).into()
}

fn micros_of(doc: &Doc, name: &str) -> SqlValue {
    doc_str(doc, name).and_then(iso_micros).into()
}

fn row_to_node(row: &QueryResult) -> Result<NodeRow, StorageError> {
    let body = get_string(row, "body");
    let mut doc: Doc = serde_json::from_str(&body).map_err(|e| StorageError::Unreadable {
        what: format!("node {}", get_string(row, "uuid")),
        detail: e.to_string(),
    })?;
    let reservation = get_opt_string(row, "reservation");
    doc.insert(
        "reservation".into(),
        reservation
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    Ok(NodeRow {
        id: get_i64(row, "id"),
        version: get_i64(row, "version"),
        reservation,
        doc,
    })
}

fn body_of(doc: &Doc) -> String {
    let mut stored = doc.clone();
    stored.remove("reservation");
    Value::Object(stored).to_string()
}

/// Extra rows a limited listing reads so that a few unreadable rows do not
/// shorten a page (which would end a client's paging early).
const UNREADABLE_SLACK: u64 = 16;

const NODE_COLUMNS: &str = "id, uuid, version, reservation, body";

/// Inserts a new node document. Unique violations (uuid, name,
/// instance_uuid) surface as conflicts.
pub async fn insert_node(db: &Db, doc: &Doc) -> SResult<NodeRow> {
    let tx = db.begin_write().await?;
    exec(
        &*tx,
        "INSERT INTO nodes (uuid, name, instance_uuid, driver, provision_state, target_provision_state, power_state, maintenance, reservation, resource_class, conductor_group, shard, owner, lessee, created_at, updated_at, provision_updated_at, version, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
        vec![
            opt(doc, "uuid"),
            opt(doc, "name"),
            opt(doc, "instance_uuid"),
            doc_str(doc, "driver").unwrap_or("").into(),
            doc_str(doc, "provision_state").unwrap_or("enroll").into(),
            opt(doc, "target_provision_state"),
            opt(doc, "power_state"),
            i32::from(doc_bool(doc, "maintenance")).into(),
            opt(doc, "resource_class"),
            doc_str(doc, "conductor_group").unwrap_or("").into(),
            opt(doc, "shard"),
            opt(doc, "owner"),
            opt(doc, "lessee"),
            micros_of(doc, "created_at"),
            micros_of(doc, "updated_at"),
            micros_of(doc, "provision_updated_at"),
            body_of(doc).into(),
        ],
    )
    .await?;
    let row = query_one(
        &*tx,
        &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE uuid = ?"),
        vec![doc_str(doc, "uuid").unwrap_or("").into()],
    )
    .await?
    .ok_or_else(|| StorageError::Db(sea_orm::DbErr::Custom("inserted node vanished".into())))?;
    let node = row_to_node(&row)?;
    tx.commit().await?;
    Ok(node)
}

/// The node named by `ident`: its UUID, else its name.
pub async fn get_node<C: ConnectionTrait>(conn: &C, ident: &str) -> SResult<Option<NodeRow>> {
    let column = if looks_like_uuid(ident) {
        "uuid"
    } else {
        "name"
    };
    query_one(
        conn,
        &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE {column} = ?"),
        vec![ident.into()],
    )
    .await?
    .as_ref()
    .map(row_to_node)
    .transpose()
}

pub async fn get_node_by_id<C: ConnectionTrait>(conn: &C, id: i64) -> SResult<Option<NodeRow>> {
    query_one(
        conn,
        &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?"),
        vec![id.into()],
    )
    .await?
    .as_ref()
    .map(row_to_node)
    .transpose()
}

pub fn looks_like_uuid(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok() && text.len() == 36
}

/// How an update may land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard<'a> {
    /// Only while nobody holds the node's reservation (API-side updates).
    Unreserved,
    /// Only while `host` holds it (a task's updates).
    HeldBy(&'a str),
    /// Like `HeldBy`, and releases the reservation in the same write, so
    /// nobody sees the final state while the node is still locked.
    ReleasedBy(&'a str),
}

/// Writes `doc` over the node if its version is still `row.version` and the
/// guard holds. Returns the new row, or `None` when the write lost.
pub async fn update_node<C: ConnectionTrait>(
    conn: &C,
    row: &NodeRow,
    doc: &Doc,
    guard: Guard<'_>,
) -> SResult<Option<NodeRow>> {
    let (guard_sql, guard_value): (&str, Option<SqlValue>) = match guard {
        Guard::Unreserved => ("reservation IS NULL", None),
        Guard::HeldBy(host) | Guard::ReleasedBy(host) => ("reservation = ?", Some(host.into())),
    };
    let release = if matches!(guard, Guard::ReleasedBy(_)) {
        "reservation = NULL, "
    } else {
        ""
    };
    let mut values = vec![
        opt(doc, "name"),
        opt(doc, "instance_uuid"),
        doc_str(doc, "driver").unwrap_or("").into(),
        doc_str(doc, "provision_state").unwrap_or("enroll").into(),
        opt(doc, "target_provision_state"),
        opt(doc, "power_state"),
        i32::from(doc_bool(doc, "maintenance")).into(),
        opt(doc, "resource_class"),
        doc_str(doc, "conductor_group").unwrap_or("").into(),
        opt(doc, "shard"),
        opt(doc, "owner"),
        opt(doc, "lessee"),
        micros_of(doc, "updated_at"),
        micros_of(doc, "provision_updated_at"),
        body_of(doc).into(),
        row.id.into(),
        row.version.into(),
    ];
    if let Some(value) = guard_value {
        values.push(value);
    }
    let changed = exec(
        conn,
        &format!("UPDATE nodes SET {release}name = ?, instance_uuid = ?, driver = ?, provision_state = ?, target_provision_state = ?, power_state = ?, maintenance = ?, resource_class = ?, conductor_group = ?, shard = ?, owner = ?, lessee = ?, updated_at = ?, provision_updated_at = ?, body = ?, version = version + 1 WHERE id = ? AND version = ? AND {guard_sql}"),
        values,
    )
    .await?;
    if changed == 0 {
        return Ok(None);
    }
    let mut doc = doc.clone();
    doc.insert(
        "reservation".into(),
        row.reservation
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    Ok(Some(NodeRow {
        id: row.id,
        version: row.version + 1,
        reservation: row.reservation.clone(),
        doc,
    }))
}

/// Takes the node's reservation for `host`; false when someone holds it.
pub async fn reserve_node(db: &Db, id: i64, host: &str) -> SResult<bool> {
    let tx = db.begin_write().await?;
    let changed = exec(
        &*tx,
        "UPDATE nodes SET reservation = ?, version = version + 1 WHERE id = ? AND reservation IS NULL",
        vec![host.into(), id.into()],
    )
    .await?;
    tx.commit().await?;
    Ok(changed == 1)
}

/// Releases `host`'s reservation of the node.
pub async fn release_node(db: &Db, id: i64, host: &str) -> SResult<()> {
    let tx = db.begin_write().await?;
    exec(
        &*tx,
        "UPDATE nodes SET reservation = NULL, version = version + 1 WHERE id = ? AND reservation = ?",
        vec![id.into(), host.into()],
    )
    .await?;
    tx.commit().await
}

/// The nodes `host` had reserved (read at start, before clearing).
pub async fn nodes_reserved_by<C: ConnectionTrait>(conn: &C, host: &str) -> SResult<Vec<NodeRow>> {
    let rows = query_all(
        conn,
        &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE reservation = ? ORDER BY id"),
        vec![host.into()],
    )
    .await?;
    Ok(readable_rows(&rows, row_to_node))
}

/// Deletes a node with its ports and history, only if `host` holds it.
pub async fn delete_node(db: &Db, id: i64, host: &str) -> SResult<bool> {
    let tx = db.begin_write().await?;
    let deleted = exec(
        &*tx,
        "DELETE FROM nodes WHERE id = ? AND reservation = ?",
        vec![id.into(), host.into()],
    )
    .await?;
    if deleted == 1 {
        exec(&*tx, "DELETE FROM ports WHERE node_id = ?", vec![id.into()]).await?;
        exec(
            &*tx,
            "DELETE FROM node_history WHERE node_id = ?",
            vec![id.into()],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(deleted == 1)
}

/// Equality filters of the node list, by column.
#[derive(Debug, Default, Clone)]
pub struct NodeFilter {
    pub equals: Vec<(&'static str, Option<String>)>,
    pub maintenance: Option<bool>,
    /// `associated`: instance_uuid set (true) or not (false).
    pub associated: Option<bool>,
    /// Nodes whose owner or lessee is this project.
    pub project: Option<String>,
    /// `provision_state` in this set.
    pub provision_states: Option<Vec<String>>,
    /// `shard` in this set.
    pub shards: Option<Vec<String>>,
    /// `sharded`: shard set (true) or not (false).
    pub sharded: Option<bool>,
}

/// Columns the list may sort on.
pub const NODE_SORT_COLUMNS: &[&str] = &[
    "id",
    "uuid",
    "name",
    "instance_uuid",
    "driver",
    "provision_state",
    "target_provision_state",
    "power_state",
    "maintenance",
    "resource_class",
    "conductor_group",
    "shard",
    "owner",
    "lessee",
    "created_at",
    "updated_at",
    "provision_updated_at",
];

/// One page of nodes. `marker` is the id of the last node of the previous
/// page; pages follow `(sort_key, id)`.
pub async fn list_nodes<C: ConnectionTrait>(
    conn: &C,
    filter: &NodeFilter,
    sort_key: &str,
    descending: bool,
    marker: Option<&NodeRow>,
    limit: Option<u64>,
) -> SResult<Vec<NodeRow>> {
    let mut clauses: Vec<String> = Vec::new();
    let mut values: Vec<SqlValue> = Vec::new();
    for (column, value) in &filter.equals {
        match value {
            Some(value) => {
                clauses.push(format!("{column} = ?"));
                values.push(value.clone().into());
            }
            None => clauses.push(format!("{column} IS NULL")),
        }
    }
    if let Some(maintenance) = filter.maintenance {
        clauses.push("maintenance = ?".into());
        values.push(i32::from(maintenance).into());
    }
    match filter.associated {
        Some(true) => clauses.push("instance_uuid IS NOT NULL".into()),
        Some(false) => clauses.push("instance_uuid IS NULL".into()),
        None => {}
    }
    match filter.sharded {
        Some(true) => clauses.push("shard IS NOT NULL".into()),
        Some(false) => clauses.push("shard IS NULL".into()),
        None => {}
    }
    if let Some(project) = &filter.project {
        clauses.push("(owner = ? OR lessee = ?)".into());
        values.push(project.clone().into());
        values.push(project.clone().into());
    }
    for (column, set) in [
        ("provision_state", &filter.provision_states),
        ("shard", &filter.shards),
    ] {
        if let Some(set) = set {
            if set.is_empty() {
                clauses.push("1 = 0".into());
            } else {
                clauses.push(format!(
                    "{column} IN ({})",
                    ferrite_db::placeholders(set.len())
                ));
                values.extend(set.iter().map(|s| SqlValue::from(s.clone())));
            }
        }
    }
    let sort_key = if NODE_SORT_COLUMNS.contains(&sort_key) {
        sort_key
    } else {
        "id"
    };
    let (cmp, dir) = if descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(marker) = marker {
        if sort_key == "id" {
            clauses.push(format!("id {cmp} ?"));
            values.push(marker.id.into());
        } else {
            let marker_value = node_sort_value(marker, sort_key);
            match marker_value {
                SortValue::Null => {
                    // NULLs sort first ascending on every backend we
                    // normalise below; past them come the non-NULLs.
                    if descending {
                        clauses.push(format!("({sort_key} IS NULL AND id < ?)"));
                        values.push(marker.id.into());
                    } else {
                        clauses.push(format!(
                            "({sort_key} IS NOT NULL OR ({sort_key} IS NULL AND id > ?))"
                        ));
                        values.push(marker.id.into());
                    }
                }
                value => {
                    let v = value.into_sql();
                    if descending {
                        clauses.push(format!(
                            "({sort_key} < ? OR ({sort_key} = ? AND id < ?) OR {sort_key} IS NULL)"
                        ));
                    } else {
                        clauses.push(format!("({sort_key} > ? OR ({sort_key} = ? AND id > ?))"));
                    }
                    values.push(v.clone());
                    values.push(v);
                    values.push(marker.id.into());
                }
            }
        }
    }
    let mut sql = format!("SELECT {NODE_COLUMNS} FROM nodes");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    if sort_key == "id" {
        sql.push_str(&format!(" ORDER BY id {dir}"));
    } else {
        // NULLs first when ascending, last when descending, everywhere.
        let nulls = if descending { "ASC" } else { "DESC" };
        sql.push_str(&format!(
            " ORDER BY CASE WHEN {sort_key} IS NULL THEN 1 ELSE 0 END {nulls}, {sort_key} {dir}, id {dir}"
        ));
    }
    if let Some(limit) = limit {
        sql.push_str(&format!(
            " LIMIT {}",
            limit.saturating_add(UNREADABLE_SLACK)
        ));
    }
    let mut nodes = readable_rows(&query_all(conn, &sql, values).await?, row_to_node);
    if let Some(limit) = limit {
        nodes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(nodes)
}

enum SortValue {
    Null,
    Text(String),
    Int(i64),
}

impl SortValue {
    fn into_sql(self) -> SqlValue {
        match self {
            SortValue::Null => SqlValue::String(None),
            SortValue::Text(t) => t.into(),
            SortValue::Int(i) => i.into(),
        }
    }
}

fn node_sort_value(row: &NodeRow, column: &str) -> SortValue {
    match column {
        "maintenance" => SortValue::Int(i64::from(doc_bool(&row.doc, "maintenance"))),
        "created_at" | "updated_at" | "provision_updated_at" => {
            match row.str_field(column).and_then(iso_micros) {
                Some(m) => SortValue::Int(m),
                None => SortValue::Null,
            }
        }
        "conductor_group" | "driver" | "provision_state" => {
            SortValue::Text(row.str_field(column).unwrap_or("").to_string())
        }
        _ => match row.str_field(column) {
            Some(t) => SortValue::Text(t.to_string()),
            None => SortValue::Null,
        },
    }
}

// ---------------------------------------------------------------- ports

#[derive(Debug, Clone)]
pub struct PortRow {
    pub id: i64,
    pub version: i64,
    pub node_id: i64,
    pub doc: Doc,
}

impl PortRow {
    pub fn uuid(&self) -> &str {
        doc_str(&self.doc, "uuid").unwrap_or("")
    }
}

const PORT_COLUMNS: &str = "id, uuid, version, node_id, body";

fn row_to_port(row: &QueryResult) -> Result<PortRow, StorageError> {
    let doc: Doc =
        serde_json::from_str(&get_string(row, "body")).map_err(|e| StorageError::Unreadable {
            what: format!("port {}", get_string(row, "uuid")),
            detail: e.to_string(),
        })?;
    Ok(PortRow {
        id: get_i64(row, "id"),
        version: get_i64(row, "version"),
        node_id: get_i64(row, "node_id"),
        doc,
    })
}

/// Inserts a port of node `node_id`; a duplicate address or uuid is a
/// conflict. The node must still exist when the port lands.
pub async fn insert_port(db: &Db, node_id: i64, doc: &Doc) -> SResult<Option<PortRow>> {
    let tx = db.begin_write().await?;
    let node = query_one(
        &*tx,
        "SELECT id FROM nodes WHERE id = ?",
        vec![node_id.into()],
    )
    .await?;
    if node.is_none() {
        return Ok(None);
    }
    exec(
        &*tx,
        "INSERT INTO ports (uuid, address, node_id, name, created_at, updated_at, version, body) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
        vec![
            opt(doc, "uuid"),
            doc_str(doc, "address").unwrap_or("").into(),
            node_id.into(),
            opt(doc, "name"),
            micros_of(doc, "created_at"),
            micros_of(doc, "updated_at"),
            Value::Object(doc.clone()).to_string().into(),
        ],
    )
    .await?;
    let row = query_one(
        &*tx,
        &format!("SELECT {PORT_COLUMNS} FROM ports WHERE uuid = ?"),
        vec![opt(doc, "uuid")],
    )
    .await?
    .ok_or_else(|| StorageError::Db(sea_orm::DbErr::Custom("inserted port vanished".into())))?;
    let port = row_to_port(&row)?;
    tx.commit().await?;
    Ok(Some(port))
}

pub async fn get_port<C: ConnectionTrait>(conn: &C, ident: &str) -> SResult<Option<PortRow>> {
    let column = if looks_like_uuid(ident) {
        "uuid"
    } else {
        "name"
    };
    query_one(
        conn,
        &format!("SELECT {PORT_COLUMNS} FROM ports WHERE {column} = ?"),
        vec![ident.into()],
    )
    .await?
    .as_ref()
    .map(row_to_port)
    .transpose()
}

pub async fn get_port_by_address<C: ConnectionTrait>(
    conn: &C,
    address: &str,
) -> SResult<Option<PortRow>> {
    query_one(
        conn,
        &format!("SELECT {PORT_COLUMNS} FROM ports WHERE address = ?"),
        vec![address.into()],
    )
    .await?
    .as_ref()
    .map(row_to_port)
    .transpose()
}

/// Ports, optionally of one node and/or one address, after `marker` (an id).
pub async fn list_ports<C: ConnectionTrait>(
    conn: &C,
    node_id: Option<i64>,
    address: Option<&str>,
    marker: Option<i64>,
    limit: Option<u64>,
    descending: bool,
) -> SResult<Vec<PortRow>> {
    let mut clauses = Vec::new();
    let mut values: Vec<SqlValue> = Vec::new();
    if let Some(node_id) = node_id {
        clauses.push("node_id = ?");
        values.push(node_id.into());
    }
    if let Some(address) = address {
        clauses.push("address = ?");
        values.push(address.into());
    }
    if let Some(marker) = marker {
        clauses.push(if descending { "id < ?" } else { "id > ?" });
        values.push(marker.into());
    }
    let mut sql = format!("SELECT {PORT_COLUMNS} FROM ports");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(if descending {
        " ORDER BY id DESC"
    } else {
        " ORDER BY id ASC"
    });
    if let Some(limit) = limit {
        sql.push_str(&format!(
            " LIMIT {}",
            limit.saturating_add(UNREADABLE_SLACK)
        ));
    }
    let mut ports = readable_rows(&query_all(conn, &sql, values).await?, row_to_port);
    if let Some(limit) = limit {
        ports.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(ports)
}

/// Compare-and-swap update of a port; `None` when it lost.
pub async fn update_port<C: ConnectionTrait>(
    conn: &C,
    row: &PortRow,
    node_id: i64,
    doc: &Doc,
) -> SResult<Option<PortRow>> {
    let changed = exec(
        conn,
        "UPDATE ports SET address = ?, node_id = ?, name = ?, updated_at = ?, body = ?, version = version + 1 WHERE id = ? AND version = ?",
        vec![
            doc_str(doc, "address").unwrap_or("").into(),
            node_id.into(),
            opt(doc, "name"),
            micros_of(doc, "updated_at"),
            Value::Object(doc.clone()).to_string().into(),
            row.id.into(),
            row.version.into(),
        ],
    )
    .await?;
    Ok((changed == 1).then(|| PortRow {
        id: row.id,
        version: row.version + 1,
        node_id,
        doc: doc.clone(),
    }))
}

pub async fn delete_port<C: ConnectionTrait>(conn: &C, id: i64) -> SResult<bool> {
    Ok(exec(conn, "DELETE FROM ports WHERE id = ?", vec![id.into()]).await? == 1)
}

// ----------------------------------------------------------- conductors

#[derive(Debug, Clone)]
pub struct ConductorRow {
    pub hostname: String,
    pub conductor_group: String,
    pub drivers: Vec<String>,
    pub online: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Registers (or re-registers) this conductor and marks it online.
pub async fn register_conductor(
    db: &Db,
    hostname: &str,
    group: &str,
    drivers: &[String],
) -> SResult<()> {
    let now = now_micros();
    let drivers = Value::from(drivers.to_vec()).to_string();
    let tx = db.begin_write().await?;
    let updated = exec(
        &*tx,
        "UPDATE conductors SET conductor_group = ?, drivers = ?, online = 1, updated_at = ? WHERE hostname = ?",
        vec![group.into(), drivers.clone().into(), now.into(), hostname.into()],
    )
    .await?;
    if updated == 0 {
        exec(
            &*tx,
            "INSERT INTO conductors (hostname, conductor_group, drivers, online, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?)",
            vec![hostname.into(), group.into(), drivers.into(), now.into(), now.into()],
        )
        .await?;
    }
    tx.commit().await
}

pub async fn heartbeat_conductor(db: &Db, hostname: &str) -> SResult<()> {
    let tx = db.begin_write().await?;
    exec(
        &*tx,
        "UPDATE conductors SET updated_at = ?, online = 1 WHERE hostname = ?",
        vec![now_micros().into(), hostname.into()],
    )
    .await?;
    tx.commit().await
}

pub async fn unregister_conductor(db: &Db, hostname: &str) -> SResult<()> {
    let tx = db.begin_write().await?;
    exec(
        &*tx,
        "UPDATE conductors SET online = 0 WHERE hostname = ?",
        vec![hostname.into()],
    )
    .await?;
    tx.commit().await
}

pub async fn list_conductors<C: ConnectionTrait>(conn: &C) -> SResult<Vec<ConductorRow>> {
    Ok(query_all(
        conn,
        "SELECT hostname, conductor_group, drivers, online, created_at, updated_at FROM conductors ORDER BY hostname",
        vec![],
    )
    .await?
    .iter()
    .map(|row| ConductorRow {
        hostname: get_string(row, "hostname"),
        conductor_group: get_string(row, "conductor_group"),
        drivers: serde_json::from_str(&get_string(row, "drivers")).unwrap_or_default(),
        online: get_i64(row, "online") != 0,
        created_at: get_i64(row, "created_at"),
        updated_at: get_i64(row, "updated_at"),
    })
    .collect())
}

// --------------------------------------------------------- node history

#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub uuid: String,
    pub conductor: Option<String>,
    pub event: String,
    pub severity: String,
    pub event_type: String,
    pub user: Option<String>,
    pub created_at: i64,
}

pub async fn add_history<C: ConnectionTrait>(
    conn: &C,
    node_id: i64,
    entry: &HistoryRow,
) -> SResult<()> {
    exec(
        conn,
        "INSERT INTO node_history (uuid, node_id, conductor, event, severity, event_type, user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            entry.uuid.clone().into(),
            node_id.into(),
            entry.conductor.clone().into(),
            entry.event.clone().into(),
            entry.severity.clone().into(),
            entry.event_type.clone().into(),
            entry.user.clone().into(),
            entry.created_at.into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn list_history<C: ConnectionTrait>(conn: &C, node_id: i64) -> SResult<Vec<HistoryRow>> {
    Ok(query_all(
        conn,
        "SELECT uuid, conductor, event, severity, event_type, user_id, created_at FROM node_history WHERE node_id = ? ORDER BY id",
        vec![node_id.into()],
    )
    .await?
    .iter()
    .map(|row| HistoryRow {
        uuid: get_string(row, "uuid"),
        conductor: get_opt_string(row, "conductor"),
        event: get_string(row, "event"),
        severity: get_string(row, "severity"),
        event_type: get_string(row, "event_type"),
        user: get_opt_string(row, "user_id"),
        created_at: get_i64(row, "created_at"),
    })
    .collect())
}
