//! A block-YAML subset, enough for DSLab's DAG and system files
//! (`dslab-dags/dags/*.yaml`, `dslab-dags/systems/*.yaml`): mappings and
//! sequences nested by indentation (`key: value`, `key:` then a deeper
//! block, `- item`, `- key: value` opening a mapping inside a sequence),
//! plain or quoted scalars, `#` comments, and the empty flow collections
//! `[]` and `{}`. Anything else — other flow collections, anchors, tags,
//! block scalars, tabs, duplicate keys — is refused at its line rather
//! than misread. No YAML dependency: the subset is small and every error
//! names its line.

use std::path::Path;

use crate::TraceError;
use crate::input::{Source, quote, read_document};

/// A node of the document, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// A scalar (unquoted text; empty for a missing value).
    Scalar(String, u64),
    /// A mapping, in file order.
    Map(Vec<(String, Yaml)>, u64),
    /// A sequence.
    Seq(Vec<Yaml>, u64),
}

impl Yaml {
    /// The line the node starts on.
    pub fn line(&self) -> u64 {
        match self {
            Yaml::Scalar(_, l) | Yaml::Map(_, l) | Yaml::Seq(_, l) => *l,
        }
    }

    /// A mapping's value under `key`.
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries, _) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// What kind of node this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Yaml::Scalar(..) => "a scalar",
            Yaml::Map(..) => "a mapping",
            Yaml::Seq(..) => "a sequence",
        }
    }
}

/// Largest file accepted.
const MAX_BYTES: u64 = 64 << 20;
/// Deepest nesting accepted (bounds the recursion on hostile input).
const MAX_DEPTH: usize = 64;

struct Line {
    indent: usize,
    body: String,
    number: u64,
}

/// Reads a document of the subset.
pub fn read<'a>(source: impl Into<Source<'a>>) -> Result<Yaml, TraceError> {
    let source = source.into();
    let path = source.name();
    let text = read_document(source, MAX_BYTES)?;
    parse(path, &text)
}

/// Parses text of the subset (`path` names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Yaml, TraceError> {
    let mut lines = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let number = n as u64 + 1;
        let line = strip_comment(raw).trim_end();
        if line.trim().is_empty() || (line == "---" && lines.is_empty()) {
            continue;
        }
        if line.contains('\t') {
            return Err(TraceError::parse(path, number, 1, None, "a tab; indent with spaces"));
        }
        let indent = line.len() - line.trim_start().len();
        lines.push(Line { indent, body: line.trim_start().to_string(), number });
    }
    if lines.is_empty() {
        return Err(TraceError::file(path, "an empty document"));
    }
    let mut parser = Parser { path, lines, pos: 0 };
    let indent = parser.lines[0].indent;
    let root = parser.node(indent, 0)?;
    if let Some(line) = parser.lines.get(parser.pos) {
        return Err(parser.err(line.number, "unexpected indentation"));
    }
    Ok(root)
}

struct Parser<'p> {
    path: &'p Path,
    lines: Vec<Line>,
    pos: usize,
}

fn is_item(body: &str) -> bool {
    body == "-" || body.starts_with("- ")
}

