//! Spark-like DAG jobs: stages of identical tasks whose durations depend on
//! how many executors the job holds, as in Decima's TPC-H measurements.
//!
//! Each stage keeps three duration tables keyed by the job's executor
//! count when they were measured (first wave, later waves, first-wave tasks
//! on an executor new to the job). Sampling follows the rules of Decima's
//! Spark-imitating simulator (decima-sim `spark_env/node.py`, as documented
//! there): the executor count is mapped onto the measured data points
//! `[5, 10, 20, 40, 50, 60, 80, 100]`, picking the lower or upper point at
//! random (the lower with probability equal to the count's distance above
//! it, over the interval, as decima-sim draws it); an executor new to the job draws a
//! fresh duration (or a first-wave one plus the warm-up delay), one that
//! ran the previous task of the same stage draws a later-wave duration, any
//! other a first-wave one. The tables are cleaned as Decima cleans them:
//! fresh durations are taken out of the first wave, and an empty first
//! wave takes the next smaller data point's.

use nimbus_sim::rng::SimRng;

/// Executor counts at which Decima measured the TPC-H durations.
pub const DATA_POINTS: [u32; 8] = [5, 10, 20, 40, 50, 60, 80, 100];

/// Which table a task's duration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wave {
    /// The executor is new to the job (warm-up).
    Fresh,
    /// The executor is new to the stage.
    First,
    /// The executor ran this stage's previous task.
    Rest,
}

/// The cleaned duration tables of one stage (ms), one row per data point.
#[derive(Debug, Clone, PartialEq)]
pub struct Durations {
    first: Vec<Vec<f64>>,
    rest: Vec<Vec<f64>>,
    fresh: Vec<Vec<f64>>,
    /// Mean of every duration listed (Decima's rough task duration).
    pub rough_ms: f64,
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The row for data point `point` of a table keyed by executor count: the
/// exact key, else the largest key (Decima: "more executors than tasks").
fn row(table: &[(u32, Vec<f64>)], point: u32) -> Vec<f64> {
    table
        .iter()
        .find(|(e, _)| *e == point)
        .or_else(|| table.iter().max_by_key(|(e, _)| *e))
        .map(|(_, d)| d.clone())
        .unwrap_or_default()
}

impl Durations {
    /// Cleans measured tables (keyed by executor count, ms).
    pub fn from_tables(
        first_wave: &[(u32, Vec<f64>)],
        rest_wave: &[(u32, Vec<f64>)],
        fresh: &[(u32, Vec<f64>)],
    ) -> Durations {
        let mut first = Vec::with_capacity(DATA_POINTS.len());
        let mut rest = Vec::with_capacity(DATA_POINTS.len());
        let mut fresh_rows = Vec::with_capacity(DATA_POINTS.len());
        let mut last_first: Vec<f64> = Vec::new();
        for &p in &DATA_POINTS {
            let fresh_row = row(fresh, p);
            // Take each fresh duration out of the first wave once.
            let mut pending = fresh_row.clone();
            let mut clean = Vec::new();
            for d in row(first_wave, p) {
                if let Some(i) = pending.iter().position(|f| *f == d) {
                    pending.swap_remove(i);
                } else {
                    clean.push(d);
                }
            }
            if clean.is_empty() {
                clean = last_first.clone();
            }
            last_first = clean.clone();
            first.push(clean);
            rest.push(row(rest_wave, p));
            fresh_rows.push(fresh_row);
        }
        let all: Vec<f64> = first.iter().chain(&rest).chain(&fresh_rows).flatten().copied().collect();
        let rough_ms = mean(&all).unwrap_or(0.0);
        Durations { first, rest, fresh: fresh_rows, rough_ms }
    }

    /// The data-point index a job holding `executors` samples at (Decima's
    /// interval map: between points `lo` and `hi`, `lo` with probability
    /// `(executors - lo) / (hi - lo)`, as decima-sim's `sample_executor_key`
    /// draws it).
    pub fn sample_point(executors: u32, rng: &mut SimRng) -> usize {
        let last = DATA_POINTS.len() - 1;
        if executors <= DATA_POINTS[0] {
            return 0;
        }
        if executors >= DATA_POINTS[last] {
            return last;
        }
        let upper = DATA_POINTS.iter().position(|&p| p >= executors).unwrap_or(last);
        if DATA_POINTS[upper] == executors {
            return upper;
        }
        let (left, right) = (DATA_POINTS[upper - 1], DATA_POINTS[upper]);
        // A uniform draw in 1..=right-left; at most executors-left means left.
        let draw = 1 + (rng.below(u64::from(right - left)) as u32);
        if draw <= executors - left { upper - 1 } else { upper }
    }

