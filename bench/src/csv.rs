//! The peer workloads' CSV, read as it is: a header line, then comma-separated
//! fields with numbers as decimal strings, `\n` line ends (a `\r` before it is
//! accepted), no quoting (the generators write none). Read in 4 MiB chunks so
//! parsing starts before the file is read; parsed by hand, without an
//! allocation per row.

use std::io::Read;
use std::path::Path;

use crate::error::BenchError;

/// Bytes read per chunk.
const CHUNK: usize = 4 << 20;

/// Calls `row(line_number, fields)` for each data line of `path` after checking
/// its header is `header` exactly. `fields` is the line without its end. Simple,
/// two passes per line (find the end, then the fields): for tools such as
/// `convert`; the scenarios' hot path uses [`for_each_row`].
pub fn for_each_line(
    path: &Path,
    header: &str,
    mut row: impl FnMut(u64, &[u8]) -> Result<(), BenchError>,
) -> Result<(), BenchError> {
    let mut line_no = 1u64;
    for_each_chunk(path, header, |chunk| {
        for line in chunk.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            line_no += 1;
            row(line_no, line)?;
        }
        Ok(())
    })
}

/// Calls `row(cursor)` once per data line of `path` (after checking its header
/// is `header` exactly); `row` reads the line's fields from the cursor, the last
/// one with a `*_last` method that also takes the line end, and returns
/// `Ok(false)` if the line does not parse (then this returns an error naming the
/// line). One pass over the bytes: the hot path of the scenarios' CSV input.
pub fn for_each_row(
    path: &Path,
    header: &str,
    mut row: impl FnMut(&mut Cursor<'_>) -> Result<bool, BenchError>,
) -> Result<(), BenchError> {
    let mut line_no = 1u64;
    for_each_chunk(path, header, |chunk| {
        let mut cursor = Cursor { buf: chunk, pos: 0 };
        while cursor.pos < chunk.len() {
            let start = cursor.pos;
            line_no += 1;
            if cursor.skip_empty_line() {
                continue;
            }
            if !row(&mut cursor)? {
                let rest = &chunk[start..];
                let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                return Err(bad_line(path, line_no, &rest[..end], header));
            }
        }
        Ok(())
    })
}

/// Reads `path` in chunks of whole lines (each ending with `\n`), after checking
/// the first line is `header`, and calls `chunk` on each.
fn for_each_chunk(
    path: &Path,
    header: &str,
    mut chunk: impl FnMut(&[u8]) -> Result<(), BenchError>,
) -> Result<(), BenchError> {
    let mut file = std::fs::File::open(path).map_err(|e| BenchError::io(path, e))?;
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0usize;
    let mut header_seen = false;
    let mut eof = false;
    while !eof {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0); // a line longer than the buffer
        }
        let n = file.read(&mut buf[filled..]).map_err(|e| BenchError::io(path, e))?;
        eof = n == 0;
        filled += n;
        if eof && filled > 0 && buf[filled - 1] != b'\n' {
            // The last line has no line end: give it one.
            if filled == buf.len() {
                buf.push(b'\n');
            } else {
                buf[filled] = b'\n';
            }
            filled += 1;
        }
        let Some(last) = buf[..filled].iter().rposition(|&b| b == b'\n') else {
            continue;
        };
        let mut lines = &buf[..=last];
        if !header_seen {
            let end = lines.iter().position(|&b| b == b'\n').unwrap_or(lines.len());
            let first = &lines[..end];
            let first = first.strip_suffix(b"\r").unwrap_or(first);
            if first != header.as_bytes() {
                return Err(BenchError::input(
                    path,
                    "line 1",
                    format!("expected the header `{header}`, found `{}`", String::from_utf8_lossy(first)),
                ));
            }
            header_seen = true;
            lines = &lines[end + 1..];
        }
        chunk(lines)?;
        buf.copy_within(last + 1..filled, 0);
        filled -= last + 1;
    }
    if !header_seen {
        return Err(BenchError::input(path, "line 1", format!("expected the header `{header}`, found an empty file")));
    }
    Ok(())
}

