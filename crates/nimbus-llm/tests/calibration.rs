//! Execution-time models against public measurements (needs
//! `../shared/data`; each check prints a notice and passes when it is
//! absent).

use std::path::{Path, PathBuf};

use nimbus_llm::calibration::{ProfilePoint, fit_elementwise, fit_gemm_efficiency, fit_splitwise};
use nimbus_llm::exec::{
    AllReduce, BatchShape, Device, ExecTimeModel, FittedPoly, ProfileTable, Roofline, RooflineParams,
};
use nimbus_llm::exec::{profiled_elementwise_ms, profiled_gemm_ms};
use nimbus_llm::model::model;
use nimbus_trace::llm;

fn shared(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("NOTICE: ../shared/data/{relative} is absent; skipping this check");
        None
    }
}

/// Splitwise's headline figures for Llama-2-70B at TP8 (medians over
/// output lengths at a 512-token prompt): decode ms/token at batch 1 and
/// 64, and the 512-token prompt time.
#[test]
fn calibrated_roofline_reproduces_splitwise_llama_70b_tp8() {
    let Some(path) = shared("splitwise-perfmodel/perf_model.csv") else { return };
    let rows = llm::read_splitwise(&path).expect("valid");
    let spec = model("llama-2-70b").expect("catalog");
    for (hardware, decode1, decode64, prompt512) in [("a100-80gb", 45.0, 71.6, 93.0), ("h100-80gb", 30.6, 50.2, 53.9)] {
        let device = Device::from_catalog(hardware).expect("catalog");
        let allreduce = AllReduce::default_for(&device.name);
        let fit = fit_splitwise(&rows, "llama2-70b", hardware, spec, &device, 8, &allreduce).expect("cells");
        println!("{hardware}: {:?}", fit.params);
        for r in &fit.residuals {
            println!(
                "  {:6} p{:5} b{:3} o{:5} measured {:8.1} predicted {:8.1} ({:+.1}%){}",
                r.kind,
                r.prompt,
                r.batch,
                r.output,
                r.measured_ms,
                r.predicted_ms,
                100.0 * r.relative_error(),
                if r.fitted { "" } else { " (not fitted)" }
            );
        }
        let (m1, p1) = fit.decode_median(512, 1).expect("cell");
        let (m64, p64) = fit.decode_median(512, 64).expect("cell");
        let prompt = fit.cell("prompt", 512, 1, None).expect("cell");
        println!(
            "  decode bs1 {m1:.1}/{p1:.1}, bs64 {m64:.1}/{p64:.1}, prompt512 {:.1}/{:.1}",
            prompt.measured_ms, prompt.predicted_ms
        );
        // The published figures pool rows; these are medians of cell medians.
        assert!(
            (m1 - decode1).abs() < 0.5 && (m64 - decode64).abs() < 0.5 && (prompt.measured_ms - prompt512).abs() < 0.5
        );
        // Decodes within 10%. The prompt within 15%: the fit compromises
        // between 512-2,048-token prompts (too slow) and 4,096 (too fast),
        // since vLLM's measured prompts grow faster than linearly beyond
        // 2,048 tokens and the roofline's attention does not.
        for (what, measured, predicted, bound) in [
            ("decode bs1", m1, p1, 0.10),
            ("decode bs64", m64, p64, 0.10),
            ("prompt 512", prompt.measured_ms, prompt.predicted_ms, 0.15),
        ] {
            assert!(
                (predicted / measured - 1.0).abs() <= bound,
                "{hardware} {what}: {predicted:.1} vs {measured:.1} ms"
            );
        }
        // Every decode cell (batch 1-64, prompts and outputs 128-8192).
        for r in fit.residuals.iter().filter(|r| r.kind == "decode") {
            assert!(r.relative_error().abs() <= 0.10, "{hardware} {r:?}");
        }
    }
}

