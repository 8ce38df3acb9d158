//! Request streams: arrivals from a trace or a synthetic process, lengths
//! from the trace, a length file or a calibrated synthetic distribution.

use std::sync::Arc;

use nimbus_sim::{SimRng, SimTime};

/// Summary statistics of a public length distribution, for synthetic
/// stand-ins (log-normal with the published mean and median).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LengthProfile {
    /// Name in scenarios.
    pub name: &'static str,
    /// Prompt tokens: (mean, median, upper clip).
    pub prompt: (f64, f64, u32),
    /// Output tokens: (mean, median, upper clip).
    pub output: (f64, f64, u32),
    /// Mean arrival rate of the trace, req/s (for synthetic arrivals).
    pub rate: f64,
    /// Source of the figures.
    pub source: &'static str,
}

/// Calibrated stand-ins for the public traces.
pub static PROFILES: &[LengthProfile] = &[
    LengthProfile {
        name: "azure-conv",
        prompt: (1155.0, 1020.0, 8192),
        output: (211.0, 129.0, 2048),
        rate: 5.53,
        source: "Azure LLM inference trace 2023, conversation: 19,366 requests in 1 h",
    },
    LengthProfile {
        name: "azure-code",
        prompt: (2048.0, 1469.0, 8192),
        output: (28.0, 13.0, 2048),
        rate: 2.57,
        source: "Azure LLM inference trace 2023, code: 8,819 requests in 1 h",
    },
    LengthProfile {
        name: "sharegpt",
        prompt: (2340.0, 1730.0, 8192),
        output: (439.0, 415.0, 2048),
        rate: 1.0,
        source: "ShareGPT (8k-filtered, Llama-2 tokenizer) length statistics",
    },
];

/// Finds a profile by name.
pub fn profile(name: &str) -> Option<&'static LengthProfile> {
    PROFILES.iter().find(|p| p.name == name)
}

fn lognormal(rng: &mut SimRng, mean: f64, median: f64, clip: u32) -> u32 {
    let sigma = (2.0 * (mean / median).ln()).max(0.0).sqrt();
    (rng.lognormal(median.ln(), sigma).round() as u32).clamp(1, clip)
}

/// Where a stream's arrival times come from.
#[derive(Debug, Clone)]
pub enum Arrivals {
    /// Trace times (s, from the trace's first request), divided by
    /// `rate_scale` to replay faster.
    Trace(Arc<Vec<f64>>),
    /// Poisson arrivals, req/s.
    Poisson(f64),
    /// Gamma inter-arrivals with this rate (req/s) and coefficient of
    /// variation.
    Gamma {
        /// Mean rate, req/s.
        rate: f64,
        /// Coefficient of variation of inter-arrival times.
        cv: f64,
    },
}

/// Where a stream's lengths come from.
#[derive(Debug, Clone)]
pub enum Lengths {
    /// (prompt, output) pairs used in order, cycling (a trace's own, or a
    /// length file's).
    Pairs(Arc<Vec<(u32, u32)>>),
    /// Drawn at random from pairs (a length file without arrival times).
    Sample(Arc<Vec<(u32, u32)>>),
    /// Log-normal stand-in.
    Synthetic(LengthProfile),
    /// Fixed.
    Fixed(u32, u32),
}

/// One stream of requests.
#[derive(Debug, Clone)]
pub struct Stream {
    /// Name (RNG streams are named after it).
    pub name: String,
    /// Model index.
    pub model: u16,
    /// Class index.
    pub class: u16,
    /// Model instance the stream's requests are for.
    pub instance: u16,
    /// Arrival process.
    pub arrivals: Arrivals,
    /// Lengths.
    pub lengths: Lengths,
    /// Replay speed-up of trace arrivals.
    pub rate_scale: f64,
    /// Start offset, s.
    pub start_s: f64,
    /// Requests arriving after this many seconds (from `start_s`) are not
    /// generated.
    pub duration_s: f64,
    /// At most this many requests.
    pub max_requests: usize,
    /// Clip prompts so that prompt + output fits this many tokens (Vidur's
    /// handling of over-long trace rows); `None` leaves them, and the
    /// engine rejects what no replica can hold.
    pub truncate_to: Option<u32>,
}

/// A generated request before the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Arrival time.
    pub at: SimTime,
    /// Prompt tokens.
    pub prompt: u32,
    /// Output tokens.
    pub output: u32,
    /// Whether the prompt was clipped to fit the model's context.
    pub clipped: bool,
}

