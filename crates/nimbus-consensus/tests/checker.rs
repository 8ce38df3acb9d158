//! The linearizability checker against histories with a known answer:
//! histories produced by an atomic register (each operation takes effect at
//! one instant inside its interval) always pass; the same history with one
//! read changed to a value nobody wrote always fails.

use nimbus_consensus::linearizability::{Action, Operation, Verdict, check};
use proptest::prelude::*;

/// Builds a history from (call, length, point offset, kind, key) tuples:
/// the operation takes effect at call + offset, inside [call, call + len].
fn history(spec: &[(u64, u64, u64, u8, u8)]) -> Vec<Operation> {
    let mut ops: Vec<(u64, usize)> = spec.iter().enumerate().map(|(i, s)| (s.0 + s.2.min(s.1), i)).collect();
    ops.sort();
    let mut registers = [None::<u64>; 3];
    let mut out = vec![None; spec.len()];
    for (_, i) in ops {
        let (call, len, _, kind, key) = spec[i];
        let reg = &mut registers[key as usize % 3];
        let value = 1000 + i as u64;
        let action = match kind % 3 {
            0 => Action::Read(*reg),
            1 => {
                *reg = Some(value);
                Action::Write(value)
            }
            _ => {
                let old = *reg;
                *reg = Some(value);
                Action::ReadWrite(value, old)
            }
        };
        out[i] = Some(Operation { key: format!("k{}", key % 3), call, ret: Some(call + len), action });
    }
    out.into_iter().flatten().collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6e69_6d62_7573),
        ..ProptestConfig::default()
    })]

    #[test]
    fn atomic_histories_pass_and_corrupted_reads_fail(
        spec in prop::collection::vec((0u64..50, 1u64..20, 0u64..20, 0u8..3, 0u8..3), 1..24),
        victim in any::<prop::sample::Index>(),
    ) {
        let h = history(&spec);
        prop_assert_eq!(check(&h, None, 5_000_000), Verdict::Linearizable);
        let reads: Vec<usize> = h.iter().enumerate().filter(|(_, o)| matches!(o.action, Action::Read(_))).map(|(i, _)| i).collect();
        if !reads.is_empty() {
            let mut bad = h.clone();
            let i = reads[victim.index(reads.len())];
            bad[i].action = Action::Read(Some(7));
            let caught = matches!(check(&bad, None, 5_000_000), Verdict::Violation { .. });
            prop_assert!(caught, "a read of a value never written passed");
        }
    }
}

/// Random histories, linearizable or not: unique values written, reads
/// of any written value (or none), read-modify-writes, unanswered
/// operations. The zone test and the exhaustive search must agree.
fn arbitrary(spec: &[(u64, u64, u8, u8, u8, bool)]) -> Vec<Operation> {
    spec.iter()
        .enumerate()
        .map(|(i, &(call, len, kind, pick, key, answered))| {
            let seen = if pick % 4 == 0 { None } else { Some(1000 + u64::from(pick) % spec.len() as u64) };
            let action = match kind % 3 {
                0 => Action::Read(seen),
                1 => Action::Write(1000 + i as u64),
                _ => Action::ReadWrite(1000 + i as u64, seen),
            };
            let ret = (answered || kind % 3 == 0).then_some(call + len);
            Operation { key: format!("k{}", key % 2), call, ret, action }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7a6f_6e65),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_zone_test_agrees_with_the_exhaustive_search(
        spec in prop::collection::vec((0u64..40, 0u64..15, 0u8..3, 0u8..12, 0u8..2, prop::bool::weighted(0.9)), 1..14),
    ) {
        let h = arbitrary(&spec);
        let fast = check(&h, None, 5_000_000);
        let slow = nimbus_consensus::linearizability::check_by_search(&h, None, 5_000_000);
        prop_assume!(!matches!(slow, Verdict::Unknown { .. }));
        prop_assert_eq!(matches!(fast, Verdict::Linearizable), matches!(slow, Verdict::Linearizable), "{:?}", h);
    }

    #[test]
    fn atomic_histories_with_read_modify_writes_pass_the_zone_test(
        spec in prop::collection::vec((0u64..2_000, 1u64..400, 0u64..400, 0u8..3, 0u8..3), 1..400),
    ) {
        // Long histories only the zone test can afford.
        let h = history(&spec);
        prop_assert_eq!(check(&h, None, 1), Verdict::Linearizable);
    }
}
