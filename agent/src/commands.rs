//! Command results and their execution, as ironic-python-agent keeps them:
//! one command at a time (a new one while the last is RUNNING is refused
//! with 409), synchronous commands answer at once, asynchronous ones run in
//! the background and are polled.

use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::errors::CommandError;
use crate::ext::{self, Mode};
use crate::Shared;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    /// Upstream's (historical) name for a version mismatch of the hardware
    /// managers between get_*_steps and execute_*_step.
    VersionMismatch,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::VersionMismatch => "CLEAN_VERSION_MISMATCH",
        }
    }
}

struct Record {
    status: Status,
    result: Value,
    error: Option<CommandError>,
}

/// One command result.
pub struct Command {
    pub id: String,
    /// Upstream reports the command's own name (`execute_deploy_step`),
    /// without the extension, except for commands that failed before
    /// running (the full `deploy.execute_deploy_step`).
    pub command_name: String,
    record: Mutex<Record>,
    done: watch::Sender<bool>,
}

impl Command {
    fn new(
        command_name: &str,
        status: Status,
        result: Value,
        error: Option<CommandError>,
    ) -> Command {
        let (done, _) = watch::channel(status != Status::Running);
        Command {
            id: uuid::Uuid::new_v4().to_string(),
            command_name: command_name.to_string(),
            record: Mutex::new(Record {
                status,
                result,
                error,
            }),
            done,
        }
    }

    pub fn status(&self) -> Status {
        self.record.lock().map_or(Status::Failed, |r| r.status)
    }

    pub fn is_done(&self) -> bool {
        self.status() != Status::Running
    }

    /// Waits until the command is no longer RUNNING.
    pub async fn join(&self) {
        let mut rx = self.done.subscribe();
        // An error means the sender is gone, which cannot happen while
        // `self` lives; either way there is nothing more to wait for.
        let _ = rx.wait_for(|done| *done).await;
    }

    fn finish(&self, outcome: Result<Value, CommandError>) {
        if let Ok(mut record) = self.record.lock() {
            match outcome {
                Ok(result) => {
                    record.status = Status::Succeeded;
                    record.result = async_result(&self.command_name, result);
                }
                Err(err) if err.is_version_mismatch() => {
                    record.status = Status::VersionMismatch;
                    record.result = Value::Null;
                    record.error = Some(err);
                }
                Err(err) => {
                    record.status = Status::Failed;
                    record.error = Some(err);
                }
            }
        }
        self.done.send_replace(true);
    }

    /// IPA's serialized command result.
    pub fn to_json(&self) -> Value {
        let (status, result, error) = match self.record.lock() {
            Ok(r) => (r.status, r.result.clone(), r.error.clone()),
            Err(_) => (Status::Failed, Value::Null, None),
        };
        json!({
            "id": self.id,
            "command_name": self.command_name,
            "command_status": status.as_str(),
            "command_error": error.map_or(Value::Null, |e| serde_json::to_value(e).unwrap_or(Value::Null)),
            "command_result": result,
        })
    }
}

/// Upstream turns a string returned by a synchronous command into
/// `{"result": s}`.
fn sync_result(result: Value) -> Value {
    match result {
        Value::String(s) => json!({ "result": s }),
        other => other,
    }
}

/// … and one returned by an asynchronous command into
/// `{"result": "<name>: s"}`.
fn async_result(name: &str, result: Value) -> Value {
    match result {
        Value::String(s) => json!({ "result": format!("{name}: {s}") }),
        other => other,
    }
}