    /// A task duration (ms) for a job holding `executors`.
    pub fn sample(&self, executors: u32, wave: Wave, warmup_delay_ms: f64, rng: &mut SimRng) -> f64 {
        let p = Self::sample_point(executors, rng);
        let mut pick = |list: &[f64]| list[rng.index(list.len())];
        let (first, rest, fresh) = (&self.first[p], &self.rest[p], &self.fresh[p]);
        let d = match wave {
            Wave::Fresh if !fresh.is_empty() => Some(pick(fresh)),
            Wave::Fresh if !first.is_empty() => Some(pick(first) + warmup_delay_ms),
            Wave::Rest if !rest.is_empty() => Some(pick(rest)),
            _ if !first.is_empty() => Some(pick(first)),
            _ if !fresh.is_empty() => Some(pick(fresh)),
            _ if !rest.is_empty() => Some(pick(rest)),
            _ => None,
        };
        d.unwrap_or(self.rough_ms)
    }

    /// Mean first-wave and later-wave task durations (ms) at data point `p`.
    fn wave_means(&self, p: usize) -> (f64, f64) {
        let first = mean(&self.first[p]).or_else(|| mean(&self.fresh[p])).unwrap_or(self.rough_ms);
        let rest = mean(&self.rest[p]).unwrap_or(first);
        (first, rest)
    }

    /// Expected duration (ms) of a stage of `tasks` tasks run `k` at a time
    /// by a job holding `k` executors: one first wave, then later waves.
    /// Between data points the means are interpolated linearly.
    pub fn stage_ms(&self, tasks: u32, k: u32) -> f64 {
        let k = k.clamp(1, tasks.max(1));
        let waves = f64::from(tasks.div_ceil(k));
        let (first, rest) = self.interpolated_means(k);
        first + rest * (waves - 1.0)
    }

    fn interpolated_means(&self, k: u32) -> (f64, f64) {
        let last = DATA_POINTS.len() - 1;
        if k <= DATA_POINTS[0] {
            return self.wave_means(0);
        }
        if k >= DATA_POINTS[last] {
            return self.wave_means(last);
        }
        let upper = DATA_POINTS.iter().position(|&p| p >= k).unwrap_or(last);
        let (lo, hi) = (self.wave_means(upper - 1), self.wave_means(upper));
        let t = f64::from(k - DATA_POINTS[upper - 1]) / f64::from(DATA_POINTS[upper] - DATA_POINTS[upper - 1]);
        (lo.0 + t * (hi.0 - lo.0), lo.1 + t * (hi.1 - lo.1))
    }
}

/// One stage of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpec {
    /// Number of tasks.
    pub tasks: u32,
    /// Task durations.
    pub durations: Durations,
    /// Stages that wait for this one.
    pub children: Vec<usize>,
    /// Stages this one waits for.
    pub parents: Vec<usize>,
}

/// A job: a DAG of stages.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// Name (`10g/q2`, `synthetic-3`).
    pub name: String,
    /// Stages by index.
    pub stages: Vec<StageSpec>,
    /// Stage indices, parents before children.
    pub topo_order: Vec<usize>,
}

impl JobSpec {
    /// A job from stages and their children; `Err` names a cycle or a bad
    /// child index.
    pub fn new(
        name: String,
        tasks_and_durations: Vec<(u32, Durations)>,
        children: Vec<Vec<usize>>,
    ) -> Result<JobSpec, String> {
        let n = tasks_and_durations.len();
        if children.len() != n {
            return Err(format!("job `{name}`: {} child lists for {n} stages", children.len()));
        }
        if let Some((s, c)) =
            children.iter().enumerate().find_map(|(s, cs)| cs.iter().find(|&&c| c >= n).map(|&c| (s, c)))
        {
            return Err(format!("job `{name}`: stage {s} names child {c}, but there are {n} stages"));
        }
        let topo_order = nimbus_trace::dag::topological_order(&children)
            .map_err(|stuck| format!("job `{name}`: the stage graph has a cycle through stage {}", stuck[0]))?;
        let mut parents = vec![Vec::new(); n];
        for (s, cs) in children.iter().enumerate() {
            for &c in cs {
                parents[c].push(s);
            }
        }
        let stages = tasks_and_durations
            .into_iter()
            .zip(children)
            .zip(parents)
            .map(|(((tasks, durations), children), parents)| StageSpec { tasks, durations, children, parents })
            .collect();
        Ok(JobSpec { name, stages, topo_order })
    }

