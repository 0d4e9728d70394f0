//! A small JSON Schema (draft 4 subset) validator and Placement's request
//! schemas.
//!
//! Placement reports schema violations as `JSON does not validate: <message>`,
//! where the message is what Python's `jsonschema` would say. Clients and
//! upstream's tests match on those texts, so this validator produces the same
//! sentences (values are rendered as Python `repr`s). Only the keywords the
//! Placement schemas use are implemented.

use serde_json::{json, Map, Value};

/// Renders a JSON value the way Python's `repr` renders the decoded object.
pub fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                if f.fract() == 0.0 && f.abs() < 1e16 {
                    format!("{f:.1}")
                } else {
                    format!("{f}")
                }
            } else {
                n.to_string()
            }
        }
        Value::String(s) => py_str_repr(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", py_str_repr(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn py_str_repr(s: &str) -> String {
    ferrite_resource_classes::python_repr(s)
}

/// True when `text` is a UUID in any form Python's `uuid.UUID` accepts and
/// oslo's `is_uuid_like` allows (hyphens optional, braces and `urn:uuid:`).
pub fn is_uuid_like(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok()
}

struct Failure {
    depth: usize,
    message: String,
}

/// Where the validator is: the schema and instance paths, Python-rendered.
struct Position<'a> {
    schema_path: Vec<String>,
    instance_path: Vec<String>,
    schema: &'a Map<String, Value>,
}

impl Position<'_> {
    /// jsonschema's `str(ValidationError)`: the message, then which keyword
    /// failed where, with the schema and instance involved.
    fn describe(&self, message: &str, keyword: &str, instance: &Value) -> String {
        let indent = |text: String| text.replace('\n', "\n    ");
        format!(
            "{message}\n\nFailed validating {} in schema{}:\n    {}\n\nOn instance{}:\n    {}",
            py_str_repr(keyword),
            self.schema_path.concat(),
            indent(py_repr(&Value::Object(self.schema.clone()))),
            self.instance_path.concat(),
            indent(py_repr(instance)),
        )
    }
}

/// Validates `instance` against `schema`; the error is the full text of the
/// shallowest failure, as `jsonschema.validate`'s best match picks it.
pub fn validate(instance: &Value, schema: &Value) -> Result<(), String> {
    let mut failures = Vec::new();
    check(instance, schema, Vec::new(), Vec::new(), &mut failures);
    match failures.into_iter().min_by_key(|f| f.depth) {
        None => Ok(()),
        Some(f) => Err(f.message),
    }
}

/// The first line of a validation error (the message alone).
pub fn summary(error: &str) -> &str {
    error.split("\n\n").next().unwrap_or(error)
}

