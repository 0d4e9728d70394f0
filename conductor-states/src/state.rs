//! The provision states a node can be in, and what upstream knows about each.

use crate::version::ApiVersion;

wire_enum! {
    /// A node's `provision_state`, one of the 30 states of upstream's machine.
    ///
    /// The order is the order in which upstream adds the states to its
    /// machine (stable states first), which is also the order of
    /// [`STATES`]. Serde and [`as_str`](Self::as_str) use the wire string,
    /// e.g. `"wait call-back"` for [`DeployWait`](Self::DeployWait).
    ///
    /// Only these 30 strings are states. Upstream's constants module also
    /// names `"deleted"` and `"deploy complete"` (see
    /// [`NON_MACHINE_STATE_NAMES`]) and the verbs `"deploy"`, `"rebuild"`,
    /// `"undeploy"` and `"service"`, but no node is ever put in them, and the
    /// API refuses them as a `provision_state` filter.
    pub enum ProvisionState ("provision state") {
        /// Known to Ironic but not managed: credentials are unverified.
        Enroll => "enroll",
        /// Verified and under Ironic's control, but not offered for deployment.
        Manageable => "manageable",
        /// Clean and ready to be deployed. Shown as `null` before API 1.2.
        Available => "available",
        /// Deployed (or adopted) and serving an instance.
        Active => "active",
        /// Tearing down failed; the node needs a rebuild or another delete.
        Error => "error",
        /// Booted into the rescue ramdisk.
        Rescue => "rescue",
        /// Checking the power credentials on the way out of `enroll`.
        Verifying => "verifying",
        /// The conductor is running deploy steps.
        Deploying => "deploying",
        /// Deploying, waiting for the ramdisk agent to call back.
        DeployWait => "wait call-back",
        /// Deployment failed or was aborted.
        DeployFailed => "deploy failed",
        /// A deploy step asked to hold the node until an operator unholds it.
        DeployHold => "deploy hold",
        /// The conductor is running clean steps (automated or manual).
        Cleaning => "cleaning",
        /// Cleaning, waiting for the ramdisk agent.
        CleanWait => "clean wait",
        /// Cleaning failed or was aborted; the operator must intervene.
        CleanFailed => "clean failed",
        /// A clean step asked to hold the node until an operator unholds it.
        CleanHold => "clean hold",
        /// Tearing an instance down; cleaning follows.
        Deleting => "deleting",
        /// Hardware inspection is running. Nodes in `inspect wait` are shown
        /// in this state before API 1.39.
        Inspecting => "inspecting",
        /// Inspection failed or was aborted.
        InspectFailed => "inspect failed",
        /// Asynchronous inspection is running elsewhere (e.g. in the ramdisk).
        InspectWait => "inspect wait",
        /// Taking over a node that was deployed outside Ironic.
        Adopting => "adopting",
        /// Adoption failed.
        AdoptFailed => "adopt failed",
        /// Booting the rescue ramdisk.
        Rescuing => "rescuing",
        /// Rescuing, waiting for the ramdisk agent.
        RescueWait => "rescue wait",
        /// Rescue failed or was aborted.
        RescueFailed => "rescue failed",
        /// Leaving rescue, going back to the instance.
        Unrescuing => "unrescuing",
        /// Leaving rescue failed.
        UnrescueFailed => "unrescue failed",
        /// Running service steps on a deployed node.
        Servicing => "servicing",
        /// Servicing, waiting for the ramdisk agent.
        ServiceWait => "service wait",
        /// Servicing failed or was aborted.
        ServiceFailed => "service failed",
        /// A service step asked to hold the node until an operator unholds it.
        ServiceHold => "service hold",
    }
}

/// Names in upstream's `ALL_STATES` that are not states of the machine.
///
/// `"deleted"` survives as a provision target (the older spelling of the
/// `undeploy` verb) and `"deploy complete"` was the deploy target state
/// before Kilo. No node is put in either today.
pub const NON_MACHINE_STATE_NAMES: &[&str] = &["deleted", "deploy complete"];

/// How a state behaves when nobody asks anything of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateClass {
    /// Upstream's stable states: the node stays until an API request moves
    /// it. `target_provision_state` is empty in them.
    Stable,
    /// Upstream's `UNSTABLE_STATES`: work is in flight (in the conductor or
    /// in the ramdisk) and the node moves on without a request.
    Unstable,
    /// Neither: the machine calls them transitional (they have a target),
    /// but nothing moves them except a request. These are the failure and
    /// hold states, e.g. `deploy failed` or `clean hold`.
    Halted,
}

