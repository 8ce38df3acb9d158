//! `nimbus._nimbus`: the native half of the `nimbus` Python package.
//!
//! It runs scenarios through the same pipeline as the CLI
//! (`nimbus_report::pipeline`), so a run, a shard or a merge from Python
//! writes the CLI's bytes, and hands results back as typed columns that
//! the Python half turns into Arrow tables and DataFrames without any text
//! round trip (see [`tables`]). Policies written in Python run inside the
//! twin through [`policies`].
//!
//! The interpreter lock is released while scenarios run; runs go on in
//! parallel on rayon's threads, and a Python policy takes the lock only
//! for its own calls.

mod policies;
mod tables;

use std::path::{Path, PathBuf};

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use nimbus_lab::domain::REGISTRY;
use nimbus_lab::scenario::Overrides;
use nimbus_lab::{Limits, PolicySpec, Shard, Sweep};
use nimbus_report::pipeline::{self, Finished, RunPlan};

create_exception!(
    _nimbus,
    NimbusError,
    PyException,
    "A scenario, run, shard or merge failed; the message says why and where."
);

/// A failure as Python's `NimbusError`.
fn fail(message: impl Into<String>) -> PyErr {
    NimbusError::new_err(message.into())
}

/// Every domain and its policies, as dictionaries.
#[pyfunction]
fn domains(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for domain in REGISTRY {
        let d = PyDict::new(py);
        d.set_item("name", domain.name())?;
        d.set_item("summary", domain.summary())?;
        let policies = PyList::empty(py);
        for p in domain.policies() {
            let item = PyDict::new(py);
            item.set_item("name", p.name)?;
            item.set_item("kind", p.kind)?;
            item.set_item("fidelity", p.fidelity)?;
            item.set_item("source", p.source)?;
            item.set_item("summary", p.summary)?;
            item.set_item("params", p.params.to_vec())?;
            policies.append(item)?;
        }
        d.set_item("policies", policies)?;
        list.append(d)?;
    }
    Ok(list)
}

/// `seeds` and `set` as the CLI's overrides.
fn overrides(seeds: Option<Vec<u64>>, set: Option<Vec<(String, String)>>) -> Overrides {
    Overrides { seeds, set: set.unwrap_or_default() }
}

/// Loads a scenario and its sweep.
fn load(path: &Path, overrides: &Overrides) -> PyResult<Sweep> {
    Sweep::load(path, overrides).map_err(|e| fail(e.to_string()))
}

