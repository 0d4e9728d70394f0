//! Resource classes, traits and Placement request-group query parsing.
//!
//! This crate holds the vocabulary that every Ferrite service shares with
//! OpenStack Placement:
//!
//! * [`standard_classes`]: the standard resource classes of
//!   `os-resource-classes` 1.1.0, in their canonical (id) order.
//! * [`standard_traits`]: the standard traits of `os-traits` 3.9.0.
//! * [`names`]: custom-name normalisation and validation (`CUSTOM_*`).
//! * [`request_group`]: the `GET /allocation_candidates` query-string
//!   syntax (granular request groups, traits, aggregates, `in_tree`,
//!   `same_subtree`, `root_required`, ...), parsed with the same
//!   microversion gating and error texts as upstream Placement, and
//!   rendered back to canonical query pairs.
//!
//! The lists are generated from the upstream Python packages by
//! `data/regenerate.py`; see that script to refresh them.

mod generated {
    pub(crate) mod resource_classes;
    pub(crate) mod traits;
}

pub mod error;
pub mod names;
mod py;
pub mod query_values;
pub mod request_group;
pub mod standard_classes;
pub mod standard_traits;

pub use error::ParseError;
pub use names::{normalize_name, validate_custom_class, validate_custom_trait, NameError};
/// Python's `repr()` of a string, as upstream error texts show names.
pub use py::repr as python_repr;
pub use query_values::{
    is_uuid_like, parse_in_tree, parse_member_of, parse_required, parse_resources, TraitSet,
};
pub use request_group::{
    parse_query, render_query, GroupPolicy, ParseOptions, RequestGroup, RequestSpec,
    MAX_MICROVERSION, MIN_MICROVERSION,
};
pub use standard_classes::{is_standard_class, CUSTOM_PREFIX, STANDARD_RESOURCE_CLASSES};
pub use standard_traits::{is_standard_trait, STANDARD_TRAITS};
