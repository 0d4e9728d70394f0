//! The state machine rendered as Markdown, for the docs.
//!
//! `STATE_MACHINE.md` at the crate root is this output; a test rewrites it
//! when the tables change, so the docs never drift from the code.

use std::fmt::Write as _;

use crate::event::Event;
use crate::machine::{transitions_from, TRANSITIONS};
use crate::recovery::{recovery_after_callback_timeout, recovery_on_restart, recovery_on_takeover};
use crate::sets::NAMED_SETS;
use crate::state::{ProvisionState, StateClass};
use crate::verbs::ApiVerb;

/// The whole machine as a Markdown document.
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Provision state machine\n\n");
    out.push_str(
        "<!-- Generated from the tables in conductor-states/src by \
         `cargo test -p ferrite-conductor-states`; do not edit. -->\n\n",
    );
    // Writing into a String can not fail, so the results are ignored.
    let _ = writeln!(
        out,
        "Upstream's machine as of Ironic 39.0.0: {} states, {} events, {} transitions.\n",
        ProvisionState::ALL.len(),
        Event::ALL.len(),
        TRANSITIONS.len()
    );
    render_states(&mut out);
    render_transitions(&mut out);
    render_verbs(&mut out);
    render_sets(&mut out);
    out
}

fn code(text: &str) -> String {
    format!("`{text}`")
}

fn code_or_dash(state: Option<ProvisionState>) -> String {
    state.map_or_else(|| "-".to_owned(), |state| code(state.as_str()))
}

fn render_states(out: &mut String) {
    out.push_str("## States\n\n");
    out.push_str(
        "*Stable* states change only on request; *unstable* ones move on by \
         themselves; *halted* ones are transitional (they have a target) but \
         wait for a request. The last three columns say what the conductor \
         does to a node left in the state: after its own restart, when it \
         takes over a dead conductor's node, and when the agent stops calling \
         back.\n\n",
    );
    out.push_str(
        "| state | class | target while in it | on restart | on takeover | on callback timeout |\n",
    );
    out.push_str("|---|---|---|---|---|---|\n");
    for state in ProvisionState::ALL {
        let class = match state.class() {
            StateClass::Stable => "stable",
            StateClass::Unstable => "unstable",
            StateClass::Halted => "halted",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            code(state.as_str()),
            class,
            code_or_dash(state.default_target()),
            code_or_dash(recovery_on_restart(*state)),
            code_or_dash(recovery_on_takeover(*state, false)),
            code_or_dash(recovery_after_callback_timeout(*state)),
        );
    }
    out.push_str(
        "\nThe API shows `available` as `null` before 1.2 and `inspect wait` \
         as `inspecting` before 1.39. New nodes start in `enroll` from 1.11, \
         in `available` before.\n\n",
    );
}

fn render_transitions(out: &mut String) {
    out.push_str("## Transitions\n\n");
    out.push_str("| from | event | to |\n|---|---|---|\n");
    for (from, event, to) in TRANSITIONS {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            code(from.as_str()),
            code(event.as_str()),
            code(to.as_str())
        );
    }
    out.push('\n');
}

fn render_verbs(out: &mut String) {
    out.push_str("## Provision targets\n\n");
    out.push_str(
        "The `target` values of `PUT /v1/nodes/{node}/states/provision`, the \
         event each sends, the oldest microversion that accepts it, and the \
         states whose transitions allow that event. The API checks nothing \
         else about the state, so an unreserved node accepts e.g. `manage` \
         while `cleaning` and `clean` while `deleting`. Any other target that \
         names an event allowed in the node's state is refused as not \
         understood; anything else as not allowed in the state.\n\n",
    );
    out.push_str("| target | event | from | allowed in |\n|---|---|---|---|\n");
    for verb in ApiVerb::ALL {
        let allowed: Vec<String> = ProvisionState::ALL
            .iter()
            .filter(|state| transitions_from(**state).any(|(event, _)| event == verb.event()))
            .map(|state| code(state.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            code(verb.as_str()),
            code(verb.event().as_str()),
            verb.min_version(),
            allowed.join(", ")
        );
    }
    out.push_str(
        "\n`abort` needs 1.41 from `inspect wait` and 1.110 from `wait call-back`. \
         `undeploy` is accepted at every version (upstream keys its 1.73 gate \
         under `delete`).\n\n",
    );
}

fn render_sets(out: &mut String) {
    out.push_str("## Named sets\n\n");
    for (name, states) in NAMED_SETS {
        let members: Vec<String> = states.iter().map(|state| code(state.as_str())).collect();
        let _ = writeln!(out, "- `{name}`: {}", members.join(", "));
    }
}
