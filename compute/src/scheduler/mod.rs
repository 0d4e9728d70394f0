//! The scheduler: asks Placement for allocation candidates as Nova does
//! ([`request`]), filters them on node capabilities ([`capabilities`]),
//! picks one at random and claims it with `PUT /allocations/{instance}`; a
//! lost claim (409) moves on to the next candidate, an exhausted list
//! re-queries, up to `max_attempts` queries.
//!
//! Bare-metal nodes are all-or-nothing and weigh the same, so by default
//! (`host_subset_size` 0) the order is a uniform shuffle of every candidate
//! Placement returned: concurrent builds spread over the whole fleet instead
//! of racing for the first few nodes of Placement's order. A positive
//! `host_subset_size` keeps Nova's behaviour (random among the first n).

pub mod capabilities;
pub mod request;

use std::collections::{BTreeMap, BTreeSet};

use ferrite_baremetal_client::BaremetalClient;
use ferrite_placement_client::PlacementClient;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::Value;

use crate::model::Server;
use request::{RequestHints, ResourceRequest};

/// Placement microversion of candidate queries (as Nova's report client).
pub const CANDIDATES_VERSION: &str = "1.36";

/// Claims lost to a 409 from Placement, process-wide (benchmarks read it).
pub static CLAIM_CONFLICTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Schedules of a build that excluded nodes (reschedules), process-wide.
pub static RESCHEDULES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Hosts tried per candidate query before re-querying (at least).
const HOSTS_PER_ROUND: usize = 8;

/// The order claims are tried in: a uniform shuffle when `subset` is 0,
/// Placement's order otherwise.
fn spread(mut candidates: Vec<Candidate>, subset: usize) -> Vec<Candidate> {
    if subset == 0 {
        candidates.shuffle(&mut rand::thread_rng());
    }
    candidates
}

/// Nova's `NoValidHost` texts.
pub const NO_VALID_HOST: &str = "No valid host was found. ";
pub const NOT_ENOUGH_HOSTS: &str = "No valid host was found. There are not enough hosts available.";

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Nothing fits: the fault message.
    #[error("{0}")]
    NoValidHost(String),
    /// Placement could not be asked or answered nonsense.
    #[error("placement: {0}")]
    Placement(String),
}

/// A successful claim.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub node: String,
}

/// One candidate: its root provider (the node) and what to claim.
#[derive(Debug, Clone)]
struct Candidate {
    node: String,
    allocations: BTreeMap<String, BTreeMap<String, i64>>,
}

pub struct Scheduler {
    candidates: PlacementClient,
    claims: PlacementClient,
    baremetal: BaremetalClient,
    max_attempts: u32,
    max_placement_results: u32,
    host_subset_size: usize,
}

/// Whether any extra spec concerns the capabilities filter (and so the node
/// must be looked at).
fn needs_capabilities(extra_specs: &BTreeMap<String, String>) -> bool {
    extra_specs
        .keys()
        .any(|k| k.starts_with("capabilities:") || (!k.contains(':') && k != "group_policy"))
}

