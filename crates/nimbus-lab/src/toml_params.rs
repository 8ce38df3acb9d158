//! TOML text → [`Params`], keeping each value's line and column.

use nimbus_sim::params::{Param, Params, Span, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Line and column (1-based) of byte offset `offset` in `text`.
pub fn position(text: &str, offset: usize) -> Span {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Span { line: line as u32, column: column as u32 }
}

/// Parses a TOML document. On a syntax error returns the message and the
/// position it refers to.
pub fn parse(text: &str) -> Result<Params, (String, Option<Span>)> {
    let table = DeTable::parse(text).map_err(|e| {
        let span = e.span().map(|r| position(text, r.start));
        (e.message().to_string(), span)
    })?;
    let span = position(text, table.span().start);
    convert_table(text, "", table.get_ref(), Some(span))
}

fn convert_table(
    text: &str,
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

fn convert_value(text: &str, path: &str, value: &Spanned<DeValue<'_>>) -> Result<Param, (String, Option<Span>)> {
    let span = Some(position(text, value.span().start));
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
    fn syntax_errors_have_positions() {
        let (message, span) = parse("a = 1\nb = = 2\n").expect_err("invalid");
        assert!(!message.is_empty());
        assert_eq!(span.map(|s| s.line), Some(2));
    }
}
