//! One sysctl file read exactly as each procps-ng version's `sysctl -p` reads it, and a value
//! read exactly as each kernel parses the text procps writes. Facts from procps-ng 3.3.10,
//! 3.3.15 and 4.0.2 `sysctl.c` (`Preload` / `parse_setting_line`, `StripLeadingAndTrailingSpaces`,
//! `slashdot`) and the kernel's `proc_get_long`, `proc_dointvec` (3.10, 4.18) and
//! `proc_dou8vec_minmax` (6.x), checked against the real programs by
//! `tests/integration/sysctl_diff.rs`.

use std::ops::Range;

/// C `isspace` in the C locale, which procps 4 strips with.
fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The blanks procps 3.3 strips at the end of a line and of a key.
fn v3_trailing(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The blanks procps 3.3 strips at the start of a line and of a value.
fn v3_leading(b: u8) -> bool {
    matches!(b, b' ' | b'\t')
}

/// The procps-ng whose `sysctl -p` reads a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procps {
    /// RHEL/CentOS 7's: lines read in pieces of 4,095 bytes, key and value split by `strtok`,
    /// no `-` prefix.
    V3_3_10,
    /// RHEL 8's: whole lines, otherwise as 3.3.10.
    V3_3_15,
    /// 4.0 (Debian 12's): C `isspace` stripped, a leading `-` means "ignore failure".
    V4,
}

/// One `key = value` line as procps takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number (of the file's line the piece starts on).
    pub number: usize,
    /// The key as procps keeps it (4.0: prefix `-` dropped; trailing blanks stripped).
    pub key: Range<usize>,
    /// The value procps writes (then a newline).
    pub value: Vec<u8>,
    /// Where the value stands in the file, when it is a stretch of it (3.3.15 can write bytes
    /// it moved about in its buffer).
    pub span: Option<Range<usize>>,
}

/// The lines of a file as `procps` reads them: (1-based number, start, bytes without the
/// newline, whether a newline followed). 3.3.10 reads with `fgets` into 4,096 bytes: a longer
/// line comes in pieces of 4,095 bytes, each read as a line of its own.
fn pieces(bytes: &[u8], procps: Procps) -> Vec<(usize, usize, &[u8], bool)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (idx, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_start = start;
        start += raw.len() + 1;
        let newline = line_start + raw.len() < bytes.len();
        if raw.is_empty() && !newline {
            continue;
        }
        if procps != Procps::V3_3_10 {
            out.push((idx + 1, line_start, raw, newline));
            continue;
        }
        // The newline is part of the last piece; a piece of 4,095 bytes ends just before it.
        let with_newline = raw.len() + usize::from(newline);
        let mut at = 0;
        while at < with_newline {
            let end = (at + 4095).min(with_newline);
            let piece_newline = newline && end == with_newline;
            let piece_end = end.min(raw.len());
            out.push((idx + 1, line_start + at, &raw[at..piece_end], piece_newline));
            at = end;
        }
    }
    out
}

/// Walks the assignments of a file as `procps` reads them. A line ends at its first NUL (a C
/// string); a line whose first non-blank is `#` or `;`, or that is shorter than 2 bytes, is
/// skipped. 4.0: C `isspace` stripped in front; key before the first `=`, one leading `-`
/// dropped, trailing blanks stripped (never its first byte); value after it, stripped both
/// sides. 3.3: [`preload_v3`].
pub fn lines(bytes: &[u8], procps: Procps, mut f: impl FnMut(Line)) {
    // getline's buffer, reused line after line (3.3.15 can read past a line into what a longer
    // line before it left there); fresh memory is zero.
    let mut heap = vec![0u8; 120];
    for (number, line_start, raw, newline) in pieces(bytes, procps) {
        // getline's length counts the newline (3.3.15, 4.0); a line shorter than 2 is skipped.
        if procps != Procps::V3_3_10 && raw.len() + usize::from(newline) < 2 {
            continue;
        }
        let read = match procps {
            Procps::V4 => split_v4(&raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())]),
            _ => preload_v3(raw, newline, procps, &mut heap),
        };
        if let Some((key, value, span)) = read {
            let shift = |r: Range<usize>| line_start + r.start..line_start + r.end;
            f(Line {
                number,
                key: shift(key),
                value,
                span: span.map(shift),
            });
        }
    }
}

