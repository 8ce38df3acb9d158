//! Placement helpers shared by policies.

use crate::cluster::{Cluster, FreeGpus, GpuTypeId, Placement, ServerId};

/// `gpus` GPUs of `gpu_type` on as few servers as possible: a single server
/// with the tightest fit if one has room, else servers with the most free
/// GPUs first. `None` if the type lacks free GPUs.
pub fn consolidated(cluster: &Cluster, free: &FreeGpus, gpu_type: GpuTypeId, gpus: u32) -> Option<Placement> {
    if gpus == 0 || free.of_type(cluster, gpu_type) < gpus {
        return None;
    }
    let mut servers: Vec<(u32, ServerId)> =
        cluster.servers_of_type(gpu_type).map(|s| (free.on(s.id), s.id)).filter(|(f, _)| *f > 0).collect();
    // Tightest single server that fits (best fit keeps big holes for big jobs).
    if let Some((_, s)) = servers.iter().filter(|(f, _)| *f >= gpus).min_by_key(|(f, s)| (*f, *s)) {
        return Some(Placement::new(vec![(*s, gpus)]));
    }
    servers.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut parts = Vec::new();
    let mut left = gpus;
    for (f, s) in servers {
        let take = f.min(left);
        parts.push((s, take));
        left -= take;
        if left == 0 {
            break;
        }
    }
    Some(Placement::new(parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{GpuType, Server};

    fn cluster() -> Cluster {
        Cluster {
            gpu_types: vec![GpuType {
                name: "v100".into(),
                fp32_tflops: Some(15.7),
                intra_node_gbps: 16.0,
                inter_node_gbit: 25.0,
                profile: None,
            }],
            servers: (0..3).map(|id| Server { id, gpu_type: 0, gpus: 4, speed: 1.0 }).collect(),
        }
    }

    #[test]
    fn best_fit_then_spread() {
        let c = cluster();
        let mut free = FreeGpus::all(&c);
        free.take(&Placement::new(vec![(1, 3)]));
        // Server 1 has exactly one free GPU: the tightest fit for 1 GPU.
        assert_eq!(consolidated(&c, &free, 0, 1), Some(Placement::new(vec![(1, 1)])));
        // 4 GPUs fit on server 0 (first of the equally tight).
        assert_eq!(consolidated(&c, &free, 0, 4), Some(Placement::new(vec![(0, 4)])));
        // 6 GPUs need two servers: the emptiest first.
        assert_eq!(consolidated(&c, &free, 0, 6), Some(Placement::new(vec![(0, 4), (2, 2)])));
        assert_eq!(consolidated(&c, &free, 0, 10), None);
    }
}
