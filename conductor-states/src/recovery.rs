//! What upstream's conductor does to nodes whose work was cut short: after
//! its own restart, when it takes over a dead conductor's nodes, and when
//! the ramdisk agent stops calling back.
//!
//! In every case the node gets the `fail` event, so the new state is read
//! from [`TRANSITIONS`](crate::TRANSITIONS); these functions say which states
//! are failed in which situation.

use crate::event::Event;
use crate::machine::next;
use crate::sets::STUCK_STATES_TREATED_AS_FAIL;
use crate::state::ProvisionState;

/// The state a conductor moves a node to when it starts and finds the node
/// in a state it can not resume, or `None` when the node is left alone.
///
/// On start-up, after dropping its own reservations, upstream's conductor
/// sends `fail` to every unreserved node in
/// [`STUCK_STATES_TREATED_AS_FAIL`], maintenance or not. The node's target
/// is then the new state's default (`process_event` with no requested
/// target), so a manual clean that was cut short ends in `clean failed`
/// with target `available`. Wait and hold states are not touched: the agent
/// may still call back, and the timeouts below deal with it if it does not.
///
/// | stuck in | becomes |
/// |---|---|
/// | `deploying` | `deploy failed` |
/// | `cleaning` | `clean failed` |
/// | `verifying` | `enroll` |
/// | `inspecting` | `inspect failed` |
/// | `adopting` | `adopt failed` |
/// | `rescuing` | `rescue failed` |
/// | `unrescuing` | `unrescue failed` |
/// | `deleting` | `error` |
/// | `servicing` | `service failed` |
pub fn recovery_on_restart(state: ProvisionState) -> Option<ProvisionState> {
    if !STUCK_STATES_TREATED_AS_FAIL.contains(&state) {
        return None;
    }
    next(state, Event::Fail).ok()
}

/// The `last_error` upstream records for a node failed by
/// [`recovery_on_restart`]; `host` is the restarted conductor.
pub fn restart_recovery_last_error(state: ProvisionState, host: &str) -> String {
    format!("The {state} state can't be resumed by conductor {host}. Moving to fail state.")
}

/// States in which a conductor that takes over a dead conductor's reserved
/// node fails it (unless the node is in maintenance): only deploying and
/// cleaning. The conductor then records "Operation was aborted due to
/// conductor take over" and, for cleaning, also runs the clean-failure
/// handling, which sets maintenance if a clean step was running.
pub const TAKEOVER_FAILED_STATES: &[ProvisionState] =
    &[ProvisionState::Deploying, ProvisionState::Cleaning];

/// The state a node reserved by a dead conductor is moved to when another
/// conductor takes it over, or `None` when only the reservation is dropped.
pub fn recovery_on_takeover(state: ProvisionState, maintenance: bool) -> Option<ProvisionState> {
    if maintenance || !TAKEOVER_FAILED_STATES.contains(&state) {
        return None;
    }
    next(state, Event::Fail).ok()
}

/// Wait states that a periodic task fails when the agent has been silent for
/// longer than a `[conductor]` option, with that option's name. Nodes in
/// maintenance or reserved are skipped.
pub const CALLBACK_TIMEOUTS: &[(ProvisionState, &str)] = &[
    (ProvisionState::DeployWait, "deploy_callback_timeout"),
    (ProvisionState::CleanWait, "clean_callback_timeout"),
    (ProvisionState::RescueWait, "rescue_callback_timeout"),
    (ProvisionState::ServiceWait, "service_callback_timeout"),
    (ProvisionState::InspectWait, "inspect_wait_timeout"),
];

/// The state a wait state times out into, or `None` for states with no
/// callback timeout. Clean, rescue and service waits keep their target
/// (manual cleaning stays headed for `manageable`); deploy and inspect
/// waits take the failure state's default target.
pub fn recovery_after_callback_timeout(state: ProvisionState) -> Option<ProvisionState> {
    CALLBACK_TIMEOUTS
        .iter()
        .find(|(waiting, _)| *waiting == state)
        .and_then(|(waiting, _)| next(*waiting, Event::Fail).ok())
}

/// Whether a callback timeout keeps the node's target (see
/// [`recovery_after_callback_timeout`]).
pub const fn callback_timeout_keeps_target(state: ProvisionState) -> bool {
    matches!(
        state,
        ProvisionState::CleanWait | ProvisionState::RescueWait | ProvisionState::ServiceWait
    )
}
