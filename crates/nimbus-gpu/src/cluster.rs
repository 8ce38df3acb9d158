//! Servers, GPU types and the free-GPU map of one round.
//!
//! A cluster is a list of servers; each server holds GPUs of one type and a
//! speed factor (1.0 nominal). Speed factors model server-level heterogeneity
//! among servers with the same GPU type (different CPUs, PCIe generations or
//! NICs), which Hops schedules around; every other policy ignores them and
//! simply runs slower on slow servers.

use std::fmt;

/// Index of a GPU type in [`Cluster::gpu_types`].
pub type GpuTypeId = usize;
/// Index of a server in [`Cluster::servers`].
pub type ServerId = usize;

/// One GPU type of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuType {
    /// Name as the workload's throughput tables spell it (`v100`, `t4`, `aws`).
    pub name: String,
    /// Peak FP32 TFLOP/s from the hardware catalog, when the name is known;
    /// used only to order types from fastest to slowest.
    pub fp32_tflops: Option<f64>,
    /// Intra-node GPU bandwidth, GB/s.
    pub intra_node_gbps: f64,
    /// Inter-node bandwidth per server, Gbit/s.
    pub inter_node_gbit: f64,
    /// Name of the measured profiles of this type in the workload's data
    /// (Sia's cluster names: `aws`, `dgx-ext`, `rtx`), when they differ
    /// from `name`.
    pub profile: Option<String>,
}

/// One server.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Its index.
    pub id: ServerId,
    /// The type of all its GPUs.
    pub gpu_type: GpuTypeId,
    /// Number of GPUs.
    pub gpus: u32,
    /// Throughput multiplier of jobs placed here (1.0 nominal).
    pub speed: f64,
}

/// The cluster: GPU types and servers.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// GPU types, in declaration order.
    pub gpu_types: Vec<GpuType>,
    /// Servers, grouped by type in declaration order.
    pub servers: Vec<Server>,
}

impl Cluster {
    /// Total GPUs.
    pub fn total_gpus(&self) -> u32 {
        self.servers.iter().map(|s| s.gpus).sum()
    }

    /// GPUs of one type.
    pub fn gpus_of_type(&self, gpu_type: GpuTypeId) -> u32 {
        self.servers.iter().filter(|s| s.gpu_type == gpu_type).map(|s| s.gpus).sum()
    }

    /// The type named `name`.
    pub fn type_id(&self, name: &str) -> Option<GpuTypeId> {
        self.gpu_types.iter().position(|t| t.name == name)
    }

    /// Servers of one type, in id order.
    pub fn servers_of_type(&self, gpu_type: GpuTypeId) -> impl Iterator<Item = &Server> {
        self.servers.iter().filter(move |s| s.gpu_type == gpu_type)
    }

    /// The largest number of GPUs on one server of a type.
    pub fn max_gpus_per_server(&self, gpu_type: GpuTypeId) -> u32 {
        self.servers_of_type(gpu_type).map(|s| s.gpus).max().unwrap_or(0)
    }

    /// Type ids from fastest to slowest (by catalog FP32 peak, unknown last,
    /// ties in declaration order).
    pub fn types_fastest_first(&self) -> Vec<GpuTypeId> {
        let mut ids: Vec<GpuTypeId> = (0..self.gpu_types.len()).collect();
        ids.sort_by(|a, b| {
            let fa = self.gpu_types[*a].fp32_tflops.unwrap_or(0.0);
            let fb = self.gpu_types[*b].fp32_tflops.unwrap_or(0.0);
            fb.total_cmp(&fa)
        });
        ids
    }
}

/// GPUs on particular servers: `(server, gpus)` pairs sorted by server.
///
/// All servers of a placement hold the same GPU type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Placement {
    parts: Vec<(ServerId, u32)>,
}

impl Placement {
    /// A placement from `(server, gpus)` parts; zero-GPU parts are dropped
    /// and parts on the same server are merged.
    pub fn new(mut parts: Vec<(ServerId, u32)>) -> Self {
        parts.retain(|(_, g)| *g > 0);
        parts.sort_unstable();
        let mut merged: Vec<(ServerId, u32)> = Vec::with_capacity(parts.len());
        for (s, g) in parts {
            match merged.last_mut() {
                Some(last) if last.0 == s => last.1 += g,
                _ => merged.push((s, g)),
            }
        }
        Placement { parts: merged }
    }

    /// The `(server, gpus)` parts.
    pub fn parts(&self) -> &[(ServerId, u32)] {
        &self.parts
    }

