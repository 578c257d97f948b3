//! The few rules of bash the tool relies on, as bash applies them (not as a lookalike): where a
//! command ends, what a continuation, a comment, a quote and a heredoc are, and the words of a
//! simple command. Anything beyond a plain simple command (expansions, operators, redirections,
//! globs) is refused, so a word the tool reads is the word the shell passes.

use std::borrow::Cow;
use std::ops::Range;

/// What a stretch of a script is to bash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A command line (with its `\`-newline continuations).
    Code,
    /// Text bash does not run as a command of its own: a heredoc body, or a command whose quotes
    /// or `$(...)` span lines.
    Data,
}

/// One logical line: its bytes (newline included) and physical line numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub bytes: Range<usize>,
    /// First and last physical line, 1-based.
    pub first: usize,
    pub last: usize,
    pub kind: Kind,
}

fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Bytes that end a word and start an operator outside quotes.
fn metachar(b: u8) -> bool {
    matches!(b, b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')')
}

/// The first byte at or after `from` after which a command may go on past a newline: a quote,
/// a backslash, the `(` of `$(`, the `<` of a heredoc (`bytes.len()` when there is none).
fn carry(bytes: &[u8], from: usize) -> usize {
    let rest = &bytes[from..];
    let quotes = memchr::memchr3(b'\\', b'\'', b'"', rest);
    let opens = memchr::memchr2(b'(', b'<', &rest[..quotes.unwrap_or(rest.len())]);
    from + opens.or(quotes).unwrap_or(rest.len())
}

/// The end of the physical line starting at `at` (the index of its `\n`, or the end).
fn line_end(bytes: &[u8], at: usize) -> usize {
    memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |p| at + p)
}

/// Reads a heredoc delimiter after `<<` / `<<-` at `i`: the word with its quotes removed.
fn heredoc_word(bytes: &[u8], mut i: usize) -> (Vec<u8>, usize) {
    while i < bytes.len() && blank(bytes[i]) {
        i += 1;
    }
    let mut word = Vec::new();
    let mut quote = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => word.push(b),
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'\\' && i + 1 < bytes.len() => {
                i += 1;
                word.push(bytes[i]);
            }
            None if blank(b) || b == b'\n' || metachar(b) => break,
            None => word.push(b),
        }
        i += 1;
    }
    (word, i)
}

/// Splits a script into logical lines as bash reads it: a command ends at a newline outside
/// quotes and `$(...)`; `\\` right before a newline continues it (a `\\` before CR LF does not);
/// the bodies of the heredocs a command opens follow it, up to their delimiter lines, as data.
/// An iterator: a script of any size is split in constant memory.
pub fn segments(bytes: &[u8]) -> Segments<'_> {
    Segments {
        bytes,
        pos: 0,
        line: 1,
        heredocs: std::collections::VecDeque::new(),
        carry: 0,
    }
}

/// The logical lines of a script, one at a time ([`segments`]).
pub struct Segments<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    /// Heredocs opened and not yet read: delimiter, and whether leading tabs are stripped.
    heredocs: std::collections::VecDeque<(Vec<u8>, bool)>,
    /// The first byte at or after `pos` that can carry a command past its newline ([`carry`]),
    /// found ahead across many lines at once; found again once `pos` has passed it.
    carry: usize,
}

impl Segments<'_> {
    /// The physical line from `pos` up to `end` (its newline, or the end of the script) as one
    /// segment, and the position after it.
    fn single(&mut self, end: usize, kind: Kind) -> Segment {
        let (pos, line) = (self.pos, self.line);
        let next = (end + 1).min(self.bytes.len());
        (self.pos, self.line) = (next, line + 1);
        Segment {
            bytes: pos..next,
            first: line,
            last: line,
            kind,
        }
    }
}

