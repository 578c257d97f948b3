//! The fleet playbook (`contrib/ansible/site.yml`) run for real by ansible-playbook, over a local
//! connection, against three sandbox appliance roots: one whose upgrade discarded custom rules,
//! one whose upgrade needed nothing, and one whose version file cannot be read. The package is
//! the RPM from `scripts/release.sh`, installed with `rpm --root` (its scriptlets run chrooted).
//!
//! Needs root, rpm, ansible-playbook and the release artifacts; without them it says SKIPPED,
//! and fails under `CI=true`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::testenv::{add_runtime, copy_tree, have, is_root, release, require, testdata, Release};
use serde_json::Value;

/// A sandbox appliance: the `before` tree of a testdata case, a snapshot of it, then the
/// `after` tree laid over it, as an upgrade that ran without iwss-keeper would leave it.
fn upgraded_appliance(root: &Path, case: &str, rel: &Release) {
    copy_tree(&testdata().join(case).join("before"), root);
    let out = rel.keeper(root, &["snapshot", "--label", "before the upgrade"]);
    assert!(out.status.success(), "{out:?}");
    copy_tree(&testdata().join(case).join("after"), root);
    add_runtime(root, &[&rel.binary]);
    // The running value the sandbox stands for, as a file: no kernel is behind it here.
    let proc = root.join("proc/sys/net/ipv4");
    fs::create_dir_all(&proc).unwrap();
    fs::write(proc.join("tcp_rfc1337"), "0\n").unwrap();
}

struct Fleet {
    dir: tempfile::TempDir,
    rel: Release,
}

impl Fleet {
    fn root(&self, host: &str) -> PathBuf {
        self.dir.path().join(host)
    }

    fn report_path(&self) -> PathBuf {
        self.dir.path().join("report.json")
    }

    fn inventory(&self) -> PathBuf {
        let path = self.dir.path().join("inventory.yml");
        let python = Command::new("sh").args(["-c", "command -v python3"]).output().unwrap();
        let mut text = format!(
            "iwss_appliances:\n  vars:\n    ansible_connection: local\n    ansible_python_interpreter: {}\n    \
             iwss_keeper_become: false\n    iwss_keeper_rpm_options: [\"--nodeps\"]\n    \
             iwss_keeper_package: {}\n    iwss_keeper_tmp: {}\n    iwss_keeper_report: {}\n  hosts:\n",
            String::from_utf8_lossy(&python.stdout).trim(),
            self.rel.rpm.display(),
            self.dir.path().display(),
            self.report_path().display()
        );
        for host in ["appliance-a", "appliance-b", "appliance-c"] {
            text.push_str(&format!(
                "    {host}:\n      iwss_keeper_root: {}\n",
                self.root(host).display()
            ));
        }
        fs::write(&path, text).unwrap();
        path
    }

