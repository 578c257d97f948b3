//! The sysctl model against the real authority: a generated corpus of sysctl files, each applied
//! with procps `sysctl -p` inside a throw-away network namespace to a key started at a sentinel,
//! and the value read back from `/proc/sys` compared with what the tool says the files give.
//! Root only (the namespace); skipped loudly elsewhere, a failure under `CI=true`.

use iwss_keeper::domain::sysctl;

use crate::testenv::{require, Netns, Run};

/// The value the key holds before each file is applied; no spelling below means 7.
const SENTINEL: &str = "7";

const KEY: &str = "net.ipv4.tcp_rfc1337";

/// Key spellings, good and bad: separators, doubled dots, case, blanks, the `-` prefix.
const KEYS: [&str; 22] = [
    "net.ipv4.tcp_rfc1337",
    "net/ipv4/tcp_rfc1337",
    "/net/ipv4/tcp_rfc1337",
    ".net.ipv4.tcp_rfc1337",
    "net.ipv4..tcp_rfc1337",
    "net..ipv4...tcp_rfc1337",
    "net/ipv4//tcp_rfc1337",
    "net/ipv4/../ipv4/tcp_rfc1337",
    " net.ipv4.tcp_rfc1337 ",
    "\tnet.ipv4.tcp_rfc1337",
    "net.ipv4.tcp_rfc1337\r",
    "-net.ipv4.tcp_rfc1337",
    "--net.ipv4.tcp_rfc1337",
    "- net.ipv4.tcp_rfc1337",
    "net.ipv4.tcp_rfc1337.",
    "net.ipv4.tcp_rfc1337/",
    "NET.ipv4.tcp_rfc1337",
    "net.ipv4 .tcp_rfc1337",
    "net.ipv4/tcp_rfc1337",
    "net/ipv4.tcp_rfc1337",
    "net.ipv4.tcp_rfc1337x",
    "\"net.ipv4.tcp_rfc1337\"",
];

/// Value spellings: bases, signs, blanks, trailing words, quotes, empty, overflow.
const VALUES: [&str; 52] = [
    "0",
    "1",
    "00",
    "01",
    "010",
    "011",
    "0x1",
    "0X1",
    "0x0ff",
    "0xff",
    "0x",
    "0xg",
    "08",
    "0009",
    " 1",
    "\t1",
    "1 ",
    "1 1",
    "1 # note",
    "1 ; x",
    "1 #",
    "1\t2",
    "1 = 2",
    "1#x",
    "1#",
    "1;",
    "1=2",
    "1,2",
    "1-",
    "\"1\"",
    "'1'",
    "+1",
    "-1",
    "-0",
    " - 1",
    "",
    "==1",
    "=1",
    "255",
    "256",
    "4294967297",
    "18446744073709551616",
    "99999999999999999999",
    "00000000000000000001",
    "000000000000000000001",
    "1\r",
    "1\r5",
    "1\x0b",
    "1\x0c",
    "2",
    "3 3",
    "0 1",
];

