//! The demo's image record in compute's image registry (`/v2/images`).
//! `ferrite up` with a simulated fleet registers the image it built and
//! serves; `ferrite demo` uses that record, or makes a placeholder one for
//! fake-hardware nodes, which never download it.

use serde_json::{json, Value};

/// The record's name.
pub const NAME: &str = "ferrite-demo";
/// The image file's name on the conductor's HTTP boot server.
pub const FILE: &str = "ferrite-demo.raw";

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let mut request = http
        .request(method.clone(), &url)
        .header("X-Auth-Token", "admin:demo");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// The registry's record named [`NAME`], if any.
async fn find(base: &str, http: &reqwest::Client) -> Result<Option<Value>, String> {
    let (status, body) = call(
        http,
        reqwest::Method::GET,
        format!("{base}/v2/images"),
        None,
    )
    .await?;
    if status != 200 {
        return Err(format!("image list answered {status}: {body}"));
    }
    Ok(body["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == NAME))
        .cloned())
}

async fn create(base: &str, http: &reqwest::Client, record: Value) -> Result<String, String> {
    let (status, body) = call(
        http,
        reqwest::Method::POST,
        format!("{base}/v2/images"),
        Some(record),
    )
    .await?;
    if !(200..300).contains(&status) {
        return Err(format!("image create answered {status}: {body}"));
    }
    Ok(body["id"].as_str().unwrap_or("").to_string())
}

/// The demo image's id: the existing record, else a placeholder record.
pub async fn ensure(base: &str, http: &reqwest::Client) -> Result<String, String> {
    if let Some(found) = find(base, http).await? {
        return Ok(found["id"].as_str().unwrap_or("").to_string());
    }
    create(
        base,
        http,
        json!({
            "name": NAME,
            "url": format!("http://127.0.0.1:8080/{FILE}"),
            "disk_format": "raw",
            "container_format": "bare",
        }),
    )
    .await
}

/// Makes the record describe the image at `url` with `sha256` (a record
/// that names another URL or checksum is replaced); returns its id.
pub async fn register(
    base: &str,
    http: &reqwest::Client,
    url: &str,
    sha256: &str,
) -> Result<String, String> {
    if let Some(found) = find(base, http).await? {
        let id = found["id"].as_str().unwrap_or("").to_string();
        if found["direct_url"] == url && found["os_hash_value"] == sha256 {
            return Ok(id);
        }
        let (status, body) = call(
            http,
            reqwest::Method::DELETE,
            format!("{base}/v2/images/{id}"),
            None,
        )
        .await?;
        if !(200..300).contains(&status) && status != 404 {
            return Err(format!("image delete answered {status}: {body}"));
        }
    }
    create(
        base,
        http,
        json!({
            "name": NAME,
            "url": url,
            "disk_format": "raw",
            "container_format": "bare",
            "os_hash_algo": "sha256",
            "os_hash_value": sha256,
        }),
    )
    .await
}
