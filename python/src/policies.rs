//! Policies written in Python, run inside the twin.
//!
//! A Python policy is a factory (usually a class) that Nimbus calls with
//! no arguments once per run, so every (policy, seed) run starts from a
//! fresh object; runs execute in parallel, each taking the interpreter
//! lock only for its own calls. Two decisions can be written in Python:
//!
//! - **Serverless keep-alive** (domain `faas`): `after_execution(app,
//!   now_s)` returns the seconds an idle sandbox stays loaded (a number),
//!   `None` (stay until evicted for memory) or `(prewarm_after_s,
//!   keep_for_s)` (unload now, load again later); `on_arrival(app, now_s,
//!   idle_s)` is optional.
//! - **GPU-cluster scheduling** (domain `gpu`): `schedule(now_s, jobs)`
//!   receives the active [`Job`]s each round and returns job ids in the
//!   order they should get GPUs; Nimbus places them greedily as its
//!   order-based policies do (FIFO, SRTF, Tiresias: a job keeps its GPUs
//!   when still free, else the fastest type with room, consolidated),
//!   skipping any that do not fit. `round_s` (default 360),
//!   `on_arrival(job)` and `on_completion(job_id, now_s)` are optional.
//!
//! A policy that raises, or returns something else, fails its run with a
//! `NimbusError` naming the policy, the call, the simulated time and the
//! Python traceback; the twin stops calling it at once (a GPU run stops at
//! that round; a serverless run finishes without it, keeping no sandbox).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

use nimbus_faas::policy::{AfterExecution, KeepAlive};
use nimbus_gpu::job::JobId;
use nimbus_gpu::policy::{Assignment, Policy, RoundContext, place_in_order};
use nimbus_lab::external::{ExternalKind, RunContext, RunWork};
use nimbus_lab::{ExternalPolicy, PolicySpec};
use nimbus_sim::params::Params;
use nimbus_sim::{SimDuration, SimTime};

use crate::fail;

/// The longest keep-alive or pre-warm delay accepted, seconds (a year):
/// anything longer is `None`'s "until evicted".
const MAX_SECONDS: f64 = 365.0 * 86_400.0;

/// A Python policy for a scenario of `domain`, under `label`.
pub fn spec(py: Python<'_>, domain: &str, label: String, factory: Py<PyAny>) -> PyResult<PolicySpec> {
    let bound = factory.bind(py);
    if !bound.is_callable() {
        return Err(fail(format!(
            "policy {label:?}: expected a class or other callable that returns a policy object, got {}",
            type_name(bound)
        )));
    }
    let name = match bound.cast::<PyType>() {
        Ok(t) => format!("python:{}", t.qualname().map_or_else(|_| "policy".to_string(), |q| q.to_string())),
        Err(_) => "python:callable".to_string(),
    };
    let factory = Arc::new(factory);
    let kind = match domain {
        "faas" => {
            let label = label.clone();
            ExternalKind::KeepAlive(Arc::new(move |_seed| {
                Python::attach(|py| PyKeepAlive::build(py, &factory, &label)).map(|p| Box::new(p) as Box<dyn KeepAlive>)
            }))
        }
        "gpu" => {
            let label = label.clone();
            ExternalKind::GpuScheduler(Arc::new(move |_seed| {
                Python::attach(|py| PyScheduler::build(py, &factory, &label)).map(|p| Box::new(p) as Box<dyn Policy>)
            }))
        }
        other => {
            return Err(fail(format!(
                "policy {label:?}: Python policies run in the `faas` domain (keep-alive) and the `gpu` domain (scheduling); this scenario is `{other}`"
            )));
        }
    };
    // The run's thread stays known to the interpreter for the whole run
    // (attached, then detached while the engine works), so each policy call
    // only takes the lock (measured: 0.25 µs per keep-alive decision, 8.2 µs
    // when each call attached the thread anew; python/benchmarks).
    let context: Arc<RunContext> = Arc::new(|work: &mut RunWork<'_>| Python::attach(|py| py.detach(&mut *work)));
    let external = ExternalPolicy { kind, context };
    Ok(PolicySpec { name, label, params: Params::default(), external: Some(external) })
}

/// A Python value's type name, for messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map_or_else(|_| "?".to_string(), |n| n.to_string())
}

