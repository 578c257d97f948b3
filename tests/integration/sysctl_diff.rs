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
