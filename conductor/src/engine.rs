//! The conductor engine: owns node state changes.
//!
//! The API reaches it only through [`ConductorApi`], the boundary a later
//! split into separate API and conductor processes turns into RPC. Every
//! operation that changes a node takes the node's reservation first
//! ([`Engine::acquire`]: a conditional update of the `reservation` column,
//! retried a few times, then `NodeLocked` 409), writes only while holding it,
//! and releases it when done, including from background work. Long work
//! (verifying, cleaning, deploying, tearing down, …) runs in a spawned task
//! after the API has answered 202; each step is committed before the next
//! starts, so a crash leaves a state that [`Engine::recover`] knows how to
//! fail on the next start.

use std::sync::Arc;
use std::time::Duration;

use ferrite_conductor_states::{
    process_event, recovery_on_restart, ApiVerb, Event, EventRequest, Followup, ProvisionState,
};
use ferrite_db::Db;
use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::config::Config;
use crate::hardware::Registry;
use crate::storage::{self, Doc, Guard, HistoryRow, NodeRow};

pub mod power_sync;

/// Why the engine refused or failed an operation; rendered by the API.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("Node {0} could not be found.")]
    NodeNotFound(String),
    #[error("Node {node} is locked by host {host}, please retry after the current operation is completed.")]
    Locked { node: String, host: String },
    #[error("The requested action \"{action}\" can not be performed on node \"{node}\" while it is in state \"{state}\".")]
    InvalidState {
        action: String,
        node: String,
        state: String,
    },
    /// Any other client error, with upstream's status.
    #[error("{message}")]
    Client { status: u16, message: String },
    #[error("{0}")]
    Storage(String),
}

impl EngineError {
    pub fn status(&self) -> u16 {
        match self {
            EngineError::NodeNotFound(_) => 404,
            EngineError::Locked { .. } => 409,
            EngineError::InvalidState { .. } => 400,
            EngineError::Client { status, .. } => *status,
            EngineError::Storage(_) => 500,
        }
    }
    fn bad_request(message: impl Into<String>) -> EngineError {
        EngineError::Client {
            status: 400,
            message: message.into(),
        }
    }
}

impl From<storage::StorageError> for EngineError {
    fn from(err: storage::StorageError) -> EngineError {
        if storage::is_conflict(&err) {
            return EngineError::Client {
                status: 409,
                message: "The node was changed concurrently; please retry.".into(),
            };
        }
        tracing::error!(error = %err, "storage error in the conductor");
        EngineError::Storage("An internal database error occurred.".into())
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

/// How long a power change may take on real hardware (upstream's
/// `[conductor] power_state_change_timeout`).
const POWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Extra inputs of a provision verb.
#[derive(Debug, Clone, Default)]
pub struct ProvisionArgs {
    /// A config drive as sent (string or object), stored in instance_info.
    pub configdrive: Option<Value>,
    pub clean_steps: Option<Value>,
    pub deploy_steps: Option<Value>,
    pub service_steps: Option<Value>,
    pub rescue_password: Option<String>,
    pub disable_ramdisk: Option<bool>,
}

/// Power targets of `PUT …/states/power`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerTarget {
    On,
    Off,
    Reboot,
    SoftOff,
    SoftReboot,
}

impl PowerTarget {
    pub fn parse(text: &str) -> Option<PowerTarget> {
        Some(match text {
            "power on" => PowerTarget::On,
            "power off" => PowerTarget::Off,
            "rebooting" => PowerTarget::Reboot,
            "soft power off" => PowerTarget::SoftOff,
            "soft rebooting" => PowerTarget::SoftReboot,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            PowerTarget::On => "power on",
            PowerTarget::Off => "power off",
            PowerTarget::Reboot => "rebooting",
            PowerTarget::SoftOff => "soft power off",
            PowerTarget::SoftReboot => "soft rebooting",
        }
    }
    /// The power state once the change is done.
    pub fn final_state(self) -> &'static str {
        match self {
            PowerTarget::On | PowerTarget::Reboot | PowerTarget::SoftReboot => "power on",
            PowerTarget::Off | PowerTarget::SoftOff => "power off",
        }
    }
}

/// The conductor as the API sees it. Implemented in-process by [`Engine`];
/// a split deployment implements it over RPC.
pub trait ConductorApi: Send + Sync {
    /// Starts a provision verb; `Ok` means accepted (the API answers 202).
    fn provision<'a>(
        &'a self,
        node_uuid: &'a str,
        verb: ApiVerb,
        args: ProvisionArgs,
    ) -> BoxFuture<'a, EngineResult<()>>;
    /// Starts a power change; `Ok` means accepted (202).
    fn change_power<'a>(
        &'a self,
        node_uuid: &'a str,
        target: PowerTarget,
    ) -> BoxFuture<'a, EngineResult<()>>;
    fn set_boot_device<'a>(
        &'a self,
        node_uuid: &'a str,
        device: &'a str,
        persistent: bool,
    ) -> BoxFuture<'a, EngineResult<()>>;
    fn vif_attach<'a>(
        &'a self,
        node_uuid: &'a str,
        vif: &'a str,
    ) -> BoxFuture<'a, EngineResult<()>>;
    fn vif_detach<'a>(
        &'a self,
        node_uuid: &'a str,
        vif: &'a str,
    ) -> BoxFuture<'a, EngineResult<()>>;
    /// Deletes the node under its lock.
    fn destroy_node<'a>(&'a self, node_uuid: &'a str) -> BoxFuture<'a, EngineResult<()>>;
    /// The node for an agent's lookup, with a freshly generated one-time
    /// agent token in `driver_internal_info.agent_secret_token`, or
    /// `******` there when a token was already handed out.
    fn agent_lookup<'a>(&'a self, node_uuid: &'a str) -> BoxFuture<'a, EngineResult<Doc>>;
    /// An agent's heartbeat: checks its token, records it and continues a
    /// deploy or clean waiting for the agent.
    fn agent_heartbeat<'a>(
        &'a self,
        node_uuid: &'a str,
        heartbeat: AgentHeartbeat,
    ) -> BoxFuture<'a, EngineResult<()>>;
}

/// What an agent sends with a heartbeat.
#[derive(Debug, Clone, Default)]
pub struct AgentHeartbeat {
    pub callback_url: String,
    pub agent_token: Option<String>,
    pub agent_version: Option<String>,
    pub agent_verify_ca: Option<String>,
    pub agent_status: Option<String>,
    pub agent_status_message: Option<String>,
}

/// The in-process conductor.
pub struct Engine {
    db: Db,
    config: Arc<Config>,
    registry: Arc<Registry>,
    /// Background work in flight, so shutdown can wait for it.
    work: tokio::sync::Mutex<tokio::task::JoinSet<()>>,
    /// The periodic task failing nodes whose agent never called back,
    /// started when the first node waits for an agent.
    timeout_watch: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Rounds in a row each node failed the power-state sync.
    power_sync_counts: power_sync::Counts,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Ok(mut watch) = self.timeout_watch.lock() {
            if let Some(handle) = watch.take() {
                handle.abort();
            }
        }
    }
}

/// A node held under this conductor's reservation.
pub struct Task {
    pub row: NodeRow,
    host: String,
    /// Set once a final write released the reservation.
    released: bool,
}

impl Task {
    pub fn doc(&self) -> &Doc {
        &self.row.doc
    }
}

