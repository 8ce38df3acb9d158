//! Serverless traces: the Azure Functions 2019 and 2021 formats and the
//! Ilúvatar sample derived from Azure 2019.
//!
//! - Azure 2019 (Shahrad et al., ATC'20; CC-BY 4.0): per day,
//!   `invocations_per_function_md.anon.dNN.csv` (`HashOwner, HashApp,
//!   HashFunction, Trigger, 1..1440`: invocations per minute),
//!   `function_durations_percentiles.anon.dNN.csv` (ms, without cold
//!   starts) and `app_memory_percentiles.anon.dNN.csv` (MB; some copies add
//!   `HashFunction`).
//! - Azure 2021: one row per invocation, `app, func, end_timestamp,
//!   duration` (seconds).
//! - Ilúvatar's sample: `func_name, invoke_time_ms` and per-function
//!   `func_name, cold_dur_ms, warm_dur_ms, mem_mb, mean_iat`.

use crate::TraceError;
use crate::error::{for_each_csv_row, read_csv_with_header};
use crate::input::{Source, quote};

/// What triggers an Azure function (the 2019 trace's `Trigger` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trigger {
    /// HTTP request.
    Http,
    /// Timer (cron).
    Timer,
    /// Queue message.
    Queue,
    /// Blob storage event.
    Storage,
    /// Event hub / grid.
    Event,
    /// Durable-functions orchestration.
    Orchestration,
    /// Anything else.
    Others,
}

impl Trigger {
    /// Parses the trace's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "http" => Trigger::Http,
            "timer" => Trigger::Timer,
            "queue" => Trigger::Queue,
            "storage" => Trigger::Storage,
            "event" => Trigger::Event,
            "orchestration" => Trigger::Orchestration,
            "others" => Trigger::Others,
            _ => return None,
        })
    }

    /// The trace's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Timer => "timer",
            Trigger::Queue => "queue",
            Trigger::Storage => "storage",
            Trigger::Event => "event",
            Trigger::Orchestration => "orchestration",
            Trigger::Others => "others",
        }
    }
}

/// One function's invocations per minute of a day (Azure 2019).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionMinutes {
    /// Owner hash.
    pub owner: String,
    /// App hash.
    pub app: String,
    /// Function hash.
    pub function: String,
    /// Trigger.
    pub trigger: Trigger,
    /// Invocations in each minute of the day (1,440 values).
    pub per_minute: Vec<u32>,
}

/// Reads an Azure 2019 invocations file.
pub fn read_azure2019_invocations<'a>(source: impl Into<Source<'a>>) -> Result<Vec<FunctionMinutes>, TraceError> {
    let mut rows = Vec::new();
    for_each_azure2019_invocation(source, |row| rows.push(row))?;
    Ok(rows)
}

/// Streams an Azure 2019 invocations file one function at a time (a day of
/// the full trace is ~50,000 rows of 1,440 counts).
pub fn for_each_azure2019_invocation<'a>(
    source: impl Into<Source<'a>>,
    mut each: impl FnMut(FunctionMinutes),
) -> Result<(), TraceError> {
    let minute_names: Vec<String> = (1..=1440).map(|m| m.to_string()).collect();
    let mut names: Vec<&str> = vec!["HashOwner", "HashApp", "HashFunction", "Trigger"];
    names.extend(minute_names.iter().map(String::as_str));
    for_each_csv_row(source, &names, |f| {
        let trigger_text = f.non_empty(3)?;
        let trigger = Trigger::parse(trigger_text).ok_or_else(|| {
            f.invalid(
                3,
                format!(
                    "unknown trigger `{}`; expected http, timer, queue, storage, event, orchestration or others",
                    quote(trigger_text)
                ),
            )
        })?;
        let mut per_minute = Vec::with_capacity(1440);
        for i in 4..4 + 1440 {
            let count = f.u64(i)?;
            per_minute.push(u32::try_from(count).map_err(|_| f.invalid(i, "count too large"))?);
        }
        each(FunctionMinutes {
            owner: f.non_empty(0)?.to_string(),
            app: f.non_empty(1)?.to_string(),
            function: f.non_empty(2)?.to_string(),
            trigger,
            per_minute,
        });
        Ok(())
    })
}

/// A function's execution-time distribution for a day (Azure 2019), ms.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDurations {
    /// Owner hash.
    pub owner: String,
    /// App hash.
    pub app: String,
    /// Function hash.
    pub function: String,
    /// Mean, ms.
    pub average_ms: f64,
    /// Executions measured.
    pub count: u64,
    /// Percentiles 0, 1, 25, 50, 75, 99, 100 of the per-worker averages, ms.
    pub percentiles_ms: [f64; 7],
}

