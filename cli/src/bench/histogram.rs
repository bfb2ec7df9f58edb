//! A latency histogram with bounded memory: exact below 64 ns, then 32 buckets per
//! power of two (about 3% resolution), so millions of samples cost 15 KiB.

use std::time::Duration;

/// Sub-buckets per power of two, as a bit count.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this are their own bucket.
const EXACT_MAX: u64 = SUB * 2;
/// Buckets needed to cover every `u64`.
const BUCKETS: usize = ((64 - SUB_BITS + 1) as usize) * SUB as usize;

/// Counts of nanosecond samples.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new()
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < EXACT_MAX {
        return ns as usize;
    }
    let top = 63 - ns.leading_zeros();
    let shift = top - SUB_BITS;
    let mantissa = (ns >> shift) & (SUB - 1);
    ((u64::from(shift) + 1) * SUB + mantissa) as usize
}

/// The smallest value that falls in `bucket` (saturating past the last bucket).
fn bucket_low(bucket: usize) -> u64 {
    let b = bucket as u64;
    if b < EXACT_MAX {
        return b;
    }
    let shift = b / SUB - 1;
    let low = u128::from(SUB + b % SUB) << shift;
    u64::try_from(low).unwrap_or(u64::MAX)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    /// Adds one sample.
    pub fn record(&mut self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds one sample in nanoseconds.
    pub fn record_ns(&mut self, ns: u64) {
        if let Some(c) = self.counts.get_mut(bucket_of(ns)) {
            *c += 1;
            self.total += 1;
        }
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The value at quantile `q` (0..=1) in nanoseconds, as its bucket's midpoint;
    /// `None` when empty.
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let low = bucket_low(bucket);
                let high = bucket_low(bucket + 1);
                return Some(low + (high - low) / 2);
            }
        }
        None
    }

    /// Quantile `q` in microseconds.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        self.quantile_ns(q).map(|ns| ns as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        for b in 0..BUCKETS - 1 {
            assert!(bucket_low(b) < bucket_low(b + 1), "bucket {b}");
            assert_eq!(bucket_of(bucket_low(b)), b);
            assert_eq!(bucket_of(bucket_low(b + 1) - 1), b);
        }
        assert_eq!(bucket_of(bucket_low(BUCKETS - 1)), BUCKETS - 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_resolution() {
        let mut h = Histogram::new();
        for ns in 1..=10_000u64 {
            h.record_ns(ns * 1000);
        }
        let p50 = h.quantile_ns(0.5).unwrap() as f64;
        let p99 = h.quantile_ns(0.99).unwrap() as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.04, "{p50}");
        assert!((p99 / 9_900_000.0 - 1.0).abs() < 0.04, "{p99}");
        assert_eq!(Histogram::new().quantile_ns(0.5), None);
    }
}
