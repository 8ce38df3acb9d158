//! ParaGAN (SoCC'24, "ParaGAN: A Scalable Distributed Training Framework
//! for Generative Adversarial Networks"), modelled: data-parallel BigGAN
//! training on TPU-like accelerator cores, simulated iteration by iteration
//! with per-core compute jitter, per-host input pipelines under network
//! congestion, and collective all-reduces.
//!
//! **Mechanisms** (each a policy parameter, so they can be ablated):
//! - **Asynchronous G/D update** (`staleness`): the generator writes its
//!   samples to a buffer and the discriminator trains on samples up to
//!   `staleness` generator versions old, so neither network waits for the
//!   other's all-reduce. With `staleness = 0` every phase waits for the
//!   previous phase's all-reduce (synchronous coupling, the baseline).
//! - **Congestion-aware data pipeline** (`pipeline = "adaptive"`): each
//!   host measures its storage latency and, `detect_s` after a change, sets
//!   its reader threads to deliver `headroom` × the demand at the new
//!   latency; its prefetch buffer is sized to cover that reaction time.
//!   The static pipeline keeps `threads` and `prefetch` fixed.
//! - **Hardware-aware layout** (`layout = "aware"`): a convolution runs
//!   on the matrix unit either per filter tap (features padded to the
//!   unit's `tile`) or with the taps folded into the contraction
//!   (im2col: less padding, more input traffic); the aware layout takes
//!   the faster per layer, the default layout always the first.
//!
//! **What is modelled.** The iteration is `n_dis` discriminator steps (a
//! generator forward on the batch, a discriminator forward and backward on
//! real and fake halves) and one generator step (forward and backward
//! through both), each followed by its all-reduce of FP32 gradients and an
//! Adam update (28 bytes of memory traffic per parameter). Every phase's
//! compute comes from a roofline over the BigGAN layer table
//! ([`biggan`]), scaled per core by a lognormal jitter; a collective
//! starts when the last core is done and the interconnect is free. A
//! discriminator step needs its host's next real batch: the host's reader
//! threads each fetch `request_images` images (latency plus bytes over a
//! per-connection bandwidth) and decode them, capped by the NIC; hosts
//! alternate independently between normal and congested storage access
//! (exponential durations).
//!
//! **Deviations and assumptions.** The asymmetric optimisation policy
//! (different optimisers for G and D that keep asynchronous training
//! stable) is numerics, not throughput: not modelled, and the model
//! assumes asynchronous training needs the same iterations. Each core runs
//! its phases in the fixed order D…D, G, so staleness beyond one buys
//! nothing here. Memory is not checked (small global batches on few cores
//! would need gradient accumulation). The TPU v3 figures are Google's;
//! the interconnect bandwidth, host I/O, congestion process and kernel
//! efficiency are assumptions (parameters), not measurements; the
//! default layout's padding is a model of the baseline's, not a profile.
//! The paper's baseline setups are unnamed in its abstract.

use nimbus_sim::rng::{RngStreams, SimRng};

use crate::compress::Collective;
use crate::models::LayerKind;
use crate::step::{Accelerator, Algorithm, collective_s};

/// One operator of a GAN's layer table.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Name.
    pub name: String,
    /// Kind (`Conv`, `Dense`, `Attention` run on the matrix unit).
    pub kind: LayerKind,
    /// Contraction features per tap (input channels).
    pub cin: u64,
    /// Output features.
    pub cout: u64,
    /// Filter taps (k × k; 1 for dense and attention).
    pub taps: u64,
    /// Output positions per sample.
    pub positions: u64,
    /// Parameters.
    pub params: u64,
    /// Elements per sample read and written (inputs and outputs).
    pub elements: u64,
}

impl Op {
    /// Forward FLOPs per sample.
    pub fn flops(&self) -> f64 {
        match self.kind {
            LayerKind::Elementwise => 5.0 * self.elements as f64,
            _ => 2.0 * (self.taps * self.cin * self.cout * self.positions) as f64,
        }
    }
}

/// A GAN: generator and discriminator layer tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Gan {
    /// Name.
    pub name: String,
    /// Generator operators in forward order.
    pub generator: Vec<Op>,
    /// Discriminator operators in forward order.
    pub discriminator: Vec<Op>,
}

/// Parameters of a table.
pub fn params(ops: &[Op]) -> u64 {
    ops.iter().map(|o| o.params).sum()
}

/// Forward FLOPs per sample of a table.
pub fn flops(ops: &[Op]) -> f64 {
    ops.iter().map(Op::flops).sum()
}

/// Builds a table while tracking the feature map.
struct Builder {
    ops: Vec<Op>,
    c: u64,
    hw: u64,
}

impl Builder {
    fn conv(&mut self, name: &str, cout: u64, k: u64, positions: u64) {
        let cin = self.c;
        self.ops.push(Op {
            name: name.into(),
            kind: LayerKind::Conv,
            cin,
            cout,
            taps: k * k,
            positions,
            params: k * k * cin * cout + cout,
            elements: cin * self.hw + cout * positions,
        });
        self.c = cout;
        self.hw = positions;
    }

