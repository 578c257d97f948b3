//! Custom rules against bash itself. Seeded firewall scripts hold custom ACCEPT rules in every
//! shell context an admin's edit may put them in (conditions, lists, pipelines, subshells,
//! substitutions, heredocs, quoted strings, comments, functions called and never called, the top
//! level); each is upgraded to the vendor skeleton without them. The bash of each appliance
//! (4.2, 4.4) and this machine's bash run every script with `iptables` and `ip6tables` standing
//! in as recorders, so the rules each bash runs are known exactly. For each bash:
//!
//! - every rule the tool restores is one that bash ran in the old script;
//! - every rule bash ran in the old script is restored or reported, never silently lost;
//! - every rule the tool restores runs, in the restored script, when that bash runs it.
//!
//! The generator's own account of which rules run is checked against each bash too, so a broken
//! script or driver cannot pass for agreement. Without the appliances' bash builds
//! (`IWSS_KEEPER_AUTHORITIES`) the test is skipped, loudly; under `CI=true` or
//! `IWSS_KEEPER_REQUIRE_AUTHORITIES` that is a failure. `IWSS_KEEPER_BASH_DIFF_SEED=N` replays
//! another seed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use iwss_keeper::domain::compare::{compare, DiscardedRule, Pair};
use iwss_keeper::domain::config::Config;
use iwss_keeper::domain::plan::plan;
use iwss_keeper::domain::snapshot::Snapshot;
use iwss_keeper::domain::version::parse_version;

use crate::testenv::require;

const SCRIPTS: usize = 2000;
const DEFAULT_SEED: u64 = 0x5eed_ba54_d1ff_0001;
/// Each script draws its custom rules' addresses from its own block of this many, so an address
/// names one rule in the whole run.
const BLOCK: u32 = 256;
const OLD_VERSION: &str = "IWSVA 6.5-SP2_Build_Linux_1548";
const NEW_VERSION: &str = "IWSVA 6.5-SP3_Build_Linux_1916";
const SYSCTL: &[u8] = b"net.ipv4.tcp_rfc1337 = 0\n";
/// How long one bash may take over every script before the test gives up on it.
const BASH_DEADLINE: Duration = Duration::from_secs(300);

const HEAD: &str = "#!/bin/bash
IPTABLE() {
    case \"$1\" in
        ipv4) shift; iptables \"$@\" ;;
        ipv6) shift; ip6tables \"$@\" ;;
        *) iptables \"$@\"; ip6tables \"$@\" ;;
    esac
}
";
const START_HEAD: &str = "start() {
    IPTABLE -P INPUT DROP
    IPTABLE -A INPUT -i lo -j ACCEPT
    IPTABLE -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT # stateful
";
const START_TAIL: &str = "    IPTABLE -N ACL_IN
    IPTABLE -A INPUT -j ACL_IN
    wait
}
";
const TAIL: &str = "case \"$1\" in
    start|restart|\"\") start ;;
    stop) IPTABLE -F ;;
esac
";

/// Sources each script in a subshell with recording stand-ins for `iptables` and `ip6tables`.
/// The records go to fd 3, which no command substitution or redirection in a script captures.
const DRIVER: &str = r#"exec 3>&1
printf '\001BASH %s\n' "$BASH_VERSION"
for f in "$1"/*.sh; do
    printf '\001FILE %s\n' "${f##*/}"
    ( iptables() { printf '\001REC 4 %s\n' "$*" >&3; }
      ip6tables() { printf '\001REC 6 %s\n' "$*" >&3; }
      set -- start
      . "$f" ) </dev/null >/dev/null 2>&1
done
exit 0
"#;

/// xorshift64: the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut rng = Self(seed | 1);
        for _ in 0..4 {
            rng.next();
        }
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// A custom-rule address, `10.A.B.C`, as the number `A.B.C`.
fn dotted(addr: u32) -> String {
    format!("10.{}.{}.{}", (addr >> 16) & 255, (addr >> 8) & 255, addr & 255)
}

