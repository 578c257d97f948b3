//! Simple commands as bash reads them: redirections, words, quoting, expansions and
//! substitutions (the commands inside recorded), heredoc delimiters and assignments.

use super::*;

impl Reader<'_> {
    /// Redirections after a compound command.
    pub(super) fn redirections(&mut self, block: usize) -> Read<bool> {
        let mut any = false;
        loop {
            self.skip_blanks(block)?;
            if !self.redirection(block)? {
                return Ok(any);
            }
            any = true;
        }
    }

    /// A redirection at `i` (with a leading file descriptor number), read with its target.
    pub(super) fn redirection(&mut self, block: usize) -> Read<bool> {
        let digits = self.b[self.i..self.end]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let op_at = self.i + digits;
        let rest = &self.b[op_at..self.end];
        let op: &[u8] = [
            &b"<<<"[..],
            b"<<-",
            b"<<",
            b"<>",
            b"<&",
            b">>",
            b">&",
            b">|",
            b"&>>",
            b"&>",
            b"<",
            b">",
        ]
        .into_iter()
        .find(|op| rest.starts_with(op) && !(digits > 0 && op[0] == b'&'))
        .unwrap_or(b"");
        if op.is_empty() || rest.starts_with(b"<(") || rest.starts_with(b">(") {
            return Ok(false);
        }
        self.i = op_at + op.len();
        self.skip_blanks(block)?;
        if op == b"<<" || op == b"<<-" {
            if self.nest > 0 {
                return self.stop("a heredoc inside a substitution (bash 4 and 5 read its body differently)");
            }
            let target = self.word(block)?;
            if target.is_empty() {
                return self.stop("a heredoc without a delimiter");
            }
            let raw = &self.b[target];
            let expands = !raw.iter().any(|c| b"'\"\\".contains(c));
            let delimiter = delimiter_of(raw);
            self.heredocs.push(Heredoc {
                delimiter,
                strip_tabs: op == b"<<-",
                expands,
                block,
            });
        } else if self.word(block)?.is_empty() {
            return self.stop("a redirection without a target");
        }
        Ok(true)
    }

    /// A simple command: assignments, words and redirections up to an operator.
    pub(super) fn simple(&mut self, block: usize, guard: Option<&'static str>) -> Read<()> {
        let start = self.i;
        let (mut words, mut extras, mut end) = (self.spare.pop().unwrap_or_default(), false, start);
        words.clear();
        loop {
            self.skip_blanks(block)?;
            if self.redirection(block)? {
                (extras, end) = (true, self.i);
                continue;
            }
            let at = self.i;
            self.arrays = match words.first() {
                None => true,
                Some(w) => DECLARING.contains(&&self.b[w.clone()]),
            };
            let word = self.word(block)?;
            self.arrays = false;
            if word.is_empty() {
                break;
            }
            end = word.end;
            if words.is_empty() && is_assignment(&self.b[word.clone()]) {
                extras = true;
            } else {
                words.push(word);
            }
            if words.len() > crate::domain::shell::MAX_WORDS {
                return Err(Stop {
                    at,
                    from: self.top_start,
                    why: format!("more than {} words", crate::domain::shell::MAX_WORDS),
                });
            }
        }
        if end == start {
            let c = self
                .peek(0)
                .map_or("end of file".into(), |c| format!("`{}`", c as char));
            return self.stop(format!("unexpected {c}"));
        }
        let from = self.prog.words.len();
        self.prog.words.extend_from_slice(&words);
        self.spare.push(words);
        self.prog.commands.push(Command {
            span: start..end,
            words: from..self.prog.words.len(),
            extras,
            block,
            guard,
            dead: None,
        });
        Ok(())
    }

    /// One word at `i` (empty at an operator or the end): quotes, escapes, expansions and
    /// substitutions read whole, the commands inside substitutions recorded.
    pub(super) fn word(&mut self, block: usize) -> Read<Range<usize>> {
        let start = self.i;
        while let Some(c) = self.peek(0) {
            match c {
                b'\\' => self.i = (self.i + 2).min(self.end),
                b'\'' => self.single_quoted()?,
                b'"' => {
                    self.i += 1;
                    self.enter()?;
                    self.double_quoted(block)?;
                    self.depth -= 1;
                }
                b'$' | b'`' => self.dollar_or_backquote(block)?,
                b'<' | b'>' if self.peek(1) == Some(b'(') && self.i == start => {
                    self.i += 2;
                    self.substitution(block, "process substitution")?;
                }
                b'(' if self.arrays
                    && self.i > start
                    && self.b[start..self.i].iter().position(|&c| c == b'=') == Some(self.i - start - 1)
                    && is_assignment(&self.b[start..self.i]) =>
                {
                    self.array(block)?
                }
                c if metachar(c) => break,
                _ => self.i += 1,
            }
        }
        Ok(start..self.i)
    }

    pub(super) fn single_quoted(&mut self) -> Read<()> {
        let open = self.i;
        self.i += 1;
        match self.b[self.i..self.end].iter().position(|&c| c == b'\'') {
            Some(p) => self.i += p + 1,
            None => {
                self.i = open;
                return self.stop("an unterminated single quote");
            }
        }
        Ok(())
    }

    /// From after an opening `"` to after its closing one.
    pub(super) fn double_quoted(&mut self, block: usize) -> Read<()> {
        let open = self.i - 1;
        loop {
            match self.peek(0) {
                None => {
                    self.i = open;
                    return self.stop("an unterminated double quote");
                }
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => self.i = (self.i + 2).min(self.end),
                Some(b'$' | b'`') => self.dollar_or_backquote(block)?,
                Some(_) => self.i += 1,
            }
        }
    }

    /// A `$` form or a backquoted command at `i`.
    pub(super) fn dollar_or_backquote(&mut self, block: usize) -> Read<()> {
        self.enter()?;
        let read = self.dollar_form(block);
        self.depth -= 1;
        read
    }

    pub(super) fn dollar_form(&mut self, block: usize) -> Read<()> {
        if self.peek(0) == Some(b'`') {
            return self.backquoted(block);
        }
        match self.peek(1) {
            Some(b'\'') => {
                // ANSI-C quoting: `\` escapes any byte, `\'` included.
                let open = self.i;
                self.i += 2;
                loop {
                    match self.peek(0) {
                        None => {
                            self.i = open;
                            return self.stop("an unterminated `$'...'`");
                        }
                        Some(b'\\') => self.i = (self.i + 2).min(self.end),
                        Some(b'\'') => break,
                        Some(_) => self.i += 1,
                    }
                }
                self.i += 1;
            }
            Some(b'"') => {
                self.i += 2;
                self.double_quoted(block)?;
            }
            Some(b'(') if self.peek(2) == Some(b'(') => self.arithmetic(3, block)?,
            Some(b'(') => {
                self.i += 2;
                self.substitution(block, "command substitution")?;
            }
            Some(b'[') => self.balanced(2, b'[', b']', block)?,
            Some(b'{') => self.balanced(2, b'{', b'}', block)?,
            _ => self.i += 1,
        }
        Ok(())
    }

    /// `$(...)`, `<(...)`, `>(...)` from after the `(`: its commands, in a block of their own.
    pub(super) fn substitution(&mut self, block: usize, kind: &'static str) -> Read<()> {
        self.enter()?;
        self.nest += 1;
        let inner = self.inner(block, kind);
        self.list(inner, &Until::Paren)?;
        self.i += 1;
        self.nest -= 1;
        self.depth -= 1;
        Ok(())
    }

    /// A backquoted command: read as a script of its own between the quotes.
    pub(super) fn backquoted(&mut self, block: usize) -> Read<()> {
        let open = self.i;
        let Some(len) = self.b[open + 1..self.end].iter().position(|&c| c == b'`' || c == b'\\') else {
            return self.stop("an unterminated backquote");
        };
        let close = open + 1 + len;
        if self.b[close] == b'\\' {
            return self.stop("a `\\` inside a backquoted command");
        }
        self.enter()?;
        let (end, heredocs) = (self.end, std::mem::take(&mut self.heredocs));
        (self.i, self.end) = (open + 1, close);
        self.nest += 1;
        let inner = self.inner(block, "command substitution");
        let read = self.list(inner, &Until::End);
        self.nest -= 1;
        (self.i, self.end, self.heredocs) = (close + 1, end, heredocs);
        self.depth -= 1;
        read
    }

    /// `$((...))` (from `$`, `skip` 3) or `((...))` (`skip` 2): up to the `))` closing it.
    pub(super) fn arithmetic(&mut self, skip: usize, block: usize) -> Read<()> {
        let open = self.i;
        self.i += skip;
        let mut depth = 0usize;
        loop {
            if self.quoted_or_expansion(block, true)? {
                continue;
            }
            match self.peek(0) {
                None => {
                    self.i = open;
                    return self.stop("an unterminated `((`");
                }
                Some(b'(') => depth += 1,
                Some(b')') if depth > 0 => depth -= 1,
                Some(b')') if self.peek(1) == Some(b')') => {
                    self.i += 2;
                    return Ok(());
                }
                Some(b')') => {
                    self.i = open;
                    return self.stop("a `((` that bash reads as nested subshells (not modelled)");
                }
                Some(b'\\') => self.i += 1,
                Some(_) => {}
            }
            self.i += 1;
        }
    }

    /// Reads a quoted stretch or an expansion starting at `i` whole (a single quote only when
    /// `single` says it quotes here); whether one started.
    pub(super) fn quoted_or_expansion(&mut self, block: usize, single: bool) -> Read<bool> {
        match self.peek(0) {
            Some(b'\'') if single => self.single_quoted()?,
            Some(b'"') => {
                self.i += 1;
                self.double_quoted(block)?;
            }
            Some(b'$' | b'`') => self.dollar_or_backquote(block)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `$[...]`, `${...}` from `$`: up to the bracket closing it, nested quotes and expansions
    /// read whole.
    pub(super) fn balanced(&mut self, skip: usize, open: u8, close: u8, block: usize) -> Read<()> {
        let at = self.i;
        self.i += skip;
        let mut depth = 0usize;
        loop {
            // Single quotes are quotes inside `${...}`, text inside `$[...]`.
            if self.quoted_or_expansion(block, open == b'{')? {
                continue;
            }
            match self.peek(0) {
                None => {
                    self.i = at;
                    return self.stop(format!("an unterminated `${}`", open as char));
                }
                Some(c) if c == close && depth == 0 => {
                    self.i += 1;
                    return Ok(());
                }
                Some(c) if c == close => depth -= 1,
                Some(c) if c == open => depth += 1,
                Some(b'\\') => self.i += 1,
                Some(_) => {}
            }
            self.i += 1;
        }
    }

    /// `name=(...)`: an array's words, up to the `)`.
    pub(super) fn array(&mut self, block: usize) -> Read<()> {
        self.enter()?;
        // Its newlines are inside one command: they end no logical line.
        self.nest += 1;
        self.i += 1;
        loop {
            self.skip_newlines(block)?;
            match self.peek(0) {
                Some(b')') => {
                    self.i += 1;
                    self.depth -= 1;
                    self.nest -= 1;
                    return Ok(());
                }
                None => return self.stop("an unterminated array assignment"),
                _ => {
                    if self.word(block)?.is_empty() {
                        return self.stop("unexpected operator in an array assignment");
                    }
                }
            }
        }
    }
}

/// A heredoc's delimiter as bash takes it from the word after `<<`: with quotes removed (a `$`
/// before a quote goes with it), and `\` escaping the next byte.
pub(super) fn delimiter_of(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'$' if matches!(raw.get(i + 1), Some(b'\'' | b'"')) => {}
            q @ (b'\'' | b'"') => {
                let end = raw[i + 1..]
                    .iter()
                    .position(|&c| c == q)
                    .map_or(raw.len(), |p| i + 1 + p);
                let inner = &raw[(i + 1).min(raw.len())..end];
                if q == b'"' {
                    let mut j = 0;
                    while j < inner.len() {
                        if inner[j] == b'\\' && matches!(inner.get(j + 1), Some(b'"' | b'\\' | b'$' | b'`')) {
                            j += 1;
                        }
                        out.push(inner[j]);
                        j += 1;
                    }
                } else {
                    out.extend_from_slice(inner);
                }
                i = end;
            }
            b'\\' if raw.get(i + 1) == Some(&b'\n') => i += 1,
            b'\\' if i + 1 < raw.len() => {
                i += 1;
                out.push(raw[i]);
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// The builtins whose arguments may be array assignments.
pub(super) const DECLARING: [&[u8]; 5] = [b"declare", b"local", b"typeset", b"export", b"readonly"];

/// Whether a word is an assignment (`NAME=`, `NAME+=`, `NAME[...]=` before any quote).
pub(super) fn is_assignment(word: &[u8]) -> bool {
    let Some(eq) = word.iter().position(|&c| c == b'=') else {
        return false;
    };
    let name = word[..eq].strip_suffix(b"+").unwrap_or(&word[..eq]);
    let name = match name.iter().position(|&c| c == b'[') {
        Some(p) if name.ends_with(b"]") => &name[..p],
        Some(_) => return false,
        None => name,
    };
    name.first().is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}
