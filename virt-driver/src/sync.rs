//! The resource periodic: list the nodes, decide which are ours, make
//! Placement match, writing only what changed.
//!
//! Placement is read once (the first sync, or after
//! [`crate::DriverOptions::placement_refresh`]) and then mirrored in a local
//! view: provider generation and contents per owned node. A sync compares
//! each node's wanted contents with that view and calls Placement only for
//! the differences, so a periodic in which no node changed makes no
//! Placement call at all. Someone else's write (an allocation bumps the
//! generation) only surfaces as a 409 on our next write; we then re-read
//! that provider and retry.
//!
//! Orphans: a provider is deleted only when its node is gone from Ironic,
//! and only if this driver made it — name = node UUID and the
//! `COMPUTE_NODE` + `OWNER_NOVA` traits, which is how Nova's providers for
//! Ironic nodes look. Nodes this host owned in its previous sync are
//! checked every sync; on the first sync the marked providers without a
//! node that hash to this host on the ring are removed too (the marked
//! providers are read before the nodes are listed, so a provider a peer
//! creates meanwhile cannot be taken for an orphan). When the listing is
//! filtered (conductor group, shard) a node missing from it may live in
//! another group, so it is looked up (`GET /v1/nodes/{uuid}`, 404 = gone)
//! before its provider is deleted.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ferrite_baremetal_client::BaremetalClient;
use ferrite_placement_client::{ClientError as PlacementError, PlacementClient};
use futures::StreamExt;

use crate::node::{NodeState, SYNC_FIELDS};
use crate::resources::{self, ProviderContents, MARKER_TRAITS};
use crate::{DriverError, IronicDriver, SyncReport};

/// HTTP calls made during one operation, per service.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    pub placement: AtomicUsize,
    pub ironic: AtomicUsize,
}

impl Calls {
    pub fn placement(&self) {
        self.placement.fetch_add(1, Ordering::Relaxed);
    }
    pub fn ironic(&self) {
        self.ironic.fetch_add(1, Ordering::Relaxed);
    }
}

/// What we believe Placement holds for one provider.
#[derive(Debug, Clone)]
struct Known {
    generation: i64,
    contents: ProviderContents,
}

/// The state kept between periodics.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    /// Owned node UUID → our view of its provider.
    providers: HashMap<String, Known>,
    /// Whether Placement was read since start (or since the last refresh).
    loaded_at: Option<Instant>,
    /// Custom resource classes and traits known to exist in Placement.
    vocabulary: Vocabulary,
    /// The nodes of the last listing that this host owns.
    pub owned_nodes: HashMap<String, NodeState>,
}

/// Custom resource classes and traits known to exist in Placement; they
/// are created (idempotent `PUT`) just before a write first needs them.
#[derive(Debug, Default)]
struct Vocabulary {
    classes: tokio::sync::Mutex<HashSet<String>>,
    traits: tokio::sync::Mutex<HashSet<String>>,
}

impl Vocabulary {
    async fn ensure_classes<'a>(
        &self,
        placement: &PlacementClient,
        calls: &Calls,
        names: impl Iterator<Item = &'a String>,
    ) -> Result<(), PlacementError> {
        let mut known = self.classes.lock().await;
        for name in names {
            if ferrite_resource_classes::is_standard_class(name) || known.contains(name) {
                continue;
            }
            calls.placement();
            placement.ensure_resource_class(name).await.inspect_err(
                |e| tracing::warn!(name, error = %e, "could not create resource class"),
            )?;
            known.insert(name.clone());
        }
        Ok(())
    }

    async fn ensure_traits<'a>(
        &self,
        placement: &PlacementClient,
        calls: &Calls,
        names: impl Iterator<Item = &'a String>,
    ) -> Result<(), PlacementError> {
        let mut known = self.traits.lock().await;
        for name in names {
            if ferrite_resource_classes::is_standard_trait(name) || known.contains(name) {
                continue;
            }
            calls.placement();
            placement
                .ensure_trait(name)
                .await
                .inspect_err(|e| tracing::warn!(name, error = %e, "could not create trait"))?;
            known.insert(name.clone());
        }
        Ok(())
    }
}