/// A Python exception with its traceback, for a run's error message.
fn describe(py: Python<'_>, err: &PyErr) -> String {
    let trace = err.traceback(py).and_then(|tb| tb.format().ok()).unwrap_or_default();
    format!("{trace}{err}")
}

/// Calls the factory and checks the object has `required`.
fn instantiate(py: Python<'_>, factory: &Py<PyAny>, label: &str, required: &str) -> Result<Py<PyAny>, String> {
    let object = factory
        .call0(py)
        .map_err(|e| format!("policy {label:?}: creating the policy object raised:\n{}", describe(py, &e)))?;
    let callable = object.bind(py).getattr(required).is_ok_and(|m| m.is_callable());
    if !callable {
        return Err(format!("policy {label:?}: a {} object has no method `{required}`", type_name(object.bind(py))));
    }
    Ok(object)
}

/// Whether `object` has a callable attribute `name`.
fn has_method(py: Python<'_>, object: &Py<PyAny>, name: &str) -> bool {
    object.bind(py).getattr(name).is_ok_and(|m| m.is_callable())
}

/// A keep-alive policy in Python.
struct PyKeepAlive {
    label: String,
    object: Py<PyAny>,
    on_arrival: bool,
    failure: Option<String>,
}

impl PyKeepAlive {
    fn build(py: Python<'_>, factory: &Py<PyAny>, label: &str) -> Result<Self, String> {
        let object = instantiate(py, factory, label, "after_execution")?;
        let on_arrival = has_method(py, &object, "on_arrival");
        Ok(PyKeepAlive { label: label.to_string(), object, on_arrival, failure: None })
    }

    fn fail(&mut self, call: &str, now: SimTime, message: String) {
        self.failure =
            Some(format!("Python policy {:?}: {call} at t = {:.3} s: {message}", self.label, now.as_secs_f64()));
    }
}

/// A keep-alive decision from Python: seconds, `None` or a pair.
fn keep_alive_decision(value: &Bound<'_, PyAny>) -> Result<AfterExecution, String> {
    let seconds = |v: &Bound<'_, PyAny>| -> Option<f64> {
        if v.is_instance_of::<pyo3::types::PyBool>() {
            return None;
        }
        v.extract::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0 && *s <= MAX_SECONDS)
    };
    if value.is_none() {
        return Ok(AfterExecution::KeepUntilEvicted);
    }
    if let Some(s) = seconds(value) {
        return Ok(AfterExecution::KeepFor(SimDuration::from_secs_f64(s)));
    }
    if let Ok(pair) = value.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()
        && let (Some(after), Some(keep)) = (seconds(&pair.0), seconds(&pair.1))
    {
        return Ok(AfterExecution::Unload {
            prewarm_after: SimDuration::from_secs_f64(after),
            keep_for: SimDuration::from_secs_f64(keep),
        });
    }
    let shown = value.repr().map_or_else(|_| type_name(value), |r| r.to_string());
    Err(format!(
        "returned {shown}; expected the seconds to keep the sandbox (a number in 0..={MAX_SECONDS}), None (keep until evicted) or (prewarm_after_s, keep_for_s)"
    ))
}

impl KeepAlive for PyKeepAlive {
    fn on_arrival(&mut self, app: u32, now: SimTime, idle: Option<SimDuration>) {
        if !self.on_arrival || self.failure.is_some() {
            return;
        }
        let result = Python::attach(|py| {
            self.object
                .call_method1(py, "on_arrival", (app, now.as_secs_f64(), idle.map(SimDuration::as_secs_f64)))
                .map(|_| ())
                .map_err(|e| describe(py, &e))
        });
        if let Err(message) = result {
            self.fail(&format!("on_arrival(app={app})"), now, format!("raised:\n{message}"));
        }
    }

