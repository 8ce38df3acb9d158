//! The distributed-training domain: real gradient exchange on real
//! gradients from small CPU training ([`nimbus_nn`]), and a training-step
//! cost model that carries the codecs' effect to clusters of accelerators.
//!
//! - [`gcomp`]: GComp's near-lossless codec (Huffman exponents, banded
//!   mantissas, zero bitmaps); [`huffman`] and [`bits`] beneath it.
//! - [`compress`]: every exchange as an aggregator (FP32, FP16, top-k,
//!   random-k, QSGD, PowerSGD, signSGD, GComp) with the bytes it sent.

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
pub mod restores;
pub mod scenario;
pub mod step;
