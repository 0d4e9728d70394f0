//! The crate's tables must equal upstream Ironic's, as dumped into `data/`
//! by `data/dump_upstream.py`.
//!
//! The checked-in dumps are always compared. When `FERRITE_IRONIC_PYTHON`
//! names a Python with ironic installed, the script is also run live and its
//! output must match the checked-in files (so a new upstream release shows
//! up as a failing test with a diff, and `data/` is refreshed by rerunning
//! the script). Without it the live check is skipped with a note, and fails
//! under `CI=true` (`.ci/run` points it at the venv `scripts/test-venvs`
//! builds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use ferrite_conductor_states::sets::{NAMED_SETS, UPDATE_ALLOWED_NON_STATES};
use ferrite_conductor_states::state::NON_MACHINE_STATE_NAMES;
use ferrite_conductor_states::verbs::MIN_VERB_VERSIONS;
use ferrite_conductor_states::{ApiVerb, ProvisionState, StateClass, TRANSITIONS};

const TRANSITIONS_TXT: &str = include_str!("../data/transitions.txt");
const STATES_TXT: &str = include_str!("../data/states.txt");
const SETS_TXT: &str = include_str!("../data/sets.txt");
const VERBS_TXT: &str = include_str!("../data/verbs.txt");

/// The data rows of a dump: comment lines dropped, fields split on tabs.
fn rows(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split('\t').collect())
        .collect()
}

fn names(states: &[ProvisionState]) -> Vec<&'static str> {
    states.iter().map(|state| state.as_str()).collect()
}

#[test]
fn transitions_equal_upstream_row_by_row() {
    let ours: Vec<Vec<&str>> = TRANSITIONS
        .iter()
        .map(|(from, event, to)| vec![from.as_str(), event.as_str(), to.as_str()])
        .collect();
    let upstream = rows(TRANSITIONS_TXT);
    for (index, (mine, theirs)) in ours.iter().zip(&upstream).enumerate() {
        assert_eq!(mine, theirs, "row {index} differs");
    }
    assert_eq!(ours.len(), upstream.len(), "number of transitions");
    assert_eq!(upstream.len(), 93);
}

#[test]
fn states_classes_and_targets_equal_upstream() {
    let upstream = rows(STATES_TXT);
    let ours: Vec<Vec<&str>> = ProvisionState::ALL
        .iter()
        .map(|state| {
            let kind = if state.is_stable() {
                "stable"
            } else {
                "transitional"
            };
            let target = state.default_target().map_or("-", ProvisionState::as_str);
            vec![state.as_str(), kind, target]
        })
        .collect();
    assert_eq!(ours, upstream);
    assert_eq!(ours.len(), 30);
}

/// Upstream sets declared as frozensets: their dump is sorted, and so is the
/// comparison. The others are tuples and must match in order.
const FROZENSETS: &[&str] = &[
    "LOOKUP_ALLOWED_STATES",
    "FASTTRACK_LOOKUP_ALLOWED_STATES",
    "FAILURE_STATES",
    "SERVICING_STATES",
    "INSPECTION_STATES",
    "ALL_STATES",
];

fn upstream_set(name: &str) -> Vec<&'static str> {
    rows(SETS_TXT)
        .into_iter()
        .find(|row| row[0] == name)
        .unwrap_or_else(|| panic!("{name} missing from data/sets.txt"))[1..]
        .to_vec()
}

#[test]
fn named_sets_equal_upstream() {
    for (name, states) in NAMED_SETS {
        let mut ours = names(states);
        let mut upstream = upstream_set(name);
        if *name == "UPDATE_ALLOWED_STATES" {
            // Upstream lists the verb "service" among the states; it can
            // never match a node, so ours leaves it out.
            ours.insert(10, UPDATE_ALLOWED_NON_STATES[0]);
        }
        if FROZENSETS.contains(name) {
            ours.sort_unstable();
            upstream.sort_unstable();
        }
        assert_eq!(ours, upstream, "{name}");
    }
    let dumped: Vec<&str> = rows(SETS_TXT).iter().map(|row| row[0]).collect();
    for name in dumped {
        assert!(
            name == "ALL_STATES" || NAMED_SETS.iter().any(|(ours, _)| *ours == name),
            "upstream set {name} has no counterpart"
        );
    }
}

