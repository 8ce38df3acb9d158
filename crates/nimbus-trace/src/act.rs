//! ACT's model and bill-of-materials files (Gupta et al., ISCA'22;
//! `facebookresearch/ACT`, `act/models/**` and `act/boms/*.yaml`).
//!
//! They are YAML, but only its block-mapping subset: `key: value` lines and
//! `key:` lines that open a nested mapping by indentation, `#` comments,
//! and keys or values in double quotes. That subset is read here (no YAML
//! dependency); anything else — sequences (`- `), flow collections,
//! anchors, tags, block scalars, tabs — is refused at its line rather than
//! misread. Values stay text: a quantity such as `0.90 kWh / cm2` or
//! `3840 GB` is split by [`quantity`].

use crate::TraceError;
use crate::input::{Source, read_document};
use crate::yaml::strip_comment;

/// Largest file read (the ACT files are a few kB).
const MAX_BYTES: u64 = 4 << 20;

/// A mapping, in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapping {
    /// Entries in file order; keys are unique.
    pub entries: Vec<(String, Node)>,
}

/// A value: text or a nested mapping.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A scalar (quotes removed).
    Text(String),
    /// A nested mapping.
    Map(Mapping),
}

impl Mapping {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A number and its unit text (`0.90 kWh / cm2` → 0.9, `kWh/cm2`).
pub fn quantity(text: &str) -> Option<(f64, String)> {
    let text = text.trim();
    let split =
        text.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))).unwrap_or(text.len());
    // `e` may start a unit (none of ACT's do); a number must parse.
    let value: f64 = text[..split].trim().parse().ok()?;
    let unit: String = text[split..].chars().filter(|c| !c.is_whitespace()).collect();
    Some((value, unit))
}

fn unquote(text: &str) -> Option<String> {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        if inner.contains('"') || inner.contains('\\') {
            return None;
        }
        return Some(inner.to_string());
    }
    if let Some(inner) = t.strip_prefix('\'') {
        let inner = inner.strip_suffix('\'')?;
        return if inner.contains('\'') { None } else { Some(inner.to_string()) };
    }
    Some(t.to_string())
}

