//! The one test environment: a temporary root built from a fixture tree, the real binary run
//! against it, and golden-file comparison with temporary paths replaced by fixed tokens.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use regex::Regex;

/// The repository's `testdata/`.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// A scratch root and state directory.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub state: PathBuf,
}

/// Copies a tree, keeping file modes; symlinks are copied as symlinks.
pub fn copy_tree(src: &Path, dest: &Path) {
    for entry in walkdir::WalkDir::new(src).min_depth(1) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(src).unwrap();
        let to = dest.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            fs::create_dir_all(&to).unwrap();
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &to).unwrap();
        } else {
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

impl TestEnv {
    /// An empty root with the host's bash linked in (the tool runs `bash -n` from the root).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let state = dir.path().join("state");
        fs::create_dir_all(root.join("bin")).unwrap();
        std::os::unix::fs::symlink("/bin/bash", root.join("bin/bash")).unwrap();
        Self { dir, root, state }
    }

    /// A root holding a copy of `tree`.
    pub fn from_tree(tree: &Path) -> Self {
        let env = Self::new();
        copy_tree(tree, &env.root);
        env
    }

    /// Writes the root's configuration file (`ROOT/etc/iwss-keeper/config.toml`).
    pub fn write_config(&self, toml: &str) {
        let dir = self.root.join("etc/iwss-keeper");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("config.toml"), toml).unwrap();
    }

    /// The tool's log file under the root.
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("var/log/iwss-keeper.log")).unwrap_or_default()
    }

    /// The real binary, pointed at this root and state directory.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("iwss-keeper").unwrap();
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("--root")
            .arg(&self.root)
            .arg("--state-dir")
            .arg(&self.state);
        cmd
    }

    /// The binary as a plain `std` command on this root and state directory.
    pub fn cmd_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("iwss-keeper"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("--root")
            .arg(&self.root)
            .arg("--state-dir")
            .arg(&self.state);
        cmd
    }

    /// Runs the binary on this root and state directory.
    pub fn keeper(&self, args: &[&str]) -> Run {
        Run::of(self.cmd_std().args(args))
    }

    /// Runs the binary and returns `stdout`, `stderr` and the exit code as one normalised text.
    pub fn run(&self, args: &[&str]) -> (String, i32) {
        let out = self.cmd().args(args).output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.is_empty() {
            text.push_str("--- stderr\n");
            text.push_str(&err);
        }
        text.push_str(&format!("--- exit {code}\n"));
        (self.normalize(&text), code)
    }

    /// Replaces temporary paths, backup stamps and times with fixed tokens.
    pub fn normalize(&self, text: &str) -> String {
        let text = text
            .replace(&self.root.display().to_string(), "[ROOT]")
            .replace(&self.state.display().to_string(), "[STATE]")
            .replace(&testdata().display().to_string(), "testdata");
        let stamp = Regex::new(r"\.org\.\d{8}T\d{6}Z").unwrap();
        let id = Regex::new(r"\b\d{8}T\d{6}Z-[0-9a-f]{6}\b").unwrap();
        let time = Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z").unwrap();
        let text = stamp.replace_all(&text, ".org.[STAMP]");
        let text = id.replace_all(&text, "[ID]");
        time.replace_all(&text, "[TIME]").into_owned()
    }

    /// Every regular file under the root with its bytes and mode, for "nothing changed" checks;
    /// the tool's own log (`var/log/`) and state (`var/lib/iwss-keeper/`) are left out.
    pub fn files(&self) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
        walkdir::WalkDir::new(&self.root)
            .into_iter()
            .map(Result::unwrap)
            .filter(|e| {
                e.file_type().is_file()
                    && !e.path().starts_with(self.root.join("var/log"))
                    && !e.path().starts_with(self.root.join("var/lib/iwss-keeper"))
            })
            .map(|e| {
                let mode = e.metadata().unwrap().permissions().mode();
                (
                    e.path().strip_prefix(&self.root).unwrap().to_path_buf(),
                    (fs::read(e.path()).unwrap(), mode),
                )
            })
            .collect()
    }
}

