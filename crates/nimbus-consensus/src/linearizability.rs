//! A linearizability checker for key-value histories.
//!
//! A history is what clients saw: each operation's invocation and response
//! times and its result. It is linearizable when every operation can be
//! placed at one instant between its invocation and its response so that
//! the results are those of a sequential register per key. Keys are
//! independent, so the history is split per key (linearizability is
//! compositional) and each part is checked separately.
//!
//! When every write of a key writes a distinct value (the twin's do), a
//! polynomial test decides it (the zone characterisation of Gibbons and
//! Korach, and Golab, Li and Shah): a value's write and the reads that
//! returned it form a cluster, contiguous in any linearization; a
//! read-modify-write that read value u and wrote v makes v's cluster
//! follow u's directly, so chains of such clusters form blocks whose inner
//! order is fixed. Block X must precede block Y when some operation of X
//! returned before some operation of Y was invoked, i.e. when
//! min-response(X) < max-invocation(Y); the history is linearizable iff
//! inside every block the order holds and no two blocks must each precede
//! the other (no two forward zones overlap and no backward zone lies
//! inside a forward zone), checked in O(n log n) per key.
//!
//! Otherwise it falls back to Wing and Gong's depth-first search over the
//! next operation to linearize, restricted to operations invoked before
//! every remaining operation's response, with Lowe's memoisation of (set
//! of linearized operations, register value) so no configuration is
//! explored twice. The search is exponential in the worst case;
//! `step_limit` bounds it and an exhausted search is reported as
//! [`Verdict::Unknown`], never as a pass.
//!
//! An operation without a response (its client crashed or gave up) may or
//! may not have taken effect: a write nobody read is left out, one read is
//! placed with an unbounded response, and an unanswered read tells nothing.
//! Scans span keys and are not checked.

use std::collections::{BTreeMap, BTreeSet};

/// What an operation did to its key, with values as identities (e.g. a
/// hash of the bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A read that returned this value (`None`: absent).
    Read(Option<u64>),
    /// A write of this value.
    Write(u64),
    /// A read-modify-write that wrote the first and returned the second.
    ReadWrite(u64, Option<u64>),
}

/// One client operation on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Key.
    pub key: String,
    /// Invocation time.
    pub call: u64,
    /// Response time (`None`: never answered).
    pub ret: Option<u64>,
    /// What it did and saw. For an unanswered read the result is unknown
    /// and irrelevant; for an unanswered write it may have happened.
    pub action: Action,
}

/// The checker's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A linearization exists for every key.
    Linearizable,
    /// No linearization exists for this key.
    Violation {
        /// The key.
        key: String,
        /// Its operations, in invocation order.
        operations: Vec<Operation>,
    },
    /// The search for this key exceeded the step limit.
    Unknown {
        /// The key.
        key: String,
    },
}

/// Checks a history, keys in order; `initial` is every key's value before
/// the history (`None`: absent).
pub fn check(history: &[Operation], initial: Option<u64>, step_limit: u64) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    for (key, mut ops) in by_key {
        ops.sort_by_key(|o| (o.call, o.ret.unwrap_or(u64::MAX)));
        let verdict = zones(&ops, initial).map(Some).unwrap_or_else(|| check_register(&ops, initial, step_limit));
        match verdict {
            Some(true) => {}
            Some(false) => {
                return Verdict::Violation { key: key.to_string(), operations: ops.into_iter().cloned().collect() };
            }
            None => return Verdict::Unknown { key: key.to_string() },
        }
    }
    Verdict::Linearizable
}

/// The same verdict by the exhaustive search alone (to cross-check the
/// zone test).
pub fn check_by_search(history: &[Operation], initial: Option<u64>, step_limit: u64) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    for (key, mut ops) in by_key {
        ops.sort_by_key(|o| (o.call, o.ret.unwrap_or(u64::MAX)));
        match check_register(&ops, initial, step_limit) {
            Some(true) => {}
            Some(false) => {
                return Verdict::Violation { key: key.to_string(), operations: ops.into_iter().cloned().collect() };
            }
            None => return Verdict::Unknown { key: key.to_string() },
        }
    }
    Verdict::Linearizable
}