    /// A Decima TPC-H query.
    pub fn from_query(q: &nimbus_trace::tpch::Query) -> Result<JobSpec, String> {
        let stages = q
            .stages
            .iter()
            .map(|s| {
                let tasks = u32::try_from(s.tasks).map_err(|_| format!("job `{}`: too many tasks", q.name))?;
                Ok((tasks, Durations::from_tables(&s.first_wave, &s.rest_wave, &s.fresh)))
            })
            .collect::<Result<Vec<_>, String>>()?;
        JobSpec::new(q.name.clone(), stages, q.children.clone())
    }

    /// Total tasks.
    pub fn tasks(&self) -> u64 {
        self.stages.iter().map(|s| u64::from(s.tasks)).sum()
    }

    /// Total work (executor-ms) at the rough task duration.
    pub fn work_ms(&self) -> f64 {
        self.stages.iter().map(|s| f64::from(s.tasks) * s.durations.rough_ms).sum()
    }

    /// Each stage's expected duration (ms) when it runs all its tasks at
    /// once on up to `executors` executors.
    pub fn stage_times_ms(&self, executors: u32) -> Vec<f64> {
        self.stages.iter().map(|s| s.durations.stage_ms(s.tasks, s.tasks.min(executors))).collect()
    }
}

/// The synthetic stand-in for Decima's TPC-H jobs: 22 query shapes at
/// seven input sizes. Calibrated on the TPC-H tables: 2 to 20 stages in
/// layers, task counts of 1, 2, tens or hundreds that grow with the input
/// size, per-task medians of 50 ms to 5 s, and per-task time growing by
/// 0.3% to 1.3% per executor the job holds (the contention visible in the
/// measured tables, e.g. +28% and +120% from 5 to 100 executors).
pub fn synthetic_queries(seed: u64) -> Vec<JobSpec> {
    let streams = nimbus_sim::rng::RngStreams::new(seed);
    let mut rng = streams.stream("synthetic-tpch");
    let sizes = [("2g", 0.2), ("5g", 0.4), ("10g", 0.6), ("20g", 0.8), ("50g", 1.2), ("80g", 1.6), ("100g", 2.0)];
    let mut jobs = Vec::new();
    for q in 1..=22 {
        let stages = 2 + rng.index(19);
        let shape_seed = rng.next_u64();
        for (size, scale) in sizes {
            let mut shape = nimbus_sim::rng::RngStreams::new(shape_seed).stream("shape");
            let mut children = vec![Vec::new(); stages];
            for s in 1..stages {
                // Each stage feeds one later stage; the last stage is the sink.
                let parent = shape.index(s);
                children[parent].push(s);
            }
            let mut spec = Vec::with_capacity(stages);
            for _ in 0..stages {
                let base_tasks: f64 = [1.0, 2.0, 20.0, 100.0, 200.0][shape.index(5)];
                let tasks = ((base_tasks * scale).round() as u32).max(1);
                let median_ms = 50.0 * (100f64).powf(shape.uniform()) * (0.5 + scale);
                let growth = shape.uniform_range(0.003, 0.013);
                let mut tables = (Vec::new(), Vec::new(), Vec::new());
                for &p in &DATA_POINTS {
                    let per_task = median_ms * (1.0 + growth * f64::from(p));
                    let k = p.min(tasks) as usize;
                    let draw = |rng: &mut SimRng, n: usize, factor: f64| -> Vec<f64> {
                        (0..n).map(|_| (per_task * factor * rng.lognormal(0.0, 0.3)).round()).collect()
                    };
                    tables.0.push((p, draw(&mut rng, k, 1.2)));
                    tables.1.push((p, draw(&mut rng, tasks as usize - k, 1.0)));
                    tables.2.push((p, draw(&mut rng, k.div_ceil(4), 1.5)));
                }
                spec.push((tasks, Durations::from_tables(&tables.0, &tables.1, &tables.2)));
            }
            // Children listed in ascending order, as the readers give them.
            for c in &mut children {
                c.sort_unstable();
            }
            if let Ok(job) = JobSpec::new(format!("{size}/q{q}"), spec, children) {
                jobs.push(job);
            }
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[(u32, &[f64])]) -> Vec<(u32, Vec<f64>)> {
        rows.iter().map(|(e, d)| (*e, d.to_vec())).collect()
    }

    #[test]
    fn cleaning_takes_fresh_out_of_the_first_wave_and_fills_gaps() {
        let first = table(&[(5, &[10.0, 30.0, 30.0]), (10, &[40.0]), (20, &[7.0])]);
        let fresh = table(&[(5, &[30.0]), (10, &[40.0]), (20, &[])]);
        let rest = table(&[(5, &[1.0]), (10, &[]), (20, &[])]);
        let d = Durations::from_tables(&first, &rest, &fresh);
        assert_eq!(d.first[0], vec![10.0, 30.0], "one 30 ms duration was fresh");
        assert_eq!(d.first[1], vec![10.0, 30.0], "10 executors: every first-wave task was fresh");
        assert_eq!(d.first[2], vec![7.0]);
        // 40+ executors are absent: the largest key (20) stands in.
        assert_eq!(d.first[7], vec![7.0]);
        // Every row counts once per data point: 10 first-wave, 1 later-wave
        // and 2 fresh durations.
        assert_eq!(d.rough_ms, (10.0 + 30.0 + 10.0 + 30.0 + 7.0 * 6.0 + 1.0 + 30.0 + 40.0) / 13.0);
    }

    #[test]
    fn data_points_split_by_distance() {
        let mut rng = nimbus_sim::rng::RngStreams::new(1).stream("t");
        assert_eq!(Durations::sample_point(1, &mut rng), 0);
        assert_eq!(Durations::sample_point(40, &mut rng), 3);
        assert_eq!(Durations::sample_point(500, &mut rng), 7);
        // 12 executors lie between 10 and 20: Decima's rule takes the lower
        // point with probability (12 - 10) / (20 - 10).
        let lower = (0..10_000).filter(|_| Durations::sample_point(12, &mut rng) == 1).count();
        assert!((1_800..2_200).contains(&lower), "{lower}");
    }

    #[test]
    fn stage_time_counts_waves() {
        let first = table(&[(5, &[100.0]), (10, &[200.0])]);
        let rest = table(&[(5, &[50.0]), (10, &[80.0])]);
        let d = Durations::from_tables(&first, &rest, &table(&[(5, &[]), (10, &[])]));
        // 20 tasks on 5 executors: 4 waves, 100 + 3 x 50.
        assert_eq!(d.stage_ms(20, 5), 250.0);
        // On 10: 2 waves at the 10-executor means.
        assert_eq!(d.stage_ms(20, 10), 280.0);
        // Halfway from 5 to 10 (k = 7 -> 3 waves): means 140 and 62.
        assert!((d.stage_ms(20, 7) - (140.0 + 2.0 * 62.0)).abs() < 1e-9);
    }

    #[test]
    fn jobs_reject_cycles_and_bad_children() {
        let d = || Durations::from_tables(&table(&[(5, &[1.0])]), &table(&[(5, &[])]), &table(&[(5, &[])]));
        let e = JobSpec::new("j".into(), vec![(1, d()), (1, d())], vec![vec![1], vec![0]]).expect_err("cyclic");
        assert!(e.contains("cycle"), "{e}");
        let e = JobSpec::new("j".into(), vec![(1, d())], vec![vec![3]]).expect_err("bad child");
        assert!(e.contains("names child 3"), "{e}");
        let j = JobSpec::new("j".into(), vec![(1, d()), (2, d())], vec![vec![1], vec![]]).expect("valid");
        assert_eq!(j.stages[1].parents, vec![0]);
        assert_eq!(j.tasks(), 3);
    }

    #[test]
    fn synthetic_queries_are_deterministic_dags() {
        let a = synthetic_queries(1);
        assert_eq!(a.len(), 154);
        assert_eq!(a, synthetic_queries(1));
        assert!(a.iter().all(|j| j.topo_order.len() == j.stages.len()));
    }
}