impl Iterator for Segments<'_> {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        let bytes = self.bytes;
        if self.pos >= bytes.len() {
            return None;
        }
        let (pos, line) = (self.pos, self.line);
        if let Some((delim, strip_tabs)) = self.heredocs.front() {
            // One line of a heredoc body; its delimiter line ends it.
            let end = line_end(bytes, pos);
            let text = &bytes[pos..end];
            let text = if *strip_tabs {
                &text[text.iter().take_while(|&&b| b == b'\t').count()..]
            } else {
                text
            };
            if text == delim.as_slice() {
                self.heredocs.pop_front();
            }
            return Some(self.single(end, Kind::Data));
        }
        // A physical line with none of the bytes that can carry a command past its newline
        // (a quote, a backslash, `$(`, `<<`) ends there: one pass, no state.
        let plain_end = line_end(bytes, pos);
        if self.carry < pos {
            self.carry = carry(bytes, pos);
        }
        if self.carry >= plain_end {
            return Some(self.single(plain_end, Kind::Code));
        }
        let first = line;
        let mut line = line;
        let mut quote: Option<u8> = None;
        let mut depth = 0usize;
        let mut spans = false;
        let mut word_start = true;
        let mut comment = false;
        let mut i = pos;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'\n' {
                if comment || (quote.is_none() && depth == 0) {
                    break;
                }
                spans = true;
                line += 1;
                i += 1;
                word_start = true;
                continue;
            }
            if comment {
                i += 1;
                continue;
            }
            match quote {
                Some(b'\'') => {
                    if b == b'\'' {
                        quote = None;
                    }
                }
                Some(_) => match b {
                    b'"' => quote = None,
                    b'\\' if bytes.get(i + 1) == Some(&b'\n') => {
                        line += 1;
                        i += 1;
                    }
                    b'\\' => i += 1,
                    _ => {}
                },
                None => match b {
                    b'\\' if bytes.get(i + 1) == Some(&b'\n') => {
                        line += 1;
                        i += 1;
                    }
                    b'\\' => {
                        i += 1;
                        word_start = false;
                    }
                    b'\'' | b'"' => {
                        quote = Some(b);
                        word_start = false;
                    }
                    b'#' if word_start => comment = true,
                    b'(' if i > 0 && bytes[i - 1] == b'$' => {
                        depth += 1;
                        word_start = true;
                    }
                    b')' if depth > 0 => depth -= 1,
                    b'<' if bytes.get(i + 1) == Some(&b'<') && bytes.get(i + 2) != Some(&b'<') => {
                        let strip_tabs = bytes.get(i + 2) == Some(&b'-');
                        let (word, next) = heredoc_word(bytes, i + 2 + usize::from(strip_tabs));
                        self.heredocs.push_back((word, strip_tabs));
                        i = next;
                        word_start = true;
                        continue;
                    }
                    b if blank(b) || metachar(b) => word_start = true,
                    _ => word_start = false,
                },
            }
            i += 1;
        }
        let next = (i + 1).min(bytes.len());
        (self.pos, self.line) = (next, line + 1);
        Some(Segment {
            bytes: pos..next,
            first,
            last: line,
            kind: if spans { Kind::Data } else { Kind::Code },
        })
    }
}

/// The words of one simple command, and where its comment starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words<'a> {
    /// Borrowed from the line when written without quotes or escapes.
    pub words: Vec<Cow<'a, str>>,
    /// Byte offset of the `#` that starts a comment, if any.
    pub comment: Option<usize>,
}

impl Words<'_> {
    /// The words as string slices.
    pub fn strs(&self) -> Vec<&str> {
        self.words.iter().map(|w| w.as_ref()).collect()
    }
}

/// A word being read: none yet, a stretch of the line as written, or bytes that quoting or an
/// escape changed.
enum Word {
    None,
    Plain(usize),
    Built(Vec<u8>),
}