/// Measured GEMM times of Vidur's profiles against the roofline's linear
/// layers, with (η_b, η_c) fitted per device over every profiled model we
/// know the shape of and every TP degree.
#[test]
fn profiled_gemms_agree_with_the_calibrated_roofline() {
    let models = [
        ("meta-llama/Llama-2-7b-hf", "llama-2-7b"),
        ("meta-llama/Llama-2-70b-hf", "llama-2-70b"),
        ("meta-llama/Meta-Llama-3-8B", "llama-3-8b"),
        ("meta-llama/Meta-Llama-3-70B", "llama-3-70b"),
    ];
    for (dir_gpu, gpu) in [("a100", "a100-80gb"), ("h100", "h100")] {
        let device = Device::from_catalog(gpu).expect("catalog");
        let mut points = Vec::new();
        let mut elementwise = Vec::new();
        for (dir, name) in models {
            let relative = format!("vidur-profiles/profiling/compute/{dir_gpu}/{dir}/mlp.csv");
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(&relative);
            if !path.exists() {
                continue;
            }
            let spec = model(name).expect("catalog");
            for (&tp, times) in &llm::read_vidur_mlp(&path).expect("valid") {
                for (tokens, measured_ms) in profiled_gemm_ms(times) {
                    points.push(ProfilePoint { model: spec.clone(), tp, tokens, measured_ms });
                }
                for (tokens, measured_ms) in profiled_elementwise_ms(times) {
                    elementwise.push(ProfilePoint { model: spec.clone(), tp, tokens, measured_ms });
                }
            }
        }
        if points.is_empty() {
            eprintln!("NOTICE: ../shared/data/vidur-profiles is absent; skipping this check");
            return;
        }
        let (eta_bandwidth, eta_compute, knee_sharpness) = fit_gemm_efficiency(&device, &points).expect("points");
        let params = RooflineParams { eta_bandwidth, eta_compute, knee_sharpness, ..RooflineParams::default() };
        let errors: Vec<f64> = points
            .iter()
            .map(|p| {
                let roof = Roofline::new(p.model.clone(), device.clone(), p.tp, params, AllReduce::default_for(gpu));
                roof.gemm_layer_s(p.tokens as u64) * 1e3 / p.measured_ms - 1.0
            })
            .collect();
        let within = errors.iter().filter(|e| e.abs() <= 0.15).count() as f64 / errors.len() as f64;
        let worst = errors.iter().fold(0.0f64, |w, e| w.max(e.abs()));
        println!(
            "{gpu}: eta_b {eta_bandwidth:.2} eta_c {eta_compute:.2} knee {knee_sharpness}; {} points, {:.1}% within 15%, worst {:+.1}%",
            points.len(),
            100.0 * within,
            100.0 * worst
        );
        // The shipped defaults are this fit.
        let default = RooflineParams::for_device(&device.name);
        assert!((default.eta_bandwidth - eta_bandwidth).abs() < 0.011, "{gpu}");
        assert!((default.eta_compute - eta_compute).abs() < 0.011, "{gpu}");
        assert_eq!(default.knee_sharpness, knee_sharpness, "{gpu}");
        // Most points within 15% (A100 97.5%, H100 90.4% measured); the
        // misses sit at the memory-to-compute knee (64-512 tokens) and at
        // TP 8 of the 7-8 B models (H100 worst +41%).
        assert!(within >= 0.85, "{gpu}: {within}");
        assert!(worst <= 0.45, "{gpu}: {worst}");

        // The element-wise kernels: efficiency and launch time.
        let (eta_elementwise, launch_us) = fit_elementwise(&device, &elementwise).expect("points");
        let params = RooflineParams { eta_elementwise, elementwise_launch_us: launch_us, ..default };
        let errors: Vec<f64> = elementwise
            .iter()
            .map(|p| {
                let roof = Roofline::new(p.model.clone(), device.clone(), p.tp, params, AllReduce::default_for(gpu));
                roof.small_layer_s(p.tokens as u64) * 1e3 / p.measured_ms - 1.0
            })
            .collect();
        let long: Vec<f64> =
            errors.iter().zip(&elementwise).filter(|(_, p)| p.tokens >= 1000).map(|(e, _)| *e).collect();
        let within = errors.iter().filter(|e| e.abs() <= 0.15).count() as f64 / errors.len() as f64;
        let long_mean = long.iter().sum::<f64>() / long.len() as f64;
        println!(
            "{gpu}: element-wise eta {eta_elementwise:.2}, launch {launch_us:.1} us; {:.1}% within 15%, mean error at >= 1,000 tokens {:+.1}%",
            100.0 * within,
            100.0 * long_mean
        );
        assert!((default.eta_elementwise - eta_elementwise).abs() < 0.011, "{gpu}");
        assert!((default.elementwise_launch_us - launch_us).abs() < 0.051, "{gpu}");
        assert!(long_mean.abs() <= 0.05, "{gpu}: {long_mean}");
    }
}

