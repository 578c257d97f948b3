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
    let out = std::process::Command::new("bash").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let runs: Vec<&[u8]> = out.stdout.split(|&b| b == 1).collect();
    assert_eq!(runs.len(), accepted.len() + 1);
    for ((line, w), run) in accepted.iter().zip(runs) {
        let bash: Vec<String> = run
            .split(|&b| b == 0)
            .filter(|_| !run.is_empty())
            .take_while(|_| true)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        // printf ends with a NUL, so the split leaves one empty piece after the last word.
        let bash = &bash[..bash.len().saturating_sub(1)];
        // `p` is the first word bash sees; the model reads the words after it.
        assert_eq!(bash, &w.words[..], "line {line:?}");
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
        let bash = std::process::Command::new("bash").arg("-n").arg(path).output().unwrap();
        assert_eq!(
            script.stopped.is_none(),
            bash.status.success(),
            "{}: reader {:?}, bash -n {}",
            path.display(),
            script.stopped,
            String::from_utf8_lossy(&bash.stderr)
        );
        whole += usize::from(script.stopped.is_none());
    }
    assert!(
        whole + 3 >= scripts.len(),
        "only {whole} of {} read whole",
        scripts.len()
    );
}
