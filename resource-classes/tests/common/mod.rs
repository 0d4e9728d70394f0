//! Helpers shared by the integration tests: query builders, a table of
//! invalid queries with upstream's messages, and a strategy for random
//! valid request specs.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use ferrite_resource_classes::{GroupPolicy, RequestGroup, RequestSpec};
use proptest::prelude::*;

pub const U1: &str = "9323b2b1-82c9-4e91-bdff-e95e808ef954";
pub const U2: &str = "8592a199-7d73-4465-8df6-ab00a6243c82";

/// Split `k=v&k=v` (no percent-decoding; `{U1}` / `{U2}` are replaced by
/// UUIDs). An empty string is an empty query.
pub fn query(s: &str) -> Vec<(String, String)> {
    let s = s.replace("{U1}", U1).replace("{U2}", U2);
    if s.is_empty() {
        return Vec::new();
    }
    s.split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.to_owned(), String::new()),
        })
        .collect()
}

const BAD_RESOURCES: &str = "Badly formed resources parameter. Expected resources query \
    string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: ";
const PATTERNS_1_25: &str = "'^member_of([1-9][0-9]*)?$', '^required([1-9][0-9]*)?$', \
    '^resources([1-9][0-9]*)?$'";
const PATTERNS_1_31: &str = "'^in_tree([1-9][0-9]*)?$', '^member_of([1-9][0-9]*)?$', \
    '^required([1-9][0-9]*)?$', '^resources([1-9][0-9]*)?$'";
const PATTERNS_1_33: &str = "'^in_tree([a-zA-Z0-9_-]{1,64})?$', \
    '^member_of([a-zA-Z0-9_-]{1,64})?$', '^required([a-zA-Z0-9_-]{1,64})?$', \
    '^resources([a-zA-Z0-9_-]{1,64})?$'";

