//! Servers (`/servers`, `/servers/detail`, `/servers/{id}`, actions).
//!
//! Create, delete and actions validate, commit the new state (BUILD, a task
//! state) and answer 202/204; the work runs in the [`crate::manager`].

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::Digest;

use crate::error::{python_repr, ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::model::{power_state, task_state, vm_state, Fault, RequestedNetwork, Server};
use crate::storage;
use crate::AppState;

fn iso_z(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn iso_plain(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

/// Nova's `hostId`: sha224 of project id and host, "" when unscheduled.
fn host_id(server: &Server) -> String {
    match &server.host {
        Some(host) => {
            let digest = sha2::Sha224::digest(format!("{}{host}", server.project_id).as_bytes());
            digest.iter().map(|b| format!("{b:02x}")).collect()
        }
        None => String::new(),
    }
}

fn fault_view(req: &Req, fault: &Fault) -> Value {
    let mut body = Map::new();
    body.insert("code".into(), json!(fault.code));
    body.insert("created".into(), json!(iso_z(fault.created)));
    body.insert("message".into(), json!(fault.message));
    // Details of 500s only for admins, as in Nova.
    if req.context.is_admin || fault.code != 500 {
        body.insert("details".into(), json!(fault.details));
    }
    Value::Object(body)
}

fn flavor_view(req: &Req, server: &Server) -> Value {
    let flavor = &server.flavor;
    if req.at_least(47) {
        json!({
            "vcpus": flavor.vcpus,
            "ram": flavor.memory_mb,
            "disk": flavor.root_gb,
            "ephemeral": flavor.ephemeral_gb,
            "swap": flavor.swap,
            "original_name": flavor.name,
            "extra_specs": flavor.extra_specs,
        })
    } else {
        json!({
            "id": flavor.id,
            "links": [{"rel": "bookmark", "href": format!("{}/{}/flavors/{}", req.base_url, req.context.project_id, flavor.id)}],
        })
    }
}

/// A server as Nova renders it (`detail`: the full view).
pub fn view(req: &Req, server: &Server, detail: bool, show: bool) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), json!(server.uuid));
    body.insert("name".into(), json!(server.name));
    body.insert("links".into(), req.links("servers", &server.uuid));
    if !detail {
        return Value::Object(body);
    }
    let status = server.status();
    let admin = req.context.is_admin;
    body.insert("status".into(), json!(status));
    body.insert("tenant_id".into(), json!(server.project_id));
    body.insert("user_id".into(), json!(server.user_id));
    body.insert("metadata".into(), json!(server.metadata));
    body.insert("hostId".into(), json!(host_id(server)));
    body.insert(
        "image".into(),
        json!({
            "id": server.image.id,
            "links": [{"rel": "bookmark", "href": format!("{}/{}/images/{}", req.base_url, req.context.project_id, server.image.id)}],
        }),
    );
    body.insert("flavor".into(), flavor_view(req, server));
    body.insert("created".into(), json!(iso_z(server.created_at)));
    body.insert("updated".into(), json!(iso_z(server.updated_at)));
    body.insert("addresses".into(), json!({}));
    body.insert("accessIPv4".into(), json!(""));
    body.insert("accessIPv6".into(), json!(""));
    body.insert("OS-DCF:diskConfig".into(), json!("MANUAL"));
    if matches!(status, "BUILD" | "ACTIVE") {
        body.insert(
            "progress".into(),
            json!(if status == "ACTIVE" { 100 } else { 0 }),
        );
    }
    body.insert(
        "OS-EXT-AZ:availability_zone".into(),
        json!(if server.host.is_some() {
            server
                .availability_zone
                .clone()
                .and_then(|z| z.split(':').next().map(str::to_string))
                .filter(|z| !z.is_empty())
                .unwrap_or_else(|| "nova".into())
        } else {
            String::new()
        }),
    );
    body.insert("config_drive".into(), json!(""));
    body.insert("key_name".into(), json!(server.key_name));
    if admin {
        body.insert("OS-EXT-SRV-ATTR:host".into(), json!(server.host));
        body.insert(
            "OS-EXT-SRV-ATTR:hypervisor_hostname".into(),
            json!(server.node),
        );
        body.insert(
            "OS-EXT-SRV-ATTR:instance_name".into(),
            json!(format!(
                "instance-{}",
                &server.uuid[..8.min(server.uuid.len())]
            )),
        );
        if req.at_least(3) {
            body.insert(
                "OS-EXT-SRV-ATTR:reservation_id".into(),
                json!(format!("r-{}", &server.uuid[..8.min(server.uuid.len())])),
            );
            body.insert("OS-EXT-SRV-ATTR:launch_index".into(), json!(0));
            body.insert(
                "OS-EXT-SRV-ATTR:hostname".into(),
                json!(crate::manager::hostname(&server.name)),
            );
            body.insert(
                "OS-EXT-SRV-ATTR:kernel_id".into(),
                json!(server
                    .image
                    .properties
                    .get("kernel_id")
                    .cloned()
                    .unwrap_or_default()),
            );
            body.insert(
                "OS-EXT-SRV-ATTR:ramdisk_id".into(),
                json!(server
                    .image
                    .properties
                    .get("ramdisk_id")
                    .cloned()
                    .unwrap_or_default()),
            );
            body.insert("OS-EXT-SRV-ATTR:root_device_name".into(), Value::Null);
            body.insert("OS-EXT-SRV-ATTR:user_data".into(), json!(server.user_data));
        }
    }
    body.insert("OS-EXT-STS:task_state".into(), json!(server.task_state));
    body.insert("OS-EXT-STS:vm_state".into(), json!(server.vm_state));
    body.insert("OS-EXT-STS:power_state".into(), json!(server.power_state));
    body.insert(
        "OS-SRV-USG:launched_at".into(),
        json!(server.launched_at.map(iso_plain)),
    );
    body.insert("OS-SRV-USG:terminated_at".into(), Value::Null);
    body.insert("os-extended-volumes:volumes_attached".into(), json!([]));
    body.insert("security_groups".into(), json!([{"name": "default"}]));
    if req.at_least(9) {
        body.insert("locked".into(), json!(false));
    }
    if req.at_least(16) && admin {
        body.insert(
            "host_status".into(),
            json!(if server.host.is_some() { "UP" } else { "" }),
        );
    }
    if req.at_least(19) {
        body.insert("description".into(), json!(server.description));
    }
    if req.at_least(26) {
        body.insert("tags".into(), json!([]));
    }
    if req.at_least(63) {
        body.insert("trusted_image_certificates".into(), Value::Null);
    }
    if req.at_least(71) && show {
        body.insert("server_groups".into(), json!([]));
    }
    if req.at_least(73) {
        body.insert("locked_reason".into(), Value::Null);
    }
    if req.at_least(96) {
        body.insert("pinned_availability_zone".into(), Value::Null);
    }
    if let (Some(fault), "ERROR" | "DELETED") = (&server.fault, status) {
        body.insert("fault".into(), fault_view(req, fault));
    }
    Value::Object(body)
}

