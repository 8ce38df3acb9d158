//! The registry of domains, the only way the lab and the CLI reach them.

use nimbus_sim::estimate::Estimate;
use nimbus_sim::output::RunOutput;
use nimbus_sim::params::{ParamError, Params};

use crate::external::{ExternalKind, ExternalPolicy};

/// A domain's failure to prepare or run.
#[derive(Debug)]
pub enum DomainError {
    /// A key is wrong.
    Param(ParamError),
    /// Anything else (malformed data, impossible settings).
    Other(String),
}

/// A policy as listed by `nimbus list`.
#[derive(Debug, Clone)]
pub struct PolicyListing {
    /// Name used in scenarios.
    pub name: &'static str,
    /// `paper` or `baseline`.
    pub kind: &'static str,
    /// `modelled`, `validated`, …
    pub fidelity: &'static str,
    /// Citation.
    pub source: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Accepted parameters.
    pub params: &'static [&'static str],
}

/// A domain of the twin.
pub trait Domain: Sync {
    /// Its name in scenario files.
    fn name(&self) -> &'static str;
    /// One line on what it models.
    fn summary(&self) -> &'static str;
    /// Its policies.
    fn policies(&self) -> Vec<PolicyListing>;
    /// Top-level scenario keys it reads.
    fn scenario_keys(&self) -> &'static [&'static str];
    /// Reads its tables of a scenario and loads the data the seeds need, once.
    fn prepare(&self, root: &Params, seeds: &[u64]) -> Result<Box<dyn Prepared>, DomainError>;
}

/// A scenario prepared by its domain; runs are independent and may execute
/// on several threads at once.
pub trait Prepared: Send + Sync {
    /// Checks that a policy exists and accepts its parameters.
    fn check_policy(&self, policy: &str, params: &Params) -> Result<(), DomainError>;
    /// Runs one policy with one seed; `progress` receives fractions in [0, 1].
    fn run(&self, policy: &str, params: &Params, seed: u64, progress: &mut dyn FnMut(f64))
    -> Result<RunOutput, String>;
    /// Data substitutions made while preparing (synthetic stand-ins).
    fn fallbacks(&self) -> Vec<String>;
    /// Every metric a run of this scenario can report (the names a
    /// scenario's `metrics` and claims may use).
    fn metric_names(&self) -> Vec<String>;
    /// What one run of `policy` needs (memory, events), before it runs.
    fn estimate(&self, policy: &str, params: &Params) -> Result<Estimate, String>;
    /// Runs a policy built outside the registry with one seed.
    fn run_external(
        &self,
        policy: &ExternalPolicy,
        seed: u64,
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<RunOutput, String>;
}

/// Every domain.
pub static REGISTRY: &[&dyn Domain] =
    &[&GpuDomain, &LlmDomain, &FaasDomain, &ConsensusDomain, &ElasticDomain, &CarbonDomain, &DcDomain, &TrainDomain];

/// Finds a domain by name.
pub fn find(name: &str) -> Option<&'static dyn Domain> {
    REGISTRY.iter().copied().find(|d| d.name() == name)
}

/// Names of all domains.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|d| d.name()).collect()
}

/// What a domain's prepared scenario offers the lab; [`Adapter`] makes it a
/// [`Prepared`], so each domain writes only what differs.
trait DomainScenario: Send + Sync {
    /// Builds policy `policy` with `params` (to check them), or says it is
    /// unknown.
    fn check(&self, policy: &str, params: &Params) -> Result<(), DomainError>;
    /// Runs one policy with one seed.
    fn run_one(
        &self,
        policy: &str,
        params: &Params,
        seed: u64,
        progress: &mut dyn FnMut(f64),
    ) -> Result<RunOutput, String>;
    /// Data substitutions made while preparing.
    fn substitutions(&self) -> &[String];
    /// Every metric a run can report.
    fn metrics(&self) -> Vec<String>;
    /// What one run of `policy` needs.
    fn needs(&self, policy: &str, params: &Params) -> Result<Estimate, String>;
    /// Runs a policy built outside the registry; only the domains that
    /// take one ([`ExternalPolicy::domain`]) override this.
    fn run_external(
        &self,
        policy: &ExternalPolicy,
        _seed: u64,
        _progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<RunOutput, String> {
        Err(format!(
            "this domain takes no external policies; a {} policy runs in domain `{}`",
            policy.domain(),
            policy.domain()
        ))
    }
}

/// The four [`DomainScenario`] methods every domain's scenario type
/// implements the same way: its own `run`, `fallbacks`, `metric_names` and
/// `estimate`, with errors rendered as text.
macro_rules! forward_to_scenario {
    () => {
        fn run_one(
            &self,
            policy: &str,
            params: &Params,
            seed: u64,
            progress: &mut dyn FnMut(f64),
        ) -> Result<RunOutput, String> {
            self.run(policy, params, seed, progress).map_err(|e| e.to_string())
        }

        fn substitutions(&self) -> &[String] {
            self.fallbacks()
        }

        fn metrics(&self) -> Vec<String> {
            self.metric_names()
        }

        fn needs(&self, policy: &str, params: &Params) -> Result<Estimate, String> {
            self.estimate(policy, params).map_err(|e| e.to_string())
        }
    };
}

struct Adapter<S>(S);

impl<S: DomainScenario> Prepared for Adapter<S> {
    fn check_policy(&self, policy: &str, params: &Params) -> Result<(), DomainError> {
        self.0.check(policy, &params.without(&[]))
    }

