//! Claims: what a paper reports, checked against our runs.
//!
//! A `[[claim]]` table names a metric and a subject policy, and either
//! - a `baseline` policy: the verdict compares our subject/baseline ratio
//!   with the expectation (`lower`, `higher`, optionally by at least
//!   `factor`; or `match` the paper's `paper_ratio` within `tolerance`), or
//! - no baseline: the verdict compares our value with the paper's
//!   `paper_value` (`match` within `tolerance`, a fraction) or with a
//!   `threshold` (`lower`/`higher`).
//!
//! With `significant = true`, a `lower`/`higher` claim against a baseline
//! holds only when the 95% confidence interval of the per-seed paired
//! ratios lies wholly on the claimed side of 1 (a difference within the
//! noise of the seeds does not count).
//!
//! The paper's figure is always shown beside ours. A claim is `not
//! comparable` when a run lacks the metric, or when the runs used synthetic
//! stand-ins for the data the paper measured.

use nimbus_sim::params::{ParamError, Params};

use crate::stats::{Summary, paired_ratio};

/// What must be true for a claim to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Ours is lower (than the baseline or the threshold).
    Lower,
    /// Ours is higher.
    Higher,
    /// Ours matches the paper's number within the tolerance.
    Match,
}

/// A paper's claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// Where the claim comes from (paper, table, setting).
    pub source: String,
    /// Metric name.
    pub metric: String,
    /// Policy label the claim is about.
    pub subject: String,
    /// Policy label it is compared with.
    pub baseline: Option<String>,
    /// The paper's value of the metric for the subject.
    pub paper_value: Option<f64>,
    /// The paper's subject/baseline ratio.
    pub paper_ratio: Option<f64>,
    /// The expectation.
    pub expect: Expect,
    /// Relative tolerance for `match`.
    pub tolerance: Option<f64>,
    /// Minimum improvement factor for `lower`/`higher` against a baseline.
    pub factor: Option<f64>,
    /// Absolute threshold for `lower`/`higher` without a baseline.
    pub threshold: Option<f64>,
    /// Whether a `lower`/`higher` claim against a baseline needs the paired
    /// ratios' 95% interval to exclude 1.
    pub significant: bool,
}

const KEYS: &[&str] = &[
    "source",
    "metric",
    "subject",
    "baseline",
    "paper_value",
    "paper_ratio",
    "expect",
    "tolerance",
    "factor",
    "threshold",
    "significant",
];

impl Claim {
    /// Reads a `[[claim]]` table, checking that the fields fit together.
    pub fn from_params(p: &Params) -> Result<Claim, ParamError> {
        let expect = match p.choice_or("expect", &["lower", "higher", "match"], "lower")? {
            "lower" => Expect::Lower,
            "higher" => Expect::Higher,
            _ => Expect::Match,
        };
        let claim = Claim {
            source: p.required_str("source")?.to_string(),
            metric: p.required_str("metric")?.to_string(),
            subject: p.required_str("subject")?.to_string(),
            baseline: p.str("baseline")?.map(str::to_string),
            paper_value: p.f64("paper_value")?,
            paper_ratio: p.f64("paper_ratio")?,
            expect,
            tolerance: p.f64("tolerance")?,
            factor: p.f64("factor")?,
            threshold: p.f64("threshold")?,
            significant: p.bool_or("significant", false)?,
        };
        p.finish(KEYS)?;
        match (expect, claim.baseline.is_some()) {
            (Expect::Match, true) if claim.paper_ratio.is_none() || claim.tolerance.is_none() => {
                return Err(p.error("expect", "`match` against a baseline needs `paper_ratio` and `tolerance`"));
            }
            (Expect::Match, false) if claim.paper_value.is_none() || claim.tolerance.is_none() => {
                return Err(p.error("expect", "`match` without a baseline needs `paper_value` and `tolerance`"));
            }
            (Expect::Lower | Expect::Higher, false) if claim.threshold.is_none() => {
                return Err(p.error("expect", "`lower`/`higher` without a baseline needs a `threshold`"));
            }
            _ => {}
        }
        if claim.significant && (expect == Expect::Match || claim.baseline.is_none()) {
            return Err(p.error("significant", "`significant` applies to `lower`/`higher` claims against a baseline"));
        }
        if claim.tolerance.is_some_and(|t| t < 0.0) || claim.factor.is_some_and(|f| f < 1.0) {
            return Err(p.error("tolerance", "`tolerance` must be >= 0 and `factor` >= 1"));
        }
        Ok(claim)
    }
}

/// The outcome of checking a claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Our runs agree with the claim.
    Holds,
    /// Our runs contradict it.
    DoesNotHold,
    /// Our runs cannot speak to it (the reason says why).
    NotComparable(String),
}

impl Verdict {
    /// The verdict's name in reports.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::NotComparable(_) => "not comparable",
        }
    }
}

/// A claim with our figures and the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimResult {
    /// The claim.
    pub claim: Claim,
    /// Our subject's metric across seeds.
    pub ours: Summary,
    /// Our baseline's metric across seeds, when there is a baseline.
    pub ours_baseline: Option<Summary>,
    /// Our subject/baseline ratio of means.
    pub ours_ratio: Option<f64>,
    /// Per-seed paired ratios.
    pub paired: Option<Summary>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Checks `claim` given each policy's per-seed values of the claim's metric
