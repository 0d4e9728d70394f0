//! The power-state sync periodic (upstream's `[conductor]
//! sync_power_state_interval`): every interval the conductor reads the power
//! state of its idle nodes from their BMCs and reconciles it with the
//! recorded one. With `force_power_state_during_sync` (the default) the
//! machine is put back into the recorded state; without it the record
//! follows the machine. A node that keeps disagreeing (or whose BMC keeps
//! failing) for more than `power_state_sync_max_retries` rounds is put in
//! maintenance with the `power failure` fault; a second periodic
//! (`power_failure_recovery_interval_secs`) takes such nodes out of
//! maintenance once their BMC answers again.
//!
//! [`decide`] is the pure rule; [`Engine::sync_power_states`] applies it.

use std::collections::HashMap;

use futures::StreamExt;
use serde_json::{json, Value};

use super::{set_opt, Engine, EngineResult, PowerTarget};
use crate::storage::{self, Doc, NodeRow};

/// Provision states whose power changes belong to a running flow (the
/// machine is netbooting, waiting for its agent…), never synced.
pub const EXCLUDED_STATES: &[&str] = &[
    "deploy wait",
    "clean wait",
    "rescue wait",
    "service wait",
    "inspect wait",
    "enroll",
    "adopt failed",
];

/// What one round does to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Recorded and actual agree.
    InSync,
    /// Nothing was recorded yet: record what the BMC says.
    Record(String),
    /// Put the machine back into the recorded state.
    Force(String),
    /// Make the record follow the machine.
    Update(String),
    /// Reading the power state failed; try again next round.
    Retry(String),
    /// Too many rounds in disagreement: maintenance, `power failure`.
    Exceeded {
        actual: Option<String>,
        reason: String,
    },
}

/// The rule, as upstream applies it: `failures` is how many rounds in a
/// row this node failed to sync before this one; returns the decision and
/// the new count (0 once in sync or recorded).
pub fn decide(
    node: &str,
    recorded: Option<&str>,
    actual: Result<&str, &str>,
    failures: u32,
    max_retries: u32,
    force: bool,
) -> (Decision, u32) {
    let count = failures.saturating_add(1);
    let actual = match actual {
        Ok(actual) => actual,
        Err(error) => {
            if count > max_retries {
                return (
                    Decision::Exceeded {
                        actual: None,
                        reason: format!(
                            "Power state sync of node {node} failed {count} times in a row, the last time with: {error}. The node is put in maintenance."
                        ),
                    },
                    count,
                );
            }
            return (Decision::Retry(error.to_string()), count);
        }
    };
    match recorded {
        Some(recorded) if recorded == actual => (Decision::InSync, 0),
        None => (Decision::Record(actual.to_string()), 0),
        Some(recorded) => {
            if count > max_retries {
                (
                    Decision::Exceeded {
                        actual: Some(actual.to_string()),
                        reason: format!(
                            "Power state sync of node {node}: the machine is '{actual}' but '{recorded}' is recorded, for more than {max_retries} sync rounds. The record now says '{actual}' and the node is put in maintenance."
                        ),
                    },
                    count,
                )
            } else if force {
                (Decision::Force(recorded.to_string()), count)
            } else {
                (Decision::Update(actual.to_string()), count)
            }
        }
    }
}

/// What a sync round did (for logs and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub checked: usize,
    pub recorded: usize,
    pub forced: usize,
    pub updated: usize,
    pub failed: usize,
    pub maintenance: usize,
}

/// How many nodes are read from their BMCs at once.
const WORKERS: usize = 8;

fn syncable(row: &NodeRow) -> bool {
    let state = row.str_field("provision_state").unwrap_or("");
    Engine::interface(&row.doc, "power") == "redfish"
        && !EXCLUDED_STATES.contains(&state)
        && row.doc.get("target_power_state").is_none_or(Value::is_null)
        && !row
            .doc
            .get("maintenance")
            .and_then(Value::as_bool)
            .unwrap_or(false)
}

async fn read_power(engine: &Engine, doc: &Doc) -> Result<String, String> {
    match crate::ops::get_power_state(&engine.config, doc).await {
        Ok(Some(state)) => Ok(state),
        Ok(None) => Err("the BMC reports no power state".into()),
        Err(e) => Err(e),
    }
}

impl Engine {
    /// One round of the power-state sync over this conductor group's idle
    /// nodes with a real power interface.
    pub async fn sync_power_states(&self) -> EngineResult<SyncReport> {
        let rows = self.redfish_nodes(false).await?;
        let rows: Vec<NodeRow> = rows.into_iter().filter(syncable).collect();
        let live: std::collections::HashSet<String> =
            rows.iter().map(|r| r.uuid().to_string()).collect();
        if let Ok(mut counts) = self.power_sync_counts.lock() {
            counts.retain(|uuid, _| live.contains(uuid));
        }
        let outcomes: Vec<Decision> = futures::stream::iter(rows)
            .map(|row| self.sync_node_power(row))
            .buffer_unordered(WORKERS)
            .collect()
            .await;
        let mut report = SyncReport::default();
        for outcome in outcomes {
            report.checked += 1;
            match outcome {
                Decision::InSync => {}
                Decision::Record(_) => report.recorded += 1,
                Decision::Force(_) => report.forced += 1,
                Decision::Update(_) => report.updated += 1,
                Decision::Retry(_) => report.failed += 1,
                Decision::Exceeded { .. } => report.maintenance += 1,
            }
        }
        Ok(report)
    }

