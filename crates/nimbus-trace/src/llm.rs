//! LLM-serving traces and performance tables.
//!
//! Sources:
//! - Azure LLM inference trace 2023 (Patel et al., "Splitwise", ISCA 2024;
//!   `Azure/AzurePublicDataset`): `TIMESTAMP,ContextTokens,GeneratedTokens`.
//! - Vidur's processed traces (Agrawal et al., MLSys 2024):
//!   `arrived_at,num_prefill_tokens,num_decode_tokens`.
//! - ShareGPT length statistics (Llama-2 tokenizer): prompt and output
//!   lengths without arrival times.
//! - Mooncake traces (Qin et al., 2024): JSON lines with `timestamp` (ms),
//!   `input_length`, `output_length`, `hash_ids` (512-token prefix blocks).
//! - Splitwise's performance model (`perf_model.csv`) and DistServe's fitted
//!   latency forms (`profiler-*.json`).

use std::collections::BTreeMap;

use crate::error::{TraceError, read_csv_with_header};
use crate::input::{MAX_DOCUMENT_BYTES, Source, csv_error, csv_reader, for_each_line, quote, read_document};

/// One inference request of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    /// Arrival, seconds from the first request (0 when the trace has no times).
    pub arrival_s: f64,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Tokens to generate.
    pub output_tokens: u32,
    /// Prefix-block hashes (Mooncake), for prefix caching.
    pub prefix_blocks: Vec<u64>,
}

/// Seconds since 1970-01-01 of `YYYY-MM-DD HH:MM:SS[.fraction]`.
pub fn parse_datetime(text: &str) -> Option<f64> {
    let (date, time) = text.trim().split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || d.next().is_some() {
        return None;
    }
    let mut t = time.split(':');
    let hour: f64 = t.next()?.parse().ok()?;
    let minute: f64 = t.next()?.parse().ok()?;
    let second: f64 = t.next()?.parse().ok()?;
    if !(0.0..24.0).contains(&hour) || !(0.0..60.0).contains(&minute) || !(0.0..61.0).contains(&second) {
        return None;
    }
    let days = crate::series::days_from_civil(year, month, day);
    Some(days as f64 * 86_400.0 + hour * 3600.0 + minute * 60.0 + second)
}

fn offsets(mut requests: Vec<LlmRequest>) -> Vec<LlmRequest> {
    if let Some(first) = requests.iter().map(|r| r.arrival_s).reduce(f64::min) {
        for r in &mut requests {
            r.arrival_s -= first;
        }
    }
    requests
}

fn tokens(f: &crate::error::Fields<'_>, i: usize) -> Result<u32, TraceError> {
    u32::try_from(f.u64(i)?).map_err(|_| f.invalid(i, "token count too large"))
}

/// Reads an Azure LLM inference trace (2023 format).
pub fn read_azure<'a>(source: impl Into<Source<'a>>) -> Result<Vec<LlmRequest>, TraceError> {
    let rows = read_csv_with_header(source, &["TIMESTAMP", "ContextTokens", "GeneratedTokens"], |f| {
        let text = f.non_empty(0)?;
        let arrival_s = parse_datetime(text).ok_or_else(|| {
            f.invalid(0, format!("expected a date-time like 2023-11-16 18:15:46.68, found `{}`", quote(text)))
        })?;
        Ok(LlmRequest {
            arrival_s,
            prompt_tokens: tokens(f, 1)?,
            output_tokens: tokens(f, 2)?,
            prefix_blocks: Vec::new(),
        })
    })?;
    Ok(offsets(rows))
}

/// Reads a Vidur processed trace (`arrived_at,num_prefill_tokens,num_decode_tokens`).
pub fn read_vidur_trace<'a>(source: impl Into<Source<'a>>) -> Result<Vec<LlmRequest>, TraceError> {
    let rows = read_csv_with_header(source, &["arrived_at", "num_prefill_tokens", "num_decode_tokens"], |f| {
        Ok(LlmRequest {
            arrival_s: f.non_negative_f64(0)?,
            prompt_tokens: tokens(f, 1)?,
            output_tokens: tokens(f, 2)?,
            prefix_blocks: Vec::new(),
        })
    })?;
    Ok(offsets(rows))
}

/// Reads prompt/output lengths without arrival times (ShareGPT statistics,
/// arXiv summarisation statistics): `num_prefill_tokens,num_decode_tokens`.
pub fn read_lengths<'a>(source: impl Into<Source<'a>>) -> Result<Vec<(u32, u32)>, TraceError> {
    read_csv_with_header(source, &["num_prefill_tokens", "num_decode_tokens"], |f| Ok((tokens(f, 0)?, tokens(f, 1)?)))
}

