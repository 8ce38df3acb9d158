//! MoEsaic (SoCC'24): sharing identical mixture-of-experts experts across
//! model deployments.
//!
//! Paper: "MoEsaic: Shared Mixture of Experts" (SoCC'24). Mechanism, as
//! described in its abstract (the implementation details are inferred):
//! 1. **Expert deduplication.** Deployments fine-tuned from one base MoE
//!    model keep many experts bit-identical. Each expert's tensors are
//!    fingerprinted by content hash; one refcounted copy per device serves
//!    every deployment that maps a (layer, expert) to it. This part is
//!    **real**: [`TensorStore`] hashes actual tensor bytes (BLAKE3), from
//!    safetensors files or synthetic checkpoints.
//! 2. **Cross-deployment batching.** At each MoE layer, the tokens of all
//!    co-located deployments routed to the same shared expert run as one
//!    grouped GEMM; attention, router and the dense weights stay per
//!    deployment. This part is **modelled** ([`MoeExec`]): an iteration
//!    reads each distinct deployment's dense weights once and each expert
//!    that any token hits once, and computes over every token.
//!
//! Routing: each token picks `top-k` of `E` experts; expert popularity
//! follows a Zipf law with skew `s` (the same for every deployment of one
//! base model, inferred). Expert `e` is hit by a token with probability
//! `q_e = min(1, k·p_e)`; `T` tokens hit it with probability `1 − (1 − q_e)^T`
//! (expected bytes read; no sampling).
//!
//! Baseline: dedicated instances, each with its own full copy on its own
//! GPUs. Deviations: co-located deployments share one paged KV pool (the
//! paper keeps a KV cache per deployment), and a shared replica runs one
//! iteration for all of them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::exec::{BatchShape, ExecTimeModel, Roofline};
use crate::model::{FP16_BYTES, ModelSpec};

/// MoEsaic's settings in a scenario (`[moe]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoeSettings {
    /// Deployments of the MoE model.
    pub instances: u32,
    /// Zipf skew of expert popularity (0: uniform).
    pub skew: f64,
    /// KV cache each deployment is given, bytes (sizing how many fit).
    pub kv_bytes_per_instance: f64,
}

/// Probability that a token is routed to each expert.
pub fn expert_hit_probabilities(experts: u32, top_k: u32, skew: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=experts).map(|rank| (rank as f64).powf(-skew)).collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| (top_k as f64 * w / total).min(1.0)).collect()
}

/// How many deployments sharing experts fit in `memory` bytes.
pub fn shared_capacity(model: &ModelSpec, memory: f64, kv_per_instance: f64) -> u32 {
    let dense = model.weight_bytes() - model.expert_bytes();
    let room = memory - model.expert_bytes();
    if room <= 0.0 { 0 } else { (room / (dense + kv_per_instance)).floor() as u32 }
}

/// How many dedicated deployments fit in `memory` bytes (one per replica
/// in practice).
pub fn dedicated_capacity(model: &ModelSpec, memory: f64, kv_per_instance: f64) -> u32 {
    (memory / (model.weight_bytes() + kv_per_instance)).floor() as u32
}

/// Iteration time of a replica hosting MoE deployments.
#[derive(Debug, Clone)]
pub struct MoeExec {
    roofline: Roofline,
    hit: Vec<f64>,
    label: &'static str,
}

impl MoeExec {
    /// `roofline` of the MoE model on the replica's GPUs; `hit` from
    /// [`expert_hit_probabilities`]; `shared` names the mode in reports.
    pub fn new(roofline: Roofline, hit: Vec<f64>, shared: bool) -> Self {
        MoeExec { roofline, hit, label: if shared { "shared experts" } else { "dedicated" } }
    }

    /// Linear layers of one layer: dense weights of every deployment in
    /// the batch, and every expert hit, each read once.
    pub fn linear_layer_s(&self, batch: &BatchShape) -> f64 {
        let m = self.roofline.model();
        let tp = self.roofline.tp() as f64;
        let tokens = batch.tokens() as f64;
        if tokens == 0.0 {
            return 0.0;
        }
        let dense = m.attention_params_per_layer() / tp;
        let deployments = batch.instances.max(1) as f64;
        let mut t = self.roofline.kernel_s(deployments * dense * FP16_BYTES, 2.0 * dense * tokens);
        let expert = m.expert_params() / tp;
        for &q in &self.hit {
            let hit = 1.0 - (1.0 - q).powf(tokens);
            let routed = tokens * q;
            t += hit * self.roofline.kernel_s(expert * FP16_BYTES, 2.0 * expert * routed / hit.max(1e-12));
        }
        t
    }
}

