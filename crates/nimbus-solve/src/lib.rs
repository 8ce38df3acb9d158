//! A thin facade over LP and MILP solvers.
//!
//! Domains describe a model once with [`Model`] (variables with bounds,
//! linear constraints, a linear objective) and call [`Model::solve`]; this
//! crate picks and drives the backend through `good_lp`:
//!
//! - **LPs** go to Clarabel, a pure-Rust primal–dual interior-point solver.
//!   Interior-point methods return a point in the relative interior of the
//!   optimal face when the optimum is not unique, which is what ECOS (the
//!   solver behind the reference Python schedulers) does too; a simplex
//!   method would return an arbitrary vertex instead.
//! - **MILPs** go to microlp (pure Rust, dual simplex with branch and bound).
//!   Its search is bounded by a *node* limit rather than a wall-clock limit,
//!   so a run's decisions never depend on how busy the machine is.
//!
//! The measured build cost of this choice is in `ARCHITECTURE.md`: both
//! backends are pure Rust (HiGHS' C++ build takes ~13 minutes on the CI
//! machines and is not used).
//!
//! Architecture invariants: no domain knowledge; deterministic for equal
//! inputs (variables, constraints and terms keep their insertion order).

use good_lp::{Expression, ProblemVariables, Solution as _, SolverModel, variable};

/// A variable of a [`Model`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Var(usize);

impl Var {
    /// Position of the variable in the model (creation order).
    pub fn index(self) -> usize {
        self.0
    }
}

/// Whether to minimise or maximise the objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sense {
    /// Minimise.
    Minimise,
    /// Maximise.
    Maximise,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Le,
    Ge,
    Eq,
}

#[derive(Debug, Clone)]
struct Row {
    terms: Vec<(Var, f64)>,
    relation: Relation,
    rhs: f64,
}

#[derive(Debug, Clone, Copy)]
struct VarDef {
    low: f64,
    high: f64,
    integer: bool,
}

/// Limits for the MILP search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolveOptions {
    /// Maximum branch-and-bound nodes; the best incumbent is returned when
    /// reached (`None`: prove optimality).
    pub node_limit: Option<u64>,
    /// Relative gap at which the search may stop (0: prove optimality).
    pub mip_gap: f64,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions { node_limit: Some(20_000), mip_gap: 1e-6 }
    }
}

/// How a solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Proven optimal (within the gap tolerance).
    Optimal,
    /// Feasible but stopped at the node limit.
    NodeLimit,
}

/// The values of a solved model.
#[derive(Debug, Clone)]
pub struct Solution {
    values: Vec<f64>,
    objective: f64,
    status: Status,
    backend: &'static str,
}

impl Solution {
    /// The value of `var`.
    pub fn value(&self, var: Var) -> f64 {
        self.values[var.0]
    }

    /// All values in variable order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The objective value.
    pub fn objective(&self) -> f64 {
        self.objective
    }

    /// How the solve ended.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The backend that produced it.
    pub fn backend(&self) -> &'static str {
        self.backend
    }
}

/// Why a model could not be solved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolveError {
    /// No point satisfies the constraints.
    #[error("the model is infeasible")]
    Infeasible,
    /// The objective can grow without limit.
    #[error("the model is unbounded")]
    Unbounded,
    /// The backend failed (numerical trouble, limits without an incumbent).
    #[error("the {backend} solver failed: {message}")]
    Backend {
        /// Backend name.
        backend: &'static str,
        /// What it reported.
        message: String,
    },
}

/// A linear (mixed-integer) model under construction.
#[derive(Debug, Clone, Default)]
pub struct Model {
    vars: Vec<VarDef>,
    rows: Vec<Row>,
    objective: Vec<(Var, f64)>,
}

impl Model {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of variables.
    pub fn num_vars(&self) -> usize {
        self.vars.len()
    }

    /// Number of constraints.
    pub fn num_constraints(&self) -> usize {
        self.rows.len()
    }

    /// Whether any variable is integer.
    pub fn is_mixed_integer(&self) -> bool {
        self.vars.iter().any(|v| v.integer)
    }

