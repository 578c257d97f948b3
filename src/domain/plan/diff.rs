//! Unified diffs: of a planned change from the splices the plan made (linear; a sysctl edit's
//! found by comparing line by line), and `similar`'s patience diff for changes the tool did not
//! plan (`undo` puts back a backup).

/// One run of changed lines: `old_len` lines from old line `old_at` (0-based) became
/// `new_len` lines from new line `new_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Splice {
    pub old_at: usize,
    pub old_len: usize,
    pub new_at: usize,
    pub new_len: usize,
}

/// The lines of a file, each with its newline (the last may have none).
pub(super) fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|&b| b == b'\n').collect()
}

/// Adds `s` to `splices`, merged into the last one when they touch: one change.
pub(super) fn push_merged(splices: &mut Vec<Splice>, s: Splice) {
    match splices.last_mut() {
        Some(m) if m.old_at + m.old_len == s.old_at => {
            m.old_len += s.old_len;
            m.new_len += s.new_len;
        }
        _ => splices.push(s),
    }
}

/// Lines `old` and `new` share when every line outside the splices is the same: what the
/// splices must satisfy, checked before they are trusted.
pub(super) fn splices_hold(old: &[&[u8]], new: &[&[u8]], splices: &[Splice]) -> bool {
    let (mut i, mut j) = (0, 0);
    for s in splices {
        if s.old_at < i || s.new_at < j || s.old_at - i != s.new_at - j {
            return false;
        }
        if old.get(i..s.old_at) != new.get(j..s.new_at) {
            return false;
        }
        (i, j) = (s.old_at + s.old_len, s.new_at + s.new_len);
        if i > old.len() || j > new.len() {
            return false;
        }
    }
    old.len() - i == new.len() - j && old[i..] == new[j..]
}

/// Lines of context around each change, as `diff -u` gives.
pub(super) const CONTEXT: usize = 3;

/// A unified diff (`a/PATH`, `b/PATH`, three lines of context) from known splices, linear in
/// the files' size; `None` when the splices do not describe the change (the caller then diffs
/// the files).
pub fn splice_diff(path: &str, old: &[u8], new: &[u8], splices: &[Splice]) -> Option<String> {
    use std::fmt::Write as _;
    let (ol, nl) = (split_lines(old), split_lines(new));
    if !splices_hold(&ol, &nl, splices) {
        return None;
    }
    // Touching splices are one change: its removed lines, then its added ones.
    let mut merged: Vec<Splice> = Vec::with_capacity(splices.len());
    for s in splices.iter().filter(|s| s.old_len + s.new_len > 0) {
        push_merged(&mut merged, *s);
    }
    let splices = merged.as_slice();
    let mut out = String::new();
    if splices.is_empty() {
        return Some(out);
    }
    let _ = writeln!(out, "--- a{path}\n+++ b{path}");
    let range = |start: usize, len: usize| match len {
        1 => format!("{}", start + 1),
        0 => format!("{start},0"),
        _ => format!("{},{len}", start + 1),
    };
    let line = |out: &mut String, tag: char, text: &[u8]| {
        out.push(tag);
        out.push_str(&String::from_utf8_lossy(text));
        if !text.ends_with(b"\n") {
            out.push_str("\n\\ No newline at end of file\n");
        }
    };
    // Hunks: splices whose unchanged gap is at most twice the context share one.
    let mut at = 0;
    while at < splices.len() {
        let mut end = at;
        while end + 1 < splices.len()
            && splices[end + 1].old_at - (splices[end].old_at + splices[end].old_len) <= 2 * CONTEXT
        {
            end += 1;
        }
        let (first, last) = (splices[at], splices[end]);
        let old_start = first.old_at.saturating_sub(CONTEXT);
        let new_start = first.new_at - (first.old_at - old_start);
        let old_end = (last.old_at + last.old_len + CONTEXT).min(ol.len());
        let new_end = last.new_at + last.new_len + (old_end - (last.old_at + last.old_len));
        let _ = writeln!(
            out,
            "@@ -{} +{} @@",
            range(old_start, old_end - old_start),
            range(new_start, new_end - new_start)
        );
        let mut i = old_start;
        for s in &splices[at..=end] {
            for l in &ol[i..s.old_at] {
                line(&mut out, ' ', l);
            }
            for l in &ol[s.old_at..s.old_at + s.old_len] {
                line(&mut out, '-', l);
            }
            for l in &nl[s.new_at..s.new_at + s.new_len] {
                line(&mut out, '+', l);
            }
            i = s.old_at + s.old_len;
        }
        for l in &ol[i..old_end] {
            line(&mut out, ' ', l);
        }
        at = end + 1;
    }
    Some(out)
}

/// Splices between two files that have the same lines but for some replaced in place and some
/// added or removed at the end (what a sysctl edit does): found by comparing line by line.
pub(super) fn aligned_splices(old: &[u8], new: &[u8]) -> Vec<Splice> {
    let (ol, nl) = (split_lines(old), split_lines(new));
    let common = ol.len().min(nl.len());
    let splice = |at, old_len, new_len| Splice {
        old_at: at,
        old_len,
        new_at: at,
        new_len,
    };
    let replaced = (0..common).filter(|&i| ol[i] != nl[i]).map(|i| splice(i, 1, 1));
    let tail = (ol.len() != nl.len()).then(|| splice(common, ol.len() - common, nl.len() - common));
    let mut out = Vec::new();
    for s in replaced.chain(tail) {
        push_merged(&mut out, s);
    }
    out
}

/// A unified diff of two versions of a file (`a/PATH`, `b/PATH`), for changes the tool did not
/// plan (`undo` puts back a backup). Patience diff: linear in practice on scripts whose lines
/// are nearly all unique.
pub fn unified_diff(path: &str, old: &[u8], new: &[u8]) -> String {
    let old = String::from_utf8_lossy(old);
    let new = String::from_utf8_lossy(new);
    similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .diff_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(CONTEXT)
        .header(&format!("a{path}"), &format!("b{path}"))
        .to_string()
}
