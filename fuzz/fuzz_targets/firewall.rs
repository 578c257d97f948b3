//! Firewall scripts: never panic; a one-command line reads as it reads alone; every rule line
//! parses again in full with the same key; every canonical form parses back to itself; and a code
//! line the restorable grammar accepts is a rule whose shell words give exactly the rule the
//! model read.
#![no_main]

use iwss_keeper::domain::firewall::{check_restorable, Script};
use iwss_keeper::domain::rule::parse_dump_line;
use iwss_keeper::domain::shell;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let script = Script::parse(data);
    for (i, line) in script.lines.iter().enumerate() {
        let raw = &data[line.bytes()];
        // A heredoc body may hold restorable-looking text: it is data, and never restored (the
        // plan restores rule lines only and reads the written script back); after a construct
        // the reader does not model, no line is understood.
        if !line.data && script.stopped.is_none() && check_restorable(raw, script.iptables).is_ok() {
            let key = line.rule.expect("a restorable line adds a rule");
            let words = shell::words(raw.strip_suffix(b"\n").unwrap_or(raw)).expect("restorable words split");
            let text = words.words[1..].join(" ");
            let again = script.rule(i).expect("a restorable rule reads again");
            assert_eq!(again.key(), &key, "line {i}: {text}");
        }
        // A line that is one simple command reads in the script as it reads alone: the program's
        // reading of a call is the reading `Script::rule` and the restorable check repeat.
        let body = raw.strip_suffix(b"\n").unwrap_or(raw);
        if !line.data && script.stopped.is_none() && !body.ends_with(b"\r") && shell::words(body).is_ok() {
            let alone = Script::parse_as(raw, script.iptables);
            if let Some(first) = alone.lines.first().filter(|_| alone.stopped.is_none()) {
                assert_eq!((&first.rule, &first.unknown), (&line.rule, &line.unknown), "line {i}");
            }
        }
        let Some(key) = line.rule else {
            continue;
        };
        let rule = script.rule(i).expect("a rule line parses again");
        assert_eq!(rule.key(), &key, "line {i}");
        let again = parse_dump_line(rule.canonical(), rule.family)
            .expect("a canonical form parses")
            .expect("a canonical form is a rule");
        assert_eq!(again.canonical(), rule.canonical(), "line {i}");
    }
});