impl Parser<'_> {
    fn err(&self, line: u64, message: impl Into<String>) -> TraceError {
        TraceError::parse(self.path, line, 1, None, message.into())
    }

    /// The block starting at the current line, which has `indent`.
    fn node(&mut self, indent: usize, depth: usize) -> Result<Yaml, TraceError> {
        let line = &self.lines[self.pos];
        if depth > MAX_DEPTH {
            return Err(self.err(line.number, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        if is_item(&line.body) {
            self.seq(indent, depth)
        } else if key_colon(&line.body).is_some() {
            self.map(indent, depth)
        } else {
            // A lone scalar (a sequence item or the whole document).
            let (text, number) = (line.body.clone(), line.number);
            self.pos += 1;
            Ok(Yaml::Scalar(self.scalar(number, &text)?, number))
        }
    }

    fn seq(&mut self, indent: usize, depth: usize) -> Result<Yaml, TraceError> {
        let start = self.lines[self.pos].number;
        let mut items = Vec::new();
        while let Some(line) = self.lines.get(self.pos) {
            if line.indent < indent || (line.indent == indent && !is_item(&line.body)) {
                break;
            }
            if line.indent > indent {
                return Err(self.err(line.number, "unexpected indentation"));
            }
            let rest = line.body[1..].trim_start().to_string();
            let number = line.number;
            if rest.is_empty() {
                self.pos += 1;
                match self.lines.get(self.pos) {
                    Some(next) if next.indent > indent => {
                        let deeper = next.indent;
                        items.push(self.node(deeper, depth + 1)?);
                    }
                    _ => items.push(Yaml::Scalar(String::new(), number)),
                }
            } else {
                // `- rest`: rest is a block of its own at its column.
                let column = indent + (line.body.len() - rest.len());
                self.lines[self.pos] = Line { indent: column, body: rest, number };
                items.push(self.node(column, depth + 1)?);
            }
        }
        Ok(Yaml::Seq(items, start))
    }

    fn map(&mut self, indent: usize, depth: usize) -> Result<Yaml, TraceError> {
        let start = self.lines[self.pos].number;
        let mut entries: Vec<(String, Yaml)> = Vec::new();
        while let Some(line) = self.lines.get(self.pos) {
            if line.indent < indent || (line.indent == indent && is_item(&line.body)) {
                break;
            }
            if line.indent > indent {
                return Err(self.err(line.number, "unexpected indentation"));
            }
            let number = line.number;
            let Some(colon) = key_colon(&line.body) else {
                return Err(self.err(number, format!("expected `key: value`, found `{}`", quote(&line.body))));
            };
            let key = self.scalar(number, &line.body[..colon])?;
            let value = line.body[colon + 1..].trim().to_string();
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(self.err(number, format!("the key `{}` appears twice", quote(&key))));
            }
            self.pos += 1;
            let node = if !value.is_empty() {
                match value.as_str() {
                    "[]" => Yaml::Seq(Vec::new(), number),
                    "{}" => Yaml::Map(Vec::new(), number),
                    _ => Yaml::Scalar(self.scalar(number, &value)?, number),
                }
            } else {
                match self.lines.get(self.pos) {
                    Some(next) if next.indent > indent => {
                        let deeper = next.indent;
                        self.node(deeper, depth + 1)?
                    }
                    // A sequence may sit at its key's indentation.
                    Some(next) if next.indent == indent && is_item(&next.body) => self.seq(indent, depth + 1)?,
                    _ => Yaml::Scalar(String::new(), number),
                }
            };
            entries.push((key, node));
        }
        Ok(Yaml::Map(entries, start))
    }

    fn scalar(&self, line: u64, text: &str) -> Result<String, TraceError> {
        let t = text.trim();
        if t.starts_with(['{', '[', '&', '*', '!', '|', '>', '%', '@', '`']) {
            return Err(self
                .err(line, format!("`{}`: flow collections, anchors, tags and block scalars are not read", quote(t))));
        }
        let unquoted = if let Some(inner) = t.strip_prefix('"') {
            inner.strip_suffix('"').filter(|i| !i.contains(['"', '\\']))
        } else if let Some(inner) = t.strip_prefix('\'') {
            inner.strip_suffix('\'').filter(|i| !i.contains('\''))
        } else {
            Some(t)
        };
        unquoted
            .map(str::to_string)
            .ok_or_else(|| self.err(line, format!("`{}`: a quoted scalar that does not close, or escapes", quote(t))))
    }
}

/// Where a mapping key ends: the first `:` followed by a space or the end
/// of the line, outside quotes.
fn key_colon(body: &str) -> Option<usize> {
    let mut quoted = None;
    for (i, c) in body.char_indices() {
        match (quoted, c) {
            (None, '"' | '\'') if i == 0 => quoted = Some(c),
            (Some(q), c) if c == q => quoted = None,
            (None, ':') if body[i + 1..].is_empty() || body[i + 1..].starts_with(' ') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Removes a `#` comment that is not inside quotes.
pub(crate) fn strip_comment(line: &str) -> &str {
    let mut quoted = None;
    for (i, c) in line.char_indices() {
        match (quoted, c) {
            (None, '"' | '\'') => quoted = Some(c),
            (Some(q), c) if c == q => quoted = None,
            (None, '#') if i == 0 || line[..i].ends_with(char::is_whitespace) => return &line[..i],
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Yaml, TraceError> {
        parse(Path::new("t.yaml"), text)
    }

    fn s(text: &str, line: u64) -> Yaml {
        Yaml::Scalar(text.to_string(), line)
    }

    #[test]
    fn sequences_of_mappings_and_nested_sequences_read() {
        let doc =
            p("# c\ninputs:\n  - name: a\n    size: 5\ntasks:\n- name: t\n  inputs:\n    - a   # x\n  outputs: []\n")
                .expect("parses");
        let inputs = doc.get("inputs").expect("inputs");
        assert_eq!(
            inputs,
            &Yaml::Seq(vec![Yaml::Map(vec![("name".into(), s("a", 3)), ("size".into(), s("5", 4))], 3)], 3)
        );
        let task = match doc.get("tasks") {
            Some(Yaml::Seq(items, 6)) => &items[0],
            other => panic!("{other:?}"),
        };
        assert_eq!(task.get("inputs"), Some(&Yaml::Seq(vec![s("a", 8)], 8)));
        assert_eq!(task.get("outputs"), Some(&Yaml::Seq(vec![], 9)));
        assert_eq!(task.get("name"), Some(&s("t", 6)));
    }

    #[test]
    fn quoted_keys_and_values_and_missing_values() {
        let doc = p("\"a b\": 'x: y'\nc:\nd: \"#no\"\n").expect("parses");
        assert_eq!(doc.get("a b"), Some(&s("x: y", 1)));
        assert_eq!(doc.get("c"), Some(&s("", 2)));
        assert_eq!(doc.get("d"), Some(&s("#no", 3)));
    }

    #[test]
    fn what_is_not_the_subset_is_refused_at_its_line() {
        for (text, line) in [
            ("a: 1\n\tb: 2\n", 2),
            ("a: [1, 2]\n", 1),
            ("a: &x 1\n", 1),
            ("a: |\n  text\n", 1),
            ("a: 1\na: 2\n", 2),
            ("a:\n  b: 1\n    c: 2\n", 3),
            ("a: 1\n  b: 2\n", 2),
            ("- a\nb: 1\n", 2),
            ("a: \"open\n", 1),
            ("a:\n  - x\n  y: 1\n", 3),
        ] {
            let e = p(text).expect_err(text).to_string();
            assert!(e.contains(&format!(":{line}")), "{text:?}: {e}");
        }
        assert!(p("# only a comment\n").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text: String = (0..10_000).map(|i| format!("{}- \n", " ".repeat(i))).collect();
        assert!(p(&text).is_err());
        let text = "- ".repeat(10_000) + "x\n";
        assert!(p(&text).is_err());
    }
}
