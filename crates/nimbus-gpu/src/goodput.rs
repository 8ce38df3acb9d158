//! Sia's and Pollux's job model: measured step times per placement and
//! batch size, statistical efficiency from gradient statistics, and progress
//! measured in epochs of the validation curves.
//!
//! Source: the simulators of Sia (Jayaram Subramanya et al., SOSP 2023,
//! `siasosp23/artifacts`, `sia-simulator/job.py`, `applications.py`) and
//! Pollux (Qiao et al., OSDI 2021), whose profiles are under
//! `../shared/data/sia/traces/<app>/`.
//!
//! Ground truth, as in the reference simulator:
//! - A job's progress advances at `goodput = gain / iteration_time × c`,
//!   where `gain = (var + sqr) / (var / scale + sqr)` with the gradient
//!   statistics of the current epoch (interpolated between the validated
//!   batch sizes), `scale = batch / initial batch`, the iteration time is
//!   the measured step time plus `accum_steps` extra compute passes, and
//!   `c = 1 / slowdown` is the per-application calibration (cifar10 1.8,
//!   ncf 1.5, others 1.2) that the reference applies to match its testbed.
//! - An epoch ends when progress reaches the smallest progress at that
//!   epoch over the validation curves; a job ends after `max_epochs`.
//! - Step times come from `placements-<type>.csv` when the placement was
//!   measured (interpolated in the per-GPU batch size), and otherwise from
//!   the placement and scalability measurements interpolated in (nodes,
//!   GPUs, per-GPU batch size).
//! - Adaptive jobs choose their batch size per placement and epoch among 50
//!   geometrically spaced totals (Pollux's `optimize`), with gradient
//!   accumulation when the per-GPU batch exceeds what fits; rigid jobs keep
//!   the user's batch size.
//!
//! Deviations from the reference:
//! - Unmeasured placements are interpolated piecewise-linearly (first in
//!   GPUs at a fixed node count, then across node counts) instead of by
//!   SciPy's Delaunay-based `LinearNDInterpolator`; a query outside the
//!   measured range is unusable in both.
//! - Adaptive jobs pick the batch size that maximises their *true* goodput;
//!   the reference picks it with Pollux's fitted throughput model (an
//!   oracle here, a learned estimate there).
//! - Progress within a round is integrated epoch by epoch with the batch
//!   size re-chosen at each epoch boundary, as the reference does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use nimbus_trace::TraceError;
use nimbus_trace::sia::{AppProfile as Profile, PlacementRow, ScalabilityRow, ValidationRow, read_app_profile};

use crate::job::GoodputModel;

/// Per-application constants of the reference simulator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppConstants {
    /// Epochs to train.
    pub max_epochs: usize,
    /// Checkpoint-restore seconds on every (re)allocation.
    pub restart_s: f64,
    /// Calibration slowdown (progress rate is divided by it).
    pub slowdown: f64,
}

/// Constants for `app` (Sia's `applications.py`, `simulator_config.py`).
pub fn app_constants(app: &str) -> Option<AppConstants> {
    let (max_epochs, restart_s, slowdown) = match app {
        "cifar10" => (100, 50.0, 1.8),
        "imagenet" => (90, 250.0, 1.2),
        "bert" => (2, 120.0, 1.2),
        "deepspeech2" => (80, 25.0, 1.2),
        "yolov3" => (50, 80.0, 1.2),
        "ncf" => (10, 15.0, 1.5),
        _ => return None,
    };
    Some(AppConstants { max_epochs, restart_s, slowdown })
}

/// Measured `(per-GPU batch, step s, sync s)` rows, sorted by batch.
type StepRows = Vec<(f64, f64, f64)>;

/// Memoised rates by (type, normalised placement, epoch, batch key).
type RateCache = Mutex<BTreeMap<(usize, Vec<u32>, usize, u32), Option<Rates>>>;

/// What a placement achieves at the batch size a job uses there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Training progress per second (statistical efficiency included).
    pub progress_per_s: f64,
    /// Examples processed per second (raw throughput).
    pub samples_per_s: f64,
}

