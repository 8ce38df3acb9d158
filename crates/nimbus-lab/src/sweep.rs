//! Parameter sweeps and shards.
//!
//! A scenario's `[sweep]` table maps dotted keys (as `--set` takes them) to
//! lists of values; the sweep runs the scenario once per point of their
//! Cartesian product (keys in sorted order, the last varying fastest),
//! each point exactly as `--set key=value …` would. A scenario without
//! `[sweep]` is a sweep of one point with no settings.
//!
//! Every run of a sweep has a global index over (point, policy, seed) in
//! canonical order; shard `i` of `n` runs the indices `≡ i (mod n)`, so
//! shards of any count together cover each run exactly once.

use std::path::{Path, PathBuf};

use nimbus_sim::params::{Param, ParamError, Value};

use crate::scenario::{LabError, Overrides, Scenario, fnv1a, parse_with_overrides, read_scenario_text};

/// A value as TOML text that parses back to it (tables: none).
fn toml_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => "nan".into(),
        Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 {
                "inf".into()
            } else {
                "-inf".into()
            }
        }
        // Debug keeps a fraction or an exponent, so the text stays a float.
        Value::Float(f) => format!("{f:?}"),
        Value::Str(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::List(items) => {
            let parts = items.iter().map(|p| toml_text(&p.value)).collect::<Option<Vec<_>>>()?;
            format!("[{}]", parts.join(", "))
        }
        Value::Table(_) => return None,
    })
}

/// The most points a sweep may have.
pub const MAX_POINTS: usize = 10_000;

/// A loaded sweep.
pub struct Sweep {
    /// The scenario file.
    pub path: PathBuf,
    /// Its text (shards carry it so that a merge needs no file).
    pub text: String,
    /// The command line's changes.
    pub overrides: Overrides,
    /// The swept keys, sorted (empty without `[sweep]`).
    pub keys: Vec<String>,
    /// Each point's `(key, value as TOML)` settings, in key order.
    pub points: Vec<Vec<(String, String)>>,
    /// The first point's scenario (the others are prepared one at a time
    /// by [`Sweep::scenario`], so a large sweep never holds them all).
    pub first: Scenario,
    /// A hash of the text, overrides and seeds: shards of different
    /// sweeps never merge.
    pub hash: u64,
}

/// Which runs a shard takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0 ≤ index < count`.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
}

/// The most shards a run may be split into.
pub const MAX_SHARDS: usize = 1_000_000;

impl Shard {
    /// Shard `index` of `count`, checked.
    pub fn new(index: usize, count: usize) -> Result<Shard, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("the shard count must lie in 1..={MAX_SHARDS}, not {count}"));
        }
        if index >= count {
            return Err(format!("shards are numbered 0 to {}, not {index}", count - 1));
        }
        Ok(Shard { index, count })
    }

    /// Parses `i/n`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text.split_once('/').ok_or_else(|| format!("--shard {text:?}: expected i/n, e.g. 0/3"))?;
        let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| format!("--shard {text:?}: {s:?} is not a count"));
        Shard::new(parse(i)?, parse(n)?).map_err(|e| format!("--shard {text:?}: {e}"))
    }

    /// Whether run `global` is this shard's.
    pub fn takes(&self, global: usize) -> bool {
        global % self.count == self.index
    }
}

/// The scenario at one point: the text with the point's settings after
/// the command line's.
fn load_point(
    path: &Path,
    text: &str,
    overrides: &Overrides,
    settings: &[(String, String)],
    k: usize,
) -> Result<Scenario, LabError> {
    let mut point_overrides = overrides.clone();
    point_overrides.set.extend(settings.iter().cloned());
    Scenario::from_text(path, text, &point_overrides).map_err(|e| {
        if settings.is_empty() {
            e
        } else {
            let at = settings.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ");
            LabError::Domain { path: path.to_path_buf(), message: format!("sweep point {k} ({at}): {e}") }
        }
    })
}

