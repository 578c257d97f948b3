//! sysctl files: never panic, and setting a key makes it the effective value while every byte
//! outside the edited value (or the appended line) stays.
#![no_main]

use iwss_keeper::domain::sysctl::{effective, parse, set_value};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "net.ipv4.tcp_rfc1337";

fuzz_target!(|data: &[u8]| {
    let _ = parse(data);
    let edited = set_value(data, KEY, "0");
    let e = effective([("/etc/sysctl.conf", edited.as_slice())], KEY);
    assert_eq!(e.value.as_deref(), Some("0"), "{:?}", String::from_utf8_lossy(data));
    // What precedes the edit is untouched.
    let common = data.iter().zip(&edited).take_while(|(a, b)| a == b).count();
    assert!(edited.len() >= common && data.len() >= common);
});
