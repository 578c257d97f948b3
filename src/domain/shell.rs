//! The few rules of bash the tool relies on, as bash applies them (not as a lookalike): a
//! script is read by the one reader of bash's grammar ([`reader`]); the words of a simple
//! command the tool acts on are its words with quotes removed, and anything beyond quoting
//! (expansions, operators, redirections, globs) is refused, so a word the tool reads is the word
//! the shell passes.

use std::borrow::Cow;

pub mod reader;

pub use reader::{read, Program};

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

/// Whether a byte goes on a word as it is: all but quoting, expansion, glob, brace and
/// escape characters (`#` and `~` start nothing inside a word).
fn ordinary(b: u8) -> bool {
    !matches!(b, b'\\' | b'\'' | b'"' | b'$' | b'`' | b'*' | b'?' | b'[' | b'{' | b'}')
}

/// The most words a command the tool reads may have (iptables-restore reads at most 255 per
/// rule): a longer line is refused before its words take memory.
pub const MAX_WORDS: usize = 1024;

/// Reads `text` as one simple command and gives the words bash passes to it, refusing anything
/// whose words depend on more than quoting: blanks are space and tab; `\` escapes one byte (and
/// drops with a following newline); single quotes are literal; double quotes are literal but for
/// `\` before `"`, `\`, `$`, a backquote or a newline; `#` at the start of a word starts a
/// comment. Refused: more than one command, operators and redirections, assignments, `$`,
/// backquotes, glob and brace characters, a leading `~`, unbalanced quotes, and non-UTF-8 words.
pub fn words(text: &[u8]) -> Result<Words<'_>, String> {
    let program = read(text);
    if let Some(stop) = program.stop {
        return Err(stop.why);
    }
    let comment = program.comments.iter().find(|(_, b)| *b == 0).map(|(r, _)| r.start);
    let Some(first) = program.commands.iter().min_by_key(|c| c.span.start) else {
        return Ok(Words {
            words: Vec::new(),
            comment,
        });
    };
    let words = unquote_all(text, program.words(first))?;
    let leading = text.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    if first.extras {
        return Err("a redirection or an assignment".into());
    }
    let inside = |c: &reader::Command| c.span.start > first.span.start && c.span.end <= first.span.end;
    if program.commands.iter().any(inside) {
        return Err("more than one command".into());
    }
    if program.commands.len() > 1 || program.blocks.len() > 1 || first.span.start != leading || first.guard.is_some() {
        let after = &text[first.span.end..];
        return Err(match after.iter().find(|&&b| b != b' ' && b != b'\t') {
            Some(b'\n') | None => "more than one command".into(),
            Some(&b) => format!("the shell operator `{}`", b as char),
        });
    }
    // Nothing after the command but blanks and a comment (`cmd;` is one command to bash, but
    // not a line of its own to the tool).
    let rest = &text[first.span.end..];
    let rest = &rest[rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t' || b == b'\\' || b == b'\n')
        .count()..];
    if let Some(&b) = rest.first().filter(|&&b| b != b'#') {
        return Err(format!("the shell operator `{}`", b as char));
    }
    Ok(Words { words, comment })
}

/// The words bash passes for `text` written as arguments after a command word (so a leading
/// `!` or reserved word is an argument), as [`words`] reads them.
pub fn arguments(text: &str) -> Result<Vec<String>, String> {
    let line = format!("_ {text}");
    let words = words(line.as_bytes())?;
    Ok(words.words.into_iter().skip(1).map(String::from).collect())
}

/// The words at `spans` of `text` with quotes removed ([`unquote`]).
pub fn unquote_all<'a>(text: &'a [u8], spans: &[std::ops::Range<usize>]) -> Result<Vec<Cow<'a, str>>, String> {
    spans.iter().map(|w| unquote(&text[w.clone()])).collect()
}

/// One word as bash passes it, when quoting alone makes it (see [`words`]).
pub fn unquote(word: &[u8]) -> Result<Cow<'_, str>, String> {
    let not_utf8 = || "a word that is not UTF-8".to_string();
    if word.first() == Some(&b'~') {
        return Err("a `~` expansion".into());
    }
    if word.iter().all(|&b| ordinary(b)) {
        return std::str::from_utf8(word).map(Cow::Borrowed).map_err(|_| not_utf8());
    }
    let mut out = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        match word[i] {
            b'\\' => match word.get(i + 1) {
                Some(b'\n') => i += 1,
                Some(&c) => {
                    out.push(c);
                    i += 1;
                }
                None => return Err("a `\\` at the end".into()),
            },
            b'\'' => {
                let end = word[i + 1..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .ok_or("an unbalanced single quote")?;
                out.extend_from_slice(&word[i + 1..i + 1 + end]);
                i += end + 1;
            }
            b'"' => i = double_quoted(word, i + 1, &mut out)?,
            b'$' | b'`' => return Err("an expansion (`$` or a backquote)".into()),
            b @ (b'*' | b'?' | b'[') => return Err(format!("a glob character `{}`", b as char)),
            b @ (b'{' | b'}') => return Err(format!("a brace `{}`", b as char)),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| not_utf8())
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
