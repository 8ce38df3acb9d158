//! Bounded, line-exact reading of trace inputs.
//!
//! Every reader goes through this module, so that the same limits and the
//! same line numbering hold for every format:
//!
//! - A line (or CSV record) longer than [`MAX_LINE_BYTES`] is an error: no
//!   trace row is that long, and reading on would let a wrong file (a disk
//!   image, `/dev/zero`) take all memory. Whole-document formats (JSON) are
//!   capped at [`MAX_DOCUMENT_BYTES`] instead.
//! - Line numbers count `\n`; a `\r` before it belongs to the same line break,
//!   so LF, CRLF and mixed files number their lines alike.
//! - Text from the file is echoed in messages through [`quote`]: at most
//!   [`QUOTE_BYTES`] bytes, control characters escaped.
//!
//! A [`Source`] is a file or bytes in memory with a name for messages; the
//! second form lets tests and fuzz targets drive every reader without files.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use crate::error::TraceError;

/// The longest line (or CSV record) a line-oriented reader accepts.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The largest whole document (JSON) a reader accepts.
pub const MAX_DOCUMENT_BYTES: u64 = 256 << 20;

/// At most this many bytes of file text appear in one message.
pub const QUOTE_BYTES: usize = 200;

/// Where a reader's bytes come from: a file, or bytes in memory named like
/// one (for tests and fuzzing).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    name: &'a Path,
    bytes: Option<&'a [u8]>,
}

impl<'a> Source<'a> {
    /// The file at `path`.
    pub fn file(path: &'a Path) -> Self {
        Source { name: path, bytes: None }
    }

    /// `bytes`, reported as if they were the file `name`.
    pub fn bytes(name: &'a Path, bytes: &'a [u8]) -> Self {
        Source { name, bytes: Some(bytes) }
    }

    /// The name messages use.
    pub fn name(&self) -> &'a Path {
        self.name
    }

    /// The bytes, when they are in memory rather than in a file.
    pub fn in_memory(&self) -> Option<&'a [u8]> {
        self.bytes
    }

    /// Opens the bytes for reading.
    pub fn open(&self) -> Result<Box<dyn Read + 'a>, TraceError> {
        match self.bytes {
            Some(bytes) => Ok(Box::new(bytes)),
            None => {
                let file = std::fs::File::open(self.name).map_err(|e| TraceError::io(self.name, e))?;
                Ok(Box::new(file))
            }
        }
    }
}

impl<'a> From<&'a Path> for Source<'a> {
    fn from(path: &'a Path) -> Self {
        Source::file(path)
    }
}

impl<'a> From<&'a PathBuf> for Source<'a> {
    fn from(path: &'a PathBuf) -> Self {
        Source::file(path)
    }
}

/// `text` as it may appear in a message: at most [`QUOTE_BYTES`] bytes of
/// quoted text (whole characters, with the full length said when cut),
/// control characters escaped so a hostile file cannot drive the terminal.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(QUOTE_BYTES) + 32);
    let mut shown = 0;
    for c in text.chars() {
        let before = out.len();
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > QUOTE_BYTES {
            out.truncate(before);
            break;
        }
        shown += c.len_utf8();
    }
    if shown < text.len() {
        out.push_str(&format!("… ({} bytes in all)", text.len()));
    }
    out
}

/// The error for a line that exceeds [`MAX_LINE_BYTES`].
fn line_too_long(name: &Path, line: u64) -> TraceError {
    TraceError::parse(
        name,
        line,
        0,
        None,
        format!(
            "line longer than {MAX_LINE_BYTES} bytes; no row of this format is that long (is this the right file?)"
        ),
    )
}

/// The error for bytes that are not UTF-8, at the first bad byte.
fn not_utf8(name: &Path, line: u64, prefix: &[u8], error: std::str::Utf8Error) -> TraceError {
    let valid = &prefix[..error.valid_up_to()];
    // The valid prefix is UTF-8 by definition; count its characters.
    let column = std::str::from_utf8(valid).map_or(0, |s| s.chars().count()) as u64 + 1;
    TraceError::parse(name, line, column, None, "not UTF-8 text (is this the right file?)")
}

