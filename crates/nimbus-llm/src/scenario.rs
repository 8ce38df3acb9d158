//! Building a serving run from scenario parameters.
//!
//! Keys:
//! - `[[replicas]]`: `gpu` (catalog name, e.g. `a100-80gb`), `count`, `tp`
//!   (GPUs per replica, default 1), `model` (loaded at start; QLM may load
//!   others), `gpu_hour_usd` (default from [`default_price`]), and roofline
//!   overrides `eta_bandwidth`, `eta_compute`, `iteration_overhead_ms`,
//!   `request_overhead_ms`.
//! - `[engine]`: `exec` = `auto` (default: `profile` where Vidur's tables
//!   cover the replica's model, GPU and TP, the roofline elsewhere, each
//!   choice a note in the results; mixtures of experts always the
//!   roofline) | `roofline` | `profile` (Vidur's GEMM and element-wise
//!   profiles under `profiles`, roofline attention; a warning where
//!   absent) | `fitted` (DistServe's forms from `distserve`, OPT models
//!   only); `network` (a Vidur
//!   `all_reduce.csv` for TP all-reduce; analytic when absent),
//!   `block_tokens` (16), `watermark` (0.01), `memory_fraction` (0.9),
//!   `max_seqs` (128), `preemption` (`recompute` | `swap`), `pcie_gbps`
//!   (25, swaps), `load_gbps` (25, model loads) and `load_fixed_s` (5),
//!   `horizon_s` (stop; requests left are reported unfinished).
//! - `[[workload.classes]]`: `name`, `ttft_s`, `tbt_ms` (mean per
//!   request), `deadline_s` (end to end).
//! - `[[workload.streams]]`: `name`, `model`, `class`, and
//!   - arrivals: `trace` + `format` (`azure` | `vidur` | `mooncake`), or
//!     `arrivals = "poisson"` / `"gamma"` with `rate` (req/s) and `cv`;
//!   - lengths: the trace's own, or `lengths` (a CSV of
//!     `num_prefill_tokens,num_decode_tokens`, sampled), or
//!     `prompt_tokens`/`output_tokens` (fixed);
//!   - `synthetic` (`azure-conv` | `azure-code` | `sharegpt`): the
//!     calibrated stand-in used when a file is absent (the results then
//!     say so and claims are not compared);
//!   - `rate_scale` (replay a trace this many times faster), `start_s`,
//!     `duration_s`, `max_requests`;
//!   - `over_length`: `reject` (default: requests longer than the model's
//!     context are rejected and reported) or `truncate` (prompts clipped so
//!     that prompt + output fits, as Vidur does).
//!
//! Relative paths are resolved against the working directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nimbus_sim::estimate::{Estimate, product, saturating};
use nimbus_sim::output::RunOutput;
use nimbus_sim::params::{ParamError, Params, round_to_u64};
use nimbus_sim::{RngStreams, SimDuration, SimTime};
use nimbus_trace::TraceError;
use nimbus_trace::llm;

use crate::engine::{self, Deployment, Fleet, ReplicaGroup};
use crate::exec::{AllReduce, BatchShape, Device, FittedPoly, ProfileTable, Roofline, RooflineParams, SharedExec};
use crate::model::{self, ModelSpec};
use crate::moesaic::{self, MoeExec, MoeSettings};
use crate::policy::MoeMode;
use crate::policy::{self, DispatchSpec};
use crate::qlm::Qlm;
use crate::replica::{Preemption, QueueOrder, SchedulerConfig, SchedulerKind};
use crate::request::{ClassSpec, RequestSpec};
use crate::router::Router;
use crate::workload::{self, Arrivals, Lengths, Stream};

/// Why a scenario cannot be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A key is missing, mistyped or unknown.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A data file is malformed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The combination of settings cannot work.
    #[error("{0}")]
    Invalid(String),
}

/// On-demand price per GPU-hour, $ (AWS us-east-1 list prices divided by
/// GPUs per instance: p4de.24xlarge for A100-80GB, p4d for A100-40GB,
/// p5.48xlarge for H100, g5.xlarge for A10, g6e-class for others).
pub fn default_price(gpu: &str) -> f64 {
    match gpu {
        "a100-80gb" => 5.12,
        "a100" => 4.10,
        "h100" => 12.29,
        "a10" => 1.01,
        "a40" => 1.50,
        "t4" => 0.53,
        "v100" => 3.06,
        _ => 2.0,
    }
}

