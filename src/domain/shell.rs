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

/// The end of the physical line starting at `at` (the index of its `\n`, or the end).
fn line_end(bytes: &[u8], at: usize) -> usize {
    bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| at + p)
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
    }
}

/// The logical lines of a script, one at a time ([`segments`]).
pub struct Segments<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    /// Heredocs opened and not yet read: delimiter, and whether leading tabs are stripped.
    heredocs: std::collections::VecDeque<(Vec<u8>, bool)>,
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

    /// One line of the heredoc body being read (its delimiter line ends the heredoc).
    fn heredoc_line(&mut self) -> Segment {
        let end = line_end(self.bytes, self.pos);
        let text = &self.bytes[self.pos..end];
        if let Some((delim, strip_tabs)) = self.heredocs.front() {
            let text = if *strip_tabs {
                &text[text.iter().take_while(|&&b| b == b'\t').count()..]
            } else {
                text
            };
            if text == delim.as_slice() {
                self.heredocs.pop_front();
            }
        }
        self.single(end, Kind::Data)
    }

    /// One command line from `pos`: up to a newline outside quotes, `$(...)` and comments
    /// (heredocs it opens are queued). Data when its quotes or `$(...)` span lines.
    fn command_line(&mut self) -> Segment {
        let (bytes, pos) = (self.bytes, self.pos);
        let mut scan = Scan {
            line: self.line,
            quote: None,
            depth: 0,
            spans: false,
            word_start: true,
            comment: false,
        };
        let mut i = pos;
        while i < bytes.len() {
            if bytes[i] == b'\n' {
                if scan.comment || (scan.quote.is_none() && scan.depth == 0) {
                    break;
                }
                (scan.spans, scan.word_start) = (true, true);
                scan.line += 1;
                i += 1;
                continue;
            }
            i = self.step(&mut scan, i);
        }
        let next = (i + 1).min(bytes.len());
        let first = self.line;
        (self.pos, self.line) = (next, scan.line + 1);
        Segment {
            bytes: pos..next,
            first,
            last: scan.line,
            kind: if scan.spans { Kind::Data } else { Kind::Code },
        }
    }

    /// Reads the byte at `i` (not a newline) of a command line; returns where to go on.
    fn step(&mut self, scan: &mut Scan, i: usize) -> usize {
        let bytes = self.bytes;
        let b = bytes[i];
        if scan.comment {
            return i + 1;
        }
        let continued = b == b'\\' && bytes.get(i + 1) == Some(&b'\n');
        match scan.quote {
            Some(b'\'') if b == b'\'' => scan.quote = None,
            Some(b'\'') => {}
            Some(_) if b == b'"' => scan.quote = None,
            Some(_) | None if continued => {
                scan.line += 1;
                return i + 2;
            }
            Some(_) if b == b'\\' => return i + 2,
            Some(_) => {}
            None => match b {
                b'\\' => {
                    scan.word_start = false;
                    return i + 2;
                }
                b'\'' | b'"' => (scan.quote, scan.word_start) = (Some(b), false),
                b'#' if scan.word_start => scan.comment = true,
                b'(' if i > 0 && bytes[i - 1] == b'$' => (scan.depth, scan.word_start) = (scan.depth + 1, true),
                b')' if scan.depth > 0 => scan.depth -= 1,
                b'<' if bytes.get(i + 1) == Some(&b'<') && bytes.get(i + 2) != Some(&b'<') => {
                    let strip_tabs = bytes.get(i + 2) == Some(&b'-');
                    let (word, next) = heredoc_word(bytes, i + 2 + usize::from(strip_tabs));
                    self.heredocs.push_back((word, strip_tabs));
                    scan.word_start = true;
                    return next;
                }
                b if blank(b) || metachar(b) => scan.word_start = true,
                _ => scan.word_start = false,
            },
        }
        i + 1
    }
}

/// Where [`Segments::command_line`] is in a command line.
struct Scan {
    /// The physical line being read.
    line: usize,
    /// The open quote, if any.
    quote: Option<u8>,
    /// Open `$(`.
    depth: usize,
    /// Whether quotes or `$(...)` carried the command past a newline.
    spans: bool,
    /// Whether a `#` here starts a comment.
    word_start: bool,
    comment: bool,
}

impl Iterator for Segments<'_> {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        Some(if self.heredocs.is_empty() {
            self.command_line()
        } else {
            self.heredoc_line()
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

/// Whether a byte goes on a word as it is once the word has started: all but blanks, newlines,
/// quoting, expansion, glob, brace and operator characters (`#` and `~` start nothing inside a
/// word).
fn ordinary(b: u8) -> bool {
    !b" \t\n\\'\"$`*?[{};&|<>()".contains(&b)
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
                finish(&mut word, i, &mut words)?;
                if text[i + 1..].iter().any(|b| !blank(*b) && *b != b'\n') {
                    return Err("more than one command".into());
                }
                break;
            }
            b if blank(b) => {
                finish(&mut word, i, &mut words)?;
                if words.len() > MAX_WORDS {
                    return Err(format!("more than {MAX_WORDS} words"));
                }
            }
            b'#' if matches!(word, Word::None) => {
                return Ok(Words {
                    words,
                    comment: Some(i),
                })
            }
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
            b'"' => i = double_quoted(text, i + 1, word.built(text, i))?,
            b'$' | b'`' => return Err("an expansion (`$` or a backquote)".into()),
            b'*' | b'?' | b'[' => return Err(format!("a glob character `{}`", b as char)),
            b'{' | b'}' => return Err(format!("a brace `{}`", b as char)),
            b'~' if matches!(word, Word::None) => return Err("a `~` expansion".into()),
            b if metachar(b) => return Err(format!("the shell operator `{}`", b as char)),
            _ => {
                // This byte and the ordinary ones after it, at once.
                let run = 1 + text[i + 1..].iter().take_while(|&&c| ordinary(c)).count();
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
    finish(&mut word, text.len(), &mut words)?;
    Ok(Words { words, comment: None })
}

/// Reads a double-quoted stretch from `i` (after its opening quote) onto `w`: literal but for
/// `\\` before `"`, `\\`, `$`, a backquote or a newline; an expansion is refused. Returns the
/// index of the closing quote.
fn double_quoted(text: &[u8], mut i: usize, w: &mut Vec<u8>) -> Result<usize, String> {
    loop {
        match text.get(i) {
            None => return Err("an unbalanced double quote".into()),
            Some(b'"') => return Ok(i),
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

#[cfg(test)]
mod tests;