/// `(minor microversion, query, expected message)` for invalid queries.
/// Messages are upstream's (schema errors: their first line only).
pub fn error_cases() -> Vec<(u16, String, String)> {
    let iqp = "Invalid query string parameters: ";
    let long_suffix = "A".repeat(65);
    let cases: Vec<(u16, String, String)> =
        vec![
        // The parameter schema.
        (10, "required=A".into(), format!("{iqp}'resources' is a required property")),
        (
            24,
            "resources=VCPU:1&foo=1&bar=2".into(),
            format!("{iqp}Additional properties are not allowed ('bar', 'foo' were unexpected)"),
        ),
        (
            16,
            "resources=VCPU:1&required=A".into(),
            format!("{iqp}Additional properties are not allowed ('required' was unexpected)"),
        ),
        (
            15,
            "resources=VCPU:1&limit=1".into(),
            format!("{iqp}Additional properties are not allowed ('limit' was unexpected)"),
        ),
        (
            25,
            "resources=VCPU:1&resources_A=VCPU:1".into(),
            format!("{iqp}'resources_A' does not match any of the regexes: {PATTERNS_1_25}"),
        ),
        (
            30,
            "resources=VCPU:1&in_tree={U1}".into(),
            format!("{iqp}'in_tree' does not match any of the regexes: {PATTERNS_1_25}"),
        ),
        (
            32,
            "resources=VCPU:1&resources01=VCPU:1".into(),
            format!("{iqp}'resources01' does not match any of the regexes: {PATTERNS_1_31}"),
        ),
        (
            39,
            format!("resources=VCPU:1&resources{long_suffix}=VCPU:1&it's=1"),
            format!(
                "{iqp}\"it's\", 'resources{long_suffix}' do not match any of the regexes: \
                 {PATTERNS_1_33}"
            ),
        ),
        (
            34,
            "resources=VCPU:1&root_required=A".into(),
            format!("{iqp}'root_required' does not match any of the regexes: {PATTERNS_1_33}"),
        ),
        (
            39,
            "resources=VCPU:1&limit=0".into(),
            format!("{iqp}'0' does not match '^[1-9][0-9]*$'"),
        ),
        (
            39,
            "resources=VCPU:1&group_policy=all".into(),
            format!("{iqp}'all' is not one of ['none', 'isolate']"),
        ),
        (
            39,
            "group_policy=all&limit=x&foo=1".into(),
            format!("{iqp}'foo' does not match any of the regexes: {PATTERNS_1_33}"),
        ),
        (
            39,
            "group_policy=all&limit=x".into(),
            format!("{iqp}'x' does not match '^[1-9][0-9]*$'"),
        ),
        // Request-wide parameters.
        (
            39,
            "resources=VCPU:1&root_required=A&root_required=B".into(),
            "Query parameter 'root_required' may be specified only once.".into(),
        ),
        (
            39,
            "resources=VCPU:1&root_required=B,!A,A".into(),
            "Conflicting required and forbidden traits found in root_required: A".into(),
        ),
        (
            39,
            "resources=VCPU:1&root_required=in:A,B".into(),
            format!(
                "{iqp}The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since \
                 microversion 1.39. Got: in:A,B"
            ),
        ),
        (
            39,
            "resources=VCPU:1&same_subtree=_A, ".into(),
            "Empty string (unsuffixed group) can not be specified in `same_subtree` ".into(),
        ),
        // Values.
        (39, "resources=".into(), format!("{BAD_RESOURCES}empty string.")),
        (39, "resources=VCPU".into(), format!("{BAD_RESOURCES}VCPU.")),
        (39, "resources=VCPU:1,".into(), format!("{BAD_RESOURCES}.")),
        (
            39,
            "resources=VCPU:a".into(),
            "Requested resource VCPU expected positive integer amount. Got: a.".into(),
        ),
        (
            39,
            "resources=VCPU:-0".into(),
            "Requested resource VCPU requires amount >= 1. Got: 0.".into(),
        ),
        (
            38,
            "resources=VCPU:1&required=in:A,B".into(),
            format!(
                "{iqp}The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since \
                 microversion 1.39. Got: in:A,B"
            ),
        ),
        (
            39,
            "resources=VCPU:1&required=A&required=in:B,C&required=in:,".into(),
            format!(
                "{iqp}Expected 'required' parameter value of the form: \
                 in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: in:,"
            ),
        ),
        (
            39,
            "resources=VCPU:1&required=in:A,!B".into(),
            format!(
                "{iqp}The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not support forbidden \
                 traits. Got: in:A,!B"
            ),
        ),
        (
            39,
            "resources=VCPU:1&required=A,,B".into(),
            format!(
                "{iqp}Expected 'required' parameter value of the form: \
                 HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got an empty trait in: A,,B"
            ),
        ),
        (
            21,
            "resources=VCPU:1&required=".into(),
            format!(
                "{iqp}Expected 'required' parameter value of the form: \
                 HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: "
            ),
        ),
        (
            21,
            "resources=VCPU:1&required=A,!B".into(),
            format!(
                "{iqp}Expected 'required' parameter value of the form: \
                 HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: A,!B"
            ),
        ),
        (
            23,
            "resources=VCPU:1&member_of={U1}&member_of={U2}".into(),
            "Multiple member_of parameters are not supported".into(),
        ),
        (
            31,
            "resources1=VCPU:1&member_of1=!{U1}".into(),
            "Forbidden member_of1 parameters are not supported in the specified microversion"
                .into(),
        ),
        (
            39,
            "resources=VCPU:1&member_of={U1},{U2}".into(),
            format!(
                "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' \
                 keyword using the valid microversion. Got: {U1},{U2}"
            ),
        ),
        (
            39,
            "resources=VCPU:1&member_of=in:{U1},nope".into(),
            format!("{iqp}Expected 'member_of' parameter to contain valid UUID(s). Got: nope"),
        ),
        (
            39,
            "resources=VCPU:1&in_tree=nope ".into(),
            format!("{iqp}Expected 'in_tree' parameter to be a format of uuid. Got: nope "),
        ),
        // Parameters are checked in request order.
        (
            38,
            "required=in:A&resources=VCPU:x".into(),
            format!(
                "{iqp}The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since \
                 microversion 1.39. Got: in:A"
            ),
        ),
        (
            38,
            "resources=VCPU:x&required=in:A".into(),
            "Requested resource VCPU expected positive integer amount. Got: x.".into(),
        ),
        // Group consistency, 1.36 and later.
        (
            39,
            "required=A".into(),
            "There must be at least one resources or resources[$S] parameter.".into(),
        ),
        (
            39,
            "".into(),
            "There must be at least one resources or resources[$S] parameter.".into(),
        ),
        (
            39,
            "resources=VCPU:1&required_B=A".into(),
            "Resourceless suffixed group request should be specified in `same_subtree` query \
             param: bad group(s) - ['_B']."
                .into(),
        ),
        (
            39,
            "resources_A=VCPU:1&required=A&same_subtree=_A".into(),
            "Resourceless suffixed group request should be specified in `same_subtree` query \
             param: bad group(s) - ['']."
                .into(),
        ),
        (
            39,
            "resources_A=VCPU:1&resources=VCPU:1&same_subtree=_A,_B".into(),
            "Real suffixes should be specified in `same_subtree`: ['_B'] not found in \
             ['_A', '']."
                .into(),
        ),
        // Group consistency before 1.36.
        (
            35,
            "resources=VCPU:1&required1=A&member_of2={U1}".into(),
            "All traits parameters must be associated with resources.  Found the following \
             orphaned traits keys: required1"
                .into(),
        ),
        (
            35,
            "resources=VCPU:1&member_of1={U1}&required2=!A".into(),
            "All member_of parameters must be associated with resources. Found the following \
             orphaned member_of keys: member_of1"
                .into(),
        ),
        (
            35,
            "resources=VCPU:1&in_tree1={U1}".into(),
            "All request groups must specify resources.".into(),
        ),
        (
            25,
            "".into(),
            "At least one request group (`resources` or `resources{$S}`) is required.".into(),
        ),
        // Trait conflicts.
        (
            39,
            "resources=VCPU:1&required=A,!A".into(),
            "Conflicting required and forbidden traits found in the following traits keys: \
             required: (A)"
                .into(),
        ),
        (
            39,
            "resources_X=VCPU:1&required_X=in:B,A&required_X=!A,!B&resources=VCPU:1&required=C,!C"
                .into(),
            "Conflicting required and forbidden traits found in the following traits keys: \
             required: (C), required_X: (A, B)"
                .into(),
        ),
        // group_policy.
        (
            25,
            "resources1=VCPU:1&resources2=VCPU:1".into(),
            "The \"group_policy\" parameter is required when specifying more than one \
             \"resources{N}\" parameter."
                .into(),
        ),
        (
            39,
            "resources1=VCPU:1&resources2=VCPU:1&group_policy=&group_policy=none".into(),
            "The \"group_policy\" parameter is required when specifying more than one \
             \"resources{N}\" parameter."
                .into(),
        ),
        (
            39,
            "resources_A=VCPU:1&required_B=A&same_subtree=_A,_B".into(),
            "The \"group_policy\" parameter is required when specifying more than one \
             \"resources{N}\" parameter."
                .into(),
        ),
    ];
    cases
        .into_iter()
        .map(|(v, q, m)| (v, q, m.replace("{U1}", U1).replace("{U2}", U2)))
        .collect()
}

