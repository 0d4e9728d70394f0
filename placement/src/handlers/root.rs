//! `GET /`: version discovery.

use serde_json::json;

use crate::error::ApiResult;
use crate::http::{Reply, Req};
use crate::microversion::{MAX_STR, MIN_STR};
use crate::AppState;

pub async fn home(_state: &AppState, _req: &Req) -> ApiResult<Reply> {
    Ok(Reply::json(json!({
        "versions": [{
            "id": format!("v{MIN_STR}"),
            "max_version": MAX_STR,
            "min_version": MIN_STR,
            "status": "CURRENT",
            "links": [{"rel": "self", "href": ""}],
        }]
    }))
    .modified_now())
}
