//! Gavel's formats: the oracle throughput table (JSON), job traces (TSV) and
//! the synthetic job generator of its continuous experiments.
//!
//! Source: Narayanan et al., "Heterogeneity-Aware Cluster Scheduling Policies
//! for Deep Learning Workloads", OSDI 2020; formats as in
//! `stanford-futuredata/gavel` (`scheduler/utils.py`, `job_table.py`).
//!
//! The generator replays Gavel's random streams bit for bit through
//! [`PyRandom`] (job parameters from `random.Random(seed + 2)`, inter-arrival
//! times from `random.Random(seed + 3)`), so a Nimbus run sees exactly the job
//! sequence the reference simulator sees for the same seed and table.

use std::collections::BTreeMap;

use nimbus_sim::PyRandom;

use crate::error::{Fields, TraceError};
use crate::input::Source;
use crate::input::{MAX_DOCUMENT_BYTES, for_each_line, quote, read_document};

/// `(job type, scale factor)`: Gavel's key for a throughput entry.
pub type JobKey = (String, u32);

/// Throughputs of one job key on one worker type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ThroughputEntry {
    /// Isolated throughput, steps per second.
    pub isolated: f64,
    /// Space-shared throughputs `(self, other)` with another job key.
    pub pairs: BTreeMap<JobKey, (f64, f64)>,
}

/// Gavel's oracle throughput table: worker type → job key → throughputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ThroughputTable {
    /// Entries by worker type (e.g. `v100`, `p100_unconsolidated`).
    pub by_worker: BTreeMap<String, BTreeMap<JobKey, ThroughputEntry>>,
    /// Where the table came from (a path or `synthetic`).
    pub origin: String,
}

impl ThroughputTable {
    /// Isolated throughput of `(job_type, scale_factor)` on `worker`.
    pub fn isolated(&self, worker: &str, job_type: &str, scale_factor: u32) -> Option<f64> {
        self.by_worker.get(worker)?.get(&(job_type.to_string(), scale_factor)).map(|e| e.isolated)
    }

    /// Worker types without the `_unconsolidated` variants, sorted.
    pub fn worker_types(&self) -> Vec<String> {
        self.by_worker.keys().filter(|w| !w.contains("unconsolidated")).cloned().collect()
    }

