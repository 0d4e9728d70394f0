//! Test harness: a real conductor on an ephemeral port over a fresh
//! database — SQLite always, PostgreSQL and MariaDB when their URLs are in
//! the environment (`FERRITE_TEST_POSTGRES_URL`, `FERRITE_TEST_MYSQL_URL`).
#![allow(dead_code)]

use std::net::TcpListener;

use ferrite_baremetal_client::BaremetalClient;
use ferrite_conductor::Config;
use sea_orm::{ConnectionTrait, Database};
use tokio::sync::oneshot;

pub fn backends() -> Vec<&'static str> {
    let mut kinds = vec!["sqlite"];
    // Missing URLs skip those databases locally and fail under CI=true.
    let how = "scripts/ci-databases starts PostgreSQL and MariaDB; .ci/run sets the URLs";
    if ferrite_test_support::env_var("FERRITE_TEST_POSTGRES_URL", how).is_some() {
        kinds.push("postgres");
    }
    if ferrite_test_support::env_var("FERRITE_TEST_MYSQL_URL", how).is_some() {
        kinds.push("mysql");
    }
    kinds
}

pub struct TestDb {
    pub url: String,
    admin_url: Option<String>,
    name: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn create(kind: &str) -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        if kind == "sqlite" {
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("conductor.db").display()
            );
            return TestDb {
                url,
                admin_url: None,
                name: None,
                _dir: dir,
            };
        }
        let var = if kind == "postgres" {
            "FERRITE_TEST_POSTGRES_URL"
        } else {
            "FERRITE_TEST_MYSQL_URL"
        };
        let admin_url = std::env::var(var).expect("database url");
        let name = format!("ferrite_c_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.expect("connect admin");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        drop(admin);
        let mut url = url::Url::parse(&admin_url).expect("url");
        url.set_path(&format!("/{name}"));
        TestDb {
            url: url.to_string(),
            admin_url: Some(admin_url),
            name: Some(name),
            _dir: dir,
        }
    }

    pub async fn drop_database(&self) {
        if let (Some(admin_url), Some(name)) = (&self.admin_url, &self.name) {
            if let Ok(admin) = Database::connect(admin_url).await {
                let _ = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                    .await;
            }
        }
    }
}

pub struct TestServer {
    pub base: String,
    pub db: Option<TestDb>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Test defaults: a fixed host name and no lock retries (tests that want
/// retries set them).
pub fn test_config(url: &str) -> Config {
    let mut config = Config::for_database(url);
    config.host = "test-conductor".into();
    config.node_locked_retry_attempts = 0;
    config
}

impl TestServer {
    pub async fn start(kind: &str) -> TestServer {
        Self::start_with(kind, |_| {}).await
    }

    pub async fn start_with(kind: &str, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let db = TestDb::create(kind).await;
        Self::start_on(db, adjust).await
    }

    pub async fn start_on(db: TestDb, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config(&db.url);
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = ferrite_conductor::prepare(config).await.expect("prepare");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = ferrite_conductor::serve(listener, state, async {
                let _ = stopped.await;
            })
            .await;
        });
        TestServer {
            base,
            db: Some(db),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn client(&self) -> BaremetalClient {
        BaremetalClient::new(self.base.clone(), "latest")
    }

    pub fn url(&self) -> String {
        self.db.as_ref().map(|d| d.url.clone()).unwrap_or_default()
    }

    /// Stops serving but keeps the database (for restart tests).
    pub async fn shutdown(mut self) -> TestDb {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.db.take().expect("database")
    }

    pub async fn stop(self) {
        let db = self.shutdown().await;
        db.drop_database().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
