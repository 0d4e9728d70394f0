//! The crate's error types.
//!
//! The API-facing errors carry upstream's exact message texts (clients and
//! upstream's tests match on them) and say which HTTP status upstream gives
//! each; the service's error table decides how to render them.

use crate::event::Event;
use crate::state::ProvisionState;

/// A string that names no value of a wire enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} \"{name}\"")]
pub struct UnknownName {
    /// What was being parsed, e.g. `"provision state"`.
    pub kind: &'static str,
    /// The string that did not parse.
    pub name: String,
}

/// An event the machine refuses.
///
/// These never reach the wire as such: the API checks first and answers
/// with a [`ProvisionRequestError`], and the conductor turns a refused
/// event into `InvalidStateRequested` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// There is no transition for this event from this state.
    #[error("the event \"{event}\" is not allowed in provision state \"{state}\"")]
    NotAllowed {
        /// The state the node is in.
        state: ProvisionState,
        /// The refused event.
        event: Event,
    },
    /// A target provision state must be a stable state.
    #[error("\"{0}\" can not be a target provision state: it is not a stable state")]
    TargetNotStable(ProvisionState),
}

/// Why `PUT /v1/nodes/{node}/states/provision` is refused, for the reasons
/// that depend on the node's state and the microversion.
///
/// `Display` is upstream's message (the `faultstring`), word for word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionRequestError {
    /// The target needs a newer microversion (406).
    #[error("Request not acceptable.")]
    NotAcceptable,
    /// `active` and `rebuild` are refused while the node is in maintenance (400).
    #[error("The provisioning operation can't be performed on node {node} because it's in maintenance mode.")]
    InMaintenance {
        /// The node's UUID.
        node: String,
    },
    /// The event is not allowed now and the node is reserved by a conductor,
    /// so upstream reports the lock rather than the state (409).
    #[error("Node {node} is locked by host {host}, please retry after the current operation is completed.")]
    Locked {
        /// The node's UUID.
        node: String,
        /// The conductor holding the reservation.
        host: String,
    },
    /// The target is no event allowed in the node's state; unknown targets
    /// end up here too (400).
    #[error("The requested action \"{action}\" can not be performed on node \"{node}\" while it is in state \"{state}\".")]
    InvalidStateRequested {
        /// The `target` exactly as the client sent it.
        action: String,
        /// The node's UUID.
        node: String,
        /// The node's stored provision state (never rewritten for old
        /// microversions).
        state: ProvisionState,
    },
    /// The target names an event that is allowed in the node's state but is
    /// not a provision verb, e.g. `fail` while deploying (400).
    #[error("The requested action \"{action}\" could not be understood.")]
    NotUnderstood {
        /// The `target` exactly as the client sent it.
        action: String,
    },
}

impl ProvisionRequestError {
    /// The HTTP status upstream answers with.
    pub const fn upstream_status(&self) -> u16 {
        match self {
            ProvisionRequestError::NotAcceptable => 406,
            ProvisionRequestError::Locked { .. } => 409,
            ProvisionRequestError::InMaintenance { .. }
            | ProvisionRequestError::InvalidStateRequested { .. }
            | ProvisionRequestError::NotUnderstood { .. } => 400,
        }
    }
}

/// Why `PATCH /v1/nodes/{node}` is refused because of the provision state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeUpdateError {
    /// The node has a target and its state is not in
    /// [`UPDATE_ALLOWED_STATES`](crate::sets::UPDATE_ALLOWED_STATES) (409).
    #[error("Node {node_ident} can not be updated while a state transition is in progress.")]
    TransitionInProgress {
        /// The node as named in the URL (UUID or name), as upstream prints it.
        node_ident: String,
    },
    /// From API 1.39 a node can not be updated while `inspecting` (409).
    #[error("Cannot update node \"{node}\" while it is in state \"inspecting\".")]
    Inspecting {
        /// The node's UUID.
        node: String,
    },
}

impl NodeUpdateError {
    /// The HTTP status upstream answers with.
    pub const fn upstream_status(&self) -> u16 {
        409
    }
}

/// Why `DELETE /v1/nodes/{node}` is refused because of the provision state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Can not delete node \"{node}\" while it is in provision state \"{state}\". Valid provision states to perform deletion are: \"{allowed}\", or set the node into maintenance mode")]
pub struct NodeDeleteError {
    /// The node's UUID.
    pub node: String,
    /// The node's provision state.
    pub state: ProvisionState,
    /// The allowed states as upstream prints them: a Python tuple, e.g.
    /// `('manageable', 'enroll', 'adopt failed', 'available')`.
    pub allowed: String,
}

impl NodeDeleteError {
    /// The HTTP status upstream answers with.
    pub const fn upstream_status(&self) -> u16 {
        409
    }
}