/// The steps a manual clean or a service asked for.
fn requested_steps(doc: &Doc) -> Vec<Value> {
    doc.get("driver_internal_info")
        .and_then(|internal| internal.get("requested_steps"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// What upstream records about the image when a deploy starts: an image
/// without kernel and ramdisk is a whole-disk image.
fn note_image_type(doc: &mut Doc) {
    let mut whole_disk = true;
    if let Some(Value::Object(info)) = doc.get_mut("instance_info") {
        let partition = info.contains_key("kernel") && info.contains_key("ramdisk");
        let image_type = info
            .get("image_type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                if partition {
                    "partition".to_string()
                } else {
                    "whole-disk".to_string()
                }
            });
        whole_disk = image_type == "whole-disk";
        info.insert("image_type".into(), Value::String(image_type));
    }
    if let Some(Value::Object(internal)) = doc.get_mut("driver_internal_info") {
        internal.insert("is_whole_disk_image".into(), Value::Bool(whole_disk));
    }
}

/// States in which the conductor has work to do (and holds the node).
fn has_work(state: ProvisionState) -> bool {
    use ProvisionState as S;
    matches!(
        state,
        S::Verifying
            | S::Cleaning
            | S::Inspecting
            | S::Deploying
            | S::Deleting
            | S::Adopting
            | S::Rescuing
            | S::Unrescuing
            | S::Servicing
    )
}

fn state_of(doc: &Doc) -> ProvisionState {
    storage::doc_str(doc, "provision_state")
        .and_then(|s| s.parse().ok())
        .unwrap_or(ProvisionState::Enroll)
}

fn target_of(doc: &Doc) -> Option<ProvisionState> {
    storage::doc_str(doc, "target_provision_state").and_then(|s| s.parse().ok())
}

fn set_opt(doc: &mut Doc, key: &str, value: Option<&str>) {
    doc.insert(
        key.into(),
        value
            .map(|v| Value::String(v.into()))
            .unwrap_or(Value::Null),
    );
}

impl Engine {
    pub fn new(db: Db, config: Arc<Config>, registry: Arc<Registry>) -> Arc<Engine> {
        Arc::new(Engine {
            db,
            config,
            registry,
            work: tokio::sync::Mutex::new(tokio::task::JoinSet::new()),
            timeout_watch: std::sync::Mutex::new(None),
            power_sync_counts: Default::default(),
        })
    }

    pub fn host(&self) -> &str {
        &self.config.host
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers this conductor and fails what it left half done: nodes it
    /// had reserved lose the reservation, and those caught in a transient
    /// state move to the matching failure state with a `last_error`, as
    /// upstream does when a conductor restarts.
    pub async fn recover(self: &Arc<Self>) -> EngineResult<usize> {
        // Nodes a previous run left waiting for their agent time out too.
        self.ensure_timeout_watch();
        let host = self.host().to_string();
        let mut recovered = 0;
        for row in storage::nodes_reserved_by(self.db.conn(), &host).await? {
            let mut task = Task {
                row,
                host: host.clone(),
                released: false,
            };
            let state = state_of(task.doc());
            // Power changes in flight are forgotten, as upstream does.
            if recovery_on_restart(state).is_some() {
                let message =
                    ferrite_conductor_states::recovery::restart_recovery_last_error(state, &host);
                let failed = self
                    .fire_with(
                        &mut task,
                        Event::Fail,
                        None,
                        Followup::Nothing,
                        |doc| {
                            set_opt(doc, "last_error", Some(&message));
                            doc.insert("target_power_state".into(), Value::Null);
                        },
                        true,
                    )
                    .await?;
                tracing::warn!(node = task.row.uuid(), from = %state, to = %failed, "failed a node left mid-task");
                self.history(&task, &message, "ERROR", "provisioning").await;
                recovered += 1;
            } else if task
                .doc()
                .get("target_power_state")
                .is_some_and(|v| !v.is_null())
            {
                let mut doc = task.doc().clone();
                doc.insert("target_power_state".into(), Value::Null);
                self.save_and_release(&mut task, doc).await?;
            }
            self.release(task).await;
        }
        Ok(recovered)
    }

    /// Waits for background work to finish (graceful shutdown).
    pub async fn drain(&self) {
        let mut work = self.work.lock().await;
        while work.join_next().await.is_some() {}
    }

    /// Reserves the node, retrying while another holder has it: for as
    /// long as `node_locked_retry_attempts` pauses of
    /// `node_locked_retry_interval_ms` would take (upstream's patience), but
    /// polling from 10 ms up, so a lock held for a moment (a flow saving
    /// its state) is picked up as soon as it is released, not a whole
    /// interval later.
    pub async fn acquire(&self, node_ident: &str) -> EngineResult<Task> {
        let host = self.host().to_string();
        let interval = Duration::from_millis(self.config.node_locked_retry_interval_ms);
        let budget = interval.saturating_mul(self.config.node_locked_retry_attempts);
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(10).min(interval);
        loop {
            let row = storage::get_node(self.db.conn(), node_ident)
                .await?
                .ok_or_else(|| EngineError::NodeNotFound(node_ident.to_string()))?;
            if row.reservation.is_none() && storage::reserve_node(&self.db, row.id, &host).await? {
                let row = storage::get_node_by_id(self.db.conn(), row.id)
                    .await?
                    .ok_or_else(|| EngineError::NodeNotFound(node_ident.to_string()))?;
                return Ok(Task {
                    row,
                    host,
                    released: false,
                });
            }
            let waited = started.elapsed();
            if waited >= budget {
                let holder = storage::get_node_by_id(self.db.conn(), row.id)
                    .await?
                    .and_then(|r| r.reservation)
                    .unwrap_or(host.clone());
                return Err(EngineError::Locked {
                    node: row.uuid().to_string(),
                    host: holder,
                });
            }
            tokio::time::sleep(pause.min(budget - waited)).await;
            pause = (pause * 2).min(interval);
        }
    }

    /// Commits `doc` as the node's new state (the reservation must be ours).
    pub async fn save(&self, task: &mut Task, doc: Doc) -> EngineResult<()> {
        self.write(task, doc, false).await
    }

    /// Commits the node's final state and releases it in the same write.
    pub async fn save_and_release(&self, task: &mut Task, doc: Doc) -> EngineResult<()> {
        self.write(task, doc, true).await
    }

    async fn write(&self, task: &mut Task, doc: Doc, release: bool) -> EngineResult<()> {
        let guard = if release {
            Guard::ReleasedBy(&task.host)
        } else {
            Guard::HeldBy(&task.host)
        };
        let tx = self.db.begin_write().await?;
        match storage::update_node(&*tx, &task.row, &doc, guard).await? {
            Some(row) => {
                tx.commit().await?;
                task.row = row;
                task.released |= release;
                Ok(())
            }
            None => {
                drop(tx);
                // Our reservation guarantees nobody else wrote; a lost CAS
                // means the row moved under us (e.g. reservation cleared by
                // an operator). Reload and report.
                Err(EngineError::Client {
                    status: 409,
                    message: format!(
                        "Node {} was modified while this conductor held it.",
                        task.row.uuid()
                    ),
                })
            }
        }
    }

    pub async fn release(&self, task: Task) {
        if task.released {
            return;
        }
        if let Err(err) = storage::release_node(&self.db, task.row.id, &task.host).await {
            tracing::error!(node = task.row.uuid(), error = %err, "failed to release node");
        }
    }

    async fn history(&self, task: &Task, event: &str, severity: &str, event_type: &str) {
        let entry = HistoryRow {
            uuid: uuid::Uuid::new_v4().to_string(),
            conductor: Some(task.host.clone()),
            event: event.to_string(),
            severity: severity.to_string(),
            event_type: event_type.to_string(),
            user: None,
            created_at: storage::now_micros(),
        };
        if let Err(err) = storage::add_history(self.db.conn(), task.row.id, &entry).await {
            tracing::warn!(error = %err, "failed to record node history");
        }
    }

    /// Applies `event` to the task's node and commits the new states,
    /// releasing the node in the same write when `release` (no work follows).
    async fn fire_with(
        &self,
        task: &mut Task,
        event: Event,
        requested_target: Option<ProvisionState>,
        followup: Followup,
        mutate: impl FnOnce(&mut Doc),
        release: bool,
    ) -> EngineResult<ProvisionState> {
        let doc = task.doc();
        let from = state_of(doc);
        let outcome = process_event(&EventRequest {
            state: from,
            target: target_of(doc),
            event,
            requested_target,
            followup,
        })
        .map_err(|_| EngineError::InvalidState {
            action: event.as_str().to_string(),
            node: task.row.uuid().to_string(),
            state: from.as_str().to_string(),
        })?;
        let mut doc = doc.clone();
        let (_, now) = storage::iso_now();
        set_opt(
            &mut doc,
            "provision_state",
            Some(outcome.provision_state.as_str()),
        );
        set_opt(
            &mut doc,
            "target_provision_state",
            outcome.target_provision_state.map(ProvisionState::as_str),
        );
        doc.insert("provision_updated_at".into(), Value::String(now.clone()));
        doc.insert("updated_at".into(), Value::String(now));
        mutate(&mut doc);
        self.write(task, doc, release).await?;
        tracing::info!(
            node = task.row.uuid(),
            from = from.as_str(),
            to = outcome.provision_state.as_str(),
            "provision state changed"
        );
        Ok(outcome.provision_state)
    }

    async fn delay(seconds: f64) {
        if seconds > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        }
    }

    fn interface<'d>(doc: &'d Doc, kind: &str) -> &'d str {
        storage::doc_str(doc, &format!("{kind}_interface")).unwrap_or("")
    }

    /// Checks that the node's interfaces needed by `verb` validate.
    fn validate_for(&self, task: &Task, kinds: &[&str]) -> EngineResult<()> {
        let doc = task.doc();
        for kind in kinds {
            if let Err(reason) = crate::drivers::validate(kind, Self::interface(doc, kind), doc) {
                return Err(EngineError::bad_request(format!(
                    "Failed to validate {kind} info for node {}: {reason}",
                    task.row.uuid()
                )));
            }
        }
        Ok(())
    }

    async fn do_provision(
        self: &Arc<Self>,
        node_ident: &str,
        verb: ApiVerb,
        args: ProvisionArgs,
    ) -> EngineResult<()> {
        let mut task = self.acquire(node_ident).await?;
        let result = self.start_provision(&mut task, verb, args).await;
        match result {
            Ok(true) => {
                let engine = self.clone();
                let mut work = self.work.lock().await;
                // Reap finished work so the set stays small.
                while work.try_join_next().is_some() {}
                work.spawn(async move { engine.continue_provision(task).await });
                Ok(())
            }
            Ok(false) => {
                self.release(task).await;
                Ok(())
            }
            Err(err) => {
                self.release(task).await;
                Err(err)
            }
        }
    }

    /// The synchronous part of a verb: checks under the lock and the first
    /// event. Returns whether background work follows.
    async fn start_provision(
        &self,
        task: &mut Task,
        verb: ApiVerb,
        args: ProvisionArgs,
    ) -> EngineResult<bool> {
        let event = verb.event();
        let state = state_of(task.doc());
        if ferrite_conductor_states::next(state, event).is_err() {
            return Err(EngineError::InvalidState {
                action: verb.as_str().to_string(),
                node: task.row.uuid().to_string(),
                state: state.as_str().to_string(),
            });
        }
        let mut requested_target = None;
        match verb {
            ApiVerb::Active | ApiVerb::Deploy | ApiVerb::Rebuild => {
                self.validate_for(task, &["power", "deploy"])?;
            }
            ApiVerb::Manage if state == ProvisionState::Enroll => {
                self.validate_for(task, &["power"])?;
            }
            ApiVerb::Clean => {
                requested_target = Some(ProvisionState::Manageable);
            }
            ApiVerb::Service => {
                requested_target = Some(ProvisionState::Active);
            }
            ApiVerb::Rescue => {
                self.validate_for(task, &["rescue"])?;
            }
            _ => {}
        }
        let next = ferrite_conductor_states::next(state, event).map_err(|_| {
            EngineError::InvalidState {
                action: verb.as_str().to_string(),
                node: task.row.uuid().to_string(),
                state: state.as_str().to_string(),
            }
        })?;
        let followup = if has_work(next) {
            Followup::BackgroundWork
        } else {
            Followup::Nothing
        };
        let configdrive = args.configdrive.clone();
        let steps = args
            .clean_steps
            .clone()
            .or_else(|| args.service_steps.clone())
            .or_else(|| args.deploy_steps.clone());
        let rescue_password = args.rescue_password.clone();
        let deploying = matches!(verb, ApiVerb::Active | ApiVerb::Deploy | ApiVerb::Rebuild);
        let new_state = self
            .fire_with(
                task,
                event,
                requested_target,
                followup,
                |doc| {
                    doc.insert("last_error".into(), Value::Null);
                    reset_agent_flow(doc);
                    if deploying {
                        note_image_type(doc);
                    }
                    if let Some(configdrive) = configdrive {
                        if let Some(Value::Object(info)) = doc.get_mut("instance_info") {
                            info.insert("configdrive".into(), configdrive);
                        }
                    }
                    if let Some(steps) = steps {
                        if let Some(Value::Object(internal)) = doc.get_mut("driver_internal_info") {
                            internal.insert("requested_steps".into(), steps);
                        }
                    }
                    if let Some(password) = rescue_password {
                        if let Some(Value::Object(info)) = doc.get_mut("instance_info") {
                            info.insert("rescue_password".into(), Value::String(password));
                        }
                    }
                },
                followup == Followup::Nothing,
            )
            .await?;
        Ok(has_work(new_state))
    }

    /// The background part: runs each transient state's work and fires the
    /// next event until the node rests in a stable state, then releases it.
    async fn continue_provision(self: Arc<Self>, mut task: Task) {
        loop {
            let state = state_of(task.doc());
            if !has_work(state) {
                break;
            }
            let step = self.work_for(&mut task, state).await;
            if matches!(step, Ok((Event::Wait, _))) {
                self.ensure_timeout_watch();
            }
            let result = match step {
                Ok((event, target)) => {
                    let followup = match ferrite_conductor_states::next(state, event) {
                        Ok(next) if has_work(next) => Followup::BackgroundWork,
                        _ => Followup::Nothing,
                    };
                    self.fire_with(
                        &mut task,
                        event,
                        target,
                        followup,
                        |doc| Self::after_event(state, event, doc),
                        followup == Followup::Nothing,
                    )
                    .await
                }
                Err(message) => {
                    self.after_agent_failure(&task, state).await;
                    let failed = self
                        .fire_with(
                            &mut task,
                            Event::Fail,
                            None,
                            Followup::Nothing,
                            |doc| {
                                set_opt(doc, "last_error", Some(&message));
                                reset_agent_flow(doc);
                            },
                            true,
                        )
                        .await;
                    self.history(&task, &message, "ERROR", "provisioning").await;
                    failed
                }
            };
            if let Err(err) = result {
                tracing::error!(node = task.row.uuid(), error = %err, "provisioning step failed");
                break;
            }
        }
        self.release(task).await;
    }

    /// Side effects that accompany an event (upstream's bookkeeping).
    fn after_event(from: ProvisionState, event: Event, doc: &mut Doc) {
        if let Some(Value::Object(internal)) = doc.get_mut("driver_internal_info") {
            internal.shift_remove("requested_steps");
            match (from, event) {
                (ProvisionState::Cleaning, Event::Done | Event::Manage) => {
                    internal.insert("clean_steps".into(), Value::Null);
                }
                (ProvisionState::Deploying, Event::Done) => {
                    internal.insert("deploy_steps".into(), Value::Null);
                }
                (ProvisionState::Servicing, Event::Done) => {
                    internal.insert("service_steps".into(), Value::Null);
                }
                (ProvisionState::Deleting, Event::Clean) => {
                    internal.shift_remove("is_whole_disk_image");
                    internal.shift_remove("clean_step_index");
                }
                _ => {}
            }
        }
        // A finished teardown forgets the instance.
        if from == ProvisionState::Deleting && event == Event::Clean {
            doc.insert("instance_info".into(), json!({}));
            doc.insert("instance_uuid".into(), Value::Null);
            doc.insert("instance_name".into(), Value::Null);
        }
        if from == ProvisionState::Unrescuing {
            if let Some(Value::Object(info)) = doc.get_mut("instance_info") {
                info.remove("rescue_password");
            }
        }
    }

    /// Records the steps a flow is about to run (in `driver_internal_info`,
    /// as upstream keeps them) and the flow's start in the node history.
    async fn start_steps(
        &self,
        task: &mut Task,
        key: &str,
        flow: &str,
        steps: &[Value],
    ) -> Result<(), String> {
        let mut doc = task.doc().clone();
        if let Some(Value::Object(internal)) = doc.get_mut("driver_internal_info") {
            internal.insert(key.into(), Value::Array(steps.to_vec()));
        }
        self.save(task, doc).await.map_err(|e| e.to_string())?;
        self.flow_history(task, flow, "start", steps).await;
        Ok(())
    }

    /// Upstream's step-flow history records ("Starting deployment with
    /// steps=[…]", "Deployment completed successfully with steps=[…]").
    async fn flow_history(&self, task: &Task, flow: &str, status: &str, steps: &[Value]) {
        let listed = crate::model::pyrepr::repr(&Value::Array(steps.to_vec()));
        let event = if status == "start" {
            format!("Starting {flow} with steps={listed}")
        } else {
            let title: Vec<String> = flow
                .split(' ')
                .map(|word| {
                    let mut chars = word.chars();
                    chars
                        .next()
                        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect();
            format!(
                "{} completed successfully with steps={listed}",
                title.join(" ")
            )
        };
        let event_type = format!("{}_{status}", flow.replace(' ', "_"));
        self.history(task, &event, "INFO", &event_type).await;
    }

    /// The work of one transient state: the event to fire next (and a
    /// requested target), or the failure message.
    async fn work_for(
        &self,
        task: &mut Task,
        state: ProvisionState,
    ) -> Result<(Event, Option<ProvisionState>), String> {
        let fake = &self.config.fake;
        let doc = task.doc().clone();
        let interface = |kind: &str| Self::interface(&doc, kind).to_string();
        let not_implemented = |kind: &str| {
            format!(
                "The {kind} interface \"{}\" is not implemented by this conductor yet.",
                interface(kind)
            )
        };
        use ProvisionState as S;
        match state {
            S::Verifying => {
                crate::drivers::validate("power", &interface("power"), &doc)?;
                Engine::delay(fake.power_delay).await;
                Ok((Event::Done, None))
            }
            S::Cleaning if crate::deploy::is_agent_deploy(&interface("deploy")) => {
                self.direct_clean(task).await
            }
            S::Deploying if crate::deploy::is_agent_deploy(&interface("deploy")) => {
                self.direct_deploy(task).await
            }
            S::Deleting if crate::deploy::is_agent_deploy(&interface("deploy")) => {
                self.direct_tear_down(task).await
            }
            S::Cleaning => {
                if !crate::drivers::is_fake_like(&interface("deploy")) {
                    return Err(not_implemented("deploy"));
                }
                let target = target_of(&doc);
                let manual = target == Some(ProvisionState::Manageable);
                let (flow, steps) = if manual {
                    ("manual cleaning", requested_steps(&doc))
                } else {
                    (
                        "automated cleaning",
                        crate::drivers::automated_clean_steps(&doc),
                    )
                };
                self.start_steps(task, "clean_steps", flow, &steps).await?;
                Engine::delay(fake.clean_delay).await;
                // Upstream consumes the steps as it runs them, so its
                // record of a finished clean lists none.
                self.flow_history(task, flow, "end", &[]).await;
                // Upstream ends a manual clean with `manage` (cleaning →
                // manageable) and an automated one with `done` (→ available).
                let event = if manual { Event::Manage } else { Event::Done };
                Ok((event, None))
            }
            S::Inspecting => {
                if !crate::drivers::is_fake_like(&interface("inspect")) {
                    return Err(not_implemented("inspect"));
                }
                Engine::delay(fake.inspect_delay).await;
                Ok((Event::Done, None))
            }
            S::Deploying => {
                if !crate::drivers::is_fake_like(&interface("deploy")) {
                    return Err(not_implemented("deploy"));
                }
                let steps = crate::drivers::deploy_steps(&doc);
                self.start_steps(task, "deploy_steps", "deployment", &steps)
                    .await?;
                Engine::delay(fake.deploy_delay).await;
                self.flow_history(task, "deployment", "end", &steps).await;
                Ok((Event::Done, None))
            }
            S::Deleting => {
                if !crate::drivers::is_fake_like(&interface("deploy")) {
                    return Err(not_implemented("deploy"));
                }
                Engine::delay(fake.deploy_delay).await;
                Ok((Event::Clean, None))
            }
            S::Adopting => Ok((Event::Done, None)),
            S::Rescuing | S::Unrescuing => {
                if !crate::drivers::is_fake_like(&interface("rescue")) {
                    return Err(not_implemented("rescue"));
                }
                Engine::delay(fake.rescue_delay).await;
                Ok((Event::Done, None))
            }
            S::Servicing => {
                let steps = requested_steps(&doc);
                self.start_steps(task, "service_steps", "servicing", &steps)
                    .await?;
                Engine::delay(fake.clean_delay).await;
                self.flow_history(task, "servicing", "end", &steps).await;
                Ok((Event::Done, None))
            }
            other => Err(format!(
                "No work is defined for provision state \"{other}\"."
            )),
        }
    }

    async fn do_power(self: &Arc<Self>, node_ident: &str, target: PowerTarget) -> EngineResult<()> {
        let mut task = self.acquire(node_ident).await?;
        let started = async {
            self.validate_for(&task, &["power"])?;
            let mut doc = task.doc().clone();
            set_opt(&mut doc, "target_power_state", Some(target.final_state()));
            doc.insert("last_error".into(), Value::Null);
            doc.insert("updated_at".into(), Value::String(storage::iso_now().1));
            self.save(&mut task, doc).await
        }
        .await;
        if let Err(err) = started {
            self.release(task).await;
            return Err(err);
        }
        let engine = self.clone();
        let mut work = self.work.lock().await;
        while work.try_join_next().is_some() {}
        work.spawn(async move {
            let before = task.doc().clone();
            let outcome = engine.power_work(&before, target).await;
            Engine::delay(engine.config.fake.power_delay).await;
            let mut doc = task.doc().clone();
            doc.insert("target_power_state".into(), Value::Null);
            let failure = match outcome {
                Ok(state) => {
                    set_opt(&mut doc, "power_state", Some(state));
                    if let Some(Value::Object(internal)) = doc.get_mut("driver_internal_info") {
                        internal.insert(
                            "last_power_state_change".into(),
                            json!(chrono::Utc::now()
                                .format("%Y-%m-%dT%H:%M:%S%.6f")
                                .to_string()),
                        );
                    }
                    None
                }
                Err(message) => {
                    // As upstream: the power state stays what it was, the
                    // target is cleared and the error kept in last_error.
                    set_opt(&mut doc, "last_error", Some(&message));
                    Some(message)
                }
            };
            doc.insert("updated_at".into(), Value::String(storage::iso_now().1));
            if let Some(message) = &failure {
                engine.history(&task, message, "ERROR", "UNKNOWN").await;
            }
            if let Err(err) = engine.save_and_release(&mut task, doc).await {
                tracing::error!(error = %err, "power change failed to commit");
            } else if let Some(message) = failure {
                tracing::warn!(node = task.row.uuid(), error = %message, "power change failed");
            } else {
                tracing::info!(
                    node = task.row.uuid(),
                    state = target.final_state(),
                    "power state changed"
                );
            }
            engine.release(task).await;
        });
        Ok(())
    }

    /// Carries out a power change on the machine (through [`crate::ops`]):
    /// the new power state, or upstream's failure text for `last_error`.
    async fn power_work(&self, doc: &Doc, target: PowerTarget) -> Result<&'static str, String> {
        let power = Self::interface(doc, "power");
        if crate::drivers::is_fake_like(power) {
            crate::ops::set_power_state(&self.config, doc, target.as_str(), POWER_TIMEOUT)
                .await
                .map_err(|e| Self::power_failure(target, &e))?;
            return Ok(target.final_state());
        }
        let current = crate::ops::get_power_state(&self.config, doc)
            .await
            .map_err(|e| format!("Failed to change power state to '{}': {e}", target.as_str()))?;
        // Nothing to do when the machine is already there (as upstream).
        let already = match target {
            PowerTarget::On => current.as_deref() == Some("power on"),
            PowerTarget::Off | PowerTarget::SoftOff => current.as_deref() == Some("power off"),
            PowerTarget::Reboot | PowerTarget::SoftReboot => false,
        };
        if !already {
            crate::ops::set_power_state(&self.config, doc, target.as_str(), POWER_TIMEOUT)
                .await
                .map_err(|e| Self::power_failure(target, &e))?;
        }
        Ok(target.final_state())
    }

    fn power_failure(target: PowerTarget, error: &str) -> String {
        format!(
            "Failed to change power state to '{}' by '{}': {error}",
            target.final_state(),
            target.as_str()
        )
    }

    async fn do_boot_device(
        &self,
        node_ident: &str,
        device: &str,
        persistent: bool,
    ) -> EngineResult<()> {
        let mut task = self.acquire(node_ident).await?;
        let result = async {
            let management = Self::interface(task.doc(), "management").to_string();
            let supported = crate::drivers::supported_boot_devices(&management);
            if !supported.contains(&device) {
                return Err(EngineError::bad_request(format!(
                    "Invalid boot device {device} specified."
                )));
            }
            Engine::delay(self.config.fake.management_delay).await;
            crate::ops::set_boot_device(&self.config, task.doc(), device, persistent)
                .await
                .map_err(|message| EngineError::Client {
                    status: 500,
                    message,
                })?;
            let mut doc = task.doc().clone();
            // Kept under private keys, which no view shows.
            doc.insert("ferrite:boot_device".into(), json!(device));
            doc.insert("ferrite:boot_device_persistent".into(), json!(persistent));
            self.save(&mut task, doc).await
        }
        .await;
        self.release(task).await;
        result
    }

    async fn do_vif(&self, node_ident: &str, vif: &str, attach: bool) -> EngineResult<()> {
        let task = self.acquire(node_ident).await?;
        let network = Self::interface(task.doc(), "network").to_string();
        let result = if crate::drivers::network_records_vifs(&network) {
            if attach {
                crate::drivers::vif_attach(&self.db, &task.row, vif).await
            } else {
                crate::drivers::vif_detach(&self.db, &task.row, vif).await
            }
        } else {
            Ok(())
        };
        self.release(task).await;
        result
    }

    async fn do_destroy(&self, node_ident: &str) -> EngineResult<()> {
        let task = self.acquire(node_ident).await?;
        // Re-check under the lock: the API checked an unlocked read.
        let doc = task.doc();
        let state = state_of(doc);
        let maintenance = doc
            .get("maintenance")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(instance) = storage::doc_str(doc, "instance_uuid") {
            let message = format!(
                "Node {} is associated with instance {instance}.",
                task.row.uuid()
            );
            self.release(task).await;
            return Err(EngineError::Client {
                status: 409,
                message,
            });
        }
        if let Err(err) = ferrite_conductor_states::check_node_delete(
            task.row.uuid(),
            state,
            maintenance,
            ferrite_conductor_states::DeletePolicy::default(),
        ) {
            self.release(task).await;
            return Err(EngineError::Client {
                status: err.upstream_status(),
                message: err.to_string(),
            });
        }
        let deleted = storage::delete_node(&self.db, task.row.id, &task.host).await?;
        if !deleted {
            let uuid = task.row.uuid().to_string();
            self.release(task).await;
            return Err(EngineError::NodeNotFound(uuid));
        }
        Ok(())
    }
}