#[test]
fn upstream_all_states_are_the_machine_states_and_two_old_names() {
    let mut ours = names(ProvisionState::ALL);
    ours.extend_from_slice(NON_MACHINE_STATE_NAMES);
    ours.sort_unstable();
    assert_eq!(ours, upstream_set("ALL_STATES"));
}

#[test]
fn stable_and_unstable_sets_agree_with_the_state_classes() {
    for state in ProvisionState::ALL {
        let stable = upstream_set("STABLE_STATES").contains(&state.as_str());
        let unstable = upstream_set("UNSTABLE_STATES").contains(&state.as_str());
        let expected = match (stable, unstable) {
            (true, false) => StateClass::Stable,
            (false, true) => StateClass::Unstable,
            (false, false) => StateClass::Halted,
            (true, true) => panic!("{state} is both stable and unstable upstream"),
        };
        assert_eq!(state.class(), expected, "{state}");
    }
}

#[test]
fn verbs_and_version_gates_equal_upstream() {
    let upstream = rows(VERBS_TXT);
    let upstream_verbs: Vec<(&str, &str)> = upstream
        .iter()
        .filter(|row| row[0] == "verb")
        .map(|row| (row[1], row[2]))
        .collect();
    // `rebuild` is handled by the API but not listed in upstream's table.
    let ours: Vec<(&str, &str)> = ApiVerb::ALL
        .iter()
        .filter(|verb| **verb != ApiVerb::Rebuild)
        .map(|verb| (verb.as_str(), verb.event().as_str()))
        .collect();
    assert_eq!(ours, upstream_verbs);

    let upstream_minimums: Vec<(&str, String)> = upstream
        .iter()
        .filter(|row| row[0] == "min")
        .map(|row| (row[1], row[2].to_owned()))
        .collect();
    let ours: Vec<(&str, String)> = MIN_VERB_VERSIONS
        .iter()
        .map(|(target, version)| (*target, version.to_string()))
        .collect();
    assert_eq!(ours, upstream_minimums);
}

/// The data rows of each dump file in `directory`.
fn dumps(directory: &Path) -> Vec<(String, Vec<String>)> {
    ["transitions.txt", "states.txt", "sets.txt", "verbs.txt"]
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(directory.join(file)).unwrap();
            let lines = text
                .lines()
                .filter(|line| !line.starts_with('#'))
                .map(str::to_owned)
                .collect();
            ((*file).to_owned(), lines)
        })
        .collect()
}

#[test]
fn checked_in_dumps_equal_a_live_dump_when_upstream_is_available() {
    let Some(python) = ferrite_test_support::env_var(
        "FERRITE_IRONIC_PYTHON",
        "a python with ironic==39.0.0, e.g. the one scripts/test-venvs builds",
    ) else {
        return;
    };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir().unwrap();
    let output = Command::new(&python)
        .arg(crate_dir.join("data/dump_upstream.py"))
        .arg(scratch.path())
        .output()
        .unwrap_or_else(|error| panic!("could not run {python:?}: {error}"));
    assert!(
        output.status.success(),
        "data/dump_upstream.py failed under {python:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let live = std::fs::read_to_string(scratch.path().join("transitions.txt")).unwrap();
    let version_line = live.lines().next().unwrap_or_default().to_owned();
    for ((file, checked_in), (_, fresh)) in dumps(&crate_dir.join("data"))
        .into_iter()
        .zip(dumps(scratch.path()))
    {
        assert_eq!(
            checked_in, fresh,
            "data/{file} differs from upstream ({version_line}); rerun data/dump_upstream.py"
        );
    }
}
