//! Up-front estimates of what a run needs: peak memory and the number of
//! events it processes, computed from a prepared scenario before any run
//! starts, so that a scenario that would exhaust the machine's memory or run
//! for days is refused with the reason instead of being killed or left to
//! hang.
//!
//! Each domain computes its own estimate from the quantities that drive its
//! memory (values × clients × replicas, sandboxes, requests, jobs) and names
//! the terms, so a refusal says what to change. Estimates err high: they
//! are bounds for a refusal, not predictions.

/// What one run is expected to need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Estimate {
    /// Peak working memory of the run, bytes.
    pub memory_bytes: u64,
    /// Memory its output holds once it ends, until the results are
    /// written, bytes.
    pub output_bytes: u64,
    /// Events (messages, invocations, iterations, rounds) it processes; an
    /// upper bound where the workload gives one.
    pub events: u64,
    /// The memory terms, named (largest first in [`Estimate::describe`]).
    pub terms: Vec<(String, u64)>,
    /// The event terms, named.
    pub event_terms: Vec<(String, u64)>,
}

impl Estimate {
    /// Adds a named memory term.
    pub fn memory(&mut self, what: impl Into<String>, bytes: u64) {
        self.memory_bytes = self.memory_bytes.saturating_add(bytes);
        self.terms.push((what.into(), bytes));
    }

    /// Adds a named event term.
    pub fn events(&mut self, what: impl Into<String>, count: u64) {
        self.events = self.events.saturating_add(count);
        self.event_terms.push((what.into(), count));
    }

    /// The largest memory terms, for a message.
    pub fn describe_memory(&self) -> String {
        describe(&self.terms, bytes)
    }

    /// The largest event terms, for a message.
    pub fn describe_events(&self) -> String {
        describe(&self.event_terms, count)
    }
}

fn describe(terms: &[(String, u64)], show: impl Fn(u64) -> String) -> String {
    let mut sorted: Vec<&(String, u64)> = terms.iter().filter(|t| t.1 > 0).collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sorted.iter().take(3).map(|(what, n)| format!("{what}: {}", show(*n))).collect::<Vec<_>>().join("; ")
}

/// `a × b × …` in saturating `u64` arithmetic, for estimates from input
/// quantities that may be huge.
pub fn product(factors: &[u64]) -> u64 {
    factors.iter().fold(1u64, |acc, f| acc.saturating_mul(*f))
}

/// `x` (a non-negative estimate computed in floating point) as a
/// saturating `u64`; NaN counts as the largest value, so a broken input
/// is refused rather than let through.
pub fn saturating(x: f64) -> u64 {
    if x.is_nan() {
        return u64::MAX;
    }
    crate::params::round_to_u64(x.max(0.0)).unwrap_or(u64::MAX)
}

/// A count for people: plain below a billion, then `1.8e19`.
pub fn count(n: u64) -> String {
    if n < 1_000_000_000 { n.to_string() } else { format!("{:.2e}", n as f64) }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `16.0 MiB`, `2.3 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Parses a size such as `12G`, `512M`, `1.5GiB`, `4096` (bytes).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 =
        number.trim().parse().map_err(|_| format!("expected a size such as 12G or 512M, found {text:?}"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit {other:?} in {text:?}; use K, M, G or T")),
    };
    let b = value * scale;
    if !(b.is_finite() && b >= 1.0) {
        return Err(format!("expected a positive size, found {text:?}"));
    }
    Ok(saturating(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("12G"), Ok(12 << 30));
        assert_eq!(parse_bytes("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert!(parse_bytes("nan").is_err());
        assert!(parse_bytes("-1G").is_err());
        assert!(parse_bytes("3 parsecs").is_err());
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(16 << 20), "16.0 MiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn terms_add_up_and_saturate() {
        let mut e = Estimate::default();
        e.memory("values", product(&[256, 16 << 20, 7]));
        e.memory("history", 1000);
        e.memory("absurd", product(&[u64::MAX, 2]));
        assert_eq!(e.memory_bytes, u64::MAX);
        assert!(e.describe_memory().starts_with("absurd: "), "{}", e.describe_memory());
        assert_eq!(saturating(f64::NAN), u64::MAX);
        assert_eq!(saturating(-3.0), 0);
        assert_eq!(saturating(1e30), u64::MAX);
    }
}
