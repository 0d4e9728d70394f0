//! Ferrite's image registry. Images are records, not uploads: each names a
//! `url` the deploy agent downloads from, with its format and hash.
//!
//! - `GET/POST /v2/images`, `GET/DELETE /v2/images/{id}`: Glance-like enough
//!   for openstacksdk (Glance's field names; extra string fields are image
//!   properties and are shown at the top level, as in Glance). Creating
//!   takes `url` (or Glance's `direct_url`), which is shown as
//!   `direct_url`; the image is `active` at once. Errors use Nova's format.
//! - `GET /v2.1/images[/detail|/{id}]`: Nova's read-only image proxy (up to
//!   microversion 2.35, 404 from 2.36 as in Nova).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::model::Image;
use crate::storage;
use crate::AppState;

const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];
const HASH_ALGOS: &[&str] = &["md5", "sha256", "sha512"];

fn iso_z(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// An image as Glance v2 shows it.
pub fn glance_view(image: &Image) -> Value {
    let mut body = Map::new();
    for (key, value) in &image.properties {
        body.insert(key.clone(), json!(value));
    }
    let fields = [
        ("id", json!(image.id)),
        ("name", json!(image.name)),
        ("status", json!("active")),
        ("visibility", json!(image.visibility)),
        ("protected", json!(false)),
        ("os_hidden", json!(false)),
        ("checksum", json!(image.checksum)),
        ("os_hash_algo", json!(image.os_hash_algo)),
        ("os_hash_value", json!(image.os_hash_value)),
        ("owner", json!(image.owner)),
        ("size", json!(image.size)),
        ("virtual_size", Value::Null),
        ("min_ram", json!(image.min_ram)),
        ("min_disk", json!(image.min_disk)),
        ("disk_format", json!(image.disk_format)),
        ("container_format", json!(image.container_format)),
        ("direct_url", json!(image.url)),
        ("created_at", json!(iso_z(image.created_at))),
        ("updated_at", json!(iso_z(image.updated_at))),
        ("tags", json!([])),
        ("self", json!(format!("/v2/images/{}", image.id))),
        ("file", json!(format!("/v2/images/{}/file", image.id))),
        ("schema", json!("/v2/schemas/image")),
    ];
    for (key, value) in fields {
        body.insert(key.into(), value);
    }
    Value::Object(body)
}

/// Dispatches `/v2/...` (segments after `v2`).
pub async fn glance(state: &AppState, req: &Req) -> ApiResult<Reply> {
    use actix_web::http::Method;
    let segments: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match (segments.as_slice(), &req.method) {
        (["images"], m) if m == Method::GET => glance_list(state, req).await,
        (["images"], m) if m == Method::POST => glance_create(state, req).await,
        (["images", id], m) if m == Method::GET => {
            let image = load(state, req, id).await?;
            Ok(Reply::json(glance_view(&image)))
        }
        (["images", id], m) if m == Method::DELETE => glance_delete(state, req, id).await,
        (["images"], _) | (["images", _], _) => Err(ApiError::new(
            405,
            "The method is not allowed for this resource.",
        )),
        _ => Err(ApiError::not_found("The resource could not be found.")),
    }
}

async fn load(state: &AppState, req: &Req, id: &str) -> ApiResult<Image> {
    match storage::get_image(&state.db, id).await? {
        Some(image) if image.visible_to(&req.context.project_id, req.context.is_admin) => Ok(image),
        _ => Err(ApiError::image_not_found(id)),
    }
}

async fn visible(state: &AppState, req: &Req) -> ApiResult<Vec<Image>> {
    Ok(storage::list_images(&state.db)
        .await?
        .into_iter()
        .filter(|i| i.visible_to(&req.context.project_id, req.context.is_admin))
        .filter(|i| {
            req.query_one("name")
                .is_none_or(|name| i.name.as_deref() == Some(name))
        })
        .collect())
}

async fn glance_list(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let images = visible(state, req).await?;
    let (images, more) = super::page(
        req,
        images,
        |i| &i.id,
        |marker| {
            ApiError::bad_request(format!(
                "Invalid marker. Image {marker} could not be found."
            ))
        },
    )?;
    let mut body = json!({
        "images": images.iter().map(glance_view).collect::<Vec<_>>(),
        "schema": "/v2/schemas/images",
        "first": "/v2/images",
    });
    if more {
        if let Some(last) = images.last() {
            body["next"] = json!(format!("/v2/images?marker={}", last.id));
        }
    }
    Ok(Reply::json(body))
}

fn opt_string(body: &Map<String, Value>, field: &str) -> ApiResult<Option<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.chars().count() <= 255 => Ok(Some(text.clone())),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid value for {field}: {}",
            crate::error::python_repr(other)
        ))),
    }
}