#[derive(Debug, Clone)]
struct GroupSpec {
    gpu: String,
    count: u32,
    tp: u32,
    model: String,
    price: f64,
    overrides: RooflineOverrides,
}

#[derive(Debug, Clone, Copy, Default)]
struct RooflineOverrides {
    eta_bandwidth: Option<f64>,
    eta_compute: Option<f64>,
    iteration_overhead_ms: Option<f64>,
    request_overhead_ms: Option<f64>,
}

/// A prepared LLM-serving scenario.
#[derive(Debug)]
pub struct Scenario {
    fleet: Fleet,
    streams: Vec<Stream>,
    fallbacks: Vec<String>,
    notes: Vec<String>,
    moe: Option<MoeSettings>,
    /// Per group: what rebuilding its deployments for MoE placements needs.
    builds: Vec<GroupBuild>,
    memory_fraction: f64,
}

#[derive(Debug, Clone)]
struct GroupBuild {
    device: Device,
    params: RooflineParams,
    allreduce: AllReduce,
}

/// Policy `name` built with `params`.
fn build_policy(name: &str, params: &Params) -> Result<policy::PolicySpec, ScenarioError> {
    let info = policy::find(name).ok_or_else(|| {
        ScenarioError::Invalid(format!(
            "unknown llm policy `{name}`; available: {}",
            policy::REGISTRY.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
        ))
    })?;
    Ok((info.build)(params)?)
}

fn resolve(path: &str) -> PathBuf {
    PathBuf::from(path)
}

/// The profile model of `spec` at `tp` on `gpu` from Vidur's tables under
/// `profiles`, or why there is none.
fn profile_table(
    profiles: &str,
    spec: &ModelSpec,
    gpu: &str,
    tp: u32,
    roofline: &Roofline,
) -> Result<Result<ProfileTable, String>, ScenarioError> {
    let hf = spec.aliases.iter().find(|a| a.contains('/')).copied().unwrap_or(spec.name);
    let dir = Path::new(profiles).join("profiling/compute").join(gpu_profile_dir(gpu));
    let found = std::fs::read_dir(&dir).ok().and_then(|orgs| {
        orgs.flatten().find_map(|org| {
            std::fs::read_dir(org.path()).ok()?.flatten().find_map(|m| {
                let name = format!("{}/{}", org.file_name().to_string_lossy(), m.file_name().to_string_lossy());
                (name.to_ascii_lowercase() == hf).then(|| m.path().join("mlp.csv"))
            })
        })
    });
    let Some(path) = found.filter(|p| p.exists()) else {
        return Ok(Err(format!("no GEMM profile of {} on {gpu} under {profiles}", spec.name)));
    };
    let by_tp = llm::read_vidur_mlp(&path)?;
    let Some(times) = by_tp.get(&tp) else {
        return Ok(Err(format!("{} has no TP {tp} rows", path.display())));
    };
    let table = ProfileTable::new(times, roofline.clone(), format!("{} tp{tp} {gpu}", spec.name))
        .map_err(|e| ScenarioError::Invalid(format!("{}: {e}", path.display())))?;
    Ok(Ok(table))
}

fn gpu_profile_dir(gpu: &str) -> &'static str {
    if gpu.starts_with("h100") {
        "h100"
    } else if gpu.starts_with("a40") {
        "a40"
    } else {
        "a100"
    }
}

