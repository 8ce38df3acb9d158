//! GAIA's batch-job traces (Hanafy et al., ASPLOS'24; `azure-100k`,
//! `pai-100k`, `mustang-trace-2015-100k`, `pai_1k`): one row per job,
//! `arrival_time` and `length` in hours since the trace start, `cpus`
//! cores. Arrivals and lengths must be finite and not negative, lengths
//! at most ten years, cores a whole number from 1 to 1,000,000; rows may
//! come in any order.

use crate::TraceError;
use crate::error::for_each_csv_row;
use crate::input::Source;

/// One batch job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    /// Hours since the trace start.
    pub arrival_h: f64,
    /// Hours it runs.
    pub length_h: f64,
    /// Cores it uses.
    pub cpus: u32,
}

/// Reads a GAIA job file.
pub fn read_jobs<'a>(source: impl Into<Source<'a>>) -> Result<Vec<Job>, TraceError> {
    let mut jobs = Vec::new();
    for_each_csv_row(source.into(), &["arrival_time", "length", "cpus"], |f| {
        let arrival_h = f.non_negative_f64(0)?;
        let length_h = f.non_negative_f64(1)?;
        if length_h > 87_600.0 {
            return Err(f.invalid(1, format!("a job of {length_h} hours (more than ten years)")));
        }
        let cpus = f.positive_u64(2)?;
        let cpus = u32::try_from(cpus)
            .ok()
            .filter(|&c| c <= 1_000_000)
            .ok_or_else(|| f.invalid(2, format!("{cpus} cores (at most 1,000,000)")))?;
        jobs.push(Job { arrival_h, length_h, cpus });
        Ok(())
    })?;
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn reads_jobs_and_names_bad_rows() {
        let text = "arrival_time,length,cpus\n0.0,25.4,1\n0.57,0.25,16\n";
        let jobs = read_jobs(Source::bytes(Path::new("j.csv"), text.as_bytes())).expect("reads");
        assert_eq!(
            jobs,
            vec![Job { arrival_h: 0.0, length_h: 25.4, cpus: 1 }, Job { arrival_h: 0.57, length_h: 0.25, cpus: 16 }]
        );
        let bad = "arrival_time,length,cpus\n0.0,-1,1\n";
        let e = read_jobs(Source::bytes(Path::new("j.csv"), bad.as_bytes())).expect_err("refused").to_string();
        assert!(e.contains("j.csv:2") && e.contains("length"), "{e}");
        let bad = "arrival_time,length,cpus\n0.0,1,0\n";
        let e = read_jobs(Source::bytes(Path::new("j.csv"), bad.as_bytes())).expect_err("refused").to_string();
        assert!(e.contains("j.csv:2") && e.contains("cpus"), "{e}");
    }
}
