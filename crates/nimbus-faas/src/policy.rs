//! Keep-alive, pre-warming and eviction policies.
//!
//! - **Fixed keep-alive** (`fixed`): an idle sandbox stays loaded for
//!   `keep_alive_min` minutes (OpenWhisk's default is 10), then is
//!   unloaded; under memory pressure the least recently used idle sandbox
//!   goes first. FaasCache's TTL (10 min) and LONG-TTL (2 h) variants.
//! - **Hybrid histogram** (`hybrid`; Shahrad et al., "Serverless in the
//!   Wild", ATC'20): per app, a histogram of idle times (1-minute bins over
//!   `range_min`, default 4 h), the share of out-of-bound idle times and the
//!   coefficient of variation of the bin counts decide, after each
//!   execution, a pre-warm window and a keep-alive window:
//!   1. out-of-bound share ≥ 0.5: forecast the next idle time f; pre-warm
//!      at 0.85·f, keep alive 0.3·f;
//!   2. else, too few idle times (< `min_samples`) or CV < 2: no pre-warm,
//!      keep alive for the whole range;
//!   3. else: pre-warm at the 5th-percentile bin × 0.9 and keep loaded
//!      until the 99th-percentile bin × 1.1.
//!
//!   With a pre-warm window the sandbox is unloaded right after execution
//!   and loaded again when the window ends. `keepalive_from` selects whether
//!   the keep-alive window starts at the pre-warm point (`prewarm`, the
//!   paper's description) or at the end of execution (`execution`, as some
//!   implementations do). The out-of-bound forecast f is ARIMA, as in the
//!   paper: `oob_model` (default `autoarima`, any `nimbus-forecast` model
//!   spec) is fitted to the app's last `oob_history` (default 32)
//!   out-of-bound idle times whenever a new one arrives, once there are at
//!   least `oob_min_history` (default 6); before that, and where the fit
//!   fails, f is the mean of the last three (`oob_model = "persistence"`
//!   keeps that rule throughout). Deviation: the paper does not give the
//!   order search or history length; ours are stated here.
//! - **FaasCache** (`faascache`; Fuerst and Sharma, ASPLOS'21): keep-alive
//!   as caching. Idle sandboxes stay until memory is needed; then the one
//!   with the lowest priority goes. Greedy-Dual-Size-Frequency:
//!   `clock + freq × cold-start cost / memory`, where `clock` is the
//!   priority of the last evicted sandbox and `freq` the invocations the
//!   app's current sandboxes have run (an evicted sandbox takes its count
//!   with it); all of an app's sandboxes share the priority of its latest
//!   use (`shared_priority = false` keeps it per sandbox); variants `lru`,
//!   `freq` (`clock + freq`) and `size` (`clock + freq/memory`), as in
//!   the authors' simulator.

use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::{SimDuration, SimTime};

/// What happens to a sandbox when its execution ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterExecution {
    /// Stay idle-loaded this long, then unload.
    KeepFor(SimDuration),
    /// Stay until evicted for memory.
    KeepUntilEvicted,
    /// Unload now; load an idle sandbox after `prewarm_after` and keep it
    /// for `keep_for`.
    Unload {
        /// Delay before pre-warming.
        prewarm_after: SimDuration,
        /// How long the pre-warmed sandbox stays.
        keep_for: SimDuration,
    },
}

/// When an idle sandbox loads its app's model ahead of the next invocation
/// (InstaInfer), measured from the end of the app's last execution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreloadPlan {
    /// Start loading this long after the last execution ended.
    pub after: SimDuration,
    /// Drop the model again this long after it, if still unused.
    pub offload_after: Option<SimDuration>,
    /// Most model memory one sandbox may hold, MB.
    pub budget_mb: u32,
}

/// How a microVM grows by a memory block for another concurrent instance
/// of its app instead of a new microVM starting (Faascale).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerticalScaling {
    /// Pre-populating memory, ms per GB of the block.
    pub populate_ms_per_gb: f64,
    /// Starting the instance's process inside the running microVM, ms.
    pub process_ms: f64,
}

impl VerticalScaling {
    /// Latency of adding an instance of `mem_mb`.
    pub fn scale_up_ms(&self, mem_mb: u32) -> f64 {
        self.process_ms + self.populate_ms_per_gb * f64::from(mem_mb) / 1024.0
    }
}