impl ConductorApi for Arc<Engine> {
    fn provision<'a>(
        &'a self,
        node_uuid: &'a str,
        verb: ApiVerb,
        args: ProvisionArgs,
    ) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(self.do_provision(node_uuid, verb, args))
    }
    fn change_power<'a>(
        &'a self,
        node_uuid: &'a str,
        target: PowerTarget,
    ) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(self.do_power(node_uuid, target))
    }
    fn set_boot_device<'a>(
        &'a self,
        node_uuid: &'a str,
        device: &'a str,
        persistent: bool,
    ) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(self.do_boot_device(node_uuid, device, persistent))
    }
    fn vif_attach<'a>(
        &'a self,
        node_uuid: &'a str,
        vif: &'a str,
    ) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(self.do_vif(node_uuid, vif, true))
    }
    fn vif_detach<'a>(
        &'a self,
        node_uuid: &'a str,
        vif: &'a str,
    ) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(self.do_vif(node_uuid, vif, false))
    }
    fn destroy_node<'a>(&'a self, node_uuid: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(self.do_destroy(node_uuid))
    }
    fn agent_lookup<'a>(&'a self, node_uuid: &'a str) -> BoxFuture<'a, EngineResult<Doc>> {
        Box::pin(self.do_agent_lookup(node_uuid))
    }
    fn agent_heartbeat<'a>(
        &'a self,
        node_uuid: &'a str,
        heartbeat: AgentHeartbeat,
    ) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(self.do_agent_heartbeat(node_uuid, heartbeat))
    }
}

