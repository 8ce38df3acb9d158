//! A neutral configuration tree for scenarios and policy parameters.
//!
//! Scenario files are TOML, but domains should not depend on a file format:
//! `nimbus-lab` converts the parsed file into [`Params`] (keeping each key's
//! line and column), and each domain reads its own keys with the typed
//! getters below. Every getter names the full key path in its error, and
//! [`Params::finish`] rejects keys nobody read, listing the accepted ones, so
//! a misspelt key is an error rather than a silently ignored setting.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Mutex;

/// The longest duration a key may give: about 31.7 years, so that sums of
/// a few durations stay far from `u64` nanoseconds' limit (584 years).
pub const MAX_DURATION_NS: u64 = 1_000_000_000 * 1_000_000_000;

/// `x` rounded to the nearest integer when that integer is a `u64`;
/// `None` for NaN, infinities, negative values below -0.5 and values at or
/// above 2^64. The one place a float from input becomes an integer.
pub fn round_to_u64(x: f64) -> Option<u64> {
    let r = x.round();
    // 2^64 is exactly representable; every f64 below it converts exactly.
    if (0.0..18_446_744_073_709_551_616.0).contains(&r) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // in range: checked above
        Some(r as u64)
    } else {
        None
    }
}

/// A number for a message: plain when short, in scientific notation when
/// its plain form would run to dozens of digits (1e300 prints 301).
pub fn number(x: f64) -> String {
    let plain = format!("{x}");
    if plain.len() > 16 { format!("{x:e}") } else { plain }
}

/// Where a value was written: 1-based line and column in the source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Line.
    pub line: u32,
    /// Column.
    pub column: u32,
}

/// A configuration value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<Param>),
    /// A nested table.
    Table(Params),
}

impl Value {
    /// The value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
            Value::Table(_) => "a table",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{}", number(*x)),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(items) => write!(f, "a list of {}", items.len()),
            Value::Table(_) => write!(f, "a table"),
        }
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The value.
    pub value: Value,
    /// Its position in the source, when known.
    pub span: Option<Span>,
}

/// A configuration error: which key, where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// Full dotted key path (e.g. `workload.jobs_per_hour`).
    pub key: String,
    /// Where the offending value (or its table) was written.
    pub span: Option<Span>,
    /// What was expected and what was found.
    pub message: String,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = self.span {
            write!(f, "{}:{}: ", span.line, span.column)?;
        }
        write!(f, "key `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ParamError {}

/// A table of named parameters.
#[derive(Debug, Default)]
pub struct Params {
    path: String,
    span: Option<Span>,
    entries: BTreeMap<String, Param>,
    /// Keys read so far (a lock rather than a cell so prepared scenarios can
    /// be shared by the threads that run them).
    used: Mutex<BTreeSet<String>>,
}

impl Clone for Params {
    fn clone(&self) -> Self {
        Params {
            path: self.path.clone(),
            span: self.span,
            entries: self.entries.clone(),
            used: Mutex::new(self.used_keys().clone()),
        }
    }
}

impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.entries == other.entries
    }
}

impl Params {
    /// An empty table at key path `path` (empty for the root).
    pub fn new(path: impl Into<String>, span: Option<Span>) -> Self {
        Params { path: path.into(), span, entries: BTreeMap::new(), used: Mutex::default() }
    }