/// Every file of the corpus.
fn corpus() -> Vec<Vec<u8>> {
    let mut files: Vec<Vec<u8>> = Vec::new();
    let line = |k: &str, sep: &str, v: &str| format!("{k}{sep}{v}").into_bytes();
    // Every value with the plain key, in three layouts.
    for v in VALUES {
        files.push([line(KEY, " = ", v), b"\n".to_vec()].concat());
        files.push(line(KEY, "=", v));
        files.push([b"# header\n\n".to_vec(), line(KEY, "\t=\t", v), b"\r\n".to_vec()].concat());
    }
    // Every key spelling with a few values.
    for k in KEYS {
        for v in ["1", "0", "010", "+1"] {
            files.push([line(k, " = ", v), b"\n".to_vec()].concat());
        }
    }
    // Later lines win; a refused later line leaves the earlier value.
    for a in ["1", "0", "2", "+1", "256"] {
        for b in VALUES {
            files.push(format!("{KEY} = {a}\n{KEY} = {b}\n").into_bytes());
        }
    }
    // Comments, lines without `=`, NUL bytes, the `-` prefix with bad values.
    for extra in [
        "# net.ipv4.tcp_rfc1337 = 1\n",
        "; net.ipv4.tcp_rfc1337 = 1\n",
        "  # net.ipv4.tcp_rfc1337 = 1\n",
        "\t; net.ipv4.tcp_rfc1337=1\n",
        "[section]\n",
        "net.ipv4.tcp_rfc1337\n",
        "net.ipv4.tcp_rfc1337 1\n",
        "net.ipv4.tcp_rfc1337: 1\n",
        "garbage\n",
        "x\n",
        "\n\n \n\t\n",
        "net.ipv4.tcp_rfc1337\0 = 2\n",
        "\0net.ipv4.tcp_rfc1337 = 2\n",
        "net.ipv4.tcp_rfc1337 = 2\0 9\n",
        "net.ipv4.tcp_rfc1337 = 2\0#x\n",
        "net.ipv4.tcp_rfc1337 = 3\x005\n",
        "-net.ipv4.tcp_rfc1337 = 256\n",
        "-net.ipv4.tcp_rfc1337 = abc\n",
        "-net.ipv4.tcp_rfc1337\n",
        "NET.ipv4.tcp_rfc1337 = 0\n",
        "net.ipv4.tcp_rfc1337 =\n",
        "net.ipv4.tcp_rfc1337 = 2",
        "\u{a0}net.ipv4.tcp_rfc1337 = 2\n",
        "net.ipv4.tcp_rfc1337 = \u{a0}2\n",
    ] {
        files.push(extra.as_bytes().to_vec());
        files.push(format!("{KEY} = 1\n{extra}").into_bytes());
        files.push(format!("{extra}{KEY} = 0\n").into_bytes());
    }
    files
}

/// What the tool says the file gives: the value the kernel holds, or the sentinel when no line
/// of the file sets it.
fn model(bytes: &[u8]) -> String {
    let e = sysctl::effective([("/corpus.conf", bytes)], KEY);
    match e.source {
        Some(_) => e.value.expect("a value set by a file is known"),
        None => SENTINEL.to_string(),
    }
}

#[test]
fn sysctl_files_read_as_sysctl_p_and_the_kernel_read_them() {
    let why = if !crate::testenv::is_root() {
        Some("not running as root".to_string())
    } else if !std::path::Path::new("/usr/sbin/sysctl").exists() && !std::path::Path::new("/sbin/sysctl").exists() {
        Some("no sysctl (apt-get install procps)".to_string())
    } else {
        None
    };
    if !require("sysctl differential", why) {
        return;
    }
    let files = corpus();
    assert!(files.len() >= 500, "corpus of {} files", files.len());
    let dir = tempfile::tempdir().unwrap();
    for (i, bytes) in files.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i:04}.conf")), bytes).unwrap();
    }
    let ns = Netns::new();
    let run = Run::of(
        ns.command("sh")
            .arg("-c")
            .arg(
                "for f in \"$0\"/*.conf; do echo $1 > /proc/sys/net/ipv4/tcp_rfc1337; \
                 sysctl -p \"$f\" >/dev/null 2>&1; cat /proc/sys/net/ipv4/tcp_rfc1337; done",
            )
            .arg(dir.path())
            .arg(SENTINEL),
    );
    let kernel: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(kernel.len(), files.len(), "{}", run.stderr);
    let disagree: Vec<String> = files
        .iter()
        .zip(&kernel)
        .filter(|(bytes, k)| model(bytes) != **k)
        .map(|(bytes, k)| {
            format!(
                "{:?}: kernel {k}, model {}",
                String::from_utf8_lossy(bytes),
                model(bytes)
            )
        })
        .collect();
    let set = kernel.iter().filter(|k| **k != SENTINEL).count();
    eprintln!(
        "sysctl differential: {} files, {set} set the key, {} left it, {} disagreements",
        files.len(),
        files.len() - set,
        disagree.len()
    );
    assert!(
        disagree.is_empty(),
        "{} disagreements:\n{}",
        disagree.len(),
        disagree.join("\n")
    );
}

