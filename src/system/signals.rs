//! SIGTERM, SIGINT and SIGHUP in hook mode (an installer's timeout, a closed terminal): the
//! handler only records the signal; the run then starts no new step ([`check`]), lets a running
//! restart finish within `signal_grace_secs` ([`grace_deadline`]) and leaves the pending marker.
//! SIGPIPE stays ignored, as Rust sets it: a write to a closed pipe fails with an error instead.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The signal received, 0 when none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// Seconds a running restart may go on after a signal.
static GRACE_SECS: AtomicU64 = AtomicU64::new(crate::domain::config::DEFAULT_SIGNAL_GRACE_SECS);

extern "C" fn on_signal(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Catches SIGTERM, SIGINT and SIGHUP from now on; a restart running when one comes gets
/// `grace_secs` to finish.
pub fn catch(grace_secs: u64) {
    GRACE_SECS.store(grace_secs, Ordering::SeqCst);
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: installs a handler that only stores to an atomic; the struct is zeroed and
        // then filled as sigaction(2) requires.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The signal received so far, by name.
pub fn received() -> Option<&'static str> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGTERM => Some("SIGTERM"),
        libc::SIGINT => Some("SIGINT"),
        libc::SIGHUP => Some("SIGHUP"),
        _ => Some("a signal"),
    }
}

/// Fails when a signal came: the run starts no new step (`step` names the one not started).
pub fn check(step: &str) -> anyhow::Result<()> {
    match received() {
        Some(signal) => anyhow::bail!("stopped by {signal} before {step}"),
        None => Ok(()),
    }
}

/// The time a program running since `started` may still take once a signal came (`None`: no
/// signal yet): `signal_grace_secs` from when it was first seen.
pub fn grace_deadline(seen: &mut Option<Instant>) -> Option<Instant> {
    received()?;
    let at = *seen.get_or_insert_with(Instant::now);
    Some(at + Duration::from_secs(GRACE_SECS.load(Ordering::SeqCst)))
}
