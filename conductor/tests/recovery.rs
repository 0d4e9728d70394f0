//! A conductor that dies mid-task: on restart the node is failed the way
//! upstream fails it, its reservation is released and nothing else is lost.

mod common;

use common::{backends, TestDb, TestServer};
use ferrite_conductor::storage::{self, Guard};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_fails_transient_states_and_releases_locks() {
    for kind in backends() {
        let db = TestDb::create(kind).await;
        let server = TestServer::start_on(db, |_| {}).await;
        let api = server.client();
        let created = api
            .create_node(&json!({
                "driver": "fake-hardware",
                "name": "crashy",
                "instance_info": {"image_source": "http://example.com/img"},
            }))
            .await
            .expect("create");
        let uuid = created["uuid"].as_str().expect("uuid").to_string();
        let db = server.shutdown().await;

        // What a crash in the middle of a deploy leaves behind: the node
        // reserved by this conductor, in `deploying` towards `active`.
        let conn = storage::connect(&db.url, 2).await.expect("connect");
        let row = storage::get_node(conn.conn(), &uuid)
            .await
            .expect("read")
            .expect("node");
        assert!(storage::reserve_node(&conn, row.id, "test-conductor")
            .await
            .expect("reserve"));
        let row = storage::get_node(conn.conn(), &uuid)
            .await
            .expect("read")
            .expect("node");
        let mut doc = row.doc.clone();
        doc.insert("provision_state".into(), json!("deploying"));
        doc.insert("target_provision_state".into(), json!("active"));
        let tx = conn.begin_write().await.expect("tx");
        storage::update_node(&*tx, &row, &doc, Guard::HeldBy("test-conductor"))
            .await
            .expect("update")
            .expect("landed");
        tx.commit().await.expect("commit");
        drop(conn);

        let server = TestServer::start_on(db, |_| {}).await;
        let api = server.client();
        let node = api.get_node(&uuid).await.expect("node");
        assert_eq!(node["provision_state"], "deploy failed", "{kind}");
        assert_eq!(node["target_provision_state"], "active", "{kind}");
        assert_eq!(node["reservation"], Value::Null, "{kind}");
        let last_error = node["last_error"].as_str().unwrap_or("");
        assert!(!last_error.is_empty(), "{kind}: a last_error explains it");
        assert_eq!(
            node["instance_info"]["image_source"], "http://example.com/img",
            "{kind}: nothing else is lost"
        );
        // The node is usable again: a new deploy is accepted.
        api.set_provision_state(&uuid, "active", None)
            .await
            .expect("redeploy after recovery");
        api.wait_for_provision_state(&uuid, "active", std::time::Duration::from_secs(30))
            .await
            .expect("active");
        server.stop().await;
    }
}
