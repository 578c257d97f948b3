//! What a person at a terminal gets: colour on a pseudo-terminal only (never piped, under
//! `--color never`, `NO_COLOR` or `--json`), completions every shell reads, man pages for the
//! tool and each command, commands listed in the order an admin uses them.

use crate::testenv::{have, require, testdata, Run, TestEnv};

/// Runs the binary with `args` on a pseudo-terminal (`script`), with `env` set: what it printed.
fn on_a_terminal(env: &TestEnv, args: &str, vars: &[(&str, &str)]) -> String {
    let bin = assert_cmd::cargo::cargo_bin("iwss-keeper");
    let line = format!(
        "{} --root {} --state-dir {} {args}",
        bin.display(),
        env.root.display(),
        env.state.display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("NO_COLOR");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Run::of(&mut cmd).stdout
}

#[test]
fn colour_on_a_terminal_and_nowhere_else() {
    if !require(
        "colour_on_a_terminal_and_nowhere_else",
        (!have("script")).then(|| "no `script`".into()),
    ) {
        return;
    }
    let case = testdata().join("iwsva-sp2-to-sp3");
    let env = TestEnv::from_tree(&case.join("after"));
    let before = case.join("before");
    let dry_run = format!("restore --dry-run --from {}", before.display());
    let tty = on_a_terminal(&env, &dry_run, &[]);
    assert!(
        tty.contains("\x1b[32m+    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT"),
        "{tty:?}"
    );
    assert!(tty.contains("\x1b[36m@@"), "{tty:?}");
    for (args, vars) in [
        (format!("--color never {dry_run}"), vec![]),
        (dry_run.clone(), vec![("NO_COLOR", "1")]),
        (format!("--json {dry_run}"), vec![]),
    ] {
        let out = on_a_terminal(&env, &args, &vars);
        assert!(
            !out.contains('\x1b') && out.contains("192.0.2.1"),
            "{args} {vars:?}: {out:?}"
        );
    }
    // Piped: none, even with a terminal TERM.
    let piped = Run::of(env.cmd_std().args(dry_run.split(' ')).env("TERM", "xterm"));
    assert!(
        !piped.stdout.contains('\x1b') && piped.stdout.contains("192.0.2.1"),
        "{}",
        piped.stdout
    );
    let always = Run::of(env.cmd_std().args(["--color", "always"]).args(dry_run.split(' ')));
    assert!(always.stdout.contains("\x1b[32m+"), "{}", always.stdout);
}

#[test]
fn completions_are_read_by_each_shell() {
    let env = TestEnv::new();
    for (shell, check) in [
        ("bash", ["bash", "-n"]),
        ("zsh", ["zsh", "-n"]),
        ("fish", ["fish", "-n"]),
    ] {
        if !require(
            "completions_are_read_by_each_shell",
            (!have(shell)).then(|| format!("no {shell} to check its completions")),
        ) {
            continue;
        }
        let out = env.keeper(&["completions", shell]);
        assert_eq!(out.code, 0, "{}", out.text());
        assert!(
            out.stdout.contains("restore") && out.stdout.contains("status"),
            "{shell}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("iwss-keeper.{shell}"));
        std::fs::write(&file, &out.stdout).unwrap();
        let checked = Run::of(std::process::Command::new(check[0]).arg(check[1]).arg(&file));
        assert_eq!(checked.code, 0, "{shell}: {}", checked.text());
    }
}

#[test]
fn man_pages_for_the_tool_and_each_command() {
    let env = TestEnv::new();
    let page = env.keeper(&["man"]);
    assert_eq!(page.code, 0, "{}", page.text());
    assert!(
        page.stdout.starts_with(".ie") || page.stdout.contains(".TH iwss-keeper"),
        "{}",
        page.stdout
    );
    let restore = env.keeper(&["man", "restore"]);
    assert!(
        restore.stdout.contains(".TH iwss-keeper-restore") && restore.stdout.contains("dry\\-run"),
        "{}",
        restore.stdout
    );
    let none = env.keeper(&["man", "hook"]);
    assert_eq!(none.code, 2, "the internal hook command has no page: {}", none.text());
}

#[test]
fn help_lists_commands_in_the_order_an_admin_uses_them() {
    let env = TestEnv::new();
    let help = env.keeper(&["--help"]);
    let order = [
        "status",
        "diff",
        "restore",
        "undo",
        "snapshot",
        "list",
        "show",
        "forget",
        "prune",
        "prune-backups",
        "register",
        "unregister",
        "completions",
        "man",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|c| {
            help.stdout
                .find(&format!("\n  {c} "))
                .unwrap_or_else(|| panic!("{c} not listed: {}", help.stdout))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{}", help.stdout);
    assert!(!help.stdout.contains("\n  hook "), "{}", help.stdout);
    // A near miss suggests the command meant.
    let typo = env.keeper(&["restor"]);
    assert!(typo.stderr.contains("'restore'"), "{}", typo.stderr);
}
