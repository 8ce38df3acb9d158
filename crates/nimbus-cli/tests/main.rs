//! End-to-end tests of the `nimbus` binary.
//!
//! Topic modules: `bad_input` (the corpus of malformed and hostile input),
//! `cli` (commands, output, error messages), `kv` (the
//! loopback service's processes under kills), `determinism`
//! (byte-identical results), `validation` (published numbers, needs
//! `../shared/data`), `regression` (one case per fixed bug).

mod bad_input;
mod cli;
mod determinism;
mod kv;
mod regression;
mod sweeps;
mod validation;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (tests run the binary from there, as users do).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root exists")
}

/// `../shared/data` beside the repository, if present.
pub fn shared_data() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/data");
    dir.is_dir().then_some(dir)
}

/// Runs `nimbus` with `args` from the repository root.
pub fn nimbus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(args)
        .env_remove("COLUMNS")
        .current_dir(repo_root())
        .output()
        .expect("the nimbus binary runs")
}

/// Stdout and stderr as text.
pub fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A fresh, empty temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nimbus-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A fixture path relative to the repository root.
pub fn fixture(name: &str) -> String {
    format!("crates/nimbus-cli/tests/fixtures/{name}")
}
