//! Every format by name, for checking a file whole (`nimbus trace`, the
//! fuzz targets): [`check`] reads it with its reader and counts records.

use crate::input::Source;
use crate::{
    TraceError, act, alibaba, columnar, faas, gaia, gavel, grid, idx, llm, opendc, philly, series, sia, tiresias, tpch,
    workflow,
};

/// The formats [`check`] knows, in a stable order.
pub const FORMATS: &[&str] = &[
    "gavel-trace",
    "gavel-throughputs",
    "sia-workload",
    "sia-placements",
    "sia-scalability",
    "sia-validation",
    "philly-gavel",
    "philly-sia",
    "alibaba-nodes",
    "alibaba-pods",
    "tiresias-jobs",
    "tiresias-shape",
    "tiresias-gpu-time",
    "azure-llm",
    "vidur-trace",
    "llm-lengths",
    "mooncake",
    "splitwise-perf",
    "vidur-mlp",
    "vidur-collective",
    "distserve",
    "azure2019-invocations",
    "azure2019-durations",
    "azure2019-memory",
    "azure2021",
    "iluvatar-trace",
    "iluvatar-metadata",
    "instainfer-models",
    "hourly-carbon",
    "series-csv",
    "gaia-arrivals",
    "azure2019-per-minute",
    "redset-csv",
    "throughput-grid",
    "redset",
    "parquet",
    "opendc-tasks",
    "gaia-jobs",
    "act-yaml",
    "opendc-failures",
    "decima-tpch",
    "wfcommons",
    "pegasus-dax",
    "daggen-dot",
    "dslab-yaml",
    "dslab-system",
    "idx",
];

/// Reads `source` as `format` and counts its records; `None` for a format
/// not in [`FORMATS`].
pub fn check(format: &str, source: Source<'_>) -> Option<Result<usize, TraceError>> {
    let count = match format {
        "gavel-trace" => gavel::read_trace(source).map(|v| v.len()),
        "gavel-throughputs" => {
            gavel::ThroughputTable::read(source).map(|t| t.by_worker.values().map(|m| m.len()).sum())
        }
        "sia-workload" => sia::read_workload(source).map(|v| v.len()),
        "sia-placements" => sia::read_placements(source).map(|v| v.len()),
        "sia-scalability" => sia::read_scalability(source).map(|v| v.len()),
        "sia-validation" => sia::read_validation(source).map(|v| v.len()),
        "philly-gavel" => philly::read_gavel_distribution(source).map(|v| v.len()),
        "philly-sia" => philly::read_sia_jobs(source).map(|v| v.len()),
        "alibaba-nodes" => alibaba::read_nodes(source).map(|v| v.len()),
        "alibaba-pods" => alibaba::read_pods(source).map(|v| v.len()),
        "tiresias-jobs" => tiresias::read_jobs(source).map(|v| v.len()),
        "tiresias-shape" => tiresias::read_cluster_shape(source).map(|_| 1),
        "tiresias-gpu-time" => tiresias::read_gpu_time_samples(source).map(|v| v.len()),
        "azure-llm" => llm::read_azure(source).map(|v| v.len()),
        "vidur-trace" => llm::read_vidur_trace(source).map(|v| v.len()),
        "llm-lengths" => llm::read_lengths(source).map(|v| v.len()),
        "mooncake" => llm::read_mooncake(source).map(|v| v.len()),
        "splitwise-perf" => llm::read_splitwise(source).map(|v| v.len()),
        "vidur-mlp" => llm::read_vidur_mlp(source).map(|v| v.values().map(|t| t.len()).sum()),
        "vidur-collective" => llm::read_vidur_collective(source).map(|v| v.values().map(|t| t.len()).sum()),
        "distserve" => llm::read_distserve(source).map(|v| v.values().map(|t| t.len()).sum()),
        "azure2019-invocations" => faas::read_azure2019_invocations(source).map(|v| v.len()),
        "azure2019-durations" => faas::read_azure2019_durations(source).map(|v| v.len()),
        "azure2019-memory" => faas::read_azure2019_memory(source).map(|v| v.len()),
        "azure2021" => faas::read_azure2021(source).map(|v| v.len()),
        "iluvatar-trace" => faas::read_iluvatar_trace(source).map(|v| v.len()),
        "iluvatar-metadata" => faas::read_iluvatar_metadata(source).map(|v| v.len()),
        "instainfer-models" => faas::read_instainfer_models(source).map(|v| v.len()),
        "hourly-carbon" => faas::read_hourly_carbon_intensity(source).map(|v| v.len()),
        "series-csv" => series::read_numeric_columns(source).map(|v| v.iter().map(|s| s.values.len()).sum()),
        "gaia-arrivals" => series::read_arrival_counts(source, 1.0).map(|s| s.values.len()),
        "azure2019-per-minute" => series::azure2019_per_minute(source).map(|s| s.values.len()),
        "redset-csv" => series::read_event_aggregates(source, "arrival_timestamp", None, 3600).map(|s| s.values.len()),
        "throughput-grid" => grid::read_grid(source).map(|g| g.cells.iter().flatten().filter(|c| c.is_some()).count()),
        "redset" => series::read_event_aggregates(source, "arrival_timestamp", None, 3600).map(|s| s.values.len()),
        "parquet" => columnar::column_names(source).and_then(|names| {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            columnar::read_columns(source, &names).map(|c| c.first().map_or(0, columnar::Values::len))
        }),
        "opendc-tasks" => opendc::read_tasks_file(source).map(|t| t.len()),
        "gaia-jobs" => gaia::read_jobs(source).map(|j| j.len()),
        "act-yaml" => act::read(source).map(|m| m.entries.len()),
        "opendc-failures" => opendc::read_failures(source).map(|f| f.len()),
        "decima-tpch" => tpch::read_queries(source).map(|q| q.len()),
        "wfcommons" => workflow::read_wfcommons(source).map(|w| w.tasks.len()),
        "pegasus-dax" => workflow::read_dax(source).map(|w| w.tasks.len()),
        "daggen-dot" => workflow::read_dot(source).map(|w| w.tasks.len()),
        "dslab-yaml" => workflow::read_dslab_yaml(source).map(|w| w.tasks.len()),
        "dslab-system" => workflow::read_dslab_system(source).map(|s| s.resources.len()),
        "idx" => idx::read_idx(source).map(|a| a.dims[0]),
        _ => return None,
    };
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_format_is_read_and_nothing_else() {
        let empty = Source::bytes(std::path::Path::new("e"), b"");
        for format in FORMATS {
            assert!(check(format, empty).is_some(), "{format} has no reader");
        }
        assert!(check("netcdf", empty).is_none());
    }
}