/// A keep-alive policy.
pub trait KeepAlive: Send {
    /// An invocation of `app` arrived at `now`, `idle` after the app's
    /// previous execution ended (`None`: first invocation, or one
    /// overlapped it).
    fn on_arrival(&mut self, _app: u32, _now: SimTime, _idle: Option<SimDuration>) {}
    /// What to do with `app`'s sandbox after an execution ending `now`.
    fn after_execution(&mut self, app: u32, now: SimTime) -> AfterExecution;
    /// The eviction priority a sandbox of `app` gets when used at `now`
    /// (lowest is evicted first); `freq` counts the invocations the app's
    /// current sandboxes have run, this one included.
    fn priority_on_use(&mut self, app: u32, now: SimTime, mem_mb: u32, cold_ms: f64, freq: u64) -> f64 {
        let _ = (app, mem_mb, cold_ms, freq);
        now.as_secs_f64()
    }
    /// Whether all sandboxes of an app share the priority of its latest
    /// use (FaasCache's Greedy-Dual family).
    fn shares_priority(&self) -> bool {
        false
    }
    /// A sandbox of `app` with this priority was evicted for memory; `last`
    /// when the app has no sandbox left.
    fn on_evict(&mut self, _app: u32, _priority: f64, _last: bool) {}
    /// How long an invocation with this trigger may wait before it must
    /// start (DFaaS); zero: start at once.
    fn tolerance(&self, _trigger: &str) -> SimDuration {
        SimDuration::ZERO
    }
    /// Whether and when an idle sandbox of `app` pre-loads its model;
    /// `None`: never (the model is loaded on the invocation path).
    fn preload(&mut self, _app: u32, _now: SimTime) -> Option<PreloadPlan> {
        None
    }
    /// Whether sandboxes scale vertically (Faascale); `None`: every
    /// concurrent instance is its own sandbox (horizontal).
    fn vertical(&self) -> Option<VerticalScaling> {
        None
    }
    /// Whether Knative's autoscaler sizes each app's pods (and with what
    /// settings); `None`: sandboxes start on demand.
    fn autoscaler(&self) -> Option<crate::kpa::KpaConfig> {
        None
    }
    /// Why a policy implemented outside Rust (a Python class) failed: it
    /// raised, or returned an invalid decision. Such a policy answers
    /// [`AfterExecution::KeepFor`] zero from then on, so the run ends
    /// quickly, and the run reports this message as its error.
    fn failure(&self) -> Option<String> {
        None
    }
    /// `count` arrivals of `app`, each warm and less than `within` after
    /// the previous execution ended, reported at once (the app-level
    /// engine's per-minute aggregation); `false` when the policy needs
    /// each arrival's own idle time, and the engine then reports them one
    /// by one.
    fn on_warm_burst(&mut self, _app: u32, _now: SimTime, _count: u64, _within: SimDuration) -> bool {
        false
    }
}

/// Fixed keep-alive.
pub struct Fixed {
    keep: SimDuration,
}

impl KeepAlive for Fixed {
    fn after_execution(&mut self, _app: u32, _now: SimTime) -> AfterExecution {
        AfterExecution::KeepFor(self.keep)
    }

    fn on_warm_burst(&mut self, _app: u32, _now: SimTime, _count: u64, _within: SimDuration) -> bool {
        true
    }
}

/// Which FaasCache priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheVariant {
    /// Greedy-Dual-Size-Frequency.
    Gdsf,
    /// Least recently used.
    Lru,
    /// Frequency only.
    Freq,
    /// Size only.
    Size,
}

/// FaasCache's Greedy-Dual family.
pub struct FaasCache {
    variant: CacheVariant,
    clock: f64,
    shared: bool,
}

impl KeepAlive for FaasCache {
    fn after_execution(&mut self, _app: u32, _now: SimTime) -> AfterExecution {
        AfterExecution::KeepUntilEvicted
    }

    fn priority_on_use(&mut self, _app: u32, now: SimTime, mem_mb: u32, cold_ms: f64, freq: u64) -> f64 {
        let freq = freq as f64;
        let mem = f64::from(mem_mb.max(1));
        match self.variant {
            CacheVariant::Gdsf => self.clock + freq * cold_ms / mem,
            CacheVariant::Lru => now.as_secs_f64(),
            CacheVariant::Freq => self.clock + freq,
            CacheVariant::Size => self.clock + freq / mem,
        }
    }

    fn shares_priority(&self) -> bool {
        self.shared
    }

