//! CKKS (Cheon, Kim, Kim and Song, ASIACRYPT'17), the part federated
//! averaging needs: encoding real vectors into the slots of
//! `Z_q[X]/(X^N + 1)` by the canonical embedding, public-key RLWE
//! encryption, homomorphic addition, decryption and decoding.
//!
//! - One prime modulus `q ≡ 1 (mod 2N)` just below 2^60, found at set-up by
//!   a deterministic Miller–Rabin test; a negacyclic NTT multiplies
//!   polynomials. No multiplication of ciphertexts, relinearisation or
//!   rescaling: aggregation only adds.
//! - Encoding follows HEAAN's special FFT over the rotation group `5^j`:
//!   `N/2` complex slots (real parts carry the values). A property test
//!   checks that it is the canonical embedding: the product of two encoded
//!   polynomials decodes to the slot-wise product.
//! - Secret key ternary, errors rounded Gaussian (σ = 3.2), the encryption
//!   randomness ternary; all drawn from the run's seeded streams. N = 8,192
//!   with a 60-bit modulus is within the HE standard's 128-bit security
//!   bound (log q ≤ 218 at N = 8,192).
//! - A ciphertext is two polynomials of `N` coefficients below `q`, sent as
//!   60 bits each: 122,880 bytes at N = 8,192.

use nimbus_sim::rng::SimRng;

/// Parameters and precomputed tables.
#[derive(Debug, Clone)]
pub struct Ckks {
    /// Ring degree N (a power of two).
    pub n: usize,
    /// The prime modulus.
    pub q: u64,
    psi_powers: Vec<u64>,
    psi_inv_powers: Vec<u64>,
    n_inv: u64,
    /// `e^{2πik/2N}` for k in 0..=2N.
    ksi: Vec<(f64, f64)>,
    rot_group: Vec<usize>,
}

/// A plaintext or decrypted polynomial (coefficients mod q).
pub type Poly = Vec<u64>;

/// A ciphertext `(c0, c1)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ciphertext {
    /// `c0`.
    pub c0: Poly,
    /// `c1`.
    pub c1: Poly,
}

/// The keys.
#[derive(Debug, Clone)]
pub struct Keys {
    secret: Poly,
    /// `(b, a)` with `b = −a·s + e`, in NTT form.
    public: (Poly, Poly),
}

fn mul_mod(a: u64, b: u64, q: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(q)) as u64
}

fn pow_mod(mut base: u64, mut exp: u64, q: u64) -> u64 {
    let mut acc = 1u64;
    base %= q;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base, q);
        }
        base = mul_mod(base, base, q);
        exp >>= 1;
    }
    acc
}

/// Deterministic Miller–Rabin for 64-bit integers (these bases suffice
/// below 2^64).
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let (mut d, mut s) = (n - 1, 0);
    while d.is_multiple_of(2) {
        d /= 2;
        s += 1;
    }
    'witness: for a in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

fn bit_reverse(i: usize, bits: u32) -> usize {
    i.reverse_bits() >> (usize::BITS - bits)
}

/// Bits a coefficient takes on the wire.
pub const COEFF_BITS: u64 = 60;

impl Ckks {
    /// Parameters for ring degree `n` (a power of two, 16 to 65,536).
    pub fn new(n: usize) -> Result<Ckks, String> {
        if !n.is_power_of_two() || !(16..=65_536).contains(&n) {
            return Err(format!("ring degree {n}: must be a power of two from 16 to 65,536"));
        }
        let m = 2 * n as u64;
        // The largest prime below 2^60 that is 1 mod 2N.
        let mut q = ((1u64 << 60) - 1) / m * m + 1;
        while !is_prime(q) {
            q -= m;
        }
        // A primitive 2N-th root of unity: g^((q−1)/2N) with ψ^N = −1.
        let psi = (2u64..)
            .map(|g| pow_mod(g, (q - 1) / m, q))
            .find(|&psi| pow_mod(psi, n as u64, q) == q - 1)
            .ok_or("no root of unity")?;
        let psi_inv = pow_mod(psi, q - 2, q);
        let bits = n.trailing_zeros();
        let mut psi_powers = vec![0; n];
        let mut psi_inv_powers = vec![0; n];
        for i in 0..n {
            psi_powers[bit_reverse(i, bits)] = pow_mod(psi, i as u64, q);
            psi_inv_powers[bit_reverse(i, bits)] = pow_mod(psi_inv, i as u64, q);
        }
        let m2 = 2 * n;
        let ksi = (0..=m2)
            .map(|k| {
                let angle = 2.0 * std::f64::consts::PI * k as f64 / m2 as f64;
                (angle.cos(), angle.sin())
            })
            .collect();
        let mut rot_group = Vec::with_capacity(n / 2);
        let mut five = 1usize;
        for _ in 0..n / 2 {
            rot_group.push(five);
            five = five * 5 % m2;
        }
        Ok(Ckks { n, q, psi_powers, psi_inv_powers, n_inv: pow_mod(n as u64, q - 2, q), ksi, rot_group })
    }