impl Stream {
    /// The stream's requests for one seed.
    pub fn generate(&self, arrival_rng: &mut SimRng, length_rng: &mut SimRng) -> Vec<Arrival> {
        let mut out = Vec::new();
        let mut t = 0.0f64;
        let mut i = 0usize;
        loop {
            if out.len() >= self.max_requests {
                break;
            }
            let time = match &self.arrivals {
                Arrivals::Trace(times) => match times.get(i) {
                    Some(&x) => x / self.rate_scale,
                    None => break,
                },
                Arrivals::Poisson(rate) => {
                    t += arrival_rng.exponential(*rate);
                    t
                }
                Arrivals::Gamma { rate, cv } => {
                    let shape = 1.0 / (cv * cv);
                    t += arrival_rng.gamma(shape, 1.0 / (rate * shape));
                    t
                }
            };
            if time > self.duration_s {
                break;
            }
            let (prompt, output) = match &self.lengths {
                Lengths::Pairs(pairs) => pairs[i % pairs.len()],
                Lengths::Sample(pairs) => pairs[length_rng.index(pairs.len())],
                Lengths::Synthetic(p) => (
                    lognormal(length_rng, p.prompt.0, p.prompt.1, p.prompt.2),
                    lognormal(length_rng, p.output.0, p.output.1, p.output.2),
                ),
                Lengths::Fixed(p, o) => (*p, *o),
            };
            let (mut prompt, mut output) = (prompt.max(1), output.max(1));
            let mut clipped = false;
            if let Some(limit) = self.truncate_to
                && prompt + output > limit
            {
                output = output.min(limit / 2).max(1);
                prompt = (limit - output).max(1);
                clipped = true;
            }
            out.push(Arrival {
                at: SimTime::ZERO + nimbus_sim::SimDuration::from_secs_f64(self.start_s + time),
                prompt,
                output,
                clipped,
            });
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_sim::RngStreams;

    fn stream(arrivals: Arrivals, lengths: Lengths) -> Stream {
        Stream {
            name: "s".into(),
            model: 0,
            class: 0,
            instance: 0,
            arrivals,
            lengths,
            rate_scale: 1.0,
            start_s: 0.0,
            duration_s: 1e9,
            max_requests: 20_000,
            truncate_to: None,
        }
    }

    #[test]
    fn synthetic_lengths_have_the_profile_median_and_mean() {
        let p = *profile("azure-conv").expect("profile");
        let s = stream(Arrivals::Poisson(5.0), Lengths::Synthetic(p));
        let rngs = RngStreams::new(1);
        let reqs = s.generate(&mut rngs.stream("a"), &mut rngs.stream("l"));
        let mut prompts: Vec<f64> = reqs.iter().map(|r| r.prompt as f64).collect();
        prompts.sort_by(f64::total_cmp);
        let median = prompts[prompts.len() / 2];
        let mean = prompts.iter().sum::<f64>() / prompts.len() as f64;
        assert!((median / 1020.0 - 1.0).abs() < 0.05, "{median}");
        assert!((mean / 1155.0 - 1.0).abs() < 0.05, "{mean}");
        let span = reqs.last().expect("requests").at.as_secs_f64();
        assert!((reqs.len() as f64 / span / 5.0 - 1.0).abs() < 0.05);
    }

    #[test]
    fn gamma_arrivals_have_the_requested_rate_and_cv() {
        let s = stream(Arrivals::Gamma { rate: 2.0, cv: 3.0 }, Lengths::Fixed(10, 10));
        let rngs = RngStreams::new(2);
        let reqs = s.generate(&mut rngs.stream("a"), &mut rngs.stream("l"));
        let gaps: Vec<f64> = reqs.windows(2).map(|w| (w[1].at - w[0].at).as_secs_f64()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((mean - 0.5).abs() < 0.03, "{mean}");
        assert!((sd / mean - 3.0).abs() < 0.3, "{}", sd / mean);
    }

    #[test]
    fn traces_replay_faster_and_stop_at_the_duration() {
        let times = Arc::new(vec![0.0, 10.0, 20.0, 30.0]);
        let mut s = stream(Arrivals::Trace(times), Lengths::Pairs(Arc::new(vec![(5, 0), (6, 7)])));
        s.rate_scale = 2.0;
        s.duration_s = 10.0;
        let rngs = RngStreams::new(0);
        let reqs = s.generate(&mut rngs.stream("a"), &mut rngs.stream("l"));
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[2].at.as_secs_f64(), 10.0);
        // Output lengths of zero become one token.
        assert_eq!((reqs[0].prompt, reqs[0].output), (5, 1));
        s.truncate_to = Some(10);
        s.lengths = Lengths::Fixed(30, 8);
        let clipped = s.generate(&mut rngs.stream("a"), &mut rngs.stream("l"));
        assert_eq!((clipped[0].prompt, clipped[0].output), (5, 5));
    }
}
