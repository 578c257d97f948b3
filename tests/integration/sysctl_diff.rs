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
            "sysctl -p differential, {} as on {}: {} files; {dangerous} dangerous, {conservative} conservative, {cannot_tell} cannot tell, {writes_differ} files whose writes the model mispredicts, {kernel_differs} where this machine's kernel disagrees with its model",
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

/// What one name in a tree is: a file with its bytes, a symbolic link to a target, or a
/// directory (a directory named `*.conf` is no sysctl file, but a program may still count it).
#[derive(Debug, Clone)]
enum Entry {
    File(Vec<u8>),
    Link(&'static str),
    Dir,
}

/// One boot tree: entries as (directory name of [`DIRS`], basename, entry), and the bytes of
/// `/etc/sysctl.conf`.
#[derive(Debug, Clone)]
struct Tree {
    entries: Vec<(&'static str, String, Entry)>,
    conf: Vec<u8>,
}

/// Link targets: sysctl.conf (relative from `/etc/sysctl.d`, absolute from elsewhere), a mask,
/// and two that name nothing.
const TO_CONF: &str = "../sysctl.conf";
const TO_CONF_ABSOLUTE: &str = "/etc/sysctl.conf";
const TO_NULL: &str = "/dev/null";
const DANGLING: [&str; 2] = ["../missing.conf", "/nonexistent/sysctl.conf"];

impl Tree {
    /// The bytes a program reads through the entry at `dir`: a link to sysctl.conf reads it,
    /// any other link, an empty file and a directory read nothing.
    fn resolved(&self, dir: &str, entry: &Entry) -> Option<Vec<u8>> {
        match entry {
            Entry::File(bytes) => Some(bytes.clone()),
            Entry::Link(TO_CONF) if dir == "etc" => Some(self.conf.clone()),
            Entry::Link(TO_CONF_ABSOLUTE) => Some(self.conf.clone()),
            Entry::Link(_) => Some(Vec::new()),
            Entry::Dir => None,
        }
    }

    /// The files as the snapshot gives them to the tool: every sysctl file at its appliance
    /// path, a link as the content of the file it names, a mask (link to `/dev/null`, dangling
    /// link, empty file) as empty content; a directory is not a file ([`Tree::directories`]).
    fn tool_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = self
            .entries
            .iter()
            .filter_map(|(dir, base, entry)| {
                let path = DIRS.iter().find(|(n, _)| n == dir).unwrap().1;
                Some((format!("{path}/{base}"), self.resolved(dir, entry)?))
            })
            .collect();
        files.push((sysctl::SYSCTL_CONF.to_string(), self.conf.clone()));
        files
    }

    /// The directories named `*.conf`, at their appliance paths: the snapshot records them as
    /// entries it cannot read.
    fn directories(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, _, entry)| matches!(entry, Entry::Dir))
            .map(|(dir, base, _)| format!("{}/{base}", DIRS.iter().find(|(n, _)| n == dir).unwrap().1))
            .collect()
    }

    /// The tree in one line: `etc/10-a.conf="..."`, `etc/99-sysctl.conf->../sysctl.conf`,
    /// `run/x.conf/`, then sysctl.conf.
    fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .entries
            .iter()
            .map(|(dir, base, entry)| match entry {
                Entry::File(bytes) => format!("{dir}/{base}=\"{}\"", brief(bytes)),
                Entry::Link(to) => format!("{dir}/{base}->{to}"),
                Entry::Dir => format!("{dir}/{base}/"),
            })
            .collect();
        parts.push(format!("sysctl.conf=\"{}\"", brief(&self.conf)));
        parts.join(" ")
    }
}

