//! Storage: the only module of Placement that speaks SQL.
//!
//! Placement's schema and queries over the shared `ferrite-db` layer. Every
//! change to a provider's inventories, traits, aggregates or allocations
//! bumps its generation with a compare-and-swap (`UPDATE … WHERE generation
//! = ?`) inside the same transaction, so a writer that lost a race rolls back
//! instead of overwriting. Every write transaction also bumps the write
//! epoch just before it commits, which tells cached snapshots to refresh.

pub mod allocations;
pub mod providers;
pub mod resource_classes;
pub mod snapshot;
pub mod traits;

pub use ferrite_db::{
    exec, get_f64, get_i64, get_opt_i64, get_opt_string, get_string, insert_or_ignore,
    insert_returning_id, is_conflict, is_unique_violation, now_micros, placeholders, query_all,
    query_one, sum_int, Db, SResult, Schema, StorageError, WriteTx,
};

/// Connects, creates or migrates Placement's schema, and synchronises the
/// standard resource classes and traits.
pub async fn connect(url: &str, max_connections: u32) -> SResult<Db> {
    let db = Db::connect(url, max_connections, &SCHEMA)
        .await?
        .with_before_commit("UPDATE placement_epoch SET value = value + 1 WHERE id = 1");
    resource_classes::sync_standard(&db).await?;
    traits::sync_standard(&db).await?;
    Ok(db)
}

const SCHEMA: Schema = Schema {
    version_table: "ferrite_schema_version",
    migrations: MIGRATIONS,
};

/// The schema, one list of statements per version. Never edit a released
/// version; append a new one.
const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE resource_classes (id BIGINT PRIMARY KEY, name {str} NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT, CONSTRAINT uniq_resource_classes0name UNIQUE (name))",
    "CREATE TABLE traits (id {pk}, name {str} NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT, CONSTRAINT uniq_traits0name UNIQUE (name))",
    "CREATE TABLE resource_providers (id {pk}, uuid VARCHAR(36) NOT NULL, name VARCHAR(200) NOT NULL, generation BIGINT NOT NULL, parent_provider_id BIGINT NULL, root_provider_id BIGINT NULL, created_at BIGINT NOT NULL, updated_at BIGINT, CONSTRAINT uniq_resource_providers0uuid UNIQUE (uuid), CONSTRAINT uniq_resource_providers0name UNIQUE (name))",
    "CREATE INDEX resource_providers_root_provider_id_idx ON resource_providers (root_provider_id)",
    "CREATE INDEX resource_providers_parent_provider_id_idx ON resource_providers (parent_provider_id)",
    "CREATE TABLE inventories (id {pk}, resource_provider_id BIGINT NOT NULL, resource_class_id BIGINT NOT NULL, total BIGINT NOT NULL, reserved BIGINT NOT NULL, min_unit BIGINT NOT NULL, max_unit BIGINT NOT NULL, step_size BIGINT NOT NULL, allocation_ratio {float} NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT, CONSTRAINT uniq_inventories0resource_provider_resource_class UNIQUE (resource_provider_id, resource_class_id))",
    "CREATE INDEX inventories_resource_class_id_idx ON inventories (resource_class_id)",
    "CREATE TABLE resource_provider_traits (resource_provider_id BIGINT NOT NULL, trait_id BIGINT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (resource_provider_id, trait_id))",
    "CREATE INDEX resource_provider_traits_trait_id_idx ON resource_provider_traits (trait_id)",
    "CREATE TABLE placement_aggregates (id {pk}, uuid VARCHAR(36) NOT NULL, CONSTRAINT uniq_placement_aggregates0uuid UNIQUE (uuid))",
    "CREATE TABLE resource_provider_aggregates (resource_provider_id BIGINT NOT NULL, aggregate_id BIGINT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (resource_provider_id, aggregate_id))",
    "CREATE INDEX resource_provider_aggregates_aggregate_id_idx ON resource_provider_aggregates (aggregate_id)",
    "CREATE TABLE consumer_types (id {pk}, name {str} NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT, CONSTRAINT uniq_consumer_types0name UNIQUE (name))",
    "CREATE TABLE consumers (id {pk}, uuid VARCHAR(36) NOT NULL, project_id {str} NOT NULL, user_id {str} NOT NULL, generation BIGINT NOT NULL, consumer_type_id BIGINT NULL, created_at BIGINT NOT NULL, updated_at BIGINT, CONSTRAINT uniq_consumers0uuid UNIQUE (uuid))",
    "CREATE INDEX consumers_project_user_idx ON consumers (project_id, user_id)",
    "CREATE TABLE allocations (id {pk}, resource_provider_id BIGINT NOT NULL, consumer_id VARCHAR(36) NOT NULL, resource_class_id BIGINT NOT NULL, used BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT)",
    "CREATE INDEX allocations_resource_provider_class_used_idx ON allocations (resource_provider_id, resource_class_id, used)",
    "CREATE INDEX allocations_consumer_id_idx ON allocations (consumer_id)",
    "CREATE INDEX allocations_resource_class_id_idx ON allocations (resource_class_id)",
], &[
    "CREATE TABLE placement_epoch (id BIGINT PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO placement_epoch (id, value) VALUES (1, 0)",
], &[
    // Incremental snapshot refresh: recently changed and deleted providers.
    "CREATE INDEX resource_providers_updated_at_idx ON resource_providers (updated_at)",
    "CREATE INDEX resource_providers_created_at_idx ON resource_providers (created_at)",
    "CREATE TABLE placement_deleted_providers (id BIGINT NOT NULL, deleted_at BIGINT NOT NULL)",
    "CREATE INDEX placement_deleted_providers_deleted_at_idx ON placement_deleted_providers (deleted_at)",
]];
