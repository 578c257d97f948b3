//! One sysctl file read exactly as procps 4.0 `sysctl -p` reads it, and a value read exactly as
//! the kernel parses the text procps writes. Facts from procps-ng 4.0.2 `src/sysctl.c`
//! (`parse_setting_line`, `slashdot`) and the kernel's `proc_get_long` / `proc_dou8vec_minmax`,
//! checked against the real programs by `tests/integration/sysctl_diff.rs`.

use std::ops::Range;

/// C `isspace` in the C locale, which procps strips with.
fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// One `key = value` line as procps takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub number: usize,
    /// The key as procps keeps it (prefix `-` dropped, trailing blanks stripped).
    pub key: Range<usize>,
    /// The value procps writes (blanks stripped both sides), as a byte range of the file.
    pub value: Range<usize>,
}

/// Walks the assignments of a file: lines split at `\n`, each ending at its first NUL; blanks
/// (C `isspace`) stripped in front; a line of fewer than 2 bytes, or starting with `#` or `;`, or
/// without `=` skipped; key before the first `=`, one leading `-` dropped, trailing blanks
/// stripped (never its first byte); value after it, stripped both sides.
pub fn lines(bytes: &[u8], mut f: impl FnMut(Line)) {
    let mut start = 0;
    for (idx, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_start = start;
        start += raw.len() + 1;
        // getline's length counts the newline; a line shorter than 2 bytes is skipped.
        let has_newline = line_start + raw.len() < bytes.len();
        if raw.len() + usize::from(has_newline) < 2 {
            continue;
        }
        let text = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        let lead = text.iter().take_while(|&&b| c_space(b)).count();
        let rest = &text[lead..];
        if rest.len() < 2 || matches!(rest[0], b'#' | b';') {
            continue;
        }
        let Some(eq) = rest.iter().position(|&b| b == b'=') else {
            continue;
        };
        let base = line_start + lead;
        let mut key = base..base + eq;
        if bytes[key.start] == b'-' {
            key.start += 1;
        }
        while key.end > key.start + 1 && c_space(bytes[key.end - 1]) {
            key.end -= 1;
        }
        let mut value = base + eq + 1..base + rest.len();
        while value.start < value.end && c_space(bytes[value.start]) {
            value.start += 1;
        }
        while value.end > value.start + 1 && c_space(bytes[value.end - 1]) {
            value.end -= 1;
        }
        f(Line {
            number: idx + 1,
            key,
            value,
        });
    }
}

/// The `/proc/sys` path a key names (`net/ipv4/tcp_rfc1337`), the way procps builds it and the
/// kernel resolves it: a second leading `-` dropped; if the first separator is `.`, dots and
/// slashes swap; empty and `.` components vanish, `..` climbs; a trailing separator (a
/// directory) or a glob character makes it name no single key (`None`).
pub fn key_path(key: &[u8]) -> Option<String> {
    let key = key.strip_prefix(b"-").unwrap_or(key);
    if key.is_empty() || key.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
        return None;
    }
    let dotted = key.iter().find(|&&b| b == b'.' || b == b'/') == Some(&b'.');
    let swapped: Vec<u8> = key
        .iter()
        .map(|&b| match (dotted, b) {
            (true, b'.') => b'/',
            (true, b'/') => b'.',
            (_, b) => b,
        })
        .collect();
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
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "no value",
            Self::NotANumber => "not a number (no sign or quote is allowed)",
            Self::Negative => "negative",
            Self::TrailingText => "text right after the number",
            Self::OutOfRange => "out of range",
        })
    }
}

/// The kernel's `isspace` (Latin-1: C's blanks and no-break space).
fn kernel_space(b: u8) -> bool {
    c_space(b) || b == 0xa0
}

/// Parses the value procps writes (`value` then `\n`) the way `proc_get_long` and an unsigned
/// handler with `max` parse it: leading blanks skipped; a `-` makes it negative (refused); base
/// from the prefix (`0x` hex, `0` octal); at most 21 bytes looked at; the number must be followed
/// by a space, tab or newline, after which anything is ignored.
pub fn kernel_unsigned(value: &[u8], max: u64) -> Result<u64, Rejection> {
    let mut buf = value.to_vec();
    buf.push(b'\n');
    let skip = buf.iter().take_while(|&&b| kernel_space(b)).count();
    let rest = &buf[skip..];
    if rest.is_empty() {
        return Err(Rejection::Empty);
    }
    const TMPBUFLEN: usize = 22;
    let tmp = &rest[..rest.len().min(TMPBUFLEN - 1)];
    let at = |i: usize| tmp.get(i).copied().unwrap_or(0);
    let mut p = 0;
    let negative = at(0) == b'-' && rest.len() > 1;
    if negative {
        p = 1;
    }
    if !at(p).is_ascii_digit() {
        return Err(Rejection::NotANumber);
    }
    let base: u64 = if at(p) == b'0' {
        if at(p + 1).eq_ignore_ascii_case(&b'x') && at(p + 2).is_ascii_hexdigit() {
            p += 2;
            16
        } else {
            8
        }
    } else {
        10
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
    if overflow || p == TMPBUFLEN - 1 {
        return Err(Rejection::OutOfRange);
    }
    if p < rest.len() && !matches!(at(p), b' ' | b'\t' | b'\n') {
        return Err(Rejection::TrailingText);
    }
    if negative {
        return Err(Rejection::Negative);
    }
    if n > max {
        return Err(Rejection::OutOfRange);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8]) -> Vec<(usize, String, String)> {
        let mut out = Vec::new();
        lines(text, |l| {
            out.push((
                l.number,
                String::from_utf8_lossy(&text[l.key]).into_owned(),
                String::from_utf8_lossy(&text[l.value]).into_owned(),
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
        let p = |k: &str| key_path(k.as_bytes());
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
        let v = |s: &str| kernel_unsigned(s.as_bytes(), 255);
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
}