    /// Reads `simulation_throughputs.json` (or any file of that schema).
    pub fn read<'a>(source: impl Into<Source<'a>>) -> Result<Self, TraceError> {
        let source = source.into();
        let path = source.name();
        let text = read_document(source, MAX_DOCUMENT_BYTES)?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            TraceError::parse(path, e.line() as u64, e.column() as u64, None, format!("invalid JSON: {e}"))
        })?;
        let workers =
            json.as_object().ok_or_else(|| TraceError::file(path, "expected a JSON object keyed by worker type"))?;
        let mut by_worker = BTreeMap::new();
        for (worker, jobs) in workers {
            let w = quote(worker);
            let jobs = jobs.as_object().ok_or_else(|| {
                TraceError::file(path, format!("worker type `{w}`: expected an object keyed by job type"))
            })?;
            let mut entries = BTreeMap::new();
            for (key, value) in jobs {
                let k = quote(key);
                let job_key = parse_job_key(key).ok_or_else(|| {
                    TraceError::file(path, format!("worker `{w}`: expected a key like \"('Model', 1)\", found \"{k}\""))
                })?;
                let obj = value
                    .as_object()
                    .ok_or_else(|| TraceError::file(path, format!("worker `{w}`, job {k}: expected an object")))?;
                let isolated = obj.get("null").and_then(serde_json::Value::as_f64).ok_or_else(|| {
                    TraceError::file(
                        path,
                        format!("worker `{w}`, job {k}: missing numeric \"null\" (isolated throughput)"),
                    )
                })?;
                if !(isolated.is_finite() && isolated >= 0.0) {
                    return Err(TraceError::file(
                        path,
                        format!("worker `{w}`, job {k}: negative or non-finite throughput {isolated}"),
                    ));
                }
                let mut pairs = BTreeMap::new();
                for (other, tputs) in obj {
                    if other == "null" {
                        continue;
                    }
                    let o = quote(other);
                    let other_key = parse_job_key(other).ok_or_else(|| {
                        TraceError::file(path, format!("worker `{w}`, job {k}: bad pair key \"{o}\""))
                    })?;
                    let pair =
                        tputs.as_array().filter(|a| a.len() == 2).and_then(|a| Some((a[0].as_f64()?, a[1].as_f64()?)));
                    let pair = pair.ok_or_else(|| {
                        TraceError::file(
                            path,
                            format!("worker `{w}`, job {k} with {o}: expected [self, other] throughputs"),
                        )
                    })?;
                    pairs.insert(other_key, pair);
                }
                entries.insert(job_key, ThroughputEntry { isolated, pairs });
            }
            by_worker.insert(worker.clone(), entries);
        }
        Ok(ThroughputTable { by_worker, origin: path.display().to_string() })
    }

    /// A table of the same shape generated from a compact model fitted to
    /// Gavel's `simulation_throughputs.json`, for runs without `../shared/data`.
    ///
    /// Per model family: the V100 throughput at the smallest batch size and a
    /// power law in batch size (least squares in log space over the family's
    /// batch sizes), the median P100/V100 and K80/V100 ratios, and the median
    /// multi-GPU speed-up at 2, 4 and 8 GPUs on V100. The fit keeps each
    /// family's character (e.g. Recommendation runs faster on P100 and K80
    /// than on V100 in the reference table) but not the per-entry noise, and
    /// it has no space-sharing pairs.
    pub fn synthetic() -> Self {
        let mut by_worker: BTreeMap<String, BTreeMap<JobKey, ThroughputEntry>> = BTreeMap::new();
        for template in JOB_TEMPLATES {
            let family = FAMILIES
                .iter()
                .find(|f| template.model.starts_with(f.prefix))
                .expect("every template belongs to a family");
            let v100 = match template.batch_size {
                Some(bs) => {
                    family.v100_at_ref * (f64::from(bs) / f64::from(family.ref_batch_size)).powf(family.batch_exponent)
                }
                None => family.v100_at_ref,
            };
            let scale_factors: &[u32] = if template.distributed { &[1, 2, 4, 8] } else { &[1] };
            for &sf in scale_factors {
                let speedup = match sf {
                    1 => 1.0,
                    2 => family.speedup[0],
                    4 => family.speedup[1],
                    _ => family.speedup[2],
                };
                for (worker, ratio) in [("v100", 1.0), ("p100", family.p100_ratio), ("k80", family.k80_ratio)] {
                    by_worker.entry(worker.to_string()).or_default().insert(
                        (template.model.to_string(), sf),
                        ThroughputEntry { isolated: v100 * ratio * speedup, pairs: BTreeMap::new() },
                    );
                }
            }
        }
        ThroughputTable { by_worker, origin: "synthetic (fitted to Gavel simulation_throughputs.json)".into() }
    }
}

fn parse_job_key(key: &str) -> Option<JobKey> {
    // "('ResNet-18 (batch size 16)', 1)"
    let inner = key.trim().strip_prefix("('")?.strip_suffix(')')?;
    let (model, sf) = inner.rsplit_once("',")?;
    Some((model.to_string(), sf.trim().parse().ok()?))
}

/// One job template of Gavel's `JobTable`, in table order (the order matters:
/// the generator picks templates by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobTemplate {
    /// The job type as it appears in throughput tables and traces.
    pub model: &'static str,
    /// Batch size, for families that have one.
    pub batch_size: Option<u32>,
    /// Whether the job can run on more than one GPU.
    pub distributed: bool,
}

macro_rules! templates {
    ($($model:literal, $bs:expr, $dist:literal;)*) => {
        &[$(JobTemplate { model: $model, batch_size: $bs, distributed: $dist }),*]
    };
}

/// Gavel's 26 job templates in `JobTable` order.
pub const JOB_TEMPLATES: &[JobTemplate] = templates! {
    "ResNet-18 (batch size 16)", Some(16), true;
    "ResNet-18 (batch size 32)", Some(32), true;
    "ResNet-18 (batch size 64)", Some(64), true;
    "ResNet-18 (batch size 128)", Some(128), true;
    "ResNet-18 (batch size 256)", Some(256), true;
    "ResNet-50 (batch size 16)", Some(16), true;
    "ResNet-50 (batch size 32)", Some(32), true;
    "ResNet-50 (batch size 64)", Some(64), true;
    "ResNet-50 (batch size 128)", Some(128), true;
    "Transformer (batch size 16)", Some(16), true;
    "Transformer (batch size 32)", Some(32), true;
    "Transformer (batch size 64)", Some(64), true;
    "Transformer (batch size 128)", Some(128), true;
    "Transformer (batch size 256)", Some(256), true;
    "LM (batch size 5)", Some(5), true;
    "LM (batch size 10)", Some(10), true;
    "LM (batch size 20)", Some(20), true;
    "LM (batch size 40)", Some(40), true;
    "LM (batch size 80)", Some(80), true;
    "Recommendation (batch size 512)", Some(512), false;
    "Recommendation (batch size 1024)", Some(1024), false;
    "Recommendation (batch size 2048)", Some(2048), false;
    "Recommendation (batch size 4096)", Some(4096), false;
    "Recommendation (batch size 8192)", Some(8192), false;
    "A3C", None, false;
    "CycleGAN", None, false;
};

