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
/// its header is `header` exactly. `fields` is the line without its end.
pub fn for_each_line(
    path: &Path,
    header: &str,
    mut row: impl FnMut(u64, &[u8]) -> Result<(), BenchError>,
) -> Result<(), BenchError> {
    let mut file = std::fs::File::open(path).map_err(|e| BenchError::io(path, e))?;
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0usize;
    let mut line_no = 0u64;
    let mut eof = false;
    while !eof {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0); // a line longer than the buffer
        }
        let n = file.read(&mut buf[filled..]).map_err(|e| BenchError::io(path, e))?;
        eof = n == 0;
        filled += n;
        // Lines complete in this chunk; at the end of the file, the last line too.
        let complete = if eof {
            filled
        } else {
            match buf[..filled].iter().rposition(|&b| b == b'\n') {
                Some(last) => last + 1,
                None => continue,
            }
        };
        for line in buf[..complete].split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            line_no += 1;
            if line_no == 1 {
                if line != header.as_bytes() {
                    return Err(BenchError::input(
                        path,
                        "line 1",
                        format!("expected the header `{header}`, found `{}`", String::from_utf8_lossy(line)),
                    ));
                }
                continue;
            }
            row(line_no, line)?;
        }
        buf.copy_within(complete..filled, 0);
        filled -= complete;
    }
    if line_no == 0 {
        return Err(BenchError::input(path, "line 1", format!("expected the header `{header}`, found an empty file")));
    }
    Ok(())
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