/// Reads a Mooncake trace (JSON lines).
pub fn read_mooncake<'a>(source: impl Into<Source<'a>>) -> Result<Vec<LlmRequest>, TraceError> {
    let source = source.into();
    let path = source.name();
    let mut out = Vec::new();
    for_each_line(source, |line_no, line| {
        if line.trim().is_empty() {
            return Ok(());
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| TraceError::parse(path, line_no, e.column() as u64, None, format!("invalid JSON: {e}")))?;
        let field = |name: &str| -> Result<u64, TraceError> {
            v.get(name)
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| TraceError::parse(path, line_no, 0, Some(name), "expected a non-negative integer"))
        };
        let blocks = match v.get("hash_ids") {
            None => Vec::new(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_u64().ok_or_else(|| TraceError::parse(path, line_no, 0, Some("hash_ids"), "expected integers"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(TraceError::parse(path, line_no, 0, Some("hash_ids"), "expected a list of integers"));
            }
        };
        let small = |n: u64, name: &str| {
            u32::try_from(n).map_err(|_| TraceError::parse(path, line_no, 0, Some(name), "too large"))
        };
        out.push(LlmRequest {
            arrival_s: field("timestamp")? as f64 / 1000.0,
            prompt_tokens: small(field("input_length")?, "input_length")?,
            output_tokens: small(field("output_length")?, "output_length")?,
            prefix_blocks: blocks,
        });
        Ok(())
    })?;
    Ok(offsets(out))
}

/// One measurement of Splitwise's performance model (`perf_model.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct SplitwiseRow {
    /// Model (`llama2-70b`, `bloom-176b`).
    pub model: String,
    /// Hardware (`a100-80gb`, `h100-80gb`, …).
    pub hardware: String,
    /// Tensor parallelism.
    pub tensor_parallel: u32,
    /// Prompt tokens.
    pub prompt_size: u32,
    /// Requests in the batch.
    pub batch_size: u32,
    /// Tokens generated.
    pub token_size: u32,
    /// Prompt (prefill) time, ms.
    pub prompt_ms: f64,
    /// Time per generated token, ms.
    pub token_ms: f64,
}

/// Reads `perf_model.csv`; repeated measurements are kept.
pub fn read_splitwise<'a>(source: impl Into<Source<'a>>) -> Result<Vec<SplitwiseRow>, TraceError> {
    let columns = [
        "model",
        "hardware",
        "tensor_parallel",
        "prompt_size",
        "batch_size",
        "token_size",
        "prompt_time",
        "token_time",
    ];
    read_csv_with_header(source, &columns, |f| {
        let small = |i: usize| -> Result<u32, TraceError> {
            u32::try_from(f.positive_u64(i)?).map_err(|_| f.invalid(i, "too large"))
        };
        Ok(SplitwiseRow {
            model: f.non_empty(0)?.to_string(),
            hardware: f.non_empty(1)?.to_string(),
            tensor_parallel: small(2)?,
            prompt_size: small(3)?,
            batch_size: small(4)?,
            token_size: small(5)?,
            prompt_ms: f.positive_f64(6)?,
            token_ms: f.positive_f64(7)?,
        })
    })
}

/// The median of `value` over the rows that `keep` selects (NaN if none).
pub fn splitwise_median(
    rows: &[SplitwiseRow],
    keep: impl Fn(&SplitwiseRow) -> bool,
    value: impl Fn(&SplitwiseRow) -> f64,
) -> f64 {
    let values: Vec<f64> = rows.iter().filter(|r| keep(r)).map(value).collect();
    nimbus_sim::stats::quantile(&values, 0.5)
}

/// DistServe's fitted latency forms for one (model, tensor parallelism).
#[derive(Debug, Clone, PartialEq)]
pub struct DistServeFit {
    /// Prefill ms = a + b·Σlen + c·Σlen².
    pub prefill: [f64; 3],
    /// Decode ms = a + b·Σctx + c·batch, for batches up to `threshold`.
    pub decode_small: [f64; 3],
    /// The same form above `threshold`.
    pub decode_large: [f64; 3],
    /// Batch size where the decode form switches.
    pub threshold: u32,
}