/// Step and sync time measurements on one GPU type.
#[derive(Debug, Clone, Default)]
struct TypeProfile {
    /// Measured placements (normalised to the smallest rotation) → rows
    /// `(per-GPU batch, step s, sync s)` sorted by batch.
    placements: BTreeMap<Vec<u32>, StepRows>,
    /// `(nodes, GPUs)` → rows `(per-GPU batch, step s, sync s)`, from the
    /// placement rows (averaged) and the scalability rows.
    grid: BTreeMap<(u32, u32), StepRows>,
    min_local_bsz: u32,
    max_local_bsz: u32,
    /// Largest per-GPU batch measured for each GPU count (memory limit).
    max_local_bsz_by_gpus: BTreeMap<u32, u32>,
}

fn interp_rows(rows: &[(f64, f64, f64)], x: f64) -> Option<(f64, f64)> {
    let first = rows.first()?;
    let last = rows.last()?;
    if x < first.0 - 1e-9 || x > last.0 + 1e-9 {
        return None;
    }
    for w in rows.windows(2) {
        let (a, b) = (w[0], w[1]);
        if x <= b.0 + 1e-9 {
            if (b.0 - a.0).abs() < 1e-12 {
                return Some((a.1, a.2));
            }
            let t = ((x - a.0) / (b.0 - a.0)).clamp(0.0, 1.0);
            return Some((a.1 + t * (b.1 - a.1), a.2 + t * (b.2 - a.2)));
        }
    }
    Some((last.1, last.2))
}

fn lerp2(a: (f64, f64), b: (f64, f64), t: f64) -> (f64, f64) {
    (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1))
}

/// Normalises a placement to its lexicographically smallest rotation
/// without empty nodes (the reference's placement id).
pub fn normalise_placement(shape: &[u32]) -> Vec<u32> {
    let nodes: Vec<u32> = shape.iter().copied().filter(|g| *g > 0).collect();
    (0..nodes.len())
        .map(|i| nodes[i..].iter().chain(&nodes[..i]).copied().collect::<Vec<u32>>())
        .min()
        .unwrap_or_default()
}

