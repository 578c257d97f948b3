//! The sysctl model against the real authority: a generated corpus of sysctl files, each applied
//! with procps `sysctl -p` inside a throw-away network namespace to a key started at a sentinel,
//! and the value read back from `/proc/sys` compared with what the tool says the files give.
//! Root only (the namespace); skipped loudly elsewhere, a failure under `CI=true`.

use iwss_keeper::domain::sysctl::{
    self,
    procps::{Kernel, Procps, Rejection},
    Platform,
};

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

/// More of what the appliances' procps read differently from 4.0: blanks other than space and
/// tab, the `-` prefix, CR in the middle of a value, lines past 4,095 bytes, several numbers in
/// one value, and values an int takes that a u8 does not.
fn corpus_for_old_procps() -> Vec<Vec<u8>> {
    let mut files: Vec<Vec<u8>> = Vec::new();
    let before = ["", "net.ipv4.tcp_rfc1337 = 1\n", "net.ipv4.tcp_rfc1337 = 0\n"];
    let lines = [
        "-net.ipv4.tcp_rfc1337 = 0",
        "-net.ipv4.tcp_rfc1337 = 1",
        "- net.ipv4.tcp_rfc1337 = 0",
        "\x0bnet.ipv4.tcp_rfc1337 = 0",
        "\x0cnet.ipv4.tcp_rfc1337 = 0",
        "\rnet.ipv4.tcp_rfc1337 = 0",
        "net.ipv4.tcp_rfc1337\x0b= 0",
        "net.ipv4.tcp_rfc1337 =\x0b0",
        "net.ipv4.tcp_rfc1337 = 0\x0b",
        "net.ipv4.tcp_rfc1337 = 0\x0c",
        "net.ipv4.tcp_rfc1337 = 1\r0",
        "net.ipv4.tcp_rfc1337 = 0\r1",
        "net.ipv4.tcp_rfc1337 =\r0",
        "net.ipv4.tcp_rfc1337 = \r0",
        "net.ipv4.tcp_rfc1337 = 0 1",
        "net.ipv4.tcp_rfc1337 = 1 0",
        "net.ipv4.tcp_rfc1337 = 0 x",
        "net.ipv4.tcp_rfc1337 = 0 1x",
        "net.ipv4.tcp_rfc1337 = 0\t1",
        "net.ipv4.tcp_rfc1337 = 2",
        "net.ipv4.tcp_rfc1337 = -1",
        "net.ipv4.tcp_rfc1337 = 256",
        "net.ipv4.tcp_rfc1337 = 2147483647",
        "net.ipv4.tcp_rfc1337 = 2147483648",
        "net.ipv4.tcp_rfc1337 = -2147483648",
        "net.ipv4.tcp_rfc1337 = -2147483649",
        "net.ipv4.tcp_rfc1337 = 18446744073709551616",
        "net.ipv4.tcp_rfc1337 = 18446744073709551617",
        "net.ipv4.tcp_rfc1337 = 0x100",
        "=net.ipv4.tcp_rfc1337=0",
        "==net.ipv4.tcp_rfc1337=0",
        "net.ipv4.tcp_rfc1337==0",
        "net.ipv4.tcp_rfc1337 = 0 = 1",
        "net.ipv4.tcp_rfc1337=0\0",
    ];
    for b in before {
        for l in lines {
            for end in ["\n", "\r\n", ""] {
                files.push(format!("{b}{l}{end}").into_bytes());
            }
            files.push(format!("{l}\n{b}").into_bytes());
        }
    }
    // Lines past 4,095 bytes: 3.3.10 reads them in pieces, the rest as lines of their own.
    for (pad, tail) in [
        ("#", "net.ipv4.tcp_rfc1337=1"),
        ("#", "=1"),
        (" ", "net.ipv4.tcp_rfc1337=1"),
        ("x", "\nnet.ipv4.tcp_rfc1337=1"),
    ] {
        for len in [4000, 4090, 4094, 4095, 4096, 5000, 8190, 8191] {
            let line = format!("{}{tail}", pad.repeat(len));
            files.push(format!("net.ipv4.tcp_rfc1337 = 0\n{line}\n").into_bytes());
            files.push(format!("net.ipv4.tcp_rfc1337 = 1\n{line}\nnet.ipv4.tcp_rfc1337 = 0\n").into_bytes());
        }
    }
    let value = format!("0 {}", "1 ".repeat(2100));
    files.push(format!("net.ipv4.tcp_rfc1337 = {value}\n").into_bytes());
    files
}

