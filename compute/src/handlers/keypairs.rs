//! Key pairs (`/os-keypairs`). Only imports: Ferrite does not generate key
//! pairs, so `public_key` is required at every microversion.

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::model::{ssh_fingerprint, Keypair};
use crate::storage;
use crate::AppState;

fn iso(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

pub fn not_found(name: &str, user_id: &str) -> ApiError {
    ApiError::not_found(format!("Keypair {name} not found for user {user_id}"))
}

/// The user whose key pairs are meant: `user_id` (admins, 2.10+) or the caller.
fn target_user(req: &Req, explicit: Option<&str>) -> ApiResult<String> {
    match explicit {
        Some(user) if req.at_least(10) && user != req.context.user_id => {
            req.context
                .require_admin("os_compute_api:os-keypairs:index")?;
            Ok(user.to_string())
        }
        _ => Ok(req.context.user_id.clone()),
    }
}

fn summary(req: &Req, keypair: &Keypair) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("name".into(), json!(keypair.name));
    body.insert("public_key".into(), json!(keypair.public_key));
    body.insert("fingerprint".into(), json!(keypair.fingerprint));
    if req.at_least(2) {
        body.insert("type".into(), json!(keypair.key_type));
    }
    body
}

pub async fn list(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let user = target_user(req, req.query_one("user_id"))?;
    let keypairs = storage::list_keypairs(&state.db, &user).await?;
    let (keypairs, more) = if req.at_least(35) {
        super::page(
            req,
            keypairs,
            |k| &k.name,
            |marker| ApiError::bad_request(format!("Keypair {marker} not found")),
        )?
    } else {
        (keypairs, false)
    };
    let mut body = json!({
        "keypairs": keypairs
            .iter()
            .map(|k| json!({ "keypair": summary(req, k) }))
            .collect::<Vec<_>>()
    });
    if more {
        body["keypairs_links"] =
            super::next_link(req, "os-keypairs", keypairs.last().map(|k| k.name.as_str()));
    }
    Ok(Reply::json(body))
}

fn invalid(reason: &str) -> ApiError {
    ApiError::bad_request(format!("Keypair data is invalid: {reason}"))
}

pub async fn create(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let body = req.json_root("keypair")?;
    let name = match body.get("name") {
        Some(Value::String(name)) => name.clone(),
        _ => {
            return Err(invalid(
                "Keypair name must be string and between 1 and 255 characters long",
            ))
        }
    };
    if name.is_empty() || name.chars().count() > 255 {
        return Err(invalid(
            "Keypair name must be string and between 1 and 255 characters long",
        ));
    }
    let safe = name.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, ' ' | '_' | '-')
            || (req.at_least(92) && matches!(c, '@' | '.'))
    });
    if !safe {
        return Err(invalid("Keypair name contains unsafe characters"));
    }
    let key_type = match body.get("type") {
        None => "ssh".to_string(),
        Some(Value::String(kind)) if req.at_least(2) && (kind == "ssh" || kind == "x509") => {
            kind.clone()
        }
        Some(other) => {
            return Err(ApiError::invalid_input(
                "type",
                other,
                "is not one of ['ssh', 'x509']",
            ))
        }
    };
    let user_id = match body.get("user_id").and_then(Value::as_str) {
        Some(user) if req.at_least(10) => {
            if user != req.context.user_id {
                req.context
                    .require_admin("os_compute_api:os-keypairs:create")?;
            }
            user.to_string()
        }
        _ => req.context.user_id.clone(),
    };
    let public_key = match body.get("public_key") {
        Some(Value::String(key)) => key.trim().to_string(),
        _ => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute keypair. 'public_key' is a required property (Ferrite does not generate key pairs)",
            ))
        }
    };
    let fingerprint = if key_type == "ssh" {
        ssh_fingerprint(&public_key).ok_or_else(|| invalid("failed to generate fingerprint"))?
    } else {
        return Err(invalid("x509 certificates are not supported"));
    };
    let keypair = Keypair {
        id: 0,
        name: name.clone(),
        user_id: user_id.clone(),
        public_key,
        fingerprint,
        key_type,
        created_at: storage::now_micros(),
    };
    if !storage::insert_keypair(&state.db, &keypair).await? {
        return Err(ApiError::conflict(format!(
            "Key pair '{name}' already exists."
        )));
    }
    let mut view = summary(req, &keypair);
    view.insert("user_id".into(), json!(user_id));
    let status = if req.at_least(2) { 201 } else { 200 };
    Ok(Reply::json(json!({ "keypair": view })).status(status))
}

pub async fn show(state: &AppState, req: &Req, name: &str) -> ApiResult<Reply> {
    let user = target_user(req, req.query_one("user_id"))?;
    let keypair = storage::get_keypair(&state.db, &user, name)
        .await?
        .ok_or_else(|| not_found(name, &user))?;
    let mut view = summary(req, &keypair);
    view.insert("user_id".into(), json!(keypair.user_id));
    view.insert("id".into(), json!(keypair.id));
    view.insert("created_at".into(), json!(iso(keypair.created_at)));
    view.insert("updated_at".into(), Value::Null);
    view.insert("deleted_at".into(), Value::Null);
    view.insert("deleted".into(), json!(false));
    Ok(Reply::json(json!({ "keypair": view })))
}

pub async fn delete(state: &AppState, req: &Req, name: &str) -> ApiResult<Reply> {
    let user = target_user(req, req.query_one("user_id"))?;
    if !storage::delete_keypair(&state.db, &user, name).await? {
        return Err(not_found(name, &user));
    }
    Ok(Reply::empty(if req.at_least(2) { 204 } else { 202 }))
}
