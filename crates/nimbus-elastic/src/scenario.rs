//! Building an elastic run from scenario parameters.
//!
//! Keys:
//! - `[workload]`, `kind`:
//!   - `synthetic` (the embedded default): `days` (30), `peak_rate`
//!     (samples/s, 20,000), `bursts_per_day` (2): see [`crate::demand`];
//!     each seed draws its own series (noise and burst times), and every
//!     policy of a seed sees the same one.
//!   - `csv`: `path`, `column` (a timestamped CSV, e.g. Lucid's
//!     `cluster_throughput.csv` and `submit_job_all`), `peak_rate`,
//!     `repeat` (1: the series back to back that many times).
//!   - `gaia`: `path` (a GAIA job trace: hourly arrivals), `peak_rate`,
//!     `repeat`.
//!
//!   A missing file falls back to the synthetic series, and the results
//!   say so.
//! - `[cluster]`: `worker_rate` (a, samples/s of one worker, 1,000),
//!   `contention` (b, 0.002), `min_workers` (1), `max_workers` (200),
//!   `scale_up_delay_s` (120), `restart_downtime_s` (60), `partitions`
//!   (64), `partition_skew` (Zipf exponent, 0.5), `slo_lag_s` (freshness
//!   SLO, 300), `warmup_days` (2: left out of the metrics).

use std::path::PathBuf;

use nimbus_sim::estimate::Estimate;
use nimbus_sim::output::RunOutput;
use nimbus_sim::params::{ParamError, Params};

use crate::demand::{self, Demand};
use crate::engine::{self, Cluster, Throughput};
use crate::policy::{self, Build};

/// Why a scenario cannot be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A key is missing, mistyped or unknown.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A data file is malformed.
    #[error(transparent)]
    Trace(#[from] nimbus_trace::TraceError),
    /// The settings cannot work.
    #[error("{0}")]
    Invalid(String),
}

/// A prepared elastic scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The demand of a file (every seed), or of seed 1 when synthetic.
    pub demand: Demand,
    /// Synthetic demand settings (days, peak rate, bursts per day): each
    /// run draws its series from its seed.
    synthetic: Option<(f64, f64, f64)>,
    /// The cluster.
    pub cluster: Cluster,
    fallbacks: Vec<String>,
}

/// The longest run accepted (a year of seconds).
const MAX_DAYS: f64 = 366.0;

