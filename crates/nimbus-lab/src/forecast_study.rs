//! Forecast studies: which forecaster suits which series, by rolling-origin
//! evaluation (`nimbus forecast`, or `nimbus run` on a file with
//! `domain = "forecast"`).
//!
//! Paper: "Forecasting Algorithms for Intelligent Resource Scaling: An
//! Experimental Analysis" (SoCC'24, Forecast-study), an evaluation of
//! forecasters on Amazon Redshift Serverless query workloads. The
//! mechanism is the evaluation itself: the same forecasters on the same
//! series at the same origins, scored for accuracy and for what capacity
//! set at a forecast quantile would cost. Baselines are the forecasters
//! (naive and seasonal naive first). Everything here is real: real models
//! fitted on real series. Deviations: Redset, the study's data, is not
//! public here, so `scenarios/forecast/study.toml` uses the substitute
//! series of carbon-autoscaling-tail.md §5.1 (Redset's Parquet files,
//! or CSV exports, can be read); Prophet and the neural global models (DeepAR, N-BEATS) are not
//! built; AutoARIMA searches a smaller grid than R's stepwise search
//! (see `nimbus-forecast`); the study publishes no numbers, so the checks
//! are the expectations of §5.1, each allowed to fail.
//!
//! A study file names the models, the harness settings, the series (public
//! files read through `nimbus-trace`, or seeded synthetic ones) and checks
//! of the form "model A has a lower metric than model B on these series",
//! each allowed to fail:
//!
//! ```toml
//! name = "forecast-study"
//! domain = "forecast"
//! models = ["snaive24", "mstl", "theta24"]
//! [settings]          # all optional: these are the defaults
//! origins = 30
//! horizon = 24
//! window = 672
//! stride = 24         # steps between origins
//! season = 24         # MASE scaling season
//! capacity_quantile = 0.9
//! [[series]]
//! family = "carbon-intensity"
//! format = "csv"      # csv | gaia | azure2019 | redset | opendc | synthetic
//! path = "../shared/data/greendcc-prices-ci-weather/ci_direct_gco2_per_kwh_hourly_utc_2021_2024.csv"
//! columns = ["DE-LU", "US-CAL-CISO"]
//! step_s = 3600       # aggregate to this step (a multiple of the file's)
//! aggregate = "mean"  # or "sum" (the default for counts)
//! fill = "error"      # or "linear": interpolate interior gaps
//! [[check]]
//! name = "MSTL beats seasonal naive on seasonal CI"
//! series = ["DE-LU", "US-CAL-CISO"]   # names or families
//! model = "mstl"
//! baseline = "snaive24"
//! metric = "mae"
//! expect = "lower"    # or "within", with tolerance = 0.1
//! ```

use std::path::{Path, PathBuf};

use nimbus_forecast::evaluate::{self, Evaluation, Input, Settings};
use nimbus_forecast::{metrics, models, synthetic};
use nimbus_sim::params::{ParamError, Params};
use nimbus_trace::series::{self, Series};

use crate::scenario::{LabError, parse_with_overrides, read_scenario_text};

/// Where a study's series come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// Columns of a timestamped CSV file.
    Csv {
        /// The file.
        path: PathBuf,
        /// Value columns.
        columns: Vec<String>,
        /// Series names, one per column (default: the column names).
        names: Vec<String>,
    },
    /// Hourly arrival counts of a GAIA job trace.
    Gaia {
        /// The file.
        path: PathBuf,
    },
    /// Per-minute invocation totals of an Azure Functions 2019 day file.
    Azure2019 {
        /// The file.
        path: PathBuf,
    },
    /// Events with a timestamp (Amazon Redset's queries exported to CSV),
    /// counted, or a column summed, per hour.
    Events {
        /// The file.
        path: PathBuf,
        /// The timestamp column.
        time_column: String,
        /// The column to sum (`None`: count events).
        value_column: Option<String>,
    },
    /// CPU usage of an OpenDC workload directory (SURF, Bitbrains): mean
    /// MHz per step, in total or per task.
    Opendc {
        /// The directory (tasks.parquet + fragments.parquet, or the legacy
        /// meta.parquet + trace.parquet).
        path: PathBuf,
        /// One series per task (VM) instead of the total.
        per_task: bool,
    },
    /// Seeded synthetic hourly series.
    Synthetic {
        /// One of [`synthetic::KINDS`].
        kind: String,
        /// Series generated.
        count: usize,
        /// Hours each.
        length: usize,
        /// Seed.
        seed: u64,
    },
}