impl ExecTimeModel for MoeExec {
    fn iteration_s(&self, batch: &BatchShape) -> f64 {
        if batch.is_empty() {
            return 0.0;
        }
        self.roofline.model().layers as f64 * self.linear_layer_s(batch) + self.roofline.non_gemm_s(batch)
    }

    fn describe(&self) -> String {
        format!("moe {} ({})", self.roofline.model().name, self.label)
    }
}

/// A BLAKE3 content fingerprint.
pub type Fingerprint = [u8; 32];

/// What adding a deployment to the store did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddReport {
    /// Tensors in the deployment.
    pub tensors: usize,
    /// Bytes in the deployment.
    pub bytes: u64,
    /// Bytes newly stored (not already held).
    pub new_bytes: u64,
}

/// A content-addressed, refcounted store of tensors: one copy of each
/// distinct tensor, however many deployments map to it.
#[derive(Debug, Default)]
pub struct TensorStore {
    blobs: BTreeMap<Fingerprint, (u64, u32)>,
    deployments: BTreeMap<String, BTreeMap<String, Fingerprint>>,
}

impl TensorStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a deployment's named tensors; identical bytes are stored once.
    pub fn add(&mut self, deployment: &str, tensors: &[(String, Vec<u8>)]) -> Result<AddReport, String> {
        if self.deployments.contains_key(deployment) {
            return Err(format!("deployment `{deployment}` is already stored"));
        }
        let mut map = BTreeMap::new();
        let mut report = AddReport::default();
        for (name, bytes) in tensors {
            let fp: Fingerprint = *blake3::hash(bytes).as_bytes();
            let entry = self.blobs.entry(fp).or_insert((bytes.len() as u64, 0));
            if entry.1 == 0 {
                report.new_bytes += bytes.len() as u64;
            }
            entry.1 += 1;
            report.tensors += 1;
            report.bytes += bytes.len() as u64;
            if map.insert(name.clone(), fp).is_some() {
                return Err(format!("deployment `{deployment}` names tensor `{name}` twice"));
            }
        }
        self.deployments.insert(deployment.to_string(), map);
        Ok(report)
    }

    /// Removes a deployment, freeing tensors no other one uses; returns the
    /// bytes freed.
    pub fn remove(&mut self, deployment: &str) -> u64 {
        let Some(map) = self.deployments.remove(deployment) else { return 0 };
        let mut freed = 0;
        for fp in map.values() {
            if let Some(entry) = self.blobs.get_mut(fp) {
                entry.1 -= 1;
                if entry.1 == 0 {
                    freed += entry.0;
                    self.blobs.remove(fp);
                }
            }
        }
        freed
    }

    /// Bytes held (one copy per distinct tensor).
    pub fn stored_bytes(&self) -> u64 {
        self.blobs.values().map(|b| b.0).sum()
    }

    /// Bytes the deployments would hold without sharing.
    pub fn logical_bytes(&self) -> u64 {
        self.deployments.values().flat_map(|m| m.values()).map(|fp| self.blobs.get(fp).map_or(0, |b| b.0)).sum()
    }

    /// Distinct tensors held.
    pub fn distinct_tensors(&self) -> usize {
        self.blobs.len()
    }

    /// The fingerprint a deployment maps a tensor to.
    pub fn lookup(&self, deployment: &str, tensor: &str) -> Option<&Fingerprint> {
        self.deployments.get(deployment)?.get(tensor)
    }
}

/// The largest safetensors file [`read_safetensors`] reads (the store holds
/// every tensor in memory).
pub const MAX_SAFETENSORS_BYTES: u64 = 16 << 30;

/// Reads a safetensors file: the named tensors' raw bytes, in file order.
///
/// Files above [`MAX_SAFETENSORS_BYTES`] are refused rather than read.
pub fn read_safetensors(path: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SAFETENSORS_BYTES + 1).read_to_end(&mut data))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if data.len() as u64 > MAX_SAFETENSORS_BYTES {
        return Err(format!("{}: larger than {MAX_SAFETENSORS_BYTES} bytes", path.display()));
    }
    parse_safetensors(&data).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses safetensors bytes: an 8-byte little-endian header length, a
