//! Scenario files.
//!
//! A scenario is a TOML file: `name`, `domain`, `description`, `seeds`,
//! `metrics` (the ones the terminal table shows first), one `[[policy]]`
//! table per policy to compare (`name`, optional `label`, and the policy's
//! parameters), `[[claim]]` tables, and the domain's own tables (for the GPU
//! domain: `[cluster]`, `[workload]`, `[engine]`).

use std::path::{Path, PathBuf};

use nimbus_sim::params::{Param, ParamError, Params, Span, Value};

use crate::claims::Claim;
use crate::domain::{self, Domain, DomainError, Prepared};
use crate::toml_params;

/// Why a scenario cannot be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The file cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is larger than a scenario can be, or not text (the
    /// message names the file and position).
    #[error("{0}")]
    Input(String),
    /// The file is not valid TOML.
    #[error("{}{}: invalid TOML: {message}", path.display(), span.map(|s| format!(":{}:{}", s.line, s.column)).unwrap_or_default())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where.
        span: Option<Span>,
        /// The parser's message.
        message: String,
    },
    /// A key is missing, mistyped or unknown.
    #[error("{}{}{error}", path.display(), if error.span.is_some() { ":" } else { ": " })]
    Param {
        /// The file.
        path: PathBuf,
        /// Which key and what was expected.
        error: ParamError,
    },
    /// The domain cannot prepare or run the scenario (e.g. a malformed trace).
    #[error("{}: {message}", path.display())]
    Domain {
        /// The scenario file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The scenario would exceed the memory or event budget.
    #[error("{}: {message}", path.display())]
    Budget {
        /// The scenario file.
        path: PathBuf,
        /// What would be needed, what is allowed, and what to change.
        message: String,
    },
    /// A run failed.
    #[error("{}: policy `{policy}`, seed {seed}: {message}", path.display())]
    Run {
        /// The scenario file.
        path: PathBuf,
        /// The policy label.
        policy: String,
        /// The seed.
        seed: u64,
        /// What went wrong.
        message: String,
    },
}

/// One policy of a scenario.
#[derive(Debug, Clone)]
pub struct PolicySpec {
    /// Registry name.
    pub name: String,
    /// Display label (unique within the scenario; defaults to the name).
    pub label: String,
    /// The policy's own parameters.
    pub params: Params,
    /// A policy built by the embedding program (then `name` only labels
    /// it, and `params` is empty).
    pub external: Option<crate::ExternalPolicy>,
}

/// A loaded and prepared scenario.
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// Its name.
    pub name: String,
    /// Its domain.
    pub domain: &'static dyn Domain,
    /// What it is about.
    pub description: String,
    /// Seeds to run.
    pub seeds: Vec<u64>,
    /// Policies to compare, in file order.
    pub policies: Vec<PolicySpec>,
    /// Claims to check.
    pub claims: Vec<Claim>,
    /// Metrics to show first.
    pub metrics: Vec<String>,
    /// A hash of the file's text and overrides (for manifests and run ids).
    pub content_hash: u64,
    /// The domain's prepared form.
    pub prepared: Box<dyn Prepared>,
}

/// Command-line changes to a scenario.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Seeds to run instead of the file's.
    pub seeds: Option<Vec<u64>>,
    /// `dotted.key = value` settings (values parsed as TOML).
    pub set: Vec<(String, String)>,
}

/// The largest scenario file accepted: scenarios are written by hand, and
/// a larger file is almost certainly the wrong one (`/dev/zero`, a trace).
pub const MAX_SCENARIO_BYTES: u64 = 4 << 20;

/// The most seeds and policies one scenario may list.
pub const MAX_SEEDS: usize = 10_000;
/// See [`MAX_SEEDS`].
pub const MAX_POLICIES: usize = 1_000;

/// Reads a scenario file of at most [`MAX_SCENARIO_BYTES`] as UTF-8.
pub fn read_scenario_text(path: &Path) -> Result<String, LabError> {
    nimbus_trace::input::read_document(nimbus_trace::Source::file(path), MAX_SCENARIO_BYTES).map_err(|e| match e {
        nimbus_trace::TraceError::Io { path, source } => LabError::Io { path, source },
        other => LabError::Input(other.to_string()),
    })
}

/// Parses a TOML file's text and applies `--set KEY=VALUE` overrides
/// (values in TOML syntax).
pub(crate) fn parse_with_overrides(path: &Path, text: &str, set: &[(String, String)]) -> Result<Params, LabError> {
    let syntax = |(message, span): (String, Option<Span>)| LabError::Syntax { path: path.to_path_buf(), span, message };
    let mut root = toml_params::parse(text).map_err(syntax)?;
    for (key, value) in set {
        let parsed = toml_params::parse(&format!("v = {value}")).map_err(|(m, _)| LabError::Domain {
            path: path.to_path_buf(),
            message: format!("--set {key}={value}: {m}"),
        })?;
        let param = parsed.get("v").cloned().expect("parsed one key");
        root.set_path(key, Param { value: param.value, span: None })
            .map_err(|m| LabError::Domain { path: path.to_path_buf(), message: format!("--set {key}: {m}") })?;
    }
    Ok(root)
}

const LAB_KEYS: &[&str] = &["name", "domain", "description", "seeds", "metrics", "policy", "claim", "sweep"];

