//! Running the root's own programs: captured output, a timeout that kills the whole process
//! group, and `bash -n` on a script's new text.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::system::fsutil::{self, Staged};
use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::root::Root;

/// Shells the firewall script may be checked with, under the root.
const BASH: [&str; 2] = ["/bin/bash", "/usr/bin/bash"];

/// How a command the tool ran ended.
#[derive(Debug, Clone, Serialize)]
pub struct Ran {
    /// The command line, as appliance paths.
    pub command: String,
    /// Exit code; `None` when killed or timed out.
    pub code: Option<i32>,
    pub timed_out: bool,
    /// The signal whose grace period ended it, when that (not its timeout) stopped it.
    #[serde(skip)]
    pub stopped_by: Option<&'static str>,
    /// stdout and stderr, captured.
    pub output: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// One line saying how it ended.
    pub fn summary(&self) -> String {
        match (self.timed_out, self.code, self.stopped_by) {
            (true, _, Some(signal)) => format!(
                "`{}` was stopped: {signal} came and it did not finish within signal_grace_secs",
                self.command
            ),
            (true, _, None) => format!("`{}` timed out and was stopped", self.command),
            (false, Some(c), _) => format!("`{}` exited {c}", self.command),
            (false, None, _) => format!("`{}` was killed by a signal", self.command),
        }
    }
}

/// The whole run's deadline (hook mode sets it); no child outlives it.
static DEADLINE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Sets the deadline every program the run starts must finish by (once; later calls keep it).
pub fn set_deadline(at: Instant) {
    let _ = DEADLINE.set(at);
}

/// The session ids of the children running now, so a run stopped at its deadline can kill them.
static RUNNING: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Kills every process in the session `sid`: the child, its process groups, and anything it
/// started that stayed in its session. (A daemon that made a session of its own is not ours.)
fn kill_session(sid: i32) {
    // SAFETY: kill() on a process group we created; no memory is shared.
    unsafe {
        libc::kill(-sid, libc::SIGKILL);
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: getsid only reads the session id of a pid.
        if unsafe { libc::getsid(pid) } == sid {
            // SAFETY: as above, a process of the session this run created.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Kills the sessions of every child still running (the run's deadline passed).
pub fn kill_running() {
    if let Ok(list) = RUNNING.lock() {
        for sid in list.iter() {
            kill_session(*sid);
        }
    }
}

/// A pipe read to its end on a thread of its own.
struct Drained {
    buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Told when the pipe ended.
    ended: std::sync::mpsc::Receiver<()>,
}

impl Drained {
    /// What was read so far.
    fn text(&self) -> String {
        let bytes = self.buf.lock().map(|v| v.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Reads a pipe to its end into a shared buffer.
fn drain(mut r: impl Read + Send + 'static) -> Drained {
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (done, ended) = std::sync::mpsc::channel();
    let sink = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut b) = sink.lock() {
                        // A bound: a program flooding its output cannot exhaust memory.
                        if b.len() < 1 << 20 {
                            b.extend_from_slice(&chunk[..n]);
                        }
                    }
                }
            }
        }
        let _ = done.send(());
    });
    Drained { buf, ended }
}

/// Refuses, when the tool runs as root, a program others could replace: it, and every directory
/// above it, must be owned by root (or the running user) and not writable by others.
fn check_runnable(path: &std::path::Path) -> Result<()> {
    fsutil::check_trusted_if_root(path, &format!("refusing to run {}", path.display()))
}

/// Runs `program` (an appliance path, resolved under the root) with no stdin, its output
/// captured, in a session of its own that is killed whole when `timeout` (or the run's deadline)
/// passes.
pub fn run(root: &Root, program: &str, args: &[String], timeout: Duration) -> Result<Ran> {
    run_with_input(root, program, args, None, timeout)
}

/// How long output is still read after the program exited: a daemon it started may hold the
/// pipes open for good.
const AFTER_EXIT: Duration = Duration::from_secs(2);