    /// A continuous variable in `[low, high]` (infinite bounds allowed).
    pub fn continuous(&mut self, low: f64, high: f64) -> Var {
        assert!(low <= high, "empty bounds [{low}, {high}]");
        self.vars.push(VarDef { low, high, integer: false });
        Var(self.vars.len() - 1)
    }

    /// A 0/1 variable.
    pub fn binary(&mut self) -> Var {
        self.vars.push(VarDef { low: 0.0, high: 1.0, integer: true });
        Var(self.vars.len() - 1)
    }

    /// An integer variable in `[low, high]`.
    pub fn integer(&mut self, low: f64, high: f64) -> Var {
        assert!(low <= high, "empty bounds [{low}, {high}]");
        self.vars.push(VarDef { low, high, integer: true });
        Var(self.vars.len() - 1)
    }

    /// Adds `Σ coef·var ≤ rhs`.
    pub fn le(&mut self, terms: Vec<(Var, f64)>, rhs: f64) {
        self.push_row(terms, Relation::Le, rhs);
    }

    /// Adds `Σ coef·var ≥ rhs`.
    pub fn ge(&mut self, terms: Vec<(Var, f64)>, rhs: f64) {
        self.push_row(terms, Relation::Ge, rhs);
    }

    /// Adds `Σ coef·var = rhs`.
    pub fn eq(&mut self, terms: Vec<(Var, f64)>, rhs: f64) {
        self.push_row(terms, Relation::Eq, rhs);
    }

    fn push_row(&mut self, terms: Vec<(Var, f64)>, relation: Relation, rhs: f64) {
        debug_assert!(terms.iter().all(|(v, c)| v.0 < self.vars.len() && c.is_finite()));
        debug_assert!(rhs.is_finite());
        self.rows.push(Row { terms, relation, rhs });
    }

    /// Adds `coef·var` to the objective.
    pub fn objective_term(&mut self, var: Var, coef: f64) {
        debug_assert!(coef.is_finite());
        self.objective.push((var, coef));
    }

    /// Solves the model: Clarabel for LPs, microlp for MILPs.
    pub fn solve(&self, sense: Sense, options: &SolveOptions) -> Result<Solution, SolveError> {
        if self.is_mixed_integer() { self.solve_microlp(sense, options) } else { self.solve_clarabel(sense) }
    }

    /// Solves with microlp's simplex even when the model is a pure LP
    /// (a vertex solution, for callers that want one).
    pub fn solve_simplex(&self, sense: Sense, options: &SolveOptions) -> Result<Solution, SolveError> {
        self.solve_microlp(sense, options)
    }

    fn build(&self) -> (ProblemVariables, Vec<good_lp::Variable>, Expression) {
        let mut problem = ProblemVariables::new();
        let vars: Vec<good_lp::Variable> = self
            .vars
            .iter()
            .map(|d| {
                let mut def = variable().min(d.low).max(d.high);
                if d.integer {
                    def = def.integer();
                }
                problem.add(def)
            })
            .collect();
        let mut objective = Expression::with_capacity(self.objective.len());
        for (v, c) in &self.objective {
            objective.add_mul(*c, vars[v.0]);
        }
        (problem, vars, objective)
    }

    fn constraint(&self, row: &Row, vars: &[good_lp::Variable]) -> good_lp::Constraint {
        let mut expr = Expression::with_capacity(row.terms.len());
        for (v, c) in &row.terms {
            expr.add_mul(*c, vars[v.0]);
        }
        match row.relation {
            Relation::Le => expr.leq(row.rhs),
            Relation::Ge => expr.geq(row.rhs),
            Relation::Eq => expr.eq(row.rhs),
        }
    }

    fn objective_value(&self, values: &[f64]) -> f64 {
        self.objective.iter().map(|(v, c)| c * values[v.0]).sum()
    }

