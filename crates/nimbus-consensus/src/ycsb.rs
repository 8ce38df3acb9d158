//! YCSB's core workloads, reimplemented: operation mixes, key choosers and
//! record sizes.
//!
//! A workload is read from YCSB's Java-properties files (`workloada` ...
//! `workloadf` under `../shared/data/ycsb-workloads`) or built in with the
//! same proportions ([`Workload::core`]). Key choosers follow YCSB's
//! generators: `zipfian` is the scrambled Zipfian (θ = 0.99, Gray et al.'s
//! method over the record count, FNV-1a-hashed so the popular keys spread
//! over the key space), `latest` a Zipfian over the most recent inserts,
//! `uniform`, and `hotspot` (a hot fraction of the keys gets a hot
//! fraction of the operations). Keys are `user` + a 64-bit FNV hash of the
//! record number (YCSB's hashed insert order); records hold `fieldcount`
//! fields of `fieldlength` bytes. Deviations: field lengths are constant
//! (YCSB's default); scan lengths are uniform in 1..=maxscanlength.

use std::collections::BTreeMap;
use std::path::Path;

use nimbus_sim::SimRng;
use nimbus_trace::input::quote;

/// A key-value operation of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YcsbOp {
    /// Read a record.
    Read(String),
    /// Overwrite a record.
    Update(String, Vec<u8>),
    /// Add a record.
    Insert(String, Vec<u8>),
    /// Read `count` records from a key.
    Scan(String, usize),
    /// Read, then write, a record.
    ReadModifyWrite(String, Vec<u8>),
}

/// How keys are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyChooser {
    /// Scrambled Zipfian.
    Zipfian,
    /// Zipfian over the latest inserts.
    Latest,
    /// Uniform.
    Uniform,
    /// A hot set of `data` (fraction of keys) gets `ops` (fraction of
    /// operations).
    Hotspot {
        /// Hot share of the keys.
        data: f64,
        /// Share of operations on them.
        ops: f64,
    },
}

/// A YCSB workload definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Records loaded before the run.
    pub records: u64,
    /// Operation proportions: read, update, insert, scan, read-modify-write.
    pub mix: [f64; 5],
    /// Key chooser.
    pub keys: KeyChooser,
    /// Fields per record.
    pub field_count: usize,
    /// Bytes per field.
    pub field_length: usize,
    /// Longest scan.
    pub max_scan: usize,
}

