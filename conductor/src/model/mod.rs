//! The Bare Metal API's resource model: node and port fields, their views
//! per microversion, patches, and create validation — pure functions with
//! upstream Ironic 39.0.0's behaviour and error texts.
//!
//! Nodes and ports travel as their full JSON object at the latest
//! microversion (`serde_json::Map`); [`view`] turns one into a response
//! body, [`patch`] turns a request into a new full object. Storage, policy
//! and the conductor's decisions are the callers'.

pub mod error;
pub mod fields;
mod mask;
pub mod patch;
pub(crate) mod pyrepr;
mod schema;
mod schemas;
pub mod view;

#[cfg(test)]
mod transcripts;

pub use error::{ApiFieldError, ModelError};

/// A node or port as the model passes it around: the full JSON object at
/// the latest microversion.
pub type Doc = serde_json::Map<String, serde_json::Value>;
pub use patch::{
    apply_node_patch, apply_port_patch, changed_fields, check_node_patch, check_port_patch,
    port_patch_node_ident, validate_node_create, validate_port_create,
};
pub use view::{
    check_fields_param, collection, list_fields, node_list_item, node_states_view, node_view,
    port_list_item, port_view, Resource,
};
