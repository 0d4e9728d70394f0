//! From a flavor (and image) to the `GET /allocation_candidates` query, pure,
//! the way Nova's `ResourceRequest.from_request_spec` and `to_querystring`
//! build it:
//!
//! - `resources[N]:<CLASS>=<amount>` and `trait[N]:<TRAIT>=required|forbidden`
//!   extra specs fill the unsuffixed (no N) or numbered request groups;
//!   `group_policy` is passed through when it is `none` or `isolate`;
//! - the flavor's VCPU, MEMORY_MB and DISK_GB (root + ephemeral + swap
//!   rounded up to GiB) are added to the unsuffixed group unless an extra
//!   spec already names that class in any group; zero amounts are then
//!   dropped, which is how bare-metal flavors (`resources:VCPU=0`, …) ask
//!   for their custom class only;
//! - image properties `trait:<TRAIT>=required` add required traits;
//! - `!COMPUTE_STATUS_DISABLED` is required of the unsuffixed group (of the
//!   root provider when there is no unsuffixed group);
//! - `member_of` and `in_tree` come from the request (availability zone
//!   aggregates, a forced node), `limit` from `max_placement_results`;
//! - the pairs are sorted, as Nova sorts them before url-encoding.
//!
//! Invalid entries are skipped (Nova logs a warning and skips them). One
//! Ferrite addition: a resource class that is neither standard nor
//! `CUSTOM_*`, such as a node's `baremetal-gold`, is normalised
//! (`CUSTOM_BAREMETAL_GOLD`) instead of being ignored.

use std::collections::{BTreeMap, BTreeSet};

use ferrite_resource_classes::{normalize_name, standard_classes::is_standard_class};

/// The trait the compute service sets on providers of disabled computes.
pub const COMPUTE_STATUS_DISABLED: &str = "COMPUTE_STATUS_DISABLED";

/// The flavor figures the request is built from.
#[derive(Debug, Clone, Default)]
pub struct FlavorResources {
    pub vcpus: u64,
    pub memory_mb: u64,
    pub root_gb: u64,
    pub ephemeral_gb: u64,
    pub swap_mb: u64,
    pub extra_specs: BTreeMap<String, String>,
}

/// Request-wide constraints that do not come from the flavor.
#[derive(Debug, Clone, Default)]
pub struct RequestHints {
    /// Image properties (`trait:X=required`).
    pub image_properties: BTreeMap<String, String>,
    /// Each set: the provider must be in one of these aggregates.
    pub member_of: Vec<BTreeSet<String>>,
    /// Only this provider's tree (a forced node).
    pub in_tree: Option<String>,
    /// `limit` (Nova's `max_placement_results`).
    pub limit: Option<u32>,
}

/// One request group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub resources: BTreeMap<String, u64>,
    pub required: BTreeSet<String>,
    pub forbidden: BTreeSet<String>,
    pub member_of: Vec<BTreeSet<String>>,
    pub in_tree: Option<String>,
}

impl Group {
    fn is_empty(&self) -> bool {
        self.resources.is_empty()
            && self.required.is_empty()
            && self.forbidden.is_empty()
            && self.member_of.is_empty()
            && self.in_tree.is_none()
    }
}

/// Nova's `ResourceRequest`: groups keyed by suffix (`""` unsuffixed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceRequest {
    pub groups: BTreeMap<String, Group>,
    pub group_policy: Option<String>,
    pub root_required: BTreeSet<String>,
    pub root_forbidden: BTreeSet<String>,
    pub limit: Option<u32>,
}

/// Splits `resources1:VCPU` into (`resources`, `1`, `VCPU`), as Nova's
/// `^(resources|trait)([a-zA-Z0-9_-]{1,64})?:(.*)$`.
fn split_key(key: &str) -> Option<(&str, &str, &str)> {
    let prefix = if key.starts_with("resources") {
        "resources"
    } else if key.starts_with("trait") {
        "trait"
    } else {
        return None;
    };
    let rest = &key[prefix.len()..];
    let colon = rest.find(':')?;
    let suffix = &rest[..colon];
    if suffix.len() > 64
        || !suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    Some((prefix, suffix, &rest[colon + 1..]))
}

