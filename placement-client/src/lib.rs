//! A typed Placement HTTP client, shared by other Ferrite services (the virt
//! driver, the scheduler) and by tests.
//!
//! It speaks the wire protocol only; nothing here touches the database.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A response that was not a success, with the decoded Placement error.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("HTTP transport error: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("unexpected response body: {0}")]
    Decode(String),
    #[error("placement answered {status}: {code} {detail}")]
    Api {
        status: u16,
        code: String,
        detail: String,
    },
}

/// Decodes a successful response body into its typed form.
fn decode_as<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ClientError> {
    serde_json::from_value(value).map_err(|e| ClientError::Decode(e.to_string()))
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Transport(_) | ClientError::Decode(_) => None,
        }
    }
    /// A lost race (generation conflict): the caller may re-read and retry.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ResourceProvider {
    pub uuid: String,
    pub name: String,
    pub generation: i64,
    #[serde(default)]
    pub parent_provider_uuid: Option<String>,
    #[serde(default)]
    pub root_provider_uuid: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InventoryRecord {
    pub total: i64,
    #[serde(default)]
    pub reserved: i64,
    #[serde(default = "one")]
    pub min_unit: i64,
    #[serde(default = "max_int")]
    pub max_unit: i64,
    #[serde(default = "one")]
    pub step_size: i64,
    #[serde(default = "ratio_one")]
    pub allocation_ratio: f64,
}

fn one() -> i64 {
    1
}
fn max_int() -> i64 {
    2_147_483_647
}
fn ratio_one() -> f64 {
    1.0
}

