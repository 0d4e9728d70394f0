//! The agent's side of the Bare Metal API: version discovery, lookup and
//! heartbeat, with ironic-python-agent's retry and jitter rules.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};

use crate::cmdline::BootParams;

/// The oldest API version the agent speaks; used when discovery fails.
pub const MIN_VERSION: (u32, u32) = (1, 31);
/// `agent_version` in heartbeats.
pub const AGENT_VERSION_VERSION: (u32, u32) = (1, 36);
/// Agent tokens in lookup and heartbeat.
pub const AGENT_TOKEN_VERSION: (u32, u32) = (1, 62);
/// `agent_verify_ca` in heartbeats; the newest version the agent asks for.
pub const MAX_KNOWN_VERSION: (u32, u32) = (1, 68);

pub enum Lookup {
    /// The reply: `{"node": {...}, "config": {...}}`.
    Found(Value),
    /// 409: the node is locked.
    Conflict(String),
    /// Anything else worth another attempt.
    Retry(String),
}

pub enum HeartbeatError {
    Conflict(String),
    Other(String),
}

impl std::fmt::Display for HeartbeatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeartbeatError::Conflict(m) | HeartbeatError::Other(m) => f.write_str(m),
        }
    }
}

pub struct IronicClient {
    http: reqwest::Client,
    urls: Vec<String>,
    request_id: Option<String>,
    fixed_version: Option<(u32, u32)>,
    discovered: Mutex<Option<(u32, u32)>>,
}

fn header_value(version: (u32, u32)) -> String {
    format!("{}.{}", version.0, version.1)
}

