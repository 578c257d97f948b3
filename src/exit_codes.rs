//! Process exit codes.

/// How a run ended, with the process exit code it ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done, or nothing to do.
    Success = 0,
    /// `diff` found something to restore; `status` found something missing.
    Differs = 1,
    /// Anything failed; the message says what, and nothing was left half-done.
    Error = 2,
    /// A restore failed and its rollback did not complete: changes may be left in place (each
    /// named in the report) and the firewall state is unknown.
    ChangesLeft = 3,
    /// `status` cannot tell: nothing found missing, but part of the state cannot be read (no
    /// iptables to list what is loaded, no running sysctl value).
    Unknown = 4,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        Self::from(c.code() as u8)
    }
}

/// How a run failed: the error, the exit code it ends the run with, and whether a report holding
/// the error was printed already (then `main` writes the message to stderr only). It travels
/// inside an `anyhow::Error`; `main` takes it out once ([`Failure::of`]).
#[derive(Debug)]
pub struct Failure {
    pub code: ExitCode,
    pub reported: bool,
    pub error: anyhow::Error,
}

impl Failure {
    /// A failure that ends the run with `code`, not reported yet.
    pub fn new(code: ExitCode, error: anyhow::Error) -> Self {
        Self {
            code,
            reported: false,
            error,
        }
    }

    /// The same failure, its report (with the error in it) printed already.
    pub fn reported(self) -> Self {
        Self { reported: true, ..self }
    }

    /// The message a person reads: `needs root: ` first when a run without root was refused
    /// access (the error names the file).
    pub fn message(&self) -> String {
        let message = format!("{:#}", self.error);
        // SAFETY: geteuid has no side effects.
        let root = unsafe { libc::geteuid() } == 0;
        let denied = self.error.chain().any(|e| {
            e.downcast_ref::<std::io::Error>().is_some_and(|io| {
                io.kind() == std::io::ErrorKind::PermissionDenied || io.raw_os_error() == Some(libc::EPERM)
            })
        });
        if denied && !root {
            format!("needs root: {message}")
        } else {
            message
        }
    }

    /// What an error ends the run with: the failure it is, else exit 2, not reported yet.
    pub fn of(error: anyhow::Error) -> Self {
        error
            .downcast::<Self>()
            .unwrap_or_else(|error| Self::new(ExitCode::Error, error))
    }
}

/// The error with its causes, as `{:#}` shows an `anyhow::Error`.
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_travels_inside_anyhow_with_its_code_and_text() {
        let inner = anyhow::anyhow!("cannot write").context("restore failed");
        let err: anyhow::Error = Failure::new(ExitCode::ChangesLeft, inner).reported().into();
        assert_eq!(format!("{err:#}"), "restore failed: cannot write");
        let failure = Failure::of(err);
        assert_eq!((failure.code, failure.reported), (ExitCode::ChangesLeft, true));
        assert_eq!(failure.to_string(), "restore failed: cannot write");
        let plain = Failure::of(anyhow::anyhow!("no such snapshot"));
        assert_eq!((plain.code, plain.reported), (ExitCode::Error, false));
    }
}