/// Reads a DistServe profiler JSON: model → tensor parallelism → fit.
pub fn read_distserve<'a>(
    source: impl Into<Source<'a>>,
) -> Result<BTreeMap<String, BTreeMap<u32, DistServeFit>>, TraceError> {
    let source = source.into();
    let path = source.name();
    let text = read_document(source, MAX_DOCUMENT_BYTES)?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| TraceError::parse(path, e.line() as u64, e.column() as u64, None, format!("invalid JSON: {e}")))?;
    let models = json.as_object().ok_or_else(|| TraceError::file(path, "expected an object keyed by model"))?;
    let mut out = BTreeMap::new();
    for (model_key, tps) in models {
        let model = quote(model_key);
        let tps = tps
            .as_object()
            .ok_or_else(|| TraceError::file(path, format!("{model}: expected an object keyed by TP")))?;
        let mut fits = BTreeMap::new();
        for (tp, fit) in tps {
            let tp: u32 = tp
                .parse()
                .map_err(|_| TraceError::file(path, format!("{model}: TP key \"{}\" is not a number", quote(tp))))?;
            let triple = |name: &str| -> Result<[f64; 3], TraceError> {
                let a = fit.get(name).and_then(serde_json::Value::as_array).filter(|a| a.len() == 3);
                let a =
                    a.ok_or_else(|| TraceError::file(path, format!("{model} TP{tp}: `{name}` must be 3 numbers")))?;
                let mut v = [0.0; 3];
                for (i, x) in a.iter().enumerate() {
                    v[i] = x
                        .as_f64()
                        .ok_or_else(|| TraceError::file(path, format!("{model} TP{tp}: `{name}` must be numbers")))?;
                }
                Ok(v)
            };
            let threshold = match fit.get("decoding_large_small_bs_threshold") {
                None => 95,
                Some(v) => v.as_u64().and_then(|t| u32::try_from(t).ok()).ok_or_else(|| {
                    TraceError::file(
                        path,
                        format!("{model} TP{tp}: `decoding_large_small_bs_threshold` must be a batch size"),
                    )
                })?,
            };
            fits.insert(
                tp,
                DistServeFit {
                    prefill: triple("prefill")?,
                    decode_small: triple("decoding_smallbs")?,
                    decode_large: triple("decoding_largebs")?,
                    threshold,
                },
            );
        }
        out.insert(model_key.clone(), fits);
    }
    Ok(out)
}

/// Median operator times of Vidur's `mlp.csv` for one tensor parallelism:
/// `num_tokens → (operator → ms)`.
pub type OperatorTimes = BTreeMap<u32, BTreeMap<String, f64>>;

/// Reads a Vidur `mlp.csv`: median time per operator, by tensor
/// parallelism and number of tokens.
pub fn read_vidur_mlp<'a>(source: impl Into<Source<'a>>) -> Result<BTreeMap<u32, OperatorTimes>, TraceError> {
    let source = source.into();
    let path = source.name();
    let mut table = ProfileTable::open(source)?;
    let tokens_col = table.column("num_tokens")?;
    let tp_col = table.column("num_tensor_parallel_workers")?;
    let ops: Vec<(usize, String)> = table
        .headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            h.strip_prefix("time_stats.").and_then(|r| r.strip_suffix(".median")).map(|op| (i, op.to_string()))
        })
        .collect();
    let mut out: BTreeMap<u32, OperatorTimes> = BTreeMap::new();
    while let Some((line, record)) = table.next()? {
        let int = |i: usize, name: &str| -> Result<u32, TraceError> {
            // Profiles write integers as floats (`128.0`).
            let text = record.get(i).unwrap_or("").trim();
            let v = text.parse::<f64>().ok().filter(|v| *v >= 0.0 && v.fract() == 0.0 && *v <= f64::from(u32::MAX));
            v.and_then(nimbus_sim::params::round_to_u64).and_then(|v| u32::try_from(v).ok()).ok_or_else(|| {
                TraceError::parse(path, line, i as u64 + 1, Some(name), "expected a non-negative integer below 2^32")
            })
        };
        let tokens = int(tokens_col, "num_tokens")?;
        let tp = int(tp_col, "num_tensor_parallel_workers")?;
        let entry = out.entry(tp).or_default().entry(tokens).or_default();
        for (i, op) in &ops {
            let value = record.get(*i).unwrap_or("").trim();
            if value.is_empty() {
                continue;
            }
            let ms = value.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| {
                TraceError::parse(
                    path,
                    line,
                    *i as u64 + 1,
                    Some(op),
                    format!("expected a non-negative number, found `{}`", quote(value)),
                )
            })?;
            entry.insert(op.clone(), ms);
        }
    }
    Ok(out)
}

