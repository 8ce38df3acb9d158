//! Policies supplied by the program that embeds the lab rather than named
//! in a domain's registry: the Python package's policy classes.
//!
//! An [`ExternalPolicy`] builds a fresh policy object for every run (one
//! per seed, so runs stay independent and may execute on several threads);
//! the domain runs it exactly as it runs a registry policy, on the same
//! prepared workload. Two decisions can be supplied this way: a serverless
//! keep-alive policy (`faas`) and a GPU-cluster scheduling policy (`gpu`).

use std::fmt;
use std::sync::Arc;

/// Builds a keep-alive policy for one run (the argument is the seed).
pub type KeepAliveFactory = dyn Fn(u64) -> Result<Box<dyn nimbus_faas::policy::KeepAlive>, String> + Send + Sync;

/// Builds a GPU scheduling policy for one run (the argument is the seed).
pub type GpuSchedulerFactory = dyn Fn(u64) -> Result<Box<dyn nimbus_gpu::policy::Policy>, String> + Send + Sync;

/// A run's work, handed to [`RunContext`].
pub type RunWork<'a> = dyn FnMut() + Send + 'a;

/// Runs a whole run (its argument) on the current thread in the context the
/// policy's calls need: the Python package keeps the thread known to the
/// interpreter for the whole run, so that each call only takes the
/// interpreter lock instead of setting up and tearing down a thread state.
pub type RunContext = dyn Fn(&mut RunWork<'_>) + Send + Sync;

/// The decision an external policy makes.
#[derive(Clone)]
pub enum ExternalKind {
    /// A serverless keep-alive policy (domain `faas`).
    KeepAlive(Arc<KeepAliveFactory>),
    /// A GPU-cluster scheduling policy (domain `gpu`).
    GpuScheduler(Arc<GpuSchedulerFactory>),
}

/// A policy built outside the registry.
#[derive(Clone)]
pub struct ExternalPolicy {
    /// What it decides, and how to build it for a run.
    pub kind: ExternalKind,
    /// Where its runs execute.
    pub context: Arc<RunContext>,
}

impl ExternalPolicy {
    /// A policy whose calls need no context.
    pub fn new(kind: ExternalKind) -> Self {
        ExternalPolicy { kind, context: Arc::new(|work: &mut RunWork<'_>| work()) }
    }

    /// The domain whose runs can use it.
    pub fn domain(&self) -> &'static str {
        match self.kind {
            ExternalKind::KeepAlive(_) => "faas",
            ExternalKind::GpuScheduler(_) => "gpu",
        }
    }

    /// The registry policy whose resource estimate (memory, events) stands
    /// for it: an external policy keeps per-app or per-job state as the
    /// simplest registry policy does, and the engine's own state dominates.
    pub fn estimated_as(&self) -> &'static str {
        match self.kind {
            ExternalKind::KeepAlive(_) => "fixed",
            ExternalKind::GpuScheduler(_) => "fifo",
        }
    }

    /// Runs one run (`work`) in the policy's context.
    pub fn run<T: Send>(&self, work: impl FnOnce() -> Result<T, String> + Send) -> Result<T, String> {
        let mut work = Some(work);
        let mut out = None;
        (self.context)(&mut || {
            if let Some(w) = work.take() {
                out = Some(w());
            }
        });
        out.unwrap_or_else(|| Err("the policy's run context did not run it".into()))
    }
}

impl fmt::Debug for ExternalPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternalPolicy({})", self.domain())
    }
}
