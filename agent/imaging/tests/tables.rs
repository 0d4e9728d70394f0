//! Partition tables written in pure Rust, cross-checked with sfdisk and blkid.
#![allow(clippy::unwrap_used)]
mod common;

use ferrite_imaging::table::{self, Label, Partition, Table};
use ferrite_imaging::{erase, fixtures};

const MIB: u64 = 1 << 20;

fn part(number: u32, start: u64, size: u64, kind: &str) -> Partition {
    Partition {
        number,
        start,
        size,
        kind: kind.into(),
        uuid: String::new(),
        name: Some(format!("p{number}")),
        bootable: number == 2,
    }
}

#[test]
fn gpt_round_trip_matches_sfdisk_and_blkid() {
    let dir = tempfile::tempdir().unwrap();
    let disk = fixtures::sparse_disk(dir.path(), "sda", 256 * MIB).unwrap();
    let wanted = Table {
        label: Label::Gpt,
        id: String::new(),
        partitions: vec![
            part(1, MIB, 100 * MIB, table::GPT_ESP),
            part(2, 101 * MIB, 50 * MIB, table::GPT_LINUX),
        ],
    };
    let written = table::write(&disk.path, &wanted).unwrap();
    let read = table::read(&disk.path).unwrap().unwrap();
    assert_eq!(read, written);
    assert_eq!(read.label, Label::Gpt);
    assert_eq!(read.partitions[1].name.as_deref(), Some("p2"));

    let sf = common::sfdisk(&disk.path);
    assert_eq!(sf["label"], "gpt");
    assert_eq!(sf["id"].as_str().unwrap(), read.id);
    assert_eq!(sf["lastlba"].as_u64().unwrap(), 256 * MIB / 512 - 34);
    let parts = sf["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["start"].as_u64().unwrap(), 2048);
    assert_eq!(parts[0]["size"].as_u64().unwrap(), 100 * 2048);
    assert_eq!(parts[0]["type"].as_str().unwrap(), table::GPT_ESP);
    assert_eq!(
        parts[1]["uuid"].as_str().unwrap().to_lowercase(),
        read.partitions[1].uuid
    );
    assert_eq!(parts[1]["name"], "p2");

    let found = common::blkid(&disk.path, 0);
    assert_eq!(found.get("PTTYPE").map(String::as_str), Some("gpt"));
    assert_eq!(found.get("PTUUID").cloned(), Some(read.id.to_lowercase()));

    // A damaged primary header falls back to the backup.
    let mut h = common::read_bytes(&disk.path, 512, 512);
    h[100] ^= 0xFF;
    h[30] ^= 0xFF;
    ferrite_imaging::util::write_at(&disk.path, 512, &h).unwrap();
    assert_eq!(
        table::read(&disk.path).unwrap().unwrap().partitions,
        read.partitions
    );
}

#[test]
fn mbr_round_trip_matches_sfdisk_and_blkid() {
    let dir = tempfile::tempdir().unwrap();
    let disk = fixtures::sparse_disk(dir.path(), "sdb", 128 * MIB).unwrap();
    let wanted = Table {
        label: Label::Msdos,
        id: "0x1234abcd".into(),
        partitions: vec![
            part(1, MIB, 10 * MIB, "82"),
            part(2, 11 * MIB, 100 * MIB, "83"),
        ],
    };
    let written = table::write(&disk.path, &wanted).unwrap();
    assert_eq!(written.partitions[1].uuid, "1234abcd-02");
    let read = table::read(&disk.path).unwrap().unwrap();
    assert_eq!(read.partitions.len(), 2);
    assert_eq!(read.id, "0x1234abcd");
    assert!(read.partitions[1].bootable && !read.partitions[0].bootable);
    assert_eq!(read.partitions[1].size, 100 * MIB);

    let sf = common::sfdisk(&disk.path);
    assert_eq!(sf["label"], "dos");
    assert_eq!(sf["id"], "0x1234abcd");
    let parts = sf["partitions"].as_array().unwrap();
    assert_eq!(parts[0]["type"], "82");
    assert_eq!(parts[1]["bootable"], true);
    assert_eq!(parts[1]["start"].as_u64().unwrap(), 11 * 2048);

    let found = common::blkid(&disk.path, 0);
    assert_eq!(found.get("PTTYPE").map(String::as_str), Some("dos"));

    // A third partition appended at the end of the disk.
    let p = table::append_partition(&disk.path, 16 * MIB, table::GPT_LINUX, "83", None).unwrap();
    assert_eq!(p.number, 3);
    assert_eq!(p.start + p.size, 128 * MIB);
    assert_eq!(
        common::sfdisk(&disk.path)["partitions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // No room for a fourth of that size.
    assert!(table::append_partition(&disk.path, 16 * MIB, table::GPT_LINUX, "83", None).is_err());
}

#[test]
fn overlapping_or_oversized_partitions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let disk = fixtures::sparse_disk(dir.path(), "sdc", 64 * MIB).unwrap();
    let overlap = Table {
        label: Label::Gpt,
        id: String::new(),
        partitions: vec![
            part(1, MIB, 10 * MIB, table::GPT_LINUX),
            part(2, 5 * MIB, 10 * MIB, table::GPT_LINUX),
        ],
    };
    assert!(table::write(&disk.path, &overlap).is_err());
    let big = Table {
        label: Label::Gpt,
        id: String::new(),
        partitions: vec![part(1, MIB, 64 * MIB, table::GPT_LINUX)],
    };
    assert!(matches!(
        table::write(&disk.path, &big),
        Err(ferrite_imaging::ImagingError::TooSmall(_))
    ));
    assert_eq!(table::read(&disk.path).unwrap(), None);
}

#[test]
fn relocating_the_backup_gpt_to_a_larger_disk() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img.raw");
    let wd = fixtures::whole_disk_image(&img, 64 * MIB, &fixtures::root_files("reloc")).unwrap();
    // Grow the file as if the image had been written to a larger disk.
    std::fs::File::options()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(200 * MIB)
        .unwrap();
    table::relocate_backup_gpt(&img).unwrap();
    let sf = common::sfdisk(&img);
    assert_eq!(sf["lastlba"].as_u64().unwrap(), 200 * MIB / 512 - 34);
    let read = table::read(&img).unwrap().unwrap();
    assert_eq!(read.partitions, wd.table.partitions);
    // The backup at the new end is valid: destroy the primary and read again.
    ferrite_imaging::util::write_at(&img, 512, &[0u8; 512]).unwrap();
    assert_eq!(
        table::read(&img).unwrap().unwrap().partitions,
        wd.table.partitions
    );
}

#[test]
fn erase_removes_tables_and_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    let wd = fixtures::whole_disk_image(&img, 96 * MIB, &fixtures::root_files("gone")).unwrap();
    assert_eq!(
        common::blkid(&img, wd.root.start)
            .get("TYPE")
            .map(String::as_str),
        Some("ext4")
    );
    assert_eq!(
        common::blkid(&img, wd.esp.start)
            .get("TYPE")
            .map(String::as_str),
        Some("vfat")
    );
    let disk = ferrite_imaging::hardware::Disk {
        name: "/dev/sda".into(),
        path: img.clone(),
        size: 96 * MIB,
        model: String::new(),
        vendor: String::new(),
        serial: None,
        wwn: None,
        wwn_with_extension: None,
        wwn_vendor_extension: None,
        rotational: false,
        hctl: None,
        by_path: None,
    };
    erase::erase_metadata(&disk).unwrap();
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 96 * MIB);
    assert_eq!(table::read(&img).unwrap(), None);
    assert!(
        common::blkid(&img, 0).is_empty(),
        "{:?}",
        common::blkid(&img, 0)
    );
    assert!(common::blkid(&img, wd.root.start).is_empty());
    assert!(common::blkid(&img, wd.esp.start).is_empty());
    let out = std::process::Command::new("sfdisk")
        .arg("--json")
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.stdout.is_empty() || !out.status.success());
}
