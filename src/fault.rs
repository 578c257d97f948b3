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