fn type_matches(instance: &Value, name: &str) -> bool {
    match name {
        "object" => instance.is_object(),
        "array" => instance.is_array(),
        "string" => instance.is_string(),
        "integer" => match instance {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        "number" => instance.is_number(),
        "boolean" => instance.is_boolean(),
        "null" => instance.is_null(),
        _ => true,
    }
}

fn regex_matches(pattern: &str, text: &str) -> bool {
    // Python's `re.search`: unanchored unless the pattern anchors itself.
    regex::Regex::new(pattern).is_ok_and(|re| re.is_match(text))
}

fn child(path: &[String], item: String) -> Vec<String> {
    let mut out = path.to_vec();
    out.push(item);
    out
}

fn key_item(key: &str) -> String {
    format!("[{}]", py_str_repr(key))
}

fn check(
    instance: &Value,
    schema: &Value,
    schema_path: Vec<String>,
    instance_path: Vec<String>,
    out: &mut Vec<Failure>,
) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    let depth = instance_path.len();
    let here = Position {
        schema_path,
        instance_path,
        schema,
    };
    let fail = |out: &mut Vec<Failure>, message: String, keyword: &str| {
        out.push(Failure {
            depth,
            message: here.describe(&message, keyword, instance),
        })
    };

    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !names.iter().any(|n| type_matches(instance, n)) {
            let listed = names
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ");
            fail(
                out,
                format!("{} is not of type {listed}", py_repr(instance)),
                "type",
            );
            return;
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(instance) {
            fail(
                out,
                format!(
                    "{} is not one of {}",
                    py_repr(instance),
                    py_repr(&Value::Array(options.clone()))
                ),
                "enum",
            );
        }
    }
    if let Some(Value::Array(options)) = schema.get("anyOf") {
        let mut best: Option<Vec<Failure>> = None;
        for (index, option) in options.iter().enumerate() {
            let mut sub = Vec::new();
            let path = child(&here.schema_path, "['anyOf']".to_string());
            check(
                instance,
                option,
                child(&path, format!("[{index}]")),
                here.instance_path.clone(),
                &mut sub,
            );
            if sub.is_empty() {
                best = None;
                break;
            }
            // Prefer the branch whose type matched, as best_match does.
            let type_failed = sub
                .iter()
                .any(|f| summary(&f.message).contains(" is not of type "));
            if best.is_none() || !type_failed {
                best = Some(sub);
            }
        }
        if let Some(sub) = best {
            out.extend(sub);
        }
    }
    match instance {
        Value::String(text) => {
            let length = text.chars().count();
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if (length as u64) < min {
                    let message = if min == 1 {
                        format!("{} should be non-empty", py_repr(instance))
                    } else {
                        format!("{} is too short", py_repr(instance))
                    };
                    fail(out, message, "minLength");
                }
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if (length as u64) > max {
                    fail(
                        out,
                        format!("{} is too long", py_repr(instance)),
                        "maxLength",
                    );
                }
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                if !regex_matches(pattern, text) {
                    fail(
                        out,
                        format!(
                            "{} does not match {}",
                            py_repr(instance),
                            py_str_repr(pattern)
                        ),
                        "pattern",
                    );
                }
            }
            if schema.get("format").and_then(Value::as_str) == Some("uuid") && !is_uuid_like(text) {
                fail(
                    out,
                    format!("{} is not a 'uuid'", py_repr(instance)),
                    "format",
                );
            }
        }
        Value::Number(n) => {
            let value = n.as_f64().unwrap_or(0.0);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if value < min {
                    fail(
                        out,
                        format!(
                            "{} is less than the minimum of {}",
                            py_repr(instance),
                            py_repr(&schema["minimum"])
                        ),
                        "minimum",
                    );
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if value > max {
                    fail(
                        out,
                        format!(
                            "{} is greater than the maximum of {}",
                            py_repr(instance),
                            py_repr(&schema["maximum"])
                        ),
                        "maximum",
                    );
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                if (items.len() as u64) < min {
                    let message = if min == 1 {
                        format!("{} should be non-empty", py_repr(instance))
                    } else {
                        format!("{} is too short", py_repr(instance))
                    };
                    fail(out, message, "minItems");
                }
            }
            if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
                let unique = items
                    .iter()
                    .enumerate()
                    .all(|(i, a)| items[i + 1..].iter().all(|b| a != b));
                if !unique {
                    fail(
                        out,
                        format!("{} has non-unique elements", py_repr(instance)),
                        "uniqueItems",
                    );
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    check(
                        item,
                        item_schema,
                        child(&here.schema_path, "['items']".to_string()),
                        child(&here.instance_path, format!("[{index}]")),
                        out,
                    );
                }
            }
        }
        Value::Object(map) => check_object(instance, map, &here, out),
        _ => {}
    }
}

fn check_object(
    instance: &Value,
    map: &Map<String, Value>,
    here: &Position<'_>,
    out: &mut Vec<Failure>,
) {
    let schema = here.schema;
    let depth = here.instance_path.len();
    let fail = |out: &mut Vec<Failure>, message: String, keyword: &str| {
        out.push(Failure {
            depth,
            message: here.describe(&message, keyword, instance),
        })
    };
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                fail(
                    out,
                    format!("{} is a required property", py_str_repr(name)),
                    "required",
                );
            }
        }
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64) {
        if (map.len() as u64) < min {
            let message = if min == 1 {
                format!("{} should be non-empty", py_repr(instance))
            } else {
                format!("{} does not have enough properties", py_repr(instance))
            };
            fail(out, message, "minProperties");
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let patterns = schema.get("patternProperties").and_then(Value::as_object);
    let mut unexpected = Vec::new();
    for (key, value) in map {
        let mut matched = false;
        if let Some(sub) = properties.and_then(|p| p.get(key)) {
            matched = true;
            let path = child(&here.schema_path, "['properties']".to_string());
            check(
                value,
                sub,
                child(&path, key_item(key)),
                child(&here.instance_path, key_item(key)),
                out,
            );
        }
        if let Some(patterns) = patterns {
            for (pattern, sub) in patterns {
                if regex_matches(pattern, key) {
                    matched = true;
                    let path = child(&here.schema_path, "['patternProperties']".to_string());
                    check(
                        value,
                        sub,
                        child(&path, key_item(pattern)),
                        child(&here.instance_path, key_item(key)),
                        out,
                    );
                }
            }
        }
        if !matched {
            unexpected.push(key.clone());
        }
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) && !unexpected.is_empty() {
        let names = unexpected
            .iter()
            .map(|k| py_str_repr(k))
            .collect::<Vec<_>>()
            .join(", ");
        if let Some(patterns) = patterns {
            let mut sorted: Vec<&String> = unexpected.iter().collect();
            sorted.sort();
            let extras = sorted
                .iter()
                .map(|k| py_str_repr(k))
                .collect::<Vec<_>>()
                .join(", ");
            let listed = patterns
                .keys()
                .map(|p| py_str_repr(p))
                .collect::<Vec<_>>()
                .join(", ");
            let verb = if unexpected.len() == 1 { "does" } else { "do" };
            fail(
                out,
                format!("{extras} {verb} not match any of the regexes: {listed}"),
                "additionalProperties",
            );
            return;
        }
        let verb = if unexpected.len() == 1 { "was" } else { "were" };
        fail(
            out,
            format!("Additional properties are not allowed ({names} {verb} unexpected)"),
            "additionalProperties",
        );
    }
}

// ---------------------------------------------------------------------------
// Placement's request bodies.

const INT32_MAX: i64 = 2_147_483_647;
pub const RC_PATTERN: &str = "^[A-Z0-9_]+$";
pub const CUSTOM_PATTERN: &str = "^CUSTOM_[A-Z0-9_]+$";
const UUID_KEY_PATTERN: &str = "^[0-9a-fA-F-]{36}$";

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn uuid_string() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn bounded_int(min: i64) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": INT32_MAX})
}