impl Scenario {
    /// Reads `[workload]` and `[cluster]`.
    pub fn from_params(root: &Params) -> Result<Scenario, ScenarioError> {
        let empty = Params::new("workload", None);
        let w = root.table("workload")?.unwrap_or(&empty);
        let kind = w.choice_or("kind", &["synthetic", "csv", "gaia"], "synthetic")?;
        let peak_rate = w.f64_in("peak_rate", 20_000.0, 1e-6..=1e12)?;
        let mut fallbacks = Vec::new();
        let mut synthetic_settings = None;
        let mut synthetic = |w: &Params| -> Result<Demand, ParamError> {
            let days = w.f64_in("days", 30.0, 1.0 / 24.0..=MAX_DAYS)?;
            let bursts = w.f64_in("bursts_per_day", 2.0, 0.0..=100.0)?;
            synthetic_settings = Some((days, peak_rate, bursts));
            Ok(demand::synthetic(days, peak_rate, bursts, 1))
        };
        let demand = match kind {
            "synthetic" => {
                w.finish(&["kind", "days", "peak_rate", "bursts_per_day"])?;
                synthetic(w)?
            }
            _ => {
                w.finish(&["kind", "path", "column", "peak_rate", "repeat", "days", "bursts_per_day"])?;
                let path = PathBuf::from(w.required_str("path")?);
                let repeat = w.usize_in("repeat", 1, 1..=1000)?;
                if !path.exists() {
                    fallbacks.push(format!(
                        "{} is absent: the synthetic diurnal series with bursts stands in",
                        path.display()
                    ));
                    synthetic(w)?
                } else {
                    let series = if kind == "csv" {
                        let column = w.required_str("column")?;
                        nimbus_trace::series::read_column(nimbus_trace::Source::file(&path), column)?
                    } else {
                        nimbus_trace::series::read_arrival_counts(nimbus_trace::Source::file(&path), 1.0)?
                    };
                    if let Some(i) = series.first_missing() {
                        return Err(ScenarioError::Invalid(format!(
                            "{}: series `{}` has a gap at position {i} ({} missing values); fill it first",
                            path.display(),
                            series.name,
                            series.missing()
                        )));
                    }
                    let values: Vec<f64> = series.values.iter().map(|v| v.max(0.0)).collect();
                    let total = values.len().saturating_mul(repeat);
                    let days = total as f64 * series.step_s as f64 / 86_400.0;
                    if days > MAX_DAYS {
                        return Err(ScenarioError::Invalid(format!(
                            "{}: {days:.0} days of demand; at most {MAX_DAYS}",
                            path.display()
                        )));
                    }
                    let rates: Vec<f64> = values.iter().copied().cycle().take(total).collect();
                    Demand { step_s: series.step_s, rates }.scaled_to_peak(peak_rate)
                }
            }
        };
        let empty_cluster = Params::new("cluster", None);
        let c = root.table("cluster")?.unwrap_or(&empty_cluster);
        c.finish(&[
            "worker_rate",
            "contention",
            "min_workers",
            "max_workers",
            "scale_up_delay_s",
            "restart_downtime_s",
            "partitions",
            "partition_skew",
            "slo_lag_s",
            "warmup_days",
        ])?;
        let min_workers = c.u32_in("min_workers", 1, 0..=1_000_000)?;
        let max_workers = c.u32_in("max_workers", 200, 1..=1_000_000)?;
        if min_workers > max_workers {
            return Err(ScenarioError::Invalid(format!(
                "[cluster] min_workers ({min_workers}) is above max_workers ({max_workers})"
            )));
        }
        let warmup_days = c.f64_in("warmup_days", 2.0, 0.0..=MAX_DAYS)?;
        let warmup_s = nimbus_sim::params::round_to_u64(warmup_days * 86_400.0).unwrap_or(0);
        if warmup_s >= demand.duration_s() {
            return Err(ScenarioError::Invalid(format!(
                "[cluster] warmup_days ({warmup_days}) covers the whole demand ({:.2} days)",
                demand.duration_s() as f64 / 86_400.0
            )));
        }
        let cluster = Cluster {
            throughput: Throughput {
                per_worker: c.f64_in("worker_rate", 1000.0, 1e-6..=1e12)?,
                contention: c.f64_in("contention", 0.002, 0.0..=10.0)?,
            },
            min_workers,
            max_workers,
            scale_up_delay_s: c.u64_in("scale_up_delay_s", 120, 0..=86_400)?,
            restart_downtime_s: c.u64_in("restart_downtime_s", 60, 0..=86_400)?,
            partitions: Cluster::zipf_partitions(
                c.usize_in("partitions", 64, 1..=100_000)?,
                c.f64_in("partition_skew", 0.5, 0.0..=5.0)?,
            ),
            slo_lag_s: c.f64_in("slo_lag_s", 300.0, 1.0..=86_400.0)?,
            warmup_s,
        };
        Ok(Scenario { demand, synthetic: synthetic_settings, cluster, fallbacks })
    }

    /// Builds `policy` with `params` to check them.
    pub fn check(&self, policy: &str, params: &Params) -> Result<(), ScenarioError> {
        let peak_rate = self.demand.rates.iter().copied().fold(0.0, f64::max);
        self.build(policy, params, 0, peak_rate).map(|_| ())
    }

    fn build(
        &self,
        name: &str,
        params: &Params,
        seed: u64,
        peak_rate: f64,
    ) -> Result<Box<dyn engine::Autoscaler>, ScenarioError> {
        let info = policy::find(name).ok_or_else(|| {
            ScenarioError::Invalid(format!(
                "unknown elastic policy {name:?}; available: {}",
                policy::REGISTRY.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
            ))
        })?;
        params.finish(info.params)?;
        Ok((info.build)(&Build { params, peak_rate, seed })?)
    }

