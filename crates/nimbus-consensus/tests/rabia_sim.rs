//! Rabia under seeded fault schedules ([`nimbus_consensus::twin`]): random
//! message delays (so reordering), up to f replicas crashing at random
//! times (their undelivered messages are lost), clients that retry with
//! another replica after a timeout, and in half the schedules 5% message
//! loss, 5% duplication and two partitions. Every schedule must give agreeing logs,
//! equal stores on replicas that applied the same slots, a linearizable
//! client history, and (liveness) every client finishing within the time
//! bound. A replica that decides on too few votes (a deliberately broken
//! variant) is caught by the same checks.

use nimbus_consensus::linearizability::{Verdict, check};
use nimbus_consensus::rabia::Replica;
use nimbus_consensus::twin::{TwinConfig, run};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// 10,000 schedules by default (about 10 s); `NIMBUS_SCHEDULES` sets the
/// end and `NIMBUS_FIRST_SCHEDULE` the start (to replay one seed).
#[test]
fn rabia_is_safe_and_live_under_seeded_fault_schedules() {
    for seed in env("NIMBUS_FIRST_SCHEDULE", 0)..env("NIMBUS_SCHEDULES", 10_000) {
        let (n, f) = [(3, 1), (5, 2), (7, 3)][seed as usize % 3];
        // Every other pair of schedules also loses 5% and duplicates 5% of
        // messages and cuts a replica off twice.
        let lossy = seed % 4 >= 2;
        let config = TwinConfig {
            loss: if lossy { 0.05 } else { 0.0 },
            duplicate: if lossy { 0.05 } else { 0.0 },
            partitions: if lossy { 2 } else { 0 },
            ..TwinConfig::small(n, f)
        };
        let o = run(&config, seed).expect("valid configuration");
        assert!(o.logs_agree, "seed {seed}: replicas decided different requests in a slot");
        assert!(o.stores_agree, "seed {seed}: replicas that applied the same slots differ");
        assert!(o.finished, "seed {seed}: a client did not finish within the time bound: {:#?}", o.summaries);
        assert_eq!(check(&o.history, None, 5_000_000), Verdict::Linearizable, "seed {seed}");
    }
}

#[test]
fn impossible_configurations_are_errors() {
    assert!(Replica::new(0, 4, 2).is_err());
    assert!(Replica::new(3, 3, 1).is_err());
    assert!(Replica::new(2, 3, 1).is_ok());
    assert!(run(&TwinConfig::small(4, 2), 0).is_err());
}

/// The checks bite: deciding on a single vote instead of f + 1 breaks
/// agreement in some schedules, and the same checks report it.
#[test]
fn a_replica_deciding_on_too_few_votes_is_caught() {
    let broken = TwinConfig { decide_at: Some(1), ..TwinConfig::small(5, 2) };
    let caught = (0..2_000u64).find(|&seed| {
        let o = run(&broken, seed).expect("valid configuration");
        !o.logs_agree || !o.stores_agree || check(&o.history, None, 5_000_000) != Verdict::Linearizable
    });
    assert!(caught.is_some(), "no schedule exposed the broken decision rule");
}

/// Same configuration and seed, same run.
#[test]
fn runs_are_deterministic() {
    let a = run(&TwinConfig::small(5, 2), 7).expect("valid");
    let b = run(&TwinConfig::small(5, 2), 7).expect("valid");
    assert_eq!(a.history, b.history);
    assert_eq!((a.end_ns, a.messages_sent, a.bytes_sent), (b.end_ns, b.messages_sent, b.bytes_sent));
    assert_eq!(a.completed, 48);
}

