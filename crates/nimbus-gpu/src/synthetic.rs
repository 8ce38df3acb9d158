//! Synthetic stand-ins for Sia-style data, so that Sia scenarios run on a
//! fresh clone without `../shared/data`.
//!
//! Calibration (fitted once to `../shared/data/sia`, Sia artifact commit
//! aaf7a0d; see the table below for the numbers):
//! - Step time per (application, GPU profile): compute = α + β·(per-GPU
//!   batch), fitted by least squares on the single-GPU placements; plus a
//!   synchronisation time equal to the median measured `sync_time` of
//!   single-server multi-GPU placements (intra) or multi-server ones (inter).
//!   The per-GPU batch range is the measured one.
//! - Statistical efficiency depends only on the gradient noise ratio
//!   φ = var / sqr; it grows geometrically from the median of the first
//!   tenth of the epochs to that of the last tenth of the smallest-batch
//!   validation curve (capped at 1,000). Epochs advance by the measured mean
//!   progress per epoch.
//! - Workloads: 160 jobs with Poisson arrivals at 20 jobs/h (the 8 busiest
//!   Philly hours), applications, GPU counts and batch sizes drawn with the
//!   frequencies of the eight Philly workloads.
//!
//! These are models of the data, not the data: the fitted synthetic runs are
//! marked as fallbacks, and claims checked on them are "not comparable".

use std::collections::BTreeMap;

use nimbus_sim::RngStreams;
use nimbus_trace::sia::{PlacementRow, ScalabilityRow, ValidationRow, WorkloadJob};

use crate::goodput::{Application, app_constants};

struct TypeFit {
    app: &'static str,
    profile: &'static str,
    alpha: f64,
    beta: f64,
    sync_intra: f64,
    sync_inter: f64,
    min_local: u32,
    max_local: u32,
}

struct AppFit {
    app: &'static str,
    init_bsz: u32,
    max_bsz: u32,
    progress_per_epoch: f64,
    phi_start: f64,
    phi_end: f64,
}

const TYPE_FITS: &[TypeFit] = &[
    TypeFit {
        app: "cifar10",
        profile: "aws",
        alpha: 0.01723,
        beta: 0.000664,
        sync_intra: 0.00738,
        sync_inter: 0.07252,
        min_local: 32,
        max_local: 1024,
    },
    TypeFit {
        app: "cifar10",
        profile: "dgx-ext",
        alpha: 0.02675,
        beta: 0.000092,
        sync_intra: 0.00200,
        sync_inter: 0.00270,
        min_local: 32,
        max_local: 4096,
    },
    TypeFit {
        app: "cifar10",
        profile: "rtx",
        alpha: 0.03978,
        beta: 0.000260,
        sync_intra: 0.01701,
        sync_inter: 0.03613,
        min_local: 32,
        max_local: 1024,
    },
    TypeFit {
        app: "imagenet",
        profile: "aws",
        alpha: 0.07844,
        beta: 0.004208,
        sync_intra: 0.00331,
        sync_inter: 0.11143,
        min_local: 20,
        max_local: 200,
    },
    TypeFit {
        app: "imagenet",
        profile: "dgx-ext",
        alpha: 0.11847,
        beta: 0.000804,
        sync_intra: 0.01941,
        sync_inter: 0.01820,
        min_local: 20,
        max_local: 800,
    },
    TypeFit {
        app: "imagenet",
        profile: "rtx",
        alpha: 0.16562,
        beta: 0.001667,
        sync_intra: 0.03730,
        sync_inter: 0.08115,
        min_local: 20,
        max_local: 200,
    },
    TypeFit {
        app: "bert",
        profile: "aws",
        alpha: 0.21297,
        beta: 0.057838,
        sync_intra: 0.07833,
        sync_inter: 0.97195,
        min_local: 4,
        max_local: 12,
    },
    TypeFit {
        app: "bert",
        profile: "dgx-ext",
        alpha: 0.11643,
        beta: 0.004580,
        sync_intra: 0.01762,
        sync_inter: 0.02009,
        min_local: 4,
        max_local: 48,
    },
    TypeFit {
        app: "bert",
        profile: "rtx",
        alpha: 0.17100,
        beta: 0.022402,
        sync_intra: 0.32241,
        sync_inter: 0.51226,
        min_local: 4,
        max_local: 12,
    },
    TypeFit {
        app: "deepspeech2",
        profile: "aws",
        alpha: 0.09128,
        beta: 0.029052,
        sync_intra: 0.07659,
        sync_inter: 0.32813,
        min_local: 10,
        max_local: 80,
    },
    TypeFit {
        app: "deepspeech2",
        profile: "dgx-ext",
        alpha: 0.39809,
        beta: 0.012276,
        sync_intra: 0.02940,
        sync_inter: 0.03088,
        min_local: 10,
        max_local: 320,
    },
    TypeFit {
        app: "deepspeech2",
        profile: "rtx",
        alpha: 0.06056,
        beta: 0.017670,
        sync_intra: 0.07147,
        sync_inter: 0.11529,
        min_local: 10,
        max_local: 57,
    },
    TypeFit {
        app: "yolov3",
        profile: "aws",
        alpha: 0.21639,
        beta: 0.024300,
        sync_intra: 0.03351,
        sync_inter: 0.77455,
        min_local: 4,
        max_local: 16,
    },
    TypeFit {
        app: "yolov3",
        profile: "dgx-ext",
        alpha: 0.27191,
        beta: 0.006476,
        sync_intra: 0.03735,
        sync_inter: 0.11519,
        min_local: 4,
        max_local: 32,
    },
    TypeFit {
        app: "yolov3",
        profile: "rtx",
        alpha: 0.32330,
        beta: 0.040424,
        sync_intra: 0.26853,
        sync_inter: 0.40851,
        min_local: 4,
        max_local: 8,
    },
];