impl Origin {
    /// Whether the source counts things (summed, not averaged, when
    /// aggregated to a longer step).
    fn counts(&self) -> bool {
        matches!(self, Origin::Gaia { .. } | Origin::Azure2019 { .. } | Origin::Events { .. })
    }

    /// The file it reads, if any.
    fn path(&self) -> Option<&Path> {
        match self {
            Origin::Csv { path, .. }
            | Origin::Gaia { path }
            | Origin::Azure2019 { path }
            | Origin::Events { path, .. }
            | Origin::Opendc { path, .. } => Some(path),
            Origin::Synthetic { .. } => None,
        }
    }

    /// Reads (or generates) its series; `step_s` is the aggregation step of
    /// event files.
    fn read(&self, step_s: Option<u64>) -> Result<Vec<Series>, String> {
        use nimbus_trace::Source;
        let one = |r: Result<Series, nimbus_trace::TraceError>| r.map(|s| vec![s]).map_err(|e| e.to_string());
        match self {
            Origin::Csv { path, columns, names } => {
                let wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
                let mut all = series::read_columns(Source::file(path), &wanted).map_err(|e| e.to_string())?;
                for (s, name) in all.iter_mut().zip(names) {
                    s.name.clone_from(name);
                }
                Ok(all)
            }
            Origin::Gaia { path } => one(series::read_arrival_counts(Source::file(path), 1.0)),
            Origin::Azure2019 { path } => one(series::azure2019_per_minute(Source::file(path))),
            Origin::Events { path, time_column, value_column } => one(series::read_event_aggregates(
                Source::file(path),
                time_column,
                value_column.as_deref(),
                step_s.unwrap_or(3600),
            )),
            Origin::Opendc { path, per_task } => {
                let workload = nimbus_trace::opendc::read_workload(path).map_err(|e| e.to_string())?;
                let name = nimbus_trace::opendc::series_name(path);
                nimbus_trace::opendc::cpu_usage(&workload, step_s.unwrap_or(3600), *per_task, &name)
                    .map_err(|m| format!("{}: {m}", path.display()))
            }
            Origin::Synthetic { kind, count, length, seed } => {
                let all = synthetic::generate(kind, *count, *length, *seed).ok_or(format!("unknown kind {kind}"))?;
                Ok(all
                    .into_iter()
                    .enumerate()
                    .map(|(i, values)| Series { name: format!("{kind}-{i}"), start_unix_s: 0, step_s: 3600, values })
                    .collect())
            }
        }
    }
}

/// One `[[series]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSpec {
    /// Family name (groups series in reports and checks).
    pub family: String,
    /// Source.
    pub origin: Origin,
    /// Aggregate to this step (seconds), if set.
    pub step_s: Option<u64>,
    /// Sum (counts) rather than average when aggregating.
    pub sum: bool,
    /// Interpolate interior gaps instead of refusing them.
    pub fill_linear: bool,
}

/// One `[[check]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What it says.
    pub name: String,
    /// Series names or families it covers.
    pub series: Vec<String>,
    /// The model expected to do well.
    pub model: String,
    /// The model it is compared with.
    pub baseline: String,
    /// Index into [`metrics::NAMES`].
    pub metric: usize,
    /// `None`: lower; `Some(t)`: at most (1 + t) × baseline.
    pub within: Option<f64>,
}

