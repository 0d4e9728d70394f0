//! Differential test against upstream Placement's own query parsing.
//!
//! Needs `FERRITE_PLACEMENT_PYTHON`: a Python interpreter that can import
//! `placement` (openstack-placement 16.0.0), such as the venv
//! `scripts/placement-conformance` builds (`.ci/run` points at it). Without
//! it the test is skipped with a note, and fails under `CI=true`. It feeds
//! a fixed corpus plus random queries to `tests/placement_oracle.py` and to [`parse_query`] and
//! compares results and error messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use common::{U1, U2};
use ferrite_resource_classes::{parse_query, render_query, ParseOptions, RequestSpec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

struct Oracle {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    fn start() -> Option<Oracle> {
        let python = ferrite_test_support::env_var(
            "FERRITE_PLACEMENT_PYTHON",
            "a python with openstack-placement 16.0.0, e.g. the venv of scripts/placement-conformance",
        )?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/placement_oracle.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("FERRITE_PLACEMENT_PYTHON is set but could not be started");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Some(Oracle {
            _child: child,
            stdin,
            stdout,
        })
    }

    fn ask(&mut self, pairs: &[(String, String)], v: (u16, u16)) -> Value {
        let q: Vec<[&str; 2]> = pairs
            .iter()
            .map(|(k, v)| [k.as_str(), v.as_str()])
            .collect();
        let line = json!({"q": q, "v": [v.0, v.1]}).to_string();
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).expect("oracle answered with bad JSON (did it crash?)")
    }
}

fn spec_json(spec: &RequestSpec) -> Value {
    let mut groups = serde_json::Map::new();
    for g in &spec.groups {
        groups.insert(
            g.suffix.clone(),
            json!({
                "resources": g.resources,
                "required": g.required_traits,
                "forbidden": g.forbidden_traits,
                "any_of": g.any_of_traits,
                "member_of": g.member_of,
                "forbidden_aggregates": g.forbidden_aggregates,
                "in_tree": g.in_tree,
            }),
        );
    }
    json!({
        "limit": spec.limit,
        "group_policy": spec.group_policy.map(|p| p.as_str()),
        "root_required": spec.root_required,
        "root_forbidden": spec.root_forbidden,
        "same_subtree": spec.same_subtree,
        "groups": groups,
    })
}

/// Messages whose item order upstream takes from a Python set (so it
/// varies run to run); these are compared as multisets of characters.
const UNORDERED: &[&str] = &[
    "Resourceless suffixed group request",
    "Real suffixes should be specified",
    "Conflicting required and forbidden traits found in root_required",
    "Invalid query string parameters: Expected 'member_of'",
];

fn same_message(ours: &str, theirs: &str) -> bool {
    // Upstream appends a dump of the schema after the summary line.
    let theirs = theirs
        .split("\n\nFailed validating")
        .next()
        .unwrap_or(theirs);
    if ours == theirs {
        return true;
    }
    if UNORDERED
        .iter()
        .any(|p| ours.starts_with(p) && theirs.starts_with(p))
    {
        let mut a: Vec<char> = ours.chars().collect();
        let mut b: Vec<char> = theirs.chars().collect();
        a.sort_unstable();
        b.sort_unstable();
        // Several invalid aggregates: upstream may name any of them.
        return a == b || ours.starts_with(UNORDERED[3]);
    }
    false
}

#[derive(Debug, Default)]
struct Tally {
    specs: usize,
    errors: usize,
    skipped: usize,
}

/// Compare one case; `Err` describes a mismatch.
fn compare(
    oracle: &mut Oracle,
    tally: &mut Tally,
    pairs: &[(String, String)],
    v: (u16, u16),
) -> Result<(), String> {
    let theirs = oracle.ask(pairs, v);
    // Upstream fails with a 500 on a crash; and with several `limit`
    // values it uses the first unchecked, while we check it.
    if theirs.get("crash").is_some() || pairs.iter().filter(|(k, _)| k == "limit").count() > 1 {
        tally.skipped += 1;
        return Ok(());
    }
    let ours = parse_query(pairs, &ParseOptions::new(v.0, v.1));
    match (&ours, theirs.get("spec"), theirs.get("error")) {
        (Ok(spec), Some(expected), _) if spec_json(spec) == *expected => {
            tally.specs += 1;
            Ok(())
        }
        (Err(e), _, Some(Value::String(msg))) if same_message(&e.to_string(), msg) => {
            tally.errors += 1;
            Ok(())
        }
        _ => Err(format!(
            "mismatch at {}.{} for {pairs:?}\n ours:   {:?}\n theirs: {theirs}",
            v.0, v.1, ours
        )),
    }
}