impl Word {
    /// The bytes to append to, copying the plain stretch read so far (up to `at`).
    fn built<'w>(&'w mut self, text: &[u8], at: usize) -> &'w mut Vec<u8> {
        if let Word::Plain(start) = *self {
            *self = Word::Built(text[start..at].to_vec());
        } else if let Word::None = self {
            *self = Word::Built(Vec::new());
        }
        match self {
            Word::Built(v) => v,
            _ => unreachable!("made a built word above"),
        }
    }
}

/// Bytes that go on a word as they are once it has started: all but blanks, newlines,
/// quoting, expansion, glob, brace and operator characters (`#` and `~` start nothing inside
/// a word).
const ORDINARY: [bool; 256] = {
    let mut table = [true; 256];
    let special = b" \t\n\\'\"$`*?[{};&|<>()";
    let mut k = 0;
    while k < special.len() {
        table[special[k] as usize] = false;
        k += 1;
    }
    table
};

/// [`words_into`] for a line of plain words (the common case, in one pass): UTF-8, only
/// ordinary bytes in words, blanks between them, maybe a comment. `None` for any other line,
/// which the full reading takes from the start.
fn plain_words<'a>(text: &'a [u8], words: &mut Vec<Cow<'a, str>>) -> Option<Option<usize>> {
    plain_split(text, |word| {
        let room = words.len() < MAX_WORDS;
        if room {
            words.push(Cow::Borrowed(word));
        }
        room
    })
}

/// [`plain_words`] into `slots` (a buffer on the caller's stack): how many words, and where
/// the comment starts. `None` for a line that is not plain words or has more words than slots.
pub fn plain_words_in<'a>(text: &'a [u8], slots: &mut [&'a str]) -> Option<(usize, Option<usize>)> {
    let mut n = 0;
    let comment = plain_split(text, |word| {
        let room = n < slots.len();
        if room {
            slots[n] = word;
            n += 1;
        }
        room
    })?;
    Some((n, comment))
}

/// The one-pass split of a plain line: each word to `push`, which says whether it took it (a
/// line whose words it does not take is left to the full reading); where the comment starts.
fn plain_split<'a>(text: &'a [u8], mut push: impl FnMut(&'a str) -> bool) -> Option<Option<usize>> {
    let line = std::str::from_utf8(text).ok()?;
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if blank(b) {
            i += 1;
            continue;
        }
        if b == b'#' {
            return Some(Some(i));
        }
        // `~` starts an expansion.
        if b == b'~' || !ORDINARY[b as usize] {
            return None;
        }
        let start = i;
        i += 1 + text[i + 1..].iter().take_while(|&&c| ORDINARY[c as usize]).count();
        if text.get(i).is_some_and(|&c| !blank(c)) || !push(&line[start..i]) {
            return None;
        }
    }
    Some(None)
}

/// The most words a command the tool reads may have (iptables-restore reads at most 255 per
/// rule): a longer line is refused before its words take memory.
pub const MAX_WORDS: usize = 1024;

/// Splits a logical line into the words bash passes to the command, refusing anything whose
/// words depend on more than quoting: blanks are space and tab; `\` escapes one byte (and drops
/// with a following newline); single quotes are literal; double quotes are literal but for
/// `\` before `"`, `\`, `$`, a backquote or a newline; `#` at the start of a word starts a
/// comment. Refused: operators and redirections, `$`, backquotes, glob and brace characters, a
/// leading `~`, unbalanced quotes, and non-UTF-8 words.
pub fn words<'a>(text: &'a [u8]) -> Result<Words<'a>, String> {
    let mut words = Vec::new();
    let comment = words_into(text, &mut words)?;
    Ok(Words { words, comment })
}

/// [`words`] into a buffer reused across lines (cleared first); returns where the comment
/// starts.
pub fn words_into<'a>(text: &'a [u8], words: &mut Vec<Cow<'a, str>>) -> Result<Option<usize>, String> {
    words.clear();
    if let Some(comment) = plain_words(text, words) {
        return Ok(comment);
    }
    words.clear();
    any_words(text, words)
}

