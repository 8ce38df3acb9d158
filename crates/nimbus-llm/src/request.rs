//! Requests: what arrives, and what the engine tracks of each.

use nimbus_sim::{SimDuration, SimTime};

/// A request class and its service-level objectives.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSpec {
    /// Name in reports (`interactive`, `batch`).
    pub name: String,
    /// Time-to-first-token target, s.
    pub ttft_s: Option<f64>,
    /// Mean time-between-tokens target, ms.
    pub tbt_ms: Option<f64>,
    /// End-to-end completion deadline, s after arrival.
    pub deadline_s: Option<f64>,
}

impl ClassSpec {
    /// The time by which a request of this class should be done with what
    /// its tightest objective constrains: the deadline, else the TTFT
    /// target (used for EDF ordering).
    pub fn due(&self, arrival: SimTime) -> SimTime {
        match self.deadline_s.or(self.ttft_s) {
            Some(s) => arrival + SimDuration::from_secs_f64(s),
            None => SimTime::MAX,
        }
    }
}

/// A request as the workload defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSpec {
    /// Arrival time.
    pub arrival: SimTime,
    /// Prompt tokens.
    pub prompt: u32,
    /// Output tokens to generate (at least 1).
    pub output: u32,
    /// Index of the target model in the run's model list.
    pub model: u16,
    /// Index of the class.
    pub class: u16,
    /// Which deployment (instance) of its model it is for; 0 unless a
    /// scenario runs several instances of one model (MoEsaic).
    pub instance: u16,
}

/// Index of a request in the run.
pub type ReqId = u32;

/// What the engine tracks of a request.
#[derive(Debug, Clone)]
pub struct RequestState {
    /// Its definition.
    pub spec: RequestSpec,
    /// Due time for EDF (`SimTime::MAX` without objectives).
    pub due: SimTime,
    /// Tokens whose KV is in GPU memory (or host memory when swapped).
    pub computed: u32,
    /// Output tokens produced.
    pub generated: u32,
    /// KV blocks held on the replica.
    pub blocks: u32,
    /// Replica it was last placed on.
    pub replica: Option<u32>,
    /// First admission into a batch.
    pub scheduled: Option<SimTime>,
    /// First output token.
    pub first_token: Option<SimTime>,
    /// Latest output token.
    pub last_token: SimTime,
    /// Completion.
    pub completion: Option<SimTime>,
    /// Gaps between consecutive tokens, run-length encoded: (ns, count).
    pub gaps: Vec<(u64, u32)>,
    /// Times preempted by recomputation.
    pub preemptions: u32,
    /// Times swapped out to host memory.
    pub swaps: u32,
    /// Why it was not served, if so (`too long`, `no replica`).
    pub rejected: Option<&'static str>,
}

impl RequestState {
    /// A fresh request.
    pub fn new(spec: RequestSpec, due: SimTime) -> Self {
        RequestState {
            spec,
            due,
            computed: 0,
            generated: 0,
            blocks: 0,
            replica: None,
            scheduled: None,
            first_token: None,
            last_token: spec.arrival,
            completion: None,
            gaps: Vec::new(),
            preemptions: 0,
            swaps: 0,
            rejected: None,
        }
    }

    /// Tokens that must have KV before the next token can be produced by a
    /// prefill: the prompt and every token generated so far.
    pub fn prefill_target(&self) -> u32 {
        self.spec.prompt + self.generated
    }

    /// Whether it still needs (part of) a prefill. A decode step processes
    /// the one token without KV (the latest generated, or the prompt's last
    /// after a chunk ending there) and produces the next.
    pub fn in_prefill(&self) -> bool {
        self.computed + 1 < self.prefill_target()
    }

    /// Whether every output token was produced.
    pub fn is_done(&self) -> bool {
        self.generated >= self.spec.output
    }

    /// Records an output token at `now`.
    pub fn record_token(&mut self, now: SimTime) {
        if self.first_token.is_none() {
            self.first_token = Some(now);
        } else {
            let gap = now.since(self.last_token).as_nanos();
            match self.gaps.last_mut() {
                Some((g, n)) if *g == gap => *n += 1,
                _ => self.gaps.push((gap, 1)),
            }
        }
        self.last_token = now;
    }

    /// Mean gap between tokens, s (0 with fewer than two tokens).
    pub fn tbt_mean_s(&self) -> f64 {
        let (sum, n) = self.gaps.iter().fold((0.0, 0u64), |(s, c), &(g, k)| (s + g as f64 * k as f64, c + k as u64));
        if n == 0 { 0.0 } else { sum / n as f64 / 1e9 }
    }

    /// A quantile of the gaps between tokens, s (0 with fewer than two
    /// tokens).
    pub fn tbt_quantile_s(&self, q: f64) -> f64 {
        let mut runs = self.gaps.clone();
        runs.sort_unstable();
        let total: u64 = runs.iter().map(|r| r.1 as u64).sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (gap, n) in runs {
            seen += n as u64;
            if seen >= rank {
                return gap as f64 / 1e9;
            }
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_gaps_are_run_length_encoded() {
        let spec = RequestSpec { arrival: SimTime::ZERO, prompt: 10, output: 5, model: 0, class: 0, instance: 0 };
        let mut r = RequestState::new(spec, SimTime::MAX);
        for ms in [100, 110, 120, 130, 150] {
            r.record_token(SimTime::ZERO + SimDuration::from_nanos(ms * 1_000_000));
        }
        assert_eq!(r.first_token, Some(SimTime::ZERO + SimDuration::from_nanos(100_000_000)));
        assert_eq!(r.gaps, vec![(10_000_000, 3), (20_000_000, 1)]);
        assert!((r.tbt_mean_s() - 0.0125).abs() < 1e-12);
        assert!((r.tbt_quantile_s(0.5) - 0.010).abs() < 1e-12);
        assert!((r.tbt_quantile_s(0.99) - 0.020).abs() < 1e-12);
    }

    #[test]
    fn prefill_target_includes_generated_tokens_after_preemption() {
        let spec = RequestSpec { arrival: SimTime::ZERO, prompt: 10, output: 5, model: 0, class: 0, instance: 0 };
        let mut r = RequestState::new(spec, SimTime::MAX);
        assert!(r.in_prefill());
        r.computed = 10;
        r.generated = 1;
        assert!(!r.in_prefill());
        assert_eq!(r.prefill_target(), 11);
        // Preempted by recomputation: the prompt and the generated token again.
        r.computed = 0;
        assert_eq!(r.prefill_target(), 11);
    }
}
