//! The shell model against bash itself.

use iwss_keeper::domain::shell::{words, Words};

/// The words against bash itself: each line that `words` accepts is run as the arguments of a
/// function that prints them NUL-separated; bash must pass exactly the words the model read.
#[test]
fn words_agree_with_bash() {
    let pieces = [
        "a",
        "-s",
        "192.0.2.1",
        "'x y'",
        "\"q r\"",
        "a\\ b",
        "\\#",
        "#c",
        "a#b",
        "\"a\\\"b\"",
        "'it'\\''s'",
        "--x=1",
        "!",
        "\"\\\\\"",
        "\"\\q\"",
        "''",
        "\"\"",
        "\\\n",
        "\t",
        "\r",
        "a\rb",
        "é",
    ];
    let mut lines = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let mut line = String::new();
        for _ in 0..1 + (seed % 6) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            line.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            if seed % 3 != 0 {
                line.push(' ');
            }
        }
        lines.push(line);
    }
    let accepted: Vec<(&String, Words)> = lines
        .iter()
        .filter_map(|l| words(l.as_bytes()).ok().map(|w| (l, w)))
        .filter(|(_, w)| !w.words.is_empty())
        .collect();
    assert!(accepted.len() > 1000, "only {} lines accepted", accepted.len());
    let mut script = String::from("set -f\np() { printf '%s\\0' \"$@\"; printf '\\1'; }\n");
    for (line, _) in &accepted {
        script.push_str("p ");
        script.push_str(line);
        script.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sh");
    std::fs::write(&path, &script).unwrap();
    for bash in bashes() {
        let out = std::process::Command::new(&bash).arg(&path).output().unwrap();
        assert!(out.status.success(), "{bash}: {}", String::from_utf8_lossy(&out.stderr));
        same_words(&accepted, &out.stdout, &bash);
    }
}

/// The appliances' bash (4.2 and 4.4, when built) and this machine's: the targets the shell model
/// follows. CI builds them; elsewhere the ones missing are left out, saying so.
fn bashes() -> Vec<String> {
    let mut all = vec!["bash".to_string()];
    for v in ["4.2.45", "4.4.19"] {
        let b = crate::rule_diff::authorities().join(format!("bash-{v}/bin/bash"));
        if crate::testenv::require(
            &format!("bash {v} as an authority"),
            (!b.exists()).then(|| format!("no {}", b.display())),
        ) {
            all.push(b.display().to_string());
        }
    }
    all
}

/// Each accepted line's words as `bash` passed them (printed NUL-separated, runs split by \x01).
fn same_words(accepted: &[(&String, Words)], stdout: &[u8], bash: &str) {
    let runs: Vec<&[u8]> = stdout.split(|&b| b == 1).collect();
    assert_eq!(runs.len(), accepted.len() + 1, "{bash}");
    for ((line, w), run) in accepted.iter().zip(runs) {
        let got: Vec<String> = run
            .split(|&b| b == 0)
            .filter(|_| !run.is_empty())
            .take_while(|_| true)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        // printf ends with a NUL, so the split leaves one empty piece after the last word.
        let got = &got[..got.len().saturating_sub(1)];
        // `p` is the first word bash sees; the model reads the words after it.
        assert_eq!(got, &w.words[..], "{bash}: line {line:?}");
    }
}