/// A server the caller may see, or Nova's 404.
async fn load(state: &AppState, req: &Req, id: &str) -> ApiResult<Server> {
    match storage::get_server(&state.db, id).await? {
        Some(server) if req.context.can_access(&server.project_id) => Ok(server),
        _ => Err(ApiError::server_not_found(id)),
    }
}

pub async fn show(state: &AppState, req: &Req, id: &str) -> ApiResult<Reply> {
    let server = load(state, req, id).await?;
    Ok(Reply::json(
        json!({ "server": view(req, &server, true, true) }),
    ))
}

pub async fn list(state: &AppState, req: &Req, detail: bool) -> ApiResult<Reply> {
    let all_tenants = req.context.is_admin
        && req.query_one("all_tenants").is_some_and(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "f" | "no" | "off"
            )
        });
    let project = if all_tenants {
        req.query_one("project_id")
            .or(req.query_one("tenant_id"))
            .map(str::to_string)
    } else {
        Some(req.context.project_id.clone())
    };
    let name = req
        .query_one("name")
        .map(|pattern| {
            regex::Regex::new(pattern)
                .map_err(|_| ApiError::bad_request(format!("Invalid name filter [{pattern}]")))
        })
        .transpose()?;
    let status = req.query_one("status").map(str::to_ascii_uppercase);
    let node = req.query_one("node").filter(|_| req.context.is_admin);
    let host = req.query_one("host").filter(|_| req.context.is_admin);
    let servers: Vec<Server> = storage::list_servers(&state.db, project.as_deref())
        .await?
        .into_iter()
        .filter(|s| name.as_ref().is_none_or(|re| re.is_match(&s.name)))
        .filter(|s| status.as_deref().is_none_or(|st| s.status() == st))
        .filter(|s| node.is_none_or(|n| s.node.as_deref() == Some(n)))
        .filter(|s| host.is_none_or(|h| s.host.as_deref() == Some(h)))
        .collect();
    let (servers, more) = super::page(
        req,
        servers,
        |s| &s.uuid,
        |marker| ApiError::bad_request(format!("marker [{marker}] not found")),
    )?;
    let mut body = json!({
        "servers": servers.iter().map(|s| view(req, s, detail, false)).collect::<Vec<_>>()
    });
    if more {
        let path = if detail { "servers/detail" } else { "servers" };
        body["servers_links"] =
            super::next_link(req, path, servers.last().map(|s| s.uuid.as_str()));
    }
    Ok(Reply::json(body))
}

