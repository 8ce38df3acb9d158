//! Transformer shapes of the served models: parameter counts, weight and
//! KV-cache bytes, per-layer GEMM work.
//!
//! Shapes are the published configurations (Hugging Face `config.json` of
//! each model); fp16 weights and KV cache throughout.

/// A decoder-only transformer.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Name used in scenarios (`llama-2-7b`).
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// Decoder layers.
    pub layers: u32,
    /// Hidden size d.
    pub hidden: u32,
    /// Query heads.
    pub heads: u32,
    /// Key/value heads (fewer than `heads` with grouped-query attention).
    pub kv_heads: u32,
    /// MLP inner size f (per expert for mixtures of experts).
    pub ffn: u32,
    /// Vocabulary size.
    pub vocab: u32,
    /// Gated (SwiGLU: three matrices) or plain (two matrices) MLP.
    pub gated_mlp: bool,
    /// Experts per MoE layer (1 for dense models).
    pub experts: u32,
    /// Experts each token is routed to.
    pub experts_per_token: u32,
    /// Longest sequence (prompt + output) the model accepts.
    pub max_seq_len: u32,
    /// Where the shape comes from.
    pub source: &'static str,
}

/// Bytes per fp16 value.
pub const FP16_BYTES: f64 = 2.0;

impl ModelSpec {
    /// Head dimension.
    pub fn head_dim(&self) -> u32 {
        self.hidden / self.heads
    }

    /// Attention parameters of one layer (Q, K, V and output projections).
    pub fn attention_params_per_layer(&self) -> f64 {
        let d = self.hidden as f64;
        let kv = (self.kv_heads * self.head_dim()) as f64;
        2.0 * d * d + 2.0 * d * kv
    }

    /// MLP parameters of one expert of one layer.
    pub fn expert_params(&self) -> f64 {
        let matrices = if self.gated_mlp { 3.0 } else { 2.0 };
        matrices * self.hidden as f64 * self.ffn as f64
    }

    /// Parameters every token of a layer multiplies with: attention plus the
    /// experts it is routed to.
    pub fn active_params_per_layer(&self) -> f64 {
        self.attention_params_per_layer() + self.experts_per_token as f64 * self.expert_params()
    }

    /// Parameters held by one layer (every expert).
    pub fn params_per_layer(&self) -> f64 {
        self.attention_params_per_layer() + self.experts as f64 * self.expert_params()
    }

    /// Embedding and LM head parameters (untied).
    pub fn embedding_params(&self) -> f64 {
        2.0 * self.vocab as f64 * self.hidden as f64
    }

    /// All parameters.
    pub fn params(&self) -> f64 {
        self.layers as f64 * self.params_per_layer() + self.embedding_params()
    }

    /// Weight bytes (fp16).
    pub fn weight_bytes(&self) -> f64 {
        self.params() * FP16_BYTES
    }

    /// Bytes of every expert of every layer (fp16); zero for dense models.
    pub fn expert_bytes(&self) -> f64 {
        if self.experts <= 1 {
            0.0
        } else {
            self.layers as f64 * self.experts as f64 * self.expert_params() * FP16_BYTES
        }
    }

    /// KV-cache bytes per token: keys and values of every layer.
    pub fn kv_bytes_per_token(&self) -> f64 {
        2.0 * self.layers as f64 * (self.kv_heads * self.head_dim()) as f64 * FP16_BYTES
    }
}

