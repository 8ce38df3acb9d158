//! Workflows on a heterogeneous system as a scenario model
//! (`[cluster] kind = "workflow"`, [`crate::workflow_run`]).
//!
//! Keys:
//! - `[cluster] system`: a DSLab system file (`dslab-dags/systems/*.yaml`:
//!   resources, network). Unset: the embedded system, four nodes of
//!   speeds 10, 20, 15 and 5 Gflop/s with 4, 4, 8 and 16 cores (the shape
//!   of DSLab's `cluster-het-4-32cores`) on a 1,000 MB/s, 100 µs network.
//!   A named file that is absent falls back to it, and the results say so.
//! - `[workload] dags`: workflow files, one or a list, read by extension:
//!   `.json` WfCommons, `.xml` Pegasus DAX, `.dot` DAGGEN, `.yaml` DSLab.
//!   Every run executes all of them and reports their mean. Unset (or all
//!   absent): `count` (4) synthetic layered DAGs per seed (below).
//! - Synthetic DAGs (DAGGEN's shape): `tasks` (100) in levels of about
//!   tasks^`fat` (0.5) tasks each (±50%); each task reads from each task
//!   of the level above with probability `density` (0.3; at least one
//!   parent), one item per edge of 10-1,000 MB; work 100-10,000 Gflop,
//!   one core, no memory.
//!
//! Metrics: the mean makespan, the mean schedule length ratio (makespan ÷
//! the critical path at each task's fastest compute time, no transfers:
//! HEFT's paper's measure), transfers and data moved, and for HEFT how
//! far its planned makespan is from the run's.

use std::path::{Path, PathBuf};

use nimbus_sim::output::{Better, Cell, Metric, RunOutput, Table};
use nimbus_sim::params::{ParamError, Params};
use nimbus_sim::rng::{RngStreams, SimRng};
use nimbus_trace::workflow::{self, DataItem, Network, Resource, System, Task, Workflow};

use crate::heft;
use crate::scenario::ScenarioError;
use crate::workflow_run::{Instance, RunResult, run, run_greedy};

/// How a workflow is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowPolicy {
    /// HEFT's static plan.
    Heft,
    /// DSLab's greedy `SimpleScheduler`.
    Greedy,
}

/// Synthetic DAG settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthetic {
    /// DAGs per run.
    pub count: usize,
    /// Tasks per DAG.
    pub tasks: usize,
    /// Level width exponent.
    pub fat: f64,
    /// Edge probability between adjacent levels.
    pub density: f64,
}

/// The workflow model's settings.
#[derive(Debug, Clone)]
pub struct WorkflowScenario {
    /// The system.
    pub system: System,
    /// Workflow files read (name, workflow); empty: synthetic.
    pub files: Vec<(String, Workflow)>,
    /// The synthetic generator.
    pub synthetic: Synthetic,
}

/// Every metric a run reports.
pub const METRICS: &[&str] =
    &["dags", "tasks", "makespan_s_mean", "slr_mean", "transfers", "moved_gb", "plan_error_pct"];

/// The embedded system.
pub fn embedded_system() -> System {
    let node =
        |name: &str, speed: f64, cores: u32, memory_mb: u64| Resource { name: name.into(), speed, cores, memory_mb };
    System {
        resources: vec![
            node("node1", 10.0, 4, 8_000),
            node("node2", 20.0, 4, 8_000),
            node("node3", 15.0, 8, 16_000),
            node("node4", 5.0, 16, 32_000),
        ],
        network: Network::ConstantBandwidth { bandwidth: 1000.0, latency_us: 100.0 },
    }
}

/// Reads a workflow file by its extension.
pub fn read_workflow(path: &Path) -> Result<Workflow, ScenarioError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    Ok(match ext {
        "json" => workflow::read_wfcommons(path)?,
        "xml" | "dax" => workflow::read_dax(path)?,
        "dot" => workflow::read_dot(path)?,
        "yaml" | "yml" => workflow::read_dslab_yaml(path)?,
        _ => {
            return Err(ScenarioError::Invalid(format!(
                "{}: unknown workflow format (.json WfCommons, .xml Pegasus DAX, .dot DAGGEN, .yaml DSLab)",
                path.display()
            )));
        }
    })
}

