//! Rate limits: token buckets, one per key (a client address, a token), shared by every worker.
//!
//! A bucket holds up to `burst` tokens and refills at `per_second`; a request takes one, or is told how long
//! until one is there (the `Retry-After` of a 429). Buckets that have refilled completely carry no information
//! and are forgotten, so the table stays as small as the set of recently active keys.
//!
//! [`client_address`] says who a request comes from: the peer, or, when the peer is a trusted proxy, the
//! address it names in `X-Forwarded-For`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Rate;

/// Most keys remembered before full buckets are swept.
const SWEEP_AT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> Limiter<K> {
    pub fn new(rate: Rate) -> Limiter<K> {
        Limiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `key` at `now`: `Ok` when there was one, else how long until there will be.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(()); // a poisoned table limits nobody rather than everybody
        };
        let burst = f64::from(self.rate.burst);
        if buckets.len() >= SWEEP_AT {
            let rate = self.rate.per_second;
            buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: burst, at: now });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * self.rate.per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate.per_second;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX).max(Duration::from_secs(1)))
        }
    }
}

/// The address a request comes from: `X-Forwarded-For`'s last hop not itself a trusted proxy when the peer is
/// a trusted proxy, else the peer.
pub fn client_address(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    // Each proxy appends the address it saw: read from the right, skipping our own proxies.
    let hops: Vec<IpAddr> = header.split(',').filter_map(|h| h.trim().parse().ok()).collect();
    Some(hops.iter().rev().find(|ip| !trusted.contains(ip)).or(hops.first()).copied().unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_recovers() {
        let l = Limiter::new(Rate { per_second: 10.0 / 60.0, burst: 3 });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take(&"a", t0).is_ok());
        }
        let wait = l.take(&"a", t0).unwrap_err();
        assert!(wait >= Duration::from_secs(5) && wait <= Duration::from_secs(7), "{wait:?}");
        assert!(l.take(&"b", t0).is_ok(), "keys are separate");
        assert!(l.take(&"a", t0 + Duration::from_secs(6)).is_ok(), "a token came back");
        assert!(l.take(&"a", t0 + Duration::from_secs(6)).is_err());
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(client_address(Some(other), Some("203.0.113.7"), &[proxy]), Some(other), "spoofed header");
        assert_eq!(client_address(Some(proxy), Some("203.0.113.7"), &[proxy]), Some(client));
        assert_eq!(client_address(Some(proxy), Some("1.2.3.4, 203.0.113.7, 10.0.0.5"), &[proxy]), Some(client));
        assert_eq!(client_address(Some(proxy), Some("garbage"), &[proxy]), Some(proxy));
        assert_eq!(client_address(Some(proxy), None, &[proxy]), Some(proxy));
    }
}
