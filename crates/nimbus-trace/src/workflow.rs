//! Scientific workflows as DAGs of tasks and data items: WfCommons JSON,
//! Pegasus DAX, DAGGEN `.dot` and DSLab YAML files (`dslab-dags/dags`),
//! and DSLab's system files (`dslab-dags/systems`: resources, network).
//!
//! Units and conventions follow DSLab's DAG readers (commit a6c155e), so
//! that simulations of these files can be compared with DSLab's:
//! task work in Gflop, memory in MB, data in MB.
//! - **DOT** (DAGGEN): a node `name [size="…"]` is a one-core task of
//!   size/10⁹ Gflop (its `label`, if any, names it); an edge
//!   `a -> b [size="…"]` is a data item of size/10⁶ MB produced by `a` and
//!   read by `b` (edges with the same `label` share one item). Graph
//!   headers `digraph G {` and the closing `}` are accepted; any other
//!   line is an error.
//! - **DAX** (Pegasus): each `<job id name runtime>` is a one-core task of
//!   runtime × 10 Gflop (DSLab's reference speed of 10 Gflop/s) named
//!   `name_id`; its `<uses link="output">` files are its outputs, and its
//!   `<uses link="input">` files its inputs (a file no job produces is a
//!   workflow input); sizes in bytes become MB. `<child>`/`<parent>`
//!   elements are not read: the files carry the dependencies.
//! - **WfCommons** (schema 1.2 `jobs` or 1.3+ `tasks`): a task of `cores`
//!   cores (1 when absent) does runtime × cores × speed Gflop, where speed
//!   is its machine's `cpu.speed` MHz ÷ 1000 when given, else 10; memory is
//!   `memoryInBytes` ÷ 10⁶ or `memory` (KB) ÷ 10³, rounded up to whole
//!   MB; file sizes are bytes for Pegasus files and schema 1.4 (not
//!   Makeflow) files, KB otherwise (DSLab's reading of the schemas'
//!   history; later schemas are read the same way); a `parents` entry not
//!   already linked by a file adds an empty data item.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::TraceError;
use crate::input::{Source, quote, read_document};
use crate::yaml::{self, Yaml};

/// How a task's speed grows with its cores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CoresDependency {
    /// Speed-up equal to the cores.
    Linear,
    /// Amdahl's law with this sequential share.
    LinearWithFixed(f64),
}

/// A task.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Name.
    pub name: String,
    /// Work, Gflop.
    pub flops: f64,
    /// Memory, MB.
    pub memory_mb: u64,
    /// Fewest cores.
    pub min_cores: u32,
    /// Most cores.
    pub max_cores: u32,
    /// Speed-up with cores.
    pub cores_dependency: CoresDependency,
    /// Data items read (indices into [`Workflow::data`]).
    pub inputs: Vec<usize>,
    /// Data items written.
    pub outputs: Vec<usize>,
}

impl Task {
    /// A one-core task of `flops` Gflop with no memory and no data yet.
    pub fn single_core(name: impl Into<String>, flops: f64) -> Task {
        Task {
            name: name.into(),
            flops,
            memory_mb: 0,
            min_cores: 1,
            max_cores: 1,
            cores_dependency: CoresDependency::Linear,
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }
}

/// A data item (file).
#[derive(Debug, Clone, PartialEq)]
pub struct DataItem {
    /// Name.
    pub name: String,
    /// Size, MB.
    pub size_mb: f64,
    /// The task writing it (`None`: a workflow input).
    pub producer: Option<usize>,
    /// Tasks reading it.
    pub consumers: Vec<usize>,
}

/// A workflow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workflow {
    /// Tasks, in file order.
    pub tasks: Vec<Task>,
    /// Data items, in order of appearance.
    pub data: Vec<DataItem>,
}

/// Most tasks accepted.
const MAX_TASKS: usize = 1_000_000;
/// Largest file accepted.
const MAX_BYTES: u64 = 512 << 20;

impl Workflow {
    fn add_task(&mut self, name: String, flops: f64, memory_mb: u64, cores: (u32, u32), dep: CoresDependency) -> usize {
        self.tasks.push(Task {
            name,
            flops,
            memory_mb,
            min_cores: cores.0,
            max_cores: cores.1,
            cores_dependency: dep,
            inputs: Vec::new(),
            outputs: Vec::new(),
        });
        self.tasks.len() - 1
    }

    fn add_output(&mut self, task: usize, name: String, size_mb: f64) -> usize {
        self.data.push(DataItem { name, size_mb, producer: Some(task), consumers: Vec::new() });
        let id = self.data.len() - 1;
        self.tasks[task].outputs.push(id);
        id
    }

    fn add_input_item(&mut self, name: String, size_mb: f64) -> usize {
        self.data.push(DataItem { name, size_mb, producer: None, consumers: Vec::new() });
        self.data.len() - 1
    }

    fn add_dependency(&mut self, item: usize, consumer: usize) {
        self.data[item].consumers.push(consumer);
        self.tasks[consumer].inputs.push(item);
    }