/// Every `10.A.B.C` address in a text (a mask after it is left off).
fn addresses(text: &str) -> Vec<u32> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|word| {
            let octets: Vec<u32> = word.split('.').map(|o| o.parse().ok()).collect::<Option<_>>()?;
            match octets[..] {
                [10, a, b, c] if a < 256 && b < 256 && c < 256 => Some((a << 16) | (b << 8) | c),
                _ => None,
            }
        })
        .collect()
}

/// One generated script, before and after the upgrade.
struct Case {
    before: String,
    after: String,
    /// Every custom-rule address written, run or not.
    written: usize,
    /// The addresses bash runs, as the generator built the script.
    expected: BTreeSet<u32>,
}

/// The state of one script's generation.
struct Gen {
    rng: Rng,
    next: u32,
    end: u32,
    written: usize,
    expected: BTreeSet<u32>,
    /// Whether the code being written runs at all (false inside a function never called).
    live: bool,
}

impl Gen {
    fn new(seed: u64, index: usize) -> Self {
        let first = index as u32 * BLOCK + 1;
        Self {
            rng: Rng::new(seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            next: first,
            end: first + BLOCK - 1,
            written: 0,
            expected: BTreeSet::new(),
            live: true,
        }
    }

    /// The text of a fresh custom rule; `runs`: whether bash runs it where it is written.
    fn rule(&mut self, runs: bool) -> String {
        assert!(self.next < self.end, "too many rules for one address block");
        let addr = self.next;
        self.next += 1;
        self.written += 1;
        if runs && self.live {
            self.expected.insert(addr);
        }
        format!("IPTABLE ipv4 -A INPUT -p tcp -s {} -j ACCEPT", dotted(addr))
    }

    /// A custom rule's text where bash never runs it (data, a comment, dead code).
    fn data(&mut self) -> String {
        self.rule(false)
    }
}

/// How many kinds of item [`item`] writes.
const ITEM_KINDS: usize = 44;
/// The kind of item that is a comment alone.
const COMMENT: usize = 38;
const I: &str = "    ";

/// One item of the admin's additions, of the given kind: lines indented for a function body,
/// without the last newline.
fn item(g: &mut Gen, kind: usize) -> String {
    match kind {
        0 => format!("{I}{}", g.rule(true)),
        1 => continued(g),
        2 => format!("{I}if false; then {}; fi", g.rule(false)),
        3 => format!("{I}if true; then {}; fi", g.rule(true)),
        4 => if_chain(g),
        5 => format!("{I}false && {}", g.rule(false)),
        6 => format!("{I}true && {}", g.rule(true)),
        7 => format!("{I}false || {}", g.rule(true)),
        8 => format!("{I}true || {}", g.rule(false)),
        9 => format!("{I}! {}", g.rule(true)),
        10 => format!("{I}{} | cat", g.rule(true)),
        11 => format!("{I}{} &", g.rule(true)),
        12 => format!("{I}( {} )", g.rule(true)),
        13 => format!("{I}{{ {}; }}", g.rule(true)),
        14 => format!("{I}: ; {}", g.rule(true)),
        15 => format!("{I}{} ; :", g.rule(true)),
        16 => format!("{I}while false; do {}; done", g.rule(false)),
        17 => format!("{I}until true; do {}; done", g.rule(false)),
        18 => format!("{I}for x in 1; do {}; done", g.rule(true)),
        19 => format!("{I}for x in; do {}; done", g.rule(false)),
        // In a function `$1` is the function's (empty): the `""` pattern matches.
        20 => format!("{I}case \"$1\" in start|restart|\"\") {} ;; esac", g.rule(true)),
        21 => format!("{I}case x in y) {} ;; esac", g.rule(false)),
        22 => format!("{I}x=$((1<<8))\n{I}{}", g.rule(true)),
        23 => format!("{I}y=$[1<<2]\n{I}{}", g.rule(true)),
        24 => format!("{I}(( z = 1 << 3 ))\n{I}{}", g.rule(true)),
        25 => format!("{I}echo $'it\\'s' >/dev/null\n{I}{}", g.rule(true)),
        26 => format!("{I}echo $'a\\' {}' >/dev/null\n{I}{}", g.data(), g.rule(true)),
        27 => format!("{I}echo $'a\\'; {}' >/dev/null\n{I}{}", g.data(), g.rule(true)),
        28 => format!("{I}echo $\"hi\" >/dev/null\n{I}{}", g.rule(true)),
        29 => heredoc(g, "EOF"),
        30 => heredoc(g, "'EOF'"),
        31 => format!("\tcat >/dev/null <<-EOF\n\t{}\n\tEOF\n{I}{}", g.data(), g.rule(true)),
        32 => format!("{I}cat <<< \"{}\" >/dev/null\n{I}{}", g.data(), g.rule(true)),
        33 => format!("{I}v=$({})", g.rule(true)),
        34 => format!("{I}: \"$({})\"", g.rule(true)),
        35 => format!("{I}cat <({}) >/dev/null", g.rule(true)),
        36 => format!("{I}x=\"a\n{I}{}\n\"\n{I}{}", g.data(), g.rule(true)),
        37 => format!("{I}x='a\n{I}{}\n'\n{I}{}", g.data(), g.rule(true)),
        COMMENT => format!("{I}# {}", g.data()),
        39 => format!("{I}[[ -n x ]] && {}", g.rule(true)),
        40 => format!("{I}echo \"$(echo \")\")\" >/dev/null\n{I}{}", g.rule(true)),
        // A command on the heredoc's own line runs after it; the body is data.
        41 => format!("{I}cat >/dev/null <<EOF; {}\n{I}{}\nEOF", g.rule(true), g.data()),
        42 => format!("{I}{} # it's the proxy", g.rule(true)),
        43 => format!("{I}if false; then\n{I}{I}{}\n{I}fi\n{I}{}", g.rule(false), g.rule(true)),
        _ => unreachable!("item kind {kind}"),
    }
}

/// A rule split over lines by backslash-newlines: between words, or (rarely) inside the address.
fn continued(g: &mut Gen) -> String {
    let rule = g.rule(true);
    let mut words: Vec<String> = rule.split(' ').map(String::from).collect();
    if g.rng.one_in(4) {
        // Inside a word the continuation joins the halves: the next line starts at column 0.
        let addr = &mut words[7];
        let cut = 3 + g.rng.below(addr.len() - 3);
        addr.insert_str(cut, "\\\n");
    }
    let mut out = I.to_string();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(if g.rng.one_in(3) { " \\\n        " } else { " " });
        }
        out.push_str(word);
    }
    out
}