    fn dense(&mut self, name: &str, cin: u64, cout: u64, bias: bool) {
        self.ops.push(Op {
            name: name.into(),
            kind: LayerKind::Dense,
            cin,
            cout,
            taps: 1,
            positions: 1,
            params: cin * cout + if bias { cout } else { 0 },
            elements: cin + cout,
        });
    }

    /// Batch normalisation and ReLU over the map (`params` for its
    /// affine terms; conditional BN's projections are separate ops).
    fn norm(&mut self, name: &str, params: u64) {
        let elements = 2 * self.c * self.hw;
        self.ops.push(Op {
            name: name.into(),
            kind: LayerKind::Elementwise,
            cin: self.c,
            cout: self.c,
            taps: 1,
            positions: self.hw,
            params,
            elements,
        });
    }

    /// SAGAN self-attention at `c` channels: θ, φ (c → c/8), g (c → c/2)
    /// as 1×1 convolutions, φ and g max-pooled 2×2, scores and weighted
    /// sums over a quarter of the positions, and o (c/2 → c).
    fn attention(&mut self, name: &str) {
        let (c, hw) = (self.c, self.hw);
        let one = |suffix: &str, cin: u64, cout: u64| Op {
            name: format!("{name}.{suffix}"),
            kind: LayerKind::Conv,
            cin,
            cout,
            taps: 1,
            positions: hw,
            params: cin * cout,
            elements: cin * hw + cout * hw,
        };
        let product = |suffix: &str, contraction: u64, out: u64| Op {
            name: format!("{name}.{suffix}"),
            kind: LayerKind::Attention,
            cin: contraction,
            cout: out,
            taps: 1,
            positions: hw,
            params: 0,
            elements: 2 * hw * (hw / 4),
        };
        self.ops.push(one("theta", c, c / 8));
        self.ops.push(one("phi", c, c / 8));
        self.ops.push(one("g", c, c / 2));
        self.ops.push(product("scores", c / 8, hw / 4));
        self.ops.push(product("weighted", hw / 4, c / 2));
        let mut o = one("o", c / 2, c);
        o.params += 1; // the residual gain γ
        self.ops.push(o);
    }
}

/// BigGAN (Brock et al., ICLR 2019) at `resolution` 128, 256 or 512 with
/// channel multiplier `ch` (96), built as BigGAN-PyTorch defines it:
/// hierarchical latents (z of 120 split over the blocks), a shared class
/// embedding of 128, conditional batch norm, residual up- and
/// down-sampling blocks, self-attention at 64 × 64 and a projection
/// discriminator over 1,000 classes. At 128 × 128 the tables hold
/// 70,433,988 and 87,982,370 parameters.
pub fn biggan(resolution: u32, ch: u64) -> Option<Gan> {
    let (g_in, g_out, d_in, d_out): (&[u64], &[u64], &[u64], &[u64]) = match resolution {
        128 => (&[16, 16, 8, 4, 2], &[16, 8, 4, 2, 1], &[0, 1, 2, 4, 8, 16], &[1, 2, 4, 8, 16, 16]),
        256 => (&[16, 16, 8, 8, 4, 2], &[16, 8, 8, 4, 2, 1], &[0, 1, 2, 4, 8, 8, 16], &[1, 2, 4, 8, 8, 16, 16]),
        512 => {
            (&[16, 16, 8, 8, 4, 2, 1], &[16, 8, 8, 4, 2, 1, 1], &[0, 1, 1, 2, 4, 8, 8, 16], &[1, 1, 2, 4, 8, 8, 16, 16])
        }
        _ => return None,
    };
    let (z, shared, classes) = (120u64, 128u64, 1000u64);
    let chunk = z / (g_in.len() as u64 + 1);
    let cond = shared + chunk;
    // Generator.
    let mut g = Builder { ops: Vec::new(), c: chunk, hw: 1 };
    g.dense("embedding", classes, shared, false);
    g.ops.last_mut().expect("pushed").elements = 2 * shared;
    g.dense("linear", chunk, 16 * ch * 16, true);
    (g.c, g.hw) = (16 * ch, 16);
    let mut side = 4u64;
    for (i, (&a, &b)) in g_in.iter().zip(g_out).enumerate() {
        let (a, b) = (a * ch, b * ch);
        side *= 2;
        let name = format!("block{}", i + 1);
        g.dense(&format!("{name}.cbn1"), cond, 2 * a, false);
        g.norm(&format!("{name}.bn1"), 0);
        let upsampled = g.c;
        g.hw = side * side;
        g.conv(&format!("{name}.conv1"), b, 3, side * side);
        g.dense(&format!("{name}.cbn2"), cond, 2 * b, false);
        g.norm(&format!("{name}.bn2"), 0);
        g.conv(&format!("{name}.conv2"), b, 3, side * side);
        g.c = upsampled;
        g.conv(&format!("{name}.shortcut"), b, 1, side * side);
        if side == 64 {
            g.attention(&format!("{name}.attention"));
        }
    }
    g.norm("out.bn", 2 * g.c);
    g.conv("out.conv", 3, 3, side * side);
    // Discriminator: pre-activation blocks (the first without), average
    // pooling after the convolutions, the first block's shortcut pooled
    // before its convolution.
    let mut d = Builder { ops: Vec::new(), c: 3, hw: u64::from(resolution) * u64::from(resolution) };
    let mut side = u64::from(resolution);
    let last = d_in.len() - 1;
    for (i, (&a, &b)) in d_in.iter().zip(d_out).enumerate() {
        let (a, b) = (if i == 0 { 3 } else { a * ch }, b * ch);
        let name = format!("block{}", i + 1);
        let down = i < last;
        let here = side * side;
        if i > 0 {
            d.norm(&format!("{name}.relu1"), 0);
        }
        d.conv(&format!("{name}.conv1"), b, 3, here);
        d.norm(&format!("{name}.relu2"), 0);
        d.conv(&format!("{name}.conv2"), b, 3, here);
        let after = if down { here / 4 } else { here };
        if a != b || down {
            d.c = a;
            d.hw = here;
            d.conv(&format!("{name}.shortcut"), b, 1, if i == 0 { here / 4 } else { here });
        }
        (d.c, d.hw) = (b, after);
        if down {
            side /= 2;
        }
        if i == 0 && side == 64 {
            d.attention(&format!("{name}.attention"));
        }
    }
    d.norm("out.relu", 0);
    let features = d.c;
    d.dense("linear", features, 1, true);
    d.dense("projection", classes, features, false);
    d.ops.last_mut().expect("pushed").elements = 2 * features;
    Some(Gan { name: format!("biggan-{resolution}"), generator: g.ops, discriminator: d.ops })
}