/// A study file, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Study {
    /// Name.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Description.
    pub description: String,
    /// Model specs, in report order.
    pub models: Vec<String>,
    /// Harness settings.
    pub settings: Settings,
    /// Series entries.
    pub series: Vec<SeriesSpec>,
    /// Checks.
    pub checks: Vec<Check>,
}

/// A series ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSeries {
    /// Family.
    pub family: String,
    /// Name (the column, or file stem, or `kind-i`).
    pub name: String,
    /// Seconds since 1970 of the first value (0 when relative).
    pub start_unix_s: i64,
    /// Seconds per step.
    pub step_s: u64,
    /// Values.
    pub values: Vec<f64>,
    /// What was done to it (gaps filled, values left out).
    pub notes: Vec<String>,
}

/// A check's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckVerdict {
    /// The check.
    pub check: Check,
    /// Mean metric of the model over the covered series' origins.
    pub model_mean: f64,
    /// Mean metric of the baseline.
    pub baseline_mean: f64,
    /// `Some(true)` holds, `Some(false)` does not, `None` not comparable
    /// (no defined values, or a model failed everywhere).
    pub holds: Option<bool>,
}

/// Everything a study produced.
#[derive(Debug, Clone)]
pub struct StudyResult {
    /// The series evaluated.
    pub series: Vec<LoadedSeries>,
    /// The evaluation.
    pub evaluation: Evaluation,
    /// Check verdicts.
    pub checks: Vec<CheckVerdict>,
}

/// Command-line changes to a study.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StudyOverrides {
    /// `--set KEY=VALUE`.
    pub set: Vec<(String, String)>,
    /// `--models`: replaces the study's list.
    pub models: Option<Vec<String>>,
    /// `--series`: ad-hoc series specs `FORMAT:PATH[#COLUMN,...]`, added.
    pub series: Vec<String>,
}

const STUDY_KEYS: &[&str] = &["name", "domain", "description", "models", "settings", "series", "check"];
const SETTING_KEYS: &[&str] = &["origins", "horizon", "window", "stride", "season", "capacity_quantile"];
/// The `format`s of a `[[series]]` entry.
const FORMATS: &[&str] = &["csv", "gaia", "azure2019", "redset", "opendc", "synthetic"];
/// Keys every `[[series]]` entry may have.
const SERIES_KEYS: &[&str] = &["family", "format", "step_s", "aggregate", "fill"];

/// The keys a `[[series]]` entry of `format` may add to [`SERIES_KEYS`]
/// (a key another format reads is refused, not ignored).
fn format_keys(format: &str) -> &'static [&'static str] {
    match format {
        "csv" => &["path", "columns", "names"],
        "redset" => &["path", "time_column", "value_column"],
        "opendc" => &["path", "per_task"],
        "synthetic" => &["kind", "count", "length", "seed"],
        _ => &["path"],
    }
}
const CHECK_KEYS: &[&str] = &["name", "series", "model", "baseline", "metric", "expect", "tolerance"];

/// The most series one study may evaluate.
pub const MAX_SERIES: usize = 100_000;
/// The most synthetic values one `[[series]]` entry may generate (800 MB).
pub const MAX_SYNTHETIC_POINTS: usize = 100_000_000;
/// The most (series, model, origin) cells one study may score (each keeps
/// its scores, about 130 bytes).
pub const MAX_CELLS: usize = 10_000_000;

impl Study {
    /// Loads a study file.
    pub fn load(path: &Path, overrides: &StudyOverrides) -> Result<Study, LabError> {
        let text = read_scenario_text(path)?;
        Self::from_text(path, &text, overrides)
    }

    /// A study with no file: ad-hoc series and models from the command line.
    pub fn ad_hoc(overrides: &StudyOverrides) -> Result<Study, LabError> {
        Self::from_text(Path::new("(command line)"), "name = \"forecast\"\ndomain = \"forecast\"\n", overrides)
    }