fn one_of(field: &str, value: Option<String>, allowed: &[&str]) -> ApiResult<Option<String>> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(ApiError::bad_request(format!(
            "Invalid value '{v}' for {field}: must be one of {}",
            allowed.join(", ")
        ))),
        other => Ok(other),
    }
}

const KNOWN_FIELDS: &[&str] = &[
    "id",
    "name",
    "url",
    "direct_url",
    "disk_format",
    "container_format",
    "os_hash_algo",
    "os_hash_value",
    "checksum",
    "size",
    "min_disk",
    "min_ram",
    "visibility",
    "properties",
    "tags",
    "protected",
    "os_hidden",
];

async fn glance_create(state: &AppState, req: &Req) -> ApiResult<Reply> {
    let Value::Object(body) = req.json()? else {
        return Err(ApiError::bad_request("Malformed request body"));
    };
    let id = match opt_string(&body, "id")? {
        Some(id) => uuid::Uuid::parse_str(&id)
            .map_err(|_| ApiError::bad_request(format!("Invalid id: {id} is not a UUID")))?
            .hyphenated()
            .to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let url = opt_string(&body, "url")?
        .or(opt_string(&body, "direct_url")?)
        .ok_or_else(|| ApiError::bad_request("An image needs a url to deploy it from."))?;
    let scheme = match url::Url::parse(&url) {
        Ok(parsed) => parsed.scheme().to_ascii_lowercase(),
        Err(_) => return Err(ApiError::bad_request(format!("Invalid url: {url}"))),
    };
    if !state.config.image_url_schemes.contains(&scheme) {
        return Err(ApiError::bad_request(format!(
            "Invalid url: {url}: images may only be deployed from {} URLs.",
            state.config.image_url_schemes.join(", ")
        )));
    }
    let visibility = one_of(
        "visibility",
        opt_string(&body, "visibility")?,
        &["public", "private", "shared", "community"],
    )?
    .unwrap_or_else(|| "shared".into());
    if visibility == "public" {
        req.context.require_admin("publicize_image")?;
    }
    let os_hash_algo = one_of(
        "os_hash_algo",
        opt_string(&body, "os_hash_algo")?,
        HASH_ALGOS,
    )?;
    let os_hash_value = opt_string(&body, "os_hash_value")?;
    if os_hash_algo.is_some() != os_hash_value.is_some() {
        return Err(ApiError::bad_request(
            "os_hash_algo and os_hash_value go together.",
        ));
    }
    let int = |field: &str| -> ApiResult<i64> {
        match body.get(field) {
            None | Some(Value::Null) => Ok(0),
            Some(value) => value
                .as_i64()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::bad_request(format!("Invalid value for {field}"))),
        }
    };
    let mut properties = BTreeMap::new();
    if let Some(Value::Object(given)) = body.get("properties") {
        for (key, value) in given {
            let text = value
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            properties.insert(key.clone(), text);
        }
    }
    for (key, value) in &body {
        if KNOWN_FIELDS.contains(&key.as_str()) {
            continue;
        }
        match value {
            Value::String(text) => {
                properties.insert(key.clone(), text.clone());
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Property {key} must be a string, not {}",
                    crate::error::python_repr(other)
                )))
            }
        }
    }
    let now = storage::now_micros();
    let image = Image {
        id,
        name: opt_string(&body, "name")?,
        url,
        disk_format: one_of(
            "disk_format",
            opt_string(&body, "disk_format")?,
            DISK_FORMATS,
        )?,
        container_format: one_of(
            "container_format",
            opt_string(&body, "container_format")?,
            CONTAINER_FORMATS,
        )?,
        os_hash_algo,
        os_hash_value,
        checksum: opt_string(&body, "checksum")?,
        size: body.get("size").and_then(Value::as_i64),
        min_disk: int("min_disk")?,
        min_ram: int("min_ram")?,
        visibility,
        owner: Some(req.context.project_id.clone()),
        properties,
        created_at: now,
        updated_at: now,
    };
    if !storage::insert_image(&state.db, &image).await? {
        return Err(ApiError::conflict(format!(
            "Image with identifier {} already exists!",
            image.id
        )));
    }
    Ok(Reply::json(glance_view(&image)).status(201))
}

