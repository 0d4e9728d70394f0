//! Per-client request rate limits: GCRA (`governor`) keyed by the client's
//! IP address.
//!
//! The key is the peer address of the TCP connection, never a header a
//! client can write (`X-Forwarded-For`). IPv6 clients are keyed by their
//! /64, the smallest block a site is usually given, so one client cannot
//! dodge its limit by rotating addresses inside its own network. A client
//! over its rate gets a 429 with `Retry-After` (whole seconds, at least 1)
//! in its service's error format.
//!
//! Loopback clients are exempt by default: everything `ferrite up` runs in
//! one process (the simulated fleet's agents use 127.x addresses) and the
//! test suites' storms talk over loopback. Tests of the limit itself turn
//! the exemption off.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;

/// A limit's settings (a `[rate_limit]` table in the services' TOML).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained requests per second one client may make; 0 turns the
    /// limit off.
    pub requests_per_second: f64,
    /// Requests a client may make at once after being idle.
    pub burst: u32,
    /// Loopback clients (127.0.0.0/8, ::1) are never limited.
    pub exempt_loopback: bool,
    /// Further clients never limited (other services of the deployment).
    pub exempt_addresses: Vec<IpAddr>,
}

impl Default for RateLimitConfig {
    fn default() -> RateLimitConfig {
        RateLimitConfig::per_client(50.0, 100)
    }
}

impl RateLimitConfig {
    /// A limit of `requests_per_second` with `burst`, loopback exempt.
    pub fn per_client(requests_per_second: f64, burst: u32) -> RateLimitConfig {
        RateLimitConfig {
            requests_per_second,
            burst,
            exempt_loopback: true,
            exempt_addresses: Vec::new(),
        }
    }

    /// No limit at all.
    pub fn off() -> RateLimitConfig {
        RateLimitConfig::per_client(0.0, 1)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.requests_per_second.is_finite() || self.requests_per_second < 0.0 {
            return Err("rate_limit requests_per_second must be a number >= 0".into());
        }
        if self.requests_per_second > 0.0 && self.burst == 0 {
            return Err("rate_limit burst must be at least 1".into());
        }
        Ok(())
    }
}

/// How long a limited client should wait, in whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

/// How many keyed states are kept before idle ones are dropped early;
/// bounds the limiter's memory when many addresses come and go.
const MAX_TRACKED_CLIENTS: usize = 65_536;
/// Idle clients' states are dropped every this many checks.
const SWEEP_EVERY: u64 = 4096;

/// One limit over all clients of a service (or of one group of routes).
pub struct RateLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    exempt_loopback: bool,
    exempt: Vec<IpAddr>,
    checks: AtomicU64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("enabled", &self.limiter.is_some())
            .field("exempt_loopback", &self.exempt_loopback)
            .finish()
    }
}

/// The key of a client: its IPv4 address, or its IPv6 /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                for segment in &mut segments[4..] {
                    *segment = 0;
                }
                IpAddr::V6(segments.into())
            }
        },
    }
}

impl RateLimiter {
    /// Builds the limiter; an invalid configuration is refused.
    pub fn new(config: &RateLimitConfig) -> Result<RateLimiter, String> {
        config.validate()?;
        let limiter = if config.requests_per_second > 0.0 {
            let period = Duration::from_secs_f64(1.0 / config.requests_per_second);
            let burst = NonZeroU32::new(config.burst).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::with_period(period)
                .ok_or("rate_limit requests_per_second is too large")?
                .allow_burst(burst);
            Some(DefaultKeyedRateLimiter::dashmap(quota))
        } else {
            None
        };
        Ok(RateLimiter {
            limiter,
            exempt_loopback: config.exempt_loopback,
            exempt: config
                .exempt_addresses
                .iter()
                .copied()
                .map(client_key)
                .collect(),
            checks: AtomicU64::new(0),
        })
    }

