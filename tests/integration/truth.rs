//! `status`, the hooks and the log tell the truth: a refused line keeps `status` at exit 1 until
//! restored by hand or ignored by config; nothing set up is exit 1; a setting that stops checking
//! `tcp_rfc1337` is exit 4 with a warning; a signal during `hook post-install` exits 0 and leaves
//! the marker, no child and whole files; a failed pre-install restores nothing by itself; the
//! log names what a restore did, each step once, in order. The real iptables in network
//! namespaces, as root.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::testenv::{require, require_netns, testdata, Live, Run, TestEnv, Upgrade};

/// The binary inside `live`'s namespace with `args`, not waited for.
fn spawn(live: &Live, args: &[&str]) -> std::process::Child {
    live.ns
        .command(assert_cmd::cargo::cargo_bin("iwss-keeper"))
        .arg("--root")
        .arg(&live.env.root)
        .arg("--state-dir")
        .arg(&live.env.state)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Lays the `new` tree over the root, as the package does between the hooks.
fn lay(live: &Live, new: &str) {
    crate::testenv::copy_tree(&testdata().join(new), &live.env.root);
}

/// Processes whose command line names the root (a restart and what it started).
fn children_of(root: &Path) -> Vec<String> {
    let needle = root.display().to_string();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle) && !c.contains("iwss-keeper"))
        .collect()
}

/// SP1 -> SP2 on a registered appliance: pre-install, the package's files, post-install.
fn upgraded_through_the_hooks() -> Live {
    let live = Upgrade::before("iwsva-sp1-to-sp2").with_rfc1337(0).in_netns();
    assert_eq!(live.keeper(&["register"]).code, 0);
    assert_eq!(live.keeper(&["hook", "pre-install"]).code, 0);
    lay(&live, "iwsva-sp1-to-sp2/after");
    assert_eq!(live.keeper(&["hook", "post-install"]).code, 0);
    live
}

#[test]
fn a_refused_line_keeps_status_at_1_until_ignored_by_config() {
    if !require_netns("a_refused_line_keeps_status_at_1_until_ignored_by_config") {
        return;
    }
    let live = Upgrade::of("iwsva-sp2-to-sp3").with_rfc1337(0).in_netns();
    let before = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    let script = before.root.join("usr/iwss/iwsvafw.sh");
    let lb = "    IPTABLE ipv4 -A INPUT -p tcp -s 198.51.100.0/24 -j ACCEPT # load balancer pool\n";
    let host = "    IPTABLE ipv4 -A INPUT -p tcp -s proxy.example -j ACCEPT\n";
    let text = fs::read_to_string(&script).unwrap().replace(lb, &format!("{lb}{host}"));
    fs::write(&script, text).unwrap();
    assert_eq!(live.keeper_on(&before.root, None, &["snapshot"]).code, 0);
    assert_eq!(live.keeper(&["register"]).code, 0);
    let restore = live.keeper(&["restore"]);
    assert_eq!(restore.code, 1, "{}", restore.text());
    let status = live.keeper(&["status"]);
    assert_eq!(status.code, 1, "{}", status.text());
    assert!(
        status
            .stdout
            .contains("line     25 IPTABLE ipv4 -A INPUT -p tcp -s proxy.example -j ACCEPT: NOT RESTORED (")
            && status.stdout.contains("ignore_rules"),
        "{}",
        status.text()
    );
    // The todo names the configuration in use.
    let other = live.env.dir.path().join("other.toml");
    fs::write(&other, "").unwrap();
    let status = live.keeper(&["--config", other.to_str().unwrap(), "status"]);
    let todo = format!("name them in ignore_rules in {}\n", other.display());
    assert!(status.stdout.contains(&todo), "{}", status.text());
    // The admin decides: recorded in the config, `status` says so and is content.
    live.env
        .write_config("ignore_rules = [\"IPTABLE ipv4 -A INPUT -p tcp -s proxy.example -j ACCEPT\"]\n");
    let status = live.keeper(&["status"]);
    assert_eq!(status.code, 0, "{}", status.text());
    assert!(status.stdout.contains(": ignored by config ("), "{}", status.text());
}

#[test]
fn nothing_set_up_is_exit_1_and_says_what_to_run() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let status = env.keeper(&["status"]);
    assert_eq!(status.code, 1, "{}", status.text());
    for needle in [
        "snapshot none",
        "todo     no snapshot to restore from: run `iwss-keeper register`",
        "todo     hooks and boot guard not registered: run `iwss-keeper register`",
    ] {
        assert!(status.stdout.contains(needle), "{needle}: {}", status.text());
    }
    // Every UNKNOWN shows why: this tree has no iptables to ask.
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    assert_eq!(env.keeper(&["register"]).code, 0);
    let status = env.keeper(&["status"]);
    assert!(
        status.stdout.contains("ipv4 UNKNOWN (no iptables under the root)"),
        "{}",
        status.text()
    );
}

