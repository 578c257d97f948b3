//! Lists as bash reads them: and-or lists, pipelines, commands, compound commands and function
//! definitions, each command with its block and guard.

use super::*;

impl Reader<'_> {
    /// A list of and-or lists up to `until` (left unread); commands go in `block`.
    /// Bash takes no empty list between reserved words.
    pub(super) fn list(&mut self, block: usize, until: &Until) -> Read<()> {
        let mut empty = true;
        let mut ended: Option<&'static str> = None;
        loop {
            self.skip_newlines(block)?;
            if block == 0 && self.nest == 0 {
                self.top_start = self.i;
            }
            if self.ends(until)? {
                if empty && matches!(until, Until::Words(_)) {
                    return self.stop("an empty list of commands");
                }
                return Ok(());
            }
            let first = self.prog.commands.len();
            self.and_or(block)?;
            empty = false;
            match ended {
                Some(_) => self.prog.commands[first..]
                    .iter_mut()
                    .for_each(|c| c.dead = c.dead.or(ended)),
                None => ended = self.ends_list(&self.prog.commands[first..], block),
            }
            self.skip_blanks(block)?;
            match self.peek(0) {
                Some(b';') if !self.at(b";;") && !self.at(b";&") => self.i += 1,
                Some(b'&') if !self.at(b"&&") && !self.at(b"&>") => self.i += 1,
                Some(b'\n') => self.newline()?,
                _ => {
                    if !self.ends(until)? {
                        let c = self
                            .peek(0)
                            .map_or("end of file".into(), |c| format!("`{}`", c as char));
                        return self.stop(format!("unexpected {c}"));
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Whether the and-or list just read (`commands`) ends its list for good: a plain `exit`,
    /// `return` or `exec` of a program; what later commands of the list then are.
    pub(super) fn ends_list(&self, commands: &[Command], block: usize) -> Option<&'static str> {
        let [c] = commands else { return None };
        let word = |k: usize| self.prog.words(c).get(k).map(|w| &self.b[w.clone()]);
        if c.block != block || c.guard.is_some() {
            return None;
        }
        match word(0)? {
            b"exit" => Some("after `exit` in the same list"),
            b"return" => Some("after `return` in the same list"),
            b"exec" if word(1).is_some() => Some("after `exec` in the same list"),
            _ => None,
        }
    }

    /// Whether the list ends here; a closing word that ends another construct stops reading.
    pub(super) fn ends(&self, until: &Until) -> Read<bool> {
        self.split_reserved()?;
        let word = self.reserved();
        match (until, self.peek(0)) {
            (Until::End, None) => return Ok(true),
            (_, None) => return self.stop("unexpected end of file (a construct left open)"),
            (Until::Paren, Some(b')')) => return Ok(true),
            (Until::Arm, Some(b';')) if self.at(b";;") || self.at(b";&") => return Ok(true),
            (Until::Arm, _) if word == Some("esac") => return Ok(true),
            (Until::Words(words), _) if word.is_some_and(|w| words.contains(&w)) => return Ok(true),
            _ => {}
        }
        match word {
            Some(w) if RESERVED_CLOSERS.contains(&w) => self.stop(format!("unexpected `{w}`")),
            _ if self.peek(0) == Some(b')') => self.stop("unexpected `)`"),
            _ if self.at(b";;") || self.at(b";&") || self.at(b";") => self.stop("unexpected `;`"),
            _ => Ok(false),
        }
    }

    /// Pipelines joined by `&&` / `||`; a list ended by `&` runs in the background.
    pub(super) fn and_or(&mut self, block: usize) -> Read<()> {
        let first = self.prog.commands.len();
        let mut guard = None;
        loop {
            self.pipeline(block, guard)?;
            self.skip_blanks(block)?;
            if self.at(b"&&") || self.at(b"||") {
                guard = Some(if self.at(b"&&") { "after `&&`" } else { "after `||`" });
                self.i += 2;
                self.skip_newlines(block)?;
                continue;
            }
            break;
        }
        if self.peek(0) == Some(b'&') && !self.at(b"&&") && !self.at(b"&>") {
            for c in &mut self.prog.commands[first..] {
                c.guard = c.guard.or(Some("in the background (`&`)"));
            }
        }
        Ok(())
    }

    /// Commands joined by `|`, after an optional `!`.
    pub(super) fn pipeline(&mut self, block: usize, guard: Option<&'static str>) -> Read<()> {
        let first = self.prog.commands.len();
        let mut guard = guard;
        if self.reserved() == Some("time") {
            self.i += 4;
            self.skip_blanks(block)?;
            if self.at(b"-p") && self.peek(2).is_none_or(metachar) {
                self.i += 2;
                self.skip_blanks(block)?;
            }
        }
        if self.reserved() == Some("!") {
            self.i += 1;
            self.skip_blanks(block)?;
            guard = guard.or(Some("negated by `!`"));
        }
        let mut piped = false;
        loop {
            self.command(block, guard)?;
            self.skip_blanks(block)?;
            if self.peek(0) == Some(b'|') && !self.at(b"||") {
                self.i += if self.at(b"|&") { 2 } else { 1 };
                self.skip_newlines(block)?;
                piped = true;
                continue;
            }
            break;
        }
        if piped {
            for c in &mut self.prog.commands[first..] {
                c.guard = c.guard.or(Some("in a pipeline"));
            }
        }
        Ok(())
    }

    /// One command: compound, a function definition or a simple command.
    pub(super) fn command(&mut self, block: usize, guard: Option<&'static str>) -> Read<()> {
        self.enter()?;
        self.split_reserved()?;
        let first = self.prog.commands.len();
        match self.reserved() {
            Some("if") => self.if_clause(block)?,
            Some(w @ ("while" | "until")) => self.loop_clause(block, w)?,
            Some(w @ ("for" | "select")) => self.for_clause(block, w)?,
            Some("case") => self.case_clause(block)?,
            Some("{") => {
                self.i += 1;
                let inner = self.inner(block, "`{ }` group");
                self.list(inner, &Until::Words(&["}"]))?;
                self.i += 1;
            }
            Some("function") => self.function(block, true)?,
            Some("[[") => self.conditional(block)?,
            Some("coproc") => return self.stop("`coproc` (not modelled)"),
            Some(w @ ("then" | "elif" | "else" | "fi" | "do" | "done" | "esac" | "}" | "!" | "time")) => {
                return self.stop(format!("unexpected `{w}`"))
            }
            Some(w) => return self.stop(format!("`{w}` where bash does not take it")),
            None if self.at(b"((") => self.arithmetic(2, block)?,
            None if self.peek(0) == Some(b'(') => {
                self.i += 1;
                let inner = self.inner(block, "subshell `( )`");
                let from = self.prog.commands.len();
                self.list(inner, &Until::Paren)?;
                if self.prog.commands.len() == from {
                    return self.stop("an empty subshell");
                }
                self.i += 1;
            }
            None if self.function_name().is_some() => self.function(block, false)?,
            None => {
                self.simple(block, guard)?;
                self.depth -= 1;
                return Ok(());
            }
        }
        self.redirections(block)?;
        for c in &mut self.prog.commands[first..] {
            c.guard = c.guard.or(guard);
        }
        self.depth -= 1;
        Ok(())
    }

    /// `name ()` at `i`: the end of the name when a function definition starts here.
    pub(super) fn function_name(&self) -> Option<usize> {
        let rest = &self.b[self.i..self.end];
        let len = rest.iter().position(|&c| metachar(c) || b"'\"\\$`".contains(&c))?;
        if len == 0 {
            return None;
        }
        let after = &rest[len..];
        let after = &after[after.iter().take_while(|&&c| blank(c)).count()..];
        let after = after.strip_prefix(b"(")?;
        after
            .iter()
            .find(|&&c| !blank(c))
            .filter(|&&c| c == b')')
            .map(|_| self.i + len)
    }

    /// `name () BODY` or `function name [()] BODY`: the body is a block of the function.
    pub(super) fn function(&mut self, block: usize, keyword: bool) -> Read<()> {
        if keyword {
            self.i += "function".len();
            self.skip_blanks(block)?;
        }
        let start = self.i;
        while self.peek(0).is_some_and(|c| !metachar(c)) {
            self.i += 1;
        }
        let name = String::from_utf8_lossy(&self.b[start..self.i]).into_owned();
        if name.is_empty() {
            return self.stop("a function without a name");
        }
        self.skip_blanks(block)?;
        if self.at(b"(") {
            self.i += 1;
            self.skip_blanks(block)?;
            if !self.at(b")") {
                return self.stop("`(` after a function name without `)`");
            }
            self.i += 1;
        }
        self.skip_newlines(block)?;
        let body = self.block("function body", Some(name.into_boxed_str()));
        match self.reserved() {
            Some("{") => {
                self.i += 1;
                self.list(body, &Until::Words(&["}"]))?;
                self.i += 1;
            }
            _ if self.peek(0) == Some(b'(') || self.reserved().is_some() => {
                self.command(body, None)?;
                return Ok(());
            }
            _ => return self.stop("a function body that is not a compound command"),
        }
        Ok(())
    }

    /// Reads the reserved word `w` at `i` or stops.
    pub(super) fn expect(&mut self, block: usize, w: &'static str) -> Read<()> {
        self.skip_newlines(block)?;
        if self.reserved() != Some(w) {
            return self.stop(format!("expected `{w}`"));
        }
        self.i += w.len();
        Ok(())
    }

    pub(super) fn if_clause(&mut self, block: usize) -> Read<()> {
        self.i += 2;
        loop {
            let test = self.inner(block, "`if` condition");
            self.list(test, &Until::Words(&["then"]))?;
            self.expect(block, "then")?;
            let branch = self.inner(block, "`if` branch");
            self.list(branch, &Until::Words(&["elif", "else", "fi"]))?;
            match self.reserved() {
                Some("elif") => self.i += 4,
                Some("else") => {
                    self.i += 4;
                    let branch = self.inner(block, "`else` branch");
                    self.list(branch, &Until::Words(&["fi"]))?;
                    return self.expect(block, "fi");
                }
                _ => return self.expect(block, "fi"),
            }
        }
    }

    pub(super) fn loop_clause(&mut self, block: usize, word: &'static str) -> Read<()> {
        self.i += word.len();
        let test = self.inner(
            block,
            if word == "while" {
                "`while` condition"
            } else {
                "`until` condition"
            },
        );
        self.list(test, &Until::Words(&["do"]))?;
        self.do_group(
            block,
            if word == "while" {
                "`while` loop"
            } else {
                "`until` loop"
            },
        )
    }

    pub(super) fn do_group(&mut self, block: usize, kind: &'static str) -> Read<()> {
        self.expect(block, "do")?;
        let body = self.inner(block, kind);
        self.list(body, &Until::Words(&["done"]))?;
        self.expect(block, "done")
    }

    /// `for NAME [in WORDS] ; do ... done`, `for ((...)) ; do ... done`, and `select`.
    pub(super) fn for_clause(&mut self, block: usize, word: &'static str) -> Read<()> {
        self.i += word.len();
        self.skip_blanks(block)?;
        if word == "for" && self.at(b"((") {
            self.arithmetic(2, block)?;
        } else {
            let name = self.word(block)?;
            if name.is_empty() {
                return self.stop(format!("`{word}` without a name"));
            }
            self.skip_newlines(block)?;
            if self.at(b"in") && self.peek(2).is_none_or(metachar) {
                self.i += 2;
                loop {
                    self.skip_blanks(block)?;
                    if self.peek(0).is_none_or(|c| c == b';' || c == b'\n') {
                        break;
                    }
                    if self.word(block)?.is_empty() {
                        return self.stop(format!("unexpected `{}` in a `{word}` list", self.b[self.i] as char));
                    }
                }
            }
        }
        self.skip_blanks(block)?;
        if self.peek(0) == Some(b';') {
            self.i += 1;
        }
        self.do_group(block, if word == "for" { "`for` loop" } else { "`select` loop" })
    }

    pub(super) fn case_clause(&mut self, block: usize) -> Read<()> {
        self.i += 4;
        self.skip_blanks(block)?;
        if self.word(block)?.is_empty() {
            return self.stop("`case` without a word");
        }
        self.skip_newlines(block)?;
        if !(self.at(b"in") && self.peek(2).is_none_or(metachar)) {
            return self.stop("expected `in`");
        }
        self.i += 2;
        loop {
            self.skip_newlines(block)?;
            if self.reserved() == Some("esac") {
                self.i += 4;
                return Ok(());
            }
            if self.peek(0) == Some(b'(') {
                self.i += 1;
            }
            loop {
                self.skip_blanks(block)?;
                let pattern = self.word(block)?;
                if pattern.is_empty() {
                    return self.stop("a `case` pattern expected");
                }
                if self.b[pattern] == *b"esac" {
                    return self.stop("`esac` as a `case` pattern (bash 4.2 and 4.4 reject it)");
                }
                self.skip_blanks(block)?;
                match self.peek(0) {
                    Some(b'|') => self.i += 1,
                    Some(b')') => break,
                    _ => return self.stop("`)` expected after a `case` pattern"),
                }
            }
            self.i += 1;
            let arm = self.inner(block, "`case` arm");
            self.list(arm, &Until::Arm)?;
            for end in [&b";;&"[..], b";;", b";&"] {
                if self.at(end) {
                    self.i += end.len();
                    break;
                }
            }
        }
    }

    /// `[[ ... ]]`: words and the operators of a conditional expression, up to `]]`.
    pub(super) fn conditional(&mut self, block: usize) -> Read<()> {
        self.i += 2;
        loop {
            self.skip_newlines(block)?;
            match self.peek(0) {
                None => return self.stop("`[[` without `]]`"),
                Some(b'&' | b'|' | b'(' | b')' | b'<' | b'>') => self.i += 1,
                _ => {
                    let word = self.word(block)?;
                    if self.b[word.clone()] == *b"]]" {
                        return Ok(());
                    }
                    if word.is_empty() {
                        return self.stop("unexpected byte in `[[ ]]`");
                    }
                }
            }
        }
    }
}
