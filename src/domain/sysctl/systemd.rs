//! sysctl files as systemd-sysctl applies them at boot, per version: RHEL 7's 219 (Red Hat's
//! tree: `/etc/sysctl.conf` read again after every drop-in), RHEL 8's 239 and 252. Facts from
//! their `src/sysctl/sysctl.c` (`parse_file`, `normalize_sysctl`, an ordered hashmap of keys),
//! checked against the programs by `tests/integration/sysctl_diff.rs`.

use std::collections::HashMap;

use super::procps::Procps;
use super::procps::{key_path, slashdot};

/// The systemd whose `systemd-sysctl` applies the files at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Systemd {
    /// 219: lines read in pieces of 2,047 bytes, each a C string; no `-` prefix; key spellings
    /// kept apart.
    V219,
    /// 239: whole lines; a `-` prefix dropped (a blank after it kept in the key); key spellings
    /// kept apart.
    V239,
    /// 252: CR, LF and NUL end a line; a `-` prefix dropped; key spellings merged.
    V252,
}

/// One assignment as systemd keeps it: the key as written (normalized the way the version
/// does), the value, and where it was.
#[derive(Debug, Clone)]
pub struct Assignment<'a> {
    pub key: String,
    pub value: Vec<u8>,
    pub file: &'a str,
    pub line: usize,
    /// 252's bare `-key` line: no assignment, the key's earlier one is dropped.
    pub cancel: bool,
}

/// systemd's WHITESPACE.
fn blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn strip(s: &[u8]) -> &[u8] {
    let start = s.iter().take_while(|&&b| blank(b)).count();
    let end = s.len() - s[start..].iter().rev().take_while(|&&b| blank(b)).count();
    &s[start..end.max(start)]
}

/// The lines of a file as `systemd` reads them, with their 1-based numbers.
fn lines(bytes: &[u8], systemd: Systemd) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    match systemd {
        Systemd::V252 => {
            let mut number = 1;
            let mut rest = bytes;
            while !rest.is_empty() {
                let end = rest
                    .iter()
                    .position(|&b| matches!(b, b'\n' | b'\r' | 0))
                    .unwrap_or(rest.len());
                out.push((number, &rest[..end]));
                let skip = if rest[end..].starts_with(b"\r\n") { 2 } else { 1 };
                rest = &rest[(end + skip).min(rest.len())..];
                number += 1;
            }
        }
        Systemd::V239 => {
            // A NUL ends a line too, the rest read as a line of its own.
            for (idx, line) in bytes.split(|&b| b == b'\n').enumerate() {
                out.extend(line.split(|&b| b == 0).map(|part| (idx + 1, part)));
            }
        }
        Systemd::V219 => {
            for (idx, line) in bytes.split(|&b| b == b'\n').enumerate() {
                let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
                // fgets into LINE_MAX (2,048) bytes: a longer line comes in pieces.
                let mut at = 0;
                loop {
                    let end = (at + 2047).min(line.len());
                    out.push((idx + 1, &line[at..end]));
                    if end == line.len() {
                        break;
                    }
                    at = end;
                }
            }
        }
    }
    out
}

/// The assignments of one file as `systemd` reads them, in order.
pub fn assignments<'a>(file: &'a str, bytes: &[u8], systemd: Systemd) -> Vec<Assignment<'a>> {
    let mut out = Vec::new();
    for (line, text) in lines(bytes, systemd) {
        let p = strip(text);
        if p.is_empty() || matches!(p[0], b'#' | b';') {
            continue;
        }
        let (eq, cancel) = match p.iter().position(|&b| b == b'=') {
            Some(eq) => (eq, false),
            None if systemd == Systemd::V252 && p[0] == b'-' => (p.len(), true),
            None => continue,
        };
        let mut key = strip(&p[..eq]);
        if systemd != Systemd::V219 && key.first() == Some(&b'-') {
            key = &key[1..];
            if systemd == Systemd::V252 {
                key = strip(key);
            }
        }
        let key = match systemd {
            // Spellings merged into the path the kernel resolves.
            Systemd::V252 => key_path(key, Procps::V3_3_15).unwrap_or_else(|| normalize(key)),
            _ => normalize(key),
        };
        out.push(Assignment {
            key,
            value: p.get(eq + 1..).map_or(Vec::new(), |v| strip(v).to_vec()),
            file,
            line,
            cancel,
        });
    }
    out
}

/// `normalize_sysctl`: if the first separator is `.`, dots and slashes swap.
fn normalize(key: &[u8]) -> String {
    String::from_utf8_lossy(&slashdot(key)).into_owned()
}

/// The assignments systemd-sysctl writes, in the order it writes them: an ordered map of keys
/// as written, where an assignment of another value moves its key to the end and one of the
/// same value changes nothing. Linear: each key keeps the place of its last move.
pub fn to_write<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>, systemd: Systemd) -> Vec<Assignment<'a>> {
    let mut map: HashMap<String, (usize, Assignment<'a>)> = HashMap::new();
    let mut moves = 0;
    for (file, bytes) in files {
        for a in assignments(file, bytes, systemd) {
            if a.cancel {
                map.remove(&a.key);
                continue;
            }
            if map.get(&a.key).is_some_and(|(_, m)| m.value == a.value) {
                continue;
            }
            moves += 1;
            map.insert(a.key.clone(), (moves, a));
        }
    }
    let mut out: Vec<(usize, Assignment<'a>)> = map.into_values().collect();
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, a)| a).collect()
}