/// A resource class as Placement knows it, or None when unusable.
fn resource_class(name: &str) -> Option<String> {
    if name.starts_with("CUSTOM_") || is_standard_class(name) {
        return Some(name.to_string());
    }
    if name.trim().is_empty() {
        return None;
    }
    Some(normalize_name(name))
}

/// Python's `int()` of a non-negative amount.
fn amount(value: &str) -> Option<u64> {
    value.trim().replace('_', "").parse::<u64>().ok()
}

impl ResourceRequest {
    fn group(&mut self, suffix: &str) -> &mut Group {
        self.groups.entry(suffix.to_string()).or_default()
    }

    fn add_trait(&mut self, suffix: &str, name: &str, kind: &str) {
        match kind {
            "required" => {
                self.group(suffix).required.insert(name.to_string());
            }
            "forbidden" => {
                self.group(suffix).forbidden.insert(name.to_string());
            }
            _ => tracing::warn!(name, kind, "ignoring trait extra spec of unknown kind"),
        }
    }

    fn merged_has(&self, class: &str) -> bool {
        self.groups
            .values()
            .any(|g| g.resources.contains_key(class))
    }

    /// Builds the request for one boot.
    pub fn from_flavor(flavor: &FlavorResources, hints: &RequestHints) -> ResourceRequest {
        let mut request = ResourceRequest {
            limit: hints.limit,
            ..Default::default()
        };
        for (key, value) in &flavor.extra_specs {
            if key == "group_policy" {
                if value == "none" || value == "isolate" {
                    request.group_policy = Some(value.clone());
                } else {
                    tracing::warn!(value, "ignoring invalid group_policy");
                }
                continue;
            }
            let Some((prefix, suffix, name)) = split_key(key) else {
                continue;
            };
            if prefix == "resources" {
                match (resource_class(name), amount(value)) {
                    (Some(class), Some(n)) => {
                        request.group(suffix).resources.insert(class, n);
                    }
                    _ => tracing::warn!(key, value, "ignoring invalid resources extra spec"),
                }
            } else {
                request.add_trait(suffix, name, value);
            }
        }
        for (key, value) in &hints.image_properties {
            if let Some(name) = key.strip_prefix("trait:") {
                if value == "required" {
                    request.add_trait("", name, value);
                }
            }
        }
        if !request.merged_has("VCPU") && !request.merged_has("PCPU") {
            request
                .group("")
                .resources
                .insert("VCPU".into(), flavor.vcpus);
        }
        if !request.merged_has("MEMORY_MB") {
            request
                .group("")
                .resources
                .insert("MEMORY_MB".into(), flavor.memory_mb);
        }
        if !request.merged_has("DISK_GB") {
            let disk = flavor.root_gb + flavor.ephemeral_gb + flavor.swap_mb.div_ceil(1024);
            if disk > 0 {
                request.group("").resources.insert("DISK_GB".into(), disk);
            }
        }
        // strip_zeros, then drop groups left empty.
        for group in request.groups.values_mut() {
            group.resources.retain(|_, n| *n > 0);
        }
        request.groups.retain(|_, g| !g.is_empty());
        if !hints.member_of.is_empty() || hints.in_tree.is_some() {
            let group = request.group("");
            group.member_of.extend(hints.member_of.iter().cloned());
            group.in_tree = hints.in_tree.clone();
        }
        match request.groups.get_mut("") {
            Some(group) if !group.resources.is_empty() => {
                group.forbidden.insert(COMPUTE_STATUS_DISABLED.into());
            }
            _ => {
                request
                    .root_forbidden
                    .insert(COMPUTE_STATUS_DISABLED.into());
            }
        }
        request
    }