/// A multi-line if/elif/else with a rule in each branch; bash runs the one branch taken.
fn if_chain(g: &mut Gen) -> String {
    let (first, second) = (g.rng.one_in(2), g.rng.one_in(2));
    let word = |b: bool| if b { "true" } else { "false" };
    let a = g.rule(first);
    let b = g.rule(!first && second);
    let c = g.rule(!first && !second);
    format!(
        "{I}if {}; then\n{I}{I}{a}\n{I}elif {}; then\n{I}{I}{b}\n{I}else\n{I}{I}{c}\n{I}fi",
        word(first),
        word(second)
    )
}

/// A heredoc (delimiter written as `delimiter`) whose body holds rule texts, then a rule.
fn heredoc(g: &mut Gen, delimiter: &str) -> String {
    let mut out = format!("{I}cat >/dev/null <<{delimiter}\n");
    for _ in 0..1 + g.rng.below(2) {
        out.push_str(&format!("{I}{}\n", g.data()));
    }
    out.push_str(&format!("EOF\n{I}{}", g.rule(true)));
    out
}

/// A heredoc whose body substitutes a rule's output: bash runs the rule.
fn command_heredoc(g: &mut Gen) -> String {
    format!("{I}cat >/dev/null <<EOF\nbefore $({})\nEOF", g.rule(true))
}

