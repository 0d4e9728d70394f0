//! The allocation-candidate search against a slow, obviously-correct
//! reference: for every anchor tree, try every assignment of every group to
//! providers, keep the ones that satisfy the rules, compare the sets.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferrite_placement::candidates::{
    find, Group, Id, Request, Snapshot, SnapshotInventory, SnapshotProvider,
};
use proptest::prelude::*;

const CLASSES: &[Id] = &[0, 1, 2, 3];
const TRAITS: &[Id] = &[10, 11, 12, 13];
const SHARING_TRAIT: Id = 99;
const AGGREGATES: &[&str] = &["a1", "a2", "a3"];

type Key = (BTreeSet<(Id, Id, i64)>, BTreeMap<String, BTreeSet<Id>>);

// ---------------------------------------------------------------------------
// The reference.

fn capacity(inv: &SnapshotInventory) -> f64 {
    (inv.total - inv.reserved) as f64 * inv.allocation_ratio
}

fn fits(s: &Snapshot, rp: Id, rc: Id, amount: i64) -> bool {
    let Some(inv) = s.inventories.get(&rp).and_then(|m| m.get(&rc)) else {
        return false;
    };
    let used = s.usage.get(&(rp, rc)).copied().unwrap_or(0);
    (used + amount) as f64 <= capacity(inv)
        && inv.min_unit <= amount
        && amount <= inv.max_unit
        && amount % inv.step_size == 0
}

fn traits(s: &Snapshot, rp: Id) -> BTreeSet<Id> {
    s.traits.get(&rp).cloned().unwrap_or_default()
}

fn aggs(s: &Snapshot, rp: Id) -> BTreeSet<String> {
    s.aggregates.get(&rp).cloned().unwrap_or_default()
}

fn root(s: &Snapshot, rp: Id) -> Id {
    s.providers[&rp].root
}

fn is_sharing(s: &Snapshot, rp: Id) -> bool {
    traits(s, rp).contains(&SHARING_TRAIT)
}

/// Roots of every provider sharing an aggregate with `rp` (itself included).
fn anchors_of(s: &Snapshot, rp: Id) -> BTreeSet<Id> {
    let mine = aggs(s, rp);
    s.providers
        .keys()
        .filter(|p| aggs(s, **p).iter().any(|a| mine.contains(a)))
        .map(|p| root(s, *p))
        .collect()
}

fn in_all_member_of(s: &Snapshot, rp: Id, member_of: &[BTreeSet<String>]) -> bool {
    let mine = aggs(s, rp);
    member_of
        .iter()
        .all(|any| any.iter().any(|a| mine.contains(a)))
}

fn in_any(s: &Snapshot, rp: Id, set: &BTreeSet<String>) -> bool {
    aggs(s, rp).iter().any(|a| set.contains(a))
}

fn traits_ok(have: &BTreeSet<Id>, g: &Group) -> bool {
    g.required
        .iter()
        .all(|any| any.iter().any(|t| have.contains(t)))
        && !g.forbidden.iter().any(|t| have.contains(t))
}

