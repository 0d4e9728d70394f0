//! The machine's behaviour, as tables: wire names, transitions, targets and
//! recovery.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashSet};

use ferrite_conductor_states::recovery::{
    callback_timeout_keeps_target, restart_recovery_last_error, CALLBACK_TIMEOUTS,
};
use ferrite_conductor_states::{
    next, process_event, recovery_after_callback_timeout, recovery_on_restart,
    recovery_on_takeover, transitions_from, ApiVerb, ApiVersion, Event, EventRequest, Followup,
    Outcome, ProvisionState, StateClass, TransitionError, STATES, TRANSITIONS,
};

fn state(name: &str) -> ProvisionState {
    name.parse().unwrap()
}

fn target(name: &str) -> Option<ProvisionState> {
    (name != "-").then(|| state(name))
}

// ---------------------------------------------------------------- wire names

#[test]
fn wire_names_round_trip_through_from_str_and_serde() {
    for value in ProvisionState::ALL {
        assert_eq!(value.as_str().parse::<ProvisionState>().unwrap(), *value);
        let json = serde_json::to_string(value).unwrap();
        assert_eq!(json, format!("\"{}\"", value.as_str()));
        assert_eq!(
            serde_json::from_str::<ProvisionState>(&json).unwrap(),
            *value
        );
    }
    for value in Event::ALL {
        assert_eq!(value.as_str().parse::<Event>().unwrap(), *value);
        assert_eq!(serde_json::to_value(value).unwrap(), value.as_str());
    }
    for value in ApiVerb::ALL {
        assert_eq!(value.as_str().parse::<ApiVerb>().unwrap(), *value);
        assert_eq!(serde_json::to_value(value).unwrap(), value.as_str());
    }
}

#[test]
fn names_that_are_not_states_do_not_parse() {
    for name in [
        "deleted",
        "deploy complete",
        "deploy",
        "rebuild",
        "service",
        "noop",
        "None",
        "",
        "Available",
    ] {
        let error = name.parse::<ProvisionState>().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("unknown provision state \"{name}\"")
        );
    }
    assert!(serde_json::from_str::<ProvisionState>("\"wait callback\"").is_err());
    assert!(serde_json::from_str::<Option<ProvisionState>>("null")
        .unwrap()
        .is_none());
    assert_eq!(
        "unrescue_fail".parse::<Event>().unwrap_err().to_string(),
        "unknown event \"unrescue_fail\""
    );
}

#[test]
fn counts_match_upstream() {
    assert_eq!(ProvisionState::ALL.len(), 30);
    assert_eq!(Event::ALL.len(), 18);
    assert_eq!(TRANSITIONS.len(), 93);
    assert_eq!(ApiVerb::ALL.len(), 15);
}

#[test]
fn states_table_is_indexed_by_state() {
    assert_eq!(STATES.len(), ProvisionState::ALL.len());
    for (index, info) in STATES.iter().enumerate() {
        assert_eq!(info.state, ProvisionState::ALL[index]);
        assert_eq!(info.state as usize, index);
    }
}

#[test]
fn api_names_follow_the_microversion() {
    // (state, microversion, name the API shows)
    let table = [
        ("available", 1, None),
        ("available", 2, Some("available")),
        ("inspect wait", 38, Some("inspecting")),
        ("inspect wait", 39, Some("inspect wait")),
        ("wait call-back", 1, Some("wait call-back")),
        ("enroll", 115, Some("enroll")),
    ];
    for (name, minor, shown) in table {
        assert_eq!(
            state(name).api_name(ApiVersion::v1(minor)),
            shown,
            "{name} at 1.{minor}"
        );
    }
    assert_eq!(
        ProvisionState::initial(ApiVersion::v1(10)),
        ProvisionState::Available
    );
    assert_eq!(
        ProvisionState::initial(ApiVersion::v1(11)),
        ProvisionState::Enroll
    );
}

// ----------------------------------------------------------------- structure

#[test]
fn no_transition_is_listed_twice() {
    let mut seen = HashSet::new();
    for (from, event, _) in TRANSITIONS {
        assert!(
            seen.insert((from, event)),
            "{from} --{event}--> listed twice"
        );
    }
}

#[test]
fn every_other_pair_is_refused() {
    let listed: HashSet<(ProvisionState, Event)> = TRANSITIONS
        .iter()
        .map(|(from, event, _)| (*from, *event))
        .collect();
    for from in ProvisionState::ALL {
        for event in Event::ALL {
            let result = next(*from, *event);
            if listed.contains(&(*from, *event)) {
                assert!(result.is_ok());
            } else {
                assert_eq!(
                    result,
                    Err(TransitionError::NotAllowed {
                        state: *from,
                        event: *event
                    })
                );
            }
        }
    }
}