/// Bytes escaped on one line, a run of 16 or more of one byte shown once with its count.
fn brief(bytes: &[u8]) -> String {
    let escape = |b: u8| match b {
        b'\n' => "\\n".to_string(),
        b'\r' => "\\r".to_string(),
        b'\t' => "\\t".to_string(),
        0 => "\\0".to_string(),
        b'"' | b'\\' => format!("\\{}", b as char),
        0x20..=0x7e => (b as char).to_string(),
        _ => format!("\\x{b:02x}"),
    };
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|&&b| b == bytes[i]).count();
        if run >= 16 {
            out.push_str(&format!("[{}x{run}]", escape(bytes[i])));
        } else {
            for &b in &bytes[i..i + run] {
                out.push_str(&escape(b));
            }
        }
        i += run;
    }
    out
}

/// One line of a drop-in (no line ending): mostly assignments of the key in one of its
/// spellings, with the `-` prefix, with values each kernel reads its own way; sometimes a
/// 3,000- or 5,000-byte comment (ending in nothing or in an assignment), a NUL inside the line,
/// a bare `-key` line or a short comment.
fn tree_line(rng: &mut Rng) -> Vec<u8> {
    const SPELLINGS: [&str; 8] = [
        KEY,
        KEY,
        KEY,
        "net/ipv4//tcp_rfc1337",
        ".net.ipv4.tcp_rfc1337",
        "-net.ipv4.tcp_rfc1337",
        "- net.ipv4.tcp_rfc1337",
        KEY,
    ];
    const VALUES: [&str; 8] = ["0", "1", "2", "0 1", "256", "-1", "+1", "010"];
    const NULS: [&str; 5] = [
        "net.ipv4.tcp_rfc1337 = 1\x000",
        "net.ipv4.tcp_rfc1337 = 0\x001",
        "net.ipv4.tcp_rfc1337\x00 = 1",
        "\x00net.ipv4.tcp_rfc1337 = 1",
        "net.ipv4.tcp_rfc1337 = 2\x00 # x",
    ];
    match rng.below(24) {
        0 | 1 => {
            let len = [3000, 5000][rng.below(2)];
            let tail = match rng.below(3) {
                0 => String::new(),
                _ => format!("{KEY} = {}", VALUES[rng.below(VALUES.len())]),
            };
            let pad = [" ", "x", "#"][rng.below(3)];
            format!("#{}{tail}", pad.repeat(len - 1 - tail.len())).into_bytes()
        }
        2 => NULS[rng.below(NULS.len())].as_bytes().to_vec(),
        3 => b"-net.ipv4.tcp_rfc1337".to_vec(),
        4 => b"# net.ipv4.tcp_rfc1337 = 1".to_vec(),
        _ => {
            let key = SPELLINGS[rng.below(SPELLINGS.len())];
            let sep = [" = ", "=", "\t=\t"][rng.below(3)];
            format!("{key}{sep}{}", VALUES[rng.below(VALUES.len())]).into_bytes()
        }
    }
}

/// A file of one to three lines, ended by LF, CRLF or a bare CR (the last line sometimes
/// without one).
fn tree_file(rng: &mut Rng) -> Vec<u8> {
    let end: &[u8] = [&b"\n"[..], b"\n", b"\n", b"\n", b"\r\n", b"\r"][rng.below(6)];
    let lines: Vec<Vec<u8>> = (0..1 + rng.below(3)).map(|_| tree_line(rng)).collect();
    let mut bytes = lines.join(end);
    if rng.below(7) != 0 {
        bytes.extend_from_slice(end);
    }
    bytes
}