/// JSON header of `name → {dtype, shape, data_offsets: [begin, end]}` and
/// the data.
pub fn parse_safetensors(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let len_bytes: [u8; 8] =
        data.get(..8).and_then(|b| b.try_into().ok()).ok_or("shorter than its 8-byte header length")?;
    let header_len = u64::from_le_bytes(len_bytes) as usize;
    let header = data
        .get(8..8usize.saturating_add(header_len))
        .ok_or_else(|| format!("header length {header_len} runs past the end of the file ({} bytes)", data.len()))?;
    let body = &data[8 + header_len..];
    let json: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| format!("header is not JSON: {e} (column {})", e.column()))?;
    let object = json.as_object().ok_or("header is not a JSON object")?;
    let mut spans = Vec::new();
    for (name, entry) in object {
        if name == "__metadata__" {
            continue;
        }
        let shown = nimbus_trace::input::quote(name);
        let offsets = entry
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .filter(|o| o.len() == 2)
            .and_then(|o| Some((usize::try_from(o[0].as_u64()?).ok()?, usize::try_from(o[1].as_u64()?).ok()?)))
            .ok_or_else(|| format!("tensor `{shown}`: expected `data_offsets: [begin, end]`"))?;
        if offsets.0 > offsets.1 || offsets.1 > body.len() {
            return Err(format!("tensor `{shown}`: data_offsets {offsets:?} outside the {}-byte data", body.len()));
        }
        spans.push((offsets, name.clone()));
    }
    // Tensors must not share bytes (the format lays them out one after
    // another); overlapping spans would also multiply the memory copied.
    spans.sort();
    for pair in spans.windows(2) {
        if pair[1].0.0 < pair[0].0.1 {
            let (a, b) = (nimbus_trace::input::quote(&pair[0].1), nimbus_trace::input::quote(&pair[1].1));
            return Err(format!("tensors `{a}` and `{b}` overlap in the data"));
        }
    }
    Ok(spans.into_iter().map(|((begin, end), name)| (name, body[begin..end].to_vec())).collect())
}

/// Writes tensors as a safetensors file's bytes (dtype `F16`, 1-D shapes).
pub fn to_safetensors(tensors: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, bytes) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F16", "shape": [bytes.len() / 2], "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
    }
    let mut text = serde_json::Value::Object(header).to_string().into_bytes();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    for (_, bytes) in tensors {
        out.extend(bytes);
    }
    out
}

