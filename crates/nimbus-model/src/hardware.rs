//! Hardware catalog: accelerators, intra-node interconnects and NICs.
//!
//! Peak figures are the vendors' datasheet numbers (boost clocks, dense
//! math); models that need achieved rather than peak performance apply their
//! own calibrated efficiency and say so. Names are lower-case and match the
//! GPU-type names used by the public traces (`k80`, `p100`, `v100` in Gavel;
//! `t4`, `a100`, `rtx2080ti` behind Sia's `aws`, `dgx`, `rtx` clusters).

/// One accelerator model.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuSpec {
    /// Canonical lower-case name.
    pub name: &'static str,
    /// Other names traces use for it.
    pub aliases: &'static [&'static str],
    /// Device memory per GPU, GiB.
    pub memory_gib: f64,
    /// Peak FP32 throughput, TFLOP/s.
    pub fp32_tflops: f64,
    /// Peak FP16 throughput (tensor cores where present, dense), TFLOP/s.
    pub fp16_tflops: f64,
    /// Peak memory bandwidth, GB/s.
    pub memory_bandwidth_gbps: f64,
    /// Board power (TDP), W.
    pub tdp_w: f64,
    /// Where the figures come from.
    pub source: &'static str,
}

/// The catalog, in order of release.
pub static GPUS: &[GpuSpec] = &[
    GpuSpec {
        name: "k80",
        aliases: &["tesla-k80"],
        // One of the two GK210 dies on a K80 board (Gavel counts dies as GPUs).
        memory_gib: 12.0,
        fp32_tflops: 4.37,
        fp16_tflops: 4.37,
        memory_bandwidth_gbps: 240.0,
        tdp_w: 150.0,
        source: "NVIDIA Tesla K80 datasheet (board: 8.73 TFLOP/s FP32 boost, 480 GB/s, 24 GB, 300 W); halved per die",
    },
    GpuSpec {
        name: "p100",
        aliases: &["tesla-p100"],
        memory_gib: 16.0,
        fp32_tflops: 9.3,
        fp16_tflops: 18.7,
        memory_bandwidth_gbps: 732.0,
        tdp_w: 250.0,
        source: "NVIDIA Tesla P100 PCIe datasheet",
    },
    GpuSpec {
        name: "1080ti",
        aliases: &["gtx1080ti"],
        memory_gib: 11.0,
        fp32_tflops: 11.3,
        fp16_tflops: 0.18,
        memory_bandwidth_gbps: 484.0,
        tdp_w: 250.0,
        source: "NVIDIA GeForce GTX 1080 Ti specifications",
    },
    GpuSpec {
        name: "titanxp",
        aliases: &["titan-xp"],
        memory_gib: 12.0,
        fp32_tflops: 12.1,
        fp16_tflops: 0.19,
        memory_bandwidth_gbps: 547.7,
        tdp_w: 250.0,
        source: "NVIDIA TITAN Xp specifications",
    },
    GpuSpec {
        name: "v100",
        aliases: &["tesla-v100", "v100m16", "v100m32"],
        memory_gib: 16.0,
        fp32_tflops: 15.7,
        fp16_tflops: 125.0,
        memory_bandwidth_gbps: 900.0,
        tdp_w: 300.0,
        source: "NVIDIA Tesla V100 SXM2 datasheet",
    },
    GpuSpec {
        name: "t4",
        aliases: &["tesla-t4"],
        memory_gib: 16.0,
        fp32_tflops: 8.1,
        fp16_tflops: 65.0,
        memory_bandwidth_gbps: 320.0,
        tdp_w: 70.0,
        source: "NVIDIA T4 datasheet",
    },
    GpuSpec {
        name: "rtx2080ti",
        aliases: &["2080ti"],
        memory_gib: 11.0,
        fp32_tflops: 13.4,
        fp16_tflops: 53.8,
        memory_bandwidth_gbps: 616.0,
        tdp_w: 250.0,
        source: "NVIDIA GeForce RTX 2080 Ti specifications (FP16 tensor with FP32 accumulate)",
    },
    GpuSpec {
        name: "rtx6000",
        aliases: &["quadro-rtx6000"],
        memory_gib: 24.0,
        fp32_tflops: 16.3,
        fp16_tflops: 130.5,
        memory_bandwidth_gbps: 672.0,
        tdp_w: 295.0,
        source: "NVIDIA Quadro RTX 6000 datasheet",
    },
    GpuSpec {
        name: "a100",
        aliases: &["a100-40gb", "a100-sxm4"],
        memory_gib: 40.0,
        fp32_tflops: 19.5,
        fp16_tflops: 312.0,
        memory_bandwidth_gbps: 1555.0,
        tdp_w: 400.0,
        source: "NVIDIA A100 Tensor Core GPU datasheet (SXM4 40 GB)",
    },
    GpuSpec {
        name: "a100-80gb",
        aliases: &["a100-sxm4-80gb"],
        memory_gib: 80.0,
        fp32_tflops: 19.5,
        fp16_tflops: 312.0,
        memory_bandwidth_gbps: 2039.0,
        tdp_w: 400.0,
        source: "NVIDIA A100 Tensor Core GPU datasheet (SXM4 80 GB)",
    },
    GpuSpec {
        name: "a40",
        aliases: &[],
        memory_gib: 48.0,
        fp32_tflops: 37.4,
        fp16_tflops: 149.7,
        memory_bandwidth_gbps: 696.0,
        tdp_w: 300.0,
        source: "NVIDIA A40 datasheet (FP16 tensor, dense)",
    },
    GpuSpec {
        name: "rtx3090",
        aliases: &["3090"],
        memory_gib: 24.0,
        fp32_tflops: 35.6,
        fp16_tflops: 71.0,
        memory_bandwidth_gbps: 936.0,
        tdp_w: 350.0,
        source: "NVIDIA GeForce RTX 3090 specifications (FP16 tensor with FP32 accumulate)",
    },
    GpuSpec {
        name: "a10",
        aliases: &[],
        memory_gib: 24.0,
        fp32_tflops: 31.2,
        fp16_tflops: 125.0,
        memory_bandwidth_gbps: 600.0,
        tdp_w: 150.0,
        source: "NVIDIA A10 Tensor Core GPU datasheet",
    },
    GpuSpec {
        name: "h100",
        aliases: &["h100-sxm5", "h100-80gb"],
        memory_gib: 80.0,
        fp32_tflops: 67.0,
        fp16_tflops: 989.0,
        memory_bandwidth_gbps: 3350.0,
        tdp_w: 700.0,
        source: "NVIDIA H100 Tensor Core GPU datasheet (SXM5)",
    },
];

