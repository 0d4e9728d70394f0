//! Allocation candidates: which sets of providers can satisfy a request.
//!
//! Pure: works on a [`Snapshot`] of the providers (trees, inventories, usage,
//! traits, aggregates) and a resolved [`Request`]. The rules follow upstream
//! Placement's search for each microversion: a suffixed group is satisfied
//! by one provider; the unsuffixed group may spread its resource classes over
//! a provider tree and providers sharing via `MISC_SHARES_VIA_AGGREGATE`;
//! groups are then combined per anchor tree under `group_policy`,
//! `same_subtree`, `root_required` and capacity. Output order is
//! deterministic: anchor trees by provider id, providers by id within them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub type Id = i64;

/// The sharing trait.
pub const SHARES_VIA_AGGREGATE: &str = "MISC_SHARES_VIA_AGGREGATE";

#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotProvider {
    pub id: Id,
    pub uuid: String,
    pub parent: Option<Id>,
    pub root: Id,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotInventory {
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
}

impl SnapshotInventory {
    fn capacity(&self) -> f64 {
        (self.total - self.reserved) as f64 * self.allocation_ratio
    }
}

/// Everything the search reads, keyed by internal ids.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub providers: BTreeMap<Id, SnapshotProvider>,
    pub inventories: BTreeMap<Id, BTreeMap<Id, SnapshotInventory>>,
    pub usage: HashMap<(Id, Id), i64>,
    pub traits: HashMap<Id, BTreeSet<Id>>,
    pub aggregates: HashMap<Id, BTreeSet<String>>,
    pub class_names: HashMap<Id, String>,
    pub trait_names: HashMap<Id, String>,
    /// Id of `MISC_SHARES_VIA_AGGREGATE`, if the trait exists.
    pub sharing_trait: Option<Id>,
    /// (generation, last modification) per provider: what an incremental
    /// refresh compares to find changed providers.
    pub versions: HashMap<Id, (i64, i64)>,
    /// Lookup tables derived from the above, kept up to date by
    /// [`Snapshot::reindex`], [`Snapshot::forget`] and [`Snapshot::index_provider`],
    /// so requests never scan the whole fleet.
    pub index: SnapshotIndex,
    /// Newest modification time seen (refreshes look a little before it).
    pub max_modified: i64,
    /// When the provider table was last compared in full.
    pub full_scan_at: i64,
}

/// Providers by class, trait and aggregate, and fleet-wide facts.
#[derive(Debug, Clone, Default)]
pub struct SnapshotIndex {
    built: bool,
    by_uuid: HashMap<String, Id>,
    by_class: HashMap<Id, BTreeSet<Id>>,
    by_trait: HashMap<Id, BTreeSet<Id>>,
    by_aggregate: HashMap<String, BTreeSet<Id>>,
    /// Every provider of each tree, by root.
    by_root: HashMap<Id, BTreeSet<Id>>,
    sharing: BTreeSet<Id>,
    /// How many providers have a parent (trees exist when non-zero).
    children: usize,
}

impl SnapshotIndex {
    fn build(s: &Snapshot) -> SnapshotIndex {
        let mut index = SnapshotIndex {
            built: true,
            ..SnapshotIndex::default()
        };
        for id in s.providers.keys() {
            index.add(s, *id);
        }
        index
    }

    /// Indexes provider `id` as it is in `s`.
    fn add(&mut self, s: &Snapshot, id: Id) {
        let Some(p) = s.providers.get(&id) else {
            return;
        };
        self.by_uuid.insert(p.uuid.clone(), id);
        self.by_root.entry(p.root).or_default().insert(id);
        if p.parent.is_some() {
            self.children += 1;
        }
        for rc in s.inventories.get(&id).into_iter().flat_map(|m| m.keys()) {
            self.by_class.entry(*rc).or_default().insert(id);
        }
        for t in s.traits.get(&id).into_iter().flatten() {
            self.by_trait.entry(*t).or_default().insert(id);
            if Some(*t) == s.sharing_trait {
                self.sharing.insert(id);
            }
        }
        for a in s.aggregates.get(&id).into_iter().flatten() {
            self.by_aggregate.entry(a.clone()).or_default().insert(id);
        }
    }

    /// Removes provider `id` as it is in `s` (call before changing it).
    fn remove(&mut self, s: &Snapshot, id: Id) {
        let Some(p) = s.providers.get(&id) else {
            return;
        };
        self.by_uuid.remove(&p.uuid);
        if let Some(set) = self.by_root.get_mut(&p.root) {
            set.remove(&id);
        }
        if p.parent.is_some() {
            self.children = self.children.saturating_sub(1);
        }
        for rc in s.inventories.get(&id).into_iter().flat_map(|m| m.keys()) {
            if let Some(set) = self.by_class.get_mut(rc) {
                set.remove(&id);
            }
        }
        for t in s.traits.get(&id).into_iter().flatten() {
            if let Some(set) = self.by_trait.get_mut(t) {
                set.remove(&id);
            }
        }
        self.sharing.remove(&id);
        for a in s.aggregates.get(&id).into_iter().flatten() {
            if let Some(set) = self.by_aggregate.get_mut(a) {
                set.remove(&id);
            }
        }
    }

