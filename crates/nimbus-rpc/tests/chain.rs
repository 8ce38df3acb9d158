//! The loopback chain end to end: every call of every request is answered
//! once per tier under both orders, responses are at least the work on a
//! request's critical path, and requests are drawn identically per seed.

use std::time::Duration;

use nimbus_rpc::wire::Call;
use nimbus_rpc::{ChainConfig, Order, draw, run};

fn small(order: Order) -> ChainConfig {
    let mut c = ChainConfig {
        tiers: vec![1, 2, 3],
        workers: 2,
        fanout: (1, 3),
        work_mean_ms: 1.0,
        work_sigma: 1.0,
        rate_rps: 1.0,
        requests: 400,
        seed: 7,
        order,
        max_outstanding: 10_000,
        timeout: Duration::from_secs(20),
    };
    c.rate_rps = c.rate_for_load(0.3);
    c
}

fn critical_path_us(c: &Call) -> u64 {
    u64::from(c.work_us) + c.children.iter().map(critical_path_us).max().unwrap_or(0)
}

#[test]
fn every_call_is_answered_once_under_both_orders() {
    for order in [Order::Fcfs, Order::OldestFirst] {
        let config = small(order);
        assert!((config.load() - 0.3).abs() < 1e-9);
        let report = run(&config).expect("runs");
        assert!(!report.overloaded, "{report:?}");
        assert_eq!((report.sent, report.answered, report.lost), (400, 400, 0), "{report:?}");
        assert_eq!(report.calls_issued, report.calls_answered, "{order:?}");
        assert_eq!(report.calls_issued[0], 400);
        assert!(report.hop_us > 0.0 && report.hop_us < 50_000.0, "{report:?}");
        // Every response covers at least its own critical path; the
        // median request's path is well above zero.
        let (_, trees) = draw(&config);
        let mut paths: Vec<u64> = trees.iter().map(critical_path_us).collect();
        paths.sort_unstable();
        let shortest_ms = paths[0] as f64 / 1e3;
        assert!(report.response_ms_p50 >= shortest_ms, "{report:?}");
        assert!(report.response_ms_p99 >= report.response_ms_p50 && report.response_ms_mean > 0.0);
    }
}

#[test]
fn requests_are_drawn_per_seed() {
    let a = draw(&small(Order::Fcfs));
    assert_eq!(a, draw(&small(Order::OldestFirst)));
    let mut other = small(Order::Fcfs);
    other.seed = 8;
    assert_ne!(a.1, draw(&other).1);
    // Fan-out within bounds, tiers in order, services within their tier.
    fn check(c: &Call, tier: usize) {
        let first = [0u16, 1, 3][tier];
        let count = [1u16, 2, 3][tier];
        assert!(c.service >= first && c.service < first + count);
        if tier < 2 {
            assert!((1..=3).contains(&c.children.len()));
        } else {
            assert!(c.children.is_empty());
        }
        for k in &c.children {
            check(k, tier + 1);
        }
    }
    for t in &a.1 {
        check(t, 0);
    }
}

#[test]
fn an_overloaded_chain_stops_the_generator() {
    let mut c = small(Order::Fcfs);
    c.rate_rps = c.rate_for_load(20.0);
    c.requests = 2000;
    c.max_outstanding = 50;
    let report = run(&c).expect("runs");
    assert!(report.overloaded && report.sent < 2000, "{report:?}");
    assert_eq!(report.calls_issued, report.calls_answered);
}

#[test]
fn bad_configurations_are_refused() {
    let base = small(Order::Fcfs);
    for bad in [
        ChainConfig { tiers: vec![], ..base.clone() },
        ChainConfig { tiers: vec![1, 0], ..base.clone() },
        ChainConfig { workers: 0, ..base.clone() },
        ChainConfig { tiers: vec![1, 255], workers: 256, ..base.clone() },
        ChainConfig { fanout: (3, 1), ..base.clone() },
        ChainConfig { work_mean_ms: 0.0, ..base.clone() },
        ChainConfig { rate_rps: f64::NAN, ..base.clone() },
        ChainConfig { requests: 0, ..base.clone() },
        ChainConfig { tiers: vec![1; 5], fanout: (8, 8), ..base.clone() },
    ] {
        assert!(run(&bad).is_err(), "{bad:?}");
    }
}
