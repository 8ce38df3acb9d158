//! VMs that run cloudlets, as CloudSim's scenario files describe a
//! workload (`[workload] kind = "vms"`), turned into replay tasks: each VM
//! is a task that reserves its cores and memory and whose CPU usage over
//! time is that of the cloudlets it runs.
//!
//! As CloudSim Plus' `DatacenterBrokerSimple` and `CloudletSchedulerSpaceShared`
//! do: every VM is submitted at time 0; cloudlet k goes to VM k mod V
//! (round-robin); a VM runs ⌊VM cores ÷ cloudlet cores⌋ cloudlets at once,
//! the rest wait in order. A cloudlet's length (MI per core) at the VM's
//! MIPS per core gives its run time. Each cloudlet draws one CPU
//! utilisation, uniform in [0, 1), from the run's seed (CloudSim's
//! `UtilizationModelStochastic` draws per time step; one value per
//! cloudlet here): it sets the power the cloudlet draws, not its speed.
//! The VM ends with its last cloudlet. Used for the CloudSim Plus
//! placement stress case (`scenarios/carbon/cloudsim-stress.toml`).

use nimbus_sim::rng::RngStreams;

use crate::datacenter::{Job, Workload};

/// The VMs and cloudlets of a scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VmSpec {
    /// VMs.
    pub vms: u32,
    /// Cores per VM.
    pub vm_cores: u32,
    /// Memory per VM (MB).
    pub vm_memory_mb: f64,
    /// MIPS per VM core (taken as MHz of usage).
    pub vm_mips: f64,
    /// Cloudlets.
    pub cloudlets: u32,
    /// Cores per cloudlet.
    pub cloudlet_cores: u32,
    /// Million instructions per cloudlet core.
    pub cloudlet_mi: f64,
}

impl VmSpec {
    /// CloudSim Plus' performance scenario (`scenario6.yml` of its
    /// cloud-simulation-comparison repository): 40,000 VMs of 4 cores at
    /// 1,000 MIPS and 2,000 MB; 50,000 cloudlets of 2 cores and 10,000 MI.
    pub const CLOUDSIM_STRESS: VmSpec = VmSpec {
        vms: 40_000,
        vm_cores: 4,
        vm_memory_mb: 2000.0,
        vm_mips: 1000.0,
        cloudlets: 50_000,
        cloudlet_cores: 2,
        cloudlet_mi: 10_000.0,
    };

    /// Cloudlets a VM runs at once.
    pub fn slots(&self) -> u32 {
        self.vm_cores / self.cloudlet_cores.max(1)
    }

    /// Checks that the cloudlets can run.
    pub fn check(&self) -> Result<(), String> {
        if self.vms == 0 {
            return Err("no VMs".into());
        }
        if self.slots() == 0 {
            return Err(format!(
                "a cloudlet needs {} cores and a VM has {}: no cloudlet could run",
                self.cloudlet_cores, self.vm_cores
            ));
        }
        if !(self.vm_mips > 0.0 && self.cloudlet_mi > 0.0) {
            return Err("VM MIPS and cloudlet length must be positive".into());
        }
        Ok(())
    }

    /// A cloudlet's run time (ms, at least 1).
    pub fn cloudlet_ms(&self) -> u64 {
        ((self.cloudlet_mi / self.vm_mips * 1e3).round() as u64).max(1)
    }
}

/// The replay tasks of `spec`, cloudlet utilisations drawn from `seed`.
pub fn workload(spec: &VmSpec, seed: u64, start_ms: i64) -> Result<Workload, String> {
    spec.check()?;
    let mut rng = RngStreams::new(seed).stream("cloudlet-utilization");
    let utilization: Vec<f64> = (0..spec.cloudlets).map(|_| rng.uniform()).collect();
    let per_core = spec.vm_mips;
    let run_ms = spec.cloudlet_ms();
    let slots = spec.slots() as usize;
    let mut jobs = Vec::with_capacity(spec.vms as usize);
    let mut fragments = Vec::new();
    for v in 0..spec.vms {
        // Cloudlets v, v + V, v + 2V, …, in batches of `slots`, each batch
        // lasting one cloudlet's run time (all cloudlets are equal).
        let mine: Vec<u32> = (v..spec.cloudlets).step_by(spec.vms as usize).collect();
        let first = fragments.len();
        for batch in mine.chunks(slots) {
            let usage: f64 =
                batch.iter().map(|&c| utilization[c as usize] * f64::from(spec.cloudlet_cores) * per_core).sum();
            fragments.push((run_ms, usage));
        }
        if mine.is_empty() {
            // A VM without cloudlets idles for one cloudlet's time (CloudSim
            // destroys idle VMs when the broker finishes).
            fragments.push((run_ms, 0.0));
        }
        jobs.push(Job {
            id: format!("vm-{v}"),
            submit_ms: start_ms,
            cores: spec.vm_cores,
            memory_mb: spec.vm_memory_mb,
            fragments: first..fragments.len(),
        });
    }
    Ok(Workload { jobs, fragments })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudlets_go_round_robin_and_share_a_vm_by_its_slots() {
        // 2 VMs of 4 cores at 1,000 MIPS; 5 cloudlets of 2 cores, 3,000 MI:
        // VM 0 runs cloudlets 0, 2 then 4; VM 1 runs 1 and 3. 3 s each.
        let spec = VmSpec {
            vms: 2,
            vm_cores: 4,
            vm_memory_mb: 100.0,
            vm_mips: 1000.0,
            cloudlets: 5,
            cloudlet_cores: 2,
            cloudlet_mi: 3000.0,
        };
        let w = workload(&spec, 7, 0).expect("builds");
        assert_eq!(w.jobs.len(), 2);
        assert_eq!(w.jobs[0].fragments.len(), 2, "two batches");
        assert_eq!(w.jobs[1].fragments.len(), 1);
        assert!(w.fragments.iter().all(|f| f.0 == 3000));
        // Usage: utilisation (in [0, 1)) × 2 cores × 1,000 MHz per cloudlet.
        assert!(w.fragments[0].1 < 4000.0 && w.fragments[1].1 < 2000.0 && w.fragments[2].1 < 4000.0);
        assert_eq!(w, workload(&spec, 7, 0).expect("builds"), "the same per seed");
        assert_ne!(w, workload(&spec, 8, 0).expect("builds"));
    }

    #[test]
    fn impossible_cloudlets_are_refused() {
        let spec = VmSpec { cloudlet_cores: 8, ..VmSpec::CLOUDSIM_STRESS };
        assert!(workload(&spec, 1, 0).expect_err("refused").contains("needs 8 cores and a VM has 4"));
    }
}