impl TypeProfile {
    fn from_profile(p: &Profile) -> Self {
        let mut t = TypeProfile::default();
        let mut grouped: BTreeMap<(u32, u32, u32), (f64, f64, u32)> = BTreeMap::new();
        for row in &p.placements {
            let key = normalise_placement(&row.placement);
            t.placements.entry(key).or_default().push((f64::from(row.local_bsz), row.step_time_s, row.sync_time_s));
            let gpus: u32 = row.placement.iter().sum();
            let g = grouped.entry((row.placement.len() as u32, gpus, row.local_bsz)).or_insert((0.0, 0.0, 0));
            g.0 += row.step_time_s;
            g.1 += row.sync_time_s;
            g.2 += 1;
            let m = t.max_local_bsz_by_gpus.entry(gpus).or_insert(0);
            *m = (*m).max(row.local_bsz);
        }
        for ((n, r, b), (step, sync, count)) in grouped {
            t.grid.entry((n, r)).or_default().push((f64::from(b), step / f64::from(count), sync / f64::from(count)));
        }
        for row in &p.scalability {
            let rows = t.grid.entry((row.num_nodes, row.num_replicas)).or_default();
            // The reference appends scalability rows after the placement means.
            rows.push((f64::from(row.local_bsz), row.step_time_s, row.sync_time_s));
        }
        for rows in t.placements.values_mut().chain(t.grid.values_mut()) {
            rows.sort_by(|a, b| a.0.total_cmp(&b.0));
            rows.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-12);
        }
        t.min_local_bsz = p.placements.iter().map(|r| r.local_bsz).min().unwrap_or(1);
        t.max_local_bsz = p.placements.iter().map(|r| r.local_bsz).max().unwrap_or(1);
        t
    }

    /// Interpolates at `gpus` within one node count.
    fn at_nodes(&self, nodes: u32, gpus: u32, bsz: f64) -> Option<(f64, f64)> {
        if let Some(rows) = self.grid.get(&(nodes, gpus)) {
            return interp_rows(rows, bsz);
        }
        let mut below: Option<(u32, (f64, f64))> = None;
        let mut above: Option<(u32, (f64, f64))> = None;
        for (&(n, r), rows) in self.grid.range((nodes, 0)..=(nodes, u32::MAX)) {
            debug_assert_eq!(n, nodes);
            let Some(v) = interp_rows(rows, bsz) else { continue };
            if r < gpus {
                below = Some((r, v));
            } else if r > gpus && above.is_none() {
                above = Some((r, v));
            }
        }
        let ((r0, v0), (r1, v1)) = (below?, above?);
        Some(lerp2(v0, v1, f64::from(gpus - r0) / f64::from(r1 - r0)))
    }

    /// Step and sync seconds of a placement at a per-GPU batch size.
    fn step_time(&self, shape: &[u32], bsz: f64) -> Option<(f64, f64)> {
        let key = normalise_placement(shape);
        if let Some(rows) = self.placements.get(&key) {
            return interp_rows(rows, bsz);
        }
        let nodes = key.len() as u32;
        let gpus: u32 = key.iter().sum();
        if let Some(v) = self.at_nodes(nodes, gpus, bsz) {
            return Some(v);
        }
        let node_counts: Vec<u32> = {
            let mut v: Vec<u32> = self.grid.keys().map(|(n, _)| *n).collect();
            v.dedup();
            v
        };
        let lower =
            node_counts.iter().rev().find(|n| **n < nodes).and_then(|n| Some((*n, self.at_nodes(*n, gpus, bsz)?)));
        let upper = node_counts.iter().find(|n| **n > nodes).and_then(|n| Some((*n, self.at_nodes(*n, gpus, bsz)?)));
        if let (Some((n0, v0)), Some((n1, v1))) = (lower, upper) {
            return Some(lerp2(v0, v1, f64::from(nodes - n0) / f64::from(n1 - n0)));
        }
        if nodes > 1 { self.split_placement(gpus, bsz) } else { None }
    }

    /// A multi-server placement with fewer GPUs than any measured one (a
    /// configuration split across servers by fragmentation): the compute
    /// time of the same GPUs on one server plus the synchronisation time of
    /// the smallest measured multi-server placement.
    fn split_placement(&self, gpus: u32, bsz: f64) -> Option<(f64, f64)> {
        let (single_step, single_sync) = self.at_nodes(1, gpus, bsz).or_else(|| {
            let (_, rows) = self.grid.range((1, 0)..=(1, gpus)).next_back()?;
            interp_rows(rows, bsz)
        })?;
        let (_, sync) = self
            .grid
            .iter()
            .filter(|((n, _), _)| *n > 1)
            .find_map(|(_, rows)| interp_rows(rows, bsz).or_else(|| rows.first().map(|r| (r.1, r.2))))?;
        Some((single_step - single_sync + sync, sync))
    }
}

/// One application's profiles on the cluster's GPU types, with the
/// validation curves that define its statistical efficiency and epochs.
#[derive(Debug)]
pub struct Application {
    /// Name.
    pub name: String,
    /// Reference constants.
    pub constants: AppConstants,
    /// Smallest validated total batch size.
    pub init_batch_size: u32,
    /// Largest validated total batch size.
    pub max_batch_size: u32,
    validation: BTreeMap<u32, Vec<ValidationRow>>,
    /// Progress at the end of epoch `e` is `epoch_end[e - 1]`.
    epoch_end: Vec<f64>,
    /// Per cluster GPU type (by index), when profiled.
    types: Vec<Option<TypeProfile>>,
    cache: RateCache,
}

