//! Process exit codes.

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done, or nothing to do.
    Success,
    /// `diff` found something to restore; `status` found something missing.
    Differs,
    /// Anything failed; the message says what, and nothing was left half-done.
    Error,
    /// A restore failed and its rollback did not complete: changes may be left in place (each
    /// named in the report) and the firewall state is unknown.
    ChangesLeft,
    /// `status` cannot tell: nothing found missing, but part of the state cannot be read (no
    /// iptables to list what is loaded, no running sysctl value).
    Unknown,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            Self::Success => 0,
            Self::Differs => 1,
            Self::Error => 2,
            Self::ChangesLeft => 3,
            Self::Unknown => 4,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        Self::from(c.code() as u8)
    }
}

/// An error after which changes are left in place; the message names every such file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChangesLeft(pub String);