/// The fraction of a matrix unit of `tile` lanes that `features` fill.
fn fill(features: u64, tile: u64) -> f64 {
    if tile <= 1 || features == 0 {
        return 1.0;
    }
    features as f64 / (features.div_ceil(tile) * tile) as f64
}

/// How operators map onto the matrix unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Per filter tap, features padded to the tile.
    Default,
    /// Per layer the faster of per-tap and taps folded into the
    /// contraction (ParaGAN's hardware-aware layout transformation).
    Aware,
}

/// The device a phase runs on, as the roofline needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Core {
    /// Peak FLOP/s times the kernels' efficiency.
    pub flops: f64,
    /// Memory bandwidth, bytes/s.
    pub hbm: f64,
    /// Matrix-unit tile (128 on TPU; 1 for no padding).
    pub tile: u64,
    /// Bytes per value in compute (2: BF16).
    pub bytes: f64,
}

impl Core {
    /// A core of `device` at `efficiency` of peak.
    pub fn new(device: &Accelerator, efficiency: f64, tile: u64) -> Core {
        Core { flops: device.bf16_tflops * 1e12 * efficiency, hbm: device.hbm_gbps * 1e9, tile, bytes: 2.0 }
    }

    /// Forward time of `op` on `batch` samples under `layout`, and the
    /// matrix unit's fill it ran at.
    pub fn op_s(&self, op: &Op, batch: f64, layout: Layout) -> (f64, f64) {
        let flops = op.flops() * batch;
        let traffic = (op.params as f64 + op.elements as f64 * batch) * self.bytes;
        if op.kind == LayerKind::Elementwise {
            return ((flops / self.flops).max(traffic / self.hbm), 1.0);
        }
        let at = |fill: f64, traffic: f64| ((flops / (self.flops * fill)).max(traffic / self.hbm), fill);
        let per_tap = at(fill(op.cin, self.tile) * fill(op.cout, self.tile), traffic);
        if layout == Layout::Default || op.taps == 1 {
            return per_tap;
        }
        // im2col reads each input value once per tap.
        let input = (op.cin * op.positions) as f64 * batch * self.bytes;
        let folded =
            at(fill(op.taps * op.cin, self.tile) * fill(op.cout, self.tile), traffic + (op.taps - 1) as f64 * input);
        if folded.0 < per_tap.0 { folded } else { per_tap }
    }

    /// Forward time of a table on `batch` samples, and its FLOP-weighted fill.
    pub fn forward_s(&self, ops: &[Op], batch: f64, layout: Layout) -> (f64, f64) {
        let (mut time, mut weighted, mut total) = (0.0, 0.0, 0.0);
        for op in ops {
            let (t, f) = self.op_s(op, batch, layout);
            time += t;
            if op.kind != LayerKind::Elementwise {
                weighted += f * op.flops();
                total += op.flops();
            }
        }
        (time, if total > 0.0 { weighted / total } else { 1.0 })
    }
}

