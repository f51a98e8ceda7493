//! The simulator's only source of randomness: splitmix64-based hashing of
//! (ticker seed, date, minute, purpose) into integers, uniforms and normals, plus a
//! small sequential generator for building the reference world.

/// One splitmix64 step: a bijective, well-mixed 64-bit hash.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes two values into one (order matters).
pub fn mix(a: u64, b: u64) -> u64 {
    splitmix64(a ^ splitmix64(b).rotate_left(17))
}

/// Hashes three values into one.
pub fn mix3(a: u64, b: u64, c: u64) -> u64 {
    mix(mix(a, b), c)
}

/// A stable 64-bit hash of a string (FNV-1a, then splitmix64 to spread the bits).
pub fn hash_str(s: &str) -> u64 {
    let fnv = s.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    splitmix64(fnv)
}

/// A uniform value in [0, 1) from the top 53 bits of `h`.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1_u64 << 53) as f64
}

/// A uniform value in (0, 1], safe to take the logarithm of.
pub fn unit_open(h: u64) -> f64 {
    ((h >> 11) + 1) as f64 / (1_u64 << 53) as f64
}

/// An approximately standard-normal value (Irwin–Hall of four 16-bit uniforms),
/// bounded to about ±3.5.
pub fn normal(h: u64) -> f64 {
    let sum = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48);
    (sum as f64 / 65_536.0 - 2.0) * 3.0_f64.sqrt()
}

/// An exponential value with mean 1.
pub fn exponential(h: u64) -> f64 {
    -unit_open(h).ln()
}

/// A uniform integer in `lo..=hi` (requires `lo <= hi`).
pub fn range_u64(h: u64, lo: u64, hi: u64) -> u64 {
    lo + h % (hi - lo + 1)
}

/// A deterministic sequence of hashes, for building the world step by step.
#[derive(Clone, Debug)]
pub struct Stream {
    state: u64,
}

impl Stream {
    /// A stream that starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Stream { state: seed }
    }

    /// The next 64-bit hash.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.state)
    }

    /// The next uniform value in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// The next uniform integer in `lo..=hi`.
    pub fn next_range(&mut self, lo: u64, hi: u64) -> u64 {
        range_u64(self.next_u64(), lo, hi)
    }

    /// An element of `items`. Invariant: callers pass non-empty constant tables.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next_u64() as usize % items.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniforms_and_normals_are_in_range() {
        let mut s = Stream::new(7);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let h = s.next_u64();
            assert!((0.0..1.0).contains(&unit(h)));
            assert!(unit_open(h) > 0.0 && unit_open(h) <= 1.0);
            let z = normal(h);
            assert!(z.abs() < 3.5);
            sum += z;
        }
        assert!((sum / 10_000.0).abs() < 0.05);
    }

    #[test]
    fn string_hash_is_stable_and_case_sensitive() {
        assert_eq!(hash_str("AAPL"), hash_str("AAPL"));
        assert_ne!(hash_str("KIMPL"), hash_str("KIMpL"));
    }
}