/// A value's cluster: its write and the reads that returned it.
#[derive(Debug, Clone, Default)]
struct Cluster {
    /// Its write's invocation (0 for the initial value's virtual write).
    writer_call: u64,
    /// Earliest response and latest invocation of its operations.
    min_ret: u64,
    max_call: u64,
    /// Read responses (each must follow the write's invocation).
    read_rets: Vec<u64>,
    answered_writer: bool,
    pred: Option<usize>,
    succ: Option<usize>,
}

/// The zone test for one key's operations; `None` when two writes write
/// the same value (the test needs distinct values).
fn zones(ops: &[&Operation], initial: Option<u64>) -> Option<bool> {
    // Times shift by one, so the initial value's virtual write at 0
    // precedes every operation; no response is "never".
    let call = |o: &Operation| o.call.saturating_add(1);
    let ret = |o: &Operation| o.ret.map_or(u64::MAX, |r| r.saturating_add(1));
    let mut clusters = vec![Cluster { answered_writer: true, ..Cluster::default() }];
    let mut of_value: BTreeMap<u64, usize> = BTreeMap::new();
    for o in ops {
        if let Action::Write(v) | Action::ReadWrite(v, _) = o.action {
            if Some(v) == initial || of_value.contains_key(&v) {
                return None;
            }
            of_value.insert(v, clusters.len());
            clusters.push(Cluster {
                writer_call: call(o),
                min_ret: ret(o),
                max_call: call(o),
                answered_writer: o.ret.is_some(),
                ..Cluster::default()
            });
        }
    }
    let cluster_of =
        |seen: Option<u64>| if seen == initial { Some(0) } else { seen.and_then(|v| of_value.get(&v).copied()) };
    let mut used = vec![false; clusters.len()];
    used[0] = true;
    for o in ops.iter().filter(|o| o.ret.is_some()) {
        let (seen, written) = match o.action {
            Action::Read(seen) => (seen, None),
            Action::ReadWrite(v, seen) => (seen, of_value.get(&v).copied()),
            Action::Write(_) => continue,
        };
        // A value nobody wrote was returned.
        let Some(c) = cluster_of(seen) else { return Some(false) };
        used[c] = true;
        match written {
            None => {
                let k = &mut clusters[c];
                k.read_rets.push(ret(o));
                k.min_ret = k.min_ret.min(ret(o));
                k.max_call = k.max_call.max(call(o));
            }
            Some(w) => {
                // Two read-modify-writes cannot both follow one value.
                if clusters[c].succ.is_some() || c == w {
                    return Some(false);
                }
                clusters[c].succ = Some(w);
                clusters[w].pred = Some(c);
                used[w] = true;
            }
        }
    }
    // Writes that were never answered nor read did not happen.
    for (i, k) in clusters.iter().enumerate() {
        if k.answered_writer {
            used[i] = true;
        }
    }
    // Inside a cluster the write precedes its reads.
    if clusters.iter().zip(&used).any(|(k, u)| *u && k.read_rets.iter().any(|&r| r < k.writer_call)) {
        return Some(false);
    }
    // Blocks: chains from each cluster without a predecessor.
    let mut blocks: Vec<(u64, u64)> = Vec::new();
    let mut seen_in_chain = vec![false; clusters.len()];
    for head in (0..clusters.len()).filter(|&i| used[i] && clusters[i].pred.is_none()) {
        let (mut min_ret, mut max_call) = (u64::MAX, 0u64);
        let mut at = Some(head);
        while let Some(i) = at {
            if seen_in_chain[i] {
                return Some(false);
            }
            seen_in_chain[i] = true;
            let k = &clusters[i];
            // A later cluster of the chain cannot have had to precede an
            // earlier one.
            if k.min_ret < max_call {
                return Some(false);
            }
            min_ret = min_ret.min(k.min_ret);
            max_call = max_call.max(k.max_call);
            at = k.succ;
        }
        blocks.push((min_ret, max_call));
    }
    // A cycle of read-modify-writes has no head.
    if (0..clusters.len()).any(|i| used[i] && !seen_in_chain[i]) {
        return Some(false);
    }
    // Forward zones (min response before max invocation) must not overlap.
    let mut forward: Vec<(u64, u64)> = blocks.iter().copied().filter(|(a, b)| a < b).collect();
    forward.sort_unstable();
    if forward.windows(2).any(|w| w[1].0 < w[0].1) {
        return Some(false);
    }
    // No backward zone [max invocation, min response] inside a forward one.
    for &(a, b) in blocks.iter().filter(|(a, b)| a >= b) {
        let i = forward.partition_point(|&(fa, _)| fa < b);
        if i > 0 && a < forward[i - 1].1 {
            return Some(false);
        }
    }
    Some(true)
}