    fn with_trait(&self, t: Id) -> impl Iterator<Item = &Id> {
        self.by_trait.get(&t).into_iter().flatten()
    }

    fn in_aggregate(&self, uuid: &str) -> impl Iterator<Item = &Id> {
        self.by_aggregate.get(uuid).into_iter().flatten()
    }
}

impl Snapshot {
    /// Rebuilds the lookup tables from scratch.
    pub fn reindex(&mut self) {
        self.index = SnapshotIndex::build(self);
    }

    /// Drops provider `id` and everything known about it.
    pub fn forget(&mut self, id: Id) {
        if self.index.built {
            let mut index = std::mem::take(&mut self.index);
            index.remove(self, id);
            self.index = index;
        }
        self.providers.remove(&id);
        self.versions.remove(&id);
        self.inventories.remove(&id);
        self.traits.remove(&id);
        self.aggregates.remove(&id);
        let classes: Vec<Id> = self.class_names.keys().copied().collect();
        for rc in classes {
            self.usage.remove(&(id, rc));
        }
    }

    /// Adds provider `id` (already filled in) to the lookup tables.
    pub fn index_provider(&mut self, id: Id) {
        if self.index.built {
            let mut index = std::mem::take(&mut self.index);
            index.add(self, id);
            self.index = index;
        }
    }

    pub fn provider_id(&self, uuid: &str) -> Option<Id> {
        if self.index.built {
            return self.index.by_uuid.get(uuid).copied();
        }
        self.providers
            .values()
            .find(|p| p.uuid == uuid)
            .map(|p| p.id)
    }

    fn used(&self, rp: Id, rc: Id) -> i64 {
        self.usage.get(&(rp, rc)).copied().unwrap_or(0)
    }

    fn has_capacity(&self, rp: Id, rc: Id, amount: i64) -> bool {
        let Some(inv) = self.inventories.get(&rp).and_then(|m| m.get(&rc)) else {
            return false;
        };
        (self.used(rp, rc) + amount) as f64 <= inv.capacity()
            && inv.min_unit <= amount
            && inv.max_unit >= amount
            && inv.step_size > 0
            && amount % inv.step_size == 0
    }

    fn traits_of(&self, rp: Id) -> &BTreeSet<Id> {
        static EMPTY: BTreeSet<Id> = BTreeSet::new();
        self.traits.get(&rp).unwrap_or(&EMPTY)
    }

    fn parent_of(&self, rp: Id) -> Option<Id> {
        self.providers.get(&rp).and_then(|p| p.parent)
    }

    fn root_of(&self, rp: Id) -> Id {
        self.providers.get(&rp).map_or(rp, |p| p.root)
    }
}

/// One request group with names resolved to ids.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub suffix: String,
    pub resources: Vec<(Id, i64)>,
    /// Each set: at least one must be present.
    pub required: Vec<BTreeSet<Id>>,
    pub forbidden: BTreeSet<Id>,
    pub member_of: Vec<BTreeSet<String>>,
    pub forbidden_aggregates: BTreeSet<String>,
    /// Root of the `in_tree` provider; `Some(None)` when it does not exist.
    pub in_tree: Option<Option<Id>>,
}

impl Group {
    pub fn same_provider(&self) -> bool {
        !self.suffix.is_empty()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub groups: Vec<Group>,
    pub isolate: bool,
    pub same_subtrees: Vec<BTreeSet<String>>,
    pub root_required: BTreeSet<Id>,
    pub root_forbidden: BTreeSet<Id>,
    pub limit: Option<usize>,
    /// 1.29+: candidates may combine several providers of one tree.
    pub nested_aware: bool,
    /// Upstream's `randomize_allocation_candidates`: a random `limit`-sized
    /// sample (or a shuffle) instead of the first candidates.
    pub randomize: bool,
}

/// One way to satisfy the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// (provider, class, amount), summed per provider and class.
    pub resources: Vec<(Id, Id, i64)>,
    /// Request group suffix → providers that satisfy it.
    pub mappings: BTreeMap<String, BTreeSet<Id>>,
    anchor: Id,
    same_provider: bool,
}

/// What makes two candidates the same: their amounts and their mappings.
type CandidateKey = (BTreeSet<(Id, Id, i64)>, BTreeMap<String, BTreeSet<Id>>);

