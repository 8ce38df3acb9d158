//! Global routers: each request goes to a replica serving its model the
//! moment it arrives (Vidur's `random`, `round_robin` and `lor` global
//! schedulers).

use nimbus_sim::SimRng;

use crate::engine::{Dispatcher, World};
use crate::request::ReqId;

/// How a router picks a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterKind {
    /// In turn, per model.
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// Fewest requests waiting, running or swapped (lowest index on ties).
    LeastOutstanding,
}

impl RouterKind {
    /// Parses a scenario name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "round_robin" => Some(RouterKind::RoundRobin),
            "random" => Some(RouterKind::Random),
            "lor" => Some(RouterKind::LeastOutstanding),
            _ => None,
        }
    }

    /// Accepted names.
    pub const NAMES: [&str; 3] = ["round_robin", "random", "lor"];
}

/// A router over the replicas loaded with each model.
pub struct Router {
    kind: RouterKind,
    turn: Vec<usize>,
    rng: SimRng,
}

impl Router {
    /// A router for `models` models.
    pub fn new(kind: RouterKind, models: usize, rng: SimRng) -> Self {
        Router { kind, turn: vec![0; models], rng }
    }
}

impl Dispatcher for Router {
    fn on_arrival(&mut self, id: ReqId, world: &mut World) -> Vec<u32> {
        let spec = world.requests[id as usize].spec;
        let eligible: Vec<u32> = world
            .replicas
            .iter()
            .filter(|r| r.model == Some(spec.model) && r.instance.is_none_or(|i| i == spec.instance))
            .map(|r| r.id)
            .collect();
        let model = spec.model;
        if eligible.is_empty() {
            world.requests[id as usize].rejected = Some("no replica serves the model");
            return Vec::new();
        }
        let chosen = match self.kind {
            RouterKind::RoundRobin => {
                let turn = &mut self.turn[model as usize];
                let c = eligible[*turn % eligible.len()];
                *turn += 1;
                c
            }
            RouterKind::Random => eligible[self.rng.index(eligible.len())],
            RouterKind::LeastOutstanding => {
                *eligible.iter().min_by_key(|&&r| (world.replicas[r as usize].outstanding(), r)).unwrap_or(&eligible[0])
            }
        };
        world.enqueue(chosen, id);
        vec![chosen]
    }
}
