//! A small JSON-Schema validator that words and ranks errors like Python's
//! `jsonschema` 4.x, for the few schemas the node and port APIs use.
//!
//! Upstream validates request bodies with `jsonschema.validate` and reports
//! `best_match` of the errors (plus a "possible root cause" taken from the
//! context of `anyOf`/`oneOf` errors). Clients see those texts, so the
//! keyword order of each schema, the error ranking and the messages follow
//! upstream's; schemas are therefore Rust values with ordered keywords, not
//! JSON maps (which would sort their keys).

use std::cmp::Ordering;

use regex::Regex;
use serde_json::Value;

use super::pyrepr::{repr, repr_str};

/// One keyword of a schema, in the order upstream's dict lists them.
#[derive(Debug)]
pub enum Keyword {
    /// `type`: one name or a list (the list form is kept for messages).
    Type(TypeSpec),
    Properties(Vec<(&'static str, Schema)>),
    Required(Vec<&'static str>),
    /// `additionalProperties: false`.
    NoAdditionalProperties,
    MaxLength(usize),
    MinLength(usize),
    Enum(Vec<Value>),
    /// `pattern`: the Python source (for messages) and an equivalent regex.
    Pattern(&'static str, Regex),
    AnyOf(Vec<Schema>),
    OneOf(Vec<Schema>),
    Items(Box<Schema>),
    /// `dependentRequired`, only honoured by 2019-09+ validators.
    DependentRequired(Vec<(&'static str, Vec<&'static str>)>),
}

/// `type` written as one string or as a list of strings.
#[derive(Debug, Clone)]
pub enum TypeSpec {
    One(&'static str),
    Any(Vec<&'static str>),
}

impl TypeSpec {
    fn names(&self) -> Vec<&'static str> {
        match self {
            TypeSpec::One(name) => vec![name],
            TypeSpec::Any(names) => names.clone(),
        }
    }
}

/// A schema: its keywords in upstream's order.
#[derive(Debug, Default)]
pub struct Schema {
    pub keywords: Vec<Keyword>,
    /// Whether `dependentRequired` applies (draft 2019-09 and later).
    pub modern: bool,
}

impl Schema {
    pub fn new(keywords: Vec<Keyword>) -> Schema {
        Schema {
            keywords,
            modern: false,
        }
    }

    /// Python's `repr` of the schema dict (used by `oneOf` messages).
    pub fn python_repr(&self) -> String {
        let parts: Vec<String> = self
            .keywords
            .iter()
            .map(|keyword| match keyword {
                Keyword::Type(TypeSpec::One(name)) => format!("'type': {}", repr_str(name)),
                Keyword::Type(TypeSpec::Any(names)) => format!("'type': {}", repr_list(names)),
                Keyword::Properties(properties) => {
                    let inner: Vec<String> = properties
                        .iter()
                        .map(|(name, schema)| {
                            format!("{}: {}", repr_str(name), schema.python_repr())
                        })
                        .collect();
                    format!("'properties': {{{}}}", inner.join(", "))
                }
                Keyword::Required(names) => format!("'required': {}", repr_list(names)),
                Keyword::NoAdditionalProperties => "'additionalProperties': False".to_string(),
                Keyword::MaxLength(length) => format!("'maxLength': {length}"),
                Keyword::MinLength(length) => format!("'minLength': {length}"),
                Keyword::Enum(values) => format!("'enum': {}", repr(&Value::Array(values.clone()))),
                Keyword::Pattern(source, _) => format!("'pattern': {}", repr_str(source)),
                Keyword::AnyOf(schemas) => format!("'anyOf': [{}]", join_reprs(schemas)),
                Keyword::OneOf(schemas) => format!("'oneOf': [{}]", join_reprs(schemas)),
                Keyword::Items(schema) => format!("'items': {}", schema.python_repr()),
                Keyword::DependentRequired(pairs) => {
                    let inner: Vec<String> = pairs
                        .iter()
                        .map(|(name, needed)| format!("{}: {}", repr_str(name), repr_list(needed)))
                        .collect();
                    format!("'dependentRequired': {{{}}}", inner.join(", "))
                }
            })
            .collect();
        format!("{{{}}}", parts.join(", "))
    }

    fn type_spec(&self) -> Option<&TypeSpec> {
        self.keywords.iter().find_map(|keyword| match keyword {
            Keyword::Type(spec) => Some(spec),
            _ => None,
        })
    }
}

fn repr_list(names: &[&str]) -> String {
    let parts: Vec<String> = names.iter().map(|name| repr_str(name)).collect();
    format!("[{}]", parts.join(", "))
}

fn join_reprs(schemas: &[Schema]) -> String {
    schemas
        .iter()
        .map(Schema::python_repr)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One step of an error's location inside the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathItem {
    Index(usize),
    Key(String),
}

impl PartialOrd for PathItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathItem {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathItem::Index(a), PathItem::Index(b)) => a.cmp(b),
            (PathItem::Key(a), PathItem::Key(b)) => a.cmp(b),
            // Python cannot compare these; upstream's schemas never mix them
            // at one depth.
            (PathItem::Index(_), PathItem::Key(_)) => Ordering::Less,
            (PathItem::Key(_), PathItem::Index(_)) => Ordering::Greater,
        }
    }
}

/// A validation error as `jsonschema` builds it.
#[derive(Debug, Clone)]
pub struct SchemaError {
    /// Location relative to where the error's validation started.
    pub path: Vec<PathItem>,
    pub keyword: &'static str,
    pub message: String,
    pub context: Vec<SchemaError>,
    /// Whether the failing schema's `type` accepts the instance.
    pub matches_type: bool,
}

type Relevance<'a> = (isize, &'a [PathItem], bool, bool, bool);

fn relevance(error: &SchemaError) -> Relevance<'_> {
    let weak = matches!(error.keyword, "anyOf" | "oneOf");
    (
        -(error.path.len() as isize),
        &error.path,
        !weak,
        false,
        !error.matches_type,
    )
}