/// Every command result of this agent, oldest first.
#[derive(Default)]
pub struct Commands {
    list: Mutex<Vec<Arc<Command>>>,
    /// Held while a command is being started (and while a synchronous one
    /// runs), as upstream's command lock.
    exec: tokio::sync::Mutex<()>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Commands {
    pub fn all(&self) -> Vec<Arc<Command>> {
        self.list.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Command>> {
        self.list
            .lock()
            .ok()
            .and_then(|l| l.iter().find(|c| c.id == id).cloned())
    }

    fn push(&self, command: Arc<Command>) {
        if let Ok(mut list) = self.list.lock() {
            list.push(command);
        }
    }

    fn last(&self) -> Option<Arc<Command>> {
        self.list.lock().ok().and_then(|l| l.last().cloned())
    }

    /// Aborts the commands still running (the machine went away).
    pub fn abort_all(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }
}

/// Starts `name` (`<extension>.<command>`). `Err` is an error the API
/// answers with an HTTP status (bad name, unknown extension or command,
/// invalid parameters, busy); a command that ran and failed is an `Ok`
/// result with status FAILED.
pub async fn execute(
    shared: &Arc<Shared>,
    name: &str,
    params: Map<String, Value>,
) -> Result<Arc<Command>, CommandError> {
    let commands = &shared.commands;
    let _guard = commands.exec.lock().await;
    let Some((extension, command)) = name.split_once('.') else {
        return Err(CommandError::invalid_command(
            "Command name must be of the form <extension>.<name>",
        ));
    };
    if let Some(last) = commands.last() {
        if !last.is_done() {
            shared.log.warn(format!(
                "refused {name}: still executing {}",
                last.command_name
            ));
            return Err(CommandError::busy(&last.command_name));
        }
    }
    let spec = ext::resolve(shared, extension, command)?;
    shared.log.info(format!("executing command {name}"));
    if let Some(validate) = spec.validate {
        if let Err(err) = validate(shared, &params) {
            return failed_before_running(shared, name, err);
        }
    }
    match spec.mode {
        Mode::Sync => match (spec.run)(shared.clone(), params).await {
            Ok(result) => {
                let command = Arc::new(Command::new(
                    command,
                    Status::Succeeded,
                    sync_result(result),
                    None,
                ));
                shared.log.info(format!("command {name} succeeded"));
                commands.push(command.clone());
                Ok(command)
            }
            Err(err) => failed_before_running(shared, name, err),
        },
        Mode::Async => {
            let cmd = Arc::new(Command::new(command, Status::Running, Value::Null, None));
            commands.push(cmd.clone());
            let run = (spec.run)(shared.clone(), params);
            let task_cmd = cmd.clone();
            let task_shared = shared.clone();
            let full_name = name.to_string();
            let handle = shared.runtime.spawn(async move {
                // The command runs in its own task so that a panic in it
                // still ends the command (FAILED) instead of leaving it
                // RUNNING forever.
                let outcome = match task_shared.runtime.spawn(run).await {
                    Ok(outcome) => outcome,
                    Err(err) => Err(CommandError::execution(format!(
                        "command {full_name} crashed: {err}"
                    ))),
                };
                match &outcome {
                    Ok(_) => task_shared
                        .log
                        .info(format!("command {full_name} succeeded")),
                    Err(err) => task_shared
                        .log
                        .warn(format!("command {full_name} failed: {err}")),
                }
                task_cmd.finish(outcome);
                task_shared.force_heartbeat();
            });
            if let Ok(mut tasks) = commands.tasks.lock() {
                tasks.retain(|t| !t.is_finished());
                tasks.push(handle.abort_handle());
            }
            Ok(cmd)
        }
    }
}

fn failed_before_running(
    shared: &Shared,
    name: &str,
    err: CommandError,
) -> Result<Arc<Command>, CommandError> {
    if err.is_invalid_content() {
        shared.log.warn(format!("command {name} refused: {err}"));
        return Err(err);
    }
    shared.log.warn(format!("command {name} failed: {err}"));
    let command = Arc::new(Command::new(name, Status::Failed, Value::Null, Some(err)));
    shared.commands.push(command.clone());
    Ok(command)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finishing_wakes_joiners_and_wraps_strings() {
        let cmd = Arc::new(Command::new(
            "prepare_image",
            Status::Running,
            Value::Null,
            None,
        ));
        assert!(!cmd.is_done());
        let waiter = {
            let cmd = cmd.clone();
            tokio::spawn(async move { cmd.join().await })
        };
        cmd.finish(Ok(json!("done")));
        waiter.await.unwrap();
        let body = cmd.to_json();
        assert_eq!(body["command_status"], "SUCCEEDED");
        assert_eq!(
            body["command_result"],
            json!({"result": "prepare_image: done"})
        );
        assert_eq!(body["command_error"], Value::Null);
        assert!(body.get("command_params").is_none());
    }

    #[test]
    fn version_mismatch_has_its_own_status() {
        let cmd = Command::new("execute_clean_step", Status::Running, Value::Null, None);
        cmd.finish(Err(CommandError::version_mismatch(
            &json!({"a": "1"}),
            &json!({"a": "2"}),
        )));
        assert_eq!(cmd.to_json()["command_status"], "CLEAN_VERSION_MISMATCH");
        assert_eq!(cmd.to_json()["command_error"]["code"], 409);
    }
}