/// A function holding custom rules, and the line calling it when it is called.
fn helper(g: &mut Gen, slot: usize) -> (String, Option<String>) {
    let called = g.rng.one_in(2);
    let name = match (called, slot) {
        (true, 0) => "custom_rules",
        (true, _) => "site_rules",
        (false, 0) => "disabled_rules",
        (false, _) => "old_rules",
    };
    g.live = called;
    let mut out = if g.rng.one_in(3) {
        format!("function {name} {{\n")
    } else {
        format!("{name}() {{\n")
    };
    let mut commands = false;
    for _ in 0..1 + g.rng.below(2) {
        let kind = g.rng.below(ITEM_KINDS);
        commands |= kind != COMMENT;
        out.push_str(&item(g, kind));
        out.push('\n');
    }
    // A function body of comments alone is a syntax error.
    if !commands {
        out.push_str(&format!("{I}:\n"));
    }
    out.push_str("}\n");
    g.live = true;
    (out, called.then(|| format!("{I}{name}")))
}

/// The script of number `index`: the admin's before the upgrade, the vendor's after it.
fn generate(seed: u64, index: usize) -> Case {
    let mut g = Gen::new(seed, index);
    let mut helpers = String::new();
    let mut calls = Vec::new();
    for slot in 0..g.rng.below(3) {
        let (function, call) = helper(&mut g, slot);
        helpers.push_str(&function);
        calls.extend(call);
    }
    let mut items = Vec::new();
    for _ in 0..3 + g.rng.below(6) {
        let kind = g.rng.below(ITEM_KINDS);
        items.push(item(&mut g, kind));
    }
    if g.rng.one_in(50) {
        items.push(command_heredoc(&mut g));
    }
    for call in calls {
        let at = g.rng.below(items.len() + 1);
        items.insert(at, call);
    }
    let top = if g.rng.one_in(2) {
        format!("{}\n", g.rule(true))
    } else {
        String::new()
    };
    let body: String = items.iter().map(|i| format!("{i}\n")).collect();
    Case {
        before: format!("{HEAD}{helpers}{START_HEAD}{body}{START_TAIL}{top}{TAIL}"),
        after: format!("{HEAD}{START_HEAD}{START_TAIL}{TAIL}"),
        written: g.written,
        expected: g.expected,
    }
}

/// What the tool says of one script: the discarded entries, and the restored script (`None`
/// when it restores nothing because it refused: an error, shown in `error`).
struct Told {
    entries: Vec<DiscardedRule>,
    restored: Option<String>,
    error: Option<String>,
}

impl Told {
    /// The addresses each entry covers: its canonical rule's, else (a line compared by its
    /// text, which may hold several calls) every one in its text.
    fn covered(&self) -> BTreeMap<u32, usize> {
        let mut out = BTreeMap::new();
        for (k, d) in self.entries.iter().enumerate() {
            let mut found = addresses(&d.canonical);
            if found.is_empty() {
                found = addresses(&d.text);
            }
            for a in found {
                out.entry(a).or_insert(k);
            }
        }
        out
    }

    /// The addresses of the entries to restore.
    fn restores(&self) -> BTreeMap<u32, usize> {
        let mut out = BTreeMap::new();
        for (k, d) in self.entries.iter().enumerate().filter(|(_, d)| d.restore) {
            for a in addresses(&d.canonical) {
                out.entry(a).or_insert(k);
            }
        }
        out
    }
}

fn snapshot(version: &str, script: &str) -> Snapshot {
    Snapshot::in_memory(
        parse_version(version, None).unwrap(),
        vec![
            ("/usr/iwss/iwsvafw.sh".into(), script.as_bytes().to_vec()),
            ("/etc/sysctl.conf".into(), SYSCTL.to_vec()),
        ],
    )
}