const APP_FITS: &[AppFit] = &[
    AppFit {
        app: "cifar10",
        init_bsz: 128,
        max_bsz: 4096,
        progress_per_epoch: 390.63,
        phi_start: 2.246,
        phi_end: 225.5,
    },
    AppFit {
        app: "imagenet",
        init_bsz: 200,
        max_bsz: 12800,
        progress_per_epoch: 6405.84,
        phi_start: 22.90,
        phi_end: 71.76,
    },
    AppFit { app: "bert", init_bsz: 12, max_bsz: 384, progress_per_epoch: 7387.0, phi_start: 35.25, phi_end: 93.69 },
    AppFit {
        app: "deepspeech2",
        init_bsz: 20,
        max_bsz: 640,
        progress_per_epoch: 356.70,
        phi_start: 2.213,
        phi_end: 1000.0,
    },
    AppFit { app: "yolov3", init_bsz: 8, max_bsz: 512, progress_per_epoch: 2068.88, phi_start: 26.51, phi_end: 653.7 },
];

/// Application mix of the eight Philly workloads: (application, jobs of
/// 1,280, GPU counts requested, batch sizes requested).
const MIX: &[(&str, u32, &[u32], &[u32])] = &[
    ("cifar10", 998, &[6, 8, 12, 16], &[2048, 4096]),
    ("deepspeech2", 111, &[6, 8, 12], &[320, 640]),
    ("bert", 86, &[6, 8, 12, 16], &[384]),
    ("yolov3", 59, &[4], &[64]),
    ("imagenet", 26, &[10, 12, 14], &[1600, 3200]),
];

/// A synthetic 160-job workload for `seed`.
pub fn sia_workload(seed: u64) -> Vec<WorkloadJob> {
    let streams = RngStreams::new(seed);
    let mut arrivals = streams.stream("sia-workload-arrivals");
    let mut kinds = streams.stream("sia-workload-kinds");
    let weights: Vec<f64> = MIX.iter().map(|m| f64::from(m.1)).collect();
    let mut time = 0.0;
    (0..160)
        .map(|i| {
            time += arrivals.exponential(20.0 / 3600.0);
            let (app, _, gpus, batches) = MIX[kinds.weighted_index(&weights)];
            WorkloadJob {
                name: format!("{app}-{i}"),
                time_s: time.round(),
                application: app.to_string(),
                num_replicas: gpus[kinds.index(gpus.len())],
                batch_size: batches[kinds.index(batches.len())],
            }
        })
        .collect()
}