/// What one line gives: the key's range, the value written, and the value's range when the
/// value is a stretch of the line.
type Read = (Range<usize>, Vec<u8>, Option<Range<usize>>);

/// procps 4.0's key and value of one line (`parse_setting_line`).
fn split_v4(text: &[u8]) -> Option<Read> {
    let lead = text.iter().take_while(|&&b| c_space(b)).count();
    let rest = &text[lead..];
    if rest.len() < 2 || matches!(rest[0], b'#' | b';') {
        return None;
    }
    let eq = lead + rest.iter().position(|&b| b == b'=')?;
    let mut key = lead..eq;
    if text[key.start] == b'-' {
        key.start += 1;
    }
    while key.end > key.start + 1 && c_space(text[key.end - 1]) {
        key.end -= 1;
    }
    let mut value = eq + 1..text.len();
    while value.start < value.end && c_space(text[value.start]) {
        value.start += 1;
    }
    while value.end > value.start + 1 && c_space(text[value.end - 1]) {
        value.end -= 1;
    }
    Some((key, text[value.clone()].to_vec(), Some(value)))
}

/// The length of the C string at `at`.
fn c_len(buf: &[u8], at: usize) -> usize {
    buf[at..].iter().position(|&b| b == 0).unwrap_or(buf.len() - at)
}

/// Writes NUL over the blanks procps 3.3 strips at the end of the C string at `at`, never its
/// first byte (`StripLeadingAndTrailingSpaces`).
fn strip_end_v3(buf: &mut [u8], at: usize) {
    let len = c_len(buf, at);
    if len == 0 {
        return;
    }
    let mut end = at + len - 1;
    while end != at && v3_trailing(buf[end]) {
        buf[end] = 0;
        end -= 1;
    }
}

/// glibc's `strtok_r` from `at`: the token's range, and where the next call goes on.
fn strtok(buf: &mut [u8], at: usize, delims: &[u8]) -> Option<(Range<usize>, usize)> {
    // The end of the buffer reads as a NUL.
    let at_nul = |buf: &[u8], i: usize| buf.get(i).is_none_or(|&b| b == 0);
    if at_nul(buf, at) {
        return None;
    }
    let start = at + buf[at..].iter().take_while(|b| delims.contains(b)).count();
    if at_nul(buf, start) {
        return None;
    }
    let end = start
        + buf[start..]
            .iter()
            .take_while(|&&b| b != 0 && !delims.contains(&b))
            .count();
    if at_nul(buf, end) {
        return Some((start..end, end));
    }
    buf[end] = 0;
    Some((start..end, end + 1))
}

/// procps 3.3's `Preload` on one line, done on a C buffer as it does it: the end stripped of
/// spaces, tabs, CR and LF and the front of spaces and tabs; the key `strtok(line, "=")` (leading
/// `=` skipped) with its end stripped; the value `strtok(NULL, "\n\r")` (a CR ends it) with
/// spaces and tabs skipped in front. 3.3.10 writes nothing for an empty value; 3.3.15 first
/// moves `key=` to the front of its buffer (which can join a key that had no `=` to the bytes
/// after it) and writes an empty value too.
fn preload_v3(raw: &[u8], newline: bool, procps: Procps, heap: &mut Vec<u8>) -> Option<Read> {
    let line = [raw, if newline { b"\n" } else { b"" }, b"\0"].concat();
    // The line goes at the start of the buffer; what is past its NUL stays (3.3.15's buffer),
    // with a zero byte always at the end.
    if heap.len() < line.len() + 1 {
        heap.resize(line.len() + 1, 0);
    }
    let buf = heap;
    buf[..line.len()].copy_from_slice(&line);
    strip_end_v3(buf, 0);
    let t = buf.iter().take_while(|&&b| v3_leading(b)).count();
    if c_len(buf, t) < 2 || matches!(buf[t], b'#' | b';') {
        return None;
    }
    let (name, after) = strtok(buf, t, b"=")?;
    strip_end_v3(buf, name.start);
    let key = name.start..name.start + c_len(buf, name.start);
    if procps == Procps::V3_3_15 {
        buf.copy_within(key.clone(), 0);
        buf[key.len()] = b'=';
    }
    let (value, _) = strtok(buf, after, b"\n\r")?;
    let value = value.start + buf[value.clone()].iter().take_while(|&&b| v3_leading(b)).count()..value.end;
    if value.is_empty() && procps == Procps::V3_3_10 {
        return None;
    }
    let written = buf[value.clone()].to_vec();
    let span = (raw.get(value.clone()) == Some(&written[..])).then_some(value);
    Some((key, written, span))
}