/// Calls `each` with every line of `source` (1-based number, text without
/// its line break). Lines longer than [`MAX_LINE_BYTES`] and text that is
/// not UTF-8 are errors at their line.
pub fn for_each_line(
    source: Source<'_>,
    mut each: impl FnMut(u64, &str) -> Result<(), TraceError>,
) -> Result<(), TraceError> {
    let name = source.name();
    let mut reader = std::io::BufReader::with_capacity(64 << 10, source.open()?);
    let mut line: Vec<u8> = Vec::new();
    let mut number: u64 = 0;
    loop {
        line.clear();
        number += 1;
        let ended = read_bounded_line(&mut reader, &mut line).map_err(|e| match e {
            LineError::TooLong => line_too_long(name, number),
            LineError::Io(e) => TraceError::io(name, e),
        })?;
        if line.is_empty() && !ended {
            return Ok(());
        }
        let mut body = line.as_slice();
        if ended {
            body = &body[..body.len() - 1];
        }
        if let Some(stripped) = body.strip_suffix(b"\r") {
            body = stripped;
        }
        if body.len() > MAX_LINE_BYTES {
            return Err(line_too_long(name, number));
        }
        let text = std::str::from_utf8(body).map_err(|e| not_utf8(name, number, body, e))?;
        each(number, text)?;
        if !ended {
            return Ok(());
        }
    }
}

enum LineError {
    TooLong,
    Io(std::io::Error),
}

/// Appends one line (with its `\n`, if any) to `out`; `Ok(true)` when a
/// `\n` ended it, `Ok(false)` at the end of the input.
fn read_bounded_line(reader: &mut impl BufRead, out: &mut Vec<u8>) -> Result<bool, LineError> {
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LineError::Io(e)),
        };
        if available.is_empty() {
            return Ok(false);
        }
        let (take, ended) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if out.len() + take > MAX_LINE_BYTES + 2 {
            return Err(LineError::TooLong);
        }
        out.extend_from_slice(&available[..take]);
        reader.consume(take);
        if ended {
            return Ok(true);
        }
    }
}

/// Reads a whole document of at most `max_bytes` (JSON files) as UTF-8.
pub fn read_document(source: Source<'_>, max_bytes: u64) -> Result<String, TraceError> {
    let name = source.name();
    let mut bytes = Vec::new();
    source.open()?.take(max_bytes + 1).read_to_end(&mut bytes).map_err(|e| TraceError::io(name, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(TraceError::file(name, format!("larger than {max_bytes} bytes; is this the right file?")));
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let bad = e.utf8_error().valid_up_to();
        let line = bytes[..bad].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let start = bytes[..bad].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let prefix = &bytes[start..];
        match std::str::from_utf8(prefix) {
            Err(inner) => not_utf8(name, line, prefix, inner),
            Ok(_) => TraceError::file(name, "not UTF-8 text"),
        }
    })
}

/// A reader that counts line breaks as bytes pass, so that a CSV record's
/// line can be computed exactly from its byte offset, and that stops a line
/// or record longer than the limit.
pub(crate) struct Counted<R> {
    inner: R,
    /// Bytes handed to the CSV parser so far.
    consumed: u64,
    /// Line breaks counted so far (`\n` bytes).
    newlines: u64,
    /// Bytes since the last `\n`.
    since_newline: u64,
    /// Offsets of `\r` and `\n` bytes (`true` for `\n`) the records have not
    /// yet passed; bounded by the parser's buffer plus one record.
    breaks: VecDeque<(u64, bool)>,
    /// `\n` bytes dropped from `breaks`.
    passed_newlines: u64,
    /// Where the latest record asked about starts.
    record_start: u64,
    /// What exceeded the limit, once something has.
    overflow: Option<Overflow>,
    /// The line of the latest record asked about.
    record_start_line: u64,
}

