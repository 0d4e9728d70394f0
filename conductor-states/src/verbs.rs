//! The `target` values of `PUT /v1/nodes/{node}/states/provision`, and the
//! checks upstream's API makes on them before asking the conductor.
//!
//! Upstream checks a provision request in this order; the two functions here
//! cover the steps that depend on the node's state and the microversion:
//!
//! 1. policy;
//! 2. [`check_provision_request`]: the early microversion gate, maintenance,
//!    and whether the target's event is allowed in the node's state;
//! 3. the request body: config drive, `disable_ramdisk`, and which of
//!    `clean_steps`, `deploy_steps`, `rescue_password` and `service_steps`
//!    may accompany the target;
//! 4. [`finish_provision_checks`]: the late microversion gates (`abort` from
//!    some states, `unhold`, `service`) and targets nobody handles;
//! 5. per-verb required fields (`rescue_password`, `clean_steps`,
//!    `service_steps`), then the call to the conductor and 202.

use crate::error::ProvisionRequestError;
use crate::event::Event;
use crate::machine::is_actionable;
use crate::state::ProvisionState;
use crate::version::ApiVersion;

wire_enum! {
    /// A `target` the provision endpoint acts on.
    ///
    /// These are the keys of upstream's `VERBS` table plus `rebuild`, which
    /// the API handles without listing it there.
    pub enum ApiVerb ("provision target") {
        /// Deploy (`available`, `deploy failed`).
        Active => "active",
        /// Same as `active`, from 1.73 (and not refused in maintenance).
        Deploy => "deploy",
        /// Redeploy an `active`, `error` or `deploy failed` node.
        Rebuild => "rebuild",
        /// Tear down an instance.
        Deleted => "deleted",
        /// Same as `deleted`. Meant to need 1.73, but see [`ApiVerb::min_version`].
        Undeploy => "undeploy",
        /// Move to `manageable` (from 1.4).
        Manage => "manage",
        /// Move a manageable node to `available` through cleaning (from 1.4).
        Provide => "provide",
        /// Inspect the hardware (from 1.6).
        Inspect => "inspect",
        /// Abort a waiting, held or failed-servicing operation (from 1.13).
        Abort => "abort",
        /// Manual cleaning with `clean_steps` (from 1.15).
        Clean => "clean",
        /// Adopt a node deployed outside Ironic (from 1.17).
        Adopt => "adopt",
        /// Boot the rescue ramdisk; needs `rescue_password` (from 1.38).
        Rescue => "rescue",
        /// Leave rescue (from 1.38).
        Unrescue => "unrescue",
        /// Release a held node (from 1.85).
        Unhold => "unhold",
        /// Run `service_steps` on an active node (from 1.87).
        Service => "service",
    }
}

/// Upstream's `MIN_VERB_VERSIONS`, checked before anything else.
///
/// Upstream builds this table keyed by *event* names while looking it up by
/// the client's *target*. For every verb but one the two are equal; the
/// `undeploy` verb's entry is keyed `delete`, so `undeploy` is never gated
/// and the bare target `delete` is (it is then refused as not understood).
pub const MIN_VERB_VERSIONS: &[(&str, ApiVersion)] = &[
    ("manage", ApiVersion::v1(4)),
    ("provide", ApiVersion::v1(4)),
    ("inspect", ApiVersion::v1(6)),
    ("abort", ApiVersion::v1(13)),
    ("clean", ApiVersion::v1(15)),
    ("adopt", ApiVersion::v1(17)),
    ("rescue", ApiVersion::v1(38)),
    ("unrescue", ApiVersion::v1(38)),
    ("deploy", ApiVersion::v1(73)),
    ("delete", ApiVersion::v1(73)),
];

/// Verbs whose microversion is only checked after the state check and the
/// body checks: below these versions a request in a wrong state gets 400,
/// in a right state 406.
pub const LATE_VERB_VERSIONS: &[(ApiVerb, ApiVersion)] = &[
    (ApiVerb::Unhold, ApiVersion::v1(85)),
    (ApiVerb::Service, ApiVersion::v1(87)),
];

/// States from which `abort` needs a newer microversion than the verb itself.
pub const ABORT_VERSIONS: &[(ProvisionState, ApiVersion)] = &[
    (ProvisionState::InspectWait, ApiVersion::v1(41)),
    (ProvisionState::DeployWait, ApiVersion::v1(110)),
];

impl ApiVerb {
    /// The machine event this target sends.
    pub const fn event(self) -> Event {
        match self {
            ApiVerb::Active | ApiVerb::Deploy => Event::Deploy,
            ApiVerb::Rebuild => Event::Rebuild,
            ApiVerb::Deleted | ApiVerb::Undeploy => Event::Delete,
            ApiVerb::Manage => Event::Manage,
            ApiVerb::Provide => Event::Provide,
            ApiVerb::Inspect => Event::Inspect,
            ApiVerb::Abort => Event::Abort,
            ApiVerb::Clean => Event::Clean,
            ApiVerb::Adopt => Event::Adopt,
            ApiVerb::Rescue => Event::Rescue,
            ApiVerb::Unrescue => Event::Unrescue,
            ApiVerb::Unhold => Event::Unhold,
            ApiVerb::Service => Event::Service,
        }
    }