    fn run(
        &self,
        policy: &str,
        params: &Params,
        seed: u64,
        progress: &mut dyn FnMut(f64),
    ) -> Result<RunOutput, String> {
        self.0.run_one(policy, &params.without(&[]), seed, progress)
    }

    fn fallbacks(&self) -> Vec<String> {
        self.0.substitutions().to_vec()
    }

    fn metric_names(&self) -> Vec<String> {
        self.0.metrics()
    }

    fn estimate(&self, policy: &str, params: &Params) -> Result<Estimate, String> {
        self.0.needs(policy, &params.without(&[]))
    }

    fn run_external(
        &self,
        policy: &ExternalPolicy,
        seed: u64,
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<RunOutput, String> {
        self.0.run_external(policy, seed, progress)
    }
}

/// A prepared scenario, or the domain's error split into a key error (shown
/// with its position) and anything else.
fn adapt<S: DomainScenario + 'static, E: std::fmt::Display>(
    result: Result<S, E>,
    key_error: impl FnOnce(&E) -> Option<ParamError>,
) -> Result<Box<dyn Prepared>, DomainError> {
    match result {
        Ok(s) => Ok(Box::new(Adapter(s))),
        Err(e) => Err(key_error(&e).map_or_else(|| DomainError::Other(e.to_string()), DomainError::Param)),
    }
}

fn unknown_policy(domain: &str, policy: &str, available: impl Iterator<Item = &'static str>) -> DomainError {
    DomainError::Other(format!(
        "unknown {domain} policy {policy:?}; available: {}",
        available.collect::<Vec<_>>().join(", ")
    ))
}

struct GpuDomain;

impl Domain for GpuDomain {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn summary(&self) -> &'static str {
        "deep-learning training on heterogeneous GPU clusters (round-based scheduling)"
    }

    fn policies(&self) -> Vec<PolicyListing> {
        use nimbus_gpu::policy::{Fidelity, PolicyKind, REGISTRY};
        REGISTRY
            .iter()
            .map(|p| PolicyListing {
                name: p.name,
                kind: match p.kind {
                    PolicyKind::Paper => "paper",
                    PolicyKind::Baseline => "baseline",
                },
                fidelity: match p.fidelity {
                    Fidelity::Modelled => "modelled",
                    Fidelity::Validated => "validated",
                },
                source: p.source,
                summary: p.summary,
                params: p.params,
            })
            .collect()
    }

    fn scenario_keys(&self) -> &'static [&'static str] {
        &["cluster", "workload", "engine"]
    }

    fn prepare(&self, root: &Params, seeds: &[u64]) -> Result<Box<dyn Prepared>, DomainError> {
        use nimbus_gpu::scenario::{Scenario, ScenarioError};
        adapt(Scenario::from_params(root, seeds), |e| match e {
            ScenarioError::Param(p) => Some(p.clone()),
            _ => None,
        })
    }
}

impl DomainScenario for nimbus_gpu::scenario::Scenario {
    fn check(&self, policy: &str, params: &Params) -> Result<(), DomainError> {
        use nimbus_gpu::policy::{PolicyEnv, REGISTRY, find};
        let info = find(policy).ok_or_else(|| unknown_policy("gpu", policy, REGISTRY.iter().map(|p| p.name)))?;
        let env = PolicyEnv { seed: 0, cluster: self.cluster(0) };
        (info.build)(params, &env).map(|_| ()).map_err(DomainError::Param)
    }

