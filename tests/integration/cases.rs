//! Snapshot-comparison tests: the real binary over every upgrade pair in `testdata/`, with its
//! reports and the files it writes compared byte for byte against the goldens beside each case.

use std::fs;
use std::path::{Path, PathBuf};

use crate::testenv::{assert_golden, testdata, TestEnv};

/// The old side of a case: a root tree (`before/`) or a stored snapshot (`snapshot/`).
fn old_side(case: &Path) -> PathBuf {
    let before = case.join("before");
    if before.is_dir() {
        before
    } else {
        case.join("snapshot")
    }
}

fn check_case(name: &str) {
    let case = testdata().join(name);
    let expected = case.join("expected");
    let old = old_side(&case);
    let old_arg = old.display().to_string();
    let after = case.join("after");

    // diff, text and JSON, read-only on the fixture trees.
    let env = TestEnv::new();
    let (text, code) = env.run(&["diff", &old_arg, &after.display().to_string()]);
    assert_golden(&expected.join("diff.txt"), &text);
    let (json, json_code) = env.run(&["--json", "diff", &old_arg, &after.display().to_string()]);
    assert_golden(&expected.join("diff.json"), &json);
    assert_eq!(code, json_code);

    // dry run: the plan, and not one byte changed.
    let env = TestEnv::from_tree(&after);
    let untouched = env.files();
    let (text, _) = env.run(&["restore", "--from", &old_arg, "--dry-run"]);
    assert_golden(&expected.join("dry-run.txt"), &text);
    assert_eq!(env.files(), untouched, "{name}: --dry-run changed files");

    // restore for real.
    let env = TestEnv::from_tree(&after);
    let (text, code) = env.run(&["restore", "--from", &old_arg, "--no-restart"]);
    assert_golden(&expected.join("restore.txt"), &text);
    let now = env.files();
    // Exit 2: an error, nothing changed. Exit 1: restored, with lines refused for the admin.
    if code == 2 {
        assert_eq!(now, untouched, "{name}: a failed restore changed files");
        assert!(
            !expected.join("root").exists(),
            "{name}: failed case with expected files"
        );
        return;
    }
    let golden_root = expected.join("root");
    if std::env::var_os("IWSS_KEEPER_BLESS").is_some() {
        let _ = fs::remove_dir_all(&golden_root);
        for (path, (bytes, _)) in &now {
            let is_backup = path.to_string_lossy().contains(".org.");
            if !is_backup && untouched.get(path).map(|(b, _)| b) != Some(bytes) {
                let dest = golden_root.join(path);
                fs::create_dir_all(dest.parent().unwrap()).unwrap();
                fs::write(dest, bytes).unwrap();
            }
        }
    }
    for (path, (bytes, mode)) in &now {
        let name_text = path.to_string_lossy();
        if let Some(pos) = name_text.find(".org.") {
            // A backup: the file's bytes and mode from before the restore.
            let original = PathBuf::from(&name_text[..pos]);
            assert_eq!(
                untouched.get(&original),
                Some(&(bytes.clone(), *mode)),
                "{name}: backup {name_text}"
            );
            continue;
        }
        let golden = golden_root.join(path);
        if golden.exists() {
            assert_eq!(
                bytes,
                &fs::read(&golden).unwrap(),
                "{name}: {} differs from {}",
                name_text,
                golden.display()
            );
            assert_eq!(
                Some(*mode),
                untouched.get(path).map(|(_, m)| *m),
                "{name}: {name_text} lost its mode"
            );
        } else {
            assert_eq!(
                Some(&(bytes.clone(), *mode)),
                untouched.get(path),
                "{name}: {name_text} changed"
            );
        }
    }
    if golden_root.exists() {
        for entry in walkdir::WalkDir::new(&golden_root).into_iter().map(Result::unwrap) {
            if entry.file_type().is_file() {
                let rel = entry.path().strip_prefix(&golden_root).unwrap();
                assert!(now.contains_key(rel), "{name}: restore did not write {}", rel.display());
            }
        }
    }

    // A second restore changes no byte (lines refused the first time stay refused: same code).
    let first = code;
    let (text, code) = env.run(&["restore", "--from", &old_arg, "--no-restart"]);
    assert_eq!(code, first, "{text}");
    assert!(text.contains("nothing to restore"), "{name}: second restore: {text}");
    assert_eq!(env.files(), now, "{name}: second restore changed files");
}

macro_rules! cases {
    ($($test:ident => $dir:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_case($dir);
            }
        )*

        #[test]
        fn every_fixture_has_a_test() {
            let mut dirs: Vec<String> = fs::read_dir(testdata())
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| e.path().join("after").is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            dirs.sort();
            let mut listed = vec![$($dir.to_string()),*];
            listed.sort();
            assert_eq!(dirs, listed);
        }
    };
}

cases! {
    iwsva_sp2_to_sp3 => "iwsva-sp2-to-sp3",
    iwsva_sp1_to_sp2 => "iwsva-sp1-to-sp2",
    iwsva_sp3_to_sp3p1 => "iwsva-sp3-to-sp3p1",
    iwss_p2_to_p3 => "iwss-p2-to-p3",
    iwsva_kept_everything => "iwsva-kept-everything",
    iwsva_vendor_rewrote_stateful => "iwsva-vendor-rewrote-stateful",
    bad_injected_shell => "bad-injected-shell",
    bad_no_anchor => "bad-no-anchor",
    bad_version => "bad-version",
    bad_corrupted_snapshot => "bad-corrupted-snapshot",
}
