//! Request groups and the `GET /allocation_candidates` query syntax.
//!
//! [`parse_query`] turns decoded query pairs into a [`RequestSpec`],
//! applying the checks of upstream Placement in the same order and with
//! the same messages, gated by microversion:
//!
//! | microversion | syntax |
//! | --- | --- |
//! | 1.10 | `resources` (required parameter) |
//! | 1.16 | `limit` |
//! | 1.17 | `required` |
//! | 1.21 | `member_of` (`UUID` or `in:U1,U2`) |
//! | 1.22 | forbidden traits `!TRAIT` |
//! | 1.24 | repeated `member_of` |
//! | 1.25 | numbered groups `resources1`, `required1`, `member_of1`; `group_policy` |
//! | 1.31 | `in_tree`, `in_tree{N}` |
//! | 1.32 | forbidden aggregates `!UUID`, `!in:U1,U2` |
//! | 1.33 | string suffixes: 1-64 of `[a-zA-Z0-9_-]` |
//! | 1.35 | `root_required` |
//! | 1.36 | `same_subtree`; resourceless groups (listed in `same_subtree`) |
//! | 1.39 | any-of traits `required=in:A,B`; repeated `required` |
//!
//! [`render_query`] goes the other way and produces canonical pairs (valid
//! at the latest microversion) such that parsing them gives back the same
//! spec.
//!
//! Resource class and trait *names* are not checked here: upstream
//! accepts any string at parse time and reports unknown names (with
//! different messages) when it looks them up in its database.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::ParseError;
use crate::py;
pub use crate::query_values::{
    is_uuid_like, parse_in_tree, parse_member_of, parse_required, parse_resources,
};
use crate::query_values::{
    parse_member_of_values, parse_trait_value, parse_trait_values, split_required, TraitSet,
};

/// Oldest microversion of `GET /allocation_candidates`.
pub const MIN_MICROVERSION: (u16, u16) = (1, 10);
/// Newest Placement microversion this parser knows (Placement 16.0.0).
pub const MAX_MICROVERSION: (u16, u16) = (1, 39);

/// How to parse: which microversion's rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParseOptions {
    /// Requested `(major, minor)` microversion. Versions below 1.10 are
    /// parsed with the 1.10 rules (the route itself only exists from 1.10;
    /// rejecting older requests is the caller's business); versions above
    /// 1.39 get the 1.39 rules.
    pub microversion: (u16, u16),
}

impl ParseOptions {
    /// Options for microversion `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        ParseOptions {
            microversion: (major, minor),
        }
    }

    /// Options for [`MAX_MICROVERSION`].
    pub const fn latest() -> Self {
        ParseOptions {
            microversion: MAX_MICROVERSION,
        }
    }

    fn at_least(&self, minor: u16) -> bool {
        self.microversion >= (1, minor)
    }
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self::latest()
    }
}

/// One request group: resources and constraints that (for a suffixed
/// group) a single provider must satisfy.
///
/// After a successful parse the unsuffixed group, when present, always has
/// resources; a suffixed group may lack them only from microversion 1.36 on
/// and only when its suffix appears in [`RequestSpec::same_subtree`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestGroup {
    /// `""` for the unsuffixed group, else the suffix (`"1"`, `"_NIC"`).
    pub suffix: String,
    /// Resource class -> amount (each at least 1). Class names are as given.
    pub resources: BTreeMap<String, u64>,
    /// Traits that must all be present.
    pub required_traits: BTreeSet<String>,
    /// Traits that must all be absent (`!TRAIT`).
    pub forbidden_traits: BTreeSet<String>,
    /// Each set: at least one of its traits must be present (`in:A,B`).
    /// Every set has two or more traits: `in:A` is stored in
    /// `required_traits`. Kept in request order.
    pub any_of_traits: Vec<BTreeSet<String>>,
    /// Each set: the provider must be in at least one of these aggregates.
    /// UUIDs are kept exactly as given. Kept in request order.
    pub member_of: Vec<BTreeSet<String>>,
    /// Aggregates the provider must be in none of.
    pub forbidden_aggregates: BTreeSet<String>,
    /// Provider UUID whose tree must satisfy this group (whitespace-trimmed).
    pub in_tree: Option<String>,
}

