//! Layer tables computed from model definitions: per layer, forward FLOPs
//! per sample, parameters, and activation elements per sample. They drive
//! the step cost model's roofline.
//!
//! Definitions follow the published architectures (torchvision's ResNet
//! and VGG at 224 × 224, GPT-style decoder blocks); parameter counts are
//! checked against the known totals (ResNet-50 25,557,032; VGG-16
//! 138,357,544; ResNet-18 11,689,512). FLOPs count a multiply-add as two.

/// What a layer computes (for the roofline's memory traffic and for
/// tensor parallelism, which splits only `Dense` and `Attention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A convolution.
    Conv,
    /// A fully connected layer or a transformer block's projections.
    Dense,
    /// Attention scores and weighted sums (no parameters).
    Attention,
    /// Normalisation, pooling, activations and embeddings: memory-bound.
    Elementwise,
}

/// One layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: LayerKind,
    /// Forward FLOPs per sample.
    pub flops: f64,
    /// Parameters.
    pub params: u64,
    /// Elements per sample the backward pass keeps (inputs of its
    /// matrix products, intermediate results).
    pub activations: u64,
    /// Elements per sample of the layer's output (what crosses a tensor-
    /// or pipeline-parallel boundary, and what checkpointing keeps).
    pub output: u64,
}

/// A model: its layers, input description and name.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTable {
    /// Name.
    pub name: String,
    /// Layers in forward order.
    pub layers: Vec<Layer>,
    /// Input elements per sample.
    pub input_elements: u64,
    /// Tokens per sample (a sequence) for language models.
    pub tokens_per_sample: Option<u64>,
}

impl ModelTable {
    /// Parameters in all.
    pub fn params(&self) -> u64 {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// Forward FLOPs per sample.
    pub fn flops(&self) -> f64 {
        self.layers.iter().map(|l| l.flops).sum()
    }

    /// Activation elements per sample.
    pub fn activations(&self) -> u64 {
        self.layers.iter().map(|l| l.activations).sum()
    }
}

/// Names [`model`] knows.
pub const MODELS: &[&str] = &[
    "mlp",
    "cnn",
    "resnet18",
    "resnet50",
    "vgg16",
    "vit-b16",
    "gpt2-1.5b",
    "gpt3-6.7b",
    "llama2-7b",
    "llama2-13b",
    "gpt3-175b",
];

/// The table of model `name`.
pub fn model(name: &str) -> Option<ModelTable> {
    Some(match name {
        "mlp" => mlp(&[256, 128]),
        "cnn" => lenet(),
        "resnet18" => resnet(&[2, 2, 2, 2], false, "resnet18"),
        "resnet50" => resnet(&[3, 4, 6, 3], true, "resnet50"),
        "vgg16" => vgg16(),
        "vit-b16" => vit_b16(),
        "gpt2-1.5b" => gpt("gpt2-1.5b", 48, 1600, 1024, 50_257, 4),
        "gpt3-6.7b" => gpt("gpt3-6.7b", 32, 4096, 2048, 50_257, 4),
        "llama2-7b" => gpt("llama2-7b", 32, 4096, 4096, 32_000, 0),
        "llama2-13b" => gpt("llama2-13b", 40, 5120, 4096, 32_000, 0),
        "gpt3-175b" => gpt("gpt3-175b", 96, 12_288, 2048, 50_257, 4),
        _ => return None,
    })
}

/// Builds a convolutional network's table, tracking the feature map.
struct Net {
    layers: Vec<Layer>,
    c: u64,
    h: u64,
    w: u64,
}

impl Net {
    fn new(c: u64, h: u64, w: u64) -> Net {
        Net { layers: Vec::new(), c, h, w }
    }

    fn push(&mut self, name: String, kind: LayerKind, flops: f64, params: u64) {
        let activations = self.c * self.h * self.w;
        self.layers.push(Layer { name, kind, flops, params, activations, output: activations });
    }

