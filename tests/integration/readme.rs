//! The README's "On an appliance" section, run: every command of its `console` blocks on the
//! bundled example appliance, its output compared with what the README shows.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use regex::Regex;

use crate::testenv::{copy_tree, testdata, Run, TestEnv};

/// The heading of the section whose blocks are checked; it ends at the next `## ` heading.
const SECTION: &str = "## On an appliance";

/// The upgrade the section walks through.
const CASE: &str = "iwsva-sp2-to-sp3";

/// One command of a `console` block and what the README shows it printing.
struct Shown {
    /// The block it is in, counted from 0 within the section.
    block: usize,
    /// Its line in README.md, from 1.
    line: usize,
    /// The arguments after `iwss-keeper`.
    args: Vec<String>,
    /// The lines after the command, up to the next command or the end of the block.
    output: String,
}

impl Shown {
    fn command(&self) -> String {
        format!("iwss-keeper {}", self.args.join(" "))
    }
}

/// The commands of the section's `console` blocks, in order.
fn shown(readme: &str) -> Vec<Shown> {
    let mut lines = readme.lines().enumerate().map(|(i, l)| (i + 1, l));
    lines
        .by_ref()
        .find(|(_, l)| l.trim_end() == SECTION)
        .unwrap_or_else(|| panic!("README.md has no `{SECTION}` section"));
    let mut out: Vec<Shown> = Vec::new();
    let mut blocks = 0;
    // Some(true) inside a console block, Some(false) inside another fenced block.
    let mut fence: Option<bool> = None;
    for (n, line) in lines {
        match fence {
            None if line.starts_with("## ") => break,
            None if line.starts_with("```") => {
                let console = line.trim_end() == "```console";
                if console {
                    blocks += 1;
                }
                fence = Some(console);
            }
            None => {}
            Some(_) if line.trim_end() == "```" => fence = None,
            Some(false) => {}
            Some(true) => {
                if let Some(command) = line.strip_prefix("# ") {
                    let mut words = command.split_whitespace().map(str::to_string);
                    assert_eq!(
                        words.next().as_deref(),
                        Some("iwss-keeper"),
                        "README.md:{n}: a command in `{SECTION}` must run iwss-keeper"
                    );
                    out.push(Shown {
                        block: blocks - 1,
                        line: n,
                        args: words.collect(),
                        output: String::new(),
                    });
                } else {
                    let cmd = out
                        .last_mut()
                        .filter(|c| c.block == blocks - 1)
                        .unwrap_or_else(|| panic!("README.md:{n}: output before any `# iwss-keeper` line"));
                    cmd.output.push_str(line);
                    cmd.output.push('\n');
                }
            }
        }
    }
    out
}

/// A stand-in for iptables or ip6tables: keeps the filter table in files under the root, each
/// rule as it was given, and prints it all for `-S`. It touches no kernel, so the example needs
/// neither root nor a network namespace. The tool reads `-S` with its own rule model, so rules
/// printed as given are read as iptables' canonical form would be.
const IPTABLES_STAND_IN: &str = r#"#!/bin/sh
# A stand-in for NAME in the README's example appliance: no kernel is touched.
s=STATE/NAME
[ "$1" = -w ] && shift
case "$1" in
    -F) : > "$s.rules" ;;
    -X) : > "$s.chains" ;;
    -P) printf '%s\n' "$3" > "$s.policy.$2" ;;
    -N) printf -- '-N %s\n' "$2" >> "$s.chains" ;;
    -A) printf '%s\n' "$*" >> "$s.rules" ;;
    -S) for c in INPUT FORWARD OUTPUT; do
            p=ACCEPT
            [ -f "$s.policy.$c" ] && read -r p < "$s.policy.$c"
            printf -- '-P %s %s\n' "$c" "$p"
        done
        for f in "$s.chains" "$s.rules"; do
            [ -f "$f" ] || continue
            while IFS= read -r l; do printf '%s\n' "$l"; done < "$f"
        done ;;
    *) echo "NAME (stand-in): $*: not modelled" >&2; exit 2 ;;
esac
"#;

/// A stand-in for `iptables-restore --test`: accepts what it reads (the rules restored here are
/// ones the real program loads).
const RESTORE_STAND_IN: &str = "#!/bin/sh\n# A stand-in for NAME --test in the README's example appliance.\n\
                                while IFS= read -r l; do :; done\n";