/// Median collective times of a Vidur network profile (`all_reduce.csv`,
/// `send_recv.csv`): `(num_workers, devices_per_node) → [(bytes, ms)]`,
/// sorted by size.
pub type CollectiveTimes = BTreeMap<(u32, u32), Vec<(u64, f64)>>;

/// Reads a Vidur collective profile.
pub fn read_vidur_collective<'a>(source: impl Into<Source<'a>>) -> Result<CollectiveTimes, TraceError> {
    let source = source.into();
    let path = source.name();
    let mut table = ProfileTable::open(source)?;
    let time_col = table
        .headers
        .iter()
        .position(|h| h.starts_with("time_stats.") && h.ends_with(".median"))
        .ok_or_else(|| TraceError::file(path, "missing a `time_stats.<collective>.median` column"))?;
    let (size_col, workers_col, per_node_col) =
        (table.column("size")?, table.column("num_workers")?, table.column("devices_per_node")?);
    let mut out: CollectiveTimes = BTreeMap::new();
    while let Some((line, record)) = table.next()? {
        let text = |i: usize| record.get(i).unwrap_or("").trim();
        let integer = |i: usize, name: &str| -> Result<u64, TraceError> {
            // Profiles write integers as floats (`1048576.0`).
            let v = text(i).parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0 && v.fract() == 0.0);
            v.filter(|v| *v < 9.0e15).and_then(nimbus_sim::params::round_to_u64).ok_or_else(|| {
                TraceError::parse(path, line, i as u64 + 1, Some(name), "expected a non-negative integer")
            })
        };
        let small = |i: usize, name: &str| -> Result<u32, TraceError> {
            u32::try_from(integer(i, name)?)
                .map_err(|_| TraceError::parse(path, line, i as u64 + 1, Some(name), "too large"))
        };
        let size = integer(size_col, "size")?;
        let workers = small(workers_col, "num_workers")?;
        let per_node = small(per_node_col, "devices_per_node")?;
        let ms = text(time_col).parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| {
            TraceError::parse(path, line, time_col as u64 + 1, Some("median"), "expected a non-negative number")
        })?;
        out.entry((workers, per_node)).or_default().push((size, ms));
    }
    for points in out.values_mut() {
        points.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        points.dedup_by_key(|p| p.0);
    }
    Ok(out)
}

/// A CSV profile whose columns are found by name (Vidur's wide tables).
struct ProfileTable<'a> {
    name: &'a std::path::Path,
    reader: csv::Reader<crate::input::Counted<Box<dyn std::io::Read + 'a>>>,
    headers: csv::StringRecord,
    record: csv::StringRecord,
}

impl<'a> ProfileTable<'a> {
    fn open(source: Source<'a>) -> Result<Self, TraceError> {
        let name = source.name();
        let mut reader = csv_reader(source, true)?;
        let headers = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(csv_error(name, &mut reader, e)),
        };
        Ok(ProfileTable { name, reader, headers, record: csv::StringRecord::new() })
    }

    fn column(&self, wanted: &str) -> Result<usize, TraceError> {
        self.headers
            .iter()
            .position(|h| h == wanted)
            .ok_or_else(|| TraceError::parse(self.name, 1, 0, None, format!("missing column `{wanted}`")))
    }

    /// The next record and its line; blank lines are skipped.
    fn next(&mut self) -> Result<Option<(u64, &csv::StringRecord)>, TraceError> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return Ok(None),
                Ok(true) => {}
                Err(e) => return Err(csv_error(self.name, &mut self.reader, e)),
            }
            let offset = self.record.position().map_or(0, csv::Position::byte);
            let line = self.reader.get_mut().record_line(offset);
            if !self.record.iter().all(|f| f.trim().is_empty()) {
                return Ok(Some((line, &self.record)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_by_hand() {
        assert_eq!(parse_datetime("1970-01-01 00:00:00"), Some(0.0));
        assert_eq!(parse_datetime("1970-01-02 00:00:01.5"), Some(86_401.5));
        // 2023-11-16 is 19,677 days after the epoch.
        assert_eq!(
            parse_datetime("2023-11-16 18:15:46.0"),
            Some(19_677.0 * 86_400.0 + 18.0 * 3600.0 + 15.0 * 60.0 + 46.0)
        );
        assert_eq!(parse_datetime("2023-13-01 00:00:00"), None);
        assert_eq!(parse_datetime("yesterday"), None);
    }
}