#[test]
fn every_state_is_reachable_from_enroll() {
    let mut reached = BTreeSet::from([ProvisionState::Enroll]);
    let mut frontier = vec![ProvisionState::Enroll];
    while let Some(from) = frontier.pop() {
        for (_, to) in transitions_from(from) {
            if reached.insert(to) {
                frontier.push(to);
            }
        }
    }
    assert_eq!(reached.len(), ProvisionState::ALL.len());
}

#[test]
fn only_halted_and_stable_states_wait_for_requests() {
    // Every unstable state can finish or fail by itself.
    for state in ProvisionState::ALL
        .iter()
        .filter(|s| s.class() == StateClass::Unstable)
    {
        let events: Vec<Event> = transitions_from(*state).map(|(event, _)| event).collect();
        assert!(
            events.contains(&Event::Fail) || events.contains(&Event::Resume),
            "{state} can neither fail nor resume"
        );
    }
    for info in STATES {
        match info.class {
            StateClass::Stable => assert_eq!(info.default_target, None),
            _ => assert!(info.default_target.is_some_and(ProvisionState::is_stable)),
        }
    }
}

// ---------------------------------------------------------------- next()

/// A selection of transitions read as prose, checked one by one; the full
/// table is compared with upstream in `upstream.rs`.
const WALKS: &str = "
    enroll          manage    verifying
    verifying       done      manageable
    verifying       fail      enroll
    manageable      provide   cleaning
    manageable      clean     cleaning
    cleaning        manage    manageable
    cleaning        done      available
    available       deploy    deploying
    deploying       wait      wait call-back
    wait call-back  resume    deploying
    wait call-back  abort     deploy failed
    deploy failed   deploy    deploying
    deploying       done      active
    active          delete    deleting
    deleting        clean     cleaning
    deleting        fail      error
    error           rebuild   deploying
    service failed  abort     active
    service hold    service   servicing
    clean hold      unhold    clean wait
    deploy hold     unhold    wait call-back
    rescue wait     delete    deleting
";

const REFUSALS: &str = "
    available       provide
    available       inspect
    active          deploy
    active          manage
    enroll          provide
    deploy hold     fail
    clean hold      fail
    deploy hold     delete
    clean failed    provide
    error           manage
    rescue          abort
    service hold    delete
";

fn parse_walk(line: &str) -> (ProvisionState, Event, Option<ProvisionState>) {
    // Columns are separated by two or more spaces; names contain single spaces.
    let columns: Vec<&str> = line
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    (
        state(columns[0]),
        columns[1].parse().unwrap(),
        columns.get(2).map(|name| state(name)),
    )
}

#[test]
fn next_follows_the_walks() {
    for line in WALKS.lines().filter(|l| !l.trim().is_empty()) {
        let (from, event, to) = parse_walk(line);
        assert!(to.is_some(), "walk without a destination: {line}");
        assert_eq!(next(from, event).ok(), to, "{line}");
    }
}

#[test]
fn next_refuses_the_refusals() {
    for line in REFUSALS.lines().filter(|l| !l.trim().is_empty()) {
        let (from, event, _) = parse_walk(line);
        let error = next(from, event).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("the event \"{event}\" is not allowed in provision state \"{from}\"")
        );
    }
}

// ------------------------------------------------------------ process_event()

/// Events applied with `process_event`: the node's state and target, the
/// event, the requested target, whether background work follows, and the
/// resulting state and target.
const TARGET_CASES: &str = "
    # state        | target     | event   | requested  | work | new state     | new target
    # The reference transcripts: manage, provide, deploy, undeploy.
    enroll         | -          | manage  | -          | yes  | verifying     | manageable
    verifying      | manageable | done    | -          | no   | manageable    | -
    manageable     | -          | provide | -          | yes  | cleaning      | available
    cleaning       | available  | done    | -          | no   | available     | -
    available      | -          | deploy  | -          | yes  | deploying     | active
    deploying      | active     | done    | -          | no   | active        | -
    active         | -          | delete  | -          | yes  | deleting      | available
    deleting       | available  | clean   | -          | yes  | cleaning      | available
    # Manual cleaning asks for manageable at every step; without it the clean
    # states fall back to available.
    manageable     | -          | clean   | manageable | yes  | cleaning      | manageable
    cleaning       | manageable | wait    | manageable | no   | clean wait    | manageable
    cleaning       | manageable | wait    | -          | no   | clean wait    | available
    clean wait     | manageable | resume  | manageable | yes  | cleaning      | manageable
    cleaning       | manageable | manage  | -          | no   | manageable    | -
    # Failures keep pointing where the node was heading.
    verifying      | manageable | fail    | -          | no   | enroll        | -
    deleting       | available  | fail    | -          | no   | error         | -
    wait call-back | active     | fail    | -          | no   | deploy failed | active
    service failed | active     | abort   | -          | no   | active        | -
    # A stable state reached with work to follow keeps an unreached target.
    available      | -          | manage  | -          | yes  | manageable    | -
