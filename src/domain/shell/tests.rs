use super::*;

/// The logical lines of `text`: (first line, last line, heredoc data).
fn kinds(text: &str) -> Vec<(usize, usize, bool)> {
    let program = read(text.as_bytes());
    assert_eq!(program.stop, None, "{text:?}");
    let number = |at: usize| 1 + text.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
    program
        .lines
        .iter()
        .map(|l| (number(l.bytes.start), number(l.bytes.end - 1), l.data))
        .collect()
}

#[test]
fn continuations_are_backslash_newline_only() {
    assert_eq!(kinds("a \\\nb\nc\n"), [(1, 2, false), (3, 3, false)]);
    // A backslash before CR LF escapes the CR: the next line is a command of its own.
    assert_eq!(kinds("a \\\r\nb\n"), [(1, 1, false), (2, 2, false)]);
    // An escaped backslash does not continue.
    assert_eq!(kinds("a \\\\\nb\n"), [(1, 1, false), (2, 2, false)]);
}

#[test]
fn heredoc_bodies_are_data_and_multi_line_quotes_one_line() {
    let text = "cat <<EOF\nIPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT\nEOF\ncat <<-'X' >f\n\tIPTABLE -A INPUT\n\tX\necho \"a\nIPTABLE -A INPUT\nb\"\nIPTABLE -A INPUT\n";
    assert_eq!(
        kinds(text),
        [
            (1, 1, false),
            (2, 2, true),
            (3, 3, true),
            (4, 4, false),
            (5, 5, true),
            (6, 6, true),
            (7, 9, false),
            (10, 10, false),
        ]
    );
    // `<<<` is a here-string, not a heredoc; a `#` comment hides a `<<`.
    assert_eq!(kinds("cat <<<x\na\n# <<EOF\nb\n").len(), 4);
}

/// The first words of the commands `text` holds, in order, with their block's kind and guard.
fn commands(text: &str) -> Vec<(String, &'static str, Option<&'static str>)> {
    let program = read(text.as_bytes());
    assert_eq!(program.stop, None, "{text:?}");
    let mut commands: Vec<_> = program.commands.iter().collect();
    commands.sort_by_key(|c| c.span.start);
    commands
        .iter()
        .map(|c| {
            let w = program
                .words(c)
                .first()
                .map_or(String::new(), |w| text[w.clone()].to_string());
            (w, program.blocks[c.block].kind, c.guard)
        })
        .collect()
}

#[test]
fn commands_carry_their_context() {
    let got = commands("if false; then R1; fi\nfalse && R2\nR3 | cat\nR4 &\n( R5 )\nf() { R6; }\ncase x in y) R7 ;; esac\nx=$(R8)\nR9\n");
    let find = |name: &str| got.iter().find(|c| c.0 == name).unwrap().clone();
    assert_eq!(find("R1").1, "`if` branch");
    assert_eq!(find("R2").2, Some("after `&&`"));
    assert_eq!(find("R3").2, Some("in a pipeline"));
    assert_eq!(find("R4").2, Some("in the background (`&`)"));
    assert_eq!(find("R5").1, "subshell `( )`");
    assert_eq!(find("R6").1, "function body");
    assert_eq!(find("R7").1, "`case` arm");
    assert_eq!(find("R8").1, "command substitution");
    assert_eq!(find("R9"), ("R9".to_string(), "top level", None));
}

#[test]
fn arithmetic_and_ansi_c_quotes_are_read_whole() {
    // `<<` inside `$((..))` opens no heredoc; `\'` does not end `$'..'`.
    let got = commands("M=$((1<<8))\nN=$[1<<2]\n(( z = 1 << 3 ))\necho $'a\\' R0 b'\nR1\n");
    let names: Vec<&str> = got.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["", "", "echo", "R1"]);
}

#[test]
fn what_the_reader_does_not_model_stops_it_where_it_is() {
    for (text, line) in [
        ("a\nif x; then b\n", 2),
        ("a\necho 'open\n", 2),
        ("a\nfi\n", 2),
        ("a\nx=`b \\` c`\n", 2),
        ("a\ncase x in @(y)) b ;; esac\n", 2),
    ] {
        let program = read(text.as_bytes());
        let stop = program.stop.unwrap_or_else(|| panic!("{text:?} read whole"));
        assert_eq!(1 + text[..stop.from].matches('\n').count(), line, "{text:?}: {stop:?}");
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}x{}", "( ".repeat(5000), " )".repeat(5000));
    assert!(read(deep.as_bytes()).stop.unwrap().why.contains("nesting"));
}

#[test]
fn comments_start_only_at_a_word() {
    let w = words(b"IPTABLE -j ACCEPT # c").unwrap();
    assert_eq!((w.words.len(), w.comment), (3, Some(18)));
    let w = words(b"IPTABLE -j ACCEPT#x").unwrap();
    assert_eq!(w.words.last().unwrap(), "ACCEPT#x");
    // A CR is a word byte: `#` after it starts no comment, and `;` after it is an operator.
    let w = words(b"IPTABLE -j ACCEPT\r# x").unwrap();
    assert_eq!(w.words[2], "ACCEPT\r#");
    assert!(words(b"IPTABLE -j ACCEPT\r# ; id > /tmp/x").is_err());
}

#[test]
fn refuses_what_the_shell_would_expand() {
    for bad in [
        "a $(id)", "a `id`", "a \"$x\"", "a ${x}", "a; b", "a | b", "a > f", "a *", "a {b,c}", "a ~/x", "a 'b", "a \"b",
    ] {
        assert!(words(bad.as_bytes()).is_err(), "{bad}");
    }
    assert_eq!(
        words(b"a 'b c' \"d\\\"e\" f\\ g --x=1").unwrap().words,
        ["a", "b c", "d\"e", "f g", "--x=1"]
    );
}

#[test]
fn a_command_of_more_than_max_words_is_refused() {
    let line = |n: usize| vec!["w"; n].join(" ");
    assert_eq!(words(line(MAX_WORDS).as_bytes()).unwrap().words.len(), MAX_WORDS);
    let err = words(line(MAX_WORDS + 2).as_bytes()).unwrap_err();
    assert_eq!(err, format!("more than {MAX_WORDS} words"));
}
