//! Flavors and their extra specs (`/flavors`, `/flavors/{id}/os-extra_specs`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::model::Flavor;
use crate::storage::{self, FlavorInsert};
use crate::AppState;

/// A flavor as Nova renders it at the request's microversion.
pub fn view(req: &Req, flavor: &Flavor, detail: bool) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), json!(flavor.id));
    body.insert("name".into(), json!(flavor.name));
    if detail {
        body.insert("ram".into(), json!(flavor.memory_mb));
        body.insert("disk".into(), json!(flavor.root_gb));
        // Before 2.75 a zero swap is shown as "".
        let swap = if flavor.swap == 0 && !req.at_least(75) {
            json!("")
        } else {
            json!(flavor.swap)
        };
        body.insert("swap".into(), swap);
        body.insert(
            "OS-FLV-EXT-DATA:ephemeral".into(),
            json!(flavor.ephemeral_gb),
        );
        body.insert("OS-FLV-DISABLED:disabled".into(), json!(flavor.disabled));
        body.insert("vcpus".into(), json!(flavor.vcpus));
        body.insert("os-flavor-access:is_public".into(), json!(flavor.is_public));
        body.insert("rxtx_factor".into(), json!(flavor.rxtx_factor));
    }
    body.insert("links".into(), req.links("flavors", &flavor.id));
    if req.at_least(55) {
        body.insert("description".into(), json!(flavor.description));
    }
    if detail && req.at_least(61) {
        body.insert("extra_specs".into(), json!(flavor.extra_specs));
    }
    Value::Object(body)
}

async fn load(state: &AppState, req: &Req, id: &str) -> ApiResult<Flavor> {
    match storage::get_flavor(&state.db, id).await? {
        Some(flavor) if flavor.is_public || req.context.is_admin => Ok(flavor),
        _ => Err(ApiError::flavor_not_found(id)),
    }
}

fn int_filter(req: &Req, name: &str) -> ApiResult<Option<u64>> {
    req.query_one(name)
        .map(|text| {
            text.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("Invalid {name} filter [{text}]")))
        })
        .transpose()
}

pub async fn list(state: &AppState, req: &Req, detail: bool) -> ApiResult<Reply> {
    let min_ram = int_filter(req, "minRam")?;
    let min_disk = int_filter(req, "minDisk")?;
    // Non-admins see public flavors; admins choose with is_public
    // (true by default, `none` for all).
    let public_filter = if req.context.is_admin {
        match req
            .query_one("is_public")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("true") | Some("t") | Some("yes") | Some("1") => Some(true),
            Some("false") | Some("f") | Some("no") | Some("0") => Some(false),
            Some("none") => None,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid is_public filter [{other}]"
                )))
            }
        }
    } else {
        Some(true)
    };
    let flavors: Vec<Flavor> = storage::list_flavors(&state.db)
        .await?
        .into_iter()
        .filter(|f| public_filter.is_none_or(|p| f.is_public == p))
        .filter(|f| min_ram.is_none_or(|m| f.memory_mb >= m))
        .filter(|f| min_disk.is_none_or(|m| f.root_gb >= m))
        .collect();
    let (flavors, more) = super::page(
        req,
        flavors,
        |f| &f.id,
        |marker| ApiError::bad_request(format!("marker [{marker}] not found")),
    )?;
    let mut body = json!({
        "flavors": flavors.iter().map(|f| view(req, f, detail)).collect::<Vec<_>>()
    });
    if more {
        let path = if detail { "flavors/detail" } else { "flavors" };
        body["flavors_links"] = super::next_link(req, path, flavors.last().map(|f| f.id.as_str()));
    }
    Ok(Reply::json(body))
}

pub async fn show(state: &AppState, req: &Req, id: &str) -> ApiResult<Reply> {
    let flavor = load(state, req, id).await?;
    Ok(Reply::json(json!({ "flavor": view(req, &flavor, true) })))
}