struct Family {
    prefix: &'static str,
    ref_batch_size: u32,
    v100_at_ref: f64,
    batch_exponent: f64,
    p100_ratio: f64,
    k80_ratio: f64,
    speedup: [f64; 3],
}

/// Fitted to `simulation_throughputs.json` (Gavel commit c4fa400); see
/// [`ThroughputTable::synthetic`]. Families without multi-GPU entries keep
/// a placeholder speed-up that is never used.
const FAMILIES: &[Family] = &[
    Family {
        prefix: "ResNet-18",
        ref_batch_size: 16,
        v100_at_ref: 37.18,
        batch_exponent: -0.404,
        p100_ratio: 0.93,
        k80_ratio: 0.15,
        speedup: [3.08, 3.83, 10.62],
    },
    Family {
        prefix: "ResNet-50",
        ref_batch_size: 16,
        v100_at_ref: 12.05,
        batch_exponent: -0.740,
        p100_ratio: 0.63,
        k80_ratio: 0.15,
        speedup: [1.54, 2.09, 3.51],
    },
    Family {
        prefix: "Transformer",
        ref_batch_size: 16,
        v100_at_ref: 15.25,
        batch_exponent: -0.655,
        p100_ratio: 0.74,
        k80_ratio: 0.29,
        speedup: [1.81, 2.28, 6.02],
    },
    Family {
        prefix: "LM",
        ref_batch_size: 5,
        v100_at_ref: 114.74,
        batch_exponent: -0.475,
        p100_ratio: 0.83,
        k80_ratio: 0.25,
        speedup: [2.02, 1.71, 7.68],
    },
    Family {
        prefix: "Recommendation",
        ref_batch_size: 512,
        v100_at_ref: 22.59,
        batch_exponent: -0.784,
        p100_ratio: 2.22,
        k80_ratio: 1.40,
        speedup: [1.0, 1.0, 1.0],
    },
    Family {
        prefix: "A3C",
        ref_batch_size: 1,
        v100_at_ref: 7.18,
        batch_exponent: 0.0,
        p100_ratio: 0.79,
        k80_ratio: 0.48,
        speedup: [1.0, 1.0, 1.0],
    },
    Family {
        prefix: "CycleGAN",
        ref_batch_size: 1,
        v100_at_ref: 4.43,
        batch_exponent: 0.0,
        p100_ratio: 0.54,
        k80_ratio: 0.11,
        speedup: [1.0, 1.0, 1.0],
    },
];

/// One job of a Gavel-format trace (or of the generator).
#[derive(Debug, Clone, PartialEq)]
pub struct GavelJob {
    /// Job type, a key of the throughput table.
    pub job_type: String,
    /// Steps to run (a float: generated jobs have fractional steps).
    pub total_steps: f64,
    /// GPUs the job runs on.
    pub scale_factor: u32,
    /// Priority weight (1 for normal jobs).
    pub priority_weight: f64,
    /// SLO as a multiple of the isolated duration, when the trace has one.
    pub slo: Option<f64>,
    /// Arrival time, seconds from the start of the trace.
    pub arrival_s: f64,
    /// Isolated duration on the reference GPU, when known.
    pub duration_s: Option<f64>,
    /// Batch-size adaptation mode (Shockwave traces: static, gns, accordion).
    pub mode: Option<String>,
}

const OLD_COLUMNS: &[&str] =
    &["job_type", "command", "num_steps_arg", "needs_data_dir", "total_steps", "arrival_time_s", "scale_factor"];