/// Every way group `g` can be satisfied for anchor root `anchor`.
fn group_options(s: &Snapshot, g: &Group, anchor: Id) -> Vec<Key> {
    let providers: Vec<Id> = s.providers.keys().copied().collect();
    let tree_ok = |rp: Id| match g.in_tree {
        None => true,
        Some(tree) => tree == Some(root(s, rp)),
    };
    let mut out = BTreeSet::new();
    if g.same_provider() {
        for rp in &providers {
            let rp = *rp;
            let anchored =
                root(s, rp) == anchor || (is_sharing(s, rp) && anchors_of(s, rp).contains(&anchor));
            if !anchored || !tree_ok(rp) {
                continue;
            }
            if !g
                .resources
                .iter()
                .all(|(rc, amount)| fits(s, rp, *rc, *amount))
            {
                continue;
            }
            if !traits_ok(&traits(s, rp), g)
                || !in_all_member_of(s, rp, &g.member_of)
                || in_any(s, rp, &g.forbidden_aggregates)
            {
                continue;
            }
            let resources = g.resources.iter().map(|(rc, a)| (rp, *rc, *a)).collect();
            out.insert((
                resources,
                BTreeMap::from([(g.suffix.clone(), BTreeSet::from([rp]))]),
            ));
        }
        return out.into_iter().collect();
    }
    // The unsuffixed group: each class from any provider of the anchor's
    // tree, or from a sharing provider anchored there.
    let eligible = |rp: Id, rc: Id, amount: i64| -> bool {
        if !fits(s, rp, rc, amount) || !tree_ok(rp) {
            return false;
        }
        let own_tree = root(s, rp) == anchor;
        let shared = g.in_tree.is_none()
            && is_sharing(s, rp)
            && anchors_of(s, rp).contains(&anchor)
            && (g.member_of.is_empty() || in_all_member_of(s, rp, &g.member_of));
        if !own_tree && !shared {
            return false;
        }
        let member_ok = g.member_of.is_empty()
            || in_all_member_of(s, rp, &g.member_of)
            || in_all_member_of(s, anchor, &g.member_of);
        let forbidden_ok = g.forbidden_aggregates.is_empty()
            || (!in_any(s, rp, &g.forbidden_aggregates)
                && !in_any(s, anchor, &g.forbidden_aggregates));
        member_ok && forbidden_ok
    };
    let choices: Vec<Vec<Id>> = g
        .resources
        .iter()
        .map(|(rc, amount)| {
            providers
                .iter()
                .copied()
                .filter(|rp| eligible(*rp, *rc, *amount))
                .collect()
        })
        .collect();
    for assignment in cartesian(&choices) {
        let chosen: BTreeSet<Id> = assignment.iter().copied().collect();
        let mut union = BTreeSet::new();
        let mut forbidden = false;
        for rp in &chosen {
            let t = traits(s, *rp);
            if t.iter().any(|x| g.forbidden.contains(x)) {
                forbidden = true;
            }
            union.extend(t);
        }
        if forbidden
            || !g
                .required
                .iter()
                .all(|any| any.iter().any(|t| union.contains(t)))
        {
            continue;
        }
        let resources = g
            .resources
            .iter()
            .zip(&assignment)
            .map(|((rc, amount), rp)| (*rp, *rc, *amount))
            .collect();
        out.insert((resources, BTreeMap::from([(g.suffix.clone(), chosen)])));
    }
    out.into_iter().collect()
}

fn cartesian(lists: &[Vec<Id>]) -> Vec<Vec<Id>> {
    let mut out = vec![Vec::new()];
    for list in lists {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                list.iter().map(move |x| {
                    let mut row = prefix.clone();
                    row.push(*x);
                    row
                })
            })
            .collect();
    }
    out
}

fn ancestors(s: &Snapshot, rp: Id) -> BTreeSet<Id> {
    let mut set = BTreeSet::from([rp]);
    let mut current = rp;
    while let Some(parent) = s.providers[&current].parent {
        set.insert(parent);
        current = parent;
    }
    set
}

fn reference(s: &Snapshot, r: &Request) -> BTreeSet<Key> {
    let mut result = BTreeSet::new();
    let roots: Vec<Id> = s
        .providers
        .values()
        .filter(|p| p.parent.is_none())
        .map(|p| p.id)
        .collect();
    for anchor in roots {
        let t = traits(s, anchor);
        if !r.root_required.iter().all(|x| t.contains(x))
            || r.root_forbidden.iter().any(|x| t.contains(x))
        {
            continue;
        }
        let options: Vec<Vec<Key>> = r
            .groups
            .iter()
            .map(|g| group_options(s, g, anchor))
            .collect();
        let indexes: Vec<Vec<Id>> = options
            .iter()
            .map(|o| (0..o.len() as Id).collect())
            .collect();
        'combos: for pick in cartesian(&indexes) {
            let chosen: Vec<&Key> = pick
                .iter()
                .zip(&options)
                .map(|(i, o)| &o[*i as usize])
                .collect();
            if r.isolate {
                let mut used = BTreeSet::new();
                let mut count = 0;
                for (g, key) in r.groups.iter().zip(&chosen) {
                    if g.same_provider() {
                        count += 1;
                        used.extend(key.1.values().flatten().copied());
                    }
                }
                if used.len() != count {
                    continue;
                }
            }
            let mut mappings: BTreeMap<String, BTreeSet<Id>> = BTreeMap::new();
            let mut sums: BTreeMap<(Id, Id), i64> = BTreeMap::new();
            for key in &chosen {
                for (suffix, rps) in &key.1 {
                    mappings.entry(suffix.clone()).or_default().extend(rps);
                }
                for (rp, rc, amount) in &key.0 {
                    *sums.entry((*rp, *rc)).or_default() += amount;
                }
            }
            for suffixes in &r.same_subtrees {
                let rps: BTreeSet<Id> = suffixes
                    .iter()
                    .filter_map(|x| mappings.get(x))
                    .flatten()
                    .copied()
                    .collect();
                if rps.len() > 1
                    && !rps
                        .iter()
                        .any(|top| rps.iter().all(|rp| ancestors(s, *rp).contains(top)))
                {
                    continue 'combos;
                }
            }
            for ((rp, rc), total) in &sums {
                let inv = &s.inventories[rp][rc];
                let used = s.usage.get(&(*rp, *rc)).copied().unwrap_or(0);
                if (used + total) as f64 > capacity(inv).trunc() || *total > inv.max_unit {
                    continue 'combos;
                }
            }
            let resources = sums
                .iter()
                .map(|((rp, rc), amount)| (*rp, *rc, *amount))
                .collect();
            result.insert((resources, mappings));
        }
    }
    result
}

