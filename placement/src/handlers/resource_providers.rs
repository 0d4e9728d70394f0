//! `/resource_providers` and `/resource_providers/{uuid}`.

use std::collections::BTreeSet;

use ferrite_resource_classes::{parse_member_of, parse_required, parse_resources};
use serde_json::{json, Value};

use crate::error::{codes, ApiError, ApiResult};
use crate::handlers::provider_or_404;
use crate::http::{Reply, Req};
use crate::microversion::Version;
use crate::schema;
use crate::storage::providers::{self, Provider, ProviderFilter};
use crate::storage::{is_unique_violation, resource_classes, traits};
use crate::AppState;

pub fn render(provider: &Provider, version: Version) -> Value {
    let url = format!("/resource_providers/{}", provider.uuid);
    let mut links = vec![json!({"rel": "self", "href": url})];
    let mut relations = vec!["inventories", "usages"];
    if version.at_least(1) {
        relations.push("aggregates");
    }
    if version.at_least(6) {
        relations.push("traits");
    }
    if version.at_least(11) {
        relations.push("allocations");
    }
    for rel in relations {
        links.push(json!({"rel": rel, "href": format!("{url}/{rel}")}));
    }
    let mut body = json!({
        "uuid": provider.uuid,
        "name": provider.name,
        "generation": provider.generation,
        "links": links,
    });
    if version.at_least(14) {
        body["parent_provider_uuid"] = json!(provider.parent_uuid);
        body["root_provider_uuid"] = json!(provider.root_uuid);
    }
    body
}

/// Canonical (lower-case, hyphenated) form of a UUID the schema accepted.
fn canonical_uuid(text: &str) -> String {
    uuid::Uuid::parse_str(text).map_or_else(|_| text.to_string(), |u| u.to_string())
}

fn query_error(err: ferrite_resource_classes::ParseError) -> ApiError {
    let code = err.code();
    ApiError::bad_request(err.to_string()).with_code(code)
}

pub async fn list(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:list")?;
    let v = req.version;
    let mut params = vec![
        ("name", schema::query_string()),
        ("uuid", schema::query_uuid()),
    ];
    if v.at_least(3) {
        params.push(("member_of", schema::query_string()));
    }
    if v.at_least(4) {
        params.push(("resources", schema::query_string()));
    }
    if v.at_least(14) {
        params.push(("in_tree", schema::query_uuid()));
    }
    if v.at_least(18) {
        params.push(("required", schema::query_string()));
    }
    req.validate_query(&schema::query(&params, &[]))?;
    let mut filter = ProviderFilter {
        uuid: req.query_one("uuid").map(canonical_uuid),
        name: req.query_one("name").map(str::to_string),
        ..ProviderFilter::default()
    };
    // Upstream's order: a missing in_tree provider means no result before
    // any trait or class name is looked at.
    if let Some(tree) = req.query_one("in_tree") {
        match providers::get_by_uuid(state.db.conn(), &canonical_uuid(tree)).await? {
            Some(p) => filter.in_tree_root = Some(p.root_id),
            None => return Ok(Reply::json(json!({"resource_providers": []})).modified_now()),
        }
    }
    let member_of: Vec<String> = req
        .query_all("member_of")
        .into_iter()
        .map(str::to_string)
        .collect();
    if !member_of.is_empty() {
        let (any_of, forbidden) =
            parse_member_of(&member_of, v.at_least(24), v.at_least(32)).map_err(query_error)?;
        filter.member_of = any_of;
        filter.forbidden_aggregates = forbidden;
    }
    let mut required: Vec<String> = req
        .query_all("required")
        .into_iter()
        .map(str::to_string)
        .collect();
    if !required.is_empty() {
        if !v.at_least(39) {
            required = required.split_off(required.len() - 1);
        }
        let (all_of, forbidden, any_of) =
            parse_required(&required, v.at_least(22), v.at_least(39)).map_err(query_error)?;
        let mut names: BTreeSet<String> = all_of.iter().cloned().collect();
        names.extend(forbidden.iter().cloned());
        for set in &any_of {
            names.extend(set.iter().cloned());
        }
        let ids = traits::ids_by_name(state.db.conn(), &names).await?;
        let missing: Vec<&str> = names
            .iter()
            .filter(|n| !ids.contains_key(*n))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Invalid trait(s) in \"required\" parameter: No such trait(s): {}.",
                missing.join(", ")
            )));
        }
        let id = |n: &String| ids.get(n).copied().unwrap_or_default();
        filter.required_traits = all_of.iter().map(|n| vec![id(n)]).collect();
        filter
            .required_traits
            .extend(any_of.iter().map(|set| set.iter().map(id).collect()));
        filter.forbidden_traits = forbidden.iter().map(id).collect();
    }
    if let Some(resources) = req.query_one("resources") {
        let wanted = parse_resources(resources).map_err(query_error)?;
        let names: Vec<String> = wanted.keys().cloned().collect();
        let ids = resource_classes::ids_by_name(state.db.conn(), &names).await?;
        for (name, amount) in wanted {
            let Some(id) = ids.get(&name) else {
                // Upstream resolves the classes last, after it has already
                // answered "nothing" when no provider has the required
                // traits or is in the member_of aggregates.
                if matches_nothing_before_classes(state, &filter).await? {
                    return Ok(Reply::json(json!({"resource_providers": []})).modified_now());
                }
                return Err(ApiError::bad_request(format!(
                    "Invalid resource class in resources parameter: No such resource class {name}."
                )));
            };
            filter
                .resources
                .insert(*id, i64::try_from(amount).unwrap_or(i64::MAX));
        }
    }
    let found = providers::list(state.db.conn(), &filter).await?;
    let modified = found.iter().map(Provider::modified).max();
    let body: Vec<Value> = found.iter().map(|p| render(p, v)).collect();
    let reply = Reply::json(json!({ "resource_providers": body }));
    Ok(match modified {
        Some(m) => reply.modified(m),
        None => reply.modified_now(),
    })
}