/// Which network a phase trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// The discriminator (needs a real batch).
    D,
    /// The generator.
    G,
}

/// One phase of an iteration on one core.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// The network it updates.
    pub net: Net,
    /// Compute including the optimiser update, s (before jitter).
    pub compute_s: f64,
    /// Its gradients' all-reduce, s.
    pub allreduce_s: f64,
}

/// How the batch grows with the cores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Batch {
    /// Weak scaling: images per core per iteration.
    PerCore(u32),
    /// Strong scaling: images per iteration across all cores.
    Global(u32),
}

/// The training job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The model.
    pub gan: Gan,
    /// The batch.
    pub batch: Batch,
    /// Discriminator steps per generator step.
    pub n_dis: u32,
}

impl Job {
    /// Images per core per iteration on `cores`.
    pub fn per_core(&self, cores: u32) -> f64 {
        match self.batch {
            Batch::PerCore(b) => f64::from(b),
            Batch::Global(b) => f64::from(b) / f64::from(cores.max(1)),
        }
    }

    /// Images per iteration on `cores`.
    pub fn global(&self, cores: u32) -> f64 {
        self.per_core(cores) * f64::from(cores)
    }
}

/// The accelerators and their interconnect.
#[derive(Debug, Clone, PartialEq)]
pub struct Fabric {
    /// A core.
    pub core: Core,
    /// Cores per host.
    pub cores_per_host: u32,
    /// All-reduce bandwidth per core, GB/s.
    pub link_gbps: f64,
    /// Latency per collective hop, µs.
    pub latency_us: f64,
    /// The all-reduce algorithm.
    pub algorithm: Algorithm,
    /// Lognormal σ of a phase's compute time per core.
    pub jitter: f64,
}

/// The per-core phases of one iteration on `cores` cores.
pub fn phases(job: &Job, fabric: &Fabric, cores: u32, layout: Layout) -> (Vec<Phase>, f64) {
    let batch = job.per_core(cores);
    let core = &fabric.core;
    let (g_fwd, g_fill) = core.forward_s(&job.gan.generator, batch, layout);
    let (d_fwd, d_fill) = core.forward_s(&job.gan.discriminator, batch, layout);
    let (d2_fwd, _) = core.forward_s(&job.gan.discriminator, 2.0 * batch, layout);
    let (gp, dp) = (params(&job.gan.generator) as f64, params(&job.gan.discriminator) as f64);
    let update = |p: f64| p * 28.0 / core.hbm;
    let allreduce = |p: f64| {
        collective_s(Collective::AllReduce, fabric.algorithm, p * 4.0, cores, fabric.link_gbps, fabric.latency_us)
    };
    let d_step = Phase { net: Net::D, compute_s: g_fwd + 3.0 * d2_fwd + update(dp), allreduce_s: allreduce(dp) };
    let g_step = Phase { net: Net::G, compute_s: 3.0 * (g_fwd + d_fwd) + update(gp), allreduce_s: allreduce(gp) };
    let mut out = vec![d_step; job.n_dis as usize];
    out.push(g_step);
    let (gf, df) = (flops(&job.gan.generator), flops(&job.gan.discriminator));
    (out, (g_fill * gf + d_fill * df) / (gf + df))
}

/// A host's access to the training images.
#[derive(Debug, Clone, PartialEq)]
pub struct HostIo {
    /// Bytes per stored image (ImageNet JPEGs average ≈ 110 KB).
    pub image_bytes: f64,
    /// Images per storage request.
    pub request_images: f64,
    /// Request latency when uncongested, s.
    pub latency_s: f64,
    /// Per-connection bandwidth when uncongested, bytes/s.
    pub connection_bps: f64,
    /// Decode and augmentation per image per thread, s.
    pub decode_s: f64,
    /// Host NIC, bytes/s.
    pub nic_bps: f64,
    /// Host CPU threads (the reader-thread cap).
    pub vcpus: u32,
    /// Mean uncongested period, s.
    pub normal_mean_s: f64,
    /// Mean congested period, s (0: never congested).
    pub congested_mean_s: f64,
    /// Latency multiplier when congested.
    pub congested_latency_x: f64,
    /// Per-connection bandwidth multiplier when congested.
    pub congested_bandwidth_x: f64,
}

impl HostIo {
    /// Images per second one reader thread delivers.
    pub fn per_thread(&self, congested: bool) -> f64 {
        let (latency, bps) = if congested {
            (self.latency_s * self.congested_latency_x, self.connection_bps * self.congested_bandwidth_x)
        } else {
            (self.latency_s, self.connection_bps)
        };
        self.request_images / (latency + self.request_images * (self.image_bytes / bps + self.decode_s))
    }

    /// Images per second `threads` readers deliver: no more threads run
    /// than the host has, and no more bytes than its NIC carries.
    fn rate(&self, threads: u32, congested: bool) -> f64 {
        (f64::from(threads.min(self.vcpus)) * self.per_thread(congested)).min(self.nic_bps / self.image_bytes)
    }
}