    /// Slots per ciphertext.
    pub fn slots(&self) -> usize {
        self.n / 2
    }

    /// Bytes of one ciphertext on the wire.
    pub fn ciphertext_bytes(&self) -> u64 {
        2 * self.n as u64 * COEFF_BITS / 8
    }

    /// Forward negacyclic NTT in place (Cooley–Tukey, ψ powers in
    /// bit-reversed order).
    fn ntt(&self, a: &mut [u64]) {
        let q = self.q;
        let mut t = self.n;
        let mut m = 1;
        while m < self.n {
            t /= 2;
            for i in 0..m {
                let (j1, s) = (2 * i * t, self.psi_powers[m + i]);
                for j in j1..j1 + t {
                    let u = a[j];
                    let v = mul_mod(a[j + t], s, q);
                    a[j] = if u + v >= q { u + v - q } else { u + v };
                    a[j + t] = if u >= v { u - v } else { u + q - v };
                }
            }
            m *= 2;
        }
    }

    /// Inverse negacyclic NTT in place (Gentleman–Sande).
    fn intt(&self, a: &mut [u64]) {
        let q = self.q;
        let mut t = 1;
        let mut m = self.n;
        while m > 1 {
            let h = m / 2;
            let mut j1 = 0;
            for i in 0..h {
                let s = self.psi_inv_powers[h + i];
                for j in j1..j1 + t {
                    let u = a[j];
                    let v = a[j + t];
                    a[j] = if u + v >= q { u + v - q } else { u + v };
                    let d = if u >= v { u - v } else { u + q - v };
                    a[j + t] = mul_mod(d, s, q);
                }
                j1 += 2 * t;
            }
            t *= 2;
            m = h;
        }
        for x in a.iter_mut() {
            *x = mul_mod(*x, self.n_inv, q);
        }
    }

    /// The negacyclic product of two polynomials.
    pub fn multiply(&self, a: &[u64], b: &[u64]) -> Poly {
        let (mut fa, mut fb) = (a.to_vec(), b.to_vec());
        self.ntt(&mut fa);
        self.ntt(&mut fb);
        let mut c: Poly = fa.iter().zip(&fb).map(|(&x, &y)| mul_mod(x, y, self.q)).collect();
        self.intt(&mut c);
        c
    }

    fn signed(&self, x: i64) -> u64 {
        if x >= 0 { x as u64 % self.q } else { self.q - ((-x) as u64 % self.q) }
    }

    fn centred(&self, x: u64) -> i64 {
        if x > self.q / 2 { -((self.q - x) as i64) } else { x as i64 }
    }

    /// HEAAN's special FFT: coefficients' complex pairs to slot values.
    fn fft_special(&self, vals: &mut [(f64, f64)]) {
        let size = vals.len();
        let bits = size.trailing_zeros();
        for i in 0..size {
            let r = bit_reverse(i, bits);
            if i < r {
                vals.swap(i, r);
            }
        }
        let m = 2 * self.n;
        let mut len = 2;
        while len <= size {
            let (lenh, lenq) = (len / 2, len * 4);
            for i in (0..size).step_by(len) {
                for j in 0..lenh {
                    let idx = (self.rot_group[j] % lenq) * m / lenq;
                    let u = vals[i + j];
                    let w = self.ksi[idx];
                    let x = vals[i + j + lenh];
                    let v = (x.0 * w.0 - x.1 * w.1, x.0 * w.1 + x.1 * w.0);
                    vals[i + j] = (u.0 + v.0, u.1 + v.1);
                    vals[i + j + lenh] = (u.0 - v.0, u.1 - v.1);
                }
            }
            len *= 2;
        }
    }

