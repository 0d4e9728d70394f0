//! The transition table, and stepping a node through it.
//!
//! [`TRANSITIONS`] is upstream's machine as data: each `(from, event, to)`
//! row is one transition, in the order upstream's machine lists them
//! (grouped by source state). Everything else here is computed from it.

use crate::error::TransitionError;
use crate::event::Event;
use crate::state::ProvisionState;

/// Every transition of upstream's provision state machine: `(from, event, to)`.
///
/// No `(from, event)` pair appears twice. `tests/upstream.rs` compares this
/// table, row by row, with `data/transitions.txt`, which is dumped from
/// upstream's own machine.
pub const TRANSITIONS: &[(ProvisionState, Event, ProvisionState)] = {
    use Event as E;
    use ProvisionState as S;
    &[
        // Stable states: each leaves only on a request.
        (S::Enroll, E::Manage, S::Verifying),
        (S::Manageable, E::Provide, S::Cleaning),
        (S::Manageable, E::Clean, S::Cleaning),
        (S::Manageable, E::Inspect, S::Inspecting),
        (S::Manageable, E::Adopt, S::Adopting),
        (S::Available, E::Deploy, S::Deploying),
        (S::Available, E::Manage, S::Manageable),
        (S::Active, E::Rebuild, S::Deploying),
        (S::Active, E::Delete, S::Deleting),
        (S::Active, E::Rescue, S::Rescuing),
        (S::Active, E::Service, S::Servicing),
        (S::Error, E::Rebuild, S::Deploying),
        (S::Error, E::Delete, S::Deleting),
        (S::Rescue, E::Rescue, S::Rescuing),
        (S::Rescue, E::Delete, S::Deleting),
        (S::Rescue, E::Unrescue, S::Unrescuing),
        // Verifying power credentials; a failure goes back to enroll.
        (S::Verifying, E::Done, S::Manageable),
        (S::Verifying, E::Fail, S::Enroll),
        // Deployment.
        (S::Deploying, E::Fail, S::DeployFailed),
        (S::Deploying, E::Wait, S::DeployWait),
        (S::Deploying, E::Hold, S::DeployHold),
        (S::Deploying, E::Done, S::Active),
        (S::DeployWait, E::Hold, S::DeployHold),
        (S::DeployWait, E::Resume, S::Deploying),
        (S::DeployWait, E::Fail, S::DeployFailed),
        (S::DeployWait, E::Abort, S::DeployFailed),
        (S::DeployWait, E::Delete, S::Deleting),
        (S::DeployFailed, E::Rebuild, S::Deploying),
        (S::DeployFailed, E::Deploy, S::Deploying),
        (S::DeployFailed, E::Delete, S::Deleting),
        (S::DeployHold, E::Unhold, S::DeployWait),
        (S::DeployHold, E::Abort, S::DeployFailed),
        // Cleaning, automated (target available) or manual (target manageable).
        (S::Cleaning, E::Done, S::Available),
        (S::Cleaning, E::Fail, S::CleanFailed),
        (S::Cleaning, E::Wait, S::CleanWait),
        (S::Cleaning, E::Hold, S::CleanHold),
        (S::Cleaning, E::Manage, S::Manageable),
        (S::CleanWait, E::Fail, S::CleanFailed),
        (S::CleanWait, E::Abort, S::CleanFailed),
        (S::CleanWait, E::Hold, S::CleanHold),
        (S::CleanWait, E::Resume, S::Cleaning),
        (S::CleanFailed, E::Manage, S::Manageable),
        (S::CleanHold, E::Abort, S::CleanFailed),
        (S::CleanHold, E::Unhold, S::CleanWait),
        // Teardown, which hands over to cleaning.
        (S::Deleting, E::Fail, S::Error),
        (S::Deleting, E::Clean, S::Cleaning),
        // Inspection.
        (S::Inspecting, E::Done, S::Manageable),
        (S::Inspecting, E::Fail, S::InspectFailed),
        (S::Inspecting, E::Wait, S::InspectWait),
        (S::InspectFailed, E::Manage, S::Manageable),
        (S::InspectFailed, E::Inspect, S::Inspecting),
        (S::InspectWait, E::Done, S::Manageable),
        (S::InspectWait, E::Fail, S::InspectFailed),
        (S::InspectWait, E::Abort, S::InspectFailed),
        (S::InspectWait, E::Resume, S::Inspecting),
        // Adoption.
        (S::Adopting, E::Done, S::Active),
        (S::Adopting, E::Fail, S::AdoptFailed),
        (S::AdoptFailed, E::Adopt, S::Adopting),
        (S::AdoptFailed, E::Manage, S::Manageable),
        // Rescue and unrescue.
        (S::Rescuing, E::Done, S::Rescue),
        (S::Rescuing, E::Wait, S::RescueWait),
        (S::Rescuing, E::Fail, S::RescueFailed),
        (S::RescueWait, E::Resume, S::Rescuing),
        (S::RescueWait, E::Fail, S::RescueFailed),
        (S::RescueWait, E::Abort, S::RescueFailed),
        (S::RescueWait, E::Delete, S::Deleting),
        (S::RescueFailed, E::Rescue, S::Rescuing),
        (S::RescueFailed, E::Unrescue, S::Unrescuing),
        (S::RescueFailed, E::Delete, S::Deleting),
        (S::Unrescuing, E::Done, S::Active),
        (S::Unrescuing, E::Fail, S::UnrescueFailed),
        (S::UnrescueFailed, E::Rescue, S::Rescuing),
        (S::UnrescueFailed, E::Unrescue, S::Unrescuing),
        (S::UnrescueFailed, E::Delete, S::Deleting),
        // Servicing a deployed node.
        (S::Servicing, E::Done, S::Active),
        (S::Servicing, E::Fail, S::ServiceFailed),
        (S::Servicing, E::Wait, S::ServiceWait),
        (S::Servicing, E::Hold, S::ServiceHold),
        (S::ServiceWait, E::Hold, S::ServiceHold),
        (S::ServiceWait, E::Resume, S::Servicing),
        (S::ServiceWait, E::Fail, S::ServiceFailed),
        (S::ServiceWait, E::Abort, S::ServiceFailed),
        (S::ServiceWait, E::Delete, S::Deleting),
        (S::ServiceFailed, E::Service, S::Servicing),
        (S::ServiceFailed, E::Rescue, S::Rescuing),
        (S::ServiceFailed, E::Wait, S::ServiceWait),
        (S::ServiceFailed, E::Hold, S::ServiceHold),
        (S::ServiceFailed, E::Delete, S::Deleting),
        // Unlike every other failure state, aborting here returns to active.
        (S::ServiceFailed, E::Abort, S::Active),
        (S::ServiceHold, E::Service, S::Servicing),
        (S::ServiceHold, E::Unhold, S::ServiceWait),
        (S::ServiceHold, E::Fail, S::ServiceFailed),
        (S::ServiceHold, E::Abort, S::ServiceFailed),
    ]
};