fn parse_candidates(body: &Value) -> Result<Vec<Candidate>, ScheduleError> {
    let requests = body
        .get("allocation_requests")
        .and_then(Value::as_array)
        .ok_or_else(|| ScheduleError::Placement("no allocation_requests".into()))?;
    let summaries = body.get("provider_summaries").cloned().unwrap_or_default();
    let mut out = Vec::new();
    for request in requests {
        let Some(allocations) = request.get("allocations").and_then(Value::as_object) else {
            continue;
        };
        let mut claim = BTreeMap::new();
        let mut node = None;
        for (provider, entry) in allocations {
            let resources: BTreeMap<String, i64> = entry
                .get("resources")
                .and_then(Value::as_object)
                .map(|r| {
                    r.iter()
                        .map(|(class, n)| (class.clone(), n.as_i64().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            let root = summaries
                .get(provider)
                .and_then(|s| s.get("root_provider_uuid"))
                .and_then(Value::as_str)
                .unwrap_or(provider)
                .to_string();
            node.get_or_insert(root);
            claim.insert(provider.clone(), resources);
        }
        if let Some(node) = node {
            out.push(Candidate {
                node,
                allocations: claim,
            });
        }
    }
    Ok(out)
}

impl Scheduler {
    pub fn new(config: &crate::Config) -> Scheduler {
        let placement =
            PlacementClient::new(config.placement_url.clone(), config.placement_token.clone());
        Scheduler {
            candidates: placement.clone().with_version(CANDIDATES_VERSION),
            // Claims carry consumer_type (1.38) and consumer_generation.
            claims: placement.with_version("1.39"),
            baremetal: BaremetalClient::new(config.ironic_url.clone(), "latest"),
            max_attempts: config.max_attempts,
            max_placement_results: config.max_placement_results,
            host_subset_size: config.host_subset_size,
        }
    }

    pub fn placement(&self) -> &PlacementClient {
        &self.claims
    }

    /// The query this server's boot sends to Placement.
    pub fn resource_request(server: &Server, limit: u32) -> ResourceRequest {
        let hints = RequestHints {
            image_properties: server.image.properties.clone(),
            member_of: Vec::new(),
            in_tree: forced_node(server.availability_zone.as_deref()),
            limit: Some(limit),
        };
        ResourceRequest::from_flavor(&server.flavor.resources(), &hints)
    }

    async fn query(&self, request: &ResourceRequest) -> Result<Vec<Candidate>, ScheduleError> {
        let response = self
            .candidates
            .request(reqwest::Method::GET, "/allocation_candidates")
            .query(&request.to_query())
            .send()
            .await
            .map_err(|e| ScheduleError::Placement(e.to_string()))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|e| ScheduleError::Placement(e.to_string()))?;
        if status != 200 {
            return Err(ScheduleError::Placement(format!("{status}: {body}")));
        }
        parse_candidates(&body)
    }

    /// Node stats for the capabilities filter; None when the node is gone.
    async fn node_stats(&self, node: &str) -> Option<BTreeMap<String, String>> {
        match self.baremetal.get_node(node).await {
            Ok(body) => Some(capabilities::node_stats(
                body.get("properties").unwrap_or(&Value::Null),
            )),
            Err(err) => {
                tracing::warn!(node, error = %err, "cannot read node for the capabilities filter");
                None
            }
        }
    }

    /// Filters candidates (in Placement's order) until enough hosts pass.
    async fn filter(
        &self,
        server: &Server,
        candidates: Vec<Candidate>,
        excluded: &BTreeSet<String>,
    ) -> Vec<Candidate> {
        let check = needs_capabilities(&server.flavor.extra_specs);
        let wanted = self.host_subset_size.max(HOSTS_PER_ROUND) + self.max_attempts as usize;
        let mut passed = Vec::new();
        for candidate in candidates {
            if excluded.contains(&candidate.node) {
                continue;
            }
            if check {
                let Some(stats) = self.node_stats(&candidate.node).await else {
                    continue;
                };
                if !capabilities::host_passes(&stats, &server.flavor.extra_specs) {
                    tracing::debug!(node = %candidate.node, "capabilities filter refused the node");
                    continue;
                }
            }
            passed.push(candidate);
            if passed.len() >= wanted {
                break;
            }
        }
        passed
    }

    /// Selects and claims a node for `server`, never one of `excluded`.
    pub async fn schedule(
        &self,
        server: &Server,
        excluded: &BTreeSet<String>,
    ) -> Result<Claimed, ScheduleError> {
        if !excluded.is_empty() {
            RESCHEDULES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let request = Self::resource_request(server, self.max_placement_results);
        let mut last = NO_VALID_HOST.to_string();
        for attempt in 1..=self.max_attempts {
            let candidates = self.query(&request).await?;
            if candidates.is_empty() {
                return Err(ScheduleError::NoValidHost(NO_VALID_HOST.into()));
            }
            let candidates = spread(candidates, self.host_subset_size);
            let mut hosts = self.filter(server, candidates, excluded).await;
            if hosts.is_empty() {
                return Err(ScheduleError::NoValidHost(NOT_ENOUGH_HOSTS.into()));
            }
            if self.host_subset_size > 0 {
                // Nova's way: random among the first few, the rest in order.
                let pick = rand::thread_rng().gen_range(0..hosts.len().min(self.host_subset_size));
                let chosen = hosts.remove(pick);
                hosts.insert(0, chosen);
            }
            for host in hosts {
                match self
                    .claims
                    .put_allocations(
                        &server.uuid,
                        &host.allocations,
                        &server.project_id,
                        &server.user_id,
                        None,
                    )
                    .await
                {
                    Ok(()) => return Ok(Claimed { node: host.node }),
                    Err(err) if err.is_conflict() => {
                        CLAIM_CONFLICTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::info!(node = %host.node, attempt, "claim lost, trying the next candidate");
                        last = NOT_ENOUGH_HOSTS.into();
                    }
                    Err(err) => return Err(ScheduleError::Placement(err.to_string())),
                }
            }
        }
        Err(ScheduleError::NoValidHost(last))
    }
}

/// A forced node from `availability_zone` = `zone:host:node` or `zone::node`
/// (admins only; checked by the API).
pub fn forced_node(availability_zone: Option<&str>) -> Option<String> {
    let zone = availability_zone?;
    let mut parts = zone.splitn(3, ':');
    let _zone = parts.next()?;
    let _host = parts.next()?;
    parts.next().filter(|n| !n.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn candidates_from_placement_body() {
        let body = json!({
            "allocation_requests": [
                {"allocations": {"n1": {"resources": {"CUSTOM_GOLD": 1}}}},
                {"allocations": {"n2": {"resources": {"CUSTOM_GOLD": 1}}}},
            ],
            "provider_summaries": {
                "n1": {"root_provider_uuid": "n1", "resources": {}},
                "n2": {"root_provider_uuid": "n2", "resources": {}},
            }
        });
        let candidates = parse_candidates(&body).expect("parses");
        assert_eq!(candidates.len(), 2);
        assert_eq!(candidates[1].node, "n2");
        assert_eq!(candidates[0].allocations["n1"]["CUSTOM_GOLD"], 1);
        assert!(parse_candidates(&json!({})).is_err());
    }

    #[test]
    fn spread_shuffles_only_without_a_subset() {
        let make = |n: usize| {
            (0..n)
                .map(|i| Candidate {
                    node: format!("n{i}"),
                    allocations: BTreeMap::new(),
                })
                .collect::<Vec<_>>()
        };
        let order = |c: &[Candidate]| c.iter().map(|c| c.node.clone()).collect::<Vec<_>>();
        let kept = spread(make(50), 3);
        assert_eq!(order(&kept), order(&make(50)));
        // 50 items shuffled 5 times all landing in order: odds 1/50!^5.
        let moved = (0..5).any(|_| order(&spread(make(50), 0)) != order(&make(50)));
        assert!(moved);
        let mut sorted = order(&spread(make(50), 0));
        sorted.sort();
        let mut expected = order(&make(50));
        expected.sort();
        assert_eq!(sorted, expected);
    }

    #[test]
    fn forced_nodes() {
        assert_eq!(forced_node(Some("nova::abc")), Some("abc".into()));
        assert_eq!(forced_node(Some("nova:host:abc")), Some("abc".into()));
        assert_eq!(forced_node(Some("nova:host")), None);
        assert_eq!(forced_node(Some("nova")), None);
        assert_eq!(forced_node(None), None);
    }

    #[test]
    fn capability_check_only_when_asked() {
        let specs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(!needs_capabilities(&specs(&[("resources:CUSTOM_X", "1")])));
        assert!(needs_capabilities(&specs(&[(
            "capabilities:boot_mode",
            "uefi"
        )])));
        assert!(needs_capabilities(&specs(&[("cpu_arch", "x86_64")])));
        assert!(!needs_capabilities(&specs(&[("group_policy", "none")])));
    }
}
