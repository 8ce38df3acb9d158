//! TOML text → [`Params`], keeping each value's line and column.

use nimbus_sim::params::{Param, Params, Span, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Answers "which line and column is byte offset x?" in O(log n + 4 KiB)
/// per question, so that a scenario with millions of values is converted in
/// linear time rather than quadratic.
pub struct TextIndex<'a> {
    text: &'a str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// Characters before each checkpoint (every ~4 KiB, on a char boundary).
    checkpoints: Vec<(usize, usize)>,
}

impl<'a> TextIndex<'a> {
    const STRIDE: usize = 4096;

    /// Indexes `text`.
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        let mut checkpoints = vec![(0, 0)];
        let mut chars = 0;
        let mut last = 0;
        while last + Self::STRIDE < text.len() {
            let mut next = last + Self::STRIDE;
            while !text.is_char_boundary(next) {
                next -= 1;
            }
            chars += text[last..next].chars().count();
            checkpoints.push((next, chars));
            last = next;
        }
        TextIndex { text, line_starts, checkpoints }
    }

    /// Characters before byte offset `offset` (a char boundary).
    fn chars_before(&self, offset: usize) -> usize {
        let i = self.checkpoints.partition_point(|(at, _)| *at <= offset) - 1;
        let (at, chars) = self.checkpoints[i];
        chars + self.text[at..offset].chars().count()
    }

    /// 1-based line and column (in characters) of byte offset `offset`.
    pub fn position(&self, offset: usize) -> Span {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|start| *start <= offset);
        let start = self.line_starts[line - 1];
        let column = self.chars_before(offset) - self.chars_before(start) + 1;
        Span { line: u32::try_from(line).unwrap_or(u32::MAX), column: u32::try_from(column).unwrap_or(u32::MAX) }
    }
}

/// Parses a TOML document. On a syntax error returns the message and the
/// position it refers to.
pub fn parse(text: &str) -> Result<Params, (String, Option<Span>)> {
    let index = TextIndex::new(text);
    let table = DeTable::parse(text).map_err(|e| {
        let span = e.span().map(|r| index.position(r.start));
        (e.message().to_string(), span)
    })?;
    let span = index.position(table.span().start);
    convert_table(&index, "", table.get_ref(), Some(span))
}

fn convert_table(
    text: &TextIndex<'_>,
    path: &str,
    table: &DeTable<'_>,
    span: Option<Span>,
) -> Result<Params, (String, Option<Span>)> {
    let mut params = Params::new(path, span);
    for (key, value) in table.iter() {
        let key_text = key.get_ref().to_string();
        let child_path = if path.is_empty() { key_text.clone() } else { format!("{path}.{key_text}") };
        let param = convert_value(text, &child_path, value)?;
        params.insert(key_text, param);
    }
    Ok(params)
}

fn convert_value(
    text: &TextIndex<'_>,
    path: &str,
    value: &Spanned<DeValue<'_>>,
) -> Result<Param, (String, Option<Span>)> {
    let span = Some(text.position(value.span().start));
    let bad = |what: &str| (format!("key `{path}`: {what}"), span);
    let converted = match value.get_ref() {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Integer(i) => {
            let digits: String = i.as_str().chars().filter(|c| *c != '_').collect();
            let (sign, body) = match digits.strip_prefix('-') {
                Some(rest) => (-1i64, rest.to_string()),
                None => (1, digits.trim_start_matches('+').to_string()),
            };
            let body = body.trim_start_matches("0x").trim_start_matches("0o").trim_start_matches("0b");
            let v = i64::from_str_radix(body, i.radix()).map_err(|_| bad("integer out of range"))?;
            Value::Int(sign * v)
        }
        DeValue::Float(f) => {
            let digits: String = f.as_str().chars().filter(|c| *c != '_').collect();
            let v: f64 = match digits.as_str() {
                "inf" | "+inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "+nan" | "-nan" => f64::NAN,
                other => other.parse().map_err(|_| bad("malformed float"))?,
            };
            Value::Float(v)
        }
        DeValue::Datetime(_) => return Err(bad("dates are not accepted in scenarios")),
        DeValue::Array(items) => {
            let mut list = Vec::new();
            for (i, item) in items.iter().enumerate() {
                list.push(convert_value(text, &format!("{path}[{i}]"), item)?);
            }
            Value::List(list)
        }
        DeValue::Table(t) => Value::Table(convert_table(text, path, t, span)?),
    };
    Ok(Param { value: converted, span })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_positions() {
        let text = "name = \"x\"\nseeds = [1, 2]\n\n[workload]\nrate = 2.5\nbig = 1_000\n[[policy]]\nname = \"a\"\n[[policy]]\nname = \"b\"\n";
        let p = parse(text).expect("valid");
        assert_eq!(p.str("name"), Ok(Some("x")));
        assert_eq!(p.u64_list("seeds"), Ok(Some(vec![1, 2])));
        let w = p.table("workload").expect("table").expect("present");
        assert_eq!(w.f64("rate"), Ok(Some(2.5)));
        assert_eq!(w.u64("big"), Ok(Some(1000)));
        let err = w.str("rate").expect_err("not a string");
        assert_eq!(err.span, Some(Span { line: 5, column: 8 }));
        let policies = p.tables("policy").expect("list");
        assert_eq!(policies.len(), 2);
        assert_eq!(policies[1].str("name"), Ok(Some("b")));
    }

    #[test]
    fn positions_by_hand() {
        let text = "ab\né€x\n\nz";
        let index = TextIndex::new(text);
        let at = |needle: &str| index.position(text.find(needle).expect("present"));
        assert_eq!(at("a"), Span { line: 1, column: 1 });
        assert_eq!(at("b"), Span { line: 1, column: 2 });
        assert_eq!(at("€"), Span { line: 2, column: 2 });
        assert_eq!(at("x"), Span { line: 2, column: 3 });
        assert_eq!(at("z"), Span { line: 4, column: 1 });
        // Across checkpoints: a long line of multi-byte characters.
        let long = format!("k = \"{}\"\nq = 1", "é".repeat(10_000));
        let index = TextIndex::new(&long);
        assert_eq!(index.position(long.find('q').expect("q")), Span { line: 2, column: 1 });
        assert_eq!(index.position(long.len() - 1), Span { line: 2, column: 5 });
        // `k = "` is five characters, then 5,000 two-byte ones.
        assert_eq!(index.position(5 + 2 * 5000), Span { line: 1, column: 5006 });
    }

    #[test]
    fn syntax_errors_have_positions() {
        let (message, span) = parse("a = 1\nb = = 2\n").expect_err("invalid");
        assert!(!message.is_empty());
        assert_eq!(span.map(|s| s.line), Some(2));
    }
}