    fn on_evict(&mut self, _app: u32, priority: f64, _last: bool) {
        if self.variant != CacheVariant::Lru {
            self.clock = self.clock.max(priority);
        }
    }
}

/// Per-app idle-time statistics of the hybrid policy.
#[derive(Debug, Clone, Default)]
struct Histogram {
    bins: Vec<u32>,
    in_bounds: u64,
    /// Σ bins², kept exactly for the variance test.
    sum_sq: u128,
    out_of_bounds: u64,
    /// The last out-of-bound idle times (minutes), oldest first.
    oob_min: std::collections::VecDeque<f64>,
    /// The forecast of the next out-of-bound idle time, refreshed when one
    /// arrives.
    oob_forecast_min: Option<f64>,
}

/// How the hybrid policy forecasts the next out-of-bound idle time.
pub struct OobForecast {
    /// The model (`None`: persistence, the mean of the last three).
    model: Option<Box<dyn nimbus_forecast::Forecaster>>,
    /// Idle times kept per app.
    history: usize,
    /// Fewest idle times before the model is used.
    min_history: usize,
}

impl OobForecast {
    /// Forecasts the next idle time (minutes) from `recent`, oldest first.
    pub fn next(&self, recent: &[f64]) -> Option<f64> {
        if recent.is_empty() {
            return None;
        }
        let last3 = &recent[recent.len().saturating_sub(3)..];
        let persistence = last3.iter().sum::<f64>() / last3.len() as f64;
        let Some(model) = &self.model else { return Some(persistence) };
        if recent.len() < self.min_history.max(model.min_history()) {
            return Some(persistence);
        }
        match model.forecast(recent, 1) {
            // An idle time is at least as long as the range it fell out of;
            // a forecast below zero or not finite falls back.
            Ok(f) if f.point[0].is_finite() && f.point[0] > 0.0 => Some(f.point[0]),
            _ => Some(persistence),
        }
    }
}

/// Where the hybrid policy's keep-alive window starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowStart {
    /// At the pre-warm point.
    Prewarm,
    /// At the end of the execution.
    Execution,
}

/// Serverless in the Wild's hybrid histogram policy.
pub struct Hybrid {
    range_min: usize,
    min_samples: u64,
    start: WindowStart,
    oob: OobForecast,
    apps: Vec<Histogram>,
}

/// (pre-warm, keep-alive) windows in minutes, as the rules state them;
/// [`WindowStart`] decides where the keep-alive window starts.
/// `oob_forecast_min` is the forecast of the next out-of-bound idle time.
pub fn hybrid_windows(bins: &[u32], out_of_bounds: u64, oob_forecast_min: Option<f64>, min_samples: u64) -> (f64, f64) {
    let in_bounds: u64 = bins.iter().map(|&b| b as u64).sum();
    windows_of(bins, in_bounds, None, out_of_bounds, oob_forecast_min, min_samples)
}

/// [`hybrid_windows`] given the bins' sum and, when known, the sum of
/// their squares: then the coefficient-of-variation test is decided in
/// exact integers, and the floating-point formula is evaluated only when
/// the two sides are within 10^-12 of each other, so the outcome is the
/// formula's bit for bit at a fraction of the cost.
fn windows_of(
    bins: &[u32],
    in_bounds: u64,
    sum_sq: Option<u128>,
    out_of_bounds: u64,
    oob_forecast_min: Option<f64>,
    min_samples: u64,
) -> (f64, f64) {
    let range = bins.len() as f64;
    let total = in_bounds + out_of_bounds;
    if total > 0
        && out_of_bounds as f64 / total as f64 >= 0.5
        && let Some(f) = oob_forecast_min
    {
        return (0.85 * f, 0.3 * f);
    }
    if total < min_samples || in_bounds == 0 {
        return (0.0, range);
    }
    let float_cv_below_2 = || {
        let n = bins.len() as f64;
        let mean = in_bounds as f64 / n;
        let var = bins.iter().map(|&b| (b as f64 - mean).powi(2)).sum::<f64>() / n;
        var.sqrt() / mean < 2.0
    };
    // cv < 2 ⟺ var < 4·mean² ⟺ n·Σb² < 5·(Σb)².
    let below = match sum_sq {
        Some(q) => {
            let lhs = (bins.len() as u128).saturating_mul(q);
            let rhs = 5u128.saturating_mul(u128::from(in_bounds)).saturating_mul(u128::from(in_bounds));
            if lhs.abs_diff(rhs) > rhs >> 40 { lhs < rhs } else { float_cv_below_2() }
        }
        None => float_cv_below_2(),
    };
    if below {
        return (0.0, range);
    }
    let percentile_bin = |q: f64| -> usize {
        let rank = (q * in_bounds as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &b) in bins.iter().enumerate() {
            seen += b as u64;
            if seen >= rank {
                return i;
            }
        }
        bins.len() - 1
    };
    // Bin i holds idle times in [i, i+1) minutes.
    let head = percentile_bin(0.05) as f64;
    let tail = percentile_bin(0.99) as f64 + 1.0;
    (head * 0.9, tail * 1.1)
}

