//! The one reader of bash's grammar: a script as bash parses it, into its simple commands, each
//! with the context it runs in (the function or top level holding it, the list it belongs to,
//! and whether it runs only sometimes), and into logical lines. What the reader does not model
//! stops it: the report then says where, and nothing from there on counts as understood.

use std::ops::Range;

/// The deepest nesting of compound commands and substitutions read (a hostile script cannot
/// make the reader recurse without bound).
const MAX_DEPTH: usize = 100;

/// A list of commands that runs as one: the top level, a function body, the body of an `if`
/// branch, a loop, a `case` arm, a group, a subshell or a substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// What holds the list, in words: "top level", "function start", "`if` branch", ...
    pub kind: &'static str,
    /// The function whose body holds the list (through any nesting), by name.
    pub function: Option<Box<str>>,
}

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// From its first word (or assignment, or redirection) to the end of its last.
    pub span: Range<usize>,
    /// Where its words are in [`Program::words`].
    words: Range<usize>,
    /// Whether it has assignments before its words or redirections.
    pub extras: bool,
    /// Index of the block whose list holds it.
    pub block: usize,
    /// Why it runs only sometimes within its block (`None`: whenever the block runs).
    pub guard: Option<&'static str>,
    /// Why it never runs: an `exit`, `return` or `exec` before it in its list.
    pub dead: Option<&'static str>,
}

/// Where reading stopped: a construct the reader does not model, or a syntax error bash would
/// report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// Byte where the construct is.
    pub at: usize,
    /// Byte where the top-level command holding it starts: bash runs nothing of that command.
    pub from: usize,
    pub why: String,
}

/// A logical line: the bytes bash reads as one line (continuations and multi-line words
/// included), or one line of a heredoc body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub bytes: Range<usize>,
    /// Whether it is heredoc text, not commands.
    pub data: bool,
}

/// A script as bash parses it.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub blocks: Vec<Block>,
    /// In the order their words end (a command inside a substitution comes before the command
    /// holding it).
    pub commands: Vec<Command>,
    /// Comments (from `#` to the end of the line) and the block whose list they are in.
    pub comments: Vec<(Range<usize>, usize)>,
    pub lines: Vec<Line>,
    pub stop: Option<Stop>,
    /// The words of every command, as written (quotes included), assignments and redirections
    /// left out: one vector for all ([`Program::words`] gives a command's).
    words: Vec<Range<usize>>,
}

impl Program {
    /// The words of command `c`, as written (quotes included).
    pub fn words(&self, c: &Command) -> &[Range<usize>] {
        &self.words[c.words.clone()]
    }
}

/// Reads `bytes` as bash parses a script.
pub fn read(bytes: &[u8]) -> Program {
    let mut r = Reader {
        b: bytes,
        end: bytes.len(),
        i: 0,
        heredocs: Vec::new(),
        nest: 0,
        depth: 0,
        line_start: 0,
        top_start: 0,
        arrays: false,
        prog: Program::default(),
        spare: Vec::new(),
    };
    let top = r.block("top level", None);
    if let Err(stop) = r.list(top, &Until::End) {
        r.prog.stop = Some(stop);
    }
    r.finish_lines();
    r.prog
}

/// Where a list ends.
enum Until<'k> {
    /// The end of the text (the top level, a backquoted command).
    End,
    /// A `)` (a subshell, `$(...)`, `<(...)`).
    Paren,
    /// One of these reserved words in command position.
    Words(&'k [&'static str]),
    /// `;;`, `;&`, `;;&` or `esac`: a `case` arm.
    Arm,
}

/// A heredoc opened and not yet read.
struct Heredoc {
    delimiter: Vec<u8>,
    strip_tabs: bool,
    /// Whether its body is expanded (an unquoted delimiter).
    expands: bool,
    /// The block of the command that opened it (its substitutions' commands go inside).
    block: usize,
}

type Read<T> = Result<T, Stop>;

struct Reader<'a> {
    b: &'a [u8],
    /// Where the text being read ends (a backquoted command ends before the script does).
    end: usize,
    i: usize,
    heredocs: Vec<Heredoc>,
    /// Substitutions open: a newline inside one does not end a logical line.
    nest: usize,
    depth: usize,
    line_start: usize,
    top_start: usize,
    /// Whether a word here may be an array assignment (`NAME=(...)`): before a command's
    /// words, or among the arguments of a builtin that declares.
    arrays: bool,
    prog: Program,
    /// Word lists of the simple commands being read, for reuse (a substitution inside a word
    /// reads its own while the command holding it is read).
    spare: Vec<Vec<Range<usize>>>,
}

fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Bytes that end a word outside quotes.
fn metachar(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')')
}

/// Every reserved word, as bytes.
const RESERVED: [&[u8]; 19] = [
    b"if",
    b"then",
    b"elif",
    b"else",
    b"fi",
    b"do",
    b"done",
    b"case",
    b"esac",
    b"while",
    b"until",
    b"for",
    b"select",
    b"function",
    b"{",
    b"}",
    b"!",
    b"[[",
    b"time",
];

const RESERVED_CLOSERS: [&str; 8] = ["then", "elif", "else", "fi", "do", "done", "esac", "}"];

impl<'a> Reader<'a> {
    fn block(&mut self, kind: &'static str, function: Option<Box<str>>) -> usize {
        self.prog.blocks.push(Block { kind, function });
        self.prog.blocks.len() - 1
    }

    /// A block inside `parent`, in the same function.
    fn inner(&mut self, parent: usize, kind: &'static str) -> usize {
        let function = self.prog.blocks[parent].function.clone();
        self.block(kind, function)
    }

    fn stop<T>(&self, why: impl Into<String>) -> Read<T> {
        Err(Stop {
            at: self.i,
            from: self.top_start,
            why: why.into(),
        })
    }

    fn peek(&self, k: usize) -> Option<u8> {
        let at = self.i + k;
        (at < self.end).then(|| self.b[at])
    }

    fn at(&self, s: &[u8]) -> bool {
        self.b[self.i..self.end].starts_with(s)
    }