/// Like [`run`], with `input` written to the program's stdin (then closed).
pub fn run_with_input(
    root: &Root,
    program: &str,
    args: &[String],
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<Ran> {
    let path = std::path::absolute(root.path(program)).with_context(|| format!("cannot resolve {program}"))?;
    let command = std::iter::once(program.to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    check_runnable(&path)?;
    let mut child = command_for(root, &path, args, input.is_some())
        .spawn()
        .with_context(|| format!("cannot run {}", path.display()))?;
    let sid = child.id() as i32;
    if let Ok(mut list) = RUNNING.lock() {
        list.push(sid);
    }
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        let bytes = bytes.to_vec();
        // A program that exits early closes the pipe; its status says what happened.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let out = drain(child.stdout.take().expect("piped"));
    let err = drain(child.stderr.take().expect("piped"));
    let deadline = deadline_after(timeout);
    let (status, timed_out, stopped_by) = wait_until(&mut child, sid, deadline)?;
    // Reaped: its ids may be reused from now on, so it is no longer ours to kill.
    if let Ok(mut list) = RUNNING.lock() {
        list.retain(|s| *s != sid);
    }
    Ok(Ran {
        code: status.code(),
        timed_out,
        stopped_by,
        output: output_of(&command, &out, &err, deadline),
        command,
    })
}

/// A command for the root's program `path`: nothing of the caller's environment reaches it (no
/// exported shell functions, no IPT=...): the root's PATH, the C locale, `/` as working
/// directory, stderr captured.
fn clean_command(root: &Root, path: &std::path::Path) -> Command {
    let mut cmd = Command::new(path);
    cmd.env_clear()
        .env("PATH", root.search_path())
        .env("LANG", "C")
        .current_dir("/")
        .stderr(Stdio::piped());
    cmd
}

/// The command for `path` ([`clean_command`]), with the root in `IWSS_KEEPER_ROOT`, all output
/// captured, in a session of its own.
fn command_for(root: &Root, path: &std::path::Path, args: &[String], piped_input: bool) -> Command {
    let mut cmd = clean_command(root, path);
    cmd.args(args)
        .env(
            "IWSS_KEEPER_ROOT",
            std::path::absolute(root.dir()).unwrap_or_else(|_| root.dir().to_path_buf()),
        )
        .stdin(if piped_input { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped());
    // SAFETY: setsid() is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// `timeout` from now, or the run's deadline when that comes first.
fn deadline_after(timeout: Duration) -> Instant {
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
    DEADLINE
        .get()
        .map_or(deadline, |run_deadline| deadline.min(*run_deadline))
}

/// Waits for the child until `deadline`, then kills its session: how it ended, and whether it
/// timed out.
/// A signal in hook mode gives the child `signal_grace_secs` more at most.
fn wait_until(
    child: &mut std::process::Child,
    sid: i32,
    deadline: Instant,
) -> Result<(ExitStatus, bool, Option<&'static str>)> {
    let mut signal_seen = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false, None));
        }
        let grace = super::signals::grace_deadline(&mut signal_seen);
        let now = Instant::now();
        if now >= grace.map_or(deadline, |g| g.min(deadline)) {
            kill_session(sid);
            let by_signal = grace
                .filter(|g| now >= *g && *g < deadline)
                .and(super::signals::received());
            return Ok((child.wait()?, true, by_signal));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// stdout then stderr, read until both pipes end, but never past the deadline, nor long after
/// the program exited: whatever still holds them is not waited for.
fn output_of(command: &str, out: &Drained, err: &Drained, deadline: Instant) -> String {
    let until = deadline.min(Instant::now() + AFTER_EXIT);
    let mut held = false;
    for ended in [&out.ended, &err.ended] {
        let left = until.saturating_duration_since(Instant::now());
        if ended.recv_timeout(left).is_err() {
            held = true;
        }
    }
    let mut output = out.text();
    output.push_str(&err.text());
    if held {
        output.push_str("(a process it started still holds its output; not waited for)\n");
        log::warn!("`{command}`: a process it started still holds its output; not waited for");
    }
    for line in output.lines() {
        log::debug!("{command}: {line}");
    }
    output
}

/// Runs `bash -n` (the root's own bash) on a script's new text. bash reads the text from a file
/// (a private temp file in `dir`, removed afterwards): fed through a pipe, bash reads it one byte
/// per system call.
pub fn check_syntax(root: &Root, dir: &std::path::Path, bytes: &[u8]) -> Result<()> {
    start_syntax_check(root, dir, bytes)?.finish().map(drop)
}

/// A `bash -n` running on a file holding the new script: started as soon as the script is
/// known, so bash reads it while the rest of the run goes on; [`SyntaxCheck::finish`] takes its
/// answer. Dropped unfinished, the check is stopped.
pub struct SyntaxCheck {
    /// Both `Some` until [`SyntaxCheck::finish`] takes them (or the check is dropped).
    child: Option<std::process::Child>,
    file: Option<Checked>,
    bash: std::path::PathBuf,
    /// The file's absolute path, as bash names it in its messages.
    path: std::path::PathBuf,
}

/// The file bash reads: a temp copy, or the new content staged beside the script it replaces
/// (then the file checked is the very file renamed into place).
enum Checked {
    Copy(tempfile::NamedTempFile),
    Staged(Staged),
}

impl Checked {
    fn path(&self) -> &std::path::Path {
        match self {
            Checked::Copy(temp) => temp.path(),
            Checked::Staged(staged) => staged.temp_path(),
        }
    }
}

/// Starts [`check_syntax`] on `bytes`, written to a temp file in `dir`.
pub fn start_syntax_check(root: &Root, dir: &std::path::Path, bytes: &[u8]) -> Result<SyntaxCheck> {
    let bash = checking_bash(root)?;
    let dir = &std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    let temp = tempfile::Builder::new()
        .prefix(".iwss-keeper-check.")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    std::fs::write(temp.path(), bytes).with_context(|| format!("cannot write {}", temp.path().display()))?;
    spawn_check(root, bash, Checked::Copy(temp))
}

/// Starts `bash -n` on new content already staged beside the script it replaces
/// ([`crate::system::fsutil::stage_write`]); [`SyntaxCheck::finish`] hands it back to commit.
pub fn start_syntax_check_of(root: &Root, staged: Staged) -> Result<SyntaxCheck> {
    let bash = checking_bash(root)?;
    let mut check = spawn_check(root, bash, Checked::Staged(staged))?;
    // The file goes to disk while bash reads it (from the page cache).
    if let Some(Checked::Staged(staged)) = check.file.as_mut() {
        staged.sync()?;
    }
    Ok(check)
}

/// The root's bash, as an absolute path (bash runs from `/`).
fn checking_bash(root: &Root) -> Result<std::path::PathBuf> {
    let bash = root
        .program(&BASH)
        .with_context(|| format!("cannot check the script: no bash under {}", root.dir().display()))?;
    let bash = std::path::absolute(&bash).with_context(|| format!("cannot resolve {}", bash.display()))?;
    check_runnable(&bash)?;
    Ok(bash)
}

fn spawn_check(root: &Root, bash: std::path::PathBuf, file: Checked) -> Result<SyntaxCheck> {
    let path = std::path::absolute(file.path()).with_context(|| format!("cannot resolve {}", file.path().display()))?;
    let child = clean_command(root, &bash)
        .arg("-n")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", bash.display()))?;
    Ok(SyntaxCheck {
        child: Some(child),
        file: Some(file),
        bash,
        path,
    })
}

impl SyntaxCheck {
    /// Waits for bash: when it accepts the script, the staged file it checked (`None` for a
    /// temp copy, which is removed); else what bash said.
    pub fn finish(mut self) -> Result<Option<Staged>> {
        let child = self.child.take().expect("finish takes the check once");
        let out = child
            .wait_with_output()
            .with_context(|| format!("cannot run {}", self.bash.display()))?;
        if !out.status.success() {
            bail!(
                "bash -n rejects the new script: {}",
                String::from_utf8_lossy(&out.stderr)
                    .replace(&format!("{}: ", self.path.display()), "")
                    .trim()
            );
        }
        Ok(match self.file.take().expect("finish takes the check once") {
            Checked::Copy(_) => None,
            Checked::Staged(staged) => Some(staged),
        })
    }
}

impl Drop for SyntaxCheck {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether the root has a bash to check scripts with.
pub fn can_check_syntax(root: &Root) -> bool {
    root.program(&BASH).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_captures_output_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink("/bin/sh", dir.path().join("bin/sh")).unwrap();
        let ok = run(
            &root,
            "/bin/sh",
            &["-c".into(), "echo hi; echo err >&2; exit 3".into()],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!((ok.code, ok.output.as_str()), (Some(3), "hi\nerr\n"));
        let slow = run(
            &root,
            "/bin/sh",
            &["-c".into(), "(while :; do :; done) & while :; do :; done".into()],
            Duration::from_millis(200),
        )
        .unwrap();
        assert!(slow.timed_out && !slow.ok());
    }
}
