//! Apps, functions and invocation streams.
//!
//! Keep-alive decisions are per **app** (as in the Azure 2019 trace, where
//! an app's functions share its instances): a sandbox holds one app and runs
//! one invocation at a time. Invocations arrive from a [`Source`] in time
//! order, generated lazily so that a 14-day trace never sits in memory.

use std::collections::VecDeque;

use nimbus_sim::{EventQueue, SimDuration, SimRng, SimTime};

/// A deployable unit: what a sandbox holds.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// Name (hash in the Azure traces).
    pub name: String,
    /// Memory of one sandbox, MB.
    pub mem_mb: u32,
    /// Cold-start latency by component.
    pub cold: ColdStart,
    /// The ML model its handler loads, if any (InstaInfer's setting: the
    /// handler loads it on every invocation unless it is already in the
    /// sandbox's memory).
    pub model: Option<ModelArtifact>,
}

/// An ML model (or other large artifact) an app loads on its invocation path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelArtifact {
    /// Time to load it into a running sandbox, ms.
    pub load_ms: f64,
    /// Its size in memory, MB (it rides inside the sandbox's memory).
    pub size_mb: u32,
}

/// Cold-start latency components, ms.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ColdStart {
    /// Creating the sandbox (container or microVM).
    pub sandbox_ms: f64,
    /// Starting the language runtime.
    pub runtime_ms: f64,
    /// Loading the function's code and dependencies (and any ML model).
    pub dependencies_ms: f64,
}

impl ColdStart {
    /// Total, ms.
    pub fn total_ms(&self) -> f64 {
        self.sandbox_ms + self.runtime_ms + self.dependencies_ms
    }

    /// A total split into components in the proportions of a typical
    /// container cold start (sandbox 15%, runtime 35%, dependencies 50%;
    /// inferred).
    pub fn split(total_ms: f64) -> Self {
        ColdStart { sandbox_ms: 0.15 * total_ms, runtime_ms: 0.35 * total_ms, dependencies_ms: 0.5 * total_ms }
    }
}

/// How long one execution takes.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecTime {
    /// Always this many ms.
    Fixed(f64),
    /// Drawn from a piecewise-linear CDF through (quantile, ms) points.
    Quantiles(Vec<(f64, f64)>),
    /// Log-normal with this median (ms) and σ.
    LogNormal {
        /// Median, ms.
        median_ms: f64,
        /// σ of the log.
        sigma: f64,
    },
    /// One of several distributions, each with a probability (summing to
    /// 1): an app's invocations over its functions ([`ExecTime::mixture`]).
    Mixture(Vec<(f64, ExecTime)>),
}

/// The value at quantile `u` of the piecewise-linear CDF through `points`
/// (quantile, ms).
fn inverse_cdf(points: &[(f64, f64)], u: f64) -> f64 {
    let mut prev = points[0];
    for &p in points {
        if u <= p.0 {
            if p.0 <= prev.0 {
                return p.1;
            }
            return prev.1 + (p.1 - prev.1) * (u - prev.0) / (p.0 - prev.0);
        }
        prev = p;
    }
    prev.1
}

impl ExecTime {
    /// Draws one execution time, ms.
    pub fn sample(&self, rng: &mut SimRng) -> f64 {
        match self {
            ExecTime::Fixed(ms) => *ms,
            ExecTime::LogNormal { median_ms, sigma } => rng.lognormal(median_ms.ln(), *sigma),
            ExecTime::Quantiles(points) => inverse_cdf(points, rng.uniform()),
            ExecTime::Mixture(parts) => {
                let (_, part) = pick(parts, rng.uniform());
                part.sample(rng)
            }
        }
    }

    /// An execution time from two independent uniforms in [0, 1) (for
    /// generators other than [`SimRng`]): the inverse CDF, Box–Muller for
    /// the log-normal.
    pub fn sample_uniforms(&self, u1: f64, u2: f64) -> f64 {
        match self {
            ExecTime::Fixed(ms) => *ms,
            ExecTime::LogNormal { median_ms, sigma } => {
                let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                median_ms * (sigma * z).exp()
            }
            ExecTime::Quantiles(points) => inverse_cdf(points, u1),
            // The uniform that picks the part, rescaled within the part's
            // band, is still uniform and independent of `u2`.
            ExecTime::Mixture(parts) => {
                let (u, part) = pick(parts, u1);
                part.sample_uniforms(u, u2)
            }
        }
    }