    fn enter(&mut self) -> Read<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.stop(format!("nesting deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    /// Skips blanks, `\`-newline continuations and a comment (up to, not over, its newline).
    /// A continuation that joins two tokens (`&\`+newline+`&`, `<<\`+newline+`-EOF`) stops
    /// reading: bash joins them before it reads a token, which the reader does not model.
    fn skip_blanks(&mut self, block: usize) -> Read<()> {
        loop {
            match self.peek(0) {
                Some(b) if blank(b) => self.i += 1,
                Some(b'\\') if self.peek(1) == Some(b'\n') => {
                    self.glued_continuation()?;
                    self.i += 2;
                }
                Some(b'#') => {
                    let start = self.i;
                    while self.peek(0).is_some_and(|b| b != b'\n') {
                        self.i += 1;
                    }
                    self.prog.comments.push((start..self.i, block));
                }
                _ => return Ok(()),
            }
        }
    }

    /// Stops at a `\`+newline at `i` with a byte other than a blank on both sides.
    fn glued_continuation(&self) -> Read<()> {
        let before = self.i.checked_sub(1).map(|p| self.b[p]);
        let after = self.peek(2);
        let solid = |b: Option<u8>| b.is_some_and(|b| !blank(b) && b != b'\n');
        // Joined, two word bytes make one word and two operator bytes one operator (`&` `&`);
        // an operator byte beside a word byte stays two tokens, as bash reads them too.
        let same_kind = before.zip(after).is_some_and(|(x, y)| metachar(x) == metachar(y));
        if solid(before) && solid(after) && same_kind {
            return self
                .stop("a line continuation inside a word or operator (bash joins the lines first; not modelled)");
        }
        Ok(())
    }

    /// Skips blanks, comments and newlines (reading the heredocs each newline ends).
    fn skip_newlines(&mut self, block: usize) -> Read<()> {
        loop {
            self.skip_blanks(block)?;
            if self.peek(0) != Some(b'\n') {
                return Ok(());
            }
            self.newline()?;
        }
    }

    /// Reads the newline at `i`: it ends a logical line (outside substitutions), and the
    /// heredocs opened before it start after it.
    fn newline(&mut self) -> Read<()> {
        self.i += 1;
        if self.nest == 0 {
            self.prog.lines.push(Line {
                bytes: self.line_start..self.i,
                data: false,
            });
            self.line_start = self.i;
        }
        for doc in std::mem::take(&mut self.heredocs) {
            self.heredoc_body(&doc)?;
        }
        Ok(())
    }

    /// Reads a heredoc's body, up to its delimiter line (or the end, as bash does with a
    /// warning); an expanded body's substitutions run, so they are read as commands.
    fn heredoc_body(&mut self, doc: &Heredoc) -> Read<()> {
        let body_start = self.i;
        let mut body_end = self.i;
        // An expanded body joins a line ending in an unescaped `\` with the next one first.
        let mut carry: Vec<u8> = Vec::new();
        while self.i < self.end {
            let line_end = self.b[self.i..self.end]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(self.end, |p| self.i + p);
            let mut text = &self.b[self.i..line_end];
            if doc.strip_tabs {
                text = &text[text.iter().take_while(|&&c| c == b'\t').count()..];
            }
            let joined;
            if doc.expands {
                carry.extend_from_slice(text);
                let backslashes = carry.iter().rev().take_while(|&&c| c == b'\\').count();
                if backslashes % 2 == 1 {
                    carry.pop();
                    let next = (line_end + 1).min(self.end);
                    if self.nest == 0 {
                        self.prog.lines.push(Line {
                            bytes: self.i..next,
                            data: true,
                        });
                        self.line_start = next;
                    }
                    self.i = next;
                    body_end = next;
                    continue;
                }
                joined = std::mem::take(&mut carry);
                text = &joined;
            }
            let next = (line_end + 1).min(self.end);
            if self.nest == 0 {
                self.prog.lines.push(Line {
                    bytes: self.i..next,
                    data: true,
                });
                self.line_start = next;
            }
            self.i = next;
            if text == doc.delimiter.as_slice() {
                break;
            }
            body_end = next;
        }
        if doc.expands && self.b[body_start..body_end].iter().any(|&c| c == b'$' || c == b'`') {
            let (resume, end) = (self.i, self.end);
            (self.i, self.end) = (body_start, body_end);
            let read = self.expanded_text(doc.block);
            (self.i, self.end) = (resume, end);
            read?;
        }
        Ok(())
    }

    /// Reads an expanded heredoc body (as text in double quotes, without a closing quote).
    fn expanded_text(&mut self, block: usize) -> Read<()> {
        self.nest += 1;
        while let Some(c) = self.peek(0) {
            match c {
                b'\\' => self.i += 2,
                b'$' | b'`' => self.dollar_or_backquote(block)?,
                _ => self.i += 1,
            }
        }
        self.nest -= 1;
        Ok(())
    }

    /// Stops at a word in command position that a line continuation splits and that is a
    /// reserved word once joined (`i\`+newline+`f`): bash joins it first.
    fn split_reserved(&self) -> Read<()> {
        let rest = &self.b[self.i..self.end];
        let len = rest.iter().position(|&c| metachar(c)).unwrap_or(rest.len());
        if !rest[..len].contains(&b'\\') {
            return Ok(());
        }
        let (mut joined, mut k, mut split) = (Vec::new(), 0, false);
        while k < rest.len() && !metachar(rest[k]) {
            if rest[k] == b'\\' && rest.get(k + 1) == Some(&b'\n') {
                (k, split) = (k + 2, true);
                continue;
            }
            joined.push(rest[k]);
            k += 1;
        }
        if split && (RESERVED.contains(&joined.as_slice()) || joined == b"coproc") {
            return self.stop("a reserved word split by a line continuation (not modelled)");
        }
        Ok(())
    }

    /// The reserved word at `i` in command position, if a word there is one.
    fn reserved(&self) -> Option<&'static str> {
        const ALL: [&str; 20] = [
            "if", "then", "elif", "else", "fi", "do", "done", "case", "esac", "while", "until", "for", "select",
            "function", "{", "}", "!", "[[", "time", "coproc",
        ];
        let rest = &self.b[self.i..self.end];
        let len = rest.iter().position(|&c| metachar(c)).unwrap_or(rest.len());
        ALL.into_iter().find(|w| w.as_bytes() == &rest[..len])
    }

    /// A list of and-or lists up to `until` (left unread); commands go in `block`.
    /// Bash takes no empty list between reserved words.
    fn list(&mut self, block: usize, until: &Until) -> Read<()> {
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
    fn ends_list(&self, commands: &[Command], block: usize) -> Option<&'static str> {
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
    fn ends(&self, until: &Until) -> Read<bool> {
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
    fn and_or(&mut self, block: usize) -> Read<()> {
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
    fn pipeline(&mut self, block: usize, guard: Option<&'static str>) -> Read<()> {
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
    fn command(&mut self, block: usize, guard: Option<&'static str>) -> Read<()> {
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
    fn function_name(&self) -> Option<usize> {
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
    fn function(&mut self, block: usize, keyword: bool) -> Read<()> {
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
    fn expect(&mut self, block: usize, w: &'static str) -> Read<()> {
        self.skip_newlines(block)?;
        if self.reserved() != Some(w) {
            return self.stop(format!("expected `{w}`"));
        }
        self.i += w.len();
        Ok(())
    }

    fn if_clause(&mut self, block: usize) -> Read<()> {
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

    fn loop_clause(&mut self, block: usize, word: &'static str) -> Read<()> {
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

    fn do_group(&mut self, block: usize, kind: &'static str) -> Read<()> {
        self.expect(block, "do")?;
        let body = self.inner(block, kind);
        self.list(body, &Until::Words(&["done"]))?;
        self.expect(block, "done")
    }

    /// `for NAME [in WORDS] ; do ... done`, `for ((...)) ; do ... done`, and `select`.
    fn for_clause(&mut self, block: usize, word: &'static str) -> Read<()> {
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

    fn case_clause(&mut self, block: usize) -> Read<()> {
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
    fn conditional(&mut self, block: usize) -> Read<()> {
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

    /// Redirections after a compound command.
    fn redirections(&mut self, block: usize) -> Read<bool> {
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
    fn redirection(&mut self, block: usize) -> Read<bool> {
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
    fn simple(&mut self, block: usize, guard: Option<&'static str>) -> Read<()> {
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
            if words.len() > super::MAX_WORDS {
                return Err(Stop {
                    at,
                    from: self.top_start,
                    why: format!("more than {} words", super::MAX_WORDS),
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
    fn word(&mut self, block: usize) -> Read<Range<usize>> {
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

    fn single_quoted(&mut self) -> Read<()> {
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
    fn double_quoted(&mut self, block: usize) -> Read<()> {
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
    fn dollar_or_backquote(&mut self, block: usize) -> Read<()> {
        self.enter()?;
        let read = self.dollar_form(block);
        self.depth -= 1;
        read
    }

    fn dollar_form(&mut self, block: usize) -> Read<()> {
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
    fn substitution(&mut self, block: usize, kind: &'static str) -> Read<()> {
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
    fn backquoted(&mut self, block: usize) -> Read<()> {
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
    fn arithmetic(&mut self, skip: usize, block: usize) -> Read<()> {
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
    fn quoted_or_expansion(&mut self, block: usize, single: bool) -> Read<bool> {
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
    fn balanced(&mut self, skip: usize, open: u8, close: u8, block: usize) -> Read<()> {
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
    fn array(&mut self, block: usize) -> Read<()> {
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

    /// Closes the logical lines: the text after the last newline, and after a stop every line
    /// from the top-level command holding it, one physical line each.
    fn finish_lines(&mut self) {
        let end = self.b.len();
        if let Some(stop) = &self.prog.stop {
            let from = stop.from;
            self.prog.lines.retain(|l| l.bytes.end <= from);
            let mut at = self.prog.lines.last().map_or(0, |l| l.bytes.end);
            while at < end {
                let next = self.b[at..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(end, |p| at + p + 1);
                self.prog.lines.push(Line {
                    bytes: at..next,
                    data: false,
                });
                at = next;
            }
        } else if self.line_start < end {
            self.prog.lines.push(Line {
                bytes: self.line_start..end,
                data: false,
            });
        }
    }
}

/// A heredoc's delimiter as bash takes it from the word after `<<`: with quotes removed (a `$`
/// before a quote goes with it), and `\` escaping the next byte.
fn delimiter_of(raw: &[u8]) -> Vec<u8> {
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
const DECLARING: [&[u8]; 5] = [b"declare", b"local", b"typeset", b"export", b"readonly"];

/// Whether a word is an assignment (`NAME=`, `NAME+=`, `NAME[...]=` before any quote).
fn is_assignment(word: &[u8]) -> bool {
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