/// Compares the case's two scripts and plans the restore, in memory.
fn ask_tool(case: &Case, config: &Config) -> Told {
    let before = snapshot(OLD_VERSION, &case.before);
    let after = snapshot(NEW_VERSION, &case.after);
    let pair = Pair::read(&before, &after, &config.firewall_script).unwrap();
    let cmp = match compare(&pair, config) {
        Ok(cmp) => cmp,
        Err(e) => {
            return Told {
                entries: Vec::new(),
                restored: None,
                error: Some(format!("compare: {e:#}")),
            }
        }
    };
    let (restored, error) = match plan(&pair, &cmp, config) {
        Ok(p) => {
            let script = p.changes.into_iter().find(|c| c.path == config.firewall_script);
            let text = script.map_or_else(|| case.after.clone(), |c| String::from_utf8_lossy(&c.new).into_owned());
            (Some(text), None)
        }
        Err(e) => (None, Some(format!("plan: {e:#}"))),
    };
    Told {
        entries: cmp.discarded,
        restored,
        error,
    }
}

/// One bash to ask.
struct Bash {
    name: &'static str,
    program: PathBuf,
}

/// What one bash ran of each script: per address, the families (bit 1: IPv4, bit 2: IPv6).
#[derive(Default)]
struct Ran {
    version: String,
    by_file: HashMap<String, BTreeMap<u32, u8>>,
}

impl Ran {
    fn of(&self, file: &str) -> BTreeSet<u32> {
        self.by_file
            .get(file)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }
}

fn parse_ran(out: &str) -> Ran {
    let mut ran = Ran::default();
    let mut file: Option<String> = None;
    for line in out.split('\n') {
        if let Some(v) = line.strip_prefix("\u{1}BASH ") {
            ran.version = v.to_string();
        } else if let Some(name) = line.strip_prefix("\u{1}FILE ") {
            ran.by_file.entry(name.to_string()).or_default();
            file = Some(name.to_string());
        } else if let Some(rec) = line.strip_prefix("\u{1}REC ") {
            let bit = if rec.starts_with('4') { 1 } else { 2 };
            let name = file.as_ref().expect("a record before any file");
            let runs = ran.by_file.get_mut(name).unwrap();
            for a in addresses(rec) {
                *runs.entry(a).or_default() |= bit;
            }
        }
    }
    ran
}

/// Starts `bash` on the driver over every script in `dir`; its records go to `out`.
fn spawn_bash(bash: &Bash, dir: &Path, out: &Path) -> std::process::Child {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(out).unwrap();
    std::process::Command::new(&bash.program)
        .arg("-c")
        .arg(DRIVER)
        .arg("driver")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bash.program.display()))
}

