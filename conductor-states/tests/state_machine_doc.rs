//! `STATE_MACHINE.md` is the Markdown rendering of the tables and must stay
//! in step with them. When it differs this test rewrites it and fails, so a
//! rerun passes and the refreshed file shows up in the diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use ferrite_conductor_states::render_markdown;

#[test]
fn state_machine_md_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("STATE_MACHINE.md");
    let expected = render_markdown();
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != expected {
        std::fs::write(&path, &expected).unwrap();
        panic!(
            "{} was out of date and has been rewritten; rerun the tests",
            path.display()
        );
    }
}

#[test]
fn rendering_has_one_row_per_transition() {
    let markdown = render_markdown();
    assert!(markdown.contains("| `wait call-back` | `resume` | `deploying` |"));
    let rows = markdown
        .lines()
        .filter(|line| line.matches(" | ").count() == 2)
        .count();
    assert_eq!(rows, 1 + ferrite_conductor_states::TRANSITIONS.len());
}