/// Compares `actual` with the golden file; `IWSS_KEEPER_BLESS=1` rewrites the golden file.
pub fn assert_golden(golden: &Path, actual: &str) {
    if std::env::var_os("IWSS_KEEPER_BLESS").is_some() {
        fs::create_dir_all(golden.parent().unwrap()).unwrap();
        fs::write(golden, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(golden)
        .unwrap_or_else(|e| panic!("{}: {e} (run with IWSS_KEEPER_BLESS=1 to create it)", golden.display()));
    assert!(
        expected == actual,
        "{} differs from the output:\n--- expected\n{expected}\n--- actual\n{actual}",
        golden.display()
    );
}

/// Whether a test can run here: `why_not` is `None` when it can. When it cannot, says so loudly;
/// with `CI=true` that is a failure, not a skip.
pub fn require(test: &str, why_not: Option<String>) -> bool {
    match why_not {
        None => true,
        Some(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: cannot run under CI=true: {why}");
            }
            // Written to the stderr handle, not through eprintln!, which the test harness
            // captures and hides for passing tests.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {why} (set CI=true to make this a failure)"
            );
            false
        }
    }
}

/// Whether tests that need root, network namespaces and iptables can run here.
pub fn require_netns(test: &str) -> bool {
    let why = if euid() != 0 {
        Some("not running as root".to_string())
    } else if !Path::new("/usr/sbin/iptables").exists() {
        Some("no /usr/sbin/iptables (apt-get install iptables)".to_string())
    } else {
        match std::process::Command::new("unshare").args(["-n", "true"]).status() {
            Ok(s) if s.success() => None,
            Ok(s) => Some(format!("unshare -n failed ({s})")),
            Err(e) => Some(format!("cannot run unshare: {e}")),
        }
    };
    require(test, why)
}

/// Whether a program is on `PATH`.
pub fn have(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    euid() == 0
}

/// What `scripts/release.sh` built: the glibc 2.17 binary and the RPM of this version.
pub struct Release {
    pub binary: PathBuf,
    pub rpm: PathBuf,
}

impl Release {
    /// Runs the release binary on a root.
    pub fn keeper(&self, root: &Path, args: &[&str]) -> std::process::Output {
        std::process::Command::new(&self.binary)
            .arg("--root")
            .arg(root)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()))
    }
}

/// The release artifacts under `target/artifacts/`, if `scripts/release.sh` built them for this
/// version (a build of another version is stale and does not count).
pub fn release(test: &str) -> Option<Release> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
    let version = env!("CARGO_PKG_VERSION");
    let found = Release {
        binary: dir.join(format!("iwss-keeper-{version}-x86_64-linux-gnu")),
        rpm: dir.join(format!("iwss-keeper-{version}-1.x86_64.rpm")),
    };
    let why = [&found.binary, &found.rpm]
        .iter()
        .find(|p| !p.is_file())
        .map(|p| format!("no {} (run scripts/release.sh first)", p.display()));
    require(test, why).then_some(found)
}

