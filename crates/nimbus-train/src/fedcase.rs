//! FedCaSe (SoCC'24, "FedCaSe: Enhancing Federated Learning with
//! Heterogeneity-aware Caching and Scheduling"): federated training whose
//! clients read their samples from slow device storage through a small
//! in-memory cache, and whose server picks each round's clients knowing
//! what their caches will save.
//!
//! **Real**: the federated training (the MLP on label-skewed MNIST shards,
//! [`crate::pack`]'s substrate), the per-sample losses that rank sample
//! importance, the caches run over each round's access order, and the
//! selection logic. **Modelled**: the clock. Each client has a compute
//! time per sample, a storage read time per sample (a cache hit reads
//! nothing) and an upload time, drawn once per seed from heavy-tailed
//! (log-normal) distributions — invented figures, stated in the scenario;
//! a round lasts as long as its slowest selected client.
//!
//! **Caches** hold `wss` × a client's samples:
//! - `importance` (FedCaSe; *inferred* details): after each round the
//!   cache keeps the samples of highest importance × frequency, where
//!   importance is the rank of the sample's training loss (higher loss,
//!   more important) and frequency counts the rounds that read it; the
//!   counts of evicted samples persist (the ghost cache), so a sample
//!   whose importance returns is re-admitted.
//! - `lru`: least recently used over the access sequence.
//!
//! **Selection** of `per_round` clients a round:
//! - `random`: FedAvg's uniform sample.
//! - `oort`: Oort's utility (Lai et al., OSDI'21), the client's sample
//!   count × root mean square of its last losses, times `(T/t)^2` when its
//!   expected round time `t` exceeds the preferred `T` (the median), with
//!   unexplored clients first and 10% of picks random.
//! - `fedcase`: Oort's utility with `t` the cache-aware expected time
//!   (the client's last hit rate applied to its reads) — the "experience"
//!   of the paper's abstract, *inferred* as utility × cache speed-up.

use nimbus_nn::NnError;
use nimbus_nn::data::Split;
use nimbus_nn::net::{Arch, Network};
use nimbus_nn::optim::Sgd;
use nimbus_nn::parallel::{Trainer, mean};
use nimbus_sim::rng::{RngStreams, SimRng};

use crate::pack::partition;

/// A client's cache policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// No cache: every read goes to storage.
    None,
    /// Least recently used.
    Lru,
    /// Importance × frequency with a ghost cache (FedCaSe).
    Importance,
}

/// How the server picks clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Uniformly at random.
    Random,
    /// Oort's utility with its duration penalty.
    Oort,
    /// Oort's utility with cache-aware durations (FedCaSe).
    CacheAware,
}

/// A run's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseSpec {
    /// The network.
    pub arch: Arch,
    /// Clients.
    pub clients: usize,
    /// Clients per round.
    pub per_round: usize,
    /// Rounds.
    pub rounds: u32,
    /// Local batch.
    pub batch: usize,
    /// Learning rate.
    pub lr: f32,
    /// Cache size as a fraction of a client's samples.
    pub wss: f64,
    /// Median compute time per sample, ms.
    pub compute_ms: f64,
    /// Median storage read per sample, ms.
    pub read_ms: f64,
    /// Median upload time per round, s.
    pub upload_s: f64,
    /// Log-normal σ of the three per-client draws.
    pub sigma: f64,
    /// Test accuracy whose first attainment is reported.
    pub target: f64,
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// (simulated seconds, test accuracy) after each round.
    pub curve: Vec<(f64, f64)>,
    /// Simulated seconds until the target accuracy (NaN if never).
    pub time_to_target_s: f64,
    /// Cache hit rate over all reads.
    pub hit_rate: f64,
    /// Distinct clients that took part.
    pub distinct_clients: usize,
}

impl CaseResult {
    /// Final test accuracy.
    pub fn accuracy(&self) -> f64 {
        self.curve.last().map_or(0.0, |c| c.1)
    }
}

