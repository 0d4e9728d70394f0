//! Property tests: rendering a spec and parsing it back is the identity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ferrite_resource_classes::{parse_query, render_query, ParseOptions};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_of_render_is_identity(spec in common::spec_strategy()) {
        let pairs = render_query(&spec);
        let parsed = parse_query(&pairs, &ParseOptions::latest());
        prop_assert_eq!(parsed.as_ref(), Ok(&spec), "pairs: {:?}", pairs);
    }

    #[test]
    fn render_is_a_fixed_point(spec in common::spec_strategy()) {
        let once = render_query(&spec);
        let twice = render_query(&parse_query(&once, &ParseOptions::latest()).unwrap());
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn group_order_in_the_query_does_not_matter(spec in common::spec_strategy()) {
        let mut reversed = spec.clone();
        reversed.groups.reverse();
        let pairs = render_query(&reversed);
        let parsed = parse_query(&pairs, &ParseOptions::latest());
        prop_assert_eq!(parsed.as_ref(), Ok(&spec), "pairs: {:?}", pairs);
    }

    #[test]
    fn parse_never_panics(
        pairs in prop::collection::vec(("[a-z_]{0,12}[0-9A-Z_-]{0,3}", ".{0,20}"), 0..6),
        minor in 0u16..45,
    ) {
        let _ = parse_query(&pairs, &ParseOptions::new(1, minor));
    }
}