impl Candidate {
    fn key(&self) -> CandidateKey {
        (
            self.resources.iter().copied().collect(),
            self.mappings.clone(),
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub candidates: Vec<Candidate>,
    /// Providers whose summaries are reported (all providers of the trees
    /// the candidates use), by id.
    pub summaries: Vec<Id>,
}

/// How many group combinations one request may examine before the search
/// stops (a guard against combinatorial explosion on wide trees).
pub const MAX_COMBINATIONS: u64 = 2_000_000;

/// Candidate rows of the multi-provider search: (provider, anchor root, class).
type RpCandidates = BTreeSet<(Id, Id, Id)>;

fn trees(c: &RpCandidates) -> BTreeSet<Id> {
    c.iter().map(|(_, root, _)| *root).collect()
}

struct GroupContext<'a> {
    group: &'a Group,
    /// Providers matching every member_of set (only meaningful if any).
    rps_in_aggs: BTreeSet<Id>,
    tree_root: Option<Id>,
    /// class → (provider, root) with room for the amount.
    with_resource: BTreeMap<Id, BTreeSet<(Id, Id)>>,
}

struct Search<'a> {
    snapshot: &'a Snapshot,
    index: &'a SnapshotIndex,
    request: &'a Request,
    sharing: BTreeSet<Id>,
    has_trees: bool,
    anchor_roots: Option<BTreeSet<Id>>,
}

/// Runs the search. An empty outcome means "no candidates".
pub fn find(snapshot: &Snapshot, request: &Request) -> Outcome {
    // Snapshots built by hand (tests) may come without an index.
    let built;
    let index = if snapshot.index.built {
        &snapshot.index
    } else {
        built = SnapshotIndex::build(snapshot);
        &built
    };
    let mut search = Search {
        snapshot,
        index,
        request,
        sharing: index.sharing.clone(),
        has_trees: index.children > 0,
        anchor_roots: None,
    };
    if !request.root_required.is_empty() || !request.root_forbidden.is_empty() {
        let roots: BTreeSet<Id> = snapshot
            .providers
            .values()
            .filter(|p| p.parent.is_none())
            .filter(|p| {
                let traits = snapshot.traits_of(p.id);
                request.root_required.iter().all(|t| traits.contains(t))
                    && !request.root_forbidden.iter().any(|t| traits.contains(t))
            })
            .map(|p| p.id)
            .collect();
        if roots.is_empty() {
            return Outcome::default();
        }
        search.anchor_roots = Some(roots);
    }
    // The common bare-metal question (one group, a flat fleet, nobody
    // sharing) has one candidate per matching provider: build only as many
    // as the limit needs instead of all of them.
    if let [group] = request.groups.as_slice() {
        if !search.has_trees && search.sharing.is_empty() {
            let Some(ctx) = search.group_context(group) else {
                return Outcome::default();
            };
            return search.flat_single_group(&ctx);
        }
    }
    let mut per_group: Vec<(String, Vec<Candidate>)> = Vec::new();
    let mut amounts: BTreeMap<Id, i64> = BTreeMap::new();
    let mut multi_group_classes: BTreeSet<Id> = BTreeSet::new();
    for group in &request.groups {
        let Some(ctx) = search.group_context(group) else {
            return Outcome::default();
        };
        for (rc, amount) in &group.resources {
            if amounts.contains_key(rc) {
                multi_group_classes.insert(*rc);
            }
            *amounts.entry(*rc).or_default() += amount;
        }
        let mut found = search.one_group(&ctx);
        if found.is_empty() {
            return Outcome::default();
        }
        for c in &mut found {
            c.same_provider = group.same_provider();
        }
        per_group.push((group.suffix.clone(), found));
    }
    search.merge(per_group, &amounts, &multi_group_classes)
}

impl<'a> Search<'a> {
    /// Providers in every one of `member_of`'s any-of sets.
    fn in_aggregates(&self, member_of: &[BTreeSet<String>]) -> BTreeSet<Id> {
        let mut result: Option<BTreeSet<Id>> = None;
        for any in member_of {
            let members: BTreeSet<Id> = any
                .iter()
                .flat_map(|u| self.index.in_aggregate(u))
                .copied()
                .collect();
            result = Some(match result {
                None => members,
                Some(r) => r.intersection(&members).copied().collect(),
            });
        }
        result.unwrap_or_default()
    }

    fn in_any_aggregate(&self, aggs: &BTreeSet<String>) -> BTreeSet<Id> {
        aggs.iter()
            .flat_map(|u| self.index.in_aggregate(u))
            .copied()
            .collect()
    }

