//! The replication protocols a scenario can compare, with their
//! parameters: Racos (the paper's system) and its baselines.

use nimbus_sim::params::{ParamError, Params, round_to_u64};

use crate::rabia::RabiaConfig;
use crate::racos::RacosConfig;
use crate::twin::ProtocolChoice;

/// What a protocol's parameters are checked against.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    /// Replicas.
    pub n: usize,
    /// Crashes tolerated.
    pub f: usize,
    /// The scenario injects faults (crashes, loss, partitions).
    pub faults: bool,
    /// The workload has scans.
    pub scans: bool,
}

/// A protocol as listed by `nimbus list consensus`.
pub struct PolicyInfo {
    /// Name in scenarios.
    pub name: &'static str,
    /// `paper` or `baseline`.
    pub kind: &'static str,
    /// Citation.
    pub source: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Parameters.
    pub params: &'static [&'static str],
    /// Builds it for a cluster.
    pub build: fn(&Params, &Env) -> Result<ProtocolChoice, ParamError>,
}

/// A memory budget written in MiB (at most 1 TiB), as bytes.
#[warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // user input: checked conversions only
fn mib(p: &Params, key: &str, default_bytes: usize) -> Result<usize, ParamError> {
    let mib = p.f64_in(key, (default_bytes >> 20) as f64, 0.0..=1_048_576.0)?;
    Ok(round_to_u64(mib * 1_048_576.0).and_then(|b| usize::try_from(b).ok()).unwrap_or(usize::MAX))
}

#[warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // user input: checked conversions only
fn rabia_config(p: &Params) -> Result<RabiaConfig, ParamError> {
    let d = RabiaConfig::default();
    Ok(RabiaConfig {
        max_batch: p.usize_in("max_batch", d.max_batch, 1..=100_000)?,
        fast_path: p.bool_or("fast_path", d.fast_path)?,
        retain_bytes: mib(p, "retain_mib", d.retain_bytes)?,
    })
}

const RABIA_PARAMS: &[&str] = &["max_batch", "fast_path", "retain_mib"];
const RACOS_PARAMS: &[&str] = &["data", "cache_mib", "garbage_mib", "max_batch", "fast_path", "retain_mib"];

fn rabia(p: &Params, _env: &Env) -> Result<ProtocolChoice, ParamError> {
    let config = rabia_config(p)?;
    p.finish(RABIA_PARAMS)?;
    Ok(ProtocolChoice::Rabia(config))
}

/// Data shards: `data`, by default n − 2f (the most that leaves data + f
/// shards after f crashes); checked against the cluster.
#[warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // user input: checked conversions only
fn data_shards(p: &Params, env: &Env) -> Result<usize, ParamError> {
    let most = env.n.saturating_sub(2 * env.f);
    let data = p.u64_or("data", most as u64)?;
    if data == 0 || data > most as u64 {
        return Err(p.error(
            "data",
            format!(
                "must be in 1..={most} for n = {} and f = {} (data + f shards must survive f crashes)",
                env.n, env.f
            ),
        ));
    }
    Ok(usize::try_from(data).unwrap_or(most))
}

fn racos(p: &Params, env: &Env) -> Result<ProtocolChoice, ParamError> {
    if env.scans {
        return Err(p.error("name", "racos does not run scans (YCSB workload E); drop it or the scans"));
    }
    let data = data_shards(p, env)?;
    let d = RacosConfig::new(data);
    let config = RacosConfig {
        data,
        cache_bytes: mib(p, "cache_mib", d.cache_bytes)?,
        garbage_bytes: mib(p, "garbage_mib", d.garbage_bytes)?,
        rabia: rabia_config(p)?,
        unsafe_ack_before_stored: false,
    };
    p.finish(RACOS_PARAMS)?;
    Ok(ProtocolChoice::Racos(config))
}

fn steady_state_only(p: &Params, env: &Env, name: &str) -> Result<(), ParamError> {
    if env.faults {
        return Err(p.error(
            "name",
            format!("{name} models the leader's steady state only (no election or recovery): run it without [faults]"),
        ));
    }
    Ok(())
}

fn multi_paxos(p: &Params, env: &Env) -> Result<ProtocolChoice, ParamError> {
    steady_state_only(p, env, "multi-paxos")?;
    p.finish(&[])?;
    Ok(ProtocolChoice::Leader { coded: None })
}

fn rs_paxos(p: &Params, env: &Env) -> Result<ProtocolChoice, ParamError> {
    steady_state_only(p, env, "rs-paxos")?;
    let data = data_shards(p, env)?;
    p.finish(&["data"])?;
    Ok(ProtocolChoice::Leader { coded: Some(data) })
}

/// Every protocol.
pub static REGISTRY: &[PolicyInfo] = &[
    PolicyInfo {
        name: "racos",
        kind: "paper",
        source: "Racos, SoCC'24 (erasure-coded SMR on leaderless Rabia)",
        summary: "the receiving replica Reed-Solomon-codes each value, one shard per replica; Rabia orders descriptors",
        params: RACOS_PARAMS,
        build: racos,
    },
    PolicyInfo {
        name: "rabia",
        kind: "baseline",
        source: "Pan et al., SOSP'21 (Rabia)",
        summary: "leaderless full-copy SMR: batches forwarded to all, randomized binary consensus per slot",
        params: RABIA_PARAMS,
        build: rabia,
    },
    PolicyInfo {
        name: "multi-paxos",
        kind: "baseline",
        source: "Lamport, Paxos Made Simple (2001); steady-state Multi-Paxos/Raft",
        summary: "a fixed leader sends every full value to all followers, commits on a majority",
        params: &[],
        build: multi_paxos,
    },
    PolicyInfo {
        name: "rs-paxos",
        kind: "baseline",
        source: "Mu et al., HPDC'14 (RS-Paxos); CRaft, FAST'20",
        summary: "a fixed leader codes each value and sends one shard per follower, commits on ceil((n+data)/2)",
        params: &["data"],
        build: rs_paxos,
    },
];

/// A protocol by name.
pub fn find(name: &str) -> Option<&'static PolicyInfo> {
    REGISTRY.iter().find(|p| p.name == name)
}