impl Scenario {
    /// Loads, validates and prepares a scenario file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Scenario, LabError> {
        let text = read_scenario_text(path)?;
        Self::from_text(path, &text, overrides)
    }

    /// Loads a scenario from its text (`path` is used in messages).
    pub fn from_text(path: &Path, text: &str, overrides: &Overrides) -> Result<Scenario, LabError> {
        let root = parse_with_overrides(path, text, &overrides.set)?;
        let param_err = |error: ParamError| LabError::Param { path: path.to_path_buf(), error };

        let name = root.required_str("name").map_err(param_err)?.to_string();
        let domain_name = root.required_str("domain").map_err(param_err)?;
        let domain =
            domain::find(domain_name).ok_or_else(|| {
                param_err(root.error(
                    "domain",
                    format!("unknown domain {domain_name:?}; available: {}", domain::names().join(", ")),
                ))
            })?;
        let description = root.str("description").map_err(param_err)?.unwrap_or_default().to_string();
        let seeds = match &overrides.seeds {
            Some(s) => s.clone(),
            None => root.u64_list("seeds").map_err(param_err)?.unwrap_or_else(|| vec![0]),
        };
        if seeds.is_empty() {
            return Err(param_err(root.error("seeds", "needs at least one seed")));
        }
        if seeds.len() > MAX_SEEDS {
            return Err(param_err(root.error("seeds", format!("lists {} seeds; at most {MAX_SEEDS}", seeds.len()))));
        }
        let metrics = match root.get("metrics").map(|p| &p.value) {
            None => Vec::new(),
            Some(Value::List(items)) => items
                .iter()
                .map(|p| match &p.value {
                    Value::Str(s) => Ok(s.clone()),
                    other => Err(param_err(
                        root.error("metrics", format!("expected a list of metric names, found {} in it", other.kind())),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(param_err(
                    root.error("metrics", format!("expected a list of metric names, found {}", other.kind())),
                ));
            }
        };

        let mut policies: Vec<PolicySpec> = Vec::new();
        for table in root.tables("policy").map_err(param_err)? {
            let name = table.required_str("name").map_err(param_err)?.to_string();
            let label = table.str("label").map_err(param_err)?.unwrap_or(&name).to_string();
            if policies.iter().any(|p| p.label == label) {
                return Err(param_err(
                    table.error("label", format!("two policies are labelled {label:?}; give each a distinct `label`")),
                ));
            }
            policies.push(PolicySpec { name, label, params: table.without(&["name", "label"]), external: None });
        }
        if policies.is_empty() {
            return Err(param_err(root.error("policy", "needs at least one [[policy]] table")));
        }
        if policies.len() > MAX_POLICIES {
            return Err(param_err(
                root.error("policy", format!("lists {} policies; at most {MAX_POLICIES}", policies.len())),
            ));
        }

        let claim_tables = root.tables("claim").map_err(param_err)?;
        let mut claims = Vec::new();
        for table in &claim_tables {
            claims.push(Claim::from_params(table).map_err(param_err)?);
        }

        let domain_error = |e: DomainError| match e {
            DomainError::Param(error) => LabError::Param { path: path.to_path_buf(), error },
            DomainError::Other(message) => LabError::Domain { path: path.to_path_buf(), message },
        };
        let prepared = domain.prepare(&root, &seeds).map_err(domain_error)?;
        let mut accepted: Vec<&str> = LAB_KEYS.to_vec();
        accepted.extend(domain.scenario_keys());
        root.finish(&accepted).map_err(param_err)?;
        for policy in &policies {
            prepared.check_policy(&policy.name, &policy.params).map_err(domain_error)?;
        }
        // After the policies: a misspelt policy name is reported as that,
        // not as a claim about a policy the scenario does not run.
        for claim in &claims {
            for who in std::iter::once(&claim.subject).chain(claim.baseline.as_ref()) {
                if !policies.iter().any(|p| &p.label == who) {
                    return Err(LabError::Domain {
                        path: path.to_path_buf(),
                        message: format!(
                            "claim {:?} refers to policy {who:?}, which the scenario does not run (policies: {})",
                            claim.source,
                            policies.iter().map(|p| p.label.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
            }
        }
        let known = prepared.metric_names();
        let unknown_metric =
            |name: &str| format!("unknown metric {name:?}; domain `{}` reports: {}", domain.name(), known.join(", "));
        if let Some(bad) = metrics.iter().find(|m| !known.contains(m)) {
            return Err(param_err(root.error("metrics", unknown_metric(bad))));
        }
        for (table, claim) in claim_tables.iter().zip(&claims) {
            if !known.contains(&claim.metric) {
                return Err(param_err(table.error("metric", unknown_metric(&claim.metric))));
            }
        }

        let mut hash_input = text.to_string();
        for (k, v) in &overrides.set {
            hash_input.push_str(&format!("\n--set {k}={v}"));
        }
        hash_input.push_str(&format!("\nseeds={seeds:?}"));
        Ok(Scenario {
            path: path.to_path_buf(),
            name,
            domain,
            description,
            seeds,
            policies,
            claims,
            metrics,
            content_hash: fnv1a(hash_input.as_bytes()),
            prepared,
        })
    }
}

/// FNV-1a, a stable (version-independent) hash for run ids and manifests.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
