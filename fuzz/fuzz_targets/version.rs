//! Version strings: never panic, and a parsed version reads back as itself.
#![no_main]

use iwss_keeper::domain::version::{parse_version, parse_version_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_version_file(&text, None);
    if let Ok(v) = parse_version(&text, None) {
        let again = parse_version(&v.to_string(), None).expect("a printed version parses");
        assert_eq!(again, v, "{text:?}");
    }
});