    fn used_keys(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // A poisoned lock only means another reader panicked; the set is still valid.
        self.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an entry (for builders such as the TOML converter).
    pub fn insert(&mut self, key: impl Into<String>, param: Param) {
        self.entries.insert(key.into(), param);
    }

    /// This table's key path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Where the table starts, when known.
    pub fn span(&self) -> Option<Span> {
        self.span
    }

    /// The full path of a key of this table.
    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    /// Whether the key is present.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Keys present, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// A copy of this table without `excluded` keys (for handing a subset of
    /// a table to another reader); the copy starts with no keys read.
    pub fn without(&self, excluded: &[&str]) -> Params {
        let mut copy = Params::new(self.path.clone(), self.span);
        for (k, v) in &self.entries {
            if !excluded.contains(&k.as_str()) {
                copy.entries.insert(k.clone(), v.clone());
            }
        }
        copy
    }

    /// Sets `dotted.key` to `value`, creating intermediate tables (for
    /// command-line overrides such as `--set workload.jobs_per_hour=3`).
    pub fn set_path(&mut self, dotted: &str, param: Param) -> Result<(), String> {
        match dotted.split_once('.') {
            None => {
                self.entries.insert(dotted.to_string(), param);
                Ok(())
            }
            Some((head, rest)) => {
                let path = self.key_path(head);
                let head_path = path.clone();
                let entry = self
                    .entries
                    .entry(head.to_string())
                    .or_insert_with(|| Param { value: Value::Table(Params::new(path, None)), span: None });
                match &mut entry.value {
                    Value::Table(t) => t.set_path(rest, param),
                    other => Err(format!("`{head_path}` is {}, not a table", other.kind())),
                }
            }
        }
    }

    /// An error about `key` of this table. A value without a position came
    /// from the command line (`--set`), and the message says so.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ParamError {
        let mut message = message.into();
        let span = match self.entries.get(key) {
            Some(p) if p.span.is_none() => {
                message.push_str(" (given with --set)");
                None
            }
            Some(p) => p.span,
            None => self.span,
        };
        ParamError { key: self.key_path(key), span, message }
    }

    /// The raw entry, marking the key as read.
    pub fn get(&self, key: &str) -> Option<&Param> {
        let found = self.entries.get(key);
        if found.is_some() {
            self.used_keys().insert(key.to_string());
        }
        found
    }

    /// A required entry.
    pub fn require(&self, key: &str) -> Result<&Param, ParamError> {
        self.get(key).ok_or_else(|| ParamError {
            key: self.key_path(key),
            span: self.span,
            message: "is required but missing".into(),
        })
    }

    /// An optional number (integers are accepted).
    pub fn f64(&self, key: &str) -> Result<Option<f64>, ParamError> {
        match self.get(key).map(|p| &p.value) {
            None => Ok(None),
            Some(Value::Float(x)) if x.is_finite() => Ok(Some(*x)),
            Some(Value::Int(i)) => Ok(Some(*i as f64)),
            Some(Value::Float(x)) => Err(self.error(key, format!("expected a finite number, found {x}"))),
            Some(other) => Err(self.error(key, format!("expected a finite number, found {}", other.kind()))),
        }
    }

    /// A number with a default.
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, ParamError> {
        Ok(self.f64(key)?.unwrap_or(default))
    }

    /// A number that must be > 0, with a default.
    pub fn positive_f64_or(&self, key: &str, default: f64) -> Result<f64, ParamError> {
        let v = self.f64_or(key, default)?;
        if v <= 0.0 {
            return Err(self.error(key, format!("expected a positive number, found {}", number(v))));
        }
        Ok(v)
    }

    /// A number that must be >= 0, with a default.
    pub fn non_negative_f64_or(&self, key: &str, default: f64) -> Result<f64, ParamError> {
        let v = self.f64_or(key, default)?;
        if v < 0.0 {
            return Err(self.error(key, format!("expected a non-negative number, found {}", number(v))));
        }
        Ok(v)
    }

    /// An optional non-negative integer.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ParamError> {
        match self.get(key).map(|p| &p.value) {
            None => Ok(None),
            Some(Value::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(Value::Int(i)) => Err(self.error(key, format!("expected a non-negative integer, found {i}"))),
            Some(other) => Err(self.error(key, format!("expected a non-negative integer, found {}", other.kind()))),
        }
    }

    /// A non-negative integer with a default.
    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, ParamError> {
        Ok(self.u64(key)?.unwrap_or(default))
    }

    /// A non-negative integer with a default that must lie in `range`
    /// (inclusive); the error states the range.
    pub fn u64_in(&self, key: &str, default: u64, range: RangeInclusive<u64>) -> Result<u64, ParamError> {
        let v = self.u64_or(key, default)?;
        if !range.contains(&v) {
            return Err(self.error(key, format!("must be in {}..={}, found {v}", range.start(), range.end())));
        }
        Ok(v)
    }