/// `jsonschema.exceptions.best_match`.
pub fn best_match(errors: &[SchemaError]) -> Option<&SchemaError> {
    let mut best: Option<&SchemaError> = None;
    for error in errors {
        if best.is_none_or(|current| relevance(error) > relevance(current)) {
            best = Some(error);
        }
    }
    let mut best = best?;
    while !best.context.is_empty() {
        let mut ranked: Vec<&SchemaError> = best.context.iter().collect();
        ranked.sort_by(|a, b| relevance(a).cmp(&relevance(b)));
        if ranked.len() >= 2 && relevance(ranked[0]) == relevance(ranked[1]) {
            return Some(best);
        }
        best = ranked[0];
    }
    Some(best)
}

/// All errors of `instance` against `schema` (`iter_errors`).
pub fn iter_errors(instance: &Value, schema: &Schema) -> Vec<SchemaError> {
    let mut errors = Vec::new();
    descend(instance, schema, schema.modern, &mut errors);
    errors
}

/// Whether the instance is valid.
pub fn is_valid(instance: &Value, schema: &Schema) -> bool {
    iter_errors(instance, schema).is_empty()
}

/// The message upstream's `args.schema` validator raises for `name`, or
/// `None` when the instance is valid.
pub fn validation_message(name: &str, instance: &Value, schema: &Schema) -> Option<String> {
    let errors = iter_errors(instance, schema);
    let error = best_match(&errors)?;
    let mut message = format!("Schema error for {name}: {}", error.message);
    let mut cause = None;
    let mut current = error;
    while !current.context.is_empty() {
        match best_match(&current.context) {
            Some(next) => {
                cause = Some(next.message.clone());
                current = next;
            }
            None => break,
        }
    }
    if let Some(cause) = cause {
        message.push_str(". Possible root cause: ");
        message.push_str(&cause);
    }
    Some(message)
}

/// `jsonschema.validate`'s message (the `e.message` of the raised error).
pub fn plain_message(instance: &Value, schema: &Schema) -> Option<String> {
    let errors = iter_errors(instance, schema);
    best_match(&errors).map(|error| error.message.clone())
}