/// "Error <status>: <faultstring>" from an API error reply (the Bare
/// Metal API nests a JSON document in `error_message`).
async fn error_from_response(response: reqwest::Response) -> String {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .map(|body| {
            let inner = body.get("error_message").cloned().unwrap_or(body);
            match inner {
                Value::String(s) => serde_json::from_str::<Value>(&s).unwrap_or(Value::Null),
                other => other,
            }
        })
        .and_then(|body| {
            body.get("faultstring")
                .or_else(|| body.get("title"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or(text);
    format!("Error {status}: {detail}")
}

impl IronicClient {
    pub fn new(boot: &BootParams) -> Result<IronicClient, String> {
        let http = reqwest::Client::builder()
            .timeout(boot.http_request_timeout)
            .danger_accept_invalid_certs(boot.insecure)
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(IronicClient {
            http,
            urls: boot.api_urls.clone(),
            request_id: boot.global_request_id.clone(),
            fixed_version: boot.ironic_api_version,
            discovered: Mutex::new(None),
        })
    }

    /// Sends the request to each API URL in turn until one answers.
    async fn send(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        let mut last = String::from("no ipa-api-url configured");
        for url in &self.urls {
            let mut request = build(url)
                .header("Accept", "application/json")
                .header("Content-Type", "application/json");
            if let Some(id) = &self.request_id {
                request = request.header("X-OpenStack-Request-ID", id);
            }
            match request.send().await {
                Ok(response) => return Ok(response),
                Err(err) => last = format!("{url}: {err}"),
            }
        }
        Err(last)
    }

    /// The API's default (= newest) version: from the kernel command line,
    /// else discovered at `GET /` (remembered once known), else 1.31.
    pub async fn api_version(&self) -> (u32, u32) {
        if let Some(version) = self.fixed_version {
            return version;
        }
        if let Some(version) = self.discovered.lock().ok().and_then(|v| *v) {
            return version;
        }
        let found = async {
            let response = self
                .send(|url| self.http.get(format!("{url}/")))
                .await
                .ok()?;
            let body: Value = response.json().await.ok()?;
            let text = body.pointer("/default_version/version")?.as_str()?;
            let (major, minor) = text.split_once('.')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        }
        .await;
        match found {
            Some(version) => {
                if let Ok(mut slot) = self.discovered.lock() {
                    *slot = Some(version);
                }
                version
            }
            None => {
                tracing::warn!("cannot discover the Bare Metal API version, using 1.31");
                MIN_VERSION
            }
        }
    }

    /// `GET /v1/lookup?addresses=…[&node_uuid=…]`.
    pub async fn lookup(&self, addresses: &str, node_uuid: Option<&str>) -> Lookup {
        let version = self.api_version().await.min(AGENT_TOKEN_VERSION);
        let mut query = vec![("addresses", addresses.to_string())];
        if let Some(uuid) = node_uuid {
            query.push(("node_uuid", uuid.to_string()));
        }
        let response = match self
            .send(|url| {
                self.http
                    .get(format!("{url}/v1/lookup"))
                    .query(&query)
                    .header("X-OpenStack-Ironic-API-Version", header_value(version))
            })
            .await
        {
            Ok(response) => response,
            Err(err) => return Lookup::Retry(format!("lookup failed: {err}")),
        };
        let status = response.status().as_u16();
        if status == 409 {
            return Lookup::Conflict(error_from_response(response).await);
        }
        if status != 200 {
            return Lookup::Retry(format!(
                "lookup of {addresses} failed: {}",
                error_from_response(response).await
            ));
        }
        let mut content: Value = match response.json().await {
            Ok(content) => content,
            Err(err) => return Lookup::Retry(format!("lookup reply is not JSON: {err}")),
        };
        if content
            .pointer("/node/uuid")
            .and_then(Value::as_str)
            .is_none()
        {
            return Lookup::Retry(format!("lookup reply has no node UUID: {content}"));
        }
        if content.get("config").is_none() {
            // Old APIs put heartbeat_timeout at the top level.
            match content
                .as_object_mut()
                .and_then(|c| c.remove("heartbeat_timeout"))
            {
                Some(timeout) => {
                    if let Some(map) = content.as_object_mut() {
                        map.insert("config".into(), json!({ "heartbeat_timeout": timeout }));
                    }
                }
                None => {
                    return Lookup::Retry(format!(
                        "lookup reply has no heartbeat_timeout: {content}"
                    ))
                }
            }
        }
        Lookup::Found(content)
    }

    /// `POST /v1/heartbeat/{uuid}`; 202 is success.
    pub async fn heartbeat(
        &self,
        uuid: &str,
        callback_url: &str,
        token: Option<&str>,
    ) -> Result<(), HeartbeatError> {
        let version = self.api_version().await;
        let mut body = serde_json::Map::new();
        body.insert("callback_url".into(), json!(callback_url));
        if version >= AGENT_TOKEN_VERSION {
            body.insert("agent_token".into(), json!(token));
        }
        if version >= AGENT_VERSION_VERSION {
            body.insert("agent_version".into(), json!(crate::AGENT_VERSION));
        }
        let header = header_value(version.min(MAX_KNOWN_VERSION));
        let body = Value::Object(body);
        let response = self
            .send(|url| {
                self.http
                    .post(format!("{url}/v1/heartbeat/{uuid}"))
                    .header("X-OpenStack-Ironic-API-Version", header.as_str())
                    .json(&body)
            })
            .await
            .map_err(|err| HeartbeatError::Other(format!("heartbeat failed: {err}")))?;
        match response.status().as_u16() {
            202 => Ok(()),
            409 => Err(HeartbeatError::Conflict(
                error_from_response(response).await,
            )),
            _ => Err(HeartbeatError::Other(error_from_response(response).await)),
        }
    }
}

/// `value × U(low, high)`.
pub fn jitter(value: Duration, low: f64, high: f64) -> Duration {
    value.mul_f64(rand::thread_rng().gen_range(low..=high))
}

/// The wait before lookup attempt `attempt + 1` (random exponential
/// between `start` and `max`, as upstream's retry policy).
pub fn lookup_wait(start: Duration, max: Duration, attempt: u32) -> Duration {
    let high = start
        .saturating_mul(1u32 << attempt.min(16))
        .clamp(start, max.max(start));
    if high <= start {
        return start;
    }
    let secs = rand::thread_rng().gen_range(start.as_secs_f64()..=high.as_secs_f64());
    Duration::from_secs_f64(secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lookup_waits_grow_and_stay_bounded() {
        let start = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 0..30 {
            let wait = lookup_wait(start, max, attempt);
            assert!(wait >= start && wait <= max, "{wait:?}");
        }
        assert_eq!(lookup_wait(start, max, 0), start);
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(10), 0.3, 0.6);
            assert!(j >= Duration::from_secs(3) && j <= Duration::from_secs(6));
        }
    }
}