    fn run_external(
        &self,
        policy: &ExternalPolicy,
        seed: u64,
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<RunOutput, String> {
        let ExternalKind::GpuScheduler(build) = &policy.kind else {
            return Err(format!("a {} policy cannot schedule a GPU cluster", policy.domain()));
        };
        policy.run(|| self.run_with(build(seed)?, seed, progress).map_err(|e| e.to_string()))
    }

    forward_to_scenario!();
}

struct LlmDomain;

impl Domain for LlmDomain {
    fn name(&self) -> &'static str {
        "llm"
    }

    fn summary(&self) -> &'static str {
        "LLM inference serving: iteration-level batching over paged KV caches, routers and queue managers"
    }

    fn policies(&self) -> Vec<PolicyListing> {
        use nimbus_llm::policy::{PolicyKind, REGISTRY};
        REGISTRY
            .iter()
            .map(|p| PolicyListing {
                name: p.name,
                kind: match p.kind {
                    PolicyKind::Paper => "paper",
                    PolicyKind::Baseline => "baseline",
                },
                fidelity: "modelled",
                source: p.source,
                summary: p.summary,
                params: p.params,
            })
            .collect()
    }

    fn scenario_keys(&self) -> &'static [&'static str] {
        &["replicas", "workload", "engine", "moe"]
    }

    fn prepare(&self, root: &Params, _seeds: &[u64]) -> Result<Box<dyn Prepared>, DomainError> {
        use nimbus_llm::scenario::{Scenario, ScenarioError};
        adapt(Scenario::from_params(root), |e| match e {
            ScenarioError::Param(p) => Some(p.clone()),
            _ => None,
        })
    }
}

impl DomainScenario for nimbus_llm::scenario::Scenario {
    fn check(&self, policy: &str, params: &Params) -> Result<(), DomainError> {
        use nimbus_llm::policy::{REGISTRY, find};
        use nimbus_llm::scenario::ScenarioError;
        find(policy).ok_or_else(|| unknown_policy("llm", policy, REGISTRY.iter().map(|p| p.name)))?;
        nimbus_llm::scenario::Scenario::check(self, policy, params).map_err(|e| match e {
            ScenarioError::Param(p) => DomainError::Param(p),
            other => DomainError::Other(other.to_string()),
        })
    }

    forward_to_scenario!();
}

struct FaasDomain;

impl Domain for FaasDomain {
    fn name(&self) -> &'static str {
        "faas"
    }

    fn summary(&self) -> &'static str {
        "serverless platforms: sandboxes with cold starts and concurrency, keep-alive, pre-warming and model pre-loading, Knative autoscaling, vertical scaling, deferral and energy attribution"
    }

    fn policies(&self) -> Vec<PolicyListing> {
        nimbus_faas::policy::REGISTRY
            .iter()
            .map(|p| PolicyListing {
                name: p.name,
                kind: p.kind,
                fidelity: "modelled",
                source: p.source,
                summary: p.summary,
                params: p.params,
            })
            .collect()
    }

    fn scenario_keys(&self) -> &'static [&'static str] {
        &["platform", "workload", "energy"]
    }

    fn prepare(&self, root: &Params, _seeds: &[u64]) -> Result<Box<dyn Prepared>, DomainError> {
        use nimbus_faas::scenario::{Scenario, ScenarioError};
        adapt(Scenario::from_params(root), |e| match e {
            ScenarioError::Param(p) => Some(p.clone()),
            _ => None,
        })
    }
}

impl DomainScenario for nimbus_faas::scenario::Scenario {
    fn check(&self, policy: &str, params: &Params) -> Result<(), DomainError> {
        use nimbus_faas::policy::{REGISTRY, find};
        let info = find(policy).ok_or_else(|| unknown_policy("faas", policy, REGISTRY.iter().map(|p| p.name)))?;
        (info.build)(params).map(|_| ()).map_err(DomainError::Param)
    }

    fn run_external(
        &self,
        policy: &ExternalPolicy,
        seed: u64,
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<RunOutput, String> {
        let ExternalKind::KeepAlive(build) = &policy.kind else {
            return Err(format!("a {} policy cannot keep serverless sandboxes alive", policy.domain()));
        };
        policy.run(|| self.run_with(build(seed)?, seed, progress).map_err(|e| e.to_string()))
    }

    forward_to_scenario!();
}

struct ConsensusDomain;

impl Domain for ConsensusDomain {
    fn name(&self) -> &'static str {
        "consensus"
    }