/// The drop-in directories on this machine that the test replaces, and their model names.
const DIRS: [(&str, &str); 4] = [
    ("etc", "/etc/sysctl.d"),
    ("run", "/run/sysctl.d"),
    ("local", "/usr/local/lib/sysctl.d"),
    ("usr", "/usr/lib/sysctl.d"),
];

/// A namespace (network and mount) whose sysctl directories and `/etc/sysctl.conf` are the
/// test's own directories and file, so `sysctl --system` and systemd-sysctl read only them.
struct SysctlTree {
    ns: Netns,
    dir: tempfile::TempDir,
}

impl SysctlTree {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, _) in DIRS {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        std::fs::write(dir.path().join("sysctl.conf"), b"").unwrap();
        let tree = Self {
            ns: Netns::with_mounts(),
            dir,
        };
        // Directories that may not exist get a private tmpfs above them to hold a mount point.
        for (parent, child) in [("/run", "/run/sysctl.d"), ("/usr/local/lib", "/usr/local/lib/sysctl.d")] {
            if !std::path::Path::new(child).is_dir() {
                tree.must(&["mount", "-t", "tmpfs", "none", parent]);
                tree.must(&["mkdir", "-p", child]);
            }
        }
        // A /lib that is not a link to /usr/lib has drop-ins of its own: hide them.
        if std::fs::read_link("/lib").is_err() && std::path::Path::new("/lib/sysctl.d").is_dir() {
            let empty = tree.dir.path().join("empty");
            tree.must(&["mount", "--bind", empty.to_str().unwrap(), "/lib/sysctl.d"]);
        }
        for (name, target) in DIRS {
            let src = tree.dir.path().join(name);
            tree.must(&["mount", "--bind", src.to_str().unwrap(), target]);
        }
        let conf = tree.dir.path().join("sysctl.conf");
        tree.must(&["mount", "--bind", conf.to_str().unwrap(), "/etc/sysctl.conf"]);
        tree
    }

    fn command(&self, program: &str) -> std::process::Command {
        self.ns.command(program)
    }

    fn must(&self, args: &[&str]) {
        let run = Run::of(self.command(args[0]).args(&args[1..]));
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    }

    /// Lays out one case: `files` as (directory name, basename, content), and sysctl.conf.
    fn lay_out(&self, files: &[(&str, String, String)], conf: &str) {
        for (name, _) in DIRS {
            for entry in std::fs::read_dir(self.dir.path().join(name)).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
        }
        for (dir, base, content) in files {
            std::fs::write(self.dir.path().join(dir).join(base), content).unwrap();
        }
        // Written in place: the bind mount holds this inode.
        std::fs::write(self.dir.path().join("sysctl.conf"), conf).unwrap();
    }

    /// Applies everything with `program args` and reads the key back.
    fn apply(&self, program: &str, args: &[&str]) -> String {
        self.must(&["sysctl", "-q", &format!("{KEY}={SENTINEL}")]);
        Run::of(self.command(program).args(args));
        Run::of(self.command("cat").arg("/proc/sys/net/ipv4/tcp_rfc1337"))
            .stdout
            .trim()
            .to_string()
    }
}

