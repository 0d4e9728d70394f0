//! The compute manager: what happens after the API answered 202. Builds
//! (schedule, claim, spawn, reschedule), deletes (cancel a build, destroy,
//! free the claim), power actions and rebuilds, and the recovery of work a
//! previous run left unfinished. Every state change is committed (with a
//! compare-and-swap on the server's version) before it is acted upon.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use ferrite_db::Db;
use ferrite_virt_driver::{CancelSignal, IronicDriver, SpawnError, SpawnRequest};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::model::{power_state, task_state, vm_state, Fault, Server};
use crate::scheduler::{ScheduleError, Scheduler};
use crate::storage;
use crate::Config;

/// Lost compare-and-swaps are retried this often before giving up (each
/// retry re-reads the server).
const CAS_RETRIES: usize = 20;

pub struct Manager {
    pub config: Arc<Config>,
    pub db: Db,
    pub driver: Arc<IronicDriver>,
    pub scheduler: Scheduler,
    /// Bounds the builds that run at once (`max_concurrent_builds`).
    builds: Arc<Semaphore>,
    /// Running build tasks by instance, with the signal a delete uses to
    /// cancel the build at its next safe point.
    running: Mutex<HashMap<String, RunningBuild>>,
    /// Other background tasks (actions, deletes), aborted at shutdown.
    background: Mutex<Vec<JoinHandle<()>>>,
}

/// A build task and the sender of its cancel signal.
type RunningBuild = (JoinHandle<()>, watch::Sender<bool>);

/// How long a delete waits for the build it cancels to stop by itself.
const BUILD_CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

fn fault(code: u16, message: impl Into<String>, details: impl Into<String>) -> Fault {
    Fault {
        code,
        message: message.into(),
        details: details.into(),
        created: storage::now_micros(),
    }
}

impl Manager {
    pub fn new(config: Arc<Config>, db: Db, driver: Arc<IronicDriver>) -> Manager {
        Manager {
            scheduler: Scheduler::new(&config),
            builds: Arc::new(Semaphore::new(config.max_concurrent_builds)),
            config,
            db,
            driver,
            running: Mutex::new(HashMap::new()),
            background: Mutex::new(Vec::new()),
        }
    }