/// Private document key: the deploy ramdisk was booted for the running
/// flow, so the flow resumes (rather than starts) when it runs again.
const RAMDISK_BOOTED: &str = "ferrite:ramdisk_booted";

/// How many times (a second apart) the conductor checks that the agent
/// powered the machine off before forcing it off.
const POWER_OFF_CHECKS: u32 = 15;

/// Forgets an agent-driven flow's progress and the agent itself (a new
/// flow starts, or the flow ended or failed).
fn reset_agent_flow(doc: &mut Doc) {
    doc.shift_remove(RAMDISK_BOOTED);
    if let Some(Value::Object(internal)) = doc.get_mut("driver_internal_info") {
        internal.shift_remove("deploy_step_index");
        internal.shift_remove("clean_step_index");
        crate::deploy::wipe_agent(internal);
    }
    if doc.contains_key("deploy_step") {
        doc.insert("deploy_step".into(), json!({}));
    }
    if doc.contains_key("clean_step") {
        doc.insert("clean_step".into(), json!({}));
    }
}

/// Runs `change` on the node's `driver_internal_info` (made an object
/// first when it is missing).
fn with_internal(doc: &mut Doc, change: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let entry = doc
        .entry("driver_internal_info".to_string())
        .or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    if let Value::Object(internal) = entry {
        change(internal);
    }
}

