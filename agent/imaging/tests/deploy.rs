//! write_image end to end: images served over HTTP, written to sparse disk
//! files, inspected with sfdisk, blkid, debugfs and mtools.
#![allow(clippy::unwrap_used)]
mod common;

use std::collections::HashMap;
use std::path::Path;

use ferrite_imaging::boot::{boot_check, install_bootloader};
use ferrite_imaging::hardware::Disk;
use ferrite_imaging::image::{write_image, ImageInfo, WriteOptions};
use ferrite_imaging::{erase, fixtures, hints, table, ImagingError};

const MIB: u64 = 1 << 20;

fn options(dir: &Path) -> WriteOptions {
    WriteOptions {
        allow_md5: false,
        work_dir: dir.join("work"),
    }
}

/// A qcow2 partition image (ext4 with /etc/hostname = `host`), its bytes
/// and sha256.
fn qcow2_partition_image(dir: &Path, host: &str) -> (Vec<u8>, String) {
    let raw = dir.join(format!("{host}.raw"));
    fixtures::ext4_image(&raw, 40 * MIB, &fixtures::root_files(host)).unwrap();
    let qcow = dir.join(format!("{host}.qcow2"));
    fixtures::to_qcow2(&raw, &qcow).unwrap();
    let sum = fixtures::file_digest(&qcow, "sha256").unwrap();
    (std::fs::read(&qcow).unwrap(), sum)
}

fn info(url: String, sha256: String) -> ImageInfo {
    ImageInfo {
        id: "image-1".into(),
        urls: vec![url],
        os_hash_algo: Some("sha256".into()),
        os_hash_value: Some(sha256),
        ..Default::default()
    }
}

