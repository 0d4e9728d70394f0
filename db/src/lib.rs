//! Ferrite's database layer, shared by every service: one connection pool
//! over SQLite, PostgreSQL or MySQL/MariaDB, portable migrations, write
//! transactions, and statement helpers.
//!
//! Statements are written once with `?` placeholders and rewritten for
//! PostgreSQL. On SQLite, the write transactions of a process are serialised
//! by a mutex (SQLite has one writer anyway; this avoids `SQLITE_BUSY` on
//! lock upgrades) and the database runs in WAL mode so readers never wait.
//! Each service owns its own tables; this crate knows none of them.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, IsolationLevel, QueryResult, Statement, TransactionTrait, Value,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("unsupported database url {0}")]
    UnsupportedUrl(String),
    /// A row whose stored document cannot be decoded (written by an older
    /// version, or changed behind the service's back). Lists and periodics
    /// skip such rows with a log line; reading that one row names it.
    #[error("the stored record of {what} cannot be read: {detail}")]
    Unreadable { what: String, detail: String },
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

/// True only for unique-constraint violations (a duplicate row), as opposed
/// to the other conflicts of [`is_conflict`] (deadlocks, busy databases),
/// which say nothing about duplicates.
pub fn is_unique_violation(err: &StorageError) -> bool {
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
    text.contains("unique constraint")
        || text.contains("duplicate entry")
        || text.contains("duplicate key")
}

/// The connection pool plus what we need to know about the backend.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    backend: DbBackend,
    write_lock: Arc<Mutex<()>>,
    before_commit: Option<&'static str>,
}

/// A service's schema: its version table and its migrations, one list of
/// statements per version (never edit a released one; append). DDL may use
/// `{pk}` (auto-increment primary key), `{str}` (indexed string),
/// `{float}` and `{text}` (an unindexed document of up to gigabytes:
/// LONGTEXT on MySQL, whose TEXT stops at 64 KiB); they are rewritten per
/// backend.
pub struct Schema {
    pub version_table: &'static str,
    pub migrations: &'static [&'static [&'static str]],
}

/// A write transaction. Dropping it without `commit` rolls back.
pub struct WriteTx {
    txn: DatabaseTransaction,
    _guard: Option<OwnedMutexGuard<()>>,
    /// A statement run just before COMMIT (e.g. a write-epoch bump).
    before_commit: Option<&'static str>,
}

impl std::ops::Deref for WriteTx {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTx {
    pub async fn commit(self) -> SResult<()> {
        if let Some(sql) = self.before_commit {
            // Last statement before COMMIT; taken last, so its lock cannot
            // be part of a lock cycle.
            exec(&self.txn, sql, vec![]).await?;
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
    /// Connects (SQLite in WAL mode) and creates or migrates `schema`.
    pub async fn connect(url: &str, max_connections: u32, schema: &Schema) -> SResult<Db> {
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
        } else if backend == DbBackend::Sqlite
            && !url.contains("mode=")
            && !url.contains(":memory:")
        {
            // A SQLite file is created on first start, as operators expect.
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}mode=rwc")
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
            before_commit: None,
        };
        if backend == DbBackend::Sqlite {
            db.exec("PRAGMA journal_mode=WAL", vec![]).await?;
            db.exec("PRAGMA synchronous=NORMAL", vec![]).await?;
        }
        db.migrate(schema).await?;
        Ok(db)
    }

    /// Runs `sql` at the end of every [`Db::begin_write`] transaction.
    pub fn with_before_commit(mut self, sql: &'static str) -> Db {
        self.before_commit = Some(sql);
        self
    }

    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    pub async fn begin_write(&self) -> SResult<WriteTx> {
        self.begin(self.before_commit).await
    }

    async fn begin(&self, before_commit: Option<&'static str>) -> SResult<WriteTx> {
        let guard = if self.backend == DbBackend::Sqlite {
            Some(self.write_lock.clone().lock_owned().await)
        } else {
            None
        };
        // MySQL/MariaDB default to REPEATABLE READ, whose gap locks make
        // unrelated concurrent writers deadlock. Our writes never rely on
        // repeatable reads (races are settled by compare-and-swap updates),
        // so READ COMMITTED, PostgreSQL's default, is used there too.
        let isolation = (self.backend == DbBackend::MySql).then_some(IsolationLevel::ReadCommitted);
        let txn = self.conn.begin_with_config(isolation, None).await?;
        Ok(WriteTx {
            txn,
            _guard: guard,
            before_commit,
        })
    }

    async fn exec(&self, sql: &str, values: Vec<Value>) -> SResult<u64> {
        exec(&self.conn, sql, values).await
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// A write transaction without the before-commit statement (schema
    /// set-up and seeding).
    pub async fn begin_setup(&self) -> SResult<WriteTx> {
        self.begin(None).await
    }

    async fn migrate(&self, schema: &Schema) -> SResult<()> {
        let tx = self.begin_setup().await?;
        let table = schema.version_table;
        exec(
            &*tx,
            &format!("CREATE TABLE IF NOT EXISTS {table} (version BIGINT NOT NULL)"),
            vec![],
        )
        .await?;
        let current = query_one(
            &*tx,
            &format!("SELECT MAX(version) AS v FROM {table}"),
            vec![],
        )
        .await?
        .and_then(|row| row.try_get::<Option<i64>>("", "v").ok().flatten())
        .unwrap_or(0);
        for (version, statements) in schema.migrations.iter().enumerate() {
            let version = version as i64 + 1;
            if version <= current {
                continue;
            }
            for statement in *statements {
                exec(&*tx, &self.ddl(statement), vec![]).await?;
            }
            exec(
                &*tx,
                &format!("INSERT INTO {table} (version) VALUES (?)"),
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
            .replace("{float}", float)
            .replace(
                "{text}",
                if self.backend == DbBackend::MySql {
                    "LONGTEXT"
                } else {
                    "TEXT"
                },
            );
        if out.starts_with("CREATE TABLE") {
            out.push_str(suffix);
        }
        out
    }
}

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

/// Inserts a row unless it would violate a unique constraint (another
/// writer got there first), in which case nothing happens. Waits for a
/// concurrent inserter of the same key instead of failing.
pub async fn insert_or_ignore<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    columns: &[&str],
    values: Vec<Value>,
) -> SResult<u64> {
    let columns_sql = columns.join(", ");
    let marks = placeholders(columns.len());
    let sql = match conn.get_database_backend() {
        DbBackend::MySql => format!("INSERT IGNORE INTO {table} ({columns_sql}) VALUES ({marks})"),
        DbBackend::Postgres | DbBackend::Sqlite => {
            format!("INSERT INTO {table} ({columns_sql}) VALUES ({marks}) ON CONFLICT DO NOTHING")
        }
    };
    exec(conn, &sql, values).await
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

/// Decodes the rows of a listing, skipping (with a log line) those whose
/// document cannot be read: one bad row never breaks a list, the recovery
/// at start or a periodic.
pub fn readable_rows<T>(rows: &[QueryResult], decode: fn(&QueryResult) -> SResult<T>) -> Vec<T> {
    rows.iter()
        .filter_map(|row| match decode(row) {
            Ok(item) => Some(item),
            Err(err) => {
                tracing::error!(error = %err, "skipping an unreadable row");
                None
            }
        })
        .collect()
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
