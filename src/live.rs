//! The running system: restarting the firewall, asking iptables what is loaded, and reading and
//! writing running sysctl values. Every program and `/proc` path resolves under the root.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::root::Root;
use crate::rule::{Family, Rule};
use crate::runtime::Runtime;
use crate::sysctl;
use crate::version::Version;

/// Where the tool looks for iptables and ip6tables under the root.
const IPTABLES: [&str; 2] = ["/usr/sbin/iptables", "/sbin/iptables"];
const IP6TABLES: [&str; 2] = ["/usr/sbin/ip6tables", "/sbin/ip6tables"];

/// The firewall restart the article gives for a version: `/usr/iwss/iwsvafw.sh restart` on IWSVA
/// 6.5 SP3 before SP3 Patch 1 (build 3312), `/etc/init.d/iptables restart` otherwise.
pub fn restart_command(version: &Version, firewall_script: &str) -> (String, Vec<String>) {
    if version.is_iwsva_sp3_before_patch1() {
        (firewall_script.to_string(), vec!["restart".into()])
    } else {
        ("/etc/init.d/iptables".to_string(), vec!["restart".into()])
    }
}

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
    let path = root.path(program);
    let command = std::iter::once(program.to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(&path)
        .args(args)
        .env("PATH", root.search_path())
        .env("IWSS_KEEPER_ROOT", root.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {}", path.display()))?;
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

fn iptables_for(root: &Root, family: Family) -> Option<String> {
    let candidates = match family {
        Family::V4 => IPTABLES,
        Family::V6 => IP6TABLES,
    };
    candidates.iter().find(|c| root.path(c).exists()).map(|c| c.to_string())
}

/// Whether a rule is loaded, per family it reaches.
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    pub rule: String,
    pub family: Family,
    /// `None`: could not be asked (no iptables under the root, or it failed).
    pub loaded: Option<bool>,
    pub detail: String,
}

/// Asks iptables itself (`iptables -w -C ...`) whether `rule` is loaded, in every family it reaches.
pub fn check_loaded(root: &Root, rule: &Rule) -> Vec<Loaded> {
    rule.families()
        .iter()
        .map(|&family| {
            let canonical = rule.canonical().to_string();
            let Some(prog) = iptables_for(root, family) else {
                return Loaded {
                    rule: canonical,
                    family,
                    loaded: None,
                    detail: format!(
                        "no {} under the root",
                        if family == Family::V4 { "iptables" } else { "ip6tables" }
                    ),
                };
            };
            let args = rule.check_args();
            match run(root, &prog, &args, Duration::from_secs(30)) {
                Ok(r) if r.code == Some(0) => Loaded {
                    rule: canonical,
                    family,
                    loaded: Some(true),
                    detail: "loaded".into(),
                },
                Ok(r) if r.code == Some(1) => Loaded {
                    rule: canonical,
                    family,
                    loaded: Some(false),
                    detail: "not loaded".into(),
                },
                Ok(r) => Loaded {
                    rule: canonical,
                    family,
                    loaded: None,
                    detail: format!("{}: {}", r.summary(), r.output.trim()),
                },
                Err(e) => Loaded {
                    rule: canonical,
                    family,
                    loaded: None,
                    detail: format!("{e:#}"),
                },
            }
        })
        .collect()
}

/// `iptables -S` (or ip6tables) output, when the program is under the root and answers.
pub fn list_rules(root: &Root, family: Family) -> Option<String> {
    let prog = iptables_for(root, family)?;
    let r = run(root, &prog, &["-w".into(), "-S".into()], Duration::from_secs(30)).ok()?;
    r.ok().then_some(r.output)
}

fn proc_path(root: &Root, key: &str) -> std::path::PathBuf {
    root.path(&format!("/proc/sys/{}", sysctl::canonical_key(key)))
}

/// The running value of a sysctl key, from `ROOT/proc/sys`.
pub fn read_sysctl(root: &Root, key: &str) -> Option<String> {
    std::fs::read_to_string(proc_path(root, key))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Writes a running sysctl value and reads it back.
pub fn write_sysctl(root: &Root, key: &str, value: &str) -> Result<String> {
    let path = proc_path(root, key);
    if !Path::new(&path).exists() {
        anyhow::bail!("{} does not exist", path.display());
    }
    std::fs::write(&path, format!("{value}\n")).with_context(|| format!("cannot write {}", path.display()))?;
    read_sysctl(root, key).with_context(|| format!("cannot read back {}", path.display()))
}

/// What is live now, as far as it can be read.
pub fn capture_runtime(root: &Root, managed: &[String]) -> Runtime {
    Runtime {
        iptables: list_rules(root, Family::V4),
        ip6tables: list_rules(root, Family::V6),
        sysctl: managed
            .iter()
            .filter_map(|k| read_sysctl(root, k).map(|v| (sysctl::display_key(&sysctl::canonical_key(k)), v)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::parse_version;

    #[test]
    fn restart_command_follows_the_article() {
        let v = |s| parse_version(s, None).unwrap();
        let script = "/usr/iwss/iwsvafw.sh";
        assert_eq!(restart_command(&v("IWSVA 6.5-SP3_Build_Linux_1916"), script).0, script);
        assert_eq!(
            restart_command(&v("IWSVA 6.5-SP3_Build_Linux_3312"), script).0,
            "/etc/init.d/iptables"
        );
        assert_eq!(
            restart_command(&v("IWSVA 6.5-SP2_Build_Linux_1548"), script).0,
            "/etc/init.d/iptables"
        );
    }

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