pub fn is_type(instance: &Value, name: &str) -> bool {
    match name {
        "object" => instance.is_object(),
        "array" => instance.is_array(),
        "string" => instance.is_string(),
        "null" => instance.is_null(),
        "boolean" => instance.is_boolean(),
        "number" => instance.is_number(),
        "integer" => match instance {
            Value::Number(number) => {
                number.is_i64()
                    || number.is_u64()
                    || number.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        _ => false,
    }
}

fn python_len(text: &str) -> usize {
    text.chars().count()
}

fn descend(instance: &Value, schema: &Schema, modern: bool, out: &mut Vec<SchemaError>) {
    let matches_type = schema
        .type_spec()
        .is_some_and(|spec| spec.names().iter().any(|name| is_type(instance, name)));
    let error = |keyword: &'static str, message: String| SchemaError {
        path: Vec::new(),
        keyword,
        message,
        context: Vec::new(),
        matches_type,
    };
    for keyword in &schema.keywords {
        match keyword {
            Keyword::Type(spec) => {
                let names = spec.names();
                if !names.iter().any(|name| is_type(instance, name)) {
                    let reprs: Vec<String> = names.iter().map(|name| repr_str(name)).collect();
                    out.push(error(
                        "type",
                        format!("{} is not of type {}", repr(instance), reprs.join(", ")),
                    ));
                }
            }
            Keyword::Properties(properties) => {
                if let Value::Object(map) = instance {
                    for (name, subschema) in properties {
                        if let Some(value) = map.get(*name) {
                            let mut inner = Vec::new();
                            descend(value, subschema, modern, &mut inner);
                            for mut item in inner {
                                item.path.insert(0, PathItem::Key((*name).to_string()));
                                out.push(item);
                            }
                        }
                    }
                }
            }
            Keyword::Required(names) => {
                if let Value::Object(map) = instance {
                    for name in names {
                        if !map.contains_key(*name) {
                            out.push(error(
                                "required",
                                format!("{} is a required property", repr_str(name)),
                            ));
                        }
                    }
                }
            }
            Keyword::NoAdditionalProperties => {
                if let Value::Object(map) = instance {
                    let known: Vec<&str> = schema
                        .keywords
                        .iter()
                        .filter_map(|keyword| match keyword {
                            Keyword::Properties(properties) => Some(properties),
                            _ => None,
                        })
                        .flat_map(|properties| properties.iter().map(|(name, _)| *name))
                        .collect();
                    let mut extras: Vec<&String> = map
                        .keys()
                        .filter(|key| !known.contains(&key.as_str()))
                        .collect();
                    if !extras.is_empty() {
                        extras.sort();
                        let verb = if extras.len() == 1 { "was" } else { "were" };
                        let listed: Vec<String> = extras.iter().map(|key| repr_str(key)).collect();
                        out.push(error(
                            "additionalProperties",
                            format!(
                                "Additional properties are not allowed ({} {verb} unexpected)",
                                listed.join(", ")
                            ),
                        ));
                    }
                }
            }
            Keyword::MaxLength(limit) => {
                if let Value::String(text) = instance {
                    if python_len(text) > *limit {
                        let what = if *limit == 0 {
                            "is expected to be empty"
                        } else {
                            "is too long"
                        };
                        out.push(error("maxLength", format!("{} {what}", repr(instance))));
                    }
                }
            }
            Keyword::MinLength(limit) => {
                if let Value::String(text) = instance {
                    if python_len(text) < *limit {
                        let what = if *limit == 1 {
                            "should be non-empty"
                        } else {
                            "is too short"
                        };
                        out.push(error("minLength", format!("{} {what}", repr(instance))));
                    }
                }
            }
            Keyword::Enum(values) => {
                if !values.iter().any(|value| python_equal(value, instance)) {
                    out.push(error(
                        "enum",
                        format!(
                            "{} is not one of {}",
                            repr(instance),
                            repr(&Value::Array(values.clone()))
                        ),
                    ));
                }
            }
            Keyword::Pattern(source, regex) => {
                if let Value::String(text) = instance {
                    if !regex.is_match(text) {
                        out.push(error(
                            "pattern",
                            format!("{} does not match {}", repr(instance), repr_str(source)),
                        ));
                    }
                }
            }
            Keyword::AnyOf(schemas) => {
                let mut all = Vec::new();
                let mut valid = false;
                for subschema in schemas {
                    let mut errors = Vec::new();
                    descend(instance, subschema, modern, &mut errors);
                    if errors.is_empty() {
                        valid = true;
                        break;
                    }
                    all.extend(errors);
                }
                if !valid {
                    let mut failure = error(
                        "anyOf",
                        format!(
                            "{} is not valid under any of the given schemas",
                            repr(instance)
                        ),
                    );
                    failure.context = all;
                    out.push(failure);
                }
            }
            Keyword::OneOf(schemas) => {
                let mut all = Vec::new();
                let mut first_valid = None;
                for (index, subschema) in schemas.iter().enumerate() {
                    let mut errors = Vec::new();
                    descend(instance, subschema, modern, &mut errors);
                    if errors.is_empty() {
                        first_valid = Some(index);
                        break;
                    }
                    all.extend(errors);
                }
                match first_valid {
                    None => {
                        let mut failure = error(
                            "oneOf",
                            format!(
                                "{} is not valid under any of the given schemas",
                                repr(instance)
                            ),
                        );
                        failure.context = all;
                        out.push(failure);
                    }
                    Some(first) => {
                        let mut more: Vec<&Schema> = schemas[first + 1..]
                            .iter()
                            .filter(|subschema| {
                                let mut errors = Vec::new();
                                descend(instance, subschema, modern, &mut errors);
                                errors.is_empty()
                            })
                            .collect();
                        if !more.is_empty() {
                            more.push(&schemas[first]);
                            let reprs: Vec<String> =
                                more.iter().map(|schema| schema.python_repr()).collect();
                            out.push(error(
                                "oneOf",
                                format!(
                                    "{} is valid under each of {}",
                                    repr(instance),
                                    reprs.join(", ")
                                ),
                            ));
                        }
                    }
                }
            }
            Keyword::Items(subschema) => {
                if let Value::Array(items) = instance {
                    for (index, item) in items.iter().enumerate() {
                        let mut inner = Vec::new();
                        descend(item, subschema, modern, &mut inner);
                        for mut failure in inner {
                            failure.path.insert(0, PathItem::Index(index));
                            out.push(failure);
                        }
                    }
                }
            }
            Keyword::DependentRequired(pairs) => {
                if !modern {
                    continue;
                }
                if let Value::Object(map) = instance {
                    for (name, needed) in pairs {
                        if map.contains_key(*name) {
                            for each in needed {
                                if !map.contains_key(*each) {
                                    out.push(error(
                                        "dependentRequired",
                                        format!(
                                            "{} is a dependency of {}",
                                            repr_str(each),
                                            repr_str(name)
                                        ),
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Python equality of JSON values: `True == 1` and `1 == 1.0` hold there.
fn python_equal(a: &Value, b: &Value) -> bool {
    fn as_number(value: &Value) -> Option<f64> {
        match value {
            Value::Bool(flag) => Some(if *flag { 1.0 } else { 0.0 }),
            Value::Number(number) => number.as_f64(),
            _ => None,
        }
    }
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Shorthands for writing schemas.
pub mod build {
    use super::*;

    pub fn ty(name: &'static str) -> Keyword {
        Keyword::Type(TypeSpec::One(name))
    }

    pub fn types(names: &[&'static str]) -> Keyword {
        Keyword::Type(TypeSpec::Any(names.to_vec()))
    }

    /// `{'type': [..]}` alone.
    pub fn typed(names: &[&'static str]) -> Schema {
        Schema::new(vec![types(names)])
    }

    /// `{'type': name}` alone.
    pub fn typed_one(name: &'static str) -> Schema {
        Schema::new(vec![ty(name)])
    }

    pub fn pattern(source: &'static str, rust: &str) -> Keyword {
        // The patterns are constants written in this crate; a bad one is a
        // programming error caught by the unit tests.
        #[allow(clippy::expect_used)]
        let regex = Regex::new(rust).expect("schema pattern compiles");
        Keyword::Pattern(source, regex)
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use serde_json::json;

    fn sample() -> Schema {
        Schema::new(vec![
            ty("object"),
            Keyword::Properties(vec![
                ("driver", typed_one("string")),
                ("name", typed(&["string", "null"])),
                (
                    "description",
                    Schema::new(vec![types(&["string", "null"]), Keyword::MaxLength(3)]),
                ),
            ]),
            Keyword::Required(vec!["driver"]),
            Keyword::NoAdditionalProperties,
        ])
    }

    #[test]
    fn messages_and_ranking_follow_python_jsonschema() {
        let schema = sample();
        let check = |instance: Value, expected: &str| {
            assert_eq!(
                validation_message("node", &instance, &schema).as_deref(),
                Some(expected)
            );
        };
        check(
            json!([]),
            "Schema error for node: [] is not of type 'object'",
        );
        check(
            json!({"driver": 1, "name": 2}),
            "Schema error for node: 2 is not of type 'string', 'null'",
        );
        check(
            json!({"name": 2, "zz": 1}),
            "Schema error for node: 'driver' is a required property",
        );
        check(
            json!({"driver": "d", "b": 1, "a": 2}),
            "Schema error for node: Additional properties are not allowed ('a', 'b' were unexpected)",
        );
        check(
            json!({"driver": "d", "description": "long"}),
            "Schema error for node: 'long' is too long",
        );
        assert!(validation_message("node", &json!({"driver": "d"}), &schema).is_none());
    }

    #[test]
    fn one_of_reports_every_matching_schema() {
        let schema = Schema::new(vec![Keyword::OneOf(vec![
            Schema::new(vec![Keyword::Required(vec!["a"])]),
            Schema::new(vec![Keyword::Required(vec!["b"])]),
        ])]);
        assert_eq!(
            plain_message(&json!({"a": 1, "b": 2}), &schema).as_deref(),
            Some(
                "{'a': 1, 'b': 2} is valid under each of {'required': ['b']}, {'required': ['a']}"
            )
        );
    }
}