fn trait_name() -> impl Strategy<Value = String> {
    "(CUSTOM_)?[A-Z][A-Z0-9_]{0,6}"
}

fn uuid() -> impl Strategy<Value = String> {
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
}

fn raw_group() -> impl Strategy<Value = RequestGroup> {
    (
        prop::collection::btree_map("[A-Z][A-Z0-9_]{0,8}", 1u64..=u64::MAX, 0..3),
        prop::collection::btree_set(trait_name(), 0..3),
        prop::collection::btree_set(trait_name(), 0..3),
        prop::collection::vec(prop::collection::btree_set(trait_name(), 2..4), 0..3),
        prop::collection::vec(prop::collection::btree_set(uuid(), 1..3), 0..3),
        prop::collection::btree_set(uuid(), 0..3),
        prop::option::of(uuid()),
    )
        .prop_map(
            |(resources, required, forbidden, any_of, member_of, forbidden_aggs, in_tree)| {
                let forbidden: BTreeSet<String> =
                    forbidden.difference(&required).cloned().collect();
                // An any-of set whose every trait is forbidden is a conflict.
                let any_of = any_of
                    .into_iter()
                    .filter(|set| !set.is_subset(&forbidden))
                    .collect();
                RequestGroup {
                    suffix: String::new(),
                    resources,
                    required_traits: required,
                    forbidden_traits: forbidden,
                    any_of_traits: any_of,
                    member_of,
                    forbidden_aggregates: forbidden_aggs,
                    in_tree,
                }
            },
        )
}

