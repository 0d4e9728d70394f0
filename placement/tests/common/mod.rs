//! Test harness: a real Placement server on an ephemeral port over a fresh
//! database — SQLite always, PostgreSQL and MariaDB when their URLs are in
//! the environment (`FERRITE_TEST_POSTGRES_URL`, `FERRITE_TEST_MYSQL_URL`).
#![allow(dead_code)]

use std::net::TcpListener;

use ferrite_placement::Config;
use ferrite_placement_client::PlacementClient;
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;
use tokio::sync::oneshot;

/// The database kinds this run covers.
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
    /// A brand-new empty database of `kind`.
    pub async fn create(kind: &str) -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        if kind == "sqlite" {
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("placement.db").display()
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
        let name = format!("ferrite_t_{}", uuid::Uuid::new_v4().simple());
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
    pub http: reqwest::Client,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(kind: &str) -> TestServer {
        Self::start_with(kind, |_| {}).await
    }

    /// A second service on the database of `other` (as a second process
    /// would be): it shares nothing with `other` but the database.
    pub async fn start_sharing(other: &TestServer) -> TestServer {
        let db = TestDb {
            url: other.db.url.clone(),
            admin_url: None,
            name: None,
            _dir: tempfile::tempdir().expect("tempdir"),
        };
        Self::start_on(db, |_| {}).await
    }

    pub async fn start_with(kind: &str, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let db = TestDb::create(kind).await;
        Self::start_on(db, adjust).await
    }

    async fn start_on(db: TestDb, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::for_database(db.url.clone());
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = ferrite_placement::prepare(config).await.expect("prepare");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = ferrite_placement::serve(listener, state, async {
                let _ = stopped.await;
            })
            .await;
        });
        TestServer {
            base,
            http: reqwest::Client::new(),
            db,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn client(&self) -> PlacementClient {
        PlacementClient::new(self.base.clone(), "admin")
    }

    /// A raw request as admin at `version`.
    pub fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        version: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .header("x-auth-token", "admin")
            .header("openstack-api-version", format!("placement {version}"))
            .header("accept", "application/json")
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.db.drop_database().await;
    }
}

pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