fn inventory_fields() -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert(
        "resource_provider_generation".into(),
        json!({"type": "integer"}),
    );
    fields.insert("total".into(), bounded_int(1));
    fields.insert("reserved".into(), bounded_int(0));
    fields.insert("min_unit".into(), bounded_int(1));
    fields.insert("max_unit".into(), bounded_int(1));
    fields.insert("step_size".into(), bounded_int(1));
    fields.insert(
        "allocation_ratio".into(),
        json!({"type": "number", "maximum": 3.40282e38}),
    );
    fields
}

pub fn provider_create(nested: bool) -> Value {
    let mut props = json!({
        "name": {"type": "string", "maxLength": 200},
        "uuid": uuid_string(),
    });
    if nested {
        props["parent_provider_uuid"] = json!({"anyOf": [uuid_string(), {"type": "null"}]});
    }
    object(props, &["name"])
}

pub fn provider_update(nested: bool) -> Value {
    let mut props = json!({"name": {"type": "string", "maxLength": 200}});
    if nested {
        props["parent_provider_uuid"] = json!({"anyOf": [uuid_string(), {"type": "null"}]});
    }
    object(props, &["name"])
}

/// One inventory record for `PUT .../inventories/{rc}`.
pub fn inventory_record() -> Value {
    object(Value::Object(inventory_fields()), &["total"])
}

/// `POST .../inventories`.
pub fn inventory_create() -> Value {
    let mut fields = inventory_fields();
    fields.insert(
        "resource_class".into(),
        json!({"type": "string", "pattern": RC_PATTERN}),
    );
    object(Value::Object(fields), &["total", "resource_class"])
}

/// `PUT .../inventories` (all of them).
pub fn inventories_replace() -> Value {
    let mut patterns = Map::new();
    patterns.insert(RC_PATTERN.into(), inventory_record());
    object(
        json!({
            "resource_provider_generation": {"type": "integer"},
            "inventories": {"type": "object", "patternProperties": patterns},
        }),
        &["resource_provider_generation", "inventories"],
    )
}

pub fn resource_class_name() -> Value {
    object(
        json!({"name": {"type": "string", "pattern": CUSTOM_PATTERN, "maxLength": 255}}),
        &["name"],
    )
}

pub fn provider_traits() -> Value {
    object(
        json!({
            "traits": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255}},
            "resource_provider_generation": {"type": "integer"},
        }),
        &["traits", "resource_provider_generation"],
    )
}

fn aggregate_list() -> Value {
    json!({"type": "array", "items": uuid_string(), "uniqueItems": true})
}

pub fn aggregates(with_generation: bool) -> Value {
    if with_generation {
        object(
            json!({
                "aggregates": aggregate_list(),
                "resource_provider_generation": {"type": "integer"},
            }),
            &["aggregates", "resource_provider_generation"],
        )
    } else {
        aggregate_list()
    }
}

