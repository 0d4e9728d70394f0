//! Pure allocation rules: does a set of claims fit the inventories?
//!
//! No I/O here. Storage gathers inventories and current usage inside the
//! claiming transaction and asks [`check_claims`]; the transaction then bumps
//! provider generations so that a concurrent claim that read the same usage
//! cannot also commit.

use std::collections::{BTreeMap, BTreeSet};

/// One amount of one class on one provider, as requested.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub provider: String,
    pub resource_class: String,
    pub amount: i64,
}

/// The inventory limits of one (provider, class) and its usage by everyone
/// except the consumers being rewritten.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
    pub used: i64,
    /// Usage before the rewritten consumers' allocations were removed.
    pub previous_used: i64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClaimError {
    #[error("Inventory for '{resource_class}' on resource provider '{provider}' invalid.")]
    NoInventory {
        resource_class: String,
        provider: String,
    },
    #[error("Unable to create allocation for '{resource_class}' on resource provider '{provider}'. The requested amount would violate inventory constraints.")]
    ConstraintsViolated {
        resource_class: String,
        provider: String,
    },
    #[error("Unable to create allocation for '{resource_class}' on resource provider '{provider}'. The requested amount would exceed the capacity.")]
    CapacityExceeded {
        resource_class: String,
        provider: String,
    },
}

/// Checks every claim against `capacities` keyed by (provider, class).
/// Claims of amount 0 only mark a provider as touched and are not checked.
pub fn check_claims(
    claims: &[Claim],
    capacities: &BTreeMap<(String, String), Capacity>,
) -> Result<(), ClaimError> {
    // A provider that has no inventory at all for any requested class.
    // Upstream names every such provider (and every requested class).
    let providers: BTreeSet<&str> = claims.iter().map(|c| c.provider.as_str()).collect();
    let missing: Vec<&str> = providers
        .iter()
        .copied()
        .filter(|provider| !capacities.keys().any(|(p, _)| p == provider))
        .collect();
    if !missing.is_empty() {
        let classes: BTreeSet<&str> = claims.iter().map(|c| c.resource_class.as_str()).collect();
        return Err(ClaimError::NoInventory {
            resource_class: classes.into_iter().collect::<Vec<_>>().join(", "),
            provider: missing.join(", "),
        });
    }
    let mut totals: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for claim in claims {
        *totals
            .entry((claim.provider.as_str(), claim.resource_class.as_str()))
            .or_default() += claim.amount;
    }
    for claim in claims {
        if claim.amount == 0 {
            continue;
        }
        let key = (claim.provider.clone(), claim.resource_class.clone());
        let Some(cap) = capacities.get(&key) else {
            return Err(ClaimError::NoInventory {
                resource_class: claim.resource_class.clone(),
                provider: claim.provider.clone(),
            });
        };
        if claim.amount < cap.min_unit
            || claim.amount > cap.max_unit
            || cap.step_size <= 0
            || claim.amount % cap.step_size != 0
        {
            return Err(ClaimError::ConstraintsViolated {
                resource_class: claim.resource_class.clone(),
                provider: claim.provider.clone(),
            });
        }
        let capacity = (cap.total - cap.reserved) as f64 * cap.allocation_ratio;
        let all = totals
            .get(&(claim.provider.as_str(), claim.resource_class.as_str()))
            .copied()
            .unwrap_or(claim.amount);
        let exceeds =
            capacity < (cap.used + claim.amount) as f64 || capacity < (cap.used + all) as f64;
        // Shrinking an existing overage (e.g. after the inventory was reduced)
        // is allowed, as upstream allows it.
        let reduces_overage = cap.previous_used > 0 && cap.used + all <= cap.previous_used;
        if exceeds && !reduces_overage {
            return Err(ClaimError::CapacityExceeded {
                resource_class: claim.resource_class.clone(),
                provider: claim.provider.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(total: i64, used: i64) -> Capacity {
        Capacity {
            total,
            reserved: 0,
            min_unit: 1,
            max_unit: total,
            step_size: 1,
            allocation_ratio: 1.0,
            used,
            previous_used: used,
        }
    }

    fn claim(p: &str, rc: &str, amount: i64) -> Claim {
        Claim {
            provider: p.into(),
            resource_class: rc.into(),
            amount,
        }
    }

    #[test]
    fn claims_table() {
        let mut caps = BTreeMap::new();
        caps.insert(("a".to_string(), "VCPU".to_string()), cap(4, 2));
        let ok = check_claims(&[claim("a", "VCPU", 2)], &caps);
        assert_eq!(ok, Ok(()));
        let over = check_claims(&[claim("a", "VCPU", 3)], &caps);
        assert!(matches!(over, Err(ClaimError::CapacityExceeded { .. })));
        // Two consumers in one request are summed.
        let summed = check_claims(&[claim("a", "VCPU", 1), claim("a", "VCPU", 2)], &caps);
        assert!(matches!(summed, Err(ClaimError::CapacityExceeded { .. })));
        let no_class = check_claims(&[claim("a", "DISK_GB", 1)], &caps);
        assert!(matches!(no_class, Err(ClaimError::NoInventory { .. })));
        let no_provider = check_claims(&[claim("b", "VCPU", 1)], &caps);
        assert!(matches!(no_provider, Err(ClaimError::NoInventory { .. })));
    }

    #[test]
    fn unit_constraints() {
        let mut caps = BTreeMap::new();
        let mut c = cap(100, 0);
        c.min_unit = 2;
        c.max_unit = 10;
        c.step_size = 2;
        caps.insert(("a".to_string(), "X".to_string()), c);
        for (amount, fits) in [(1, false), (2, true), (3, false), (10, true), (12, false)] {
            let result = check_claims(&[claim("a", "X", amount)], &caps);
            assert_eq!(result.is_ok(), fits, "amount {amount}");
        }
    }

    #[test]
    fn ratio_and_reserved() {
        let mut caps = BTreeMap::new();
        let mut c = cap(4, 0);
        c.reserved = 1;
        c.allocation_ratio = 2.0;
        c.max_unit = 100;
        caps.insert(("a".to_string(), "X".to_string()), c);
        assert!(check_claims(&[claim("a", "X", 6)], &caps).is_ok());
        assert!(check_claims(&[claim("a", "X", 7)], &caps).is_err());
    }

    #[test]
    fn shrinking_an_overage_is_allowed() {
        let mut caps = BTreeMap::new();
        let mut c = cap(2, 0);
        c.previous_used = 4;
        c.max_unit = 10;
        caps.insert(("a".to_string(), "X".to_string()), c);
        assert!(check_claims(&[claim("a", "X", 3)], &caps).is_ok());
        assert!(check_claims(&[claim("a", "X", 5)], &caps).is_err());
    }
}