/// Copies what `programs` need to run inside `root` under chroot (as RPM scriptlets do): each
/// program's shared libraries, as `ldd` finds them, at the same paths, and the host's `/bin/sh`.
pub fn add_runtime(root: &Path, programs: &[&Path]) {
    let mut files = vec![PathBuf::from("/bin/sh")];
    for program in programs.iter().copied().chain([Path::new("/bin/sh")]) {
        let out = std::process::Command::new("ldd").arg(program).output().unwrap();
        assert!(out.status.success(), "ldd {}: {:?}", program.display(), out);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
            let path = line.split("=> ").last().unwrap().split(" (").next().unwrap().trim();
            if path.starts_with('/') {
                files.push(PathBuf::from(path));
            }
        }
    }
    for file in files {
        let to = root.join(file.strip_prefix("/").unwrap());
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        if !to.exists() {
            fs::copy(&file, &to).unwrap_or_else(|e| panic!("copy {}: {e}", file.display()));
        }
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

impl TestEnv {
    /// Makes the root runnable for live tests: the real iptables, ip6tables and `/proc`, and the
    /// reconstructed `/etc/init.d/iptables`.
    pub fn make_live(&self) {
        let sbin = self.root.join("usr/sbin");
        fs::create_dir_all(&sbin).unwrap();
        for prog in ["iptables", "ip6tables", "iptables-restore", "ip6tables-restore"] {
            std::os::unix::fs::symlink(format!("/usr/sbin/{prog}"), sbin.join(prog)).unwrap();
        }
        std::os::unix::fs::symlink("/bin/sh", self.root.join("bin/sh")).unwrap();
        // The few host tools the fixture scripts use, since the tool's PATH is the root's own.
        let usr_bin = self.root.join("usr/bin");
        fs::create_dir_all(&usr_bin).unwrap();
        for tool in ["dirname", "mkdir", "rm", "sleep", "cat", "setsid", "env"] {
            let host = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(tool))
                .find(|p| p.exists())
                .unwrap();
            std::os::unix::fs::symlink(host, usr_bin.join(tool)).unwrap();
        }
        std::os::unix::fs::symlink("/proc", self.root.join("proc")).unwrap();
        copy_tree(&testdata().join("live"), &self.root);
    }
}

/// A script's output (stdout, then stderr) split into sections at lines `@@name`.
pub fn sections(out: &std::process::Output) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut sections = BTreeMap::new();
    let mut name = "head".to_string();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("@@") {
            name = n.to_string();
            continue;
        }
        let s: &mut String = sections.entry(name.clone()).or_default();
        s.push_str(line);
        s.push('\n');
    }
    sections
}

/// How one run of a program ended.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
}

impl Run {
    pub fn of(cmd: &mut std::process::Command) -> Self {
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        Self {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    }

    /// stdout then stderr, as a terminal shows a run.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The `--json` report on stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", self.stdout, self.stderr))
    }
}

/// A throw-away network namespace, held open by a sleeping process; commands enter it with
/// `nsenter`. Its iptables rules and `net.ipv4.tcp_rfc1337` are its own.
pub struct Netns {
    holder: std::process::Child,
    /// The namespaces commands enter (`--net`, and `--mount` for a mount namespace too).
    enter: &'static [&'static str],
}

impl Netns {
    pub fn new() -> Self {
        Self::holding(&["-n"], &["--net"])
    }

    /// A network namespace with a private mount namespace of its own.
    pub fn with_mounts() -> Self {
        Self::holding(&["-n", "-m", "--propagation", "private"], &["--net", "--mount"])
    }