    fn solve_clarabel(&self, sense: Sense) -> Result<Solution, SolveError> {
        let (problem, vars, objective) = self.build();
        let unsolved = match sense {
            Sense::Minimise => problem.minimise(objective),
            Sense::Maximise => problem.maximise(objective),
        };
        let mut model = unsolved.using(good_lp::solvers::clarabel::clarabel);
        for row in &self.rows {
            model.add_constraint(self.constraint(row, &vars));
        }
        let solution = model.solve().map_err(|e| map_error("clarabel", e))?;
        let values: Vec<f64> = vars.iter().map(|v| solution.value(*v)).collect();
        Ok(Solution { objective: self.objective_value(&values), values, status: Status::Optimal, backend: "clarabel" })
    }

    fn solve_microlp(&self, sense: Sense, options: &SolveOptions) -> Result<Solution, SolveError> {
        self.solve_microlp_from(sense, options, None)
    }

    /// Solves a MILP starting from `start` (one value per variable), which
    /// the search uses as its first incumbent when it is feasible: the
    /// result is then never worse than `start`, even at the node limit.
    pub fn solve_from(&self, sense: Sense, options: &SolveOptions, start: &[f64]) -> Result<Solution, SolveError> {
        assert_eq!(start.len(), self.vars.len(), "one start value per variable");
        self.solve_microlp_from(sense, options, Some(start))
    }

    fn solve_microlp_from(
        &self,
        sense: Sense,
        options: &SolveOptions,
        start: Option<&[f64]>,
    ) -> Result<Solution, SolveError> {
        // microlp is driven directly (not through good_lp) for its
        // deterministic node limit and warm starts.
        let direction = match sense {
            Sense::Minimise => microlp::OptimizationDirection::Minimize,
            Sense::Maximise => microlp::OptimizationDirection::Maximize,
        };
        let mut problem = microlp::Problem::new(direction);
        let mut objective = vec![0.0; self.vars.len()];
        for (v, c) in &self.objective {
            objective[v.0] += c;
        }
        let mut vars = Vec::with_capacity(self.vars.len());
        for (d, c) in self.vars.iter().zip(&objective) {
            let var = if d.integer {
                let bound = |x: f64| x.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
                problem.add_integer_var(*c, (bound(d.low.ceil()), bound(d.high.floor())))
            } else {
                problem.add_var(*c, (d.low, d.high))
            };
            vars.push(var);
        }
        for row in &self.rows {
            let mut expr = microlp::LinearExpr::empty();
            for (v, c) in &row.terms {
                expr.add(vars[v.0], *c);
            }
            let op = match row.relation {
                Relation::Le => microlp::ComparisonOp::Le,
                Relation::Ge => microlp::ComparisonOp::Ge,
                Relation::Eq => microlp::ComparisonOp::Eq,
            };
            problem.add_constraint(expr, op, row.rhs);
        }
        let mut opts = microlp::SolveOptions::default();
        opts.node_limit = options.node_limit;
        opts.mip_gap = options.mip_gap;
        opts.warm_start = start.map(|values| vars.iter().copied().zip(values.iter().copied()).collect());
        let outcome = problem.solve_with(opts).map_err(|e| map_error("microlp", good_lp::ResolutionError::from(e)))?;
        let status = match outcome.termination_reason() {
            microlp::TerminationReason::NodeLimit => Status::NodeLimit,
            _ => Status::Optimal,
        };
        let solution = outcome.into_solution().map_err(|_| SolveError::Backend {
            backend: "microlp",
            message: "node limit reached before any feasible solution".into(),
        })?;
        let values: Vec<f64> = vars.iter().map(|v| solution.var_value(*v)).collect();
        Ok(Solution { objective: self.objective_value(&values), values, status, backend: "microlp" })
    }
}

