//! What a client of the replicated store does, shared by the twin's
//! clients and the loopback service's benchmark driver, so that both run
//! the same client scenario and record the same kind of history.
//!
//! Every written value is unique: its first eight bytes are a fresh id
//! (then padding to the value size), and histories name values by that id
//! ([`value_id`]), which is what the linearizability checker compares.

use crate::kv::{Command, Reply, Value};
use crate::linearizability::{Action, Operation};
use crate::ycsb::{self, YcsbOp};
use nimbus_sim::SimRng;

/// The id a value carries (its first eight bytes; `u64::MAX` for a value
/// too short to carry one).
pub fn value_id(bytes: &[u8]) -> u64 {
    bytes.get(..8).and_then(|b| b.try_into().ok()).map_or(u64::MAX, u64::from_le_bytes)
}

/// A value of `len` bytes (at least 8) whose first eight are `id`.
pub fn make_value(id: u64, len: usize) -> Value {
    let mut v = id.to_le_bytes().to_vec();
    v.resize(len.max(8), 0xa5);
    v.into()
}

/// The next operation of a client: from a YCSB generator, or else a get,
/// put or read-modify-write (equally likely) of a uniform key among
/// `keys` (`k0`, `k1`, ...); a written value gets id `next_value`, which
/// then grows.
pub fn next_command(
    keys: usize,
    value_bytes: usize,
    generator: &mut Option<ycsb::Generator>,
    rng: &mut SimRng,
    next_value: &mut u64,
) -> Command {
    // Every operation takes an id (reads too), so ids do not depend on
    // the mix; only writes build their value.
    let id = *next_value;
    *next_value += 1;
    let value = || make_value(id, value_bytes);
    match generator {
        Some(g) => match g.next_op() {
            YcsbOp::Read(key) => Command::Get { key },
            YcsbOp::Update(key, _) | YcsbOp::Insert(key, _) => Command::Put { key, value: value() },
            YcsbOp::Scan(start, count) => Command::Scan { start, count },
            YcsbOp::ReadModifyWrite(key, _) => Command::ReadModifyWrite { key, value: value() },
        },
        None => {
            let key = format!("k{}", rng.index(keys.max(1)));
            match rng.index(3) {
                0 => Command::Get { key },
                1 => Command::Put { key, value: value() },
                _ => Command::ReadModifyWrite { key, value: value() },
            }
        }
    }
}

/// The history entry of an answered operation (scans and refusals are not
/// checked; a reply of the wrong kind is recorded as a read of a value
/// nobody wrote, so the checker fails).
pub fn record(command: Command, reply: Reply, call: u64, ret: u64) -> Option<Operation> {
    let (key, action) = match (command, reply) {
        (Command::Scan { .. }, _) | (_, Reply::Refused(_)) => return None,
        (Command::Get { key }, Reply::Value(v)) => (key, Action::Read(v.as_deref().map(value_id))),
        (Command::Put { key, value }, Reply::Written) => (key, Action::Write(value_id(&value))),
        (Command::ReadModifyWrite { key, value }, Reply::Previous(old)) => {
            (key, Action::ReadWrite(value_id(&value), old.as_deref().map(value_id)))
        }
        (command, _) => (command.key().unwrap_or("").to_string(), Action::Read(Some(u64::MAX))),
    };
    Some(Operation { key, call, ret: Some(ret), action })
}

/// The history entry of an operation never answered: a write may have
/// happened (so it is kept, pending); a read tells nothing.
pub fn pending(command: &Command, call: u64) -> Option<Operation> {
    let action = match command {
        Command::Get { .. } | Command::Scan { .. } => return None,
        Command::Put { value, .. } => Action::Write(value_id(value)),
        Command::ReadModifyWrite { value, .. } => Action::ReadWrite(value_id(value), None),
    };
    Some(Operation { key: command.key()?.to_string(), call, ret: None, action })
}