fn internal_str<'d>(doc: &'d Doc, key: &str) -> Option<&'d str> {
    doc.get("driver_internal_info")
        .and_then(|internal| internal.get(key))
        .and_then(Value::as_str)
}

/// Runs `work` within `[deploy] deploy_step_timeout_secs`; past it the
/// work is dropped (its downloads and qemu-img stop, partial files go) and
/// the step fails.
async fn within_step_deadline(
    config: &Config,
    what: &str,
    work: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    let secs = config.deploy.deploy_step_timeout_secs;
    match tokio::time::timeout(Duration::from_secs(secs), work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!(
            "{what} did not finish within {secs} s ([deploy] deploy_step_timeout_secs)"
        )),
    }
}

fn step_name(step: &Value) -> String {
    format!(
        "{}.{}",
        step.get("interface").and_then(Value::as_str).unwrap_or(""),
        step.get("step").and_then(Value::as_str).unwrap_or("")
    )
}

/// The agent-driven (`direct`) flows, the agent API's conductor side and
/// the callback timeout.
impl Engine {
    /// Commits a change of the held node.
    async fn update_doc(
        &self,
        task: &mut Task,
        change: impl FnOnce(&mut Doc),
    ) -> Result<(), String> {
        let mut doc = task.doc().clone();
        change(&mut doc);
        doc.insert("updated_at".into(), Value::String(storage::iso_now().1));
        self.save(task, doc).await.map_err(|e| e.to_string())
    }

    async fn port_docs(&self, task: &Task) -> Result<Vec<Doc>, String> {
        storage::list_ports(self.db.conn(), Some(task.row.id), None, None, None, false)
            .await
            .map(|ports| ports.into_iter().map(|p| p.doc).collect())
            .map_err(|e| format!("Cannot list the ports of node {}: {e}", task.row.uuid()))
    }

    fn uses_netboot(doc: &Doc) -> bool {
        !crate::drivers::is_fake_like(Self::interface(doc, "boot"))
    }

