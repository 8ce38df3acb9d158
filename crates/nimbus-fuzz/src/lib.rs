//! Fuzz targets: functions that take arbitrary bytes and must neither panic
//! nor hang nor take unbounded memory, whatever the bytes are.
//!
//! The same functions run under libFuzzer (`cargo fuzz run <target>` in
//! `fuzz/`, coverage-guided, with sanitizers) and on stable Rust in this
//! crate's tests, which replay the committed seed corpus and regression
//! cases (`fuzz/seeds/<target>/`, `fuzz/regressions/<target>/`) and then a
//! seeded mutation loop over them, so CI exercises every target without a
//! nightly toolchain.
//!
//! Architecture invariants: a target only calls public entry points that
//! users' input reaches (readers, loaders, decoders); it checks what must
//! hold of any output (a decoded message re-encodes to the same bytes, a
//! recovered log keeps its records in order) and never reads the
//! filesystem beyond what the code under test does.

use std::path::Path;

use nimbus_consensus::wire::Wire;
use nimbus_trace::Source;

/// A fuzz target: arbitrary bytes in, a panic when something is wrong.
pub type Target = fn(&[u8]);

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: &[(&str, Target)] =
    &[("trace", trace), ("scenario", scenario), ("wire", wire), ("kv_log", kv_log), ("ycsb", ycsb)];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// One trace reader on the rest of `data`, chosen by its first byte among
/// [`nimbus_trace::formats::FORMATS`]. An error must name the source, and
/// no message may echo more than a bounded amount of the input.
pub fn trace(data: &[u8]) {
    use nimbus_trace::formats::{FORMATS, check};
    let Some((&selector, body)) = data.split_first() else { return };
    let format = FORMATS[usize::from(selector) % FORMATS.len()];
    let outcome = check(format, Source::bytes(Path::new("fuzz.input"), body)).expect("a listed format");
    if let Err(e) = outcome {
        let message = e.to_string();
        assert!(message.starts_with("fuzz.input"), "an error names its source: {message}");
        // The quote limit, the name, positions, and fixed wording.
        assert!(message.len() <= 2 * nimbus_trace::input::QUOTE_BYTES + 600, "{} bytes", message.len());
    }
}

/// The scenario loader on `data` as UTF-8 text, then the resource
/// estimate of every policy, the forecast-study and sweep loaders, and the
/// shard-file parser of `nimbus merge`. Paths into `/dev`, `/proc` and `/sys` are
/// skipped: reading a terminal or a pipe there would wait on the harness,
/// not on the code.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p)) {
        return;
    }
    let loaded = nimbus_lab::Scenario::from_text(Path::new("fuzz.toml"), text, &Default::default());
    match loaded {
        Ok(scenario) => {
            let limits = nimbus_lab::Limits { memory_bytes: 1 << 30, events_per_run: 1_000_000_000 };
            let _ = nimbus_lab::budget::check(&scenario, 2, &limits);
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("fuzz.toml"), "an error names the file: {message}");
        }
    }
    // The same text as a forecast study.
    if let Err(e) = nimbus_lab::forecast_study::Study::from_text(Path::new("fuzz.toml"), text, &Default::default()) {
        let message = e.to_string();
        assert!(message.starts_with("fuzz.toml"), "an error names the file: {message}");
    }
    // As a sweep (which prepares only its first point up front).
    if text.contains("sweep")
        && let Err(e) = nimbus_lab::Sweep::from_text(Path::new("fuzz.toml"), text, &Default::default())
    {
        let message = e.to_string();
        assert!(message.starts_with("fuzz.toml"), "an error names the file: {message}");
    }
    // As a shard file for `nimbus merge`: whatever parses writes back to
    // text that parses to the same shard.
    if let Ok(shard) = nimbus_report::shards::parse_shard(text) {
        let again = nimbus_report::shards::parse_shard(&nimbus_report::shards::shard_json(&shard))
            .expect("a written shard file parses");
        assert_eq!(format!("{again:?}"), format!("{shard:?}"), "a shard file round-trips");
    }
}

/// Every message type of the consensus wire codec, the kv frames and the
/// call chain's frames on `data`; whatever decodes must encode back to
/// exactly `data`'s bytes.
pub fn wire(data: &[u8]) {
    fn round_trip<T: Wire>(data: &[u8]) {
        if let Ok(v) = T::from_bytes(data) {
            assert_eq!(v.to_bytes(), data, "a decoded message re-encodes to its bytes");
        }
    }
    let Some((&selector, body)) = data.split_first() else { return };
    match selector % 7 {
        0 => round_trip::<nimbus_consensus::kv::Command>(body),
        1 => round_trip::<nimbus_consensus::kv::Reply>(body),
        2 => round_trip::<nimbus_consensus::kv::Request>(body),
        3 => round_trip::<nimbus_consensus::rabia::Message>(body),
        4 => round_trip::<nimbus_consensus::racos::Message>(body),
        5 => round_trip::<nimbus_consensus::kv::KvStore>(body),
        _ => {
            if let Ok(frame) = nimbus_kv::frame::Frame::decode(body) {
                assert_eq!(frame.encode(), body, "a decoded frame re-encodes to its bytes");
            }
            // The call chain's frames share the selector (bodies without
            // their length prefix).
            if let Ok(frame) = nimbus_rpc::wire::Frame::decode(body) {
                assert_eq!(&frame.encode()[4..], body, "a decoded call frame re-encodes to its bytes");
            }
        }
    }
}

/// A replica's log recovery on `data`: records come back in order, each
/// only once, and the regions skipped lie within the file.
pub fn kv_log(data: &[u8]) {
    if let Ok(found) = nimbus_kv::server::Recovery::read(data) {
        let held: usize = found.records.iter().map(Vec::len).sum();
        assert!(held <= data.len(), "records cannot hold more than the file");
        for &(offset, len, before) in &found.skipped {
            assert!(offset + len <= data.len() && before <= found.records.len());
        }
        assert!(found.torn <= data.len());
    }
}

/// A YCSB property file on `data` as text.
pub fn ycsb(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(w) = nimbus_consensus::ycsb::Workload::parse(&text, "fuzz.properties") {
        assert!(w.records >= 1 && w.max_scan >= 1);
        let _ = w.record_bytes();
    }
}
