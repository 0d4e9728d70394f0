//! `/resource_providers/{uuid}/usages` and `/usages`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::policy::Target;
use crate::schema;
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
    let mut params = vec![
        ("project_id", schema::query_id()),
        ("user_id", schema::query_id()),
    ];
    if with_types {
        let mut consumer_type = schema::query_id();
        consumer_type["pattern"] = json!("^[A-Z0-9_]+$|^all|^unknown$");
        params.push(("consumer_type", consumer_type));
    }
    req.validate_query(&schema::query(&params, &["project_id"]))?;
    let project_id = project_id.unwrap_or_default();
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
