//! The Nimbus simulation kernel.
//!
//! Everything a discrete-event model needs and nothing about any domain:
//! integer simulated time ([`SimTime`], [`SimDuration`]), a deterministic
//! event queue ([`EventQueue`]) ordered by `(time, insertion sequence)`,
//! named seeded random streams ([`RngStreams`]), a bit-exact port of
//! CPython's `random.Random` ([`PyRandom`]) for replaying reference
//! simulators, statistics ([`stats`]), and the domain-neutral shapes of a
//! run's configuration ([`params`]) and results ([`output`]), so that domains
//! and the lab share them without depending on each other or on a file
//! format.
//!
//! Architecture invariants:
//! - `nimbus-sim` knows nothing about GPUs, functions, replicas or any other
//!   domain concept; domains build on it, never the other way round.
//! - Nothing here reads the wall clock or OS entropy: the same inputs and seed
//!   give the same outputs, bit for bit, on every machine.
//! - There is no global state; a simulation is a value.

pub mod estimate;
pub mod output;
pub mod params;
pub mod pyrandom;
pub mod queue;
pub mod rng;
pub mod stats;
pub mod summary;
pub mod time;

pub use pyrandom::PyRandom;
pub use queue::EventQueue;
pub use rng::{RngStreams, SimRng};
pub use time::{SimDuration, SimTime};