/// Boot trees over the four drop-in directories and sysctl.conf: basenames that clash across
/// directories and sort before or after `99-sysctl.conf`, the link
/// `/etc/sysctl.d/99-sysctl.conf -> ../sysctl.conf` in about half, masks (a link to
/// `/dev/null`, an empty file, a dangling link, a directory) over a same-named file in another
/// directory, and directories named `*.conf`.
fn trees(count: usize) -> Vec<Tree> {
    const NAMES: [&str; 10] = [
        "10-a.conf",
        "50-b.conf",
        "99-zz.conf",
        "99-sysctl.conf",
        "x.conf",
        "00-first.conf",
        "A.conf",
        "99-zz.conf",
        "10-a.conf",
        ".hidden.conf",
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..count)
        .map(|_| {
            let mut entries: Vec<(&'static str, String, Entry)> = Vec::new();
            for _ in 0..1 + rng.below(4) {
                let dir = DIRS[rng.below(DIRS.len())].0;
                let name = NAMES[rng.below(NAMES.len())].to_string();
                entries.push((dir, name, Entry::File(tree_file(&mut rng))));
            }
            if rng.below(2) == 0 {
                entries.push(("etc", "99-sysctl.conf".into(), Entry::Link(TO_CONF)));
            }
            if rng.below(5) == 0 {
                let dir = DIRS[1 + rng.below(DIRS.len() - 1)].0;
                entries.push((dir, "99-sysctl.conf".into(), Entry::Link(TO_CONF_ABSOLUTE)));
            }
            // A mask over a file of the tree, from an earlier directory (systemd's order; a
            // file in /etc gets one in /run, which procps 3.3 reads first).
            if rng.below(2) == 0 {
                let files: Vec<(usize, String)> = entries
                    .iter()
                    .filter(|(_, _, e)| matches!(e, Entry::File(_)))
                    .map(|(d, b, _)| (DIRS.iter().position(|(n, _)| n == d).unwrap(), b.clone()))
                    .collect();
                let (at, base) = files[rng.below(files.len())].clone();
                let dir = if at == 0 { "run" } else { DIRS[rng.below(at)].0 };
                let mask = match rng.below(5) {
                    0 => Entry::Link(TO_NULL),
                    1 => Entry::File(Vec::new()),
                    2 => Entry::Link(DANGLING[0]),
                    3 => Entry::Link(DANGLING[1]),
                    _ => Entry::Dir,
                };
                entries.push((dir, base, mask));
            }
            if rng.below(8) == 0 {
                entries.push((DIRS[rng.below(DIRS.len())].0, "x.conf".into(), Entry::Dir));
            }
            // One entry per path: the last one laid out wins.
            let mut unique: Vec<(&'static str, String, Entry)> = Vec::new();
            for (d, b, e) in entries {
                unique.retain(|(d2, b2, _)| !(*d2 == d && *b2 == b));
                unique.push((d, b, e));
            }
            let conf = match rng.below(3) {
                0 => Vec::new(),
                _ => tree_file(&mut rng),
            };
            Tree { entries: unique, conf }
        })
        .collect()
}

impl SysctlTree {
    /// Lays out one tree: its files, links and directories, and sysctl.conf in place.
    fn lay_out_tree(&self, tree: &Tree) {
        for (name, _) in DIRS {
            for entry in std::fs::read_dir(self.dir.path().join(name)).unwrap() {
                let path = entry.unwrap().path();
                if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                    std::fs::remove_dir_all(&path).unwrap();
                } else {
                    std::fs::remove_file(&path).unwrap();
                }
            }
        }
        for (dir, base, entry) in &tree.entries {
            let path = self.dir.path().join(dir).join(base);
            match entry {
                Entry::File(bytes) => std::fs::write(&path, bytes).unwrap(),
                Entry::Link(to) => std::os::unix::fs::symlink(to, &path).unwrap(),
                Entry::Dir => std::fs::create_dir(&path).unwrap(),
            }
        }
        // Written in place: the bind mount holds this inode.
        std::fs::write(self.dir.path().join("sysctl.conf"), &tree.conf).unwrap();
    }

    /// Runs each of `programs` (program and arguments) on the tree laid out, each from the
    /// sentinel and under strace: per program, the key's value on this machine's kernel
    /// afterwards and what it wrote to the key (each open's first write).
    fn recorded(&self, programs: &[(std::path::PathBuf, &[&str])]) -> Vec<(String, Vec<Vec<u8>>)> {
        let logs = tempfile::tempdir().unwrap();
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let mut script = String::new();
        for (i, (program, args)) in programs.iter().enumerate() {
            let log = logs.path().join(format!("{i}.log"));
            let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
            script.push_str(&format!(
                "echo {SENTINEL} > /proc/sys/net/ipv4/tcp_rfc1337; \
                 SYSTEMD_LOG_TARGET=console strace -f -qq -e trace=open,openat,write,close -e signal=none -xx -s 65536 -o {} \
                 {} {} >/dev/null 2>&1; cat /proc/sys/net/ipv4/tcp_rfc1337\n",
                quote(log.to_str().unwrap()),
                quote(program.to_str().unwrap()),
                args.join(" ")
            ));
        }
        let run = Run::of(self.command("sh").arg("-c").arg(&script));
        let values: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(values.len(), programs.len(), "{}", run.stderr);
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let log = std::fs::read_to_string(logs.path().join(format!("{i}.log"))).unwrap();
                (v.to_string(), key_writes(&log))
            })
            .collect()
    }
}