impl Histogram {
    /// Adds `k` idle times to bin `bin` (a bin saturates at `u32::MAX`).
    fn add(&mut self, bin: usize, k: u64) {
        let old = u64::from(self.bins[bin]);
        let new = old.saturating_add(k).min(u64::from(u32::MAX));
        self.bins[bin] = u32::try_from(new).unwrap_or(u32::MAX);
        self.in_bounds += new - old;
        self.sum_sq += u128::from(new) * u128::from(new) - u128::from(old) * u128::from(old);
    }
}

/// `app`'s histogram in `apps`, created empty (`range_min` bins) on first use.
fn histogram(apps: &mut Vec<Histogram>, app: u32, range_min: usize) -> &mut Histogram {
    let a = app as usize;
    if apps.len() <= a {
        apps.resize(a + 1, Histogram::default());
    }
    let h = &mut apps[a];
    if h.bins.is_empty() {
        h.bins = vec![0; range_min];
    }
    h
}

impl KeepAlive for Hybrid {
    fn on_warm_burst(&mut self, app: u32, _now: SimTime, count: u64, within: SimDuration) -> bool {
        // Idle times under a minute all fall in the first bin.
        if within > SimDuration::from_secs(60) {
            return false;
        }
        histogram(&mut self.apps, app, self.range_min).add(0, count);
        true
    }

    fn on_arrival(&mut self, app: u32, _now: SimTime, idle: Option<SimDuration>) {
        let Some(idle) = idle else { return };
        let h = histogram(&mut self.apps, app, self.range_min);
        let minutes = idle.as_secs_f64() / 60.0;
        let bin = minutes.floor() as usize;
        if bin < self.range_min {
            h.add(bin, 1);
        } else {
            h.out_of_bounds += 1;
            if h.oob_min.len() >= self.oob.history {
                h.oob_min.pop_front();
            }
            h.oob_min.push_back(minutes);
            h.oob_forecast_min = self.oob.next(h.oob_min.make_contiguous());
        }
    }

    fn after_execution(&mut self, app: u32, _now: SimTime) -> AfterExecution {
        let (prewarm, keep) = match self.apps.get(app as usize) {
            Some(h) if !h.bins.is_empty() => {
                windows_of(&h.bins, h.in_bounds, Some(h.sum_sq), h.out_of_bounds, h.oob_forecast_min, self.min_samples)
            }
            _ => (0.0, self.range_min as f64),
        };
        let minutes = |m: f64| SimDuration::from_secs_f64(m * 60.0);
        if prewarm <= 0.0 {
            return AfterExecution::KeepFor(minutes(keep));
        }
        let keep_for = match self.start {
            WindowStart::Prewarm => keep,
            WindowStart::Execution => (keep - prewarm).max(0.0),
        };
        AfterExecution::Unload { prewarm_after: minutes(prewarm), keep_for: minutes(keep_for) }
    }
}

/// A registry entry.
pub struct PolicyInfo {
    /// Name in scenarios.
    pub name: &'static str,
    /// `paper` or `baseline`.
    pub kind: &'static str,
    /// Citation.
    pub source: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Parameters.
    pub params: &'static [&'static str],
    /// Builds it.
    pub build: fn(&Params) -> Result<Box<dyn KeepAlive>, ParamError>,
}

fn fixed(p: &Params) -> Result<Box<dyn KeepAlive>, ParamError> {
    let keep = SimDuration::from_nanos(p.duration_ns_or("keep_alive_min", 10.0, 60e9, true)?);
    p.finish(&[])?;
    Ok(Box::new(Fixed { keep }))
}