/// Runs every script in `dir` through each bash at once, one process per bash.
fn run_all(bashes: &[Bash], dir: &Path) -> Vec<Ran> {
    let outs: Vec<PathBuf> = (0..bashes.len()).map(|k| dir.join(format!("bash{k}.out"))).collect();
    let mut children: Vec<_> = bashes.iter().zip(&outs).map(|(b, o)| spawn_bash(b, dir, o)).collect();
    let started = Instant::now();
    for (child, bash) in children.iter_mut().zip(bashes) {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "bash {} driver: {status}", bash.name);
                break;
            }
            if started.elapsed() > BASH_DEADLINE {
                let _ = child.kill();
                panic!("bash {} still running after {BASH_DEADLINE:?}", bash.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    outs.iter()
        .map(|o| {
            let text = String::from_utf8_lossy(&std::fs::read(o).unwrap()).into_owned();
            let _ = std::fs::remove_file(o);
            parse_ran(&text)
        })
        .collect()
}

fn original(i: usize) -> String {
    format!("o{i:05}.sh")
}

fn restored(i: usize) -> String {
    format!("r{i:05}.sh")
}

/// A finding against one script under one bash.
struct Offense {
    script: usize,
    bash: usize,
    kind: &'static str,
    addr: u32,
    entry: Option<usize>,
}

/// The bashes, or why one is missing.
fn bashes() -> Result<Vec<Bash>, String> {
    let auth = crate::rule_diff::authorities();
    let all = vec![
        Bash {
            name: "4.2.45",
            program: auth.join("bash-4.2.45/bin/bash"),
        },
        Bash {
            name: "4.4.19",
            program: auth.join("bash-4.4.19/bin/bash"),
        },
        Bash {
            name: "/bin/bash",
            program: "/bin/bash".into(),
        },
    ];
    match all.iter().find(|b| !b.program.exists()) {
        Some(b) => Err(format!("no {} (../shared/authorities/build.sh)", b.program.display())),
        None => Ok(all),
    }
}

fn seed() -> u64 {
    std::env::var("IWSS_KEEPER_BASH_DIFF_SEED").map_or(DEFAULT_SEED, |s| {
        let s = s.trim();
        s.strip_prefix("0x")
            .map_or_else(|| s.parse(), |h| u64::from_str_radix(h, 16))
            .expect("IWSS_KEEPER_BASH_DIFF_SEED: a number")
    })
}

/// The offenses of one script under one bash.
fn judge(script: usize, bash: usize, case: &Case, told: &Told, ran: &Ran, out: &mut Vec<Offense>) {
    let run = ran.of(&original(script));
    let covered = told.covered();
    let restores = told.restores();
    let mut push = |kind, addr, entry| {
        out.push(Offense {
            script,
            bash,
            kind,
            addr,
            entry,
        })
    };
    // The script runs as it was built to: the generator and the driver are sound.
    for a in run.symmetric_difference(&case.expected) {
        push("generator_expected_otherwise", *a, None);
    }
    for (a, k) in &restores {
        if !run.contains(a) {
            push("restored_not_run", *a, Some(*k));
        }
    }
    for a in &run {
        if !covered.contains_key(a) {
            push("run_not_reported", *a, None);
        }
    }
    if told.restored.is_some() {
        let again = ran.of(&restored(script));
        for (a, k) in &restores {
            if !again.contains(a) {
                push("restored_dead", *a, Some(*k));
            }
        }
    }
}

fn entry_text(d: &DiscardedRule) -> String {
    format!(
        "line {} restore={} attention={} reason={:?} canonical={:?} text={:?}",
        d.line, d.restore, d.attention, d.reason, d.canonical, d.text
    )
}

fn numbered(text: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(n, l)| format!("{:4} | {l}\n", n + 1))
        .collect()
}

/// The first three scripts with offenses, in full, with what each bash and the tool said.
fn shown_failures(seed: u64, offenses: &[Offense], cases: &[Case], told: &[Told], bashes: &[Bash]) -> String {
    let mut scripts: Vec<usize> = offenses.iter().map(|o| o.script).collect();
    scripts.dedup();
    let mut out = String::new();
    for &s in scripts.iter().take(3) {
        out.push_str(&format!(
            "\n=== script #{s} (IWSS_KEEPER_BASH_DIFF_SEED={seed:#x}){}\n",
            told[s]
                .error
                .as_ref()
                .map(|e| format!("; tool error: {e}"))
                .unwrap_or_default()
        ));
        let mine: Vec<&Offense> = offenses.iter().filter(|o| o.script == s).collect();
        // One line per finding, with every bash it holds under.
        let mut findings: BTreeMap<(u32, &str), Vec<&str>> = BTreeMap::new();
        for o in &mine {
            findings.entry((o.addr, o.kind)).or_default().push(bashes[o.bash].name);
        }
        for ((addr, kind), under) in findings.iter().take(12) {
            let entry = mine
                .iter()
                .find(|o| o.addr == *addr && o.kind == *kind)
                .and_then(|o| o.entry)
                .map_or("no entry".to_string(), |k| entry_text(&told[s].entries[k]));
            out.push_str(&format!(
                "{kind} {} under bash {}; tool: {entry}\n",
                dotted(*addr),
                under.join(", ")
            ));
        }
        if findings.len() > 12 {
            out.push_str(&format!("... and {} more\n", findings.len() - 12));
        }
        out.push_str(&format!("--- before\n{}", numbered(&cases[s].before)));
        if let Some(r) = told[s]
            .restored
            .as_ref()
            .filter(|_| mine.iter().any(|o| o.kind == "restored_dead"))
        {
            out.push_str(&format!("--- restored\n{}", numbered(r)));
        }
    }
    out
}