fn hostname_of(disk: &Disk, part: &serde_json::Value, dir: &Path) -> String {
    let start = part["start"].as_u64().unwrap() * 512;
    let size = part["size"].as_u64().unwrap() * 512;
    let fs = common::extract(&disk.path, start, size, dir);
    common::debugfs_cat(&fs, "/etc/hostname")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qcow2_partition_image_uefi() {
    let dir = tempfile::tempdir().unwrap();
    let (qcow, sum) = qcow2_partition_image(dir.path(), "uefi-host");
    let base = common::serve(HashMap::from([("/img.qcow2".to_string(), qcow)])).await;
    let disk = fixtures::sparse_disk(dir.path(), "sda", 1024 * MIB).unwrap();
    let mut i = info(format!("{base}/img.qcow2"), sum);
    i.image_type = Some("partition".into());
    i.disk_format = Some("qcow2".into());
    i.boot_mode = Some("uefi".into());
    i.root_mb = Some(100);
    i.swap_mb = Some(16);
    i.ephemeral_mb = Some(32);
    let drive = b"config drive ISO content".to_vec();
    let cd = fixtures::gzip_base64(&drive).unwrap();
    let out = write_image(&disk, &i, Some(&cd), &options(dir.path()))
        .await
        .unwrap();

    // Layout as upstream: ESP, ephemeral, swap, config drive, root.
    let sf = common::sfdisk(&disk.path);
    assert_eq!(sf["label"], "gpt");
    let parts = sf["partitions"].as_array().unwrap();
    let types: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            table::GPT_ESP,
            table::GPT_LINUX,
            table::GPT_SWAP,
            table::GPT_LINUX,
            table::GPT_LINUX
        ]
    );
    let sizes: Vec<u64> = parts
        .iter()
        .map(|p| p["size"].as_u64().unwrap() * 512 / MIB)
        .collect();
    assert_eq!(sizes, [200, 32, 16, 64, 100]);
    assert!(parts
        .iter()
        .all(|p| p["start"].as_u64().unwrap() % 2048 == 0));

    let at = |n: usize| parts[n]["start"].as_u64().unwrap() * 512;
    let esp = common::blkid(&disk.path, at(0));
    assert_eq!(esp.get("TYPE").map(String::as_str), Some("vfat"));
    assert_eq!(out.efi_system_partition_uuid, esp.get("UUID").cloned());
    let eph = common::blkid(&disk.path, at(1));
    assert_eq!(eph.get("TYPE").map(String::as_str), Some("ext4"));
    assert_eq!(eph.get("LABEL").map(String::as_str), Some("ephemeral0"));
    let swap = common::blkid(&disk.path, at(2));
    assert_eq!(swap.get("TYPE").map(String::as_str), Some("swap"));
    assert_eq!(swap.get("LABEL").map(String::as_str), Some("swap1"));
    assert_eq!(common::read_bytes(&disk.path, at(3), drive.len()), drive);
    let root = common::blkid(&disk.path, at(4));
    assert_eq!(root.get("TYPE").map(String::as_str), Some("ext4"));
    assert_eq!(out.root_uuid, root.get("UUID").cloned());
    assert_eq!(hostname_of(&disk, &parts[4], dir.path()), "uefi-host\n");
    assert_eq!(out.partitions.len(), 5);
    assert_eq!(
        out.partitions["root"],
        parts[4]["uuid"].as_str().unwrap().to_lowercase()
    );
    assert_eq!(
        out.configdrive_uuid.as_deref(),
        Some(out.partitions["configdrive"].as_str())
    );
    // Still sparse: far less allocated than the disk.
    assert!(
        common::allocated(&disk.path) < 200 * MIB,
        "{}",
        common::allocated(&disk.path)
    );

    // Not bootable until the bootloader is installed.
    let err = boot_check(&disk, "uefi").unwrap_err().to_string();
    assert!(err.contains("EFI/BOOT/BOOTX64.EFI"), "{err}");
    let root_uuid = out.root_uuid.clone().unwrap();
    install_bootloader(
        &disk,
        &root_uuid,
        out.efi_system_partition_uuid.as_deref(),
        "uefi",
    )
    .unwrap();
    let booted = boot_check(&disk, "uefi").unwrap();
    assert_eq!(booted.partition, 1);
    let cfg = ferrite_imaging::util::mtools(
        "mtype",
        &[
            "-i",
            &ferrite_imaging::util::mtools_image(&disk.path, at(0)),
            "::/EFI/BOOT/grub.cfg",
        ],
    )
    .unwrap();
    assert!(cfg.contains(&root_uuid), "{cfg}");
    let err = boot_check(&disk, "bios").unwrap_err().to_string();
    assert!(err.contains("boot code"), "{err}");

    // Cleaning wipes it all.
    erase::erase_metadata(&disk).unwrap();
    assert_eq!(std::fs::metadata(&disk.path).unwrap().len(), 1024 * MIB);
    assert_eq!(table::read(&disk.path).unwrap(), None);
    assert!(common::blkid(&disk.path, 0).is_empty());
    assert!(common::blkid(&disk.path, at(4)).is_empty());
    assert!(common::blkid(&disk.path, at(0)).is_empty());
    let err = boot_check(&disk, "uefi").unwrap_err().to_string();
    assert!(err.contains("no valid partition table"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qcow2_partition_image_bios_msdos_and_gpt() {
    let dir = tempfile::tempdir().unwrap();
    let (qcow, sum) = qcow2_partition_image(dir.path(), "bios-host");
    let base = common::serve(HashMap::from([("/img.qcow2".to_string(), qcow)])).await;

    // msdos: root over the rest of the disk, marked active.
    let disk = fixtures::sparse_disk(dir.path(), "sda", 512 * MIB).unwrap();
    let mut i = info(format!("{base}/img.qcow2"), sum.clone());
    i.image_type = Some("partition".into());
    i.boot_mode = Some("bios".into());
    i.swap_mb = Some(8);
    let out = write_image(&disk, &i, None, &options(dir.path()))
        .await
        .unwrap();
    let sf = common::sfdisk(&disk.path);
    assert_eq!(sf["label"], "dos");
    let parts = sf["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["type"], "82");
    assert_eq!(parts[1]["type"], "83");
    assert_eq!(parts[1]["bootable"], true);
    let end = (parts[1]["start"].as_u64().unwrap() + parts[1]["size"].as_u64().unwrap()) * 512;
    assert_eq!(end, 512 * MIB, "root takes the rest of the disk");
    assert_eq!(hostname_of(&disk, &parts[1], dir.path()), "bios-host\n");
    let root = common::blkid(&disk.path, parts[1]["start"].as_u64().unwrap() * 512);
    assert_eq!(out.root_uuid, root.get("UUID").cloned());
    assert_eq!(out.efi_system_partition_uuid, None);
    assert!(boot_check(&disk, "bios").is_err());
    install_bootloader(&disk, out.root_uuid.as_deref().unwrap(), None, "bios").unwrap();
    assert_eq!(boot_check(&disk, "bios").unwrap().partition, 2);
    let err = boot_check(&disk, "uefi").unwrap_err().to_string();
    assert!(err.contains("no EFI system partition"), "{err}");
    // The table survives the boot code.
    assert_eq!(
        common::sfdisk(&disk.path)["partitions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // gpt on bios: a BIOS boot partition first.
    let disk = fixtures::sparse_disk(dir.path(), "sdb", 512 * MIB).unwrap();
    i.disk_label = Some("gpt".into());
    i.root_mb = Some(64);
    let out = write_image(&disk, &i, None, &options(dir.path()))
        .await
        .unwrap();
    let sf = common::sfdisk(&disk.path);
    let parts = sf["partitions"].as_array().unwrap();
    assert_eq!(parts[0]["type"], table::GPT_BIOS_BOOT);
    assert_eq!(parts[0]["size"].as_u64().unwrap(), 2048);
    assert!(out.partitions.contains_key("bios_boot"));
    install_bootloader(&disk, out.root_uuid.as_deref().unwrap(), None, "bios").unwrap();
    assert_eq!(boot_check(&disk, "bios").unwrap().partition, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_whole_disk_image_with_config_drive() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("whole.raw");
    let wd =
        fixtures::whole_disk_image(&img, 96 * MIB, &fixtures::root_files("whole-host")).unwrap();
    let sum = fixtures::file_digest(&img, "sha512").unwrap();
    let drive: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let base = common::serve(HashMap::from([
        ("/whole.raw".to_string(), std::fs::read(&img).unwrap()),
        (
            "/cd".to_string(),
            fixtures::gzip_base64(&drive).unwrap().into_bytes(),
        ),
    ]))
    .await;
    let disk = fixtures::sparse_disk(dir.path(), "sda", 512 * MIB).unwrap();
    let i = ImageInfo {
        id: "whole".into(),
        // The first URL fails: the next one is used.
        urls: vec![format!("{base}/missing"), format!("{base}/whole.raw")],
        disk_format: Some("raw".into()),
        os_hash_algo: Some("sha512".into()),
        os_hash_value: Some(sum),
        ..Default::default()
    };
    let out = write_image(&disk, &i, Some(&format!("{base}/cd")), &options(dir.path()))
        .await
        .unwrap();
    assert_eq!(out.bytes_written, 96 * MIB);
    // A whole disk's root is its MBR disk signature, as upstream reports it.
    let mut signature = [0u8; 4];
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(&disk.path).unwrap();
        file.seek(SeekFrom::Start(440)).unwrap();
        file.read_exact(&mut signature).unwrap();
    }
    assert_eq!(
        out.root_uuid,
        Some(format!("0x{:08x}", u32::from_le_bytes(signature)))
    );
    // Streamed without staging, and sparse.
    assert!(
        common::allocated(&disk.path) < 40 * MIB,
        "{}",
        common::allocated(&disk.path)
    );

    let sf = common::sfdisk(&disk.path);
    assert_eq!(sf["label"], "gpt");
    assert_eq!(
        sf["lastlba"].as_u64().unwrap(),
        512 * MIB / 512 - 34,
        "backup GPT moved to the disk end"
    );
    let parts = sf["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 4);
    let cd = &parts[3];
    let cd_start = cd["start"].as_u64().unwrap() * 512;
    let cd_end = cd_start + cd["size"].as_u64().unwrap() * 512;
    assert_eq!(cd_start % MIB, 0);
    assert!(
        cd_end <= 512 * MIB - 33 * 512 && cd_end > 511 * MIB,
        "{cd_end}"
    );
    assert!(cd_end - cd_start >= 63 * MIB);
    assert_eq!(common::read_bytes(&disk.path, cd_start, drive.len()), drive);
    assert_eq!(
        out.configdrive_uuid,
        cd["uuid"].as_str().map(str::to_lowercase)
    );
    assert_eq!(hostname_of(&disk, &parts[2], dir.path()), "whole-host\n");
    assert_eq!(
        common::blkid(&disk.path, wd.root.start).get("UUID"),
        Some(&wd.root_uuid)
    );
    assert_eq!(boot_check(&disk, "uefi").unwrap().partition, 2);
    assert_eq!(boot_check(&disk, "bios").unwrap().partition, 3);

    // Without a config drive the backup GPT still moves to the disk end.
    let disk2 = fixtures::sparse_disk(dir.path(), "sdb", 256 * MIB).unwrap();
    write_image(&disk2, &i, None, &options(dir.path()))
        .await
        .unwrap();
    let sf = common::sfdisk(&disk2.path);
    assert_eq!(sf["lastlba"].as_u64().unwrap(), 256 * MIB / 512 - 34);
    assert_eq!(sf["partitions"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_image_staged_when_not_streamed_and_mbr_config_drive() {
    let dir = tempfile::tempdir().unwrap();
    // An msdos whole-disk image: one ext4 partition.
    let img = dir.path().join("mbr.raw");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(48 * MIB)
        .unwrap();
    let t = table::write(
        &img,
        &table::Table {
            label: table::Label::Msdos,
            id: String::new(),
            partitions: vec![table::Partition {
                number: 1,
                start: MIB,
                size: 46 * MIB,
                kind: "83".into(),
                uuid: String::new(),
                name: None,
                bootable: true,
            }],
        },
    )
    .unwrap();
    let tree = tempfile::tempdir().unwrap();
    fixtures::write_tree(tree.path(), &fixtures::root_files("mbr-host")).unwrap();
    fixtures::ext4_from_dir(&img, MIB, 46 * MIB, tree.path(), "root").unwrap();
    let md5 = fixtures::file_digest(&img, "md5").unwrap();
    let base = common::serve(HashMap::from([(
        "/mbr.raw".to_string(),
        std::fs::read(&img).unwrap(),
    )]))
    .await;
    let disk = fixtures::sparse_disk(dir.path(), "sda", 256 * MIB).unwrap();
    let mut i = ImageInfo {
        id: "mbr".into(),
        urls: vec![format!("{base}/mbr.raw")],
        checksum: Some(md5),
        stream_raw_images: Some(false),
        ..Default::default()
    };
    let opts = options(dir.path());
    let err = write_image(&disk, &i, None, &opts).await.unwrap_err();
    assert!(
        matches!(err, ImagingError::Invalid(ref m) if m.contains("md5")),
        "{err}"
    );
    let opts = WriteOptions {
        allow_md5: true,
        ..opts
    };
    let cd = fixtures::gzip_base64(b"mbr config drive").unwrap();
    let out = write_image(&disk, &i, Some(&cd), &opts).await.unwrap();
    let sf = common::sfdisk(&disk.path);
    assert_eq!(sf["label"], "dos");
    assert_eq!(sf["id"].as_str().unwrap(), t.id);
    let parts = sf["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    let end = (parts[1]["start"].as_u64().unwrap() + parts[1]["size"].as_u64().unwrap()) * 512;
    assert_eq!(end, 256 * MIB);
    assert_eq!(
        out.configdrive_uuid.as_deref(),
        Some(format!("{}-02", &t.id[2..]).as_str())
    );
    assert_eq!(
        common::read_bytes(&disk.path, parts[1]["start"].as_u64().unwrap() * 512, 16),
        b"mbr config drive"
    );
    assert_eq!(hostname_of(&disk, &parts[0], dir.path()), "mbr-host\n");
    // The staging file is gone.
    assert_eq!(
        std::fs::read_dir(dir.path().join("work")).unwrap().count(),
        0
    );

    // Redeploying a different image over it leaves no trace of the old
    // data where the new image has zeros.
    std::fs::write(&img, vec![0u8; 4 * MIB as usize]).unwrap();
    let mut patterned = vec![0u8; 4 * MIB as usize];
    patterned[..4].copy_from_slice(b"NEW!");
    std::fs::write(&img, &patterned).unwrap();
    let base = common::serve(HashMap::from([("/new.raw".to_string(), patterned.clone())])).await;
    i.urls = vec![format!("{base}/new.raw")];
    i.checksum = Some(fixtures::file_digest(&img, "md5").unwrap());
    i.stream_raw_images = Some(true);
    write_image(&disk, &i, None, &opts).await.unwrap();
    assert_eq!(
        common::read_bytes(&disk.path, 0, 4 * MIB as usize),
        patterned
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_mismatch_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let body = vec![7u8; 1 << 20];
    let base = common::serve(HashMap::from([("/img".to_string(), body)])).await;
    let disk = fixtures::sparse_disk(dir.path(), "sda", 64 * MIB).unwrap();
    let wrong = "0".repeat(64);
    let err = write_image(
        &disk,
        &info(format!("{base}/img"), wrong.clone()),
        None,
        &options(dir.path()),
    )
    .await
    .unwrap_err();
    match err {
        ImagingError::Checksum(m) => {
            assert!(m.contains(&wrong), "{m}");
            assert!(m.contains("expected") && m.contains("got"), "{m}");
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_small_and_bad_images() {
    let dir = tempfile::tempdir().unwrap();
    let (qcow, sum) = qcow2_partition_image(dir.path(), "big");
    let raw = vec![1u8; 8 << 20];
    let raw_sum = {
        let p = dir.path().join("raw");
        std::fs::write(&p, &raw).unwrap();
        fixtures::file_digest(&p, "sha256").unwrap()
    };
    let base = common::serve(HashMap::from([
        ("/img.qcow2".to_string(), qcow),
        ("/raw".to_string(), raw),
    ]))
    .await;
    let opts = options(dir.path());

    // Whole-disk raw image larger than the disk.
    let tiny = fixtures::sparse_disk(dir.path(), "sdt", 4 * MIB).unwrap();
    let err = write_image(
        &tiny,
        &info(format!("{base}/raw"), raw_sum.clone()),
        None,
        &opts,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImagingError::TooSmall(_)), "{err}");
    // qcow2 whose virtual size exceeds the disk.
    let small = fixtures::sparse_disk(dir.path(), "sds", 16 * MIB).unwrap();
    let err = write_image(
        &small,
        &info(format!("{base}/img.qcow2"), sum.clone()),
        None,
        &opts,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ImagingError::TooSmall(ref m) if m.contains("virtual size")),
        "{err}"
    );
    // Partition image: root partition smaller than the image.
    let disk = fixtures::sparse_disk(dir.path(), "sda", 256 * MIB).unwrap();
    let mut i = info(format!("{base}/img.qcow2"), sum.clone());
    i.image_type = Some("partition".into());
    i.root_mb = Some(20);
    let err = write_image(&disk, &i, None, &opts).await.unwrap_err();
    assert!(matches!(err, ImagingError::TooSmall(_)), "{err}");
    // Partitions larger than the disk.
    i.root_mb = Some(1000);
    let err = write_image(&disk, &i, None, &opts).await.unwrap_err();
    assert!(
        matches!(err, ImagingError::TooSmall(ref m) if m.contains("too small")),
        "{err}"
    );
    // Declared raw, content qcow2.
    let mut i = info(format!("{base}/img.qcow2"), sum);
    i.disk_format = Some("raw".into());
    let err = write_image(&disk, &i, None, &opts).await.unwrap_err();
    assert!(
        matches!(err, ImagingError::Invalid(ref m) if m.contains("declares disk_format raw")),
        "{err}"
    );
    // Unsupported declared format.
    i.disk_format = Some("vmdk".into());
    assert!(matches!(
        write_image(&disk, &i, None, &opts).await,
        Err(ImagingError::Invalid(_))
    ));
    // Every URL failing.
    let i = info(format!("{base}/nope"), raw_sum);
    let err = write_image(&disk, &i, None, &opts).await.unwrap_err();
    assert!(
        matches!(err, ImagingError::Download(ref m) if m.contains("404")),
        "{err}"
    );
}

#[test]
fn no_disk_matches_the_hints() {
    let dir = tempfile::tempdir().unwrap();
    let disks = vec![
        fixtures::sparse_disk(dir.path(), "sda", 8 << 30).unwrap(),
        fixtures::sparse_disk(dir.path(), "sdb", 5 << 30).unwrap(),
    ];
    let picked = hints::select_root_device(&disks, None).unwrap();
    assert_eq!(picked.name, "/dev/sdb");
    let h = serde_json::json!({"size": ">= 100"});
    let err = hints::select_root_device(&disks, Some(&h)).unwrap_err();
    assert!(
        matches!(err, ImagingError::NoDisk(ref m) if m.contains("hints")),
        "{err}"
    );
    let h = serde_json::json!({"serial": "ferrite-sda"});
    assert_eq!(
        hints::select_root_device(&disks, Some(&h)).unwrap().name,
        "/dev/sda"
    );
}

/// Throughput of parallel raw whole-disk deploys (run with --ignored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn parallel_raw_deploys_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("whole.raw");
    fixtures::whole_disk_image(&img, 64 * MIB, &fixtures::root_files("bench")).unwrap();
    // Fill part of the root with incompressible data, as a real image has.
    let noise: Vec<u8> = (0..(24 * MIB) as usize)
        .map(|i| (i * 7919 % 251) as u8)
        .collect();
    ferrite_imaging::util::write_at(&img, 40 * MIB, &noise).unwrap();
    let sum = fixtures::file_digest(&img, "sha256").unwrap();
    let base = common::serve(HashMap::from([(
        "/w".to_string(),
        std::fs::read(&img).unwrap(),
    )]))
    .await;
    let n = 16;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for k in 0..n {
        let disk = fixtures::sparse_disk(dir.path(), &format!("d{k}"), 256 * MIB).unwrap();
        let i = info(format!("{base}/w"), sum.clone());
        let opts = options(dir.path());
        tasks.push(tokio::spawn(async move {
            write_image(&disk, &i, None, &opts).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{n} x 64 MiB in {secs:.2}s: {:.0} MB/s",
        (n * 64) as f64 / secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_preserves_the_ephemeral_partition() {
    let dir = tempfile::tempdir().unwrap();
    let (qcow, sum) = qcow2_partition_image(dir.path(), "eph-host");
    let base = common::serve(HashMap::from([("/img.qcow2".to_string(), qcow)])).await;
    let disk = fixtures::sparse_disk(dir.path(), "sda", 512 * MIB).unwrap();
    let mut i = info(format!("{base}/img.qcow2"), sum);
    i.image_type = Some("partition".into());
    i.boot_mode = Some("bios".into());
    i.ephemeral_mb = Some(32);
    i.root_mb = Some(64);
    let first = write_image(&disk, &i, None, &options(dir.path()))
        .await
        .unwrap();
    let eph = table::read(&disk.path).unwrap().unwrap().partitions[0].clone();
    let eph_fs = common::blkid(&disk.path, eph.start)["UUID"].clone();

    // preserve_ephemeral: same table, same ephemeral filesystem.
    i.preserve_ephemeral = Some(true);
    let second = write_image(&disk, &i, None, &options(dir.path()))
        .await
        .unwrap();
    assert_eq!(second.partitions, first.partitions);
    assert_eq!(common::blkid(&disk.path, eph.start)["UUID"], eph_fs);

    // Without it the ephemeral partition is made anew.
    i.preserve_ephemeral = Some(false);
    let third = write_image(&disk, &i, None, &options(dir.path()))
        .await
        .unwrap();
    assert_ne!(third.partitions["ephemeral"], first.partitions["ephemeral"]);
    assert_ne!(common::blkid(&disk.path, eph.start)["UUID"], eph_fs);

    // A different layout cannot preserve it.
    i.preserve_ephemeral = Some(true);
    i.ephemeral_mb = Some(48);
    let err = write_image(&disk, &i, None, &options(dir.path()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImagingError::Invalid(ref m) if m.contains("cannot preserve")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_disk_image_with_its_own_config_drive_partition() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("cd.raw");
    fixtures::whole_disk_image(&img, 80 * MIB, &fixtures::root_files("own-cd")).unwrap();
    // Grow the image and add an 8 MiB config-2 partition of its own.
    std::fs::File::options()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(96 * MIB)
        .unwrap();
    table::relocate_backup_gpt(&img).unwrap();
    let own =
        table::append_partition(&img, 8 * MIB, table::GPT_LINUX, "83", Some("config-2")).unwrap();
    let sum = fixtures::file_digest(&img, "sha384").unwrap();
    let base = common::serve(HashMap::from([(
        "/cd.raw".to_string(),
        std::fs::read(&img).unwrap(),
    )]))
    .await;
    let disk = fixtures::sparse_disk(dir.path(), "sda", 256 * MIB).unwrap();
    let mut i = info(format!("{base}/cd.raw"), sum);
    i.os_hash_algo = Some("sha384".into());
    let drive = b"small drive".to_vec();
    let out = write_image(
        &disk,
        &i,
        Some(&fixtures::gzip_base64(&drive).unwrap()),
        &options(dir.path()),
    )
    .await
    .unwrap();
    let sf = common::sfdisk(&disk.path);
    assert_eq!(
        sf["partitions"].as_array().unwrap().len(),
        4,
        "no extra partition"
    );
    assert_eq!(out.configdrive_uuid.as_deref(), Some(own.uuid.as_str()));
    assert_eq!(
        common::read_bytes(&disk.path, own.start, drive.len()),
        drive
    );
}
