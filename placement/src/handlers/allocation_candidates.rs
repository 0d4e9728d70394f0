//! `GET /allocation_candidates` (1.10+): parse and resolve the request,
//! search a snapshot of the providers, render per microversion.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferrite_resource_classes::{parse_query, ParseOptions, RequestGroup};
use serde_json::{json, Map, Value};

use crate::candidates::{self, Group, Id, Request, Snapshot};
use crate::error::{ApiError, ApiResult};
use crate::http::{Reply, Req};
use crate::schema;
use crate::AppState;

fn parse_error(err: ferrite_resource_classes::ParseError) -> ApiError {
    let code = err.code();
    ApiError::bad_request(err.to_string()).with_code(code)
}

/// Resolves names against the snapshot with upstream's errors.
struct Names<'a> {
    classes: HashMap<&'a str, Id>,
    traits: HashMap<&'a str, Id>,
}

impl<'a> Names<'a> {
    fn new(snapshot: &'a Snapshot) -> Self {
        Names {
            classes: snapshot
                .class_names
                .iter()
                .map(|(id, n)| (n.as_str(), *id))
                .collect(),
            traits: snapshot
                .trait_names
                .iter()
                .map(|(id, n)| (n.as_str(), *id))
                .collect(),
        }
    }

    fn class(&self, name: &str) -> ApiResult<Id> {
        self.classes.get(name).copied().ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid resource class in resources parameter: No such resource class {name}."
            ))
        })
    }

    fn traits(&self, names: &BTreeSet<String>) -> ApiResult<BTreeSet<Id>> {
        names
            .iter()
            .map(|n| {
                self.traits
                    .get(n.as_str())
                    .copied()
                    .ok_or_else(|| ApiError::bad_request(format!("No such trait(s): {n}.")))
            })
            .collect()
    }
}

fn resolve_group(snapshot: &Snapshot, names: &Names<'_>, group: &RequestGroup) -> ApiResult<Group> {
    let mut resources = Vec::new();
    for (class, amount) in &group.resources {
        resources.push((
            names.class(class)?,
            i64::try_from(*amount).unwrap_or(i64::MAX),
        ));
    }
    let mut required: Vec<BTreeSet<Id>> = names
        .traits(&group.required_traits)?
        .into_iter()
        .map(|id| BTreeSet::from([id]))
        .collect();
    for any in &group.any_of_traits {
        required.push(names.traits(any)?);
    }
    let forbidden = names.traits(&group.forbidden_traits)?;
    let in_tree = group.in_tree.as_ref().map(|uuid| {
        let canonical =
            uuid::Uuid::parse_str(uuid).map_or_else(|_| uuid.clone(), |u| u.to_string());
        snapshot
            .provider_id(&canonical)
            .map(|id| snapshot.providers[&id].root)
    });
    Ok(Group {
        suffix: group.suffix.clone(),
        resources,
        required,
        forbidden,
        member_of: group.member_of.clone(),
        forbidden_aggregates: group.forbidden_aggregates.clone(),
        in_tree,
    })
}

/// True when `group` on its own (as upstream searches each group before
/// combining them) has no candidate at all.
fn finds_nothing_alone(
    snapshot: &Snapshot,
    group: &Group,
    root_required: &BTreeSet<Id>,
    root_forbidden: &BTreeSet<Id>,
    nested_aware: bool,
) -> bool {
    let alone = Request {
        groups: vec![group.clone()],
        isolate: false,
        same_subtrees: Vec::new(),
        root_required: root_required.clone(),
        root_forbidden: root_forbidden.clone(),
        limit: None,
        nested_aware,
        randomize: false,
    };
    candidates::find(snapshot, &alone).candidates.is_empty()
}

