//! Parsers for single Placement query-parameter values: `resources`,
//! `required`, `member_of` and `in_tree`.
//!
//! These follow upstream Placement's behaviour exactly, including its
//! leniencies: resource class and trait names are *not* checked here
//! (upstream reports unknown names later, when it looks them up), a
//! repeated class inside one `resources` value silently keeps the last
//! amount, and `!!TRAIT` means the same as `!TRAIT`.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ParseError;
use crate::py;

/// A set of trait names.
pub type TraitSet = BTreeSet<String>;

/// `(required, forbidden, any_of)` as returned by [`parse_required`].
pub type ParsedTraits = (TraitSet, TraitSet, Vec<TraitSet>);

/// `(member_of, forbidden)` as returned by [`parse_member_of`].
pub type ParsedMemberOf = (Vec<BTreeSet<String>>, BTreeSet<String>);

/// Whether `value` is accepted as a UUID by upstream Placement
/// (`oslo_utils.uuidutils.is_uuid_like`): after removing every `urn:` and
/// `uuid:`, stripping surrounding braces and dropping all hyphens, exactly
/// 32 hex digits must remain (either case).
pub fn is_uuid_like(value: &str) -> bool {
    let hex = value.replace("urn:", "").replace("uuid:", "");
    let hex = hex.trim_matches(|c| c == '{' || c == '}').replace('-', "");
    hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parse a `resources` value such as `VCPU:2,MEMORY_MB:1024`.
///
/// Amounts follow Python's `int()` (surrounding whitespace, `+`, leading
/// zeros and `1_000` are fine) and must be at least 1; amounts beyond
/// `u64::MAX` saturate. Class names are kept verbatim (not trimmed, not
/// validated). A class repeated within the value keeps its last amount,
/// as upstream does.
pub fn parse_resources(value: &str) -> Result<BTreeMap<String, u64>, ParseError> {
    if py::strip(value).is_empty() {
        return Err(ParseError::EmptyResources);
    }
    let mut out = BTreeMap::new();
    for item in value.split(',') {
        let mut parts = item.split(':');
        let (Some(class), Some(amount), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ParseError::BadResources(item.to_owned()));
        };
        let Some(parsed) = py::parse_int(amount) else {
            return Err(ParseError::AmountNotInteger {
                class: class.to_owned(),
                amount: amount.to_owned(),
            });
        };
        if !parsed.is_positive() {
            return Err(ParseError::AmountTooSmall {
                class: class.to_owned(),
                amount: parsed.render(),
            });
        }
        out.insert(class.to_owned(), parsed.saturating_u64());
    }
    Ok(out)
}

/// One `required` value in upstream's internal form: a list of OR-sets
/// (a plain trait is a one-element set) plus the forbidden traits.
pub(crate) fn parse_trait_value(
    value: &str,
    allow_forbidden: bool,
    allow_any_of: bool,
) -> Result<(Vec<TraitSet>, TraitSet), ParseError> {
    if let Some(list) = value.strip_prefix("in:") {
        if !allow_any_of {
            return Err(ParseError::AnyTraitsUnsupported(value.to_owned()));
        }
        let any: TraitSet = list.split(',').map(|t| py::strip(t).to_owned()).collect();
        if any.iter().any(String::is_empty) {
            return Err(ParseError::EmptyAnyTrait(value.to_owned()));
        }
        if any.iter().any(|t| t.starts_with('!')) {
            return Err(ParseError::ForbiddenInAnyTraits(value.to_owned()));
        }
        return Ok((vec![any], TraitSet::new()));
    }
    let all: Vec<&str> = value.split(',').map(py::strip).collect();
    let forbidden: TraitSet = all
        .iter()
        .filter(|t| t.starts_with('!'))
        .map(|t| t.trim_start_matches('!').to_owned())
        .collect();
    if all.iter().any(|t| t.is_empty()) || forbidden.iter().any(String::is_empty) {
        return Err(ParseError::EmptyTrait {
            expected_form: if allow_forbidden {
                "HW_CPU_X86_VMX,!CUSTOM_MAGIC"
            } else {
                "HW_CPU_X86_VMX,CUSTOM_MAGIC"
            },
            value: value.to_owned(),
        });
    }
    if !forbidden.is_empty() && !allow_forbidden {
        return Err(ParseError::ForbiddenTraitsUnsupported(value.to_owned()));
    }
    let required = all
        .iter()
        .filter(|t| !t.starts_with('!'))
        .map(|t| TraitSet::from([(*t).to_owned()]))
        .collect();
    Ok((required, forbidden))
}