    /// The `p`-quantile of the execution time, ms.
    pub fn quantile_ms(&self, p: f64) -> f64 {
        match self {
            ExecTime::Fixed(ms) => *ms,
            ExecTime::LogNormal { median_ms, sigma } => {
                median_ms * (sigma * nimbus_sim::stats::normal_quantile(p)).exp()
            }
            ExecTime::Quantiles(points) => inverse_cdf(points, p),
            // Bisection on the mixture's CDF.
            ExecTime::Mixture(parts) => {
                let (mut lo, mut hi) = parts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, e)| {
                    (lo.min(e.quantile_ms(0.0)), hi.max(e.quantile_ms(1.0)))
                });
                if lo >= hi || lo.is_nan() || hi.is_nan() {
                    return lo;
                }
                for _ in 0..64 {
                    let mid = 0.5 * (lo + hi);
                    if self.cdf(mid) < p { lo = mid } else { hi = mid }
                }
                hi
            }
        }
    }

    /// P(execution time ≤ `ms`): bisection on the quantile function.
    fn cdf(&self, ms: f64) -> f64 {
        if let ExecTime::Mixture(parts) = self {
            return parts.iter().map(|(w, e)| w * e.cdf(ms)).sum();
        }
        let (mut lo, mut hi) = (0.0, 1.0);
        if self.quantile_ms(0.0) > ms {
            return 0.0;
        }
        for _ in 0..64 {
            let mid = 0.5 * (lo + hi);
            if self.quantile_ms(mid) <= ms { lo = mid } else { hi = mid }
        }
        lo
    }

    /// The mixture of `parts` (weights ≥ 0, not all zero; normalised here);
    /// a single part is itself.
    pub fn mixture(parts: Vec<(f64, ExecTime)>) -> ExecTime {
        let total: f64 = parts.iter().map(|(w, _)| w.max(0.0)).sum();
        let mut parts: Vec<(f64, ExecTime)> =
            parts.into_iter().filter(|(w, _)| *w > 0.0).map(|(w, e)| (w / total, e)).collect();
        match parts.len() {
            0 => ExecTime::Fixed(0.0),
            1 => parts.pop().map(|(_, e)| e).unwrap_or(ExecTime::Fixed(0.0)),
            _ => ExecTime::Mixture(parts),
        }
    }

    /// The mean execution time, ms.
    pub fn mean_ms(&self) -> f64 {
        match self {
            ExecTime::Fixed(ms) => *ms,
            ExecTime::LogNormal { median_ms, sigma } => median_ms * (sigma * sigma / 2.0).exp(),
            // The mean of the piecewise-linear CDF: each segment's midpoint
            // weighted by its probability (the first point's mass at its value).
            ExecTime::Quantiles(points) => {
                let Some(&(q0, v0)) = points.first() else { return 0.0 };
                let mut mean = q0 * v0;
                for w in points.windows(2) {
                    mean += (w[1].0 - w[0].0).max(0.0) * (w[0].1 + w[1].1) / 2.0;
                }
                let last = points.last().map_or(1.0, |p| p.0);
                mean + (1.0 - last).max(0.0) * points.last().map_or(0.0, |p| p.1)
            }
            ExecTime::Mixture(parts) => parts.iter().map(|(w, e)| w * e.mean_ms()).sum(),
        }
    }
}

/// The part of a mixture that `u` in [0, 1) picks, and `u` rescaled to
/// [0, 1) within that part's band.
fn pick(parts: &[(f64, ExecTime)], u: f64) -> (f64, &ExecTime) {
    let mut below = 0.0;
    for (i, (w, e)) in parts.iter().enumerate() {
        if u < below + w || i + 1 == parts.len() {
            let within = if *w > 0.0 { ((u - below) / w).clamp(0.0, 1.0 - f64::EPSILON) } else { 0.0 };
            return (within, e);
        }
        below += w;
    }
    static NOTHING: ExecTime = ExecTime::Fixed(0.0);
    (u, &NOTHING)
}

