//! The peer workloads' CSV, read as it is: a header line, then comma-separated
//! fields with numbers as decimal strings, `\n` line ends (a `\r` before it is
//! accepted), no quoting (the generators write none). The scenarios read it as
//! [`CsvPieces`], byte ranges that the workers parse in parallel; parsed by
//! hand, without an allocation per row.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::BenchError;

/// Bytes read per chunk.
const CHUNK: usize = 4 << 20;

/// Calls `row(line_number, fields)` for each data line of `path` after checking
/// its header is `header` exactly. `fields` is the line without its end. Simple,
/// two passes per line (find the end, then the fields): for tools such as
/// `convert`; the scenarios read [`CsvPieces`].
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

/// A CSV file split into pieces of about `piece_bytes` bytes that can be read
/// independently, on any thread, in any order: the scenarios' input, read by
/// every worker at once (piece `k` by worker `k % workers`).
///
/// A line belongs to the piece that holds its first byte, so piece `k` is the
/// lines starting in `[data_start + k * piece_bytes, data_start + (k + 1) * piece_bytes)`.
/// Reading a piece reads its bytes, plus the byte before it (to find its first
/// line start) and the tail of its last line.
#[derive(Debug, Clone)]
pub struct CsvPieces {
    path: PathBuf,
    /// The expected first line, for error messages.
    header: String,
    /// Byte offset of the first data line (after the header).
    data_start: u64,
    /// File length in bytes.
    len: u64,
    /// Nominal piece size in bytes.
    piece_bytes: u64,
}

impl CsvPieces {
    /// Opens `path` after checking its first line is `header` exactly.
    pub fn open(path: &Path, header: &str, piece_bytes: usize) -> Result<Self, BenchError> {
        let file = std::fs::File::open(path).map_err(|e| BenchError::io(path, e))?;
        let len = file.metadata().map_err(|e| BenchError::io(path, e))?.len();
        let mut first = Vec::new();
        std::io::BufRead::read_until(&mut std::io::BufReader::new(file), b'\n', &mut first)
            .map_err(|e| BenchError::io(path, e))?;
        let data_start = first.len() as u64;
        let line = first.strip_suffix(b"\n").unwrap_or(&first);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line != header.as_bytes() {
            let found = if first.is_empty() {
                "an empty file".to_owned()
            } else {
                format!("`{}`", String::from_utf8_lossy(line))
            };
            return Err(BenchError::input(path, "line 1", format!("expected the header `{header}`, found {found}")));
        }
        Ok(CsvPieces {
            path: path.to_owned(),
            header: header.to_owned(),
            data_start,
            len,
            piece_bytes: piece_bytes.max(1) as u64,
        })
    }

    /// How many pieces there are.
    pub fn count(&self) -> usize {
        (self.len - self.data_start).div_ceil(self.piece_bytes) as usize
    }