/// How a job sets its batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Batch {
    /// Chosen for the best goodput (Sia, Pollux).
    Adaptive,
    /// The user's total batch size (Gavel and other non-adaptive policies).
    Fixed(u32),
    /// A fixed per-GPU batch size: the total grows with the GPUs (Hops).
    PerGpu(u32),
}

impl Batch {
    fn key(self) -> u32 {
        match self {
            Batch::Adaptive => 0,
            Batch::Fixed(b) => b,
            Batch::PerGpu(b) => b | (1 << 31),
        }
    }
}

impl Application {
    /// Loads `app` from `traces_dir` for each cluster GPU type, given the
    /// profile suffix of each type (`aws`, `dgx-ext`, `rtx`, …). With
    /// `calibrated`, progress is slowed by the reference's per-application
    /// factor; without, jobs run at the profiled speed.
    pub fn load(
        traces_dir: &Path,
        app: &str,
        type_profiles: &[String],
        calibrated: bool,
    ) -> Result<Application, TraceError> {
        let mut constants = app_constants(app).ok_or_else(|| {
            TraceError::file(
                &traces_dir.join(app),
                format!("unknown application `{app}`; known: cifar10, imagenet, bert, deepspeech2, yolov3, ncf"),
            )
        })?;
        if !calibrated {
            constants.slowdown = 1.0;
        }
        let mut validation = None;
        let mut types = Vec::new();
        for suffix in type_profiles {
            let profile = read_app_profile(traces_dir, app, Some(suffix))?;
            let mut t = TypeProfile::from_profile(&profile);
            if app == "deepspeech2" && suffix == "rtx" {
                t.max_local_bsz = 57; // as the reference does (memory limit)
            }
            validation.get_or_insert(profile.validation);
            types.push(Some(t));
        }
        let validation = validation.ok_or_else(|| TraceError::file(traces_dir, "no GPU types to load profiles for"))?;
        Self::new(app, constants, validation, types).map_err(|m| TraceError::file(&traces_dir.join(app), m))
    }

    /// An application from rows in the profile formats (for synthetic
    /// profiles); `types[t]` holds the placement and scalability rows of
    /// cluster type `t`, or `None` where the application cannot run.
    pub fn from_rows(
        app: &str,
        constants: AppConstants,
        validation: BTreeMap<u32, Vec<ValidationRow>>,
        types: Vec<Option<(Vec<PlacementRow>, Vec<ScalabilityRow>)>>,
    ) -> Result<Application, String> {
        let types = types
            .into_iter()
            .map(|t| {
                t.map(|(placements, scalability)| {
                    TypeProfile::from_profile(&Profile {
                        name: app.to_string(),
                        placements,
                        scalability,
                        validation: BTreeMap::new(),
                    })
                })
            })
            .collect();
        Self::new(app, constants, validation, types)
    }

    fn new(
        app: &str,
        constants: AppConstants,
        validation: BTreeMap<u32, Vec<ValidationRow>>,
        types: Vec<Option<TypeProfile>>,
    ) -> Result<Application, String> {
        let init_batch_size = *validation.keys().next().ok_or("no validation curves")?;
        let max_batch_size = *validation.keys().last().ok_or("no validation curves")?;
        let shortest = validation.values().map(Vec::len).min().unwrap_or(0);
        if shortest < constants.max_epochs {
            return Err(format!("validation curves have {shortest} epochs; {app} trains for {}", constants.max_epochs));
        }
        let epoch_end: Vec<f64> = (0..constants.max_epochs)
            .map(|e| validation.values().map(|rows| rows[e].progress).fold(f64::INFINITY, f64::min))
            .collect();
        Ok(Application {
            name: app.to_string(),
            constants,
            init_batch_size,
            max_batch_size,
            validation,
            epoch_end,
            types,
            cache: Mutex::new(BTreeMap::new()),
        })
    }

    /// Progress at which training ends.
    pub fn total_progress(&self) -> f64 {
        *self.epoch_end.last().expect("at least one epoch")
    }