impl InventoryRecord {
    pub fn total(total: i64) -> Self {
        InventoryRecord {
            total,
            reserved: 0,
            min_unit: 1,
            max_unit: max_int(),
            step_size: 1,
            allocation_ratio: 1.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Usages {
    pub resource_provider_generation: i64,
    pub usages: BTreeMap<String, i64>,
}

/// Client for one Placement endpoint, with a fixed token and microversion.
#[derive(Clone)]
pub struct PlacementClient {
    http: reqwest::Client,
    base: String,
    token: String,
    version: String,
}

impl PlacementClient {
    /// `base` like `http://127.0.0.1:8778`; `token` as noauth2 takes it.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Self {
        PlacementClient {
            http: reqwest::Client::new(),
            base: base.into().trim_end_matches('/').to_string(),
            token: token.into(),
            version: "1.39".to_string(),
        }
    }

    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.to_string();
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request builder with auth and version headers set.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .header("x-auth-token", &self.token)
            .header(
                "openstack-api-version",
                format!("placement {}", self.version),
            )
            .header("accept", "application/json")
    }

    async fn decode(response: reqwest::Response) -> Result<Value, ClientError> {
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 400 {
            let error = &body["errors"][0];
            return Err(ClientError::Api {
                status,
                code: error["code"].as_str().unwrap_or_default().to_string(),
                detail: error["detail"].as_str().unwrap_or(&text).to_string(),
            });
        }
        Ok(body)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let mut builder = self.request(method, path);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        Self::decode(builder.send().await?).await
    }

    pub async fn create_provider(
        &self,
        uuid: &str,
        name: &str,
        parent: Option<&str>,
    ) -> Result<ResourceProvider, ClientError> {
        let mut body = json!({"uuid": uuid, "name": name});
        if let Some(parent) = parent {
            body["parent_provider_uuid"] = json!(parent);
        }
        let value = self
            .send(reqwest::Method::POST, "/resource_providers", Some(body))
            .await?;
        decode_as(value)
    }

    /// Ensures a custom resource class exists (idempotent `PUT`).
    pub async fn ensure_resource_class(&self, name: &str) -> Result<(), ClientError> {
        self.send(
            reqwest::Method::PUT,
            &format!("/resource_classes/{name}"),
            None,
        )
        .await?;
        Ok(())
    }

    /// Ensures a custom trait exists (idempotent `PUT`).
    pub async fn ensure_trait(&self, name: &str) -> Result<(), ClientError> {
        self.send(reqwest::Method::PUT, &format!("/traits/{name}"), None)
            .await?;
        Ok(())
    }

    pub async fn get_provider(&self, uuid: &str) -> Result<ResourceProvider, ClientError> {
        let value = self
            .send(
                reqwest::Method::GET,
                &format!("/resource_providers/{uuid}"),
                None,
            )
            .await?;
        decode_as(value)
    }

    /// Replaces all inventories; returns the new provider generation.
    pub async fn set_inventories(
        &self,
        uuid: &str,
        generation: i64,
        inventories: &BTreeMap<String, InventoryRecord>,
    ) -> Result<i64, ClientError> {
        let body = json!({"resource_provider_generation": generation, "inventories": inventories});
        let value = self
            .send(
                reqwest::Method::PUT,
                &format!("/resource_providers/{uuid}/inventories"),
                Some(body),
            )
            .await?;
        Ok(value["resource_provider_generation"]
            .as_i64()
            .unwrap_or_default())
    }

    /// Replaces a provider's traits; returns the new provider generation.
    pub async fn set_traits(
        &self,
        uuid: &str,
        generation: i64,
        traits: &[&str],
    ) -> Result<i64, ClientError> {
        let body = json!({"resource_provider_generation": generation, "traits": traits});
        let value = self
            .send(
                reqwest::Method::PUT,
                &format!("/resource_providers/{uuid}/traits"),
                Some(body),
            )
            .await?;
        Ok(value["resource_provider_generation"]
            .as_i64()
            .unwrap_or_default())
    }

    /// Claims resources for a consumer (`consumer_generation` None: a new
    /// consumer). A 409 means someone else won or the consumer changed.
    pub async fn put_allocations(
        &self,
        consumer: &str,
        allocations: &BTreeMap<String, BTreeMap<String, i64>>,
        project_id: &str,
        user_id: &str,
        consumer_generation: Option<i64>,
    ) -> Result<(), ClientError> {
        let allocations: BTreeMap<&String, Value> = allocations
            .iter()
            .map(|(rp, resources)| (rp, json!({ "resources": resources })))
            .collect();
        let body = json!({
            "allocations": allocations,
            "project_id": project_id,
            "user_id": user_id,
            "consumer_generation": consumer_generation,
            "consumer_type": "INSTANCE",
        });
        self.send(
            reqwest::Method::PUT,
            &format!("/allocations/{consumer}"),
            Some(body),
        )
        .await?;
        Ok(())
    }

    pub async fn get_allocations(&self, consumer: &str) -> Result<Value, ClientError> {
        self.send(
            reqwest::Method::GET,
            &format!("/allocations/{consumer}"),
            None,
        )
        .await
    }

    pub async fn delete_allocations(&self, consumer: &str) -> Result<(), ClientError> {
        self.send(
            reqwest::Method::DELETE,
            &format!("/allocations/{consumer}"),
            None,
        )
        .await?;
        Ok(())
    }

    pub async fn provider_usages(&self, uuid: &str) -> Result<Usages, ClientError> {
        let value = self
            .send(
                reqwest::Method::GET,
                &format!("/resource_providers/{uuid}/usages"),
                None,
            )
            .await?;
        decode_as(value)
    }
    /// Lists providers; `query` is a query string without `?` (e.g.
    /// `required=COMPUTE_NODE`), empty for all.
    pub async fn list_providers(&self, query: &str) -> Result<Vec<ResourceProvider>, ClientError> {
        let path = if query.is_empty() {
            "/resource_providers".to_string()
        } else {
            format!("/resource_providers?{query}")
        };
        let value = self.send(reqwest::Method::GET, &path, None).await?;
        decode_as(value["resource_providers"].clone())
    }

    /// A provider's inventories and its generation.
    pub async fn get_inventories(
        &self,
        uuid: &str,
    ) -> Result<(i64, BTreeMap<String, InventoryRecord>), ClientError> {
        let value = self
            .send(
                reqwest::Method::GET,
                &format!("/resource_providers/{uuid}/inventories"),
                None,
            )
            .await?;
        let generation = value["resource_provider_generation"]
            .as_i64()
            .unwrap_or_default();
        Ok((generation, decode_as(value["inventories"].clone())?))
    }

    /// A provider's traits and its generation.
    pub async fn get_traits(&self, uuid: &str) -> Result<(i64, Vec<String>), ClientError> {
        let value = self
            .send(
                reqwest::Method::GET,
                &format!("/resource_providers/{uuid}/traits"),
                None,
            )
            .await?;
        let generation = value["resource_provider_generation"]
            .as_i64()
            .unwrap_or_default();
        Ok((generation, decode_as(value["traits"].clone())?))
    }

    pub async fn delete_provider(&self, uuid: &str) -> Result<(), ClientError> {
        self.send(
            reqwest::Method::DELETE,
            &format!("/resource_providers/{uuid}"),
            None,
        )
        .await?;
        Ok(())
    }
}