/// One procps to ask: its program, and the platform whose kernel the appliance runs it on.
struct Authority {
    name: &'static str,
    program: std::path::PathBuf,
    platform: Platform,
}

/// What one procps did with each file: the key's value on this machine's kernel afterwards,
/// and what it wrote to the key (each open's first write: stdio writes its whole buffer there).
fn recorded(ns: &Netns, program: &std::path::Path, files: &[Vec<u8>]) -> Vec<(String, Vec<Vec<u8>>)> {
    let dir = tempfile::tempdir().unwrap();
    for (i, bytes) in files.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i:04}.conf")), bytes).unwrap();
    }
    let run = Run::of(
        ns.command("sh")
            .arg("-c")
            .arg(
                "for f in \"$0\"/*.conf; do echo $1 > /proc/sys/net/ipv4/tcp_rfc1337; \
                 strace -f -qq -e trace=open,openat,write,close -e signal=none -xx -s 65536 -o \"$f.log\" \
                 \"$2\" -p \"$f\" >/dev/null 2>&1; cat /proc/sys/net/ipv4/tcp_rfc1337; done",
            )
            .arg(dir.path())
            .arg(SENTINEL)
            .arg(program),
    );
    let values: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(values.len(), files.len(), "{}", run.stderr);
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let log = std::fs::read_to_string(dir.path().join(format!("{i:04}.conf.log"))).unwrap();
            (v.to_string(), key_writes(&log))
        })
        .collect()
}

/// The bytes of a `-xx` strace string (`"\x30\x0a"`).
fn unhex(quoted: &str) -> Vec<u8> {
    quoted
        .trim_matches('"')
        .split("\\x")
        .filter(|h| !h.is_empty())
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect()
}

/// The first write after each open of `/proc/sys/net/ipv4/tcp_rfc1337` (any spelling of the
/// path), from an strace log.
fn key_writes(log: &str) -> Vec<Vec<u8>> {
    let mut open: Option<String> = None;
    let mut fresh = false;
    let mut out = Vec::new();
    for line in log.lines() {
        let call = line.split_once(' ').map_or(line, |(_, c)| c.trim_start());
        if call.starts_with("open") {
            let path = call.split('"').nth(1).map(unhex).unwrap_or_default();
            let path = String::from_utf8_lossy(&path).into_owned();
            let fd = call.rsplit("= ").next().unwrap_or("").trim().to_string();
            let normal = sysctl::procps::key_path(path.trim_start_matches("/proc/sys").as_bytes(), Procps::V3_3_15);
            if normal.as_deref() == Some("net/ipv4/tcp_rfc1337") && !fd.starts_with('-') {
                (open, fresh) = (Some(fd), true);
            }
        } else if let Some(rest) = call.strip_prefix("write(") {
            let fd = rest.split(',').next().unwrap_or("");
            if fresh && open.as_deref() == Some(fd) {
                let start = rest.find('"').unwrap_or(0);
                let end = rest.rfind('"').unwrap_or(start);
                out.push(unhex(&rest[start..=end]));
                fresh = false;
            }
        } else if let Some(rest) = call.strip_prefix("close(") {
            if open.as_deref() == rest.split(')').next() {
                open = None;
            }
        }
    }
    out
}

/// The key's value after `writes`, from `start`, on `kernel`, as the tool models it; `None`
/// where a write is beyond the model (the tool then says "cannot tell").
fn after_writes(kernel: Kernel, start: &str, writes: &[Vec<u8>]) -> Option<String> {
    let mut value = Some(start.to_string());
    for w in writes {
        match kernel.write_rfc1337(w.strip_suffix(b"\n").unwrap_or(w)) {
            Ok(n) => value = Some(n.to_string()),
            Err(Rejection::Unmodelled) => value = None,
            Err(_) => {}
        }
    }
    value
}

/// What the tool says the file gives on `platforms` from a fresh kernel (the key at its
/// default, 0, where no line sets it), or `None` for "cannot tell".
fn tool_says(bytes: &[u8], platforms: &[Platform]) -> Option<String> {
    sysctl::effective(&[(sysctl::SYSCTL_CONF, bytes)], KEY, platforms).value
}

