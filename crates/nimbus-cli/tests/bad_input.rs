//! The bad-input corpus: every case of `tests/bad-input/cases.toml` runs
//! the `nimbus` binary on malformed, extreme or hostile input, under an
//! address-space limit and a time limit, and must end with a clear error:
//! exit status 1 (or 2 for a malformed command line), `error:` on stderr
//! naming what was wrong and where (file and line/column, or the key), no
//! panic, no hang, no out-of-memory kill, and never a silent success.
//!
//! A case is `name`, `args` (with `{file}`, `{dir}` and `{out}` replaced by
//! the case's file, its temporary directory and an output directory in
//! it), optionally a `file` to create there from `text` (repeated `repeat`
//! times, between `prefix` and `suffix`) or `hex`, `extra` files (name →
//! text), `expect` (substrings of stderr) and `exit`. File contents may use
//! the shorthands of [`expand`].
//!
//! `NIMBUS_BAD_INPUT_CASE=name` runs one case; `NIMBUS_BAD_INPUT_SHOW=1`
//! prints every message (to review them).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{repo_root, temp_dir};

/// Address space a case may use (the binary's threads reserve some).
const MEMORY_LIMIT_KIB: u64 = 4 << 20;

/// Wall time a case may take.
const TIME_LIMIT: Duration = Duration::from_secs(30);

struct Case {
    name: String,
    args: Vec<String>,
    file: Option<(String, Vec<u8>)>,
    /// More files for the case's directory (a trace a scenario names).
    extra: Vec<(String, String)>,
    expect: Vec<String>,
    exit: i32,
}

/// Expands the corpus' shorthands in file contents: `{azure2019_minutes}`
/// (`,1,2,…,1440`, an Azure 2019 header's minute columns) and
/// `{repeat:N:TEXT}` (TEXT, without braces, N times).
fn expand(text: &str) -> String {
    let minutes: String = (1..=1440).map(|m| format!(",{m}")).collect();
    let mut out = text.replace("{azure2019_minutes}", &minutes);
    while let Some(start) = out.find("{repeat:") {
        let end = start + out[start..].find('}').expect("a closing brace");
        let inner = &out[start + "{repeat:".len()..end];
        let (n, what) = inner.split_once(':').expect("{repeat:N:TEXT}");
        let times: usize = n.parse().expect("a count");
        out = format!("{}{}{}", &out[..start], what.repeat(times), &out[end + 1..]);
    }
    out
}

fn cases() -> Vec<Case> {
    let path = repo_root().join("crates/nimbus-cli/tests/bad-input/cases.toml");
    let text = std::fs::read_to_string(&path).expect("the corpus reads");
    let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let list = doc.get("case").and_then(toml::Value::as_array).expect("[[case]] tables");
    let strings = |v: Option<&toml::Value>| -> Vec<String> {
        v.and_then(toml::Value::as_array)
            .map(|a| a.iter().map(|s| s.as_str().expect("strings").to_string()).collect())
            .unwrap_or_default()
    };
    let mut out: Vec<Case> = Vec::new();
    for item in list {
        let t = item.as_table().expect("a table");
        let name = t.get("name").and_then(toml::Value::as_str).expect("a name").to_string();
        assert!(!out.iter().any(|c| c.name == name), "two cases are called {name}");
        let text_of = |key: &str| t.get(key).and_then(toml::Value::as_str).unwrap_or("");
        let content = match (t.get("text").and_then(toml::Value::as_str), t.get("hex").and_then(toml::Value::as_str)) {
            (Some(text), None) => {
                let times = t.get("repeat").and_then(toml::Value::as_integer).unwrap_or(1);
                let body = text.repeat(usize::try_from(times).expect("a count"));
                Some(expand(&format!("{}{body}{}", text_of("prefix"), text_of("suffix"))).into_bytes())
            }
            (None, Some(hex)) => Some(
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                    .collect::<Vec<u8>>(),
            ),
            (None, None) => None,
            _ => panic!("{name}: give text or hex, not both"),
        };
        let file = t.get("file").and_then(toml::Value::as_str).map(|f| (f.to_string(), content.unwrap_or_default()));
        let exit = t.get("exit").and_then(toml::Value::as_integer).map_or(1, |e| i32::try_from(e).expect("small"));
        let extra = t
            .get("extra")
            .and_then(toml::Value::as_table)
            .map(|x| x.iter().map(|(k, v)| (k.clone(), expand(v.as_str().expect("text")))).collect())
            .unwrap_or_default();
        out.push(Case { name, args: strings(t.get("args")), file, extra, expect: strings(t.get("expect")), exit });
    }
    out
}