    /// Boots the deploy ramdisk: network boot prepared by the boot
    /// interface, next boot from the network, reboot.
    async fn boot_ramdisk(&self, task: &mut Task) -> Result<(), String> {
        let doc = task.doc().clone();
        if Self::uses_netboot(&doc) {
            let ports = self.port_docs(task).await?;
            let params = crate::deploy::kernel_params(&self.config, &doc);
            let prepare = crate::boot::prepare_ramdisk(&self.config, &doc, &ports, &params);
            within_step_deadline(&self.config, "preparing the ramdisk boot", prepare)
                .await
                .map_err(|e| {
                    format!(
                        "Failed to prepare node {} to boot the deploy ramdisk: {e}",
                        task.row.uuid()
                    )
                })?;
        }
        crate::ops::set_boot_device(&self.config, &doc, "pxe", false)
            .await
            .map_err(|e| {
                format!(
                    "Failed to set the boot device of node {} to pxe: {e}",
                    task.row.uuid()
                )
            })?;
        crate::ops::set_power_state(&self.config, &doc, "rebooting", POWER_TIMEOUT)
            .await
            .map_err(|e| format!("Failed to reboot node {}: {e}", task.row.uuid()))?;
        self.update_doc(task, |doc| {
            doc.insert("power_state".into(), json!("power on"));
            doc.insert("ferrite:boot_device".into(), json!("pxe"));
            doc.insert("ferrite:boot_device_persistent".into(), json!(false));
            doc.insert(RAMDISK_BOOTED.into(), json!(true));
        })
        .await
    }

    /// Removes the ramdisk's network boot (failures are logged: a teardown
    /// goes on without it).
    async fn clean_up_ramdisk(&self, task: &Task) {
        let doc = task.doc();
        if !Self::uses_netboot(doc) {
            return;
        }
        let ports = match self.port_docs(task).await {
            Ok(ports) => ports,
            Err(err) => {
                tracing::warn!(node = task.row.uuid(), error = %err, "ramdisk cleanup skipped");
                return;
            }
        };
        if let Err(err) = crate::boot::clean_up_ramdisk(&self.config, doc, &ports).await {
            tracing::warn!(node = task.row.uuid(), error = %err, "ramdisk cleanup failed");
        }
    }

    /// Powers the node off through its power interface and records it.
    async fn power_off(&self, task: &mut Task) -> Result<(), String> {
        let doc = task.doc().clone();
        crate::ops::set_power_state(&self.config, &doc, "power off", POWER_TIMEOUT)
            .await
            .map_err(|e| format!("Failed to power off node {}: {e}", task.row.uuid()))?;
        self.update_doc(task, |doc| {
            doc.insert("power_state".into(), json!("power off"));
        })
        .await
    }

    /// Best-effort cleanup when an agent-driven step failed: the ramdisk's
    /// network boot goes; a failed clean also powers the node off.
    async fn after_agent_failure(&self, task: &Task, state: ProvisionState) {
        let doc = task.doc();
        if !crate::deploy::is_agent_deploy(Self::interface(doc, "deploy")) {
            return;
        }
        // Upstream powers a node off after a failed clean, and after a failed
        // deploy too (`[deploy] power_off_after_deploy_failure`, default on).
        if matches!(state, ProvisionState::Cleaning | ProvisionState::Deploying) {
            if let Err(err) =
                crate::ops::set_power_state(&self.config, doc, "power off", POWER_TIMEOUT).await
            {
                tracing::warn!(node = task.row.uuid(), error = %err, "power off after a failed {state} failed");
            }
            self.clean_up_ramdisk(task).await;
        }
    }

    /// A client of the agent that last heartbeated for the node.
    fn agent_for(&self, task: &Task) -> Result<crate::agent_client::AgentClient, String> {
        let doc = task.doc();
        let Some(url) = internal_str(doc, "agent_url") else {
            return Err(format!(
                "No agent URL is recorded for node {}; the agent has not heartbeated",
                task.row.uuid()
            ));
        };
        let token = internal_str(doc, "agent_secret_token").map(str::to_string);
        let mut client = crate::agent_client::AgentClient::new(url, token);
        client.poll_interval = Duration::from_millis(200);
        Ok(client)
    }

