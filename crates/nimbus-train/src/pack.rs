//! Pack (SoCC'24, "Pack: Towards Communication-Efficient Homomorphic
//! Encryption in Federated Learning"): federated averaging whose updates
//! the server sums under CKKS ([`crate::ckks`]), with several quantised
//! updates packed into each slot.
//!
//! **Mechanism** (inferred from the abstract, as mechanisms.md notes):
//! - **Weight filtering**: each client reports the 99.9th percentile of its
//!   update's magnitudes (one plaintext number per round); the server's
//!   clip `c` is their maximum; entries beyond `±c` are clipped.
//! - **Quantisation**: an entry becomes `round((x + c) / 2c · (2^b − 1))`
//!   with stochastic rounding (unbiased), `b` bits.
//! - **Packing with guard bits**: `k` lanes of `b + g` bits share a slot,
//!   `g = ⌈log₂ K⌉` for `K` clients, so the sum of `K` lanes never carries
//!   into the next (property test); `k` is the most lanes that fit below
//!   the modulus at the encoding scale.
//! - **Error correction**: the decrypted slot is rounded to the nearest
//!   integer before unpacking, which removes CKKS's approximation noise
//!   (the scale keeps the noise far below ½).
//!
//! **Baselines**: plaintext FedAvg (FP32 updates, no encryption) and
//! vanilla CKKS (one FP64 value per slot at scale 2^40, about 17× the
//! plaintext bytes at N = 8,192).
//!
//! Clients share the secret key and the server only adds ciphertexts, as
//! in BatchCrypt-style HE federated learning.

use nimbus_nn::data::{Dataset, Split};
use nimbus_nn::net::{Arch, Network};
use nimbus_nn::optim::Sgd;
use nimbus_nn::parallel::{Trainer, mean};
use nimbus_nn::{NnError, Tensors};
use nimbus_sim::rng::{RngStreams, SimRng};

use crate::ckks::{Ciphertext, Ckks, Keys};

/// How the server aggregates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    /// Plaintext FP32 updates.
    Plaintext,
    /// One value per CKKS slot.
    Ckks,
    /// Pack's quantised lanes, `bits` bits each.
    Pack {
        /// Quantisation bits per entry.
        bits: u32,
    },
}

/// Scale of vanilla CKKS values.
const VANILLA_SCALE: f64 = (1u64 << 40) as f64;
/// Scale of Pack's integer slots: noise after summing stays below 2^-5.
const PACK_SCALE_BITS: u32 = 22;

/// A federated run's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FlSpec {
    /// The network.
    pub arch: Arch,
    /// Clients (all take part in every round).
    pub clients: usize,
    /// Rounds.
    pub rounds: u32,
    /// Local epochs per round.
    pub local_epochs: u32,
    /// Local batch.
    pub batch: usize,
    /// Local learning rate (plain SGD).
    pub lr: f32,
    /// Label-skewed shards (two per client) instead of an i.i.d. split.
    pub non_iid: bool,
    /// CKKS ring degree.
    pub ring: usize,
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct FlResult {
    /// Test accuracy after each round.
    pub accuracy_by_round: Vec<f64>,
    /// Bytes each client uploads per round.
    pub upload_bytes: u64,
    /// Ciphertexts each client uploads per round (0 in plaintext).
    pub ciphertexts: u64,
    /// Lanes per slot (1 for vanilla CKKS).
    pub lanes: u32,
    /// Fraction of entries clipped by the filter.
    pub clipped: f64,
    /// Slots whose rounding corrected more than ¼ (noise near the limit).
    pub noisy_slots: u64,
}

impl FlResult {
    /// Final test accuracy.
    pub fn accuracy(&self) -> f64 {
        self.accuracy_by_round.last().copied().unwrap_or(0.0)
    }
}

/// Splits the training set over `clients`: i.i.d. (a seeded shuffle) or
/// McMahan et al.'s pathological non-i.i.d. split (sorted by label, cut
/// into `2 × clients` shards, two shards per client at random).
pub fn partition(train: &Dataset, clients: usize, non_iid: bool, rng: &mut SimRng) -> Vec<Dataset> {
    let mut order: Vec<usize> = (0..train.len()).collect();
    if non_iid {
        order.sort_by_key(|&i| (train.labels[i], i));
        let shards = 2 * clients;
        let size = train.len() / shards;
        let mut ids: Vec<usize> = (0..shards).collect();
        rng.shuffle(&mut ids);
        (0..clients)
            .map(|c| {
                let mut idx = Vec::with_capacity(2 * size);
                for &s in &ids[2 * c..2 * c + 2] {
                    idx.extend_from_slice(&order[s * size..(s + 1) * size]);
                }
                train.select(&idx)
            })
            .collect()
    } else {
        rng.shuffle(&mut order);
        let size = train.len() / clients;
        (0..clients).map(|c| train.select(&order[c * size..(c + 1) * size])).collect()
    }
}

