//! A real image write through the agent (needs the imaging crate).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use common::*;
use ferrite_agent::AgentOptions;
use serde_json::json;

/// A 4 MiB whole-disk raw image: a GPT with one Linux partition at 1 MiB
/// whose first bytes are a recognisable pattern.
fn raw_image(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let path = dir.join("image.raw");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(4 << 20)
        .unwrap();
    let mut child = std::process::Command::new("sfdisk")
        .arg("--quiet")
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: gpt\nstart=2048, size=4096, type=L\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let pattern: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let mut image = std::fs::read(&path).unwrap();
    image[1 << 20..(1 << 20) + pattern.len()].copy_from_slice(&pattern);
    (image, pattern)
}

fn sha256(dir: &std::path::Path, data: &[u8]) -> String {
    let path = dir.join("to-hash");
    std::fs::write(&path, data).unwrap();
    let out = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_image_then_partition_uuids_on_a_sparse_disk() {
    let conductor = FakeConductor::start(30.0).await;
    let options = AgentOptions {
        min_heartbeat_interval: Duration::from_millis(200),
        lookup_max_interval: Duration::from_millis(200),
        ..AgentOptions::default()
    };
    let run = start_agent(&conductor, options).await;
    run.wait_for_token().await;
    let (image, pattern) = raw_image(run.dir.path());
    let hash = sha256(run.dir.path(), &image);
    conductor
        .state
        .images
        .lock()
        .unwrap()
        .insert("disk.raw".into(), image);
    let node = conductor.state.node.lock().unwrap().clone();
    let image_info = json!({
        "id": "c1f7a3b6-0000-4000-8000-000000000002",
        "urls": [format!("{}/images/disk.raw", conductor.url)],
        "disk_format": "raw",
        "container_format": "bare",
        "os_hash_algo": "sha256",
        "os_hash_value": hash,
        "stream_raw_images": true,
        "node_uuid": NODE_UUID,
    });
    let step = json!({"step": "write_image", "interface": "deploy", "priority": 80,
                      "args": {"image_info": image_info, "configdrive": null}});
    let (status, body) = run
        .command(
            "deploy.execute_deploy_step",
            json!({"step": step, "node": node, "ports": []}),
            Some(TOKEN),
            false,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let done = run.poll(body["id"].as_str().unwrap()).await;
    assert_eq!(done["command_status"], "SUCCEEDED", "{done}");
    let message = done["command_result"]["deploy_result"]["result"]
        .as_str()
        .unwrap();
    assert!(
        message.starts_with("prepare_image: image (c1f7a3b6-0000-4000-8000-000000000002) written to device /dev/sda"),
        "{message}"
    );
    assert_eq!(done["command_result"]["deploy_step"]["step"], "write_image");

    // The partition's contents are on the 8 GiB disk (the smallest one of
    // at least 4 GiB), which stays sparse.
    let disk = run.dir.path().join("sda.img");
    let mut file = std::fs::File::open(&disk).unwrap();
    file.seek(SeekFrom::Start(1 << 20)).unwrap();
    let mut written = vec![0u8; pattern.len()];
    file.read_exact(&mut written).unwrap();
    assert_eq!(written, pattern);
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), 8 << 30);

    let (_, uuids) = run
        .command("standby.get_partition_uuids", json!({}), Some(TOKEN), true)
        .await;
    assert_eq!(uuids["command_status"], "SUCCEEDED");
    let outcome = run.agent.last_write().unwrap();
    assert_eq!(
        uuids["command_result"]["root uuid"].as_str(),
        outcome.root_uuid.as_deref(),
        "{uuids}"
    );
    assert!(outcome.root_uuid.is_some());
    run.agent.stop().await;
    conductor.stop().await;
}
