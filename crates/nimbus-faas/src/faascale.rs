//! Faascale (SoCC'24): vertical memory scaling of microVMs, the paper's
//! feasibility analysis on Azure 2019-style per-minute counts.
//!
//! For one function with `c[m]` invocations in minute `m` and mean
//! execution time `d`, the instances busy in that minute are
//! `n[m] = ⌈c[m]·d / 60 s⌉`. With keep-alive of `w` minutes:
//! - horizontal scaling (one microVM per instance) cold-starts every
//!   instance above the most it kept alive: `max(0, n[m] − max(n[m−w..m−1]))`;
//! - vertical scaling (one microVM grown and shrunk in memory blocks)
//!   cold-starts only when it had nothing alive: `n[m] > 0` and
//!   `max(n[m−w..m−1]) = 0`.
//!
//! Only this analysis is implemented; the microVM memory-block mechanism
//! (pre-populated, function-bound blocks) and its latency model are not.

/// Instances busy in each minute.
pub fn instances_per_minute(counts: &[u32], mean_exec_ms: f64) -> Vec<u64> {
    counts.iter().map(|&c| (f64::from(c) * mean_exec_ms / 60_000.0).ceil().max(0.0) as u64).collect()
}

/// (horizontal, vertical) cold starts with keep-alive of `window` minutes.
pub fn cold_starts(instances: &[u64], window: usize) -> (u64, u64) {
    let (mut horizontal, mut vertical) = (0u64, 0u64);
    for (m, &need) in instances.iter().enumerate() {
        let alive = instances[m.saturating_sub(window)..m].iter().copied().max().unwrap_or(0);
        horizontal += need.saturating_sub(alive);
        if need > 0 && alive == 0 {
            vertical += 1;
        }
    }
    (horizontal, vertical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_starts_by_hand() {
        // 2 instances, idle, 3, 1, idle x3, 2 with a 1-minute window.
        let n = [2, 0, 3, 1, 0, 0, 0, 2];
        // Horizontal: 2 (m0) + 3 (m2, nothing alive at m1) + 0 + 0 + 2 (m7).
        // Vertical: m0, m2, m7.
        assert_eq!(cold_starts(&n, 1), (7, 3));
        // A 2-minute window keeps m0's instances through m2: 2 + 1 + 2.
        assert_eq!(cold_starts(&n, 2), (5, 2));
        assert_eq!(instances_per_minute(&[5, 0, 61], 1000.0), vec![1, 0, 2]);
    }
}