    /// The oldest microversion at which upstream accepts this target.
    ///
    /// This is what upstream enforces, not what it documents: `undeploy` is
    /// documented as new in 1.73 but accepted at any version (see
    /// [`MIN_VERB_VERSIONS`]). `abort` needs more from some states
    /// ([`ABORT_VERSIONS`]).
    pub fn min_version(self) -> ApiVersion {
        early_version_gate(self.as_str())
            .or_else(|| late_version_gate(self))
            .unwrap_or(ApiVersion::MIN)
    }

    /// Whether the node's maintenance flag refuses this target. Only `active`
    /// and `rebuild` are refused; `deploy`, its 1.73 alias, is not.
    pub const fn refused_in_maintenance(self) -> bool {
        matches!(self, ApiVerb::Active | ApiVerb::Rebuild)
    }
}

/// The microversion upstream requires for `target` before looking at the node.
pub fn early_version_gate(target: &str) -> Option<ApiVersion> {
    MIN_VERB_VERSIONS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, version)| *version)
}

fn late_version_gate(verb: ApiVerb) -> Option<ApiVersion> {
    LATE_VERB_VERSIONS
        .iter()
        .find(|(gated, _)| *gated == verb)
        .map(|(_, version)| *version)
}

/// The event upstream tries for a raw `target`: the verb's event, else the
/// target itself taken as an event name. `None` when it is neither.
pub fn event_for_target(target: &str) -> Option<Event> {
    match target.parse::<ApiVerb>() {
        Ok(verb) => Some(verb.event()),
        Err(_) => target.parse().ok(),
    }
}

/// What the provision endpoint knows when it checks a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvisionRequest<'a> {
    /// The node's UUID, for messages.
    pub node_uuid: &'a str,
    /// The `target` exactly as the client sent it.
    pub target: &'a str,
    /// The node's provision state.
    pub provision_state: ProvisionState,
    /// The request's microversion.
    pub version: ApiVersion,
    /// The node's maintenance flag.
    pub maintenance: bool,
    /// The conductor holding the node's reservation, if any.
    pub reservation: Option<&'a str>,
}

/// A target that passed [`check_provision_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckedTarget {
    /// A verb the API acts on.
    Verb(ApiVerb),
    /// An event that is allowed in the node's state but that the API does
    /// not act on (e.g. `fail`, `resume`, or `delete` spelled as the event).
    /// [`finish_provision_checks`] refuses it, after the body checks.
    Unhandled(Event),
}

/// Upstream's checks before it reads the request body.
///
/// In order: the early microversion gate (406), maintenance for `active` and
/// `rebuild` (400), then whether the target's event is allowed in the node's
/// state: if not, 409 when the node is reserved (it is busy), 400 otherwise.
/// Unknown targets fail that last check like any refused verb.
pub fn check_provision_request(
    request: &ProvisionRequest<'_>,
) -> Result<CheckedTarget, ProvisionRequestError> {
    if let Some(minimum) = early_version_gate(request.target) {
        if request.version < minimum {
            return Err(ProvisionRequestError::NotAcceptable);
        }
    }
    let verb = request.target.parse::<ApiVerb>().ok();
    if request.maintenance && verb.is_some_and(ApiVerb::refused_in_maintenance) {
        return Err(ProvisionRequestError::InMaintenance {
            node: request.node_uuid.to_owned(),
        });
    }
    let event = event_for_target(request.target)
        .filter(|event| is_actionable(request.provision_state, *event));
    let Some(event) = event else {
        if let Some(host) = request.reservation {
            return Err(ProvisionRequestError::Locked {
                node: request.node_uuid.to_owned(),
                host: host.to_owned(),
            });
        }
        return Err(ProvisionRequestError::InvalidStateRequested {
            action: request.target.to_owned(),
            node: request.node_uuid.to_owned(),
            state: request.provision_state,
        });
    };
    Ok(match verb {
        Some(verb) => CheckedTarget::Verb(verb),
        None => CheckedTarget::Unhandled(event),
    })
}

/// Upstream's checks after the request body: the late microversion gates
/// (406) and the refusal of targets that no branch handles (400).
pub fn finish_provision_checks(
    request: &ProvisionRequest<'_>,
    checked: CheckedTarget,
) -> Result<ApiVerb, ProvisionRequestError> {
    let verb = match checked {
        CheckedTarget::Verb(verb) => verb,
        CheckedTarget::Unhandled(_) => {
            return Err(ProvisionRequestError::NotUnderstood {
                action: request.target.to_owned(),
            })
        }
    };
    let abort_minimum = ABORT_VERSIONS
        .iter()
        .find(|(state, _)| verb == ApiVerb::Abort && *state == request.provision_state)
        .map(|(_, version)| *version);
    let minimum = abort_minimum.or_else(|| late_version_gate(verb));
    if minimum.is_some_and(|minimum| request.version < minimum) {
        return Err(ProvisionRequestError::NotAcceptable);
    }
    Ok(verb)
}