    /// [`Params::u64_in`] converted to `u32` (the range must fit).
    pub fn u32_in(&self, key: &str, default: u32, range: RangeInclusive<u32>) -> Result<u32, ParamError> {
        let v = self.u64_in(key, u64::from(default), u64::from(*range.start())..=u64::from(*range.end()))?;
        u32::try_from(v).map_err(|_| self.error(key, format!("{v} does not fit in 32 bits")))
    }

    /// [`Params::u64_in`] converted to `usize` (the range must fit).
    pub fn usize_in(&self, key: &str, default: usize, range: RangeInclusive<usize>) -> Result<usize, ParamError> {
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let v = self.u64_in(key, wide(default), wide(*range.start())..=wide(*range.end()))?;
        usize::try_from(v).map_err(|_| self.error(key, format!("{v} does not fit in this machine's address size")))
    }

    /// A number with a default that must lie in `range` (inclusive).
    pub fn f64_in(&self, key: &str, default: f64, range: RangeInclusive<f64>) -> Result<f64, ParamError> {
        let v = self.f64_or(key, default)?;
        if !range.contains(&v) {
            return Err(self.error(
                key,
                format!("must be in {}..={}, found {}", number(*range.start()), number(*range.end()), number(v)),
            ));
        }
        Ok(v)
    }

    /// A fraction in 0..=1 with a default (probabilities, utilizations).
    pub fn fraction_or(&self, key: &str, default: f64) -> Result<f64, ParamError> {
        self.f64_in(key, default, 0.0..=1.0)
    }

    /// A duration written in a unit of `unit_ns` nanoseconds (the key's
    /// suffix: 1e6 for `_ms`), as whole nanoseconds. It must be finite, not
    /// negative, and at most [`MAX_DURATION_NS`]; with `positive`, it must
    /// also be at least the 1-ns time resolution (a positive value that
    /// rounds to zero would make a tick or a period that never advances).
    pub fn duration_ns_or(&self, key: &str, default: f64, unit_ns: f64, positive: bool) -> Result<u64, ParamError> {
        let v = self.f64_or(key, default)?;
        let ns = v * unit_ns;
        if v < 0.0 {
            return Err(self.error(key, format!("expected a non-negative duration, found {}", number(v))));
        }
        if !ns.is_finite() || ns > MAX_DURATION_NS as f64 {
            return Err(self.error(
                key,
                format!(
                    "{} is longer than the longest simulated span, {} s",
                    number(v),
                    MAX_DURATION_NS / 1_000_000_000
                ),
            ));
        }
        let whole = round_to_u64(ns).unwrap_or(MAX_DURATION_NS);
        if positive && whole == 0 {
            return Err(self.error(
                key,
                format!(
                    "must be positive and at least the 1-ns time resolution ({} in this key's unit), found {}",
                    number(1.0 / unit_ns),
                    number(v)
                ),
            ));
        }
        Ok(whole)
    }