/// The input pipeline's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Congestion-aware: re-size threads after each change.
    pub adaptive: bool,
    /// Reader threads (the static pipeline's, the adaptive one's floor).
    pub threads: u32,
    /// Prefetched batches (the static pipeline's, the adaptive one's floor).
    pub prefetch: u32,
    /// The adaptive controller's reaction time, s.
    pub detect_s: f64,
    /// The adaptive controller's target over demand.
    pub headroom: f64,
    /// The adaptive prefetch cap, batches.
    pub max_prefetch: u32,
}

/// ParaGAN's switches.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Generator versions the discriminator may lag (0: synchronous).
    pub staleness: u32,
    /// The input pipeline.
    pub pipeline: Pipeline,
    /// The layout.
    pub layout: Layout,
}

/// One host's congestion schedule and producer.
struct Host {
    rng: SimRng,
    /// Times the congestion state flips (state starts uncongested), from
    /// the `dropped`-th flip on: older ones are no longer needed.
    flips: Vec<f64>,
    dropped: usize,
    threads_normal: u32,
    threads_congested: u32,
    detect_s: f64,
    /// The producer: when the last batch finished.
    produced_at: f64,
    /// When each of the last `prefetch` batches was taken, oldest first.
    taken: std::collections::VecDeque<f64>,
}

impl Host {
    fn extend(&mut self, io: &HostIo, until: f64) {
        if io.congested_mean_s <= 0.0 {
            return;
        }
        while self.flips.last().is_none_or(|&t| t <= until) {
            let congested_now = (self.dropped + self.flips.len()) % 2 == 1;
            let mean = if congested_now { io.congested_mean_s } else { io.normal_mean_s };
            let t = self.flips.last().copied().unwrap_or(0.0) + self.rng.exponential(1.0 / mean);
            self.flips.push(t);
        }
    }

    /// Forgets flips no query from `from` on can reach (queries look back
    /// `detect_s`), keeping the state's parity.
    fn forget_before(&mut self, from: f64) {
        // The last flip stays: the next one is drawn from it.
        let old = self.flips.partition_point(|&f| f + self.detect_s < from).min(self.flips.len().saturating_sub(1));
        if old > 1024 {
            self.flips.drain(..old);
            self.dropped += old;
        }
    }

    fn congested(&self, t: f64) -> bool {
        (self.dropped + self.flips.partition_point(|&f| f <= t)) % 2 == 1
    }

    /// Threads at `t`: the controller acts on the state `detect_s` ago.
    fn threads(&self, t: f64) -> u32 {
        if t >= self.detect_s && self.congested(t - self.detect_s) {
            self.threads_congested
        } else {
            self.threads_normal
        }
    }

    /// The next time after `t` the rate may change.
    fn next_change(&self, t: f64) -> f64 {
        let a = self.flips.get(self.flips.partition_point(|&f| f <= t)).copied().unwrap_or(f64::INFINITY);
        let b = self
            .flips
            .get(self.flips.partition_point(|&f| f + self.detect_s <= t))
            .map_or(f64::INFINITY, |f| f + self.detect_s);
        a.min(b)
    }

    /// When `images` produced from `start` are done (`start` never
    /// decreases from one call to the next).
    fn produce(&mut self, io: &HostIo, start: f64, images: f64) -> f64 {
        self.forget_before(start);
        let (mut t, mut left) = (start, images);
        loop {
            self.extend(io, t);
            let rate = io.rate(self.threads(t), self.congested(t));
            let next = self.next_change(t);
            if rate > 0.0 && t + left / rate <= next {
                return t + left / rate;
            }
            if !next.is_finite() {
                return f64::INFINITY;
            }
            left -= rate * (next - t);
            t = next;
        }
    }
}

/// One scale's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleResult {
    /// Cores.
    pub cores: u32,
    /// Mean iteration, s (after warm-up).
    pub iteration_s: f64,
    /// Images per second (the batch of every core, per iteration).
    pub images_per_s: f64,
    /// Share of core time waiting for input.
    pub stall: f64,
    /// Share of core time waiting for all-reduces and other cores.
    pub sync_wait: f64,
    /// FLOP-weighted matrix-unit fill.
    pub fill: f64,
    /// The compute-only iteration, s.
    pub compute_s: f64,
}

/// What a simulation runs: the job on the machines, for `iterations`
/// (the first `warmup` unmeasured).
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The model and batch.
    pub job: Job,
    /// The accelerators.
    pub fabric: Fabric,
    /// The hosts' storage access.
    pub io: HostIo,
    /// Iterations per simulation.
    pub iterations: u32,
    /// Of which unmeasured.
    pub warmup: u32,
}

