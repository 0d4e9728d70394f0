//! The config drive's contents, as Nova's `InstanceMetadata` writes them
//! (`openstack/latest/meta_data.json` and friends), and the instance_info
//! patch of a deploy (Nova's `patcher.GenericDriverFields`).

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::SpawnRequest;

/// `meta_data.json`. Keys as upstream's latest version writes them; the
/// random seed is 512 random bytes, base64.
pub fn meta_data(request: &SpawnRequest, availability_zone: &str) -> Value {
    let mut doc = Map::new();
    doc.insert("uuid".into(), json!(request.instance_uuid));
    if !request.metadata.is_empty() {
        doc.insert("meta".into(), json!(request.metadata));
    }
    if !request.public_keys.is_empty() {
        doc.insert("public_keys".into(), json!(request.public_keys));
        let keys: Vec<Value> = request
            .public_keys
            .iter()
            .map(|(name, data)| json!({"name": name, "type": "ssh", "data": data}))
            .collect();
        doc.insert("keys".into(), Value::Array(keys));
    }
    doc.insert("hostname".into(), json!(request.hostname));
    doc.insert("name".into(), json!(request.instance_name));
    doc.insert("launch_index".into(), json!(0));
    doc.insert("availability_zone".into(), json!(availability_zone));
    doc.insert("random_seed".into(), json!(random_seed()));
    doc.insert("project_id".into(), json!(request.project_id));
    doc.insert("devices".into(), json!([]));
    doc.insert("dedicated_cpus".into(), json!([]));
    Value::Object(doc)
}

