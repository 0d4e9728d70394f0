//! What the conductor fetches and serves (no database): `file://` sources
//! limited to the allowed directories, untrusted images inspected before
//! qemu-img touches them, bounded downloads, and the image cache's bound.

mod image_servers;

use std::path::{Path, PathBuf};

use ferrite_conductor::{deploy, Config};
use image_servers::{ImageServer, Reply};
use serde_json::{json, Map, Value};

/// A scratch directory with an allowed image directory inside, and a
/// conductor configuration serving from it.
struct Scratch {
    dir: tempfile::TempDir,
    config: Config,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("allowed")).expect("allowed dir");
        std::fs::create_dir_all(dir.path().join("outside")).expect("outside dir");
        let mut config = Config::for_database("sqlite::memory:");
        config.deploy.http_root = dir.path().join("http");
        config.deploy.image_cache_dir = dir.path().join("cache");
        config.deploy.http_url = Some("http://192.0.2.1:8080".into());
        config.deploy.file_url_allowed_paths = vec![dir.path().join("allowed")];
        Scratch { dir, config }
    }

    fn allowed(&self, name: &str) -> PathBuf {
        self.dir.path().join("allowed").join(name)
    }

    fn outside(&self, name: &str) -> PathBuf {
        self.dir.path().join("outside").join(name)
    }

    /// Files the conductor serves to agents.
    fn served(&self) -> Vec<PathBuf> {
        list(&self.config.deploy.http_root.join("images"))
    }

    /// Files of the image cache, checksum sidecars left out.
    fn cached(&self) -> Vec<PathBuf> {
        list(&self.config.deploy.image_cache_dir)
            .into_iter()
            .filter(|p| p.extension().is_none_or(|e| e != "sha256"))
            .collect()
    }
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn node(instance_info: Value) -> Map<String, Value> {
    match json!({"uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "instance_info": instance_info}) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

async fn serve(config: &Config, info: Value) -> Result<deploy::ServedImage, String> {
    deploy::serve_image(config, &node(info)).await
}

fn qemu_img(args: &[&str]) {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img");
    assert!(out.status.success(), "qemu-img {args:?}: {out:?}");
}

fn assert_refused(result: Result<deploy::ServedImage, String>, words: &[&str]) -> String {
    let error = match result {
        Ok(served) => panic!("served {served:?}, expected a refusal mentioning {words:?}"),
        Err(error) => error,
    };
    for word in words {
        assert!(error.contains(word), "{word:?} not in {error:?}");
    }
    error
}

#[tokio::test]
async fn file_images_outside_the_allowed_paths_are_refused() {
    let scratch = Scratch::new();
    std::fs::write(scratch.allowed("good.raw"), vec![7u8; 4096]).expect("good");
    std::fs::write(scratch.outside("secret.raw"), b"host secret").expect("secret");
    std::os::unix::fs::symlink(scratch.outside("secret.raw"), scratch.allowed("link.raw"))
        .expect("symlink");
    let good = serve(
        &scratch.config,
        json!({"image_source": file_url(&scratch.allowed("good.raw")), "image_disk_format": "raw"}),
    )
    .await
    .expect("a file in an allowed directory is served");
    assert!(good.url.starts_with("http://192.0.2.1:8080/images/"));

    let traversal = scratch
        .dir
        .path()
        .join("allowed/../outside/secret.raw")
        .display()
        .to_string();
    for source in [
        file_url(&scratch.outside("secret.raw")),
        file_url(&scratch.allowed("link.raw")),
        format!("file://{traversal}"),
    ] {
        assert_refused(
            serve(
                &scratch.config,
                json!({"image_source": source, "image_disk_format": "raw"}),
            )
            .await,
            &["file_url_allowed_paths"],
        );
    }
    assert_eq!(scratch.served().len(), 1, "only the good image is served");
}

#[tokio::test]
async fn system_paths_are_never_read_even_when_allowed() {
    let mut scratch = Scratch::new();
    scratch.config.deploy.file_url_allowed_paths = vec!["/".into()];
    for source in [
        "file:///etc/passwd",
        "file:///proc/self/cmdline",
        "file:///dev/null",
        "file:///dev/zero",
        "file:///sys/kernel/uevent_seqnum",
    ] {
        assert_refused(
            serve(
                &scratch.config,
                json!({"image_source": source, "image_disk_format": "raw"}),
            )
            .await,
            &[source.trim_start_matches("file://"), "not allowed"],
        );
    }
    assert!(scratch.served().is_empty());
}

#[tokio::test]
async fn a_qcow2_with_a_backing_file_is_refused_before_qemu_img_reads_it() {
    let scratch = Scratch::new();
    let secret = scratch.outside("secret.raw");
    std::fs::write(&secret, b"host secret").expect("secret");
    let evil = scratch.allowed("evil.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "-b",
        &secret.display().to_string(),
        "-F",
        "raw",
        &evil.display().to_string(),
        "1M",
    ]);
    let error = assert_refused(
        serve(
            &scratch.config,
            json!({"image_source": file_url(&evil), "image_disk_format": "qcow2"}),
        )
        .await,
        &["backing file"],
    );
    assert!(!error.contains("host secret"), "{error}");
    assert!(scratch.served().is_empty(), "{:?}", scratch.served());
    assert!(scratch.cached().is_empty(), "{:?}", scratch.cached());
}

#[tokio::test]
async fn a_qcow2_with_an_external_data_file_is_refused() {
    let scratch = Scratch::new();
    let secret = scratch.outside("data.raw");
    std::fs::write(&secret, vec![0x5au8; 1 << 20]).expect("data file");
    let evil = scratch.allowed("evil.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "-o",
        &format!("data_file={},data_file_raw=on", secret.display()),
        &evil.display().to_string(),
        "1M",
    ]);
    assert_refused(
        serve(
            &scratch.config,
            json!({"image_source": file_url(&evil), "image_disk_format": "qcow2"}),
        )
        .await,
        &["data file"],
    );
    assert!(scratch.served().is_empty(), "{:?}", scratch.served());
}

/// A VMDK descriptor whose extent is a host file.
fn vmdk_descriptor(create_type: &str, extent: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n\
         createType=\"{create_type}\"\n\n# Extent description\n{extent}\n\n\
         # The Disk Data Base\nddb.virtualHWVersion = \"4\"\n"
    )
}