    /// Each task's children (through data items), ascending, deduplicated.
    pub fn children(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.tasks.len()];
        for d in &self.data {
            if let Some(p) = d.producer {
                out[p].extend(d.consumers.iter().copied());
            }
        }
        for c in &mut out {
            c.sort_unstable();
            c.dedup();
        }
        out
    }

    fn check(self, path: &Path) -> Result<Workflow, TraceError> {
        if self.tasks.is_empty() {
            return Err(TraceError::file(path, "no tasks"));
        }
        if let Err(stuck) = crate::dag::topological_order(&self.children()) {
            return Err(TraceError::file(
                path,
                format!("the task graph has a cycle through task `{}`", quote(&self.tasks[stuck[0]].name)),
            ));
        }
        Ok(self)
    }
}

fn number(path: &Path, line: u64, what: &str, text: &str) -> Result<f64, TraceError> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(TraceError::parse(
            path,
            line,
            0,
            None,
            format!("{what}: expected a non-negative number, found `{}`", quote(text)),
        )),
    }
}

/// Reads a DAGGEN `.dot` workflow.
pub fn read_dot<'a>(source: impl Into<Source<'a>>) -> Result<Workflow, TraceError> {
    let source = source.into();
    let path = source.name();
    let text = read_document(source, MAX_BYTES)?;
    let mut nodes: Vec<(String, Option<String>, f64, u64)> = Vec::new();
    let mut edges: Vec<(String, String, Option<String>, f64, u64)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let l = raw.trim().trim_end_matches(';').trim();
        if l.is_empty() || l == "}" || l.starts_with("//") {
            continue;
        }
        if (l.starts_with("digraph") || l.starts_with("graph")) && l.ends_with('{') {
            continue;
        }
        let bad = |m: &str| TraceError::parse(path, line, 0, None, format!("{m}: `{}`", quote(l)));
        let (head, attrs) = match (l.find('['), l.rfind(']')) {
            (Some(a), Some(b)) if b > a => (l[..a].trim(), parse_attrs(&l[a + 1..b]).map_err(|m| bad(&m))?),
            _ => return Err(bad("expected `name [size=\"…\"]` or `a -> b [size=\"…\"]`")),
        };
        let size = attrs.get("size").ok_or_else(|| bad("no `size` attribute"))?;
        let label = attrs.get("label").cloned();
        let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if let Some((a, b)) = head.split_once("->") {
            let (a, b) = (a.trim(), b.trim());
            if !ident(a) || !ident(b) {
                return Err(bad("an edge joins two names of letters, digits and `_`"));
            }
            edges.push((a.to_string(), b.to_string(), label, number(path, line, "edge size", size)? / 1e6, line));
        } else if ident(head) {
            nodes.push((head.to_string(), label, number(path, line, "node size", size)? / 1e9, line));
        } else {
            return Err(bad("expected a node name of letters, digits and `_`"));
        }
        if nodes.len() > MAX_TASKS {
            return Err(TraceError::file(path, format!("more than {MAX_TASKS} tasks")));
        }
    }
    let mut wf = Workflow::default();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for (name, label, gflop, line) in nodes {
        let task = wf.add_task(label.unwrap_or_else(|| name.clone()), gflop, 0, (1, 1), CoresDependency::Linear);
        if ids.insert(name.clone(), task).is_some() {
            return Err(TraceError::parse(path, line, 0, None, format!("node `{}` is defined twice", quote(&name))));
        }
    }
    let mut items: BTreeMap<String, usize> = BTreeMap::new();
    for (a, b, label, mb, line) in edges {
        let find = |n: &str| {
            ids.get(n).copied().ok_or_else(|| {
                TraceError::parse(path, line, 0, None, format!("edge names node `{}`, which is not defined", quote(n)))
            })
        };
        let (from, to) = (find(&a)?, find(&b)?);
        let label = label.unwrap_or_else(|| format!("{a} -> {b}"));
        let item = match items.get(&label) {
            Some(&i) => i,
            None => {
                let i = wf.add_output(from, label.clone(), mb);
                items.insert(label, i);
                i
            }
        };
        wf.add_dependency(item, to);
    }
    wf.check(path)
}

/// `key="value"` pairs separated by commas.
fn parse_attrs(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| "an attribute without `=`".to_string())?;
        let key = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let value_end = after
            .strip_prefix('"')
            .and_then(|v| v.find('"'))
            .ok_or_else(|| format!("attribute `{}` is not a quoted string", quote(&key)))?;
        out.insert(key, after[1..=value_end].to_string());
        rest = after[value_end + 2..].trim_start().trim_start_matches(',').trim_start();
    }
    Ok(out)
}

/// One XML start or empty-element tag.
struct Tag {
    name: String,
    attrs: BTreeMap<String, String>,
    line: u64,
    /// `<a/>`.
    empty: bool,
    /// `</a>`.
    end: bool,
}