    fn conv(&mut self, name: &str, out: u64, k: u64, stride: u64, pad: u64, bias: bool) {
        let (h, w) = ((self.h + 2 * pad - k) / stride + 1, (self.w + 2 * pad - k) / stride + 1);
        let params = k * k * self.c * out + if bias { out } else { 0 };
        let flops = 2.0 * (k * k * self.c * out * h * w) as f64;
        (self.c, self.h, self.w) = (out, h, w);
        self.push(name.into(), LayerKind::Conv, flops, params);
    }

    /// Batch normalisation (scale and shift per channel) with its ReLU.
    fn bn(&mut self, name: &str) {
        let elements = (self.c * self.h * self.w) as f64;
        self.push(name.into(), LayerKind::Elementwise, 5.0 * elements, 2 * self.c);
    }

    fn pool(&mut self, name: &str, k: u64, stride: u64, pad: u64) {
        (self.h, self.w) = ((self.h + 2 * pad - k) / stride + 1, (self.w + 2 * pad - k) / stride + 1);
        let flops = (k * k * self.c * self.h * self.w) as f64;
        self.push(name.into(), LayerKind::Elementwise, flops, 0);
    }

    fn global_pool(&mut self, name: &str) {
        let flops = (self.c * self.h * self.w) as f64;
        (self.h, self.w) = (1, 1);
        self.push(name.into(), LayerKind::Elementwise, flops, 0);
    }

