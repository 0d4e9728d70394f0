//! Version discovery: `/` lists the API versions, `/v2.1` describes ours.

use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::http::{Reply, MAX_VERSION, MIN_VERSION};

fn v21_body(base_url: &str) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": format!("2.{MAX_VERSION}"),
        "min_version": format!("2.{MIN_VERSION}"),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base_url}/v2.1/")}],
    })
}

pub fn root(base_url: &str) -> ApiResult<Reply> {
    Ok(Reply::json(json!({ "versions": [v21_body(base_url)] })))
}

pub fn v21(base_url: &str) -> ApiResult<Reply> {
    let mut body = v21_body(base_url);
    body["links"] = json!([
        {"rel": "self", "href": format!("{base_url}/v2.1/")},
        {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
    ]);
    body["media-types"] = json!([
        {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}
    ]);
    Ok(Reply::json(json!({ "version": body })))
}