    /// The query pairs, sorted as Nova sorts them.
    pub fn to_query(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit".into(), limit.to_string()));
        }
        if let Some(policy) = &self.group_policy {
            pairs.push(("group_policy".into(), policy.clone()));
        }
        if !self.root_required.is_empty() || !self.root_forbidden.is_empty() {
            let values: Vec<String> = self
                .root_required
                .iter()
                .cloned()
                .chain(self.root_forbidden.iter().map(|t| format!("!{t}")))
                .collect();
            pairs.push(("root_required".into(), values.join(",")));
        }
        for (suffix, group) in &self.groups {
            let resources: Vec<String> = group
                .resources
                .iter()
                .map(|(class, n)| format!("{class}:{n}"))
                .collect();
            pairs.push((format!("resources{suffix}"), resources.join(",")));
            let traits: Vec<String> = group
                .required
                .iter()
                .cloned()
                .chain(group.forbidden.iter().map(|t| format!("!{t}")))
                .collect();
            if !traits.is_empty() {
                pairs.push((format!("required{suffix}"), traits.join(",")));
            }
            for aggregates in &group.member_of {
                let list: Vec<&str> = aggregates.iter().map(String::as_str).collect();
                pairs.push((
                    format!("member_of{suffix}"),
                    format!("in:{}", list.join(",")),
                ));
            }
            if let Some(tree) = &group.in_tree {
                pairs.push((format!("in_tree{suffix}"), tree.clone()));
            }
        }
        pairs.sort();
        pairs
    }

    /// The url-encoded query string (Python's `urlencode`).
    pub fn to_querystring(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.to_query())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flavor(vcpus: u64, ram: u64, disk: u64, specs: &[(&str, &str)]) -> FlavorResources {
        FlavorResources {
            vcpus,
            memory_mb: ram,
            root_gb: disk,
            ephemeral_gb: 0,
            swap_mb: 0,
            extra_specs: specs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn query(flavor: &FlavorResources, hints: &RequestHints) -> String {
        ResourceRequest::from_flavor(flavor, hints)
            .to_query()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn limit() -> RequestHints {
        RequestHints {
            limit: Some(1000),
            ..Default::default()
        }
    }

    #[test]
    fn translation_table() {
        let table: &[(FlavorResources, &str)] = &[
            // A bare-metal flavor: the standard resources zeroed out.
            (
                flavor(
                    4,
                    8192,
                    100,
                    &[
                        ("resources:CUSTOM_BAREMETAL_GOLD", "1"),
                        ("resources:VCPU", "0"),
                        ("resources:MEMORY_MB", "0"),
                        ("resources:DISK_GB", "0"),
                    ],
                ),
                "limit=1000&required=!COMPUTE_STATUS_DISABLED&resources=CUSTOM_BAREMETAL_GOLD:1",
            ),
            // A plain flavor: VCPU, MEMORY_MB and DISK_GB from its fields.
            (
                flavor(2, 2048, 20, &[]),
                "limit=1000&required=!COMPUTE_STATUS_DISABLED&resources=DISK_GB:20,MEMORY_MB:2048,VCPU:2",
            ),
            // Ferrite: a node resource class as Ironic spells it is normalised.
            (
                flavor(
                    1,
                    1,
                    0,
                    &[
                        ("resources:baremetal-gold", "1"),
                        ("resources:VCPU", "0"),
                        ("resources:MEMORY_MB", "0"),
                    ],
                ),
                "limit=1000&required=!COMPUTE_STATUS_DISABLED&resources=CUSTOM_BAREMETAL_GOLD:1",
            ),
            // Traits, forbidden and required, bad values skipped.
            (
                flavor(
                    0,
                    0,
                    0,
                    &[
                        ("resources:CUSTOM_GOLD", "1"),
                        ("trait:HW_CPU_X86_AVX2", "required"),
                        ("trait:CUSTOM_RAID", "forbidden"),
                        ("trait:CUSTOM_BAD", "maybe"),
                        ("resources:CUSTOM_NEG", "-1"),
                        ("resources:CUSTOM_TEXT", "many"),
                        ("capabilities:boot_mode", "uefi"),
                    ],
                ),
                "limit=1000&required=HW_CPU_X86_AVX2,!COMPUTE_STATUS_DISABLED,!CUSTOM_RAID&resources=CUSTOM_GOLD:1",
            ),
            // Numbered groups and group_policy.
            (
                flavor(
                    0,
                    0,
                    0,
                    &[
                        ("resources:CUSTOM_GOLD", "1"),
                        ("resources1:CUSTOM_NIC", "2"),
                        ("trait1:CUSTOM_PHYSNET_A", "required"),
                        ("resources2:CUSTOM_NIC", "1"),
                        ("trait2:CUSTOM_PHYSNET_B", "forbidden"),
                        ("group_policy", "isolate"),
                    ],
                ),
                "group_policy=isolate&limit=1000&required=!COMPUTE_STATUS_DISABLED&required1=CUSTOM_PHYSNET_A&required2=!CUSTOM_PHYSNET_B&resources=CUSTOM_GOLD:1&resources1=CUSTOM_NIC:2&resources2=CUSTOM_NIC:1",
            ),
            // A class named in a numbered group is not added unsuffixed;
            // nothing left unsuffixed: the disabled trait moves to the root.
            (
                flavor(
                    2,
                    0,
                    0,
                    &[("resources1:VCPU", "2"), ("group_policy", "bogus")],
                ),
                "limit=1000&resources1=VCPU:2&root_required=!COMPUTE_STATUS_DISABLED",
            ),
            // Swap rounds up to whole GiB and adds to the disk.
            (
                FlavorResources {
                    vcpus: 1,
                    memory_mb: 512,
                    root_gb: 1,
                    ephemeral_gb: 2,
                    swap_mb: 1025,
                    extra_specs: BTreeMap::new(),
                },
                "limit=1000&required=!COMPUTE_STATUS_DISABLED&resources=DISK_GB:5,MEMORY_MB:512,VCPU:1",
            ),
        ];
        for (flavor, expected) in table {
            assert_eq!(
                &query(flavor, &limit()),
                expected,
                "{:?}",
                flavor.extra_specs
            );
        }
    }

    #[test]
    fn hints_add_member_of_in_tree_and_image_traits() {
        let hints = RequestHints {
            image_properties: [
                ("trait:CUSTOM_IMAGE_OK".to_string(), "required".to_string()),
                ("trait:CUSTOM_SKIP".to_string(), "forbidden".to_string()),
                ("os_distro".to_string(), "ubuntu".to_string()),
            ]
            .into_iter()
            .collect(),
            member_of: vec![["b".to_string(), "a".to_string()].into_iter().collect()],
            in_tree: Some("node-1".into()),
            limit: None,
        };
        let f = flavor(
            0,
            0,
            0,
            &[("resources:CUSTOM_GOLD", "1"), ("resources:VCPU", "0")],
        );
        assert_eq!(
            query(&f, &hints),
            "in_tree=node-1&member_of=in:a,b&required=CUSTOM_IMAGE_OK,!COMPUTE_STATUS_DISABLED&resources=CUSTOM_GOLD:1"
        );
    }

    #[test]
    fn querystring_is_urlencoded_and_parses_in_placement() {
        let f = flavor(
            0,
            0,
            0,
            &[
                ("resources:CUSTOM_BAREMETAL_GOLD", "1"),
                ("trait:CUSTOM_X", "required"),
            ],
        );
        let request = ResourceRequest::from_flavor(&f, &limit());
        assert_eq!(
            request.to_querystring(),
            "limit=1000&required=CUSTOM_X%2C%21COMPUTE_STATUS_DISABLED&resources=CUSTOM_BAREMETAL_GOLD%3A1"
        );
        let spec = ferrite_resource_classes::parse_query(
            &request.to_query(),
            &ferrite_resource_classes::ParseOptions::new(1, 36),
        )
        .expect("placement accepts it");
        assert_eq!(spec.limit, Some(1000));
        assert_eq!(
            spec.groups[0].resources.get("CUSTOM_BAREMETAL_GOLD"),
            Some(&1)
        );
    }
}
