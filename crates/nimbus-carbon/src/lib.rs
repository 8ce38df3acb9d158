//! Carbon-aware datacenters: an energy and carbon substrate compatible with
//! OpenDC, and the systems that decide where and when work runs to cut
//! carbon.
//!
//! - [`topology`]: hosts with cores, memory and power models, from OpenDC's
//!   topology JSON (both layouts) or inline.
//! - [`intensity`]: grid carbon intensity over time, from OpenDC,
//!   Electricity Maps and GreenDCC files; gaps and negative values refused.
//! - [`datacenter`]: the replay of tasks of CPU-usage fragments on hosts
//!   (filter/weigher placement, FIFO queue), with energy and carbon
//!   integrated exactly; optional deferral to low-carbon hours.
//! - [`vm_workload`]: VMs running cloudlets (CloudSim's scenario shape) as
//!   replay tasks: CloudSim Plus' placement stress case.
//! - [`embodied`]: servers' embodied carbon from the Boavizta database.
//! - [`act`]: ACT's bottom-up embodied carbon of a server's silicon, from
//!   ACT's tables and bills of materials.
//! - [`sunk_carbon`]: SunkCarbon (SoCC'24): placers parameterised by the
//!   carbon metric on a fleet of server generations, and the sweep of the
//!   factors that make embodied-inclusive metrics raise the real footprint.
//! - [`cdn_shifter`]: CDN-Shifter (SoCC'24): hourly routing LPs of user
//!   demand to edge sites under an added-latency bound, and weekly
//!   capacity shifting.
//! - [`infercool`]: InferCool's cooling side (SoCC'24): GPUs as RC thermal
//!   nodes, MIG-slice placement, a plant whose COP follows supply and
//!   outside wet-bulb temperature.
//! - [`skybox`]: SkyBox (SoCC'24): farms ranked by CV, the complementary
//!   set with the lowest combined CV, VMs placed and migrated across
//!   modular sites by a rolling MIP on forecast output.
//! - [`scenario`]: scenario keys → runs; metrics with units in their names.
//!
//! Architecture invariants: no other domain crate and no lab; integer
//! simulated time (ms); energy = ∫ power dt, per host and in total
//! (asserted in tests); every random draw from a named stream of the run's
//! seed.

pub mod act;
pub mod cdn_scenario;
pub mod cdn_shifter;
pub mod cooling_scenario;
pub mod datacenter;
pub mod embodied;
pub mod fleet_scenario;
pub mod infercool;
pub mod intensity;
pub mod scenario;
pub mod skybox;
pub mod skybox_scenario;
pub mod sunk_carbon;
pub mod topology;
pub mod vm_workload;
