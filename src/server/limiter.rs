//! The per-tenant request rate, enforced in memory.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::ids::TenantId;
use crate::protocol::RateLimit;

/// Per-tenant token buckets, in memory: each tenant may burst up to its rate's `requests`,
/// refilled continuously at `requests / per_secs` a second. In memory because a limit that
/// costs a database write per request would cost more than it protects; a restart refills
/// every bucket, which errs on the side of the tenant.
#[derive(Debug, Default)]
pub(super) struct RateLimiter {
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: RateLimit,
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// Takes one request from the tenant's bucket at `now`, or says in how many whole seconds
    /// (at least 1) the next one will be there.
    pub(super) fn take(&self, tenant: &TenantId, rate: RateLimit, now: Instant) -> Result<(), u64> {
        let capacity = f64::from(rate.requests);
        // A panic while holding the lock leaves a bucket at worst one token off.
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = match buckets.get_mut(tenant) {
            Some(b) => b,
            None => buckets.entry(tenant.clone()).or_insert(Bucket {
                rate,
                tokens: capacity,
                at: now,
            }),
        };
        if bucket.rate != rate {
            // The operator changed the tenant's rate: what was used stays used.
            bucket.rate = rate;
            bucket.tokens = bucket.tokens.min(capacity);
        }
        // Callers race for the lock with instants read before it: never move time back.
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_second()).min(capacity);
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / rate.per_second();
            Err((wait.ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn caps() -> TenantId {
        "caps".parse().expect("slug")
    }

    #[test]
    fn a_bucket_bursts_to_its_size_then_refills_at_its_rate() {
        let limiter = RateLimiter::default();
        let rate = RateLimit::new(3, 60).expect("rate");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(&caps(), rate, t0), Ok(()));
        }
        // Empty: one request comes back every 20 s.
        assert_eq!(limiter.take(&caps(), rate, t0), Err(20));
        assert_eq!(
            limiter.take(&caps(), rate, t0 + Duration::from_secs(19)),
            Err(1),
            "never less than a second"
        );
        assert_eq!(
            limiter.take(&caps(), rate, t0 + Duration::from_secs(20)),
            Ok(())
        );
        // Other tenants have buckets of their own.
        assert_eq!(
            limiter.take(&"bolt".parse().expect("slug"), rate, t0),
            Ok(())
        );
        // A new rate keeps what was used.
        let faster = RateLimit::new(10, 1).expect("rate");
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(limiter.take(&caps(), faster, t1), Err(1));
        assert_eq!(
            limiter.take(&caps(), faster, t1 + Duration::from_millis(100)),
            Ok(())
        );
    }
}