impl Scenario {
    /// Reads `replicas`, `engine` and `workload`.
    #[warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // user input: checked conversions only
    pub fn from_params(root: &Params) -> Result<Self, ScenarioError> {
        let mut fallbacks = Vec::new();
        let mut notes = Vec::new();
        let empty = Params::new("engine", None);
        let engine = root.table("engine")?.unwrap_or(&empty);
        let block_tokens = engine.u32_in("block_tokens", 16, 1..=1024)?;
        let watermark = engine.non_negative_f64_or("watermark", 0.01)?;
        let memory_fraction = engine.positive_f64_or("memory_fraction", 0.9)?;
        if watermark >= 0.5 || memory_fraction > 1.0 {
            return Err(engine.error("watermark", "watermark must be < 0.5 and memory_fraction <= 1").into());
        }
        let max_seqs = engine.u32_in("max_seqs", 128, 1..=65_536)?;
        let preemption = match engine.choice_or("preemption", &["recompute", "swap"], "recompute")? {
            "swap" => Preemption::Swap,
            _ => Preemption::Recompute,
        };
        let pcie = engine.positive_f64_or("pcie_gbps", 25.0)? * 1e9;
        let load_bw = engine.positive_f64_or("load_gbps", 25.0)? * 1e9;
        let load_fixed_s = engine.f64_in("load_fixed_s", 5.0, 0.0..=1e6)?;
        let horizon = SimDuration::from_nanos(engine.duration_ns_or("horizon_s", 4.0 * 3600.0, 1e9, true)?);
        let exec_kind = engine.choice_or("exec", &["auto", "roofline", "profile", "fitted"], "auto")?.to_string();
        let profiles = engine.str("profiles")?.unwrap_or("../shared/data/vidur-profiles").to_string();
        let distserve_path = engine
            .str("distserve")?
            .unwrap_or("../shared/data/distserve-perfmodel/profiler-a100-80g.distserve.json")
            .to_string();
        let network = match engine.str("network")? {
            Some(p) if resolve(p).exists() => {
                let table = llm::read_vidur_collective(&resolve(p))?;
                Some(table)
            }
            Some(p) => {
                fallbacks.push(format!("{p} is absent: all-reduce times use the analytic model"));
                None
            }
            None => None,
        };
        engine.finish(&[])?;

        // Workload: classes and streams.
        let workload = root.table("workload")?.ok_or_else(|| root.error("workload", "is required"))?;
        let mut classes = Vec::new();
        for c in workload.tables("classes")? {
            // Objectives are durations: positive, at least 1 ns, bounded.
            let objective = |key: &str, unit_ns: f64| -> Result<Option<f64>, ParamError> {
                if c.contains(key) {
                    c.duration_ns_or(key, 1.0, unit_ns, true)?;
                }
                c.f64(key)
            };
            let class = ClassSpec {
                name: c.required_str("name")?.to_string(),
                ttft_s: objective("ttft_s", 1e9)?,
                tbt_ms: objective("tbt_ms", 1e6)?,
                deadline_s: objective("deadline_s", 1e9)?,
            };
            c.finish(&[])?;
            if classes.iter().any(|k: &ClassSpec| k.name == class.name) {
                return Err(c.error("name", format!("class `{}` is defined twice", class.name)).into());
            }
            classes.push(class);
        }
        if classes.is_empty() {
            classes.push(ClassSpec { name: "default".into(), ttft_s: None, tbt_ms: None, deadline_s: None });
        }

        let mut model_names: Vec<String> = Vec::new();
        let mut model_index = |name: &str, p: &Params, key: &str| -> Result<u16, ScenarioError> {
            let spec = model::model(name).ok_or_else(|| {
                p.error(key, format!("unknown model `{name}`; known: {}", model::model_names().join(", ")))
            })?;
            let i = match model_names.iter().position(|m| m == spec.name) {
                Some(i) => i,
                None => {
                    model_names.push(spec.name.to_string());
                    model_names.len() - 1
                }
            };
            // The catalog holds a few dozen models.
            Ok(u16::try_from(i).unwrap_or(u16::MAX))
        };

        let mut groups = Vec::new();
        for r in root.tables("replicas")? {
            let gpu = r.required_str("gpu")?;
            let device = Device::from_catalog(gpu).ok_or_else(|| {
                r.error("gpu", format!("unknown GPU `{gpu}`; known: {}", nimbus_model::gpu_names().join(", ")))
            })?;
            r.require("count")?;
            let count = r.u32_in("count", 1, 1..=10_000)?;
            let tp = r.u32_in("tp", 1, 1..=64)?;
            let model = r.required_str("model")?.to_string();
            model_index(&model, r, "model")?;
            let price = r.positive_f64_or("gpu_hour_usd", default_price(&device.name))?;
            let within = |key: &str, range: std::ops::RangeInclusive<f64>| -> Result<Option<f64>, ParamError> {
                match r.contains(key) {
                    false => Ok(None),
                    true => r.f64_in(key, 0.0, range).map(Some),
                }
            };
            let overrides = RooflineOverrides {
                eta_bandwidth: within("eta_bandwidth", 1e-6..=1.0)?,
                eta_compute: within("eta_compute", 1e-6..=1.0)?,
                iteration_overhead_ms: within("iteration_overhead_ms", 0.0..=1e6)?,
                request_overhead_ms: within("request_overhead_ms", 0.0..=1e6)?,
            };
            r.finish(&[])?;
            groups.push(GroupSpec { gpu: device.name, count, tp, model, price, overrides });
        }
        if groups.is_empty() {
            return Err(root.error("replicas", "is required: at least one [[replicas]] group").into());
        }

        let mut streams = Vec::new();
        let mut clamped = 0usize;
        for s in workload.tables("streams")? {
            let name = s.str("name")?.map_or_else(|| format!("stream{}", streams.len()), str::to_string);
            let model_name = s.required_str("model")?;
            let model = model_index(model_name, s, "model")?;
            let class = match s.str("class")? {
                Some(c) => {
                    let i = classes.iter().position(|k| k.name == c).ok_or_else(|| {
                        s.error(
                            "class",
                            format!(
                                "unknown class `{c}`; defined: {}",
                                classes.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        )
                    })?;
                    u16::try_from(i).map_err(|_| s.error("class", "more than 65,535 classes"))?
                }
                None => 0,
            };
            let synthetic_name = s.choice_or("synthetic", &["azure-conv", "azure-code", "sharegpt"], "azure-conv")?;
            let synthetic = *workload::profile(synthetic_name).unwrap_or(&workload::PROFILES[0]);
            let (mut arrivals, mut lengths) = (None, None);
            if let Some(trace) = s.str("trace")? {
                let format = s.choice_or("format", &["azure", "vidur", "mooncake"], "azure")?;
                let path = resolve(trace);
                if path.exists() {
                    let reqs = match format {
                        "vidur" => llm::read_vidur_trace(&path)?,
                        "mooncake" => llm::read_mooncake(&path)?,
                        _ => llm::read_azure(&path)?,
                    };
                    let t0 = reqs.first().map_or(0.0, |r| r.arrival_s);
                    clamped += reqs.iter().filter(|r| r.output_tokens == 0 || r.prompt_tokens == 0).count();
                    arrivals = Some(Arrivals::Trace(Arc::new(reqs.iter().map(|r| r.arrival_s - t0).collect())));
                    lengths = Some(Lengths::Pairs(Arc::new(
                        reqs.iter().map(|r| (r.prompt_tokens, r.output_tokens)).collect(),
                    )));
                } else {
                    fallbacks.push(format!(
                        "{trace} is absent: stream `{name}` uses Poisson arrivals at {} req/s and log-normal lengths ({})",
                        synthetic.rate, synthetic.source
                    ));
                    arrivals = Some(Arrivals::Poisson(synthetic.rate));
                    lengths = Some(Lengths::Synthetic(synthetic));
                }
            }
            match s.str("arrivals")? {
                None => {}
                Some(kind) => {
                    let rate = s.positive_f64_or("rate", 1.0)?;
                    arrivals = Some(match kind {
                        "poisson" => Arrivals::Poisson(rate),
                        "gamma" => Arrivals::Gamma { rate, cv: s.positive_f64_or("cv", 1.0)? },
                        other => {
                            return Err(s
                                .error("arrivals", format!("expected `poisson` or `gamma`, found `{other}`"))
                                .into());
                        }
                    });
                }
            }
            if let Some(file) = s.str("lengths")? {
                let path = resolve(file);
                if path.exists() {
                    let pairs = llm::read_lengths(&path)?;
                    if pairs.is_empty() {
                        return Err(s.error("lengths", format!("{file} holds no rows")).into());
                    }
                    clamped += pairs.iter().filter(|p| p.0 == 0 || p.1 == 0).count();
                    lengths = Some(Lengths::Sample(Arc::new(pairs)));
                } else {
                    fallbacks.push(format!(
                        "{file} is absent: stream `{name}` uses log-normal lengths ({})",
                        synthetic.source
                    ));
                    lengths = Some(Lengths::Synthetic(synthetic));
                }
            }
            match (s.contains("prompt_tokens"), s.contains("output_tokens")) {
                (true, true) => {
                    let p = s.u32_in("prompt_tokens", 1, 1..=1 << 20)?;
                    let o = s.u32_in("output_tokens", 1, 1..=1 << 20)?;
                    lengths = Some(Lengths::Fixed(p, o));
                }
                (false, false) => {}
                (true, false) => return Err(s.error("prompt_tokens", "give output_tokens too").into()),
                (false, true) => return Err(s.error("output_tokens", "give prompt_tokens too").into()),
            }
            let arrivals = arrivals.ok_or_else(|| {
                s.error("arrivals", "give a `trace`, or `arrivals = \"poisson\"` or `\"gamma\"` with `rate`")
            })?;
            let lengths = lengths.unwrap_or(Lengths::Synthetic(synthetic));
            let rate_scale = s.positive_f64_or("rate_scale", 1.0)?;
            let instance = u16::try_from(s.u32_in("instance", 0, 0..=127)?).unwrap_or(0);
            let start_s = s.duration_ns_or("start_s", 0.0, 1e9, false)? as f64 / 1e9;
            let duration_s = s.duration_ns_or("duration_s", 3600.0, 1e9, true)? as f64 / 1e9;
            let max_requests = s.usize_in("max_requests", 1_000_000, 0..=10_000_000)?;
            let truncate_to = match s.choice_or("over_length", &["reject", "truncate"], "reject")? {
                "truncate" => Some(model::model(model_name).map_or(u32::MAX, |m| m.max_seq_len)),
                _ => None,
            };
            s.finish(&[])?;
            streams.push(Stream {
                name,
                model,
                class,
                instance,
                arrivals,
                lengths,
                rate_scale,
                start_s,
                duration_s,
                max_requests,
                truncate_to,
            });
        }
        if streams.is_empty() {
            return Err(workload.error("streams", "is required: at least one [[workload.streams]]").into());
        }
        workload.finish(&[])?;
        if clamped > 0 {
            notes.push(format!("{clamped} trace rows with 0 prompt or output tokens are served as 1 token"));
        }

        let moe = match root.table("moe")? {
            None => None,
            Some(m) => {
                m.require("instances")?;
                let settings = MoeSettings {
                    instances: m.u32_in("instances", 1, 1..=64)?,
                    skew: m.non_negative_f64_or("skew", 0.0)?,
                    kv_bytes_per_instance: m.positive_f64_or("kv_gb_per_instance", 7.0)? * 1e9,
                };
                m.finish(&[])?;
                Some(settings)
            }
        };

        // Deployments: every model on every group.
        let specs: Vec<&'static ModelSpec> =
            model_names.iter().map(|m| model::model(m).expect("resolved above")).collect();
        let distserve = if exec_kind == "fitted" {
            let path = resolve(&distserve_path);
            if !path.exists() {
                return Err(ScenarioError::Invalid(format!(
                    "exec = \"fitted\" needs DistServe's profile at {distserve_path}, which is absent"
                )));
            }
            Some(llm::read_distserve(&path)?)
        } else {
            None
        };
        let mut fleet_groups = Vec::new();
        let mut builds = Vec::new();
        for g in &groups {
            let device = Device::from_catalog(&g.gpu).expect("validated");
            let allreduce = match &network {
                Some(table) => table
                    .get(&(g.tp, g.tp))
                    .or_else(|| table.iter().find(|(k, _)| k.0 == g.tp).map(|(_, v)| v))
                    .map_or_else(|| AllReduce::default_for(&device.name), |pts| AllReduce::Table(pts.clone())),
                None => AllReduce::default_for(&device.name),
            };
            let mut params = RooflineParams::for_device(&device.name);
            let o = g.overrides;
            params.eta_bandwidth = o.eta_bandwidth.unwrap_or(params.eta_bandwidth);
            params.eta_compute = o.eta_compute.unwrap_or(params.eta_compute);
            params.iteration_overhead_ms = o.iteration_overhead_ms.unwrap_or(params.iteration_overhead_ms);
            params.request_overhead_ms = o.request_overhead_ms.unwrap_or(params.request_overhead_ms);
            let mut deployments = Vec::new();
            for spec in &specs {
                let memory = device.memory_bytes * g.tp as f64 * memory_fraction;
                let kv_tokens = (memory - spec.weight_bytes()) / spec.kv_bytes_per_token();
                if kv_tokens < block_tokens as f64 {
                    deployments.push(None);
                    continue;
                }
                let roofline = Roofline::new((*spec).clone(), device.clone(), g.tp, params, allreduce.clone());
                let exec: SharedExec = match exec_kind.as_str() {
                    // Vidur profiles dense models; mixtures of experts keep
                    // the roofline, which models their expert reads.
                    "auto" if spec.experts > 1 => Arc::new(roofline),
                    "profile" | "auto" => match profile_table(&profiles, spec, &g.gpu, g.tp, &roofline)? {
                        Ok(table) => {
                            if exec_kind == "auto" {
                                notes.push(format!(
                                    "iteration times of {} on {}x{}: Vidur's GEMM and element-wise profiles \
                                     (exec = \"auto\")",
                                    spec.name, g.tp, g.gpu
                                ));
                            }
                            Arc::new(table)
                        }
                        Err(why) if exec_kind == "auto" => {
                            notes
                                .push(format!("{why}: {} on {} uses the roofline (exec = \"auto\")", spec.name, g.gpu));
                            Arc::new(roofline)
                        }
                        Err(why) => {
                            fallbacks.push(format!("{why}: {} on {} uses the roofline", spec.name, g.gpu));
                            Arc::new(roofline)
                        }
                    },
                    "fitted" => {
                        let fits = distserve.as_ref().expect("read above");
                        let key = spec.aliases.iter().find(|a| a.contains('/')).copied().unwrap_or(spec.name);
                        let fit = fits.get(key).and_then(|m| m.get(&g.tp)).ok_or_else(|| {
                            ScenarioError::Invalid(format!(
                                "DistServe's profile has no fit for {} at TP {} (it covers {})",
                                spec.name,
                                g.tp,
                                fits.keys().cloned().collect::<Vec<_>>().join(", ")
                            ))
                        })?;
                        Arc::new(FittedPoly::new(fit.clone(), format!("distserve {} tp{}", spec.name, g.tp)))
                    }
                    _ => Arc::new(roofline),
                };
                let total_blocks =
                    round_to_u64((kv_tokens / f64::from(block_tokens)).floor().min(f64::from(u32::MAX / 2)))
                        .and_then(|b| u32::try_from(b).ok())
                        .unwrap_or(0);
                // Decode throughput at a full batch of 1k-token contexts.
                let batch = f64::from(max_seqs)
                    .min((f64::from(total_blocks) * f64::from(block_tokens) / 1024.0).floor())
                    .max(1.0);
                let mut shape = BatchShape::default();
                for _ in 0..round_to_u64(batch).unwrap_or(1) {
                    shape.add_decode(1024);
                }
                let decode_tokens_per_s = batch / exec.iteration_s(&shape).max(1e-9);
                deployments.push(Some(Deployment {
                    exec,
                    total_blocks,
                    max_seq_len: spec.max_seq_len,
                    kv_bytes_per_token: spec.kv_bytes_per_token(),
                    load_s: spec.weight_bytes() / g.tp as f64 / load_bw + load_fixed_s,
                    decode_tokens_per_s,
                }));
            }
            let initial = model_names.iter().position(|m| m == model::model(&g.model).map_or("", |s| s.name));
            if let Some(i) = initial
                && deployments[i].is_none()
            {
                return Err(ScenarioError::Invalid(format!(
                    "{} does not fit on {} x {} (weights {:.1} GB, memory {:.1} GB at memory_fraction {memory_fraction})",
                    g.model,
                    g.tp,
                    g.gpu,
                    specs[i].weight_bytes() / 1e9,
                    device.memory_bytes * g.tp as f64 * memory_fraction / 1e9
                )));
            }
            builds.push(GroupBuild { device: device.clone(), params, allreduce: allreduce.clone() });
            fleet_groups.push(ReplicaGroup {
                gpu: g.gpu.clone(),
                count: g.count,
                tp: g.tp,
                initial_model: initial.and_then(|i| u16::try_from(i).ok()),
                deployments,
                gpu_hour_usd: g.price,
                pinned_instance: None,
                instances_per_replica: 1,
            });
        }
        let fleet = Fleet {
            groups: fleet_groups,
            models: model_names,
            classes,
            scheduler: SchedulerConfig {
                kind: SchedulerKind::Vllm { max_tokens: 4096 },
                max_seqs,
                block_tokens,
                watermark,
                preemption,
                order: QueueOrder::Fcfs,
            },
            pcie_bandwidth: pcie,
            horizon: SimTime::ZERO + horizon,
            check_invariants: false,
        };
        Ok(Scenario { fleet, streams, fallbacks, notes, moe, builds, memory_fraction })
    }

    /// The fleet with every MoE group's deployments shared (MoEsaic) or
    /// dedicated (one replica per deployment).
    fn moe_fleet(&self, mode: MoeMode) -> Result<Fleet, ScenarioError> {
        let settings = self.moe.ok_or_else(|| {
            ScenarioError::Invalid("the moesaic and dedicated policies need a [moe] table (instances, skew)".into())
        })?;
        let k = settings.instances;
        let mut fleet = self.fleet.clone();
        let block_tokens = fleet.scheduler.block_tokens as f64;
        let mut any = false;
        for (group, build) in fleet.groups.iter_mut().zip(&self.builds) {
            let Some(m) = group.initial_model else { continue };
            let spec = model::model(&self.fleet.models[m as usize]).expect("catalog model");
            if spec.experts <= 1 {
                continue;
            }
            any = true;
            let memory = build.device.memory_bytes * group.tp as f64 * self.memory_fraction;
            let roofline =
                Roofline::new(spec.clone(), build.device.clone(), group.tp, build.params, build.allreduce.clone());
            let hit = moesaic::expert_hit_probabilities(spec.experts, spec.experts_per_token, settings.skew);
            let Some(d) = group.deployments[m as usize].as_mut() else { continue };
            match mode {
                MoeMode::Shared => {
                    let fits = moesaic::shared_capacity(spec, memory, settings.kv_bytes_per_instance);
                    if fits < k {
                        return Err(ScenarioError::Invalid(format!(
                            "{k} deployments of {} sharing experts do not fit on {} x {} (at most {fits} with \
                             {:.0} GB of KV each)",
                            spec.name,
                            group.tp,
                            group.gpu,
                            settings.kv_bytes_per_instance / 1e9
                        )));
                    }
                    let dense = spec.weight_bytes() - spec.expert_bytes();
                    let kv_room = memory - spec.expert_bytes() - k as f64 * dense;
                    d.total_blocks = (kv_room / spec.kv_bytes_per_token() / block_tokens).floor() as u32;
                    d.exec = Arc::new(MoeExec::new(roofline, hit, true));
                    group.instances_per_replica = k;
                }
                MoeMode::Dedicated => {
                    d.exec = Arc::new(MoeExec::new(roofline, hit, false));
                    group.count *= k;
                    group.pinned_instance = Some(k as u16);
                }
                MoeMode::None => {}
            }
        }
        if !any {
            return Err(ScenarioError::Invalid("no replica group starts with a mixture-of-experts model".into()));
        }
        Ok(fleet)
    }

    /// Data substitutions made.
    pub fn fallbacks(&self) -> &[String] {
        &self.fallbacks
    }

    /// The fleet (scheduler kind not yet chosen).
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// The requests of one seed, sorted by arrival, and how many had their
    /// prompt clipped to the model's context.
    pub fn requests(&self, seed: u64) -> (Vec<RequestSpec>, usize) {
        let rngs = RngStreams::new(seed);
        let mut clipped = 0;
        let mut all: Vec<(SimTime, usize, usize, RequestSpec)> = Vec::new();
        for (si, s) in self.streams.iter().enumerate() {
            let mut a = rngs.stream(&format!("arrivals:{}", s.name));
            let mut l = rngs.stream(&format!("lengths:{}", s.name));
            for (i, r) in s.generate(&mut a, &mut l).into_iter().enumerate() {
                clipped += usize::from(r.clipped);
                all.push((
                    r.at,
                    si,
                    i,
                    RequestSpec {
                        arrival: r.at,
                        prompt: r.prompt,
                        output: r.output,
                        model: s.model,
                        class: s.class,
                        instance: s.instance,
                    },
                ));
            }
        }
        all.sort_by_key(|x| (x.0, x.1, x.2));
        (all.into_iter().map(|x| x.3).collect(), clipped)
    }

    /// The metrics a run of this scenario reports, under any policy (QLM's
    /// own only under QLM).
    pub fn metric_names(&self) -> Vec<String> {
        use crate::metrics::{METRICS_FIRST, METRICS_LAST};
        let mut names: Vec<String> = METRICS_FIRST.iter().map(|m| m.to_string()).collect();
        if self.fleet.classes.len() > 1 {
            names.extend(self.fleet.classes.iter().map(|c| format!("slo_attainment_{}", c.name)));
        }
        names.extend(METRICS_LAST.iter().chain(crate::qlm::QLM_METRICS).map(|m| m.to_string()));
        names
    }

    /// What one run needs: memory per request (its state, token gaps and
    /// output row); events bounded by iterations, at most one per output
    /// token plus one per prompt chunk of every request.
    pub fn estimate(&self, policy_name: &str, params: &Params) -> Result<Estimate, ScenarioError> {
        self.check(policy_name, params)?;
        let mut requests = 0u64;
        let mut tokens = 0u64;
        for s in &self.streams {
            let arrivals = match &s.arrivals {
                Arrivals::Trace(times) => times.len() as u64,
                Arrivals::Poisson(rate) | Arrivals::Gamma { rate, .. } => {
                    // Generous for a Poisson count: mean plus ten deviations.
                    let mean = rate * s.rate_scale * s.duration_s;
                    saturating(mean + 10.0 * mean.sqrt() + 10.0)
                }
            };
            let n = arrivals.min(s.max_requests as u64);
            let mean_tokens = match &s.lengths {
                Lengths::Fixed(p, o) => f64::from(*o) + f64::from(*p) / 256.0,
                Lengths::Pairs(pairs) | Lengths::Sample(pairs) => {
                    let sum: f64 = pairs.iter().map(|(p, o)| f64::from(*o) + f64::from(*p) / 256.0).sum();
                    sum / pairs.len().max(1) as f64
                }
                Lengths::Synthetic(profile) => profile.output.0 + profile.prompt.0 / 256.0,
            };
            requests = requests.saturating_add(n);
            tokens = tokens.saturating_add(saturating(n as f64 * (mean_tokens + 1.0)));
        }
        let mut e = Estimate::default();
        e.memory("base", 64 << 20);
        e.memory(format!("{requests} requests"), product(&[requests, 1024]));
        e.memory(format!("token gaps of {tokens} tokens"), product(&[tokens, 16]));
        e.output_bytes = product(&[requests, 1536]).saturating_add(1 << 20);
        e.events(format!("iterations (at most one per token of {requests} requests)"), tokens);
        Ok(e)
    }

    /// Checks that policy `policy_name` accepts `params` and can serve
    /// this workload: a router sends each request to a replica already
    /// holding its model, so under a router every stream's model must be
    /// some replica group's `model` (QLM can swap a model in; MoE policies
    /// place their own deployments).
    pub fn check(&self, policy_name: &str, params: &Params) -> Result<(), ScenarioError> {
        let spec = build_policy(policy_name, params)?;
        if matches!(spec.dispatch, DispatchSpec::Router(_)) && spec.moe == MoeMode::None {
            let served: Vec<u16> = self.fleet.groups.iter().filter_map(|g| g.initial_model).collect();
            if let Some(stream) = self.streams.iter().find(|s| !served.contains(&s.model)) {
                let name = |m: u16| self.fleet.models.get(usize::from(m)).map_or("?", String::as_str);
                let mut serving: Vec<&str> = served.iter().map(|&m| name(m)).collect();
                serving.dedup();
                return Err(ScenarioError::Invalid(format!(
                    "policy `{policy_name}` routes each request to a replica holding its model, but stream `{}` asks \
                     for `{}`, which no [[replicas]] group serves (they serve {}); add a group with that model, \
                     or use qlm, which swaps models in",
                    stream.name,
                    name(stream.model),
                    serving.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Runs one policy with one seed.
    pub fn run(
        &self,
        policy_name: &str,
        params: &Params,
        seed: u64,
        progress: impl FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        let spec = build_policy(policy_name, params)?;
        let mut fleet = match spec.moe {
            MoeMode::None => self.fleet.clone(),
            mode => self.moe_fleet(mode)?,
        };
        fleet.scheduler.kind = spec.scheduler;
        fleet.scheduler.order = spec.order;
        let (requests, clipped) = self.requests(seed);
        let rngs = RngStreams::new(seed);
        let replicas: usize = fleet.groups.iter().map(|g| g.count as usize).sum();
        let mut dispatcher: Box<dyn engine::Dispatcher> = match spec.dispatch {
            DispatchSpec::Router(kind) => Box::new(Router::new(kind, fleet.models.len(), rngs.stream("router"))),
            DispatchSpec::Qlm(config) => {
                Box::new(Qlm::new(config, replicas, fleet.models.len(), requests.len(), rngs.stream("qlm")))
            }
        };
        let result = engine::run(&fleet, &requests, dispatcher.as_mut(), progress);
        let mut output = crate::metrics::output(&fleet, &result);
        output.metrics.extend(dispatcher.report(&result.requests));
        if clipped > 0 {
            output.notes.push(format!(
                "{clipped} of {} requests were longer than their model's context; their prompts were clipped \
                 (over_length = \"truncate\")",
                requests.len()
            ));
        }
        output.notes.extend(self.notes.iter().cloned());
        output.notes.extend(self.fallbacks.iter().cloned());
        Ok(output)
    }
}
