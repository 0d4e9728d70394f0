//! A typed Bare Metal API client, shared by other Ferrite services (the virt
//! driver, the fleet) and by tests. It speaks the wire protocol only.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A failed call, with the decoded Ironic `faultstring`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("HTTP transport error: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("bare metal API answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("timed out waiting for node {node} to reach {wanted} (last: {last})")]
    Timeout {
        node: String,
        wanted: String,
        last: String,
    },
    #[error("node {node} failed: provision state {state}, last_error {last_error}")]
    Failed {
        node: String,
        state: String,
        last_error: String,
    },
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Extracts the message of an Ironic error body.
pub fn fault_string(body: &Value) -> String {
    body.get("error_message")
        .and_then(Value::as_str)
        .and_then(|inner| serde_json::from_str::<Value>(inner).ok())
        .and_then(|inner| {
            inner
                .get("faultstring")
                .or_else(|| inner.get("description"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.to_string())
}

#[derive(Clone)]
pub struct BaremetalClient {
    http: reqwest::Client,
    base: String,
    version: String,
}

/// A raw response: status and JSON body (Null when empty).
#[derive(Debug, Clone)]
pub struct Raw {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl BaremetalClient {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:6385`) using
    /// microversion `version` (e.g. "1.82" or "latest").
    pub fn new(base: impl Into<String>, version: impl Into<String>) -> BaremetalClient {
        BaremetalClient {
            http: reqwest::Client::new(),
            base: base.into().trim_end_matches('/').to_string(),
            version: version.into(),
        }
    }

    pub fn with_version(&self, version: impl Into<String>) -> BaremetalClient {
        BaremetalClient {
            http: self.http.clone(),
            base: self.base.clone(),
            version: version.into(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request and returns whatever came back.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Raw, ClientError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-OpenStack-Ironic-API-Version", &self.version);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Raw {
            status,
            body,
            headers,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let raw = self.raw(method, path, body).await?;
        if raw.status >= 400 {
            return Err(ClientError::Api {
                status: raw.status,
                message: fault_string(&raw.body),
            });
        }
        Ok(raw.body)
    }

    pub async fn create_node(&self, body: &Value) -> Result<Value, ClientError> {
        self.call(reqwest::Method::POST, "/v1/nodes", Some(body))
            .await
    }

    pub async fn get_node(&self, ident: &str) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, &format!("/v1/nodes/{ident}"), None)
            .await
    }

    pub async fn list_nodes(&self, query: &str) -> Result<Vec<Value>, ClientError> {
        let body = self
            .call(reqwest::Method::GET, &format!("/v1/nodes{query}"), None)
            .await?;
        Ok(body
            .get("nodes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// JSON-Patch a node.
    pub async fn patch_node(&self, ident: &str, ops: &Value) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::PATCH,
            &format!("/v1/nodes/{ident}"),
            Some(ops),
        )
        .await
    }

    pub async fn delete_node(&self, ident: &str) -> Result<(), ClientError> {
        self.call(reqwest::Method::DELETE, &format!("/v1/nodes/{ident}"), None)
            .await
            .map(|_| ())
    }

    /// Requests a provision target (`manage`, `provide`, `active`, …).
    pub async fn set_provision_state(
        &self,
        ident: &str,
        target: &str,
        extra: Option<&Value>,
    ) -> Result<(), ClientError> {
        let mut body = json!({ "target": target });
        if let (Some(Value::Object(extra)), Some(map)) = (extra, body.as_object_mut()) {
            map.extend(extra.clone());
        }
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/nodes/{ident}/states/provision"),
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    pub async fn set_power_state(&self, ident: &str, target: &str) -> Result<(), ClientError> {
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/nodes/{ident}/states/power"),
            Some(&json!({ "target": target })),
        )
        .await
        .map(|_| ())
    }

    pub async fn attach_vif(&self, ident: &str, vif: &str) -> Result<(), ClientError> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/nodes/{ident}/vifs"),
            Some(&json!({ "id": vif })),
        )
        .await
        .map(|_| ())
    }

    pub async fn detach_vif(&self, ident: &str, vif: &str) -> Result<(), ClientError> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/nodes/{ident}/vifs/{vif}"),
            None,
        )
        .await
        .map(|_| ())
    }

    pub async fn list_vifs(&self, ident: &str) -> Result<Vec<String>, ClientError> {
        let body = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/nodes/{ident}/vifs"),
                None,
            )
            .await?;
        Ok(body
            .get("vifs")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn create_port(&self, body: &Value) -> Result<Value, ClientError> {
        self.call(reqwest::Method::POST, "/v1/ports", Some(body))
            .await
    }

    /// Polls until the node rests in `wanted` with no target; a failure
    /// state or `timeout` ends the wait with an error.
    pub async fn wait_for_provision_state(
        &self,
        ident: &str,
        wanted: &str,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let start = Instant::now();
        loop {
            let node = self.get_node(ident).await?;
            let state = node
                .get("provision_state")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let target_cleared = node
                .get("target_provision_state")
                .is_none_or(Value::is_null);
            if state == wanted && target_cleared {
                return Ok(node);
            }
            if state.ends_with("failed") || state == "error" {
                return Err(ClientError::Failed {
                    node: ident.to_string(),
                    state,
                    last_error: node
                        .get("last_error")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                });
            }
            if start.elapsed() > timeout {
                return Err(ClientError::Timeout {
                    node: ident.to_string(),
                    wanted: wanted.to_string(),
                    last: state,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until the node's power state is `wanted` and no change is pending.
    pub async fn wait_for_power_state(
        &self,
        ident: &str,
        wanted: &str,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let start = Instant::now();
        loop {
            let node = self.get_node(ident).await?;
            let state = node
                .get("power_state")
                .and_then(Value::as_str)
                .unwrap_or("");
            if state == wanted && node.get("target_power_state").is_none_or(Value::is_null) {
                return Ok(node);
            }
            if start.elapsed() > timeout {
                return Err(ClientError::Timeout {
                    node: ident.to_string(),
                    wanted: wanted.to_string(),
                    last: state.to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    /// One page of a node list: the nodes and the `next` link, if any.
    /// `path_and_query` starts with `/v1/nodes`.
    pub async fn list_nodes_page(
        &self,
        path_and_query: &str,
    ) -> Result<(Vec<Value>, Option<String>), ClientError> {
        let body = self
            .call(reqwest::Method::GET, path_and_query, None)
            .await?;
        let nodes = body
            .get("nodes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let next = body.get("next").and_then(Value::as_str).map(str::to_string);
        Ok((nodes, next))
    }

    /// `GET /v1/nodes/{ident}/validate`: per interface `result` and `reason`.
    pub async fn validate_node(&self, ident: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/nodes/{ident}/validate"),
            None,
        )
        .await
    }

    /// The API's version document (`GET /`): the supported microversion
    /// range as `(min, max)`, e.g. `("1.1", "1.115")`.
    pub async fn version_range(&self) -> Result<(String, String), ClientError> {
        let body = self.call(reqwest::Method::GET, "/", None).await?;
        let default = body.get("default_version").cloned().unwrap_or(Value::Null);
        let field = |name: &str| {
            default
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Ok((field("min_version"), field("version")))
    }
}