/// The tags of an XML document (declarations, comments and text skipped).
fn xml_tags(path: &Path, text: &str) -> Result<Vec<Tag>, TraceError> {
    let mut tags = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    // Lines counted incrementally (positions only grow), so that a long
    // file costs linear time.
    let counted = std::cell::Cell::new((0usize, 1u64));
    let line_at = |pos: usize| {
        let (from, line) = counted.get();
        let (from, line) = if pos >= from { (from, line) } else { (0, 1) };
        let line = line + text.as_bytes()[from..pos].iter().filter(|&&b| b == b'\n').count() as u64;
        counted.set((pos, line));
        line
    };
    while let Some(off) = text[i..].find('<') {
        let start = i + off;
        let rest = &text[start..];
        let skip_to = |pat: &str| rest.find(pat).map(|e| start + e + pat.len());
        if rest.starts_with("<!--") {
            i = skip_to("-->")
                .ok_or_else(|| TraceError::parse(path, line_at(start), 0, None, "a comment that never ends"))?;
            continue;
        }
        if rest.starts_with("<?") || rest.starts_with("<!") {
            i = skip_to(">")
                .ok_or_else(|| TraceError::parse(path, line_at(start), 0, None, "a declaration that never ends"))?;
            continue;
        }
        // Find the tag's end outside quotes.
        let mut j = start + 1;
        let mut quote_char: Option<u8> = None;
        while j < bytes.len() {
            match (quote_char, bytes[j]) {
                (None, b'"' | b'\'') => quote_char = Some(bytes[j]),
                (Some(q), c) if c == q => quote_char = None,
                (None, b'>') => break,
                _ => {}
            }
            j += 1;
        }
        if j >= bytes.len() {
            return Err(TraceError::parse(path, line_at(start), 0, None, "a tag that never ends"));
        }
        let inner = &text[start + 1..j];
        let line = line_at(start);
        let (end, inner) = match inner.strip_prefix('/') {
            Some(rest) => (true, rest),
            None => (false, inner),
        };
        let (empty, inner) = match inner.strip_suffix('/') {
            Some(rest) => (true, rest),
            None => (false, inner),
        };
        let name_end = inner.find(|c: char| c.is_whitespace()).unwrap_or(inner.len());
        let name = inner[..name_end].to_string();
        if name.is_empty() {
            return Err(TraceError::parse(path, line, 0, None, "a tag without a name"));
        }
        let attrs = parse_xml_attrs(&inner[name_end..])
            .map_err(|m| TraceError::parse(path, line, 0, None, format!("<{}>: {m}", quote(&name))))?;
        tags.push(Tag { name, attrs, line, empty, end });
        i = j + 1;
    }
    Ok(tags)
}

fn parse_xml_attrs(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| {
            format!("attribute `{}` has no value", quote(rest.split_whitespace().next().unwrap_or("")))
        })?;
        let key = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let q = after
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| format!("attribute `{}` is not quoted", quote(&key)))?;
        let close = after[1..].find(q).ok_or_else(|| format!("attribute `{}` never closes its quote", quote(&key)))?;
        out.insert(
            key,
            after[1..=close].replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"),
        );
        rest = after[close + 2..].trim_start();
    }
    Ok(out)
}

/// Reads a Pegasus DAX workflow.
pub fn read_dax<'a>(source: impl Into<Source<'a>>) -> Result<Workflow, TraceError> {
    let source = source.into();
    let path = source.name();
    let text = read_document(source, MAX_BYTES)?;
    let tags = xml_tags(path, &text)?;
    // Jobs with their uses, in order.
    struct Uses {
        file: String,
        link: String,
        mb: f64,
    }
    let mut jobs: Vec<(String, f64, Vec<Uses>)> = Vec::new();
    let mut open: Vec<(String, u64)> = Vec::new();
    for t in &tags {
        let need = |k: &str| {
            t.attrs.get(k).ok_or_else(|| {
                TraceError::parse(path, t.line, 0, None, format!("<{}> has no `{k}` attribute", quote(&t.name)))
            })
        };
        if t.end {
            match open.pop() {
                Some((n, _)) if n == t.name => {}
                Some((n, l)) => {
                    return Err(TraceError::parse(
                        path,
                        t.line,
                        0,
                        None,
                        format!("</{}> closes <{}> of line {l}", quote(&t.name), quote(&n)),
                    ));
                }
                None => {
                    return Err(TraceError::parse(
                        path,
                        t.line,
                        0,
                        None,
                        format!("</{}> closes nothing", quote(&t.name)),
                    ));
                }
            }
            continue;
        }
        match t.name.as_str() {
            "job" => {
                let runtime = number(path, t.line, "runtime", need("runtime")?)?;
                jobs.push((format!("{}_{}", need("name")?, need("id")?), runtime, Vec::new()));
            }
            "uses" => {
                let Some(job) = jobs.last_mut().filter(|_| open.last().is_some_and(|(n, _)| n == "job")) else {
                    return Err(TraceError::parse(path, t.line, 0, None, "<uses> outside a <job>"));
                };
                let bytes = number(path, t.line, "size", need("size")?)?;
                job.2.push(Uses { file: need("file")?.clone(), link: need("link")?.clone(), mb: bytes / 1e6 });
            }
            _ => {}
        }
        if !t.empty {
            open.push((t.name.clone(), t.line));
        }
        if jobs.len() > MAX_TASKS {
            return Err(TraceError::file(path, format!("more than {MAX_TASKS} jobs")));
        }
    }
    if let Some((n, l)) = open.last() {
        return Err(TraceError::parse(path, *l, 0, None, format!("<{}> is never closed", quote(n))));
    }
    let mut wf = Workflow::default();
    let mut items: BTreeMap<String, usize> = BTreeMap::new();
    for (name, runtime, uses) in &jobs {
        let task = wf.add_task(name.clone(), runtime * 10.0, 0, (1, 1), CoresDependency::Linear);
        for u in uses.iter().filter(|u| u.link == "output") {
            let id = wf.add_output(task, u.file.clone(), u.mb);
            items.insert(u.file.clone(), id);
        }
    }
    for (task, (_, _, uses)) in jobs.iter().enumerate() {
        for u in uses.iter().filter(|u| u.link == "input") {
            let item = match items.get(&u.file) {
                Some(&i) => i,
                None => {
                    let i = wf.add_input_item(u.file.clone(), u.mb);
                    items.insert(u.file.clone(), i);
                    i
                }
            };
            wf.add_dependency(item, task);
        }
    }
    wf.check(path)
}

