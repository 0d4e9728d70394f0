//! Custom resource-class and trait names: normalisation and validation.
//!
//! Both kinds of custom name share one grammar: the `CUSTOM_` prefix
//! followed by one or more of `A`-`Z`, `0`-`9` and `_`, at most 255
//! characters in total.

use crate::standard_classes::CUSTOM_PREFIX;

/// Longest name Placement accepts for a resource class or trait.
pub const MAX_NAME_LEN: usize = 255;

/// Upstream Placement's 400 detail for `PUT /traits/{name}` with a name
/// that fails [`validate_custom_trait`].
pub const INVALID_TRAIT_MESSAGE: &str =
    "The trait is invalid. A valid trait must be no longer than \
     255 characters, start with the prefix \"CUSTOM_\" and use following characters: \
     \"A\"-\"Z\", \"0\"-\"9\" and \"_\"";

/// Why a name is not a valid custom resource class or trait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name does not start with `CUSTOM_`.
    #[error("{kind} name {name:?} must start with the prefix \"CUSTOM_\"")]
    MissingPrefix {
        /// `"resource class"` or `"trait"`.
        kind: &'static str,
        /// The rejected name.
        name: String,
    },
    /// Nothing follows the `CUSTOM_` prefix.
    #[error("{kind} name {name:?} needs at least one character after \"CUSTOM_\"")]
    EmptyAfterPrefix {
        /// `"resource class"` or `"trait"`.
        kind: &'static str,
        /// The rejected name.
        name: String,
    },
    /// A character outside `A`-`Z`, `0`-`9`, `_`.
    #[error("{kind} name {name:?} contains {found:?}; only \"A\"-\"Z\", \"0\"-\"9\" and \"_\" are allowed")]
    InvalidCharacter {
        /// `"resource class"` or `"trait"`.
        kind: &'static str,
        /// The rejected name.
        name: String,
        /// The first offending character.
        found: char,
    },
    /// Longer than [`MAX_NAME_LEN`] characters.
    #[error("{kind} name is {len} characters long; at most 255 are allowed")]
    TooLong {
        /// `"resource class"` or `"trait"`.
        kind: &'static str,
        /// Length in characters.
        len: usize,
    },
}

/// Turn an arbitrary string into a legal custom name, exactly like
/// `os_resource_classes.normalize_name` / `os_traits.normalize_name`.
///
/// Every run of characters other than ASCII letters and digits becomes a
/// single `_` (so leading or trailing junk turns into a leading or trailing
/// `_`, and non-ASCII letters count as junk), the result is upper-cased and
/// `CUSTOM_` is prepended unconditionally: an existing prefix is not
/// detected, so `"CUSTOM_FOO"` becomes `"CUSTOM_CUSTOM_FOO"`. Length is not
/// checked.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(CUSTOM_PREFIX.len() + name.len());
    out.push_str(CUSTOM_PREFIX);
    let mut in_junk = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
            in_junk = false;
        } else if !in_junk {
            out.push('_');
            in_junk = true;
        }
    }
    out
}

fn validate_custom(kind: &'static str, name: &str) -> Result<(), NameError> {
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return Err(NameError::TooLong { kind, len });
    }
    let Some(rest) = name.strip_prefix(CUSTOM_PREFIX) else {
        return Err(NameError::MissingPrefix {
            kind,
            name: name.to_owned(),
        });
    };
    if rest.is_empty() {
        return Err(NameError::EmptyAfterPrefix {
            kind,
            name: name.to_owned(),
        });
    }
    if let Some(found) = rest
        .chars()
        .find(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(NameError::InvalidCharacter {
            kind,
            name: name.to_owned(),
            found,
        });
    }
    Ok(())
}

/// Check that `name` is a legal custom resource class name
/// (`^CUSTOM_[A-Z0-9_]+$`, at most 255 characters).
pub fn validate_custom_class(name: &str) -> Result<(), NameError> {
    validate_custom("resource class", name)
}

/// Check that `name` is a legal custom trait name
/// (`^CUSTOM_[A-Z0-9_]+$`, at most 255 characters).
pub fn validate_custom_trait(name: &str) -> Result<(), NameError> {
    validate_custom("trait", name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normalize_like_upstream() {
        let cases = [
            ("foo", "CUSTOM_FOO"),
            ("CUSTOM_FOO", "CUSTOM_CUSTOM_FOO"),
            ("a-b.c", "CUSTOM_A_B_C"),
            ("--lead and trail--", "CUSTOM__LEAD_AND_TRAIL_"),
            ("a   b", "CUSTOM_A_B"),
            ("a__b", "CUSTOM_A_B"),
            ("_", "CUSTOM__"),
            ("", "CUSTOM_"),
            ("ünïcode ß", "CUSTOM__N_CODE_"),
            ("vgpu1", "CUSTOM_VGPU1"),
            ("Mixed_Case9", "CUSTOM_MIXED_CASE9"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_name(input), want, "input {input:?}");
        }
    }

    #[test]
    fn validate() {
        assert_eq!(validate_custom_class("CUSTOM_GOLD_1"), Ok(()));
        assert_eq!(validate_custom_trait("CUSTOM__"), Ok(()));
        assert!(matches!(
            validate_custom_class("GOLD"),
            Err(NameError::MissingPrefix { .. })
        ));
        assert!(matches!(
            validate_custom_trait("CUSTOM_"),
            Err(NameError::EmptyAfterPrefix { .. })
        ));
        assert!(matches!(
            validate_custom_trait("CUSTOM_gold"),
            Err(NameError::InvalidCharacter { found: 'g', .. })
        ));
        assert!(matches!(
            validate_custom_class("CUSTOM_A-B"),
            Err(NameError::InvalidCharacter { found: '-', .. })
        ));
        assert!(matches!(
            validate_custom_class("custom_A"),
            Err(NameError::MissingPrefix { .. })
        ));
        let long = format!("CUSTOM_{}", "A".repeat(248));
        assert_eq!(long.len(), 255);
        assert_eq!(validate_custom_class(&long), Ok(()));
        let longer = format!("{long}B");
        assert_eq!(
            validate_custom_trait(&longer),
            Err(NameError::TooLong {
                kind: "trait",
                len: 256
            })
        );
    }

    #[test]
    fn normalized_names_validate_when_nonempty() {
        for input in ["x", "a b", "-x-", "9"] {
            let n = normalize_name(input);
            assert_eq!(validate_custom_class(&n), Ok(()), "{n}");
        }
    }
}
