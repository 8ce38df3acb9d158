//! INS: "Identifying and Mitigating Performance Interference in Clouds via
//! Interference-Sensitive Paths" (SoCC'24).
//!
//! Mechanism (carbon-autoscaling-tail.md §6.3; the construction of the
//! interference-sensitive path is not public, so this one is inferred):
//! INS's indicator, **INSPath**, looks at a request's execution path stage
//! by stage — compute, cache-miss stalls, memory stalls, waiting for a
//! core — against the same path measured in isolation, and names the
//! resource behind the stage that inflated most: frequency for compute,
//! LLC ways for cache stalls, memory bandwidth for memory stalls. Waiting
//! for a core inflates whenever service time does, so cores are named only
//! when the service-time stages stayed within 10% of isolation. INS then
//! reallocates that resource in one targeted step, growing it by the
//! factor the p99 exceeds its target (at most 2×); a resource already at
//! its maximum is made up with cores. The next interval diagnoses again.
//!
//! Baseline: PARTIES ([`crate::interference::Parties`]), trial and error
//! over the resources. Modelled on the parametric interference model of
//! [`crate::interference`]; real cache partitioning, bandwidth allocation
//! and counters are not available here.

use crate::interference::{Allocation, Controller, Observation, Path, Resource};

/// The INS controller.
#[derive(Debug, Default)]
pub struct Ins;

/// The resource INSPath blames for `measured` against `isolated`.
pub fn diagnose(measured: &Path, isolated: &Path) -> Resource {
    let service = |p: &Path| p.compute + p.cache + p.memory;
    let excess = [
        (measured.compute - isolated.compute, Resource::Frequency),
        (measured.cache - isolated.cache, Resource::Llc),
        (measured.memory - isolated.memory, Resource::Bandwidth),
    ];
    if service(measured) <= 1.1 * service(isolated) {
        return Resource::Cores;
    }
    excess.iter().copied().max_by(|a, b| a.0.total_cmp(&b.0)).map_or(Resource::Cores, |(_, r)| r)
}

impl Controller for Ins {
    fn act(&mut self, obs: &Observation<'_>, mut alloc: Allocation) -> (Allocation, Option<Resource>) {
        let blamed = diagnose(&obs.path, &obs.isolated);
        let factor = (obs.p99 / obs.target).clamp(1.0, 2.0);
        let mut grow = |r: Resource| -> bool {
            let now = alloc.get(r);
            let want = ((f64::from(now.max(1)) * factor).ceil() as u32).max(now + 1).min(r.total());
            if want > now {
                alloc.set(r, want);
                true
            } else {
                false
            }
        };
        if !grow(blamed) {
            grow(Resource::Cores);
        }
        (alloc, Some(blamed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interference::{Contention, PROFILES, RESOURCES, nominal, path};

    #[test]
    fn insp_path_names_each_injected_resource_without_noise() {
        for p in &PROFILES {
            let a = nominal(p);
            let iso = path(p, &a, None);
            for r in RESOURCES {
                let hit = path(p, &a, Some(Contention { resource: r, x: 0.5 }));
                assert_eq!(diagnose(&hit, &iso), r, "{}", p.name);
            }
        }
    }

    #[test]
    fn one_targeted_step() {
        let p = &PROFILES[1];
        let a = nominal(p);
        let iso = path(p, &a, None);
        let hit = path(p, &a, Some(Contention { resource: Resource::Llc, x: 0.5 }));
        let obs = Observation { profile: p, p99: 1.5, target: 1.0, path: hit, isolated: iso };
        let (next, named) = Ins.act(&obs, a);
        assert_eq!(named, Some(Resource::Llc));
        // 8 ways × 1.5 = 12.
        assert_eq!((next.llc, next.cores), (12, a.cores));
    }
}
