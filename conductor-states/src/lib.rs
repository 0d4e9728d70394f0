//! Ironic's node provision state machine, as data.
//!
//! The Bare Metal API moves nodes through provision states (`enroll`,
//! `manageable`, `available`, `deploying`, `active`, …) with events
//! (`manage`, `provide`, `deploy`, `done`, `fail`, …). This crate is that
//! machine as upstream Ironic 39.0.0 defines it, held as tables, plus the
//! rules around it that clients can observe:
//!
//! * [`state`]: the 30 [`ProvisionState`]s, their classes, default targets
//!   and how old microversions show them;
//! * [`event`]: the 18 [`Event`]s;
//! * [`machine`]: the 93 [`TRANSITIONS`], [`next`], and [`process_event`],
//!   which also computes `target_provision_state` as upstream does;
//! * [`verbs`]: the API's provision targets ([`ApiVerb`]), their
//!   microversions, and the API's checks with upstream's error texts;
//! * [`sets`] and [`rules`]: the named state sets and the update and delete
//!   rules built on them;
//! * [`recovery`]: which states a conductor fails, and into what, after a
//!   restart, a takeover or a callback timeout;
//! * [`markdown`]: the tables rendered for the docs (`STATE_MACHINE.md`).
//!
//! Pure: no I/O, no HTTP, no storage. The tables are checked against files
//! dumped from upstream by `data/dump_upstream.py`.

#[macro_use]
mod wire;

pub mod error;
pub mod event;
pub mod machine;
pub mod markdown;
pub mod recovery;
pub mod rules;
pub mod sets;
pub mod state;
pub mod verbs;
pub mod version;

pub use error::{
    NodeDeleteError, NodeUpdateError, ProvisionRequestError, TransitionError, UnknownName,
};
pub use event::Event;
pub use machine::{
    is_actionable, next, process_event, transitions_from, EventRequest, Followup, Outcome,
    TRANSITIONS,
};
pub use markdown::render_markdown;
pub use recovery::{recovery_after_callback_timeout, recovery_on_restart, recovery_on_takeover};
pub use rules::{check_node_delete, check_node_update, DeletePolicy, NodeUpdate};
pub use state::{ProvisionState, StateClass, StateInfo, STATES};
pub use verbs::{
    check_provision_request, finish_provision_checks, ApiVerb, CheckedTarget, ProvisionRequest,
};
pub use version::ApiVersion;