#[tokio::test]
async fn a_vmdk_with_an_extent_on_the_host_is_refused_even_when_vmdk_is_permitted() {
    let mut scratch = Scratch::new();
    let secret = scratch.outside("secret.raw");
    std::fs::write(&secret, vec![0x42u8; 1 << 20]).expect("secret");
    let evil = scratch.allowed("evil.vmdk");
    let extent = format!("RW 2048 FLAT \"{}\" 0", secret.display());
    std::fs::write(&evil, vmdk_descriptor("monolithicFlat", &extent)).expect("vmdk");
    let info = json!({"image_source": file_url(&evil), "image_disk_format": "vmdk"});
    assert_refused(
        serve(&scratch.config, info.clone()).await,
        &["vmdk", "permitted_image_formats"],
    );
    scratch.config.deploy.permitted_image_formats =
        vec!["raw".into(), "qcow2".into(), "vmdk".into()];
    assert_refused(serve(&scratch.config, info).await, &["vmdk"]);
    assert!(scratch.served().is_empty(), "{:?}", scratch.served());
}

#[tokio::test]
async fn the_content_must_match_the_declared_format() {
    let scratch = Scratch::new();
    let image = scratch.allowed("disk.qcow2");
    qemu_img(&["create", "-f", "qcow2", &image.display().to_string(), "1M"]);
    assert_refused(
        serve(
            &scratch.config,
            json!({"image_source": file_url(&image), "image_disk_format": "raw"}),
        )
        .await,
        &["raw", "qcow2"],
    );
    let served = serve(
        &scratch.config,
        json!({"image_source": file_url(&image), "image_disk_format": "qcow2"}),
    )
    .await
    .expect("the same image declared qcow2");
    assert_eq!(served.disk_format.as_deref(), Some("raw"));
    let file = scratch.served().pop().expect("served file");
    assert_eq!(std::fs::metadata(file).expect("size").len(), 1 << 20);
}

#[tokio::test]
async fn formats_outside_permitted_image_formats_are_refused() {
    let scratch = Scratch::new();
    let image = scratch.allowed("disk.vdi");
    qemu_img(&["create", "-f", "vdi", &image.display().to_string(), "1M"]);
    assert_refused(
        serve(
            &scratch.config,
            json!({"image_source": file_url(&image), "image_disk_format": "vdi"}),
        )
        .await,
        &["vdi", "permitted_image_formats"],
    );
    assert!(scratch.served().is_empty());
}

/// An instance image fetched over HTTP by the conductor.
fn http_image(url: &str) -> Value {
    json!({"image_source": url, "image_download_source": "http", "image_disk_format": "raw"})
}