    fn track(&self, handle: JoinHandle<()>) {
        if let Ok(mut tasks) = self.background.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(handle);
        }
    }

    /// Applies `change` to the current server and writes it, retrying lost
    /// races; `change` returns false to leave the server alone. Returns the
    /// written server, or None when it is gone or `change` declined.
    pub async fn update(
        &self,
        uuid: &str,
        mut change: impl FnMut(&mut Server) -> bool,
    ) -> Result<Option<Server>, storage::StorageError> {
        for _ in 0..CAS_RETRIES {
            let Some(mut server) = storage::get_server(&self.db, uuid).await? else {
                return Ok(None);
            };
            if !change(&mut server) {
                return Ok(None);
            }
            if storage::update_server(&self.db, &mut server).await? {
                return Ok(Some(server));
            }
        }
        Err(storage::StorageError::Db(sea_orm::DbErr::Custom(format!(
            "server {uuid} changed too often concurrently"
        ))))
    }

    /// Starts the build of a server already stored in BUILD/scheduling.
    pub fn start_build(self: &Arc<Self>, uuid: String) {
        let manager = self.clone();
        let key = uuid.clone();
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        let (cancel_tx, cancel) = watch::channel(false);
        let handle = tokio::spawn(async move {
            let mut cancelled = cancel.clone();
            let permit = tokio::select! {
                permit = manager.builds.clone().acquire_owned() => permit.ok(),
                _ = cancelled.wait_for(|c| *c) => None,
            };
            if permit.is_some() {
                manager.build(&uuid, &cancel).await;
            }
            if let Ok(mut running) = manager.running.lock() {
                running.remove(&uuid);
            }
        });
        running.insert(key, (handle, cancel_tx));
    }

    fn still_building(server: &Server) -> bool {
        server.vm_state == vm_state::BUILDING
            && server.task_state.as_deref() != Some(task_state::DELETING)
    }

    async fn fail_build(&self, uuid: &str, fault_value: Fault, keep_node: bool) {
        let result = self
            .update(uuid, |s| {
                if !Self::still_building(s) {
                    return false;
                }
                s.vm_state = vm_state::ERROR.into();
                s.task_state = None;
                if !keep_node {
                    s.node = None;
                }
                s.fault = Some(fault_value.clone());
                true
            })
            .await;
        if let Err(err) = result {
            tracing::error!(server = uuid, error = %err, "cannot record the failed build");
        }
        if let Err(err) = storage::delete_build_request(&self.db, uuid).await {
            tracing::warn!(server = uuid, error = %err, "cannot drop the build request");
        }
    }

    async fn free_claim(&self, uuid: &str) {
        if let Err(err) = self.scheduler.placement().delete_allocations(uuid).await {
            if err.status() != Some(404) {
                tracing::warn!(server = uuid, error = %err, "cannot delete allocations");
            }
        }
    }

    /// One build: schedule, claim, spawn; reschedule on a node that was
    /// not free, up to `max_attempts` in all.
    async fn build(&self, uuid: &str, cancel: &CancelSignal) {
        let mut excluded = BTreeSet::new();
        for attempt in 1..=self.config.max_attempts {
            let server = match storage::get_server(&self.db, uuid).await {
                Ok(Some(server)) if Self::still_building(&server) => server,
                Ok(_) => return,
                Err(err) => {
                    tracing::error!(server = uuid, error = %err, "cannot load the server to build");
                    return;
                }
            };
            let claimed = match self.scheduler.schedule(&server, &excluded).await {
                Ok(claimed) => claimed,
                Err(ScheduleError::NoValidHost(message)) => {
                    let details = if attempt > 1 {
                        format!("Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance {uuid}.")
                    } else {
                        String::new()
                    };
                    let message = if attempt > 1 {
                        details.clone()
                    } else {
                        message
                    };
                    self.fail_build(uuid, fault(500, message, details), false)
                        .await;
                    return;
                }
                Err(ScheduleError::Placement(detail)) => {
                    tracing::error!(server = uuid, error = %detail, "scheduling failed");
                    self.fail_build(
                        uuid,
                        fault(500, crate::scheduler::NO_VALID_HOST, detail),
                        false,
                    )
                    .await;
                    return;
                }
            };
            let node = claimed.node.clone();
            let host = self.config.host.clone();
            let recorded = self
                .update(uuid, |s| {
                    if !Self::still_building(s) {
                        return false;
                    }
                    s.host = Some(host.clone());
                    s.node = Some(node.clone());
                    s.task_state = Some(task_state::SPAWNING.into());
                    true
                })
                .await;
            let server = match recorded {
                Ok(Some(server)) => server,
                Ok(None) => {
                    // Deleted meanwhile: the claim is ours to free.
                    self.free_claim(uuid).await;
                    return;
                }
                Err(err) => {
                    tracing::error!(server = uuid, error = %err, "cannot record the claimed node");
                    self.free_claim(uuid).await;
                    return;
                }
            };
            let request = self.spawn_request(&server).await;
            match self.driver.spawn_cancellable(&request, cancel).await {
                Ok(()) => {
                    let launched = storage::now_micros();
                    let result = self
                        .update(uuid, |s| {
                            if !Self::still_building(s) {
                                return false;
                            }
                            s.vm_state = vm_state::ACTIVE.into();
                            s.task_state = None;
                            s.power_state = power_state::RUNNING;
                            s.launched_at = Some(launched);
                            true
                        })
                        .await;
                    if let Err(err) = result {
                        tracing::error!(server = uuid, error = %err, "cannot record the finished build");
                    }
                    if let Err(err) = storage::delete_build_request(&self.db, uuid).await {
                        tracing::warn!(server = uuid, error = %err, "cannot drop the build request");
                    }
                    return;
                }
                Err(SpawnError::Reschedule(node, reason)) => {
                    tracing::info!(server = uuid, node, reason, attempt, "rescheduling");
                    self.free_claim(uuid).await;
                    excluded.insert(node);
                    let result = self
                        .update(uuid, |s| {
                            if !Self::still_building(s) {
                                return false;
                            }
                            s.host = None;
                            s.node = None;
                            s.task_state = Some(task_state::SCHEDULING.into());
                            true
                        })
                        .await;
                    if !matches!(result, Ok(Some(_))) {
                        return;
                    }
                }
                Err(SpawnError::DeployFailed(reason)) => {
                    self.free_claim(uuid).await;
                    let message = format!("Build of instance {uuid} aborted: {reason}");
                    self.fail_build(uuid, fault(500, message, reason), false)
                        .await;
                    return;
                }
                Err(SpawnError::Cancelled) => {
                    // A delete took over: it tears the node down and frees
                    // the claim.
                    return;
                }
                Err(SpawnError::Api(reason)) => {
                    // The node may be half set up: keep it (and its claim)
                    // with the server, whose delete will tear it down.
                    let message = format!("Build of instance {uuid} aborted: {reason}");
                    self.fail_build(uuid, fault(500, message, reason), true)
                        .await;
                    return;
                }
            }
        }
        self.fail_build(
            uuid,
            fault(
                500,
                format!("Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance {uuid}."),
                "",
            ),
            false,
        )
        .await;
    }

    /// What the driver needs to deploy `server` on its node.
    pub async fn spawn_request(&self, server: &Server) -> SpawnRequest {
        let mut public_keys = BTreeMap::new();
        if let (Some(name), Some(key)) = (&server.key_name, &server.key_data) {
            public_keys.insert(name.clone(), key.clone());
        }
        SpawnRequest {
            node_uuid: server.node.clone().unwrap_or_default(),
            instance_uuid: server.uuid.clone(),
            instance_name: server.name.clone(),
            hostname: hostname(&server.name),
            project_id: server.project_id.clone(),
            user_id: server.user_id.clone(),
            image: server.image.spec(),
            flavor: server.flavor.spec(),
            user_data: server.user_data.clone(),
            metadata: server.metadata.clone(),
            public_keys,
            vifs: server
                .networks
                .iter()
                .filter_map(|n| n.port.clone())
                .collect(),
            network_data: serde_json::json!({"links": [], "networks": [], "services": []}),
        }
    }

    /// Starts the delete of a server already marked `deleting`.
    pub fn start_delete(self: &Arc<Self>, uuid: String) {
        let manager = self.clone();
        let handle = tokio::spawn(async move { manager.delete(&uuid).await });
        self.track(handle);
    }

    async fn delete(&self, uuid: &str) {
        let build = self.running.lock().ok().and_then(|mut r| r.remove(uuid));
        if let Some((mut build, cancel)) = build {
            // Cooperative first: aborting a build in the middle of an API
            // call could let that call land after the teardown (a node
            // deployed for a deleted server).
            let _ = cancel.send(true);
            if tokio::time::timeout(BUILD_CANCEL_GRACE, &mut build)
                .await
                .is_err()
            {
                tracing::warn!(server = uuid, "the build did not stop in time; aborting it");
                build.abort();
                let _ = build.await;
            }
        }
        let server = match storage::get_server(&self.db, uuid).await {
            Ok(Some(server)) => server,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(server = uuid, error = %err, "cannot load the server to delete");
                return;
            }
        };
        if let Some(node) = &server.node {
            if let Err(err) = self.driver.destroy(node, uuid).await {
                tracing::error!(server = uuid, node, error = %err, "destroy failed");
                let result = self
                    .update(uuid, |s| {
                        s.vm_state = vm_state::ERROR.into();
                        s.task_state = None;
                        s.fault = Some(fault(
                            500,
                            format!("Failed to delete instance {uuid}: {err}"),
                            err.to_string(),
                        ));
                        true
                    })
                    .await;
                if let Err(err) = result {
                    tracing::error!(server = uuid, error = %err, "cannot record the failed delete");
                }
                return;
            }
        }
        self.free_claim(uuid).await;
        let result = self
            .update(uuid, |s| {
                s.vm_state = vm_state::DELETED.into();
                s.task_state = None;
                s.power_state = power_state::NOSTATE;
                true
            })
            .await;
        if let Err(err) = result {
            tracing::error!(server = uuid, error = %err, "cannot record the delete");
        }
    }

    /// Runs a power action or rebuild marked by the API (`task` is the task
    /// state it set) and records the outcome unless something else (a
    /// delete) took over meanwhile.
    pub fn start_action(self: &Arc<Self>, uuid: String, task: &'static str, soft: bool) {
        let manager = self.clone();
        let handle = tokio::spawn(async move { manager.action(&uuid, task, soft).await });
        self.track(handle);
    }

    async fn action(&self, uuid: &str, task: &'static str, soft: bool) {
        let server = match storage::get_server(&self.db, uuid).await {
            Ok(Some(server)) if server.task_state.as_deref() == Some(task) => server,
            _ => return,
        };
        let node = server.node.clone().unwrap_or_default();
        let outcome: Result<(&'static str, i32), String> = match task {
            task_state::REBOOTING | task_state::REBOOTING_HARD => self
                .driver
                .reboot(&node, soft)
                .await
                .map(|()| (vm_state::ACTIVE, power_state::RUNNING))
                .map_err(|e| e.to_string()),
            task_state::POWERING_ON => self
                .driver
                .power_on(&node)
                .await
                .map(|()| (vm_state::ACTIVE, power_state::RUNNING))
                .map_err(|e| e.to_string()),
            task_state::POWERING_OFF => self
                .driver
                .power_off(&node)
                .await
                .map(|()| (vm_state::STOPPED, power_state::SHUTDOWN))
                .map_err(|e| e.to_string()),
            _ => {
                let request = self.spawn_request(&server).await;
                self.driver
                    .rebuild(&request)
                    .await
                    .map(|()| (vm_state::ACTIVE, power_state::RUNNING))
                    .map_err(|e| e.to_string())
            }
        };
        let result = self
            .update(uuid, |s| {
                if s.task_state.as_deref() != Some(task) {
                    return false;
                }
                s.task_state = None;
                match &outcome {
                    Ok((vm, power)) => {
                        s.vm_state = (*vm).into();
                        s.power_state = *power;
                        if task == task_state::REBUILDING {
                            s.launched_at = Some(storage::now_micros());
                        }
                    }
                    Err(reason) => {
                        s.vm_state = vm_state::ERROR.into();
                        s.fault = Some(fault(500, reason.clone(), reason.clone()));
                    }
                }
                true
            })
            .await;
        if let Err(err) = result {
            tracing::error!(server = uuid, error = %err, "cannot record the action's outcome");
        }
    }

    /// At start: builds a previous run left unfinished fail (their claims
    /// are freed), interrupted tasks are cleared (rebuilds fail), and
    /// interrupted deletes are returned to be resumed.
    pub async fn recover(&self) -> Result<Vec<String>, storage::StorageError> {
        let mut resume_deletes = Vec::new();
        let host = self.config.host.clone();
        for server in storage::list_unfinished_servers(&self.db, &host).await? {
            let uuid = server.uuid.clone();
            if server.task_state.as_deref() == Some(task_state::DELETING) {
                resume_deletes.push(uuid);
                continue;
            }
            if server.vm_state == vm_state::BUILDING {
                let message = format!(
                    "Build of instance {uuid} was interrupted by a restart of compute host {host}."
                );
                self.update(&uuid, |s| {
                    if s.vm_state != vm_state::BUILDING {
                        return false;
                    }
                    s.vm_state = vm_state::ERROR.into();
                    s.task_state = None;
                    s.fault = Some(fault(500, message.clone(), ""));
                    true
                })
                .await?;
                self.free_claim(&uuid).await;
                storage::delete_build_request(&self.db, &uuid).await?;
                tracing::warn!(server = %uuid, "failed a build interrupted by a restart");
                continue;
            }
            self.update(&uuid, |s| {
                match s.task_state.as_deref() {
                    Some(task_state::REBUILDING) | Some(task_state::REBUILD_SPAWNING) => {
                        s.vm_state = vm_state::ERROR.into();
                        s.fault = Some(fault(
                            500,
                            "Rebuild interrupted by a restart of the compute host.",
                            "",
                        ));
                    }
                    Some(_) => {}
                    None => return false,
                }
                s.task_state = None;
                true
            })
            .await?;
        }
        for uuid in storage::list_build_requests(&self.db).await? {
            storage::delete_build_request(&self.db, &uuid).await?;
        }
        Ok(resume_deletes)
    }

    /// Stops background work; interrupted builds fail at the next start.
    pub async fn shutdown(&self) {
        let builds: Vec<JoinHandle<()>> = self
            .running
            .lock()
            .map(|mut r| r.drain().map(|(_, (h, _))| h).collect())
            .unwrap_or_default();
        let others: Vec<JoinHandle<()>> = self
            .background
            .lock()
            .map(|mut b| b.drain(..).collect())
            .unwrap_or_default();
        for handle in builds.into_iter().chain(others) {
            handle.abort();
            let _ = handle.await;
        }
    }
}

/// Nova's hostname sanitisation of a display name (simplified): lower
/// case, runs of other characters become `-`, at most 63 characters.
pub fn hostname(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if (c == '-' || c == ' ' || c == '_' || c == '.') && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').chars().take(63).collect::<String>();
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "server".into()
    } else {
        out
    }
}