/// All values of one `required{S}` key, in upstream's internal form.
/// Without `allow_any_of` (before microversion 1.39) only the last value
/// counts and the others are ignored entirely, as upstream does.
pub(crate) fn parse_trait_values(
    values: &[&str],
    allow_forbidden: bool,
    allow_any_of: bool,
) -> Result<(Vec<TraitSet>, TraitSet), ParseError> {
    let considered = if allow_any_of {
        values
    } else {
        &values[values.len().saturating_sub(1)..]
    };
    let mut required = Vec::new();
    let mut forbidden = TraitSet::new();
    for value in considered {
        let (r, f) = parse_trait_value(value, allow_forbidden, allow_any_of)?;
        required.extend(r);
        forbidden.extend(f);
    }
    Ok((required, forbidden))
}

/// Split upstream's list of OR-sets into plain required traits (one-element
/// sets) and genuine any-of sets (two or more traits, in request order).
pub(crate) fn split_required(raw: Vec<TraitSet>) -> (TraitSet, Vec<TraitSet>) {
    let mut required = TraitSet::new();
    let mut any_of = Vec::new();
    for set in raw {
        if set.len() == 1 {
            required.extend(set);
        } else {
            any_of.push(set);
        }
    }
    (required, any_of)
}

/// Parse the values of a `required` parameter (for example on
/// `GET /resource_providers`).
///
/// `allow_forbidden` enables `!TRAIT` (microversion 1.22); `allow_any_of`
/// enables `in:A,B` and repeating the parameter (1.39). Without
/// `allow_any_of` only the last value is looked at, like upstream.
/// Returns `(required, forbidden, any_of)`, where `any_of` holds only sets
/// of two or more traits (`in:A` is reported as required `A`).
pub fn parse_required(
    values: &[String],
    allow_forbidden: bool,
    allow_any_of: bool,
) -> Result<ParsedTraits, ParseError> {
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let (raw, forbidden) = parse_trait_values(&values, allow_forbidden, allow_any_of)?;
    let (required, any_of) = split_required(raw);
    Ok((required, forbidden, any_of))
}

/// One `member_of` value: `UUID`, `in:U1,U2`, `!UUID` or `!in:U1,U2`.
/// Returns `(any_of, forbidden)`; UUIDs are kept as given.
fn parse_member_of_value(value: &str) -> Result<(Vec<&str>, Vec<&str>), ParseError> {
    if value.contains(',') && !(value.starts_with("in:") || value.starts_with("!in:")) {
        return Err(ParseError::MemberOfNeedsIn(value.to_owned()));
    }
    let (required, forbidden) = if let Some(list) = value.strip_prefix("!in:") {
        (Vec::new(), list.split(',').collect())
    } else if let Some(one) = value.strip_prefix('!') {
        (Vec::new(), vec![one])
    } else if let Some(list) = value.strip_prefix("in:") {
        (list.split(',').collect(), Vec::new())
    } else {
        (vec![value], Vec::new())
    };
    if let Some(bad) = required
        .iter()
        .chain(forbidden.iter())
        .find(|u| !is_uuid_like(u))
    {
        return Err(ParseError::InvalidMemberOfUuid((*bad).to_owned()));
    }
    Ok((required, forbidden))
}

/// All values of one `member_of{S}` key; `suffix` only feeds messages.
pub(crate) fn parse_member_of_values(
    values: &[&str],
    suffix: &str,
    allow_multiple: bool,
    allow_forbidden: bool,
) -> Result<ParsedMemberOf, ParseError> {
    if !allow_multiple && values.len() > 1 {
        return Err(ParseError::MultipleMemberOfUnsupported(suffix.to_owned()));
    }
    let mut member_of = Vec::new();
    let mut forbidden = BTreeSet::new();
    for value in values {
        let (required, banned) = parse_member_of_value(value)?;
        if !required.is_empty() {
            member_of.push(required.into_iter().map(str::to_owned).collect());
        }
        if !banned.is_empty() {
            if !allow_forbidden {
                return Err(ParseError::ForbiddenMemberOfUnsupported(suffix.to_owned()));
            }
            forbidden.extend(banned.into_iter().map(str::to_owned));
        }
    }
    Ok((member_of, forbidden))
}