    /// Calls `row(cursor)` once per line of piece `piece`, in file order; `row`
    /// reads the line's fields from the cursor, the last one with a `*_last`
    /// method that also takes the line end, and returns `Ok(false)` if the line
    /// does not parse (then this returns an error naming the line). `buf` is the
    /// caller's to reuse between calls. One pass over the bytes: the hot path of
    /// the scenarios' CSV input.
    pub fn for_each_row(
        &self,
        piece: usize,
        buf: &mut Vec<u8>,
        mut row: impl FnMut(&mut Cursor<'_>) -> Result<bool, BenchError>,
    ) -> Result<(), BenchError> {
        let Some((offset, lines)) = self.read_piece(piece, buf)? else { return Ok(()) };
        let mut cursor = Cursor { buf: lines, pos: 0 };
        while cursor.pos < lines.len() {
            let start = cursor.pos;
            if cursor.skip_empty_line() {
                continue;
            }
            if !row(&mut cursor)? {
                let rest = &lines[start..];
                let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                let line_no = self.line_number(offset + start as u64)?;
                return Err(bad_line(&self.path, line_no, &rest[..end], &self.header));
            }
        }
        Ok(())
    }

    /// Reads the whole lines of piece `piece` into `buf`; returns their file
    /// offset and bytes (each line ends with `\n`, one is added after a last line
    /// without it), or `None` if no line starts in the piece.
    fn read_piece<'b>(&self, piece: usize, buf: &'b mut Vec<u8>) -> Result<Option<(u64, &'b [u8])>, BenchError> {
        use std::os::unix::fs::FileExt;
        let nominal = self.data_start + piece as u64 * self.piece_bytes;
        if nominal >= self.len {
            return Ok(None);
        }
        let end = (nominal + self.piece_bytes).min(self.len);
        // From the byte before the piece (a line starts at `nominal` if it is a line
        // end), to the end plus a margin for the last line's tail.
        let from = nominal - 1;
        let file = std::fs::File::open(&self.path).map_err(|e| BenchError::io(&self.path, e))?;
        let mut want = end - from + 256;
        loop {
            let to = (from + want).min(self.len);
            buf.resize((to - from) as usize, 0);
            file.read_exact_at(buf, from).map_err(|e| BenchError::io(&self.path, e))?;
            let Some(first_nl) = buf.iter().position(|&b| b == b'\n') else {
                if to == self.len {
                    return Ok(None); // a line that started before the piece runs to the end of the file
                }
                want *= 2;
                continue;
            };
            let start = first_nl + 1;
            if from + start as u64 >= end {
                return Ok(None); // the line ends after the piece: no line starts in it
            }
            let last_from = (end - 1 - from) as usize; // the first line end at or after the piece's last byte
            match buf[last_from..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let stop = last_from + i + 1;
                    return Ok(Some((from + start as u64, &buf[start..stop])));
                }
                None if to == self.len => {
                    buf.push(b'\n');
                    return Ok(Some((from + start as u64, &buf[start..])));
                }
                None => want *= 2,
            }
        }
    }

    /// The 1-based line number of the line starting at byte `offset` (counts the
    /// line ends before it: only on the error path).
    fn line_number(&self, offset: u64) -> Result<u64, BenchError> {
        let mut file = std::fs::File::open(&self.path).map_err(|e| BenchError::io(&self.path, e))?;
        let mut left = offset;
        let mut lines = 1u64;
        let mut buf = vec![0u8; 1 << 16];
        while left > 0 {
            let n = file.read(&mut buf[..left.min(1 << 16) as usize]).map_err(|e| BenchError::io(&self.path, e))?;
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            left -= n as u64;
        }
        Ok(lines)
    }
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
    /// Fields of up to 15 digits (timestamps have 13, phone numbers 11) take two
    /// 8-byte loads and no loop: the first non-digit byte of each word is found
    /// with bit operations, and its digits converted at once ([`parse_prefix`]).
    /// Longer fields, and the last bytes of a piece, go byte by byte.
    #[inline(always)]
    fn digits(&mut self) -> Option<(u64, u8)> {
        let rest = &self.buf[self.pos..];
        if let Some(chunk) = rest.get(..16) {
            let w0 = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
            let n0 = digit_prefix(w0);
            if n0 < 8 {
                if n0 == 0 {
                    return None;
                }
                self.pos += n0 + 1;
                return Some((parse_prefix(w0, n0), chunk[n0]));
            }
            let w1 = u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes"));
            let n1 = digit_prefix(w1);
            if n1 < 8 {
                self.pos += 8 + n1 + 1;
                return Some((parse_eight(w0) * POW10[n1] + parse_prefix(w1, n1), chunk[8 + n1]));
            }
        }
        self.digits_slow()
    }

    /// [`digits`](Self::digits) eight, then one, at a time.
    fn digits_slow(&mut self) -> Option<(u64, u8)> {
        let rest = &self.buf[self.pos..];
        let mut value = 0u64;
        let mut i = 0;
        while let Some(chunk) = rest.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            if digit_prefix(word) < 8 {
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

/// How many of the 8 bytes of `word` (little-endian: the first byte lowest) are
/// ASCII digits before the first byte that is not (8 if all are). simdjson's
/// `is_made_of_eight_digits_fast` test, per byte: a digit's high nibble is 3, and
/// adding 6 leaves it 3. A carry out of a non-digit byte only changes later bytes,
/// so the first non-digit is found exactly.
#[inline]
fn digit_prefix(word: u64) -> usize {
    let high = word & 0xF0F0_F0F0_F0F0_F0F0;
    let plus6 = (word.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4;
    let not_digit = (high | plus6) ^ 0x3333_3333_3333_3333; // a zero byte per digit
    (not_digit.trailing_zeros() / 8) as usize
}

/// Powers of ten up to 10^8.
const POW10: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// The value of the first `n` (0 to 8) bytes of `word`, all ASCII digits: they are
/// moved to the top of the word and the bytes below filled with `'0'`, then the
/// eight are converted at once.
#[inline]
fn parse_prefix(word: u64, n: usize) -> u64 {
    match n {
        0 => return 0,
        8 => return parse_eight(word),
        _ => {}
    }
    let shift = 8 * (8 - n) as u32;
    parse_eight((word << shift) | (0x3030_3030_3030_3030 >> (64 - shift)))
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
    fn digit_prefix_and_parse_prefix_match_naive() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly digits, some commas, line ends and bytes above 0xF9 (a carry).
            let bytes: [u8; 8] = std::array::from_fn(|i| match (x >> (i * 8)) as u8 {
                b @ 0..=199 => b'0' + b % 10,
                200..=219 => b',',
                220..=239 => b'\n',
                b => b,
            });
            let word = u64::from_le_bytes(bytes);
            let n = bytes.iter().position(|b| !b.is_ascii_digit()).unwrap_or(8);
            assert_eq!(digit_prefix(word), n, "{bytes:?}");
            {
                let naive = bytes[..n].iter().fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
                assert_eq!(parse_prefix(word, n), naive, "{bytes:?}");
            }
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
        // Every piece size, from one line per piece to the whole file in one piece,
        // sees each line once.
        for piece_bytes in [1, 7, 100, 4096, 1 << 20, 1 << 30] {
            let pieces = CsvPieces::open(&path, "a,b", piece_bytes).unwrap();
            let (mut n, mut sum) = (0u64, 0u64);
            let mut buf = Vec::new();
            for k in (0..pieces.count()).rev() {
                pieces
                    .for_each_row(k, &mut buf, |c| {
                        let (Some(v), Some(x)) = (c.u64(), c.bytes_last()) else { return Ok(false) };
                        assert_eq!(x, b"x");
                        sum += v;
                        n += 1;
                        Ok(true)
                    })
                    .unwrap();
            }
            assert_eq!((n, sum), (300_000, 299_999 * 300_000 / 2), "pieces of {piece_bytes} bytes");
        }
        assert!(CsvPieces::open(&path, "a,c", 1 << 20).is_err());
        std::fs::write(&path, "a,b\n1,x\n\n2,y,z").unwrap();
        for piece_bytes in [1, 3, 1 << 20] {
            let pieces = CsvPieces::open(&path, "a,b", piece_bytes).unwrap();
            let errors: Vec<String> = (0..pieces.count())
                .filter_map(|k| {
                    pieces.for_each_row(k, &mut Vec::new(), |c| Ok(c.u64().is_some() && c.bytes_last().is_some())).err()
                })
                .map(|e| e.to_string())
                .collect();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].contains("line 4") && errors[0].contains("2,y,z"), "{}", errors[0]);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
