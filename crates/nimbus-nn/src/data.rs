//! Labelled images for training: MNIST from its IDX files, or a synthetic
//! digit set.
//!
//! Pixels are normalised as the usual MNIST recipe does,
//! `(p / 255 − 0.1307) / 0.3081`.

use std::path::Path;

use nimbus_sim::rng::RngStreams;

use crate::NnError;

/// MNIST's pixel mean and standard deviation (over the training set).
const MEAN: f32 = 0.1307;
const STD: f32 = 0.3081;

/// Images of one size with labels `0..classes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// Normalised pixels, image after image.
    pub inputs: Vec<f32>,
    /// One label per image.
    pub labels: Vec<u32>,
}

/// Where a training run's data came from, for results and notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The MNIST t10k files.
    Mnist,
    /// The synthetic stand-in (and why).
    Synthetic(String),
}

impl Dataset {
    /// Images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// Image `i`'s normalised pixels.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.pixels();
        &self.inputs[i * n..(i + 1) * n]
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let mut inputs = Vec::with_capacity(indices.len() * self.pixels());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            inputs.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Dataset { rows: self.rows, cols: self.cols, inputs, labels }
    }

    /// Images `range` in file order.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Dataset {
        let n = self.pixels();
        Dataset {
            rows: self.rows,
            cols: self.cols,
            inputs: self.inputs[range.start * n..range.end * n].to_vec(),
            labels: self.labels[range].to_vec(),
        }
    }

    /// From MNIST images and labels.
    pub fn from_mnist(mnist: &nimbus_trace::idx::Mnist) -> Dataset {
        Dataset {
            rows: mnist.rows,
            cols: mnist.cols,
            inputs: mnist.pixels.iter().map(|&p| normalise(p)).collect(),
            labels: mnist.labels.iter().map(|&l| u32::from(l)).collect(),
        }
    }
}

fn normalise(p: u8) -> f32 {
    (f32::from(p) / 255.0 - MEAN) / STD
}

/// A train/test split.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Training images.
    pub train: Dataset,
    /// Held-out test images.
    pub test: Dataset,
    /// Where they came from.
    pub origin: Origin,
}

/// The MNIST t10k files inside `dir`.
pub const MNIST_IMAGES: &str = "t10k-images-idx3-ubyte.gz";
/// The MNIST t10k labels inside `dir`.
pub const MNIST_LABELS: &str = "t10k-labels-idx1-ubyte.gz";
/// Training images of the MNIST split (the rest, 2,000, are the test set).
pub const MNIST_TRAIN: usize = 8_000;

/// MNIST t10k from `dir`, split as documented: the first 8,000 images (file
/// order) train, the last 2,000 test.
pub fn mnist(dir: &Path) -> Result<Split, NnError> {
    let m = nimbus_trace::idx::read_mnist(dir.join(MNIST_IMAGES).as_path(), dir.join(MNIST_LABELS).as_path())?;
    if m.len() <= MNIST_TRAIN {
        return Err(NnError::Invalid(format!(
            "{} holds {} images; the split needs more than {MNIST_TRAIN}",
            dir.display(),
            m.len()
        )));
    }
    let all = Dataset::from_mnist(&m);
    Ok(Split { train: all.slice(0..MNIST_TRAIN), test: all.slice(MNIST_TRAIN..all.len()), origin: Origin::Mnist })
}

/// MNIST from `dir` when its files are there, else the synthetic set of the
/// same shape (`seed`), with the reason in [`Split::origin`]. Files that
/// are present but malformed, or one file without the other, are an
/// error, not a fallback.
pub fn mnist_or_synthetic(dir: &Path, seed: u64) -> Result<Split, NnError> {
    if dir.join(MNIST_IMAGES).exists() || dir.join(MNIST_LABELS).exists() {
        return mnist(dir);
    }
    let mut split = synthetic(MNIST_TRAIN, 10_000 - MNIST_TRAIN, seed);
    split.origin = Origin::Synthetic(format!("{} not found: synthetic digits stand in", dir.display()));
    Ok(split)
}

/// A synthetic ten-class set of 28 × 28 images: each class is a fixed
/// pattern of three strokes (drawn once from `seed`); each image is its
/// class's pattern shifted by up to two pixels, with stroke intensity and
/// pixel noise drawn per image. Learnable but not trivially (classes share
/// strokes), it stands in for MNIST where the files are absent.
pub fn synthetic(train: usize, test: usize, seed: u64) -> Split {
    const SIDE: usize = 28;
    let streams = RngStreams::new(seed);
    let mut shapes = streams.stream("synthetic-digits/classes");
    // A stroke: a segment between two points inside the central 20 × 20.
    let classes: Vec<Vec<[f64; 4]>> =
        (0..10).map(|_| (0..3).map(|_| std::array::from_fn(|_| shapes.uniform_range(6.0, 22.0))).collect()).collect();
    let mut draw = streams.stream("synthetic-digits/images");
    let mut make = |n: usize| {
        let mut inputs = Vec::with_capacity(n * SIDE * SIDE);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let label = draw.below(10) as usize;
            let (dx, dy) = (draw.uniform_range(-2.0, 2.0), draw.uniform_range(-2.0, 2.0));
            let ink = draw.uniform_range(0.6, 1.0);
            let mut image = [0f64; SIDE * SIDE];
            for s in &classes[label] {
                let steps = 40;
                for k in 0..=steps {
                    let t = f64::from(k) / f64::from(steps);
                    let x = s[0] + (s[2] - s[0]) * t + dx;
                    let y = s[1] + (s[3] - s[1]) * t + dy;
                    for (px, py) in [(x, y), (x + 1.0, y), (x, y + 1.0)] {
                        if (0.0..SIDE as f64).contains(&px) && (0.0..SIDE as f64).contains(&py) {
                            image[py as usize * SIDE + px as usize] = ink;
                        }
                    }
                }
            }
            for p in &image {
                let noisy = (p + draw.normal(0.0, 0.15)).clamp(0.0, 1.0);
                inputs.push(normalise((noisy * 255.0).round() as u8));
            }
            labels.push(label as u32);
        }
        Dataset { rows: SIDE, cols: SIDE, inputs, labels }
    };
    let train = make(train);
    let test = make(test);
    Split { train, test, origin: Origin::Synthetic("synthetic digits".into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_is_deterministic_and_balanced_enough() {
        let a = synthetic(500, 100, 7);
        let b = synthetic(500, 100, 7);
        assert_eq!(a, b);
        assert_ne!(a.train.inputs, synthetic(500, 100, 8).train.inputs);
        let mut counts = [0usize; 10];
        for &l in &a.train.labels {
            counts[l as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 20), "{counts:?}");
        assert_eq!(a.train.inputs.len(), 500 * 784);
    }

    #[test]
    fn select_and_slice_keep_images_with_labels() {
        let s = synthetic(20, 0, 1).train;
        let picked = s.select(&[3, 0]);
        assert_eq!(picked.image(0), s.image(3));
        assert_eq!(picked.labels, vec![s.labels[3], s.labels[0]]);
        assert_eq!(s.slice(2..4).image(1), s.image(3));
    }

    #[test]
    fn missing_mnist_falls_back_and_says_so() {
        let s = mnist_or_synthetic(Path::new("/nonexistent/mnist"), 1).expect("fallback");
        assert!(matches!(s.origin, Origin::Synthetic(ref why) if why.contains("/nonexistent/mnist")));
        assert_eq!((s.train.len(), s.test.len()), (8_000, 2_000));
    }
}