/// (`values(label)`, NaN where a run lacks it) and whether the runs used
/// data fallbacks.
pub fn check(claim: &Claim, values: impl Fn(&str) -> Vec<f64>, fallbacks: &[String]) -> ClaimResult {
    let subject_values = values(&claim.subject);
    let ours = Summary::of(&subject_values);
    let (ours_baseline, ours_ratio, paired) = match &claim.baseline {
        Some(b) => {
            let base_values = values(b);
            let base = Summary::of(&base_values);
            let ratio = ours.mean / base.mean;
            (Some(base), Some(ratio), Some(paired_ratio(&subject_values, &base_values)))
        }
        None => (None, None, None),
    };
    let verdict = if !fallbacks.is_empty() {
        Verdict::NotComparable(format!("ran on synthetic stand-in data: {}", fallbacks.join("; ")))
    } else if ours.n < subject_values.len() || ours.n == 0 {
        Verdict::NotComparable(format!("metric `{}` is undefined in some runs of `{}`", claim.metric, claim.subject))
    } else if let Some(ratio) = ours_ratio {
        if !ratio.is_finite() {
            Verdict::NotComparable(format!("the ratio of `{}` to its baseline is undefined", claim.metric))
        } else {
            let clear = |side: f64| {
                !claim.significant
                    || paired.as_ref().is_some_and(|p| p.n >= 2 && (p.mean - 1.0) * side > p.ci95 && p.ci95.is_finite())
            };
            let holds = match claim.expect {
                Expect::Lower => ratio < 1.0 && claim.factor.is_none_or(|f| ratio <= 1.0 / f) && clear(-1.0),
                Expect::Higher => ratio > 1.0 && claim.factor.is_none_or(|f| ratio >= f) && clear(1.0),
                Expect::Match => {
                    let paper = claim.paper_ratio.expect("checked at load");
                    (ratio - paper).abs() <= claim.tolerance.expect("checked at load") * paper.abs()
                }
            };
            if holds { Verdict::Holds } else { Verdict::DoesNotHold }
        }
    } else {
        let v = ours.mean;
        let holds = match claim.expect {
            Expect::Lower => v < claim.threshold.expect("checked at load"),
            Expect::Higher => v > claim.threshold.expect("checked at load"),
            Expect::Match => {
                let paper = claim.paper_value.expect("checked at load");
                (v - paper).abs() <= claim.tolerance.expect("checked at load") * paper.abs()
            }
        };
        if holds { Verdict::Holds } else { Verdict::DoesNotHold }
    };
    ClaimResult { claim: claim.clone(), ours, ours_baseline, ours_ratio, paired, verdict }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(expect: Expect) -> Claim {
        Claim {
            source: "paper".into(),
            metric: "jct".into(),
            subject: "a".into(),
            baseline: Some("b".into()),
            paper_value: None,
            paper_ratio: Some(0.5),
            expect,
            tolerance: Some(0.1),
            factor: None,
            threshold: None,
            significant: false,
        }
    }

    fn values(label: &str) -> Vec<f64> {
        if label == "a" { vec![1.0, 1.2] } else { vec![2.0, 2.2] }
    }

    #[test]
    fn baseline_claims_can_hold_and_fail() {
        assert_eq!(check(&claim(Expect::Lower), values, &[]).verdict, Verdict::Holds);
        assert_eq!(check(&claim(Expect::Higher), values, &[]).verdict, Verdict::DoesNotHold);
        // Ratio 2.2/4.2 = 0.524, within 10% of 0.5.
        assert_eq!(check(&claim(Expect::Match), values, &[]).verdict, Verdict::Holds);
        let mut strict = claim(Expect::Lower);
        strict.factor = Some(3.0);
        assert_eq!(check(&strict, values, &[]).verdict, Verdict::DoesNotHold);
    }

    #[test]
    fn significant_claims_need_the_interval_clear_of_one() {
        let mut c = claim(Expect::Lower);
        c.significant = true;
        // Ratios 0.5 and 0.545: clearly below 1.
        assert_eq!(check(&c, values, &[]).verdict, Verdict::Holds);
        // Ratios 0.9 and 1.05: the mean is below 1, the interval is not.
        let noisy = |l: &str| if l == "a" { vec![0.9, 1.05] } else { vec![1.0, 1.0] };
        assert_eq!(check(&c, noisy, &[]).verdict, Verdict::DoesNotHold);
        c.significant = false;
        assert_eq!(check(&c, noisy, &[]).verdict, Verdict::Holds);
    }

    #[test]
    fn absolute_claims_and_fallbacks() {
        let mut c = claim(Expect::Match);
        c.baseline = None;
        c.paper_value = Some(1.05);
        assert_eq!(check(&c, values, &[]).verdict, Verdict::Holds); // mean 1.1 within 10% of 1.05
        c.paper_value = Some(1.5);
        assert_eq!(check(&c, values, &[]).verdict, Verdict::DoesNotHold);
        assert!(matches!(check(&c, values, &["synthetic".into()]).verdict, Verdict::NotComparable(_)));
        assert!(matches!(check(&c, |_| vec![f64::NAN], &[]).verdict, Verdict::NotComparable(_)));
    }
}