/// Reads a WfCommons (WorkflowHub) JSON workflow.
pub fn read_wfcommons<'a>(source: impl Into<Source<'a>>) -> Result<Workflow, TraceError> {
    let source = source.into();
    let path = source.name();
    let text = read_document(source, MAX_BYTES)?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| TraceError::parse(path, e.line() as u64, e.column() as u64, None, format!("invalid JSON: {e}")))?;
    let fail = |m: String| TraceError::file(path, m);
    let schema = json.get("schemaVersion").and_then(Value::as_str).ok_or_else(|| fail("no `schemaVersion`".into()))?;
    let wms = json.pointer("/wms/name").and_then(Value::as_str).unwrap_or("");
    let workflow = json.get("workflow").ok_or_else(|| fail("no `workflow` object".into()))?;
    let tasks = workflow
        .get("tasks")
        .or_else(|| workflow.get("jobs"))
        .and_then(Value::as_array)
        .ok_or_else(|| fail("`workflow` has neither `tasks` nor `jobs`".into()))?;
    if tasks.len() > MAX_TASKS {
        return Err(fail(format!("more than {MAX_TASKS} tasks")));
    }
    let bytes_sizes = (schema == "1.4" && wms != "Makeflow") || wms == "Pegasus";
    let to_mb = |size: f64| if bytes_sizes { size / 1e6 } else { size / 1e3 };
    let mut speed: BTreeMap<&str, f64> = BTreeMap::new();
    for m in workflow.get("machines").and_then(Value::as_array).into_iter().flatten() {
        if let (Some(name), Some(mhz)) =
            (m.get("nodeName").and_then(Value::as_str), m.pointer("/cpu/speed").and_then(Value::as_f64))
        {
            speed.insert(name, mhz / 1000.0);
        }
    }
    let mut wf = Workflow::default();
    let mut items: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    let field = |t: &Value, i: usize, keys: &[&str]| -> Result<f64, TraceError> {
        keys.iter()
            .find_map(|k| t.get(*k).and_then(Value::as_f64))
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| fail(format!("task {i}: `{}` is missing or not a non-negative number", keys[0])))
    };
    let files = |t: &Value, i: usize| -> Result<Vec<(String, String, f64)>, TraceError> {
        let list =
            t.get("files").and_then(Value::as_array).ok_or_else(|| fail(format!("task {i}: no `files` list")))?;
        list.iter()
            .enumerate()
            .map(|(j, f)| {
                let name = f
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail(format!("task {i}, file {j}: no `name`")))?;
                let link = f
                    .get("link")
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail(format!("task {i}, file {j}: no `link`")))?;
                let size = ["size", "sizeInBytes"]
                    .iter()
                    .find_map(|k| f.get(*k).and_then(Value::as_f64))
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| fail(format!("task {i}, file {j}: `size` is missing or negative")))?;
                Ok((name.to_string(), link.to_string(), to_mb(size)))
            })
            .collect()
    };
    for (i, t) in tasks.iter().enumerate() {
        let name = t.get("name").and_then(Value::as_str).ok_or_else(|| fail(format!("task {i}: no `name`")))?;
        let runtime = field(t, i, &["runtime", "runtimeInSeconds"])?;
        let cores = match t.get("cores") {
            None | Some(Value::Null) => 1.0,
            Some(v) => v
                .as_f64()
                .filter(|c| *c >= 1.0 && *c <= 1e6)
                .ok_or_else(|| fail(format!("task {i}: `cores` is {}", quote(&v.to_string()))))?,
        };
        let memory = match (t.get("memoryInBytes").and_then(Value::as_f64), t.get("memory").and_then(Value::as_f64)) {
            (Some(b), _) => (b / 1e6).ceil(),
            (None, Some(kb)) => (kb / 1e3).ceil(),
            _ => 0.0,
        };
        // DSLab truncates fractional cores ("1.0" in some files).
        let cores_u = nimbus_sim::params::round_to_u64(cores.floor()).and_then(|c| u32::try_from(c).ok()).unwrap_or(1);
        let machine_speed =
            t.get("machine").and_then(Value::as_str).and_then(|m| speed.get(m)).copied().unwrap_or(10.0);
        let task = wf.add_task(
            name.to_string(),
            runtime * f64::from(cores_u) * machine_speed,
            nimbus_sim::params::round_to_u64(memory)
                .ok_or_else(|| fail(format!("task {i}: memory {memory} MB is not a usable size")))?,
            (cores_u, cores_u),
            CoresDependency::Linear,
        );
        if ids.insert(name.to_string(), task).is_some() {
            return Err(fail(format!("task {i}: the name `{}` is used twice", quote(name))));
        }
        for (file, link, mb) in files(t, i)? {
            if link == "output" {
                let id = wf.add_output(task, file.clone(), mb);
                items.insert(file, id);
            }
        }
    }
    for (i, t) in tasks.iter().enumerate() {
        let mut linked: Vec<usize> = Vec::new();
        for (file, link, mb) in files(t, i)? {
            if link != "input" {
                continue;
            }
            let item = match items.get(&file) {
                Some(&id) => id,
                None => {
                    let id = wf.add_input_item(file.clone(), mb);
                    items.insert(file, id);
                    id
                }
            };
            if let Some(p) = wf.data[item].producer {
                linked.push(p);
            }
            wf.add_dependency(item, i);
        }
        let parents = t.get("parents").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for p in parents {
            let pname = p.as_str().ok_or_else(|| fail(format!("task {i}: a parent is not a name")))?;
            let &pid =
                ids.get(pname).ok_or_else(|| fail(format!("task {i}: parent `{}` is not a task", quote(pname))))?;
            if !linked.contains(&pid) {
                let name = wf.tasks[i].name.clone();
                let id = wf.add_output(pid, format!("{pname} -> {name}"), 0.0);
                wf.add_dependency(id, i);
                linked.push(pid);
            }
        }
    }
    wf.check(path)
}