    /// The inverse of [`Ckks::fft_special`].
    fn fft_special_inv(&self, vals: &mut [(f64, f64)]) {
        let size = vals.len();
        let m = 2 * self.n;
        let mut len = size;
        while len >= 2 {
            let (lenh, lenq) = (len / 2, len * 4);
            for i in (0..size).step_by(len) {
                for j in 0..lenh {
                    let idx = (lenq - self.rot_group[j] % lenq) * m / lenq;
                    let (a, b) = (vals[i + j], vals[i + j + lenh]);
                    let u = (a.0 + b.0, a.1 + b.1);
                    let d = (a.0 - b.0, a.1 - b.1);
                    let w = self.ksi[idx];
                    vals[i + j] = u;
                    vals[i + j + lenh] = (d.0 * w.0 - d.1 * w.1, d.0 * w.1 + d.1 * w.0);
                }
            }
            len /= 2;
        }
        let bits = size.trailing_zeros();
        for i in 0..size {
            let r = bit_reverse(i, bits);
            if i < r {
                vals.swap(i, r);
            }
        }
        let s = size as f64;
        for v in vals.iter_mut() {
            *v = (v.0 / s, v.1 / s);
        }
    }

    /// Encodes up to `N/2` real values at scale `scale`.
    pub fn encode(&self, values: &[f64], scale: f64) -> Poly {
        let slots = self.slots();
        let mut vals: Vec<(f64, f64)> = (0..slots).map(|i| (values.get(i).copied().unwrap_or(0.0), 0.0)).collect();
        self.fft_special_inv(&mut vals);
        let mut poly = vec![0u64; self.n];
        for (j, v) in vals.iter().enumerate() {
            poly[j] = self.signed((v.0 * scale).round() as i64);
            poly[j + slots] = self.signed((v.1 * scale).round() as i64);
        }
        poly
    }

    /// Decodes a polynomial at scale `scale` to its slots' real parts.
    pub fn decode(&self, poly: &[u64], scale: f64) -> Vec<f64> {
        let slots = self.slots();
        let mut vals: Vec<(f64, f64)> = (0..slots)
            .map(|j| (self.centred(poly[j]) as f64 / scale, self.centred(poly[j + slots]) as f64 / scale))
            .collect();
        self.fft_special(&mut vals);
        vals.into_iter().map(|v| v.0).collect()
    }

    fn ternary(&self, rng: &mut SimRng) -> Poly {
        (0..self.n).map(|_| self.signed(rng.below(3) as i64 - 1)).collect()
    }

    fn gaussian(&self, rng: &mut SimRng) -> Poly {
        (0..self.n).map(|_| self.signed(rng.normal(0.0, 3.2).round() as i64)).collect()
    }

    /// A key pair drawn from `rng`.
    pub fn keygen(&self, rng: &mut SimRng) -> Keys {
        let s = self.ternary(rng);
        let a: Poly = (0..self.n).map(|_| rng.below(self.q)).collect();
        let e = self.gaussian(rng);
        let as_ = self.multiply(&a, &s);
        let b: Poly = as_.iter().zip(&e).map(|(&x, &e)| (self.q - x + e) % self.q).collect();
        let (mut bn, mut an) = (b, a);
        self.ntt(&mut bn);
        self.ntt(&mut an);
        Keys { secret: s, public: (bn, an) }
    }

    /// Encrypts a plaintext polynomial under the public key.
    pub fn encrypt(&self, keys: &Keys, m: &[u64], rng: &mut SimRng) -> Ciphertext {
        let mut v = self.ternary(rng);
        self.ntt(&mut v);
        let (e0, e1) = (self.gaussian(rng), self.gaussian(rng));
        let mut c0: Poly = v.iter().zip(&keys.public.0).map(|(&x, &y)| mul_mod(x, y, self.q)).collect();
        let mut c1: Poly = v.iter().zip(&keys.public.1).map(|(&x, &y)| mul_mod(x, y, self.q)).collect();
        self.intt(&mut c0);
        self.intt(&mut c1);
        for ((c, e), m) in c0.iter_mut().zip(&e0).zip(m) {
            *c = (*c + e) % self.q;
            *c = (*c + m) % self.q;
        }
        for (c, e) in c1.iter_mut().zip(&e1) {
            *c = (*c + e) % self.q;
        }
        Ciphertext { c0, c1 }
    }