/// An integer field that Nova also accepts as a string of digits.
fn int_field(
    body: &Map<String, Value>,
    field: &str,
    min: u64,
    default: Option<u64>,
) -> ApiResult<u64> {
    let value = match body.get(field) {
        None => {
            return default.ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid input for field/attribute flavor. Value: {}. '{field}' is a required property",
                    crate::error::python_repr(&Value::Object(body.clone()))
                ))
            })
        }
        Some(value) => value,
    };
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match parsed {
        Some(n) if n >= min && n <= 2_147_483_647 => Ok(n),
        Some(_) | None => Err(ApiError::invalid_input(
            field,
            value,
            format!(
                "{} is not a valid integer of minimum {min}",
                crate::error::python_repr(value)
            ),
        )),
    }
}

fn valid_flavor_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && !id.starts_with(' ')
        && !id.ends_with(' ')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ' ' | '_' | '-'))
}

pub async fn create(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.context
        .require_admin("os_compute_api:os-flavor-manage:create")?;
    let body = req.json_root("flavor")?;
    let name = match body.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() && name.len() <= 255 => {
            name.trim().to_string()
        }
        Some(other) => {
            return Err(ApiError::invalid_input(
                "name",
                other,
                "is not a valid flavor name",
            ))
        }
        None => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute flavor. 'name' is a required property",
            ))
        }
    };
    let id = match body.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(id)) if valid_flavor_id(id) => id.clone(),
        Some(other) => {
            return Err(ApiError::invalid_input(
                "id",
                other,
                "is not a valid flavor id",
            ))
        }
    };
    let rxtx_factor = match body.get("rxtx_factor") {
        None => 1.0,
        Some(value) => match value
            .as_f64()
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        {
            Some(f) if f > 0.0 && f <= 3.40282e38 => f,
            _ => {
                return Err(ApiError::invalid_input(
                    "rxtx_factor",
                    value,
                    "is not a positive number",
                ))
            }
        },
    };
    let is_public = match body.get("os-flavor-access:is_public") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::invalid_input(
                "os-flavor-access:is_public",
                other,
                format!(
                    "{} is not of type 'boolean'",
                    crate::error::python_repr(other)
                ),
            ))
        }
    };
    let description = match body.get("description") {
        Some(_) if !req.at_least(55) => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute flavor. Additional properties are not allowed ('description' was unexpected)",
            ))
        }
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() <= 65535 => Some(text.clone()),
        Some(other) => {
            return Err(ApiError::invalid_input("description", other, "is not a valid description"))
        }
    };
    let flavor = Flavor {
        id,
        name,
        memory_mb: int_field(&body, "ram", 1, None)?,
        vcpus: int_field(&body, "vcpus", 1, None)?,
        root_gb: int_field(&body, "disk", 0, None)?,
        ephemeral_gb: int_field(&body, "OS-FLV-EXT-DATA:ephemeral", 0, Some(0))?,
        swap: int_field(&body, "swap", 0, Some(0))?,
        rxtx_factor,
        is_public,
        disabled: false,
        description,
        extra_specs: BTreeMap::new(),
    };
    match storage::insert_flavor(&state.db, &flavor).await? {
        FlavorInsert::Created => {}
        FlavorInsert::NameExists => {
            return Err(ApiError::conflict(format!(
                "Flavor with name {} already exists.",
                flavor.name
            )))
        }
        FlavorInsert::IdExists => {
            return Err(ApiError::conflict(format!(
                "Flavor with ID {} already exists.",
                flavor.id
            )))
        }
    }
    Ok(Reply::json(json!({ "flavor": view(req, &flavor, true) })))
}

/// `PUT /flavors/{id}` (2.55): only the description changes.
pub async fn update(state: &AppState, req: &Req, id: &str) -> ApiResult<Reply> {
    if !req.at_least(55) {
        return Err(ApiError::new(
            405,
            "The method is not allowed for this resource.",
        ));
    }
    req.context
        .require_admin("os_compute_api:os-flavor-manage:update")?;
    let body = req.json_root("flavor")?;
    let description =
        match body.get("description") {
            Some(Value::Null) => None,
            Some(Value::String(text)) if text.chars().count() <= 65535 => Some(text.clone()),
            Some(other) => {
                return Err(ApiError::invalid_input(
                    "description",
                    other,
                    "is not a valid description",
                ))
            }
            None => return Err(ApiError::bad_request(
                "Invalid input for field/attribute flavor. 'description' is a required property",
            )),
        };
    if !storage::update_flavor_description(&state.db, id, description.as_deref()).await? {
        return Err(ApiError::flavor_not_found(id));
    }
    show(state, req, id).await
}