/// One client's device and cache state.
struct Client {
    compute_s: f64,
    read_s: f64,
    upload_s: f64,
    cached: Vec<bool>,
    /// LRU recency (higher is more recent).
    recency: Vec<u64>,
    /// Under LRU, the cached samples by recency.
    lru: std::collections::BTreeSet<(u64, usize)>,
    frequency: Vec<u32>,
    /// Last round's hit rate (the expectation for the next).
    hit_rate: f64,
    /// Oort's statistical utility from the last participation.
    utility: Option<f64>,
}

impl Client {
    /// Reads the samples in `order` (counting each read); returns hits.
    /// Under LRU a miss is admitted, evicting the least recent entry when
    /// the cache is full.
    fn read(&mut self, order: &[usize], policy: CachePolicy, capacity: usize, clock: &mut u64) -> usize {
        let mut hits = 0;
        for &i in order {
            self.frequency[i] += 1;
            if self.cached[i] {
                hits += 1;
            }
            if policy != CachePolicy::Lru {
                continue;
            }
            *clock += 1;
            if self.cached[i] {
                self.lru.remove(&(self.recency[i], i));
            } else if capacity == 0 {
                continue;
            } else if self.lru.len() >= capacity
                && let Some((_, old)) = self.lru.pop_first()
            {
                self.cached[old] = false;
            }
            self.recency[i] = *clock;
            self.cached[i] = true;
            self.lru.insert((*clock, i));
        }
        hits
    }

    /// FedCaSe's refill after a round: the top `capacity` by importance
    /// (loss rank) × frequency.
    fn refill_by_importance(&mut self, losses: &[f32], capacity: usize) {
        let n = losses.len();
        let mut by_loss: Vec<usize> = (0..n).collect();
        by_loss.sort_by(|&a, &b| losses[a].total_cmp(&losses[b]).then(a.cmp(&b)));
        let mut rank = vec![0f64; n];
        for (r, &i) in by_loss.iter().enumerate() {
            rank[i] = (r + 1) as f64 / n as f64;
        }
        let mut score: Vec<usize> = (0..n).collect();
        score.sort_by(|&a, &b| {
            let (sa, sb) = (rank[a] * f64::from(self.frequency[a]), rank[b] * f64::from(self.frequency[b]));
            sb.total_cmp(&sa).then(a.cmp(&b))
        });
        self.cached.iter_mut().for_each(|c| *c = false);
        for &i in score.iter().take(capacity) {
            self.cached[i] = true;
        }
    }

    /// Expected round time for `samples` samples, with or without its cache.
    fn expected_s(&self, samples: usize, cache_aware: bool) -> f64 {
        let misses = if cache_aware { 1.0 - self.hit_rate } else { 1.0 };
        samples as f64 * (self.compute_s + misses * self.read_s) + self.upload_s
    }
}

/// Picks `k` clients.
fn select(clients: &[Client], sizes: &[usize], k: usize, how: Selection, rng: &mut SimRng) -> Vec<usize> {
    let n = clients.len();
    let mut all: Vec<usize> = (0..n).collect();
    if how == Selection::Random {
        rng.shuffle(&mut all);
        all.truncate(k);
        all.sort_unstable();
        return all;
    }
    let aware = how == Selection::CacheAware;
    let times: Vec<f64> = (0..n).map(|i| clients[i].expected_s(sizes[i], aware)).collect();
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let preferred = sorted[n / 2];
    let score = |i: usize| -> f64 {
        let Some(u) = clients[i].utility else { return f64::INFINITY };
        let penalty = if times[i] > preferred { (preferred / times[i]).powi(2) } else { 1.0 };
        u * penalty
    };
    let explore = (k as f64 * 0.1).ceil() as usize;
    let mut ranked: Vec<usize> = (0..n).collect();
    ranked.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
    let mut chosen: Vec<usize> = ranked[..k - explore.min(k)].to_vec();
    let mut rest: Vec<usize> = ranked[k - explore.min(k)..].to_vec();
    rng.shuffle(&mut rest);
    chosen.extend(rest.into_iter().take(explore.min(k)));
    chosen.sort_unstable();
    chosen
}