/// A function of an app.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// Name.
    pub name: String,
    /// Index of its app.
    pub app: u32,
    /// Execution time.
    pub exec: ExecTime,
    /// Trigger (Azure 2019 names; `http` when unknown).
    pub trigger: &'static str,
}

/// One invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Invocation {
    /// Arrival.
    pub at: SimTime,
    /// Function index.
    pub function: u32,
}

/// Produces invocations in time order.
pub trait Source: Send {
    /// The next invocation, or `None` when the workload is over.
    fn next(&mut self) -> Option<Invocation>;
    /// Expected span, for progress reporting.
    fn span(&self) -> SimDuration;
    /// What went wrong while generating, if anything (a trace file that
    /// became unreadable mid-run).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A fixed list (small traces).
pub struct ListSource {
    items: VecDeque<Invocation>,
    span: SimDuration,
}

impl ListSource {
    /// From invocations in any order.
    pub fn new(mut items: Vec<Invocation>) -> Self {
        items.sort();
        let span = items.last().map_or(SimDuration::ZERO, |i| i.at.since(SimTime::ZERO));
        ListSource { items: items.into(), span }
    }
}

impl Source for ListSource {
    fn next(&mut self) -> Option<Invocation> {
        self.items.pop_front()
    }
    fn span(&self) -> SimDuration {
        self.span
    }
}

/// Azure 2019 per-minute counts expanded to invocations: each minute's
/// `n` invocations of a function at uniformly random offsets within the
/// minute (seeded), one minute at a time. Counts are held sparsely, by
/// minute.
pub struct MinuteSource {
    /// Per minute: (function, invocations), non-zero only.
    by_minute: Vec<Vec<(u32, u32)>>,
    /// Minute index of `by_minute[0]` from the start of the run.
    first_minute: usize,
    minute: usize,
    pending: VecDeque<Invocation>,
    /// A minute too large to expand at once: per function, its next
    /// arrival, as (function, arrivals left after it, position in 0..1).
    streams: EventQueue<(u32, u32, f64)>,
    /// Start of the minute `streams` belongs to, s.
    stream_start_s: f64,
    rng: SimRng,
}

/// Minutes with more invocations than this (all functions together) are
/// generated in order, function by function, instead of expanded and
/// sorted at once: memory stays O(functions) whatever a count says (one
/// cell of the trace may legally hold up to 2^32 − 1 invocations).
pub const MINUTE_EXPANSION_LIMIT: u64 = 1 << 20;

impl MinuteSource {
    /// `counts[k] = (function, per-minute counts)`.
    pub fn new(counts: Vec<(u32, Vec<u32>)>, rng: SimRng) -> Self {
        let mut day = MinuteCounts::default();
        for (function, per_minute) in &counts {
            day.add(*function, per_minute);
        }
        Self::from_counts(day, 0, rng)
    }