    /// Parses a study from its text (`path` is used in messages).
    pub fn from_text(path: &Path, text: &str, overrides: &StudyOverrides) -> Result<Study, LabError> {
        let root = parse_with_overrides(path, text, &overrides.set)?;
        let err = |error: ParamError| LabError::Param { path: path.to_path_buf(), error };
        let plain = |message: String| LabError::Domain { path: path.to_path_buf(), message };
        root.finish(STUDY_KEYS).map_err(err)?;
        let name = root.required_str("name").map_err(err)?.to_string();
        let domain = root.required_str("domain").map_err(err)?;
        if domain != "forecast" {
            return Err(err(root.error("domain", format!("a forecast study has domain \"forecast\", not {domain:?}"))));
        }
        let description = root.str("description").map_err(err)?.unwrap_or_default().to_string();
        let model_specs: Vec<String> = match &overrides.models {
            Some(list) => list.clone(),
            None => match root.str_or_list("models").map_err(err)? {
                Some(list) => list.into_iter().map(str::to_string).collect(),
                None => models::DEFAULT_SET.iter().map(|s| s.to_string()).collect(),
            },
        };
        if model_specs.is_empty() {
            return Err(err(root.error("models", "lists no model")));
        }
        let mut model_names = Vec::new();
        for spec in &model_specs {
            let model = models::parse(spec).map_err(|e| match overrides.models {
                Some(_) => plain(format!("--models: {e}")),
                None => err(root.error("models", e.to_string())),
            })?;
            if model_names.contains(&model.name()) {
                return Err(plain(format!("model `{}` is listed twice", model.name())));
            }
            model_names.push(model.name());
        }
        let settings = match root.table("settings").map_err(err)? {
            None => Settings::default(),
            Some(t) => read_settings(t).map_err(err)?,
        };
        settings.check().map_err(|e| plain(format!("[settings]: {e}")))?;
        let mut series = Vec::new();
        for t in root.tables("series").map_err(err)? {
            series.push(read_series(t).map_err(err)?);
        }
        for spec in &overrides.series {
            series.push(parse_series_flag(spec).map_err(|m| plain(format!("--series {spec:?}: {m}")))?);
        }
        if series.is_empty() {
            return Err(plain("no series to evaluate: add [[series]] entries or --series FORMAT:PATH[#COLUMN]".into()));
        }
        let mut checks = Vec::new();
        for t in root.tables("check").map_err(err)? {
            checks.push(read_check(t, &model_names).map_err(err)?);
        }
        Ok(Study { name, path: path.to_path_buf(), description, models: model_names, settings, series, checks })
    }
}

fn read_settings(t: &Params) -> Result<Settings, ParamError> {
    t.finish(SETTING_KEYS)?;
    let d = Settings::default();
    let horizon = t.usize_in("horizon", d.horizon, 1..=nimbus_forecast::forecast::MAX_HORIZON)?;
    Ok(Settings {
        origins: t.usize_in("origins", d.origins, 1..=10_000)?,
        horizon,
        window: t.usize_in("window", d.window, 1..=10_000_000)?,
        stride: t.usize_in("stride", horizon, 1..=1_000_000)?,
        season: t.usize_in("season", d.season, 1..=100_000)?,
        capacity_quantile: t.f64_in("capacity_quantile", d.capacity_quantile, 0.01..=0.99)?,
    })
}