/// 512 random bytes from the OS generator (via v4 UUIDs), base64.
fn random_seed() -> String {
    let mut bytes = Vec::with_capacity(512);
    while bytes.len() < 512 {
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(&bytes)
}

/// The user data the tenant sent, decoded; an error names what is wrong.
pub fn user_data(request: &SpawnRequest) -> Result<Option<Vec<u8>>, String> {
    match &request.user_data {
        None => Ok(None),
        Some(text) => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(Some)
            .map_err(|e| format!("user_data is not valid base64: {e}")),
    }
}

/// The builds the config drive, gzipped and base64-encoded for the API.
pub fn config_drive(request: &SpawnRequest, availability_zone: &str) -> Result<String, String> {
    let drive = ferrite_configdrive::ConfigDrive {
        meta_data: meta_data(request, availability_zone),
        user_data: user_data(request)?,
        network_data: (!request.network_data.is_null()).then(|| request.network_data.clone()),
        vendor_data: Some(json!({})),
    };
    let image = drive.to_iso().map_err(|e| e.to_string())?;
    let packed = ferrite_configdrive::pack(&image);
    if packed.is_empty() {
        return Err("the config drive writer produced nothing".into());
    }
    Ok(packed)
}

/// Whether the instance gets a config drive: when the operator forces one
/// (`[DEFAULT] force_config_drive`, on by default here since the compute
/// API has no metadata service) or the image demands it.
pub fn config_drive_required(request: &SpawnRequest, force: bool) -> bool {
    force
        || request
            .image
            .properties
            .get("img_config_drive")
            .is_some_and(|v| v == "mandatory")
}

/// JSON-Patch ops putting the deploy parameters into `instance_info`.
/// Numbers are strings, as Nova sends them.
pub fn instance_info_patch(request: &SpawnRequest, host: &str) -> Vec<Value> {
    let image = &request.image;
    let flavor = &request.flavor;
    let mut info: Vec<(&str, Value)> = vec![
        ("image_source", json!(image.url)),
        ("image_disk_format", json!(image.disk_format)),
        ("root_gb", json!(flavor.root_gb.to_string())),
        ("swap_mb", json!(flavor.swap_mb.to_string())),
        ("display_name", json!(request.instance_name)),
        ("vcpus", json!(flavor.vcpus.to_string())),
        ("memory_mb", json!(flavor.ram_mb.to_string())),
        ("nova_host_id", json!(host)),
        ("project_id", json!(request.project_id)),
        ("user_id", json!(request.user_id)),
        ("flavor_name", json!(flavor.name)),
    ];
    match (&image.os_hash_algo, &image.os_hash_value) {
        (Some(algo), Some(value)) => {
            info.push(("image_os_hash_algo", json!(algo)));
            info.push(("image_os_hash_value", json!(value)));
        }
        _ => {
            if let Some(checksum) = &image.checksum {
                info.push(("image_checksum", json!(checksum)));
            }
        }
    }
    if let Some(size) = image.size.filter(|size| *size > 0) {
        info.push(("image_size", json!(size.to_string())));
    }
    if flavor.ephemeral_gb > 0 {
        info.push(("ephemeral_gb", json!(flavor.ephemeral_gb.to_string())));
    }
    let mut capabilities = Map::new();
    let mut traits: Vec<String> = Vec::new();
    let specs = flavor.extra_specs.iter().chain(image.properties.iter());
    for (key, value) in specs {
        if let Some(name) = key.strip_prefix("capabilities:") {
            capabilities.insert(name.to_string(), json!(value));
        } else if let Some((prefix, name)) = key.split_once(':') {
            // `trait`, or `trait<N>` in granular request syntax: the group
            // does not matter to Ironic. Only required traits are passed.
            let granular = prefix.strip_prefix("trait").is_some_and(|suffix| {
                suffix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
            if granular && value == "required" && !traits.iter().any(|t| t == name) {
                traits.push(name.to_string());
            }
        }
    }
    if !capabilities.is_empty() {
        // Ironic expects the capabilities as a JSON string.
        info.push((
            "capabilities",
            json!(Value::Object(capabilities).to_string()),
        ));
    }
    if !traits.is_empty() {
        info.push(("traits", json!(traits)));
    }
    info.into_iter()
        .map(|(key, value)| json!({"op": "add", "path": format!("/instance_info/{key}"), "value": value}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_carries_capabilities_and_required_traits() {
        let mut request = SpawnRequest::default();
        request
            .flavor
            .extra_specs
            .insert("capabilities:boot_mode".into(), "uefi".into());
        request
            .flavor
            .extra_specs
            .insert("trait:CUSTOM_RAID".into(), "required".into());
        request
            .flavor
            .extra_specs
            .insert("trait1:CUSTOM_GPU".into(), "required".into());
        request
            .flavor
            .extra_specs
            .insert("trait:CUSTOM_NO".into(), "forbidden".into());
        request
            .flavor
            .extra_specs
            .insert("resources:VCPU".into(), "0".into());
        request.flavor.ephemeral_gb = 0;
        request.image.checksum = Some("abc".into());
        request.image.size = Some(4096);
        let ops = instance_info_patch(&request, "compute-1");
        let find = |key: &str| {
            ops.iter()
                .find(|op| op["path"] == format!("/instance_info/{key}"))
                .map(|op| op["value"].clone())
        };
        assert_eq!(
            find("capabilities"),
            Some(json!("{\"boot_mode\":\"uefi\"}"))
        );
        assert_eq!(find("traits"), Some(json!(["CUSTOM_GPU", "CUSTOM_RAID"])));
        assert_eq!(find("image_checksum"), Some(json!("abc")));
        assert_eq!(
            find("image_size"),
            Some(json!("4096")),
            "bounds the download"
        );
        assert_eq!(find("ephemeral_gb"), None);
        assert_eq!(find("root_gb"), Some(json!("0")));
    }

    #[test]
    fn meta_data_keys() {
        let mut request = SpawnRequest {
            instance_uuid: "i-1".into(),
            hostname: "web".into(),
            ..SpawnRequest::default()
        };
        request
            .public_keys
            .insert("k".into(), "ssh-ed25519 AAAA".into());
        let doc = meta_data(&request, "nova");
        assert_eq!(doc["uuid"], "i-1");
        assert_eq!(doc["launch_index"], 0);
        assert_eq!(doc["keys"][0]["type"], "ssh");
        assert_eq!(doc["public_keys"]["k"], "ssh-ed25519 AAAA");
        assert_eq!(doc["devices"], json!([]));
        assert!(doc.get("meta").is_none());
    }

    #[test]
    fn user_data_is_decoded() {
        let request = SpawnRequest {
            user_data: Some("aGVsbG8=".into()),
            ..SpawnRequest::default()
        };
        assert_eq!(user_data(&request), Ok(Some(b"hello".to_vec())));
        let bad = SpawnRequest {
            user_data: Some("***".into()),
            ..SpawnRequest::default()
        };
        assert!(user_data(&bad).is_err());
    }
}
