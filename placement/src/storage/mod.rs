//! Storage: the only module that speaks SQL.
//!
//! One schema for SQLite, PostgreSQL and MySQL/MariaDB, created or migrated
//! at start. Statements are written once with `?` placeholders and rewritten
//! for PostgreSQL. Writes run in transactions; every change to a provider's
//! inventories, traits, aggregates or allocations bumps its generation with a
//! compare-and-swap (`UPDATE … WHERE generation = ?`) inside the same
//! transaction, so a writer that lost a race rolls back instead of
//! overwriting. On SQLite, writers of this process are serialised by a mutex
//! (SQLite allows one writer anyway; this avoids `SQLITE_BUSY` upgrades).

pub mod allocations;
pub mod providers;
pub mod resource_classes;
pub mod snapshot;
pub mod traits;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, QueryResult, Statement, TransactionTrait, Value,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("unsupported database url {0}")]
    UnsupportedUrl(String),
}

pub type SResult<T> = Result<T, StorageError>;

/// True when a database error means "someone else changed this concurrently":
/// unique violations, deadlocks, serialisation failures, SQLite busy.
pub fn is_conflict(err: &StorageError) -> bool {
    let StorageError::Db(db) = err else {
        return false;
    };
    if matches!(
        db.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) {
        return true;
    }
    let text = db.to_string().to_lowercase();
    text.contains("deadlock")
        || text.contains("could not serialize")
        || text.contains("database is locked")
        || text.contains("busy")
        || text.contains("lock wait timeout")
}

/// The connection pool plus what we need to know about the backend.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    backend: DbBackend,
    write_lock: Arc<Mutex<()>>,
}

/// A write transaction. Dropping it without `commit` rolls back.
pub struct WriteTx {
    txn: DatabaseTransaction,
    _guard: Option<OwnedMutexGuard<()>>,
    /// Bump the write epoch at commit (everything but schema set-up).
    bump_epoch: bool,
}

impl std::ops::Deref for WriteTx {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTx {
    pub async fn commit(self) -> SResult<()> {
        if self.bump_epoch {
            // Last statement before COMMIT: readers holding a cached
            // snapshot see the change. Taken last, so no lock cycle.
            exec(
                &self.txn,
                "UPDATE placement_epoch SET value = value + 1 WHERE id = 1",
                vec![],
            )
            .await?;
        }
        self.txn.commit().await?;
        Ok(())
    }
}

/// Microseconds since the Unix epoch, our timestamp representation.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Db {
    /// Connects and creates or migrates the schema, then synchronises the
    /// standard resource classes and traits.
    pub async fn connect(url: &str, max_connections: u32) -> SResult<Db> {
        let backend = if url.starts_with("sqlite:") {
            DbBackend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            DbBackend::Postgres
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            DbBackend::MySql
        } else {
            return Err(StorageError::UnsupportedUrl(url.to_string()));
        };
        let url = if let Some(rest) = url.strip_prefix("mariadb:") {
            format!("mysql:{rest}")
        } else {
            url.to_string()
        };
        let mut options = ConnectOptions::new(url);
        // Bounded pool: one connection per concurrently served request is
        // plenty on small machines; SQLite needs few because writers queue.
        options
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        let conn = Database::connect(options).await?;
        let db = Db {
            conn,
            backend,
            write_lock: Arc::new(Mutex::new(())),
        };
        if backend == DbBackend::Sqlite {
            db.exec("PRAGMA journal_mode=WAL", vec![]).await?;
            db.exec("PRAGMA synchronous=NORMAL", vec![]).await?;
        }
        db.migrate().await?;
        resource_classes::sync_standard(&db).await?;
        traits::sync_standard(&db).await?;
        Ok(db)
    }

    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    pub async fn begin_write(&self) -> SResult<WriteTx> {
        self.begin(true).await
    }

    async fn begin(&self, bump_epoch: bool) -> SResult<WriteTx> {
        let guard = if self.backend == DbBackend::Sqlite {
            Some(self.write_lock.clone().lock_owned().await)
        } else {
            None
        };
        let txn = self.conn.begin().await?;
        Ok(WriteTx {
            txn,
            _guard: guard,
            bump_epoch,
        })
    }