#[tokio::test]
async fn a_download_larger_than_the_declared_size_is_cut() {
    let scratch = Scratch::new();
    let server = ImageServer::start(vec![
        ("/full.raw", Reply::Full(vec![1u8; 64 * 1024])),
        ("/chunked.raw", Reply::Chunked(vec![2u8; 64 * 1024])),
    ])
    .await;
    for path in ["/full.raw", "/chunked.raw"] {
        let mut info = http_image(&format!("{}{path}", server.url));
        info["image_size"] = json!(4096);
        assert_refused(serve(&scratch.config, info).await, &["4096", "image_size"]);
    }
    assert!(scratch.served().is_empty());
    assert!(scratch.cached().is_empty(), "{:?}", scratch.cached());
}

#[tokio::test]
async fn a_download_larger_than_the_configured_maximum_is_cut() {
    let mut scratch = Scratch::new();
    scratch.config.deploy.image_max_bytes = 100_000;
    let server = ImageServer::start(vec![
        ("/full.raw", Reply::Full(vec![1u8; 200_000])),
        ("/chunked.raw", Reply::Chunked(vec![2u8; 200_000])),
        ("/small.raw", Reply::Chunked(vec![3u8; 50_000])),
    ])
    .await;
    for path in ["/full.raw", "/chunked.raw"] {
        assert_refused(
            serve(
                &scratch.config,
                http_image(&format!("{}{path}", server.url)),
            )
            .await,
            &["100000", "image_max_bytes"],
        );
    }
    assert!(scratch.cached().is_empty(), "{:?}", scratch.cached());
    serve(
        &scratch.config,
        http_image(&format!("{}/small.raw", server.url)),
    )
    .await
    .expect("an image under the maximum");
}

#[tokio::test]
async fn a_stalled_download_times_out() {
    let mut scratch = Scratch::new();
    scratch.config.deploy.image_download_read_timeout_secs = 1;
    let server = ImageServer::start(vec![("/stall.raw", Reply::Stall { length: 1 << 20 })]).await;
    assert_refused(
        serve(
            &scratch.config,
            http_image(&format!("{}/stall.raw", server.url)),
        )
        .await,
        &["/stall.raw"],
    );
    assert!(scratch.cached().is_empty(), "{:?}", scratch.cached());
}

#[tokio::test]
async fn a_slow_drip_download_hits_the_download_deadline() {
    let mut scratch = Scratch::new();
    scratch.config.deploy.image_download_timeout_secs = 1;
    let server = ImageServer::start(vec![(
        "/drip.raw",
        Reply::Drip {
            length: 1 << 30,
            every: std::time::Duration::from_millis(50),
        },
    )])
    .await;
    assert_refused(
        serve(
            &scratch.config,
            http_image(&format!("{}/drip.raw", server.url)),
        )
        .await,
        &["/drip.raw", "image_download_timeout_secs"],
    );
    assert!(scratch.cached().is_empty(), "{:?}", scratch.cached());
}

#[tokio::test]
async fn the_cache_evicts_the_least_recently_used_images_past_its_bound() {
    let mut scratch = Scratch::new();
    // Room for two 64 KiB images, not three.
    scratch.config.deploy.image_cache_max_bytes = 150 * 1024;
    let mut urls = Vec::new();
    for name in ["a", "b", "c"] {
        let path = scratch.allowed(&format!("{name}.raw"));
        std::fs::write(&path, vec![name.as_bytes()[0]; 64 * 1024]).expect("image");
        urls.push(file_url(&path));
    }
    // Serves the image as a deploy does: served, written by the agent,
    // released. Returns its cache entry.
    let config = scratch.config.clone();
    let deploy_once = |url: String| {
        let config = config.clone();
        async move {
            let doc = node(json!({"image_source": url, "image_disk_format": "raw"}));
            let served = deploy::serve_image(&config, &doc).await.expect("served");
            deploy::release_served_image(&config, &doc).await;
            let name = served.url.rsplit('/').next().unwrap_or("").to_string();
            let key = name
                .split_once('-')
                .map(|(k, _)| k)
                .unwrap_or("")
                .to_string();
            config.deploy.image_cache_dir.join(format!("{key}.raw"))
        }
    };
    let a = deploy_once(urls[0].clone()).await;
    let b = deploy_once(urls[1].clone()).await;
    // `a` is used again: `b` becomes the least recently used.
    assert_eq!(deploy_once(urls[0].clone()).await, a);
    let c = deploy_once(urls[2].clone()).await;
    assert_eq!(scratch.cached(), {
        let mut kept = vec![a.clone(), c.clone()];
        kept.sort();
        kept
    });
    assert!(scratch.served().is_empty(), "{:?}", scratch.served());
    // An evicted image is fetched again when needed (and `a` goes).
    assert_eq!(deploy_once(urls[1].clone()).await, b);
    assert_eq!(scratch.cached(), {
        let mut kept = vec![b, c];
        kept.sort();
        kept
    });
}