/// The id at the end of a reference that may be a URL.
fn ref_id(value: &Value, field: &str) -> ApiResult<String> {
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(ApiError::invalid_input(
                field,
                other,
                format!("{} is not of type 'string', 'integer'", python_repr(other)),
            ))
        }
    };
    let id = text.rsplit('/').next().unwrap_or("").to_string();
    if id.is_empty() {
        return Err(ApiError::bad_request(format!("Invalid {field} provided.")));
    }
    Ok(id)
}

fn string_map(value: &Value, field: &str) -> ApiResult<BTreeMap<String, String>> {
    let Value::Object(map) = value else {
        return Err(ApiError::invalid_input(
            field,
            value,
            format!("{} is not of type 'object'", python_repr(value)),
        ));
    };
    let mut out = BTreeMap::new();
    for (key, item) in map {
        let Value::String(text) = item else {
            return Err(ApiError::invalid_input(
                &format!("{field}/{key}"),
                item,
                format!("{} is not of type 'string'", python_repr(item)),
            ));
        };
        if key.is_empty() || key.chars().count() > 255 || text.chars().count() > 255 {
            return Err(ApiError::invalid_input(
                field,
                value,
                "keys and values are 1 to 255 characters",
            ));
        }
        out.insert(key.clone(), text.clone());
    }
    Ok(out)
}

fn server_name(value: Option<&Value>) -> ApiResult<Option<String>> {
    match value {
        None => Ok(None),
        Some(Value::String(name)) if !name.trim().is_empty() && name.chars().count() <= 255 => {
            Ok(Some(name.clone()))
        }
        Some(other) => Err(ApiError::invalid_input(
            "name",
            other,
            format!("{} is not a valid server name", python_repr(other)),
        )),
    }
}

fn user_data(value: Option<&Value>) -> ApiResult<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            let valid = text.len() <= 65535
                && base64::engine::general_purpose::STANDARD
                    .decode(text.replace(['\n', '\r'], ""))
                    .is_ok();
            if !valid {
                return Err(ApiError::bad_request(
                    "User data needs to be valid base 64.",
                ));
            }
            Ok(Some(text.clone()))
        }
        Some(other) => Err(ApiError::invalid_input(
            "user_data",
            other,
            format!("{} is not of type 'string'", python_repr(other)),
        )),
    }
}