/// What made a [`Counted`] reader stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// A line (this one) past the limit.
    Line(u64),
    /// A record with quoted line breaks, after the record on this line,
    /// past the limit (most likely a quote never closed).
    Record(u64),
}

impl<R: Read> Counted<R> {
    pub(crate) fn new(inner: R) -> Self {
        Counted {
            inner,
            consumed: 0,
            newlines: 0,
            since_newline: 0,
            breaks: VecDeque::new(),
            passed_newlines: 0,
            record_start: 0,
            overflow: None,
            record_start_line: 1,
        }
    }

    /// The 1-based line on which the record whose parser position is
    /// `offset` starts. The CSV parser puts a record's position right after
    /// the previous record's terminator, which for CRLF (or blank lines) is
    /// before the remaining `\n`s: skip the run of breaks at `offset`.
    pub(crate) fn record_line(&mut self, offset: u64) -> u64 {
        while let Some(&(at, lf)) = self.breaks.front() {
            if at >= offset {
                break;
            }
            self.breaks.pop_front();
            self.passed_newlines += u64::from(lf);
        }
        let mut cursor = offset;
        while let Some(&(at, lf)) = self.breaks.front() {
            if at != cursor {
                break;
            }
            self.breaks.pop_front();
            self.passed_newlines += u64::from(lf);
            cursor += 1;
        }
        self.record_start = cursor;
        self.record_start_line = self.passed_newlines + 1;
        self.record_start_line
    }

    /// What exceeded the limit, if reading stopped for that.
    pub(crate) fn overflow(&self) -> Option<Overflow> {
        self.overflow
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.overflow.is_some() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "line too long"));
        }
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            let at = self.consumed + i as u64;
            match b {
                b'\n' => {
                    self.breaks.push_back((at, true));
                    self.newlines += 1;
                    self.since_newline = 0;
                }
                b'\r' => {
                    self.breaks.push_back((at, false));
                    self.since_newline += 1;
                }
                _ => self.since_newline += 1,
            }
            // A record may hold quoted line breaks; bound it too (the
            // parser reads ahead by its buffer, hence the slack).
            let record_bytes = at.saturating_sub(self.record_start);
            if self.since_newline > MAX_LINE_BYTES as u64 {
                self.overflow = Some(Overflow::Line(self.newlines + 1));
            } else if record_bytes > MAX_LINE_BYTES as u64 + (64 << 10) {
                self.overflow = Some(Overflow::Record(self.record_start_line));
            }
            if self.overflow.is_some() {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "line too long"));
            }
        }
        self.consumed += n as u64;
        Ok(n)
    }
}

/// Maps an error of the CSV parser over a [`Counted`] reader to a
/// [`TraceError`] at the right line.
pub(crate) fn csv_error<R: Read>(name: &Path, reader: &mut csv::Reader<Counted<R>>, error: csv::Error) -> TraceError {
    match reader.get_ref().overflow() {
        Some(Overflow::Line(line)) => return line_too_long(name, line),
        Some(Overflow::Record(after)) => {
            return TraceError::parse(
                name,
                after,
                0,
                None,
                format!(
                    "a record after this line runs past {MAX_LINE_BYTES} bytes across several lines (a quote never closed?)"
                ),
            );
        }
        None => {}
    }
    let line = error.position().map(|p| p.byte()).map(|b| reader.get_mut().record_line(b)).unwrap_or(0);
    match error.kind() {
        csv::ErrorKind::Utf8 { err, .. } => {
            TraceError::parse(name, line, err.field() as u64 + 1, None, "not UTF-8 text (is this the right file?)")
        }
        csv::ErrorKind::Io(e) => TraceError::io(name, std::io::Error::new(e.kind(), e.to_string())),
        _ => TraceError::parse(name, line, 0, None, format!("malformed CSV: {}", quote(&error.to_string()))),
    }
}