    /// Total GPUs.
    pub fn gpus(&self) -> u32 {
        self.parts.iter().map(|(_, g)| g).sum()
    }

    /// Number of servers used.
    pub fn servers(&self) -> usize {
        self.parts.len()
    }

    /// Whether it holds no GPUs.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The GPU type of the placement (of its first server).
    pub fn gpu_type(&self, cluster: &Cluster) -> Option<GpuTypeId> {
        self.parts.first().map(|(s, _)| cluster.servers[*s].gpu_type)
    }

    /// The slowest server's speed factor (the slowest worker sets the pace
    /// of synchronous data-parallel training).
    pub fn min_speed(&self, cluster: &Cluster) -> f64 {
        self.parts.iter().map(|(s, _)| cluster.servers[*s].speed).fold(f64::INFINITY, f64::min)
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.parts.iter().map(|(s, g)| format!("{s}:{g}")).collect();
        write!(f, "{}", parts.join(" "))
    }
}

/// Free GPUs per server during one round's decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeGpus {
    free: Vec<u32>,
}

impl FreeGpus {
    /// Every GPU of the cluster free.
    pub fn all(cluster: &Cluster) -> Self {
        FreeGpus { free: cluster.servers.iter().map(|s| s.gpus).collect() }
    }

    /// Free GPUs on a server.
    pub fn on(&self, server: ServerId) -> u32 {
        self.free[server]
    }

    /// Free GPUs of a type.
    pub fn of_type(&self, cluster: &Cluster, gpu_type: GpuTypeId) -> u32 {
        cluster.servers_of_type(gpu_type).map(|s| self.free[s.id]).sum()
    }

    /// Total free GPUs.
    pub fn total(&self) -> u32 {
        self.free.iter().sum()
    }

    /// Whether the placement fits in what is free.
    pub fn fits(&self, placement: &Placement) -> bool {
        placement.parts().iter().all(|(s, g)| self.free.get(*s).is_some_and(|f| f >= g))
    }

    /// Takes the placement's GPUs.
    ///
    /// # Panics
    /// If it does not fit: capacity is never exceeded.
    pub fn take(&mut self, placement: &Placement) {
        assert!(self.fits(placement), "placement {placement} exceeds free GPUs");
        for (s, g) in placement.parts() {
            self.free[*s] -= g;
        }
    }

    /// Returns the placement's GPUs.
    pub fn give_back(&mut self, placement: &Placement, cluster: &Cluster) {
        for (s, g) in placement.parts() {
            self.free[*s] += g;
            assert!(self.free[*s] <= cluster.servers[*s].gpus, "server {s} over-released");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn two_type_cluster() -> Cluster {
        let t = |name: &str, tflops| GpuType {
            name: name.into(),
            fp32_tflops: Some(tflops),
            intra_node_gbps: 16.0,
            inter_node_gbit: 25.0,
            profile: None,
        };
        Cluster {
            gpu_types: vec![t("k80", 4.0), t("v100", 15.0)],
            servers: vec![
                Server { id: 0, gpu_type: 0, gpus: 4, speed: 1.0 },
                Server { id: 1, gpu_type: 0, gpus: 4, speed: 0.9 },
                Server { id: 2, gpu_type: 1, gpus: 8, speed: 1.0 },
            ],
        }
    }

    #[test]
    fn placements_normalise_and_count() {
        let p = Placement::new(vec![(1, 2), (0, 1), (1, 1), (2, 0)]);
        assert_eq!(p.parts(), &[(0, 1), (1, 3)]);
        assert_eq!(p.gpus(), 4);
        assert_eq!(p.servers(), 2);
        let c = two_type_cluster();
        assert_eq!(p.min_speed(&c), 0.9);
        assert_eq!(p.gpu_type(&c), Some(0));
    }

    #[test]
    fn free_map_takes_and_returns() {
        let c = two_type_cluster();
        let mut free = FreeGpus::all(&c);
        let p = Placement::new(vec![(0, 3), (1, 4)]);
        assert!(free.fits(&p));
        free.take(&p);
        assert_eq!(free.of_type(&c, 0), 1);
        assert!(!free.fits(&Placement::new(vec![(1, 1)])));
        free.give_back(&p, &c);
        assert_eq!(free.total(), 16);
        assert_eq!(c.types_fastest_first(), [1, 0]);
    }

    #[test]
    #[should_panic(expected = "exceeds free GPUs")]
    fn over_allocation_panics() {
        let c = two_type_cluster();
        let mut free = FreeGpus::all(&c);
        free.take(&Placement::new(vec![(0, 5)]));
    }
}