    /// One day's sparse counts, starting `first_minute` minutes into the run.
    fn from_counts(counts: MinuteCounts, first_minute: usize, rng: SimRng) -> Self {
        MinuteSource {
            by_minute: counts.by_minute,
            first_minute,
            minute: 0,
            pending: VecDeque::new(),
            streams: EventQueue::new(),
            stream_start_s: 0.0,
            rng,
        }
    }
}

/// Per-minute counts of many functions, sparse.
#[derive(Debug, Default)]
struct MinuteCounts {
    by_minute: Vec<Vec<(u32, u32)>>,
}

impl MinuteCounts {
    fn add(&mut self, function: u32, per_minute: &[u32]) {
        if self.by_minute.len() < per_minute.len() {
            self.by_minute.resize(per_minute.len(), Vec::new());
        }
        for (m, &n) in per_minute.iter().enumerate() {
            if n > 0 {
                self.by_minute[m].push((function, n));
            }
        }
    }
}

impl Source for MinuteSource {
    fn next(&mut self) -> Option<Invocation> {
        if let Some((at, (function, left, position))) = self.streams.pop() {
            if left > 0 {
                let next = next_order_statistic(&mut self.rng, position, left);
                self.streams.schedule(minute_offset(self.stream_start_s, next), (function, left - 1, next));
            }
            return Some(Invocation { at, function });
        }
        while self.pending.is_empty() {
            let counts = self.by_minute.get(self.minute)?;
            let start = (self.first_minute + self.minute) as f64 * 60.0;
            if counts.iter().map(|&(_, n)| u64::from(n)).sum::<u64>() > MINUTE_EXPANSION_LIMIT {
                // Each function's arrivals as ascending uniform order
                // statistics, merged by time.
                self.stream_start_s = start;
                for &(function, n) in counts {
                    let first = next_order_statistic(&mut self.rng, 0.0, n);
                    self.streams.schedule(minute_offset(start, first), (function, n - 1, first));
                }
                self.minute += 1;
                return self.next();
            }
            let mut batch = Vec::new();
            for &(function, n) in counts {
                for _ in 0..n {
                    let at = SimTime::ZERO + SimDuration::from_secs_f64(start + 60.0 * self.rng.uniform());
                    batch.push(Invocation { at, function });
                }
            }
            batch.sort();
            self.pending.extend(batch);
            self.minute += 1;
        }
        self.pending.pop_front()
    }
    fn span(&self) -> SimDuration {
        SimDuration::from_secs(self.by_minute.len() as u64 * 60)
    }
}

/// The smallest of `n` uniform draws on `(after, 1)`: the next of `n`
/// remaining sorted uniform arrivals once one sits at `after` (the
/// sequential method for ascending order statistics).
fn next_order_statistic(rng: &mut SimRng, after: f64, n: u32) -> f64 {
    let smallest = 1.0 - rng.uniform().powf(1.0 / f64::from(n.max(1)));
    after + (1.0 - after) * smallest
}

/// The time `fraction` (0..1) into the minute starting at `start_s`.
fn minute_offset(start_s: f64, fraction: f64) -> SimTime {
    SimTime::ZERO + SimDuration::from_secs_f64(start_s + 60.0 * fraction)
}

/// Azure 2019 invocation files of consecutive days, streamed: one day's
/// counts in memory at a time (read when the run reaches that day), each
/// expanded as by [`MinuteSource`]. Functions are matched across days by
/// (owner, app, function) in `index`; a function absent from the index is
/// skipped (the index is built from the same files before the run).
pub struct DaysSource {
    days: Vec<std::path::PathBuf>,
    index: std::sync::Arc<std::collections::BTreeMap<(String, String, String), u32>>,
    day: usize,
    current: Option<MinuteSource>,
    rng: Option<SimRng>,
    error: Option<String>,
}

impl DaysSource {
    /// Streams `days` in order.
    pub fn new(
        days: Vec<std::path::PathBuf>,
        index: std::sync::Arc<std::collections::BTreeMap<(String, String, String), u32>>,
        rng: SimRng,
    ) -> Self {
        DaysSource { days, index, day: 0, current: None, rng: Some(rng), error: None }
    }

    fn load(&mut self) -> bool {
        let Some(path) = self.days.get(self.day) else { return false };
        let mut counts = MinuteCounts::default();
        let index = &self.index;
        let read = nimbus_trace::faas::for_each_azure2019_invocation(path, |row| {
            if let Some(&f) = index.get(&(row.owner, row.app, row.function)) {
                counts.add(f, &row.per_minute);
            }
        });
        if let Err(e) = read {
            self.error = Some(format!("the trace stopped early: {e}"));
            return false;
        }
        let rng = self.rng.take().or_else(|| self.current.take().map(|c| c.rng)).expect("one holds the stream");
        self.current = Some(MinuteSource::from_counts(counts, self.day * 1440, rng));
        self.day += 1;
        true
    }
}

impl Source for DaysSource {
    fn next(&mut self) -> Option<Invocation> {
        loop {
            if let Some(inv) = self.current.as_mut().and_then(Source::next) {
                return Some(inv);
            }
            if self.error.is_some() || !self.load() {
                return None;
            }
        }
    }
    fn span(&self) -> SimDuration {
        SimDuration::from_secs(self.days.len() as u64 * 86_400)
    }
    fn notes(&self) -> Vec<String> {
        self.error.iter().cloned().collect()
    }
}

/// How one function's synthetic arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    /// Poisson with this rate per second.
    Poisson(f64),
    /// Every `period` seconds from `phase`.
    Timer {
        /// Period, s.
        period_s: f64,
        /// First firing, s.
        phase_s: f64,
    },
}

