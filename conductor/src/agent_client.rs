//! A client of the deploy agent's command API (ironic-python-agent's
//! `/v1/commands`), as the conductor drives it: run a command, then poll the
//! command list until the command finished.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How the conductor reaches one agent.
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    /// `http://host:port` as the agent reported it (`callback_url`).
    url: String,
    token: Option<String>,
    /// How long a command may run before the conductor gives up.
    pub command_timeout: Duration,
    /// Pause between two status polls.
    pub poll_interval: Duration,
    /// How many times a command refused because the agent is busy (409)
    /// is sent again, and the pause before each retry.
    pub busy_retries: u32,
    pub busy_interval: Duration,
}

/// The statuses IPA reports.
const RUNNING: &str = "RUNNING";
const SUCCEEDED: &str = "SUCCEEDED";

impl AgentClient {
    pub fn new(url: &str, token: Option<String>) -> AgentClient {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        AgentClient {
            http,
            url: url.trim_end_matches('/').to_string(),
            token,
            command_timeout: Duration::from_secs(3600),
            poll_interval: Duration::from_millis(500),
            busy_retries: 5,
            busy_interval: Duration::from_secs(2),
        }
    }

    /// Sends `name` with `params`; with `wait` the agent answers when the
    /// command is done. Returns the agent's command record.
    pub async fn send(&self, name: &str, params: Value, wait: bool) -> Result<Value, String> {
        let mut attempt = 0;
        loop {
            match self.send_once(name, &params, wait).await {
                Err((Some(409), _)) if attempt < self.busy_retries => {
                    attempt += 1;
                    tokio::time::sleep(self.busy_interval).await;
                }
                other => return other.map_err(|(_, message)| message),
            }
        }
    }

    /// One attempt; errors carry the HTTP status when there was one.
    async fn send_once(
        &self,
        name: &str,
        params: &Value,
        wait: bool,
    ) -> Result<Value, (Option<u16>, String)> {
        let url = format!("{}/v1/commands", self.url);
        let reply = self
            .authorized(self.http.post(&url))
            .query(&[("wait", wait.to_string())])
            .json(&json!({"name": name, "params": params}))
            .send()
            .await
            .map_err(|e| {
                (
                    None,
                    self.scrub(format!(
                        "Failed to connect to the agent at {url} for {name}: {}",
                        e.without_url()
                    )),
                )
            })?;
        let status = reply.status();
        let body = read_json(reply).await;
        if !status.is_success() {
            return Err((
                Some(status.as_u16()),
                self.scrub(format!(
                    "Agent returned error for {name} (HTTP {}): {}",
                    status.as_u16(),
                    error_text(&body)
                )),
            ));
        }
        Ok(body)
    }

