//! The few rules of bash the tool relies on, as bash applies them (not as a lookalike): where a
//! command ends, what a continuation, a comment, a quote and a heredoc are, and the words of a
//! simple command. Anything beyond a plain simple command (expansions, operators, redirections,
//! globs) is refused, so a word the tool reads is the word the shell passes.

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
/// quotes and `$(...)`; `\` right before a newline continues it (a `\` before CR LF does not);
/// the bodies of the heredocs a command opens follow it, up to their delimiter lines, as data.
pub fn segments(bytes: &[u8]) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    let mut heredocs: Vec<(Vec<u8>, bool)> = Vec::new();
    while pos < bytes.len() {
        if !heredocs.is_empty() {
            for (delim, strip_tabs) in std::mem::take(&mut heredocs) {
                while pos < bytes.len() {
                    let end = line_end(bytes, pos);
                    let text = &bytes[pos..end];
                    let text = if strip_tabs {
                        &text[text.iter().take_while(|&&b| b == b'\t').count()..]
                    } else {
                        text
                    };
                    let next = (end + 1).min(bytes.len());
                    out.push(Segment {
                        bytes: pos..next,
                        first: line,
                        last: line,
                        kind: Kind::Data,
                    });
                    pos = next;
                    line += 1;
                    if text == delim.as_slice() {
                        break;
                    }
                }
            }
            continue;
        }
        let (start, first) = (pos, line);
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
                        heredocs.push((word, strip_tabs));
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
        out.push(Segment {
            bytes: start..next,
            first,
            last: line,
            kind: if spans { Kind::Data } else { Kind::Code },
        });
        pos = next;
        line += 1;
    }
    out
}

/// The words of one simple command, and where its comment starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub words: Vec<String>,
    /// Byte offset of the `#` that starts a comment, if any.
    pub comment: Option<usize>,
}

/// Splits a logical line into the words bash passes to the command, refusing anything whose
/// words depend on more than quoting: blanks are space and tab; `\` escapes one byte (and drops
/// with a following newline); single quotes are literal; double quotes are literal but for
/// `\` before `"`, `\`, `$`, a backquote or a newline; `#` at the start of a word starts a
/// comment. Refused: operators and redirections, `$`, backquotes, glob and brace characters, a
/// leading `~`, unbalanced quotes, and non-UTF-8 words.
pub fn words(text: &[u8]) -> Result<Words, String> {
    let mut words = Vec::new();
    let mut word: Option<Vec<u8>> = None;
    let mut i = 0;
    let finish = |word: &mut Option<Vec<u8>>, words: &mut Vec<String>| -> Result<(), String> {
        if let Some(w) = word.take() {
            words.push(String::from_utf8(w).map_err(|_| "a word that is not UTF-8".to_string())?);
        }
        Ok(())
    };
    while i < text.len() {
        let b = text[i];
        match b {
            b'\n' => {
                finish(&mut word, &mut words)?;
                if text[i + 1..].iter().any(|b| !blank(*b) && *b != b'\n') {
                    return Err("more than one command".into());
                }
                break;
            }
            b if blank(b) => finish(&mut word, &mut words)?,
            b'#' if word.is_none() => {
                finish(&mut word, &mut words)?;
                return Ok(Words {
                    words,
                    comment: Some(i),
                });
            }
            b'\\' => match text.get(i + 1) {
                Some(b'\n') => i += 1,
                Some(&c) => {
                    word.get_or_insert_with(Vec::new).push(c);
                    i += 1;
                }
                None => return Err("a `\\` at the end".into()),
            },
            b'\'' => {
                let end = text[i + 1..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .ok_or("an unbalanced single quote")?;
                word.get_or_insert_with(Vec::new)
                    .extend_from_slice(&text[i + 1..i + 1 + end]);
                i += end + 1;
            }
            b'"' => {
                let w = word.get_or_insert_with(Vec::new);
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
            b'~' if word.is_none() => return Err("a `~` expansion".into()),
            b if metachar(b) => return Err(format!("the shell operator `{}`", b as char)),
            b => word.get_or_insert_with(Vec::new).push(b),
        }
        i += 1;
    }
    finish(&mut word, &mut words)?;
    Ok(Words { words, comment: None })
}

#[cfg(test)]
mod tests;
