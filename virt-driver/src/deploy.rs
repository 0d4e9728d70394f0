//! Instance lifecycle on a node: spawn, teardown, rebuild and power, the
//! way Nova's Ironic driver drives the Bare Metal API.

use std::time::{Duration, Instant};

use ferrite_baremetal_client::{BaremetalClient, ClientError};
use serde_json::{json, Value};

use crate::node::{NodeState, BUSY_STATES, UNPROVISIONED_STATES};
use crate::sync::Calls;
use crate::{
    metadata, never_cancelled, resources, CancelSignal, DriverError, IronicDriver, PowerState,
    SpawnError, SpawnRequest,
};

/// Sleeps `duration`, or less when `cancel` fires meanwhile.
async fn pause(duration: Duration, cancel: &CancelSignal) {
    let mut cancel = cancel.clone();
    let fired = async move {
        loop {
            if *cancel.borrow_and_update() {
                return;
            }
            if cancel.changed().await.is_err() {
                // No sender any more: it can never fire.
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = fired => {}
    }
}

fn api(context: &str, error: ClientError) -> SpawnError {
    SpawnError::Api(format!("{context}: {error}"))
}

fn driver_error(context: &str, error: ClientError) -> DriverError {
    DriverError(format!("{context}: {error}"))
}

async fn get_node(ironic: &BaremetalClient, uuid: &str) -> Result<Option<NodeState>, ClientError> {
    match ironic.get_node(uuid).await {
        Ok(body) => Ok(NodeState::from_json(&body)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

impl IronicDriver {
    /// Refuses an image URL whose scheme the operator did not allow
    /// (`DriverOptions::image_url_schemes`): the conductor would otherwise
    /// fetch whatever a tenant names, its own files included.
    fn check_image_url(&self, request: &SpawnRequest) -> Result<(), SpawnError> {
        let url = &request.image.url;
        let scheme = reqwest::Url::parse(url)
            .map(|u| u.scheme().to_ascii_lowercase())
            .unwrap_or_default();
        if self.options.image_url_schemes.contains(&scheme) {
            return Ok(());
        }
        Err(SpawnError::DeployFailed(format!(
            "Image {} cannot be deployed: its URL {url} is not one of the allowed schemes ({})",
            request.image.id,
            self.options.image_url_schemes.join(", ")
        )))
    }

    pub(crate) async fn do_spawn(
        &self,
        request: &SpawnRequest,
        cancel: &CancelSignal,
    ) -> Result<(), SpawnError> {
        self.check_image_url(request)?;
        let calls = Calls::default();
        let ironic = self
            .ironic_client(&calls)
            .await
            .map_err(|e| SpawnError::Api(e.0))?;
        let uuid = request.node_uuid.as_str();
        let instance = request.instance_uuid.as_str();
        // Re-read the node: the scheduler's view may be a periodic old.
        let node = get_node(&ironic, uuid)
            .await
            .map_err(|e| api("reading the node", e))?
            .ok_or_else(|| {
                SpawnError::Reschedule(uuid.to_string(), "the node does not exist".into())
            })?;
        if let Some(other) = &node.instance_uuid {
            return Err(SpawnError::Reschedule(
                uuid.into(),
                format!("it already has instance {other}"),
            ));
        }
        if resources::unavailable(&node) {
            return Err(SpawnError::Reschedule(
                uuid.into(),
                format!(
                    "provision state {:?}, power state {:?}, maintenance {}",
                    node.provision_state, node.power_state, node.maintenance
                ),
            ));
        }
        if *cancel.borrow() {
            return Err(SpawnError::Cancelled);
        }
        // Take the node: the API sets instance_uuid only if it is empty, so
        // of two racing computes exactly one wins.
        let claim = json!([{"op": "add", "path": "/instance_uuid", "value": instance}]);
        match ironic.patch_node(uuid, &claim).await {
            Ok(_) => {}
            Err(e) if e.status() == Some(409) => {
                return Err(SpawnError::Reschedule(
                    uuid.into(),
                    format!("another compute took it: {e}"),
                ))
            }
            Err(e) => return Err(api("setting instance_uuid", e)),
        }
        tracing::info!(node = uuid, instance, "reserved node for instance");
        match self.deploy_claimed(&ironic, request, cancel).await {
            Ok(()) => {
                tracing::info!(node = uuid, instance, "instance is active");
                Ok(())
            }
            Err(SpawnError::Cancelled) => {
                tracing::info!(
                    node = uuid,
                    instance,
                    "spawn cancelled; the caller tears down"
                );
                Err(SpawnError::Cancelled)
            }
            Err(failure) => {
                tracing::error!(node = uuid, instance, error = %failure, "spawn failed; cleaning up the node");
                if let Err(e) = self
                    .release_node(&ironic, uuid, instance, &request.vifs)
                    .await
                {
                    tracing::error!(node = uuid, instance, error = %e, "cleanup after a failed spawn failed");
                }
                Err(failure)
            }
        }
    }

    /// The part of a spawn after the node is ours: any error leaves the
    /// cleanup to the caller.
    async fn deploy_claimed(
        &self,
        ironic: &BaremetalClient,
        request: &SpawnRequest,
        cancel: &CancelSignal,
    ) -> Result<(), SpawnError> {
        let uuid = request.node_uuid.as_str();
        for vif in &request.vifs {
            match ironic.attach_vif(uuid, vif).await {
                Ok(()) => {}
                // Already attached (a retried spawn): fine, as Nova treats it.
                Err(e) if e.status() == Some(409) => {}
                Err(e) => return Err(api(&format!("attaching VIF {vif}"), e)),
            }
        }
        let patch = Value::Array(metadata::instance_info_patch(request, &self.config.host));
        ironic.patch_node(uuid, &patch).await.map_err(|e| {
            SpawnError::DeployFailed(format!("adding deploy parameters to node {uuid}: {e}"))
        })?;
        let validation = ironic
            .validate_node(uuid)
            .await
            .map_err(|e| api("validating the node", e))?;
        let verdict = |kind: &str| -> Result<(), String> {
            let entry = &validation[kind];
            if entry["result"].as_bool() == Some(true) {
                Ok(())
            } else {
                Err(entry["reason"]
                    .as_str()
                    .unwrap_or("not validated")
                    .to_string())
            }
        };
        let (deploy, power) = (verdict("deploy"), verdict("power"));
        if deploy.is_err() || power.is_err() {
            let say = |r: Result<(), String>| r.err().unwrap_or_else(|| "No Error".into());
            return Err(SpawnError::DeployFailed(format!(
                "Ironic node: {uuid} failed to validate. (deploy: {}, power: {})",
                say(deploy),
                say(power)
            )));
        }
        let configdrive = self.build_config_drive(request)?;
        if *cancel.borrow() {
            return Err(SpawnError::Cancelled);
        }
        self.provision(ironic, uuid, "active", configdrive).await?;
        self.wait_for_active(ironic, uuid, &request.instance_uuid, cancel)
            .await
    }

    fn build_config_drive(&self, request: &SpawnRequest) -> Result<Option<String>, SpawnError> {
        if !metadata::config_drive_required(request, self.options.force_config_drive) {
            return Ok(None);
        }
        metadata::config_drive(request, &self.options.availability_zone)
            .map(Some)
            .map_err(|e| SpawnError::DeployFailed(format!("Failed to build configdrive: {e}")))
    }

    async fn provision(
        &self,
        ironic: &BaremetalClient,
        uuid: &str,
        target: &str,
        configdrive: Option<String>,
    ) -> Result<(), SpawnError> {
        let extra = configdrive.map(|drive| json!({ "configdrive": drive }));
        ironic
            .set_provision_state(uuid, target, extra.as_ref())
            .await
            .map_err(|e| {
                SpawnError::DeployFailed(format!(
                    "Failed to request Ironic to provision node {uuid} ({target}): {e}"
                ))
            })
    }

    /// Polls until the node is `active` with our instance, or the deploy
    /// failed, was aborted, or took longer than `deploy_timeout`.
    async fn wait_for_active(
        &self,
        ironic: &BaremetalClient,
        uuid: &str,
        instance: &str,
        cancel: &CancelSignal,
    ) -> Result<(), SpawnError> {
        let started = Instant::now();
        loop {
            pause(self.config.poll_interval, cancel).await;
            if *cancel.borrow() {
                return Err(SpawnError::Cancelled);
            }
            let node = match get_node(ironic, uuid).await {
                Ok(Some(node)) => node,
                Ok(None) => {
                    return Err(SpawnError::DeployFailed(format!("node {uuid} disappeared")))
                }
                Err(e) => {
                    // A blip of the API is not a failed deploy: keep polling.
                    tracing::warn!(node = uuid, error = %e, "polling the node failed");
                    if started.elapsed() > self.config.deploy_timeout {
                        return Err(SpawnError::DeployFailed(format!(
                            "timed out waiting for node {uuid}: {e}"
                        )));
                    }
                    continue;
                }
            };
            if node.instance_uuid.as_deref() != Some(instance) {
                return Err(SpawnError::DeployFailed(format!(
                    "instance {instance} was removed from node {uuid} during the deploy"
                )));
            }
            let state = node.provision_state().to_string();
            let state = state.as_str();
            if state == "active" && node.settled() {
                return Ok(());
            }
            if matches!(
                node.target_provision_state.as_deref(),
                Some("deleted" | "available")
            ) || matches!(state, "available" | "")
            {
                return Err(SpawnError::DeployFailed(format!(
                    "provisioning of node {uuid} was aborted"
                )));
            }
            if matches!(state, "deploy failed" | "error") {
                return Err(SpawnError::DeployFailed(
                    node.last_error
                        .unwrap_or_else(|| format!("node {uuid} is in {state}")),
                ));
            }
            if started.elapsed() > self.config.deploy_timeout {
                return Err(SpawnError::DeployFailed(format!(
                    "deploy of node {uuid} timed out after {:?} (provision state {state})",
                    self.config.deploy_timeout
                )));
            }
            tracing::debug!(node = uuid, state, target = ?node.target_provision_state, "still waiting for active");
        }
    }

    /// Frees a node from `instance`, in Nova's order: tear down when the
    /// node was (being) deployed, else detach the VIFs and remove
    /// instance_info and instance_uuid. A node that no longer knows the
    /// instance is already free. `vifs` are the VIFs known to belong to
    /// the instance (those attached to the node are detached too).
    pub(crate) async fn release_node(
        &self,
        ironic: &BaremetalClient,
        uuid: &str,
        instance: &str,
        vifs: &[String],
    ) -> Result<(), DriverError> {
        let started = Instant::now();
        let timeout = self
            .config
            .deploy_timeout
            .max(self.options.teardown_timeout);
        let mut attached: Vec<String> = vifs.to_vec();
        let mut torn_down = false;
        loop {
            let node = match get_node(ironic, uuid).await {
                Ok(Some(node)) => node,
                Ok(None) => return Ok(()),
                Err(e) => return Err(driver_error("reading the node", e)),
            };
            if node.instance_uuid.as_deref() != Some(instance) {
                break;
            }
            let state = node.provision_state().to_string();
            if torn_down && UNPROVISIONED_STATES.contains(&state.as_str()) {
                // Unprovisioned from the instance's point of view (Nova
                // counts even `clean failed`: an operator must fix it).
                break;
            }
            if started.elapsed() > timeout {
                return Err(DriverError(format!(
                    "Error destroying the instance on node {uuid}. Provision state still '{state}'."
                )));
            }
            if torn_down || BUSY_STATES.contains(&state.as_str()) || !node.settled() {
                // Tearing down, or locked by a running task: wait.
                tokio::time::sleep(self.config.poll_interval).await;
                continue;
            }
            if let Ok(listed) = ironic.list_vifs(uuid).await {
                for vif in listed {
                    if !attached.contains(&vif) {
                        attached.push(vif);
                    }
                }
            }
            if node.needs_unprovision() {
                match ironic.set_provision_state(uuid, "deleted", None).await {
                    Ok(()) => {
                        tracing::info!(node = uuid, instance, from = state, "tearing down");
                        torn_down = true;
                    }
                    // Locked or mid-transition: try again after a pause.
                    Err(e) if matches!(e.status(), Some(400 | 409)) => {
                        tracing::debug!(node = uuid, error = %e, "teardown refused for now");
                    }
                    Err(e) => return Err(driver_error("requesting the teardown", e)),
                }
                tokio::time::sleep(self.config.poll_interval).await;
                continue;
            }
            // Never deployed (or already torn down without forgetting):
            // undo what spawn did.
            self.detach_vifs(ironic, uuid, &attached).await;
            let clear = json!([
                {"op": "replace", "path": "/instance_info", "value": {}},
                {"op": "remove", "path": "/instance_uuid"},
            ]);
            match ironic.patch_node(uuid, &clear).await {
                Ok(_) => return Ok(()),
                Err(e) if e.status() == Some(409) && started.elapsed() < timeout => {
                    tokio::time::sleep(self.config.poll_interval).await;
                }
                Err(e) => return Err(driver_error("removing the instance from the node", e)),
            }
        }
        // The teardown (or someone else) freed the node; VIF ids are unique
        // to the instance, so detaching ours cannot hurt a new tenant.
        self.detach_vifs(ironic, uuid, &attached).await;
        Ok(())
    }

    async fn detach_vifs(&self, ironic: &BaremetalClient, uuid: &str, vifs: &[String]) {
        for vif in vifs {
            match ironic.detach_vif(uuid, vif).await {
                Ok(()) => {}
                Err(e) if matches!(e.status(), Some(400 | 404)) => {
                    tracing::debug!(node = uuid, vif, "VIF is not attached");
                }
                Err(e) => tracing::warn!(node = uuid, vif, error = %e, "could not detach VIF"),
            }
        }
    }

    pub(crate) async fn do_destroy(&self, uuid: &str, instance: &str) -> Result<(), DriverError> {
        let calls = Calls::default();
        let ironic = self.ironic_client(&calls).await?;
        let node = get_node(&ironic, uuid)
            .await
            .map_err(|e| driver_error("reading the node", e))?;
        match node {
            None => {
                tracing::warn!(node = uuid, instance, "destroy: the node does not exist");
                Ok(())
            }
            Some(node) if node.instance_uuid.as_deref() != Some(instance) => {
                tracing::warn!(node = uuid, instance, has = ?node.instance_uuid, "destroy: the node does not hold the instance");
                Ok(())
            }
            Some(_) => {
                self.release_node(&ironic, uuid, instance, &[]).await?;
                self.forget_node(uuid).await;
                tracing::info!(node = uuid, instance, "unprovisioned");
                Ok(())
            }
        }
    }

    /// Drops a node from the cached view so the next sync recomputes it
    /// (Nova pops the node cache entry after a teardown).
    async fn forget_node(&self, uuid: &str) {
        self.sync_state.lock().await.owned_nodes.remove(uuid);
    }

    pub(crate) async fn do_rebuild(&self, request: &SpawnRequest) -> Result<(), SpawnError> {
        self.check_image_url(request)?;
        let calls = Calls::default();
        let ironic = self
            .ironic_client(&calls)
            .await
            .map_err(|e| SpawnError::Api(e.0))?;
        let uuid = request.node_uuid.as_str();
        let node = get_node(&ironic, uuid)
            .await
            .map_err(|e| api("reading the node", e))?
            .ok_or_else(|| SpawnError::Api(format!("node {uuid} does not exist")))?;
        if node.instance_uuid.as_deref() != Some(request.instance_uuid.as_str()) {
            return Err(SpawnError::Api(format!(
                "node {uuid} does not hold instance {}",
                request.instance_uuid
            )));
        }
        let patch = Value::Array(metadata::instance_info_patch(request, &self.config.host));
        ironic.patch_node(uuid, &patch).await.map_err(|e| {
            SpawnError::DeployFailed(format!("adding deploy parameters to node {uuid}: {e}"))
        })?;
        let configdrive = self.build_config_drive(request)?;
        // The node goes through `deploying` and back to `active`.
        self.provision(&ironic, uuid, "rebuild", configdrive)
            .await?;
        self.wait_for_active(&ironic, uuid, &request.instance_uuid, &never_cancelled())
            .await
    }

    pub(crate) async fn do_reboot(&self, uuid: &str, soft: bool) -> Result<(), DriverError> {
        let calls = Calls::default();
        let ironic = self.ironic_client(&calls).await?;
        let mut hard = true;
        if soft {
            match ironic.set_power_state(uuid, "soft rebooting").await {
                Ok(()) => hard = false,
                Err(e) if e.status() == Some(400) => {
                    tracing::info!(node = uuid, error = %e, "soft reboot refused; falling back to a hard reboot");
                }
                Err(e) => return Err(driver_error("requesting a soft reboot", e)),
            }
        }
        if hard {
            ironic
                .set_power_state(uuid, "rebooting")
                .await
                .map_err(|e| driver_error("requesting a reboot", e))?;
        }
        self.wait_for_power(&ironic, uuid, "power on").await
    }

    pub(crate) async fn do_power(&self, uuid: &str, target: &str) -> Result<(), DriverError> {
        let calls = Calls::default();
        let ironic = self.ironic_client(&calls).await?;
        ironic
            .set_power_state(uuid, target)
            .await
            .map_err(|e| driver_error(&format!("requesting {target}"), e))?;
        self.wait_for_power(&ironic, uuid, target).await
    }

    /// Polls until no power change is pending (Nova's
    /// `_wait_for_power_state`), then checks the node reached `wanted`.
    async fn wait_for_power(
        &self,
        ironic: &BaremetalClient,
        uuid: &str,
        wanted: &str,
    ) -> Result<(), DriverError> {
        let started = Instant::now();
        loop {
            let node = get_node(ironic, uuid)
                .await
                .map_err(|e| driver_error("reading the node", e))?
                .ok_or_else(|| DriverError(format!("node {uuid} does not exist")))?;
            if node.target_power_state.is_none() {
                if node.power_state.as_deref() == Some(wanted) {
                    return Ok(());
                }
                return Err(DriverError(format!(
                    "node {uuid} ended in power state {:?} instead of {wanted}: {}",
                    node.power_state,
                    node.last_error.unwrap_or_default()
                )));
            }
            if started.elapsed() > self.options.power_timeout {
                return Err(DriverError(format!(
                    "timed out after {:?} waiting for node {uuid} to reach {wanted}",
                    self.options.power_timeout
                )));
            }
            tokio::time::sleep(self.config.poll_interval.min(Duration::from_secs(5))).await;
        }
    }

    pub(crate) async fn do_get_info(&self, uuid: &str) -> Result<crate::InstanceInfo, DriverError> {
        let calls = Calls::default();
        let ironic = self.ironic_client(&calls).await?;
        let node = get_node(&ironic, uuid)
            .await
            .map_err(|e| driver_error("reading the node", e))?
            .ok_or_else(|| DriverError(format!("node {uuid} does not exist")))?;
        Ok(crate::InstanceInfo {
            power_state: map_power_state(node.power_state.as_deref()),
            node_uuid: node.uuid.clone(),
            provision_state: node.provision_state().to_string(),
        })
    }
}

/// Nova's power state mapping; `error` reads as crashed (upstream maps any
/// unknown state to NOSTATE with a warning).
pub fn map_power_state(state: Option<&str>) -> PowerState {
    match state {
        Some("power on") => PowerState::Running,
        Some("power off") => PowerState::Shutdown,
        None => PowerState::NoState,
        Some("error") => PowerState::Crashed,
        Some(other) => {
            tracing::warn!(state = other, "unknown power state");
            PowerState::NoState
        }
    }
}
