//! sysctl files: never panic, read as every procps reads them, and setting a key makes it the
//! effective value on every platform while every byte outside the edited value (or the appended
//! line) stays.
#![no_main]

use iwss_keeper::domain::sysctl::procps::Procps;
use iwss_keeper::domain::sysctl::{effective, parse, set_value, Platform};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "net.ipv4.tcp_rfc1337";

fuzz_target!(|data: &[u8]| {
    for procps in [Procps::V3_3_10, Procps::V3_3_15, Procps::V4] {
        let _ = parse(data, procps);
    }
    let edited = set_value(data, KEY, "0", &Platform::ALL).expect("an appended line reads alike everywhere");
    for platform in Platform::ALL {
        let e = effective(&[("/etc/sysctl.conf", edited.as_slice())], KEY, &[platform]);
        assert_eq!(e.value.as_deref(), Some("0"), "{platform:?}: {:?}", String::from_utf8_lossy(data));
    }
    // What precedes the edit is untouched.
    let common = data.iter().zip(&edited).take_while(|(a, b)| a == b).count();
    assert!(edited.len() >= common && data.len() >= common);
});