async fn glance_delete(state: &AppState, req: &Req, id: &str) -> ApiResult<Reply> {
    let image = load(state, req, id).await?;
    if !req.context.is_admin && image.owner.as_deref() != Some(req.context.project_id.as_str()) {
        return Err(ApiError::forbidden(format!(
            "You are not permitted to delete image {id}."
        )));
    }
    if !storage::delete_image(&state.db, id).await? {
        return Err(ApiError::image_not_found(id));
    }
    Ok(Reply::empty(204))
}

/// An image as Nova's proxy shows it.
fn nova_view(req: &Req, image: &Image, detail: bool) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), json!(image.id));
    body.insert("name".into(), json!(image.name));
    let mut links = req.links("images", &image.id);
    if let Some(list) = links.as_array_mut() {
        list.push(json!({
            "rel": "alternate",
            "type": "application/vnd.openstack.image",
            "href": format!("{}/images/{}", req.base_url, image.id),
        }));
    }
    body.insert("links".into(), links);
    if detail {
        body.insert("minDisk".into(), json!(image.min_disk));
        body.insert("minRam".into(), json!(image.min_ram));
        body.insert("progress".into(), json!(100));
        body.insert("status".into(), json!("ACTIVE"));
        body.insert("created".into(), json!(iso_z(image.created_at)));
        body.insert("updated".into(), json!(iso_z(image.updated_at)));
        body.insert("metadata".into(), json!(image.properties));
        body.insert("OS-EXT-IMG-SIZE:size".into(), json!(image.size));
    }
    Value::Object(body)
}

fn proxy_gone(req: &Req) -> ApiResult<()> {
    if req.at_least(36) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    Ok(())
}

pub async fn nova_list(state: &AppState, req: &Req, detail: bool) -> ApiResult<Reply> {
    proxy_gone(req)?;
    let images = visible(state, req).await?;
    let (images, more) = super::page(
        req,
        images,
        |i| &i.id,
        |marker| ApiError::bad_request(format!("marker [{marker}] not found")),
    )?;
    let mut body = json!({
        "images": images.iter().map(|i| nova_view(req, i, detail)).collect::<Vec<_>>()
    });
    if more {
        let path = if detail { "images/detail" } else { "images" };
        body["images_links"] = super::next_link(req, path, images.last().map(|i| i.id.as_str()));
    }
    Ok(Reply::json(body))
}

pub async fn nova_show(state: &AppState, req: &Req, id: &str) -> ApiResult<Reply> {
    proxy_gone(req)?;
    let image = load(state, req, id).await?;
    Ok(Reply::json(
        json!({ "image": nova_view(req, &image, true) }),
    ))
}