/// Reads the fields of consecutive lines in one pass. Every line it is given
/// ends with `\n`.
#[derive(Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Skips an empty line (`\n` or `\r\n`) at the cursor; true if there was one.
    #[inline]
    fn skip_empty_line(&mut self) -> bool {
        match self.buf[self.pos] {
            b'\n' => {
                self.pos += 1;
                true
            }
            b'\r' if self.buf.get(self.pos + 1) == Some(&b'\n') => {
                self.pos += 2;
                true
            }
            _ => false,
        }
    }

    /// Parses digits up to the next byte; returns the value and that byte.
    /// At most 19 digits (always fits in `u64`, so no overflow checks per digit).
    /// Eight digits at a time while eight are available (timestamps and phone
    /// numbers have 11 to 13), then byte by byte.
    #[inline]
    fn digits(&mut self) -> Option<(u64, u8)> {
        let rest = &self.buf[self.pos..];
        let mut value = 0u64;
        let mut i = 0;
        while let Some(chunk) = rest.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            if !eight_digits(word) {
                break;
            }
            value = value.wrapping_mul(100_000_000).wrapping_add(parse_eight(word));
            i += 8;
        }
        while let Some(&b) = rest.get(i) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                if i == 0 || i > 19 {
                    return None;
                }
                self.pos += i + 1;
                return Some((value, b));
            }
            value = value.wrapping_mul(10).wrapping_add(u64::from(d));
            i += 1;
        }
        None
    }

    /// A decimal field followed by a comma.
    #[inline]
    pub fn u64(&mut self) -> Option<u64> {
        match self.digits()? {
            (v, b',') => Some(v),
            _ => None,
        }
    }

    /// A decimal field followed by a comma, without leading zeros (so it prints
    /// back as it was read: phone numbers kept as integers).
    #[inline]
    pub fn canonical_u64(&mut self) -> Option<u64> {
        if self.buf.get(self.pos) == Some(&b'0') && self.buf.get(self.pos + 1).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        self.u64()
    }

    /// A decimal field that ends the line.
    #[inline]
    pub fn u64_last(&mut self) -> Option<u64> {
        match self.digits()? {
            (v, b'\n') => Some(v),
            (v, b'\r') if self.buf.get(self.pos) == Some(&b'\n') => {
                self.pos += 1;
                Some(v)
            }
            _ => None,
        }
    }

    /// A field followed by a comma, as bytes.
    #[inline]
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        let len = rest.iter().position(|&b| b == b',' || b == b'\n')?;
        if rest[len] != b',' {
            return None;
        }
        self.pos += len + 1;
        Some(&rest[..len])
    }

    /// A field that ends the line, as bytes (without `\r`); no comma in it.
    #[inline]
    pub fn bytes_last(&mut self) -> Option<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        let len = rest.iter().position(|&b| b == b',' || b == b'\n')?;
        if rest[len] != b'\n' {
            return None;
        }
        self.pos += len + 1;
        let field = &rest[..len];
        Some(field.strip_suffix(b"\r").unwrap_or(field))
    }
}

/// Whether the 8 bytes of `word` (little-endian) are all ASCII digits
/// (simdjson's `is_made_of_eight_digits_fast`).
#[inline]
fn eight_digits(word: u64) -> bool {
    ((word & 0xF0F0_F0F0_F0F0_F0F0) | ((word.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4))
        == 0x3333_3333_3333_3333
}

/// The value of 8 ASCII digits, the first in the lowest byte (simdjson's
/// `parse_eight_digits_unrolled`: pairs, then quads, then the whole, in three
/// multiplies).
#[inline]
fn parse_eight(word: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = word.wrapping_sub(0x3030_3030_3030_3030);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    (((v & MASK).wrapping_mul(MUL1)).wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2))) >> 32
}

