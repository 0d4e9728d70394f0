//! The service kit: the pieces of an HTTP edge that Placement, the Bare
//! Metal API and compute share, written once. It knows no service: each
//! service keeps its own error format and turns the kit's typed outcomes
//! (a body too large, a JSON document too deep, a client over its rate)
//! into it.
//!
//! - [`rate`]: per-client request rate limits (GCRA through `governor`),
//!   keyed by the peer's IP address, with the `Retry-After` to send;
//! - [`body`]: reading a request body with a per-route size cap;
//! - [`json`]: depth, size and length bounds of JSON documents;
//! - [`query`]: bounds of the query string;
//! - [`links`]: the base URL links are built on (never an untrusted `Host`);
//! - [`logs`]: control characters escaped in text that goes to logs;
//! - [`process`]: the process's open descriptors and resident memory;
//! - [`defaults`]: the default host name and data directory.
//!
//! Invariant: this crate never depends on a service crate.

pub mod body;
pub mod defaults;
pub mod json;
pub mod links;
pub mod logs;
pub mod process;
pub mod query;
pub mod rate;

pub use body::{read_body, BodyError};
pub use json::{JsonLimits, JsonViolation};
pub use links::LinkBase;
pub use logs::Escaped;
pub use query::QueryLimits;
pub use rate::{RateLimitConfig, RateLimiter, RetryAfter};