    /// The `direct` deploy: the `deploy` step boots the ramdisk and waits
    /// for the agent; once it heartbeated, the remaining steps run.
    async fn direct_deploy(
        &self,
        task: &mut Task,
    ) -> Result<(Event, Option<ProvisionState>), String> {
        let booted = task.doc().get(RAMDISK_BOOTED) == Some(&Value::Bool(true));
        if !booted {
            let steps = crate::drivers::deploy_steps(task.doc());
            self.start_steps(task, "deploy_steps", "deployment", &steps)
                .await?;
            let first = steps.first().cloned().unwrap_or(Value::Null);
            self.update_doc(task, |doc| {
                doc.insert("deploy_step".into(), first);
                with_internal(doc, |internal| {
                    internal.insert("deploy_step_index".into(), json!(0));
                    crate::deploy::wipe_agent(internal);
                });
            })
            .await?;
            self.boot_ramdisk(task).await?;
            return Ok((Event::Wait, None));
        }
        let steps: Vec<Value> = task
            .doc()
            .get("driver_internal_info")
            .and_then(|i| i.get("deploy_steps"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(crate::deploy::direct_deploy_steps);
        let done = task
            .doc()
            .get("driver_internal_info")
            .and_then(|i| i.get("deploy_step_index"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let agent = self.agent_for(task)?;
        let uuid = task.row.uuid().to_string();
        for (index, step) in steps.iter().enumerate() {
            if (index as i64) <= done {
                continue;
            }
            let current = step.clone();
            self.update_doc(task, |doc| {
                doc.insert("deploy_step".into(), current);
                with_internal(doc, |internal| {
                    internal.insert("deploy_step_index".into(), json!(index));
                });
            })
            .await?;
            let name = step.get("step").and_then(Value::as_str).unwrap_or("");
            let run = self.run_deploy_step(task, &agent, name);
            let outcome = within_step_deadline(&self.config, "the step", run).await;
            if name == "write_image" {
                // Written or failed: the agent needs the served copy no more.
                crate::deploy::release_served_image(&self.config, task.doc()).await;
            }
            outcome.map_err(|e| {
                format!("Deploy step {} failed on node {uuid}: {e}", step_name(step))
            })?;
        }
        self.update_doc(task, reset_agent_flow).await?;
        self.flow_history(task, "deployment", "end", &steps).await;
        Ok((Event::Done, None))
    }

    async fn run_deploy_step(
        &self,
        task: &mut Task,
        agent: &crate::agent_client::AgentClient,
        name: &str,
    ) -> Result<(), String> {
        let doc = task.doc().clone();
        match name {
            "write_image" => {
                let ports = self.port_docs(task).await?;
                let node = crate::deploy::node_for_agent(&doc, true);
                let ports = crate::deploy::ports_for_agent(&ports);
                // Upstream refreshes the agent's steps before running them.
                match agent
                    .run_sync(
                        "deploy.get_deploy_steps",
                        json!({"node": node, "ports": ports}),
                    )
                    .await
                {
                    Ok(result) => {
                        let cached = result.get("deploy_steps").cloned().unwrap_or(Value::Null);
                        let version = result
                            .get("hardware_manager_version")
                            .cloned()
                            .unwrap_or(Value::Null);
                        self.update_doc(task, |doc| {
                            with_internal(doc, |internal| {
                                internal.insert("agent_cached_deploy_steps".into(), cached);
                                internal.insert("hardware_manager_version".into(), version);
                            });
                        })
                        .await?;
                    }
                    Err(err) => {
                        tracing::warn!(node = task.row.uuid(), error = %err, "cannot refresh the agent's deploy steps");
                    }
                }
                let served = crate::deploy::serve_image(&self.config, &doc).await?;
                let configdrive = crate::deploy::configdrive_for_agent(&doc)?;
                let image_info = crate::deploy::image_info(&doc, &served, configdrive.as_ref())?;
                let version = task
                    .doc()
                    .get("driver_internal_info")
                    .and_then(|i| i.get("hardware_manager_version"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let step = json!({
                    "step": "write_image",
                    "interface": "deploy",
                    "priority": 80,
                    "args": {"image_info": image_info, "configdrive": configdrive},
                });
                agent
                    .run(
                        "deploy.execute_deploy_step",
                        json!({"step": step, "node": node, "ports": ports, "deploy_version": version}),
                    )
                    .await?;
                Ok(())
            }
            "prepare_instance_boot" => {
                let whole_disk = crate::deploy::is_whole_disk(&doc);
                let uuids = match agent
                    .run_sync("standby.get_partition_uuids", json!({}))
                    .await
                {
                    Ok(uuids) => uuids,
                    // A whole-disk image boots from its own bootloader.
                    Err(err) if whole_disk => {
                        tracing::warn!(node = task.row.uuid(), error = %err, "no partition UUIDs from the agent");
                        Value::Null
                    }
                    Err(err) => return Err(err),
                };
                let root = uuids.get("root uuid").cloned().unwrap_or(Value::Null);
                if let Some(root) = root.as_str() {
                    let root = root.to_string();
                    self.update_doc(task, |doc| {
                        with_internal(doc, |internal| {
                            internal.insert("root_uuid_or_disk_id".into(), json!(root));
                        });
                    })
                    .await?;
                }
                if whole_disk {
                    return Ok(());
                }
                if root.is_null() {
                    return Err("the agent reported no root partition UUID".into());
                }
                let mode = crate::deploy::boot_mode(&doc);
                let efi = if mode == "uefi" {
                    uuids
                        .get("efi system partition uuid")
                        .cloned()
                        .unwrap_or(Value::Null)
                } else {
                    Value::Null
                };
                let ppc = doc
                    .get("properties")
                    .and_then(|p| p.get("cpu_arch"))
                    .and_then(Value::as_str)
                    .is_some_and(|arch| arch.starts_with("ppc64"));
                let prep = if ppc {
                    uuids
                        .get("PReP Boot partition uuid")
                        .cloned()
                        .unwrap_or(Value::Null)
                } else {
                    Value::Null
                };
                agent
                    .run(
                        "image.install_bootloader",
                        json!({
                            "root_uuid": root,
                            "efi_system_part_uuid": efi,
                            "prep_boot_part_uuid": prep,
                            "target_boot_mode": mode,
                        }),
                    )
                    .await?;
                Ok(())
            }
            "tear_down_agent" => {
                // The agent powers the machine off itself (asynchronously:
                // it may never answer); the power interface makes sure.
                if let Err(err) = agent.send("standby.power_off", json!({}), false).await {
                    tracing::warn!(node = task.row.uuid(), error = %err, "the agent failed to power the node off; using the power interface");
                }
                let mut off = false;
                if !crate::drivers::is_fake_like(Self::interface(&doc, "power")) {
                    for _ in 0..POWER_OFF_CHECKS {
                        if let Ok(Some(state)) =
                            crate::ops::get_power_state(&self.config, &doc).await
                        {
                            if state == "power off" {
                                off = true;
                                break;
                            }
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                if off {
                    self.update_doc(task, |doc| {
                        doc.insert("power_state".into(), json!("power off"));
                    })
                    .await
                } else {
                    self.power_off(task).await
                }
            }
            "switch_to_tenant_network" => Ok(()),
            "boot_instance" => {
                self.clean_up_ramdisk(task).await;
                crate::ops::set_boot_device(&self.config, &doc, "disk", true)
                    .await
                    .map_err(|e| format!("failed to set the boot device to disk: {e}"))?;
                crate::ops::set_power_state(&self.config, &doc, "power on", POWER_TIMEOUT)
                    .await
                    .map_err(|e| format!("failed to power the node on: {e}"))?;
                self.update_doc(task, |doc| {
                    doc.insert("power_state".into(), json!("power on"));
                    doc.insert("ferrite:boot_device".into(), json!("disk"));
                    doc.insert("ferrite:boot_device_persistent".into(), json!(true));
                })
                .await
            }
            // `deploy` ran before the wait; unknown steps are refused.
            "deploy" => Ok(()),
            other => Err(format!("the direct deploy interface has no step {other}")),
        }
    }

    /// Cleaning through the agent: boot the ramdisk, wait for the agent,
    /// run the deploy interface's steps on it, power off.
    async fn direct_clean(
        &self,
        task: &mut Task,
    ) -> Result<(Event, Option<ProvisionState>), String> {
        let doc = task.doc().clone();
        let manual = target_of(&doc) == Some(ProvisionState::Manageable);
        let flow = if manual {
            "manual cleaning"
        } else {
            "automated cleaning"
        };
        let event = if manual { Event::Manage } else { Event::Done };
        let booted = doc.get(RAMDISK_BOOTED) == Some(&Value::Bool(true));
        if !booted {
            let steps = if manual {
                requested_steps(&doc)
            } else {
                crate::drivers::automated_clean_steps(&doc)
            };
            self.start_steps(task, "clean_steps", flow, &steps).await?;
            let needs_agent = steps
                .iter()
                .any(|s| s.get("interface").and_then(Value::as_str) == Some("deploy"));
            if !needs_agent {
                self.flow_history(task, flow, "end", &[]).await;
                return Ok((event, None));
            }
            self.update_doc(task, |doc| {
                doc.insert("clean_step".into(), json!({}));
                with_internal(doc, crate::deploy::wipe_agent);
            })
            .await?;
            self.boot_ramdisk(task).await?;
            // A manual clean keeps heading for manageable while it waits,
            // as upstream passes that target along with `wait`.
            let target = manual.then_some(ProvisionState::Manageable);
            return Ok((Event::Wait, target));
        }
        let agent = self.agent_for(task)?;
        let uuid = task.row.uuid().to_string();
        let ports = self.port_docs(task).await?;
        let node = crate::deploy::node_for_agent(&doc, false);
        let ports = crate::deploy::ports_for_agent(&ports);
        let offered = agent
            .run_sync(
                "clean.get_clean_steps",
                json!({"node": node, "ports": ports}),
            )
            .await
            .map_err(|e| {
                format!("Failed to get the clean steps of node {uuid} from the agent: {e}")
            })?;
        let version = offered
            .get("hardware_manager_version")
            .cloned()
            .unwrap_or(Value::Null);
        let agent_steps: Vec<Value> = offered
            .get("clean_steps")
            .and_then(Value::as_object)
            .map(|managers| {
                managers
                    .values()
                    .filter_map(Value::as_array)
                    .flatten()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let steps: Vec<Value> = doc
            .get("driver_internal_info")
            .and_then(|i| i.get("clean_steps"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        self.update_doc(task, |doc| {
            with_internal(doc, |internal| {
                internal.insert(
                    "agent_cached_clean_steps".into(),
                    offered.get("clean_steps").cloned().unwrap_or(Value::Null),
                );
                internal.insert("hardware_manager_version".into(), version.clone());
            });
        })
        .await?;
        for (index, step) in steps.iter().enumerate() {
            if step.get("interface").and_then(Value::as_str) != Some("deploy") {
                continue;
            }
            let name = step.get("step").and_then(Value::as_str).unwrap_or("");
            let known = agent_steps
                .iter()
                .find(|s| s.get("step").and_then(Value::as_str) == Some(name));
            let Some(known) = known else {
                return Err(format!(
                    "Clean step {} failed on node {uuid}: the agent does not offer it",
                    step_name(step)
                ));
            };
            // An automated step the agent disabled (priority 0) is skipped.
            if !manual && known.get("priority").and_then(Value::as_i64) == Some(0) {
                continue;
            }
            let current = step.clone();
            self.update_doc(task, |doc| {
                doc.insert("clean_step".into(), current);
                with_internal(doc, |internal| {
                    internal.insert("clean_step_index".into(), json!(index));
                });
            })
            .await?;
            agent
                .run(
                    "clean.execute_clean_step",
                    json!({"step": step, "node": node, "ports": ports, "clean_version": version}),
                )
                .await
                .map_err(|e| {
                    format!("Clean step {} failed on node {uuid}: {e}", step_name(step))
                })?;
        }
        self.power_off(task).await?;
        self.clean_up_ramdisk(task).await;
        self.update_doc(task, reset_agent_flow).await?;
        self.flow_history(task, flow, "end", &[]).await;
        Ok((event, None))
    }

    /// Undeploy: power off and remove the ramdisk's boot, then cleaning.
    async fn direct_tear_down(
        &self,
        task: &mut Task,
    ) -> Result<(Event, Option<ProvisionState>), String> {
        self.power_off(task).await?;
        self.clean_up_ramdisk(task).await;
        self.update_doc(task, reset_agent_flow).await?;
        Ok((Event::Clean, None))
    }

    async fn do_agent_lookup(&self, node_ident: &str) -> EngineResult<Doc> {
        let mut task = self.acquire(node_ident).await?;
        let result = async {
            let mut doc = task.doc().clone();
            if internal_str(&doc, "agent_secret_token").is_some() {
                tracing::warn!(
                    node = task.row.uuid(),
                    "refusing to hand out the agent token a second time"
                );
                with_internal(&mut doc, |internal| {
                    internal.insert("agent_secret_token".into(), json!("******"));
                });
                return Ok(doc);
            }
            let token = crate::deploy::generate_token();
            with_internal(&mut doc, |internal| {
                internal.insert("agent_secret_token".into(), json!(token));
            });
            self.save(&mut task, doc.clone()).await?;
            Ok(doc)
        }
        .await;
        self.release(task).await;
        result
    }

    async fn do_agent_heartbeat(
        self: &Arc<Self>,
        node_ident: &str,
        heartbeat: AgentHeartbeat,
    ) -> EngineResult<()> {
        // The token is checked before the node is reserved (a forged
        // heartbeat must not hold the node's lock), and again under it.
        let unlocked = storage::get_node(self.db.conn(), node_ident)
            .await?
            .ok_or_else(|| EngineError::NodeNotFound(node_ident.to_string()))?;
        if !crate::deploy::token_matches(
            internal_str(&unlocked.doc, "agent_secret_token"),
            heartbeat.agent_token.as_deref(),
        ) {
            tracing::warn!(
                node = unlocked.uuid(),
                "invalid or missing agent token in a heartbeat"
            );
            return Err(EngineError::bad_request(
                "Invalid or missing agent token received.",
            ));
        }
        let mut task = self.acquire(node_ident).await?;
        let doc = task.doc().clone();
        let known = internal_str(&doc, "agent_secret_token");
        if !crate::deploy::token_matches(known, heartbeat.agent_token.as_deref()) {
            if known.is_none() {
                // The flow ended (its token was wiped) while this heartbeat
                // was on its way: expected now and then.
                tracing::warn!(
                    node = task.row.uuid(),
                    "heartbeat with a token for a flow that already ended"
                );
            } else {
                tracing::error!(
                    node = task.row.uuid(),
                    "invalid or missing agent token in a heartbeat"
                );
            }
            self.release(task).await;
            return Err(EngineError::bad_request(
                "Invalid or missing agent token received.",
            ));
        }
        if let Some(url) = internal_str(&doc, "agent_url") {
            if url != heartbeat.callback_url {
                self.release(task).await;
                return Err(EngineError::bad_request(
                    "Detected change in ramdisk provided \"callback_url\"",
                ));
            }
        }
        let record = |doc: &mut Doc| {
            with_internal(doc, |internal| {
                internal.insert("agent_url".into(), json!(heartbeat.callback_url));
                internal.insert(
                    "agent_last_heartbeat".into(),
                    json!(chrono::Utc::now()
                        .format("%Y-%m-%dT%H:%M:%S%.6f")
                        .to_string()),
                );
                if let Some(version) = &heartbeat.agent_version {
                    internal.insert("agent_version".into(), json!(version));
                }
                if let Some(ca) = &heartbeat.agent_verify_ca {
                    internal.insert("agent_verify_ca".into(), json!(ca));
                }
            });
        };
        let state = state_of(&doc);
        let maintenance = doc
            .get("maintenance")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let resume = !maintenance
            && matches!(
                state,
                ProvisionState::DeployWait | ProvisionState::CleanWait
            );
        if !resume {
            tracing::debug!(node = task.row.uuid(), state = %state, "heartbeat recorded, nothing to continue");
            let mut doc = doc.clone();
            record(&mut doc);
            return self.save_and_release(&mut task, doc).await;
        }
        // A manual clean resumes towards manageable (upstream's target).
        let target = (target_of(&doc) == Some(ProvisionState::Manageable))
            .then_some(ProvisionState::Manageable);
        if let Err(err) = self
            .fire_with(
                &mut task,
                Event::Resume,
                target,
                Followup::BackgroundWork,
                record,
                false,
            )
            .await
        {
            self.release(task).await;
            return Err(err);
        }
        let engine = self.clone();
        let mut work = self.work.lock().await;
        while work.try_join_next().is_some() {}
        work.spawn(async move { engine.continue_provision(task).await });
        Ok(())
    }

    /// Starts the periodic callback-timeout check unless it runs already.
    fn ensure_timeout_watch(self: &Arc<Self>) {
        let Ok(mut watch) = self.timeout_watch.lock() else {
            return;
        };
        if watch.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let timeout = self.config.deploy.callback_timeout_secs;
        let period = Duration::from_millis(timeout.saturating_mul(1000) / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(60));
        let engine = Arc::downgrade(self);
        *watch = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(engine) = engine.upgrade() else {
                    break;
                };
                if let Err(err) = engine.check_callback_timeouts().await {
                    tracing::warn!(error = %err, "callback timeout check failed");
                }
            }
        }));
    }

    /// Fails nodes whose agent did not call back within
    /// `[deploy] callback_timeout_secs` (upstream's deploy/clean callback
    /// timeouts); returns how many.
    pub async fn check_callback_timeouts(&self) -> EngineResult<usize> {
        let timeout = self.config.deploy.callback_timeout_secs;
        let limit = storage::now_micros()
            - i64::try_from(timeout.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
        let filter = storage::NodeFilter {
            equals: vec![("reservation", None)],
            maintenance: Some(false),
            provision_states: Some(vec![
                ProvisionState::DeployWait.as_str().to_string(),
                ProvisionState::CleanWait.as_str().to_string(),
            ]),
            ..Default::default()
        };
        let rows = storage::list_nodes(self.db.conn(), &filter, "id", false, None, None).await?;
        let mut failed = 0;
        for row in rows {
            let expired = |doc: &Doc| {
                storage::doc_str(doc, "provision_updated_at")
                    .and_then(storage::iso_micros)
                    .is_some_and(|at| at < limit)
            };
            if !expired(&row.doc) {
                continue;
            }
            let Ok(mut task) = self.acquire(row.uuid()).await else {
                continue;
            };
            let state = state_of(task.doc());
            if !matches!(
                state,
                ProvisionState::DeployWait | ProvisionState::CleanWait
            ) || !expired(task.doc())
            {
                self.release(task).await;
                continue;
            }
            let message = if state == ProvisionState::DeployWait {
                format!(
                    "Timeout reached while waiting for callback for node {}",
                    task.row.uuid()
                )
            } else {
                let step = task.doc().get("clean_step").cloned().unwrap_or(json!({}));
                format!(
                    "Timeout reached while cleaning the node. Please check if the ramdisk responsible for the cleaning is running on the node. Failed on step {}.",
                    crate::model::pyrepr::repr(&step)
                )
            };
            let doc = task.doc().clone();
            // Clean waits keep their target (upstream leaves it in place).
            let kept_target =
                if ferrite_conductor_states::recovery::callback_timeout_keeps_target(state) {
                    storage::doc_str(&doc, "target_provision_state").map(str::to_string)
                } else {
                    None
                };
            if let Err(err) =
                crate::ops::set_power_state(&self.config, &doc, "power off", POWER_TIMEOUT).await
            {
                tracing::warn!(node = task.row.uuid(), error = %err, "power off after a callback timeout failed");
            }
            self.clean_up_ramdisk(&task).await;
            let result = self
                .fire_with(
                    &mut task,
                    Event::Fail,
                    None,
                    Followup::Nothing,
                    |doc| {
                        set_opt(doc, "last_error", Some(&message));
                        doc.insert("power_state".into(), json!("power off"));
                        reset_agent_flow(doc);
                        if let Some(target) = kept_target {
                            doc.insert("target_provision_state".into(), json!(target));
                        }
                    },
                    true,
                )
                .await;
            match result {
                Ok(_) => {
                    tracing::error!(node = task.row.uuid(), "{message}");
                    self.history(&task, &message, "ERROR", "provisioning").await;
                    failed += 1;
                }
                Err(err) => {
                    tracing::error!(node = task.row.uuid(), error = %err, "failed to fail a timed-out node");
                }
            }
            self.release(task).await;
        }
        Ok(failed)
    }
}