    fn dense(&mut self, name: &str, out: u64) {
        let fan_in = self.c * self.h * self.w;
        (self.c, self.h, self.w) = (out, 1, 1);
        self.push(name.into(), LayerKind::Dense, 2.0 * (fan_in * out) as f64, fan_in * out + out);
    }
}

fn mlp(hidden: &[u64]) -> ModelTable {
    let mut n = Net::new(1, 28, 28);
    for (i, &w) in hidden.iter().enumerate() {
        n.dense(&format!("fc{}", i + 1), w);
    }
    n.dense("out", 10);
    ModelTable { name: "mlp".into(), layers: n.layers, input_elements: 784, tokens_per_sample: None }
}

fn lenet() -> ModelTable {
    let mut n = Net::new(1, 28, 28);
    n.conv("conv1", 16, 5, 1, 0, true);
    n.pool("pool1", 2, 2, 0);
    n.conv("conv2", 32, 5, 1, 0, true);
    n.pool("pool2", 2, 2, 0);
    n.dense("fc1", 128);
    n.dense("out", 10);
    ModelTable { name: "cnn".into(), layers: n.layers, input_elements: 784, tokens_per_sample: None }
}

fn resnet(blocks: &[u64; 4], bottleneck: bool, name: &str) -> ModelTable {
    let mut n = Net::new(3, 224, 224);
    n.conv("conv1", 64, 7, 2, 3, false);
    n.bn("bn1");
    n.pool("maxpool", 3, 2, 1);
    let expansion = if bottleneck { 4 } else { 1 };
    let mut inplanes = 64;
    for (stage, (&count, width)) in blocks.iter().zip([64u64, 128, 256, 512]).enumerate() {
        for b in 0..count {
            let stride = if b == 0 && stage > 0 { 2 } else { 1 };
            let prefix = format!("layer{}.{b}", stage + 1);
            let (c, h, w) = (n.c, n.h, n.w);
            if bottleneck {
                n.conv(&format!("{prefix}.conv1"), width, 1, 1, 0, false);
                n.bn(&format!("{prefix}.bn1"));
                n.conv(&format!("{prefix}.conv2"), width, 3, stride, 1, false);
                n.bn(&format!("{prefix}.bn2"));
                n.conv(&format!("{prefix}.conv3"), width * 4, 1, 1, 0, false);
                n.bn(&format!("{prefix}.bn3"));
            } else {
                n.conv(&format!("{prefix}.conv1"), width, 3, stride, 1, false);
                n.bn(&format!("{prefix}.bn1"));
                n.conv(&format!("{prefix}.conv2"), width, 3, 1, 1, false);
                n.bn(&format!("{prefix}.bn2"));
            }
            if stride != 1 || inplanes != width * expansion {
                // The shortcut's projection runs on the block's input.
                let after = (n.c, n.h, n.w);
                (n.c, n.h, n.w) = (c, h, w);
                n.conv(&format!("{prefix}.downsample"), width * expansion, 1, stride, 0, false);
                n.bn(&format!("{prefix}.downsample.bn"));
                (n.c, n.h, n.w) = after;
            }
            inplanes = width * expansion;
        }
    }
    n.global_pool("avgpool");
    n.dense("fc", 1000);
    ModelTable { name: name.into(), layers: n.layers, input_elements: 3 * 224 * 224, tokens_per_sample: None }
}

fn vgg16() -> ModelTable {
    let mut n = Net::new(3, 224, 224);
    let mut i = 0;
    for (convs, width) in [(2, 64u64), (2, 128), (3, 256), (3, 512), (3, 512)] {
        for _ in 0..convs {
            n.conv(&format!("features.{i}"), width, 3, 1, 1, true);
            i += 1;
        }
        n.pool(&format!("pool{i}"), 2, 2, 0);
    }
    // torchvision's adaptive average pool to 7 × 7 is the identity here.
    n.dense("classifier.0", 4096);
    n.dense("classifier.3", 4096);
    n.dense("classifier.6", 1000);
    ModelTable { name: "vgg16".into(), layers: n.layers, input_elements: 3 * 224 * 224, tokens_per_sample: None }
}

/// ViT-B/16 at 224 × 224 (torchvision's `vit_b_16`): a 16 × 16 patch
/// projection to 768 channels, a class token and position embeddings
/// (197 tokens), 12 encoder blocks (12 heads, MLP 3,072, two layer norms
/// each), a final norm and a 1,000-way head on the class token.
fn vit_b16() -> ModelTable {
    let (h, tokens, ff) = (768u64, 197u64, 3072u64);
    let mut layers = Vec::new();
    let mut push = |name: String, kind: LayerKind, flops: f64, params: u64, activations: u64, output: u64| {
        layers.push(Layer { name, kind, flops, params, activations, output });
    };
    push(
        "conv_proj".into(),
        LayerKind::Conv,
        2.0 * (3 * 16 * 16 * h * 196) as f64,
        3 * 16 * 16 * h + h,
        196 * h,
        196 * h,
    );
    push("embed".into(), LayerKind::Elementwise, (tokens * h) as f64, h + tokens * h, tokens * h, tokens * h);
    for l in 0..12 {
        // ln_1, in_proj (3h² + 3h), out_proj (h² + h).
        push(
            format!("encoder.layers.{l}.attn.proj"),
            LayerKind::Dense,
            2.0 * (4 * h * h * tokens) as f64,
            2 * h + 4 * h * h + 4 * h,
            4 * tokens * h,
            tokens * h,
        );
        push(
            format!("encoder.layers.{l}.attn.scores"),
            LayerKind::Attention,
            4.0 * (tokens * tokens * h) as f64,
            0,
            2 * tokens * h,
            tokens * h,
        );
        // ln_2 and the MLP.
        push(
            format!("encoder.layers.{l}.mlp"),
            LayerKind::Dense,
            2.0 * (2 * h * ff * tokens) as f64,
            2 * h + 2 * h * ff + ff + h,
            (2 * h + ff) * tokens,
            tokens * h,
        );
    }
    push("encoder.ln".into(), LayerKind::Elementwise, 5.0 * (tokens * h) as f64, 2 * h, tokens * h, h);
    push("heads".into(), LayerKind::Dense, 2.0 * (h * 1000) as f64, h * 1000 + 1000, 1000, 1000);
    ModelTable { name: "vit-b16".into(), layers, input_elements: 3 * 224 * 224, tokens_per_sample: None }
}

/// A GPT-style decoder: `layers` blocks of hidden size `h` over sequences
/// of `seq` tokens, a tied-free embedding and head of `vocab`; one
/// "sample" is one sequence. `mlp_ratio` 4 is GPT's MLP; 0 means a gated
/// (SwiGLU) MLP of LLaMA's width, 8/3 h rounded to 256, with three
/// matrices. Biases and norms are omitted for LLaMA, kept for GPT.
fn gpt(name: &str, layers: u64, h: u64, seq: u64, vocab: u64, mlp_ratio: u64) -> ModelTable {
    let mut out = Vec::new();
    let tokens = seq;
    out.push(Layer {
        name: "embed".into(),
        kind: LayerKind::Elementwise,
        flops: (tokens * h) as f64,
        params: vocab * h + if mlp_ratio > 0 { seq * h } else { 0 },
        activations: tokens * h,
        output: tokens * h,
    });
    let (mlp_params, mlp_flops_per_token) = if mlp_ratio > 0 {
        let ff = mlp_ratio * h;
        (2 * h * ff + ff + h, 2.0 * (2 * h * ff) as f64)
    } else {
        let ff = (8 * h / 3).div_ceil(256) * 256;
        (3 * h * ff, 2.0 * (3 * h * ff) as f64)
    };
    let norms = if mlp_ratio > 0 { 4 * h } else { 2 * h };
    let attn_params = 4 * h * h + if mlp_ratio > 0 { 4 * h } else { 0 };
    for l in 0..layers {
        out.push(Layer {
            name: format!("h.{l}.attn.proj"),
            kind: LayerKind::Dense,
            flops: 2.0 * (4 * h * h * tokens) as f64,
            params: attn_params + norms,
            activations: 4 * tokens * h,
            output: tokens * h,
        });
        out.push(Layer {
            name: format!("h.{l}.attn.scores"),
            kind: LayerKind::Attention,
            // QKᵀ and the weighted sum: 2 × 2 × s² × h.
            flops: 4.0 * (tokens * tokens * h) as f64,
            params: 0,
            activations: 2 * tokens * h,
            output: tokens * h,
        });
        out.push(Layer {
            name: format!("h.{l}.mlp"),
            kind: LayerKind::Dense,
            flops: mlp_flops_per_token * tokens as f64,
            params: mlp_params,
            activations: 4 * tokens * h,
            output: tokens * h,
        });
    }
    out.push(Layer {
        name: "lm_head".into(),
        kind: LayerKind::Dense,
        flops: 2.0 * (tokens * h * vocab) as f64,
        params: vocab * h,
        activations: tokens * vocab,
        output: tokens * vocab,
    });
    ModelTable { name: name.into(), layers: out, input_elements: seq, tokens_per_sample: Some(seq) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameter totals of the reference implementations.
    #[test]
    fn parameter_counts_match_the_published_models() {
        let count = |m: &str| model(m).expect(m).params();
        assert_eq!(count("resnet50"), 25_557_032);
        assert_eq!(count("resnet18"), 11_689_512);
        assert_eq!(count("vgg16"), 138_357_544);
        assert_eq!(count("vit-b16"), 86_567_656);
        assert_eq!(count("mlp"), 235_146);
        assert_eq!(count("cnn"), 80_202);
        // GPT-2 XL is 1.56 B with its tied head counted once; here the
        // head is separate (+80 M).
        let gpt2 = count("gpt2-1.5b") as f64;
        assert!((1.55e9..1.65e9).contains(&gpt2), "{gpt2}");
        let llama = count("llama2-7b") as f64;
        assert!((6.6e9..6.8e9).contains(&llama), "{llama}");
    }

    /// ResNet-50's forward pass is about 4.1 G multiply-adds (8.2 GFLOPs)
    /// at 224 × 224; VGG-16's 15.5 G.
    #[test]
    fn flops_match_the_published_figures() {
        let g = |m: &str| model(m).expect(m).flops() / 1e9;
        assert!((8.0..8.5).contains(&g("resnet50")), "{}", g("resnet50"));
        assert!((30.8..31.2).contains(&g("vgg16")), "{}", g("vgg16"));
        assert!((3.6..3.7).contains(&g("resnet18")), "{}", g("resnet18"));
        // ViT-B/16: torchvision lists 17.56 G multiply-adds (its `GFLOPS`), 35.1 GFLOPs.
        assert!((34.0..36.5).contains(&g("vit-b16")), "{}", g("vit-b16"));
        for m in MODELS {
            assert!(model(m).is_some());
        }
        assert!(model("bert").is_none());
    }
}
