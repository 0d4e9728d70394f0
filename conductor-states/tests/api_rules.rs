//! The API's provision, update and delete checks, as tables, with upstream's
//! exact messages (several taken from the reference transcripts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferrite_conductor_states::verbs::{early_version_gate, event_for_target};
use ferrite_conductor_states::{
    check_node_delete, check_node_update, check_provision_request, finish_provision_checks,
    ApiVerb, ApiVersion, CheckedTarget, DeletePolicy, Event, NodeUpdate, ProvisionRequest,
    ProvisionRequestError, ProvisionState,
};

const NODE: &str = "957108d6-1f4d-41ac-8216-7e39f84edd14";
const HOST: &str = "ref-ironic-16385";

/// Provision requests and upstream's answers. `node` is `-`, `maintenance`
/// or `reserved` (by `HOST`); the answer is `accepted`, or the status and
/// which refusal, whose message the test spells out.
const PROVISION_CASES: &str = "
    # state        | target    | version | node        | answer
    # The reference transcripts (51, 52, 53, 65).
    available      | provide   | 1.115   | -           | 400 invalid
    available      | inspect   | 1.115   | -           | 400 invalid
    available      | bogus     | 1.115   | -           | 400 invalid
    deploying      | deleted   | 1.115   | reserved    | 409 locked
    # The happy paths of the transcripts.
    enroll         | manage    | 1.115   | -           | accepted
    manageable     | provide   | 1.115   | -           | accepted
    available      | active    | 1.115   | -           | accepted
    active         | rebuild   | 1.115   | -           | accepted
    active         | undeploy  | 1.115   | -           | accepted
    # A refused event on a reserved node reports the lock; an allowed one
    # goes through (the conductor will find the lock).
    available      | provide   | 1.115   | reserved    | 409 locked
    available      | manage    | 1.115   | reserved    | accepted
    # Early microversion gates come before everything, even the state.
    manageable     | provide   | 1.3     | -           | 406
    available      | provide   | 1.3     | -           | 406
    manageable     | inspect   | 1.5     | -           | 406
    available      | deploy    | 1.72    | -           | 406
    available      | deploy    | 1.73    | -           | accepted
    active         | rescue    | 1.37    | -           | 406
    # Upstream gates `delete` instead of `undeploy`.
    active         | undeploy  | 1.1     | -           | accepted
    active         | delete    | 1.72    | -           | 406
    active         | delete    | 1.73    | -           | 400 not understood
    # Maintenance refuses `active` and `rebuild`, not `deploy`, before the
    # state is looked at.
    available      | active    | 1.115   | maintenance | 400 maintenance
    manageable     | rebuild   | 1.115   | maintenance | 400 maintenance
    available      | deploy    | 1.115   | maintenance | accepted
    active         | undeploy  | 1.115   | maintenance | accepted
    # Late gates: a wrong state is reported first (400), a right one gets 406.
    clean hold     | unhold    | 1.84    | -           | 406
    clean hold     | unhold    | 1.85    | -           | accepted
    available      | unhold    | 1.84    | -           | 400 invalid
    active         | service   | 1.86    | -           | 406
    active         | service   | 1.87    | -           | accepted
    manageable     | service   | 1.86    | -           | 400 invalid
    inspect wait   | abort     | 1.40    | -           | 406
    inspect wait   | abort     | 1.41    | -           | accepted
    wait call-back | abort     | 1.109   | -           | 406
    wait call-back | abort     | 1.110   | -           | accepted
    clean wait     | abort     | 1.13    | -           | accepted
    clean wait     | abort     | 1.12    | -           | 406
    # Machine events that are not verbs pass the state check, then are not
    # understood.
    deploying      | fail      | 1.115   | -           | 400 not understood
    clean wait     | resume    | 1.1     | -           | 400 not understood
    available      | done      | 1.115   | -           | 400 invalid
    # The API checks only the machine.
    cleaning       | manage    | 1.115   | -           | accepted
    deleting       | clean     | 1.115   | -           | accepted
    # Messages use the stored state name whatever the version.
    inspect wait   | provide   | 1.4     | -           | 400 invalid
";

/// The `|`-separated cells of each row of a text table, comments dropped.
fn table_rows(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split('|').map(str::trim).collect())
        .collect()
}

fn minor(version: &str) -> u16 {
    version.strip_prefix("1.").unwrap().parse().unwrap()
}

#[test]
fn provision_requests() {
    let rows = table_rows(PROVISION_CASES);
    assert_eq!(rows.len(), 42, "rows read from PROVISION_CASES");
    for row in rows {
        let [state, target, version, node, answer] = row[..] else {
            panic!("bad row {row:?}");
        };
        let request = ProvisionRequest {
            node_uuid: NODE,
            target,
            provision_state: state.parse().unwrap(),
            version: ApiVersion::v1(minor(version)),
            maintenance: node == "maintenance",
            reservation: (node == "reserved").then_some(HOST),
        };
        let result = check_provision_request(&request)
            .and_then(|checked| finish_provision_checks(&request, checked))
            .map_err(|error| (error.upstream_status(), error.to_string()));
        let expected = match answer {
            "accepted" => Ok(target.parse::<ApiVerb>().unwrap()),
            "406" => Err((406, "Request not acceptable.".to_owned())),
            "400 invalid" => Err((400, format!(
                "The requested action \"{target}\" can not be performed on node \"{NODE}\" while it is in state \"{state}\"."
            ))),
            "400 not understood" => Err((400, format!(
                "The requested action \"{target}\" could not be understood."
            ))),
            "400 maintenance" => Err((400, format!(
                "The provisioning operation can't be performed on node {NODE} because it's in maintenance mode."
            ))),
            "409 locked" => Err((409, format!(
                "Node {NODE} is locked by host {HOST}, please retry after the current operation is completed."
            ))),
            other => panic!("unknown answer {other}"),
        };
        assert_eq!(
            result, expected,
            "{target} from {state} at {version} ({node})"
        );
    }
}

