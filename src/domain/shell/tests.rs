use super::*;

fn kinds(text: &str) -> Vec<(usize, usize, Kind)> {
    segments(text.as_bytes()).map(|s| (s.first, s.last, s.kind)).collect()
}

#[test]
fn continuations_are_backslash_newline_only() {
    assert_eq!(kinds("a \\\nb\nc\n"), [(1, 2, Kind::Code), (3, 3, Kind::Code)]);
    // A backslash before CR LF escapes the CR: the next line is a command of its own.
    assert_eq!(kinds("a \\\r\nb\n"), [(1, 1, Kind::Code), (2, 2, Kind::Code)]);
    // An escaped backslash does not continue.
    assert_eq!(kinds("a \\\\\nb\n"), [(1, 1, Kind::Code), (2, 2, Kind::Code)]);
}

#[test]
fn heredoc_bodies_and_multi_line_quotes_are_data() {
    let text = "cat <<EOF\nIPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT\nEOF\ncat <<-'X' >f\n\tIPTABLE -A INPUT\n\tX\necho \"a\nIPTABLE -A INPUT\nb\"\nIPTABLE -A INPUT\n";
    assert_eq!(
        kinds(text),
        [
            (1, 1, Kind::Code),
            (2, 2, Kind::Data),
            (3, 3, Kind::Data),
            (4, 4, Kind::Code),
            (5, 5, Kind::Data),
            (6, 6, Kind::Data),
            (7, 9, Kind::Data),
            (10, 10, Kind::Code),
        ]
    );
    // `<<<` is a here-string, not a heredoc; a `#` comment hides a `<<`.
    assert_eq!(kinds("cat <<<x\na\n# <<EOF\nb\n").len(), 4);
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

#[test]
fn segments_is_lazy_and_counts_lines_across_blank_runs() {
    let text = format!("a\n{}b \\\nc\n", "\n".repeat(1000));
    let segs: Vec<_> = segments(text.as_bytes()).filter(|s| s.bytes.len() > 1).collect();
    assert_eq!(segs.len(), 2);
    assert_eq!((segs[1].first, segs[1].last), (1002, 1003));
}