impl Sweep {
    /// Loads the scenario file at `path` as a sweep.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Sweep, LabError> {
        let text = read_scenario_text(path)?;
        Self::from_text(path, &text, overrides)
    }

    /// Loads a sweep from a scenario's text.
    pub fn from_text(path: &Path, text: &str, overrides: &Overrides) -> Result<Sweep, LabError> {
        let domain_err = |message: String| LabError::Domain { path: path.to_path_buf(), message };
        // The project's own parser: syntax errors keep their line and column.
        let root = parse_with_overrides(path, text, &overrides.set)?;
        let param_err = |error: ParamError| LabError::Param { path: path.to_path_buf(), error };
        let mut axes: Vec<(String, Vec<String>)> = Vec::new();
        if let Some(sweep) = root.table("sweep").map_err(param_err)? {
            let keys: Vec<String> = sweep.keys().map(str::to_string).collect();
            for key in keys {
                let Some(Param { value: Value::List(values), .. }) = sweep.get(&key) else {
                    return Err(domain_err(format!("[sweep] {key}: expected a list of values, e.g. [1, 2, 4]")));
                };
                if values.is_empty() {
                    return Err(domain_err(format!("[sweep] {key}: the list of values is empty")));
                }
                if key
                    .split('.')
                    .next()
                    .is_some_and(|root| ["name", "domain", "sweep", "policy", "claim", "seeds"].contains(&root))
                {
                    return Err(domain_err(format!(
                        "[sweep] {key}: only workload, cluster and other domain settings can be swept (use --seeds for seeds)"
                    )));
                }
                let texts = values
                    .iter()
                    .map(|v| {
                        toml_text(&v.value)
                            .ok_or_else(|| domain_err(format!("[sweep] {key}: a table cannot be a swept value")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                axes.push((key, texts));
            }
        }
        let count = axes.iter().try_fold(1usize, |n, (_, v)| n.checked_mul(v.len())).unwrap_or(usize::MAX);
        if count > MAX_POINTS {
            return Err(domain_err(format!("[sweep] has {count} points; at most {MAX_POINTS}")));
        }
        let points: Vec<Vec<(String, String)>> = (0..count)
            .map(|p| {
                // Mixed radix, the last key fastest.
                let mut rest = p;
                let mut settings = vec![(String::new(), String::new()); axes.len()];
                for (slot, (key, values)) in settings.iter_mut().zip(&axes).rev() {
                    *slot = (key.clone(), values[rest % values.len()].clone());
                    rest /= values.len();
                }
                settings
            })
            .collect();
        let first = load_point(path, text, overrides, &points[0], 0)?;
        let mut hash_input = text.to_string();
        for (k, v) in &overrides.set {
            hash_input.push_str(&format!("\n--set {k}={v}"));
        }
        hash_input.push_str(&format!("\nseeds={:?}", first.seeds));
        Ok(Sweep {
            path: path.to_path_buf(),
            text: text.to_string(),
            overrides: overrides.clone(),
            keys: axes.into_iter().map(|(k, _)| k).collect(),
            points,
            first,
            hash: fnv1a(hash_input.as_bytes()),
        })
    }

    /// Point `k`'s scenario, prepared now (point 0's is [`Sweep::first`]).
    pub fn scenario(&self, k: usize) -> Result<Scenario, LabError> {
        load_point(&self.path, &self.text, &self.overrides, &self.points[k], k)
    }

    /// Whether the file has a `[sweep]` table.
    pub fn is_sweep(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Runs per point (policies × seeds).
    pub fn runs_per_point(&self) -> usize {
        self.first.policies.len() * self.first.seeds.len()
    }

    /// Runs in all.
    pub fn total_runs(&self) -> usize {
        self.points.len() * self.runs_per_point()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swept_values_print_as_toml_that_reads_back() {
        let text = "a = [1, -2.5, 1e-7, true, \"q\\\"\\\\x\", [3, 4]]\n";
        let root = crate::toml_params::parse(text).expect("parses");
        let Some(Param { value: Value::List(items), .. }) = root.get("a") else { panic!("a list") };
        let printed: Vec<String> = items.iter().map(|p| toml_text(&p.value).expect("no tables")).collect();
        assert_eq!(printed, ["1", "-2.5", "1e-7", "true", "\"q\\\"\\\\x\"", "[3, 4]"]);
        for (p, item) in printed.iter().zip(items) {
            let back = crate::toml_params::parse(&format!("v = {p}")).expect("reads back");
            let value = &back.get("v").expect("v").value;
            assert_eq!(toml_text(value).as_deref(), Some(p.as_str()));
            if !matches!(item.value, Value::List(_)) {
                assert_eq!(value, &item.value);
            }
        }
    }

    #[test]
    fn shards_parse_and_partition() {
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 1, count: 3 }));
        assert!(Shard::parse("3/3").expect_err("out of range").contains("0 to 2"));
        assert!(Shard::parse("0/0").is_err() && Shard::parse("a/2").is_err() && Shard::parse("2").is_err());
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        for run in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.takes(run)).count(), 1);
        }
    }
}