fn read_series(t: &Params) -> Result<SeriesSpec, ParamError> {
    let format = t.choice_or("format", FORMATS, "csv")?;
    let keys: Vec<&str> = SERIES_KEYS.iter().chain(format_keys(format)).copied().collect();
    t.finish(&keys)?;
    let path = || t.required_str("path").map(PathBuf::from);
    let origin = match format {
        "csv" => {
            let columns: Vec<String> = t
                .str_or_list("columns")?
                .ok_or_else(|| t.error("columns", "a csv series needs `columns`: the value column names"))?
                .into_iter()
                .map(str::to_string)
                .collect();
            if columns.is_empty() {
                return Err(t.error("columns", "lists no column"));
            }
            let names: Vec<String> = match t.str_or_list("names")? {
                None => columns.clone(),
                Some(list) => list.into_iter().map(str::to_string).collect(),
            };
            if names.len() != columns.len() {
                return Err(t.error("names", format!("lists {} names for {} columns", names.len(), columns.len())));
            }
            Origin::Csv { path: path()?, columns, names }
        }
        "gaia" => Origin::Gaia { path: path()? },
        "azure2019" => Origin::Azure2019 { path: path()? },
        "redset" => Origin::Events {
            path: path()?,
            time_column: t.str("time_column")?.unwrap_or("arrival_timestamp").to_string(),
            value_column: t.str("value_column")?.map(str::to_string),
        },
        "opendc" => Origin::Opendc { path: path()?, per_task: t.bool_or("per_task", false)? },
        _ => {
            let kind = t.required_str("kind")?;
            if !synthetic::KINDS.contains(&kind) {
                return Err(
                    t.error("kind", format!("unknown kind {kind:?}; available: {}", synthetic::KINDS.join(", ")))
                );
            }
            let count = t.usize_in("count", 1, 1..=MAX_SERIES)?;
            let length = t.usize_in("length", 24 * 7 * 8, 1..=series::MAX_POINTS)?;
            if count.saturating_mul(length) > MAX_SYNTHETIC_POINTS {
                return Err(t.error(
                    "count",
                    format!("{count} series × {length} values is more than {MAX_SYNTHETIC_POINTS} values to generate"),
                ));
            }
            Origin::Synthetic { kind: kind.to_string(), count, length, seed: t.u64_or("seed", 0)? }
        }
    };
    let counts = origin.counts();
    let default_family = match &origin {
        Origin::Csv { .. } => "csv".to_string(),
        Origin::Gaia { .. } => "gaia-arrivals".to_string(),
        Origin::Azure2019 { .. } => "azure-functions".to_string(),
        Origin::Events { .. } => "redset".to_string(),
        Origin::Opendc { .. } => "cpu-usage".to_string(),
        Origin::Synthetic { kind, .. } => format!("synthetic-{kind}"),
    };
    let step_s = match t.get("step_s") {
        None => None,
        Some(_) => Some(t.u64_in("step_s", 3600, 1..=31_622_400)?),
    };
    Ok(SeriesSpec {
        family: t.str("family")?.map_or(default_family, str::to_string),
        origin,
        step_s,
        sum: t.choice_or("aggregate", &["mean", "sum"], if counts { "sum" } else { "mean" })? == "sum",
        fill_linear: t.choice_or("fill", &["error", "linear"], "error")? == "linear",
    })
}

/// `FORMAT:PATH[#COLUMN,...]` (csv needs columns), or `synthetic:KIND`.
fn parse_series_flag(spec: &str) -> Result<SeriesSpec, String> {
    let (format, rest) = spec.split_once(':').ok_or("expected FORMAT:PATH[#COLUMN,...], e.g. csv:prices.csv#DE-LU")?;
    let (path, columns) = match rest.rsplit_once('#') {
        Some((p, c)) => (p, c.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()),
        None => (rest, Vec::new()),
    };
    let path = PathBuf::from(path);
    let origin = match format {
        "csv" => {
            if columns.is_empty() {
                let names = series::columns(nimbus_trace::Source::file(&path)).map_err(|e| e.to_string())?;
                return Err(format!(
                    "name the value column(s) after `#`; this file's columns after the timestamp are {}",
                    names.get(1..).unwrap_or_default().join(", ")
                ));
            }
            Origin::Csv { path, names: columns.clone(), columns }
        }
        "gaia" => Origin::Gaia { path },
        "azure2019" => Origin::Azure2019 { path },
        "redset" => {
            Origin::Events { path, time_column: "arrival_timestamp".into(), value_column: columns.into_iter().next() }
        }
        "opendc" => match columns.as_slice() {
            [] => Origin::Opendc { path, per_task: false },
            [what] if what == "per-task" => Origin::Opendc { path, per_task: true },
            _ => return Err("opendc:DIR takes no column; opendc:DIR#per-task gives one series per task".into()),
        },
        "synthetic" => {
            let kind = rest.to_string();
            if !synthetic::KINDS.contains(&kind.as_str()) {
                return Err(format!("unknown synthetic kind {kind:?}; available: {}", synthetic::KINDS.join(", ")));
            }
            Origin::Synthetic { kind, count: 1, length: 24 * 7 * 8, seed: 0 }
        }
        other => return Err(format!("unknown format {other:?}; available: {}", FORMATS.join(", "))),
    };
    let counts = origin.counts();
    Ok(SeriesSpec { family: format.to_string(), origin, step_s: None, sum: counts, fill_linear: false })
}

