//! Round trips through our own reader, layout and packing.

use super::*;
use serde_json::json;

fn sample() -> ConfigDrive {
    ConfigDrive {
        meta_data: json!({
            "uuid": "11111111-1111-4111-8111-111111111111",
            "hostname": "node-1",
            "name": "héllo",
            "public_keys": {"default": "ssh-ed25519 AAAA test"},
            "meta": {"ratio": 0.5},
        }),
        user_data: Some(b"#cloud-config\nruncmd: [true]\n".to_vec()),
        network_data: Some(json!({"links": [], "networks": [], "services": []})),
        vendor_data: None,
    }
}

fn latest_names(drive: &ConfigDrive) -> Vec<String> {
    drive
        .files()
        .into_iter()
        .filter_map(|(path, _)| path.strip_prefix("openstack/latest/").map(str::to_string))
        .collect()
}

#[test]
fn layout_follows_nova() {
    let drive = sample();
    assert_eq!(
        latest_names(&drive),
        [
            "meta_data.json",
            "user_data",
            "vendor_data.json",
            "network_data.json",
            "vendor_data2.json"
        ]
    );
    let without_user_data = ConfigDrive {
        user_data: None,
        ..sample()
    };
    assert_eq!(
        latest_names(&without_user_data),
        [
            "meta_data.json",
            "vendor_data.json",
            "network_data.json",
            "vendor_data2.json"
        ]
    );
    let names_in = |version: &str| -> Vec<String> {
        let prefix = format!("openstack/{version}/");
        drive
            .files()
            .into_iter()
            .filter_map(|(path, _)| path.strip_prefix(&prefix).map(str::to_string))
            .collect()
    };
    assert_eq!(names_in("2012-08-10"), ["meta_data.json", "user_data"]);
    assert_eq!(
        names_in("2013-10-17"),
        ["meta_data.json", "user_data", "vendor_data.json"]
    );
    assert_eq!(
        names_in("2016-06-30"),
        [
            "meta_data.json",
            "user_data",
            "vendor_data.json",
            "network_data.json"
        ]
    );
    assert_eq!(names_in("2020-10-14"), latest_names(&drive));

    let files: BTreeMap<String, Vec<u8>> = drive.files().into_iter().collect();
    assert_eq!(
        files["openstack/latest/meta_data.json"],
        br#"{"uuid": "11111111-1111-4111-8111-111111111111", "hostname": "node-1", "name": "h\u00e9llo", "public_keys": {"default": "ssh-ed25519 AAAA test"}, "meta": {"ratio": 0.5}}"#
    );
    assert_eq!(files["openstack/latest/vendor_data.json"], b"{}");
    assert_eq!(files["openstack/latest/vendor_data2.json"], b"{}");
    assert_eq!(
        files["openstack/latest/network_data.json"],
        br#"{"links": [], "networks": [], "services": []}"#
    );
}

use std::collections::BTreeMap;

#[test]
fn round_trip_through_our_reader() {
    for drive in [
        sample(),
        ConfigDrive::default(),
        ConfigDrive {
            user_data: Some(Vec::new()),
            ..sample()
        },
    ] {
        let image = drive.to_iso().expect("image");
        assert_eq!(image.len() % 2048, 0);
        let read = read_iso_files(&image).expect("read back");
        let expected: BTreeMap<String, Vec<u8>> = drive.files().into_iter().collect();
        assert_eq!(read, expected);
    }
}

#[test]
fn image_is_small_deterministic_and_labelled() {
    let image = sample().to_iso().expect("image");
    // 16 system sectors, descriptors, path tables, ER, 13 directories and 5 distinct contents.
    assert!(image.len() <= 40 * 2048, "{} bytes", image.len());
    assert_eq!(image, sample().to_iso().expect("again"));
    assert_ne!(image, sample().to_iso_at(0).expect("other time"));
    assert_eq!(&image[16 * 2048 + 1..16 * 2048 + 6], b"CD001");
    assert_eq!(&image[16 * 2048 + 40..16 * 2048 + 49], b"config-2 ");
}

#[test]
fn one_mebibyte_of_user_data() {
    let user_data: Vec<u8> = (0..1024 * 1024)
        .map(|index: u32| (index * 7 % 251) as u8)
        .collect();
    let drive = ConfigDrive {
        user_data: Some(user_data.clone()),
        ..sample()
    };
    let image = drive.to_iso().expect("image");
    // Stored once although ten directories name it.
    assert!(
        image.len() < user_data.len() + 64 * 2048,
        "{} bytes",
        image.len()
    );
    let read = read_iso_files(&image).expect("read back");
    assert_eq!(read["openstack/latest/user_data"], user_data);
    assert_eq!(read["openstack/2012-08-10/user_data"], user_data);
    assert_eq!(unpack(&pack(&image)).expect("unpack"), image);
}

#[test]
fn too_large_is_refused() {
    let drive = ConfigDrive {
        user_data: Some(vec![0; MAX_IMAGE_BYTES]),
        ..sample()
    };
    assert!(matches!(drive.to_iso(), Err(ConfigDriveError::TooLarge(_))));
}

#[test]
fn pack_and_unpack() {
    for data in [&b""[..], b"x", &[0u8; 100_000], b"config drive bytes"] {
        let packed = pack(data);
        assert!(packed.starts_with("H4sI"), "gzip magic in base64: {packed}");
        assert_eq!(unpack(&packed).expect("unpack"), data);
        assert_eq!(
            unpack(&format!("{packed}\n")).expect("trailing newline"),
            data
        );
    }
    // What `gzip | base64` of a real tool gives is read too.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, b"hello").expect("write");
    let other = base64::engine::general_purpose::STANDARD.encode(encoder.finish().expect("finish"));
    assert_eq!(unpack(&other).expect("unpack"), b"hello");

    assert!(matches!(
        unpack("not base64!"),
        Err(ConfigDriveError::BadPacking(_))
    ));
    assert!(matches!(
        unpack("aGVsbG8="),
        Err(ConfigDriveError::BadPacking(_))
    ));
}

#[test]
fn reader_refuses_garbage_without_panicking() {
    assert!(read_iso_files(&[]).is_err());
    assert!(read_iso_files(&vec![0u8; 40 * 2048]).is_err());
    let image = sample().to_iso().expect("image");
    // Every truncation and a sweep of single-byte corruptions either reads or errors.
    for length in (0..image.len()).step_by(512) {
        let _ = read_iso_files(&image[..length]);
    }
    for position in (16 * 2048..image.len()).step_by(7) {
        let mut corrupt = image.clone();
        corrupt[position] ^= 0xff;
        let _ = read_iso_files(&corrupt);
    }
}