type ProviderResult = Result<(Known, Outcome), PlacementError>;

/// What happened to one provider.
enum Outcome {
    Unchanged,
    Created,
    Updated,
}

pub(crate) async fn run(driver: &IronicDriver) -> Result<SyncReport, DriverError> {
    let started = Instant::now();
    // One periodic at a time: the view is only coherent if syncs do not
    // interleave.
    let mut state = driver.sync_state.lock().await;
    let calls = Calls::default();
    let ironic = driver.ironic_client(&calls).await?;
    let placement = &driver.placement;

    let refresh_due = match (state.loaded_at, driver.options.placement_refresh) {
        (None, _) => true,
        (Some(at), Some(every)) => at.elapsed() >= every,
        (Some(_), None) => false,
    };
    // Read the marked providers before listing nodes (see the module doc).
    let marked: Option<HashMap<String, i64>> = if refresh_due {
        calls.placement();
        let query = format!("required={}", MARKER_TRAITS.join(","));
        let providers = placement
            .list_providers(&query)
            .await
            .map_err(|e| DriverError(format!("listing resource providers: {e}")))?;
        state.providers.clear();
        Some(
            providers
                .into_iter()
                .filter(|rp| rp.name == rp.uuid)
                .map(|rp| (rp.uuid, rp.generation))
                .collect(),
        )
    } else {
        None
    };

    let nodes = list_nodes(driver, &ironic, &calls).await?;
    let listed: HashSet<&str> = nodes.iter().map(|n| n.uuid.as_str()).collect();
    let owned: Vec<&NodeState> = nodes.iter().filter(|n| driver.owns_node(&n.uuid)).collect();

    let mut report = SyncReport {
        nodes_seen: nodes.len(),
        nodes_owned: owned.len(),
        ..SyncReport::default()
    };

    // The work: every owned node whose provider differs from our view.
    let skip_reserve = driver.options.skip_reserve_in_use_nodes;
    let mut jobs = Vec::new();
    for node in &owned {
        let wanted = resources::desired(node, skip_reserve);
        let known = state.providers.get(&node.uuid).cloned();
        if known.as_ref().is_some_and(|k| k.contents == wanted) {
            continue;
        }
        let exists = marked.as_ref().is_some_and(|m| m.contains_key(&node.uuid));
        jobs.push((node.uuid.clone(), wanted, known, exists));
    }

    let concurrency = driver.options.placement_concurrency.max(1);
    let vocabulary = &state.vocabulary;
    let results: Vec<(String, ProviderResult)> = futures::stream::iter(jobs)
        .map(|(uuid, wanted, known, exists)| {
            let calls = &calls;
            async move {
                let result =
                    ensure_provider(placement, calls, vocabulary, &uuid, &wanted, known, exists)
                        .await;
                (uuid, result)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (uuid, result) in results {
        match result {
            Ok((known, outcome)) => {
                match outcome {
                    Outcome::Created => report.providers_created += 1,
                    Outcome::Updated => report.providers_updated += 1,
                    Outcome::Unchanged => {}
                }
                state.providers.insert(uuid, known);
            }
            Err(e) => {
                tracing::warn!(node = uuid, error = %e, "could not update the node's resource provider");
                report.provider_errors += 1;
                // Forget our view: the next sync re-reads this provider.
                state.providers.remove(&uuid);
            }
        }
    }

    // Orphans: providers of nodes that left Ironic.
    let owned_now: HashSet<&str> = owned.iter().map(|n| n.uuid.as_str()).collect();
    let mut candidates: BTreeSet<String> = BTreeSet::new();
    for uuid in state.providers.keys() {
        if !listed.contains(uuid.as_str()) {
            candidates.insert(uuid.clone());
        }
    }
    if let Some(marked) = &marked {
        for uuid in marked.keys() {
            if !listed.contains(uuid.as_str()) && driver.owns_node(uuid) {
                candidates.insert(uuid.clone());
            }
        }
    }
    // Nodes still in Ironic that moved to another host: forget them only.
    state
        .providers
        .retain(|uuid, _| owned_now.contains(uuid.as_str()) || candidates.contains(uuid));
    let filtered = driver.config.conductor_group.is_some() || driver.config.shard.is_some();
    for uuid in candidates {
        if filtered {
            calls.ironic();
            match ironic.get_node(&uuid).await {
                Err(e) if e.status() == Some(404) => {}
                Ok(_) => {
                    state.providers.remove(&uuid);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(node = uuid, error = %e, "could not check whether the node still exists");
                    continue;
                }
            }
        }
        calls.placement();
        match placement.delete_provider(&uuid).await {
            Ok(()) => {
                tracing::info!(
                    node = uuid,
                    "deleted the resource provider of a node gone from Ironic"
                );
                report.providers_deleted += 1;
                state.providers.remove(&uuid);
            }
            Err(e) if e.status() == Some(404) => {
                state.providers.remove(&uuid);
            }
            Err(e) => {
                // Typically allocations still on it: try again next time.
                tracing::warn!(node = uuid, error = %e, "could not delete an orphaned resource provider");
                report.provider_errors += 1;
            }
        }
    }

    if refresh_due {
        state.loaded_at = Some(Instant::now());
    }
    state.owned_nodes = owned
        .into_iter()
        .map(|n| (n.uuid.clone(), n.clone()))
        .collect();
    report.placement_calls = calls.placement.load(Ordering::Relaxed);
    report.ironic_calls = calls.ironic.load(Ordering::Relaxed);
    tracing::debug!(?report, elapsed = ?started.elapsed(), "sync finished");
    Ok(report)
}

/// Lists every node this driver may manage, following `next` links.
async fn list_nodes(
    driver: &IronicDriver,
    ironic: &BaremetalClient,
    calls: &Calls,
) -> Result<Vec<NodeState>, DriverError> {
    // `/v1/nodes?fields=` rather than `/detail`: the API refuses `fields`
    // on `/detail`, and the full documents would be ten times larger.
    let mut query = vec![
        format!("fields={}", SYNC_FIELDS.join(",")),
        format!("limit={}", driver.options.node_page_size.max(1)),
    ];
    if let Some(group) = &driver.config.conductor_group {
        query.push(format!("conductor_group={}", encode(group)));
    }
    if let Some(shard) = &driver.config.shard {
        query.push(format!("shard={}", encode(shard)));
    }
    let mut path = format!("/v1/nodes?{}", query.join("&"));
    let mut nodes = Vec::new();
    loop {
        calls.ironic();
        let (page, next) = ironic
            .list_nodes_page(&path)
            .await
            .map_err(|e| DriverError(format!("listing bare metal nodes: {e}")))?;
        let empty = page.is_empty();
        nodes.extend(page.iter().filter_map(NodeState::from_json));
        match next
            .as_deref()
            .and_then(|link| link.find("/v1/").map(|at| &link[at..]))
        {
            Some(next) if !empty => path = next.to_string(),
            _ => break,
        }
    }
    Ok(nodes)
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How many times a lost generation race is re-read and retried.
const CONFLICT_RETRIES: usize = 4;

/// Makes one provider hold `wanted`, creating it if needed.
async fn ensure_provider(
    placement: &PlacementClient,
    calls: &Calls,
    vocabulary: &Vocabulary,
    uuid: &str,
    wanted: &ProviderContents,
    known: Option<Known>,
    exists: bool,
) -> Result<(Known, Outcome), PlacementError> {
    let mut created = false;
    let mut known = match known {
        Some(known) => known,
        None if !exists => match create_provider(placement, calls, uuid).await? {
            Some(generation) => {
                created = true;
                Known {
                    generation,
                    contents: ProviderContents::default(),
                }
            }
            // It exists already (another host made it, or our view was
            // dropped): read it.
            None => read_provider(placement, calls, uuid).await?,
        },
        None => read_provider(placement, calls, uuid).await?,
    };
    let mut wrote = false;
    let mut attempt = 0;
    loop {
        match write_differences(placement, calls, vocabulary, uuid, &mut known, wanted).await {
            Ok(changed) => {
                wrote |= changed;
                break;
            }
            Err(e) if is_generation_conflict(&e) && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                tracing::debug!(
                    node = uuid,
                    attempt,
                    "provider generation moved; re-reading"
                );
                // A busy database answers 409 too: give it a moment.
                tokio::time::sleep(std::time::Duration::from_millis(10 * attempt as u64)).await;
                known = read_provider(placement, calls, uuid).await?;
            }
            Err(e) => return Err(e),
        }
    }
    let outcome = if created {
        Outcome::Created
    } else if wrote {
        Outcome::Updated
    } else {
        Outcome::Unchanged
    };
    Ok((known, outcome))
}

/// Creates the provider of node `uuid`, named after it as Nova names
/// Ironic providers. `Some(generation)` when created, `None` when it
/// already existed.
///
/// Placement over SQLite reports a busy database during a create as a 409
/// (`concurrent_update`, and today even `duplicate_name`), so a 409 is only
/// believed once a read finds the provider; otherwise the create is retried
/// after a short pause.
async fn create_provider(
    placement: &PlacementClient,
    calls: &Calls,
    uuid: &str,
) -> Result<Option<i64>, PlacementError> {
    let mut attempt = 0;
    loop {
        calls.placement();
        let error = match placement.create_provider(uuid, uuid, None).await {
            Ok(rp) => return Ok(Some(rp.generation)),
            Err(e) if e.is_conflict() => e,
            Err(e) => return Err(e),
        };
        calls.placement();
        match placement.get_provider(uuid).await {
            Ok(_) => return Ok(None),
            Err(e) if e.status() == Some(404) && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                tracing::debug!(node = uuid, %error, "provider create lost a database race; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt as u64)).await;
            }
            Err(_) => return Err(error),
        }
    }
}

fn is_generation_conflict(error: &PlacementError) -> bool {
    matches!(error, PlacementError::Api { status: 409, code, .. } if code == "placement.concurrent_update")
}

/// Reads a provider's inventories and traits, consistently: if the
/// generation moved between the two reads, read again.
async fn read_provider(
    placement: &PlacementClient,
    calls: &Calls,
    uuid: &str,
) -> Result<Known, PlacementError> {
    let mut attempt = 0;
    loop {
        calls.placement();
        let (inventory_generation, inventories) = placement.get_inventories(uuid).await?;
        calls.placement();
        let (generation, traits) = placement.get_traits(uuid).await?;
        if generation == inventory_generation || attempt >= CONFLICT_RETRIES {
            return Ok(Known {
                generation,
                contents: ProviderContents {
                    inventories,
                    traits: traits.into_iter().collect(),
                },
            });
        }
        attempt += 1;
    }
}

/// Writes what differs between `known` and `wanted`, updating `known`.
/// Returns whether anything was written.
async fn write_differences(
    placement: &PlacementClient,
    calls: &Calls,
    vocabulary: &Vocabulary,
    uuid: &str,
    known: &mut Known,
    wanted: &ProviderContents,
) -> Result<bool, PlacementError> {
    let mut wrote = false;
    if known.contents.inventories != wanted.inventories {
        vocabulary
            .ensure_classes(placement, calls, wanted.inventories.keys())
            .await?;
        calls.placement();
        known.generation = placement
            .set_inventories(uuid, known.generation, &wanted.inventories)
            .await?;
        known.contents.inventories = wanted.inventories.clone();
        wrote = true;
    }
    if known.contents.traits != wanted.traits {
        vocabulary
            .ensure_traits(placement, calls, wanted.traits.iter())
            .await?;
        let traits: Vec<&str> = wanted.traits.iter().map(String::as_str).collect();
        calls.placement();
        known.generation = placement
            .set_traits(uuid, known.generation, &traits)
            .await?;
        known.contents.traits = wanted.traits.clone();
        wrote = true;
    }
    Ok(wrote)
}
