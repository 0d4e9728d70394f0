//! Storage: the only module of the compute service that speaks SQL.
//!
//! Tables: `flavors` + `flavor_extra_specs`, `images`, `key_pairs`,
//! `instances` and `build_requests`. A server row keeps the columns the API
//! filters on plus JSON documents for the flavor and image it was booted
//! with (Nova keeps those in the instance too). `instances.version` is
//! bumped by every update, and updates are compare-and-swap on it, so an
//! API action and a build worker cannot both move a server from the same
//! state. Deleted servers stay as rows with `deleted = 1`.

use std::collections::BTreeMap;

use ferrite_db::{
    exec, get_i64, get_opt_i64, get_opt_string, get_string, insert_or_ignore, query_all, query_one,
    readable_rows, Db, SResult, Schema,
};
use sea_orm::{ConnectionTrait, QueryResult, Value as SqlValue};

pub use ferrite_db::{is_conflict, now_micros, StorageError};

use crate::model::{Fault, Flavor, Image, Keypair, RequestedNetwork, Server};

const SCHEMA: Schema = Schema {
    version_table: "compute_schema_version",
    migrations: MIGRATIONS,
};

const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE flavors (id {pk}, flavorid {str} NOT NULL, name {str} NOT NULL, memory_mb BIGINT NOT NULL, vcpus BIGINT NOT NULL, root_gb BIGINT NOT NULL, ephemeral_gb BIGINT NOT NULL, swap BIGINT NOT NULL, rxtx_factor {float} NOT NULL, is_public INTEGER NOT NULL, disabled INTEGER NOT NULL, description {text} NULL, created_at BIGINT NOT NULL, updated_at BIGINT NULL, CONSTRAINT uniq_flavors0flavorid UNIQUE (flavorid), CONSTRAINT uniq_flavors0name UNIQUE (name))",
    "CREATE TABLE flavor_extra_specs (id {pk}, flavor_id BIGINT NOT NULL, spec_key {str} NOT NULL, spec_value {text} NOT NULL, CONSTRAINT uniq_flavor_extra_specs0flavor_id0key UNIQUE (flavor_id, spec_key))",
    "CREATE TABLE images (id {pk}, uuid VARCHAR(36) NOT NULL, name {str} NULL, owner {str} NULL, visibility {str} NOT NULL, created_at BIGINT NOT NULL, body {text} NOT NULL, CONSTRAINT uniq_images0uuid UNIQUE (uuid))",
    "CREATE TABLE key_pairs (id {pk}, name {str} NOT NULL, user_id {str} NOT NULL, fingerprint {str} NOT NULL, public_key {text} NOT NULL, key_type {str} NOT NULL, created_at BIGINT NOT NULL, CONSTRAINT uniq_key_pairs0user_id0name UNIQUE (user_id, name))",
    "CREATE TABLE instances (id {pk}, uuid VARCHAR(36) NOT NULL, name {str} NOT NULL, project_id {str} NOT NULL, user_id {str} NOT NULL, vm_state {str} NOT NULL, task_state {str} NULL, power_state INTEGER NOT NULL, host {str} NULL, node {str} NULL, deleted INTEGER NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, version BIGINT NOT NULL, body {text} NOT NULL, CONSTRAINT uniq_instances0uuid UNIQUE (uuid))",
    "CREATE INDEX instances_project_id_idx ON instances (project_id, deleted)",
    "CREATE INDEX instances_vm_state_idx ON instances (vm_state)",
    "CREATE TABLE build_requests (id {pk}, instance_uuid VARCHAR(36) NOT NULL, created_at BIGINT NOT NULL, CONSTRAINT uniq_build_requests0instance_uuid UNIQUE (instance_uuid))",
]];

/// Connects and creates or migrates the compute schema.
pub async fn connect(url: &str, max_connections: u32) -> SResult<Db> {
    Db::connect(url, max_connections, &SCHEMA).await
}