/// Every firewall script the project bundles (test cases, fuzz seeds) is read as bash reads it:
/// whole when `bash -n` takes it (no construct the reader does not model, so none leaves a
/// `status` at "not understood" for good), stopped when bash rejects it.
#[test]
fn every_bundled_script_is_read_as_bash_reads_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts: Vec<std::path::PathBuf> = walkdir::WalkDir::new(root.join("testdata"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "iwsvafw.sh")
        .map(|e| e.into_path())
        .collect();
    scripts.extend(
        std::fs::read_dir(root.join("fuzz/seeds/firewall"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    assert!(scripts.len() > 20, "{} scripts", scripts.len());
    let mut whole = 0;
    for path in &scripts {
        let bytes = std::fs::read(path).unwrap();
        let script = iwss_keeper::domain::firewall::Script::parse(&bytes);
        for bash in bashes() {
            let checked = std::process::Command::new(&bash).arg("-n").arg(path).output().unwrap();
            assert_eq!(
                script.stopped.is_none(),
                checked.status.success(),
                "{}: reader {:?}, {bash} -n {}",
                path.display(),
                script.stopped,
                String::from_utf8_lossy(&checked.stderr)
            );
        }
        if path.starts_with(root.join("testdata")) {
            whole += usize::from(script.stopped.is_none());
        }
    }
    // Every test case's script is one bash runs, so every one is read whole.
    let cases = scripts.iter().filter(|p| p.starts_with(root.join("testdata"))).count();
    assert_eq!(whole, cases, "test case scripts read whole");
}

/// The testdata SP2 script with `extra` after the stateful line (and `before_start` before
/// `start()`), compared with the SP3 script (`new_extra` put in the same places): each address
/// with whether it is restored, or `None` when no entry names it.
fn decisions(extra: &str, before_start: &str, new_header: &str) -> Vec<(String, Option<bool>)> {
    use iwss_keeper::domain::compare::{compare, Pair};
    use iwss_keeper::domain::config::Config;
    use iwss_keeper::domain::snapshot::Snapshot;
    use iwss_keeper::domain::version::parse_version;
    let case = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/iwsva-sp2-to-sp3");
    let read = |side: &str| std::fs::read_to_string(case.join(side).join("usr/iwss/iwsvafw.sh")).unwrap();
    let anchor = "-j ACCEPT # stateful\n";
    let old = read("before")
        .replace(anchor, &format!("{anchor}{extra}"))
        .replace("start() {", &format!("{before_start}start() {{"));
    let new = read("after").replacen("#!/bin/bash\n", &format!("#!/bin/bash\n{new_header}"), 1);
    let snap = |version: &str, text: String| {
        Snapshot::in_memory(
            parse_version(version, None).unwrap(),
            vec![("/usr/iwss/iwsvafw.sh".into(), text.into_bytes())],
        )
    };
    let (before, after) = (
        snap("IWSVA 6.5-SP2_Build_Linux_1784", old),
        snap("IWSVA 6.5-SP3_Build_Linux_1916", new),
    );
    let config = Config::default();
    let pair = Pair::read(&before, &after, &config.firewall_script).unwrap();
    let cmp = compare(&pair, &config).unwrap();
    // Where rules are restored, the plan puts them where they run (it reads its output back).
    if cmp.needs_restore() {
        iwss_keeper::domain::plan::plan(&pair, &cmp, &config).expect("a plan whose rules run where written");
    }
    ["192.0.2.1", "198.51.100.0", "203.0.113.7", "203.0.113.8"]
        .iter()
        .map(|a| {
            let entry = cmp.discarded.iter().find(|d| d.text.contains(a));
            (a.to_string(), entry.map(|d| d.restore))
        })
        .collect()
}

const R7: &str = "    IPTABLE ipv4 -A INPUT -p tcp -s 203.0.113.7 -j ACCEPT\n";

/// Constructs that change what runs, each checked against what bash 4.2, 4.4 and 5.2 run: a rule
/// is restored only where bash ran it, and a rule bash ran is never left unreported.
#[test]
fn constructs_that_change_what_runs() {
    let restored = |extra: &str, before_start: &str| decisions(extra, before_start, "")[2].1;
    // Switched off: never restored.
    for dead in [
        format!("    i\\\nf false; then\n{R7}    fi\n"),
        format!("    return 0\n{R7}"),
        format!("    exit 0\n{R7}"),
        format!("    false &&\n{R7}"),
        format!("    cat >/dev/null <<'E\"X\"Y'\nEXY\n{R7}E\"X\"Y\n"),
        format!("    set -e\n{R7}"),
    ] {
        assert_ne!(restored(&dead, ""), Some(true), "{dead}");
    }
    // Run: restored, or at least reported.
    assert_eq!(
        restored(&format!("    cat >/dev/null <<EOF\nE\\\nOF\n{R7}"), ""),
        Some(true)
    );
    assert_eq!(
        restored(&format!("    cat >/dev/null <<$'EOF'\nEOF\n{R7}"), ""),
        Some(true)
    );
    for indirect in [
        "    $IPT -A INPUT -p tcp -s 203.0.113.7 -j ACCEPT\n",
        "    eval 'IPTABLE ipv4 -A INPUT -s 203.0.113.7 -j ACCEPT'\n",
        "    trap 'IPTABLE ipv4 -A INPUT -s 203.0.113.7 -j ACCEPT' EXIT\n",
    ] {
        assert_eq!(restored(indirect, ""), Some(false), "{indirect}");
    }
    // A rule only in a function nobody calls in the new script is not kept by being there.
    let legacy = "legacy() { IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT; }\n";
    assert_eq!(decisions("", "", legacy)[0].1, Some(true));
    // A header comment that starts with "Stateful" is not where restored rules go.
    let header = decisions("", "", "# Stateful packet filter: see start() below\n");
    assert_eq!(header[0].1, Some(true));
}

/// Deep nesting of every form the reader recurses into stops it, never the process.
#[test]
fn deep_nesting_stops_the_reader_not_the_process() {
    for (open, close) in [
        ("${x:-", "}"),
        ("\"$(", ")\""),
        ("$(( ", " ))"),
        ("$[", "]"),
        ("$\"", "\""),
        ("x=(", ")"),
    ] {
        let text = format!("echo {}a{}\n", open.repeat(20_000), close.repeat(20_000));
        let script = iwss_keeper::domain::firewall::Script::parse(text.as_bytes());
        assert!(script.stopped.is_some(), "{open}");
    }
}
