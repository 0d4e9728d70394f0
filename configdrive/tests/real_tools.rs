//! The image checked by real tools: `blkid`, `isoinfo` and `isovfy` (genisoimage) and `7z`
//! (p7zip-full); and our reader checked on what genisoimage writes with Nova's command line.
//! `scripts/install-deploy-tools` installs them. A missing tool skips its check with a note on a
//! developer's machine and fails the test under `CI=true`.

use ferrite_configdrive::{read_iso_files, ConfigDrive};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn drive() -> ConfigDrive {
    ConfigDrive {
        meta_data: json!({
            "uuid": "11111111-1111-4111-8111-111111111111",
            "hostname": "node-1",
            "name": "node-1",
            "launch_index": 0,
            "availability_zone": "nova",
            "public_keys": {"default": "ssh-ed25519 AAAA test"},
        }),
        user_data: Some(b"#cloud-config\nruncmd: [true]\n".to_vec()),
        network_data: Some(
            json!({"links": [{"id": "eth0", "type": "phy"}], "networks": [], "services": []}),
        ),
        vendor_data: Some(json!({"hello": "world"})),
    }
}

/// The tool, or `None` locally when it is not installed; under `CI=true` a missing tool fails
/// the test (see `ferrite-test-support`).
#[track_caller]
fn tool(name: &str) -> Option<PathBuf> {
    let package = match name {
        "7z" => "p7zip-full",
        "blkid" => "util-linux",
        _ => "genisoimage",
    };
    ferrite_test_support::tool(
        name,
        &format!("apt-get install {package} (scripts/install-deploy-tools does)"),
    )
}

fn run(program: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new(program).args(args).output().expect("run tool");
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn write_image(directory: &Path, drive: &ConfigDrive) -> PathBuf {
    let path = directory.join("config-drive.iso");
    std::fs::write(&path, drive.to_iso().expect("image")).expect("write image");
    path
}

#[test]
fn blkid_sees_an_iso9660_labelled_config_2() {
    let Some(blkid) = tool("blkid") else { return };
    let directory = tempfile::tempdir().expect("tempdir");
    let image = write_image(directory.path(), &drive());
    let image = image.to_str().expect("utf-8 path");
    let output = String::from_utf8(run(&blkid, &["-p", image])).expect("utf-8");
    assert!(output.contains(r#"TYPE="iso9660""#), "{output}");
    assert!(output.contains(r#"LABEL="config-2""#), "{output}");
}

#[test]
fn isoinfo_lists_rock_ridge_names_and_extracts_exact_bytes() {
    let Some(isoinfo) = tool("isoinfo") else {
        return;
    };
    let directory = tempfile::tempdir().expect("tempdir");
    let drive = drive();
    let image = write_image(directory.path(), &drive);
    let image = image.to_str().expect("utf-8 path");

    let listing = String::from_utf8(run(&isoinfo, &["-R", "-l", "-i", image])).expect("utf-8");
    for expected in [
        "Directory listing of /openstack/latest/",
        "Directory listing of /openstack/2012-08-10/",
        "Directory listing of /openstack/2020-10-14/",
        " meta_data.json",
        " user_data",
        " network_data.json",
        " vendor_data.json",
        " vendor_data2.json",
        "dr-xr-xr-x",
        "-r--r--r--",
    ] {
        assert!(
            listing.contains(expected),
            "{expected:?} not in:\n{listing}"
        );
    }
    let debug = String::from_utf8(run(&isoinfo, &["-d", "-i", image])).expect("utf-8");
    assert!(debug.contains("Volume id: config-2"), "{debug}");
    assert!(
        debug.contains("Rock Ridge signatures version 1 found"),
        "{debug}"
    );

    // isovfy ships with isoinfo and checks the structure (path tables, record placement).
    if let Some(isovfy) = tool("isovfy") {
        let verdict = String::from_utf8(run(&isovfy, &["-i", image])).expect("utf-8");
        assert!(verdict.contains("No errors found"), "{verdict}");
    }
    for (path, bytes) in drive.files() {
        let extracted = run(&isoinfo, &["-R", "-x", &format!("/{path}"), "-i", image]);
        assert_eq!(extracted, bytes, "{path}");
    }
}

#[test]
fn seven_zip_extracts_the_tree() {
    let Some(seven_zip) = tool("7z") else { return };
    let directory = tempfile::tempdir().expect("tempdir");
    let drive = drive();
    let image = write_image(directory.path(), &drive);
    let out = directory.path().join("out");
    run(
        &seven_zip,
        &[
            "x",
            "-y",
            &format!("-o{}", out.display()),
            image.to_str().expect("utf-8 path"),
        ],
    );
    for (path, bytes) in drive.files() {
        let extracted =
            std::fs::read(out.join(&path)).unwrap_or_else(|error| panic!("{path}: {error}"));
        assert_eq!(extracted, bytes, "{path}");
    }
}

#[test]
fn our_reader_reads_what_genisoimage_writes() {
    let Some(genisoimage) = tool("genisoimage") else {
        return;
    };
    let directory = tempfile::tempdir().expect("tempdir");
    let drive = drive();
    let tree = directory.path().join("tree");
    for (path, bytes) in drive.files() {
        let file = tree.join(&path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, bytes).expect("write");
    }
    let image = directory.path().join("upstream.iso");
    let image_arg = image.to_str().expect("utf-8 path");
    let tree_arg = tree.to_str().expect("utf-8 path");
    // The command line Nova uses.
    run(
        &genisoimage,
        &[
            "-o",
            image_arg,
            "-ldots",
            "-allow-lowercase",
            "-allow-multidot",
            "-l",
            "-publisher",
            "test",
            "-quiet",
            "-J",
            "-r",
            "-V",
            "config-2",
            tree_arg,
        ],
    );
    let read = read_iso_files(&std::fs::read(&image).expect("read image")).expect("parse");
    let expected: std::collections::BTreeMap<String, Vec<u8>> = drive.files().into_iter().collect();
    assert_eq!(read, expected);
}
