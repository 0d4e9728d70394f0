//! Standard resource classes, as published by `os-resource-classes` 1.1.0.
//!
//! The order of [`STANDARD_RESOURCE_CLASSES`] is significant: Placement
//! gives the standard classes database ids `0..n` in exactly this order,
//! and custom classes start at id 10000.

/// Prefix that every custom resource class (and custom trait) carries.
pub const CUSTOM_PREFIX: &str = "CUSTOM_";

/// The standard resource classes, in canonical (id) order.
pub const STANDARD_RESOURCE_CLASSES: &[&str] = crate::generated::resource_classes::CLASSES;

/// Whether `name` is one of the standard resource classes.
pub fn is_standard_class(name: &str) -> bool {
    STANDARD_RESOURCE_CLASSES.contains(&name)
}

/// Position of a standard class in [`STANDARD_RESOURCE_CLASSES`], which is
/// the id Placement assigns to it.
pub fn standard_class_id(name: &str) -> Option<usize> {
    STANDARD_RESOURCE_CLASSES.iter().position(|c| *c == name)
}

/// Whether `name` uses the custom namespace (starts with `CUSTOM_`).
pub fn is_custom(name: &str) -> bool {
    name.starts_with(CUSTOM_PREFIX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn first_and_last_classes_are_in_upstream_order() {
        assert_eq!(STANDARD_RESOURCE_CLASSES.len(), 21);
        assert_eq!(
            &STANDARD_RESOURCE_CLASSES[..3],
            ["VCPU", "MEMORY_MB", "DISK_GB"]
        );
        assert_eq!(standard_class_id("PCPU"), Some(14));
        assert_eq!(
            STANDARD_RESOURCE_CLASSES.last(),
            Some(&"NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC")
        );
    }

    #[test]
    fn lookup() {
        assert!(is_standard_class("VGPU"));
        assert!(!is_standard_class("vgpu"));
        assert!(!is_standard_class("CUSTOM_VGPU"));
        assert!(is_custom("CUSTOM_VGPU"));
        assert_eq!(standard_class_id("CUSTOM_X"), None);
    }

    #[test]
    fn generated_list_matches_text_file() {
        let text: Vec<&str> = include_str!("../data/resource_classes.txt")
            .lines()
            .collect();
        assert_eq!(text, STANDARD_RESOURCE_CLASSES);
    }
}
