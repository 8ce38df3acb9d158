//! Microsoft Philly job statistics, as shipped by Gavel and Sia.
//!
//! Source: Jeon et al., "Analysis of Large-Scale Multi-Tenant GPU Clusters
//! for DNN Training Workloads", USENIX ATC 2019 (the Philly trace).

use crate::error::{TraceError, read_csv_with_header};
use crate::input::Source;

/// One Philly job: run time and GPUs.
#[derive(Debug, Clone, PartialEq)]
pub struct PhillyJob {
    /// Submission time as written in the trace (Sia's file only).
    pub timestamp: Option<String>,
    /// Run time, seconds.
    pub duration_s: f64,
    /// GPUs.
    pub num_gpus: u32,
    /// Virtual cluster id (Sia's file only).
    pub cluster: Option<String>,
}

/// Reads Gavel's `philly_job_distribution.csv` (`duration_s,num_gpus`).
pub fn read_gavel_distribution<'a>(source: impl Into<Source<'a>>) -> Result<Vec<PhillyJob>, TraceError> {
    read_csv_with_header(source, &["duration_s", "num_gpus"], |f| {
        Ok(PhillyJob {
            timestamp: None,
            duration_s: f.non_negative_f64(0)?,
            num_gpus: u32::try_from(f.positive_u64(1)?).map_err(|_| f.invalid(1, "too many GPUs"))?,
            cluster: None,
        })
    })
}

/// Reads Sia's `traces/philly.csv` (`timestamp,duration,num_gpus,gpu_time,cluster`).
pub fn read_sia_jobs<'a>(source: impl Into<Source<'a>>) -> Result<Vec<PhillyJob>, TraceError> {
    read_csv_with_header(source, &["timestamp", "duration", "num_gpus", "cluster"], |f| {
        Ok(PhillyJob {
            timestamp: Some(f.non_empty(0)?.to_string()),
            duration_s: f.non_negative_f64(1)?,
            num_gpus: u32::try_from(f.positive_u64(2)?).map_err(|_| f.invalid(2, "too many GPUs"))?,
            cluster: Some(f.text(3)?.to_string()),
        })
    })
}