impl WorkflowScenario {
    /// Reads `[workload]` and `[cluster]`.
    pub fn from_params(w: &Params, c: &Params, fallbacks: &mut Vec<String>) -> Result<WorkflowScenario, ScenarioError> {
        c.finish(&["kind", "system"])?;
        w.finish(&["dags", "count", "tasks", "fat", "density"])?;
        let system = match c.str("system")? {
            Some(p) if Path::new(p).exists() => workflow::read_dslab_system(Path::new(p))?,
            Some(p) => {
                fallbacks.push(format!("{p} is absent: the embedded four-node system stands in"));
                embedded_system()
            }
            None => embedded_system(),
        };
        if matches!(system.network, Network::TopologyAware { .. }) {
            return Err(ScenarioError::Invalid(
                "topology-aware networks are not supported (ConstantBandwidth and SharedBandwidth are)".into(),
            ));
        }
        let mut files = Vec::new();
        let mut absent = Vec::new();
        for p in w.str_or_list("dags")?.unwrap_or_default() {
            let path = PathBuf::from(p);
            if path.exists() {
                let wf = read_workflow(&path)?;
                // Fails early on a task no resource can hold.
                Instance::new(&wf, &system).map_err(|e| ScenarioError::Invalid(format!("{p}: {e}")))?;
                let name = path.file_name().map_or(p.to_string(), |n| n.to_string_lossy().into_owned());
                files.push((name, wf));
            } else {
                absent.push(p.to_string());
            }
        }
        if !absent.is_empty() {
            fallbacks.push(if files.is_empty() {
                format!("{} absent: synthetic DAGs stand in", absent.join(", "))
            } else {
                format!("{} absent: left out", absent.join(", "))
            });
        }
        let synthetic = Synthetic {
            count: w.usize_in("count", 4, 1..=10_000)?,
            tasks: w.usize_in("tasks", 100, 1..=100_000)?,
            fat: w.f64_in("fat", 0.5, 0.0..=1.0)?,
            density: w.f64_in("density", 0.3, 0.0..=1.0)?,
        };
        Ok(WorkflowScenario { system, files, synthetic })
    }

    /// The workflows of a run: the files, or the seed's synthetic DAGs.
    pub fn workflows(&self, seed: u64) -> Vec<(String, Workflow)> {
        if !self.files.is_empty() {
            return self.files.clone();
        }
        let mut rng = RngStreams::new(seed).stream("dags");
        (0..self.synthetic.count)
            .map(|i| (format!("synthetic-{i}"), synthetic_dag(&self.synthetic, &mut rng)))
            .collect()
    }

    /// Tasks in one run, for the estimate.
    pub fn tasks_estimate(&self) -> u64 {
        if self.files.is_empty() {
            (self.synthetic.count as u64).saturating_mul(self.synthetic.tasks as u64)
        } else {
            self.files.iter().map(|(_, w)| w.tasks.len() as u64).sum()
        }
    }