/// One program that applies every sysctl file: systemd-sysctl at boot, or `sysctl --system`.
struct Applier {
    name: &'static str,
    program: std::path::PathBuf,
    args: &'static [&'static str],
    platform: Platform,
    boot: bool,
}

/// Counts for one program (or for an unknown platform) over every tree, with the first few
/// trees of each kind of disagreement.
#[derive(Default)]
struct Tally {
    trees: usize,
    dangerous: Vec<String>,
    conservative: Vec<String>,
    cannot_tell: usize,
    other_value: Vec<String>,
    beyond_model: usize,
    claims_beyond_model: Vec<String>,
    kernel_differs: Vec<String>,
    /// Trees on which the tool panicked.
    panics: Vec<String>,
}

impl Tally {
    fn line(&self, what: &str) -> String {
        format!(
            "{what}: {} trees; {} dangerous, {} conservative, {} cannot tell, {} another non-zero value, {} beyond the model ({} where the tool claims a value), {} where this machine's kernel disagrees with its model, {} where the tool panics",
            self.trees,
            self.dangerous.len(),
            self.conservative.len(),
            self.cannot_tell,
            self.other_value.len(),
            self.beyond_model,
            self.claims_beyond_model.len(),
            self.kernel_differs.len(),
            self.panics.len(),
        )
    }

    fn examples(&self) -> String {
        let mut out = String::new();
        for (kind, list) in [
            ("dangerous", &self.dangerous),
            ("conservative", &self.conservative),
            ("another value", &self.other_value),
            ("claims beyond the model", &self.claims_beyond_model),
            ("kernel", &self.kernel_differs),
            ("panic", &self.panics),
        ] {
            for e in list.iter().take(10) {
                out.push_str(&format!("  {kind}: {e}\n"));
            }
        }
        out
    }
}

std::thread_local! {
    /// Set while the tool is asked inside [`asked`]: a panic there is recorded, not printed.
    static QUIET: std::cell::RefCell<Option<Option<String>>> = const { std::cell::RefCell::new(None) };
}

/// The tool's answer, or where and why it panicked (a panic is recorded as a failure of the
/// model, and the trees go on).
fn asked(f: impl FnOnce() -> sysctl::Effective) -> Result<sysctl::Effective, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let quiet = QUIET.with(|q| {
                let mut q = q.borrow_mut();
                match q.as_mut() {
                    Some(slot) => {
                        *slot = Some(info.to_string().replace('\n', " "));
                        true
                    }
                    None => false,
                }
            });
            if !quiet {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| *q.borrow_mut() = Some(None));
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let message = QUIET.with(|q| q.borrow_mut().take().flatten());
    answer.map_err(|_| message.unwrap_or_else(|| "a panic".to_string()))
}

/// What the tool says, for failure messages.
fn said(e: &sysctl::Effective) -> String {
    match (&e.value, &e.unknown) {
        (Some(v), _) => format!("{v} (from {:?})", e.source),
        (None, Some(why)) => format!("cannot tell: {}", shown(why.as_bytes())),
        (None, None) => "nothing".to_string(),
    }
}