/// The register's next value and whether `action` is consistent with it.
fn step(state: Option<u64>, action: Action, answered: bool) -> Option<Option<u64>> {
    match action {
        Action::Read(seen) => (!answered || seen == state).then_some(state),
        Action::Write(v) => Some(Some(v)),
        Action::ReadWrite(v, seen) => (!answered || seen == state).then_some(Some(v)),
    }
}

/// Searches one key's operations (sorted by invocation); `None` when the
/// step limit is hit.
fn check_register(ops: &[&Operation], initial: Option<u64>, step_limit: u64) -> Option<bool> {
    let n = ops.len();
    let words = n.div_ceil(64);
    let answered: Vec<bool> = ops.iter().map(|o| o.ret.is_some()).collect();
    let must = answered.iter().filter(|&&a| a).count();
    let mut seen: BTreeSet<(Vec<u64>, Option<u64>)> = BTreeSet::new();
    let mut steps = 0u64;
    // Iterative DFS: (linearized set, state, answered count linearized).
    let mut stack: Vec<(Vec<u64>, Option<u64>, usize)> = vec![(vec![0u64; words], initial, 0)];
    while let Some((done, state, count)) = stack.pop() {
        if count == must {
            return Some(true);
        }
        steps += 1;
        if steps > step_limit {
            return None;
        }
        let is_done = |i: usize| done[i / 64] >> (i % 64) & 1 == 1;
        // The earliest response among answered operations not yet placed:
        // only operations invoked before it may go next.
        let horizon = (0..n).filter(|&i| !is_done(i)).filter_map(|i| ops[i].ret).min().unwrap_or(u64::MAX);
        for i in (0..n).rev() {
            if is_done(i) || ops[i].call > horizon {
                continue;
            }
            let Some(next) = step(state, ops[i].action, answered[i]) else { continue };
            let mut placed = done.clone();
            placed[i / 64] |= 1 << (i % 64);
            if seen.insert((placed.clone(), next)) {
                stack.push((placed, next, count + usize::from(answered[i])));
            }
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: u64, ret: Option<u64>, action: Action) -> Operation {
        Operation { key: "k".into(), call, ret, action }
    }

    const LIMIT: u64 = 1_000_000;

    #[test]
    fn sequential_and_concurrent_histories_by_hand() {
        use Action::*;
        // put 1, then get 1: fine; get 2: never written.
        let ok = [op(0, Some(1), Write(1)), op(2, Some(3), Read(Some(1)))];
        assert_eq!(check(&ok, None, LIMIT), Verdict::Linearizable);
        let bad = [op(0, Some(1), Write(1)), op(2, Some(3), Read(Some(2)))];
        assert!(matches!(check(&bad, None, LIMIT), Verdict::Violation { .. }));
        // Concurrent writes of 1 and 2: a later read may see either, and two
        // later reads must agree on the order.
        let w = [op(0, Some(5), Write(1)), op(1, Some(6), Write(2))];
        for seen in [1, 2] {
            let h: Vec<Operation> = w.iter().cloned().chain([op(7, Some(8), Read(Some(seen)))]).collect();
            assert_eq!(check(&h, None, LIMIT), Verdict::Linearizable);
        }
        let flip: Vec<Operation> =
            w.iter().cloned().chain([op(7, Some(8), Read(Some(2))), op(9, Some(10), Read(Some(1)))]).collect();
        assert!(matches!(check(&flip, None, LIMIT), Verdict::Violation { .. }));
        // A stale read: put 1 done, put 2 done, then get 1.
        let stale = [op(0, Some(1), Write(1)), op(2, Some(3), Write(2)), op(4, Some(5), Read(Some(1)))];
        assert!(matches!(check(&stale, None, LIMIT), Verdict::Violation { .. }));
        // A read overlapping a write may see the old or the new value.
        let overlap = [op(0, Some(1), Write(1)), op(2, Some(6), Write(2)), op(3, Some(4), Read(Some(1)))];
        assert_eq!(check(&overlap, None, LIMIT), Verdict::Linearizable);
    }

    #[test]
    fn unanswered_writes_may_or_may_not_have_happened() {
        use Action::*;
        // A write whose client crashed, then reads that see it, or not.
        let seen = [op(0, None, Write(5)), op(3, Some(4), Read(Some(5)))];
        assert_eq!(check(&seen, None, LIMIT), Verdict::Linearizable);
        let unseen = [op(0, None, Write(5)), op(3, Some(4), Read(None))];
        assert_eq!(check(&unseen, None, LIMIT), Verdict::Linearizable);
        // Once seen it cannot be unseen (no other write).
        let flicker = [op(0, None, Write(5)), op(3, Some(4), Read(Some(5))), op(5, Some(6), Read(None))];
        assert!(matches!(check(&flicker, None, LIMIT), Verdict::Violation { .. }));
        // Read-modify-writes return what was there.
        let rmw = [op(0, Some(1), Write(1)), op(2, Some(3), ReadWrite(2, Some(1))), op(4, Some(5), Read(Some(2)))];
        assert_eq!(check(&rmw, None, LIMIT), Verdict::Linearizable);
        let lost = [op(0, Some(1), Write(1)), op(2, Some(3), ReadWrite(2, None))];
        assert!(matches!(check(&lost, None, LIMIT), Verdict::Violation { .. }));
    }

    #[test]
    fn keys_are_checked_independently_and_the_step_limit_is_reported() {
        use Action::*;
        let mut h = vec![op(0, Some(1), Write(1))];
        h.push(Operation { key: "other".into(), call: 0, ret: Some(1), action: Read(Some(9)) });
        assert_eq!(check(&h, None, LIMIT), Verdict::Violation { key: "other".into(), operations: vec![h[1].clone()] });
        // Many fully concurrent writes and a read of a value nobody wrote:
        // the search with a tiny limit answers "unknown", not a pass; the
        // zone test (distinct values) decides it at once.
        let mut wide: Vec<Operation> = (0..14).map(|v| op(0, Some(100), Write(v))).collect();
        wide.push(op(200, Some(201), Read(Some(99))));
        assert_eq!(check_by_search(&wide, None, 50), Verdict::Unknown { key: "k".into() });
        assert!(matches!(check_by_search(&wide, None, LIMIT), Verdict::Violation { .. }));
        assert!(matches!(check(&wide, None, 50), Verdict::Violation { .. }));
        // Two writes of one value: the zone test does not apply, the
        // search decides.
        let same = [op(0, Some(1), Write(5)), op(2, Some(3), Write(5)), op(4, Some(5), Read(Some(5)))];
        assert_eq!(check(&same, None, LIMIT), Verdict::Linearizable);
    }
}
