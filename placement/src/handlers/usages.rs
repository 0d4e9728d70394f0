//! `/resource_providers/{uuid}/usages` and `/usages`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::policy::Target;
use crate::storage::{allocations, providers};
use crate::AppState;

pub async fn for_provider(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:usages")?;
    let uuid = req.param("uuid");
    let provider = providers::get_by_uuid(state.db.conn(), uuid).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "No resource provider with uuid {uuid} found: No resource provider with uuid {uuid} found"
        ))
    })?;
    let inventories = providers::inventories(state.db.conn(), provider.id).await?;
    let used = providers::usages(state.db.conn(), provider.id).await?;
    let usages: Map<String, Value> = inventories
        .iter()
        .map(|i| {
            let amount = used.get(&i.resource_class).copied().unwrap_or(0);
            (i.resource_class.clone(), json!(amount))
        })
        .collect();
    Ok(Reply::json(json!({
        "resource_provider_generation": provider.generation,
        "usages": usages,
    }))
    .modified_now())
}

fn string_param_error(key: &str, value: &str, pattern: Option<&str>) -> Option<String> {
    let shown = crate::schema::py_repr(&Value::String(value.to_string()));
    if value.is_empty() {
        return Some(format!("{shown} should be non-empty"));
    }
    if value.chars().count() > 255 {
        return Some(format!("{shown} is too long"));
    }
    if let Some(pattern) = pattern {
        if !regex::Regex::new(pattern).is_ok_and(|re| re.is_match(value)) {
            return Some(format!("{shown} does not match '{pattern}'"));
        }
    }
    let _ = key;
    None
}

pub async fn totals(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let project_id = req.query_one("project_id");
    let user_id = req.query_one("user_id");
    let mut target = Target::new();
    if let Some(project) = project_id {
        target.insert("project_id", project.to_string());
    }
    state
        .policy
        .authorize("placement:usages", &req.creds, &target)?;
    let with_types = req.version.at_least(38);
    let mut allowed = vec!["project_id", "user_id"];
    if with_types {
        allowed.push("consumer_type");
    }
    req.check_query_keys(&allowed, &[])?;
    let invalid =
        |m: String| ApiError::bad_request(format!("Invalid query string parameters: {m}"));
    let Some(project_id) = project_id else {
        return Err(invalid("'project_id' is a required property".into()));
    };
    for (key, value, pattern) in [
        ("project_id", Some(project_id), None),
        ("user_id", user_id, None),
        (
            "consumer_type",
            req.query_one("consumer_type"),
            Some("^[A-Z0-9_]+$|^all|^unknown$"),
        ),
    ] {
        if let Some(message) = value.and_then(|v| string_param_error(key, v, pattern)) {
            return Err(invalid(message));
        }
    }
    let rows = allocations::project_usages(state.db.conn(), project_id, user_id).await?;
    if !with_types {
        let mut usages: BTreeMap<String, i64> = BTreeMap::new();
        for (_, _, class, used) in rows {
            *usages.entry(class).or_default() += used;
        }
        return Ok(Reply::json(json!({ "usages": usages })).modified_now());
    }
    let wanted = req.query_one("consumer_type");
    // type → (class → used, consumers)
    let mut grouped: BTreeMap<String, (BTreeMap<String, i64>, BTreeSet<String>)> = BTreeMap::new();
    for (type_name, consumer, class, used) in rows {
        let type_name = type_name.unwrap_or_else(|| "unknown".to_string());
        let key = match wanted {
            Some("all") => "all".to_string(),
            Some(w) if w != type_name => continue,
            _ => type_name,
        };
        let entry = grouped.entry(key).or_default();
        *entry.0.entry(class).or_default() += used;
        entry.1.insert(consumer);
    }
    let usages: Map<String, Value> = grouped
        .into_iter()
        .map(|(key, (classes, consumers))| {
            let mut body: Map<String, Value> =
                classes.into_iter().map(|(c, u)| (c, json!(u))).collect();
            body.insert("consumer_count".into(), json!(consumers.len()));
            (key, Value::Object(body))
        })
        .collect();
    Ok(Reply::json(json!({ "usages": usages })).modified_now())
}