    /// Runs every workflow of `seed` under `policy`.
    pub fn run(
        &self,
        policy: WorkflowPolicy,
        seed: u64,
        progress: &mut dyn FnMut(f64),
    ) -> Result<RunOutput, ScenarioError> {
        let workflows = self.workflows(seed);
        let mut rows = Vec::new();
        let (mut makespans, mut slrs, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        let (mut transfers, mut moved_mb, mut tasks) = (0u64, 0.0, 0usize);
        for (k, (name, wf)) in workflows.iter().enumerate() {
            let inst = Instance::new(wf, &self.system).map_err(|e| ScenarioError::Invalid(format!("{name}: {e}")))?;
            let (result, planned): (RunResult, Option<f64>) = match policy {
                WorkflowPolicy::Heft => {
                    let plan = heft::plan(&inst);
                    let planned = plan.iter().map(|p| p.finish_s).fold(0.0, f64::max);
                    (run(&inst, &plan).map_err(|e| ScenarioError::Invalid(format!("{name}: {e}")))?, Some(planned))
                }
                WorkflowPolicy::Greedy => {
                    (run_greedy(&inst).map_err(|e| ScenarioError::Invalid(format!("{name}: {e}")))?, None)
                }
            };
            let makespan = result.makespan.as_secs_f64();
            let slr = makespan / critical_path_s(&inst);
            makespans.push(makespan);
            slrs.push(slr);
            if let Some(p) = planned.filter(|_| makespan > 0.0) {
                errors.push(100.0 * (makespan - p) / makespan);
            }
            transfers += result.transfers;
            moved_mb += result.moved_mb;
            tasks += wf.tasks.len();
            rows.push(vec![
                Cell::Str(name.clone()),
                Cell::Int(i64::try_from(wf.tasks.len()).unwrap_or(i64::MAX)),
                Cell::Float(makespan),
                Cell::Float(planned.unwrap_or(f64::NAN)),
                Cell::Float(slr),
                Cell::Int(i64::try_from(result.transfers).unwrap_or(i64::MAX)),
                Cell::Float(result.moved_mb),
            ]);
            progress((k + 1) as f64 / workflows.len() as f64);
        }
        let mean = |v: &[f64]| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
        let mut out = RunOutput::default();
        let m = |name: &str, v: f64, b: Better| Metric::new(name, v, b);
        out.metrics = vec![
            m("dags", workflows.len() as f64, Better::Neither),
            m("tasks", tasks as f64, Better::Neither),
            m("makespan_s_mean", mean(&makespans), Better::Lower),
            m("slr_mean", mean(&slrs), Better::Lower),
            m("transfers", transfers as f64, Better::Neither),
            m("moved_gb", moved_mb / 1e3, Better::Lower),
            m("plan_error_pct", mean(&errors), Better::Neither),
        ];
        out.tables.push(Table {
            name: "workflows".into(),
            columns: ["workflow", "tasks", "makespan_s", "planned_makespan_s", "slr", "transfers", "moved_mb"]
                .map(String::from)
                .to_vec(),
            rows,
        });
        Ok(out)
    }
}

/// The longest path at each task's fastest compute time on any resource
/// it may use, without transfers, s.
pub fn critical_path_s(inst: &Instance) -> f64 {
    let children = inst.children();
    let order = nimbus_trace::dag::topological_order(&children).expect("an instance's DAG is acyclic");
    let fastest = |t: usize| {
        (0..inst.resources.len())
            .filter(|&r| inst.allowed(t, r) && inst.resources[r].cores >= inst.tasks[t].min_cores)
            .map(|r| inst.compute_s(t, r))
            .fold(f64::INFINITY, f64::min)
    };
    let mut longest = vec![0.0; inst.tasks.len()];
    for &v in order.iter().rev() {
        let below = children[v].iter().map(|&c| longest[c]).fold(0.0, f64::max);
        longest[v] = fastest(v) + below;
    }
    longest.into_iter().fold(0.0, f64::max)
}

/// A layered random DAG (DAGGEN's shape; see the module doc).
pub fn synthetic_dag(s: &Synthetic, rng: &mut SimRng) -> Workflow {
    let width = (s.tasks as f64).powf(s.fat).max(1.0);
    let mut levels: Vec<Vec<usize>> = Vec::new();
    let mut wf = Workflow::default();
    while wf.tasks.len() < s.tasks {
        let size = (width * rng.uniform_range(0.5, 1.5)).round().max(1.0) as usize;
        let size = size.min(s.tasks - wf.tasks.len());
        let mut level = Vec::with_capacity(size);
        for _ in 0..size {
            let id = wf.tasks.len();
            wf.tasks.push(Task::single_core(format!("t{id}"), rng.uniform_range(100.0, 10_000.0)));
            level.push(id);
        }
        if let Some(above) = levels.last() {
            for &t in &level {
                let mut parents: Vec<usize> = above.iter().copied().filter(|_| rng.uniform() < s.density).collect();
                if parents.is_empty() {
                    parents.push(above[rng.index(above.len())]);
                }
                for p in parents {
                    let d = wf.data.len();
                    wf.data.push(DataItem {
                        name: format!("d{p}_{t}"),
                        size_mb: rng.uniform_range(10.0, 1000.0),
                        producer: Some(p),
                        consumers: vec![t],
                    });
                    wf.tasks[p].outputs.push(d);
                    wf.tasks[t].inputs.push(d);
                }
            }
        }
        levels.push(level);
    }
    wf
}

/// Builds the `heft` policy.
pub fn heft_policy(p: &Params) -> Result<WorkflowPolicy, ParamError> {
    p.finish(&[])?;
    Ok(WorkflowPolicy::Heft)
}

/// Builds the `greedy` policy.
pub fn greedy_policy(p: &Params) -> Result<WorkflowPolicy, ParamError> {
    p.finish(&[])?;
    Ok(WorkflowPolicy::Greedy)
}
