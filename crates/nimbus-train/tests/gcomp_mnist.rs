//! GComp on real CNN gradients from MNIST t10k (skipped with a notice
//! when `../shared/data/mnist-t10k` is absent).

use std::path::Path;

use nimbus_nn::data::mnist;
use nimbus_nn::net::Arch;
use nimbus_train::compress::Exchange;
use nimbus_train::experiment::{RunSpec, train};
use nimbus_train::gcomp::GcompConfig;

/// One epoch of the CNN on the 8,000-image split with four workers: GComp
/// sends 15–45% of the FP32 bytes (the paper: down to 32.9%), its
/// lossless-mantissa variant 30–60%, and accuracy stays within one point
/// of FP32's (one seed, one epoch: the trajectories differ by rounding).
#[test]
fn gcomp_cuts_cnn_gradient_volume_at_fp32_accuracy() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/mnist-t10k"));
    if !dir.join(nimbus_nn::data::MNIST_IMAGES).is_file() {
        eprintln!("skipped: {} is absent", dir.display());
        return;
    }
    let split = mnist(dir).expect("mnist");
    let spec = RunSpec { arch: Arch::Cnn, workers: 4, batch: 64, epochs: 1, lr: 0.05, momentum: 0.9, init: None };
    let run = |e: &Exchange| train(&split, &spec, e, 1, &mut |_| {}).expect("train");
    let fp32 = run(&Exchange::Fp32);
    let gcomp = run(&Exchange::Gcomp(GcompConfig::default()));
    let lossless = run(&Exchange::Gcomp(GcompConfig { mantissa_bits: vec![23], band_width: 1, reuse_codebooks: true }));
    eprintln!(
        "fp32 {:.2}%; gcomp {:.2}% at {:.1}% of the bytes; lossless mantissa {:.2}% at {:.1}%; zeros {:.1}%, exponent entropy {:.2} bits",
        100.0 * fp32.accuracy(),
        100.0 * gcomp.accuracy(),
        100.0 * gcomp.volume_ratio(),
        100.0 * lossless.accuracy(),
        100.0 * lossless.volume_ratio(),
        100.0 * fp32.zero_fraction,
        fp32.exponent_entropy
    );
    assert!((0.15..0.45).contains(&gcomp.volume_ratio()), "gcomp volume {}", gcomp.volume_ratio());
    assert!((0.30..0.60).contains(&lossless.volume_ratio()), "lossless volume {}", lossless.volume_ratio());
    // Lossless mantissas leave the training bit-identical to FP32's.
    assert_eq!(lossless.accuracy_by_epoch, fp32.accuracy_by_epoch);
    assert!((gcomp.accuracy() - fp32.accuracy()).abs() < 0.01);
}