// ---------------------------------------------------------------------------
// Random fleets and requests.

#[derive(Debug, Clone)]
struct Fleet(Snapshot);

fn inventory() -> impl Strategy<Value = (SnapshotInventory, i64)> {
    (
        2i64..10,
        0i64..2,
        prop::bool::ANY,
        2i64..10,
        prop::bool::weighted(0.2),
        0i64..4,
    )
        .prop_map(|(total, reserved, double, max_unit, step_two, used)| {
            let inv = SnapshotInventory {
                total,
                reserved: reserved.min(total - 1),
                min_unit: 1,
                max_unit,
                step_size: if step_two { 2 } else { 1 },
                allocation_ratio: if double { 2.0 } else { 1.0 },
            };
            (inv, used)
        })
}

#[derive(Debug, Clone)]
struct ProviderSpec {
    parent: Option<usize>,
    inventories: Vec<(usize, (SnapshotInventory, i64))>,
    traits: Vec<usize>,
    aggregates: Vec<usize>,
    sharing: bool,
}

fn provider_spec() -> impl Strategy<Value = ProviderSpec> {
    (
        prop::option::weighted(0.6, 0usize..8),
        prop::collection::vec((0usize..2, inventory()), 0..4),
        prop::collection::vec(0usize..TRAITS.len(), 0..3),
        prop::collection::vec(0usize..AGGREGATES.len(), 0..2),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(parent, inventories, traits, aggregates, sharing)| ProviderSpec {
                parent,
                inventories,
                traits,
                aggregates,
                sharing,
            },
        )
}

fn fleet() -> impl Strategy<Value = Fleet> {
    prop::collection::vec(provider_spec(), 2..9).prop_map(build_fleet)
}

/// Bare-metal-like fleets: no trees, nobody sharing (the search's fast path).
fn flat_fleet() -> impl Strategy<Value = Fleet> {
    prop::collection::vec(provider_spec(), 2..12).prop_map(|specs| {
        let flat = specs
            .into_iter()
            .map(|spec| ProviderSpec {
                parent: None,
                sharing: false,
                ..spec
            })
            .collect();
        build_fleet(flat)
    })
}

fn build_fleet(specs: Vec<ProviderSpec>) -> Fleet {
    {
        let mut s = Snapshot {
            sharing_trait: Some(SHARING_TRAIT),
            ..Snapshot::default()
        };
        for (index, spec) in specs.iter().enumerate() {
            let id = index as Id + 1;
            // Parents always come earlier, so trees stay acyclic; sharing
            // providers are roots as in real deployments.
            let parent = spec
                .parent
                .filter(|p| *p < index && !spec.sharing)
                .map(|p| p as Id + 1);
            let root = parent.map_or(id, |p| s.providers[&p].root);
            s.providers.insert(
                id,
                SnapshotProvider {
                    id,
                    uuid: format!("rp-{id}"),
                    parent,
                    root,
                },
            );
            for (class, (inv, used)) in &spec.inventories {
                s.inventories
                    .entry(id)
                    .or_default()
                    .insert(CLASSES[*class], *inv);
                if *used > 0 {
                    s.usage.insert((id, CLASSES[*class]), *used);
                }
            }
            let mut t: BTreeSet<Id> = spec.traits.iter().map(|i| TRAITS[*i]).collect();
            if spec.sharing {
                t.insert(SHARING_TRAIT);
            }
            if !t.is_empty() {
                s.traits.insert(id, t);
            }
            let a: BTreeSet<String> = spec
                .aggregates
                .iter()
                .map(|i| AGGREGATES[*i].to_string())
                .collect();
            if !a.is_empty() {
                s.aggregates.insert(id, a);
            }
        }
        Fleet(s)
    }
}

