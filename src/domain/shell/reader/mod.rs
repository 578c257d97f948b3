//! The one reader of bash's grammar: a script as bash parses it, into its simple commands, each
//! with the context it runs in (the function or top level holding it, the list it belongs to,
//! and whether it runs only sometimes), and into logical lines. What the reader does not model
//! stops it: the report then says where, and nothing from there on counts as understood.

use std::ops::Range;

mod lists;
mod words;

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

    /// Takes the heredoc body line ending at `line_end` (a logical line of data at the top
    /// level); returns where the next one starts.
    fn body_line(&mut self, line_end: usize) -> usize {
        let next = (line_end + 1).min(self.end);
        if self.nest == 0 {
            self.prog.lines.push(Line {
                bytes: self.i..next,
                data: true,
            });
            self.line_start = next;
        }
        self.i = next;
        next
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
                    body_end = self.body_line(line_end);
                    continue;
                }
                joined = std::mem::take(&mut carry);
                text = &joined;
            }
            let next = self.body_line(line_end);
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
