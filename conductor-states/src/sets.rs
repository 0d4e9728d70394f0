//! Upstream's named sets of provision states, in upstream's order.
//!
//! `tests/upstream.rs` compares each with `data/sets.txt`. Where upstream
//! declares a tuple the order here is the tuple's (it shows in messages);
//! where it declares a frozenset the order is ours.

use crate::state::ProvisionState as S;
use crate::state::ProvisionState;

/// States that only change on request.
pub const STABLE_STATES: &[ProvisionState] = &[
    S::Enroll,
    S::Manageable,
    S::Available,
    S::Active,
    S::Error,
    S::Rescue,
];

/// States that change without a request: work is in flight.
pub const UNSTABLE_STATES: &[ProvisionState] = &[
    S::Deploying,
    S::DeployWait,
    S::Cleaning,
    S::CleanWait,
    S::Verifying,
    S::Deleting,
    S::Inspecting,
    S::InspectWait,
    S::Adopting,
    S::Rescuing,
    S::RescueWait,
    S::Unrescuing,
    S::Servicing,
    S::ServiceWait,
];

/// States in which a node with a `target_provision_state` may still be
/// updated with `PATCH` (a node without a target always may).
///
/// Upstream's tuple has a thirteenth entry, `"service"`, which is a verb and
/// never a provision state, so it can not match; it is left out here and
/// listed in [`UPDATE_ALLOWED_NON_STATES`]. `inspecting` is in the set but
/// refused separately from API 1.39.
pub const UPDATE_ALLOWED_STATES: &[ProvisionState] = &[
    S::DeployFailed,
    S::Inspecting,
    S::InspectFailed,
    S::InspectWait,
    S::CleanFailed,
    S::Error,
    S::Verifying,
    S::AdoptFailed,
    S::RescueFailed,
    S::UnrescueFailed,
    S::ServiceHold,
    S::ServiceFailed,
];

/// Entries of upstream's `UPDATE_ALLOWED_STATES` that are not states.
pub const UPDATE_ALLOWED_NON_STATES: &[&str] = &["service"];

/// States in which a node may be deleted without maintenance mode.
/// `available` is added when `[conductor]allow_deleting_available_nodes`
/// is true (the default); see [`crate::rules::check_node_delete`].
pub const DELETE_ALLOWED_STATES: &[ProvisionState] = &[S::Manageable, S::Enroll, S::AdoptFailed];

/// States a conductor can not resume after a restart: it sends them `fail`
/// when it starts (see [`crate::recovery::recovery_on_restart`]).
pub const STUCK_STATES_TREATED_AS_FAIL: &[ProvisionState] = &[
    S::Deploying,
    S::Cleaning,
    S::Verifying,
    S::Inspecting,
    S::Adopting,
    S::Rescuing,
    S::Unrescuing,
    S::Deleting,
    S::Servicing,
];

/// States in which the ramdisk agent may look its node up.
pub const LOOKUP_ALLOWED_STATES: &[ProvisionState] = &[
    S::Deploying,
    S::DeployWait,
    S::Cleaning,
    S::CleanWait,
    S::Inspecting,
    S::InspectWait,
    S::Rescuing,
    S::RescueWait,
    S::ServiceWait,
];

/// States in which the agent may look its node up when fast track is on.
pub const FASTTRACK_LOOKUP_ALLOWED_STATES: &[ProvisionState] = &[
    S::Enroll,
    S::Manageable,
    S::Available,
    S::Deploying,
    S::DeployWait,
    S::Cleaning,
    S::CleanWait,
    S::Inspecting,
    S::InspectWait,
    S::Rescuing,
    S::RescueWait,
    S::Servicing,
    S::ServiceWait,
    S::ServiceHold,
];

/// The `… failed` states (`error` is not one).
pub const FAILURE_STATES: &[ProvisionState] = &[
    S::DeployFailed,
    S::CleanFailed,
    S::InspectFailed,
    S::RescueFailed,
    S::UnrescueFailed,
    S::AdoptFailed,
    S::ServiceFailed,
];

/// The states of servicing, apart from `active` itself.
pub const SERVICING_STATES: &[ProvisionState] = &[
    S::Servicing,
    S::ServiceWait,
    S::ServiceFailed,
    S::ServiceHold,
];

/// The states of inspection.
pub const INSPECTION_STATES: &[ProvisionState] = &[S::Inspecting, S::InspectWait, S::InspectFailed];

/// States the conductor's power-state sync leaves alone (upstream keeps this
/// list in the conductor manager rather than with the states).
pub const SYNC_EXCLUDED_STATES: &[ProvisionState] =
    &[S::DeployWait, S::CleanWait, S::Enroll, S::AdoptFailed];

/// Every named set, for documentation and tests.
pub const NAMED_SETS: &[(&str, &[ProvisionState])] = &[
    ("STABLE_STATES", STABLE_STATES),
    ("UNSTABLE_STATES", UNSTABLE_STATES),
    ("UPDATE_ALLOWED_STATES", UPDATE_ALLOWED_STATES),
    ("DELETE_ALLOWED_STATES", DELETE_ALLOWED_STATES),
    ("STUCK_STATES_TREATED_AS_FAIL", STUCK_STATES_TREATED_AS_FAIL),
    ("LOOKUP_ALLOWED_STATES", LOOKUP_ALLOWED_STATES),
    (
        "FASTTRACK_LOOKUP_ALLOWED_STATES",
        FASTTRACK_LOOKUP_ALLOWED_STATES,
    ),
    ("FAILURE_STATES", FAILURE_STATES),
    ("SERVICING_STATES", SERVICING_STATES),
    ("INSPECTION_STATES", INSPECTION_STATES),
    ("SYNC_EXCLUDED_STATES", SYNC_EXCLUDED_STATES),
];
