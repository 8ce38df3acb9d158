//! Checkpoints as safetensors bytes.
//!
//! A checkpoint holds every parameter under its name, the optimiser's
//! velocity under `momentum.<name>`, all little-endian F32, and one
//! metadata entry, `nimbus`, with the architecture, input side, step and
//! the optimiser's settings (`arch=cnn;side=28;step=125;lr=0.05;momentum=0.9`).
//! One entry keeps the bytes deterministic: the format's metadata is an
//! unordered map. Restoring checks names, shapes and dtypes against the
//! network and names the first mismatch.

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::net::{Arch, Network};
use crate::optim::Sgd;
use crate::{NnError, Tensors};

/// What a checkpoint restores.
#[derive(Debug)]
pub struct Checkpoint {
    /// The network with the saved parameters.
    pub net: Network,
    /// The optimiser with the saved velocity.
    pub opt: Sgd,
    /// The step it was taken after.
    pub step: u64,
}

fn to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Serialises `net` and `opt` after `step` steps.
pub fn save(net: &Network, opt: &Sgd, step: u64) -> Result<Vec<u8>, NnError> {
    let values = net.values()?;
    crate::net::check_lengths(net.params(), &opt.velocity, "velocity")?;
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for ((p, v), m) in net.params().iter().zip(&values).zip(&opt.velocity) {
        buffers.push((p.name.clone(), p.shape.clone(), to_bytes(v)));
        buffers.push((format!("momentum.{}", p.name), p.shape.clone(), to_bytes(m)));
    }
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| NnError::Checkpoint(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let header =
        format!("arch={};side={};step={step};lr={};momentum={}", net.arch().name(), net.side(), opt.lr, opt.momentum);
    // One entry: the map's iteration order cannot matter.
    #[allow(clippy::disallowed_types)]
    let metadata = std::collections::HashMap::from([("nimbus".to_string(), header)]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| NnError::Checkpoint(e.to_string()))
}

/// Restores a checkpoint written by [`save`].
pub fn load(bytes: &[u8]) -> Result<Checkpoint, NnError> {
    let file =
        SafeTensors::deserialize(bytes).map_err(|e| NnError::Checkpoint(format!("not a safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| NnError::Checkpoint(e.to_string()))?;
    let header = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("nimbus"))
        .ok_or_else(|| NnError::Checkpoint("no `nimbus` metadata entry (not a Nimbus checkpoint)".into()))?;
    let field = |key: &str| -> Result<&str, NnError> {
        header
            .split(';')
            .find_map(|kv| kv.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
            .ok_or_else(|| NnError::Checkpoint(format!("metadata lacks `{key}`")))
    };
    let bad = |key: &str| NnError::Checkpoint(format!("metadata `{key}` is malformed"));
    let arch = Arch::parse(field("arch")?).map_err(NnError::Checkpoint)?;
    let side: usize = field("side")?.parse().ok().filter(|s| (1..=4096).contains(s)).ok_or_else(|| bad("side"))?;
    let step: u64 = field("step")?.parse().map_err(|_| bad("step"))?;
    let lr: f32 = field("lr")?.parse().ok().filter(|v: &f32| v.is_finite()).ok_or_else(|| bad("lr"))?;
    let momentum: f32 =
        field("momentum")?.parse().ok().filter(|v: &f32| v.is_finite()).ok_or_else(|| bad("momentum"))?;
    let mut net = Network::new(&arch, side, 0)?;
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>, NnError> {
        let t = file.tensor(name).map_err(|_| NnError::Checkpoint(format!("tensor `{name}` is missing")))?;
        if t.dtype() != Dtype::F32 {
            return Err(NnError::Checkpoint(format!("tensor `{name}` is {:?}, not F32", t.dtype())));
        }
        if t.shape() != shape {
            return Err(NnError::Checkpoint(format!(
                "tensor `{name}` has shape {:?}; the network needs {shape:?}",
                t.shape()
            )));
        }
        Ok(t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    };
    let mut values: Tensors = Vec::new();
    let mut velocity: Tensors = Vec::new();
    for p in net.params() {
        values.push(read(&p.name, &p.shape)?);
        velocity.push(read(&format!("momentum.{}", p.name), &p.shape)?);
    }
    let expected = 2 * net.params().len();
    if file.len() != expected {
        return Err(NnError::Checkpoint(format!(
            "{} tensors; a {} checkpoint has {expected}",
            file.len(),
            arch.name()
        )));
    }
    net.set_values(&values)?;
    Ok(Checkpoint { net, opt: Sgd { lr, momentum, velocity }, step })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic;
    use crate::parallel::{Trainer, mean};

    fn trained() -> (Network, Sgd) {
        let data = synthetic(128, 0, 1).train;
        let mut net = Network::new(&Arch::Mlp { hidden: vec![8] }, 28, 3).expect("net");
        let mut opt = Sgd::new(&net, 0.05, 0.9);
        Trainer::new(2, 64, 1).expect("t").epoch(&mut net, &mut opt, &data, &mut |_, g| Ok(mean(g))).expect("e");
        (net, opt)
    }

    #[test]
    fn round_trip_is_exact_and_bytes_are_deterministic() {
        let (net, opt) = trained();
        let bytes = save(&net, &opt, 2).expect("save");
        assert_eq!(bytes, save(&net, &opt, 2).expect("again"));
        let back = load(&bytes).expect("load");
        assert_eq!(back.step, 2);
        assert_eq!(back.opt, opt);
        assert_eq!(back.net.values().expect("v"), net.values().expect("v"));
        assert_eq!(back.net.arch(), net.arch());
    }

    #[test]
    fn corrupt_and_truncated_checkpoints_are_refused() {
        let (net, opt) = trained();
        let bytes = save(&net, &opt, 2).expect("save");
        let truncated = load(&bytes[..bytes.len() - 10]).expect_err("truncated").to_string();
        assert!(truncated.contains("not a safetensors file"), "{truncated}");
        assert!(load(b"garbage").is_err());
        assert!(load(&[]).is_err());
        // A checkpoint of another shape: a wider layer under the same names.
        let other = Network::new(&Arch::Mlp { hidden: vec![9] }, 28, 3).expect("net");
        let mut other_bytes = save(&other, &Sgd::new(&other, 0.1, 0.0), 0).expect("save");
        // Claim it is the 8-wide network.
        let pos = other_bytes.windows(9).position(|w| w == b"arch=mlp-").expect("header");
        other_bytes[pos + 9] = b'8';
        let e = load(&other_bytes).expect_err("shape").to_string();
        assert!(e.contains("fc1.weight") && e.contains("[9, 784]"), "{e}");
    }
}
