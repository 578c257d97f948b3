//! Fault points for crash tests. In debug builds, `IWSS_KEEPER_FAULT=NAME` aborts the process
//! (no unwinding, no cleanup, as a power cut or `kill -9` would) when it reaches the point NAME.
//! Release builds compile the check out entirely.

/// Every fault point, in the order a restore or snapshot reaches them.
pub const POINTS: [&str; 9] = [
    "apply-after-backup",
    "write-after-temp",
    "write-before-rename",
    "write-after-rename",
    "restart-before",
    "restart-after",
    "snapshot-after-files",
    "snapshot-before-rename",
    "snapshot-after-rename",
];

/// Points where a test may hold the run (debug builds only): `IWSS_KEEPER_PAUSE=NAME` and
/// `IWSS_KEEPER_PAUSE_FILE=PATH` make the run create PATH at NAME and wait (at most 10 s) until
/// the test removes it, having changed the world meanwhile (a file swapped after it was opened).
pub const PAUSES: [&str; 1] = ["config-opened"];

/// Holds the run here while the test says so (debug builds only).
#[inline(always)]
pub fn pause(name: &'static str) {
    #[cfg(debug_assertions)]
    {
        debug_assert!(PAUSES.contains(&name), "unknown pause point {name}");
        let (Some(at), Some(file)) = (
            std::env::var_os("IWSS_KEEPER_PAUSE"),
            std::env::var_os("IWSS_KEEPER_PAUSE_FILE"),
        ) else {
            return;
        };
        if at != name {
            return;
        }
        let file = std::path::PathBuf::from(file);
        if std::fs::write(&file, name).is_err() {
            return;
        }
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while file.exists() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// Aborts here if this is the point the environment names (debug builds only).
#[inline(always)]
pub fn point(name: &'static str) {
    #[cfg(debug_assertions)]
    {
        debug_assert!(POINTS.contains(&name), "unknown fault point {name}");
        if std::env::var_os("IWSS_KEEPER_FAULT").is_some_and(|v| v == name) {
            eprintln!("iwss-keeper: fault point {name}: aborting");
            std::process::abort();
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
