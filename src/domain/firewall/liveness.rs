//! Whether a call runs as the anchor does: calls through another command, what makes liveness
//! unknowable (`-e`, aliases, unset or redefined functions), and why a call does not run so.

use super::*;

/// Command words that run their arguments as a command (or may): a call through one is a call
/// the tool cannot read.
pub(super) const RUNNERS: [&str; 22] = [
    "eval", "trap", "command", "builtin", "exec", "source", ".", "xargs", "nohup", "env", "sudo", "timeout", "nice",
    "su", "sh", "bash", "setsid", "stdbuf", "flock", "ionice", "chroot", "busybox",
];

/// Why command `c` is a call the tool cannot read: one run through a runner (`eval`, `trap`,
/// ...) that names a call word, or whose command word is an expansion (`$IPT -A ...`).
pub(super) fn indirect_call(bytes: &[u8], words: &[Range<usize>], c: &shell::reader::Command) -> Option<&'static str> {
    let first = &bytes[words.first()?.clone()];
    let runner = shell::unquote(first).is_ok_and(|w| RUNNERS.contains(&w.as_ref()));
    let expands = first.iter().any(|&b| b == b'$' || b == b'`');
    if !runner && !expands {
        return None;
    }
    let text = &bytes[c.span.clone()];
    let names_call = ["IPTABLE", "iptables", "ip6tables"]
        .iter()
        .any(|w| text.windows(w.len()).any(|x| x == w.as_bytes()));
    if runner && names_call {
        return Some("a call run through another command (`eval`, `trap`, `command`, ...)");
    }
    let adds = words[1..]
        .iter()
        .any(|w| ["-A", "-I", "--append", "--insert"].contains(&std::str::from_utf8(&bytes[w.clone()]).unwrap_or("")));
    (expands && (adds || names_call)).then_some("a call whose command word is an expansion (`$IPT ...`)")
}

/// What the script does that makes whether any call runs unknowable: `-e` (errexit), aliases,
/// an unset function, the anchor's function (or `IPTABLE`) defined more than once.
pub(super) fn semantics_not_modelled(
    bytes: &[u8],
    program: &shell::Program,
    anchor_function: Option<Option<&str>>,
) -> Option<String> {
    let errexit = |flag: &[u8]| flag.starts_with(b"-") && !flag.starts_with(b"--") && flag.contains(&b'e');
    let shebang = &bytes[..bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len())];
    if shebang.starts_with(b"#!") && shebang.split(|&b| b == b' ').skip(1).any(errexit) {
        return Some("the script runs with `-e` (a failing command ends it)".into());
    }
    for c in &program.commands {
        let Some((first, rest)) = program.words(c).split_first() else {
            continue;
        };
        let mut rest = rest.iter().map(|w| &bytes[w.clone()]);
        match &bytes[first.clone()] {
            b"set" if rest.any(|f| errexit(f) || f == b"errexit") => {
                return Some("the script sets `-e` (a failing command ends it)".into())
            }
            b"alias" | b"unalias" => return Some("the script defines aliases".into()),
            b"shopt" if rest.any(|w| w == b"expand_aliases") => return Some("the script expands aliases".into()),
            b"unset" if rest.any(|w| w.starts_with(b"-f") || w == b"IPTABLE") => {
                return Some("the script unsets a function".into())
            }
            _ => {}
        }
    }
    for name in anchor_function.flatten().into_iter().chain(["IPTABLE"]) {
        let bodies = program
            .blocks
            .iter()
            .filter(|b| b.kind == "function body" && b.function.as_deref() == Some(name))
            .count();
        if bodies > 1 {
            return Some(format!("function {name} is defined more than once"));
        }
    }
    None
}

/// Why a command in `context` does not run as the anchor (in `anchor`) does, if it does not.
pub(super) fn not_live_reason(program: &shell::Program, context: Context, anchor: Context) -> Option<String> {
    // A guard is conditional whatever the anchor's (two `&&` need not test the same thing).
    if let Some(guard) = context.guard {
        return Some(format!("conditional: {guard}"));
    }
    if let Some(dead) = context.dead {
        return Some(format!("never runs: {dead}"));
    }
    if context.block == anchor.block {
        return None;
    }
    let (block, home) = (
        &program.blocks[context.block as usize],
        &program.blocks[anchor.block as usize],
    );
    if block.function != home.function {
        return Some(match (&block.function, &home.function) {
            (Some(f), _) => format!("in function {f}, not the anchor's"),
            (None, Some(h)) => format!("at the top level, not in function {h} where the anchor is"),
            (None, None) => "not in the anchor's list".to_string(),
        });
    }
    let kind = block.kind;
    Some(
        if kind.contains("condition") || kind.contains("branch") || kind.contains("loop") || kind.contains("arm") {
            format!("conditional: inside {kind}")
        } else {
            format!("not in the anchor's list: inside {kind}")
        },
    )
}