/// The example appliance: IWSVA 6.5 SP2 from `testdata/CASE/before`, running systemd, its
/// firewall started through the stand-ins, `tcp_rfc1337` 0 in its `/proc`, the tool's state in
/// its default place.
fn appliance() -> TestEnv {
    let mut env = TestEnv::from_tree(&testdata().join(CASE).join("before"));
    env.state = env.root.join("var/lib/iwss-keeper");
    fs::create_dir_all(env.root.join("usr/lib/systemd/system")).unwrap();
    let tables = env.root.join("run/iptables");
    fs::create_dir_all(&tables).unwrap();
    let sbin = env.root.join("usr/sbin");
    fs::create_dir_all(&sbin).unwrap();
    for name in ["iptables", "ip6tables"] {
        for (program, text) in [
            (name.to_string(), IPTABLES_STAND_IN),
            (format!("{name}-restore"), RESTORE_STAND_IN),
        ] {
            let path = sbin.join(program);
            let text = text
                .replace("NAME", name)
                .replace("STATE", &tables.display().to_string());
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let proc_sys = env.root.join("proc/sys/net/ipv4");
    fs::create_dir_all(&proc_sys).unwrap();
    fs::write(proc_sys.join("tcp_rfc1337"), "0\n").unwrap();
    firewall(&env, "start");
    env
}

/// Runs the appliance's firewall script, as the appliance does at boot and an upgrade package
/// does after it replaced the script.
fn firewall(env: &TestEnv, action: &str) {
    let run = Run::of(
        std::process::Command::new(env.root.join("usr/iwss/iwsvafw.sh"))
            .arg(action)
            .env("PATH", env.root.join("usr/sbin")),
    );
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "iwsvafw.sh {action}: {run:?}");
}

/// The vendor's upgrade: the SP3 package lays its files over the appliance and restarts the
/// firewall from its new script.
fn upgrade(env: &TestEnv) {
    copy_tree(&testdata().join(CASE).join("after"), &env.root);
    firewall(env, "restart");
}

/// The appliance's root shown as `/`.
fn as_on_the_appliance(text: &str, root: &Path) -> String {
    let root = root.display().to_string();
    text.replace(&format!("{root}/"), "/").replace(&root, "/")
}

/// Snapshot ids, backup stamps and times, which differ at every run, as fixed tokens.
fn tokens(text: &str) -> String {
    let replacements = [
        (r"\.org\.\d{8}T\d{6}Z", ".org.[STAMP]"),
        (r"\b\d{8}T\d{6}Z-[0-9a-f]{6}\b", "[ID]"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]"),
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}", "[LOCAL TIME]"),
    ];
    replacements.iter().fold(text.to_string(), |text, (pattern, token)| {
        Regex::new(pattern).unwrap().replace_all(&text, *token).into_owned()
    })
}

/// Every command of the README's "On an appliance" section prints what the README shows.
///
/// How the section is read: a fenced block with the info string `console` is a root shell; each
/// line starting with `# ` is a command (always `iwss-keeper ...`, without `--root`), and the
/// lines after it, up to the next `# ` line or the end of the block, are what it prints: its
/// stdout, then its stderr, as a terminal shows them (an output line cannot itself start with
/// `# `). Exit codes are said in the prose, not checked here.
///
/// How it runs: on a copy of `testdata/iwsva-sp2-to-sp3/before` made to behave like a running
/// appliance without root or a network namespace (stand-ins for iptables, ip6tables and
/// `iptables-restore --test` that keep the loaded rules in files, a `/proc/sys` file for
/// `tcp_rfc1337`, systemd's unit directory), each command gets `--root TREE --state-dir
/// TREE/var/lib/iwss-keeper`. The vendor upgrade (the `after/` tree laid over the root, the
/// firewall restarted) happens right before the first `diff`, which must open a block: the prose
/// before that block is where the README says the upgrade runs.
///
/// How it compares: the tree's path is `/` on the appliance, so it is replaced by `/` in the
/// tool's output; snapshot ids, backup stamps and times are replaced by fixed tokens on both
/// sides, so the README can show real-looking ones.
///
/// With `IWSS_KEEPER_BLESS=1` it also prints the blocks as the tool prints them now, for pasting
/// into README.md (it never writes README.md), and still fails when they differ.
#[test]
fn the_readme_appliance_blocks_are_what_the_tool_prints() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = fs::read_to_string(&readme_path).unwrap();
    let commands = shown(&readme);
    assert!(!commands.is_empty(), "README.md: no `console` blocks in `{SECTION}`");
    let upgrade_at = commands
        .iter()
        .position(|c| c.args.first().map(String::as_str) == Some("diff"))
        .unwrap_or_else(|| panic!("README.md: `{SECTION}` never runs `iwss-keeper diff` after the upgrade"));
    assert!(
        upgrade_at > 0 && commands[upgrade_at - 1].block != commands[upgrade_at].block,
        "README.md:{}: the first `diff` must open a block, after the prose that says the upgrade runs",
        commands[upgrade_at].line
    );

    let env = appliance();
    let bless = std::env::var_os("IWSS_KEEPER_BLESS").is_some();
    let mut blessed = String::new();
    let mut failures = Vec::new();
    for (i, shown) in commands.iter().enumerate() {
        if i == upgrade_at {
            upgrade(&env);
        }
        let args: Vec<&str> = shown.args.iter().map(String::as_str).collect();
        let printed = as_on_the_appliance(&env.keeper(&args).text(), &env.root);
        if bless {
            if i == 0 || commands[i - 1].block != shown.block {
                blessed.push_str(if i == 0 { "```console\n" } else { "```\n\n```console\n" });
            }
            blessed.push_str(&format!("# {}\n{printed}", shown.command()));
        }
        let (expected, actual) = (tokens(&shown.output), tokens(&printed));
        if expected != actual {
            let diff = similar::TextDiff::from_lines(&expected, &actual)
                .unified_diff()
                .header("README.md", "what it prints")
                .to_string();
            failures.push(format!(
                "README.md:{}: `{}` prints otherwise:\n{diff}",
                shown.line,
                shown.command()
            ));
        }
    }
    if bless {
        blessed.push_str("```\n");
        // Written to the stderr handle: the harness would hide eprintln! of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "--- the `{SECTION}` blocks as the tool prints them now:\n{blessed}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} command(s) of `{SECTION}` print otherwise than README.md shows \
         (IWSS_KEEPER_BLESS=1 prints the blocks as they are now):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