    /// A limiter that lets everything through.
    pub fn disabled() -> RateLimiter {
        RateLimiter {
            limiter: None,
            exempt_loopback: true,
            exempt: Vec::new(),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one request of `peer`; `Err` when it is over its rate.
    /// Requests without a peer address (not over TCP) are let through.
    pub fn check(&self, peer: Option<IpAddr>) -> Result<(), RetryAfter> {
        let (Some(limiter), Some(peer)) = (&self.limiter, peer) else {
            return Ok(());
        };
        let key = client_key(peer);
        let loopback = peer.is_loopback() || key.is_loopback();
        if (self.exempt_loopback && loopback) || self.exempt.contains(&key) {
            return Ok(());
        }
        let checks = self.checks.fetch_add(1, Ordering::Relaxed) + 1;
        if checks.is_multiple_of(SWEEP_EVERY) || limiter.len() > MAX_TRACKED_CLIENTS {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            RetryAfter(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(RetryAfter(1))
        })
    }

    /// Clients whose state is kept (for tests and metrics).
    pub fn tracked_clients(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }
}

impl PartialOrd for RetryAfter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RetryAfter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        text.parse().ok()
    }

    #[test]
    fn a_client_past_its_burst_is_told_when_to_retry() {
        let limiter = RateLimiter::new(&RateLimitConfig {
            exempt_loopback: false,
            ..RateLimitConfig::per_client(0.5, 3)
        })
        .expect("valid");
        for _ in 0..3 {
            assert_eq!(limiter.check(ip("192.0.2.1")), Ok(()));
        }
        let Err(RetryAfter(secs)) = limiter.check(ip("192.0.2.1")) else {
            panic!("the fourth request must be refused");
        };
        assert!((1..=2).contains(&secs), "{secs}");
        // Another client has its own budget.
        assert_eq!(limiter.check(ip("192.0.2.2")), Ok(()));
        // Loopback counts like anyone when not exempt.
        for _ in 0..3 {
            assert_eq!(limiter.check(ip("127.0.0.1")), Ok(()));
        }
        assert!(limiter.check(ip("127.0.0.1")).is_err());
    }

    #[test]
    fn exemptions_and_off() {
        let limiter = RateLimiter::new(&RateLimitConfig {
            exempt_addresses: vec!["192.0.2.9".parse().expect("ip")],
            ..RateLimitConfig::per_client(1.0, 1)
        })
        .expect("valid");
        for _ in 0..10 {
            assert_eq!(limiter.check(ip("127.0.0.1")), Ok(()));
            assert_eq!(limiter.check(ip("::1")), Ok(()));
            assert_eq!(limiter.check(ip("192.0.2.9")), Ok(()));
            assert_eq!(limiter.check(None), Ok(()));
        }
        let off = RateLimiter::new(&RateLimitConfig {
            exempt_loopback: false,
            ..RateLimitConfig::off()
        })
        .expect("valid");
        for _ in 0..100 {
            assert_eq!(off.check(ip("192.0.2.1")), Ok(()));
        }
        assert!(RateLimiter::new(&RateLimitConfig::per_client(-1.0, 1)).is_err());
        assert!(RateLimiter::new(&RateLimitConfig::per_client(f64::NAN, 1)).is_err());
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let limiter = RateLimiter::new(&RateLimitConfig::per_client(0.1, 1)).expect("valid");
        assert_eq!(limiter.check(ip("2001:db8:1:2::1")), Ok(()));
        assert!(limiter.check(ip("2001:db8:1:2::ffff")).is_err());
        assert_eq!(limiter.check(ip("2001:db8:1:3::1")), Ok(()));
        assert_eq!(limiter.tracked_clients(), 2);
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn a_partial_table_keeps_the_other_defaults() {
        #[derive(Deserialize)]
        struct File {
            rate_limit: RateLimitConfig,
        }
        let file: File = toml::from_str(
            "[rate_limit]\nrequests_per_second = 5\nexempt_addresses = [\"10.0.0.1\"]\n",
        )
        .expect("parses");
        assert_eq!(
            file.rate_limit,
            RateLimitConfig {
                requests_per_second: 5.0,
                burst: 100,
                exempt_loopback: true,
                exempt_addresses: vec!["10.0.0.1".parse().expect("ip")],
            }
        );
        assert!(toml::from_str::<File>("[rate_limit]\nburts = 3\n").is_err());
    }
}