/// Federated training with caches and a selection rule.
pub fn run(
    split: &Split,
    spec: &CaseSpec,
    cache: CachePolicy,
    selection: Selection,
    seed: u64,
    progress: &mut dyn FnMut(f64),
) -> Result<CaseResult, NnError> {
    if spec.per_round == 0 || spec.per_round > spec.clients || split.train.len() < 2 * spec.clients {
        return Err(NnError::Invalid(format!(
            "{} clients per round of {} clients on {} images cannot work",
            spec.per_round,
            spec.clients,
            split.train.len()
        )));
    }
    let streams = RngStreams::new(seed);
    let shards = partition(&split.train, spec.clients, true, &mut streams.stream("fedcase/partition"));
    let mut devices = streams.stream("fedcase/devices");
    let mut clients: Vec<Client> = shards
        .iter()
        .map(|s| {
            let mut draw = |median: f64| median * devices.lognormal(0.0, spec.sigma);
            Client {
                compute_s: draw(spec.compute_ms) / 1e3,
                read_s: draw(spec.read_ms) / 1e3,
                upload_s: draw(spec.upload_s),
                cached: vec![false; s.len()],
                recency: vec![0; s.len()],
                lru: std::collections::BTreeSet::new(),
                frequency: vec![0; s.len()],
                hit_rate: 0.0,
                utility: None,
            }
        })
        .collect();
    let sizes: Vec<usize> = shards.iter().map(|s| s.len()).collect();
    let mut pick = streams.stream("fedcase/selection");
    let mut order_rng = streams.stream("fedcase/order");
    let mut net = Network::new(&spec.arch, split.train.rows, seed)?;
    let mut global = net.values()?;
    let (mut now, mut reads, mut hits, mut clock) = (0f64, 0usize, 0usize, 0u64);
    let mut curve = Vec::new();
    let mut time_to_target = f64::NAN;
    let mut seen = vec![false; spec.clients];
    for round in 0..spec.rounds {
        let chosen = select(&clients, &sizes, spec.per_round, selection, &mut pick);
        let mut updates: Vec<Vec<Vec<f32>>> = Vec::with_capacity(chosen.len());
        let mut round_s = 0f64;
        for &c in &chosen {
            seen[c] = true;
            let shard = &shards[c];
            let capacity = (spec.wss * shard.len() as f64).floor() as usize;
            let mut order: Vec<usize> = (0..shard.len()).collect();
            order_rng.shuffle(&mut order);
            let client = &mut clients[c];
            let h = client.read(&order, cache, capacity, &mut clock);
            reads += order.len();
            hits += h;
            client.hit_rate = h as f64 / order.len().max(1) as f64;
            let time =
                order.len() as f64 * client.compute_s + (order.len() - h) as f64 * client.read_s + client.upload_s;
            round_s = round_s.max(time);
            net.set_values(&global)?;
            let mut opt = Sgd::new(&net, spec.lr, 0.0);
            let batch = spec.batch.min(shard.len());
            let mut trainer = Trainer::new(1, batch, seed ^ (u64::from(round) << 20) ^ c as u64)?;
            trainer.epoch(&mut net, &mut opt, shard, &mut |_, g| Ok(mean(g)))?;
            let losses = net.sample_losses(shard)?;
            let rms = (losses.iter().map(|&l| f64::from(l) * f64::from(l)).sum::<f64>() / losses.len() as f64).sqrt();
            client.utility = Some(shard.len() as f64 * rms);
            if cache == CachePolicy::Importance {
                client.refill_by_importance(&losses, capacity);
            }
            updates.push(net.values()?);
        }
        global = mean(&updates);
        net.set_values(&global)?;
        now += round_s;
        let acc = net.evaluate(&split.test)?.accuracy;
        curve.push((now, acc));
        if time_to_target.is_nan() && acc >= spec.target {
            time_to_target = now;
        }
        progress(f64::from(round + 1) / f64::from(spec.rounds));
    }
    Ok(CaseResult {
        curve,
        time_to_target_s: time_to_target,
        hit_rate: hits as f64 / reads.max(1) as f64,
        distinct_clients: seen.iter().filter(|&&s| s).count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_nn::data::synthetic;

    fn client(n: usize) -> Client {
        Client {
            compute_s: 0.001,
            read_s: 0.01,
            upload_s: 1.0,
            cached: vec![false; n],
            recency: vec![0; n],
            lru: std::collections::BTreeSet::new(),
            frequency: vec![0; n],
            hit_rate: 0.0,
            utility: None,
        }
    }

    /// A cyclic scan larger than an LRU cache never hits; the importance
    /// cache keeps the high-loss samples and hits on them every round.
    #[test]
    fn lru_thrashes_on_scans_and_importance_keeps_its_samples() {
        let order: Vec<usize> = (0..10).collect();
        let mut lru = client(10);
        let mut clock = 0;
        assert_eq!(lru.read(&order, CachePolicy::Lru, 3, &mut clock), 0);
        assert_eq!(lru.read(&order, CachePolicy::Lru, 3, &mut clock), 0);
        let mut imp = client(10);
        imp.read(&order, CachePolicy::Importance, 3, &mut clock);
        let losses: Vec<f32> = (0..10).map(|i| i as f32).collect();
        imp.refill_by_importance(&losses, 3);
        assert_eq!(imp.cached.iter().filter(|&&c| c).count(), 3);
        assert!(imp.cached[7] && imp.cached[8] && imp.cached[9]);
        assert_eq!(imp.read(&order, CachePolicy::Importance, 3, &mut clock), 3);
    }

    #[test]
    fn oort_explores_then_prefers_useful_fast_clients() {
        let mut cs: Vec<Client> = (0..10).map(|_| client(10)).collect();
        let sizes = vec![10; 10];
        let mut rng = RngStreams::new(1).stream("s");
        // Unexplored clients come first.
        for (i, c) in cs.iter_mut().enumerate().skip(2) {
            c.utility = Some(i as f64);
        }
        let first = select(&cs, &sizes, 2, Selection::Oort, &mut rng);
        assert!(first.contains(&0) || first.contains(&1), "{first:?}");
        cs[0].utility = Some(0.0);
        cs[1].utility = Some(0.0);
        // A slow client loses to a fast one of similar utility.
        cs[9].read_s = 10.0;
        let picked = select(&cs, &sizes, 3, Selection::Oort, &mut rng);
        assert!(picked.contains(&8), "{picked:?}");
    }

    #[test]
    fn runs_learn_and_report_time_to_target() {
        let split = synthetic(2_000, 400, 6);
        let spec = CaseSpec {
            arch: Arch::Mlp { hidden: vec![16] },
            clients: 20,
            per_round: 5,
            rounds: 6,
            batch: 20,
            lr: 0.05,
            wss: 0.3,
            compute_ms: 1.0,
            read_ms: 8.0,
            upload_s: 1.0,
            sigma: 0.8,
            target: 0.3,
        };
        let a = run(&split, &spec, CachePolicy::Importance, Selection::CacheAware, 1, &mut |_| {}).expect("run");
        assert_eq!(a.curve.len(), 6);
        assert!(a.curve.windows(2).all(|w| w[1].0 > w[0].0));
        assert!(a.hit_rate > 0.0 && a.hit_rate <= 0.3 + 1e-9);
        assert!(!a.time_to_target_s.is_nan());
        let b = run(&split, &spec, CachePolicy::Importance, Selection::CacheAware, 1, &mut |_| {}).expect("again");
        assert_eq!(a, b);
    }
}