fn read_check(t: &Params, models: &[String]) -> Result<Check, ParamError> {
    t.finish(CHECK_KEYS)?;
    let model_name = |key: &str| -> Result<String, ParamError> {
        let spec = t.required_str(key)?;
        let name = models::parse(spec).map_err(|e| t.error(key, e.to_string()))?.name();
        if !models.contains(&name) {
            return Err(t.error(key, format!("model `{name}` is not in the study's models ({})", models.join(", "))));
        }
        Ok(name)
    };
    let metric_name = t.str("metric")?.unwrap_or("mae");
    let metric = metrics::NAMES.iter().position(|m| *m == metric_name).ok_or_else(|| {
        t.error("metric", format!("unknown metric {metric_name:?}; available: {}", metrics::NAMES.join(", ")))
    })?;
    let expect = t.choice_or("expect", &["lower", "within"], "lower")?;
    let within = if expect == "within" { Some(t.f64_in("tolerance", 0.1, 0.0..=10.0)?) } else { None };
    let series: Vec<String> = t
        .str_or_list("series")?
        .ok_or_else(|| t.error("series", "name the series or families the check covers"))?
        .into_iter()
        .map(str::to_string)
        .collect();
    Ok(Check {
        name: t.required_str("name")?.to_string(),
        series,
        model: model_name("model")?,
        baseline: model_name("baseline")?,
        metric,
        within,
    })
}

/// The time of position `index` of a series, for messages and files.
pub fn time_of(series: &LoadedSeries, index: usize) -> String {
    let offset = i64::try_from(index).unwrap_or(i64::MAX).saturating_mul(i64::try_from(series.step_s).unwrap_or(1));
    if series.start_unix_s == 0 {
        format!("step {index}")
    } else {
        series::format_utc(series.start_unix_s.saturating_add(offset))
    }
}

fn finish(spec: &SeriesSpec, file: &str, s: Series, study: &Study) -> Result<LoadedSeries, String> {
    let mut notes = Vec::new();
    let mut s = s;
    if let Some(target) = spec.step_s
        && target != s.step_s
    {
        if target % s.step_s != 0 || target < s.step_s {
            return Err(format!(
                "{file}: series `{}` has a step of {} s; step_s = {target} is not a whole multiple of it",
                s.name, s.step_s
            ));
        }
        let factor = usize::try_from(target / s.step_s).unwrap_or(usize::MAX);
        let (aggregated, left_out) = s.aggregate(factor, spec.sum);
        if left_out > 0 {
            notes.push(if left_out == 1 {
                format!("the last value left out (an incomplete {target}-s block)")
            } else {
                format!("the last {left_out} values left out (an incomplete {target}-s block)")
            });
        }
        s = aggregated;
    }
    let mut loaded = LoadedSeries {
        family: spec.family.clone(),
        name: s.name.clone(),
        start_unix_s: s.start_unix_s,
        step_s: s.step_s,
        values: s.values,
        notes,
    };
    let needed = study.settings.needed();
    if loaded.values.len() >= needed {
        let first = loaded.values.len() - needed;
        let missing = loaded.values[first..].iter().filter(|v| !v.is_finite()).count();
        if missing > 0 {
            if !spec.fill_linear {
                let at = first + loaded.values[first..].iter().position(|v| !v.is_finite()).unwrap_or(0);
                return Err(format!(
                    "{file}: series `{}` has {missing} missing values in the part evaluated, the first at {}; \
                     set fill = \"linear\" to interpolate them",
                    loaded.name,
                    time_of(&loaded, at)
                ));
            }
            let filled = fill_linear(&mut loaded.values[first..])
                .map_err(|m| format!("{file}: series `{}`: {m}", loaded.name))?;
            loaded.notes.push(if filled == 1 {
                "1 missing value interpolated".to_string()
            } else {
                format!("{filled} missing values interpolated")
            });
        }
    }
    if loaded.values.iter().any(|v| *v < 0.0) {
        loaded.notes.push("has negative values: forecasts are not clamped at zero".into());
    }
    Ok(loaded)
}