/// Synthetic arrivals: every function's next arrival kept in a heap, so
/// memory is O(functions) whatever the span.
pub struct PatternSource {
    queue: EventQueue<u32>,
    patterns: Vec<Pattern>,
    end: SimTime,
    rng: SimRng,
}

impl PatternSource {
    /// One pattern per function, until `end`.
    pub fn new(patterns: Vec<Pattern>, end: SimTime, mut rng: SimRng) -> Self {
        let mut queue = EventQueue::with_capacity(patterns.len());
        for (f, p) in patterns.iter().enumerate() {
            let first = match *p {
                Pattern::Poisson(rate) if rate > 0.0 => rng.exponential(rate),
                Pattern::Poisson(_) => f64::INFINITY,
                Pattern::Timer { phase_s, .. } => phase_s,
            };
            if first.is_finite() {
                queue.schedule(SimTime::ZERO + SimDuration::from_secs_f64(first), f as u32);
            }
        }
        PatternSource { queue, patterns, end, rng }
    }
}

impl Source for PatternSource {
    fn next(&mut self) -> Option<Invocation> {
        let (at, f) = self.queue.pop()?;
        if at > self.end {
            return None;
        }
        let gap = match self.patterns[f as usize] {
            Pattern::Poisson(rate) => self.rng.exponential(rate),
            Pattern::Timer { period_s, .. } => period_s,
        };
        self.queue.schedule(at + SimDuration::from_secs_f64(gap.max(1e-6)), f);
        Some(Invocation { at, function: f })
    }
    fn span(&self) -> SimDuration {
        self.end.since(SimTime::ZERO)
    }
}

/// The published marginals of the Azure Functions 2019 trace (Shahrad et
/// al., ATC'20) that the synthetic generator is fitted to.
pub mod azure2019 {
    /// Mean of log10(invocations per minute) of apps that are not timers,
    /// fitted so that, with the timers, 45% of apps are invoked at most
    /// once an hour and 81% at most once a minute on average (§3.3).
    pub const LOG10_RATE_MEAN: f64 = -1.80;
    /// Its spread (same fit).
    pub const LOG10_RATE_SD: f64 = 2.40;
    /// Rates are clamped to eight orders of magnitude, 10^-5 to 10^3 per
    /// minute (the paper's span; the bounds themselves are inferred).
    pub const LOG10_RATE_RANGE: (f64, f64) = (-5.0, 3.0);
    /// Share of functions triggered by timers (16%, Fig. 3).
    pub const TIMER_SHARE: f64 = 0.16;
    /// Timer periods, s.
    pub const TIMER_PERIODS_S: [f64; 6] = [60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0];
    /// Triggers of the other functions and their shares of all functions
    /// (Fig. 3: HTTP 55%, queue 15%, event 2%, orchestration 7%, others
    /// 5%; storage is folded into others).
    pub const OTHER_TRIGGERS: [(&str, f64); 5] =
        [("http", 0.55), ("queue", 0.15), ("event", 0.02), ("orchestration", 0.07), ("others", 0.05)];
    /// Median execution time, ms: about half of functions average under 1 s.
    pub const EXEC_MEDIAN_MS: f64 = 900.0;
    /// σ of log execution time.
    pub const EXEC_SIGMA: f64 = 1.5;
    /// Median app memory, MB: most apps allocate under 400 MB.
    pub const MEM_MEDIAN_MB: f64 = 150.0;
    /// σ of log memory.
    pub const MEM_SIGMA: f64 = 0.6;
    /// σ of log cold-start latency around the scenario's median (inferred).
    pub const COLD_SIGMA: f64 = 0.8;
}