#[test]
fn boot_and_system_trees_as_each_program_applies_them() {
    let old = crate::rule_diff::authorities();
    let here_systemd = ["/usr/lib/systemd/systemd-sysctl", "/lib/systemd/systemd-sysctl"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let needed = [
        old.join("procps-3.3.10/sbin/sysctl"),
        old.join("procps-3.3.15/sbin/sysctl"),
        old.join("systemd-219/systemd-sysctl"),
        old.join("systemd-239/systemd-sysctl"),
    ];
    let why = if !crate::testenv::is_root() {
        Some("not running as root".to_string())
    } else if !std::path::Path::new("/usr/sbin/sysctl").exists() {
        Some("no sysctl (apt-get install procps)".to_string())
    } else if here_systemd.is_none() {
        Some("no systemd-sysctl (apt-get install systemd)".to_string())
    } else if !std::path::Path::new("/usr/bin/strace").exists() {
        Some("no strace (apt-get install strace)".to_string())
    } else {
        needed
            .iter()
            .find(|p| !p.exists())
            .map(|p| format!("no {} (../shared/authorities/build.sh)", p.display()))
    };
    if !require("boot and --system tree differential", why) {
        return;
    }
    let appliers = [
        Applier {
            name: "systemd-sysctl 219",
            program: needed[2].clone(),
            args: &[],
            platform: Platform::Rhel7,
            boot: true,
        },
        Applier {
            name: "systemd-sysctl 239",
            program: needed[3].clone(),
            args: &[],
            platform: Platform::Rhel8,
            boot: true,
        },
        Applier {
            name: "systemd-sysctl 252",
            program: here_systemd.unwrap().into(),
            args: &[],
            platform: Platform::Current,
            boot: true,
        },
        Applier {
            name: "sysctl --system, procps-ng 3.3.10",
            program: needed[0].clone(),
            args: &["-q", "--system"],
            platform: Platform::Rhel7,
            boot: false,
        },
        Applier {
            name: "sysctl --system, procps-ng 3.3.15",
            program: needed[1].clone(),
            args: &["-q", "--system"],
            platform: Platform::Rhel8,
            boot: false,
        },
        Applier {
            name: "sysctl --system, procps-ng 4.0.2",
            program: "/usr/sbin/sysctl".into(),
            args: &["-q", "--system"],
            platform: Platform::Current,
            boot: false,
        },
    ];
    let programs: Vec<(std::path::PathBuf, &[&str])> = appliers.iter().map(|a| (a.program.clone(), a.args)).collect();
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
    let all = trees(520);
    let mut tallies: Vec<Tally> = appliers.iter().map(|_| Tally::default()).collect();
    // An appliance of unknown version, at boot and with `sysctl --system`.
    let (mut boot_any, mut system_any) = (Tally::default(), Tally::default());
    let started = std::time::Instant::now();
    for (n, t) in all.iter().enumerate() {
        tree.lay_out_tree(t);
        let seen = tree.recorded(&programs);
        let owned = t.tool_files();
        let files: Vec<(&str, &[u8])> = owned.iter().map(|(p, c)| (p.as_str(), c.as_slice())).collect();
        let dirs = t.directories();
        let unreadable: Vec<(&str, &str)> = dirs.iter().map(|p| (p.as_str(), "a directory")).collect();
        let tool = |boot: bool, platforms: &[Platform]| {
            asked(|| {
                if boot {
                    sysctl::effective_at_boot_with(&files, &unreadable, KEY, platforms)
                } else {
                    sysctl::effective_with(&files, &unreadable, KEY, platforms)
                }
            })
        };
        let mut truths: Vec<(bool, Option<String>)> = Vec::new();
        for ((a, tally), (here, wrote)) in appliers.iter().zip(&mut tallies).zip(&seen) {
            tally.trees += 1;
            let case = |what: String| format!("tree {n}: {}: wrote {}; {what}", t.describe(), shown_all(wrote));
            // This machine's kernel read what was written as the model says kernel 6 does.
            let model = after_writes(Kernel::V6, SENTINEL, wrote);
            if model.as_ref().is_some_and(|m| m != here) {
                tally
                    .kernel_differs
                    .push(case(format!("kernel 6 holds {here}, model {model:?}")));
            }
            let truth = after_writes(a.platform.kernel(), "0", wrote);
            truths.push((a.boot, truth.clone()));
            let says = match tool(a.boot, &[a.platform]) {
                Ok(says) => says,
                Err(panic) => {
                    tally.panics.push(case(format!("the tool panics: {panic}")));
                    continue;
                }
            };
            let Some(truth) = truth else {
                tally.beyond_model += 1;
                if says.value.is_some() {
                    tally
                        .claims_beyond_model
                        .push(case(format!("the tool says {}", said(&says))));
                }
                continue;
            };
            match &says.value {
                None => tally.cannot_tell += 1,
                Some(v) if v == "0" && truth != "0" => tally
                    .dangerous
                    .push(case(format!("gives {truth}, the tool says {}", said(&says)))),
                Some(_) => {}
            }
            if truth == "0" && says.value.as_deref() != Some("0") {
                tally
                    .conservative
                    .push(case(format!("gives 0, the tool says {}", said(&says))));
            } else if truth != "0" && says.value.as_ref().is_some_and(|v| v != "0" && *v != truth) {
                tally
                    .other_value
                    .push(case(format!("gives {truth}, the tool says {}", said(&says))));
            }
        }
        for (boot, tally) in [(true, &mut boot_any), (false, &mut system_any)] {
            tally.trees += 1;
            let gives: Vec<&Option<String>> = truths.iter().filter(|(b, _)| *b == boot).map(|(_, t)| t).collect();
            let case = |what: String| format!("tree {n}: {}: programs give {gives:?}; {what}", t.describe());
            let says = match tool(boot, &Platform::ALL) {
                Ok(says) => says,
                Err(panic) => {
                    tally.panics.push(case(format!("the tool panics: {panic}")));
                    continue;
                }
            };
            match &says.value {
                None => tally.cannot_tell += 1,
                Some(v) if v == "0" && gives.iter().any(|g| g.as_deref() != Some("0")) => {
                    tally.dangerous.push(case(format!("the tool says {}", said(&says))))
                }
                Some(_) => {}
            }
            if gives.iter().all(|g| g.as_deref() == Some("0")) && says.value.as_deref() != Some("0") {
                tally.conservative.push(case(format!("the tool says {}", said(&says))));
            }
        }
    }
    use std::io::Write as _;
    let mut failures = 0;
    let mut report = String::new();
    for (a, tally) in appliers.iter().zip(&tallies) {
        failures +=
            tally.dangerous.len() + tally.kernel_differs.len() + tally.claims_beyond_model.len() + tally.panics.len();
        report.push_str(&tally.line(&format!("tree differential, {} as on {}", a.name, a.platform.name())));
        report.push('\n');
        report.push_str(&tally.examples());
    }
    for (what, tally) in [("at boot", &boot_any), ("sysctl --system", &system_any)] {
        failures += tally.dangerous.len() + tally.panics.len();
        report.push_str(&tally.line(&format!("tree differential, {what}, platform unknown")));
        report.push('\n');
        report.push_str(&tally.examples());
    }
    let _ = writeln!(
        std::io::stderr(),
        "{report}tree differential: {} trees x {} programs in {:.0?}",
        all.len(),
        appliers.len(),
        started.elapsed()
    );
    assert!(all.len() >= 500);
    assert_eq!(
        failures, 0,
        "{failures} dangerous, kernel, beyond-the-model or panic failures (listed above)"
    );
}