pub async fn list(state: &AppState, req: &Req) -> ApiResult<Reply> {
    req.authorize(state, "placement:allocation_candidates:list")?;
    let v = req.version;
    req.validate_query(&schema::allocation_candidates_query(v.minor))?;
    let spec = parse_query(&req.query, &ParseOptions::new(1, v.minor)).map_err(parse_error)?;
    let snapshot = state.snapshot().await?;
    let names = Names::new(&snapshot);
    let root_required = names.traits(&spec.root_required)?;
    let root_forbidden = names.traits(&spec.root_forbidden)?;
    let mut groups: Vec<Group> = Vec::new();
    for group in &spec.groups {
        // Upstream searches group by group, resolving each group's class
        // names as it comes to it, and answers "no candidates" as soon as a
        // group matches nothing: an unknown class in a later group then
        // never gets looked at.
        let unknown_class = group.resources.iter().any(|(c, _)| names.class(c).is_err());
        if unknown_class
            && groups.iter().any(|g| {
                finds_nothing_alone(
                    &snapshot,
                    g,
                    &root_required,
                    &root_forbidden,
                    v.at_least(29),
                )
            })
        {
            let none = candidates::Outcome {
                candidates: Vec::new(),
                summaries: Vec::new(),
            };
            return Ok(Reply::json(render(&snapshot, &none, &BTreeSet::new(), req)).modified_now());
        }
        groups.push(resolve_group(&snapshot, &names, group)?);
    }
    let request = Request {
        groups,
        isolate: matches!(
            spec.group_policy,
            Some(ferrite_resource_classes::GroupPolicy::Isolate)
        ),
        same_subtrees: spec.same_subtree.clone(),
        root_required,
        root_forbidden,
        limit: spec.limit.map(|l| l as usize),
        nested_aware: v.at_least(29),
        randomize: state.config.randomize_allocation_candidates,
    };
    let outcome = candidates::find(&snapshot, &request);
    let requested: BTreeSet<Id> = request
        .groups
        .iter()
        .flat_map(|g| g.resources.iter().map(|(rc, _)| *rc))
        .collect();
    Ok(Reply::json(render(&snapshot, &outcome, &requested, req)).modified_now())
}

fn render(
    snapshot: &Snapshot,
    outcome: &candidates::Outcome,
    requested: &BTreeSet<Id>,
    req: &Req,
) -> Value {
    let v = req.version;
    let uuid = |id: &Id| {
        snapshot
            .providers
            .get(id)
            .map(|p| p.uuid.clone())
            .unwrap_or_default()
    };
    let class = |id: &Id| snapshot.class_names.get(id).cloned().unwrap_or_default();
    let requests: Vec<Value> = outcome
        .candidates
        .iter()
        .map(|c| {
            let mut by_provider: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
            for (rp, rc, amount) in &c.resources {
                by_provider.entry(uuid(rp)).or_default().insert(class(rc), json!(amount));
            }
            if v.at_least(12) {
                let allocations: Map<String, Value> = by_provider
                    .into_iter()
                    .map(|(rp, resources)| (rp, json!({ "resources": resources })))
                    .collect();
                let mut item = json!({ "allocations": allocations });
                if v.at_least(34) {
                    let mappings: Map<String, Value> = c
                        .mappings
                        .iter()
                        .map(|(suffix, rps)| (suffix.clone(), json!(rps.iter().map(uuid).collect::<Vec<_>>())))
                        .collect();
                    item["mappings"] = Value::Object(mappings);
                }
                item
            } else {
                let allocations: Vec<Value> = by_provider
                    .into_iter()
                    .map(|(rp, resources)| json!({"resource_provider": {"uuid": rp}, "resources": resources}))
                    .collect();
                json!({ "allocations": allocations })
            }
        })
        .collect();
    let mut summaries = Map::new();
    for id in &outcome.summaries {
        let Some(provider) = snapshot.providers.get(id) else {
            continue;
        };
        let mut resources = Map::new();
        for (rc, inv) in snapshot.inventories.get(id).into_iter().flatten() {
            if !v.at_least(27) && !requested.contains(rc) {
                continue;
            }
            let capacity = ((inv.total - inv.reserved) as f64 * inv.allocation_ratio) as i64;
            let used = snapshot.usage.get(&(*id, *rc)).copied().unwrap_or(0);
            resources.insert(class(rc), json!({"capacity": capacity, "used": used}));
        }
        let mut summary = json!({ "resources": resources });
        if v.at_least(17) {
            // In trait-id order (standard traits first, then custom ones in
            // creation order), as upstream's query returns them.
            let traits: Vec<String> = snapshot
                .traits
                .get(id)
                .into_iter()
                .flatten()
                .filter_map(|t| snapshot.trait_names.get(t).cloned())
                .collect();
            summary["traits"] = json!(traits);
        }
        if v.at_least(29) {
            summary["parent_provider_uuid"] = json!(provider.parent.map(|p| uuid(&p)));
            summary["root_provider_uuid"] = json!(uuid(&provider.root));
        }
        summaries.insert(provider.uuid.clone(), summary);
    }
    json!({
        "allocation_requests": requests,
        "provider_summaries": summaries,
    })
}