    fn holding(unshare: &[&str], enter: &'static [&'static str]) -> Self {
        use std::io::BufRead;
        let mut holder = std::process::Command::new("unshare")
            .args(unshare)
            .args(["sh", "-c", "echo ready; exec sleep 3600"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("unshare");
        // The namespace exists once the child speaks from inside it.
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        Self { holder, enter }
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = std::process::Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.holder.id().to_string())
            .args(self.enter)
            .arg("--")
            .arg(program);
        cmd
    }

    /// `iptables -S` inside the namespace.
    pub fn iptables_s(&self) -> String {
        Run::of(self.command("iptables").arg("-S")).stdout
    }

    /// The namespace's `net.ipv4.tcp_rfc1337`.
    pub fn rfc1337(&self) -> String {
        Run::of(self.command("cat").arg("/proc/sys/net/ipv4/tcp_rfc1337")).stdout
    }

    pub fn set_rfc1337(&self, value: u8) {
        let set = Run::of(self.command("sysctl").arg(format!("net.ipv4.tcp_rfc1337={value}")));
        assert_eq!(set.code, 0, "{set:?}");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// An upgrade scenario, built the way the upgrade happens:
/// `Upgrade::of("iwsva-sp2-to-sp3").with_rfc1337(1).in_netns()`.
pub struct Upgrade {
    case: String,
    side: &'static str,
    rfc1337: Option<u8>,
    default_state: bool,
}

impl Upgrade {
    /// The appliance after the upgrade package of `case` ran (its `after/` tree).
    pub fn of(case: &str) -> Self {
        Self {
            case: case.into(),
            side: "after",
            rfc1337: None,
            default_state: false,
        }
    }

    /// The appliance before the upgrade of `case` (its `before/` tree), to run the upgrade on.
    pub fn before(case: &str) -> Self {
        Self {
            side: "before",
            ..Self::of(case)
        }
    }

    /// The running kernel holds this `tcp_rfc1337` (the package's `sysctl -p` or a reboot).
    pub fn with_rfc1337(mut self, value: u8) -> Self {
        self.rfc1337 = Some(value);
        self
    }

    /// State in the root's default directory, as registered hooks and the boot guard use it.
    pub fn with_default_state(mut self) -> Self {
        self.default_state = true;
        self
    }

    /// Builds the root, makes it live, loads its firewall for real in a new network namespace.
    pub fn in_netns(self) -> Live {
        let mut env = TestEnv::from_tree(&testdata().join(&self.case).join(self.side));
        if self.default_state {
            env.state = env.root.join("var/lib/iwss-keeper");
        }
        env.make_live();
        let live = Live { env, ns: Netns::new() };
        live.start_firewall();
        if let Some(v) = self.rfc1337 {
            live.ns.set_rfc1337(v);
        }
        live
    }
}

/// A live scenario: a root whose firewall is loaded in its own network namespace.
pub struct Live {
    pub env: TestEnv,
    pub ns: Netns,
}

impl Live {
    /// Loads the root's firewall script, as the appliance does at boot.
    pub fn start_firewall(&self) {
        let script = self.env.root.join("usr/iwss/iwsvafw.sh");
        let started = Run::of(self.with_root_path(self.ns.command(&script).arg("start")));
        assert_eq!(started.code, 0, "{started:?}");
    }

    fn with_root_path<'a>(&self, cmd: &'a mut std::process::Command) -> &'a mut std::process::Command {
        let path = format!(
            "{}:{}",
            self.env.root.join("usr/sbin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("PATH", path)
    }

    /// The binary inside the namespace, on this root and state directory.
    pub fn keeper(&self, args: &[&str]) -> Run {
        self.keeper_on(&self.env.root, None, args)
    }

    /// The binary inside the namespace on another `root` (this state directory), with a fault
    /// point armed when one is named.
    pub fn keeper_on(&self, root: &Path, fault: Option<&str>, args: &[&str]) -> Run {
        let mut cmd = self.ns.command(assert_cmd::cargo::cargo_bin("iwss-keeper"));
        if let Some(fault) = fault {
            cmd.env("IWSS_KEEPER_FAULT", fault);
        }
        cmd.arg("--root")
            .arg(root)
            .arg("--state-dir")
            .arg(&self.env.state)
            .args(args);
        Run::of(&mut cmd)
    }

    /// Runs the fake upgrade package of `testdata/fake-upgrade.sh` inside the namespace, laying
    /// `new` (a tree under `testdata/`) over the root.
    pub fn fake_upgrade(&self, new: &str, extra: &[&str]) -> Run {
        let mut cmd = self.ns.command("sh");
        cmd.arg(testdata().join("fake-upgrade.sh"))
            .arg(&self.env.root)
            .arg("/usr/iwss/hooks")
            .arg(testdata().join(new))
            .args(extra);
        Run::of(self.hook_env(&mut cmd))
    }

    /// Runs a shell script of the root (a hook, the boot guard) inside the namespace, with the
    /// hook environment set.
    pub fn sh(&self, script: &str, args: &[&str]) -> Run {
        let mut cmd = self.ns.command("sh");
        cmd.arg(self.env.root.join(script.trim_start_matches('/'))).args(args);
        Run::of(self.hook_env(&mut cmd))
    }

    fn hook_env<'a>(&self, cmd: &'a mut std::process::Command) -> &'a mut std::process::Command {
        self.with_root_path(cmd)
            .env("IWSS_KEEPER", assert_cmd::cargo::cargo_bin("iwss-keeper"))
            .env("IWSS_KEEPER_ROOT", &self.env.root)
    }
}