/// Looks a GPU up by canonical name or alias (case-insensitive).
pub fn gpu(name: &str) -> Option<&'static GpuSpec> {
    let wanted = name.to_ascii_lowercase();
    GPUS.iter().find(|g| g.name == wanted || g.aliases.iter().any(|a| *a == wanted))
}

/// The canonical names in the catalog, for error messages.
pub fn gpu_names() -> Vec<&'static str> {
    GPUS.iter().map(|g| g.name).collect()
}

/// An intra-node GPU interconnect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interconnect {
    /// Name.
    pub name: &'static str,
    /// Per-GPU bandwidth, GB/s (one direction).
    pub bandwidth_gbps: f64,
    /// Where the figure comes from.
    pub source: &'static str,
}

/// PCIe 3.0 x16 (most servers in the public traces).
pub const PCIE3_X16: Interconnect = Interconnect {
    name: "pcie3-x16",
    bandwidth_gbps: 15.75,
    source: "PCI-SIG PCIe 3.0: 8 GT/s x16 with 128b/130b encoding",
};
/// PCIe 4.0 x16.
pub const PCIE4_X16: Interconnect = Interconnect {
    name: "pcie4-x16",
    bandwidth_gbps: 31.5,
    source: "PCI-SIG PCIe 4.0: 16 GT/s x16 with 128b/130b encoding",
};
/// NVLink 2 (V100 SXM2), per GPU aggregate.
pub const NVLINK2: Interconnect = Interconnect {
    name: "nvlink2",
    bandwidth_gbps: 150.0,
    source: "NVIDIA V100 datasheet: 300 GB/s bidirectional NVLink per GPU",
};
/// NVLink 3 (A100 SXM4), per GPU aggregate.
pub const NVLINK3: Interconnect = Interconnect {
    name: "nvlink3",
    bandwidth_gbps: 300.0,
    source: "NVIDIA A100 datasheet: 600 GB/s bidirectional NVLink per GPU",
};

/// A network interface.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NicSpec {
    /// Name.
    pub name: &'static str,
    /// Line rate, Gbit/s.
    pub line_rate_gbit: f64,
}

/// 10 GbE.
pub const NIC_10GBE: NicSpec = NicSpec { name: "10gbe", line_rate_gbit: 10.0 };
/// 25 GbE.
pub const NIC_25GBE: NicSpec = NicSpec { name: "25gbe", line_rate_gbit: 25.0 };
/// 50 GbE (AWS g4dn.12xlarge, Sia's `aws` nodes).
pub const NIC_50GBE: NicSpec = NicSpec { name: "50gbe", line_rate_gbit: 50.0 };
/// 100 Gb/s InfiniBand EDR.
pub const NIC_IB_EDR: NicSpec = NicSpec { name: "ib-edr", line_rate_gbit: 100.0 };
/// 200 Gb/s InfiniBand HDR.
pub const NIC_IB_HDR: NicSpec = NicSpec { name: "ib-hdr", line_rate_gbit: 200.0 };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_name_and_alias() {
        assert_eq!(gpu("V100").map(|g| g.name), Some("v100"));
        assert_eq!(gpu("2080ti").map(|g| g.name), Some("rtx2080ti"));
        assert!(gpu("tpu").is_none());
    }

    #[test]
    fn catalog_is_consistent() {
        let names = gpu_names();
        for (i, g) in GPUS.iter().enumerate() {
            assert!(g.memory_gib > 0.0 && g.fp32_tflops > 0.0 && g.tdp_w > 0.0, "{}", g.name);
            assert!(!g.source.is_empty());
            assert!(!names[..i].contains(&g.name), "duplicate {}", g.name);
        }
    }
}