/// A CSV reader over `source` with exact line numbers and bounded records.
pub(crate) fn csv_reader<'a>(
    source: Source<'a>,
    has_headers: bool,
) -> Result<csv::Reader<Counted<Box<dyn Read + 'a>>>, TraceError> {
    Ok(csv::ReaderBuilder::new().has_headers(has_headers).flexible(true).from_reader(Counted::new(source.open()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8]) -> Result<Vec<(u64, String)>, TraceError> {
        let mut out = Vec::new();
        for_each_line(Source::bytes(Path::new("t"), bytes), |n, text| {
            out.push((n, text.to_string()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn lines_are_numbered_alike_for_lf_crlf_and_mixed() {
        let expected = vec![(1, "a".to_string()), (2, String::new()), (3, "b".to_string())];
        assert_eq!(lines(b"a\n\nb\n").expect("lf"), expected);
        assert_eq!(lines(b"a\r\n\r\nb\r\n").expect("crlf"), expected);
        assert_eq!(lines(b"a\r\n\nb").expect("mixed, no final break"), expected);
        assert_eq!(lines(b"").expect("empty"), vec![]);
    }

    #[test]
    fn a_line_past_the_limit_is_an_error_at_its_line() {
        let mut bytes = b"ok\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        let err = lines(&bytes).expect_err("too long").to_string();
        assert!(err.starts_with("t:2: line longer than"), "{err}");
        let mut exact = vec![b'y'; MAX_LINE_BYTES];
        exact.extend_from_slice(b"\r\n");
        assert_eq!(lines(&exact).expect("exactly the limit").len(), 1);
    }

    #[test]
    fn bad_utf8_names_line_and_column() {
        let err = lines(b"fine\nab\xffc\n").expect_err("not utf-8").to_string();
        assert_eq!(err, "t:2:3: not UTF-8 text (is this the right file?)");
        let err = read_document(Source::bytes(Path::new("d"), b"{\n \"\xfe\"}"), 100).expect_err("bad").to_string();
        assert_eq!(err, "d:2:3: not UTF-8 text (is this the right file?)");
    }

    #[test]
    fn documents_are_capped() {
        let doc = read_document(Source::bytes(Path::new("d"), b"12345"), 5).expect("at the cap");
        assert_eq!(doc, "12345");
        let err = read_document(Source::bytes(Path::new("d"), b"123456"), 5).expect_err("over").to_string();
        assert!(err.contains("larger than 5 bytes"), "{err}");
    }

    #[test]
    fn quotes_are_short_and_escaped() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        let long = "é".repeat(300);
        let q = quote(&long);
        assert!(q.len() < QUOTE_BYTES + 40, "{q}");
        assert!(q.ends_with("… (600 bytes in all)"), "{q}");
        let controls = "\u{19}".repeat(1000);
        let q = quote(&controls);
        assert!(q.len() < QUOTE_BYTES + 40 && q.ends_with("(1000 bytes in all)"), "{q}");
    }

    #[test]
    fn csv_records_know_their_lines() {
        for (text, want) in [
            (&b"h,i\r\n1,2\r\n3,4\r\n"[..], vec![2, 3]),
            (&b"h,i\n1,2\r\n\r\n3,4\n5,6"[..], vec![2, 4, 5]),
            (&b"h,i\r\n\"x\r\ny\",2\r\n3,4\r\n"[..], vec![2, 4]),
            (&b"h,i\n\n\n1,2\n"[..], vec![4]),
        ] {
            let mut reader = csv_reader(Source::bytes(Path::new("c"), text), true).expect("opens");
            let mut record = csv::StringRecord::new();
            let mut got = Vec::new();
            while reader.read_record(&mut record).expect("valid") {
                let offset = record.position().expect("position").byte();
                got.push(reader.get_mut().record_line(offset));
            }
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(text));
        }
    }
}