/// A synthetic profile of `app` for the given GPU profiles (`aws`,
/// `dgx-ext`, `rtx`); types without a fit are unusable by the app.
pub fn sia_application(app: &str, profiles: &[String], calibrated: bool) -> Option<Application> {
    let fit = APP_FITS.iter().find(|f| f.app == app)?;
    let mut constants = app_constants(app)?;
    if !calibrated {
        constants.slowdown = 1.0;
    }
    let epochs = constants.max_epochs;
    let mut validation: BTreeMap<u32, Vec<ValidationRow>> = BTreeMap::new();
    let mut bsz = fit.init_bsz;
    while bsz <= fit.max_bsz {
        let rows = (0..epochs)
            .map(|e| {
                let t = if epochs > 1 { e as f64 / (epochs - 1) as f64 } else { 0.0 };
                let phi = fit.phi_start * (fit.phi_end / fit.phi_start).powf(t);
                let progress = (e + 1) as f64 * fit.progress_per_epoch;
                ValidationRow {
                    progress,
                    iteration: progress * f64::from(fit.init_bsz) / f64::from(bsz),
                    metric: 0.0,
                    grad_sqr: 1.0,
                    grad_var: phi,
                }
            })
            .collect();
        validation.insert(bsz, rows);
        bsz *= 2;
    }
    let types = profiles
        .iter()
        .map(|p| {
            TYPE_FITS.iter().find(|f| f.app == app && f.profile == p).map(|f| {
                let per_server = if p == "aws" { 4 } else { 8 };
                let (placements, scalability) = step_rows(f, per_server);
                (placements, scalability)
            })
        })
        .collect::<Vec<_>>();
    Application::from_rows(app, constants, validation, types).ok()
}

/// Placement rows for single-server configurations and scalability rows
/// for multi-server ones, at six per-GPU batch sizes across the fitted range.
fn step_rows(f: &TypeFit, per_server: u32) -> (Vec<PlacementRow>, Vec<ScalabilityRow>) {
    let batches: Vec<u32> = (0..6)
        .map(|i| {
            let lo = f64::from(f.min_local);
            let hi = f64::from(f.max_local);
            (lo * (hi / lo).powf(f64::from(i) / 5.0)).round() as u32
        })
        .collect();
    let mut placements = Vec::new();
    let mut g = 1;
    while g <= per_server {
        for &b in &batches {
            let sync = if g > 1 { f.sync_intra } else { 0.0 };
            placements.push(PlacementRow {
                placement: vec![g],
                local_bsz: b,
                step_time_s: f.alpha + f.beta * f64::from(b) + sync,
                sync_time_s: sync,
            });
        }
        g *= 2;
    }
    let mut scalability = Vec::new();
    for nodes in 2..=16u32 {
        for &b in &batches {
            scalability.push(ScalabilityRow {
                num_nodes: nodes,
                num_replicas: nodes * per_server,
                local_bsz: b,
                step_time_s: f.alpha + f.beta * f64::from(b) + f.sync_inter,
                sync_time_s: f.sync_inter,
            });
        }
    }
    (placements, scalability)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_are_deterministic_and_plausible() {
        let a = sia_workload(3);
        assert_eq!(a, sia_workload(3));
        assert_ne!(a, sia_workload(4));
        assert_eq!(a.len(), 160);
        assert!(a.windows(2).all(|w| w[0].time_s <= w[1].time_s));
        let cifar = a.iter().filter(|j| j.application == "cifar10").count();
        assert!((100..150).contains(&cifar), "{cifar}");
        let span_h = a.last().map_or(0.0, |j| j.time_s) / 3600.0;
        assert!((5.0..12.0).contains(&span_h), "{span_h}");
    }

    #[test]
    fn synthetic_applications_cover_the_mix() {
        let profiles: Vec<String> = ["aws", "dgx-ext", "rtx"].iter().map(|s| s.to_string()).collect();
        for (app, ..) in MIX {
            let a = sia_application(app, &profiles, true).expect("fitted");
            assert!(a.total_progress() > 0.0);
            for t in 0..3 {
                assert!(a.has_type(t));
            }
        }
        assert!(sia_application("ncf", &profiles, true).is_none());
    }
}