/// Reads a workflow in DSLab's YAML format (`dslab-dags/dags/*.yaml`):
/// `inputs` (a sequence of `name`, `size` MB) and `tasks` (each with
/// `name`, `flops` Gflop, `memory` MB (0), `min_cores` and `max_cores`
/// (1), `cores_dependency` (a number: Amdahl's sequential share; absent:
/// linear), `inputs` (names of data items) and `outputs` (`name`, `size`)).
/// Tasks may read items that later tasks write. Unknown keys are refused
/// rather than ignored.
pub fn read_dslab_yaml<'a>(source: impl Into<Source<'a>>) -> Result<Workflow, TraceError> {
    let source = source.into();
    let path = source.name();
    let doc = yaml::read(source)?;
    let at = |node: &Yaml, m: String| TraceError::parse(path, node.line(), 1, None, m);
    expect_keys(path, &doc, &["inputs", "tasks"])?;
    let mut wf = Workflow::default();
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for item in yaml_seq(path, &doc, "inputs", false)? {
        expect_keys(path, item, &["name", "size"])?;
        let name = yaml_text(path, item, "name")?.to_string();
        let size = yaml_number(path, item, "size", None)?;
        let id = wf.add_input_item(name.clone(), size);
        by_name.insert(name, id);
    }
    let tasks = yaml_seq(path, &doc, "tasks", true)?;
    if tasks.len() > MAX_TASKS {
        return Err(TraceError::file(path, format!("more than {MAX_TASKS} tasks")));
    }
    let keys = ["name", "flops", "memory", "min_cores", "max_cores", "cores_dependency", "inputs", "outputs"];
    for task in tasks {
        expect_keys(path, task, &keys)?;
        let name = yaml_text(path, task, "name")?.to_string();
        let flops = yaml_number(path, task, "flops", None)?;
        let memory = yaml_whole(path, task, "memory", Some(0))?;
        let min_cores = yaml_whole(path, task, "min_cores", Some(1))?;
        let max_cores = yaml_whole(path, task, "max_cores", Some(1))?;
        let (Ok(min_cores), Ok(max_cores)) = (u32::try_from(min_cores), u32::try_from(max_cores)) else {
            return Err(at(task, format!("task `{}`: too many cores", quote(&name))));
        };
        if min_cores < 1 || max_cores < min_cores {
            return Err(at(task, format!("task `{}`: cores must satisfy 1 <= min_cores <= max_cores", quote(&name))));
        }
        let dep = match task.get("cores_dependency") {
            None => CoresDependency::Linear,
            Some(_) => {
                let fixed = yaml_number(path, task, "cores_dependency", None)?;
                if fixed > 1.0 {
                    return Err(at(task, format!("task `{}`: `cores_dependency` is a share in [0, 1]", quote(&name))));
                }
                CoresDependency::LinearWithFixed(fixed)
            }
        };
        let id = wf.add_task(name, flops, memory, (min_cores, max_cores), dep);
        for out in yaml_seq(path, task, "outputs", true)? {
            expect_keys(path, out, &["name", "size"])?;
            let item = yaml_text(path, out, "name")?.to_string();
            let size = yaml_number(path, out, "size", None)?;
            let d = wf.add_output(id, item.clone(), size);
            by_name.insert(item, d);
        }
    }
    for (id, task) in tasks.iter().enumerate() {
        for input in yaml_seq(path, task, "inputs", false)? {
            let Yaml::Scalar(name, line) = input else {
                return Err(at(
                    input,
                    format!("an input of task `{}` must be a data item's name", quote(&wf.tasks[id].name)),
                ));
            };
            let Some(&item) = by_name.get(name) else {
                return Err(TraceError::parse(
                    path,
                    *line,
                    1,
                    None,
                    format!(
                        "task `{}` reads `{}`, which no input or task output names",
                        quote(&wf.tasks[id].name),
                        quote(name)
                    ),
                ));
            };
            wf.add_dependency(item, id);
        }
    }
    wf.check(path)
}