impl RequestGroup {
    /// An empty group with the given suffix.
    pub fn new(suffix: impl Into<String>) -> Self {
        RequestGroup {
            suffix: suffix.into(),
            ..Default::default()
        }
    }

    /// Whether a single provider must satisfy the whole group (true for
    /// suffixed groups); the unsuffixed group may be spread over a tree
    /// and sharing providers.
    pub fn use_same_provider(&self) -> bool {
        !self.suffix.is_empty()
    }

    /// Whether the group asks for no resources (a 1.36+ resourceless group).
    pub fn is_resourceless(&self) -> bool {
        self.resources.is_empty()
    }
}

/// How suffixed groups may share providers (`group_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupPolicy {
    /// Groups may be satisfied by the same provider.
    None,
    /// Suffixed groups must be satisfied by distinct providers.
    Isolate,
}

impl GroupPolicy {
    /// The query-string spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupPolicy::None => "none",
            GroupPolicy::Isolate => "isolate",
        }
    }
}

/// A parsed `GET /allocation_candidates` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSpec {
    /// The unsuffixed group first (if present), then suffixed groups sorted
    /// by suffix.
    pub groups: Vec<RequestGroup>,
    /// `group_policy`; required when there is more than one suffixed group.
    pub group_policy: Option<GroupPolicy>,
    /// Each entry: suffixes whose providers must share one subtree.
    pub same_subtree: Vec<BTreeSet<String>>,
    /// `root_required` traits the tree's root must have.
    pub root_required: BTreeSet<String>,
    /// `root_required` `!TRAIT`s the tree's root must not have. (Upstream
    /// has no any-of form and no `root_member_of`.)
    pub root_forbidden: BTreeSet<String>,
    /// `limit` on the number of candidates (saturating at `u32::MAX`).
    pub limit: Option<u32>,
}

impl RequestSpec {
    /// The group with the given suffix (`""` for the unsuffixed one).
    pub fn group(&self, suffix: &str) -> Option<&RequestGroup> {
        self.groups.iter().find(|g| g.suffix == suffix)
    }

    /// The suffixed (same-provider) groups.
    pub fn suffixed_groups(&self) -> impl Iterator<Item = &RequestGroup> {
        self.groups.iter().filter(|g| g.use_same_provider())
    }
}

const P_RESOURCES: &str = "resources";
const P_REQUIRED: &str = "required";
const P_MEMBER_OF: &str = "member_of";
const P_IN_TREE: &str = "in_tree";
const GROUP_PREFIXES: [&str; 4] = [P_RESOURCES, P_REQUIRED, P_MEMBER_OF, P_IN_TREE];

const LIMIT_PATTERN: &str = "^[1-9][0-9]*$";
const NUMBERED_SUFFIX: &str = "[1-9][0-9]*";
const VERBOSE_SUFFIX: &str = "[a-zA-Z0-9_-]{1,64}";

fn is_suffix(s: &str, verbose: bool) -> bool {
    if verbose {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    } else {
        let mut bytes = s.bytes();
        matches!(bytes.next(), Some(b'1'..=b'9')) && bytes.all(|b| b.is_ascii_digit())
    }
}

/// Split a group key into prefix and suffix, like upstream's anchored
/// regex (whose `$` also matches before one trailing newline).
fn split_group_key<'a>(
    key: &'a str,
    prefixes: &[&'static str],
    verbose: bool,
) -> Option<(&'static str, &'a str)> {
    let body = py::chomp_newline(key);
    prefixes.iter().find_map(|prefix| {
        let rest = body.strip_prefix(prefix)?;
        (rest.is_empty() || is_suffix(rest, verbose)).then_some((*prefix, rest))
    })
}

/// The query-parameter schema upstream validates against first.
struct Schema {
    /// Exactly named parameters.
    exact: Vec<&'static str>,
    /// Group-parameter prefixes accepted with an optional suffix (1.25+).
    group_prefixes: Vec<&'static str>,
    /// Whether `resources` is mandatory (before 1.25).
    requires_resources: bool,
    /// String suffixes (1.33+) rather than numbers.
    verbose: bool,
}