fn say(line: String) {
    // To the stderr handle, not eprintln!, which the harness hides for passing tests: the counts
    // belong in the CI log.
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The counts of the run, to stderr.
fn report(seed: u64, cases: &[Case], told: &[Told], bashes: &[Bash], ran: &[Ran], offenses: &[Offense]) {
    let written: usize = cases.iter().map(|c| c.written).sum();
    let expected: usize = cases.iter().map(|c| c.expected.len()).sum();
    let restores: usize = told.iter().map(|t| t.restores().len()).sum();
    let errors = told.iter().filter(|t| t.error.is_some()).count();
    let reported = told.iter().map(|t| t.covered().len()).sum::<usize>() - restores;
    say(format!(
        "bash differential (seed {seed:#x}): {} scripts, {written} custom rules written ({expected} where bash runs them); the tool restores {restores}, reports {reported} more, fails on {errors} scripts",
        cases.len()
    ));
    for (k, (bash, r)) in bashes.iter().zip(ran).enumerate() {
        let run: usize = (0..cases.len()).map(|i| r.of(&original(i)).len()).sum();
        let count = |kind: &str| offenses.iter().filter(|o| o.bash == k && o.kind == kind).count();
        say(format!(
            "  bash {} ({}): {run} rules run; restored_not_run {}, run_not_reported {}, restored_dead {}, generator_expected_otherwise {}",
            bash.name,
            r.version,
            count("restored_not_run"),
            count("run_not_reported"),
            count("restored_dead"),
            count("generator_expected_otherwise"),
        ));
    }
    let disagree = (0..cases.len())
        .filter(|&i| {
            ran.iter()
                .any(|r| r.by_file.get(&original(i)) != ran[0].by_file.get(&original(i)))
        })
        .count();
    let entries = told.iter().flat_map(|t| &t.entries);
    let not_understood = entries
        .clone()
        .filter(|d| d.reason.starts_with("not understood"))
        .count();
    say(format!(
        "  scripts the bash versions run differently: {disagree}; entries not understood: {not_understood}"
    ));
    let mut groups: BTreeMap<&str, usize> = BTreeMap::new();
    for d in entries {
        *groups.entry(d.group.as_ref()).or_default() += 1;
    }
    let mut groups: Vec<(&str, usize)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    say("  entries by reason (top 15):".to_string());
    for (group, n) in groups.iter().take(15) {
        say(format!("    {n:6}  {group}"));
    }
}

#[test]
fn every_custom_rule_bash_runs_is_restored_or_reported() {
    let began = Instant::now();
    let bashes = match bashes() {
        Ok(b) => b,
        Err(why) => {
            assert!(
                std::env::var_os("IWSS_KEEPER_REQUIRE_AUTHORITIES").is_none(),
                "bash differential: {why}"
            );
            require("bash differential", Some(why));
            return;
        }
    };
    let seed = seed();
    let config = Config::default();
    let cases: Vec<Case> = (0..SCRIPTS).map(|i| generate(seed, i)).collect();
    let told: Vec<Told> = cases.iter().map(|c| ask_tool(c, &config)).collect();
    let dir = tempfile::tempdir().unwrap();
    for (i, (case, t)) in cases.iter().zip(&told).enumerate() {
        std::fs::write(dir.path().join(original(i)), &case.before).unwrap();
        let again = t.restored.as_deref().unwrap_or(&case.after);
        std::fs::write(dir.path().join(restored(i)), again).unwrap();
    }
    let ran = run_all(&bashes, dir.path());
    let mut offenses = Vec::new();
    for (i, (case, t)) in cases.iter().zip(&told).enumerate() {
        for (k, r) in ran.iter().enumerate() {
            judge(i, k, case, t, r, &mut offenses);
        }
    }
    report(seed, &cases, &told, &bashes, &ran, &offenses);
    say(format!("  took {:.1?}", began.elapsed()));
    assert!(
        offenses.is_empty(),
        "{} offenses (seed {seed:#x}); the first scripts:{}",
        offenses.len(),
        shown_failures(seed, &offenses, &cases, &told, &bashes)
    );
}