/// `slashdot`, as procps and systemd's `normalize_sysctl` do it: if the first separator is `.`,
/// dots and slashes swap.
pub fn slashdot(key: &[u8]) -> Vec<u8> {
    let dotted = key.iter().find(|&&b| b == b'.' || b == b'/') == Some(&b'.');
    key.iter()
        .map(|&b| match (dotted, b) {
            (true, b'.') => b'/',
            (true, b'/') => b'.',
            (_, b) => b,
        })
        .collect()
}

/// The `/proc/sys` path a key names (`net/ipv4/tcp_rfc1337`), the way procps builds it and the
/// kernel resolves it: (4.0 only) a second leading `-` dropped; if the first separator is `.`,
/// dots and slashes swap; empty and `.` components vanish, `..` climbs; a trailing separator
/// (a directory) or a glob character makes it name no single key (`None`).
pub fn key_path(key: &[u8], procps: Procps) -> Option<String> {
    let key = match procps {
        Procps::V4 => key.strip_prefix(b"-").unwrap_or(key),
        _ => key,
    };
    if key.is_empty() || key.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
        return None;
    }
    let swapped = slashdot(key);
    if swapped.last() == Some(&b'/') {
        return None;
    }
    let mut out: Vec<&[u8]> = Vec::new();
    for part in swapped.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            p => out.push(p),
        }
    }
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out.join(&b'/')).into_owned())
}

/// Why the kernel refuses a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Empty,
    NotANumber,
    Negative,
    TrailingText,
    OutOfRange,
    /// A number past 64 bits (kernels before the overflow check read it wrapped), or a value
    /// written in pieces: what the kernel makes of it is not modelled.
    Unmodelled,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "no value",
            Self::NotANumber => "not a number (no sign or quote is allowed)",
            Self::Negative => "negative",
            Self::TrailingText => "text right after the number",
            Self::OutOfRange => "out of range",
            Self::Unmodelled => {
                "a number past 64 bits or a value past 1,023 bytes (what this kernel makes of it is not known)"
            }
        })
    }
}

/// The kernel whose handler reads what procps writes to `tcp_rfc1337`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// RHEL/CentOS 7's 3.10: an int (non-zero is on); writes are not strict, so procps's
    /// buffered write of `0 1` is taken number by number (the kernel takes `0 `, stdio writes the
    /// rest again) and the last number read wins.
    V3_10,
    /// RHEL 8's 4.18: an int; strict writes: the first number counts, the rest is ignored.
    V4_18,
    /// 6.x: a u8 (0 to 255); strict writes.
    V6,
}

/// The kernel's `isspace` (Latin-1: C's blanks and no-break space).
fn kernel_space(b: u8) -> bool {
    c_space(b) || b == 0xa0
}

/// One number as `proc_get_long` reads it at the start of `rest` (blanks skipped before):
/// whether it is negative, its magnitude, and where it ends. A `-` makes it negative; base from
/// the prefix (`0x` hex, `0` octal); at most 21 bytes looked at; it must be followed by a space,
/// tab or newline.
fn get_long(rest: &[u8]) -> Result<(bool, u64, usize), Rejection> {
    const TMPBUFLEN: usize = 22;
    let tmp = &rest[..rest.len().min(TMPBUFLEN - 1)];
    let at = |i: usize| tmp.get(i).copied().unwrap_or(0);
    let negative = at(0) == b'-' && rest.len() > 1;
    let mut p = usize::from(negative);
    if !at(p).is_ascii_digit() {
        return Err(Rejection::NotANumber);
    }
    let base: u64 = match (at(p), at(p + 1)) {
        (b'0', x) if x.eq_ignore_ascii_case(&b'x') && at(p + 2).is_ascii_hexdigit() => {
            p += 2;
            16
        }
        (b'0', _) => 8,
        _ => 10,
    };
    let mut n: u64 = 0;
    let mut overflow = false;
    while let Some(d) = (at(p) as char).to_digit(16).map(u64::from).filter(|d| *d < base) {
        match n.checked_mul(base).and_then(|n| n.checked_add(d)) {
            Some(v) => n = v,
            None => overflow = true,
        }
        p += 1;
    }
    if p == TMPBUFLEN - 1 {
        return Err(Rejection::OutOfRange);
    }
    if overflow {
        return Err(Rejection::Unmodelled);
    }
    if p < rest.len() && !matches!(at(p), b' ' | b'\t' | b'\n') {
        return Err(Rejection::TrailingText);
    }
    Ok((negative, n, p))
}