    /// (sharing provider, anchor root) pairs: the roots of every provider
    /// that shares an aggregate with each sharing provider (itself included).
    fn anchors_for_sharing(&self, sharing: &BTreeSet<Id>) -> Vec<(Id, Id)> {
        let s = self.snapshot;
        let mut out = BTreeSet::new();
        for sp in sharing {
            for agg in s.aggregates.get(sp).into_iter().flatten() {
                for other in self.index.in_aggregate(agg) {
                    out.insert((*sp, s.root_of(*other)));
                }
            }
        }
        out.into_iter().collect()
    }

    /// Providers that have at least one trait of each any-of set.
    fn with_required(&self, required: &[BTreeSet<Id>]) -> BTreeSet<Id> {
        let mut result: Option<BTreeSet<Id>> = None;
        for any in required {
            let having: BTreeSet<Id> = any
                .iter()
                .flat_map(|t| self.index.with_trait(*t))
                .copied()
                .collect();
            result = Some(match result {
                None => having,
                Some(r) => r.intersection(&having).copied().collect(),
            });
        }
        result.unwrap_or_default()
    }

    fn in_filtered_anchors(&self, root: Id) -> bool {
        self.anchor_roots.as_ref().is_none_or(|r| r.contains(&root))
    }

    fn group_context(&self, group: &'a Group) -> Option<GroupContext<'a>> {
        let s = self.snapshot;
        let mut rps_in_aggs = BTreeSet::new();
        if !group.member_of.is_empty() {
            rps_in_aggs = self.in_aggregates(&group.member_of);
            if rps_in_aggs.is_empty() {
                return None;
            }
        }
        let tree_root = match group.in_tree {
            Some(Some(root)) => Some(root),
            Some(None) => return None,
            None => None,
        };
        let mut with_resource = BTreeMap::new();
        for (rc, amount) in &group.resources {
            let providers: BTreeSet<(Id, Id)> = self
                .index
                .by_class
                .get(rc)
                .into_iter()
                .flatten()
                .filter_map(|id| s.providers.get(id))
                .filter(|p| tree_root.is_none_or(|t| p.root == t))
                .filter(|p| s.has_capacity(p.id, *rc, *amount))
                .map(|p| (p.id, p.root))
                .collect();
            if providers.is_empty() {
                return None;
            }
            with_resource.insert(*rc, providers);
        }
        Some(GroupContext {
            group,
            rps_in_aggs,
            tree_root,
            with_resource,
        })
    }

    fn one_group(&self, ctx: &GroupContext<'_>) -> Vec<Candidate> {
        let group = ctx.group;
        if !group.same_provider() && (!self.sharing.is_empty() || self.has_trees) {
            if !group.required.is_empty() {
                let having = group
                    .required
                    .iter()
                    .flatten()
                    .any(|t| self.index.with_trait(*t).next().is_some());
                if !having {
                    return Vec::new();
                }
            }
            let rp_candidates = self.trees_matching_all(ctx);
            return self.multiple_providers(ctx, &rp_candidates);
        }
        let tuples = self.provider_ids_matching(ctx);
        self.single_provider(ctx, &tuples)
    }

    /// Upstream's `get_provider_ids_for_traits_and_aggs`: `None` means no
    /// provider can match; an empty filter set means "no filter".
    fn traits_and_aggs(&self, ctx: &GroupContext<'_>) -> Option<(BTreeSet<Id>, BTreeSet<Id>)> {
        let group = ctx.group;
        let mut filtered: BTreeSet<Id> = BTreeSet::new();
        if !group.required.is_empty() {
            filtered = self.with_required(&group.required);
            if filtered.is_empty() {
                return None;
            }
        }
        if !group.member_of.is_empty() {
            filtered = if filtered.is_empty() {
                ctx.rps_in_aggs.clone()
            } else {
                filtered.intersection(&ctx.rps_in_aggs).copied().collect()
            };
            if filtered.is_empty() {
                return None;
            }
        }
        let mut forbidden = BTreeSet::new();
        if !group.forbidden_aggregates.is_empty() {
            let bad = self.in_any_aggregate(&group.forbidden_aggregates);
            forbidden.extend(bad.iter().copied());
            if !filtered.is_empty() {
                filtered = filtered.difference(&bad).copied().collect();
                if filtered.is_empty() {
                    return None;
                }
            }
        }
        if !group.forbidden.is_empty() {
            let bad: BTreeSet<Id> = group
                .forbidden
                .iter()
                .flat_map(|t| self.index.with_trait(*t))
                .copied()
                .collect();
            forbidden.extend(bad.iter().copied());
            if !filtered.is_empty() {
                filtered = filtered.difference(&bad).copied().collect();
                if filtered.is_empty() {
                    return None;
                }
            }
        }
        Some((filtered, forbidden))
    }

    fn provider_ids_matching(&self, ctx: &GroupContext<'_>) -> Vec<(Id, Id)> {
        let Some((mut filtered, forbidden)) = self.traits_and_aggs(ctx) else {
            return Vec::new();
        };
        let mut last: Option<&BTreeSet<(Id, Id)>> = None;
        let mut first = true;
        for (rc, _) in &ctx.group.resources {
            let Some(providers) = ctx.with_resource.get(rc) else {
                return Vec::new();
            };
            let ids: BTreeSet<Id> = providers.iter().map(|(id, _)| *id).collect();
            if first {
                first = false;
                if filtered.is_empty() {
                    filtered = ids.difference(&forbidden).copied().collect();
                } else {
                    filtered = filtered.intersection(&ids).copied().collect();
                }
            } else {
                filtered = filtered.intersection(&ids).copied().collect();
            }
            if filtered.is_empty() {
                return Vec::new();
            }
            last = Some(providers);
        }
        match last {
            Some(providers) => providers
                .iter()
                .filter(|(id, _)| filtered.contains(id))
                .copied()
                .collect(),
            None => {
                // A resourceless group: any provider passing the filters.
                self.snapshot
                    .providers
                    .values()
                    .filter(|p| filtered.is_empty() || filtered.contains(&p.id))
                    .filter(|p| !forbidden.contains(&p.id))
                    .map(|p| (p.id, p.root))
                    .collect()
            }
        }
    }

    /// One group on a fleet without trees or sharing providers: the same
    /// answer as the general search (each matching provider is its own
    /// anchor and its own candidate), produced lazily up to the limit.
    fn flat_single_group(&self, ctx: &GroupContext<'_>) -> Outcome {
        let request = self.request;
        let mut providers: Vec<Id> = self
            .provider_ids_matching(ctx)
            .into_iter()
            .filter(|(_, root)| self.in_filtered_anchors(*root))
            .map(|(rp, _)| rp)
            .collect();
        if request.randomize {
            use rand::seq::SliceRandom;
            providers.shuffle(&mut rand::thread_rng());
        }
        let limit = request.limit.unwrap_or(usize::MAX);
        let mut candidates = Vec::new();
        for rp in providers {
            if candidates.len() >= limit {
                break;
            }
            let candidate = Candidate {
                resources: ctx
                    .group
                    .resources
                    .iter()
                    .map(|(rc, a)| (rp, *rc, *a))
                    .collect(),
                mappings: BTreeMap::from([(ctx.group.suffix.clone(), BTreeSet::from([rp]))]),
                anchor: rp,
                same_provider: ctx.group.same_provider(),
            };
            if !self.exceeds_capacity(&candidate) {
                candidates.push(candidate);
            }
        }
        let mut summaries: Vec<Id> = candidates.iter().map(|c| c.anchor).collect();
        summaries.sort_unstable();
        Outcome {
            candidates,
            summaries,
        }
    }

    fn single_provider(&self, ctx: &GroupContext<'_>, tuples: &[(Id, Id)]) -> Vec<Candidate> {
        let mut out = Vec::new();
        for (rp, root) in tuples {
            let candidate = Candidate {
                resources: ctx
                    .group
                    .resources
                    .iter()
                    .map(|(rc, a)| (*rp, *rc, *a))
                    .collect(),
                mappings: BTreeMap::from([(ctx.group.suffix.clone(), BTreeSet::from([*rp]))]),
                anchor: *root,
                same_provider: false,
            };
            if self.in_filtered_anchors(*root) {
                out.push(candidate.clone());
            }
            if self.sharing.contains(rp) {
                for (_, anchor) in self.anchors_for_sharing(&BTreeSet::from([*rp])) {
                    if anchor == *root || !self.in_filtered_anchors(anchor) {
                        continue;
                    }
                    let mut shared = candidate.clone();
                    shared.anchor = anchor;
                    out.push(shared);
                }
            }
        }
        out
    }

    fn trees_matching_all(&self, ctx: &GroupContext<'_>) -> RpCandidates {
        let s = self.snapshot;
        let group = ctx.group;
        let bad_aggs = if group.forbidden_aggregates.is_empty() {
            BTreeSet::new()
        } else {
            self.in_any_aggregate(&group.forbidden_aggregates)
        };
        let mut all: RpCandidates = BTreeSet::new();
        for (rc, _) in &group.resources {
            let Some(providers) = ctx.with_resource.get(rc) else {
                return BTreeSet::new();
            };
            let mut for_rc: RpCandidates = providers
                .iter()
                .map(|(id, root)| (*id, *root, *rc))
                .collect();
            if for_rc.is_empty() {
                return BTreeSet::new();
            }
            // Sharing providers with room for this class, within member_of.
            let ids: BTreeSet<Id> = providers.iter().map(|(id, _)| *id).collect();
            let mut sharing: BTreeSet<Id> = self.sharing.intersection(&ids).copied().collect();
            if !group.member_of.is_empty() {
                sharing = sharing.intersection(&ctx.rps_in_aggs).copied().collect();
            }
            if !sharing.is_empty() && ctx.tree_root.is_none() {
                for (sp, anchor) in self.anchors_for_sharing(&sharing) {
                    for_rc.insert((sp, anchor, *rc));
                }
            }
            if let Some(roots) = &self.anchor_roots {
                for_rc.retain(|(_, root, _)| roots.contains(root));
                if for_rc.is_empty() {
                    return BTreeSet::new();
                }
            }
            if !group.member_of.is_empty() {
                for_rc.retain(|(id, root, _)| {
                    ctx.rps_in_aggs.contains(id) || ctx.rps_in_aggs.contains(root)
                });
                if for_rc.is_empty() {
                    return BTreeSet::new();
                }
            }
            if !group.forbidden_aggregates.is_empty() {
                for_rc.retain(|(id, root, _)| !bad_aggs.contains(id) && !bad_aggs.contains(root));
                if for_rc.is_empty() {
                    return BTreeSet::new();
                }
            }
            if all.is_empty() {
                all = for_rc;
            } else {
                let common: BTreeSet<Id> =
                    trees(&all).intersection(&trees(&for_rc)).copied().collect();
                all.extend(for_rc);
                all.retain(|(_, root, _)| common.contains(root));
            }
            if all.is_empty() {
                return BTreeSet::new();
            }
        }
        if (group.required.is_empty() && group.forbidden.is_empty()) || !self.sharing.is_empty() {
            return all;
        }
        // Trees whose non-forbidden providers together have the required traits.
        let rp_ids: BTreeSet<Id> = all.iter().map(|(id, _, _)| *id).collect();
        let original: BTreeMap<Id, Id> = rp_ids.iter().map(|id| (*id, s.root_of(*id))).collect();
        let good: BTreeMap<Id, Id> = original
            .iter()
            .filter(|(id, _)| {
                !s.traits_of(**id)
                    .iter()
                    .any(|t| group.forbidden.contains(t))
            })
            .map(|(id, root)| (*id, *root))
            .collect();
        let keep: BTreeSet<(Id, Id)> = if group.required.is_empty() {
            let good_roots: BTreeSet<Id> = good.values().copied().collect();
            original
                .iter()
                .filter(|(_, root)| good_roots.contains(root))
                .map(|(id, root)| (*id, *root))
                .collect()
        } else {
            let mut root_traits: BTreeMap<Id, BTreeSet<Id>> = BTreeMap::new();
            for (id, root) in &good {
                root_traits
                    .entry(*root)
                    .or_default()
                    .extend(s.traits_of(*id).iter().copied());
            }
            let satisfied: BTreeSet<Id> = root_traits
                .iter()
                .filter(|(_, traits)| {
                    group
                        .required
                        .iter()
                        .all(|any| any.iter().any(|t| traits.contains(t)))
                })
                .map(|(root, _)| *root)
                .collect();
            original
                .iter()
                .filter(|(_, root)| satisfied.contains(root))
                .map(|(id, root)| (*id, *root))
                .collect()
        };
        all.retain(|(id, root, _)| keep.contains(&(*id, *root)));
        all
    }

    fn multiple_providers(
        &self,
        ctx: &GroupContext<'_>,
        rp_candidates: &RpCandidates,
    ) -> Vec<Candidate> {
        let s = self.snapshot;
        let group = ctx.group;
        let amounts: BTreeMap<Id, i64> = group.resources.iter().copied().collect();
        // root → class → providers
        let mut tree: BTreeMap<Id, BTreeMap<Id, Vec<Id>>> = BTreeMap::new();
        for (id, root, rc) in rp_candidates {
            tree.entry(*root)
                .or_default()
                .entry(*rc)
                .or_default()
                .push(*id);
        }
        let mut out: Vec<Candidate> = Vec::new();
        let mut seen = BTreeSet::new();
        for (root, by_class) in tree {
            let lists: Vec<(Id, Vec<Id>)> = by_class.into_iter().collect();
            let choices: Vec<Vec<Id>> = lists.iter().map(|(_, v)| v.clone()).collect();
            for choice in product(&choices).take(MAX_COMBINATIONS as usize) {
                let chosen: Vec<(Id, Id)> = lists
                    .iter()
                    .map(|(rc, _)| *rc)
                    .zip(choice)
                    .map(|(rc, rp)| (rp, rc))
                    .collect();
                // Forbidden traits on any provider used, required traits on their union.
                let mut union: BTreeSet<Id> = BTreeSet::new();
                let mut forbidden_hit = false;
                for (rp, _) in &chosen {
                    let traits = s.traits_of(*rp);
                    if traits.iter().any(|t| group.forbidden.contains(t)) {
                        forbidden_hit = true;
                        break;
                    }
                    union.extend(traits.iter().copied());
                }
                if forbidden_hit
                    || !group
                        .required
                        .iter()
                        .all(|any| any.iter().any(|t| union.contains(t)))
                {
                    continue;
                }
                let candidate = Candidate {
                    resources: chosen
                        .iter()
                        .map(|(rp, rc)| (*rp, *rc, amounts.get(rc).copied().unwrap_or(0)))
                        .collect(),
                    mappings: BTreeMap::from([(
                        group.suffix.clone(),
                        chosen.iter().map(|(rp, _)| *rp).collect(),
                    )]),
                    anchor: root,
                    same_provider: false,
                };
                // Deduplicated per anchor: upstream compares candidates
                // without their anchor, so a sharing provider that serves
                // several trees kept only one of them and could not be
                // combined with the other trees' groups. We keep each.
                if seen.insert((root, candidate.key())) {
                    out.push(candidate);
                }
            }
        }
        out
    }

    fn merge(
        &self,
        per_group: Vec<(String, Vec<Candidate>)>,
        amounts: &BTreeMap<Id, i64>,
        multi_group_classes: &BTreeSet<Id>,
    ) -> Outcome {
        let s = self.snapshot;
        let request = self.request;
        let suffixes: Vec<String> = per_group.iter().map(|(s, _)| s.clone()).collect();
        let granular = suffixes.iter().filter(|s| !s.is_empty()).count();
        // anchor → per group (in group order) → candidates
        let mut by_anchor: BTreeMap<Id, Vec<Vec<&Candidate>>> = BTreeMap::new();
        for (index, (_, found)) in per_group.iter().enumerate() {
            for c in found {
                let lists = by_anchor
                    .entry(c.anchor)
                    .or_insert_with(|| vec![Vec::new(); per_group.len()]);
                lists[index].push(c);
            }
        }
        let mut out: Vec<Candidate> = Vec::new();
        let mut seen = BTreeSet::new();
        let exclude_nested = !request.nested_aware && self.has_trees;
        let mut examined: u64 = 0;
        'anchors: for (anchor, lists) in &by_anchor {
            if lists.iter().any(Vec::is_empty) {
                continue;
            }
            if !self.overall_capacity_ok(lists, amounts, multi_group_classes) {
                continue;
            }
            for combo in product(lists) {
                examined += 1;
                if examined > MAX_COMBINATIONS {
                    // Documented truncation: the search stops here rather
                    // than hang on a combinatorial explosion.
                    break 'anchors;
                }
                if request.isolate {
                    let used: BTreeSet<Id> = combo
                        .iter()
                        .filter(|c| c.same_provider)
                        .filter_map(|c| c.mappings.values().next())
                        .flatten()
                        .copied()
                        .collect();
                    if used.len() != granular {
                        continue;
                    }
                }
                if !self.same_subtree_ok(&combo) {
                    continue;
                }
                let merged = consolidate(&combo, *anchor);
                if self.exceeds_capacity(&merged) {
                    continue;
                }
                // Before 1.29, no candidate may use two providers of one tree.
                if exclude_nested {
                    let rps: BTreeSet<Id> = merged.resources.iter().map(|(rp, _, _)| *rp).collect();
                    let roots: BTreeSet<Id> = rps.iter().map(|rp| s.root_of(*rp)).collect();
                    if rps.len() != roots.len() {
                        continue;
                    }
                }
                if seen.insert(merged.key()) {
                    out.push(merged);
                    if !request.randomize && request.limit.is_some_and(|limit| out.len() >= limit) {
                        break 'anchors;
                    }
                }
            }
        }
        if out.is_empty() {
            return Outcome::default();
        }
        if request.randomize {
            use rand::seq::SliceRandom;
            out.shuffle(&mut rand::thread_rng());
            if let Some(limit) = request.limit {
                out.truncate(limit);
            }
        }
        let summaries = if exclude_nested {
            let rps: BTreeSet<Id> = out
                .iter()
                .flat_map(|c| c.resources.iter().map(|(rp, _, _)| *rp))
                .collect();
            rps.into_iter().collect()
        } else {
            let roots: BTreeSet<Id> = out
                .iter()
                .flat_map(|c| c.resources.iter().map(|(rp, _, _)| s.root_of(*rp)))
                .collect();
            let mut ids: Vec<Id> = roots
                .iter()
                .flat_map(|root| self.index.by_root.get(root).into_iter().flatten())
                .copied()
                .collect();
            ids.sort_unstable();
            ids
        };
        Outcome {
            candidates: out,
            summaries,
        }
    }