fn group(suffix: &'static str) -> impl Strategy<Value = Group> {
    (
        prop::collection::btree_map(0usize..2, 1i64..3, 1..3),
        prop::option::weighted(0.3, prop::collection::btree_set(0usize..TRAITS.len(), 1..3)),
        prop::option::weighted(0.2, 0usize..TRAITS.len()),
        prop::option::weighted(
            0.25,
            prop::collection::btree_set(0usize..AGGREGATES.len(), 1..3),
        ),
        prop::option::weighted(0.15, 0usize..AGGREGATES.len()),
        prop::option::weighted(0.1, prop::option::weighted(0.9, 1i64..9)),
    )
        .prop_map(
            move |(resources, required, forbidden, member_of, forbidden_aggs, in_tree)| Group {
                suffix: suffix.to_string(),
                resources: resources
                    .into_iter()
                    .map(|(c, a)| (CLASSES[c], a))
                    .collect(),
                required: required
                    .into_iter()
                    .map(|set| set.into_iter().map(|i| TRAITS[i]).collect())
                    .collect(),
                forbidden: forbidden.into_iter().map(|i| TRAITS[i]).collect(),
                member_of: member_of
                    .into_iter()
                    .map(|set| set.into_iter().map(|i| AGGREGATES[i].to_string()).collect())
                    .collect(),
                forbidden_aggregates: forbidden_aggs
                    .into_iter()
                    .map(|i| AGGREGATES[i].to_string())
                    .collect(),
                // Resolved by `resolve_in_tree` once the fleet is known.
                in_tree: in_tree.map(|t| t.map(|id| -id)),
            },
        )
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::option::weighted(0.8, group("")),
        prop::collection::vec(prop::sample::select(vec!["1", "2"]), 0..3),
        prop::bool::ANY,
        prop::bool::weighted(0.2),
        prop::option::weighted(0.15, 0usize..TRAITS.len()),
    )
        .prop_flat_map(|(unsuffixed, suffixes, isolate, subtree, root_required)| {
            let suffixes: BTreeSet<&'static str> = suffixes.into_iter().collect();
            let groups: Vec<BoxedStrategy<Group>> =
                suffixes.iter().map(|s| group(s).boxed()).collect();
            (
                Just(unsuffixed),
                groups,
                Just(suffixes),
                Just(isolate),
                Just(subtree),
                Just(root_required),
            )
        })
        .prop_map(
            |(unsuffixed, suffixed, suffixes, isolate, subtree, root_required)| {
                let mut groups: Vec<Group> = unsuffixed.into_iter().collect();
                groups.extend(suffixed);
                let same_subtrees = if subtree && suffixes.len() > 1 {
                    vec![suffixes.iter().map(|s| s.to_string()).collect()]
                } else {
                    Vec::new()
                };
                Request {
                    groups,
                    isolate,
                    same_subtrees,
                    root_required: root_required.into_iter().map(|i| TRAITS[i]).collect(),
                    root_forbidden: BTreeSet::new(),
                    limit: None,
                    nested_aware: true,
                    randomize: false,
                }
            },
        )
}

/// `in_tree` was generated as a negative provider number; map it to that
/// provider's root (or to "does not exist").
fn resolve_in_tree(s: &Snapshot, mut r: Request) -> Request {
    for g in &mut r.groups {
        if let Some(Some(id)) = g.in_tree {
            g.in_tree = Some(s.providers.get(&(-id)).map(|p| p.root));
        }
    }
    r
}

fn fast(s: &Snapshot, r: &Request) -> BTreeSet<Key> {
    find(s, r)
        .candidates
        .iter()
        .map(|c| (c.resources.iter().copied().collect(), c.mappings.clone()))
        .collect()
}

#[test]
fn search_matches_the_reference() {
    use proptest::test_runner::{Config, TestRunner};
    let cases = 4000;
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let non_empty = std::cell::Cell::new(0u32);
    let multi_candidate = std::cell::Cell::new(0u32);
    runner
        .run(&(fleet(), request()), |(fleet, request)| {
            if request.groups.is_empty() {
                return Ok(());
            }
            let s = &fleet.0;
            let request = resolve_in_tree(s, request);
            let expected = reference(s, &request);
            let got = fast(s, &request);
            if !expected.is_empty() {
                non_empty.set(non_empty.get() + 1);
            }
            if expected.len() > 1 {
                multi_candidate.set(multi_candidate.get() + 1);
            }
            prop_assert_eq!(&got, &expected);
            // A limit returns that many of the same candidates.
            let limited = Request {
                limit: Some(2),
                ..request.clone()
            };
            let some = fast(s, &limited);
            prop_assert!(some.is_subset(&expected));
            prop_assert_eq!(some.len(), expected.len().min(2));
            Ok(())
        })
        .expect("the fast search must agree with the reference");
    let (non_empty, multi_candidate) = (non_empty.get(), multi_candidate.get());
    eprintln!("{non_empty} of {cases} cases had candidates, {multi_candidate} had several");
    // The generator must exercise the search, not only empty answers.
    assert!(
        non_empty > cases / 10,
        "only {non_empty} cases had candidates"
    );
}