impl Kernel {
    /// What `tcp_rfc1337` holds after procps writes `value` (then a newline): the number, or
    /// why the kernel refuses it (the key then keeps what it held).
    pub fn write_rfc1337(self, value: &[u8]) -> Result<i64, Rejection> {
        // procps writes through stdio, whose buffer for a /proc file is 1,024 bytes: a longer
        // value reaches the kernel in pieces, which are not modelled.
        if value.len() >= 1024 {
            return Err(Rejection::Unmodelled);
        }
        let mut buf = value.to_vec();
        buf.push(b'\n');
        let mut rest = &buf[..];
        let mut last = None;
        loop {
            rest = &rest[rest.iter().take_while(|&&b| kernel_space(b)).count()..];
            if rest.is_empty() {
                return last.ok_or(Rejection::Empty);
            }
            let number = match get_long(rest) {
                // Kernel 6 checks for overflow.
                Err(Rejection::Unmodelled) if self == Kernel::V6 => Err(Rejection::OutOfRange),
                read => read.and_then(|(negative, n, end)| Ok((self.convert(negative, n)?, end))),
            };
            match number {
                Ok((value, end)) => {
                    last = Some(value);
                    rest = &rest[end..];
                }
                Err(why) => return last.ok_or(why),
            }
            if self != Kernel::V3_10 {
                return last.ok_or(Rejection::Empty);
            }
        }
    }