/// A synthetic checkpoint of a small MoE model in Mixtral's tensor layout:
/// experts `model.layers.{l}.block_sparse_moe.experts.{e}.w{1,2,3}.weight`
/// drawn from the base seed unless `(l, e)` is in `tuned` (then from the
/// deployment's seed), and dense tensors (attention, norms, router) from
/// the deployment's seed: fine-tuned variants of one base model.
pub fn synthetic_checkpoint(
    base_seed: u64,
    deployment_seed: u64,
    layers: u32,
    experts: u32,
    hidden: usize,
    ffn: usize,
    tuned: &[(u32, u32)],
) -> Vec<(String, Vec<u8>)> {
    let bytes = |seed: u64, name: &str, len: usize| -> Vec<u8> {
        let mut rng = nimbus_sim::RngStreams::new(seed).stream(name);
        let mut out = Vec::with_capacity(len * 2);
        while out.len() < len * 2 {
            out.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        out.truncate(len * 2);
        out
    };
    let mut tensors = vec![("model.embed_tokens.weight".to_string(), bytes(deployment_seed, "embed", 256 * hidden))];
    for l in 0..layers {
        for proj in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            let name = format!("model.layers.{l}.self_attn.{proj}.weight");
            tensors.push((name.clone(), bytes(deployment_seed, &name, hidden * hidden)));
        }
        let gate = format!("model.layers.{l}.block_sparse_moe.gate.weight");
        tensors.push((gate.clone(), bytes(deployment_seed, &gate, hidden * experts as usize)));
        for e in 0..experts {
            let seed = if tuned.contains(&(l, e)) { deployment_seed } else { base_seed };
            for w in ["w1", "w2", "w3"] {
                let name = format!("model.layers.{l}.block_sparse_moe.experts.{e}.{w}.weight");
                tensors.push((name.clone(), bytes(seed, &name, hidden * ffn)));
            }
        }
    }
    tensors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{AllReduce, Device, RooflineParams};
    use crate::model::model;

    #[test]
    fn hit_probabilities_sum_to_top_k_and_follow_the_skew() {
        let uniform = expert_hit_probabilities(8, 2, 0.0);
        assert!(uniform.iter().all(|q| (q - 0.25).abs() < 1e-12));
        let skewed = expert_hit_probabilities(8, 2, 1.0);
        assert!((skewed.iter().sum::<f64>() - 2.0).abs() < 1e-9);
        assert!(skewed.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn mixtral_capacities_on_two_80gb_gpus() {
        let m = model("mixtral-8x7b").expect("catalog");
        let memory = 2.0 * 80.0 * 1024f64.powi(3);
        // 171.8 GB: experts (90.2 GB) once, then 3.3 GB of dense weights +
        // 7 GB of KV per deployment: 7 deployments; a dedicated copy
        // (93.4 GB) fits once. With 10% of memory held back: 6.
        assert_eq!(shared_capacity(m, memory, 7e9), 7);
        assert_eq!(dedicated_capacity(m, memory, 7e9), 1);
        assert_eq!(shared_capacity(m, memory * 0.9, 7e9), 6);
    }

    #[test]
    fn shared_batches_cost_about_one_deployments_experts() {
        let m = model("mixtral-8x7b").expect("catalog").clone();
        let device = Device::from_catalog("a100-80gb").expect("catalog");
        let roof = Roofline::new(m, device, 2, RooflineParams::for_device("a100-80gb"), AllReduce::default_for("a100"));
        let exec = MoeExec::new(roof, expert_hit_probabilities(8, 2, 0.0), true);
        let batch = |requests: u32, instances: u32| {
            let mut b = BatchShape::default();
            for _ in 0..requests {
                b.add_decode(1000);
            }
            b.instances = instances;
            b
        };
        let one = exec.iteration_s(&batch(16, 1));
        let seven = exec.iteration_s(&batch(7 * 16, 7));
        // Seven deployments' tokens through shared experts cost far less
        // than seven iterations.
        assert!(seven < 2.0 * one, "{one} {seven}");
        assert!(seven > one);
    }

    #[test]
    fn identical_experts_are_stored_once() {
        let mut store = TensorStore::new();
        let base = synthetic_checkpoint(1, 100, 2, 4, 16, 32, &[]);
        let first = store.add("a", &base).expect("add");
        assert_eq!(first.new_bytes, first.bytes);
        let expert_bytes: u64 = base.iter().filter(|(n, _)| n.contains(".experts.")).map(|(_, b)| b.len() as u64).sum();
        let dense_bytes = first.bytes - expert_bytes;
        // Four more deployments sharing every expert add only their dense part.
        for k in 0..4u64 {
            let variant = synthetic_checkpoint(1, 200 + k, 2, 4, 16, 32, &[]);
            let r = store.add(&format!("v{k}"), &variant).expect("add");
            assert_eq!(r.new_bytes, dense_bytes);
        }
        assert_eq!(store.stored_bytes(), expert_bytes + 5 * dense_bytes);
        assert_eq!(store.logical_bytes(), 5 * first.bytes);
        // A variant that fine-tuned one expert stores that expert too.
        let tuned = synthetic_checkpoint(1, 300, 2, 4, 16, 32, &[(1, 2)]);
        let r = store.add("tuned", &tuned).expect("add");
        assert_eq!(r.new_bytes, dense_bytes + 3 * 16 * 32 * 2);
        assert_eq!(
            store.lookup("a", "model.layers.0.block_sparse_moe.experts.3.w1.weight"),
            store.lookup("tuned", "model.layers.0.block_sparse_moe.experts.3.w1.weight")
        );
        // Removing frees only what nobody else uses.
        assert_eq!(store.remove("tuned"), r.new_bytes);
        assert_eq!(store.remove("a"), dense_bytes);
    }

    #[test]
    fn safetensors_round_trip_and_errors() {
        let tensors = synthetic_checkpoint(1, 2, 1, 2, 8, 8, &[]);
        let bytes = to_safetensors(&tensors);
        assert_eq!(parse_safetensors(&bytes).expect("valid"), tensors);
        assert!(parse_safetensors(&bytes[..4]).expect_err("malformed").contains("8-byte"));
        let mut bad = bytes.clone();
        bad[7] = 0x01;
        assert!(parse_safetensors(&bad).expect_err("malformed").contains("runs past the end"));
        let truncated = &bytes[..bytes.len() - 10];
        assert!(parse_safetensors(truncated).expect_err("malformed").contains("outside"));
    }
}