    /// This conductor group's unreserved redfish nodes, in or out of
    /// maintenance. Only the redfish hardware type has a power interface
    /// with a machine behind it; the driver column keeps the listing small
    /// on fleets of fake nodes.
    async fn redfish_nodes(&self, maintenance: bool) -> EngineResult<Vec<NodeRow>> {
        let filter = storage::NodeFilter {
            equals: vec![
                ("reservation", None),
                ("driver", Some("redfish".to_string())),
                ("conductor_group", Some(self.config.conductor_group.clone())),
            ],
            maintenance: Some(maintenance),
            ..Default::default()
        };
        Ok(storage::list_nodes(self.db.conn(), &filter, "id", false, None, None).await?)
    }

    fn power_sync_count(&self, uuid: &str) -> u32 {
        self.power_sync_counts
            .lock()
            .ok()
            .and_then(|counts| counts.get(uuid).copied())
            .unwrap_or(0)
    }

    fn set_power_sync_count(&self, uuid: &str, count: u32) {
        if let Ok(mut counts) = self.power_sync_counts.lock() {
            if count == 0 {
                counts.remove(uuid);
            } else {
                counts.insert(uuid.to_string(), count);
            }
        }
    }

    /// Syncs one node; returns what was done.
    async fn sync_node_power(&self, row: NodeRow) -> Decision {
        let uuid = row.uuid().to_string();
        let recorded = row.str_field("power_state").map(str::to_string);
        let actual = read_power(self, &row.doc).await;
        if recorded.is_none() && actual.is_err() {
            // Never synced and the BMC cannot be read (as upstream with
            // invalid driver info): leave it alone.
            return Decision::InSync;
        }
        let (decision, count) = decide(
            &uuid,
            recorded.as_deref(),
            actual.as_deref().map_err(String::as_str),
            self.power_sync_count(&uuid),
            self.config.power_state_sync_max_retries,
            self.config.force_power_state_during_sync,
        );
        self.set_power_sync_count(&uuid, count);
        match &decision {
            Decision::InSync => return decision,
            Decision::Retry(error) => {
                tracing::warn!(node = %uuid, attempt = count, error = %error, "power state sync could not read the power state");
                return decision;
            }
            _ => {}
        }
        // Acting on the node: under its lock, with everything re-checked.
        let Ok(mut task) = self.acquire(&uuid).await else {
            return Decision::InSync;
        };
        let fresh = task.row.clone();
        if !syncable(&fresh) || fresh.str_field("power_state") != recorded.as_deref() {
            self.release(task).await;
            return Decision::InSync;
        }
        let mut doc = task.doc().clone();
        let now = storage::iso_now().1;
        match &decision {
            Decision::Exceeded { actual, reason } => {
                set_opt(&mut doc, "power_state", actual.as_deref());
                doc.insert("last_error".into(), json!(reason));
                doc.insert("maintenance".into(), json!(true));
                doc.insert("maintenance_reason".into(), json!(reason));
                doc.insert("fault".into(), json!("power failure"));
                tracing::error!(node = %uuid, reason = %reason, "power state sync gave up");
                self.history(&task, reason, "ERROR", "MAINTENANCE").await;
            }
            Decision::Record(_) | Decision::Update(_) | Decision::Force(_) => {
                // The machine may have moved since it was read.
                match read_power(self, &doc).await {
                    Ok(now_actual) if Some(now_actual.as_str()) == recorded.as_deref() => {
                        self.set_power_sync_count(&uuid, 0);
                        self.release(task).await;
                        return Decision::InSync;
                    }
                    Ok(now_actual) => match &decision {
                        Decision::Force(target) => {
                            tracing::warn!(node = %uuid, actual = %now_actual, recorded = %target, "power state sync: putting the machine back into its recorded power state");
                            let power = PowerTarget::parse(target).unwrap_or(PowerTarget::Off);
                            match self.power_work(&doc, power).await {
                                Ok(state) => set_opt(&mut doc, "power_state", Some(state)),
                                Err(message) => {
                                    tracing::error!(node = %uuid, error = %message, "power state sync could not change the power state");
                                    doc.insert("last_error".into(), json!(message));
                                }
                            }
                        }
                        Decision::Update(_) => {
                            let message = format!(
                                "Power state sync: node {uuid} is '{now_actual}' but '{}' was recorded; the record follows the machine.",
                                recorded.as_deref().unwrap_or("None")
                            );
                            tracing::warn!(node = %uuid, "{message}");
                            self.history(&task, &message, "WARNING", "MONITORING").await;
                            set_opt(&mut doc, "power_state", Some(&now_actual));
                        }
                        _ => {
                            tracing::info!(node = %uuid, state = %now_actual, "power state sync: recording the first known power state");
                            set_opt(&mut doc, "power_state", Some(&now_actual));
                        }
                    },
                    Err(error) => {
                        self.release(task).await;
                        return Decision::Retry(error);
                    }
                }
            }
            Decision::InSync | Decision::Retry(_) => {}
        }
        doc.insert("updated_at".into(), Value::String(now));
        if let Err(err) = self.save_and_release(&mut task, doc).await {
            tracing::error!(node = %uuid, error = %err, "power state sync failed to commit");
        }
        self.release(task).await;
        decision
    }
}