/// Why a workload file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum YcsbError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is too large or not text (the message names it).
    #[error("{0}")]
    Input(String),
    /// A property is malformed.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// File.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl Workload {
    /// YCSB's core workload `letter` (a–f) as its property file defines it.
    pub fn core(letter: char) -> Option<Self> {
        let base = Workload {
            records: 1000,
            mix: [0.0; 5],
            keys: KeyChooser::Zipfian,
            field_count: 10,
            field_length: 100,
            max_scan: 1000,
        };
        let (mix, keys, max_scan) = match letter.to_ascii_lowercase() {
            'a' => ([0.5, 0.5, 0.0, 0.0, 0.0], KeyChooser::Zipfian, 1000),
            'b' => ([0.95, 0.05, 0.0, 0.0, 0.0], KeyChooser::Zipfian, 1000),
            'c' => ([1.0, 0.0, 0.0, 0.0, 0.0], KeyChooser::Zipfian, 1000),
            'd' => ([0.95, 0.0, 0.05, 0.0, 0.0], KeyChooser::Latest, 1000),
            'e' => ([0.0, 0.0, 0.05, 0.95, 0.0], KeyChooser::Zipfian, 100),
            'f' => ([0.5, 0.0, 0.0, 0.0, 0.5], KeyChooser::Zipfian, 1000),
            _ => return None,
        };
        Some(Workload { mix, keys, max_scan, ..base })
    }

    /// Reads a YCSB properties file: `key=value` lines, `#` comments;
    /// unknown properties are ignored, as YCSB does.
    pub fn read(path: &Path) -> Result<Self, YcsbError> {
        // Property files are a few hundred bytes; a larger file is the wrong one.
        let text =
            nimbus_trace::input::read_document(nimbus_trace::Source::file(path), 1 << 20).map_err(|e| match e {
                nimbus_trace::TraceError::Io { path, source } => {
                    YcsbError::Io { path: path.display().to_string(), source }
                }
                other => YcsbError::Input(other.to_string()),
            })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses properties text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Self, YcsbError> {
        let mut props: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(YcsbError::Invalid {
                    path: origin.into(),
                    line: i + 1,
                    message: format!("expected key=value, found `{}`", quote(line)),
                });
            };
            props.insert(k.trim(), (i + 1, v.trim()));
        }
        let number = |key: &str, default: f64| -> Result<f64, YcsbError> {
            match props.get(key) {
                None => Ok(default),
                Some(&(line, v)) => {
                    v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| YcsbError::Invalid {
                        path: origin.into(),
                        line,
                        message: format!("`{key}` must be a non-negative number, found `{}`", quote(v)),
                    })
                }
            }
        };
        // A count must be whole and below `max` (a bound on what the
        // consumers can hold), never saturated or wrapped.
        let count = |key: &str, default: u64, max: u64| -> Result<u64, YcsbError> {
            let x = number(key, default as f64)?;
            if x.fract() != 0.0 || x > max as f64 {
                return Err(YcsbError::Invalid {
                    path: origin.into(),
                    line: props.get(key).map_or(0, |p| p.0),
                    message: format!("`{key}` must be a whole number at most {max}, found {x}"),
                });
            }
            Ok(x as u64)
        };
        let mix = [
            number("readproportion", 0.95)?,
            number("updateproportion", 0.05)?,
            number("insertproportion", 0.0)?,
            number("scanproportion", 0.0)?,
            number("readmodifywriteproportion", 0.0)?,
        ];
        if mix.iter().sum::<f64>() <= 0.0 {
            return Err(YcsbError::Invalid {
                path: origin.into(),
                line: 0,
                message: "every proportion is zero".into(),
            });
        }
        let keys = match props.get("requestdistribution").map(|p| p.1).unwrap_or("uniform") {
            "zipfian" => KeyChooser::Zipfian,
            "latest" => KeyChooser::Latest,
            "uniform" => KeyChooser::Uniform,
            "hotspot" => KeyChooser::Hotspot {
                data: number("hotspotdatafraction", 0.2)?.min(1.0),
                ops: number("hotspotopnfraction", 0.8)?.min(1.0),
            },
            other => {
                return Err(YcsbError::Invalid {
                    path: origin.into(),
                    line: props.get("requestdistribution").map_or(0, |p| p.0),
                    message: format!(
                        "unknown requestdistribution `{}`; expected zipfian, latest, uniform or hotspot",
                        quote(other)
                    ),
                });
            }
        };
        let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(Workload {
            records: count("recordcount", 1000, 1 << 40)?.max(1),
            mix,
            keys,
            field_count: as_usize(count("fieldcount", 10, 1 << 20)?),
            field_length: as_usize(count("fieldlength", 100, 1 << 30)?),
            max_scan: as_usize(count("maxscanlength", 1000, 1 << 30)?.max(1)),
        })
    }

    /// Bytes per record.
    pub fn record_bytes(&self) -> usize {
        self.field_count.saturating_mul(self.field_length)
    }
}

/// YCSB's FNV-1a over the eight bytes of a number.
pub fn fnv64(mut value: u64) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for _ in 0..8 {
        hash ^= value & 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        value >>= 8;
    }
    hash
}

/// The key of record `n` (hashed insert order).
pub fn key(n: u64) -> String {
    format!("user{}", fnv64(n))
}

/// Gray et al.'s Zipfian generator over `0..items` with exponent θ.
#[derive(Debug, Clone)]
pub struct Zipfian {
    items: u64,
    theta: f64,
    zetan: f64,
    alpha: f64,
    eta: f64,
}

impl Zipfian {
    /// Over `items` ≥ 1 items (computing ζ(n) once, O(n)).
    pub fn new(items: u64, theta: f64) -> Self {
        let items = items.max(1);
        let zeta = |n: u64| (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zetan = zeta(items);
        let zeta2 = zeta(2.min(items));
        let eta = if items > 1 { (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan) } else { 0.0 };
        Zipfian { items, theta, zetan, alpha: 1.0 / (1.0 - theta), eta }
    }

    /// The next item (0 is the most popular).
    pub fn next(&self, rng: &mut SimRng) -> u64 {
        let u = rng.uniform();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.items - 1);
        }
        ((self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64).min(self.items - 1)
    }
}

/// Generates a workload's operations.
pub struct Generator {
    workload: Workload,
    zipf: Zipfian,
    /// Records that exist (loaded plus inserted).
    count: u64,
    rng: SimRng,
    /// Draw value bytes (off: values are empty and the caller fills them).
    values: bool,
}

impl Generator {
    /// A generator over the loaded records.
    pub fn new(workload: Workload, rng: SimRng) -> Self {
        let zipf = Zipfian::new(workload.records, 0.99);
        Generator { count: workload.records, workload, zipf, rng, values: true }
    }

    /// The same operations with empty values, for callers that write
    /// their own (the twin puts a unique id in each); draws no value bytes.
    pub fn without_values(self) -> Self {
        Generator { values: false, ..self }
    }