    fn summary(&self) -> &'static str {
        "state-machine replication: Rabia, Racos and leader-based baselines on a seeded network and disks, with faults and a linearizability check"
    }

    fn policies(&self) -> Vec<PolicyListing> {
        nimbus_consensus::policy::REGISTRY
            .iter()
            .map(|p| PolicyListing {
                name: p.name,
                kind: p.kind,
                fidelity: "real protocol, modelled network and disks",
                source: p.source,
                summary: p.summary,
                params: p.params,
            })
            .collect()
    }

    fn scenario_keys(&self) -> &'static [&'static str] {
        &["cluster", "workload", "faults", "checks"]
    }

    fn prepare(&self, root: &Params, _seeds: &[u64]) -> Result<Box<dyn Prepared>, DomainError> {
        use nimbus_consensus::scenario::{Scenario, ScenarioError};
        adapt(Scenario::from_params(root), |e| match e {
            ScenarioError::Param(p) => Some(p.clone()),
            _ => None,
        })
    }
}

impl DomainScenario for nimbus_consensus::scenario::Scenario {
    fn check(&self, policy: &str, params: &Params) -> Result<(), DomainError> {
        use nimbus_consensus::scenario::ScenarioError;
        nimbus_consensus::scenario::Scenario::check(self, policy, params).map_err(|e| match e {
            ScenarioError::Param(p) => DomainError::Param(p),
            other => DomainError::Other(other.to_string()),
        })
    }

    forward_to_scenario!();
}

struct ElasticDomain;

impl Domain for ElasticDomain {
    fn name(&self) -> &'static str {
        "elastic"
    }

    fn summary(&self) -> &'static str {
        "elastic capacity: autoscalers (Kubernetes HPA, target tracking, scheduled, static peak) and Kale on online training; AutoBurst on burstable instances; Meta's idle-resource leasing on reservations"
    }

    fn policies(&self) -> Vec<PolicyListing> {
        nimbus_elastic::policy::REGISTRY
            .iter()
            .map(|p| PolicyListing {
                name: p.name,
                kind: p.kind,
                fidelity: p.fidelity,
                source: p.source,
                summary: p.summary,
                params: p.params,
            })
            .collect()
    }

    fn scenario_keys(&self) -> &'static [&'static str] {
        &["workload", "cluster"]
    }

    fn prepare(&self, root: &Params, _seeds: &[u64]) -> Result<Box<dyn Prepared>, DomainError> {
        use nimbus_elastic::scenario::{Scenario, ScenarioError};
        adapt(Scenario::from_params(root), |e| match e {
            ScenarioError::Param(p) => Some(p.clone()),
            _ => None,
        })
    }
}

impl DomainScenario for nimbus_elastic::scenario::Scenario {
    fn check(&self, policy: &str, params: &Params) -> Result<(), DomainError> {
        use nimbus_elastic::scenario::ScenarioError;
        nimbus_elastic::scenario::Scenario::check(self, policy, params).map_err(|e| match e {
            ScenarioError::Param(p) => DomainError::Param(p),
            other => DomainError::Other(other.to_string()),
        })
    }

    forward_to_scenario!();
}

struct CarbonDomain;

impl Domain for CarbonDomain {
    fn name(&self) -> &'static str {
        "carbon"
    }

    fn summary(&self) -> &'static str {
        "carbon-aware datacenters: an OpenDC-compatible energy and carbon replay (power models, CPU-usage fragments, hourly grid intensity) with placements and deferral to low-carbon hours; SunkCarbon's carbon metrics on server generations; CDN-Shifter's routing across edge sites; SkyBox's modular datacenters at complementary renewable farms; InferCool's thermal-aware GPU placement and cooling plant"
    }

    fn policies(&self) -> Vec<PolicyListing> {
        nimbus_carbon::scenario::REGISTRY
            .iter()
            .map(|p| PolicyListing {
                name: p.name,
                kind: p.kind,
                fidelity: p.fidelity,
                source: p.source,
                summary: p.summary,
                params: p.params,
            })
            .collect()
    }

    fn scenario_keys(&self) -> &'static [&'static str] {
        &["workload", "datacenter"]
    }

    fn prepare(&self, root: &Params, _seeds: &[u64]) -> Result<Box<dyn Prepared>, DomainError> {
        use nimbus_carbon::scenario::{Scenario, ScenarioError};
        adapt(Scenario::from_params(root), |e| match e {
            ScenarioError::Param(p) => Some(p.clone()),
            _ => None,
        })
    }
}