/// Loads a scenario, adds the Python policies and runs it (or one shard of
/// it) through the CLI's pipeline with the interpreter lock released.
#[allow(clippy::too_many_arguments)]
fn execute(
    py: Python<'_>,
    path: &Path,
    seeds: Option<Vec<u64>>,
    set: Option<Vec<(String, String)>>,
    jobs: Option<usize>,
    commit: Option<String>,
    shard: Option<Shard>,
    out: Option<PathBuf>,
    policies: Vec<(String, Py<PyAny>)>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Finished> {
    if jobs == Some(0) {
        return Err(fail("jobs=0: at least one worker thread is needed"));
    }
    let overrides = overrides(seeds, set);
    let sweep = load(path, &overrides)?;
    let domain = sweep.first.domain.name();
    let external: Vec<PolicySpec> = policies
        .into_iter()
        .map(|(label, factory)| policies::spec(py, domain, label, factory))
        .collect::<PyResult<_>>()?;
    let limits = Limits::for_this_machine();
    let plan = RunPlan {
        path,
        overrides: &overrides,
        sweep,
        jobs,
        limits: &limits,
        shard,
        out,
        commit: commit.unwrap_or_else(|| pipeline::commit_of_scenario(path)),
        external,
        keep_results: shard.is_none(),
    };
    let reporter = progress.map(Reporter::new);
    py.detach(|| {
        pipeline::run(plan, &|fraction, message| {
            if let Some(r) = &reporter {
                r.report(fraction, message);
            }
        })
    })
    .map_err(fail)
}

/// Hands progress to a Python callable `(fraction, message)`, at most
/// every [`Reporter::EVERY`] of the plan (and always at the end), so the
/// interpreter lock is taken a few hundred times per run at most. A
/// callable that raises is reported as unraisable (Python prints it) and
/// not called again; the run goes on.
struct Reporter {
    callback: Py<PyAny>,
    /// The last fraction reported, and whether the callable failed.
    state: std::sync::Mutex<(f64, bool)>,
}

impl Reporter {
    const EVERY: f64 = 0.005;

    fn new(callback: Py<PyAny>) -> Self {
        Reporter { callback, state: std::sync::Mutex::new((f64::NEG_INFINITY, false)) }
    }

    fn report(&self, fraction: f64, message: String) {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (last, failed) = *state;
        if failed || (fraction < 1.0 && fraction - last < Self::EVERY) || fraction <= last {
            return;
        }
        state.0 = fraction;
        // The lock is held across the call: reports reach Python in order.
        let ok = Python::attach(|py| match self.callback.call1(py, (fraction.min(1.0), message)) {
            Ok(_) => true,
            Err(e) => {
                e.write_unraisable(py, Some(self.callback.bind(py)));
                false
            }
        });
        state.1 = !ok;
    }
}

/// Runs a scenario (every point of its sweep) and returns its results as
/// columns; writes the CLI's result files into `out` when given.
///
/// `policies` maps labels to Python policy factories, compared beside the
/// scenario's own policies on the same workload; `progress`, a callable,
/// receives `(fraction, message)` as the runs advance.
#[pyfunction]
#[pyo3(signature = (path, seeds=None, set=None, jobs=None, out=None, policies=None, commit=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn run<'py>(
    py: Python<'py>,
    path: PathBuf,
    seeds: Option<Vec<u64>>,
    set: Option<Vec<(String, String)>>,
    jobs: Option<usize>,
    out: Option<PathBuf>,
    policies: Option<Vec<(String, Py<PyAny>)>>,
    commit: Option<String>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    match execute(py, &path, seeds, set, jobs, commit, None, out, policies.unwrap_or_default(), progress)? {
        Finished::Results(outcome) => tables::outcome(py, &outcome),
        Finished::Shard(_) => Err(fail("internal error: a run without a shard gave a shard")),
    }
}

/// Runs shard `index` of `count` of a scenario's runs and writes its shard
/// file into `out`; returns the file's path.
#[pyfunction]
#[pyo3(signature = (path, index, count, out, seeds=None, set=None, jobs=None, commit=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn run_shard(
    py: Python<'_>,
    path: PathBuf,
    index: usize,
    count: usize,
    out: PathBuf,
    seeds: Option<Vec<u64>>,
    set: Option<Vec<(String, String)>>,
    jobs: Option<usize>,
    commit: Option<String>,
    progress: Option<Py<PyAny>>,
) -> PyResult<PathBuf> {
    let shard = Shard::new(index, count).map_err(|e| fail(format!("shard {index} of {count}: {e}")))?;
    match execute(py, &path, seeds, set, jobs, commit, Some(shard), Some(out), Vec::new(), progress)? {
        Finished::Shard(shard) => shard.path.ok_or_else(|| fail("internal error: the shard file was not written")),
        Finished::Results(_) => Err(fail("internal error: a shard run gave whole results")),
    }
}

/// Merges shard files (or directories holding one) into the result files
/// of the whole run in `out`; returns `out`.
#[pyfunction]
fn merge(py: Python<'_>, inputs: Vec<PathBuf>, out: PathBuf) -> PyResult<PathBuf> {
    let outcome = py.detach(|| pipeline::merge(&inputs, Some(out))).map_err(fail)?;
    outcome.dir.ok_or_else(|| fail("internal error: the merge wrote no directory"))
}

/// The module.
#[pymodule]
fn _nimbus(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("NimbusError", m.py().get_type::<NimbusError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(domains, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(run_shard, m)?)?;
    m.add_function(wrap_pyfunction!(merge, m)?)?;
    m.add_class::<policies::Job>()?;
    Ok(())
}