/// Interpolates NaN runs between defined values; returns how many were
/// filled. A run at either end is an error (nothing to interpolate from).
fn fill_linear(values: &mut [f64]) -> Result<usize, String> {
    let n = values.len();
    let mut filled = 0;
    let mut i = 0;
    while i < n {
        if values[i].is_finite() {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && !values[i].is_finite() {
            i += 1;
        }
        if start == 0 || i == n {
            return Err("missing values at the start or end of the part evaluated cannot be interpolated".into());
        }
        let (a, b) = (values[start - 1], values[i]);
        let span = (i - start + 1) as f64;
        for (k, v) in values[start..i].iter_mut().enumerate() {
            *v = a + (b - a) * (k + 1) as f64 / span;
        }
        filled += i - start;
    }
    Ok(filled)
}

/// Reads every series of a study.
pub fn load_series(study: &Study) -> Result<Vec<LoadedSeries>, LabError> {
    let fail = |message: String| LabError::Domain { path: study.path.clone(), message };
    let mut out = Vec::new();
    for spec in &study.series {
        let file = match spec.origin.path() {
            Some(path) if !path.exists() => return Err(fail(missing_file(path))),
            Some(path) => path.display().to_string(),
            None => "synthetic".to_string(),
        };
        for s in spec.origin.read(spec.step_s).map_err(fail)? {
            out.push(finish(spec, &file, s, study).map_err(fail)?);
        }
        if out.len() > MAX_SERIES {
            return Err(fail(format!("more than {MAX_SERIES} series")));
        }
    }
    let mut names: Vec<(&str, &str)> = out.iter().map(|s| (s.family.as_str(), s.name.as_str())).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(fail(format!(
            "series `{}` appears twice in family `{}`; give the entries different families",
            w[0].1, w[0].0
        )));
    }
    Ok(out)
}

fn missing_file(path: &Path) -> String {
    format!(
        "{}: no such file (the public data sets live in ../shared/data; scenarios/forecast/synthetic.toml runs without them)",
        path.display()
    )
}