/// Lane layout for `clients` clients and `bits`-bit entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lanes {
    /// Bits per lane (`bits + guard`).
    pub width: u32,
    /// Lanes per slot.
    pub per_slot: u32,
}

/// The layout: guard bits `⌈log₂ clients⌉`, and as many lanes as fit in
/// `usable` bits of slot integer.
pub fn lanes(bits: u32, clients: usize, usable: u32) -> Lanes {
    let guard = usize::BITS - (clients.max(1) - 1).leading_zeros();
    let width = bits + guard;
    Lanes { width, per_slot: (usable / width).max(1) }
}

/// Packs lane values (each below `2^width`) into slot integers.
pub fn pack(values: &[u64], l: Lanes) -> Vec<u64> {
    values.chunks(l.per_slot as usize).map(|c| c.iter().rev().fold(0u64, |acc, &v| (acc << l.width) | v)).collect()
}

/// Unpacks `count` lane values from slot integers.
pub fn unpack(slots: &[u64], l: Lanes, count: usize) -> Vec<u64> {
    let mask = (1u64 << l.width) - 1;
    let mut out = Vec::with_capacity(count);
    for &s in slots {
        for j in 0..l.per_slot {
            if out.len() == count {
                break;
            }
            out.push((s >> (l.width * j)) & mask);
        }
    }
    out
}

fn flatten(t: &[Vec<f32>]) -> Vec<f32> {
    t.iter().flatten().copied().collect()
}

fn unflatten(flat: &[f32], like: &[Vec<f32>]) -> Tensors {
    let mut at = 0;
    like.iter()
        .map(|t| {
            let v = flat[at..at + t.len()].to_vec();
            at += t.len();
            v
        })
        .collect()
}

/// The server's aggregate of the clients' flat updates: the mean update,
/// with what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The mean update.
    pub mean: Vec<f32>,
    /// Bytes each client uploaded.
    pub upload_bytes: u64,
    /// Ciphertexts each client uploaded.
    pub ciphertexts: u64,
    /// Lanes per slot.
    pub lanes: u32,
    /// Entries clipped.
    pub clipped: u64,
    /// Slots whose rounding corrected more than ¼.
    pub noisy: u64,
}