    /// A number as the key's type takes it: an int on 3.10 and 4.18, a u8 on 6.x. Kernel 6
    /// refuses a number past 64 bits; the older ones read it wrapped, which is not modelled.
    fn convert(self, negative: bool, n: u64) -> Result<i64, Rejection> {
        match self {
            Kernel::V6 if negative => Err(Rejection::Negative),
            Kernel::V6 if n > 255 => Err(Rejection::OutOfRange),
            Kernel::V6 => Ok(n as i64),
            _ if negative && n > 1 << 31 => Err(Rejection::OutOfRange),
            _ if negative => Ok(-(n as i64)),
            _ if n > i32::MAX as u64 => Err(Rejection::OutOfRange),
            _ => Ok(n as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8]) -> Vec<(usize, String, String)> {
        all_as(text, Procps::V4)
    }

    fn all_as(text: &[u8], procps: Procps) -> Vec<(usize, String, String)> {
        let mut out = Vec::new();
        lines(text, procps, |l: Line| {
            out.push((
                l.number,
                String::from_utf8_lossy(&text[l.key]).into_owned(),
                String::from_utf8_lossy(&l.value).into_owned(),
            ))
        });
        out
    }

    #[test]
    fn lines_follow_procps() {
        let got = all(b"# c\n ; c\nk=1\n  -k2 = 0 \r\nnoequals\n=5\nk3 = 1 # kept\nk4\0=1\n\0k5=1\nx\n");
        assert_eq!(
            got,
            [
                (3, "k".into(), "1".into()),
                (4, "k2".into(), "0".into()),
                (6, "".into(), "5".into()),
                (7, "k3".into(), "1 # kept".into()),
            ]
        );
    }

    #[test]
    fn key_paths_follow_procps_and_the_kernel() {
        let p = |k: &str| key_path(k.as_bytes(), Procps::V4);
        let want = Some("net/ipv4/tcp_rfc1337".to_string());
        for k in [
            "net.ipv4.tcp_rfc1337",
            "net/ipv4/tcp_rfc1337",
            "/net/ipv4/tcp_rfc1337",
            ".net.ipv4.tcp_rfc1337",
            "net.ipv4..tcp_rfc1337",
            "-net.ipv4.tcp_rfc1337",
            "net/ipv4/../ipv4/tcp_rfc1337",
        ] {
            assert_eq!(p(k), want, "{k}");
        }
        for k in [
            "net.ipv4.tcp_rfc1337.",
            "net.ipv4/tcp_rfc1337",
            "NET.ipv4.tcp_rfc1337",
            "net.ipv4.tcp_rfc13*",
            "",
        ] {
            assert_ne!(p(k), want, "{k}");
        }
        assert_eq!(
            p("net.ipv4.conf.eth0/1.rp_filter").as_deref(),
            Some("net/ipv4/conf/eth0.1/rp_filter")
        );
    }

    #[test]
    fn values_parse_as_the_kernel_parses_them() {
        let v = |s: &str| Kernel::V6.write_rfc1337(s.as_bytes());
        for (text, want) in [
            ("0", 0),
            ("01", 1),
            ("010", 8),
            ("0x1", 1),
            ("0X0ff", 255),
            ("1 1", 1),
            ("1 # x", 1),
        ] {
            assert_eq!(v(text), Ok(want), "{text}");
        }
        for (text, why) in [
            ("", Rejection::Empty),
            ("+1", Rejection::NotANumber),
            ("\"1\"", Rejection::NotANumber),
            ("-0", Rejection::Negative),
            ("-1", Rejection::Negative),
            ("1#x", Rejection::TrailingText),
            ("08", Rejection::TrailingText),
            ("0x", Rejection::TrailingText),
            ("256", Rejection::OutOfRange),
            ("99999999999999999999", Rejection::OutOfRange),
            ("000000000000000000001", Rejection::OutOfRange),
        ] {
            assert_eq!(v(text), Err(why), "{text}");
        }
        assert_eq!(v("00000000000000000001"), Ok(1));
    }

    #[test]
    fn procps_3_3_reads_lines_with_strtok() {
        let text = b"k=1\n-k2 = 0\n\x0bk3=1\n=5\n==k4=2\nk5 = 1\r0\nk6=\r7\nk7= \nk8 = 1 \t\r\n";
        assert_eq!(
            all_as(text, Procps::V3_3_15),
            [
                (1, "k".into(), "1".into()),
                (2, "-k2".into(), "0".into()),
                (3, "\x0bk3".into(), "1".into()),
                (5, "k4".into(), "2".into()),
                (6, "k5".into(), "1".into()),
                (7, "k6".into(), "7".into()),
                (9, "k8".into(), "1".into()),
            ]
        );
        // The `-` prefix is part of the key before procps 3.3.16.
        assert_eq!(
            key_path(b"-net.ipv4.tcp_rfc1337", Procps::V3_3_10),
            Some("-net/ipv4/tcp_rfc1337".into())
        );
        // 3.3.10 reads a line in pieces of 4,095 bytes: a long comment can end in an assignment.
        let long = [b"#".repeat(4095), b"k=1\n".to_vec()].concat();
        assert_eq!(all_as(&long, Procps::V3_3_10), [(1, "k".into(), "1".into())]);
        assert!(all_as(&long, Procps::V3_3_15).is_empty());
    }

    #[test]
    fn older_kernels_read_an_int_and_3_10_takes_the_last_number() {
        let on = |k: Kernel, s: &str| k.write_rfc1337(s.as_bytes());
        assert_eq!(on(Kernel::V3_10, "0 1"), Ok(1));
        assert_eq!(on(Kernel::V4_18, "0 1"), Ok(0));
        assert_eq!(on(Kernel::V6, "0 1"), Ok(0));
        assert_eq!(on(Kernel::V3_10, "0 x"), Ok(0));
        for k in [Kernel::V3_10, Kernel::V4_18] {
            assert_eq!(on(k, "2"), Ok(2));
            assert_eq!(on(k, "-1"), Ok(-1));
            assert_eq!(on(k, "256"), Ok(256));
            assert_eq!(on(k, "2147483648"), Err(Rejection::OutOfRange));
            assert_eq!(on(k, "-2147483648"), Ok(-2147483648));
            assert_eq!(on(k, "18446744073709551617"), Err(Rejection::Unmodelled));
        }
        assert_eq!(on(Kernel::V6, "256"), Err(Rejection::OutOfRange));
        assert_eq!(on(Kernel::V6, "18446744073709551617"), Err(Rejection::OutOfRange));
    }
}