    /// The epoch `progress` lies in (0-based).
    pub fn epoch_of(&self, progress: f64) -> usize {
        self.epoch_end.iter().take_while(|end| **end <= progress).count().min(self.epoch_end.len() - 1)
    }

    /// Whether GPU type `t` is profiled.
    pub fn has_type(&self, t: usize) -> bool {
        self.types.get(t).is_some_and(Option::is_some)
    }

    /// Smallest and largest per-GPU batch measured on type `t`.
    pub fn local_bsz_range(&self, t: usize) -> Option<(u32, u32)> {
        self.types.get(t)?.as_ref().map(|p| (p.min_local_bsz, p.max_local_bsz))
    }

    fn grad_stats(&self, batch: f64, epoch: usize) -> (f64, f64) {
        let batch = batch.clamp(f64::from(self.init_batch_size), f64::from(self.max_batch_size));
        let mut lower = None;
        let mut upper = None;
        for (&bsz, rows) in &self.validation {
            if f64::from(bsz) <= batch {
                lower = Some((bsz, rows));
            }
            if f64::from(bsz) >= batch && upper.is_none() {
                upper = Some((bsz, rows));
            }
        }
        let (lb, lr) = lower.expect("batch clamped into the validated range");
        let (ub, ur) = upper.expect("batch clamped into the validated range");
        let (l, u) = (&lr[epoch], &ur[epoch]);
        if lb == ub {
            return (l.grad_sqr, l.grad_var);
        }
        let t = (batch - f64::from(lb)) / f64::from(ub - lb);
        (l.grad_sqr + t * (u.grad_sqr - l.grad_sqr), l.grad_var + t * (u.grad_var - l.grad_var))
    }

    /// Progress and examples per second of `batch` on placement `shape` of
    /// type `t` at `epoch` (None when the placement or batch is unusable).
    pub fn rate_at(&self, t: usize, shape: &[u32], epoch: usize, batch: Batch) -> Option<Rates> {
        let key = (t, normalise_placement(shape), epoch, batch.key());
        if let Some(v) = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
            return *v;
        }
        let v = self.compute_rate(t, &key.1, epoch, batch);
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, v);
        v
    }

    fn compute_rate(&self, t: usize, shape: &[u32], epoch: usize, batch: Batch) -> Option<Rates> {
        let profile = self.types.get(t)?.as_ref()?;
        let replicas: u32 = shape.iter().sum();
        if replicas == 0 {
            return None;
        }
        let r = f64::from(replicas);
        let init = f64::from(self.init_batch_size);
        let max_batch = f64::from(self.max_batch_size);
        let max_local = f64::from(profile.max_local_bsz);
        let min_local = f64::from(profile.min_local_bsz);
        let memory_cap = profile.max_local_bsz_by_gpus.get(&replicas).map(|b| f64::from(*b));
        let eps = 1e-8;
        // The reference's `update_local_bsz` (fixed batch: the per-GPU batch
        // is rounded up first) and Pollux's `optimize` (adaptive) split a
        // total batch into an atomic batch and accumulation steps alike,
        // except for that rounding.
        let split = |total: f64, round_local: bool| -> (f64, f64) {
            let local = if round_local { (total / r - eps).ceil() } else { total / r };
            let mut accum = ((local / max_local - eps).ceil() - 1.0).max(0.0);
            let needs_accumulation = if round_local { total > init } else { local > init + eps };
            if replicas == 1 && needs_accumulation {
                accum = accum.max(1.0);
            }
            (accum, (local / (accum + 1.0) - eps).ceil())
        };
        let evaluate = |accum: f64, atomic: f64| -> Option<Rates> {
            let mut atomic = atomic;
            if let Some(cap) = memory_cap {
                atomic = atomic.min(cap);
            }
            atomic = atomic.min((max_batch / (r * (accum + 1.0))).floor());
            if atomic < 1.0 {
                return None;
            }
            let (step, sync) = profile.step_time(shape, atomic)?;
            if step <= 0.0 {
                return None;
            }
            let batch_size = r * atomic * (accum + 1.0);
            let scale = batch_size / init;
            let (sqr, var) = self.grad_stats(batch_size, epoch);
            let denom = var / scale + sqr;
            let gain = if denom > 0.0 { (var + sqr) / denom } else { 1.0 };
            let iteration = (step + (step - sync) * accum) * self.constants.slowdown;
            Some(Rates { progress_per_s: gain / iteration, samples_per_s: batch_size / iteration })
        };
        match batch {
            Batch::Fixed(total) => {
                let (accum, atomic) = split(f64::from(total).max(init), true);
                evaluate(accum, atomic)
            }
            Batch::PerGpu(local) => {
                let total = (f64::from(local) * r).clamp(init, max_batch);
                let (accum, atomic) = split(total, true);
                evaluate(accum, atomic)
            }
            Batch::Adaptive => {
                let lo = init.max(min_local * r);
                if lo > max_batch {
                    return None;
                }
                let candidates = 50;
                (0..candidates)
                    .map(|i| {
                        if lo == max_batch {
                            lo
                        } else {
                            lo * (max_batch / lo).powf(i as f64 / (candidates - 1) as f64)
                        }
                    })
                    .filter_map(|total| {
                        let (accum, atomic) = split(total, false);
                        // Pollux only considers atomic batches in the measured range.
                        if atomic < min_local || atomic > max_local {
                            return None;
                        }
                        evaluate(accum, atomic)
                    })
                    .fold(None, |best: Option<Rates>, v| match best {
                        Some(b) if b.progress_per_s >= v.progress_per_s => Some(b),
                        _ => Some(v),
                    })
            }
        }
    }
}