fn resources_map() -> Value {
    let mut patterns = Map::new();
    patterns.insert(RC_PATTERN.into(), json!({"type": "integer", "minimum": 1}));
    json!({
        "type": "object",
        "minProperties": 1,
        "patternProperties": patterns,
        "additionalProperties": false,
    })
}

fn id_string() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 255})
}

/// The pre-1.12 list form of a consumer's allocations.
pub fn allocations_list_form(with_project_user: bool) -> Value {
    let item = object(
        json!({
            "resource_provider": object(json!({"uuid": uuid_string()}), &["uuid"]),
            "resources": resources_map(),
        }),
        &["resource_provider", "resources"],
    );
    let allocations = json!({"type": "array", "minItems": 1, "items": item});
    if with_project_user {
        object(
            json!({"allocations": allocations, "project_id": id_string(), "user_id": id_string()}),
            &["allocations", "project_id", "user_id"],
        )
    } else {
        object(json!({"allocations": allocations}), &["allocations"])
    }
}

/// Which optional members a dict-form allocation body carries.
#[derive(Debug, Clone, Copy)]
pub struct AllocationShape {
    /// `allocations` may be empty (from 1.28, and always in POST/reshaper).
    pub allow_empty: bool,
    pub consumer_generation: bool,
    pub mappings: bool,
    pub consumer_type: bool,
}

fn allocations_dict(allow_empty: bool) -> Value {
    let mut patterns = Map::new();
    patterns.insert(
        UUID_KEY_PATTERN.into(),
        object(
            json!({"generation": {"type": "integer"}, "resources": resources_map()}),
            &["resources"],
        ),
    );
    json!({
        "type": "object",
        "minProperties": if allow_empty { 0 } else { 1 },
        "patternProperties": patterns,
        "additionalProperties": false,
    })
}

/// One consumer's allocations in dict form (`PUT /allocations/{c}` from 1.12,
/// each value of `POST /allocations`, each value of the reshaper's).
pub fn consumer_allocations(shape: AllocationShape) -> Value {
    let mut props = json!({
        "allocations": allocations_dict(shape.allow_empty),
        "project_id": id_string(),
        "user_id": id_string(),
    });
    let mut required = vec!["allocations", "project_id", "user_id"];
    if shape.consumer_generation {
        props["consumer_generation"] = json!({"type": ["integer", "null"]});
        required.push("consumer_generation");
    }
    if shape.mappings {
        let mut patterns = Map::new();
        patterns.insert(
            "[a-zA-Z0-9_-]{1,64}".into(),
            json!({"type": "array", "minItems": 1, "items": uuid_string()}),
        );
        props["mappings"] =
            json!({"type": "object", "minProperties": 1, "patternProperties": patterns});
    }
    if shape.consumer_type {
        props["consumer_type"] = json!({
            "type": "string", "minLength": 1, "maxLength": 255, "pattern": RC_PATTERN,
        });
        required.push("consumer_type");
    }
    object(props, &required)
}

/// `POST /allocations`: consumer uuid → consumer allocations.
pub fn allocations_by_consumer(shape: AllocationShape, min_consumers: u64) -> Value {
    let mut patterns = Map::new();
    patterns.insert(UUID_KEY_PATTERN.into(), consumer_allocations(shape));
    json!({
        "type": "object",
        "minProperties": min_consumers,
        "patternProperties": patterns,
        "additionalProperties": false,
    })
}

/// `POST /reshaper`.
pub fn reshaper(shape: AllocationShape) -> Value {
    let mut patterns = Map::new();
    patterns.insert(UUID_KEY_PATTERN.into(), inventories_replace());
    let inventories = json!({
        "type": "object",
        "minProperties": 1,
        "patternProperties": patterns,
        "additionalProperties": false,
    });
    object(
        json!({
            "inventories": inventories,
            "allocations": allocations_by_consumer(shape, 0),
        }),
        &["inventories", "allocations"],
    )
}