/// One round's aggregation of `updates` (one flat vector per client) under
/// `agg`: clients encode and encrypt, the server sums, a client decrypts.
pub fn aggregate(updates: &[Vec<f32>], agg: Aggregation, ckks: &Ckks, keys: &Keys, rng: &mut SimRng) -> Aggregate {
    let k = updates.len();
    let p = updates[0].len();
    match agg {
        Aggregation::Plaintext => {
            let mut mean = vec![0f32; p];
            for u in updates {
                for (m, x) in mean.iter_mut().zip(u) {
                    *m += x;
                }
            }
            mean.iter_mut().for_each(|m| *m /= k as f32);
            Aggregate { mean, upload_bytes: 4 * p as u64, ciphertexts: 0, lanes: 0, clipped: 0, noisy: 0 }
        }
        Aggregation::Ckks => {
            let slots = ckks.slots();
            let mut sums: Vec<Ciphertext> = Vec::new();
            for u in updates {
                for (c, chunk) in u.chunks(slots).enumerate() {
                    let values: Vec<f64> = chunk.iter().map(|&x| f64::from(x)).collect();
                    let ct = ckks.encrypt(keys, &ckks.encode(&values, VANILLA_SCALE), rng);
                    match sums.get_mut(c) {
                        Some(sum) => ckks.add_assign(sum, &ct),
                        None => sums.push(ct),
                    }
                }
            }
            let mut mean = Vec::with_capacity(p);
            for sum in &sums {
                let decoded = ckks.decode(&ckks.decrypt(keys, sum), VANILLA_SCALE);
                mean.extend(decoded.iter().take(p - mean.len()).map(|&x| (x / k as f64) as f32));
            }
            let n = sums.len() as u64;
            Aggregate {
                mean,
                upload_bytes: n * ckks.ciphertext_bytes(),
                ciphertexts: n,
                lanes: 1,
                clipped: 0,
                noisy: 0,
            }
        }
        Aggregation::Pack { bits } => {
            // Weight filtering: the clip is the largest client 99.9th percentile.
            let clip = updates
                .iter()
                .map(|u| {
                    let mut mags: Vec<f32> = u.iter().map(|x| x.abs()).collect();
                    let at = ((mags.len() as f64 * 0.999) as usize).min(mags.len() - 1);
                    *mags.select_nth_unstable_by(at, f32::total_cmp).1
                })
                .fold(0f32, f32::max)
                .max(f32::MIN_POSITIVE);
            let usable = 58 - PACK_SCALE_BITS;
            let l = lanes(bits, k, usable);
            let top = f64::from((1u32 << bits) - 1);
            let slots = ckks.slots();
            let scale = f64::from(1u32 << PACK_SCALE_BITS);
            let mut sums: Vec<Ciphertext> = Vec::new();
            let mut clipped = 0u64;
            for u in updates {
                let q: Vec<u64> = u
                    .iter()
                    .map(|&x| {
                        clipped += u64::from(x.abs() > clip);
                        let unit = (f64::from(x.clamp(-clip, clip)) + f64::from(clip)) / (2.0 * f64::from(clip)) * top;
                        let low = unit.floor();
                        (low + f64::from(u8::from(rng.uniform() < unit - low))).min(top) as u64
                    })
                    .collect();
                let packed = pack(&q, l);
                for (c, chunk) in packed.chunks(slots).enumerate() {
                    let values: Vec<f64> = chunk.iter().map(|&v| v as f64).collect();
                    let ct = ckks.encrypt(keys, &ckks.encode(&values, scale), rng);
                    match sums.get_mut(c) {
                        Some(sum) => ckks.add_assign(sum, &ct),
                        None => sums.push(ct),
                    }
                }
            }
            let mut slot_sums = Vec::new();
            let mut noisy = 0;
            for sum in &sums {
                for v in ckks.decode(&ckks.decrypt(keys, sum), scale) {
                    // Error correction: the nearest integer.
                    let r = v.round();
                    noisy += u64::from((v - r).abs() > 0.25);
                    slot_sums.push(r.max(0.0) as u64);
                }
            }
            let lane_sums = unpack(&slot_sums, l, p);
            let mean = lane_sums
                .iter()
                .map(|&s| ((s as f64 / k as f64) / top * 2.0 * f64::from(clip) - f64::from(clip)) as f32)
                .collect();
            let n = sums.len() as u64;
            Aggregate {
                mean,
                upload_bytes: n * ckks.ciphertext_bytes(),
                ciphertexts: n,
                lanes: l.per_slot,
                clipped,
                noisy,
            }
        }
    }
}