    async fn exec(&self, sql: &str, values: Vec<Value>) -> SResult<u64> {
        exec(&self.conn, sql, values).await
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// A write transaction that does not bump the epoch (schema set-up).
    pub(crate) async fn begin_setup(&self) -> SResult<WriteTx> {
        self.begin(false).await
    }

    async fn migrate(&self) -> SResult<()> {
        let tx = self.begin_setup().await?;
        exec(
            &*tx,
            "CREATE TABLE IF NOT EXISTS ferrite_schema_version (version BIGINT NOT NULL)",
            vec![],
        )
        .await?;
        let current = query_one(
            &*tx,
            "SELECT MAX(version) AS v FROM ferrite_schema_version",
            vec![],
        )
        .await?
        .and_then(|row| row.try_get::<Option<i64>>("", "v").ok().flatten())
        .unwrap_or(0);
        for (version, statements) in MIGRATIONS.iter().enumerate() {
            let version = version as i64 + 1;
            if version <= current {
                continue;
            }
            for statement in *statements {
                exec(&*tx, &self.ddl(statement), vec![]).await?;
            }
            exec(
                &*tx,
                "INSERT INTO ferrite_schema_version (version) VALUES (?)",
                vec![version.into()],
            )
            .await?;
        }
        tx.commit().await
    }

    /// Rewrites the portable DDL type markers for this backend.
    fn ddl(&self, statement: &str) -> String {
        let (pk, string, float, suffix) = match self.backend {
            DbBackend::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "REAL", ""),
            DbBackend::Postgres => (
                "BIGSERIAL PRIMARY KEY",
                "VARCHAR(255)",
                "DOUBLE PRECISION",
                "",
            ),
            DbBackend::MySql => (
                "BIGINT AUTO_INCREMENT PRIMARY KEY",
                "VARCHAR(255)",
                "DOUBLE",
                " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            ),
        };
        let mut out = statement
            .replace("{pk}", pk)
            .replace("{str}", string)
            .replace("{float}", float);
        if out.starts_with("CREATE TABLE") {
            out.push_str(suffix);
        }
        out
    }
}

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
]];

// ---------------------------------------------------------------------------
// Statement helpers, usable on the pool or inside a transaction.

fn statement<C: ConnectionTrait>(conn: &C, sql: &str, values: Vec<Value>) -> Statement {
    let backend = conn.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_string()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

pub async fn exec<C: ConnectionTrait>(conn: &C, sql: &str, values: Vec<Value>) -> SResult<u64> {
    Ok(conn
        .execute(statement(conn, sql, values))
        .await?
        .rows_affected())
}

pub async fn query_all<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> SResult<Vec<QueryResult>> {
    Ok(conn.query_all(statement(conn, sql, values)).await?)
}

pub async fn query_one<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> SResult<Option<QueryResult>> {
    Ok(conn.query_one(statement(conn, sql, values)).await?)
}

/// Inserts a row and returns its generated `id`.
pub async fn insert_returning_id<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> SResult<i64> {
    if conn.get_database_backend() == DbBackend::Postgres {
        let row = query_one(conn, &format!("{sql} RETURNING id"), values).await?;
        return Ok(row.map(|r| get_i64(&r, "id")).unwrap_or_default());
    }
    let result = conn.execute(statement(conn, sql, values)).await?;
    Ok(result.last_insert_id() as i64)
}

/// `?, ?, ?` for an IN list of `n` items.
pub fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// A SUM() that decodes as a 64-bit integer on every backend.
pub fn sum_int<C: ConnectionTrait>(conn: &C, expr: &str) -> String {
    match conn.get_database_backend() {
        DbBackend::Postgres => format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)"),
        DbBackend::MySql => format!("CAST(COALESCE(SUM({expr}), 0) AS SIGNED)"),
        DbBackend::Sqlite => format!("COALESCE(SUM({expr}), 0)"),
    }
}

pub fn get_i64(row: &QueryResult, column: &str) -> i64 {
    row.try_get::<i64>("", column)
        .or_else(|_| row.try_get::<i32>("", column).map(i64::from))
        .unwrap_or_default()
}

pub fn get_opt_i64(row: &QueryResult, column: &str) -> Option<i64> {
    row.try_get::<Option<i64>>("", column)
        .ok()
        .flatten()
        .or_else(|| {
            row.try_get::<Option<i32>>("", column)
                .ok()
                .flatten()
                .map(i64::from)
        })
}

pub fn get_f64(row: &QueryResult, column: &str) -> f64 {
    row.try_get::<f64>("", column)
        .or_else(|_| row.try_get::<f32>("", column).map(f64::from))
        .unwrap_or_default()
}

pub fn get_string(row: &QueryResult, column: &str) -> String {
    row.try_get::<String>("", column).unwrap_or_default()
}

pub fn get_opt_string(row: &QueryResult, column: &str) -> Option<String> {
    row.try_get::<Option<String>>("", column).ok().flatten()
}
