//! Seeded randomness that does not depend on threads.
//!
//! Every random quantity is drawn from a stream keyed by *what* it is for
//! (the seed, a purpose tag, an entity index, a day...), never by which thread
//! computes it, so the output is the same for any thread count. [`mix`] hashes
//! such keys (SplitMix64 finaliser); [`Rng`] is a small fast generator
//! (wyrand) seeded from a key. Not cryptographic; statistically fine for
//! simulation.

/// Mixes a 64-bit value (SplitMix64 finaliser): a cheap, well-distributed hash.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a key made of several parts.
#[inline]
pub fn key(parts: &[u64]) -> u64 {
    parts.iter().fold(0x243F_6A88_85A3_08D3, |h, &p| mix(h ^ mix(p)))
}

/// A uniform `[0, 1)` value from a hash.
#[inline]
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A small, fast, seedable generator (wyrand).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for the stream named by `parts`.
    pub fn new(parts: &[u64]) -> Rng {
        Rng(key(parts))
    }

    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xA076_1D64_78BD_642F);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xE703_7ED1_A0B4_28DB);
        ((t >> 64) ^ t) as u64
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn f64(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// Uniform integer in `[0, n)` (`n > 0`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[a, b)`.
    #[inline]
    pub fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.f64()
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Exponential with the given mean.
    #[inline]
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Standard normal (Box–Muller, one value per call).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with the given median and log-sd: heavy-tailed durations.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Poisson with the given mean (inversion for small means, a rounded
    /// normal approximation above 30).
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 30.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let mut p = (-mean).exp();
        let mut cdf = p;
        let u = self.f64();
        let mut k = 0u64;
        while u > cdf && k < 200 {
            k += 1;
            p *= mean / k as f64;
            cdf += p;
        }
        k
    }

    /// An index drawn in proportion to `cum` (cumulative weights, last = total).
    pub fn weighted(&mut self, cum: &[f64]) -> usize {
        pick_cumulative(cum, self.f64())
    }
}

/// The index `i` with `cum[i-1] <= u * total < cum[i]`.
pub fn pick_cumulative(cum: &[f64], u: f64) -> usize {
    let total = *cum.last().expect("non-empty weights");
    let x = u * total;
    cum.partition_point(|&c| c <= x).min(cum.len() - 1)
}

/// Cumulative sums of weights.
pub fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .into_iter()
        .map(|w| {
            acc += w.max(0.0);
            acc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_mean() {
        let mut r = Rng::new(&[1]);
        let n = 20_000;
        let s: u64 = (0..n).map(|_| r.poisson(2.5)).sum();
        let m = s as f64 / n as f64;
        assert!((m - 2.5).abs() < 0.05, "{m}");
    }

    #[test]
    fn weighted_pick() {
        let cum = cumulative([1.0, 0.0, 3.0]);
        assert_eq!(pick_cumulative(&cum, 0.1), 0);
        assert_eq!(pick_cumulative(&cum, 0.5), 2);
        assert_eq!(pick_cumulative(&cum, 0.999), 2);
    }
}