/// Percentile levels of [`FunctionDurations::percentiles_ms`].
pub const DURATION_PERCENTILES: [f64; 7] = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0];

/// Reads an Azure 2019 durations file.
pub fn read_azure2019_durations<'a>(source: impl Into<Source<'a>>) -> Result<Vec<FunctionDurations>, TraceError> {
    let names = [
        "HashOwner",
        "HashApp",
        "HashFunction",
        "Average",
        "Count",
        "percentile_Average_0",
        "percentile_Average_1",
        "percentile_Average_25",
        "percentile_Average_50",
        "percentile_Average_75",
        "percentile_Average_99",
        "percentile_Average_100",
    ];
    read_csv_with_header(source, &names, |f| {
        let mut percentiles_ms = [0.0; 7];
        for (k, p) in percentiles_ms.iter_mut().enumerate() {
            *p = f.non_negative_f64(5 + k)?;
        }
        if let Some(k) = (1..7).find(|&k| percentiles_ms[k] + 1e-9 < percentiles_ms[k - 1]) {
            return Err(f.invalid(5 + k, "percentiles must not decrease"));
        }
        Ok(FunctionDurations {
            owner: f.non_empty(0)?.to_string(),
            app: f.non_empty(1)?.to_string(),
            function: f.non_empty(2)?.to_string(),
            average_ms: f.non_negative_f64(3)?,
            count: f.u64(4)?,
            percentiles_ms,
        })
    })
}

/// An app's allocated-memory distribution (Azure 2019), MB.
#[derive(Debug, Clone, PartialEq)]
pub struct AppMemory {
    /// Owner hash.
    pub owner: String,
    /// App hash.
    pub app: String,
    /// Samples.
    pub sample_count: u64,
    /// Mean allocated MB.
    pub average_mb: f64,
    /// Percentiles 1, 5, 25, 50, 75, 95, 99, 100, MB.
    pub percentiles_mb: [f64; 8],
}

/// Reads an Azure 2019 memory file (with or without `HashFunction`).
pub fn read_azure2019_memory<'a>(source: impl Into<Source<'a>>) -> Result<Vec<AppMemory>, TraceError> {
    let names = [
        "HashOwner",
        "HashApp",
        "SampleCount",
        "AverageAllocatedMb",
        "AverageAllocatedMb_pct1",
        "AverageAllocatedMb_pct5",
        "AverageAllocatedMb_pct25",
        "AverageAllocatedMb_pct50",
        "AverageAllocatedMb_pct75",
        "AverageAllocatedMb_pct95",
        "AverageAllocatedMb_pct99",
        "AverageAllocatedMb_pct100",
    ];
    read_csv_with_header(source, &names, |f| {
        let mut percentiles_mb = [0.0; 8];
        for (k, p) in percentiles_mb.iter_mut().enumerate() {
            *p = f.non_negative_f64(4 + k)?;
        }
        Ok(AppMemory {
            owner: f.non_empty(0)?.to_string(),
            app: f.non_empty(1)?.to_string(),
            sample_count: f.u64(2)?,
            average_mb: f.non_negative_f64(3)?,
            percentiles_mb,
        })
    })
}