fn networks(req: &Req, value: Option<&Value>) -> ApiResult<Vec<RequestedNetwork>> {
    let value = match value {
        None if req.at_least(37) => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute server. 'networks' is a required property",
            ))
        }
        None => return Ok(Vec::new()),
        Some(value) => value,
    };
    match value {
        Value::String(word) if req.at_least(37) && (word == "auto" || word == "none") => {
            Ok(Vec::new())
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                let Value::Object(entry) = item else {
                    return Err(ApiError::invalid_input(
                        "networks",
                        item,
                        "is not of type 'object'",
                    ));
                };
                let get = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
                let network = RequestedNetwork {
                    uuid: get("uuid"),
                    port: get("port"),
                    fixed_ip: get("fixed_ip"),
                };
                if network.uuid.is_none() && network.port.is_none() {
                    return Err(ApiError::bad_request(
                        "Bad networks format: network uuid is not in proper format (None)",
                    ));
                }
                for id in [&network.uuid, &network.port].into_iter().flatten() {
                    if uuid::Uuid::parse_str(id).is_err() {
                        return Err(ApiError::bad_request(format!(
                            "Bad networks format: network uuid is not in proper format ({id})"
                        )));
                    }
                }
                out.push(network);
            }
            Ok(out)
        }
        other => Err(ApiError::invalid_input(
            "networks",
            other,
            format!(
                "{} is not valid under any of the given schemas",
                python_repr(other)
            ),
        )),
    }
}

pub async fn create(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let body = req.json_root("server")?;
    let name = server_name(body.get("name"))?.ok_or_else(|| {
        ApiError::bad_request(
            "Invalid input for field/attribute server. 'name' is a required property",
        )
    })?;
    let flavor_ref = ref_id(
        body.get("flavorRef").ok_or_else(|| {
            ApiError::bad_request(
                "Invalid input for field/attribute server. 'flavorRef' is a required property",
            )
        })?,
        "flavorRef",
    )?;
    let image_ref = match body.get("imageRef") {
        Some(value) => ref_id(value, "imageRef")?,
        None => {
            return Err(ApiError::bad_request(
                "Bare-metal servers boot from an image: imageRef is required.",
            ))
        }
    };
    if body.contains_key("block_device_mapping_v2") || body.contains_key("block_device_mapping") {
        return Err(ApiError::bad_request(
            "Block device mappings are not supported by bare-metal servers.",
        ));
    }
    for field in ["min_count", "max_count"] {
        if let Some(value) = body.get(field) {
            let n = value
                .as_u64()
                .or_else(|| value.as_str().and_then(|s| s.parse().ok()));
            if n != Some(1) {
                return Err(ApiError::bad_request(format!(
                    "Ferrite creates one server per request: {field} must be 1."
                )));
            }
        }
    }
    let networks = networks(req, body.get("networks"))?;
    let metadata = match body.get("metadata") {
        Some(value) => string_map(value, "metadata")?,
        None => BTreeMap::new(),
    };
    let user_data = user_data(body.get("user_data"))?;
    let description = match body.get("description") {
        Some(Value::String(text)) if req.at_least(19) && text.chars().count() <= 255 => {
            Some(text.clone())
        }
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(ApiError::invalid_input(
                "description",
                other,
                "is not a valid description",
            ))
        }
    };
    let availability_zone = match body.get("availability_zone") {
        None | Some(Value::Null) => None,
        Some(Value::String(zone)) => {
            let zone_name = zone.split(':').next().unwrap_or("");
            if zone.contains(':') {
                req.context
                    .require_admin("os_compute_api:servers:create:forced_host")?;
            }
            if !zone_name.is_empty() && zone_name != state.config.default_availability_zone {
                return Err(ApiError::bad_request(
                    "The requested availability zone is not available",
                ));
            }
            Some(zone.clone())
        }
        Some(other) => {
            return Err(ApiError::invalid_input(
                "availability_zone",
                other,
                "is not of type 'string'",
            ))
        }
    };
    let flavor = storage::get_flavor(&state.db, &flavor_ref)
        .await?
        .filter(|f| f.is_public || req.context.is_admin)
        .ok_or_else(|| ApiError::bad_request(format!("Flavor {flavor_ref} could not be found.")))?;
    if flavor.disabled {
        return Err(ApiError::bad_request("Flavor is disabled."));
    }
    let image = storage::get_image(&state.db, &image_ref)
        .await?
        .filter(|i| i.visible_to(&req.context.project_id, req.context.is_admin))
        .ok_or_else(|| ApiError::bad_request(format!("Image {image_ref} could not be found.")))?;
    let (key_name, key_data) = match body.get("key_name") {
        None | Some(Value::Null) => (None, None),
        Some(Value::String(key_name)) => {
            let keypair = storage::get_keypair(&state.db, &req.context.user_id, key_name)
                .await?
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Keypair {key_name} not found for user {}",
                        req.context.user_id
                    ))
                })?;
            (Some(keypair.name), Some(keypair.public_key))
        }
        Some(other) => {
            return Err(ApiError::invalid_input(
                "key_name",
                other,
                "is not of type 'string'",
            ))
        }
    };
    let now = storage::now_micros();
    let server = Server {
        uuid: uuid::Uuid::new_v4().to_string(),
        name,
        project_id: req.context.project_id.clone(),
        user_id: req.context.user_id.clone(),
        vm_state: vm_state::BUILDING.into(),
        task_state: Some(task_state::SCHEDULING.into()),
        power_state: power_state::NOSTATE,
        host: None,
        node: None,
        flavor,
        image,
        key_name,
        key_data,
        user_data,
        metadata,
        networks,
        availability_zone,
        description,
        fault: None,
        launched_at: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    storage::insert_server(&state.db, &server).await?;
    state.manager.start_build(server.uuid.clone());
    let admin_pass = match body.get("adminPass").and_then(Value::as_str) {
        Some(pass) => pass.to_string(),
        None => random_password(),
    };
    Ok(Reply::json(json!({
        "server": {
            "id": server.uuid,
            "links": req.links("servers", &server.uuid),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": admin_pass,
        }
    }))
    .status(202))
}

fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

pub async fn update(state: &AppState, req: &Req, id: &str) -> ApiResult<Reply> {
    load(state, req, id).await?;
    let body = req.json_root("server")?;
    let name = server_name(body.get("name"))?;
    let description = match body.get("description") {
        Some(Value::String(text)) if req.at_least(19) => Some(Some(text.clone())),
        Some(Value::Null) if req.at_least(19) => Some(None),
        None => None,
        Some(other) => {
            return Err(ApiError::invalid_input(
                "description",
                other,
                "is not a valid description",
            ))
        }
    };
    let server = state
        .manager
        .update(id, |s| {
            if let Some(name) = &name {
                s.name = name.clone();
            }
            if let Some(description) = &description {
                s.description = description.clone();
            }
            true
        })
        .await?
        .ok_or_else(|| ApiError::server_not_found(id))?;
    Ok(Reply::json(
        json!({ "server": view(req, &server, true, true) }),
    ))
}

pub async fn delete(state: &AppState, req: &Req, id: &str) -> ApiResult<Reply> {
    load(state, req, id).await?;
    let mut already = false;
    let marked = state
        .manager
        .update(id, |s| {
            if s.task_state.as_deref() == Some(task_state::DELETING) {
                already = true;
                return false;
            }
            s.task_state = Some(task_state::DELETING.into());
            true
        })
        .await?;
    if marked.is_some() {
        state.manager.start_delete(id.to_string());
    } else if !already {
        return Err(ApiError::server_not_found(id));
    }
    Ok(Reply::empty(204))
}

/// Commits `task` if the server's states allow `action`, else Nova's 409.
async fn begin_task(
    state: &AppState,
    id: &str,
    action: &str,
    allowed_vm_states: &[&str],
    task: &'static str,
    mut also: impl FnMut(&mut Server),
) -> ApiResult<Server> {
    let mut refusal: Option<ApiError> = None;
    let updated = state
        .manager
        .update(id, |s| {
            if let Some(current) = &s.task_state {
                refusal = Some(ApiError::invalid_state(action, id, "task_state", current));
                return false;
            }
            if !allowed_vm_states.contains(&s.vm_state.as_str()) {
                refusal = Some(ApiError::invalid_state(action, id, "vm_state", &s.vm_state));
                return false;
            }
            s.task_state = Some(task.into());
            also(s);
            true
        })
        .await?;
    match (updated, refusal) {
        (Some(server), _) => Ok(server),
        (None, Some(refusal)) => Err(refusal),
        (None, None) => Err(ApiError::server_not_found(id)),
    }
}