    /// A tree is skipped when, for classes asked by several groups, all its
    /// candidate providers together cannot hold the total.
    fn overall_capacity_ok(
        &self,
        lists: &[Vec<&Candidate>],
        amounts: &BTreeMap<Id, i64>,
        multi_group_classes: &BTreeSet<Id>,
    ) -> bool {
        if multi_group_classes.is_empty() {
            return true;
        }
        let s = self.snapshot;
        let rps: BTreeSet<Id> = lists
            .iter()
            .flatten()
            .flat_map(|c| c.resources.iter().map(|(rp, _, _)| *rp))
            .collect();
        for rc in multi_group_classes {
            let available: i64 = rps
                .iter()
                .filter_map(|rp| s.inventories.get(rp).and_then(|m| m.get(rc)))
                .map(|inv| inv.capacity() as i64)
                .sum();
            if amounts.get(rc).copied().unwrap_or(0) > available {
                return false;
            }
        }
        true
    }

    fn same_subtree_ok(&self, combo: &[&Candidate]) -> bool {
        for suffixes in &self.request.same_subtrees {
            let rps: BTreeSet<Id> = combo
                .iter()
                .flat_map(|c| {
                    suffixes
                        .iter()
                        .filter_map(|suffix| c.mappings.get(suffix))
                        .flatten()
                        .copied()
                })
                .collect();
            if rps.len() <= 1 {
                continue;
            }
            let ancestors = |rp: Id| {
                let mut set = BTreeSet::from([rp]);
                let mut current = rp;
                while let Some(parent) = self.snapshot.parent_of(current) {
                    if !set.insert(parent) {
                        break;
                    }
                    current = parent;
                }
                set
            };
            let mut common: Option<BTreeSet<Id>> = None;
            for rp in &rps {
                let a = ancestors(*rp);
                common = Some(match common {
                    None => a,
                    Some(c) => c.intersection(&a).copied().collect(),
                });
            }
            if common.is_none_or(|c| c.intersection(&rps).next().is_none()) {
                return false;
            }
        }
        true
    }