fn map_error(backend: &'static str, error: good_lp::ResolutionError) -> SolveError {
    match error {
        good_lp::ResolutionError::Infeasible => SolveError::Infeasible,
        good_lp::ResolutionError::Unbounded => SolveError::Unbounded,
        other => SolveError::Backend { backend, message: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    /// max x + y s.t. x + 2y ≤ 4, 3x + y ≤ 6: optimum at (1.6, 1.2), objective 2.8.
    #[test]
    fn lp_by_hand() {
        let mut m = Model::new();
        let x = m.continuous(0.0, f64::INFINITY);
        let y = m.continuous(0.0, f64::INFINITY);
        m.le(vec![(x, 1.0), (y, 2.0)], 4.0);
        m.le(vec![(x, 3.0), (y, 1.0)], 6.0);
        m.objective_term(x, 1.0);
        m.objective_term(y, 1.0);
        for s in [
            m.solve(Sense::Maximise, &SolveOptions::default()),
            m.solve_simplex(Sense::Maximise, &SolveOptions::default()),
        ] {
            let s = s.expect("solvable");
            assert!(close(s.value(x), 1.6) && close(s.value(y), 1.2), "{:?}", s.values());
            assert!(close(s.objective(), 2.8));
        }
    }

    /// Knapsack: values 10, 13, 7 and weights 5, 6, 4 with capacity 10: take items 1 and 3 (value 20).
    #[test]
    fn milp_by_hand() {
        let mut m = Model::new();
        let items: Vec<Var> = (0..3).map(|_| m.binary()).collect();
        m.le(vec![(items[0], 5.0), (items[1], 6.0), (items[2], 4.0)], 10.0);
        for (v, value) in items.iter().zip([10.0, 13.0, 7.0]) {
            m.objective_term(*v, value);
        }
        let s = m.solve(Sense::Maximise, &SolveOptions::default()).expect("solvable");
        let picked: Vec<f64> = items.iter().map(|v| s.value(*v).round()).collect();
        assert_eq!(picked, [0.0, 1.0, 1.0]);
        assert_eq!(s.status(), Status::Optimal);
        assert_eq!(s.backend(), "microlp");
    }

    #[test]
    fn infeasible_is_reported() {
        let mut m = Model::new();
        let x = m.continuous(0.0, 1.0);
        m.ge(vec![(x, 1.0)], 2.0);
        m.objective_term(x, 1.0);
        assert!(m.solve_simplex(Sense::Maximise, &SolveOptions::default()).is_err());
        let mut m2 = Model::new();
        let b = m2.binary();
        m2.ge(vec![(b, 1.0)], 2.0);
        m2.objective_term(b, 1.0);
        assert_eq!(m2.solve(Sense::Maximise, &SolveOptions::default()).err(), Some(SolveError::Infeasible));
    }

    /// With a non-unique optimum (any split of x + y = 1 is optimal), the
    /// interior-point backend returns the centre of the optimal face.
    #[test]
    fn interior_point_picks_the_centre_of_a_tie() {
        let mut m = Model::new();
        let x = m.continuous(0.0, 1.0);
        let y = m.continuous(0.0, 1.0);
        m.le(vec![(x, 1.0), (y, 1.0)], 1.0);
        m.objective_term(x, 1.0);
        m.objective_term(y, 1.0);
        let s = m.solve(Sense::Maximise, &SolveOptions::default()).expect("solvable");
        assert!((s.value(x) - 0.5).abs() < 1e-3 && (s.value(y) - 0.5).abs() < 1e-3, "{:?}", s.values());
    }
}

#[cfg(test)]
mod warm_start_tests {
    use super::*;

    /// A warm start is used as the first incumbent: with a node limit of
    /// zero the search can only return it or better.
    #[test]
    fn warm_start_is_an_incumbent() {
        let mut m = Model::new();
        let items: Vec<Var> = (0..3).map(|_| m.binary()).collect();
        m.le(vec![(items[0], 5.0), (items[1], 6.0), (items[2], 4.0)], 10.0);
        for (v, value) in items.iter().zip([10.0, 13.0, 7.0]) {
            m.objective_term(*v, value);
        }
        let options = SolveOptions { node_limit: Some(0), mip_gap: 0.0 };
        let s = m.solve_from(Sense::Maximise, &options, &[1.0, 0.0, 1.0]).expect("feasible start");
        assert!(s.objective() >= 17.0 - 1e-9, "{}", s.objective());
    }
}
