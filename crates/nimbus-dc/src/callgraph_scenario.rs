//! The call-graph model's scenario keys (`[cluster] kind = "services"`).
//!
//! - `[cluster]`: `services` (per tier, top first: `[2, 10, 50]`), `cores`
//!   per service (4), `fanout_min` and `fanout_max` (2 and 8: each call
//!   calls that many services of the next tier), `net_us` (100: one way
//!   per hop).
//! - `[workload]`: `requests` (100,000), `load` (0.85: the busiest tier's
//!   utilisation; the arrival rate follows), `arrival_cv` (1: Poisson;
//!   above 1, Gamma gaps), `work_mean_ms` (1), `work_sigma` (1.5: the σ of
//!   the calls' log-normal work, a heavy tail with p99 about 12× the
//!   median).

use nimbus_sim::params::Params;
use nimbus_sim::time::SimDuration;

use crate::callgraph::{Graph, Load};
use crate::scenario::ScenarioError;

/// A prepared call-graph scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceScenario {
    /// The services.
    pub graph: Graph,
    /// The requests.
    pub load: Load,
    /// The busiest tier's utilisation asked for.
    pub utilization: f64,
}

impl ServiceScenario {
    /// Reads `[cluster]` (kind services) and `[workload]`.
    pub fn from_params(w: &Params, c: &Params) -> Result<ServiceScenario, ScenarioError> {
        c.finish(&["kind", "services", "cores", "fanout_min", "fanout_max", "net_us"])?;
        w.finish(&["requests", "load", "arrival_cv", "work_mean_ms", "work_sigma"])?;
        let services: Vec<usize> = match c.u64_list("services")? {
            Some(list) => list.into_iter().map(|n| usize::try_from(n).unwrap_or(usize::MAX)).collect(),
            None => vec![2, 10, 50],
        };
        if services.is_empty() || services.len() > 8 || services.iter().any(|&n| n == 0 || n > 100_000) {
            return Err(ScenarioError::Param(c.error("services", "one to eight tiers of 1 to 100,000 services each")));
        }
        let fanout = (c.u32_in("fanout_min", 2, 1..=64)?, c.u32_in("fanout_max", 8, 1..=64)?);
        if fanout.0 > fanout.1 {
            return Err(ScenarioError::Param(
                c.error("fanout_min", format!("fanout_min ({}) is above fanout_max ({})", fanout.0, fanout.1)),
            ));
        }
        let graph = Graph {
            services,
            cores: c.u32_in("cores", 4, 1..=4096)?,
            fanout,
            net: SimDuration::from_secs_f64(c.f64_in("net_us", 100.0, 0.0..=1e9)? / 1e6),
        };
        let calls = graph.calls_per_tier();
        let leaf_calls = calls.last().copied().unwrap_or(1.0);
        if leaf_calls > 1e6 {
            return Err(ScenarioError::Invalid(format!(
                "a request would make about {leaf_calls:.0} calls at the last tier; at most 10^6 (fewer tiers or a smaller fan-out)"
            )));
        }
        let work_mean_s = w.f64_in("work_mean_ms", 1.0, 1e-6..=1e7)? / 1000.0;
        let utilization = w.f64_in("load", 0.85, 0.01..=2.0)?;
        // The busiest tier sets the rate: per service, calls/s × work /
        // cores = load.
        let per_request = graph
            .services
            .iter()
            .zip(&calls)
            .map(|(&n, &k)| k / n as f64 * work_mean_s / f64::from(graph.cores))
            .fold(0.0, f64::max);
        let requests = w.usize_in("requests", 100_000, 100..=100_000_000)?;
        let total_calls = requests as f64 * calls.iter().sum::<f64>();
        if total_calls > 5e8 {
            return Err(ScenarioError::Invalid(format!(
                "{requests} requests make about {total_calls:.2e} calls; at most 5e8"
            )));
        }
        let load = Load {
            requests,
            rate: utilization / per_request,
            arrival_cv: w.f64_in("arrival_cv", 1.0, 0.1..=20.0)?,
            work_mean_s,
            work_sigma: w.f64_in("work_sigma", 1.5, 0.0..=4.0)?,
        };
        Ok(ServiceScenario { graph, load, utilization })
    }

    /// Calls the run makes, about.
    pub fn calls_estimate(&self) -> u64 {
        (self.load.requests as f64 * self.graph.calls_per_tier().iter().sum::<f64>()) as u64
    }
}
