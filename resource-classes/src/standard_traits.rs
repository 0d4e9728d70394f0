//! Standard traits, as published by `os-traits` 3.9.0.
//!
//! [`STANDARD_TRAITS`] is sorted (byte-wise), which lets
//! [`is_standard_trait`] use a binary search.

/// All standard traits, sorted.
pub const STANDARD_TRAITS: &[&str] = crate::generated::traits::TRAITS;

/// Whether `name` is one of the standard traits.
pub fn is_standard_trait(name: &str) -> bool {
    STANDARD_TRAITS.binary_search(&name).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_unique() {
        assert!(STANDARD_TRAITS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn lookup() {
        assert!(is_standard_trait("HW_CPU_X86_AVX2"));
        assert!(is_standard_trait("COMPUTE_STATUS_DISABLED"));
        assert!(!is_standard_trait("hw_cpu_x86_avx2"));
        assert!(!is_standard_trait("CUSTOM_MAGIC"));
        assert!(!is_standard_trait(""));
    }

    #[test]
    fn generated_list_matches_text_file() {
        let text: Vec<&str> = include_str!("../data/traits.txt").lines().collect();
        assert_eq!(text, STANDARD_TRAITS);
    }
}