/// Runs `args` under the limits; (exit code, or None if killed; stderr; took).
fn run_limited(args: &[String]) -> (Option<i32>, String, String, Duration) {
    // `ulimit -v` caps the address space; `exec` keeps the pid.
    let script = format!("ulimit -v {MEMORY_LIMIT_KIB}; exec \"$0\" \"$@\"");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_nimbus"))
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    #[allow(clippy::disallowed_methods)] // a time limit on a real process
    let started = std::time::Instant::now();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break Some(status);
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let out = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let err = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    (status.and_then(|s| s.code()), out, err, took)
}

fn check(case: &Case, dir: &Path) -> Result<(), String> {
    let dir_text = dir.to_string_lossy().into_owned();
    for (name, text) in &case.extra {
        std::fs::write(dir.join(name), text.replace("{dir}", &dir_text)).expect("writes an extra file");
    }
    let file = case.file.as_ref().map(|(name, bytes)| {
        let path = dir.join(name);
        // `{dir}` in a text file names the case's directory (a scenario
        // pointing at an extra file).
        let bytes = match std::str::from_utf8(bytes) {
            Ok(text) if text.contains("{dir}") => text.replace("{dir}", &dir_text).into_bytes(),
            _ => bytes.clone(),
        };
        std::fs::write(&path, bytes).expect("writes the case's file");
        path
    });
    let fill = |arg: &str| {
        let mut a = arg.replace("{dir}", &dir.to_string_lossy()).replace("{out}", &dir.join("out").to_string_lossy());
        if let Some(f) = &file {
            a = a.replace("{file}", &f.to_string_lossy());
        }
        a
    };
    let args: Vec<String> = case.args.iter().map(|a| fill(a)).collect();
    let (code, stdout, stderr, took) = run_limited(&args);
    let shown = || format!("args {args:?}\nexit {code:?} after {took:?}\nstdout: {stdout}\nstderr: {stderr}");
    match code {
        None => return Err(format!("killed: a hang or a crash by signal\n{}", shown())),
        Some(0) => return Err(format!("a silent success\n{}", shown())),
        Some(101) => return Err(format!("a panic\n{}", shown())),
        Some(c) if c != case.exit => return Err(format!("exit {c}, expected {}\n{}", case.exit, shown())),
        Some(_) => {}
    }
    if stderr.contains("panicked") || stderr.contains("memory allocation") {
        return Err(format!("a panic or allocation failure\n{}", shown()));
    }
    if !stderr.contains("error") {
        return Err(format!("no error message\n{}", shown()));
    }
    for want in &case.expect {
        if !stderr.contains(&fill(want)) {
            return Err(format!("stderr lacks {want:?}\n{}", shown()));
        }
    }
    if case.args.iter().any(|a| a.contains("{out}")) && dir.join("out").exists() {
        return Err(format!("a refused run left results behind\n{}", shown()));
    }
    if std::env::var_os("NIMBUS_BAD_INPUT_SHOW").is_some() {
        eprintln!("== {} ({took:?}, exit {code:?})\n{}", case.name, stderr.trim_end());
    }
    if stderr.len() > 4096 {
        return Err(format!("a message of {} bytes (input echoed?)\n{}", stderr.len(), shown()));
    }
    Ok(())
}

#[test]
fn every_bad_input_gets_a_clear_error() {
    let only = std::env::var("NIMBUS_BAD_INPUT_CASE").ok();
    let all = cases();
    assert!(all.len() >= 150, "the corpus holds {} cases", all.len());
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in all.iter().filter(|c| only.as_ref().is_none_or(|n| *n == c.name)) {
        let dir = temp_dir(&format!("bad-{}", case.name));
        if let Err(why) = check(case, &dir) {
            failures.push(format!("== {}: {why}", case.name));
        }
        let _ = std::fs::remove_dir_all(&dir);
        ran += 1;
    }
    assert!(ran > 0, "no case called {only:?}");
    assert!(failures.is_empty(), "{} of {ran} cases failed:\n{}", failures.len(), failures.join("\n\n"));
}