fn has_constraints(g: &RequestGroup) -> bool {
    !(g.required_traits.is_empty()
        && g.forbidden_traits.is_empty()
        && g.any_of_traits.is_empty()
        && g.member_of.is_empty()
        && g.forbidden_aggregates.is_empty()
        && g.in_tree.is_none())
}

/// Random specs that upstream accepts at microversion 1.39.
pub fn spec_strategy() -> impl Strategy<Value = RequestSpec> {
    (
        prop::option::of(raw_group()),
        prop::collection::btree_map("[a-zA-Z0-9_-]{1,64}", raw_group(), 0..4),
        prop::collection::vec(
            prop::collection::vec(any::<prop::sample::Index>(), 1..3),
            0..3,
        ),
        any::<Option<bool>>(),
        prop::option::of(1u32..=u32::MAX),
        prop::collection::btree_set(trait_name(), 0..3),
        prop::collection::btree_set(trait_name(), 0..3),
    )
        .prop_map(
            |(unsuffixed, suffixed, subtree_picks, policy, limit, root_req, root_forb)| {
                let mut groups: Vec<RequestGroup> = Vec::new();
                if let Some(mut g) = unsuffixed {
                    if g.resources.is_empty() {
                        g.resources = BTreeMap::from([("VCPU".to_owned(), 1)]);
                    }
                    groups.push(g);
                }
                for (suffix, mut g) in suffixed {
                    g.suffix = suffix;
                    // A group with nothing at all would not be rendered.
                    if g.resources.is_empty() && !has_constraints(&g) {
                        g.resources = BTreeMap::from([("DISK_GB".to_owned(), 5)]);
                    }
                    groups.push(g);
                }
                if !groups.iter().any(|g| !g.resources.is_empty()) {
                    match groups.first_mut() {
                        Some(g) => g.resources = BTreeMap::from([("MEMORY_MB".to_owned(), 64)]),
                        None => groups.push(RequestGroup {
                            resources: BTreeMap::from([("VCPU".to_owned(), 2)]),
                            ..Default::default()
                        }),
                    }
                }
                let suffixes: Vec<String> = groups
                    .iter()
                    .filter(|g| !g.suffix.is_empty())
                    .map(|g| g.suffix.clone())
                    .collect();
                let mut same_subtree: Vec<BTreeSet<String>> = Vec::new();
                if !suffixes.is_empty() {
                    for picks in subtree_picks {
                        same_subtree.push(
                            picks
                                .iter()
                                .map(|i| suffixes[i.index(suffixes.len())].clone())
                                .collect(),
                        );
                    }
                }
                let uncovered: BTreeSet<String> = groups
                    .iter()
                    .filter(|g| g.resources.is_empty())
                    .map(|g| g.suffix.clone())
                    .filter(|s| !same_subtree.iter().any(|set| set.contains(s)))
                    .collect();
                if !uncovered.is_empty() {
                    same_subtree.push(uncovered);
                }
                let group_policy = match policy {
                    Some(true) => Some(GroupPolicy::Isolate),
                    Some(false) => Some(GroupPolicy::None),
                    None if suffixes.len() > 1 => Some(GroupPolicy::None),
                    None => None,
                };
                let root_forbidden = root_forb.difference(&root_req).cloned().collect();
                RequestSpec {
                    groups,
                    group_policy,
                    same_subtree,
                    root_required: root_req,
                    root_forbidden,
                    limit,
                }
            },
        )
}