/// A computing resource of a DSLab system file.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Name.
    pub name: String,
    /// Speed of each core, Gflop/s.
    pub speed: f64,
    /// Cores.
    pub cores: u32,
    /// Memory, MB.
    pub memory_mb: u64,
}

/// The network of a DSLab system file.
#[derive(Debug, Clone, PartialEq)]
pub enum Network {
    /// Every transfer takes latency + size / bandwidth.
    ConstantBandwidth {
        /// MB/s.
        bandwidth: f64,
        /// µs.
        latency_us: f64,
    },
    /// All transfers in flight share one bandwidth fairly; each starts
    /// after the latency.
    SharedBandwidth {
        /// MB/s.
        bandwidth: f64,
        /// µs.
        latency_us: f64,
    },
    /// Links of a star or full-mesh topology.
    TopologyAware {
        /// `star` or `full_mesh`.
        topology: String,
        /// MB/s.
        link_bandwidth: f64,
        /// µs.
        link_latency_us: f64,
    },
}

/// A DSLab system file (`dslab-dags/systems/*.yaml`): resources and a
/// network.
#[derive(Debug, Clone, PartialEq)]
pub struct System {
    /// Resources, in file order.
    pub resources: Vec<Resource>,
    /// The network.
    pub network: Network,
}

/// Reads a DSLab system file.
pub fn read_dslab_system<'a>(source: impl Into<Source<'a>>) -> Result<System, TraceError> {
    let source = source.into();
    let path = source.name();
    let doc = yaml::read(source)?;
    expect_keys(path, &doc, &["resources", "network"])?;
    let mut resources = Vec::new();
    for r in yaml_seq(path, &doc, "resources", true)? {
        expect_keys(path, r, &["name", "speed", "cores", "memory"])?;
        let name = yaml_text(path, r, "name")?.to_string();
        if name == "master" || resources.iter().any(|x: &Resource| x.name == name) {
            return Err(TraceError::parse(
                path,
                r.line(),
                1,
                None,
                format!("resource name `{}` is taken", quote(&name)),
            ));
        }
        let speed = yaml_number(path, r, "speed", None)?;
        let cores = yaml_whole(path, r, "cores", None)?;
        let memory_mb = yaml_whole(path, r, "memory", Some(0))?;
        let cores = match u32::try_from(cores) {
            Ok(c) if (1..=1_000_000).contains(&c) && speed > 0.0 => c,
            _ => {
                return Err(TraceError::parse(
                    path,
                    r.line(),
                    1,
                    None,
                    format!("resource `{}`: speed must be positive, cores between 1 and 10^6", quote(&name)),
                ));
            }
        };
        resources.push(Resource { name, speed, cores, memory_mb });
    }
    if resources.is_empty() {
        return Err(TraceError::file(path, "`resources` is empty"));
    }
    let net = doc.get("network").ok_or_else(|| TraceError::file(path, "no `network`"))?;
    let model = yaml_text(path, net, "model")?;
    let positive = |key: &str| -> Result<f64, TraceError> {
        let v = yaml_number(path, net, key, None)?;
        if v > 0.0 {
            Ok(v)
        } else {
            Err(TraceError::parse(path, net.line(), 1, None, format!("`network.{key}` must be positive")))
        }
    };
    let network = match model {
        "ConstantBandwidth" | "SharedBandwidth" => {
            expect_keys(path, net, &["model", "bandwidth", "latency"])?;
            let (bandwidth, latency_us) = (positive("bandwidth")?, yaml_number(path, net, "latency", None)?);
            if model == "ConstantBandwidth" {
                Network::ConstantBandwidth { bandwidth, latency_us }
            } else {
                Network::SharedBandwidth { bandwidth, latency_us }
            }
        }
        "TopologyAware" => {
            expect_keys(path, net, &["model", "topology", "link_bandwidth", "link_latency"])?;
            let topology = yaml_text(path, net, "topology")?.to_string();
            if topology != "star" && topology != "full_mesh" {
                return Err(TraceError::parse(
                    path,
                    net.line(),
                    1,
                    None,
                    format!("unknown topology `{}` (star, full_mesh)", quote(&topology)),
                ));
            }
            Network::TopologyAware {
                topology,
                link_bandwidth: positive("link_bandwidth")?,
                link_latency_us: yaml_number(path, net, "link_latency", None)?,
            }
        }
        other => {
            return Err(TraceError::parse(
                path,
                net.line(),
                1,
                None,
                format!("unknown network model `{}` (ConstantBandwidth, SharedBandwidth, TopologyAware)", quote(other)),
            ));
        }
    };
    Ok(System { resources, network })
}