    /// Runs the playbook; returns its output and the PLAY RECAP counters per host.
    fn play(&self, extra: &[&str]) -> (Output, BTreeMap<String, BTreeMap<String, u32>>) {
        let _ = fs::remove_file(self.report_path());
        let out = Command::new("ansible-playbook")
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/ansible"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
            .env("ANSIBLE_LOCAL_TEMP", self.dir.path().join("ansible-local"))
            .env("ANSIBLE_REMOTE_TEMP", self.dir.path().join("ansible-remote"))
            .arg("-i")
            .arg(self.inventory())
            .arg("site.yml")
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let recap = stdout
            .split("PLAY RECAP")
            .nth(1)
            .unwrap_or_else(|| panic!("no PLAY RECAP:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)))
            .lines()
            .filter_map(|l| l.split_once(" : "))
            .map(|(host, counts)| {
                let counts = counts
                    .split_whitespace()
                    .filter_map(|c| c.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
                    .collect();
                (host.trim().to_string(), counts)
            })
            .collect();
        (out, recap)
    }

    fn report(&self) -> Value {
        let text = fs::read_to_string(self.report_path()).expect("the playbook wrote no report");
        serde_json::from_str(&text).unwrap()
    }

    /// `iwss-keeper status --json` run directly on a host's root, and its exit code.
    fn status(&self, host: &str) -> (Value, i32) {
        let out = self.rel.keeper(&self.root(host), &["--json", "status"]);
        (serde_json::from_slice(&out.stdout).unwrap(), out.status.code().unwrap())
    }
}

fn fleet(test: &str) -> Option<Fleet> {
    let rel = release(test)?;
    let why = if !is_root() {
        Some("not running as root (rpm --root runs scriptlets in a chroot)".to_string())
    } else if !have("rpm") {
        Some("no rpm (apt-get install rpm)".to_string())
    } else if !have("ansible-playbook") {
        Some("no ansible-playbook (pip install 'ansible-core>=2.16,<2.17')".to_string())
    } else {
        None
    };
    if !require(test, why) {
        return None;
    }
    let fleet = Fleet {
        dir: tempfile::tempdir().unwrap(),
        rel,
    };
    upgraded_appliance(&fleet.root("appliance-a"), "iwsva-sp2-to-sp3", &fleet.rel);
    upgraded_appliance(&fleet.root("appliance-b"), "iwss-p2-to-p3", &fleet.rel);
    let c = fleet.root("appliance-c");
    copy_tree(&testdata().join("bad-version/after"), &c);
    add_runtime(&c, &[&fleet.rel.binary]);
    Some(fleet)
}

fn counts<'a>(recap: &'a BTreeMap<String, BTreeMap<String, u32>>, host: &str) -> &'a BTreeMap<String, u32> {
    recap
        .get(host)
        .unwrap_or_else(|| panic!("{host} not in the recap: {recap:?}"))
}

#[test]
fn playbook_installs_registers_and_reports_the_fleet() {
    let Some(fleet) = fleet("fleet playbook") else { return };

    // A package planted where an older role copied it: never installed, never touched.
    let planted = fleet.dir.path().join(fleet.rel.rpm.file_name().unwrap());
    fs::write(&planted, "not the package\n").unwrap();
    let (out, recap) = fleet.play(&[]);
    assert_eq!(fs::read_to_string(&planted).unwrap(), "not the package\n");
    let leftovers: Vec<_> = fs::read_dir(fleet.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("iwss-keeper."))
        .collect();
    assert!(leftovers.is_empty(), "private directories left: {leftovers:?}");
    // A host that errored fails the run, after the report is written.
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(counts(&recap, "appliance-a")["failed"], 0, "{recap:?}");
    assert_eq!(counts(&recap, "appliance-b")["failed"], 0, "{recap:?}");
    assert_eq!(counts(&recap, "appliance-c")["failed"], 1, "{recap:?}");
    for host in ["appliance-a", "appliance-b", "appliance-c"] {
        assert!(
            counts(&recap, host)["changed"] >= 1,
            "{host} installs the package: {recap:?}"
        );
        let root = fleet.root(host);
        assert!(root.join("usr/sbin/iwss-keeper").is_file(), "{host}");
    }

    let report = fleet.report();
    assert_eq!(
        report["summary"],
        serde_json::json!({"hosts": 3, "kept": 1, "missing": 1, "unknown": 0, "error": 1}),
        "{report:#}"
    );
    let package = format!("iwss-keeper-{}-1.x86_64", env!("CARGO_PKG_VERSION"));
    // The report holds each host's own `status --json`, as iwss-keeper prints it there.
    for (host, result, code) in [("appliance-a", "missing", 1), ("appliance-b", "kept", 0)] {
        let entry = &report["hosts"][host];
        assert_eq!(entry["result"], result, "{host}: {entry:#}");
        assert_eq!(entry["package"], package.as_str(), "{host}");
        let (status, rc) = fleet.status(host);
        assert_eq!(rc, code, "{host}: {status:#}");
        assert_eq!(entry["status"], status, "{host}");
        // The package's %post registered the hooks.
        let states: Vec<&Value> = status["registration"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| &f["state"])
            .collect();
        assert!(states.iter().all(|s| *s == "intact"), "{host}: {status:#}");
    }
    // appliance-a: the SP3 upgrade discarded both custom ACCEPT rules; the report says which.
    let rules = report["hosts"]["appliance-a"]["status"]["rules"].as_array().unwrap();
    let missing: Vec<&str> = rules
        .iter()
        .filter(|r| r["in_script"] == false)
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        missing,
        [
            "-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT",
            "-A INPUT -s 198.51.100.0/24 -p tcp -j ACCEPT"
        ]
    );
    let c = &report["hosts"]["appliance-c"];
    assert_eq!(c["result"], "error", "{c:#}");
    assert!(
        c["error"].as_str().unwrap().contains("no IWSVA/IWSS version found"),
        "{c:#}"
    );

    // Again, on the two good hosts: nothing changes, the run passes, the report covers both.
    let (out, recap) = fleet.play(&["--limit", "appliance-a,appliance-b"]);
    assert!(out.status.success(), "{out:?}");
    for host in ["appliance-a", "appliance-b"] {
        assert_eq!(counts(&recap, host)["changed"], 0, "{host}: {recap:?}");
    }
    assert_eq!(fleet.report()["summary"]["hosts"], 2);

    // A hook script deleted by hand is registered again (and reported as a change).
    let hook = fleet
        .root("appliance-b")
        .join("usr/iwss/hooks/post-install.d/50iwss-keeper");
    fs::remove_file(&hook).unwrap();
    let (out, recap) = fleet.play(&["--limit", "appliance-b"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(counts(&recap, "appliance-b")["changed"], 1, "{recap:?}");
    assert!(hook.is_file());
    assert_eq!(fleet.report()["hosts"]["appliance-b"]["result"], "kept");

    // --check reports the fleet as it is and changes nothing, though a hook is missing again.
    fs::remove_file(&hook).unwrap();
    let (out, recap) = fleet.play(&["--limit", "appliance-a,appliance-b", "--check"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(counts(&recap, "appliance-b")["changed"], 0, "{recap:?}");
    assert!(!hook.exists(), "--check registered the hook");
    let report = fleet.report();
    assert_eq!(report["hosts"]["appliance-a"]["result"], "missing", "{report:#}");
    assert_eq!(report["hosts"]["appliance-b"]["result"], "missing", "{report:#}");
    let states = report["hosts"]["appliance-b"]["status"]["registration"].to_string();
    assert!(states.contains("\"missing\""), "{states}");

    // With iwss_keeper_fail_on_missing, the host missing its rules fails, and only it.
    let (out, recap) = fleet.play(&[
        "--limit",
        "appliance-a,appliance-b",
        "-e",
        "iwss_keeper_fail_on_missing=true",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(counts(&recap, "appliance-a")["failed"], 1, "{recap:?}");
    assert_eq!(counts(&recap, "appliance-b")["failed"], 0, "{recap:?}");
}