/// The catalog.
pub static MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "llama-2-7b",
        aliases: &["meta-llama/llama-2-7b-hf", "llama2-7b"],
        layers: 32,
        hidden: 4096,
        heads: 32,
        kv_heads: 32,
        ffn: 11008,
        vocab: 32000,
        gated_mlp: true,
        experts: 1,
        experts_per_token: 1,
        max_seq_len: 4096,
        source: "meta-llama/Llama-2-7b-hf config.json",
    },
    ModelSpec {
        name: "llama-2-70b",
        aliases: &["meta-llama/llama-2-70b-hf", "llama2-70b"],
        layers: 80,
        hidden: 8192,
        heads: 64,
        kv_heads: 8,
        ffn: 28672,
        vocab: 32000,
        gated_mlp: true,
        experts: 1,
        experts_per_token: 1,
        max_seq_len: 4096,
        source: "meta-llama/Llama-2-70b-hf config.json",
    },
    ModelSpec {
        name: "llama-3-8b",
        aliases: &["meta-llama/meta-llama-3-8b", "llama3-8b"],
        layers: 32,
        hidden: 4096,
        heads: 32,
        kv_heads: 8,
        ffn: 14336,
        vocab: 128256,
        gated_mlp: true,
        experts: 1,
        experts_per_token: 1,
        max_seq_len: 8192,
        source: "meta-llama/Meta-Llama-3-8B config.json",
    },
    ModelSpec {
        name: "llama-3-70b",
        aliases: &["meta-llama/meta-llama-3-70b", "llama3-70b"],
        layers: 80,
        hidden: 8192,
        heads: 64,
        kv_heads: 8,
        ffn: 28672,
        vocab: 128256,
        gated_mlp: true,
        experts: 1,
        experts_per_token: 1,
        max_seq_len: 8192,
        source: "meta-llama/Meta-Llama-3-70B config.json",
    },
    ModelSpec {
        name: "opt-13b",
        aliases: &["facebook/opt-13b"],
        layers: 40,
        hidden: 5120,
        heads: 40,
        kv_heads: 40,
        ffn: 20480,
        vocab: 50272,
        gated_mlp: false,
        experts: 1,
        experts_per_token: 1,
        max_seq_len: 2048,
        source: "facebook/opt-13b config.json",
    },
    ModelSpec {
        name: "mixtral-8x7b",
        aliases: &["mistralai/mixtral-8x7b-v0.1"],
        layers: 32,
        hidden: 4096,
        heads: 32,
        kv_heads: 8,
        ffn: 14336,
        vocab: 32000,
        gated_mlp: true,
        experts: 8,
        experts_per_token: 2,
        max_seq_len: 32768,
        source: "mistralai/Mixtral-8x7B-v0.1 config.json",
    },
];

/// Looks a model up by name or alias (case-insensitive).
pub fn model(name: &str) -> Option<&'static ModelSpec> {
    let wanted = name.to_ascii_lowercase();
    MODELS.iter().find(|m| m.name == wanted || m.aliases.contains(&wanted.as_str()))
}

/// Names of all models.
pub fn model_names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> &'static ModelSpec {
        model(name).expect("in the catalog")
    }

    #[test]
    fn parameter_counts_match_the_published_sizes() {
        // Published totals: 6.74 B, 69.0 B, 8.03 B, 12.9 B, 46.7 B.
        for (name, billions) in [
            ("llama-2-7b", 6.74),
            ("llama-2-70b", 68.98),
            ("llama-3-8b", 8.03),
            ("opt-13b", 12.85),
            ("mixtral-8x7b", 46.7),
        ] {
            let got = spec(name).params() / 1e9;
            assert!((got / billions - 1.0).abs() < 0.02, "{name}: {got} B");
        }
    }

    #[test]
    fn kv_bytes_per_token_by_hand() {
        assert_eq!(spec("llama-2-7b").kv_bytes_per_token(), 512.0 * 1024.0);
        assert_eq!(spec("llama-3-8b").kv_bytes_per_token(), 128.0 * 1024.0);
        assert_eq!(spec("llama-2-70b").kv_bytes_per_token(), 320.0 * 1024.0);
    }

    #[test]
    fn mixtral_experts_dominate_its_weights() {
        let m = spec("mixtral-8x7b");
        // 32 layers x 8 experts x 3 x 4096 x 14336 = 45.1 B expert parameters.
        assert!((m.expert_bytes() / 2.0 / 1e9 - 45.1).abs() < 0.1);
        let rest = (m.weight_bytes() - m.expert_bytes()) / 1e9;
        assert!((rest - 3.2).abs() < 0.1, "{rest} GB outside the experts");
    }

    #[test]
    fn lookup_accepts_aliases() {
        assert_eq!(model("Meta-Llama/Llama-2-7b-hf").map(|m| m.name), Some("llama-2-7b"));
        assert!(model("gpt-5").is_none());
    }
}