pub async fn action(state: &AppState, req: &Req, id: &str) -> ApiResult<Reply> {
    load(state, req, id).await?;
    let Value::Object(body) = req.json()? else {
        return Err(ApiError::bad_request("Malformed request body"));
    };
    let Some((name, args)) = body.iter().next() else {
        return Err(ApiError::bad_request("Malformed request body"));
    };
    let manager = &state.manager;
    match name.as_str() {
        "reboot" => {
            let kind = args
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase)
                .filter(|k| k == "SOFT" || k == "HARD")
                .ok_or_else(|| {
                    ApiError::invalid_input(
                        "type",
                        args.get("type").unwrap_or(&Value::Null),
                        "is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']",
                    )
                })?;
            let soft = kind == "SOFT";
            let (allowed, task): (&[&str], _) = if soft {
                (&[vm_state::ACTIVE], task_state::REBOOTING)
            } else {
                (
                    &[vm_state::ACTIVE, vm_state::STOPPED, vm_state::ERROR],
                    task_state::REBOOTING_HARD,
                )
            };
            begin_task(state, id, "reboot", allowed, task, |_| {}).await?;
            manager.start_action(id.to_string(), task, soft);
            Ok(Reply::empty(202))
        }
        "os-start" => {
            begin_task(
                state,
                id,
                "start",
                &[vm_state::STOPPED],
                task_state::POWERING_ON,
                |_| {},
            )
            .await?;
            manager.start_action(id.to_string(), task_state::POWERING_ON, false);
            Ok(Reply::empty(202))
        }
        "os-stop" => {
            begin_task(
                state,
                id,
                "stop",
                &[vm_state::ACTIVE, vm_state::ERROR],
                task_state::POWERING_OFF,
                |_| {},
            )
            .await?;
            manager.start_action(id.to_string(), task_state::POWERING_OFF, false);
            Ok(Reply::empty(202))
        }
        "rebuild" => rebuild(state, req, id, args).await,
        other => Err(ApiError::bad_request(format!(
            "There is no such action: {other}"
        ))),
    }
}

async fn rebuild(state: &AppState, req: &Req, id: &str, args: &Value) -> ApiResult<Reply> {
    let Value::Object(args) = args else {
        return Err(ApiError::invalid_input(
            "rebuild",
            args,
            "is not of type 'object'",
        ));
    };
    let image_ref = ref_id(
        args.get("imageRef").ok_or_else(|| {
            ApiError::bad_request(
                "Invalid input for field/attribute rebuild. 'imageRef' is a required property",
            )
        })?,
        "imageRef",
    )?;
    let image = storage::get_image(&state.db, &image_ref)
        .await?
        .filter(|i| i.visible_to(&req.context.project_id, req.context.is_admin))
        .ok_or_else(|| ApiError::bad_request(format!("Image {image_ref} could not be found.")))?;
    let name = server_name(args.get("name"))?;
    let metadata = args
        .get("metadata")
        .map(|m| string_map(m, "metadata"))
        .transpose()?;
    let user_data = if req.at_least(57) && args.contains_key("user_data") {
        Some(user_data(args.get("user_data"))?)
    } else {
        None
    };
    let key = match args.get("key_name") {
        Some(Value::String(key_name)) if req.at_least(54) => {
            let keypair = storage::get_keypair(&state.db, &req.context.user_id, key_name)
                .await?
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Keypair {key_name} not found for user {}",
                        req.context.user_id
                    ))
                })?;
            Some(Some((keypair.name, keypair.public_key)))
        }
        Some(Value::Null) if req.at_least(54) => Some(None),
        _ => None,
    };
    let server = begin_task(
        state,
        id,
        "rebuild",
        &[vm_state::ACTIVE, vm_state::STOPPED, vm_state::ERROR],
        task_state::REBUILDING,
        |s| {
            s.image = image.clone();
            if let Some(name) = &name {
                s.name = name.clone();
            }
            if let Some(metadata) = &metadata {
                s.metadata = metadata.clone();
            }
            if let Some(user_data) = &user_data {
                s.user_data = user_data.clone();
            }
            if let Some(key) = &key {
                s.key_name = key.as_ref().map(|(n, _)| n.clone());
                s.key_data = key.as_ref().map(|(_, k)| k.clone());
            }
        },
    )
    .await?;
    state
        .manager
        .start_action(id.to_string(), task_state::REBUILDING, false);
    let mut body = view(req, &server, true, true);
    body["adminPass"] = json!(args
        .get("adminPass")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(random_password));
    Ok(Reply::json(json!({ "server": body })).status(202))
}