    fn exceeds_capacity(&self, candidate: &Candidate) -> bool {
        let s = self.snapshot;
        candidate.resources.iter().any(|(rp, rc, amount)| {
            match s.inventories.get(rp).and_then(|m| m.get(rc)) {
                Some(inv) => {
                    (s.used(*rp, *rc) + amount) as f64 > inv.capacity().trunc()
                        || *amount > inv.max_unit
                }
                None => true,
            }
        })
    }
}

/// Sums the groups' amounts per (provider, class) and unions the mappings.
fn consolidate(combo: &[&Candidate], anchor: Id) -> Candidate {
    let mut resources: Vec<(Id, Id, i64)> = Vec::new();
    let mut mappings: BTreeMap<String, BTreeSet<Id>> = BTreeMap::new();
    for c in combo {
        for (rp, rc, amount) in &c.resources {
            match resources.iter_mut().find(|(r, k, _)| r == rp && k == rc) {
                Some(entry) => entry.2 += amount,
                None => resources.push((*rp, *rc, *amount)),
            }
        }
        for (suffix, rps) in &c.mappings {
            mappings
                .entry(suffix.clone())
                .or_default()
                .extend(rps.iter().copied());
        }
    }
    Candidate {
        resources,
        mappings,
        anchor,
        same_provider: false,
    }
}

