//! What a test does when something it needs from outside the crate (a tool on
//! `PATH`, an environment variable naming an interpreter or a database) is
//! missing.
//!
//! The rule, written once: on a developer's machine the test prints a note on
//! stderr and skips that check; under CI (`CI=true`, as `.ci/run` sets) it
//! fails with a message naming what is missing and how to provide it, so a
//! CI run can never be green because a check quietly did not run.

use std::path::PathBuf;

/// Whether this run is CI's: `CI` is `true` or `1` (any case).
pub fn in_ci() -> bool {
    is_ci_value(std::env::var("CI").ok().as_deref())
}

fn is_ci_value(value: Option<&str>) -> bool {
    value.is_some_and(|value| {
        let value = value.trim();
        value.eq_ignore_ascii_case("true") || value == "1"
    })
}

/// `what` is missing. Under CI this panics with `what` and `how` (how to
/// provide it); otherwise it prints a note that the check is skipped.
#[track_caller]
pub fn missing(what: &str, how: &str) {
    missing_under(in_ci(), what, how);
}

#[track_caller]
fn missing_under(ci: bool, what: &str, how: &str) {
    if ci {
        panic!("{what} is missing, and under CI=true a test may not skip: {how}");
    }
    eprintln!("note: {what} is missing; skipping this check ({how})");
}

/// The non-empty value of the environment variable `var`, or `None` after
/// [`missing`] (which panics under CI). `how` says how to set it up.
#[track_caller]
pub fn env_var(var: &str, how: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            missing(&format!("environment variable {var}"), how);
            None
        }
    }
}

/// Where the program `name` is: the first match on `PATH`, then `/usr/sbin`
/// and `/sbin` (where Debian puts some tools for root only). No lookup rule.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
}

/// The program `name` as [`find_tool`] finds it, or `None` after [`missing`]
/// (which panics under CI). `how` says how to install it.
#[track_caller]
pub fn tool(name: &str, how: &str) -> Option<PathBuf> {
    let found = find_tool(name);
    if found.is_none() {
        missing(&format!("the program {name}"), how);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_true_or_1() {
        for value in ["true", "TRUE", "True", "1", " true\n"] {
            assert!(is_ci_value(Some(value)), "{value:?}");
        }
        for value in [None, Some(""), Some("false"), Some("0"), Some("yes")] {
            assert!(!is_ci_value(value), "{value:?}");
        }
    }

    #[test]
    #[should_panic(expected = "the program 7z is missing, and under CI=true a test may not skip")]
    fn under_ci_something_missing_fails_the_test() {
        missing_under(true, "the program 7z", "apt-get install p7zip-full");
    }

    #[test]
    fn outside_ci_something_missing_is_a_note() {
        missing_under(false, "the program 7z", "apt-get install p7zip-full");
    }

    #[test]
    fn a_tool_on_path_is_found_and_a_made_up_one_is_not() {
        assert!(find_tool("sh").is_some());
        assert!(find_tool("ferrite-no-such-tool-4d1e").is_none());
    }
}
