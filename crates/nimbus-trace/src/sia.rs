//! Sia and Pollux formats: job workloads and per-application profiles.
//!
//! Sources: Jayaram Subramanya et al., "Sia: Heterogeneity-aware,
//! goodput-optimized ML-cluster scheduling", SOSP 2023 (artifact
//! `siasosp23/artifacts`, `sia-simulator/`); Qiao et al., "Pollux",
//! OSDI 2021 (`petuum/adaptdl`, `simulator/`). Both share these formats.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{TraceError, read_csv_with_header};
use crate::input::{Source, quote};

/// One job of a Sia/Pollux workload (`name,time,application,num_replicas,batch_size`).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadJob {
    /// Job name, unique within the workload (e.g. `cifar10-0`).
    pub name: String,
    /// Submission time, seconds from the start of the workload.
    pub time_s: f64,
    /// Application (a profile directory name such as `cifar10`).
    pub application: String,
    /// GPUs requested by the user (used by non-adaptive policies).
    pub num_replicas: u32,
    /// Total batch size requested by the user.
    pub batch_size: u32,
}

/// Reads a workload CSV.
pub fn read_workload<'a>(source: impl Into<Source<'a>>) -> Result<Vec<WorkloadJob>, TraceError> {
    let columns = ["name", "time", "application", "num_replicas", "batch_size"];
    read_csv_with_header(source, &columns, |f| {
        Ok(WorkloadJob {
            name: f.non_empty(0)?.trim().to_string(),
            time_s: f.non_negative_f64(1)?,
            application: f.non_empty(2)?.trim().to_string(),
            num_replicas: u32::try_from(f.positive_u64(3)?).map_err(|_| f.invalid(3, "too many replicas"))?,
            batch_size: u32::try_from(f.positive_u64(4)?).map_err(|_| f.invalid(4, "batch size too large"))?,
        })
    })
}

/// One row of a `placements*.csv` profile: measured step time for a
/// placement (one digit per node: GPUs on that node, e.g. `22`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementRow {
    /// GPUs on each node of the placement.
    pub placement: Vec<u32>,
    /// Per-GPU batch size.
    pub local_bsz: u32,
    /// Seconds per step.
    pub step_time_s: f64,
    /// Seconds of gradient synchronisation within a step.
    pub sync_time_s: f64,
}

/// One row of a `scalability*.csv` profile (placements beyond the measured ones).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalabilityRow {
    /// Nodes.
    pub num_nodes: u32,
    /// GPUs.
    pub num_replicas: u32,
    /// Per-GPU batch size.
    pub local_bsz: u32,
    /// Seconds per step.
    pub step_time_s: f64,
    /// Seconds of gradient synchronisation within a step.
    pub sync_time_s: f64,
}

/// One row of a `validation-<bsz>.csv` curve: statistics per epoch when
/// training at a fixed total batch size.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationRow {
    /// Cumulative training progress (in units of the initial batch size's examples processed).
    pub progress: f64,
    /// Iterations completed.
    pub iteration: f64,
    /// Validation metric.
    pub metric: f64,
    /// Gradient square norm estimate.
    pub grad_sqr: f64,
    /// Gradient variance estimate.
    pub grad_var: f64,
}

/// The profile of one application on one cluster type.
#[derive(Debug, Clone, PartialEq)]
pub struct AppProfile {
    /// Application name.
    pub name: String,
    /// Measured placements.
    pub placements: Vec<PlacementRow>,
    /// Scalability measurements.
    pub scalability: Vec<ScalabilityRow>,
    /// Validation curves by total batch size.
    pub validation: BTreeMap<u32, Vec<ValidationRow>>,
}

/// Reads `placements*.csv`.
pub fn read_placements<'a>(source: impl Into<Source<'a>>) -> Result<Vec<PlacementRow>, TraceError> {
    let columns = ["placement", "local_bsz", "step_time", "sync_time"];
    read_csv_with_header(source, &columns, |f| {
        let text = f.non_empty(0)?.trim();
        let placement: Option<Vec<u32>> = text.chars().map(|c| c.to_digit(10).filter(|d| *d > 0)).collect();
        let placement = placement
            .ok_or_else(|| f.invalid(0, format!("expected digits 1-9 (GPUs per node), found `{}`", quote(text))))?;
        Ok(PlacementRow {
            placement,
            local_bsz: u32::try_from(f.positive_u64(1)?).map_err(|_| f.invalid(1, "batch size too large"))?,
            step_time_s: f.positive_f64(2)?,
            sync_time_s: f.non_negative_f64(3)?,
        })
    })
}

/// Reads `scalability*.csv`.
pub fn read_scalability<'a>(source: impl Into<Source<'a>>) -> Result<Vec<ScalabilityRow>, TraceError> {
    let columns = ["num_nodes", "num_replicas", "local_bsz", "step_time", "sync_time"];
    read_csv_with_header(source, &columns, |f| {
        let small = |i: usize| -> Result<u32, TraceError> {
            u32::try_from(f.positive_u64(i)?).map_err(|_| f.invalid(i, "value too large"))
        };
        Ok(ScalabilityRow {
            num_nodes: small(0)?,
            num_replicas: small(1)?,
            local_bsz: small(2)?,
            step_time_s: f.positive_f64(3)?,
            sync_time_s: f.non_negative_f64(4)?,
        })
    })
}

/// Reads `validation-<bsz>.csv`.
pub fn read_validation<'a>(source: impl Into<Source<'a>>) -> Result<Vec<ValidationRow>, TraceError> {
    let columns = ["progress", "iteration", "metric", "grad_sqr", "grad_var"];
    read_csv_with_header(source, &columns, |f| {
        Ok(ValidationRow {
            progress: f.non_negative_f64(0)?,
            iteration: f.non_negative_f64(1)?,
            metric: f.f64(2)?,
            grad_sqr: f.f64(3)?,
            grad_var: f.f64(4)?,
        })
    })
}

/// Reads the profile of `app` under `traces_dir/<app>/` for a cluster
/// suffix (`aws`, `dgx-ext`, `rtx`, …; `None` for the unsuffixed files).
pub fn read_app_profile(traces_dir: &Path, app: &str, cluster: Option<&str>) -> Result<AppProfile, TraceError> {
    let dir = traces_dir.join(app);
    let suffix = cluster.map(|c| format!("-{c}")).unwrap_or_default();
    let placements = read_placements(&dir.join(format!("placements{suffix}.csv")))?;
    let scalability = read_scalability(&dir.join(format!("scalability{suffix}.csv")))?;
    let mut validation = BTreeMap::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| TraceError::io(&dir, e))?;
    let mut names: Vec<String> =
        entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in names {
        let Some(bsz) = name.strip_prefix("validation-").and_then(|n| n.strip_suffix(".csv")) else { continue };
        let path = dir.join(&name);
        let bsz: u32 =
            bsz.parse().map_err(|_| TraceError::file(&path, "file name should be validation-<batch size>.csv"))?;
        let rows = read_validation(&path)?;
        if rows.is_empty() {
            return Err(TraceError::file(&path, "validation curve has no rows"));
        }
        validation.insert(bsz, rows);
    }
    if validation.is_empty() {
        return Err(TraceError::file(&dir, "no validation-<bsz>.csv curves found"));
    }
    Ok(AppProfile { name: app.to_string(), placements, scalability, validation })
}
