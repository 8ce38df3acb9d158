//! The distributed-training domain: mechanisms that act on real tensors
//! from small CPU training ([`nimbus_nn`]), and a training-step cost model
//! that carries their effect to clusters of accelerators.
//!
//! - [`gcomp`]: GComp's near-lossless codec (Huffman exponents, banded
//!   mantissas, zero bitmaps); [`huffman`] and [`bits`] beneath it.
//! - [`compress`]: every gradient exchange as an aggregator (FP32, FP16,
//!   top-k, random-k, QSGD, PowerSGD, signSGD, GComp) with the bytes it
//!   sent; [`experiment`] trains through one.
//! - [`inshrinkerator`]: checkpoint codecs (Inshrinkerator on [`kmeans`],
//!   uniform 8-bit + delta, zstd, raw); [`restores`] trains through
//!   failures.
//! - [`ckks`] and [`pack`]: addition-only CKKS and federated averaging
//!   with plaintext, vanilla-CKKS and Pack aggregation.
//! - [`fedcase`]: client caches and selection over federated training on
//!   a modelled clock.
//! - [`models`] and [`step`]: layer tables and the step cost model;
//!   [`nxd`] searches parallelism plans on instances, [`hapi`] splits
//!   frozen extractors between storage and compute, [`paragan`] simulates
//!   data-parallel GAN training with asynchronous G/D updates.
//! - [`scenario`]: the seven studies behind `[workload] kind`.

pub mod bits;
pub mod ckks;
pub mod compress;
pub mod experiment;
pub mod fedcase;
pub mod gcomp;
pub mod hapi;
pub mod huffman;
pub mod inshrinkerator;
pub mod kmeans;
pub mod models;
pub mod nxd;
pub mod pack;
pub mod paragan;
pub mod restores;
pub mod scenario;
pub mod step;