/// The query schema of `GET /allocation_candidates` at microversion `1.minor`.
pub fn allocation_candidates_query(minor: u16) -> Value {
    let limit = json!({"type": ["integer", "string"], "pattern": "^[1-9][0-9]*$", "minimum": 1, "minLength": 1});
    let string = json!({"type": "string"});
    if minor < 25 {
        let mut props = Map::new();
        props.insert("resources".into(), string.clone());
        if minor >= 16 {
            props.insert("limit".into(), limit);
        }
        if minor >= 17 {
            props.insert("required".into(), json!({"type": ["string"]}));
        }
        if minor >= 21 {
            props.insert("member_of".into(), json!({"type": ["string"]}));
        }
        return json!({
            "type": "object",
            "properties": props,
            "required": ["resources"],
            "additionalProperties": false,
        });
    }
    let suffix = if minor >= 33 {
        "([a-zA-Z0-9_-]{1,64})?$"
    } else {
        "([1-9][0-9]*)?$"
    };
    let mut patterns = Map::new();
    let mut names = vec!["resources", "required", "member_of"];
    if minor >= 31 {
        names.push("in_tree");
    }
    for name in names {
        patterns.insert(format!("^{name}{suffix}"), string.clone());
    }
    let mut props = Map::new();
    props.insert(
        "group_policy".into(),
        json!({"type": "string", "enum": ["none", "isolate"]}),
    );
    props.insert("limit".into(), limit);
    if minor >= 35 {
        props.insert("root_required".into(), json!({"type": ["string"]}));
    }
    if minor >= 36 {
        props.insert("same_subtree".into(), json!({"type": ["string"]}));
    }
    json!({
        "type": "object",
        "properties": props,
        "patternProperties": patterns,
        "additionalProperties": false,
    })
}

/// A query-string schema: named string parameters, nothing else.
pub fn query(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let props: Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| (name.to_string(), schema.clone()))
        .collect();
    json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}

pub fn query_string() -> Value {
    json!({"type": "string"})
}

pub fn query_uuid() -> Value {
    uuid_string()
}

pub fn query_id() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 255})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(instance: Value, schema: Value) -> String {
        validate(&instance, &schema)
            .err()
            .map(|e| summary(&e).to_string())
            .unwrap_or_default()
    }

    #[test]
    fn full_text_names_the_keyword_and_path() {
        let err = validate(&json!({"total": 0}), &inventory_record()).expect_err("must fail");
        assert!(
            err.contains("Failed validating 'minimum' in schema['properties']['total']"),
            "{err}"
        );
        assert!(err.contains("On instance['total']:\n    0"), "{err}");
    }

    #[test]
    fn messages_match_python_jsonschema() {
        let cases = [
            (
                json!({}),
                json!({"type": "object", "required": ["name"]}),
                "'name' is a required property",
            ),
            (
                json!({"a": 1}),
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                "Additional properties are not allowed ('a' was unexpected)",
            ),
            (
                json!(""),
                json!({"type": "string", "minLength": 1}),
                "'' should be non-empty",
            ),
            (
                json!({}),
                json!({"type": "object", "minProperties": 1}),
                "{} should be non-empty",
            ),
            (
                json!([1, 1]),
                json!({"type": "array", "uniqueItems": true}),
                "[1, 1] has non-unique elements",
            ),
            (
                json!(0),
                json!({"type": "integer", "minimum": 1}),
                "0 is less than the minimum of 1",
            ),
            (
                json!("abc"),
                json!({"type": "string", "pattern": "^[A-Z]+$"}),
                "'abc' does not match '^[A-Z]+$'",
            ),
            (
                json!(1.5),
                json!({"type": ["integer", "null"]}),
                "1.5 is not of type 'integer', 'null'",
            ),
            (
                json!("x"),
                json!({"enum": ["a", "b"]}),
                "'x' is not one of ['a', 'b']",
            ),
            (
                json!("x"),
                json!({"type": "string", "format": "uuid"}),
                "'x' is not a 'uuid'",
            ),
            (
                json!({"x": 1}),
                json!({"type": "object", "patternProperties": {"^[A-Z]+$": {}}, "additionalProperties": false}),
                "'x' does not match any of the regexes: '^[A-Z]+$'",
            ),
            (
                json!(true),
                json!({"type": "integer"}),
                "True is not of type 'integer'",
            ),
            (
                json!("x"),
                json!({"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]}),
                "'x' is not a 'uuid'",
            ),
            (
                json!(null),
                json!({"type": "string"}),
                "None is not of type 'string'",
            ),
        ];
        for (instance, schema, expected) in cases {
            assert_eq!(check(instance.clone(), schema), expected, "{instance}");
        }
    }

    #[test]
    fn shallowest_failure_wins() {
        let schema = provider_create(true);
        let message = check(json!({"uuid": "bad"}), schema);
        assert_eq!(message, "'name' is a required property");
    }

    #[test]
    fn valid_bodies_pass() {
        assert!(validate(&json!({"name": "a"}), &provider_create(false)).is_ok());
        assert!(validate(
            &json!({"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4}}}),
            &inventories_replace()
        )
        .is_ok());
        assert!(validate(&json!(true), &json!({"type": "integer"})).is_err());
    }
}