/// True when upstream's provider search stops with no result before it
/// resolves resource class names: no provider has every required trait, or
/// none is in the `member_of` aggregates.
async fn matches_nothing_before_classes(
    state: &AppState,
    filter: &ProviderFilter,
) -> ApiResult<bool> {
    if !filter.required_traits.is_empty() {
        let traits_only = ProviderFilter {
            required_traits: filter.required_traits.clone(),
            ..ProviderFilter::default()
        };
        if providers::list(state.db.conn(), &traits_only)
            .await?
            .is_empty()
        {
            return Ok(true);
        }
    }
    if !filter.member_of.is_empty() {
        let aggregates_only = ProviderFilter {
            member_of: filter.member_of.clone(),
            ..ProviderFilter::default()
        };
        if providers::list(state.db.conn(), &aggregates_only)
            .await?
            .is_empty()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

pub async fn show(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:show")?;
    let provider = provider_or_404(state, req).await?;
    Ok(Reply::json(render(&provider, req.version)).modified(provider.modified()))
}

pub async fn create(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.require_json()?;
    req.authorize(state, "placement:resource_providers:create")?;
    let nested = req.version.at_least(14);
    let body = req.json_body(&schema::provider_create(nested))?;
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let uuid = body["uuid"]
        .as_str()
        .map(canonical_uuid)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let parent_uuid = body
        .get("parent_provider_uuid")
        .and_then(Value::as_str)
        .map(canonical_uuid);
    let failed = |reason: &str| {
        ApiError::bad_request(format!(
            "Unable to create resource provider \"{name}\", {uuid}: Object action create failed because: {reason}"
        ))
    };
    let duplicate = |what: String| {
        ApiError::conflict(format!(
            "Conflicting resource provider {what} already exists."
        ))
        .with_code(codes::DUPLICATE_NAME)
    };
    let tx = state.db.begin_write().await?;
    let parent = match &parent_uuid {
        Some(p) if *p == uuid => {
            return Err(failed(
                "parent provider UUID cannot be same as UUID. Please set parent provider UUID to None if there is no parent.",
            ))
        }
        Some(p) => match providers::get_by_uuid(&*tx, p).await? {
            Some(parent) => Some((parent.id, parent.root_id)),
            None => return Err(failed("parent provider UUID does not exist.")),
        },
        None => None,
    };
    if providers::get_by_uuid(&*tx, &uuid).await?.is_some() {
        return Err(duplicate(format!("uuid: {uuid}")));
    }
    if providers::name_taken(&*tx, &name, -1).await? {
        return Err(duplicate(format!("name: {name}")));
    }
    match providers::insert(&*tx, &uuid, &name, parent).await {
        Ok(_) => {}
        Err(err) if is_unique_violation(&err) => return Err(duplicate(format!("name: {name}"))),
        Err(err) => return Err(err.into()),
    }
    let created = providers::get_by_uuid(&*tx, &uuid)
        .await?
        .ok_or_else(ApiError::internal)?;
    match tx.commit().await {
        Ok(()) => {}
        Err(err) if is_unique_violation(&err) => return Err(duplicate(format!("name: {name}"))),
        Err(err) => return Err(err.into()),
    }
    let location = req.absolute(&format!("/resource_providers/{uuid}"));
    if req.version.at_least(20) {
        Ok(Reply::json(render(&created, req.version))
            .header("location", location)
            .modified(created.modified()))
    } else {
        Ok(Reply::empty(201).header("location", location))
    }
}

pub async fn update(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.require_json()?;
    req.authorize(state, "placement:resource_providers:update")?;
    let provider = provider_or_404(state, req).await?;
    let nested = req.version.at_least(14);
    let body = req.json_body(&schema::provider_update(nested))?;
    let name = body["name"].as_str().unwrap_or_default().to_string();
    let uuid = provider.uuid.clone();
    let failed = |action: &str, reason: &str| {
        ApiError::bad_request(format!(
            "Unable to save resource provider {uuid}: Object action {action} failed because: {reason}"
        ))
    };
    let allow_reparenting = req.version.at_least(37);
    let tx = state.db.begin_write().await?;
    let mut parent_id = provider.parent_id;
    let mut root_id = provider.root_id;
    let mut subtree = Vec::new();
    if let Some(new_parent) = body.get("parent_provider_uuid") {
        match new_parent.as_str().map(canonical_uuid) {
            Some(parent_uuid) => {
                let Some(parent) = providers::get_by_uuid(&*tx, &parent_uuid).await? else {
                    return Err(failed("create", "parent provider UUID does not exist."));
                };
                if provider.parent_id.is_some()
                    && provider.parent_id != Some(parent.id)
                    && !allow_reparenting
                {
                    return Err(failed(
                        "update",
                        "re-parenting a provider is not currently allowed.",
                    ));
                }
                subtree = providers::subtree_ids(&*tx, provider.id, provider.root_id).await?;
                if subtree.contains(&parent.id) {
                    return Err(failed(
                        "update",
                        "creating loop in the provider tree is not allowed.",
                    ));
                }
                parent_id = Some(parent.id);
                root_id = parent.root_id;
            }
            None => {
                if provider.parent_id.is_some() {
                    if !allow_reparenting {
                        return Err(failed(
                            "update",
                            "un-parenting a provider is not currently allowed.",
                        ));
                    }
                    subtree = providers::subtree_ids(&*tx, provider.id, provider.root_id).await?;
                    parent_id = None;
                    root_id = provider.id;
                }
            }
        }
    }
    let duplicate = || {
        ApiError::conflict(format!(
            "Conflicting resource provider {name} already exists."
        ))
        .with_code(codes::DUPLICATE_NAME)
    };
    if providers::name_taken(&*tx, &name, provider.id).await? {
        return Err(duplicate());
    }
    if root_id == provider.root_id {
        subtree.clear();
    }
    match providers::update(&*tx, provider.id, &name, parent_id, root_id, &subtree).await {
        Ok(_) => {}
        Err(err) if is_unique_violation(&err) => return Err(duplicate()),
        Err(err) => return Err(err.into()),
    }
    let updated = providers::get_by_uuid(&*tx, &uuid)
        .await?
        .ok_or_else(ApiError::internal)?;
    match tx.commit().await {
        Ok(()) => {}
        Err(err) if is_unique_violation(&err) => return Err(duplicate()),
        Err(err) => return Err(err.into()),
    }
    // Upstream shows the update time the provider had when it was loaded,
    // before this update: none for a provider never changed since creation.
    let reply = Reply::json(render(&updated, req.version));
    Ok(match provider.updated_at {
        Some(when) => reply.modified(when),
        None if req.version.at_least(15) => reply.header("cache-control", "no-cache"),
        None => reply,
    })
}

pub async fn delete(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:resource_providers:delete")?;
    let uuid = req.param("uuid");
    let tx = state.db.begin_write().await?;
    let Some(provider) = providers::get_by_uuid(&*tx, uuid).await? else {
        return Err(ApiError::not_found(format!(
            "No resource provider with uuid {uuid} found for delete"
        )));
    };
    if providers::has_children(&*tx, provider.id).await? {
        return Err(ApiError::conflict(format!(
            "Unable to delete parent resource provider {uuid}: It has child resource providers."
        ))
        .with_code(codes::PROVIDER_CANNOT_DELETE_PARENT));
    }
    if providers::has_allocations(&*tx, provider.id).await? {
        return Err(ApiError::conflict(format!(
            "Unable to delete resource provider {uuid}: Resource provider has allocations."
        ))
        .with_code(codes::PROVIDER_IN_USE));
    }
    providers::delete(&*tx, provider.id).await?;
    tx.commit().await?;
    Ok(Reply::empty(204))
}