/// Writes an Azure 2019 invocations file (`invocations_per_function_md`
/// schema: the three hashes, the trigger and 1,440 per-minute counts), the
/// format [`read_azure2019_invocations`] reads.
pub fn write_azure2019_invocations(out: &mut impl std::io::Write, rows: &[FunctionMinutes]) -> std::io::Result<()> {
    let mut header = String::from("HashOwner,HashApp,HashFunction,Trigger");
    for m in 1..=1440 {
        header.push_str(&format!(",{m}"));
    }
    writeln!(out, "{header}")?;
    for r in rows {
        if r.per_minute.len() != 1440 {
            return Err(std::io::Error::other(format!("{}: {} minutes, not 1,440", r.function, r.per_minute.len())));
        }
        let mut line = format!("{},{},{},{}", r.owner, r.app, r.function, r.trigger.as_str());
        for c in &r.per_minute {
            line.push(',');
            line.push_str(&c.to_string());
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Writes an Azure 2019 durations file (`function_durations_percentiles`
/// schema), the format [`read_azure2019_durations`] reads; `Minimum` and
/// `Maximum` are the 0th and 100th percentiles.
pub fn write_azure2019_durations(out: &mut impl std::io::Write, rows: &[FunctionDurations]) -> std::io::Result<()> {
    writeln!(
        out,
        "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100"
    )?;
    for r in rows {
        let p = &r.percentiles_ms;
        let percentiles: Vec<String> = p.iter().map(|v| format!("{v:?}")).collect();
        writeln!(
            out,
            "{},{},{},{:?},{},{:?},{:?},{}",
            r.owner,
            r.app,
            r.function,
            r.average_ms,
            r.count,
            p[0],
            p[6],
            percentiles.join(",")
        )?;
    }
    Ok(())
}

/// Writes an Azure 2019 memory file (`app_memory_percentiles` schema), the
/// format [`read_azure2019_memory`] reads.
pub fn write_azure2019_memory(out: &mut impl std::io::Write, rows: &[AppMemory]) -> std::io::Result<()> {
    writeln!(
        out,
        "HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,AverageAllocatedMb_pct5,AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,AverageAllocatedMb_pct99,AverageAllocatedMb_pct100"
    )?;
    for r in rows {
        let percentiles: Vec<String> = r.percentiles_mb.iter().map(|v| format!("{v:?}")).collect();
        writeln!(out, "{},{},{},{:?},{}", r.owner, r.app, r.sample_count, r.average_mb, percentiles.join(","))?;
    }
    Ok(())
}

/// One invocation of the Azure 2021 trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation2021 {
    /// App hash.
    pub app: String,
    /// Function hash.
    pub function: String,
    /// Start, s (end − duration).
    pub start_s: f64,
    /// Duration, s.
    pub duration_s: f64,
}

/// Reads an Azure 2021 per-invocation file.
pub fn read_azure2021<'a>(source: impl Into<Source<'a>>) -> Result<Vec<Invocation2021>, TraceError> {
    read_csv_with_header(source, &["app", "func", "end_timestamp", "duration"], |f| {
        let end = f.non_negative_f64(2)?;
        let duration_s = f.non_negative_f64(3)?;
        Ok(Invocation2021 {
            app: f.non_empty(0)?.to_string(),
            function: f.non_empty(1)?.to_string(),
            start_s: (end - duration_s).max(0.0),
            duration_s,
        })
    })
}

/// Reads Ilúvatar's trace: (function, invocation time in ms).
pub fn read_iluvatar_trace<'a>(source: impl Into<Source<'a>>) -> Result<Vec<(String, f64)>, TraceError> {
    read_csv_with_header(source, &["func_name", "invoke_time_ms"], |f| {
        Ok((f.non_empty(0)?.to_string(), f.non_negative_f64(1)?))
    })
}

/// A function of Ilúvatar's metadata file.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionMetadata {
    /// Function name.
    pub function: String,
    /// Cold execution, ms (includes the cold start).
    pub cold_ms: f64,
    /// Warm execution, ms.
    pub warm_ms: f64,
    /// Memory, MB.
    pub mem_mb: f64,
    /// Mean inter-arrival time, ms.
    pub mean_iat_ms: f64,
}

/// Reads Ilúvatar's metadata file.
pub fn read_iluvatar_metadata<'a>(source: impl Into<Source<'a>>) -> Result<Vec<FunctionMetadata>, TraceError> {
    read_csv_with_header(source, &["func_name", "cold_dur_ms", "warm_dur_ms", "mem_mb", "mean_iat"], |f| {
        Ok(FunctionMetadata {
            function: f.non_empty(0)?.to_string(),
            cold_ms: f.non_negative_f64(1)?,
            warm_ms: f.non_negative_f64(2)?,
            mem_mb: f.positive_f64(3)?,
            mean_iat_ms: f.non_negative_f64(4)?,
        })
    })
}

/// An ML model an inference function loads (InstaInfer's model table).
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceModel {
    /// The action (function) that serves it.
    pub action: String,
    /// Model name.
    pub model: String,
    /// Time to load it into a warm sandbox, ms.
    pub load_ms: f64,
    /// Its size in memory, MB.
    pub size_mb: f64,
}

/// Reads InstaInfer's model table (`action,model,model_loading_latency_ms,model_size_mb`).
pub fn read_instainfer_models<'a>(source: impl Into<Source<'a>>) -> Result<Vec<InferenceModel>, TraceError> {
    read_csv_with_header(source, &["action", "model", "model_loading_latency_ms", "model_size_mb"], |f| {
        Ok(InferenceModel {
            action: f.non_empty(0)?.to_string(),
            model: f.non_empty(1)?.to_string(),
            load_ms: f.non_negative_f64(2)?,
            size_mb: f.positive_f64(3)?,
        })
    })
}

/// Reads an Electricity Maps hourly carbon-intensity file: the life-cycle
/// (LCA) intensity of each hour, gCO2e/kWh, in file order.
pub fn read_hourly_carbon_intensity<'a>(source: impl Into<Source<'a>>) -> Result<Vec<f64>, TraceError> {
    read_csv_with_header(source, &["Datetime (UTC)", "Carbon Intensity gCO₂eq/kWh (LCA)"], |f| {
        f.non_empty(0)?;
        f.non_negative_f64(1)
    })
}