/// The hybrid policy from its parameters (also the base of `instainfer`).
pub(crate) fn hybrid_from(p: &Params) -> Result<Hybrid, ParamError> {
    let range_min = p.usize_in("range_min", 240, 1..=10_080)?;
    let start = match p.choice_or("keepalive_from", &["prewarm", "execution"], "prewarm")? {
        "execution" => WindowStart::Execution,
        _ => WindowStart::Prewarm,
    };
    let min_samples = p.u64_or("min_samples", 5)?;
    let model = match p.str("oob_model")?.unwrap_or("autoarima") {
        "persistence" => None,
        spec => {
            Some(nimbus_forecast::models::parse(spec).map_err(|e| p.error("oob_model", format!("{e}, persistence")))?)
        }
    };
    let oob = OobForecast {
        model,
        history: p.usize_in("oob_history", 32, 3..=1_000)?,
        min_history: p.usize_in("oob_min_history", 6, 1..=1_000)?,
    };
    Ok(Hybrid { range_min, min_samples, start, oob, apps: Vec::new() })
}

fn hybrid(p: &Params) -> Result<Box<dyn KeepAlive>, ParamError> {
    let policy = hybrid_from(p)?;
    p.finish(&[])?;
    Ok(Box::new(policy))
}

fn faascache(p: &Params) -> Result<Box<dyn KeepAlive>, ParamError> {
    let variant = match p.choice_or("variant", &["gdsf", "lru", "freq", "size"], "gdsf")? {
        "lru" => CacheVariant::Lru,
        "freq" => CacheVariant::Freq,
        "size" => CacheVariant::Size,
        _ => CacheVariant::Gdsf,
    };
    let shared = p.bool_or("shared_priority", true)?;
    p.finish(&[])?;
    Ok(Box::new(FaasCache { variant, clock: 0.0, shared }))
}

/// Every policy.
pub static REGISTRY: &[PolicyInfo] = &[
    PolicyInfo {
        name: "fixed",
        kind: "baseline",
        source: "OpenWhisk (10-min idle timeout); FaasCache's TTL",
        summary: "idle sandboxes stay loaded for a fixed time; LRU under memory pressure",
        params: &["keep_alive_min"],
        build: fixed,
    },
    PolicyInfo {
        name: "hybrid",
        kind: "baseline",
        source: "Shahrad et al., ATC'20 (Serverless in the Wild)",
        summary: "per-app idle-time histogram chooses pre-warm and keep-alive windows",
        params: &["range_min", "keepalive_from", "min_samples", "oob_model", "oob_history", "oob_min_history"],
        build: hybrid,
    },
    PolicyInfo {
        name: "faascache",
        kind: "baseline",
        source: "Fuerst and Sharma, ASPLOS'21 (FaasCache)",
        summary: "keep-alive as caching: Greedy-Dual-Size-Frequency eviction (or lru, freq, size)",
        params: &["variant", "shared_priority"],
        build: faascache,
    },
    PolicyInfo {
        name: "dfaas",
        kind: "paper",
        source: "DFaaS, SoCC'24 (delay-tolerant functions)",
        summary: "non-HTTP invocations wait up to a tolerance for a busy sandbox instead of cold-starting",
        params: &["keep_alive_min", "tolerance_s"],
        build: crate::dfaas::build,
    },
    PolicyInfo {
        name: "faascale",
        kind: "paper",
        source: "Faascale, SoCC'24 (vertical memory scaling of microVMs)",
        summary: "fixed keep-alive; extra concurrent instances grow the app's microVM by pre-populated memory blocks",
        params: &["keep_alive_min", "populate_ms_per_gb", "process_ms"],
        build: crate::faascale::build,
    },
    PolicyInfo {
        name: "knative",
        kind: "baseline",
        source: "Knative Serving's Pod Autoscaler (KPA)",
        summary: "pods sized every 2 s from the concurrency averaged over 60 s (6 s in panic mode); requests queue at the activator",
        params: &["target", "stable_window_s", "panic_window_s", "panic_threshold", "tick_s"],
        build: crate::kpa::build,
    },
    PolicyInfo {
        name: "instainfer",
        kind: "paper",
        source: "InstaInfer, SoCC'24 (opportunistic pre-loading)",
        summary: "hybrid pre-warming, plus models pre-loaded into idle sandboxes in Poisson windows",
        params: &["range_min", "keepalive_from", "min_samples", "p_load", "p_offload", "budget_mb"],
        build: crate::instainfer::build,
    },
];

