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
        for prog in ["iptables", "ip6tables"] {
            std::os::unix::fs::symlink(format!("/usr/sbin/{prog}"), sbin.join(prog)).unwrap();
        }
        std::os::unix::fs::symlink("/bin/sh", self.root.join("bin/sh")).unwrap();
        // The few host tools the fixture scripts use, since the tool's PATH is the root's own.
        let usr_bin = self.root.join("usr/bin");
        fs::create_dir_all(&usr_bin).unwrap();
        for tool in ["dirname", "mkdir", "rm", "sleep", "cat"] {
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

    /// Runs a bash script inside a fresh network namespace, with `ROOT`, `STATE` and `BIN` set.
    /// Returns its output split into `@@name` sections.
    pub fn in_netns(&self, script: &str) -> BTreeMap<String, String> {
        let bin = assert_cmd::cargo::cargo_bin("iwss-keeper");
        let out = std::process::Command::new("unshare")
            .args(["-n", "bash", "-c", script])
            .env("ROOT", &self.root)
            .env("STATE", &self.state)
            .env("BIN", bin)
            .env("TESTDATA", testdata())
            .output()
            .unwrap();
        sections(&out)
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