#[test]
fn a_config_that_stops_checking_rfc1337_is_a_warning_and_cannot_tell() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    env.write_config("managed_sysctl = [\"net.ipv4.tcp_rfc1338\"]\n");
    assert_eq!(env.keeper(&["register"]).code, 0);
    let status = env.keeper(&["status"]);
    assert_eq!(status.code, 4, "{}", status.text());
    let warning = "managed_sysctl does not list net.ipv4.tcp_rfc1337";
    assert!(
        status.stdout.contains("warning  ") && status.stdout.contains(warning),
        "{}",
        status.text()
    );
    // Every command says it.
    let list = env.keeper(&["list"]);
    assert!(list.stderr.contains(warning), "{}", list.text());
}

/// A seed for the signal timings, printed so a failure can be replayed
/// (`IWSS_KEEPER_SIGNAL_SEED`).
fn signal_seed() -> u64 {
    let seed = std::env::var("IWSS_KEEPER_SIGNAL_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("signal timings: IWSS_KEEPER_SIGNAL_SEED={seed:#x}");
    seed
}

/// One upgrade whose post-install hook gets `signal` `delay` into a restart that takes
/// `slow` seconds, with `grace` seconds of grace: exit 0, the marker, no child left, whole
/// files, `status` exit 1; then the boot guard finishes and `status` exits 0.
fn signalled_post_install(signal: i32, delay: Duration, slow: u32, grace: Option<u32>) {
    let live = Upgrade::before("iwsva-sp1-to-sp2").with_rfc1337(0).in_netns();
    if let Some(secs) = grace {
        live.env.write_config(&format!("signal_grace_secs = {secs}\n"));
    }
    assert_eq!(live.keeper(&["register"]).code, 0);
    let pre = live.keeper(&["hook", "pre-install"]);
    assert_eq!(pre.code, 0, "{}", pre.text());
    lay(&live, "iwsva-sp1-to-sp2/after");
    let script = live.env.root.join("usr/iwss/iwsvafw.sh");
    let upgraded = fs::read(&script).unwrap();
    fs::write(live.env.root.join("etc/init.d/slow-once"), slow.to_string()).unwrap();
    let mut hook = spawn(&live, &["hook", "post-install"]);
    std::thread::sleep(delay);
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(hook.id() as i32, signal) };
    let status = hook.wait().unwrap();
    let what = format!("signal {signal} after {delay:?}, restart {slow}s, grace {grace:?}");
    assert_eq!(status.code(), Some(0), "{what}: {}", live.env.log());
    let pending = fs::read_to_string(live.env.state.join("pending.json"))
        .unwrap_or_else(|_| panic!("{what}: no pending marker: {}", live.env.log()));
    assert!(pending.contains("SIG"), "{what}: {pending}");
    assert!(
        children_of(&live.env.root).is_empty(),
        "{what}: {:?}",
        children_of(&live.env.root)
    );
    let now = fs::read(&script).unwrap();
    let restored = fs::read(testdata().join("iwsva-sp1-to-sp2/expected/root/usr/iwss/iwsvafw.sh")).unwrap();
    assert!(
        now == upgraded || now == restored,
        "{what}: the script is neither whole version"
    );
    assert_eq!(
        Run::of(std::process::Command::new("bash").arg("-n").arg(&script)).code,
        0
    );
    let status = live.keeper(&["status"]);
    assert_eq!(status.code, 1, "{what}: {}", status.text());
    // The boot guard finishes the owed restore.
    let guard = live.keeper(&["hook", "boot"]);
    assert_eq!(guard.code, 0, "{what}: {}", guard.text());
    let status = live.keeper(&["status"]);
    assert_eq!(status.code, 0, "{what}: {}\n{}", status.text(), live.env.log());
}

#[test]
fn a_signal_during_post_install_exits_0_and_leaves_the_marker() {
    if !require_netns("a_signal_during_post_install_exits_0_and_leaves_the_marker") {
        return;
    }
    let mut seed = signal_seed();
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // Inside the 3-second restart (the hook reaches it within about 0.3 s).
        let delay = Duration::from_millis(600 + next() % 1800);
        signalled_post_install(signal, delay, 3, None);
    }
    // Past the grace: the restart is stopped, the previous files and restart put back.
    signalled_post_install(libc::SIGTERM, Duration::from_millis(800 + next() % 400), 6, Some(1));
}

