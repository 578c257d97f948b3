//! Firewall scripts: never panic, every rule line parses again in full with the same key, and
//! every canonical form parses back to itself.
#![no_main]

use iwss_keeper::domain::firewall::{check_restorable, Script};
use iwss_keeper::domain::rule::parse_call;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(script) = Script::parse(data) else {
        return;
    };
    for (i, line) in script.lines.iter().enumerate() {
        let _ = check_restorable(&data[line.bytes()]);
        let Some(key) = line.rule else {
            continue;
        };
        let rule = script.rule(i).expect("a rule line parses again");
        assert_eq!(rule.key(), &key, "line {i}");
        let again = parse_call(rule.canonical(), rule.family)
            .expect("a canonical form parses")
            .expect("a canonical form is a rule");
        assert_eq!(again.canonical(), rule.canonical(), "line {i}");
    }
});
