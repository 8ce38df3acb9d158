//! Training on MNIST t10k (skipped with a notice when
//! `../shared/data/mnist-t10k` is absent).

use std::path::Path;

use nimbus_nn::data::{Origin, mnist};
use nimbus_nn::net::{Arch, Network};
use nimbus_nn::optim::Sgd;
use nimbus_nn::parallel::{Trainer, mean};

fn data_dir() -> Option<&'static Path> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/mnist-t10k"));
    if dir.join(nimbus_nn::data::MNIST_IMAGES).is_file() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

/// One epoch of each network on the 8,000-image split reaches the accuracy
/// such networks reach on MNIST after one epoch, and the MLP's run is
/// byte-identical when repeated.
#[test]
fn one_epoch_on_mnist_learns_and_repeats() {
    let Some(dir) = data_dir() else { return };
    let split = mnist(dir).expect("mnist");
    assert_eq!((split.train.len(), split.test.len(), split.origin), (8_000, 2_000, Origin::Mnist));
    let run = |arch: &Arch| {
        let mut net = Network::new(arch, 28, 1).expect("net");
        let mut opt = Sgd::new(&net, 0.05, 0.9);
        let mut trainer = Trainer::new(4, 64, 1).expect("trainer");
        let report = trainer.epoch(&mut net, &mut opt, &split.train, &mut |_, g| Ok(mean(g))).expect("epoch");
        (report, net.evaluate(&split.test).expect("eval"), net.values().expect("values"))
    };
    let (mlp_report, mlp, mlp_values) = run(&Arch::mlp());
    let (_, cnn, _) = run(&Arch::Cnn);
    eprintln!("one epoch: mlp loss {:.4} test accuracy {:.4}; cnn {:.4}", mlp_report.loss, mlp.accuracy, cnn.accuracy);
    assert_eq!(mlp_report.steps, 125);
    assert!(mlp.accuracy > 0.88, "mlp {}", mlp.accuracy);
    assert!(cnn.accuracy > 0.90, "cnn {}", cnn.accuracy);
    let (_, again, again_values) = run(&Arch::mlp());
    assert_eq!(again, mlp);
    assert_eq!(again_values, mlp_values);
}
