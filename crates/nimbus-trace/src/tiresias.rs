//! Tiresias simulator inputs: job lists, cluster shapes and GPU-time samples.
//!
//! Source: Gu et al., "Tiresias: A GPU Cluster Manager for Distributed Deep
//! Learning", NSDI 2019 (`SymbioticLab/Tiresias`, `simulator/`, Apache-2.0).

use crate::error::{TraceError, read_csv_with_header};
use crate::input::Source;

/// One job (`job_id,num_gpu,submit_time,iterations,model_name,duration,interval`).
#[derive(Debug, Clone, PartialEq)]
pub struct TiresiasJob {
    /// Job id.
    pub id: u64,
    /// GPUs.
    pub num_gpus: u32,
    /// Submission time, seconds.
    pub submit_s: f64,
    /// Model name.
    pub model: String,
    /// Run time on its GPUs, seconds.
    pub duration_s: f64,
}

/// A cluster shape (`num_switch,num_node_p_switch,num_gpu_p_node,...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterShape {
    /// Switches.
    pub switches: u32,
    /// Nodes per switch.
    pub nodes_per_switch: u32,
    /// GPUs per node.
    pub gpus_per_node: u32,
}

/// Reads a job list (`60_job.csv`, `tf_job.csv`).
pub fn read_jobs<'a>(source: impl Into<Source<'a>>) -> Result<Vec<TiresiasJob>, TraceError> {
    read_csv_with_header(source, &["job_id", "num_gpu", "submit_time", "model_name", "duration"], |f| {
        Ok(TiresiasJob {
            id: f.u64(0)?,
            num_gpus: u32::try_from(f.positive_u64(1)?).map_err(|_| f.invalid(1, "too many GPUs"))?,
            submit_s: f.non_negative_f64(2)?,
            model: f.non_empty(3)?.to_string(),
            duration_s: f.non_negative_f64(4)?,
        })
    })
}

/// Reads a cluster shape file (first data row).
pub fn read_cluster_shape<'a>(source: impl Into<Source<'a>>) -> Result<ClusterShape, TraceError> {
    let source = source.into();
    let path = source.name();
    let rows = read_csv_with_header(source, &["num_switch", "num_node_p_switch", "num_gpu_p_node"], |f| {
        let n = |i: usize| -> Result<u32, TraceError> {
            u32::try_from(f.positive_u64(i)?).map_err(|_| f.invalid(i, "value too large"))
        };
        Ok(ClusterShape { switches: n(0)?, nodes_per_switch: n(1)?, gpus_per_node: n(2)? })
    })?;
    rows.into_iter().next().ok_or_else(|| TraceError::file(path, "no cluster row"))
}

/// Reads GPU-time samples (`yarn-gput*.csv`, column `duration`), for the
/// Gittins-index policy.
pub fn read_gpu_time_samples<'a>(source: impl Into<Source<'a>>) -> Result<Vec<f64>, TraceError> {
    read_csv_with_header(source, &["duration"], |f| f.non_negative_f64(0))
}