impl Schema {
    fn for_options(opts: &ParseOptions) -> Schema {
        let mut exact = Vec::new();
        let mut group_prefixes = Vec::new();
        if opts.at_least(25) {
            exact.extend(["limit", "group_policy"]);
            if opts.at_least(35) {
                exact.push("root_required");
            }
            if opts.at_least(36) {
                exact.push("same_subtree");
            }
            group_prefixes.extend([P_RESOURCES, P_REQUIRED, P_MEMBER_OF]);
            if opts.at_least(31) {
                group_prefixes.push(P_IN_TREE);
            }
        } else {
            exact.push(P_RESOURCES);
            if opts.at_least(16) {
                exact.push("limit");
            }
            if opts.at_least(17) {
                exact.push(P_REQUIRED);
            }
            if opts.at_least(21) {
                exact.push(P_MEMBER_OF);
            }
        }
        Schema {
            exact,
            group_prefixes,
            requires_resources: !opts.at_least(25),
            verbose: opts.at_least(33),
        }
    }

    fn allows(&self, key: &str) -> bool {
        self.exact.contains(&key)
            || (!self.group_prefixes.is_empty()
                && split_group_key(key, &self.group_prefixes, self.verbose).is_some())
    }

    /// Mirror of the JSON-schema check on the query dict (one value per
    /// key: the last). Top-level errors outrank per-parameter ones, and
    /// `limit` outranks `group_policy`, as with upstream's best-match rule.
    fn check(&self, pairs: &[(String, String)]) -> Result<(), ParseError> {
        let mut last: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in pairs {
            last.insert(k, v);
        }
        if self.requires_resources && !last.contains_key(P_RESOURCES) {
            return Err(ParseError::Schema(
                "'resources' is a required property".to_owned(),
            ));
        }
        let extras: Vec<&str> = last.keys().copied().filter(|k| !self.allows(k)).collect();
        if !extras.is_empty() {
            let joined = extras
                .iter()
                .map(|k| py::repr(k))
                .collect::<Vec<_>>()
                .join(", ");
            let msg = if self.group_prefixes.is_empty() {
                let verb = if extras.len() == 1 { "was" } else { "were" };
                format!("Additional properties are not allowed ({joined} {verb} unexpected)")
            } else {
                let verb = if extras.len() == 1 { "does" } else { "do" };
                let suffix = if self.verbose {
                    VERBOSE_SUFFIX
                } else {
                    NUMBERED_SUFFIX
                };
                let mut patterns: Vec<String> = self
                    .group_prefixes
                    .iter()
                    .map(|p| format!("^{p}({suffix})?$"))
                    .collect();
                patterns.sort();
                let patterns = patterns
                    .iter()
                    .map(|p| py::repr(p))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{joined} {verb} not match any of the regexes: {patterns}")
            };
            return Err(ParseError::Schema(msg));
        }
        if self.exact.contains(&"limit") {
            if let Some(v) = last.get("limit") {
                check_limit(v)?;
            }
        }
        if self.exact.contains(&"group_policy") {
            if let Some(v) = last.get("group_policy") {
                if !matches!(*v, "none" | "isolate") {
                    return Err(ParseError::Schema(format!(
                        "{} is not one of ['none', 'isolate']",
                        py::repr(v)
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Validate a `limit` value against `^[1-9][0-9]*$` and read it.
fn check_limit(value: &str) -> Result<u32, ParseError> {
    let body = py::chomp_newline(value);
    let mut bytes = body.bytes();
    let ok = matches!(bytes.next(), Some(b'1'..=b'9')) && bytes.all(|b| b.is_ascii_digit());
    if !ok {
        return Err(ParseError::Schema(format!(
            "{} does not match '{LIMIT_PATTERN}'",
            py::repr(value)
        )));
    }
    Ok(body.parse().unwrap_or(u32::MAX))
}

fn values_of<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Request-wide parameters (upstream's `RequestWideParams`).
struct WideParams {
    limit: Option<u32>,
    /// `None` when absent *or* when the first value is empty (upstream
    /// treats an empty policy as missing).
    group_policy: Option<GroupPolicy>,
    root_required: BTreeSet<String>,
    root_forbidden: BTreeSet<String>,
    same_subtree: Vec<BTreeSet<String>>,
}

impl WideParams {
    fn parse(pairs: &[(String, String)]) -> Result<WideParams, ParseError> {
        // Upstream uses the first value of `limit` and `group_policy`,
        // while the schema only saw the last one.
        let limit = match values_of(pairs, "limit").first() {
            Some(v) => Some(check_limit(v)?),
            None => None,
        };
        let group_policy = match values_of(pairs, "group_policy").first() {
            Some(&"isolate") => Some(GroupPolicy::Isolate),
            Some(&"") | None => None,
            // Any other first value passes (the schema checked the last
            // value) and behaves like "none".
            Some(_) => Some(GroupPolicy::None),
        };

        let mut root_required = BTreeSet::new();
        let mut root_forbidden = BTreeSet::new();
        let root_values = values_of(pairs, "root_required");
        if root_values.len() > 1 {
            return Err(ParseError::DuplicateRootRequired);
        }
        if let Some(value) = root_values.first() {
            let (raw, forbidden) = parse_trait_value(value, true, false)?;
            root_required = raw.into_iter().flatten().collect();
            let conflicts: Vec<&str> = root_required
                .intersection(&forbidden)
                .map(String::as_str)
                .collect();
            if !conflicts.is_empty() {
                return Err(ParseError::ConflictingRootTraits(conflicts.join(", ")));
            }
            root_forbidden = forbidden;
        }

        let mut same_subtree = Vec::new();
        for value in values_of(pairs, "same_subtree") {
            let suffixes: BTreeSet<String> =
                value.split(',').map(|s| py::strip(s).to_owned()).collect();
            if suffixes.contains("") {
                return Err(ParseError::EmptySameSubtreeSuffix);
            }
            same_subtree.push(suffixes);
        }

        Ok(WideParams {
            limit,
            group_policy,
            root_required,
            root_forbidden,
            same_subtree,
        })
    }
}

/// A group as upstream holds it while validating: required traits as a
/// list of OR-sets, duplicates included.
#[derive(Default)]
struct RawGroup {
    suffix: String,
    resources: BTreeMap<String, u64>,
    required: Vec<TraitSet>,
    forbidden: TraitSet,
    member_of: Vec<BTreeSet<String>>,
    forbidden_aggregates: BTreeSet<String>,
    in_tree: Option<String>,
}

impl RawGroup {
    fn into_group(self) -> RequestGroup {
        let (required_traits, any_of_traits) = split_required(self.required);
        RequestGroup {
            suffix: self.suffix,
            resources: self.resources,
            required_traits,
            forbidden_traits: self.forbidden,
            any_of_traits,
            member_of: self.member_of,
            forbidden_aggregates: self.forbidden_aggregates,
            in_tree: self.in_tree,
        }
    }
}

/// Collect the groups in order of first appearance (upstream's
/// `_parse_request_items`).
fn collect_groups(
    pairs: &[(String, String)],
    opts: &ParseOptions,
) -> Result<Vec<RawGroup>, ParseError> {
    let verbose = opts.at_least(33);
    let allow_forbidden_traits = opts.at_least(22);
    let allow_any_of = opts.at_least(39);
    let allow_multi_member_of = opts.at_least(24);
    let allow_forbidden_aggs = opts.at_least(32);

    let mut groups: Vec<RawGroup> = Vec::new();
    let mut done_keys: BTreeSet<String> = BTreeSet::new();
    for (key, value) in pairs {
        let Some((prefix, suffix)) = split_group_key(key, &GROUP_PREFIXES, verbose) else {
            continue;
        };
        let idx = match groups.iter().position(|g| g.suffix == suffix) {
            Some(idx) => idx,
            None => {
                groups.push(RawGroup {
                    suffix: suffix.to_owned(),
                    ..Default::default()
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[idx];
        match prefix {
            P_RESOURCES => group.resources = parse_resources(value)?,
            P_IN_TREE => group.in_tree = Some(parse_in_tree(value)?),
            _ => {
                // `required{S}` and `member_of{S}` are read from all values
                // of the exact key at its first sighting.
                let exact = format!("{prefix}{suffix}");
                if !done_keys.insert(exact.clone()) {
                    continue;
                }
                let values = values_of(pairs, &exact);
                if prefix == P_REQUIRED {
                    (group.required, group.forbidden) =
                        parse_trait_values(&values, allow_forbidden_traits, allow_any_of)?;
                } else {
                    (group.member_of, group.forbidden_aggregates) = parse_member_of_values(
                        &values,
                        suffix,
                        allow_multi_member_of,
                        allow_forbidden_aggs,
                    )?;
                }
            }
        }
    }
    Ok(groups)
}

/// From 1.36: resourceless groups must be tied to others via
/// `same_subtree`, which may only name existing groups.
fn check_same_subtree(
    groups: &[RawGroup],
    same_subtree: &[BTreeSet<String>],
) -> Result<(), ParseError> {
    let resourceless: BTreeSet<&str> = groups
        .iter()
        .filter(|g| g.resources.is_empty())
        .map(|g| g.suffix.as_str())
        .collect();
    if resourceless.len() == groups.len() {
        return Err(ParseError::NoResourcesAtAll);
    }
    let in_subtree: BTreeSet<&str> = same_subtree.iter().flatten().map(String::as_str).collect();
    let bad: Vec<&str> = resourceless
        .iter()
        .copied()
        .filter(|s| !in_subtree.contains(s))
        .collect();
    if !bad.is_empty() {
        return Err(ParseError::ResourcelessGroupNotInSameSubtree(
            py::repr_list(bad),
        ));
    }
    let unknown: Vec<&str> = in_subtree
        .iter()
        .copied()
        .filter(|s| !groups.iter().any(|g| g.suffix == *s))
        .collect();
    if !unknown.is_empty() {
        return Err(ParseError::UnknownSameSubtreeSuffix {
            bad: py::repr_list(unknown),
            known: py::repr_list(groups.iter().map(|g| g.suffix.as_str())),
        });
    }
    Ok(())
}

/// Before 1.36: every group needs resources.
fn check_orphans(groups: &[RawGroup]) -> Result<(), ParseError> {
    let orphans: Vec<String> = groups
        .iter()
        .filter(|g| !g.required.is_empty() && g.resources.is_empty())
        .map(|g| format!("{P_REQUIRED}{}", g.suffix))
        .collect();
    if !orphans.is_empty() {
        return Err(ParseError::OrphanedTraits(orphans.join(", ")));
    }
    let orphans: Vec<String> = groups
        .iter()
        .filter(|g| {
            g.resources.is_empty()
                && (!g.member_of.is_empty() || !g.forbidden_aggregates.is_empty())
        })
        .map(|g| format!("{P_MEMBER_OF}{}", g.suffix))
        .collect();
    if !orphans.is_empty() {
        return Err(ParseError::OrphanedMemberOf(orphans.join(", ")));
    }
    if groups.iter().any(|g| g.resources.is_empty()) {
        return Err(ParseError::GroupWithoutResources);
    }
    if groups.is_empty() {
        return Err(ParseError::NoRequestGroups);
    }
    Ok(())
}

/// A required OR-set whose every trait is also forbidden is a conflict.
fn check_conflicts(groups: &[RawGroup]) -> Result<(), ParseError> {
    let mut conflicts: Vec<String> = Vec::new();
    for g in groups {
        for set in &g.required {
            if set.iter().all(|t| g.forbidden.contains(t)) {
                let names: Vec<&str> = set.iter().map(String::as_str).collect();
                conflicts.push(format!("{P_REQUIRED}{}: ({})", g.suffix, names.join(", ")));
            }
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    conflicts.sort();
    Err(ParseError::ConflictingTraits(conflicts.join(", ")))
}

/// Parse the decoded query pairs of `GET /allocation_candidates`, in
/// request order, with the rules of `opts.microversion`.
///
/// Checks run in upstream's order: the parameter schema, request-wide
/// parameters (`limit`, `group_policy`, `root_required`, `same_subtree`),
/// each group parameter in request order, group consistency, trait
/// conflicts and finally the `group_policy` requirement; the first failure
/// is returned.
pub fn parse_query(
    pairs: &[(String, String)],
    opts: &ParseOptions,
) -> Result<RequestSpec, ParseError> {
    Schema::for_options(opts).check(pairs)?;
    let wide = WideParams::parse(pairs)?;
    let groups = collect_groups(pairs, opts)?;
    if opts.at_least(36) {
        check_same_subtree(&groups, &wide.same_subtree)?;
    } else {
        check_orphans(&groups)?;
    }
    if opts.at_least(22) {
        check_conflicts(&groups)?;
    }
    if wide.group_policy.is_none() && groups.iter().filter(|g| !g.suffix.is_empty()).count() > 1 {
        return Err(ParseError::GroupPolicyRequired);
    }
    let mut groups: Vec<RequestGroup> = groups.into_iter().map(RawGroup::into_group).collect();
    groups.sort_by(|a, b| a.suffix.cmp(&b.suffix));
    Ok(RequestSpec {
        groups,
        group_policy: wide.group_policy,
        same_subtree: wide.same_subtree,
        root_required: wide.root_required,
        root_forbidden: wide.root_forbidden,
        limit: wide.limit,
    })
}

fn join<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn traits_value(required: &BTreeSet<String>, forbidden: &BTreeSet<String>) -> String {
    required
        .iter()
        .cloned()
        .chain(forbidden.iter().map(|t| format!("!{t}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Render `spec` as canonical query pairs, valid at [`MAX_MICROVERSION`].
///
/// Per group (in `spec.groups` order): `resources{S}=A:1,B:2`, one
/// `required{S}=A,B,!C` for the plain required and forbidden traits, one
/// `required{S}=in:X,Y` per any-of set, one `member_of{S}` per aggregate
/// set (a bare UUID for a single one, else `in:`), one `member_of{S}` for
/// the forbidden aggregates (`!U` or `!in:U1,U2`) and `in_tree{S}`. Then
/// `group_policy`, `limit`, `root_required` and one `same_subtree` per
/// entry. Empty parts are left out.
///
/// For any spec that [`parse_query`] produced, parsing the output again
/// yields the same spec.
pub fn render_query(spec: &RequestSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in &spec.groups {
        let s = &g.suffix;
        if !g.resources.is_empty() {
            let value = g
                .resources
                .iter()
                .map(|(class, amount)| format!("{class}:{amount}"))
                .collect::<Vec<_>>()
                .join(",");
            out.push((format!("{P_RESOURCES}{s}"), value));
        }
        if !g.required_traits.is_empty() || !g.forbidden_traits.is_empty() {
            out.push((
                format!("{P_REQUIRED}{s}"),
                traits_value(&g.required_traits, &g.forbidden_traits),
            ));
        }
        for set in &g.any_of_traits {
            out.push((format!("{P_REQUIRED}{s}"), format!("in:{}", join(set))));
        }
        for set in &g.member_of {
            let value = if set.len() == 1 {
                join(set)
            } else {
                format!("in:{}", join(set))
            };
            out.push((format!("{P_MEMBER_OF}{s}"), value));
        }
        if !g.forbidden_aggregates.is_empty() {
            let value = if g.forbidden_aggregates.len() == 1 {
                format!("!{}", join(&g.forbidden_aggregates))
            } else {
                format!("!in:{}", join(&g.forbidden_aggregates))
            };
            out.push((format!("{P_MEMBER_OF}{s}"), value));
        }
        if let Some(tree) = &g.in_tree {
            out.push((format!("{P_IN_TREE}{s}"), tree.clone()));
        }
    }
    if let Some(policy) = spec.group_policy {
        out.push(("group_policy".to_owned(), policy.as_str().to_owned()));
    }
    if let Some(limit) = spec.limit {
        out.push(("limit".to_owned(), limit.to_string()));
    }
    if !spec.root_required.is_empty() || !spec.root_forbidden.is_empty() {
        out.push((
            "root_required".to_owned(),
            traits_value(&spec.root_required, &spec.root_forbidden),
        ));
    }
    for set in &spec.same_subtree {
        out.push(("same_subtree".to_owned(), join(set)));
    }
    out
}