fn corrupt(what: &str, err: serde_json::Error) -> StorageError {
    StorageError::Unreadable {
        what: what.to_string(),
        detail: err.to_string(),
    }
}

fn u64_of(row: &QueryResult, column: &str) -> u64 {
    u64::try_from(get_i64(row, column)).unwrap_or_default()
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------
// Flavors.

/// Why a flavor could not be created.
#[derive(Debug)]
pub enum FlavorInsert {
    Created,
    NameExists,
    IdExists,
}

pub async fn insert_flavor(db: &Db, flavor: &Flavor) -> SResult<FlavorInsert> {
    let tx = db.begin_write().await?;
    if query_one(
        &*tx,
        "SELECT id FROM flavors WHERE flavorid = ?",
        vec![flavor.id.clone().into()],
    )
    .await?
    .is_some()
    {
        return Ok(FlavorInsert::IdExists);
    }
    if query_one(
        &*tx,
        "SELECT id FROM flavors WHERE name = ?",
        vec![flavor.name.clone().into()],
    )
    .await?
    .is_some()
    {
        return Ok(FlavorInsert::NameExists);
    }
    let inserted = insert_or_ignore(
        &*tx,
        "flavors",
        &[
            "flavorid",
            "name",
            "memory_mb",
            "vcpus",
            "root_gb",
            "ephemeral_gb",
            "swap",
            "rxtx_factor",
            "is_public",
            "disabled",
            "description",
            "created_at",
        ],
        vec![
            flavor.id.clone().into(),
            flavor.name.clone().into(),
            to_i64(flavor.memory_mb).into(),
            to_i64(flavor.vcpus).into(),
            to_i64(flavor.root_gb).into(),
            to_i64(flavor.ephemeral_gb).into(),
            to_i64(flavor.swap).into(),
            flavor.rxtx_factor.into(),
            i32::from(flavor.is_public).into(),
            i32::from(flavor.disabled).into(),
            flavor.description.clone().into(),
            now_micros().into(),
        ],
    )
    .await?;
    if inserted == 0 {
        // A concurrent creator won; tell which key clashed.
        return Ok(FlavorInsert::NameExists);
    }
    tx.commit().await?;
    Ok(FlavorInsert::Created)
}

const FLAVOR_COLUMNS: &str = "id, flavorid, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap, rxtx_factor, is_public, disabled, description";

fn row_to_flavor(row: &QueryResult) -> (i64, Flavor) {
    (
        get_i64(row, "id"),
        Flavor {
            id: get_string(row, "flavorid"),
            name: get_string(row, "name"),
            memory_mb: u64_of(row, "memory_mb"),
            vcpus: u64_of(row, "vcpus"),
            root_gb: u64_of(row, "root_gb"),
            ephemeral_gb: u64_of(row, "ephemeral_gb"),
            swap: u64_of(row, "swap"),
            rxtx_factor: ferrite_db::get_f64(row, "rxtx_factor"),
            is_public: get_i64(row, "is_public") != 0,
            disabled: get_i64(row, "disabled") != 0,
            description: get_opt_string(row, "description"),
            extra_specs: BTreeMap::new(),
        },
    )
}

async fn load_specs<C: ConnectionTrait>(conn: &C, flavors: &mut [(i64, Flavor)]) -> SResult<()> {
    if flavors.is_empty() {
        return Ok(());
    }
    let ids: Vec<SqlValue> = flavors.iter().map(|(id, _)| (*id).into()).collect();
    let rows = query_all(
        conn,
        &format!(
            "SELECT flavor_id, spec_key, spec_value FROM flavor_extra_specs WHERE flavor_id IN ({})",
            ferrite_db::placeholders(ids.len())
        ),
        ids,
    )
    .await?;
    let mut by_id: BTreeMap<i64, BTreeMap<String, String>> = BTreeMap::new();
    for row in &rows {
        by_id
            .entry(get_i64(row, "flavor_id"))
            .or_default()
            .insert(get_string(row, "spec_key"), get_string(row, "spec_value"));
    }
    for (id, flavor) in flavors.iter_mut() {
        flavor.extra_specs = by_id.remove(id).unwrap_or_default();
    }
    Ok(())
}

pub async fn get_flavor(db: &Db, flavorid: &str) -> SResult<Option<Flavor>> {
    let row = query_one(
        db.conn(),
        &format!("SELECT {FLAVOR_COLUMNS} FROM flavors WHERE flavorid = ?"),
        vec![flavorid.into()],
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut flavors = vec![row_to_flavor(&row)];
    load_specs(db.conn(), &mut flavors).await?;
    Ok(flavors.pop().map(|(_, f)| f))
}

/// All flavors, ordered by `flavorid` (Nova's default sort key).
pub async fn list_flavors(db: &Db) -> SResult<Vec<Flavor>> {
    let rows = query_all(
        db.conn(),
        &format!("SELECT {FLAVOR_COLUMNS} FROM flavors ORDER BY flavorid"),
        vec![],
    )
    .await?;
    let mut flavors: Vec<(i64, Flavor)> = rows.iter().map(row_to_flavor).collect();
    load_specs(db.conn(), &mut flavors).await?;
    Ok(flavors.into_iter().map(|(_, f)| f).collect())
}

/// Deletes a flavor and its extra specs; false when there was none.
pub async fn delete_flavor(db: &Db, flavorid: &str) -> SResult<bool> {
    let tx = db.begin_write().await?;
    let Some(row) = query_one(
        &*tx,
        "SELECT id FROM flavors WHERE flavorid = ?",
        vec![flavorid.into()],
    )
    .await?
    else {
        return Ok(false);
    };
    let id = get_i64(&row, "id");
    exec(
        &*tx,
        "DELETE FROM flavor_extra_specs WHERE flavor_id = ?",
        vec![id.into()],
    )
    .await?;
    exec(&*tx, "DELETE FROM flavors WHERE id = ?", vec![id.into()]).await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn update_flavor_description(
    db: &Db,
    flavorid: &str,
    description: Option<&str>,
) -> SResult<bool> {
    let tx = db.begin_write().await?;
    let n = exec(
        &*tx,
        "UPDATE flavors SET description = ?, updated_at = ? WHERE flavorid = ?",
        vec![
            description.map(str::to_string).into(),
            now_micros().into(),
            flavorid.into(),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(n > 0)
}

/// Creates or replaces the given extra specs; false when no such flavor.
pub async fn set_extra_specs(
    db: &Db,
    flavorid: &str,
    specs: &BTreeMap<String, String>,
) -> SResult<bool> {
    let tx = db.begin_write().await?;
    let Some(row) = query_one(
        &*tx,
        "SELECT id FROM flavors WHERE flavorid = ?",
        vec![flavorid.into()],
    )
    .await?
    else {
        return Ok(false);
    };
    let id = get_i64(&row, "id");
    for (key, value) in specs {
        let updated = exec(
            &*tx,
            "UPDATE flavor_extra_specs SET spec_value = ? WHERE flavor_id = ? AND spec_key = ?",
            vec![value.clone().into(), id.into(), key.clone().into()],
        )
        .await?;
        if updated == 0 {
            exec(
                &*tx,
                "INSERT INTO flavor_extra_specs (flavor_id, spec_key, spec_value) VALUES (?, ?, ?)",
                vec![id.into(), key.clone().into(), value.clone().into()],
            )
            .await?;
        }
    }
    exec(
        &*tx,
        "UPDATE flavors SET updated_at = ? WHERE id = ?",
        vec![now_micros().into(), id.into()],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes one extra spec; false when the flavor or the key is missing.
pub async fn delete_extra_spec(db: &Db, flavorid: &str, key: &str) -> SResult<bool> {
    let tx = db.begin_write().await?;
    let n = exec(
        &*tx,
        "DELETE FROM flavor_extra_specs WHERE spec_key = ? AND flavor_id IN (SELECT id FROM flavors WHERE flavorid = ?)",
        vec![key.into(), flavorid.into()],
    )
    .await?;
    tx.commit().await?;
    Ok(n > 0)
}

// ---------------------------------------------------------------------------
// Images.

/// Inserts an image; false when the id is taken.
pub async fn insert_image(db: &Db, image: &Image) -> SResult<bool> {
    let body = serde_json::to_string(image).map_err(|e| corrupt("image", e))?;
    let tx = db.begin_write().await?;
    let n = insert_or_ignore(
        &*tx,
        "images",
        &["uuid", "name", "owner", "visibility", "created_at", "body"],
        vec![
            image.id.clone().into(),
            image.name.clone().into(),
            image.owner.clone().into(),
            image.visibility.clone().into(),
            image.created_at.into(),
            body.into(),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(n > 0)
}

fn row_to_image(row: &QueryResult) -> SResult<Image> {
    serde_json::from_str(&get_string(row, "body"))
        .map_err(|e| corrupt(&format!("image {}", get_string(row, "uuid")), e))
}

pub async fn get_image(db: &Db, id: &str) -> SResult<Option<Image>> {
    query_one(
        db.conn(),
        "SELECT uuid, body FROM images WHERE uuid = ?",
        vec![id.into()],
    )
    .await?
    .map(|row| row_to_image(&row))
    .transpose()
}

/// All images, oldest first.
pub async fn list_images(db: &Db) -> SResult<Vec<Image>> {
    let rows = query_all(
        db.conn(),
        "SELECT uuid, body FROM images ORDER BY created_at, id",
        vec![],
    )
    .await?;
    Ok(readable_rows(&rows, row_to_image))
}

pub async fn delete_image(db: &Db, id: &str) -> SResult<bool> {
    let tx = db.begin_write().await?;
    let n = exec(&*tx, "DELETE FROM images WHERE uuid = ?", vec![id.into()]).await?;
    tx.commit().await?;
    Ok(n > 0)
}

// ---------------------------------------------------------------------------
// Key pairs.

/// Inserts a key pair; false when the user already has one of that name.
pub async fn insert_keypair(db: &Db, keypair: &Keypair) -> SResult<bool> {
    let tx = db.begin_write().await?;
    let n = insert_or_ignore(
        &*tx,
        "key_pairs",
        &[
            "name",
            "user_id",
            "fingerprint",
            "public_key",
            "key_type",
            "created_at",
        ],
        vec![
            keypair.name.clone().into(),
            keypair.user_id.clone().into(),
            keypair.fingerprint.clone().into(),
            keypair.public_key.clone().into(),
            keypair.key_type.clone().into(),
            keypair.created_at.into(),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(n > 0)
}

fn row_to_keypair(row: &QueryResult) -> Keypair {
    Keypair {
        id: get_i64(row, "id"),
        name: get_string(row, "name"),
        user_id: get_string(row, "user_id"),
        public_key: get_string(row, "public_key"),
        fingerprint: get_string(row, "fingerprint"),
        key_type: get_string(row, "key_type"),
        created_at: get_i64(row, "created_at"),
    }
}

const KEYPAIR_COLUMNS: &str = "id, name, user_id, fingerprint, public_key, key_type, created_at";

pub async fn get_keypair(db: &Db, user_id: &str, name: &str) -> SResult<Option<Keypair>> {
    Ok(query_one(
        db.conn(),
        &format!("SELECT {KEYPAIR_COLUMNS} FROM key_pairs WHERE user_id = ? AND name = ?"),
        vec![user_id.into(), name.into()],
    )
    .await?
    .map(|row| row_to_keypair(&row)))
}

/// A user's key pairs ordered by name.
pub async fn list_keypairs(db: &Db, user_id: &str) -> SResult<Vec<Keypair>> {
    Ok(query_all(
        db.conn(),
        &format!("SELECT {KEYPAIR_COLUMNS} FROM key_pairs WHERE user_id = ? ORDER BY name"),
        vec![user_id.into()],
    )
    .await?
    .iter()
    .map(row_to_keypair)
    .collect())
}

pub async fn delete_keypair(db: &Db, user_id: &str, name: &str) -> SResult<bool> {
    let tx = db.begin_write().await?;
    let n = exec(
        &*tx,
        "DELETE FROM key_pairs WHERE user_id = ? AND name = ?",
        vec![user_id.into(), name.into()],
    )
    .await?;
    tx.commit().await?;
    Ok(n > 0)
}

// ---------------------------------------------------------------------------
// Servers and build requests.

/// The parts of a server kept only in the document.
#[derive(serde::Serialize, serde::Deserialize)]
struct ServerBody {
    flavor: Flavor,
    image: Image,
    key_name: Option<String>,
    key_data: Option<String>,
    user_data: Option<String>,
    metadata: BTreeMap<String, String>,
    networks: Vec<RequestedNetwork>,
    availability_zone: Option<String>,
    description: Option<String>,
    fault: Option<Fault>,
    launched_at: Option<i64>,
}

fn server_body(server: &Server) -> SResult<String> {
    serde_json::to_string(&ServerBody {
        flavor: server.flavor.clone(),
        image: server.image.clone(),
        key_name: server.key_name.clone(),
        key_data: server.key_data.clone(),
        user_data: server.user_data.clone(),
        metadata: server.metadata.clone(),
        networks: server.networks.clone(),
        availability_zone: server.availability_zone.clone(),
        description: server.description.clone(),
        fault: server.fault.clone(),
        launched_at: server.launched_at,
    })
    .map_err(|e| corrupt("server", e))
}

const SERVER_COLUMNS: &str = "uuid, name, project_id, user_id, vm_state, task_state, power_state, host, node, created_at, updated_at, version, body";

fn row_to_server(row: &QueryResult) -> SResult<Server> {
    let body: ServerBody = serde_json::from_str(&get_string(row, "body"))
        .map_err(|e| corrupt(&format!("server {}", get_string(row, "uuid")), e))?;
    Ok(Server {
        uuid: get_string(row, "uuid"),
        name: get_string(row, "name"),
        project_id: get_string(row, "project_id"),
        user_id: get_string(row, "user_id"),
        vm_state: get_string(row, "vm_state"),
        task_state: get_opt_string(row, "task_state"),
        power_state: i32::try_from(get_i64(row, "power_state")).unwrap_or_default(),
        host: get_opt_string(row, "host"),
        node: get_opt_string(row, "node"),
        flavor: body.flavor,
        image: body.image,
        key_name: body.key_name,
        key_data: body.key_data,
        user_data: body.user_data,
        metadata: body.metadata,
        networks: body.networks,
        availability_zone: body.availability_zone,
        description: body.description,
        fault: body.fault,
        launched_at: body.launched_at,
        created_at: get_i64(row, "created_at"),
        updated_at: get_i64(row, "updated_at"),
        version: get_opt_i64(row, "version").unwrap_or_default(),
    })
}

/// Inserts a new server together with its build request, in one
/// transaction: once this returns, the build survives a restart (as an
/// ERROR server if it was interrupted).
pub async fn insert_server(db: &Db, server: &Server) -> SResult<()> {
    let body = server_body(server)?;
    let tx = db.begin_write().await?;
    exec(
        &*tx,
        &format!("INSERT INTO instances ({SERVER_COLUMNS}, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"),
        vec![
            server.uuid.clone().into(),
            server.name.clone().into(),
            server.project_id.clone().into(),
            server.user_id.clone().into(),
            server.vm_state.clone().into(),
            server.task_state.clone().into(),
            server.power_state.into(),
            server.host.clone().into(),
            server.node.clone().into(),
            server.created_at.into(),
            server.updated_at.into(),
            server.version.into(),
            body.into(),
        ],
    )
    .await?;
    exec(
        &*tx,
        "INSERT INTO build_requests (instance_uuid, created_at) VALUES (?, ?)",
        vec![server.uuid.clone().into(), now_micros().into()],
    )
    .await?;
    tx.commit().await
}

/// A server that is not deleted.
pub async fn get_server(db: &Db, uuid: &str) -> SResult<Option<Server>> {
    query_one(
        db.conn(),
        &format!("SELECT {SERVER_COLUMNS} FROM instances WHERE uuid = ? AND deleted = 0"),
        vec![uuid.into()],
    )
    .await?
    .map(|row| row_to_server(&row))
    .transpose()
}

/// Servers not deleted, of one project or of all; newest first.
pub async fn list_servers(db: &Db, project_id: Option<&str>) -> SResult<Vec<Server>> {
    let (filter, values): (&str, Vec<SqlValue>) = match project_id {
        Some(project) => ("AND project_id = ?", vec![project.into()]),
        None => ("", vec![]),
    };
    let rows = query_all(
        db.conn(),
        &format!(
            "SELECT {SERVER_COLUMNS} FROM instances WHERE deleted = 0 {filter} ORDER BY created_at DESC, id DESC"
        ),
        values,
    )
    .await?;
    Ok(readable_rows(&rows, row_to_server))
}

/// Servers this host must look at after a restart: building ones and ones
/// with a task in flight.
pub async fn list_unfinished_servers(db: &Db, host: &str) -> SResult<Vec<Server>> {
    let rows = query_all(
        db.conn(),
        &format!(
            "SELECT {SERVER_COLUMNS} FROM instances WHERE deleted = 0 AND (vm_state = 'building' OR task_state IS NOT NULL) AND (host = ? OR host IS NULL) ORDER BY id"
        ),
        vec![host.into()],
    )
    .await?;
    Ok(readable_rows(&rows, row_to_server))
}

/// Writes `server` if nobody changed it since it was read (its `version`);
/// on success `server.version` is the new version. False: lost the race.
pub async fn update_server(db: &Db, server: &mut Server) -> SResult<bool> {
    let body = server_body(server)?;
    let now = now_micros();
    let deleted = i32::from(server.vm_state == crate::model::vm_state::DELETED);
    let tx = db.begin_write().await?;
    let n = exec(
        &*tx,
        "UPDATE instances SET name = ?, vm_state = ?, task_state = ?, power_state = ?, host = ?, node = ?, deleted = ?, updated_at = ?, body = ?, version = version + 1 WHERE uuid = ? AND version = ?",
        vec![
            server.name.clone().into(),
            server.vm_state.clone().into(),
            server.task_state.clone().into(),
            server.power_state.into(),
            server.host.clone().into(),
            server.node.clone().into(),
            deleted.into(),
            now.into(),
            body.into(),
            server.uuid.clone().into(),
            server.version.into(),
        ],
    )
    .await?;
    if n == 1 && deleted == 1 {
        exec(
            &*tx,
            "DELETE FROM build_requests WHERE instance_uuid = ?",
            vec![server.uuid.clone().into()],
        )
        .await?;
    }
    tx.commit().await?;
    if n == 1 {
        server.version += 1;
        server.updated_at = now;
    }
    Ok(n == 1)
}

/// The build of this server is over (it is ACTIVE or ERROR).
pub async fn delete_build_request(db: &Db, uuid: &str) -> SResult<()> {
    let tx = db.begin_write().await?;
    exec(
        &*tx,
        "DELETE FROM build_requests WHERE instance_uuid = ?",
        vec![uuid.into()],
    )
    .await?;
    tx.commit().await
}

/// Instance uuids with a build request, oldest first.
pub async fn list_build_requests(db: &Db) -> SResult<Vec<String>> {
    Ok(query_all(
        db.conn(),
        "SELECT instance_uuid FROM build_requests ORDER BY id",
        vec![],
    )
    .await?
    .iter()
    .map(|row| get_string(row, "instance_uuid"))
    .collect())
}