/// Federated averaging over `spec.clients` clients for `spec.rounds`
/// rounds with aggregation `agg`.
pub fn run(
    split: &Split,
    spec: &FlSpec,
    agg: Aggregation,
    seed: u64,
    progress: &mut dyn FnMut(f64),
) -> Result<FlResult, NnError> {
    if spec.clients == 0 || split.train.len() < 2 * spec.clients * spec.batch.max(1) {
        return Err(NnError::Invalid(format!(
            "{} training images are too few for {} clients with local batches of {}",
            split.train.len(),
            spec.clients,
            spec.batch
        )));
    }
    let streams = RngStreams::new(seed);
    let mut rng = streams.stream("fl/partition");
    let shards = partition(&split.train, spec.clients, spec.non_iid, &mut rng);
    let ckks = Ckks::new(spec.ring).map_err(NnError::Invalid)?;
    let mut key_rng = streams.stream("fl/keys");
    let keys = ckks.keygen(&mut key_rng);
    let mut enc_rng = streams.stream("fl/encryption");
    let mut net = Network::new(&spec.arch, split.train.rows, seed)?;
    let mut global = net.values()?;
    let mut result = FlResult {
        accuracy_by_round: Vec::new(),
        upload_bytes: 0,
        ciphertexts: 0,
        lanes: 0,
        clipped: 0.0,
        noisy_slots: 0,
    };
    let mut clipped = 0u64;
    for round in 0..spec.rounds {
        let mut updates = Vec::with_capacity(spec.clients);
        for (c, shard) in shards.iter().enumerate() {
            net.set_values(&global)?;
            let mut opt = Sgd::new(&net, spec.lr, 0.0);
            let mut trainer = Trainer::new(1, spec.batch, seed ^ ((u64::from(round) << 16) | c as u64))?;
            for _ in 0..spec.local_epochs {
                trainer.epoch(&mut net, &mut opt, shard, &mut |_, g| Ok(mean(g)))?;
            }
            let local = net.values()?;
            let delta: Vec<f32> = flatten(&local).iter().zip(flatten(&global)).map(|(a, b)| a - b).collect();
            updates.push(delta);
        }
        let a = aggregate(&updates, agg, &ckks, &keys, &mut enc_rng);
        let mut flat = flatten(&global);
        for (w, d) in flat.iter_mut().zip(&a.mean) {
            *w += d;
        }
        global = unflatten(&flat, &global);
        net.set_values(&global)?;
        result.accuracy_by_round.push(net.evaluate(&split.test)?.accuracy);
        result.upload_bytes = a.upload_bytes;
        result.ciphertexts = a.ciphertexts;
        result.lanes = a.lanes;
        result.noisy_slots += a.noisy;
        clipped += a.clipped;
        progress(f64::from(round + 1) / f64::from(spec.rounds));
    }
    let entries = (net.parameter_count() * spec.clients) as f64 * f64::from(spec.rounds);
    result.clipped = clipped as f64 / entries.max(1.0);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_nn::data::synthetic;
    use proptest::prelude::*;

    proptest! {
        /// Summing K clients' packed lanes slot by slot never carries into
        /// the next lane: unpacking the slot sums gives the lane sums.
        #[test]
        fn lane_sums_never_overflow(bits in 1u32..12, clients in 1usize..40, seed in any::<u64>()) {
            let l = lanes(bits, clients, 36);
            let top = (1u64 << bits) - 1;
            let mut rng = RngStreams::new(seed).stream("lanes");
            let n = 50usize;
            let values: Vec<Vec<u64>> = (0..clients).map(|_| (0..n).map(|_| if rng.uniform() < 0.3 { top } else { rng.below(top + 1) }).collect()).collect();
            let mut slot_sums = vec![0u64; n.div_ceil(l.per_slot as usize)];
            for v in &values {
                for (s, p) in slot_sums.iter_mut().zip(pack(v, l)) {
                    *s += p;
                }
            }
            prop_assert!(u64::from(l.width * l.per_slot) <= 36 || l.per_slot == 1);
            let got = unpack(&slot_sums, l, n);
            for i in 0..n {
                prop_assert_eq!(got[i], values.iter().map(|v| v[i]).sum::<u64>());
            }
        }
    }

    #[test]
    fn lane_layout_by_hand() {
        // 8 bits + 4 guard bits for 10 clients: three 12-bit lanes in 36 bits.
        assert_eq!(lanes(8, 10, 36), Lanes { width: 12, per_slot: 3 });
        assert_eq!(lanes(8, 16, 36), Lanes { width: 12, per_slot: 3 });
        assert_eq!(lanes(8, 17, 36), Lanes { width: 13, per_slot: 2 });
        assert_eq!(pack(&[1, 2, 3, 4], Lanes { width: 4, per_slot: 3 }), vec![0x321, 0x4]);
    }

    #[test]
    fn non_iid_clients_see_few_labels() {
        let train = synthetic(2_000, 0, 3).train;
        let mut rng = RngStreams::new(1).stream("p");
        // A shard of sorted labels may straddle two labels: at most four per client.
        for (non_iid, most) in [(true, 4), (false, 10)] {
            let parts = partition(&train, 10, non_iid, &mut rng);
            assert_eq!(parts.len(), 10);
            assert!(parts.iter().all(|p| p.len() == 200));
            let labels = |d: &Dataset| d.labels.iter().collect::<std::collections::BTreeSet<_>>().len();
            assert!(parts.iter().all(|p| labels(p) <= most), "{:?}", parts.iter().map(labels).collect::<Vec<_>>());
        }
    }

    /// Three rounds of each aggregation: encrypted sums equal the plaintext
    /// mean (vanilla exactly enough to give the same accuracy), Pack sends
    /// about a third of vanilla's ciphertexts and still learns.
    #[test]
    fn encrypted_fedavg_matches_plaintext() {
        let split = synthetic(2_000, 400, 4);
        let spec = FlSpec {
            arch: Arch::Mlp { hidden: vec![16] },
            clients: 10,
            rounds: 3,
            local_epochs: 1,
            batch: 20,
            lr: 0.05,
            non_iid: false,
            ring: 1024,
        };
        let run = |a| run(&split, &spec, a, 1, &mut |_| {}).expect("run");
        let plain = run(Aggregation::Plaintext);
        let ckks = run(Aggregation::Ckks);
        let packed = run(Aggregation::Pack { bits: 8 });
        assert!((ckks.accuracy() - plain.accuracy()).abs() < 0.01, "{} vs {}", ckks.accuracy(), plain.accuracy());
        assert!(packed.accuracy() > plain.accuracy() - 0.05, "{} vs {}", packed.accuracy(), plain.accuracy());
        assert_eq!(packed.lanes, 3);
        assert!(ckks.ciphertexts >= 3 * packed.ciphertexts - 2 && packed.noisy_slots == 0);
        assert_eq!(ckks.upload_bytes, ckks.ciphertexts * 2 * 1024 * 60 / 8);
    }
}