/// A synthetic workload of `apps` apps with one function each; `cold_ms`
/// is the median cold start.
pub fn synthetic(apps: usize, cold_ms: f64, rng: &mut SimRng) -> (Vec<App>, Vec<Function>, Vec<Pattern>) {
    use azure2019::*;
    let mut out_apps = Vec::with_capacity(apps);
    let mut functions = Vec::with_capacity(apps);
    let mut patterns = Vec::with_capacity(apps);
    for a in 0..apps {
        let mem = rng.lognormal(MEM_MEDIAN_MB.ln(), MEM_SIGMA).clamp(16.0, 4096.0).round() as u32;
        // Cold starts vary with runtime and dependencies: log-normal around
        // the configured median (σ 0.8, inferred).
        let cold = rng.lognormal(cold_ms.max(1e-3).ln(), COLD_SIGMA).min(60_000.0);
        out_apps.push(App { name: format!("app{a}"), mem_mb: mem, cold: ColdStart::split(cold), model: None });
        let timer = rng.bernoulli(TIMER_SHARE);
        let pattern = if timer {
            let period = TIMER_PERIODS_S[rng.index(TIMER_PERIODS_S.len())];
            Pattern::Timer { period_s: period, phase_s: rng.uniform() * period }
        } else {
            let per_minute =
                10f64.powf(rng.normal(LOG10_RATE_MEAN, LOG10_RATE_SD).clamp(LOG10_RATE_RANGE.0, LOG10_RATE_RANGE.1));
            Pattern::Poisson(per_minute / 60.0)
        };
        functions.push(Function {
            name: format!("app{a}-f0"),
            app: a as u32,
            exec: ExecTime::LogNormal { median_ms: EXEC_MEDIAN_MS, sigma: EXEC_SIGMA },
            trigger: if timer {
                "timer"
            } else {
                let weights: Vec<f64> = OTHER_TRIGGERS.iter().map(|t| t.1).collect();
                OTHER_TRIGGERS[rng.weighted_index(&weights)].0
            },
        });
        patterns.push(pattern);
    }
    (out_apps, functions, patterns)
}

#[cfg(test)]
mod tests {
    /// A quarter of invocations at 10 ms and three quarters at 100 ms, by
    /// hand: the mean, quantiles on both sides of the step, and draws in
    /// the right proportions; a single part is itself.
    #[test]
    fn mixture_by_hand() {
        let m = ExecTime::mixture(vec![(1.0, ExecTime::Fixed(10.0)), (3.0, ExecTime::Fixed(100.0))]);
        assert!((m.mean_ms() - 77.5).abs() < 1e-12);
        assert!((m.quantile_ms(0.2) - 10.0).abs() < 1e-6);
        assert!((m.quantile_ms(0.5) - 100.0).abs() < 1e-6);
        let low = (0..1000).filter(|i| m.sample_uniforms(*i as f64 / 1000.0, 0.5) == 10.0).count();
        assert_eq!(low, 250);
        let one = ExecTime::mixture(vec![(5.0, ExecTime::Fixed(7.0)), (0.0, ExecTime::Fixed(9.0))]);
        assert_eq!(one, ExecTime::Fixed(7.0));
        // Within a part, the rescaled uniform spans the part's own quantiles.
        let q = ExecTime::mixture(vec![
            (1.0, ExecTime::Quantiles(vec![(0.0, 0.0), (1.0, 100.0)])),
            (1.0, ExecTime::Fixed(1000.0)),
        ]);
        assert!((q.sample_uniforms(0.25, 0.0) - 50.0).abs() < 1e-9);
        assert!((q.quantile_ms(0.25) - 50.0).abs() < 1e-6);
        assert!((q.mean_ms() - 525.0).abs() < 1e-9);
    }

    use super::*;
    use nimbus_sim::RngStreams;

    #[test]
    fn minute_expansion_keeps_every_count_within_its_minute() {
        let mut src = MinuteSource::new(vec![(0, vec![3, 0, 2]), (1, vec![1, 1, 0])], RngStreams::new(1).stream("m"));
        let mut all = Vec::new();
        while let Some(i) = src.next() {
            all.push(i);
        }
        assert_eq!(all.len(), 7);
        assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
        let in_minute =
            |m: u64, f: u32| all.iter().filter(|i| i.function == f && i.at.as_nanos() / 60_000_000_000 == m).count();
        assert_eq!((in_minute(0, 0), in_minute(1, 0), in_minute(2, 0)), (3, 0, 2));
        assert_eq!((in_minute(0, 1), in_minute(1, 1), in_minute(2, 1)), (1, 1, 0));
    }