/// Values per parameter kind: mostly valid ones, then some broken ones.
fn values_for(key: &str) -> Vec<String> {
    let base = key.trim_end_matches('\n');
    let kind = ["resources", "required", "member_of", "in_tree"]
        .into_iter()
        .find(|p| base.starts_with(p))
        .unwrap_or(base);
    let v: Vec<String> = match kind {
        "resources" => vec![
            "VCPU:1",
            "VCPU:1,MEMORY_MB:512",
            "DISK_GB:+3",
            "VCPU:1,VCPU:2",
            "CUSTOM_X: 07 ",
            "VCPU:0",
            "VCPU:x",
            "",
            "VCPU",
            "VCPU:1,",
            "VCPU:-1",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
        "required" | "root_required" => vec![
            "A", "A,B", "!A", "!!B", " A , B", "in:A,B", "in:A", "in:B,C", "A,!A", "in:A,!B",
            "in:A,,B", "!", "",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
        "member_of" => vec![
            U1.to_owned(),
            format!("in:{U1},{U2}"),
            format!("!{U1}"),
            format!("!in:{U1},{U2}"),
            format!("{U1},{U2}"),
            "bad".to_owned(),
            format!("in:{U1},bad"),
            format!(" {U1}"),
        ],
        "in_tree" => vec![U1.to_owned(), format!(" {U2} "), "bad".to_owned()],
        "limit" => ["1", "10", "5\n", "0", "x", ""].map(str::to_owned).to_vec(),
        "group_policy" => ["none", "isolate", "x", ""].map(str::to_owned).to_vec(),
        "same_subtree" => ["1", "_A", "1,_A", "2,1", " _A ", "1,", "nope"]
            .map(str::to_owned)
            .to_vec(),
        _ => vec!["1".to_owned()],
    };
    v
}

fn pair_strategy() -> impl Strategy<Value = (String, String)> {
    prop::sample::select(vec![
        "resources",
        "resources",
        "resources",
        "resources1",
        "resources1",
        "resources2",
        "resources_A",
        "resources0",
        "resources\n",
        "required",
        "required1",
        "required_A",
        "required2\n",
        "member_of",
        "member_of1",
        "member_of_A",
        "in_tree",
        "in_tree1",
        "in_tree_A",
        "limit",
        "group_policy",
        "group_policy",
        "root_required",
        "same_subtree",
        "same_subtree",
        "foo",
        "it's",
    ])
    .prop_flat_map(|key| {
        let values = values_for(key);
        // Prefer the valid values at the front of each list.
        let n = values.len();
        let weights = (0..n).map(|i| if i < n / 2 + 1 { 4 } else { 1 });
        let choices: Vec<(u32, BoxedStrategy<String>)> = weights
            .zip(values)
            .map(|(w, v)| (w, Just(v).boxed()))
            .collect();
        (
            Just(key.to_owned()),
            prop::strategy::Union::new_weighted(choices),
        )
    })
}

fn case_strategy() -> impl Strategy<Value = (Vec<(String, String)>, (u16, u16))> {
    let minors = vec![
        10u16, 16, 17, 21, 22, 24, 25, 29, 31, 32, 33, 35, 36, 36, 38, 39, 39, 39,
    ];
    (
        prop::collection::vec(pair_strategy(), 0..7),
        prop::sample::select(minors).prop_map(|m| (1u16, m)),
    )
}

#[test]
fn agrees_with_upstream_placement() {
    let Some(oracle) = Oracle::start() else {
        return;
    };
    let oracle = RefCell::new(oracle);
    let tally = RefCell::new(Tally::default());
    // The error table must match upstream too.
    for (minor, q, _) in common::error_cases() {
        let pairs = common::query(&q);
        if let Err(msg) = compare(
            &mut oracle.borrow_mut(),
            &mut tally.borrow_mut(),
            &pairs,
            (1, minor),
        ) {
            panic!("{msg}");
        }
    }
    let cases = std::env::var("FERRITE_ORACLE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&case_strategy(), |(pairs, v)| {
            let result = compare(&mut oracle.borrow_mut(), &mut tally.borrow_mut(), &pairs, v);
            prop_assert!(result.is_ok(), "{}", result.err().unwrap_or_default());
            Ok(())
        })
        .unwrap();
    // Rendered random specs must parse the same way upstream.
    let config = Config {
        cases: cases / 4,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&common::spec_strategy(), |spec| {
            let pairs = render_query(&spec);
            let expected = json!({"spec": spec_json(&spec)});
            let theirs = oracle.borrow_mut().ask(&pairs, (1, 39));
            prop_assert_eq!(theirs, expected, "pairs: {:?}", pairs);
            Ok(())
        })
        .unwrap();
    let tally = tally.into_inner();
    eprintln!("differential test: {tally:?}");
    // The generator must exercise both outcomes.
    assert!(tally.specs > 0 && tally.errors > 0, "{tally:?}");
}
