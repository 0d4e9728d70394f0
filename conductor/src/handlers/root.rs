//! Version discovery, conductors and shards.

use ferrite_conductor_states::ApiVersion;
use serde_json::{json, Value};

use super::{links, require_endpoint};
use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::storage;
use crate::AppState;

fn version_doc(base: &str) -> Value {
    json!({
        "id": "v1",
        "links": [{"href": format!("{base}/v1/"), "rel": "self"}],
        "status": "CURRENT",
        "min_version": ApiVersion::MIN.to_string(),
        "version": ApiVersion::MAX.to_string(),
    })
}

pub fn root(req: &Req) -> ApiResult<Reply> {
    let version = version_doc(&req.base_url);
    Ok(Reply::json(json!({
        "name": "OpenStack Ironic API",
        "description": "Ironic is an OpenStack project which enables the provision and management of baremetal machines.",
        "default_version": version,
        "versions": [version],
    })))
}

pub fn v1(req: &Req) -> ApiResult<Reply> {
    let base = &req.base_url;
    let collection = |name: &str| {
        json!([
            {"href": format!("{base}/v1/{name}/"), "rel": "self"},
            {"href": format!("{base}/{name}/"), "rel": "bookmark"},
        ])
    };
    let mut body = json!({
        "id": "v1",
        "links": [
            {"href": format!("{base}/v1/"), "rel": "self"},
            {"href": "https://docs.openstack.org//ironic/latest/contributor//webapi.html", "rel": "describedby", "type": "text/html"},
        ],
        "media_types": {"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"},
        "chassis": collection("chassis"),
        "nodes": collection("nodes"),
        "ports": collection("ports"),
        "drivers": collection("drivers"),
        "version": version_doc(base),
    });
    if let Some(map) = body.as_object_mut() {
        if req.at_least(49) {
            map.insert("conductors".into(), collection("conductors"));
        }
        if req.at_least(82) {
            map.insert("shards".into(), collection("shards"));
        }
    }
    Ok(Reply::json(body))
}

fn iso(micros: i64) -> Value {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()))
        .unwrap_or(Value::Null)
}

pub async fn conductors(state: &AppState, req: &Req, host: Option<&str>) -> ApiResult<Reply> {
    require_endpoint(req, 49)?;
    let now = storage::now_micros();
    let timeout = state.config.heartbeat_timeout_secs as i64 * 1_000_000;
    let rows = storage::list_conductors(state.db.conn()).await?;
    let detail = host.is_some()
        || req
            .query_one("detail")
            .is_some_and(|d| d.eq_ignore_ascii_case("true"));
    let render = |row: &storage::ConductorRow| {
        let alive = row.online && now - row.updated_at < timeout;
        let mut item = json!({
            "hostname": row.hostname,
            "conductor_group": row.conductor_group,
            "alive": alive,
            "links": links(&req.base_url, &format!("conductors/{}", row.hostname)),
        });
        if detail {
            if let Some(map) = item.as_object_mut() {
                map.insert("drivers".into(), json!(row.drivers));
                map.insert("created_at".into(), iso(row.created_at));
                map.insert("updated_at".into(), iso(row.updated_at));
            }
        }
        item
    };
    match host {
        Some(host) => rows
            .iter()
            .find(|row| row.hostname == host)
            .map(|row| Reply::json(render(row)))
            .ok_or_else(|| ApiError::not_found(format!("Conductor {host} could not be found."))),
        None => Ok(Reply::json(json!({
            "conductors": rows.iter().map(render).collect::<Vec<_>>()
        }))),
    }
}

pub async fn shards(state: &AppState, req: &Req) -> ApiResult<Reply> {
    require_endpoint(req, 82)?;
    let rows = ferrite_db::query_all(
        state.db.conn(),
        "SELECT shard, COUNT(*) AS n FROM nodes WHERE shard IS NOT NULL GROUP BY shard ORDER BY shard",
        vec![],
    )
    .await?;
    let shards: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "name": ferrite_db::get_string(row, "shard"),
                "count": ferrite_db::get_i64(row, "n"),
            })
        })
        .collect();
    Ok(Reply::json(json!({ "shards": shards })))
}
