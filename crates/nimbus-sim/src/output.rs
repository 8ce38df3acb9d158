//! What one run produces, in a form every domain shares.
//!
//! A run returns a [`RunOutput`]: summary [`Metric`]s (name with unit, value),
//! per-entity [`Table`]s (one row per job, request or invocation, with units
//! in column names), and [`Series`] for plots. Wall-clock measurements
//! (scheduler decision times) go in `timings`, apart from the deterministic
//! results, so that result files stay byte-identical across runs.
//! `nimbus-report` turns these into CSV, JSON, Markdown and SVG.

/// Whether smaller or larger values of a metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Smaller is better (latency, JCT, cost).
    Lower,
    /// Larger is better (throughput, attainment).
    Higher,
    /// Neither (descriptive counts).
    Neither,
}

/// One summary number of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Name with its unit last (`jct_h_mean`, `makespan_h`, `utilization`).
    pub name: String,
    /// Value (NaN when undefined, e.g. a mean over no jobs).
    pub value: f64,
    /// Direction of improvement.
    pub better: Better,
}

impl Metric {
    /// A metric.
    pub fn new(name: impl Into<String>, value: f64, better: Better) -> Self {
        Metric { name: name.into(), value, better }
    }
}

/// A table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// An integer.
    Int(i64),
    /// A float (NaN written as empty).
    Float(f64),
    /// Text.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// No value.
    Empty,
}

/// Per-entity rows (e.g. one row per job).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Table name (used in file names: `jobs`, `rounds`).
    pub name: String,
    /// Column names, units last.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

/// A sampled series for plots.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Series name (`utilization`).
    pub name: String,
    /// X-axis label with unit.
    pub x_label: String,
    /// Y-axis label with unit.
    pub y_label: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

/// Everything one (scenario, policy, seed) run produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunOutput {
    /// Summary metrics, deterministic.
    pub metrics: Vec<Metric>,
    /// Per-entity tables, deterministic.
    pub tables: Vec<Table>,
    /// Time series, deterministic.
    pub series: Vec<Series>,
    /// Wall-clock measurements (not reproducible; kept apart).
    pub timings: Vec<Metric>,
    /// Facts about the run a reader should know (e.g. jobs left unfinished).
    pub notes: Vec<String>,
}

impl RunOutput {
    /// The value of metric `name`, if present.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    /// The table named `name`, if present.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}
