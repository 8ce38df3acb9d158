//! The datacenter-scheduling domain: DAG jobs on executor pools, task
//! clusters, microservice call graphs, co-location interference,
//! unhealthy-node mitigation and workflows on heterogeneous systems, with
//! the schedulers and policies the SoCC'24 papers compare.
//!
//! - [`job`]: stages with Decima's measured task-duration tables, and the
//!   synthetic stand-in;
//! - [`spark`]: the Spark-imitating simulator and the [`spark::Scheduler`]
//!   interface;
//! - [`mc_wscpt`]: MC-WSCPT with DRA and DTP (SoCC'24);
//! - [`spark_baselines`]: FIFO, fair (Decima's dynamic partition), weighted
//!   fair, SJF-CP;
//! - [`cluster`]: a task cluster (nodes with slots and queues, messages)
//!   and the [`cluster::ClusterScheduler`] interface;
//! - [`murmuration`]: Murmuration (SoCC'24);
//! - [`cluster_baselines`]: the Kubernetes default scheduler and Sparrow;
//! - [`callgraph`]: requests fanning out through tiers of services with
//!   per-service disciplines (FCFS, processor sharing);
//! - [`tailclipper`]: TailClipper (SoCC'24);
//! - [`interference`]: a parametric co-location interference model and
//!   PARTIES; [`ins`]: INS (SoCC'24);
//! - [`deoxys`]: Deoxys (SoCC'24): causal estimates of mitigation effects
//!   (`nimbus-learn`) on a synthetic observational generator;
//! - [`workflow_run`]: workflows of tasks and data items on resources and
//!   a network (DSLab's DAG execution model); [`heft`]: HEFT, as DSLab
//!   plans it;
//! - [`scenario`], [`cluster_scenario`], [`callgraph_scenario`],
//!   [`workflow_scenario`]: scenario keys, the policy registry and runs.
//!
//! Architecture invariants: depends on `nimbus-sim`, `nimbus-trace` and
//! `nimbus-learn` only; integer simulated time; one seeded stream per purpose (job picks,
//! arrivals, weights, durations), so every policy of a seed sees the same
//! jobs.

pub mod callgraph;
pub mod callgraph_scenario;
pub mod cluster;
pub mod cluster_baselines;
pub mod cluster_scenario;
pub mod deoxys;
pub mod heft;
pub mod ins;
pub mod interference;
pub mod job;
pub mod mc_wscpt;
pub mod murmuration;
pub mod scenario;
pub mod spark;
pub mod spark_baselines;
pub mod tailclipper;
pub mod workflow_run;
pub mod workflow_scenario;
