//! Whether a node may be updated or deleted in its provision state, with
//! upstream's refusal messages.

use crate::error::{NodeDeleteError, NodeUpdateError};
use crate::sets::{DELETE_ALLOWED_STATES, UPDATE_ALLOWED_STATES};
use crate::state::ProvisionState;
use crate::version::ApiVersion;

/// A `PATCH /v1/nodes/{node}` as far as the provision state matters.
///
/// Upstream skips these checks for one patch: removing `/instance_uuid` from
/// a node in maintenance. The caller decides that before calling
/// [`check_node_update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeUpdate<'a> {
    /// The node as named in the request URL (UUID or name).
    pub node_ident: &'a str,
    /// The node's UUID.
    pub node_uuid: &'a str,
    /// The node's provision state.
    pub provision_state: ProvisionState,
    /// The node's target provision state.
    pub target_provision_state: Option<ProvisionState>,
    /// The request's microversion.
    pub version: ApiVersion,
}

/// Refuse updates while a transition is in progress, as upstream does.
///
/// A node with a target may be updated only in [`UPDATE_ALLOWED_STATES`];
/// and from 1.39, never while `inspecting` (whatever its target).
pub fn check_node_update(update: &NodeUpdate<'_>) -> Result<(), NodeUpdateError> {
    if update.target_provision_state.is_some()
        && !UPDATE_ALLOWED_STATES.contains(&update.provision_state)
    {
        return Err(NodeUpdateError::TransitionInProgress {
            node_ident: update.node_ident.to_owned(),
        });
    }
    if update.provision_state == ProvisionState::Inspecting && update.version.at_least(39) {
        return Err(NodeUpdateError::Inspecting {
            node: update.node_uuid.to_owned(),
        });
    }
    Ok(())
}

/// The conductor settings that change which states allow deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletePolicy {
    /// `[conductor]allow_deleting_available_nodes`: adds `available` to the
    /// allowed states. Upstream's default is true.
    pub allow_deleting_available_nodes: bool,
}

impl Default for DeletePolicy {
    fn default() -> Self {
        DeletePolicy {
            allow_deleting_available_nodes: true,
        }
    }
}

/// The states in which `policy` allows deletion, in upstream's order.
pub fn delete_allowed_states(policy: DeletePolicy) -> Vec<ProvisionState> {
    let mut allowed = DELETE_ALLOWED_STATES.to_vec();
    if policy.allow_deleting_available_nodes {
        allowed.push(ProvisionState::Available);
    }
    allowed
}

/// Refuse deleting a node outside maintenance in a state that does not
/// allow it, with upstream's message.
///
/// Upstream refuses a node with an instance (unless in maintenance) and a
/// protected node before this check; those do not depend on the state and
/// are left to the caller.
pub fn check_node_delete(
    node_uuid: &str,
    provision_state: ProvisionState,
    maintenance: bool,
    policy: DeletePolicy,
) -> Result<(), NodeDeleteError> {
    let allowed = delete_allowed_states(policy);
    if maintenance || allowed.contains(&provision_state) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(|state| state.as_str()).collect();
    Err(NodeDeleteError {
        node: node_uuid.to_owned(),
        state: provision_state,
        allowed: python_tuple(&names),
    })
}

/// How Python prints a tuple of plain strings (no quotes or backslashes in
/// them, which holds for state names).
fn python_tuple(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("'{item}'")).collect();
    match quoted.as_slice() {
        [single] => format!("({single},)"),
        _ => format!("({})", quoted.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::python_tuple;

    #[test]
    fn python_tuples_print_like_python() {
        assert_eq!(python_tuple(&[]), "()");
        assert_eq!(python_tuple(&["enroll"]), "('enroll',)");
        assert_eq!(
            python_tuple(&["enroll", "adopt failed"]),
            "('enroll', 'adopt failed')"
        );
    }
}