    /// Adds `b` into `a`.
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) {
        for (x, y) in a.c0.iter_mut().zip(&b.c0).chain(a.c1.iter_mut().zip(&b.c1)) {
            *x = (*x + y) % self.q;
        }
    }

    /// Decrypts to the plaintext polynomial (with its noise).
    pub fn decrypt(&self, keys: &Keys, ct: &Ciphertext) -> Poly {
        let c1s = self.multiply(&ct.c1, &keys.secret);
        ct.c0.iter().zip(&c1s).map(|(&a, &b)| (a + b) % self.q).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_sim::rng::RngStreams;
    use proptest::prelude::*;

    #[test]
    fn modulus_and_roots() {
        let c = Ckks::new(8192).expect("params");
        assert!(is_prime(c.q) && c.q % 16384 == 1 && c.q < 1 << 60 && c.q > 1 << 59);
        assert_eq!(c.ciphertext_bytes(), 122_880);
        assert!(!is_prime(561) && is_prime(1_000_000_007) && !is_prime((1 << 61) - 3));
        assert!(Ckks::new(1000).is_err());
    }

    /// The NTT product equals the schoolbook negacyclic product.
    #[test]
    fn ntt_multiplies_negacyclically() {
        let c = Ckks::new(16).expect("params");
        let a: Vec<u64> = (0..16).map(|i| (i * 7 + 3) as u64).collect();
        let b: Vec<u64> = (0..16).map(|i| c.signed(i as i64 - 8)).collect();
        let mut want = vec![0i128; 16];
        for i in 0..16 {
            for j in 0..16 {
                let p = i128::from(c.centred(a[i])) * i128::from(c.centred(b[j]));
                if i + j < 16 { want[i + j] += p } else { want[i + j - 16] -= p }
            }
        }
        let want: Vec<u64> = want.iter().map(|&x| c.signed(x as i64)).collect();
        assert_eq!(c.multiply(&a, &b), want);
    }

    proptest! {
        /// Encoding is the canonical embedding: decode(encode(z)) = z, and
        /// the product of two encodings decodes (at scale Δ²) to z1 · z2.
        #[test]
        fn encoding_is_the_canonical_embedding(z1 in proptest::collection::vec(-4.0f64..4.0, 32), z2 in proptest::collection::vec(-4.0f64..4.0, 32)) {
            let c = Ckks::new(64).expect("params");
            let scale = (1u64 << 20) as f64;
            let (p1, p2) = (c.encode(&z1, scale), c.encode(&z2, scale));
            for (x, y) in c.decode(&p1, scale).iter().zip(&z1) {
                prop_assert!((x - y).abs() < 1e-4, "{} vs {}", x, y);
            }
            let product = c.decode(&c.multiply(&p1, &p2), scale * scale);
            for ((x, a), b) in product.iter().zip(&z1).zip(&z2) {
                prop_assert!((x - a * b).abs() < 1e-3, "{} vs {}", x, a * b);
            }
        }
    }

    /// Encrypt, add ten ciphertexts, decrypt: the slot sums within noise.
    #[test]
    fn encrypted_sums_decrypt_to_the_sum() {
        let c = Ckks::new(1024).expect("params");
        let mut rng = RngStreams::new(1).stream("ckks");
        let keys = c.keygen(&mut rng);
        let scale = (1u64 << 30) as f64;
        let values: Vec<Vec<f64>> =
            (0..10).map(|k| (0..512).map(|i| ((i * 13 + k * 7) % 100) as f64 / 50.0 - 1.0).collect()).collect();
        let mut sum = c.encrypt(&keys, &c.encode(&values[0], scale), &mut rng);
        for v in &values[1..] {
            let ct = c.encrypt(&keys, &c.encode(v, scale), &mut rng);
            c.add_assign(&mut sum, &ct);
        }
        let got = c.decode(&c.decrypt(&keys, &sum), scale);
        for i in 0..512 {
            let want: f64 = values.iter().map(|v| v[i]).sum();
            assert!((got[i] - want).abs() < 1e-4, "slot {i}: {} vs {want}", got[i]);
        }
        // A ciphertext is not the plaintext: c0 alone decodes to noise.
        let noise = c.decode(&sum.c0, scale);
        assert!(noise.iter().zip(0..512).any(|(x, i)| (x - values.iter().map(|v| v[i]).sum::<f64>()).abs() > 1.0));
    }
}