const CURRENT_COLUMNS: &[&str] = &[
    "job_type",
    "command",
    "working_directory",
    "num_steps_arg",
    "needs_data_dir",
    "total_steps",
    "scale_factor",
    "priority_weight",
    "SLO",
    "arrival_time_s",
];
const SHOCKWAVE_COLUMNS: &[&str] = &[
    "job_type",
    "command",
    "working_directory",
    "num_steps_arg",
    "needs_data_dir",
    "total_steps",
    "scale_factor",
    "mode",
    "priority_weight",
    "SLO",
    "duration_s",
    "arrival_time_s",
];

/// Reads a Gavel or Shockwave trace: tab-separated, 7 columns (the old
/// per-VC MSR traces), 10 columns (Gavel's current format) or 12 columns
/// (Shockwave). Jobs come back in file order.
pub fn read_trace<'a>(source: impl Into<Source<'a>>) -> Result<Vec<GavelJob>, TraceError> {
    let source = source.into();
    let path = source.name();
    let mut jobs = Vec::new();
    for_each_line(source, |line, raw| {
        if raw.trim().is_empty() {
            return Ok(());
        }
        let values: Vec<&str> = raw.split('\t').collect();
        let names = match values.len() {
            7 => OLD_COLUMNS,
            10 => CURRENT_COLUMNS,
            12 => SHOCKWAVE_COLUMNS,
            n => {
                return Err(TraceError::parse(
                    path,
                    line,
                    0,
                    None,
                    format!("expected 7, 10 or 12 tab-separated columns (Gavel old, Gavel, Shockwave), found {n}"),
                ));
            }
        };
        let fields = Fields::new(path, line, names, values);
        let col = |name: &str| names.iter().position(|n| *n == name).expect("column exists in its format");
        let job_type = fields.non_empty(col("job_type"))?.to_string();
        let total_steps = fields.positive_f64(col("total_steps"))?;
        let scale_factor = fields.positive_u64(col("scale_factor"))?;
        let scale_factor =
            u32::try_from(scale_factor).map_err(|_| fields.invalid(col("scale_factor"), "scale factor too large"))?;
        let arrival_s = fields.non_negative_f64(col("arrival_time_s"))?;
        let (priority_weight, slo, duration_s, mode) = match names.len() {
            7 => (1.0, None, None, None),
            _ => {
                let priority = fields.positive_f64(col("priority_weight"))?;
                let slo = fields.f64(col("SLO"))?;
                let duration = if names.len() == 12 { Some(fields.non_negative_f64(col("duration_s"))?) } else { None };
                let mode =
                    if names.len() == 12 { Some(fields.non_empty(col("mode"))?.trim().to_string()) } else { None };
                (priority, (slo > 0.0).then_some(slo), duration, mode)
            }
        };
        jobs.push(GavelJob { job_type, total_steps, scale_factor, priority_weight, slo, arrival_s, duration_s, mode });
        Ok(())
    })?;
    Ok(jobs)
}

/// Options of Gavel's synthetic generator (`utils.generate_job`).
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorOptions {
    /// Mean arrival rate, jobs per hour (Poisson arrivals).
    pub jobs_per_hour: f64,
    /// Draw scale factors 1/2/4/8 with probability 0.70/0.10/0.15/0.05.
    pub multi_gpu: bool,
    /// Give 20% of jobs priority weight 5.
    pub multi_priority: bool,
    /// Use this duration (seconds on a V100) for every job.
    pub fixed_duration_s: Option<f64>,
}

/// Gavel's continuous-experiment job stream, bit-exact with the reference
/// for the same seed and throughput table.
#[derive(Debug, Clone)]
pub struct Generator {
    options: GeneratorOptions,
    job_rng: PyRandom,
    arrival_rng: PyRandom,
    next_arrival_s: f64,
}

impl Generator {
    /// The stream for Gavel seed `seed`.
    pub fn new(seed: u64, options: GeneratorOptions) -> Self {
        assert!(options.jobs_per_hour > 0.0, "arrival rate must be positive");
        Generator {
            options,
            job_rng: PyRandom::new(seed + 2),
            arrival_rng: PyRandom::new(seed + 3),
            next_arrival_s: 0.0,
        }
    }

