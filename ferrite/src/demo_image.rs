//! The demo's image record in compute's image registry (`/v2/images`).
//! Fake-hardware nodes never download it; real deploys will.

use serde_json::{json, Value};

const NAME: &str = "ferrite-demo";

pub async fn ensure(base: &str, http: &reqwest::Client) -> Result<String, String> {
    let listed = http
        .get(format!("{base}/v2/images"))
        .header("X-Auth-Token", "admin:demo")
        .send()
        .await
        .map_err(|e| format!("image list: {e}"))?;
    let body: Value = listed
        .json()
        .await
        .map_err(|e| format!("image list: {e}"))?;
    if let Some(found) = body["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == NAME))
    {
        return Ok(found["id"].as_str().unwrap_or("").to_string());
    }
    let created = http
        .post(format!("{base}/v2/images"))
        .header("X-Auth-Token", "admin:demo")
        .json(&json!({
            "name": NAME,
            "url": "http://127.0.0.1:8080/ferrite-demo.raw",
            "disk_format": "raw",
            "container_format": "bare",
        }))
        .send()
        .await
        .map_err(|e| format!("image create: {e}"))?;
    let status = created.status().as_u16();
    let body: Value = created
        .json()
        .await
        .map_err(|e| format!("image create: {e}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("image create answered {status}: {body}"));
    }
    Ok(body["id"].as_str().unwrap_or("").to_string())
}
