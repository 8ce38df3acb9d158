//! TailClipper: "Reducing Tail Response Time of Distributed Services
//! Through System-Wide Scheduling" (SoCC'24).
//!
//! Mechanism (carbon-autoscaling-tail.md §6.2): the ingress stamps each
//! request with its arrival time and every call along the chain carries
//! the stamp; each service's user-space scheduler runs the **oldest
//! request first** — global FCFS by origin time — which undoes the
//! reordering fan-out and fan-in cause, combined with **limited processor
//! sharing**: the `degree` × cores oldest calls share the cores, so one
//! long call cannot hold a core while older work waits behind it alone.
//!
//! Baselines: per-tier FCFS and processor sharing (Linux CFS-like), the
//! disciplines of [`crate::callgraph::Discipline`].
//!
//! Modelled: a queueing network of services ([`crate::callgraph`]) with
//! log-normal (heavy-tailed) call work and Poisson or Gamma arrivals; the
//! paper's kernel-bypass scheduler, its quantum and its real services are
//! not. The PS degree (2) is our choice; the paper's is not given in the
//! summary we work from.

use nimbus_sim::params::{ParamError, Params};

use crate::callgraph::Discipline;

/// Parameters `tailclipper` accepts.
pub const PARAMS: &[&str] = &["degree", "preemptive"];

/// TailClipper's discipline: `degree` (2) × cores oldest calls share the
/// cores; with `preemptive = false` (degree 1), a call keeps the core it
/// got until its work is done, as in the loopback RPC
/// chain whose worker threads cannot preempt.
pub fn from_params(p: &Params) -> Result<Discipline, ParamError> {
    p.finish(PARAMS)?;
    let preemptive = p.bool_or("preemptive", true)?;
    let degree = p.u32_in("degree", if preemptive { 2 } else { 1 }, 1..=1000)?;
    if preemptive {
        return Ok(Discipline::OldestFirst { degree });
    }
    if degree != 1 {
        return Err(p.error("degree", "a non-preemptive discipline shares nothing: degree must be 1"));
    }
    Ok(Discipline::OldestFirstNonPreemptive)
}