    fn after_execution(&mut self, app: u32, now: SimTime) -> AfterExecution {
        if self.failure.is_some() {
            return AfterExecution::KeepFor(SimDuration::ZERO);
        }
        let decision =
            Python::attach(|py| match self.object.call_method1(py, "after_execution", (app, now.as_secs_f64())) {
                Ok(value) => keep_alive_decision(value.bind(py)),
                Err(e) => Err(format!("raised:\n{}", describe(py, &e))),
            });
        decision.unwrap_or_else(|message| {
            self.fail(&format!("after_execution(app={app})"), now, message);
            AfterExecution::KeepFor(SimDuration::ZERO)
        })
    }

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }
}

/// A job as a Python scheduling policy sees it (read-only).
#[pyclass(frozen, get_all, module = "nimbus")]
pub struct Job {
    /// Index in arrival order; what `schedule` returns.
    id: usize,
    /// Name from the trace.
    name: String,
    /// Model or application.
    kind: String,
    /// Submission time, s.
    arrival_s: f64,
    /// GPUs requested.
    gpus: u32,
    /// Total work (steps, or efficiency-weighted examples).
    work_total: f64,
    /// Work done so far.
    work_done: f64,
    /// Seconds it has held GPUs (attained service).
    run_s: f64,
    /// GPU-seconds it has held.
    gpu_s: f64,
    /// Times it was moved to other GPUs.
    restarts: u32,
    /// Priority weight.
    priority: f64,
    /// Whether it held GPUs in the previous round.
    running: bool,
}

#[pymethods]
impl Job {
    fn __repr__(&self) -> String {
        format!(
            "Job(id={}, kind={:?}, gpus={}, arrival_s={}, done={:.3}, running={})",
            self.id,
            self.kind,
            self.gpus,
            self.arrival_s,
            if self.work_total > 0.0 { self.work_done / self.work_total } else { 0.0 },
            if self.running { "True" } else { "False" }
        )
    }
}

fn job_view(ctx: &RoundContext<'_>, id: JobId) -> Job {
    let job = &ctx.jobs[id];
    let state = &ctx.states[id];
    Job {
        id,
        name: job.name.clone(),
        kind: job.kind_label().to_string(),
        arrival_s: job.arrival.as_secs_f64(),
        gpus: job.requested_gpus(),
        work_total: job.work_total,
        work_done: state.work_done,
        run_s: state.run_seconds,
        gpu_s: state.gpu_seconds,
        restarts: state.restarts,
        priority: job.priority_weight,
        running: state.placement.is_some(),
    }
}

/// A GPU scheduling policy in Python.
struct PyScheduler {
    label: String,
    object: Py<PyAny>,
    round_s: f64,
    on_arrival: bool,
    on_completion: bool,
    failure: Option<String>,
}

impl PyScheduler {
    fn build(py: Python<'_>, factory: &Py<PyAny>, label: &str) -> Result<Self, String> {
        let object = instantiate(py, factory, label, "schedule")?;
        let round_s = match object.bind(py).getattr("round_s") {
            Err(_) => 360.0,
            Ok(v) => v
                .extract::<f64>()
                .ok()
                .filter(|r| r.is_finite() && (1e-3..=1e7).contains(r))
                .ok_or_else(|| format!("policy {label:?}: round_s must be a number of seconds in 0.001..=1e7"))?,
        };
        let on_arrival = has_method(py, &object, "on_arrival");
        let on_completion = has_method(py, &object, "on_completion");
        Ok(PyScheduler { label: label.to_string(), object, round_s, on_arrival, on_completion, failure: None })
    }

    fn fail(&mut self, call: &str, now: SimTime, message: String) {
        if self.failure.is_none() {
            self.failure =
                Some(format!("Python policy {:?}: {call} at t = {:.3} s: {message}", self.label, now.as_secs_f64()));
        }
    }
}