    #[test]
    fn huge_minutes_are_generated_in_order_without_expanding_them() {
        let big = u32::try_from(MINUTE_EXPANSION_LIMIT).expect("fits") + 5;
        let mut src = MinuteSource::new(
            vec![(0, vec![big, 2]), (1, vec![7, 1]), (2, vec![0, 3])],
            RngStreams::new(3).stream("m"),
        );
        let mut counts = [[0u32; 2]; 3];
        let mut last = SimTime::ZERO;
        while let Some(i) = src.next() {
            assert!(i.at >= last, "in time order");
            last = i.at;
            let minute = usize::try_from(i.at.as_nanos() / 60_000_000_000).expect("small");
            counts[i.function as usize][minute] += 1;
        }
        assert_eq!(counts, [[big, 2], [7, 1], [0, 3]]);
        // The first minute is huge: its arrivals spread over the whole minute.
        let mut src = MinuteSource::new(vec![(0, vec![u32::MAX])], RngStreams::new(4).stream("m"));
        let first: Vec<SimTime> = (0..1000).map_while(|_| src.next().map(|i| i.at)).collect();
        assert_eq!(first.len(), 1000);
        assert!(first[999].as_nanos() < 1_000_000, "4.3e9 per minute: the first thousand within a millisecond");
    }

    #[test]
    fn synthetic_marginals_follow_the_published_shape() {
        let (apps, _, patterns) = synthetic(20_000, 1000.0, &mut RngStreams::new(2).stream("s"));
        let under_400 = apps.iter().filter(|a| a.mem_mb < 400).count() as f64 / apps.len() as f64;
        assert!(under_400 > 0.9, "{under_400}");
        let rates: Vec<f64> = patterns
            .iter()
            .map(|p| match p {
                Pattern::Poisson(r) => r * 60.0,
                Pattern::Timer { period_s, .. } => 60.0 / period_s,
            })
            .collect();
        // 45% of apps at most once an hour, 81% at most once a minute.
        let share =
            |limit: f64| rates.iter().filter(|r| **r <= limit * (1.0 + 1e-9)).count() as f64 / rates.len() as f64;
        assert!((share(1.0 / 60.0) - 0.45).abs() < 0.02, "{}", share(1.0 / 60.0));
        assert!((share(1.0) - 0.81).abs() < 0.02, "{}", share(1.0));
        let (lo, hi) = rates.iter().fold((f64::MAX, 0.0f64), |(l, h), r| (l.min(*r), h.max(*r)));
        assert!((hi / lo).log10() > 7.0, "{lo} {hi}");
    }

    #[test]
    fn pattern_source_is_ordered_and_stops_at_the_end() {
        let mut src = PatternSource::new(
            vec![Pattern::Timer { period_s: 10.0, phase_s: 5.0 }, Pattern::Poisson(0.5)],
            SimTime::from_secs(100),
            RngStreams::new(3).stream("p"),
        );
        let mut all = Vec::new();
        while let Some(i) = src.next() {
            all.push(i);
        }
        assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(all.iter().filter(|i| i.function == 0).count(), 10);
        assert!(all.iter().all(|i| i.at <= SimTime::from_secs(100)));
    }

    #[test]
    fn quantile_sampling_stays_within_the_points() {
        let e = ExecTime::Quantiles(vec![(0.0, 10.0), (0.5, 20.0), (1.0, 100.0)]);
        let mut rng = RngStreams::new(4).stream("q");
        let draws: Vec<f64> = (0..10_000).map(|_| e.sample(&mut rng)).collect();
        assert!(draws.iter().all(|d| (10.0..=100.0).contains(d)));
        let below_20 = draws.iter().filter(|d| **d <= 20.0).count() as f64 / 10_000.0;
        assert!((below_20 - 0.5).abs() < 0.02);
    }
}