";

#[test]
fn process_event_computes_targets_like_upstream() {
    let rows: Vec<&str> = TARGET_CASES
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    assert_eq!(rows.len(), 18, "rows read from TARGET_CASES");
    for line in rows {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [from, current, event, requested, work, to, new_target] = cells[..] else {
            panic!("bad row {line}");
        };
        let request = EventRequest {
            state: state(from),
            target: target(current),
            event: event.parse().unwrap(),
            requested_target: target(requested),
            followup: match work {
                "yes" => Followup::BackgroundWork,
                _ => Followup::Nothing,
            },
        };
        let outcome = Outcome {
            provision_state: state(to),
            target_provision_state: target(new_target),
        };
        assert_eq!(process_event(&request), Ok(outcome), "{line}");
    }
}

#[test]
fn process_event_refuses_unstable_targets_and_missing_transitions() {
    let mut request = EventRequest {
        state: ProvisionState::Manageable,
        target: None,
        event: Event::Clean,
        requested_target: Some(ProvisionState::Cleaning),
        followup: Followup::BackgroundWork,
    };
    assert_eq!(
        process_event(&request),
        Err(TransitionError::TargetNotStable(ProvisionState::Cleaning))
    );
    request.requested_target = None;
    request.event = Event::Deploy;
    assert_eq!(
        process_event(&request),
        Err(TransitionError::NotAllowed {
            state: ProvisionState::Manageable,
            event: Event::Deploy
        })
    );
}

// ------------------------------------------------------------------ recovery

#[test]
fn recovery_tables() {
    // (state, on restart, on takeover, on callback timeout)
    let table = [
        ("deploying", "deploy failed", "deploy failed", "-"),
        ("cleaning", "clean failed", "clean failed", "-"),
        ("verifying", "enroll", "-", "-"),
        ("inspecting", "inspect failed", "-", "-"),
        ("adopting", "adopt failed", "-", "-"),
        ("rescuing", "rescue failed", "-", "-"),
        ("unrescuing", "unrescue failed", "-", "-"),
        ("deleting", "error", "-", "-"),
        ("servicing", "service failed", "-", "-"),
        ("wait call-back", "-", "-", "deploy failed"),
        ("clean wait", "-", "-", "clean failed"),
        ("rescue wait", "-", "-", "rescue failed"),
        ("service wait", "-", "-", "service failed"),
        ("inspect wait", "-", "-", "inspect failed"),
    ];
    for (stuck, restart, takeover, timeout) in table {
        let stuck = state(stuck);
        assert_eq!(
            recovery_on_restart(stuck),
            target(restart),
            "restart from {stuck}"
        );
        assert_eq!(
            recovery_on_takeover(stuck, false),
            target(takeover),
            "takeover from {stuck}"
        );
        assert_eq!(
            recovery_on_takeover(stuck, true),
            None,
            "takeover in maintenance from {stuck}"
        );
        assert_eq!(
            recovery_after_callback_timeout(stuck),
            target(timeout),
            "timeout from {stuck}"
        );
    }
    let listed: Vec<&str> = table.iter().map(|row| row.0).collect();
    for other in ProvisionState::ALL
        .iter()
        .filter(|s| !listed.contains(&s.as_str()))
    {
        assert_eq!(recovery_on_restart(*other), None, "{other}");
        assert_eq!(recovery_on_takeover(*other, false), None, "{other}");
        assert_eq!(recovery_after_callback_timeout(*other), None, "{other}");
    }
    assert_eq!(CALLBACK_TIMEOUTS.len(), 5);
    assert!(callback_timeout_keeps_target(ProvisionState::CleanWait));
    assert!(!callback_timeout_keeps_target(ProvisionState::DeployWait));
}

#[test]
fn restart_recovery_of_a_manual_clean_points_at_available() {
    let outcome = process_event(&EventRequest {
        state: ProvisionState::Cleaning,
        target: Some(ProvisionState::Manageable),
        event: Event::Fail,
        requested_target: None,
        followup: Followup::Nothing,
    })
    .unwrap();
    assert_eq!(
        outcome.provision_state,
        recovery_on_restart(ProvisionState::Cleaning).unwrap()
    );
    assert_eq!(
        outcome.target_provision_state,
        Some(ProvisionState::Available)
    );
}

#[test]
fn restart_recovery_message() {
    assert_eq!(
        restart_recovery_last_error(ProvisionState::Deploying, "conductor-1"),
        "The deploying state can't be resumed by conductor conductor-1. Moving to fail state."
    );
}