    /// The workload it draws from.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    fn value(&mut self) -> Vec<u8> {
        if !self.values {
            return Vec::new();
        }
        let n = self.workload.record_bytes();
        let mut v = vec![0u8; n];
        for chunk in v.chunks_mut(8) {
            let r = self.rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        v
    }

    fn existing(&mut self) -> u64 {
        match self.workload.keys {
            KeyChooser::Zipfian => fnv64(self.zipf.next(&mut self.rng)) % self.count,
            KeyChooser::Latest => self.count - 1 - self.zipf.next(&mut self.rng).min(self.count - 1),
            KeyChooser::Uniform => self.rng.below(self.count),
            KeyChooser::Hotspot { data, ops } => {
                let hot = ((self.count as f64 * data) as u64).clamp(1, self.count);
                if self.rng.bernoulli(ops) || hot == self.count {
                    self.rng.below(hot)
                } else {
                    hot + self.rng.below(self.count - hot)
                }
            }
        }
    }

    /// The next operation.
    pub fn next_op(&mut self) -> YcsbOp {
        let which = self.rng.weighted_index(&self.workload.mix);
        match which {
            2 => {
                let k = key(self.count);
                self.count += 1;
                let v = self.value();
                YcsbOp::Insert(k, v)
            }
            _ => {
                let k = key(self.existing());
                match which {
                    0 => YcsbOp::Read(k),
                    1 => {
                        let v = self.value();
                        YcsbOp::Update(k, v)
                    }
                    3 => {
                        let n = 1 + self.rng.index(self.workload.max_scan);
                        YcsbOp::Scan(k, n)
                    }
                    _ => {
                        let v = self.value();
                        YcsbOp::ReadModifyWrite(k, v)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_sim::RngStreams;

    #[test]
    fn property_files_match_the_built_in_core_workloads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ycsb-workloads");
        if !dir.exists() {
            eprintln!("NOTICE: ../shared/data/ycsb-workloads is absent; skipping the property-file check");
            return;
        }
        for letter in ['a', 'b', 'c', 'd', 'e', 'f'] {
            let file = Workload::read(&dir.join(format!("workload{letter}"))).expect("valid");
            let built = Workload::core(letter).expect("core");
            assert_eq!(file.mix, built.mix, "workload{letter}");
            assert_eq!(file.keys, built.keys, "workload{letter}");
            assert_eq!((file.records, file.record_bytes()), (1000, 1000), "workload{letter}");
        }
    }

    #[test]
    fn malformed_properties_name_the_line() {
        let err = Workload::parse("readproportion=0.5\nupdateproportion=lots\n", "w").expect_err("bad number");
        assert!(err.to_string().starts_with("w:2:") && err.to_string().contains("updateproportion"), "{err}");
        let err = Workload::parse("requestdistribution=pareto\n", "w").expect_err("bad chooser");
        assert!(err.to_string().contains("unknown requestdistribution `pareto`"), "{err}");
        assert!(Workload::parse("just words\n", "w").is_err());
    }

    #[test]
    fn zipfian_keys_are_skewed_and_mixes_are_respected() {
        let mut g = Generator::new(Workload::core('a').expect("a"), RngStreams::new(1).stream("ycsb"));
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let (mut reads, total) = (0, 20_000);
        for _ in 0..total {
            match g.next_op() {
                YcsbOp::Read(k) => {
                    reads += 1;
                    *counts.entry(k).or_default() += 1;
                }
                YcsbOp::Update(k, v) => {
                    assert_eq!(v.len(), 1000);
                    *counts.entry(k).or_default() += 1;
                }
                other => panic!("workload A has no {other:?}"),
            }
        }
        assert!((f64::from(reads) / f64::from(total) - 0.5).abs() < 0.02);
        let mut by_count: Vec<u64> = counts.values().copied().collect();
        by_count.sort_unstable_by(|a, b| b.cmp(a));
        // θ = 0.99 over 1,000 keys: the top key draws about 13% of requests.
        let top = by_count[0] as f64 / f64::from(total);
        assert!((0.10..0.17).contains(&top), "{top}");
        assert!(counts.len() > 500);
        // Latest (reads only, so the newest record stays record 999): the
        // newest draws the Zipfian head's share.
        let latest = Workload { mix: [1.0, 0.0, 0.0, 0.0, 0.0], ..Workload::core('d').expect("d") };
        let mut d = Generator::new(latest, RngStreams::new(2).stream("ycsb"));
        let newest = key(999);
        let hits = (0..5_000).filter(|_| matches!(d.next_op(), YcsbOp::Read(k) if k == newest)).count();
        assert!((500..850).contains(&hits), "{hits}");
    }
}
