//! The tests' one random-number generator: xorshift64*, seeded from `CDC_TEST_SEED` or the
//! clock. The seed is printed, so a failing run can be replayed; no crate needed.

/// The seed of one test run: `CDC_TEST_SEED` if set, else the clock. Printed with `test`.
pub fn test_seed(test: &str) -> u64 {
    let seed = std::env::var("CDC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                ^ u64::from(std::process::id())
        });
    println!("{test}: seed={seed} (replay with CDC_TEST_SEED={seed})");
    seed
}

/// xorshift64*: small, fast and repeatable from its seed.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded by [`test_seed`].
    pub fn seeded(test: &str) -> Self {
        Self::from_seed(test_seed(test))
    }

    /// A generator for a sub-task, derived from a printed seed (zero would stay zero forever).
    pub fn from_seed(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..hi` (`hi` exclusive, `hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    /// True with probability `pct`%.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}
