//! Table-driven tests of `parse_query`: every upstream error message, and
//! the accepted syntax at various microversions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{query, U1, U2};
use ferrite_resource_classes::{
    parse_query, GroupPolicy, ParseError, ParseOptions, RequestGroup, RequestSpec,
};

fn parse(minor: u16, q: &str) -> Result<RequestSpec, ParseError> {
    parse_query(&query(q), &ParseOptions::new(1, minor))
}

fn ok(minor: u16, q: &str) -> RequestSpec {
    match parse(minor, q) {
        Ok(spec) => spec,
        Err(e) => panic!("1.{minor} {q:?} failed: {e}"),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn res(items: &[(&str, u64)]) -> BTreeMap<String, u64> {
    items.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[test]
fn every_error_case_gives_upstreams_message() {
    let cases = common::error_cases();
    assert!(cases.len() >= 45);
    for (minor, q, want) in cases {
        match parse(minor, &q) {
            Ok(spec) => panic!("1.{minor} {q:?} parsed, want error {want:?}: {spec:?}"),
            Err(e) => assert_eq!(e.to_string(), want, "1.{minor} {q:?}"),
        }
    }
}

#[test]
fn error_codes() {
    let code = |minor, q: &str| parse(minor, q).unwrap_err().code();
    assert_eq!(code(39, "required=A"), "placement.query.missing_value");
    assert_eq!(
        code(39, "resources=A:1&root_required=A&root_required=B"),
        "placement.query.duplicate_key"
    );
    assert_eq!(
        code(39, "resources=A:1&same_subtree=_X"),
        "placement.query.bad_value"
    );
    assert_eq!(code(39, "resources=A:0"), "placement.undefined_code");
}

#[test]
fn upstream_docstring_example() {
    let q = "resources=VCPU:2,MEMORY_MB:1024,DISK_GB:50\
             &required=HW_CPU_X86_VMX,CUSTOM_STORAGE_RAID\
             &member_of={U1}\
             &member_of=in:{U2},ddbd9226-d6a6-475e-a85f-0609914dd058\
             &in_tree=b9fc9abb-afc2-44d7-9722-19afc977446a\
             &resources1=SRIOV_NET_VF:2\
             &required1=CUSTOM_PHYSNET_PUBLIC,CUSTOM_SWITCH_A\
             &resources2=SRIOV_NET_VF:1\
             &required2=!CUSTOM_PHYSNET_PUBLIC\
             &required2=CUSTOM_GOLD\
             &required2=in:CUSTOM_FOO,CUSTOM_BAR\
             &group_policy=isolate&limit=10";
    let spec = ok(39, q);
    assert_eq!(spec.groups.len(), 3);
    assert_eq!(spec.group_policy, Some(GroupPolicy::Isolate));
    assert_eq!(spec.limit, Some(10));
    let g = spec.group("").unwrap();
    assert!(!g.use_same_provider());
    assert_eq!(
        g.resources,
        res(&[("VCPU", 2), ("MEMORY_MB", 1024), ("DISK_GB", 50)])
    );
    assert_eq!(
        g.required_traits,
        set(&["HW_CPU_X86_VMX", "CUSTOM_STORAGE_RAID"])
    );
    assert_eq!(
        g.member_of,
        vec![
            set(&[U1]),
            set(&[U2, "ddbd9226-d6a6-475e-a85f-0609914dd058"])
        ]
    );
    assert_eq!(
        g.in_tree.as_deref(),
        Some("b9fc9abb-afc2-44d7-9722-19afc977446a")
    );
    let g2 = spec.group("2").unwrap();
    assert!(g2.use_same_provider());
    assert_eq!(g2.required_traits, set(&["CUSTOM_GOLD"]));
    assert_eq!(g2.forbidden_traits, set(&["CUSTOM_PHYSNET_PUBLIC"]));
    assert_eq!(g2.any_of_traits, vec![set(&["CUSTOM_FOO", "CUSTOM_BAR"])]);
}

#[test]
fn groups_are_sorted_unsuffixed_first() {
    let spec = ok(
        39,
        "resources_b=A:1&resources2=A:1&resources=A:1&resources10=A:1&group_policy=none",
    );
    let suffixes: Vec<&str> = spec.groups.iter().map(|g| g.suffix.as_str()).collect();
    assert_eq!(suffixes, ["", "10", "2", "_b"]);
    assert_eq!(spec.suffixed_groups().count(), 3);
}

#[test]
fn microversion_gates() {
    // Each feature is rejected one microversion before it appears.
    let gated = [
        (16, "resources=A:1&limit=1"),
        (17, "resources=A:1&required=T"),
        (21, "resources=A:1&member_of={U1}"),
        (22, "resources=A:1&required=!T"),
        (24, "resources=A:1&member_of={U1}&member_of={U2}"),
        (25, "resources1=A:1"),
        (25, "resources=A:1&group_policy=none"),
        (31, "resources=A:1&in_tree={U1}"),
        (32, "resources=A:1&member_of=!{U1}"),
        (33, "resources_X=A:1"),
        (35, "resources=A:1&root_required=T"),
        (36, "resources=A:1&resources_X=A:1&same_subtree=_X"),
        (36, "resources=A:1&required_X=T&same_subtree=_X"),
        (39, "resources=A:1&required=in:T,U"),
    ];
    for (minor, q) in gated {
        assert!(ok(minor, q).groups.iter().any(|g| !g.resources.is_empty()));
        assert!(
            parse(minor - 1, q).is_err(),
            "1.{} accepted {q:?}",
            minor - 1
        );
    }
}

#[test]
fn versions_outside_the_known_range_are_clamped() {
    assert!(parse(9, "resources=A:1").is_ok());
    assert!(parse(9, "resources=A:1&limit=1").is_err());
    assert!(parse(45, "resources=A:1&required=in:T,U").is_ok());
    assert!(parse_query(&query("resources=A:1"), &ParseOptions::new(2, 0)).is_ok());
    assert_eq!(ParseOptions::default(), ParseOptions::latest());
}

#[test]
fn lenient_value_syntax_matches_upstream() {
    // A repeated class keeps the last amount; a repeated `resources` key
    // replaces the earlier value entirely.
    let spec = ok(39, "resources=VCPU:1,VCPU:4&resources=DISK_GB: +0_10 ");
    assert_eq!(spec.groups[0].resources, res(&[("DISK_GB", 10)]));
    // `!!T` is `!T`; whitespace around trait names is dropped.
    let spec = ok(39, "resources=A:1&required= T1 ,!!T2");
    assert_eq!(spec.groups[0].required_traits, set(&["T1"]));
    assert_eq!(spec.groups[0].forbidden_traits, set(&["T2"]));
    // Before 1.39 only the last `required` counts; earlier ones are not
    // even validated.
    let spec = ok(38, "resources=A:1&required=in:,&required=T");
    assert_eq!(spec.groups[0].required_traits, set(&["T"]));
    // `in:T` is just a required trait.
    let spec = ok(39, "resources=A:1&required=in:T,T");
    assert_eq!(spec.groups[0].required_traits, set(&["T"]));
    assert!(spec.groups[0].any_of_traits.is_empty());
    // Aggregate UUIDs are kept as written; in_tree is trimmed.
    let upper = U1.to_uppercase();
    let spec = ok(
        39,
        &format!("resources=A:1&member_of={upper}&in_tree= {U2} "),
    );
    assert_eq!(spec.groups[0].member_of, vec![set(&[&upper])]);
    assert_eq!(spec.groups[0].in_tree.as_deref(), Some(U2));
    // Forbidden aggregates from several values are merged.
    let spec = ok(39, "resources=A:1&member_of=!{U1}&member_of=!in:{U2},{U1}");
    assert_eq!(spec.groups[0].forbidden_aggregates, set(&[U1, U2]));
    assert!(spec.groups[0].member_of.is_empty());
    // A trailing newline on a group key is tolerated (Python's `$`).
    let spec = ok(39, "resources=A:1&resources1\n=B:2&limit=5\n");
    assert_eq!(spec.group("1").unwrap().resources, res(&[("B", 2)]));
    assert_eq!(spec.limit, Some(5));
    // Huge numbers saturate.
    let spec = ok(39, "resources=A:99999999999999999999999&limit=99999999999");
    assert_eq!(spec.groups[0].resources["A"], u64::MAX);
    assert_eq!(spec.limit, Some(u32::MAX));
}

#[test]
fn first_value_wins_for_wide_parameters() {
    // Upstream validates the last value but uses the first.
    let spec = ok(39, "resources=A:1&group_policy=isolate&group_policy=none");
    assert_eq!(spec.group_policy, Some(GroupPolicy::Isolate));
    let spec = ok(39, "resources=A:1&group_policy=bogus&group_policy=isolate");
    assert_eq!(spec.group_policy, Some(GroupPolicy::None));
    let spec = ok(39, "resources=A:1&limit=3&limit=7");
    assert_eq!(spec.limit, Some(3));
}

#[test]
fn resourceless_groups_from_1_36() {
    let spec = ok(
        36,
        "resources_COMPUTE=VCPU:1&required_NIC=CUSTOM_PHYSNET\
         &member_of_ACCEL=in:{U1},{U2}&same_subtree=_COMPUTE,_NIC&same_subtree= _ACCEL , _NIC\
         &group_policy=none&root_required=CUSTOM_ROOT,!CUSTOM_BAD",
    );
    assert_eq!(spec.groups.len(), 3);
    let nic = spec.group("_NIC").unwrap();
    assert!(nic.is_resourceless());
    assert_eq!(nic.required_traits, set(&["CUSTOM_PHYSNET"]));
    assert_eq!(
        spec.same_subtree,
        vec![set(&["_COMPUTE", "_NIC"]), set(&["_ACCEL", "_NIC"])]
    );
    assert_eq!(spec.root_required, set(&["CUSTOM_ROOT"]));
    assert_eq!(spec.root_forbidden, set(&["CUSTOM_BAD"]));
}

#[test]
fn forbidden_only_group_before_1_36_is_not_an_orphaned_trait() {
    // Upstream's orphan check only looks at required (not forbidden) traits.
    let err = parse(35, "resources=A:1&required1=!T").unwrap_err();
    assert_eq!(err, ParseError::GroupWithoutResources);
}

#[test]
fn new_group_helpers() {
    let g = RequestGroup::new("_X");
    assert!(g.use_same_provider() && g.is_resourceless());
    assert_eq!(GroupPolicy::Isolate.as_str(), "isolate");
}