/// Finds a policy.
pub fn find(name: &str) -> Option<&'static PolicyInfo> {
    REGISTRY.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact-integer variance test gives the floating-point formula's
    /// windows on random histograms, near the threshold included.
    #[test]
    fn incremental_windows_equal_the_formula() {
        let mut rng = nimbus_sim::RngStreams::new(11).stream("bins");
        for case in 0..20_000 {
            let n = 1 + rng.index(240);
            let mut h = Histogram { bins: vec![0; n], ..Histogram::default() };
            let spikes = 1 + rng.index(4);
            for _ in 0..(1 + rng.index(200)) {
                // Mostly a few bins, sometimes spread: both sides of cv = 2.
                let bin = if rng.bernoulli(0.7) { rng.index(spikes.min(n)) } else { rng.index(n) };
                h.add(bin, 1 + rng.below(if case % 3 == 0 { 1000 } else { 3 }));
            }
            let direct = hybrid_windows(&h.bins, 0, None, 5);
            let fast = windows_of(&h.bins, h.in_bounds, Some(h.sum_sq), 0, None, 5);
            assert_eq!(direct, fast, "{:?}", h.bins);
        }
        // On the threshold itself: one idle time in five bins has cv = 2
        // exactly (n·Σb² = 5·(Σb)² = 5), so the formula decides.
        let mut bins = vec![0u32; 5];
        bins[0] = 1;
        let h = Histogram { in_bounds: 1, sum_sq: 1, bins: bins.clone(), ..Histogram::default() };
        assert_eq!(windows_of(&h.bins, 1, Some(1), 0, None, 1), hybrid_windows(&bins, 0, None, 1));
    }

    #[test]
    fn hybrid_rules_by_hand() {
        // Concentrated idle times (all at 10 minutes): CV high; head 10,
        // tail 11 minutes -> pre-warm 9, keep-alive 12.1.
        let mut bins = vec![0u32; 240];
        bins[10] = 20;
        let (prewarm, keep) = hybrid_windows(&bins, 0, None, 5);
        assert!((prewarm - 9.0).abs() < 1e-9 && (keep - 12.1).abs() < 1e-9, "{prewarm} {keep}");
        // Too few samples: the standard policy.
        let mut few = vec![0u32; 240];
        few[10] = 2;
        assert_eq!(hybrid_windows(&few, 0, None, 5), (0.0, 240.0));
        // Flat histogram: CV < 2.
        let flat = vec![1u32; 240];
        assert_eq!(hybrid_windows(&flat, 0, None, 5), (0.0, 240.0));
        // Mostly out of bounds: from the forecast next idle time (300 min).
        let (p, k) = hybrid_windows(&bins, 30, Some(300.0), 5);
        assert!((p - 255.0).abs() < 1e-9 && (k - 90.0).abs() < 1e-9);
    }

    #[test]
    fn out_of_bound_idle_times_are_forecast_by_arima() {
        let params = Params::new("policy", None);
        let oob = hybrid_from(&params).expect("defaults").oob;
        // Too short for the model: the mean of the last three.
        assert_eq!(oob.next(&[300.0, 600.0, 900.0, 1200.0]), Some(900.0));
        assert_eq!(oob.next(&[]), None);
        // An alternating pattern the persistence rule misses and an
        // ARIMA captures (the last value was high, so the next is low).
        let alternating: Vec<f64> = (0..24).map(|i| if i % 2 == 0 { 300.0 } else { 900.0 }).collect();
        let f = oob.next(&alternating).expect("a forecast");
        assert!(f < 400.0, "{f}");
        let persistence = OobForecast { model: None, history: 32, min_history: 6 };
        assert_eq!(persistence.next(&alternating), Some(700.0));
    }

    #[test]
    fn gdsf_prefers_frequent_costly_small_apps_and_ages_with_the_clock() {
        let mut c = FaasCache { variant: CacheVariant::Gdsf, clock: 0.0, shared: true };
        let now = SimTime::ZERO;
        let small_hot = c.priority_on_use(0, now, 128, 1000.0, 5);
        let big_cold = c.priority_on_use(1, now, 1024, 1000.0, 1);
        assert!((small_hot - 5.0 * 1000.0 / 128.0).abs() < 1e-9);
        assert!(small_hot > big_cold);
        c.on_evict(1, big_cold, true);
        let again = c.priority_on_use(1, now, 1024, 1000.0, 1);
        assert!((again - (big_cold + 1000.0 / 1024.0)).abs() < 1e-9);
    }
}