pub async fn delete(state: &AppState, req: &Req, id: &str) -> ApiResult<Reply> {
    req.context
        .require_admin("os_compute_api:os-flavor-manage:delete")?;
    if !storage::delete_flavor(&state.db, id).await? {
        return Err(ApiError::flavor_not_found(id));
    }
    Ok(Reply::empty(202))
}

pub async fn list_specs(state: &AppState, req: &Req, id: &str) -> ApiResult<Reply> {
    let flavor = load(state, req, id).await?;
    Ok(Reply::json(json!({ "extra_specs": flavor.extra_specs })))
}

fn spec_key_valid(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 255
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' ' | '/'))
}

/// Validates `{"key": value}` pairs; values become strings as in Nova.
fn specs_of(body: &Map<String, Value>) -> ApiResult<BTreeMap<String, String>> {
    let mut specs = BTreeMap::new();
    for (key, value) in body {
        if !spec_key_valid(key) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute extra_specs. Value: {}. Additional properties are not allowed ('{key}' was unexpected)",
                crate::error::python_repr(&Value::Object(body.clone()))
            )));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(ApiError::invalid_input(
                    key,
                    other,
                    format!(
                        "{} is not of type 'string', 'number', 'boolean'",
                        crate::error::python_repr(other)
                    ),
                ))
            }
        };
        if text.chars().count() > 255 {
            return Err(ApiError::invalid_input(key, value, "is too long"));
        }
        specs.insert(key.clone(), text);
    }
    Ok(specs)
}

pub async fn create_specs(state: &AppState, req: &Req, id: &str) -> ApiResult<Reply> {
    req.context
        .require_admin("os_compute_api:os-flavor-extra-specs:create")?;
    let body = req.json_root("extra_specs")?;
    let specs = specs_of(&body)?;
    if !storage::set_extra_specs(&state.db, id, &specs).await? {
        return Err(ApiError::flavor_not_found(id));
    }
    Ok(Reply::json(json!({ "extra_specs": specs })))
}

fn spec_not_found(id: &str, key: &str) -> ApiError {
    ApiError::not_found(format!("Flavor {id} has no extra specs with key {key}."))
}

pub async fn show_spec(state: &AppState, req: &Req, id: &str, key: &str) -> ApiResult<Reply> {
    let flavor = load(state, req, id).await?;
    match flavor.extra_specs.get(key) {
        Some(value) => Ok(Reply::json(json!({ key: value }))),
        None => Err(spec_not_found(id, key)),
    }
}

pub async fn update_spec(state: &AppState, req: &Req, id: &str, key: &str) -> ApiResult<Reply> {
    req.context
        .require_admin("os_compute_api:os-flavor-extra-specs:update")?;
    let Value::Object(body) = req.json()? else {
        return Err(ApiError::bad_request("Malformed request body"));
    };
    if !body.contains_key(key) {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    }
    if body.len() > 1 {
        return Err(ApiError::bad_request(
            "Request body contains too many items",
        ));
    }
    let specs = specs_of(&body)?;
    if !storage::set_extra_specs(&state.db, id, &specs).await? {
        return Err(ApiError::flavor_not_found(id));
    }
    Ok(Reply::json(json!(specs)))
}

pub async fn delete_spec(state: &AppState, req: &Req, id: &str, key: &str) -> ApiResult<Reply> {
    req.context
        .require_admin("os_compute_api:os-flavor-extra-specs:delete")?;
    if storage::get_flavor(&state.db, id).await?.is_none() {
        return Err(ApiError::flavor_not_found(id));
    }
    if !storage::delete_extra_spec(&state.db, id, key).await? {
        return Err(spec_not_found(id, key));
    }
    Ok(Reply::empty(202))
}