#[test]
fn the_first_phase_hands_over_unhandled_events() {
    let request = ProvisionRequest {
        node_uuid: NODE,
        target: "wait",
        provision_state: ProvisionState::Cleaning,
        version: ApiVersion::MAX,
        maintenance: false,
        reservation: None,
    };
    assert_eq!(
        check_provision_request(&request),
        Ok(CheckedTarget::Unhandled(Event::Wait))
    );
    assert_eq!(
        finish_provision_checks(&request, CheckedTarget::Unhandled(Event::Wait)),
        Err(ProvisionRequestError::NotUnderstood {
            action: "wait".to_owned()
        })
    );
}

#[test]
fn verbs_map_to_events_and_versions() {
    // (target, event, oldest microversion upstream accepts)
    let table = [
        ("active", Event::Deploy, 1),
        ("deploy", Event::Deploy, 73),
        ("rebuild", Event::Rebuild, 1),
        ("deleted", Event::Delete, 1),
        ("undeploy", Event::Delete, 1),
        ("manage", Event::Manage, 4),
        ("provide", Event::Provide, 4),
        ("inspect", Event::Inspect, 6),
        ("abort", Event::Abort, 13),
        ("clean", Event::Clean, 15),
        ("adopt", Event::Adopt, 17),
        ("rescue", Event::Rescue, 38),
        ("unrescue", Event::Unrescue, 38),
        ("unhold", Event::Unhold, 85),
        ("service", Event::Service, 87),
    ];
    assert_eq!(table.len(), ApiVerb::ALL.len());
    for (target, event, minor) in table {
        let verb: ApiVerb = target.parse().unwrap();
        assert_eq!(verb.event(), event, "{target}");
        assert_eq!(verb.min_version(), ApiVersion::v1(minor), "{target}");
        assert_eq!(event_for_target(target), Some(event), "{target}");
    }
    assert_eq!(event_for_target("resume"), Some(Event::Resume));
    assert_eq!(event_for_target("bogus"), None);
    assert_eq!(early_version_gate("delete"), Some(ApiVersion::v1(73)));
    assert_eq!(early_version_gate("undeploy"), None);
    assert_eq!(ApiVersion::v1(73).to_string(), "1.73");
}

#[test]
fn node_updates() {
    let transition = "Node node-1 can not be updated while a state transition is in progress.";
    let inspecting = format!("Cannot update node \"{NODE}\" while it is in state \"inspecting\".");
    // (state, target, microversion, refusal or "")
    let table = [
        ("available", "-", 115, ""),
        ("active", "-", 115, ""),
        ("deploying", "active", 115, transition),
        ("wait call-back", "active", 115, transition),
        ("clean hold", "available", 115, transition),
        ("deploy hold", "active", 115, transition),
        ("servicing", "active", 115, transition),
        ("deploy failed", "active", 115, ""),
        ("clean failed", "manageable", 115, ""),
        ("service hold", "active", 115, ""),
        ("verifying", "manageable", 115, ""),
        ("inspect wait", "manageable", 115, ""),
        ("inspecting", "manageable", 38, ""),
        ("inspecting", "manageable", 39, &inspecting),
        // A state that normally has a target, caught without one.
        ("cleaning", "-", 115, ""),
    ];
    for (state, target, minor, refusal) in table {
        let update = NodeUpdate {
            node_ident: "node-1",
            node_uuid: NODE,
            provision_state: state.parse().unwrap(),
            target_provision_state: (target != "-").then(|| target.parse().unwrap()),
            version: ApiVersion::v1(minor),
        };
        let result = check_node_update(&update)
            .map_err(|error| (error.upstream_status(), error.to_string()));
        let expected = if refusal.is_empty() {
            Ok(())
        } else {
            Err((409, refusal.to_owned()))
        };
        assert_eq!(
            result, expected,
            "update in {state} (target {target}) at 1.{minor}"
        );
    }
}

#[test]
fn node_deletes() {
    let default = DeletePolicy::default();
    let strict = DeletePolicy {
        allow_deleting_available_nodes: false,
    };
    // (state, maintenance, policy, allowed)
    let table = [
        ("manageable", false, default, true),
        ("enroll", false, default, true),
        ("adopt failed", false, default, true),
        ("available", false, default, true),
        ("available", false, strict, false),
        ("active", false, default, false),
        ("deploy failed", false, default, false),
        ("clean failed", false, default, false),
        ("active", true, default, true),
        ("deploying", true, strict, true),
    ];
    for (state, maintenance, policy, allowed) in table {
        let result = check_node_delete(NODE, state.parse().unwrap(), maintenance, policy);
        assert_eq!(
            result.is_ok(),
            allowed,
            "delete in {state} (maintenance {maintenance}, {policy:?})"
        );
    }
    let error = check_node_delete(NODE, ProvisionState::Active, false, default).unwrap_err();
    assert_eq!(error.upstream_status(), 409);
    assert_eq!(
        error.to_string(),
        format!(
            "Can not delete node \"{NODE}\" while it is in provision state \"active\". Valid provision \
             states to perform deletion are: \"('manageable', 'enroll', 'adopt failed', 'available')\", \
             or set the node into maintenance mode"
        )
    );
    let error = check_node_delete(NODE, ProvisionState::Available, false, strict).unwrap_err();
    assert!(error
        .to_string()
        .contains("\"('manageable', 'enroll', 'adopt failed')\""));
}