/// Runs the evaluation and the checks.
pub fn run(study: &Study, series: Vec<LoadedSeries>) -> Result<StudyResult, LabError> {
    let fail = |message: String| LabError::Domain { path: study.path.clone(), message };
    let models: Vec<_> =
        study.models.iter().map(|m| models::parse(m)).collect::<Result<_, _>>().map_err(|e| fail(e.to_string()))?;
    let cells = series.len().saturating_mul(models.len()).saturating_mul(study.settings.origins);
    if cells > MAX_CELLS {
        return Err(fail(format!(
            "{} series × {} models × {} origins = {cells} forecasts to score; at most {MAX_CELLS} per study \
             (split the study or use fewer origins)",
            series.len(),
            models.len(),
            study.settings.origins
        )));
    }
    let inputs: Vec<Input> = series
        .iter()
        .map(|s| Input {
            name: format!("{}/{}", s.family, s.name),
            values: s.values.clone(),
            clock: nimbus_forecast::Clock { start_unix_s: s.start_unix_s, step_s: s.step_s },
        })
        .collect();
    let evaluation = evaluate::evaluate(&inputs, &models, &study.settings).map_err(|e| fail(e.to_string()))?;
    let mut checks = Vec::new();
    for check in &study.checks {
        let covered: Vec<usize> = series
            .iter()
            .enumerate()
            .filter(|(_, s)| check.series.iter().any(|n| *n == s.name || *n == s.family))
            .map(|(i, _)| i)
            .collect();
        if covered.is_empty() {
            return Err(fail(format!("check `{}`: no series or family named {}", check.name, check.series.join(", "))));
        }
        let index = |name: &str| study.models.iter().position(|m| m == name).unwrap_or(0);
        let model = evaluation.aggregate(index(&check.model), &covered, check.metric).summary.mean;
        let baseline = evaluation.aggregate(index(&check.baseline), &covered, check.metric).summary.mean;
        let holds = if model.is_finite() && baseline.is_finite() {
            Some(match check.within {
                None => model < baseline,
                Some(t) => model <= baseline * (1.0 + t),
            })
        } else {
            None
        };
        checks.push(CheckVerdict { check: check.clone(), model_mean: model, baseline_mean: baseline, holds });
    }
    Ok(StudyResult { series, evaluation, checks })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUDY: &str = r#"
name = "t"
domain = "forecast"
models = ["naive", "snaive24", "croston"]
[settings]
origins = 3
window = 168
[[series]]
format = "synthetic"
kind = "diurnal"
count = 2
length = 400
[[check]]
name = "seasonal naive beats naive on daily cycles"
series = "synthetic-diurnal"
model = "snaive24"
baseline = "naive"
"#;

    #[test]
    fn a_synthetic_study_runs_and_checks() {
        let study = Study::from_text(Path::new("s.toml"), STUDY, &StudyOverrides::default()).expect("valid study");
        assert_eq!(study.settings.stride, 24);
        let series = load_series(&study).expect("synthetic series");
        assert_eq!(series.len(), 2);
        let result = run(&study, series).expect("runs");
        assert_eq!(result.evaluation.cells.len(), 2 * 3 * 3);
        assert_eq!(result.checks[0].holds, Some(true), "{:?}", result.checks[0]);
    }

    #[test]
    fn mistakes_are_named() {
        let bad = |from: &str, to: &str| {
            Study::from_text(Path::new("s.toml"), &STUDY.replace(from, to), &StudyOverrides::default())
                .expect_err("refused")
                .to_string()
        };
        assert!(bad("\"croston\"]", "\"prophet\"]").contains("unknown model `prophet`"));
        assert!(bad("baseline = \"naive\"", "baseline = \"theta\"").contains("not in the study's models"));
        assert!(bad("window = 168", "window = 0").contains("window"));
        assert!(bad("kind = \"diurnal\"", "kind = \"weekly\"").contains("available: diurnal"));
        assert!(bad("origins = 3", "origins = 3\nhorizn = 4").contains("horizn"));
        let e = bad("model = \"snaive24\"", "model = \"snaive24\"\nmetric = \"rmse\"");
        assert!(e.contains("unknown metric") && e.contains("mase"), "{e}");
        let study = Study::from_text(
            Path::new("s.toml"),
            &STUDY.replace("length = 400", "length = 100"),
            &StudyOverrides::default(),
        )
        .expect("valid");
        let e = run(&study, load_series(&study).expect("series")).expect_err("too short").to_string();
        assert!(e.contains("has 100 values") && e.contains("need 240"), "{e}");
    }

    #[test]
    fn gaps_are_refused_or_filled() {
        let mut v = vec![1.0, f64::NAN, f64::NAN, 4.0];
        assert_eq!(fill_linear(&mut v), Ok(2));
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0]);
        assert!(fill_linear(&mut [f64::NAN, 1.0]).is_err());
    }
}
