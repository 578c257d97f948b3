//! What ships: the glibc check, the release binary `scripts/release.sh` builds, and its RPM,
//! inspected with `rpm -qp` and installed into a scratch root with `rpm --root`, where its
//! scriptlets really run (chrooted, with the libraries they need copied in).
//!
//! The release artifacts come from `scripts/release.sh` (CI runs it before the tests); without
//! them, or without `rpm` or root, these tests say SKIPPED, and fail under `CI=true`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::testenv::{add_runtime, copy_tree, have, is_root, release, require, testdata};
use clap::CommandFactory;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn check_glibc(binary: &Path, max: &str) -> Output {
    run(
        repo().join("scripts/check-glibc.sh").to_str().unwrap(),
        &[binary.to_str().unwrap(), max],
    )
}

/// Splits "2.17" / "2.2.5" into numbers for comparison.
fn version(v: &str) -> Vec<u32> {
    v.split('.').map(|n| n.parse().unwrap()).collect()
}

#[test]
fn glibc_check_rejects_a_binary_built_against_a_newer_glibc() {
    if !require(
        "glibc check (host binary)",
        (!have("objdump")).then(|| "no objdump".into()),
    ) {
        return;
    }
    let host = text(&run("getconf", &["GNU_LIBC_VERSION"]).stdout);
    let host = host.trim().trim_start_matches("glibc ");
    let out = check_glibc(Path::new(env!("CARGO_BIN_EXE_iwss-keeper")), "2.17");
    // Binaries linked against glibc 2.34 and later need __libc_start_main@GLIBC_2.34; an older
    // host may build a binary that happens to pass.
    let old_host = version(host) < version("2.34");
    if !require(
        "glibc check (host binary)",
        old_host.then(|| format!("host glibc {host} is older than 2.34")),
    ) {
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(err.contains("newer than 2.17"), "{err}");
    assert!(err.contains("GLIBC_2.34 __libc_start_main"), "{err}");
}

#[test]
fn release_binary_needs_at_most_glibc_2_17() {
    let Some(rel) = release("release binary glibc check") else {
        return;
    };
    let out = check_glibc(&rel.binary, "2.17");
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).ends_with("(limit 2.17): ok\n"), "{out:?}");
    // The same binary against a lower limit: the check names each symbol that needs more.
    let out = check_glibc(&rel.binary, "2.16");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let listed: Vec<String> = text(&out.stderr).lines().skip(1).map(str::to_string).collect();
    assert!(!listed.is_empty(), "{out:?}");
    for line in &listed {
        let v = line.trim().strip_prefix("GLIBC_").unwrap().split(' ').next().unwrap();
        assert!(version(v) > version("2.16") && version(v) <= version("2.17"), "{line}");
    }
}