/// The job order a Python `schedule` returned, checked against the active jobs.
fn job_order(value: &Bound<'_, PyAny>, ctx: &RoundContext<'_>) -> Result<Vec<JobId>, String> {
    let shown = || value.repr().map_or_else(|_| type_name(value), |r| r.to_string());
    let items: Vec<Bound<'_, PyAny>> = value
        .try_iter()
        .and_then(|it| it.collect::<PyResult<Vec<_>>>())
        .map_err(|_| format!("returned {}; expected a list of job ids", shown()))?;
    let mut active = vec![false; ctx.jobs.len()];
    for &j in ctx.active {
        active[j] = true;
    }
    let mut taken = vec![false; ctx.jobs.len()];
    let mut order = Vec::with_capacity(items.len());
    for item in &items {
        let id = if item.is_instance_of::<pyo3::types::PyBool>() { None } else { item.extract::<usize>().ok() };
        let Some(id) = id else {
            let what = item.repr().map_or_else(|_| type_name(item), |r| r.to_string());
            return Err(format!("returned {what} among the job ids; expected ints (Job.id)"));
        };
        if !active.get(id).copied().unwrap_or(false) {
            return Err(format!("returned job {id}, which is not active this round"));
        }
        if std::mem::replace(&mut taken[id], true) {
            return Err(format!("returned job {id} twice"));
        }
        order.push(id);
    }
    Ok(order)
}

impl Policy for PyScheduler {
    fn round_s(&self) -> f64 {
        self.round_s
    }

    fn on_arrival(&mut self, job: &nimbus_gpu::job::Job, now: SimTime) {
        if !self.on_arrival || self.failure.is_some() {
            return;
        }
        let view = Job {
            id: job.id,
            name: job.name.clone(),
            kind: job.kind_label().to_string(),
            arrival_s: job.arrival.as_secs_f64(),
            gpus: job.requested_gpus(),
            work_total: job.work_total,
            work_done: 0.0,
            run_s: 0.0,
            gpu_s: 0.0,
            restarts: 0,
            priority: job.priority_weight,
            running: false,
        };
        let result = Python::attach(|py| {
            self.object.call_method1(py, "on_arrival", (view,)).map(|_| ()).map_err(|e| describe(py, &e))
        });
        if let Err(message) = result {
            self.fail(&format!("on_arrival(job {})", job.id), now, format!("raised:\n{message}"));
        }
    }

    fn schedule(&mut self, ctx: &RoundContext<'_>) -> Vec<Assignment> {
        if self.failure.is_some() {
            return Vec::new();
        }
        let order = Python::attach(|py| {
            let jobs: Vec<Job> = ctx.active.iter().map(|&j| job_view(ctx, j)).collect();
            let jobs = jobs.into_iter().map(|j| Bound::new(py, j)).collect::<PyResult<Vec<_>>>();
            let args = jobs.and_then(|jobs| {
                PyTuple::new(
                    py,
                    [
                        ctx.now.as_secs_f64().into_pyobject(py)?.into_any(),
                        pyo3::types::PyList::new(py, jobs)?.into_any(),
                    ],
                )
            });
            match args.and_then(|args| self.object.call_method1(py, "schedule", args)) {
                Ok(value) => job_order(value.bind(py), ctx),
                Err(e) => Err(format!("raised:\n{}", describe(py, &e))),
            }
        });
        match order {
            Ok(order) => place_in_order(ctx, &order),
            Err(message) => {
                self.fail("schedule", ctx.now, message);
                Vec::new()
            }
        }
    }

    fn on_completion(&mut self, job: JobId, now: SimTime) {
        if !self.on_completion || self.failure.is_some() {
            return;
        }
        let result = Python::attach(|py| {
            self.object
                .call_method1(py, "on_completion", (job, now.as_secs_f64()))
                .map(|_| ())
                .map_err(|e| describe(py, &e))
        });
        if let Err(message) = result {
            self.fail(&format!("on_completion(job {job})"), now, format!("raised:\n{message}"));
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }
}