/// The state `event` moves a node in `state` to.
pub fn next(state: ProvisionState, event: Event) -> Result<ProvisionState, TransitionError> {
    TRANSITIONS
        .iter()
        .find(|(from, on, _)| *from == state && *on == event)
        .map(|(_, _, to)| *to)
        .ok_or(TransitionError::NotAllowed { state, event })
}

/// Whether `event` is allowed in `state` (upstream's `is_actionable_event`).
pub fn is_actionable(state: ProvisionState, event: Event) -> bool {
    next(state, event).is_ok()
}

/// The events allowed in `state`, with where each leads, in table order.
pub fn transitions_from(state: ProvisionState) -> impl Iterator<Item = (Event, ProvisionState)> {
    TRANSITIONS
        .iter()
        .filter(move |(from, _, _)| *from == state)
        .map(|(_, event, to)| (*event, *to))
}

/// Whether the conductor hands the node to background work after the event.
///
/// Upstream clears `target_provision_state` when an event lands on a stable
/// state with nothing more to do, but keeps it while background work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Followup {
    /// The event completes the change; nothing runs afterwards.
    Nothing,
    /// The conductor starts work (a deploy, a clean, …) after the event.
    BackgroundWork,
}

/// One event applied to a node, with the node's current target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRequest {
    /// The node's `provision_state`.
    pub state: ProvisionState,
    /// The node's `target_provision_state`; when `None` the machine starts
    /// from the state's default target.
    pub target: Option<ProvisionState>,
    /// The event to apply.
    pub event: Event,
    /// A target that overrides the new state's default one. Upstream's
    /// conductor passes `manageable` while manual cleaning waits, fails or
    /// resumes (the default for the clean states is `available`), `active`
    /// when servicing starts, and keeps the previous target when a wait
    /// state times out. Must be a stable state.
    pub requested_target: Option<ProvisionState>,
    /// Whether background work follows the event.
    pub followup: Followup,
}

/// The node's states after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The new `provision_state`.
    pub provision_state: ProvisionState,
    /// The new `target_provision_state`.
    pub target_provision_state: Option<ProvisionState>,
}

/// Apply an event the way upstream's conductor does, target included.
///
/// The target follows upstream's rules: start from the node's target (or
/// the current state's default); forget it once it is reached; take the new
/// state's default target if it has one; let a requested target override
/// all that; finally, clear it when the node lands on a stable state with no
/// background work to follow.
pub fn process_event(request: &EventRequest) -> Result<Outcome, TransitionError> {
    for target in [request.target, request.requested_target]
        .into_iter()
        .flatten()
    {
        if !target.is_stable() {
            return Err(TransitionError::TargetNotStable(target));
        }
    }
    let provision_state = next(request.state, request.event)?;
    let mut target = request.target.or(request.state.default_target());
    if target == Some(provision_state) {
        target = None;
    }
    if let Some(default) = provision_state.default_target() {
        target = Some(default);
    }
    if let Some(requested) = request.requested_target {
        target = Some(requested);
    }
    if request.followup == Followup::Nothing && provision_state.is_stable() {
        target = None;
    }
    Ok(Outcome {
        provision_state,
        target_provision_state: target,
    })
}
