//! Alibaba GPU cluster trace v2023 (`openb_*`): node and pod lists.
//!
//! Source: Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing
//! Workloads with Fragmentation Gradient Descent", USENIX ATC 2023
//! (`alibaba/clusterdata`, `cluster-trace-gpu-v2023`, CC BY 4.0).

use crate::error::{TraceError, read_csv_with_header};
use crate::input::Source;

/// One node (`sn,cpu_milli,memory_mib,gpu,model`).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Serial name.
    pub name: String,
    /// CPU in milli-cores.
    pub cpu_milli: u64,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// GPUs on the node.
    pub gpus: u32,
    /// GPU model (empty for CPU-only nodes).
    pub gpu_model: String,
}

/// One pod (task) of a pod list.
#[derive(Debug, Clone, PartialEq)]
pub struct Pod {
    /// Pod name.
    pub name: String,
    /// CPU request, milli-cores.
    pub cpu_milli: u64,
    /// Memory request, MiB.
    pub memory_mib: u64,
    /// GPUs requested.
    pub num_gpus: u32,
    /// Per-GPU share in thousandths (below 1000: a fractional-GPU pod).
    pub gpu_milli: u32,
    /// Required GPU models (`|`-separated in the trace; empty: any).
    pub gpu_spec: Vec<String>,
    /// Creation time, seconds.
    pub creation_s: f64,
    /// Deletion time, seconds.
    pub deletion_s: f64,
    /// Scheduling time, seconds (absent for pods never scheduled).
    pub scheduled_s: Option<f64>,
}

/// Reads `openb_node_list_*.csv`.
pub fn read_nodes<'a>(source: impl Into<Source<'a>>) -> Result<Vec<Node>, TraceError> {
    read_csv_with_header(source, &["sn", "cpu_milli", "memory_mib", "gpu", "model"], |f| {
        Ok(Node {
            name: f.non_empty(0)?.to_string(),
            cpu_milli: f.u64(1)?,
            memory_mib: f.u64(2)?,
            gpus: u32::try_from(f.u64(3)?).map_err(|_| f.invalid(3, "too many GPUs"))?,
            gpu_model: f.text(4)?.trim().to_string(),
        })
    })
}

/// Reads `openb_pod_list_*.csv`.
pub fn read_pods<'a>(source: impl Into<Source<'a>>) -> Result<Vec<Pod>, TraceError> {
    let columns = [
        "name",
        "cpu_milli",
        "memory_mib",
        "num_gpu",
        "gpu_milli",
        "gpu_spec",
        "creation_time",
        "deletion_time",
        "scheduled_time",
    ];
    read_csv_with_header(source, &columns, |f| {
        let creation_s = f.non_negative_f64(6)?;
        let deletion_s = f.non_negative_f64(7)?;
        if deletion_s < creation_s {
            return Err(f.invalid(7, format!("deletion time {deletion_s} precedes creation time {creation_s}")));
        }
        let scheduled = f.text(8)?.trim();
        Ok(Pod {
            name: f.non_empty(0)?.to_string(),
            cpu_milli: f.u64(1)?,
            memory_mib: f.u64(2)?,
            num_gpus: u32::try_from(f.u64(3)?).map_err(|_| f.invalid(3, "too many GPUs"))?,
            gpu_milli: u32::try_from(f.u64(4)?).map_err(|_| f.invalid(4, "gpu_milli too large"))?,
            gpu_spec: f.text(5)?.split('|').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
            creation_s,
            deletion_s,
            scheduled_s: if scheduled.is_empty() { None } else { Some(f.non_negative_f64(8)?) },
        })
    })
}