/// A job of one application with a batch-size mode: the engine's
/// [`GoodputModel`] for Sia/Pollux-style jobs.
#[derive(Debug, Clone)]
pub struct SiaJob {
    /// Its application.
    pub app: Arc<Application>,
    /// How it sets its batch size.
    pub batch: Batch,
    /// Largest GPU count it may use.
    pub max_gpus: u32,
}

impl GoodputModel for SiaJob {
    fn rate(&self, gpu_type: usize, shape: &[u32], progress: f64) -> f64 {
        let epoch = self.app.epoch_of(progress);
        self.app.rate_at(gpu_type, shape, epoch, self.batch).map_or(0.0, |r| r.progress_per_s)
    }

    fn throughput(&self, gpu_type: usize, shape: &[u32], progress: f64) -> f64 {
        let epoch = self.app.epoch_of(progress);
        self.app.rate_at(gpu_type, shape, epoch, self.batch).map_or(0.0, |r| r.samples_per_s)
    }

    fn gpu_range(&self) -> (u32, u32) {
        (1, self.max_gpus)
    }

    fn next_boundary(&self, progress: f64) -> f64 {
        let epoch = self.app.epoch_of(progress);
        self.app.epoch_end[epoch]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_normalise_to_smallest_rotation() {
        assert_eq!(normalise_placement(&[4, 2]), vec![2, 4]);
        assert_eq!(normalise_placement(&[3, 0, 1, 2]), vec![1, 2, 3]);
        assert_eq!(normalise_placement(&[2, 1, 2]), vec![1, 2, 2]);
    }

    #[test]
    fn row_interpolation_by_hand() {
        let rows = [(10.0, 1.0, 0.1), (20.0, 2.0, 0.3)];
        assert_eq!(interp_rows(&rows, 15.0), Some((1.5, 0.2)));
        assert_eq!(interp_rows(&rows, 10.0), Some((1.0, 0.1)));
        assert_eq!(interp_rows(&rows, 25.0), None);
    }

    fn toy() -> Application {
        // One type; placement "1" measured at per-GPU batch 32 and 64,
        // placement "2" at 32 and 64; two validation batch sizes.
        let mut t = TypeProfile::default();
        t.placements.insert(vec![1], vec![(32.0, 0.10, 0.0), (64.0, 0.18, 0.0)]);
        t.placements.insert(vec![2], vec![(32.0, 0.12, 0.02), (64.0, 0.20, 0.02)]);
        t.grid.insert((1, 1), vec![(32.0, 0.10, 0.0), (64.0, 0.18, 0.0)]);
        t.grid.insert((1, 2), vec![(32.0, 0.12, 0.02), (64.0, 0.20, 0.02)]);
        t.grid.insert((1, 4), vec![(32.0, 0.16, 0.06), (64.0, 0.24, 0.06)]);
        t.min_local_bsz = 32;
        t.max_local_bsz = 64;
        let row = |progress: f64, sqr: f64, var: f64| ValidationRow {
            progress,
            iteration: progress,
            metric: 0.0,
            grad_sqr: sqr,
            grad_var: var,
        };
        let mut validation = BTreeMap::new();
        validation.insert(32, vec![row(100.0, 1.0, 1.0), row(200.0, 1.0, 3.0)]);
        validation.insert(128, vec![row(110.0, 1.0, 1.0), row(190.0, 1.0, 3.0)]);
        let constants = AppConstants { max_epochs: 2, restart_s: 10.0, slowdown: 2.0 };
        Application::new("toy", constants, validation, vec![Some(t)]).expect("valid toy")
    }

    #[test]
    fn epochs_and_total_progress() {
        let app = toy();
        assert_eq!(app.epoch_end, vec![100.0, 190.0]);
        assert_eq!(app.total_progress(), 190.0);
        assert_eq!(app.epoch_of(0.0), 0);
        assert_eq!(app.epoch_of(100.0), 1);
        assert_eq!(app.epoch_of(500.0), 1);
    }

    /// Fixed batch 64 on one GPU: local 64 > init 32 so one accumulation
    /// step: atomic 32, step 0.10 s + 0.10 s accumulation = 0.2 s per
    /// iteration; scale 2; epoch 0 stats (sqr 1, var 1): gain = 2 / 1.5;
    /// rate = gain / 0.2 / slowdown 2 = 3.333… progress/s.
    #[test]
    fn fixed_batch_rate_by_hand() {
        let app = toy();
        let rate = app.rate_at(0, &[1], 0, Batch::Fixed(64)).expect("usable").progress_per_s;
        assert!((rate - (2.0 / 1.5) / 0.2 / 2.0).abs() < 1e-12, "{rate}");
        // Two GPUs at 64: local 32, no accumulation: step 0.12 s; gain as above.
        let rate2 = app.rate_at(0, &[2], 0, Batch::Fixed(64)).expect("usable").progress_per_s;
        assert!((rate2 - (2.0 / 1.5) / 0.12 / 2.0).abs() < 1e-12, "{rate2}");
        // Four GPUs on one node is not a measured placement: interpolated from the grid.
        let rates4 = app.rate_at(0, &[4], 0, Batch::Fixed(128)).expect("usable");
        let rate4 = rates4.progress_per_s;
        // 128 examples per 0.16 s iteration, slowed by 2.
        assert!((rates4.samples_per_s - 128.0 / 0.16 / 2.0).abs() < 1e-9);
        // A per-GPU batch of 32 on 4 GPUs is the same total of 128.
        assert_eq!(app.rate_at(0, &[4], 0, Batch::PerGpu(32)), Some(rates4));
        let gain = 2.0 / (1.0 / 4.0 + 1.0);
        assert!((rate4 - gain / 0.16 / 2.0).abs() < 1e-12, "{rate4}");
    }

    /// The adaptive choice is at least as good as any fixed batch.
    #[test]
    fn adaptive_batch_is_best() {
        let app = toy();
        let adaptive = app.rate_at(0, &[2], 1, Batch::Adaptive).expect("usable").progress_per_s;
        for b in [64, 80, 100, 128] {
            if let Some(fixed) = app.rate_at(0, &[2], 1, Batch::Fixed(b)).map(|r| r.progress_per_s) {
                assert!(adaptive >= fixed - 1e-9, "{adaptive} < {fixed} at {b}");
            }
        }
    }
}