    /// Runs one policy with one seed.
    pub fn run(
        &self,
        policy: &str,
        params: &Params,
        seed: u64,
        progress: &mut dyn FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        let demand = match self.synthetic {
            Some((days, peak, bursts)) => demand::synthetic(days, peak, bursts, seed),
            None => self.demand.clone(),
        };
        let peak_rate = demand.rates.iter().copied().fold(0.0, f64::max);
        let mut autoscaler = self.build(policy, params, seed, peak_rate)?;
        Ok(engine::run(&demand, &self.cluster, autoscaler.as_mut(), progress))
    }

    /// Data substitutions.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// Every metric a run reports.
    pub fn metric_names(&self) -> Vec<String> {
        engine::METRICS.iter().map(|m| m.to_string()).collect()
    }

    /// What one run needs: the demand, per-minute history and freshness
    /// samples (8 bytes each), and one event per simulated second.
    pub fn estimate(&self, _policy: &str, _params: &Params) -> Result<Estimate, ScenarioError> {
        let seconds = self.demand.duration_s();
        let minutes = seconds / 60 + 1;
        let mut e = Estimate::default();
        e.memory("demand", (self.demand.rates.len() as u64).saturating_mul(8));
        e.memory("per-minute rates and freshness", minutes.saturating_mul(16));
        e.memory("forecast window", 1 << 20);
        e.events("simulated seconds", seconds);
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(text: &[(&str, &str)]) -> Params {
        let mut root = Params::new("", None);
        for (k, v) in text {
            let value = if let Ok(i) = v.parse::<i64>() {
                nimbus_sim::params::Value::Int(i)
            } else if let Ok(x) = v.parse::<f64>() {
                nimbus_sim::params::Value::Float(x)
            } else {
                nimbus_sim::params::Value::Str((*v).to_string())
            };
            root.set_path(k, nimbus_sim::params::Param { value, span: None }).expect("settable");
        }
        root
    }

    #[test]
    fn kale_beats_hpa_on_a_bursty_diurnal_week() {
        let root = params(&[("workload.days", "7"), ("cluster.warmup_days", "3")]);
        let s = Scenario::from_params(&root).expect("valid");
        let none = Params::new("policy", None);
        let hpa = s.run("hpa", &none, 1, &mut |_| {}).expect("runs");
        let kale = s.run("kale", &none, 1, &mut |_| {}).expect("runs");
        let lag = |o: &RunOutput| o.metric("accumulated_lag_msample_h").expect("metric");
        assert!(lag(&kale) < lag(&hpa), "kale {} vs hpa {}", lag(&kale), lag(&hpa));
        // Every sample is served or still queued.
        for o in [&hpa, &kale] {
            let arrived = o.metric("arrived_msamples").expect("metric") * 1e6;
            let served = o.metric("served_pct").expect("metric") / 100.0 * arrived;
            let queued = o.metric("unserved_samples_end").expect("metric");
            assert!((served + queued - arrived).abs() <= 1e-9 * arrived, "{served} + {queued} vs {arrived}");
            assert!(o.metric("workers_mean").expect("metric") >= 0.0);
        }
        assert!(kale.notes.is_empty(), "{:?}", kale.notes);
    }

    #[test]
    fn bad_settings_are_named() {
        let e = Scenario::from_params(&params(&[("cluster.min_workers", "10"), ("cluster.max_workers", "5")]))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("min_workers (10) is above max_workers (5)"), "{e}");
        let e = Scenario::from_params(&params(&[("workload.days", "1"), ("cluster.warmup_days", "2")]))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("covers the whole demand"), "{e}");
        let s = Scenario::from_params(&params(&[("workload.days", "3")])).expect("valid");
        let e = s.check("vpa", &Params::new("policy", None)).expect_err("refused").to_string();
        assert!(e.contains("available: hpa"), "{e}");
        let mut p = Params::new("policy", None);
        p.set_path(
            "model",
            nimbus_sim::params::Param { value: nimbus_sim::params::Value::Str("prophet".into()), span: None },
        )
        .expect("settable");
        assert!(s.check("kale", &p).expect_err("refused").to_string().contains("unknown model"));
    }
}