/// Racos (n = 5, f = 1, RS(3, 2); and n = 3, f = 1, RS(1, 2)) under the
/// same kinds of schedules (a fifth as many: coding makes them slower),
/// with 100-byte values so coding is exercised.
#[test]
fn racos_is_safe_and_live_under_seeded_fault_schedules() {
    use nimbus_consensus::twin::run_racos;
    for seed in env("NIMBUS_FIRST_SCHEDULE", 0)..env("NIMBUS_SCHEDULES", 10_000) / 5 {
        let (n, f, data) = [(3, 1, 1), (5, 1, 3)][seed as usize % 2];
        let lossy = seed % 4 >= 2;
        let config = TwinConfig {
            loss: if lossy { 0.05 } else { 0.0 },
            duplicate: if lossy { 0.05 } else { 0.0 },
            partitions: if lossy { 2 } else { 0 },
            value_bytes: 100,
            ..TwinConfig::small(n, f)
        };
        let o = run_racos(&config, seed, data).expect("valid configuration");
        assert!(o.logs_agree, "seed {seed}: replicas decided different requests in a slot");
        assert!(o.stores_agree, "seed {seed}: replicas that applied the same slots differ");
        assert!(o.finished, "seed {seed}: a client did not finish within the time bound: {:#?}", o.summaries);
        assert_eq!(check(&o.history, None, 5_000_000), Verdict::Linearizable, "seed {seed}");
    }
}

/// Large values: Racos' replicas send far fewer bytes than full-copy Rabia
/// (shards of V/3 instead of V in every forward, proposal and decision).
#[test]
fn racos_sends_fewer_bytes_than_full_copy_rabia_at_64_kib() {
    use nimbus_consensus::twin::run_racos;
    let config = TwinConfig { max_crashes: 0, value_bytes: 64 * 1024, ..TwinConfig::small(5, 1) };
    let rabia = run(&config, 3).expect("valid");
    let racos = run_racos(&config, 3, 3).expect("valid");
    assert!(rabia.finished && racos.finished);
    let total = |o: &nimbus_consensus::twin::Outcome| o.bytes_sent.iter().sum::<u64>() as f64 / o.completed as f64;
    let ratio = total(&racos) / total(&rabia);
    eprintln!("bytes per operation: Rabia {:.0}, Racos {:.0} (x{ratio:.3})", total(&rabia), total(&racos));
    assert!(ratio < 0.25, "{ratio}");
}

/// NICs serialise messages: with 64 KiB values a 10 GbE NIC slows full-copy
/// Rabia more than Racos, whose replicas send shards and descriptors.
#[test]
fn nic_bandwidth_slows_full_copy_more_than_erasure_coding() {
    use nimbus_consensus::twin::run_racos;
    let base = TwinConfig { max_crashes: 0, value_bytes: 64 * 1024, ..TwinConfig::small(5, 1) };
    let nic = TwinConfig { nic_bytes_per_s: Some(1.25e9), ..base };
    let (rabia, rabia_nic) = (run(&base, 5).expect("valid"), run(&nic, 5).expect("valid"));
    let (racos, racos_nic) = (run_racos(&base, 5, 3).expect("valid"), run_racos(&nic, 5, 3).expect("valid"));
    assert!(rabia_nic.finished && racos_nic.finished);
    let slowdown =
        |a: &nimbus_consensus::twin::Outcome, b: &nimbus_consensus::twin::Outcome| b.end_ns as f64 / a.end_ns as f64;
    assert!(slowdown(&rabia, &rabia_nic) > 1.2, "{}", slowdown(&rabia, &rabia_nic));
    assert!(slowdown(&racos, &racos_nic) < slowdown(&rabia, &rabia_nic));
    assert!(racos_nic.end_ns < rabia_nic.end_ns);
}

/// The leader-based baselines (steady state: no crashes, loss or
/// partitions, which they cannot survive without failover) under random
/// delays: agreeing logs, equal stores, linearizable histories.
#[test]
fn leader_baselines_are_linearizable_in_steady_state() {
    use nimbus_consensus::twin::run_leader;
    for seed in 0..400u64 {
        let coded = [None, Some(3)][seed as usize % 2];
        let config = TwinConfig { max_crashes: 0, value_bytes: 100, ..TwinConfig::small(5, 1) };
        let o = run_leader(&config, seed, coded).expect("valid configuration");
        assert!(o.logs_agree && o.stores_agree, "seed {seed}");
        assert!(o.finished, "seed {seed}: {:#?}", o.summaries);
        assert_eq!(check(&o.history, None, 5_000_000), Verdict::Linearizable, "seed {seed}");
    }
    assert!(run_leader(&TwinConfig::small(5, 2), 0, Some(3)).is_err(), "RS(3,2) quorums cannot survive 2 crashes");
}