#[test]
fn release_binary_does_the_main_job_like_the_test_build() {
    let Some(rel) = release("release binary main job") else {
        return;
    };
    let args = [
        "--root",
        "testdata/iwsva-sp2-to-sp3/after",
        "restore",
        "--from",
        "testdata/iwsva-sp2-to-sp3/before",
        "--dry-run",
    ];
    let main_job = |bin: &Path| Command::new(bin).args(args).current_dir(repo()).output().unwrap();
    let shipped = main_job(&rel.binary);
    let built = main_job(Path::new(env!("CARGO_BIN_EXE_iwss-keeper")));
    // Exit 1: the restore would change something.
    assert_eq!(shipped.status.code(), Some(1), "{shipped:?}");
    assert_eq!(built.status.code(), Some(1), "{built:?}");
    assert_eq!(text(&shipped.stdout), text(&built.stdout));
    let version = run(rel.binary.to_str().unwrap(), &["--version"]);
    assert_eq!(
        text(&version.stdout),
        format!("iwss-keeper {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Every file the package must hold: mode, owner, rpm file flags, path.
fn expected_files() -> Vec<String> {
    let mut files = vec![
        "-rw-r--r-- root:root cn /etc/iwss-keeper/config.toml".to_string(),
        "-rw-r--r-- root:root - /usr/lib/systemd/system/iwss-keeper-guard.service".into(),
        "-rwxr-xr-x root:root - /usr/sbin/iwss-keeper".into(),
        "-rw-r--r-- root:root - /usr/share/bash-completion/completions/iwss-keeper".into(),
        "-rw-r--r-- root:root d /usr/share/doc/iwss-keeper/CHANGELOG.md".into(),
        "-rw-r--r-- root:root d /usr/share/doc/iwss-keeper/README.md".into(),
        "-rw-r--r-- root:root d /usr/share/doc/iwss-keeper/hooks/README.md".into(),
        "-rw-r--r-- root:root d /usr/share/doc/iwss-keeper/CONTRIBUTING.md".into(),
        "-rw-r--r-- root:root d /usr/share/doc/iwss-keeper/RELIABILITY.md".into(),
        "-rw-r--r-- root:root d /usr/share/doc/iwss-keeper/BENCHMARKS.md".into(),
        "-rw-r--r-- root:root d /usr/share/doc/iwss-keeper/iwss-keeper.schema.json".into(),
        "-rw-r--r-- root:root - /usr/share/fish/vendor_completions.d/iwss-keeper.fish".into(),
        "-rwxr-xr-x root:root - /usr/share/iwss-keeper/hooks/post-install.d/50iwss-keeper".into(),
        "-rwxr-xr-x root:root - /usr/share/iwss-keeper/hooks/pre-install.d/50iwss-keeper".into(),
        "-rw-r--r-- root:root - /usr/share/zsh/site-functions/_iwss-keeper".into(),
    ];
    // The documentation the README links.
    for doc in std::fs::read_dir(repo().join("docs")).unwrap() {
        let name = doc.unwrap().file_name().to_string_lossy().into_owned();
        files.push(format!("-rw-r--r-- root:root d /usr/share/doc/iwss-keeper/docs/{name}"));
    }
    // One man page for the tool and one per visible subcommand, as the CLI defines them now.
    files.push("-rw-r--r-- root:root d /usr/share/man/man1/iwss-keeper.1.gz".into());
    for sub in iwss_keeper::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
    {
        files.push(format!(
            "-rw-r--r-- root:root d /usr/share/man/man1/iwss-keeper-{}.1.gz",
            sub.get_name()
        ));
    }
    files.sort_by(|a, b| a.rsplit(' ').next().cmp(&b.rsplit(' ').next()));
    files
}

#[test]
fn rpm_holds_every_file_its_scriptlets_and_old_enough_requirements() {
    let Some(rel) = release("rpm contents") else { return };
    if !require(
        "rpm contents",
        (!have("rpm")).then(|| "no rpm (apt-get install rpm)".into()),
    ) {
        return;
    }
    let rpm = rel.rpm.to_str().unwrap();
    let query = |format: &str| text(&run("rpm", &["-qp", "--qf", format, rpm]).stdout);

    let listed: Vec<String> =
        query("[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]")
            .lines()
            .map(|l| l.replace("  ", " - "))
            .collect();
    assert_eq!(listed, expected_files());
    let plain = text(&run("rpm", &["-qlp", rpm]).stdout);
    assert_eq!(plain.lines().count(), listed.len(), "{plain}");
    assert_eq!(
        text(&run("rpm", &["-qp", "--configfiles", rpm]).stdout),
        "/etc/iwss-keeper/config.toml\n"
    );

    let scripts = text(&run("rpm", &["-qp", "--scripts", rpm]).stdout);
    let post = fs::read_to_string(repo().join("contrib/rpm/post-install.sh")).unwrap();
    let preun = fs::read_to_string(repo().join("contrib/rpm/pre-uninstall.sh")).unwrap();
    assert!(
        scripts.contains(&format!("postinstall scriptlet (using /bin/sh):\n{post}")),
        "{scripts}"
    );
    assert!(
        scripts.contains(&format!("preuninstall scriptlet (using /bin/sh):\n{preun}")),
        "{scripts}"
    );
    assert!(post.contains("\n/usr/sbin/iwss-keeper register\n"), "{post}");
    assert!(
        preun.contains("if [ \"$1\" -eq 0 ]; then\n    /usr/sbin/iwss-keeper unregister\n"),
        "{preun}"
    );

    assert_eq!(
        query("%{NAME} %{VERSION} %{ARCH}"),
        format!("iwss-keeper {} x86_64", env!("CARGO_PKG_VERSION"))
    );
    // RHEL/CentOS 7's rpm cannot read zstd payloads.
    assert_eq!(query("%{PAYLOADCOMPRESSOR}"), "xz");
    let requires = text(&run("rpm", &["-qp", "--requires", rpm]).stdout);
    let glibc: Vec<&str> = requires
        .lines()
        .filter_map(|l| l.split("(GLIBC_").nth(1))
        .map(|v| v.split(')').next().unwrap())
        .collect();
    assert!(glibc.contains(&"2.17"), "{requires}");
    assert!(glibc.iter().all(|v| version(v) <= version("2.17")), "{requires}");
}

fn rpm_in(root: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    run("rpm", &all)
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn rpm_installs_into_a_scratch_root_registers_and_erases_cleanly() {
    let Some(rel) = release("rpm --root install") else {
        return;
    };
    let why = if !have("rpm") {
        Some("no rpm (apt-get install rpm)".to_string())
    } else if !is_root() {
        Some("not running as root (rpm --root runs scriptlets in a chroot)".to_string())
    } else {
        None
    };
    if !require("rpm --root install", why) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("appliance");
    copy_tree(&testdata().join("iwsva-sp2-to-sp3/before"), &root);
    add_runtime(&root, &[&rel.binary]);
    let rpm = rel.rpm.to_str().unwrap();

    // The scratch root's rpm database is empty, so the package's glibc requirements are unmet:
    // rpm says so and installs nothing. The real appliance has glibc in its database.
    let refused = rpm_in(&root, &["-i", rpm]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("libc.so.6(GLIBC_2.17)(64bit) is needed by iwss-keeper"),
        "{refused:?}"
    );
    assert!(!root.join("usr/sbin/iwss-keeper").exists());

    let installed = rpm_in(&root, &["-i", "--nodeps", rpm]);
    assert!(installed.status.success(), "{installed:?}");
    // %post ran `iwss-keeper register` inside the root and said what it did.
    let said = text(&installed.stdout);
    assert!(
        said.contains("installed  /usr/iwss/hooks/post-install.d/50iwss-keeper"),
        "{said}"
    );
    assert!(said.contains("(baseline, IWSVA 6.5 SP2 Build 1784)"), "{said}");

    let mut expected = vec![
        ("usr/sbin/iwss-keeper".to_string(), rel.binary.clone(), 0o755),
        (
            "etc/iwss-keeper/config.toml".into(),
            repo().join("contrib/rpm/config.toml"),
            0o644,
        ),
        (
            "usr/lib/systemd/system/iwss-keeper-guard.service".into(),
            repo().join("contrib/rpm/iwss-keeper-guard.service"),
            0o644,
        ),
    ];
    // The packaged reference copies.
    for (hook, _) in iwss_keeper::setup::HOOKS {
        expected.push((
            format!("usr/share/iwss-keeper/hooks/{hook}"),
            repo().join("hooks").join(hook),
            0o755,
        ));
    }
    for (path, source, want) in expected {
        let at = root.join(&path);
        assert_eq!(fs::read(&at).unwrap(), fs::read(&source).unwrap(), "{path}");
        assert_eq!(mode(&at), want, "{path}");
    }
    // Those %post (register) put where the upgrade runs hooks, running the packaged binary.
    for (hook, shipped) in iwss_keeper::setup::HOOKS {
        let at = root.join("usr/iwss/hooks").join(hook);
        let want = iwss_keeper::setup::hook_text(shipped, "/usr/sbin/iwss-keeper");
        assert_eq!(fs::read_to_string(&at).unwrap(), want, "{hook}");
        assert_eq!(mode(&at), 0o755, "{hook}");
    }
    let man = fs::read(root.join("usr/share/man/man1/iwss-keeper-restore.1.gz")).unwrap();
    assert_eq!(&man[..2], &[0x1f, 0x8b], "man pages are gzipped");
    let bash = fs::read_to_string(root.join("usr/share/bash-completion/completions/iwss-keeper")).unwrap();
    assert!(bash.contains("complete -F _iwss__keeper"), "{bash}");
    // The boot guard is enabled: the link `systemctl enable` would make, to the packaged unit.
    let wants = root.join("etc/systemd/system/multi-user.target.wants/iwss-keeper-guard.service");
    assert_eq!(
        fs::read_link(&wants).unwrap(),
        Path::new("/usr/lib/systemd/system/iwss-keeper-guard.service")
    );
    assert!(!root.join("etc/systemd/system/iwss-keeper-guard.service").exists());
    // rpm itself finds every packaged file as it installed it.
    let verify = rpm_in(&root, &["-V", "--nodeps", "iwss-keeper"]);
    assert!(verify.status.success() && verify.stdout.is_empty(), "{verify:?}");

    let status = rel.keeper(&root, &["--json", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let states: Vec<&str> = status["registration"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["intact", "intact", "intact"], "{status}");

    // Reinstalling keeps an edited config (%config(noreplace)) and leaves the hooks as they are.
    let config = root.join("etc/iwss-keeper/config.toml");
    let mut edited = fs::read_to_string(&config).unwrap();
    edited.push_str("keep_snapshots = 20\n");
    fs::write(&config, &edited).unwrap();
    let again = rpm_in(&root, &["-U", "--replacepkgs", "--nodeps", rpm]);
    assert!(again.status.success(), "{again:?}");
    assert!(
        text(&again.stdout).contains("unchanged  /usr/iwss/hooks/pre-install.d/50iwss-keeper"),
        "{again:?}"
    );
    assert_eq!(fs::read_to_string(&config).unwrap(), edited);

    // Erasing runs %preun (unregister): hooks and guard link gone, snapshots kept as evidence.
    let erased = rpm_in(&root, &["-e", "iwss-keeper"]);
    assert!(erased.status.success(), "{erased:?}");
    let said = text(&erased.stdout);
    assert!(
        said.contains("removed    /usr/iwss/hooks/post-install.d/50iwss-keeper"),
        "{said}"
    );
    for gone in [
        "usr/sbin/iwss-keeper",
        "usr/iwss/hooks/pre-install.d/50iwss-keeper",
        "usr/iwss/hooks/post-install.d/50iwss-keeper",
        "usr/lib/systemd/system/iwss-keeper-guard.service",
        "etc/systemd/system/multi-user.target.wants/iwss-keeper-guard.service",
        "etc/iwss-keeper/config.toml",
    ] {
        assert!(fs::symlink_metadata(root.join(gone)).is_err(), "{gone} is still there");
    }
    assert_eq!(
        fs::read_to_string(root.join("etc/iwss-keeper/config.toml.rpmsave")).unwrap(),
        edited
    );
    let snapshots = fs::read_dir(root.join("var/lib/iwss-keeper/snapshots"))
        .unwrap()
        .count();
    assert_eq!(
        snapshots, 1,
        "one baseline: the upgrade's %post found nothing changed and took none"
    );
    // The firewall script and sysctl.conf were never touched.
    for file in ["usr/iwss/iwsvafw.sh", "etc/sysctl.conf"] {
        assert_eq!(
            fs::read(root.join(file)).unwrap(),
            fs::read(testdata().join("iwsva-sp2-to-sp3/before").join(file)).unwrap(),
            "{file}"
        );
    }
}

/// The Markdown documents the package ships (destination -> source), from the RPM's asset list.
fn shipped_documents() -> std::collections::BTreeMap<std::path::PathBuf, std::path::PathBuf> {
    let manifest: toml::Value = toml::from_str(&fs::read_to_string(repo().join("Cargo.toml")).unwrap()).unwrap();
    let mut shipped = std::collections::BTreeMap::new();
    for asset in manifest["package"]["metadata"]["generate-rpm"]["assets"]
        .as_array()
        .unwrap()
    {
        let (source, dest) = (asset["source"].as_str().unwrap(), asset["dest"].as_str().unwrap());
        match source.strip_suffix("*.md") {
            Some(dir) => {
                for entry in fs::read_dir(repo().join(dir)).unwrap() {
                    let name = entry.unwrap().file_name();
                    if name.to_string_lossy().ends_with(".md") {
                        shipped.insert(Path::new(dest).join(&name), Path::new(dir).join(&name));
                    }
                }
            }
            None if source.ends_with(".md") => {
                shipped.insert(dest.into(), source.into());
            }
            None => {}
        }
    }
    shipped
}

/// `path` with `.` and `..` taken away.
fn normal(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn every_link_in_a_shipped_document_leads_to_a_shipped_document() {
    // Read under /usr/share/doc/iwss-keeper as in the repository: a relative link to a file the
    // package leaves out would be dead on the appliance.
    let shipped = shipped_documents();
    assert!(shipped.len() > 5, "{shipped:?}");
    let link = regex::Regex::new(r"\]\(([^)#\s]+)(#[^)]*)?\)").unwrap();
    for (dest, source) in &shipped {
        let text = fs::read_to_string(repo().join(source)).unwrap();
        for found in link.captures_iter(&text) {
            let target = &found[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let at = normal(&dest.parent().unwrap().join(target));
            assert!(
                shipped.contains_key(&at),
                "{}: the link {target} leads to {} in the package, which it does not ship",
                source.display(),
                at.display()
            );
        }
    }
}