impl Engine {
    /// Upstream's power-failure recovery: nodes the sync put into
    /// maintenance (`fault: power failure`) whose BMC answers again leave
    /// maintenance with the power state it reports; returns how many.
    pub async fn recover_power_failures(&self) -> EngineResult<usize> {
        let rows = self.redfish_nodes(true).await?;
        let failed = |row: &NodeRow| {
            row.doc.get("fault").and_then(Value::as_str) == Some("power failure")
                && Engine::interface(&row.doc, "power") == "redfish"
        };
        let mut recovered = 0;
        for row in rows.into_iter().filter(|r| failed(r)) {
            let uuid = row.uuid().to_string();
            let Ok(actual) = read_power(self, &row.doc).await else {
                continue;
            };
            let Ok(mut task) = self.acquire(&uuid).await else {
                continue;
            };
            if !failed(&task.row)
                || !task
                    .doc()
                    .get("maintenance")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            {
                self.release(task).await;
                continue;
            }
            let mut doc = task.doc().clone();
            doc.insert("maintenance".into(), json!(false));
            doc.insert("maintenance_reason".into(), Value::Null);
            doc.insert("fault".into(), Value::Null);
            set_opt(&mut doc, "power_state", Some(&actual));
            doc.insert("updated_at".into(), Value::String(storage::iso_now().1));
            let message = format!(
                "Power failure recovery: the BMC of node {uuid} answers again ('{actual}'); the node leaves maintenance."
            );
            tracing::info!(node = %uuid, "{message}");
            self.history(&task, &message, "INFO", "MAINTENANCE").await;
            self.set_power_sync_count(&uuid, 0);
            match self.save_and_release(&mut task, doc).await {
                Ok(()) => recovered += 1,
                Err(err) => {
                    tracing::error!(node = %uuid, error = %err, "power failure recovery failed to commit")
                }
            }
            self.release(task).await;
        }
        Ok(recovered)
    }
}

/// Per-node counts of rounds in disagreement.
pub type Counts = std::sync::Mutex<HashMap<String, u32>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_sync_resets_the_count() {
        assert_eq!(
            decide("n", Some("power on"), Ok("power on"), 2, 3, true),
            (Decision::InSync, 0)
        );
    }

    #[test]
    fn nothing_recorded_records_what_the_bmc_says() {
        assert_eq!(
            decide("n", None, Ok("power off"), 0, 3, true),
            (Decision::Record("power off".into()), 0)
        );
    }

    #[test]
    fn disagreement_forces_or_updates_by_the_option() {
        assert_eq!(
            decide("n", Some("power on"), Ok("power off"), 0, 3, true),
            (Decision::Force("power on".into()), 1)
        );
        assert_eq!(
            decide("n", Some("power on"), Ok("power off"), 0, 3, false),
            (Decision::Update("power off".into()), 1)
        );
    }

    #[test]
    fn more_rounds_than_retries_means_maintenance() {
        // Rounds 1..=3 force, round 4 gives up (max_retries = 3).
        let mut count = 0;
        for round in 1..=3 {
            let (decision, next) = decide("n", Some("power on"), Ok("power off"), count, 3, true);
            assert_eq!(
                decision,
                Decision::Force("power on".into()),
                "round {round}"
            );
            count = next;
        }
        let (decision, _) = decide("n", Some("power on"), Ok("power off"), count, 3, true);
        match decision {
            Decision::Exceeded { actual, reason } => {
                assert_eq!(actual.as_deref(), Some("power off"));
                assert!(reason.contains("maintenance"), "{reason}");
            }
            other => panic!("expected maintenance, got {other:?}"),
        }
    }

    #[test]
    fn unreadable_bmc_retries_then_gives_up() {
        let (decision, count) = decide("n", Some("power on"), Err("timed out"), 0, 1, true);
        assert_eq!(decision, Decision::Retry("timed out".into()));
        let (decision, _) = decide("n", Some("power on"), Err("timed out"), count, 1, true);
        match decision {
            Decision::Exceeded { actual, reason } => {
                assert_eq!(actual, None);
                assert!(reason.contains("timed out"), "{reason}");
            }
            other => panic!("expected maintenance, got {other:?}"),
        }
    }
}
