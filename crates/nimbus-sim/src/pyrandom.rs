//! A bit-exact port of CPython's `random.Random` (MT19937).
//!
//! Reference simulators written in Python (Gavel, Shockwave, Sia) draw their
//! workloads from `random.Random(seed)`. Replaying that stream exactly lets
//! Nimbus run the *same* job sequence as the reference and compare numbers
//! directly instead of only in distribution. The Mersenne Twister core comes
//! from `rand_mt`; this module reproduces CPython's seeding
//! (`init_by_array` over the seed's 32-bit words) and the exact arithmetic of
//! `random()`, `getrandbits`, `_randbelow`, `choice`, `shuffle`, `uniform`
//! and `expovariate` (CPython 3.x, `Lib/random.py` and
//! `Modules/_randommodule.c`).

use rand_mt::Mt;

/// CPython's `random.Random`, seeded from a non-negative integer.
#[derive(Clone)]
pub struct PyRandom {
    mt: Mt,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PyRandom")
    }
}

impl PyRandom {
    /// `random.Random(seed)` for a non-negative integer seed.
    pub fn new(seed: u64) -> Self {
        // CPython splits abs(seed) into 32-bit words, least significant first;
        // zero becomes the single word 0.
        let low = seed as u32;
        let high = (seed >> 32) as u32;
        let mt = if high == 0 { Mt::new_with_key([low]) } else { Mt::new_with_key([low, high]) };
        PyRandom { mt }
    }

    /// `random()`: a float in `[0, 1)` built from 53 bits of two outputs.
    pub fn random(&mut self) -> f64 {
        let a = self.mt.next_u32() >> 5;
        let b = self.mt.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `getrandbits(k)` for `1 <= k <= 32`.
    pub fn getrandbits(&mut self, k: u32) -> u32 {
        assert!((1..=32).contains(&k), "getrandbits supports 1..=32 bits here");
        self.mt.next_u32() >> (32 - k)
    }

    /// `_randbelow(n)`: uniform in `[0, n)` by rejection on `n.bit_length()` bits.
    pub fn randbelow(&mut self, n: u32) -> u32 {
        assert!(n > 0, "randbelow(0)");
        let k = 32 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// The index `choice(seq)` would pick from a sequence of length `len`.
    pub fn choice_index(&mut self, len: usize) -> usize {
        self.randbelow(u32::try_from(len).expect("sequence too long for choice")) as usize
    }

    /// `shuffle(x)` in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.randbelow(u32::try_from(i + 1).expect("sequence too long")) as usize;
            items.swap(i, j);
        }
    }

    /// `uniform(a, b)`: `a + (b - a) * random()`.
    pub fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.random()
    }

    /// `expovariate(lambd)`: `-log(1 - random()) / lambd`.
    pub fn expovariate(&mut self, lambd: f64) -> f64 {
        -(1.0 - self.random()).ln() / lambd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values printed by CPython 3.11:
    //   r = random.Random(0); [r.random() for _ in range(3)]
    //   r = random.Random(2); [r.randrange(26) for _ in range(8)]  (uses _randbelow)
    //   r = random.Random(5); x = list(range(10)); r.shuffle(x)
    //   r = random.Random(2**40 + 3); r.random()
    //   r = random.Random(3); r.expovariate(1/1800.0)
    #[test]
    fn matches_cpython_random() {
        let mut r = PyRandom::new(0);
        let got: Vec<f64> = (0..3).map(|_| r.random()).collect();
        assert_eq!(got, PY_RANDOM_SEED0);
    }

    #[test]
    fn matches_cpython_randbelow() {
        let mut r = PyRandom::new(2);
        let got: Vec<u32> = (0..8).map(|_| r.randbelow(26)).collect();
        assert_eq!(got, PY_RANDRANGE26_SEED2);
    }

    #[test]
    fn matches_cpython_shuffle() {
        let mut r = PyRandom::new(5);
        let mut x: Vec<u32> = (0..10).collect();
        r.shuffle(&mut x);
        assert_eq!(x, PY_SHUFFLE10_SEED5);
    }

    #[test]
    fn matches_cpython_large_seed_and_expovariate() {
        assert_eq!(PyRandom::new((1 << 40) + 3).random(), PY_RANDOM_SEED_2_40_PLUS_3);
        assert_eq!(PyRandom::new(3).expovariate(1.0 / 1800.0), PY_EXPO_SEED3);
    }

    const PY_RANDOM_SEED0: [f64; 3] = [0.8444218515250481, 0.7579544029403025, 0.420571580830845];
    const PY_RANDRANGE26_SEED2: [u32; 8] = [1, 2, 2, 11, 5, 23, 25, 21];
    const PY_SHUFFLE10_SEED5: [u32; 10] = [2, 3, 1, 0, 8, 7, 6, 5, 4, 9];
    const PY_RANDOM_SEED_2_40_PLUS_3: f64 = 0.21978710637116716;
    const PY_EXPO_SEED3: f64 = 489.172145820603;
}
