//! Snapshot manifests: never panic, and an accepted manifest has only safe paths.
#![no_main]

use iwss_keeper::domain::snapshot::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data, "fuzz") {
        for f in &m.files {
            assert!(f.path.starts_with('/') && !f.path.split('/').any(|c| c == ".."), "{:?}", f.path);
        }
    }
});