/// [`words_into`] for any line (into an empty buffer).
fn any_words<'a>(text: &'a [u8], words: &mut Vec<Cow<'a, str>>) -> Result<Option<usize>, String> {
    let mut word = Word::None;
    let mut i = 0;
    // Checked once for the line: words end at ASCII bytes, so each word of a UTF-8 line is.
    let line = std::str::from_utf8(text).ok();
    let finish = |word: &mut Word, at: usize, words: &mut Vec<Cow<'a, str>>| -> Result<(), String> {
        let not_utf8 = || "a word that is not UTF-8".to_string();
        match std::mem::replace(word, Word::None) {
            Word::None => {}
            Word::Plain(start) => words.push(Cow::Borrowed(match line {
                Some(line) => line.get(start..at).ok_or_else(not_utf8)?,
                None => std::str::from_utf8(&text[start..at]).map_err(|_| not_utf8())?,
            })),
            Word::Built(w) => words.push(Cow::Owned(String::from_utf8(w).map_err(|_| not_utf8())?)),
        }
        Ok(())
    };
    while i < text.len() {
        let b = text[i];
        match b {
            b'\n' => {
                finish(&mut word, i, words)?;
                if text[i + 1..].iter().any(|b| !blank(*b) && *b != b'\n') {
                    return Err("more than one command".into());
                }
                break;
            }
            b if blank(b) => {
                finish(&mut word, i, words)?;
                if words.len() > MAX_WORDS {
                    return Err(format!("more than {MAX_WORDS} words"));
                }
            }
            b'#' if matches!(word, Word::None) => return Ok(Some(i)),
            b'\\' => match text.get(i + 1) {
                // The pair is dropped: a word it splits goes on, none is started.
                Some(b'\n') => {
                    if matches!(word, Word::Plain(_)) {
                        word.built(text, i);
                    }
                    i += 1;
                }
                Some(&c) => {
                    word.built(text, i).push(c);
                    i += 1;
                }
                None => return Err("a `\\` at the end".into()),
            },
            b'\'' => {
                let end = text[i + 1..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .ok_or("an unbalanced single quote")?;
                word.built(text, i).extend_from_slice(&text[i + 1..i + 1 + end]);
                i += end + 1;
            }
            b'"' => {
                let w = word.built(text, i);
                i += 1;
                loop {
                    match text.get(i) {
                        None => return Err("an unbalanced double quote".into()),
                        Some(b'"') => break,
                        Some(b'$') | Some(b'`') => return Err("an expansion (`$` or a backquote) inside quotes".into()),
                        Some(b'\\') => match text.get(i + 1) {
                            Some(b'\n') => i += 1,
                            Some(&c @ (b'"' | b'\\' | b'$' | b'`')) => {
                                w.push(c);
                                i += 1;
                            }
                            _ => w.push(b'\\'),
                        },
                        Some(&c) => w.push(c),
                    }
                    i += 1;
                }
            }
            b'$' | b'`' => return Err("an expansion (`$` or a backquote)".into()),
            b'*' | b'?' | b'[' => return Err(format!("a glob character `{}`", b as char)),
            b'{' | b'}' => return Err(format!("a brace `{}`", b as char)),
            b'~' if matches!(word, Word::None) => return Err("a `~` expansion".into()),
            b if metachar(b) => return Err(format!("the shell operator `{}`", b as char)),
            _ => {
                // This byte and the ordinary ones after it, at once.
                let run = 1 + text[i + 1..].iter().take_while(|&&c| ORDINARY[c as usize]).count();
                match &mut word {
                    Word::None => word = Word::Plain(i),
                    Word::Plain(_) => {}
                    Word::Built(w) => w.extend_from_slice(&text[i..i + run]),
                }
                i += run - 1;
            }
        }
        i += 1;
    }
    finish(&mut word, text.len(), words)?;
    Ok(None)
}

#[cfg(test)]
mod tests;