/// What upstream's machine records about one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateInfo {
    /// The state described.
    pub state: ProvisionState,
    /// Stable, unstable or halted.
    pub class: StateClass,
    /// The stable state the node is heading for while in this state: the
    /// machine's default `target_provision_state`. `None` for stable states.
    pub default_target: Option<ProvisionState>,
}

const fn stable(state: ProvisionState) -> StateInfo {
    StateInfo {
        state,
        class: StateClass::Stable,
        default_target: None,
    }
}

const fn unstable(state: ProvisionState, target: ProvisionState) -> StateInfo {
    StateInfo {
        state,
        class: StateClass::Unstable,
        default_target: Some(target),
    }
}

const fn halted(state: ProvisionState, target: ProvisionState) -> StateInfo {
    StateInfo {
        state,
        class: StateClass::Halted,
        default_target: Some(target),
    }
}

/// Every state with its class and default target, in [`ProvisionState::ALL`]
/// order (so `STATES[state as usize].state == state`).
pub const STATES: &[StateInfo] = {
    use ProvisionState as S;
    &[
        stable(S::Enroll),
        stable(S::Manageable),
        stable(S::Available),
        stable(S::Active),
        stable(S::Error),
        stable(S::Rescue),
        unstable(S::Verifying, S::Manageable),
        unstable(S::Deploying, S::Active),
        unstable(S::DeployWait, S::Active),
        halted(S::DeployFailed, S::Active),
        halted(S::DeployHold, S::Active),
        unstable(S::Cleaning, S::Available),
        unstable(S::CleanWait, S::Available),
        halted(S::CleanFailed, S::Available),
        halted(S::CleanHold, S::Available),
        unstable(S::Deleting, S::Available),
        unstable(S::Inspecting, S::Manageable),
        halted(S::InspectFailed, S::Manageable),
        unstable(S::InspectWait, S::Manageable),
        unstable(S::Adopting, S::Active),
        halted(S::AdoptFailed, S::Active),
        unstable(S::Rescuing, S::Rescue),
        unstable(S::RescueWait, S::Rescue),
        halted(S::RescueFailed, S::Rescue),
        unstable(S::Unrescuing, S::Active),
        halted(S::UnrescueFailed, S::Active),
        unstable(S::Servicing, S::Active),
        unstable(S::ServiceWait, S::Active),
        halted(S::ServiceFailed, S::Active),
        halted(S::ServiceHold, S::Active),
    ]
};

impl ProvisionState {
    /// What the machine records about this state.
    pub const fn info(self) -> StateInfo {
        STATES[self as usize]
    }

    /// Stable, unstable or halted.
    pub const fn class(self) -> StateClass {
        self.info().class
    }

    /// Whether upstream's machine calls this state stable (`enroll`,
    /// `manageable`, `available`, `active`, `error`, `rescue`).
    pub const fn is_stable(self) -> bool {
        matches!(self.class(), StateClass::Stable)
    }

    /// The stable state this transitional state is heading for, `None` for
    /// stable states.
    pub const fn default_target(self) -> Option<ProvisionState> {
        self.info().default_target
    }

    /// Whether this is one of upstream's `FAILURE_STATES` (the seven
    /// `… failed` states; `error` is not one of them).
    pub const fn is_failure(self) -> bool {
        use ProvisionState as S;
        matches!(
            self,
            S::DeployFailed
                | S::CleanFailed
                | S::InspectFailed
                | S::RescueFailed
                | S::UnrescueFailed
                | S::AdoptFailed
                | S::ServiceFailed
        )
    }

    /// The `provision_state` value the API shows at `version`.
    ///
    /// Upstream rewrites two states for old clients: `available` is shown as
    /// `null` (the pre-Kilo "no state") before 1.2, and `inspect wait` as
    /// `inspecting` before 1.39. Only `provision_state` is rewritten, never
    /// `target_provision_state`, and error messages always use the stored
    /// name.
    pub const fn api_name(self, version: ApiVersion) -> Option<&'static str> {
        match self {
            ProvisionState::Available if !version.at_least(2) => None,
            ProvisionState::InspectWait if !version.at_least(39) => {
                Some(ProvisionState::Inspecting.as_str())
            }
            _ => Some(self.as_str()),
        }
    }

    /// The state a node created with `POST /v1/nodes` at `version` starts
    /// in: `enroll` from 1.11, `available` before.
    pub const fn initial(version: ApiVersion) -> ProvisionState {
        if version.at_least(11) {
            ProvisionState::Enroll
        } else {
            ProvisionState::Available
        }
    }
}