/// Parse the values of an unsuffixed `member_of` parameter.
///
/// `allow_multiple` permits repeating it (microversion 1.24);
/// `allow_forbidden` permits `!UUID` / `!in:...` (1.32). Returns the list
/// of any-of aggregate sets (each entry: at least one must match) and the
/// forbidden aggregates. UUIDs are kept exactly as given.
pub fn parse_member_of(
    values: &[String],
    allow_multiple: bool,
    allow_forbidden: bool,
) -> Result<ParsedMemberOf, ParseError> {
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    parse_member_of_values(&values, "", allow_multiple, allow_forbidden)
}

/// Parse an `in_tree{S}` value of `GET /allocation_candidates`: trimmed,
/// then it must be UUID-like.
pub fn parse_in_tree(value: &str) -> Result<String, ParseError> {
    let trimmed = py::strip(value);
    if is_uuid_like(trimmed) {
        Ok(trimmed.to_owned())
    } else {
        Err(ParseError::InvalidInTree(value.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        strings(v).into_iter().collect()
    }

    const U1: &str = "9323b2b1-82c9-4e91-bdff-e95e808ef954";
    const U2: &str = "8592a199-7d73-4465-8df6-ab00a6243c82";

    #[test]
    fn uuid_like() {
        assert!(is_uuid_like(U1));
        assert!(is_uuid_like(&U1.to_uppercase()));
        assert!(is_uuid_like(&U1.replace('-', "")));
        assert!(is_uuid_like(&format!("{{{U1}}}")));
        assert!(is_uuid_like(&format!("urn:uuid:{U1}")));
        assert!(is_uuid_like("9323b2b1-82c9-4e91-bdff-e95e808ef9-54"));
        assert!(!is_uuid_like(&format!(" {U1}")));
        assert!(!is_uuid_like(&format!("URN:{U1}")));
        assert!(!is_uuid_like("9323b2b1-82c9-4e91-bdff-e95e808ef95"));
        assert!(!is_uuid_like("g323b2b1-82c9-4e91-bdff-e95e808ef954"));
        assert!(!is_uuid_like(""));
    }

    #[test]
    fn resources_ok() {
        let r = parse_resources("VCPU:2,MEMORY_MB: 1024 ,DISK_GB:+05,VCPU:3").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r["VCPU"], 3);
        assert_eq!(r["MEMORY_MB"], 1024);
        assert_eq!(r["DISK_GB"], 5);
        // Names are not trimmed or validated.
        let r = parse_resources(" vcpu :1").unwrap();
        assert_eq!(r[" vcpu "], 1);
    }

    #[test]
    fn resources_errors() {
        let form = "Badly formed resources parameter. Expected resources query string \
                    parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: ";
        let cases = [
            ("", format!("{form}empty string.")),
            ("  ", format!("{form}empty string.")),
            ("VCPU", format!("{form}VCPU.")),
            ("VCPU:1,", format!("{form}.")),
            ("VCPU:1:2", format!("{form}VCPU:1:2.")),
            (
                "VCPU:x",
                "Requested resource VCPU expected positive integer amount. Got: x.".to_owned(),
            ),
            (
                "VCPU:1.5",
                "Requested resource VCPU expected positive integer amount. Got: 1.5.".to_owned(),
            ),
            (
                "VCPU:0",
                "Requested resource VCPU requires amount >= 1. Got: 0.".to_owned(),
            ),
            (
                "VCPU:-007",
                "Requested resource VCPU requires amount >= 1. Got: -7.".to_owned(),
            ),
        ];
        for (input, want) in cases {
            let err = parse_resources(input).unwrap_err();
            assert_eq!(err.to_string(), want, "input {input:?}");
        }
    }

    #[test]
    fn required_plain() {
        let (req, forb, any) = parse_required(&strings(&["A, !B,!!C ,A"]), true, false).unwrap();
        assert_eq!(req, set(&["A"]));
        assert_eq!(forb, set(&["B", "C"]));
        assert!(any.is_empty());
    }

    #[test]
    fn required_only_last_before_any_of() {
        let vals = strings(&["in:bad", "!X", "A"]);
        let (req, forb, _) = parse_required(&vals, true, false).unwrap();
        assert_eq!(req, set(&["A"]));
        assert!(forb.is_empty());
        let vals = strings(&["in:A,B", "!X", "C", "in:D"]);
        let (req, forb, any) = parse_required(&vals, true, true).unwrap();
        assert_eq!(req, set(&["C", "D"]));
        assert_eq!(forb, set(&["X"]));
        assert_eq!(any, vec![set(&["A", "B"])]);
    }

    #[test]
    fn required_errors() {
        let p = "Invalid query string parameters: ";
        let cases: [(&str, bool, bool, String); 7] = [
            (
                "in:A,B",
                true,
                false,
                format!(
                    "{p}The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since \
                     microversion 1.39. Got: in:A,B"
                ),
            ),
            (
                "in:A,,B",
                true,
                true,
                format!(
                    "{p}Expected 'required' parameter value of the form: \
                     in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: in:A,,B"
                ),
            ),
            (
                "in:A,!B",
                true,
                true,
                format!(
                    "{p}The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not support \
                     forbidden traits. Got: in:A,!B"
                ),
            ),
            (
                "A,",
                true,
                true,
                format!(
                    "{p}Expected 'required' parameter value of the form: \
                     HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got an empty trait in: A,"
                ),
            ),
            (
                "A,!!",
                false,
                false,
                format!(
                    "{p}Expected 'required' parameter value of the form: \
                     HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: A,!!"
                ),
            ),
            (
                "A,!B",
                false,
                false,
                format!(
                    "{p}Expected 'required' parameter value of the form: \
                     HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: A,!B"
                ),
            ),
            (
                "",
                true,
                false,
                format!(
                    "{p}Expected 'required' parameter value of the form: \
                     HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got an empty trait in: "
                ),
            ),
        ];
        for (input, forbidden, any, want) in cases {
            let err = parse_required(&strings(&[input]), forbidden, any).unwrap_err();
            assert_eq!(err.to_string(), want, "input {input:?}");
        }
    }

    #[test]
    fn member_of_ok() {
        let vals = strings(&[U1, &format!("in:{U1},{U2}"), &format!("!{U2}")]);
        let (m, f) = parse_member_of(&vals, true, true).unwrap();
        assert_eq!(m, vec![set(&[U1]), set(&[U1, U2])]);
        assert_eq!(f, set(&[U2]));
        let (m, f) = parse_member_of(&strings(&[&format!("!in:{U1},{U2}")]), true, true).unwrap();
        assert!(m.is_empty());
        assert_eq!(f, set(&[U1, U2]));
    }

    #[test]
    fn member_of_errors() {
        let err = parse_member_of(&strings(&[U1, U2]), false, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Multiple member_of parameters are not supported"
        );
        let err = parse_member_of(&strings(&[&format!("!{U1}")]), true, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Forbidden member_of parameters are not supported in the specified microversion"
        );
        let err = parse_member_of(&strings(&[&format!("{U1},{U2}")]), true, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' \
                 keyword using the valid microversion. Got: {U1},{U2}"
            )
        );
        let err = parse_member_of(&strings(&[&format!("in:{U1},nope")]), true, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid query string parameters: Expected 'member_of' parameter to contain valid \
             UUID(s). Got: nope"
        );
        let err = parse_member_of(&strings(&[""]), true, true).unwrap_err();
        assert!(err.to_string().ends_with("Got: "));
    }

    #[test]
    fn in_tree() {
        assert_eq!(parse_in_tree(&format!(" {U1}\t")).unwrap(), U1);
        assert_eq!(
            parse_in_tree("x ").unwrap_err().to_string(),
            "Invalid query string parameters: Expected 'in_tree' parameter to be a format of \
             uuid. Got: x "
        );
    }
}
