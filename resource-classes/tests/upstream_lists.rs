//! The standard resource classes and traits must equal the pinned upstream
//! Python packages (`data/versions.txt`).
//!
//! When a Python with those packages at the pinned versions is available
//! (`FERRITE_PYTHON`, else `python3`) the lists are compared with the live
//! packages. Without it they are checked against known facts about the
//! pinned releases. If `FERRITE_PYTHON` is set, the interpreter must work
//! and have the pinned versions, or the test fails. Under `CI=true` the live
//! comparison may not be skipped: `.ci/run` sets `FERRITE_PYTHON` to the
//! venv of `scripts/placement-conformance`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use ferrite_resource_classes::{
    is_standard_class, is_standard_trait, STANDARD_RESOURCE_CLASSES, STANDARD_TRAITS,
};

const VERSIONS: &str = include_str!("../data/versions.txt");

fn pinned(package: &str) -> &'static str {
    VERSIONS
        .lines()
        .find_map(|l| l.strip_prefix(package)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{package} missing from data/versions.txt"))
}

/// Run `code` under the configured Python; the first output line is the
/// package version, the rest the list. `None` when no usable Python.
fn from_python(package: &str, code: &str) -> Option<Vec<String>> {
    let explicit = std::env::var("FERRITE_PYTHON")
        .ok()
        .filter(|s| !s.is_empty());
    let strict = explicit.is_some();
    let python = explicit.unwrap_or_else(|| "python3".to_owned());
    let output = Command::new(&python).arg("-c").arg(code).output();
    let output = match output {
        Ok(o) if o.status.success() => o,
        Ok(o) if strict => panic!(
            "FERRITE_PYTHON={python} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) if strict => panic!("FERRITE_PYTHON={python} could not run: {e}"),
        _ => {
            ferrite_test_support::missing(
                &format!("{package} in {python}"),
                "set FERRITE_PYTHON to a python with the pinned packages \
                 (the venv of scripts/placement-conformance has them)",
            );
            eprintln!("checking the pinned {package} list offline");
            return None;
        }
    };
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines().map(str::to_owned);
    let version = lines.next().unwrap_or_default();
    if version != pinned(package) {
        assert!(
            !strict,
            "{python} has {package} {version}, but the lists are pinned to {}; \
             run data/regenerate.py",
            pinned(package)
        );
        ferrite_test_support::missing(
            &format!(
                "{package} {} in {python} (it has {version})",
                pinned(package)
            ),
            "set FERRITE_PYTHON to a python with the pinned packages",
        );
        eprintln!("checking the pinned {package} list offline");
        return None;
    }
    Some(lines.collect())
}

#[test]
fn resource_classes_match_os_resource_classes() {
    let code = "import importlib.metadata as m, os_resource_classes as r\n\
                print(m.version('os-resource-classes'))\n\
                print('\\n'.join(r.STANDARDS))";
    match from_python("os-resource-classes", code) {
        Some(upstream) => assert_eq!(STANDARD_RESOURCE_CLASSES, upstream),
        None => {
            assert_eq!(pinned("os-resource-classes"), "1.1.0");
            assert_eq!(STANDARD_RESOURCE_CLASSES.len(), 21);
            let expected_prefix = [
                "VCPU",
                "MEMORY_MB",
                "DISK_GB",
                "PCI_DEVICE",
                "SRIOV_NET_VF",
                "NUMA_SOCKET",
                "NUMA_CORE",
                "NUMA_THREAD",
                "NUMA_MEMORY_MB",
                "IPV4_ADDRESS",
                "VGPU",
                "VGPU_DISPLAY_HEAD",
            ];
            assert_eq!(&STANDARD_RESOURCE_CLASSES[..12], expected_prefix);
            assert_eq!(STANDARD_RESOURCE_CLASSES[14], "PCPU");
            assert!(is_standard_class("NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC"));
        }
    }
}

#[test]
fn traits_match_os_traits() {
    let code = "import importlib.metadata as m, os_traits as t\n\
                print(m.version('os-traits'))\n\
                print('\\n'.join(sorted(set(t.get_traits()))))";
    match from_python("os-traits", code) {
        Some(upstream) => assert_eq!(STANDARD_TRAITS, upstream),
        None => {
            assert_eq!(pinned("os-traits"), "3.9.0");
            assert_eq!(STANDARD_TRAITS.len(), 377);
            for name in [
                "COMPUTE_STATUS_DISABLED",
                "COMPUTE_VOLUME_MULTI_ATTACH",
                "HW_CPU_X86_AVX512F",
                "HW_GPU_API_VULKAN",
                "HW_NIC_SRIOV",
                "MISC_SHARES_VIA_AGGREGATE",
                "STORAGE_DISK_SSD",
                "COMPUTE_NODE",
                "OWNER_NOVA",
            ] {
                assert!(is_standard_trait(name), "{name}");
            }
            assert!(STANDARD_TRAITS.iter().all(|t| !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')));
        }
    }
}