#[tokio::test]
async fn images_served_to_a_node_are_not_evicted() {
    let mut scratch = Scratch::new();
    scratch.config.deploy.image_cache_max_bytes = 100 * 1024;
    let mut served = Vec::new();
    for name in ["a", "b"] {
        let path = scratch.allowed(&format!("{name}.raw"));
        std::fs::write(&path, vec![name.as_bytes()[0]; 64 * 1024]).expect("image");
        let mut doc = node(json!({"image_source": file_url(&path), "image_disk_format": "raw"}));
        doc.insert("uuid".into(), json!(uuid::Uuid::new_v4().to_string()));
        served.push(
            deploy::serve_image(&scratch.config, &doc)
                .await
                .expect("served"),
        );
    }
    // Over the bound, but both images are still being deployed.
    assert_eq!(scratch.cached().len(), 2, "{:?}", scratch.cached());
    assert_eq!(scratch.served().len(), 2, "{:?}", scratch.served());
}

#[tokio::test]
async fn a_slow_download_does_not_hold_up_other_images() {
    let scratch = Scratch::new();
    let server = ImageServer::start(vec![
        (
            "/drip.raw",
            Reply::Drip {
                length: 1 << 30,
                every: std::time::Duration::from_millis(50),
            },
        ),
        ("/disk.raw", Reply::Full(vec![5u8; 64 * 1024])),
    ])
    .await;
    let config = scratch.config.clone();
    let drip_url = format!("{}/drip.raw", server.url);
    let slow = tokio::spawn(async move { serve(&config, http_image(&drip_url)).await });
    while server.hits("/drip.raw") == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Another image is fetched while the first one still trickles in.
    let other = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        serve(
            &scratch.config,
            http_image(&format!("{}/disk.raw", server.url)),
        ),
    )
    .await
    .expect("the other image is not held up")
    .expect("the other image is served");
    assert!(other.url.starts_with("http://192.0.2.1:8080/images/"));
    assert!(!slow.is_finished(), "the slow download is still running");
    // A fill that is abandoned half-way leaves nothing behind.
    slow.abort();
    let _ = slow.await;
    let cached = scratch.cached();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].to_string_lossy().ends_with(".raw"), "{cached:?}");
}

#[tokio::test]
async fn a_restart_forgets_served_copies_and_partial_files() {
    let scratch = Scratch::new();
    let image = scratch.allowed("disk.raw");
    std::fs::write(&image, vec![4u8; 4096]).expect("image");
    deploy::serve_image(
        &scratch.config,
        &node(json!({"image_source": file_url(&image), "image_disk_format": "raw"})),
    )
    .await
    .expect("served");
    let images = scratch.config.deploy.http_root.join("images");
    std::fs::write(images.join("ferrite-demo.img"), b"demo").expect("demo");
    let partial = scratch
        .config
        .deploy
        .image_cache_dir
        .join("0123456789abcdef.part-1");
    std::fs::write(&partial, b"half").expect("partial");
    deploy::clean_up_after_restart(&scratch.config);
    assert_eq!(scratch.served(), vec![images.join("ferrite-demo.img")]);
    let cached = scratch.cached();
    assert_eq!(cached.len(), 1, "the cached image stays: {cached:?}");
    assert!(!partial.exists());
}

#[tokio::test]
async fn ordinary_images_of_every_permitted_format_are_served_as_raw() {
    let mut scratch = Scratch::new();
    scratch.config.deploy.permitted_image_formats = vec!["qcow2".into(), "vmdk".into()];
    for (name, format, options) in [
        ("v3.qcow2", "qcow2", "compat=1.1"),
        ("v2.qcow2", "qcow2", "compat=0.10"),
        ("sparse.vmdk", "vmdk", "subformat=monolithicSparse"),
        ("stream.vmdk", "vmdk", "subformat=streamOptimized"),
    ] {
        let image = scratch.allowed(name);
        qemu_img(&[
            "create",
            "-f",
            format,
            "-o",
            options,
            &image.display().to_string(),
            "2M",
        ]);
        let served = serve(
            &scratch.config,
            json!({"image_source": file_url(&image), "image_disk_format": format}),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(served.disk_format.as_deref(), Some("raw"), "{name}");
    }
}
