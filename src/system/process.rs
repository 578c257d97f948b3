//! Running the root's own programs: captured output, a timeout that kills the whole process
//! group, and `bash -n` on a script's new text.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    /// stdout and stderr, captured.
    pub output: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// One line saying how it ended.
    pub fn summary(&self) -> String {
        match (self.timed_out, self.code) {
            (true, _) => format!("`{}` timed out and was stopped", self.command),
            (false, Some(c)) => format!("`{}` exited {c}", self.command),
            (false, None) => format!("`{}` was killed by a signal", self.command),
        }
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Runs `program` (an appliance path, resolved under the root) with no stdin, its output
/// captured, in its own process group that is killed whole when `timeout` passes.
pub fn run(root: &Root, program: &str, args: &[String], timeout: Duration) -> Result<Ran> {
    run_with_input(root, program, args, None, timeout)
}

/// Like [`run`], with `input` written to the program's stdin (then closed).
pub fn run_with_input(
    root: &Root,
    program: &str,
    args: &[String],
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<Ran> {
    let path = root.path(program);
    let command = std::iter::once(program.to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(&path)
        .args(args)
        .env("PATH", root.search_path())
        .env("IWSS_KEEPER_ROOT", root.dir())
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {}", path.display()))?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        let bytes = bytes.to_vec();
        // A program that exits early closes the pipe; its status says what happened.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let out = drain(child.stdout.take().expect("piped"));
    let err = drain(child.stderr.take().expect("piped"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            // SAFETY: kill() on our own child's process group; no memory is shared.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    output.push_str(&String::from_utf8_lossy(&err.join().unwrap_or_default()));
    for line in output.lines() {
        log::info!("{command}: {line}");
    }
    Ok(Ran {
        command,
        code: status.code(),
        timed_out,
        output,
    })
}

/// Runs `bash -n` (the root's own bash) on a script's new text.
pub fn check_syntax(root: &Root, bytes: &[u8]) -> Result<()> {
    let bash = root
        .program(&BASH)
        .with_context(|| format!("cannot check the script: no bash under {}", root.dir().display()))?;
    let mut child = Command::new(&bash)
        .arg("-n")
        .env("PATH", root.search_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", bash.display()))?;
    // bash -n reads the whole script before it exits; a write error shows in its status.
    let _ = child.stdin.take().expect("piped").write_all(bytes);
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "bash -n rejects the new script: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
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
