//! Log records: to stderr at the level `-v` / `-q` choose, and, for runs that change anything, to
//! `ROOT/var/log/iwss-keeper.log` and (on the real root) syslog at info level.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Text safe for a terminal and a log line: control characters other than newline and tab are
/// shown as `\xNN` (a CR or an escape sequence in a rule never reaches a terminal raw), and
/// invisible Unicode format characters (a right-to-left override) as `\u{...}`, so a line never
/// displays otherwise than what it holds. JSON keeps the exact text.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| (c.is_control() && c != '\n' && c != '\t') || invisible_format(c);
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if invisible_format(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else if hidden(c) {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Unicode format characters that change how a line displays without showing themselves: bidi
/// embeddings, overrides, isolates and marks, zero-width characters, the byte order mark.
fn invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// Sinks attached once the root is known.
struct Sinks {
    file: Option<File>,
    syslog: bool,
}

static SINKS: Mutex<Sinks> = Mutex::new(Sinks {
    file: None,
    syslog: false,
});

struct Logger {
    stderr: LevelFilter,
}

fn tag(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.stderr.max(LevelFilter::Info)
    }

    fn log(&self, record: &Record) {
        let level = record.level();
        let message = record.args().to_string();
        let message = printable(&message);
        if level <= self.stderr {
            // A closed stderr must not stop the run.
            let _ = writeln!(std::io::stderr(), "iwss-keeper: {}: {message}", tag(level));
        }
        if level <= LevelFilter::Info {
            to_sinks(level, &message);
        }
    }

    fn flush(&self) {
        if let Ok(mut sinks) = SINKS.lock() {
            if let Some(f) = sinks.file.as_mut() {
                let _ = f.flush();
            }
        }
    }
}

/// Writes a record (info and above, made printable) to the log file and syslog, where attached.
fn to_sinks(level: Level, message: &str) {
    let Ok(mut sinks) = SINKS.lock() else {
        return;
    };
    if let Some(file) = sinks.file.as_mut() {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let _ = writeln!(file, "{now} [{}] {}: {message}", std::process::id(), tag(level));
    }
    if sinks.syslog {
        let priority = match level {
            Level::Error => libc::LOG_ERR,
            Level::Warn => libc::LOG_WARNING,
            _ => libc::LOG_INFO,
        };
        if let Ok(msg) = CString::new(message.replace('\0', " ")) {
            // SAFETY: a constant format string and a NUL-terminated argument.
            unsafe { libc::syslog(priority, c"%s".as_ptr(), msg.as_ptr()) };
        }
    }
}

/// Records a final error in the log file and syslog (stderr gets it from `main`).
pub fn record_error(message: &str) {
    to_sinks(Level::Error, &printable(message));
}

/// The stderr level for `-q` / `-v` counts.
pub fn level(quiet: bool, verbose: u8) -> LevelFilter {
    match (quiet, verbose) {
        (true, _) => LevelFilter::Error,
        (false, 0) => LevelFilter::Warn,
        (false, 1) => LevelFilter::Info,
        _ => LevelFilter::Debug,
    }
}

/// Installs the logger once; later calls keep the first.
pub fn init(stderr: LevelFilter) {
    if log::set_boxed_logger(Box::new(Logger { stderr })).is_ok() {
        log::set_max_level(stderr.max(LevelFilter::Info));
    }
}

/// Appends info and above to `path` (created 0600, parents too).
pub fn attach_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        // At most 0755 whatever the umask (which can only take bits away).
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o755).create(dir)?;
    }
    // Never through a link, never into anything but a regular file.
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if let Ok(mut s) = SINKS.lock() {
        s.file = Some(file);
    }
    Ok(())
}

/// Sends info and above to syslog (facility user, tag `iwss-keeper`).
pub fn attach_syslog() {
    // SAFETY: openlog keeps the pointer; the identifier is a 'static C string.
    unsafe { libc::openlog(c"iwss-keeper".as_ptr(), libc::LOG_PID, libc::LOG_USER) };
    if let Ok(mut s) = SINKS.lock() {
        s.syslog = true;
    }
}