/// The cartesian product of `lists`, first list varying slowest, generated
/// lazily so that a limit or the combination cap can stop it early.
struct Product<'a, T> {
    lists: &'a [Vec<T>],
    indexes: Vec<usize>,
    done: bool,
}

fn product<T>(lists: &[Vec<T>]) -> Product<'_, T> {
    Product {
        lists,
        indexes: vec![0; lists.len()],
        done: lists.iter().any(Vec::is_empty),
    }
}

impl<T: Clone> Iterator for Product<'_, T> {
    type Item = Vec<T>;
    fn next(&mut self) -> Option<Vec<T>> {
        if self.done {
            return None;
        }
        let row = self
            .indexes
            .iter()
            .zip(self.lists)
            .map(|(i, list)| list[*i].clone())
            .collect();
        // Advance the odometer, last position fastest.
        let mut position = self.lists.len();
        loop {
            if position == 0 {
                self.done = true;
                break;
            }
            position -= 1;
            self.indexes[position] += 1;
            if self.indexes[position] < self.lists[position].len() {
                break;
            }
            self.indexes[position] = 0;
        }
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_enumerates_in_order() {
        let lists = vec![vec![1, 2], vec![3, 4, 5]];
        let rows: Vec<Vec<i32>> = product(&lists).collect();
        assert_eq!(
            rows,
            vec![
                vec![1, 3],
                vec![1, 4],
                vec![1, 5],
                vec![2, 3],
                vec![2, 4],
                vec![2, 5]
            ]
        );
        assert_eq!(product::<i32>(&[]).count(), 1);
        assert_eq!(product(&[vec![1], vec![]]).count(), 0);
    }
}