/// Simulates `setting` under `policy` on `cores`.
pub fn simulate(setting: &Setting, policy: &Policy, cores: u32, seed: u64) -> ScaleResult {
    let (phases, fill) = phases(&setting.job, &setting.fabric, cores, policy.layout);
    simulate_phases(setting, &phases, fill, policy, cores, seed)
}

/// [`simulate`] on given phases (and their matrix-unit `fill`).
pub fn simulate_phases(
    setting: &Setting,
    phases: &[Phase],
    fill: f64,
    policy: &Policy,
    cores: u32,
    seed: u64,
) -> ScaleResult {
    let Setting { job, fabric, io, iterations, warmup } = setting;
    let (iterations, warmup) = (*iterations, *warmup);
    let root = RngStreams::new(seed);
    let per_host = fabric.cores_per_host.clamp(1, cores);
    let hosts = cores.div_ceil(per_host) as usize;
    let compute_s: f64 = phases.iter().map(|p| p.compute_s).sum();
    // Images a host takes per discriminator step, and the demand the
    // adaptive controller provisions for.
    let host_images = job.per_core(cores) * f64::from(per_host);
    let d_steps = phases.iter().filter(|p| p.net == Net::D).count() as f64;
    let demand = host_images * d_steps / compute_s.max(1e-12);
    let p = &policy.pipeline;
    let provision = |congested: bool| {
        // Saturating: a demand beyond any thread count asks for every vCPU.
        let need = (p.headroom * demand / io.per_thread(congested)).ceil() as u32;
        need.clamp(p.threads.min(io.vcpus), io.vcpus)
    };
    let (threads_normal, threads_congested, prefetch) = if p.adaptive {
        let cover = ((p.detect_s * demand / host_images).ceil() as u32).saturating_add(1);
        (provision(false), provision(true), cover.clamp(p.prefetch, p.max_prefetch.max(p.prefetch)))
    } else {
        (p.threads, p.threads, p.prefetch)
    };
    let mut hosts: Vec<Host> = (0..hosts)
        .map(|h| Host {
            rng: root.stream(&format!("host-{h}")),
            flips: Vec::new(),
            dropped: 0,
            threads_normal,
            threads_congested,
            detect_s: if p.adaptive { p.detect_s } else { 0.0 },
            produced_at: 0.0,
            taken: std::collections::VecDeque::with_capacity(prefetch as usize + 1),
        })
        .collect();
    let mut jitter = root.stream("jitter");
    let sigma = fabric.jitter.max(0.0);
    let mu = -sigma * sigma / 2.0; // mean one
    let n = cores as usize;
    let mut free = vec![0.0f64; n];
    let (mut stall, mut wait) = (0.0f64, 0.0f64);
    let mut network_free = 0.0f64;
    // Completion of each iteration's last D and G all-reduces.
    let mut d_done: Vec<f64> = Vec::with_capacity(iterations as usize);
    let mut g_done: Vec<f64> = Vec::with_capacity(iterations as usize);
    let (mut last_d, mut last_g, mut last_any) = (0.0f64, 0.0f64, 0.0f64);
    let mut avail = vec![0.0f64; hosts.len()];
    let mut started = vec![0.0f64; hosts.len()];
    let mut warm_at = 0.0;
    let s = policy.staleness as usize;
    for k in 0..iterations as usize {
        if k == warmup as usize {
            warm_at = last_any;
            stall = 0.0;
            wait = 0.0;
        }
        for phase in phases {
            let dep = if s == 0 {
                last_any
            } else {
                match phase.net {
                    // D at k trains on samples of G version ≥ k − 1 − s.
                    Net::D => last_d.max(if k > s { g_done[k - 1 - s] } else { 0.0 }),
                    // G at k needs D version ≥ k − s.
                    Net::G => last_g.max(if k >= s && k - s < d_done.len() { d_done[k - s] } else { 0.0 }),
                }
            };
            if phase.net == Net::D {
                for (h, host) in hosts.iter_mut().enumerate() {
                    // Batch `batches` waits for room: batch `batches − prefetch` taken.
                    let blocked_by = if host.taken.len() == prefetch as usize { host.taken[0] } else { 0.0 };
                    let start = host.produced_at.max(blocked_by);
                    host.produced_at = host.produce(io, start, host_images);
                    avail[h] = host.produced_at;
                    started[h] = 0.0;
                }
            }
            let mut last_end = 0.0f64;
            for (w, free_w) in free.iter_mut().enumerate() {
                let h = w / per_host as usize;
                let ready = free_w.max(dep);
                wait += ready - *free_w;
                let begin = if phase.net == Net::D {
                    stall += (avail[h] - ready).max(0.0);
                    started[h] = started[h].max(ready.max(avail[h]));
                    ready.max(avail[h])
                } else {
                    ready
                };
                let factor = if sigma > 0.0 { jitter.lognormal(mu, sigma) } else { 1.0 };
                *free_w = begin + phase.compute_s * factor;
                last_end = last_end.max(*free_w);
            }
            if phase.net == Net::D {
                for (host, &t) in hosts.iter_mut().zip(&started) {
                    if host.taken.len() == prefetch as usize {
                        host.taken.pop_front();
                    }
                    host.taken.push_back(t);
                }
            }
            let begin = last_end.max(network_free);
            let done = begin + phase.allreduce_s;
            network_free = done;
            last_any = done;
            match phase.net {
                Net::D => last_d = done,
                Net::G => last_g = done,
            }
        }
        d_done.push(last_d);
        g_done.push(last_g);
    }
    // The measured span ends when the last core and all-reduce are done.
    let end = free.iter().copied().fold(last_any, f64::max);
    let measured = (iterations - warmup.min(iterations)).max(1);
    let span = (end - warm_at).max(1e-12);
    let iteration_s = span / f64::from(measured);
    let core_time = span * f64::from(cores);
    ScaleResult {
        cores,
        iteration_s,
        images_per_s: job.global(cores) / iteration_s,
        stall: stall / core_time,
        sync_wait: wait / core_time,
        fill,
        compute_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet_io() -> HostIo {
        HostIo {
            image_bytes: 110e3,
            request_images: 32.0,
            latency_s: 0.03,
            connection_bps: 100e6,
            decode_s: 0.004,
            nic_bps: 4e9,
            vcpus: 96,
            normal_mean_s: 120.0,
            congested_mean_s: 0.0,
            congested_latency_x: 10.0,
            congested_bandwidth_x: 0.25,
        }
    }

    fn fabric(jitter: f64) -> Fabric {
        Fabric {
            core: Core { flops: 30e12, hbm: 450e9, tile: 128, bytes: 2.0 },
            cores_per_host: 8,
            link_gbps: 80.0,
            latency_us: 5.0,
            algorithm: Algorithm::Torus,
            jitter,
        }
    }

    fn policy(staleness: u32, adaptive: bool) -> Policy {
        Policy {
            staleness,
            pipeline: Pipeline { adaptive, threads: 64, prefetch: 2, detect_s: 1.0, headroom: 1.25, max_prefetch: 64 },
            layout: Layout::Default,
        }
    }

    fn job() -> Job {
        Job { gan: biggan(128, 96).expect("128"), batch: Batch::Global(2048), n_dis: 2 }
    }

    /// BigGAN-PyTorch's 128 × 128 model: G 70.4 M and D 88.0 M parameters.
    #[test]
    fn biggan_parameter_counts() {
        let g = biggan(128, 96).expect("128");
        assert_eq!(params(&g.generator), 70_433_988);
        assert_eq!(params(&g.discriminator), 87_982_370);
        assert!(biggan(100, 96).is_none());
        for r in [256, 512] {
            let g = biggan(r, 96).expect("known");
            assert!(flops(&g.generator) > flops(&biggan(128, 96).expect("128").generator));
        }
    }

    /// Hand-computed fill: 96 channels on a 128-lane tile fill 3/4; a
    /// 3-channel input 3/128 per tap, 27/128 folded (im2col).
    #[test]
    fn layout_fill_by_hand() {
        assert!((fill(96, 128) - 0.75).abs() < 1e-12);
        assert!((fill(384, 128) - 1.0).abs() < 1e-12);
        let core = Core { flops: 1e12, hbm: 1e18, tile: 128, bytes: 2.0 };
        let op = Op {
            name: "rgb".into(),
            kind: LayerKind::Conv,
            cin: 3,
            cout: 128,
            taps: 9,
            positions: 100,
            params: 0,
            elements: 0,
        };
        let flops = op.flops();
        let (t, f) = core.op_s(&op, 1.0, Layout::Default);
        assert!((f - 3.0 / 128.0).abs() < 1e-12 && (t - flops / (1e12 * f)).abs() < 1e-18);
        let (t2, f2) = core.op_s(&op, 1.0, Layout::Aware);
        assert!((f2 - 27.0 / 128.0).abs() < 1e-12 && t2 < t);
    }

    /// No jitter, no congestion, ample input, all-reduces shorter than any
    /// compute phase: a synchronous iteration is every phase's compute
    /// plus every all-reduce; an asynchronous one hides all but the first
    /// discriminator all-reduce (the second D step needs it).
    #[test]
    fn iteration_by_hand() {
        let phases = vec![
            Phase { net: Net::D, compute_s: 0.10, allreduce_s: 0.02 },
            Phase { net: Net::D, compute_s: 0.10, allreduce_s: 0.02 },
            Phase { net: Net::G, compute_s: 0.12, allreduce_s: 0.03 },
        ];
        let io = HostIo { latency_s: 0.0, decode_s: 0.0, ..quiet_io() };
        let setting = Setting { job: job(), fabric: fabric(0.0), io, iterations: 50, warmup: 10 };
        let run = |s| simulate_phases(&setting, &phases, 1.0, &policy(s, false), 8, 1);
        let sync = run(0);
        let asynchronous = run(1);
        assert!((sync.iteration_s - 0.39).abs() < 1e-9, "{}", sync.iteration_s);
        assert!((asynchronous.iteration_s - 0.34).abs() < 1e-9, "{}", asynchronous.iteration_s);
        assert!(sync.stall == 0.0 && asynchronous.stall == 0.0);
    }

    /// The sanity check mechanisms.md asks for: with jitter and congestion,
    /// scaling efficiency falls with synchronous G/D coupling and recovers
    /// with asynchrony and the congestion-aware pipeline.
    #[test]
    fn efficiency_falls_with_coupling_and_recovers_with_asynchrony() {
        let io = HostIo { congested_mean_s: 10.0, normal_mean_s: 60.0, ..quiet_io() };
        let mut slow = policy(0, false);
        slow.pipeline.threads = 8;
        let mut fast = policy(1, true);
        fast.pipeline.threads = 8;
        let setting = Setting { job: job(), fabric: fabric(0.03), io, iterations: 300, warmup: 20 };
        let eff = |p: &Policy| {
            let small = simulate(&setting, p, 8, 7);
            let large = simulate(&setting, p, 512, 7);
            (small.iteration_s * 8.0) / (large.iteration_s * 512.0)
        };
        let (sync, paragan) = (eff(&slow), eff(&fast));
        assert!(sync < 0.9, "synchronous efficiency {sync}");
        assert!(paragan > sync + 0.05, "asynchronous {paragan} vs synchronous {sync}");
    }

    /// Forgetting old flips changes no answer from then on, and the next
    /// flips are drawn from the last one kept (even when every earlier one
    /// is forgotten).
    #[test]
    fn forgetting_flips_keeps_every_later_answer() {
        let io = HostIo { congested_mean_s: 0.2, normal_mean_s: 0.3, ..quiet_io() };
        let host = || Host {
            rng: RngStreams::new(5).stream("host-0"),
            flips: Vec::new(),
            dropped: 0,
            threads_normal: 4,
            threads_congested: 9,
            detect_s: 0.5,
            produced_at: 0.0,
            taken: std::collections::VecDeque::new(),
        };
        let (mut kept, mut pruned) = (host(), host());
        kept.extend(&io, 2_000.0);
        pruned.extend(&io, 2_000.0);
        pruned.forget_before(1_000.0);
        assert!(pruned.dropped > 1024 && pruned.flips.len() < kept.flips.len());
        for i in 0..4_000 {
            let t = 1_000.0 + 0.37 * f64::from(i);
            kept.extend(&io, t);
            pruned.extend(&io, t);
            assert_eq!(kept.congested(t), pruned.congested(t), "at {t}");
            assert_eq!(kept.threads(t), pruned.threads(t), "at {t}");
            assert_eq!(kept.next_change(t).to_bits(), pruned.next_change(t).to_bits(), "at {t}");
        }
        // Past every flip: the last one stays as the base of the next draw.
        let mut all = host();
        all.extend(&io, 3_000.0);
        let last = *all.flips.last().expect("flips");
        all.forget_before(last + 10.0);
        assert_eq!(all.flips, vec![last]);
        all.extend(&io, last + 5.0);
        assert!(all.flips.len() > 1 && all.flips[1] > last);
    }

    /// Same seed, same result; another seed differs under jitter.
    #[test]
    fn deterministic_per_seed() {
        let io = HostIo { congested_mean_s: 5.0, normal_mean_s: 20.0, ..quiet_io() };
        let p = policy(1, true);
        let setting = Setting { job: job(), fabric: fabric(0.05), io, iterations: 100, warmup: 5 };
        let a = simulate(&setting, &p, 64, 3);
        let b = simulate(&setting, &p, 64, 3);
        let c = simulate(&setting, &p, 64, 4);
        assert_eq!(a, b);
        assert_ne!(a.iteration_s, c.iteration_s);
    }

    /// An input pipeline slower than compute bounds the iteration by it.
    #[test]
    fn starved_input_bounds_throughput() {
        let phases = vec![Phase { net: Net::D, compute_s: 0.01, allreduce_s: 0.0 }];
        let io = HostIo { decode_s: 0.01, request_images: 1.0, latency_s: 0.0, ..quiet_io() };
        let mut p = policy(0, false);
        p.pipeline.threads = 1;
        // One thread: 1 / (0.01 + 110e3 / 100e6) = 90.09 images/s; a host
        // takes 2048 / 8 × 8 = 2048 images per step.
        let setting = Setting { job: job(), fabric: fabric(0.0), io, iterations: 20, warmup: 5 };
        let r = simulate_phases(&setting, &phases, 1.0, &p, 8, 1);
        let per_batch = 2048.0 * (0.01 + 110e3 / 100e6);
        assert!((r.iteration_s - per_batch).abs() < 1e-6, "{} vs {per_batch}", r.iteration_s);
        assert!(r.stall > 0.9);
    }
}