/// OPT-13B iterations under the fitted model are DistServe's closed forms.
#[test]
fn opt_13b_iterations_are_the_distserve_forms() {
    let Some(path) = shared("distserve-perfmodel/profiler-a100-80g.distserve.json") else { return };
    let fits = llm::read_distserve(&path).expect("valid");
    for tp in [1, 2, 4] {
        let fit = fits["facebook/opt-13b"][&tp].clone();
        let poly = FittedPoly::new(fit.clone(), format!("opt-13b tp{tp}"));
        let mut prefill = BatchShape::default();
        prefill.add_prefill(300, 0);
        prefill.add_prefill(700, 0);
        let [a, b, c] = fit.prefill;
        let expected = a + b * 1000.0 + c * (300.0f64.powi(2) + 700.0f64.powi(2));
        assert!((poly.iteration_s(&prefill) * 1e3 - expected).abs() < 1e-9);
        for batch in [1u32, 94, 95, 200] {
            let mut decode = BatchShape::default();
            for _ in 0..batch {
                decode.add_decode(512);
            }
            let [a, b, c] = if batch < fit.threshold { fit.decode_small } else { fit.decode_large };
            let expected = a + b * 512.0 * batch as f64 + c * batch as f64;
            assert!((poly.iteration_s(&decode) * 1e3 - expected).abs() < 1e-9, "tp{tp} batch {batch}");
        }
    }
}

/// Long prefills (1,000 tokens to the largest profiled count) under the
/// roofline against the profile model (Vidur's GEMM and element-wise
/// tables; attention, all-reduce and head from the same roofline in both):
/// within 3% for Llama-2-7B on one A100 (the serving scenarios'
/// configuration) and on average over every profiled (model, TP) of each
/// device; the full matrix is printed.
#[test]
fn long_prefills_agree_with_the_profiles() {
    let models = [
        ("meta-llama/Llama-2-7b-hf", "llama-2-7b"),
        ("meta-llama/Llama-2-70b-hf", "llama-2-70b"),
        ("meta-llama/Meta-Llama-3-8B", "llama-3-8b"),
        ("meta-llama/Meta-Llama-3-70B", "llama-3-70b"),
    ];
    let Some(root) = shared("vidur-profiles/profiling/compute") else { return };
    for (dir_gpu, gpu) in [("a100", "a100-80gb"), ("h100", "h100")] {
        let device = Device::from_catalog(gpu).expect("catalog");
        let mut means = Vec::new();
        for (dir, name) in models {
            let path = root.join(dir_gpu).join(dir).join("mlp.csv");
            if !path.exists() {
                continue;
            }
            let spec = model(name).expect("catalog");
            for (&tp, times) in &llm::read_vidur_mlp(&path).expect("valid") {
                let roof = Roofline::new(
                    spec.clone(),
                    device.clone(),
                    tp,
                    RooflineParams::for_device(gpu),
                    AllReduce::default_for(gpu),
                );
                let profile = ProfileTable::new(times, roof.clone(), name).expect("table");
                let errors: Vec<f64> = times
                    .keys()
                    .filter(|&&t| t >= 1000)
                    .map(|&t| {
                        let mut prefill = BatchShape::default();
                        prefill.add_prefill(t, 0);
                        roof.iteration_s(&prefill) / profile.iteration_s(&prefill) - 1.0
                    })
                    .collect();
                let mean = errors.iter().sum::<f64>() / errors.len() as f64;
                let worst = errors.iter().fold(0.0f64, |w, e| if e.abs() > w.abs() { *e } else { w });
                println!("{gpu} {name} tp{tp}: long prefill mean {:+.1}%, worst {:+.1}%", 100.0 * mean, 100.0 * worst);
                if (gpu, name, tp) == ("a100-80gb", "llama-2-7b", 1) {
                    assert!(mean.abs() <= 0.03, "{mean}");
                }
                means.push(mean);
                // Beyond the table: continuous, and growing with the prompt.
                let largest = *times.keys().last().expect("points");
                let (mut at, mut past) = (BatchShape::default(), BatchShape::default());
                at.add_prefill(largest, 0);
                past.add_prefill(2 * largest, 0);
                assert!(profile.iteration_s(&past) > 1.9 * profile.iteration_s(&at), "{name} tp{tp}");
            }
        }
        let mean_abs = means.iter().map(|m| m.abs()).sum::<f64>() / means.len() as f64;
        let worst = means.iter().fold(0.0f64, |w, m| w.max(m.abs()));
        println!("{gpu}: mean |error| over (model, TP) {:.1}%, worst {:.1}%", 100.0 * mean_abs, 100.0 * worst);
        // Measured: A100 1.3% on average, worst (model, TP) 3.1%; H100 1.8%
        // and 2.9%. Single token counts stray further (±15%): the profiles
        // are noisy point to point.
        assert!(mean_abs <= 0.03 && worst <= 0.05, "{gpu}: {mean_abs} {worst}");
    }
}