/// A small deterministic generator (xorshift), so every run tries the same layouts.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Drop-ins as (directory name, basename, content), and the content of sysctl.conf.
type Layout = (Vec<(&'static str, String, String)>, String);

/// Layouts of drop-ins over the four directories, with basename clashes, names that sort in
/// surprising ways, names that are not `.conf`, and sysctl.conf with or without the key; plus the
/// link `99-sysctl.conf -> ../sysctl.conf` in half of them.
fn layouts() -> Vec<Layout> {
    const NAMES: [&str; 10] = [
        "10-a.conf",
        "50-b.conf",
        "9-c.conf",
        "99-zz.conf",
        "A.conf",
        "a.conf",
        ".conf",
        "x.conf.bak",
        "README",
        "99-sysctl.conf",
    ];
    let values = ["0", "1", "2", "3", "+1", "010"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..300)
        .map(|_| {
            let mut files = Vec::new();
            for _ in 0..1 + rng.below(5) {
                let dir = DIRS[rng.below(DIRS.len())].0;
                let name = NAMES[rng.below(NAMES.len() - 1)].to_string();
                let value = values[rng.below(values.len())];
                files.push((dir, name, format!("{KEY} = {value}\n")));
            }
            let conf = match rng.below(3) {
                0 => String::new(),
                _ => format!("{KEY} = {}\n", values[rng.below(values.len())]),
            };
            (files, conf)
        })
        .collect()
}

/// The model's value for a layout in one order (`boot`: systemd-sysctl; else `sysctl --system`).
fn model_order(files: &[(&str, String, String)], conf: &str, link: bool, boot: bool) -> String {
    let mut all: Vec<(String, String)> = files
        .iter()
        .map(|(dir, base, content)| {
            let path = DIRS.iter().find(|(n, _)| n == dir).unwrap().1;
            (format!("{path}/{base}"), content.clone())
        })
        .collect();
    // A later write of the same path replaces the earlier one, as on disk.
    let mut seen = std::collections::BTreeMap::new();
    for (p, c) in all.drain(..) {
        seen.insert(p, c);
    }
    if link {
        seen.insert("/etc/sysctl.d/99-sysctl.conf".into(), conf.to_string());
    }
    seen.insert(sysctl::SYSCTL_CONF.into(), conf.to_string());
    let paths: Vec<&str> = seen.keys().map(String::as_str).collect();
    let order = if boot {
        sysctl::boot_order(paths)
    } else {
        sysctl::load_order(paths)
    };
    let files = order.into_iter().map(|p| (p, seen[p].as_bytes()));
    let e = if boot {
        sysctl::effective_at_boot(files, KEY)
    } else {
        sysctl::effective(files, KEY)
    };
    match e.source {
        Some(_) => e.value.unwrap(),
        None => SENTINEL.to_string(),
    }
}

#[test]
fn sysctl_system_and_boot_orders_match_procps_and_systemd() {
    let systemd_sysctl = ["/usr/lib/systemd/systemd-sysctl", "/lib/systemd/systemd-sysctl"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let why = if !crate::testenv::is_root() {
        Some("not running as root".to_string())
    } else if systemd_sysctl.is_none() {
        Some("no systemd-sysctl (apt-get install systemd)".to_string())
    } else {
        None
    };
    if !require("sysctl order differential", why) {
        return;
    }
    let tree = SysctlTree::new();
    // Nothing but the test's files may be applied: the namespace shares every other key with
    // the host.
    tree.lay_out(&[("etc", "10-a.conf".into(), format!("{KEY} = 1\n"))], "");
    let dry = Run::of(tree.command("sysctl").args(["--dry-run", "--system"]));
    for line in dry.stdout.lines().filter(|l| l.starts_with("* Applying")) {
        assert!(
            line.contains("/etc/sysctl.d/10-a.conf") || line.contains("/etc/sysctl.conf"),
            "an unexpected file would be applied: {line}\n{}",
            dry.stdout
        );
    }
    let mut disagree = Vec::new();
    let mut cases = 0;
    for (i, (mut files, conf)) in layouts().into_iter().enumerate() {
        let link = i % 2 == 0;
        tree.lay_out(&files, &conf);
        if link {
            std::os::unix::fs::symlink("../sysctl.conf", tree.dir.path().join("etc/99-sysctl.conf")).ok();
            files.retain(|(d, b, _)| !(*d == "etc" && b == "99-sysctl.conf"));
        }
        for (program, args, boot) in [
            ("sysctl", vec!["-q", "--system"], false),
            (systemd_sysctl.unwrap(), vec![], true),
        ] {
            cases += 1;
            let kernel = tree.apply(program, &args);
            let model = model_order(&files, &conf, link, boot);
            if kernel != model {
                disagree.push(format!(
                    "{program} on {files:?} + sysctl.conf {conf:?} (link {link}): kernel {kernel}, model {model}"
                ));
            }
        }
    }
    eprintln!(
        "sysctl order differential: {cases} runs, {} disagreements",
        disagree.len()
    );
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}

/// The upgrade set rfc1337 back to 1 in sysctl.conf, and a vendor drop-in that sorts after the
/// link to sysctl.conf sets 1 at boot: `restore` sets both lines to 0, and says why.
#[test]
fn restore_makes_boot_and_sysctl_system_give_the_owed_value() {
    use crate::testenv::{testdata, TestEnv};
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp1-to-sp2/after"));
    std::fs::create_dir_all(env.root.join("etc/sysctl.d")).unwrap();
    std::os::unix::fs::symlink("../sysctl.conf", env.root.join("etc/sysctl.d/99-sysctl.conf")).unwrap();
    std::fs::create_dir_all(env.root.join("usr/lib/sysctl.d")).unwrap();
    let vendor = env.root.join("usr/lib/sysctl.d/99-zz-vendor.conf");
    std::fs::write(&vendor, "# vendor\nnet.ipv4.tcp_rfc1337 = 1\n").unwrap();
    let from = testdata().join("iwsva-sp1-to-sp2/before");
    let from = from.to_str().unwrap();
    let run = env.keeper(&["--json", "diff", from]);
    assert_eq!(run.code, 1, "{}", run.text());
    let finding = &run.json()["comparison"]["sysctl"][0];
    assert_eq!(finding["after"]["value"], "1");
    assert_eq!(finding["set_to"], "0");
    let (out, code) = env.run(&["restore", "--no-restart", "--from", from]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("set net.ipv4.tcp_rfc1337 = 0 (line 2 said 1; it wins at boot)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&vendor).unwrap(),
        "# vendor\nnet.ipv4.tcp_rfc1337 = 0\n"
    );
    let conf = std::fs::read_to_string(env.root.join("etc/sysctl.conf")).unwrap();
    assert!(conf.contains("net.ipv4.tcp_rfc1337=0\n"), "{conf}");
    // Both orders now give 0: nothing is owed.
    let again = env.keeper(&["--json", "diff", from]);
    assert_eq!(again.code, 0, "{}", again.text());
    assert!(again.json()["comparison"]["sysctl"][0].get("boot").is_none());
}

/// A boot-only disagreement: `sysctl --system` gives 0 (sysctl.conf last) while systemd-sysctl
/// at boot gives 1 from a drop-in after the link; only the drop-in is edited.
#[test]
fn a_boot_only_disagreement_is_reported_and_fixed() {
    use crate::testenv::{testdata, TestEnv};
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let conf = env.root.join("etc/sysctl.conf");
    let mut text = std::fs::read(&conf).unwrap();
    text.extend_from_slice(b"net.ipv4.tcp_rfc1337 = 0\n");
    std::fs::write(&conf, &text).unwrap();
    std::fs::create_dir_all(env.root.join("etc/sysctl.d")).unwrap();
    std::os::unix::fs::symlink("../sysctl.conf", env.root.join("etc/sysctl.d/99-sysctl.conf")).unwrap();
    let drop_in = env.root.join("etc/sysctl.d/99-zz.conf");
    std::fs::write(&drop_in, "net.ipv4.tcp_rfc1337=1\n").unwrap();
    let conf_before = std::fs::read(env.root.join("etc/sysctl.conf")).unwrap();
    let from = testdata().join("iwsva-sp2-to-sp3/before");
    let (out, code) = env.run(&["diff", from.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("at boot (systemd-sysctl): 1 (/etc/sysctl.d/99-zz.conf:1)"),
        "{out}"
    );
    assert!(out.contains("at boot systemd-sysctl gives 1"), "{out}");
    let (out, code) = env.run(&["restore", "--no-restart", "--from", from.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(std::fs::read_to_string(&drop_in).unwrap(), "net.ipv4.tcp_rfc1337=0\n");
    assert_eq!(std::fs::read(env.root.join("etc/sysctl.conf")).unwrap(), conf_before);
}
