//! A consistent hash ring that splits nodes between the compute hosts of
//! `peers` (Nova's `hash_ring` over the live compute services).
//!
//! Every host gets [`POINTS_PER_HOST`] points on a 64-bit ring; a node
//! belongs to the host of the first point at or after the node's hash. The
//! hash is FNV-1a followed by a 64-bit avalanche step: it is fixed by this
//! file, never by the Rust version, so every host computes the same split.
//! (Upstream uses tooz's md5 ring; matching it byte for byte is not a goal,
//! since Ferrite computes never share nodes with Python ones.)

/// Virtual points per host. With 128 points the largest share of 2–10
/// hosts stays within about 15% of the mean; more points cost only memory.
pub const POINTS_PER_HOST: usize = 128;

#[derive(Debug, Clone)]
pub struct HashRing {
    /// Sorted by position.
    points: Vec<(u64, usize)>,
    hosts: Vec<String>,
}

impl HashRing {
    /// A ring over `hosts`, compared case-insensitively as Nova does.
    /// An empty list gives an empty ring: see [`HashRing::owner`].
    pub fn new<S: AsRef<str>>(hosts: &[S]) -> HashRing {
        let mut hosts: Vec<String> = hosts.iter().map(|h| h.as_ref().to_lowercase()).collect();
        hosts.sort();
        hosts.dedup();
        let mut points = Vec::with_capacity(hosts.len() * POINTS_PER_HOST);
        for (index, host) in hosts.iter().enumerate() {
            for replica in 0..POINTS_PER_HOST {
                points.push((hash(format!("{host}-{replica}").as_bytes()), index));
            }
        }
        points.sort_unstable();
        HashRing { points, hosts }
    }

    /// The host owning `key`, or `None` on an empty ring.
    pub fn owner(&self, key: &str) -> Option<&str> {
        if self.points.is_empty() {
            return None;
        }
        let position = hash(key.as_bytes());
        let index = self.points.partition_point(|(point, _)| *point < position);
        let (_, host) = self.points[index % self.points.len()];
        self.hosts.get(host).map(String::as_str)
    }

    /// Whether `host` owns `key`; every host owns everything on an empty ring.
    pub fn owned_by(&self, key: &str, host: &str) -> bool {
        match self.owner(key) {
            None => true,
            Some(owner) => owner.eq_ignore_ascii_case(host),
        }
    }
}

/// FNV-1a 64, then MurmurHash3's finaliser so that similar keys (UUIDs that
/// share prefixes, `host-1`/`host-2`) spread over the whole ring.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_ring_owns_everything() {
        let ring = HashRing::new::<&str>(&[]);
        assert_eq!(ring.owner("x"), None);
        assert!(ring.owned_by("x", "any"));
    }

    #[test]
    fn split_is_total_disjoint_and_balanced() {
        let hosts = ["compute-a", "Compute-B", "compute-c"];
        let ring = HashRing::new(&hosts);
        let mut counts = [0usize; 3];
        for i in 0..30_000u32 {
            let key = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
            let owners: Vec<usize> = hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| ring.owned_by(&key, h))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(owners.len(), 1, "{key} owned by {owners:?}");
            counts[owners[0]] += 1;
        }
        for count in counts {
            assert!((8_000..12_000).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn the_split_is_stable() {
        // The hash is part of the contract between hosts: pin it.
        assert_eq!(hash(b"node-1"), PINNED_NODE_1);
        let ring = HashRing::new(&["a", "b"]);
        let again = HashRing::new(&["B", "a", "a"]);
        for key in ["n1", "n2", "n3", "n4"] {
            assert_eq!(ring.owner(key), again.owner(key));
        }
    }

    const PINNED_NODE_1: u64 = 10_510_626_701_084_584_709;
}