#[test]
fn flat_fleets_match_the_reference() {
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        ..Config::default()
    });
    let single = request().prop_map(|mut r| {
        r.groups.truncate(1);
        r
    });
    runner
        .run(&(flat_fleet(), single), |(fleet, request)| {
            if request.groups.is_empty() {
                return Ok(());
            }
            let s = &fleet.0;
            let request = resolve_in_tree(s, request);
            let expected = reference(s, &request);
            prop_assert_eq!(&fast(s, &request), &expected);
            let limited = Request {
                limit: Some(2),
                ..request.clone()
            };
            let some = fast(s, &limited);
            prop_assert!(some.is_subset(&expected));
            prop_assert_eq!(some.len(), expected.len().min(2));
            let sampled = Request {
                limit: Some(2),
                randomize: true,
                ..request.clone()
            };
            let some = fast(s, &sampled);
            prop_assert!(some.is_subset(&expected));
            prop_assert_eq!(some.len(), expected.len().min(2));
            Ok(())
        })
        .expect("the fast path must agree with the reference");
}

#[test]
fn summaries_cover_the_trees_used() {
    let mut s = Snapshot::default();
    for (id, parent) in [(1, None), (2, Some(1)), (3, None)] {
        let root = parent.unwrap_or(id);
        s.providers.insert(
            id,
            SnapshotProvider {
                id,
                uuid: format!("rp-{id}"),
                parent,
                root,
            },
        );
    }
    let inv = SnapshotInventory {
        total: 4,
        reserved: 0,
        min_unit: 1,
        max_unit: 4,
        step_size: 1,
        allocation_ratio: 1.0,
    };
    s.inventories.insert(
        2,
        HashMap::<Id, SnapshotInventory>::from([(0, inv)])
            .into_iter()
            .collect(),
    );
    let request = Request {
        groups: vec![Group {
            resources: vec![(0, 1)],
            ..Group::default()
        }],
        nested_aware: true,
        ..Request::default()
    };
    let outcome = find(&s, &request);
    assert_eq!(outcome.candidates.len(), 1);
    assert_eq!(
        outcome.summaries,
        vec![1, 2],
        "the whole tree of provider 2, not provider 3"
    );
}

/// A sharing provider serving the unsuffixed group for another tree whose
/// own provider serves a numbered group: the candidate must exist.
#[test]
fn sharing_provider_serves_other_trees_groups() {
    let mut s = Snapshot {
        sharing_trait: Some(SHARING_TRAIT),
        ..Snapshot::default()
    };
    for id in [1, 2] {
        s.providers.insert(
            id,
            SnapshotProvider {
                id,
                uuid: format!("rp-{id}"),
                parent: None,
                root: id,
            },
        );
        s.aggregates.insert(id, BTreeSet::from(["a3".to_string()]));
    }
    let inv = SnapshotInventory {
        total: 3,
        reserved: 0,
        min_unit: 1,
        max_unit: 3,
        step_size: 1,
        allocation_ratio: 2.0,
    };
    s.inventories.insert(1, BTreeMap::from([(1, inv)]));
    s.inventories.insert(2, BTreeMap::from([(0, inv)]));
    s.traits.insert(1, BTreeSet::from([SHARING_TRAIT]));
    let request = Request {
        groups: vec![
            Group {
                resources: vec![(1, 1)],
                ..Group::default()
            },
            Group {
                suffix: "1".into(),
                resources: vec![(0, 1)],
                ..Group::default()
            },
        ],
        nested_aware: true,
        ..Request::default()
    };
    let outcome = find(&s, &request);
    assert_eq!(outcome.candidates.len(), 1);
    assert_eq!(outcome.candidates[0].resources, vec![(1, 1, 1), (2, 0, 1)]);
    assert_eq!(outcome.summaries, vec![1, 2]);
}