    /// The request with the agent token in its header (never the query).
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.header(crate::deploy::AGENT_TOKEN_HEADER, token),
            None => request,
        }
    }

    /// `text` with the agent token blanked out, should anything (an
    /// agent's error message, say) have echoed it: these messages end up in
    /// `last_error`, the node's history and the compute fault.
    fn scrub(&self, text: String) -> String {
        match &self.token {
            Some(token) if !token.is_empty() && text.contains(token.as_str()) => {
                text.replace(token.as_str(), "***")
            }
            _ => text,
        }
    }

    /// The agent's command list (`GET /v1/commands`).
    pub async fn commands(&self) -> Result<Vec<Value>, String> {
        let url = format!("{}/v1/commands", self.url);
        let reply = self
            .authorized(self.http.get(&url))
            .send()
            .await
            .map_err(|e| {
                self.scrub(format!(
                    "Failed to get command statuses from the agent at {url}: {}",
                    e.without_url()
                ))
            })?;
        let status = reply.status();
        let body = read_json(reply).await;
        if !status.is_success() {
            return Err(self.scrub(format!(
                "Agent returned error for the command list (HTTP {}): {}",
                status.as_u16(),
                error_text(&body)
            )));
        }
        Ok(body
            .get("commands")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// Runs `name` asynchronously and polls until it finished; the command's
    /// `command_result` on success, the agent's error message otherwise.
    pub async fn run(&self, name: &str, params: Value) -> Result<Value, String> {
        let started = self.send(name, params, false).await?;
        let mut record = started;
        let deadline = Instant::now() + self.command_timeout;
        loop {
            match status_of(&record) {
                Some(RUNNING) => {}
                Some(SUCCEEDED) => {
                    return Ok(record.get("command_result").cloned().unwrap_or(Value::Null))
                }
                Some(_) => return Err(command_failure(name, &record)),
                None => return Err(format!("The agent's reply to {name} has no command_status")),
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "Timed out after {} seconds waiting for the agent's {name} command",
                    self.command_timeout.as_secs()
                ));
            }
            tokio::time::sleep(self.poll_interval).await;
            let commands = self.commands().await?;
            let id = record.get("id").cloned();
            let latest = commands
                .iter()
                .rev()
                .find(|c| id.is_some() && c.get("id") == id.as_ref())
                .or_else(|| {
                    commands
                        .iter()
                        .rev()
                        .find(|c| c.get("command_name").and_then(Value::as_str) == Some(name))
                })
                .or_else(|| commands.last());
            match latest {
                Some(found) => record = found.clone(),
                None => {
                    return Err(format!(
                        "The agent lost track of the {name} command (empty command list)"
                    ))
                }
            }
        }
    }

    /// Runs `name` synchronously (`wait=true`); the command's result.
    pub async fn run_sync(&self, name: &str, params: Value) -> Result<Value, String> {
        let record = self.send(name, params, true).await?;
        match status_of(&record) {
            Some(SUCCEEDED) => Ok(record.get("command_result").cloned().unwrap_or(Value::Null)),
            Some(RUNNING) => {
                // Some agents answer RUNNING even when asked to wait.
                self.run_poll(name, record).await
            }
            _ => Err(command_failure(name, &record)),
        }
    }

    async fn run_poll(&self, name: &str, record: Value) -> Result<Value, String> {
        let deadline = Instant::now() + self.command_timeout;
        let id = record.get("id").cloned();
        loop {
            if Instant::now() >= deadline {
                return Err(format!("Timed out waiting for the agent's {name} command"));
            }
            tokio::time::sleep(self.poll_interval).await;
            let commands = self.commands().await?;
            let Some(found) = commands
                .iter()
                .rev()
                .find(|c| id.is_some() && c.get("id") == id.as_ref())
            else {
                return Err(format!("The agent lost track of the {name} command"));
            };
            match status_of(found) {
                Some(RUNNING) => continue,
                Some(SUCCEEDED) => {
                    return Ok(found.get("command_result").cloned().unwrap_or(Value::Null))
                }
                _ => return Err(command_failure(name, found)),
            }
        }
    }
}

/// Largest agent reply read (command lists carry every command's result).
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// The reply's JSON body, read up to [`MAX_REPLY_BYTES`]; `Null` when it
/// is larger, cut short or not JSON.
async fn read_json(mut reply: reqwest::Response) -> Value {
    let mut body = Vec::new();
    loop {
        match reply.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_REPLY_BYTES {
                    return Value::Null;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => return Value::Null,
        }
    }
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

fn status_of(record: &Value) -> Option<&str> {
    record.get("command_status").and_then(Value::as_str)
}

/// The agent's message for a failed command (IPA serialises errors as
/// `{type, code, message, details}`).
fn command_failure(name: &str, record: &Value) -> String {
    let error = record.get("command_error").unwrap_or(&Value::Null);
    format!(
        "Agent returned error for {name} command: {}",
        error_text(error)
    )
}

/// The readable part of an IPA error body or command error.
pub fn error_text(error: &Value) -> String {
    match error {
        Value::Null => "unknown error".into(),
        Value::String(text) => text.clone(),
        Value::Object(map) => {
            let message = map.get("message").and_then(Value::as_str);
            let details = map.get("details").and_then(Value::as_str);
            match (message, details) {
                (Some(m), Some(d)) if !d.is_empty() && d != m => format!("{m}: {d}"),
                (Some(m), _) => m.to_string(),
                (None, Some(d)) => d.to_string(),
                (None, None) => error.to_string(),
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_prefers_message_and_details() {
        let error = json!({"type": "ImageWriteError", "code": 500,
            "message": "Error writing image to device", "details": "disk full"});
        assert_eq!(
            error_text(&error),
            "Error writing image to device: disk full"
        );
        assert_eq!(error_text(&json!("plain")), "plain");
        assert_eq!(error_text(&Value::Null), "unknown error");
    }
}