/// A cursor over the fields of one line.
#[derive(Debug)]
pub struct Fields<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    /// The fields of `line`.
    #[inline]
    pub fn new(line: &'a [u8]) -> Self {
        Fields { line, pos: 0 }
    }

    /// The next field as bytes (`None` past the last one).
    #[inline]
    pub fn next_bytes(&mut self) -> Option<&'a [u8]> {
        if self.pos > self.line.len() {
            return None;
        }
        let rest = &self.line[self.pos..];
        let len = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        self.pos += len + 1;
        Some(&rest[..len])
    }

    /// The next field as an unsigned decimal number.
    #[inline]
    pub fn next_u64(&mut self) -> Option<u64> {
        self.next_bytes().and_then(parse_u64)
    }
}

/// Parses an unsigned decimal number: digits only, no sign, fits in `u64`.
#[inline]
pub fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut value = 0u64;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(value)
}

/// The error for a line that does not parse.
pub fn bad_line(path: &Path, line_no: u64, line: &[u8], expected: &str) -> BenchError {
    BenchError::input(
        path,
        format!("line {line_no}"),
        format!("expected {expected}, found `{}`", String::from_utf8_lossy(line)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_numbers() {
        let mut f = Fields::new(b"1700000000000,c007,,42");
        assert_eq!(f.next_u64(), Some(1_700_000_000_000));
        assert_eq!(f.next_bytes(), Some(&b"c007"[..]));
        assert_eq!(f.next_bytes(), Some(&b""[..]));
        assert_eq!(f.next_u64(), Some(42));
        assert_eq!(f.next_bytes(), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
    }

    #[test]
    fn cursor_numbers_match_naive_parse() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut text = Vec::new();
        let mut want = Vec::new();
        for len in (1..=20).cycle().take(2_000) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits: String = format!("{x:020}").chars().take(len).collect();
            want.push(if len <= 19 { digits.parse::<u64>().ok() } else { None });
            text.extend_from_slice(digits.as_bytes());
            text.extend_from_slice(b",x\n");
        }
        let mut cursor = Cursor { buf: &text, pos: 0 };
        for want in want {
            let got = cursor.u64();
            assert_eq!(got, want);
            if got.is_none() {
                let rest = &cursor.buf[cursor.pos..];
                cursor.pos += rest.iter().position(|&b| b == b',').unwrap() + 1;
            }
            assert_eq!(cursor.bytes_last(), Some(&b"x"[..]));
        }
        for bad in [&b"12a4567890,"[..], b"1234567:9012,", b"/2345678,", b",", b"99999999999999999999,"] {
            assert_eq!(Cursor { buf: bad, pos: 0 }.u64(), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn lines_across_chunks_and_header() {
        let dir = std::env::temp_dir().join(format!("citywatch-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.csv");
        let body: String = (0..300_000).map(|i| format!("{i},x\r\n")).collect();
        std::fs::write(&path, format!("a,b\n{body}")).unwrap();
        let mut sum = 0u64;
        let mut n = 0u64;
        for_each_line(&path, "a,b", |_, line| {
            sum += Fields::new(line).next_u64().unwrap();
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((n, sum), (300_000, 299_999 * 300_000 / 2));
        assert!(for_each_line(&path, "a,c", |_, _| Ok(())).is_err());
        let (mut n, mut sum) = (0u64, 0u64);
        for_each_row(&path, "a,b", |c| {
            let (Some(v), Some(x)) = (c.u64(), c.bytes_last()) else { return Ok(false) };
            assert_eq!(x, b"x");
            sum += v;
            n += 1;
            Ok(true)
        })
        .unwrap();
        assert_eq!((n, sum), (300_000, 299_999 * 300_000 / 2));
        std::fs::write(&path, "a,b\n1,x\n\n2,y,z").unwrap();
        let err = for_each_row(&path, "a,b", |c| Ok(c.u64().is_some() && c.bytes_last().is_some())).unwrap_err();
        assert!(err.to_string().contains("line 4") && err.to_string().contains("2,y,z"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
