//! TEMPORARY STUB (replaced by the real API model).
use ferrite_conductor_states::ApiVersion;
use serde_json::{Map, Value};
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ModelError {
    pub message: String,
    pub status: u16,
}
impl ModelError {
    pub fn status(&self) -> u16 {
        self.status
    }
}
pub type Doc = Map<String, Value>;
pub fn node_view(full: &Doc, _v: ApiVersion, _f: Option<&[String]>, _b: &str) -> Doc {
    full.clone()
}
pub fn node_list_item(full: &Doc, _v: ApiVersion, _b: &str) -> Doc {
    full.clone()
}
pub fn port_view(full: &Doc, _v: ApiVersion, _f: Option<&[String]>, _b: &str) -> Doc {
    full.clone()
}
pub fn port_list_item(full: &Doc, _v: ApiVersion, _b: &str) -> Doc {
    full.clone()
}
pub fn check_fields_param(
    fields: &str,
    _v: ApiVersion,
    _r: &str,
) -> Result<Vec<String>, ModelError> {
    Ok(fields.split(',').map(str::to_string).collect())
}
pub fn apply_node_patch(full: &Doc, _p: &Value, _v: ApiVersion) -> Result<Doc, ModelError> {
    Ok(full.clone())
}
pub fn apply_port_patch(full: &Doc, _p: &Value, _v: ApiVersion) -> Result<Doc, ModelError> {
    Ok(full.clone())
}
pub fn validate_node_create(body: &Value, _v: ApiVersion) -> Result<Doc, ModelError> {
    Ok(body.as_object().cloned().unwrap_or_default())
}
pub fn validate_port_create(body: &Value, _v: ApiVersion) -> Result<Doc, ModelError> {
    Ok(body.as_object().cloned().unwrap_or_default())
}
pub fn changed_fields(before: &Doc, after: &Doc) -> Vec<String> {
    after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect()
}