    /// An optional string.
    pub fn str(&self, key: &str) -> Result<Option<&str>, ParamError> {
        match self.get(key).map(|p| &p.value) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(other) => Err(self.error(key, format!("expected a string, found {}", other.kind()))),
        }
    }

    /// An optional string or list of strings (a list of one for a string).
    pub fn str_or_list(&self, key: &str) -> Result<Option<Vec<&str>>, ParamError> {
        match self.get(key).map(|p| &p.value) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(vec![s.as_str()])),
            Some(Value::List(items)) => items
                .iter()
                .map(|p| match &p.value {
                    Value::Str(s) => Ok(s.as_str()),
                    other => Err(self.error(key, format!("expected a list of strings, found {} in it", other.kind()))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => {
                Err(self.error(key, format!("expected a string or a list of strings, found {}", other.kind())))
            }
        }
    }

    /// A required string.
    pub fn required_str(&self, key: &str) -> Result<&str, ParamError> {
        self.require(key)?;
        self.str(key)?.ok_or_else(|| self.error(key, "expected a string"))
    }

    /// A string that must be one of `choices`, with a default.
    pub fn choice_or<'a>(&'a self, key: &str, choices: &[&'a str], default: &'a str) -> Result<&'a str, ParamError> {
        let v = self.str(key)?.unwrap_or(default);
        if choices.contains(&v) {
            Ok(v)
        } else {
            Err(self.error(key, format!("expected one of {}, found {v:?}", choices.join(", "))))
        }
    }

    /// An optional boolean.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ParamError> {
        match self.get(key).map(|p| &p.value) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(key, format!("expected true or false, found {}", other.kind()))),
        }
    }

    /// A boolean with a default.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ParamError> {
        Ok(self.bool(key)?.unwrap_or(default))
    }

    /// An optional nested table.
    pub fn table(&self, key: &str) -> Result<Option<&Params>, ParamError> {
        match self.get(key).map(|p| &p.value) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(t)),
            Some(other) => Err(self.error(key, format!("expected a table, found {}", other.kind()))),
        }
    }

    /// An optional list of tables (`[[key]]` in TOML).
    pub fn tables(&self, key: &str) -> Result<Vec<&Params>, ParamError> {
        match self.get(key).map(|p| &p.value) {
            None => Ok(Vec::new()),
            Some(Value::List(items)) => items
                .iter()
                .enumerate()
                .map(|(i, p)| match &p.value {
                    Value::Table(t) => Ok(t),
                    other => Err(self.error(key, format!("item {i}: expected a table, found {}", other.kind()))),
                })
                .collect(),
            Some(Value::Table(t)) => Ok(vec![t]),
            Some(other) => Err(self.error(key, format!("expected a list of tables, found {}", other.kind()))),
        }
    }

    /// An optional list of numbers.
    pub fn f64_list(&self, key: &str) -> Result<Option<Vec<f64>>, ParamError> {
        match self.get(key).map(|p| &p.value) {
            None => Ok(None),
            Some(Value::List(items)) => items
                .iter()
                .map(|p| match &p.value {
                    Value::Float(x) if x.is_finite() => Ok(*x),
                    Value::Int(i) => Ok(*i as f64),
                    Value::Float(x) => {
                        Err(self.error(key, format!("expected a list of finite numbers, found {x} in it")))
                    }
                    other => Err(self.error(key, format!("expected a list of numbers, found {} in it", other.kind()))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.error(key, format!("expected a list of numbers, found {}", other.kind()))),
        }
    }

    /// An optional list of non-negative integers.
    pub fn u64_list(&self, key: &str) -> Result<Option<Vec<u64>>, ParamError> {
        match self.get(key).map(|p| &p.value) {
            None => Ok(None),
            Some(Value::List(items)) => items
                .iter()
                .map(|p| match &p.value {
                    Value::Int(i) if *i >= 0 => Ok(*i as u64),
                    other => {
                        Err(self.error(key, format!("expected a list of non-negative integers, found {other} in it")))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.error(key, format!("expected a list of integers, found {}", other.kind()))),
        }
    }

    /// Checks that every key was read; an unread key is reported with the
    /// list of keys this table accepts.
    pub fn finish(&self, accepted: &[&str]) -> Result<(), ParamError> {
        let used = self.used_keys();
        for key in self.entries.keys() {
            if !used.contains(key) && !accepted.contains(&key.as_str()) {
                let mut names: Vec<&str> = accepted.to_vec();
                names.sort_unstable();
                return Err(self.error(
                    key,
                    format!(
                        "unknown key; accepted keys here: {}",
                        if names.is_empty() { "none".into() } else { names.join(", ") }
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Params {
        let mut p = Params::new("workload", Some(Span { line: 3, column: 1 }));
        p.insert("rate", Param { value: Value::Float(2.0), span: Some(Span { line: 4, column: 8 }) });
        p.insert("kind", Param { value: Value::Str("gavel".into()), span: None });
        p.insert("typo", Param { value: Value::Int(1), span: Some(Span { line: 5, column: 1 }) });
        p
    }

    #[test]
    fn typed_getters_and_errors_name_the_key() {
        let p = table();
        assert_eq!(p.f64("rate"), Ok(Some(2.0)));
        let err = p.str("rate").expect_err("a float is not a string");
        assert_eq!(err.key, "workload.rate");
        assert_eq!(err.span, Some(Span { line: 4, column: 8 }));
        assert_eq!(err.to_string(), "4:8: key `workload.rate`: expected a string, found a float");
        let missing = p.required_str("path").expect_err("missing");
        assert_eq!(missing.message, "is required but missing");
    }

    #[test]
    fn finish_reports_unread_keys() {
        let p = table();
        p.f64("rate").expect("number");
        p.str("kind").expect("string");
        let err = p.finish(&["rate", "kind"]).expect_err("typo is unknown");
        assert_eq!(err.key, "workload.typo");
        assert!(err.message.contains("accepted keys here: kind, rate"));
    }

    #[test]
    fn floats_round_to_u64_only_in_range() {
        assert_eq!(round_to_u64(2.5), Some(3));
        assert_eq!(round_to_u64(-0.4), Some(0));
        assert_eq!(round_to_u64(-0.6), None);
        assert_eq!(round_to_u64(f64::NAN), None);
        assert_eq!(round_to_u64(f64::INFINITY), None);
        assert_eq!(round_to_u64(1.8e19), Some(18_000_000_000_000_000_000));
        assert_eq!(round_to_u64(1.9e19), None);
    }

    #[test]
    fn ranges_and_durations_are_checked() {
        let mut p = Params::new("w", None);
        for (k, v) in [
            ("big", Value::Int(4_294_967_297)),
            ("tiny_ms", Value::Float(1e-9)),
            ("one_ns_ms", Value::Float(1e-6)),
            ("neg_ms", Value::Float(-1.0)),
            ("huge_s", Value::Float(1e30)),
            ("half", Value::Float(0.5)),
        ] {
            p.insert(k, Param { value: v, span: Some(Span { line: 1, column: 1 }) });
        }
        let err = p.u32_in("big", 1, 1..=u32::MAX).expect_err("wraps in u32");
        assert_eq!(err.message, "must be in 1..=4294967295, found 4294967297");
        assert_eq!(p.u64_in("big", 0, 0..=u64::MAX), Ok(4_294_967_297));
        assert_eq!(p.usize_in("absent", 7, 1..=10), Ok(7));
        let err = p.duration_ns_or("tiny_ms", 10.0, 1e6, true).expect_err("below resolution");
        assert!(err.message.contains("1-ns time resolution"), "{}", err.message);
        assert_eq!(p.duration_ns_or("tiny_ms", 10.0, 1e6, false), Ok(0));
        assert_eq!(p.duration_ns_or("one_ns_ms", 10.0, 1e6, true), Ok(1));
        assert!(p.duration_ns_or("neg_ms", 10.0, 1e6, false).is_err());
        assert!(p.duration_ns_or("huge_s", 1.0, 1e9, true).expect_err("too long").message.contains("longest"));
        assert_eq!(p.duration_ns_or("absent_ms", 2.5, 1e6, true), Ok(2_500_000));
        assert_eq!(p.fraction_or("half", 0.0), Ok(0.5));
        assert!(p.fraction_or("big", 0.0).is_err());
    }

    #[test]
    fn values_from_the_command_line_say_so() {
        let mut p = Params::new("w", Some(Span { line: 2, column: 1 }));
        p.set_path("rate", Param { value: Value::Float(-1.0), span: None }).expect("sets");
        let err = p.positive_f64_or("rate", 1.0).expect_err("negative");
        assert_eq!(err.span, None);
        assert_eq!(err.to_string(), "key `w.rate`: expected a positive number, found -1 (given with --set)");
        assert!(p.f64("absent").is_ok());
    }

    #[test]
    fn choices_are_checked() {
        let p = table();
        assert_eq!(p.choice_or("kind", &["gavel", "sia"], "sia"), Ok("gavel"));
        assert!(p.choice_or("kind", &["sia"], "sia").is_err());
        assert_eq!(p.choice_or("absent", &["sia"], "sia"), Ok("sia"));
    }
}