fn expect_keys(path: &Path, node: &Yaml, known: &[&str]) -> Result<(), TraceError> {
    let Yaml::Map(entries, line) = node else {
        return Err(TraceError::parse(
            path,
            node.line(),
            1,
            None,
            format!("expected a mapping, found {}", node.kind()),
        ));
    };
    match entries.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, v)) => Err(TraceError::parse(
            path,
            v.line().max(*line),
            1,
            None,
            format!("unknown key `{}` (known: {})", quote(k), known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn yaml_seq<'y>(path: &Path, node: &'y Yaml, key: &str, required: bool) -> Result<&'y [Yaml], TraceError> {
    match node.get(key) {
        Some(Yaml::Seq(items, _)) => Ok(items),
        Some(Yaml::Scalar(s, _)) if s.is_empty() && !required => Ok(&[]),
        Some(other) => Err(TraceError::parse(
            path,
            other.line(),
            1,
            None,
            format!("`{key}` must be a sequence, found {}", other.kind()),
        )),
        None if required => Err(TraceError::parse(path, node.line(), 1, None, format!("no `{key}`"))),
        None => Ok(&[]),
    }
}

fn yaml_text<'y>(path: &Path, node: &'y Yaml, key: &str) -> Result<&'y str, TraceError> {
    match node.get(key) {
        Some(Yaml::Scalar(s, _)) if !s.is_empty() => Ok(s),
        Some(other) => Err(TraceError::parse(path, other.line(), 1, None, format!("`{key}` must be non-empty text"))),
        None => Err(TraceError::parse(path, node.line(), 1, None, format!("no `{key}`"))),
    }
}

fn yaml_whole(path: &Path, node: &Yaml, key: &str, default: Option<u64>) -> Result<u64, TraceError> {
    match (node.get(key), default) {
        (Some(Yaml::Scalar(s, line)), _) => s.trim().parse::<u64>().map_err(|_| {
            TraceError::parse(path, *line, 1, None, format!("`{key}`: expected a whole number, found `{}`", quote(s)))
        }),
        (Some(other), _) => {
            Err(TraceError::parse(path, other.line(), 1, None, format!("`{key}` must be a whole number")))
        }
        (None, Some(d)) => Ok(d),
        (None, None) => Err(TraceError::parse(path, node.line(), 1, None, format!("no `{key}`"))),
    }
}