/// Reads a file of the block-mapping subset.
pub fn read<'a>(source: impl Into<Source<'a>>) -> Result<Mapping, TraceError> {
    let source = source.into();
    let path = source.name();
    let text = read_document(source, MAX_BYTES)?;
    // Stack of (indent, mapping under construction, key it will be stored
    // under in its parent).
    let mut stack: Vec<(usize, Mapping, String)> = vec![(0, Mapping::default(), String::new())];
    let mut pending_indent: Option<usize> = None;
    let close = |stack: &mut Vec<(usize, Mapping, String)>| {
        let (_, map, key) = stack.pop().expect("a nested mapping");
        stack.last_mut().expect("the root").1.entries.push((key, Node::Map(map)));
    };
    for (n, raw) in text.lines().enumerate() {
        let line_no = n as u64 + 1;
        let err = |m: &str| TraceError::parse(path, line_no, 1, None, m.to_string());
        let line = strip_comment(raw);
        if line.trim().is_empty() {
            continue;
        }
        if line == "---" && n == 0 {
            continue;
        }
        if line.contains('\t') {
            return Err(err("a tab in the indentation or a value; ACT files indent with spaces"));
        }
        let indent = line.len() - line.trim_start().len();
        let body = line.trim();
        if body.starts_with("- ") || body == "-" {
            return Err(err("a sequence (`- `): only mappings are read in ACT files"));
        }
        if body.starts_with(['{', '[', '&', '*', '!', '|', '>']) {
            return Err(err("flow collections, anchors, tags and block scalars are not read in ACT files"));
        }
        // The key ends at the first `:` followed by a space or the end,
        // outside quotes.
        let mut quote = None;
        let mut colon = None;
        for (i, c) in body.char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, ':') if body[i + 1..].is_empty() || body[i + 1..].starts_with(' ') => {
                    colon = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(colon) = colon else {
            if quote.is_some() {
                return Err(err("an unbalanced quote"));
            }
            return Err(err("expected `key: value` or `key:`"));
        };
        let key = unquote(&body[..colon]).ok_or_else(|| err("an unbalanced or escaped quote in the key"))?;
        let value = body[colon + 1..].trim();
        if value.starts_with(['{', '[', '&', '*', '!', '|', '>']) {
            return Err(err("flow collections, anchors, tags and block scalars are not read in ACT files"));
        }
        if let Some(expected) = pending_indent.take() {
            if indent <= expected {
                // `key:` with nothing under it: an empty value.
                let (_, map, k) = stack.pop().expect("opened");
                debug_assert!(map.entries.is_empty());
                stack.last_mut().expect("the root").1.entries.push((k, Node::Text(String::new())));
            } else {
                stack.last_mut().expect("opened").0 = indent;
            }
        }
        while stack.len() > 1 && indent < stack.last().expect("non-empty").0 {
            close(&mut stack);
        }
        if indent != stack.last().expect("non-empty").0 {
            return Err(err(&format!(
                "indented {indent} spaces where {} were expected",
                stack.last().expect("non-empty").0
            )));
        }
        let current = &stack.last().expect("non-empty").1;
        if current.get(&key).is_some() {
            return Err(err(&format!("key {key:?} appears twice in one mapping")));
        }
        if value.is_empty() {
            stack.push((usize::MAX, Mapping::default(), key));
            pending_indent = Some(indent);
        } else {
            let value = unquote(value).ok_or_else(|| err("an unbalanced or escaped quote in the value"))?;
            stack.last_mut().expect("non-empty").1.entries.push((key, Node::Text(value)));
        }
    }
    if pending_indent.is_some() {
        let (_, _, k) = stack.pop().expect("opened");
        stack.last_mut().expect("the root").1.entries.push((k, Node::Text(String::new())));
    }
    while stack.len() > 1 {
        close(&mut stack);
    }
    Ok(stack.pop().expect("the root").1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Mapping, TraceError> {
        read(Source::bytes(Path::new("m.yaml"), text.as_bytes()))
    }

    #[test]
    fn flat_models_and_nested_boms_read() {
        let m = parse("# comment\n\"28nm\" : 0.90 kWh / cm2\n\"7nm\"  : 2.150 kWh / cm2 # trailing\n").expect("reads");
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.get("28nm"), Some(&Node::Text("0.90 kWh / cm2".into())));
        assert_eq!(quantity("0.90 kWh / cm2"), Some((0.9, "kWh/cm2".into())));
        assert_eq!(quantity("3840 GB"), Some((3840.0, "GB".into())));
        assert_eq!(quantity("GB"), None);
        let bom = parse(
            "name: Server\nsilicon:\n  # two CPUs\n  cpu.main0:\n    area: 6.98 cm2\n    n_ics: 2\n  dram.main0:\n    model: dram\nempty:\nlast: 1\n",
        )
        .expect("reads");
        let Some(Node::Map(silicon)) = bom.get("silicon") else { panic!("a mapping: {bom:?}") };
        assert_eq!(silicon.entries.len(), 2);
        let Some(Node::Map(cpu)) = silicon.get("cpu.main0") else { panic!("nested") };
        assert_eq!(cpu.get("area"), Some(&Node::Text("6.98 cm2".into())));
        assert_eq!(bom.get("empty"), Some(&Node::Text(String::new())));
        assert_eq!(bom.get("last"), Some(&Node::Text("1".into())));
    }

    #[test]
    fn what_is_not_the_subset_is_refused_at_its_line() {
        for (text, line, needle) in [
            ("a: 1\n- b\n", 2, "sequence"),
            ("a: [1, 2]\n", 1, "flow"),
            ("a:\n\tb: 1\n", 2, "tab"),
            ("a: 1\na: 2\n", 2, "twice"),
            ("a:\n    b: 1\n  c: 2\n", 3, "indented 2 spaces where 0 were expected"),
            ("just text\n", 1, "key: value"),
            ("\"a: 1\n", 1, "quote"),
        ] {
            let e = parse(text).expect_err(text).to_string();
            assert!(e.contains(&format!("m.yaml:{line}")) && e.contains(needle), "{text:?}: {e}");
        }
    }
}