impl DomainScenario for nimbus_carbon::scenario::Scenario {
    fn check(&self, policy: &str, params: &Params) -> Result<(), DomainError> {
        use nimbus_carbon::scenario::ScenarioError;
        nimbus_carbon::scenario::Scenario::check(self, policy, params).map_err(|e| match e {
            ScenarioError::Param(p) => DomainError::Param(p),
            other => DomainError::Other(other.to_string()),
        })
    }

    forward_to_scenario!();
}

struct DcDomain;

impl Domain for DcDomain {
    fn name(&self) -> &'static str {
        "dc"
    }

    fn summary(&self) -> &'static str {
        "datacenter scheduling: DAG jobs on executor pools (a Spark-imitating model on Decima's TPC-H tables: MC-WSCPT); task clusters with per-node queues (Murmuration, Kubernetes, Sparrow); microservice call graphs (TailClipper); co-location interference (INS, PARTIES); unhealthy-node mitigation learned from confounded logs (Deoxys)"
    }

    fn policies(&self) -> Vec<PolicyListing> {
        nimbus_dc::scenario::REGISTRY
            .iter()
            .map(|p| PolicyListing {
                name: p.name,
                kind: p.kind,
                fidelity: p.fidelity,
                source: p.source,
                summary: p.summary,
                params: p.params,
            })
            .collect()
    }

    fn scenario_keys(&self) -> &'static [&'static str] {
        &["workload", "cluster"]
    }

    fn prepare(&self, root: &Params, _seeds: &[u64]) -> Result<Box<dyn Prepared>, DomainError> {
        use nimbus_dc::scenario::{Scenario, ScenarioError};
        adapt(Scenario::from_params(root), |e| match e {
            ScenarioError::Param(p) => Some(p.clone()),
            _ => None,
        })
    }
}

impl DomainScenario for nimbus_dc::scenario::Scenario {
    fn check(&self, policy: &str, params: &Params) -> Result<(), DomainError> {
        use nimbus_dc::scenario::ScenarioError;
        nimbus_dc::scenario::Scenario::check(self, policy, params).map_err(|e| match e {
            ScenarioError::Param(p) => DomainError::Param(p),
            other => DomainError::Other(other.to_string()),
        })
    }

    forward_to_scenario!();
}

struct TrainDomain;

impl Domain for TrainDomain {
    fn name(&self) -> &'static str {
        "train"
    }

    fn summary(&self) -> &'static str {
        "distributed training: real training on MNIST through gradient codecs (GComp) priced by a training-step cost model, compressed checkpoints through restores (Inshrinkerator), encrypted federated averaging (Pack), client caches and selection (FedCaSe); parallelism plans on Trainium (NxD) and storage pushdown splits (HAPI) in the cost model"
    }

    fn policies(&self) -> Vec<PolicyListing> {
        nimbus_train::scenario::REGISTRY
            .iter()
            .map(|p| PolicyListing {
                name: p.name,
                kind: p.kind,
                fidelity: p.fidelity,
                source: p.source,
                summary: p.summary,
                params: p.params,
            })
            .collect()
    }

    fn scenario_keys(&self) -> &'static [&'static str] {
        &["workload", "cluster"]
    }

    fn prepare(&self, root: &Params, _seeds: &[u64]) -> Result<Box<dyn Prepared>, DomainError> {
        use nimbus_train::scenario::{Scenario, ScenarioError};
        adapt(Scenario::from_params(root), |e| match e {
            ScenarioError::Param(p) => Some(p.clone()),
            _ => None,
        })
    }
}

impl DomainScenario for nimbus_train::scenario::Scenario {
    fn check(&self, policy: &str, params: &Params) -> Result<(), DomainError> {
        use nimbus_train::scenario::ScenarioError;
        nimbus_train::scenario::Scenario::check(self, policy, params).map_err(|e| match e {
            ScenarioError::Param(p) => DomainError::Param(p),
            other => DomainError::Other(other.to_string()),
        })
    }

    forward_to_scenario!();
}