/// Bytes for a failure message: text, cut.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(100) {
        Some((at, _)) => format!("{:?}... ({} bytes)", &text[..at], bytes.len()),
        None => format!("{text:?}"),
    }
}

fn shown_all(writes: &[Vec<u8>]) -> String {
    format!("[{}]", writes.iter().map(|w| shown(w)).collect::<Vec<_>>().join(", "))
}

#[test]
fn sysctl_files_read_as_each_procps_and_kernel_read_them() {
    let old = crate::rule_diff::authorities();
    let why = if !crate::testenv::is_root() {
        Some("not running as root".to_string())
    } else if !std::path::Path::new("/usr/sbin/sysctl").exists() {
        Some("no sysctl (apt-get install procps)".to_string())
    } else if !std::path::Path::new("/usr/bin/strace").exists() {
        Some("no strace (apt-get install strace)".to_string())
    } else if !old.join("procps-3.3.10/sbin/sysctl").exists() {
        Some(format!(
            "no {} (../shared/authorities/build.sh)",
            old.join("procps-3.3.10").display()
        ))
    } else {
        None
    };
    if !require("sysctl differential", why) {
        return;
    }
    let mut files = corpus();
    files.extend(corpus_for_old_procps());
    assert!(files.len() >= 900, "corpus of {} files", files.len());
    let authorities = [
        Authority {
            name: "procps-ng 3.3.10",
            program: old.join("procps-3.3.10/sbin/sysctl"),
            platform: Platform::Rhel7,
        },
        Authority {
            name: "procps-ng 3.3.15",
            program: old.join("procps-3.3.15/sbin/sysctl"),
            platform: Platform::Rhel8,
        },
        Authority {
            name: "procps-ng 4.0.2",
            program: "/usr/sbin/sysctl".into(),
            platform: Platform::Current,
        },
    ];
    let ns = Netns::new();
    let mut failures = Vec::new();
    // Per file, the value each platform gives (its procps's writes on its kernel).
    let mut on: Vec<Vec<Option<String>>> = vec![Vec::new(); files.len()];
    for a in &authorities {
        let seen = recorded(&ns, &a.program, &files);
        let (mut dangerous, mut conservative, mut cannot_tell, mut writes_differ, mut kernel_differs) = (0, 0, 0, 0, 0);
        for (i, (bytes, (here, wrote))) in files.iter().zip(&seen).enumerate() {
            let show = || shown(bytes);
            let predicted = sysctl::writes(bytes, KEY, a.platform.procps());
            // stdio writes a value past its 1,024-byte buffer in pieces: the first is a prefix.
            let same = predicted.len() == wrote.len()
                && predicted
                    .iter()
                    .zip(wrote)
                    .all(|(p, w)| p == w || (p.len() > 1024 && p.starts_with(w)));
            if !same {
                writes_differ += 1;
                failures.push(format!(
                    "{}: {}: wrote {}, model {}",
                    a.name,
                    show(),
                    shown_all(wrote),
                    shown_all(&predicted)
                ));
            }
            // This machine's kernel read what was written as the model says kernel 6 does.
            let model = after_writes(Kernel::V6, SENTINEL, wrote);
            if model.as_ref().is_some_and(|m| m != here) {
                kernel_differs += 1;
                failures.push(format!(
                    "{}: {}: kernel 6 holds {here}, model {model:?}",
                    a.name,
                    show()
                ));
            }
            let truth = after_writes(a.platform.kernel(), "0", wrote);
            on[i].push(truth.clone());
            let Some(truth) = truth else {
                // Beyond the model: the tool must not claim a value.
                if tool_says(bytes, &[a.platform]).is_some() {
                    failures.push(format!(
                        "{}: {}: beyond the model, the tool claims a value",
                        a.name,
                        show()
                    ));
                }
                cannot_tell += 1;
                continue;
            };
            match tool_says(bytes, &[a.platform]) {
                None => cannot_tell += 1,
                Some(v) if v == "0" && truth != "0" => {
                    dangerous += 1;
                    failures.push(format!("{}: {}: leaves {truth}, the tool believes 0", a.name, show()));
                }
                Some(v) if v != truth => conservative += 1,
                Some(_) => {}
            }
        }
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "sysctl -p differential, {} on the {} model: {} files; {dangerous} dangerous, {conservative} conservative, {cannot_tell} cannot tell, {writes_differ} files whose writes the model mispredicts, {kernel_differs} where this machine's kernel disagrees with its model",
            a.name,
            a.platform.name(),
            files.len(),
        );
    }
    // An appliance of unknown version: every platform may run it.
    let (mut dangerous, mut cannot_tell) = (0, 0);
    for (bytes, truths) in files.iter().zip(&on) {
        match tool_says(bytes, &Platform::ALL) {
            None => cannot_tell += 1,
            Some(v) if v == "0" && truths.iter().any(|t| t.as_deref() != Some("0")) => {
                dangerous += 1;
                failures.push(format!(
                    "every platform: {}: {truths:?}, the tool believes 0",
                    shown(bytes)
                ));
            }
            Some(_) => {}
        }
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "sysctl -p differential, platform unknown: {} files; {dangerous} dangerous, {cannot_tell} cannot tell",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures[..failures.len().min(40)].join("\n")
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
    let files: Vec<(&str, &[u8])> = seen.iter().map(|(p, c)| (p.as_str(), c.as_bytes())).collect();
    // This machine's programs: procps 4.0.2 and systemd 252.
    let e = if boot {
        sysctl::effective_at_boot(&files, KEY, &[Platform::Current])
    } else {
        sysctl::effective(&files, KEY, &[Platform::Current])
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
/// link to sysctl.conf sets 1 too. On IWSVA (RHEL 7) systemd-sysctl 219 reads
/// `/etc/sysctl.conf` again after every drop-in, so setting sysctl.conf to 0 is enough: `restore`
/// edits it alone, and afterwards `sysctl --system` and the boot both give 0.
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
    assert_eq!(finding["boot"]["value"], "1", "{finding}");
    assert_eq!(finding["set_to"], "0");
    let (out, code) = env.run(&["restore", "--no-restart", "--from", from]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(&vendor).unwrap(),
        "# vendor\nnet.ipv4.tcp_rfc1337 = 1\n",
        "on RHEL 7 the drop-in does not win at boot"
    );
    let conf = std::fs::read_to_string(env.root.join("etc/sysctl.conf")).unwrap();
    assert!(conf.contains("net.ipv4.tcp_rfc1337=0\n"), "{conf}");
    // Both orders now give 0: nothing is owed.
    let again = env.keeper(&["--json", "diff", from]);
    assert_eq!(again.code, 0, "{}", again.text());
    assert!(again.json()["comparison"]["sysctl"][0].get("boot").is_none());
}

/// A drop-in that sorts after the link to sysctl.conf sets 1 while sysctl.conf sets 0. With
/// systemd 252 that drop-in would win at boot; on IWSVA (RHEL 7) systemd-sysctl 219 reads
/// `/etc/sysctl.conf` again last, so 0 is in force and nothing is owed or edited.
#[test]
fn sysctl_conf_is_read_last_at_boot_on_rhel_7() {
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
    let conf_before = std::fs::read(&conf).unwrap();
    let from = testdata().join("iwsva-sp2-to-sp3/before");
    let run = env.keeper(&["--json", "diff", from.to_str().unwrap()]);
    let finding = &run.json()["comparison"]["sysctl"][0];
    assert_eq!(finding["after"]["value"], "0", "{finding}");
    assert!(finding.get("boot").is_none(), "{finding}");
    assert!(finding["set_to"].is_null(), "{finding}");
    let (out, _) = env.run(&["restore", "--no-restart", "--from", from.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&drop_in).unwrap(),
        "net.ipv4.tcp_rfc1337=1\n",
        "{out}"
    );
    assert_eq!(std::fs::read(&conf).unwrap(), conf_before, "{out}");
}

/// systemd's masks: a drop-in linked to `/dev/null`, and a dangling link, hide the same-named
/// vendor files that would set the key to 1; a drop-in holding a NUL byte is read, not refused.
/// The run goes on and the value is the kernel default.
#[test]
fn masked_drop_ins_hide_the_vendor_files() {
    use crate::testenv::{testdata, TestEnv};
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let (etc, usr) = (env.root.join("etc/sysctl.d"), env.root.join("usr/lib/sysctl.d"));
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&usr).unwrap();
    std::fs::write(usr.join("50-vendor.conf"), "net.ipv4.tcp_rfc1337 = 1\n").unwrap();
    std::fs::write(usr.join("60-other.conf"), "net.ipv4.tcp_rfc1337 = 1\n").unwrap();
    std::os::unix::fs::symlink("/dev/null", etc.join("50-vendor.conf")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/60-other.conf", etc.join("60-other.conf")).unwrap();
    std::fs::write(etc.join("70-nul.conf"), b"kernel.x = 1\0 junk\n").unwrap();
    let from = testdata().join("iwsva-sp2-to-sp3/before");
    let run = env.keeper(&["--json", "diff", from.to_str().unwrap()]);
    assert_ne!(run.code, 2, "{}", run.text());
    let finding = &run.json()["comparison"]["sysctl"][0];
    assert_eq!(finding["after"]["value"], "0", "{finding}");
    assert!(finding["after"]["source"].is_null(), "the kernel default: {finding}");
    assert!(finding["set_to"].is_null(), "{finding}");
    // Unmasked, the vendor file would win.
    std::fs::remove_file(etc.join("50-vendor.conf")).unwrap();
    let run = env.keeper(&["--json", "diff", from.to_str().unwrap()]);
    assert_eq!(
        run.json()["comparison"]["sysctl"][0]["after"]["value"],
        "1",
        "{}",
        run.text()
    );
}

/// IWSS 6.5 Patch 3 runs RHEL 8, or RHEL 7 when `/etc/redhat-release` says so: `0 1` is 0 on
/// RHEL 8's kernel, 1 on RHEL 7's, and "cannot tell" when the release is not known.
#[test]
fn iwss_patch_3_is_judged_by_its_release_file() {
    use crate::testenv::{testdata, TestEnv};
    let judged = |release: Option<&str>| {
        let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/after"));
        let conf = env.root.join("etc/sysctl.conf");
        let mut text = std::fs::read(&conf).unwrap();
        text.extend_from_slice(b"net.ipv4.tcp_rfc1337 = 0 1\n");
        std::fs::write(&conf, &text).unwrap();
        if let Some(release) = release {
            std::fs::write(env.root.join("etc/redhat-release"), release).unwrap();
        }
        let from = testdata().join("iwss-p2-to-p3/before");
        let run = env.keeper(&["--json", "diff", from.to_str().unwrap()]);
        assert_ne!(run.code, 2, "{}", run.text());
        run.json()["comparison"]["sysctl"][0]["after"].clone()
    };
    assert_eq!(
        judged(Some("Red Hat Enterprise Linux release 8.10 (Ootpa)\n"))["value"],
        "0"
    );
    assert_eq!(judged(Some("CentOS Linux release 7.9.2009 (Core)\n"))["value"], "1");
    let unknown = judged(None);
    assert!(unknown.get("value").is_none_or(|v| v.is_null()), "{unknown}");
    assert!(
        unknown["unknown"]
            .as_str()
            .unwrap()
            .contains("read the files differently"),
        "{unknown}"
    );
}

/// A drop-in the tool cannot read (here a FIFO, which it never opens) could set the key: the
/// key is "cannot tell", naming it, and the rest of the run (the firewall comparison) goes on.
#[test]
fn an_unreadable_drop_in_makes_the_key_cannot_tell() {
    use crate::testenv::{testdata, TestEnv};
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let etc = env.root.join("etc/sysctl.d");
    std::fs::create_dir_all(&etc).unwrap();
    let fifo = etc.join("50-fifo.conf");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let from = testdata().join("iwsva-sp2-to-sp3/before");
    let run = env.keeper(&["--json", "diff", from.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.text());
    let json = run.json();
    let after = &json["comparison"]["sysctl"][0]["after"];
    assert!(after["value"].is_null(), "{after}");
    let why = after["unknown"].as_str().unwrap();
    assert!(
        why.contains("/etc/sysctl.d/50-fifo.conf cannot be read") && why.contains("FIFO"),
        "{why}"
    );
    assert!(
        !json["comparison"]["discarded"].as_array().unwrap().is_empty(),
        "{json}"
    );
    // A snapshot of such a root is taken and stored, and read back.
    let snap = env.keeper(&["snapshot"]);
    assert_eq!(snap.code, 0, "{}", snap.text());
    let shown = env.keeper(&["show", snap.stdout.trim()]);
    assert_eq!(shown.code, 0, "{}", shown.text());
}