fn yaml_number(path: &Path, node: &Yaml, key: &str, default: Option<f64>) -> Result<f64, TraceError> {
    match (node.get(key), default) {
        (Some(Yaml::Scalar(s, line)), _) => number(path, *line, &format!("`{key}`"), s),
        (Some(other), _) => Err(TraceError::parse(path, other.line(), 1, None, format!("`{key}` must be a number"))),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(TraceError::parse(path, node.line(), 1, None, format!("no `{key}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source<'_> {
        Source::bytes(Path::new("w"), text.as_bytes())
    }

    #[test]
    fn dslab_yaml_tasks_items_and_errors() {
        let text = "inputs:\n  - name: in\n    size: 5\ntasks:\n  - name: A\n    flops: 100\n    memory: 1000\n    inputs:\n      - in\n    outputs:\n      - name: a\n        size: 2\n  - name: B\n    flops: 50\n    max_cores: 4\n    cores_dependency: 0.1\n    inputs: [ ]\n    outputs: []\n";
        // `[ ]` is not the subset's `[]`: refused at its line.
        let e = read_dslab_yaml(src(text)).expect_err("flow").to_string();
        assert!(e.contains("w:17"), "{e}");
        let text = text.replace("inputs: [ ]", "inputs:\n      - a");
        let wf = read_dslab_yaml(src(&text)).expect("valid");
        assert_eq!(wf.tasks.len(), 2);
        assert_eq!((wf.tasks[0].flops, wf.tasks[0].memory_mb, wf.tasks[0].min_cores), (100.0, 1000, 1));
        assert_eq!((wf.tasks[1].max_cores, wf.tasks[1].cores_dependency), (4, CoresDependency::LinearWithFixed(0.1)));
        assert_eq!(wf.data[0].producer, None);
        assert_eq!((wf.data[1].producer, wf.data[1].consumers.clone()), (Some(0), vec![1]));
        let e =
            read_dslab_yaml(src(&text.replace("      - a\n", "      - nowhere\n"))).expect_err("unknown").to_string();
        assert!(e.contains("w:18") && e.contains("`nowhere`"), "{e}");
        let e = read_dslab_yaml(src(&text.replace("flops: 50", "flop: 50"))).expect_err("typo").to_string();
        assert!(e.contains("unknown key `flop`"), "{e}");
        let e = read_dslab_yaml(src(&text.replace("flops: 50", "flops: -5"))).expect_err("negative").to_string();
        assert!(e.contains("w:14"), "{e}");
        let cyclic = "tasks:\n  - name: A\n    flops: 1\n    inputs: [b]\n";
        assert!(read_dslab_yaml(src(cyclic)).is_err());
        let cyclic = "tasks:\n  - name: A\n    flops: 1\n    inputs:\n      - b\n    outputs:\n      - name: a\n        size: 1\n  - name: B\n    flops: 1\n    inputs:\n      - a\n    outputs:\n      - name: b\n        size: 1\n";
        let e = read_dslab_yaml(src(cyclic)).expect_err("cyclic").to_string();
        assert!(e.contains("cycle"), "{e}");
    }

    #[test]
    fn dslab_systems_and_errors() {
        let text = "resources:\n  - name: n1\n    speed: 10\n    cores: 4\n    memory: 8000\nnetwork:\n  model: SharedBandwidth\n  bandwidth: 1000\n  latency: 100\n";
        let sys = read_dslab_system(src(text)).expect("valid");
        assert_eq!(sys.resources, vec![Resource { name: "n1".into(), speed: 10.0, cores: 4, memory_mb: 8000 }]);
        assert_eq!(sys.network, Network::SharedBandwidth { bandwidth: 1000.0, latency_us: 100.0 });
        for (bad, line) in [
            (text.replace("cores: 4", "cores: 0"), "w:2"),
            (text.replace("n1", "master"), "w:2"),
            (text.replace("SharedBandwidth", "Magic"), "w:7"),
            (text.replace("bandwidth: 1000", "bandwidth: 0"), "w:7"),
            (text.replace("speed: 10", "speed: fast"), "w:3"),
        ] {
            let e = read_dslab_system(src(&bad)).expect_err(&bad).to_string();
            assert!(e.contains(line), "{bad}: {e}");
        }
    }

    #[test]
    fn dot_nodes_edges_and_errors() {
        let wf = read_dot(src(
            "digraph G {\n  a [size=\"2e9\"];\n  b [size=\"1e9\", label=\"B\"]\n  a -> b [size=\"3e6\"]\n}\n",
        ))
        .expect("valid");
        assert_eq!(wf.tasks.len(), 2);
        assert_eq!((wf.tasks[0].flops, wf.tasks[1].name.as_str()), (2.0, "B"));
        assert_eq!(wf.data[0].size_mb, 3.0);
        assert_eq!(wf.children(), vec![vec![1], vec![]]);
        let e = read_dot(src("a [size=\"1\"]\na -> c [size=\"1\"]\n")).expect_err("unknown node").to_string();
        assert!(e.contains("w:2") && e.contains("`c`"), "{e}");
        let e = read_dot(src("a [label=\"x\"]\n")).expect_err("no size").to_string();
        assert!(e.contains("w:1") && e.contains("size"), "{e}");
        let e = read_dot(src("a [size=\"1\"]\nb [size=\"1\"]\na -> b [size=\"1\"]\nb -> a [size=\"1\"]\n"))
            .expect_err("cyclic")
            .to_string();
        assert!(e.contains("cycle"), "{e}");
        let e = read_dot(src("what is this\n")).expect_err("garbage").to_string();
        assert!(e.contains("w:1"), "{e}");
    }

    #[test]
    fn dax_jobs_files_and_errors() {
        let text = r#"<?xml version="1.0"?>
<!-- comment -->
<adag name="t">
  <job id="ID1" name="A" runtime="1.5">
    <uses file="in.txt" link="input" size="2000000"/>
    <uses file="mid.txt" link="output" size="1000000"/>
  </job>
  <job id="ID2" name="B" runtime="2">
    <uses file="mid.txt" link="input" size="1000000"/>
  </job>
  <child ref="ID2"><parent ref="ID1"/></child>
</adag>
"#;
        let wf = read_dax(src(text)).expect("valid");
        assert_eq!(wf.tasks.len(), 2);
        assert_eq!((wf.tasks[0].name.as_str(), wf.tasks[0].flops), ("A_ID1", 15.0));
        assert_eq!(wf.children(), vec![vec![1], vec![]]);
        let input = wf.data.iter().find(|d| d.name == "in.txt").expect("input");
        assert_eq!((input.producer, input.size_mb), (None, 2.0));
        let e = read_dax(src("<adag>\n<job id=\"1\" name=\"A\">\n</job></adag>")).expect_err("no runtime").to_string();
        assert!(e.contains("w:2") && e.contains("runtime"), "{e}");
        let e = read_dax(src("<adag>\n<job id=\"1\" name=\"A\" runtime=\"1\">\n</adag>"))
            .expect_err("mismatched")
            .to_string();
        assert!(e.contains("w:3") && e.contains("closes <job>"), "{e}");
    }

    #[test]
    fn wfcommons_units_and_parents() {
        let text = r#"{"schemaVersion": "1.3", "wms": {"name": "Pegasus"},
          "workflow": {"machines": [{"nodeName": "m1", "cpu": {"speed": 2000}}],
            "tasks": [
              {"name": "a", "runtime": 10, "cores": 2, "memoryInBytes": 1500000, "machine": "m1", "parents": [],
               "files": [{"name": "f", "size": 4000000, "link": "output"}]},
              {"name": "b", "runtime": 1, "parents": ["a"], "files": [{"name": "f", "size": 4000000, "link": "input"}]},
              {"name": "c", "runtime": 1, "parents": ["a"], "files": []}
            ]}}"#;
        let wf = read_wfcommons(src(text)).expect("valid");
        // 10 s x 2 cores x 2 Gflop/s; 1.5 MB rounds up to 2.
        assert_eq!((wf.tasks[0].flops, wf.tasks[0].memory_mb, wf.tasks[0].min_cores), (40.0, 2, 2));
        assert_eq!(wf.tasks[1].flops, 10.0);
        assert_eq!(wf.data[0].size_mb, 4.0);
        // c depends on a through an empty item.
        assert_eq!(wf.children()[0], vec![1, 2]);
        assert_eq!(wf.data.last().map(|d| d.size_mb), Some(0.0));
        let e = read_wfcommons(src(
            r#"{"schemaVersion": "1.3", "workflow": {"tasks": [{"name": "a", "runtime": -1, "files": []}]}}"#,
        ))
        .expect_err("negative")
        .to_string();
        assert!(e.contains("task 0") && e.contains("runtime"), "{e}");
    }
}