#[test]
fn a_failed_pre_install_restores_nothing_by_itself() {
    if !require_netns("a_failed_pre_install_restores_nothing_by_itself") {
        return;
    }
    let live = Upgrade::before("iwsva-sp2-to-sp3").with_rfc1337(0).in_netns();
    assert_eq!(live.keeper(&["register"]).code, 0);
    // The admin revokes the load balancer rule on SP2 (the baseline still has it).
    let script = live.env.root.join("usr/iwss/iwsvafw.sh");
    let lb = "    IPTABLE ipv4 -A INPUT -p tcp -s 198.51.100.0/24 -j ACCEPT # load balancer pool\n";
    fs::write(&script, fs::read_to_string(&script).unwrap().replace(lb, "")).unwrap();
    live.start_firewall();
    // The pre-install hook cannot take the lock: it fails.
    live.env.write_config("lock_timeout_secs = 1\n");
    let lock = live.env.state.join("lock");
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "2"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pre = live.keeper(&["hook", "pre-install"]);
    assert_eq!(pre.code, 0, "{}", pre.text());
    let _ = holder.wait();
    lay(&live, "iwsva-sp2-to-sp3/after");
    let post = live.keeper(&["hook", "post-install"]);
    assert_eq!(post.code, 0, "{}", post.text());
    // Nothing restored from the older baseline: the revoked rule stays revoked.
    assert!(!fs::read_to_string(&script).unwrap().contains("198.51.100.0/24"));
    assert!(!live.ns.iptables_s().contains("198.51.100.0/24"));
    let status = live.keeper(&["status"]);
    assert_eq!(status.code, 1, "{}", status.text());
    assert!(
        status.stdout.contains("did not finish") && status.stdout.contains("`iwss-keeper restore --from "),
        "{}",
        status.text()
    );
}

#[test]
fn the_log_of_a_hook_restore_names_what_it_did_once_in_order() {
    if !require_netns("the_log_of_a_hook_restore_names_what_it_did_once_in_order") {
        return;
    }
    let live = upgraded_through_the_hooks();
    let log = live.env.log();
    let at = |needle: &str| {
        assert_eq!(log.matches(needle).count(), 1, "{needle:?} not once:\n{log}");
        log.find(needle).unwrap()
    };
    let order = [
        at("iptables-restore --test: the 1 rule(s) to restore load"),
        at("usr/iwss/iwsvafw.sh (1 edit(s))"),
        at("/etc/sysctl.conf: set net.ipv4.tcp_rfc1337 = 0"),
        at("restored rule (old line 23): IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT"),
        at("firewall restart: `/etc/init.d/iptables restart` exited 0"),
        at("running net.ipv4.tcp_rfc1337: "),
        at("hook post-install done"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}\n{log}");
    // The restore's record holds the rules and the sysctl lines too.
    let records = fs::read_dir(live.env.state.join("restores")).unwrap().count();
    assert_eq!(records, 1);
}

#[test]
fn undone_rules_are_undone_not_missing() {
    if !require_netns("undone_rules_are_undone_not_missing") {
        return;
    }
    let live = upgraded_through_the_hooks();
    let undo = live.keeper(&["undo"]);
    assert_eq!(undo.code, 0, "{}", undo.text());
    assert!(
        undo.stdout.contains("removed as intended") && !undo.stdout.contains("MISSING"),
        "{}",
        undo.text()
    );
    let status = live.keeper(&["status"]);
    assert!(
        status.stdout.contains("192.0.2.1/32 -p tcp -j ACCEPT: undone on "),
        "{}",
        status.text()
    );
}

#[test]
fn the_lock_names_its_holder_only_while_it_lives() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    env.write_config("lock_timeout_secs = 1\n");
    fs::create_dir_all(&env.state).unwrap();
    let lock = env.state.join("lock");
    fs::write(&lock, "999999\n").unwrap();
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "5"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let run = env.keeper(&["snapshot"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr.contains("the pid noted, 999999, has exited") && !run.stderr.contains("run (pid 999999)"),
        "{}",
        run.text()
    );
}

#[test]
fn without_root_a_command_says_it_needs_root_and_read_only_ones_work() {
    if !require(
        "without_root_a_command_says_it_needs_root_and_read_only_ones_work",
        (!crate::testenv::is_root()).then(|| "needs root to run a command as another user".to_string()),
    ) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    crate::testenv::copy_tree(&testdata().join("iwsva-sp2-to-sp3/after"), &root);
    for d in [dir.path(), root.as_path()] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(root.join("usr/iwss"), fs::Permissions::from_mode(0o700)).unwrap();
    let bin = dir.path().join("iwss-keeper");
    fs::copy(assert_cmd::cargo::cargo_bin("iwss-keeper"), &bin).unwrap();
    let as_nobody = |args: &[&str]| {
        Run::of(
            std::process::Command::new(&bin)
                .args(args)
                .uid(65534)
                .gid(65534)
                .current_dir("/"),
        )
    };
    let state = dir.path().join("state");
    let status = as_nobody(&[
        "--root",
        root.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "status",
    ]);
    assert_eq!(status.code, 2, "{}", status.text());
    assert!(
        status.stderr.contains("needs root: ") && status.stderr.contains("usr/iwss/version"),
        "{}",
        status.text()
    );
    // A read-only command on readable trees works for any user.
    let old = testdata().join("iwsva-sp2-to-sp3/before");
    let copy = dir.path().join("cases");
    crate::testenv::copy_tree(old.parent().unwrap(), &copy);
    let diff = as_nobody(&[
        "--root",
        root.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "diff",
        copy.join("before").to_str().unwrap(),
        copy.join("after").to_str().unwrap(),
    ]);
    assert_eq!(diff.code, 1, "{}", diff.text());
}