    /// The next job; its steps are its duration times its isolated V100
    /// throughput in `table`. Fails if the table lacks the drawn job type.
    pub fn next_job(&mut self, table: &ThroughputTable) -> Result<GavelJob, String> {
        let rng = &mut self.job_rng;
        // generate_job draws the scale factor first, always (its
        // `always_generate_scale_factor` default), then the duration, then
        // the template.
        let r = rng.uniform(0.0, 1.0);
        let mut scale_factor = if (0.7..=0.8).contains(&r) {
            2
        } else if (0.8..=0.95).contains(&r) {
            4
        } else if r >= 0.95 {
            8
        } else {
            1
        };
        let duration_s = match self.options.fixed_duration_s {
            Some(d) => d,
            None => {
                if rng.random() >= 0.8 {
                    60.0 * 10f64.powf(rng.uniform(3.0, 4.0))
                } else {
                    60.0 * 10f64.powf(rng.uniform(1.5, 3.0))
                }
            }
        };
        if !self.options.multi_gpu {
            scale_factor = 1;
        }
        let template = loop {
            let t = JOB_TEMPLATES[rng.choice_index(JOB_TEMPLATES.len())];
            if scale_factor == 1 || t.distributed {
                break t;
            }
        };
        let v100 = table
            .isolated("v100", template.model, scale_factor)
            .ok_or_else(|| format!("throughput table has no v100 entry for ('{}', {scale_factor})", template.model))?;
        let mut priority_weight = 1.0;
        if self.options.multi_priority {
            let r = rng.uniform(0.0, 1.0);
            if r <= 0.2 {
                priority_weight = 5.0;
            }
        }
        let arrival_s = self.next_arrival_s;
        let mean_interarrival_s = 3600.0 / self.options.jobs_per_hour;
        self.next_arrival_s += -(1.0 - self.arrival_rng.random()).ln() / (1.0 / mean_interarrival_s);
        Ok(GavelJob {
            job_type: template.model.to_string(),
            total_steps: duration_s * v100,
            scale_factor,
            priority_weight,
            slo: None,
            arrival_s,
            duration_s: Some(duration_s),
            mode: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_keys_parse() {
        assert_eq!(parse_job_key("('ResNet-18 (batch size 16)', 1)"), Some(("ResNet-18 (batch size 16)".into(), 1)));
        assert_eq!(parse_job_key("('A3C', 8)"), Some(("A3C".into(), 8)));
        assert_eq!(parse_job_key("A3C"), None);
    }

    #[test]
    fn synthetic_table_covers_every_template() {
        let t = ThroughputTable::synthetic();
        assert_eq!(t.worker_types(), ["k80", "p100", "v100"]);
        for template in JOB_TEMPLATES {
            for w in ["k80", "p100", "v100"] {
                let v = t.isolated(w, template.model, 1).expect("entry");
                assert!(v > 0.0);
            }
            assert_eq!(t.isolated("v100", template.model, 8).is_some(), template.distributed);
        }
    }

    /// The first jobs of Gavel's generator for seed 0 (single-GPU, synthetic
    /// table), checked against CPython running the same draws:
    ///   r = random.Random(2); a = random.Random(3)
    ///   for each job: r.uniform(0,1); r.random() (< 0.8 → 60*10**r.uniform(1.5,3), else 60*10**r.uniform(3,4));
    ///   template index = r._randbelow(26); next arrival += -log(1 - a.random()) * 1800.
    #[test]
    fn generator_replays_the_reference_stream() {
        let table = ThroughputTable::synthetic();
        let mut g = Generator::new(
            0,
            GeneratorOptions { jobs_per_hour: 2.0, multi_gpu: false, multi_priority: false, fixed_duration_s: None },
        );
        let jobs: Vec<GavelJob> = (0..3).map(|_| g.next_job(&table).expect("job")).collect();
        let got: Vec<(String, f64, f64)> =
            jobs.iter().map(|j| (j.job_type.clone(), j.duration_s.unwrap_or(0.0), j.arrival_s)).collect();
        let expected = expected_first_jobs();
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g.0, e.0);
            assert!((g.1 - e.1).abs() < 1e-9 * e.1.max(1.0), "{g:?} vs {e:?}");
            assert!((g.2 - e.2).abs() < 1e-9 * e.2.max(1.0), "{g:?} vs {e:?}");
        }
    }

    fn expected_first_jobs() -> Vec<(String, f64, f64)> {
        EXPECTED_FIRST_JOBS.iter().map(|(t, d, a)| (t.to_string(), *d, *a)).collect()
    }
    const EXPECTED_FIRST_JOBS: &[(&str, f64, f64)] = &[
        ("ResNet-18 (batch size 64)", 68344.35010595087, 0.0),
        ("Transformer (batch size 16)", 31016.60914593223, 489.172145820603),
        ("Recommendation (batch size 2048)", 2146.6088374387864, 1903.5496550581915),
    ];
}
