//! sysctl configuration files read as procps `sysctl -p` and systemd-sysctl read them, on each
//! platform that may run the appliance ([`Platform`]): where they differ about a line, it proves
//! nothing and the value is "cannot tell".

mod effective;
pub mod platform;
pub mod procps;
pub mod systemd;

use effective::*;
pub use effective::{effective, effective_at_boot, effective_at_boot_with, effective_on, effective_with};
pub use platform::Platform;
use procps::{Procps, Rejection};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

/// Directories of sysctl drop-ins, highest priority first: a basename in an earlier directory
/// hides the same basename in later ones (procps 4 `sysctl --system` and systemd-sysctl alike).
pub const DROP_IN_DIRS: [&str; 5] = [
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// procps 3.3's `sysctl --system` directories, in its order: `/run` before `/etc`.
const V3_DROP_IN_DIRS: [&str; 5] = [
    "/run/sysctl.d",
    "/etc/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// The main file. `sysctl --system` (procps) applies it after every drop-in; systemd-sysctl at
/// boot reads it only through a drop-in link to it (`/etc/sysctl.d/99-sysctl.conf` on RHEL 7).
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";

/// Whether `path` is a sysctl file (the main file or a drop-in).
pub fn is_sysctl_file(path: &str) -> bool {
    path == SYSCTL_CONF || is_drop_in(path)
}

/// Whether `path` is in a sysctl drop-in directory.
pub fn is_drop_in(path: &str) -> bool {
    DROP_IN_DIRS
        .iter()
        .any(|d| path.strip_prefix(d).is_some_and(|r| r.starts_with('/')))
}

/// The value the kernel uses for a key no file sets, where it is known (`tcp_rfc1337`: 0, see
/// net/ipv4/tcp_minisocks.c); `None` for every other key: the tool does not guess.
pub fn kernel_default(key: &str) -> Option<&'static str> {
    match canonical_key(key).as_str() {
        "net/ipv4/tcp_rfc1337" => Some("0"),
        _ => None,
    }
}

/// One `key = value` assignment in a sysctl file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// 1-based line number.
    pub line: usize,
    /// Key in its canonical path form (`net/ipv4/tcp_rfc1337`).
    pub key: String,
    /// The value procps writes.
    pub value: String,
}

/// Canonical path form of a key, following procps: if the first separator is `.`, dots and
/// slashes swap; if it is `/`, the key is already a path.
pub fn canonical_key(key: &str) -> String {
    let key = key.trim();
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'.' => key
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => key.to_string(),
    }
}

/// Dotted display form of a canonical key (`net.ipv4.tcp_rfc1337`).
pub fn display_key(canonical: &str) -> String {
    canonical
        .chars()
        .map(|c| match c {
            '/' => '.',
            '.' => '/',
            c => c,
        })
        .collect()
}

/// Values compare with runs of blanks collapsed (`4096  87380` equals `4096 87380`).
pub fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// Calls `f(line)` for every assignment of the key `canonical` (path form), read as `procps`'s
/// `sysctl -p` reads the file. A key whose text does not even hold the last component is passed
/// over without building its path.
fn scan_key(bytes: &[u8], canonical: &str, procps: Procps, mut f: impl FnMut(procps::Line)) {
    // The last component as written in either form (a dotted key writes `.` as `/`).
    let last = canonical.rsplit('/').next().unwrap_or(canonical).as_bytes();
    let swapped: Vec<u8> = last.iter().map(|&b| if b == b'.' { b'/' } else { b }).collect();
    let holds = |w: &[u8], part: &[u8]| part.is_empty() || w.windows(part.len()).any(|x| x == part);
    procps::lines(bytes, procps, |l| {
        let written = &bytes[l.key.clone()];
        if (holds(written, last) || holds(written, &swapped))
            && procps::key_path(written, procps).as_deref() == Some(canonical)
        {
            f(l);
        }
    });
}

/// The one key whose kernel type the tool models (`tcp_rfc1337`); every other key's values are
/// compared as text.
const RFC1337: &str = "net/ipv4/tcp_rfc1337";

/// What `sysctl -p` of one file writes to `key` with `procps`: each assignment's value and a
/// newline, in order, as procps writes them.
pub fn writes(bytes: &[u8], key: &str, procps: Procps) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    scan_key(bytes, &canonical_key(key), procps, |l| {
        out.push([&l.value[..], b"\n"].concat())
    });
    out
}

/// Parses every assignment of a sysctl file, as `procps`'s `sysctl -p` reads it.
pub fn parse(bytes: &[u8], procps: Procps) -> Vec<Assignment> {
    let mut out = Vec::new();
    procps::lines(bytes, procps, |l| {
        if let Some(key) = procps::key_path(&bytes[l.key.clone()], procps) {
            out.push(Assignment {
                line: l.number,
                key,
                value: String::from_utf8_lossy(&l.value).into_owned(),
            })
        }
    });
    out
}

/// The files `sysctl --system` applies, in its order: drop-ins by basename (a basename in an
/// earlier directory hiding the same one in later directories: `/etc` first in procps 4.0,
/// `/run` first in 3.3), then `/etc/sysctl.conf`. `paths` are absolute paths of the regular
/// files available; the result keeps only those used.
pub fn load_order<'a>(paths: impl IntoIterator<Item = &'a str>, procps: Procps) -> Vec<&'a str> {
    match procps {
        Procps::V4 => order(paths, true, &DROP_IN_DIRS),
        _ => order(paths, true, &V3_DROP_IN_DIRS),
    }
}

/// The files systemd-sysctl applies at boot: the drop-ins in [`load_order`]'s order, without
/// hidden ones (`.x.conf`) and without `/etc/sysctl.conf` itself (a drop-in link to it counts, at
/// its own basename).
pub fn boot_order<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    order(paths, false, &DROP_IN_DIRS)
}

/// `main_last`: procps `sysctl --system`; else systemd-sysctl.
fn order<'a>(paths: impl IntoIterator<Item = &'a str>, main_last: bool, dirs: &[&str]) -> Vec<&'a str> {
    let mut by_basename: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    let mut has_main = None;
    for path in paths {
        if path == SYSCTL_CONF {
            has_main = Some(path);
            continue;
        }
        let Some((dir, base)) = path.rsplit_once('/') else {
            continue;
        };
        let Some(prio) = dirs.iter().position(|d| *d == dir) else {
            continue;
        };
        if !base.ends_with(".conf") || (!main_last && base.starts_with('.')) {
            continue;
        }
        let slot = by_basename.entry(base).or_insert((prio, path));
        if prio < slot.0 {
            *slot = (prio, path);
        }
    }
    let mut order: Vec<&str> = by_basename.into_values().map(|(_, p)| p).collect();
    if main_last {
        order.extend(has_main);
    }
    order
}

/// A line the kernel refuses: the value it sets stays what it was before the line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    pub file: String,
    pub line: usize,
    /// The value as written.
    pub text: String,
    pub reason: String,
    /// Whether it is the file's last assignment of the key (the line `restore` edits).
    #[serde(skip)]
    pub last: bool,
}

/// Where an effective value comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Effective {
    /// The value the kernel holds (the integer it parsed, for keys of a known type); `None` when
    /// no file sets the key and its kernel default is unknown.
    pub value: Option<String>,
    /// The deciding file and line, or `None` for the kernel default.
    pub source: Option<(String, usize)>,
    /// The deciding line's text, when the kernel reads it as another spelling (`010` is 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Lines for the key the kernel refuses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejected>,
    /// Why the value cannot be told (`value` is then `None`): the platforms that may run the
    /// appliance read the files differently, or a line's value is beyond the kernel model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    /// Whether the value cannot be told because a file the tool cannot read could set it: no
    /// edit of the files it can read would settle it.
    #[serde(skip)]
    pub unreadable: bool,
}

impl Effective {
    /// The value for messages (`unknown` when it is not known).
    pub fn shown(&self) -> String {
        self.value.clone().unwrap_or_else(|| "unknown".into())
    }

    /// Whether the value is known and equals `value`.
    pub fn is(&self, value: &str) -> bool {
        self.value.as_deref().is_some_and(|v| same_value(v, value))
    }

    /// Value and where it comes from, for reports: `0 (/etc/sysctl.conf:3)`.
    pub fn placed(&self) -> String {
        match (&self.source, &self.value) {
            (Some((file, line)), _) => match &self.text {
                Some(text) => format!("{} ({file}:{line}, written {text:?})", self.shown()),
                None => format!("{} ({file}:{line})", self.shown()),
            },
            (None, _) if self.unknown.is_some() => {
                format!("cannot tell ({})", self.unknown.as_deref().unwrap_or_default())
            }
            (None, Some(v)) => format!("{v} (kernel default)"),
            (None, None) => "unknown (set by no file; kernel default unknown)".into(),
        }
    }
}

/// The value owed back for a managed key: its custom value (or, without one, its value before
/// the upgrade), but only when the system had that value before the upgrade.
pub fn owed_value(before: &Effective, custom: Option<&str>) -> Option<String> {
    let before = before.value.as_deref()?;
    let wanted = custom.unwrap_or(before);
    same_value(before, wanted).then(|| wanted.to_string())
}

/// Whether a running value disagrees with what the files give. An unknown file value makes no
/// claim, so it never disagrees.
pub fn running_differs(running: &str, files: &Effective) -> bool {
    files.value.as_deref().is_some_and(|v| !same_value(running, v))
}

/// What happens to one managed sysctl key across an upgrade.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SysctlFinding {
    /// Dotted key.
    pub key: String,
    pub before: Effective,
    pub after: Effective,
    /// After the upgrade, as systemd-sysctl applies the files at boot, when that does not give
    /// the owed value (`after` is what `sysctl --system` gives).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<Effective>,
    /// The value `restore` writes, when it writes one.
    pub set_to: Option<String>,
    /// The value the key is owed: the custom value the system had before the upgrade. `None`
    /// when the tool keeps no value for it.
    pub owed: Option<String>,
    pub reason: String,
}

impl SysctlFinding {
    /// The value the files hold once the restore is done.
    pub fn files_after_restore(&self) -> Option<&str> {
        self.set_to.as_deref().or(self.after.value.as_deref())
    }
}

/// Decides about one key: restore the custom value only when the system had it before the
/// upgrade and has another value (or an unknown one) now.
pub fn decide(key: &str, before: Effective, after: Effective, boot: Effective, custom: Option<&str>) -> SysctlFinding {
    let where_after = match &after.source {
        Some((file, line)) => format!("{file}:{line}"),
        None => "kernel default".to_string(),
    };
    // Kept when the boot order does not give the owed value: restoring must fix it too.
    let owed = owed_value(&before, custom);
    let owed_shown = owed.clone();
    let boot = owed.as_deref().filter(|w| !boot.is(w)).map(|_| boot);
    let boot_differs = |_: &str| boot.is_some();
    let (set_to, reason) = match owed {
        Some(_) if after.unreadable || boot.as_ref().is_some_and(|b| b.unreadable) => {
            let why = [&after, boot.as_ref().unwrap_or(&after)]
                .iter()
                .find_map(|e| e.unknown.clone())
                .unwrap_or_default();
            (
                None,
                format!("cannot tell after the upgrade ({why}); not written: check it by hand"),
            )
        }
        None => (
            None,
            match (&before.value, custom) {
                (Some(b), Some(wanted)) => {
                    format!("was {b} before the upgrade, not the custom value {wanted}: left alone")
                }
                _ => "set by no file before the upgrade and its kernel default is unknown: left alone".to_string(),
            },
        ),
        Some(wanted) if after.is(&wanted) && after.rejected.iter().any(|r| r.last && r.file == SYSCTL_CONF) => {
            let r = after
                .rejected
                .iter()
                .rfind(|r| r.last && r.file == SYSCTL_CONF)
                .expect("found");
            let reason = format!(
                "line {}: the kernel rejects {:?} ({}); written as {wanted}",
                r.line, r.text, r.reason
            );
            (Some(wanted), reason)
        }
        Some(wanted) if after.is(&wanted) && boot_differs(&wanted) => {
            let b = boot.as_ref().expect("differs");
            let at = match &b.source {
                Some((file, line)) => format!("{file}:{line}"),
                None => "no file".to_string(),
            };
            let reason = format!(
                "`sysctl --system` gives {wanted}, but at boot systemd-sysctl gives {} ({at}); set back to {wanted} there",
                b.shown()
            );
            (Some(wanted), reason)
        }
        Some(wanted) if after.is(&wanted) => match after.source {
            None => (None, format!("already {wanted}: the new version's default covers it")),
            Some(_) => (None, format!("already {wanted} ({where_after}): kept by the upgrade")),
        },
        Some(wanted) => {
            let reason = match &after.value {
                Some(now) => format!("the upgrade changed it to {now} ({where_after}); set back to {wanted}"),
                None => {
                    format!("set by no file after the upgrade and its kernel default is unknown; set back to {wanted}")
                }
            };
            (Some(wanted), reason)
        }
    };
    SysctlFinding {
        key: display_key(&canonical_key(key)),
        before,
        after,
        boot,
        set_to,
        owed: owed_shown,
        reason,
    }
}

/// Sets `key` to `value` in one file so that `sysctl -p` of it gives `value` on every one of
/// `platforms`: the last assignment of the key is edited in place (every other byte kept) when
/// every platform reads the same line as the last one; else `key=value` is appended on a line of
/// its own. Refused (why, in words) when even that would not read as `value` everywhere.
pub fn set_value(bytes: &[u8], key: &str, value: &str, platforms: &[Platform]) -> Result<Vec<u8>, String> {
    let canonical = canonical_key(key);
    let last_of = |p: &Platform| {
        let mut last = None;
        scan_key(bytes, &canonical, p.procps(), |l| last = Some(l.span));
        last
    };
    let lasts: Vec<Option<Option<Range<usize>>>> = platforms.iter().map(last_of).collect();
    let edited = match lasts.first() {
        Some(Some(Some(span))) if lasts.iter().all(|l| l.as_ref() == Some(&Some(span.clone()))) => {
            [&bytes[..span.start], value.as_bytes(), &bytes[span.end..]].concat()
        }
        _ => appended(bytes, &canonical, value),
    };
    let reads = |text: &[u8]| {
        platforms.iter().all(|&p| {
            let mut result = Effective::default();
            apply_file(&mut result, &canonical, p, "", text);
            result.is(value)
        })
    };
    if reads(&edited) {
        return Ok(edited);
    }
    let appended = appended(bytes, &canonical, value);
    if reads(&appended) {
        return Ok(appended);
    }
    Err(format!(
        "no line gives {key} = {value} on every platform that may run it"
    ))
}

/// The file with `key=value` appended on a line of its own, in the file's line ending style.
fn appended(bytes: &[u8], canonical: &str, value: &str) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.extend_from_slice(if out.contains(&b'\r') { b"\r\n" } else { b"\n" });
    }
    let crlf = bytes.windows(2).any(|w| w == b"\r\n");
    out.extend_from_slice(format!("{}={value}", display_key(canonical)).as_bytes());
    out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// procps 4.0 and kernel 6: one platform, this machine's.
    const NOW: [Platform; 1] = [Platform::Current];

    #[test]
    fn keys_follow_procps_separator_rule() {
        assert_eq!(canonical_key("net.ipv4.tcp_rfc1337"), "net/ipv4/tcp_rfc1337");
        assert_eq!(canonical_key(" net/ipv4/tcp_rfc1337 "), "net/ipv4/tcp_rfc1337");
        assert_eq!(
            canonical_key("net.ipv4.conf.eth0/1.rp_filter"),
            "net/ipv4/conf/eth0.1/rp_filter"
        );
        assert_eq!(
            canonical_key("net/ipv4/conf/eth0.1/rp_filter"),
            "net/ipv4/conf/eth0.1/rp_filter"
        );
        assert_eq!(
            display_key("net/ipv4/conf/eth0.1/rp_filter"),
            "net.ipv4.conf.eth0/1.rp_filter"
        );
    }

    #[test]
    fn parses_like_sysctl_p() {
        let text = b"# c\n ; c2\nnet.ipv4.tcp_rfc1337=1\n  -net.ipv4.ip_forward = 0 \nnoequals\n=5\nnet.ipv4.tcp_rfc1337 = 0 # not a comment\n";
        let got = parse(text, Procps::V4);
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].line, got[0].value.as_str()), (3, "1"));
        assert_eq!(
            (got[1].key.as_str(), got[1].value.as_str()),
            ("net/ipv4/ip_forward", "0")
        );
        assert_eq!(got[2].value, "0 # not a comment");
    }

    #[test]
    fn later_lines_and_sysctl_conf_win() {
        let files: Vec<(&str, &[u8])> = vec![
            ("/usr/lib/sysctl.d/50-a.conf", b"net.ipv4.tcp_rfc1337=1\n"),
            (
                "/etc/sysctl.conf",
                b"net.ipv4.tcp_rfc1337=1\nnet.ipv4.tcp_rfc1337 = 0\n",
            ),
        ];
        let e = effective(&files, "net.ipv4.tcp_rfc1337", &NOW);
        assert_eq!(e.value.as_deref(), Some("0"));
        assert_eq!(e.source, Some(("/etc/sysctl.conf".into(), 2)));
        let none = effective(&[], "net.ipv4.tcp_rfc1337", &NOW);
        assert_eq!((none.value.as_deref(), none.source), (Some("0"), None));
        let unknown = effective(&[], "vm.swappiness", &NOW);
        assert_eq!(unknown.value, None, "no default is assumed for other keys");
    }

    #[test]
    fn load_order_prefers_etc_and_puts_sysctl_conf_last() {
        let paths = [
            "/etc/sysctl.conf",
            "/usr/lib/sysctl.d/10-x.conf",
            "/etc/sysctl.d/10-x.conf",
            "/run/sysctl.d/05-y.conf",
            "/etc/sysctl.d/README",
            "/usr/lib/sysctl.d/99-z.conf",
            "/run/sysctl.d/99-z.conf",
        ];
        assert_eq!(
            load_order(paths, Procps::V4),
            [
                "/run/sysctl.d/05-y.conf",
                "/etc/sysctl.d/10-x.conf",
                "/run/sysctl.d/99-z.conf",
                "/etc/sysctl.conf"
            ]
        );
        // procps 3.3 reads /run/sysctl.d before /etc/sysctl.d: a /run file wins its name.
        let mut with_run = paths.to_vec();
        with_run.push("/run/sysctl.d/10-x.conf");
        assert_eq!(
            load_order(with_run, Procps::V3_3_10),
            [
                "/run/sysctl.d/05-y.conf",
                "/run/sysctl.d/10-x.conf",
                "/run/sysctl.d/99-z.conf",
                "/etc/sysctl.conf"
            ]
        );
    }

    #[test]
    fn set_value_edits_the_deciding_line_in_place() {
        let before = b"# vendor\nnet.ipv4.tcp_rfc1337 = 1\r\nkernel.x=2\nnet.ipv4.tcp_rfc1337=1  \n\xfe\xff\n";
        let after = set_value(before, "net.ipv4.tcp_rfc1337", "0", &NOW).unwrap();
        assert_eq!(
            after,
            b"# vendor\nnet.ipv4.tcp_rfc1337 = 1\r\nkernel.x=2\nnet.ipv4.tcp_rfc1337=0  \n\xfe\xff\n"
        );
    }

    #[test]
    fn set_value_appends_when_absent() {
        assert_eq!(
            set_value(b"a=1", "net.ipv4.tcp_rfc1337", "0", &NOW).unwrap(),
            b"a=1\nnet.ipv4.tcp_rfc1337=0\n"
        );
        assert_eq!(
            set_value(b"", "net/ipv4/tcp_rfc1337", "0", &NOW).unwrap(),
            b"net.ipv4.tcp_rfc1337=0\n"
        );
        assert_eq!(set_value(b"a=1\r\n", "k.x", "0", &NOW).unwrap(), b"a=1\r\nk.x=0\r\n");
    }

    /// Boot and `sysctl --system` agree.
    fn decide_same(key: &str, before: Effective, after: Effective, custom: Option<&str>) -> SysctlFinding {
        decide(key, before, after.clone(), after, custom)
    }

    #[test]
    fn a_drop_in_that_wins_at_boot_is_owed_too() {
        let files: Vec<(&str, &[u8])> = vec![
            ("/etc/sysctl.d/99-sysctl.conf", b"net.ipv4.tcp_rfc1337 = 0\n"),
            ("/usr/lib/sysctl.d/99-zz-vendor.conf", b"net.ipv4.tcp_rfc1337 = 1\n"),
            (SYSCTL_CONF, b"net.ipv4.tcp_rfc1337 = 0\n"),
        ];
        let paths = files.iter().map(|f| f.0);
        assert_eq!(
            boot_order(paths.clone()),
            ["/etc/sysctl.d/99-sysctl.conf", "/usr/lib/sysctl.d/99-zz-vendor.conf"]
        );
        assert_eq!(load_order(paths, Procps::V4).last(), Some(&SYSCTL_CONF));
        let system = effective(&files, "net.ipv4.tcp_rfc1337", &NOW);
        let boot = effective_at_boot(&files, "net.ipv4.tcp_rfc1337", &NOW);
        assert_eq!((system.value.as_deref(), boot.value.as_deref()), (Some("0"), Some("1")));
        let d = decide(
            "net.ipv4.tcp_rfc1337",
            eff("0", Some((SYSCTL_CONF, 1))),
            system,
            boot,
            Some("0"),
        );
        assert_eq!(d.set_to.as_deref(), Some("0"));
        assert!(d.reason.contains("at boot systemd-sysctl gives 1"), "{}", d.reason);
        assert_eq!(
            d.boot.unwrap().source,
            Some(("/usr/lib/sysctl.d/99-zz-vendor.conf".into(), 1))
        );
    }

    fn eff(v: &str, src: Option<(&str, usize)>) -> Effective {
        Effective {
            value: Some(v.into()),
            source: src.map(|(f, l)| (f.to_string(), l)),
            ..Effective::default()
        }
    }

    #[test]
    fn keys_are_found_in_either_separator_form() {
        let text = b"net.ipv4.conf.eth0/1.rp_filter = 2\n";
        let files: Vec<(&str, &[u8])> = vec![(SYSCTL_CONF, text)];
        let e = effective(&files, "net/ipv4/conf/eth0.1/rp_filter", &NOW);
        assert_eq!(e.value.as_deref(), Some("2"));
    }

    #[test]
    fn sysctl_decisions() {
        let k = "net.ipv4.tcp_rfc1337";
        let zero = Some("0");
        let d = decide_same(k, eff("0", Some(("/etc/sysctl.conf", 3))), eff("0", None), zero);
        assert!(
            d.set_to.is_none() && d.reason.contains("default covers it"),
            "{}",
            d.reason
        );
        let d = decide_same(
            k,
            eff("0", Some(("/etc/sysctl.conf", 3))),
            eff("1", Some(("/etc/sysctl.conf", 9))),
            zero,
        );
        assert_eq!(d.set_to.as_deref(), Some("0"));
        let d = decide_same(k, eff("1", Some(("/etc/sysctl.conf", 3))), eff("0", None), zero);
        assert!(d.set_to.is_none() && d.reason.contains("left alone"));
        let d = decide_same(
            k,
            eff("0", Some(("/etc/sysctl.conf", 3))),
            eff("0", Some(("/etc/sysctl.conf", 3))),
            zero,
        );
        assert!(d.set_to.is_none() && d.reason.contains("kept by the upgrade"));
        let d = decide_same(
            "vm.swappiness",
            eff("10", Some(("/etc/sysctl.conf", 1))),
            eff("60", Some(("/etc/sysctl.conf", 1))),
            None,
        );
        assert_eq!(d.set_to.as_deref(), Some("10"));
    }

    #[test]
    fn a_refused_line_keeps_the_value_before_it_and_is_rewritten() {
        let files: Vec<(&str, &[u8])> = vec![(SYSCTL_CONF, b"net.ipv4.tcp_rfc1337 = 010\nnet.ipv4.tcp_rfc1337 = +1\n")];
        let e = effective(&files, "net.ipv4.tcp_rfc1337", &NOW);
        assert_eq!((e.value.as_deref(), e.text.as_deref()), (Some("8"), Some("010")));
        assert_eq!((e.rejected[0].line, e.rejected[0].last), (2, true));
        let files: Vec<(&str, &[u8])> = vec![(SYSCTL_CONF, b"net.ipv4.tcp_rfc1337 = +1\n")];
        let after = effective(&files, "net.ipv4.tcp_rfc1337", &NOW);
        assert_eq!(after.value.as_deref(), Some("0"), "the kernel default stands");
        let d = decide_same(
            "net.ipv4.tcp_rfc1337",
            eff("0", Some((SYSCTL_CONF, 1))),
            after,
            Some("0"),
        );
        assert_eq!(d.set_to.as_deref(), Some("0"));
        assert!(d.reason.contains("line 1: the kernel rejects \"+1\""), "{}", d.reason);
        let fixed = set_value(b"net.ipv4.tcp_rfc1337 = +1\n", "net.ipv4.tcp_rfc1337", "0", &NOW).unwrap();
        let files: Vec<(&str, &[u8])> = vec![(SYSCTL_CONF, &fixed)];
        let again = effective(&files, "net.ipv4.tcp_rfc1337", &NOW);
        let d = decide_same(
            "net.ipv4.tcp_rfc1337",
            eff("0", Some((SYSCTL_CONF, 1))),
            again,
            Some("0"),
        );
        assert_eq!(d.set_to, None, "restoring twice is restoring once");
    }

    #[test]
    fn unknown_defaults_are_never_taken_for_a_value() {
        let unknown = Effective::default();
        let d = decide_same(
            "vm.swappiness",
            unknown.clone(),
            eff("60", Some(("/etc/sysctl.conf", 1))),
            Some("10"),
        );
        assert!(
            d.set_to.is_none() && d.reason.contains("kernel default is unknown"),
            "{}",
            d.reason
        );
        let d = decide_same(
            "vm.swappiness",
            eff("10", Some(("/etc/sysctl.conf", 1))),
            unknown.clone(),
            None,
        );
        assert_eq!(d.set_to.as_deref(), Some("10"));
        assert!(!running_differs("5", &unknown));
        assert!(running_differs("5", &eff("10", None)) && !running_differs("10", &eff("10", None)));
    }

    /// What `sysctl -p` of a file gives for tcp_rfc1337 on each platform (`None`: cannot tell).
    fn on_each(text: &[u8]) -> Vec<Option<String>> {
        Platform::ALL
            .iter()
            .map(|&p| effective(&[(SYSCTL_CONF, text)], "net.ipv4.tcp_rfc1337", &[p]).value)
            .collect()
    }

    #[test]
    fn the_appliances_procps_and_kernels_read_lines_their_own_way() {
        let some = |v: &str| Some(v.to_string());
        // The `-` prefix is unknown before procps 3.3.16: the line changes nothing there.
        let dash = on_each(b"net.ipv4.tcp_rfc1337 = 1\n-net.ipv4.tcp_rfc1337 = 0\n");
        assert_eq!(dash, [some("1"), some("1"), some("0")]);
        // 3.3 strips only spaces and tabs: a vertical tab makes the key another key.
        let vt = on_each(b"net.ipv4.tcp_rfc1337 = 1\n\x0bnet.ipv4.tcp_rfc1337 = 0\n");
        assert_eq!(vt, [some("1"), some("1"), some("0")]);
        // 3.3.10 reads a 5,000-byte comment in pieces: its end is a line of its own.
        let comment = [
            b"#".to_vec(),
            b"x".repeat(4094),
            b" ".repeat(883),
            b"net.ipv4.tcp_rfc1337=1".to_vec(),
        ]
        .concat();
        assert_eq!(comment.len(), 5000);
        let long = [&b"net.ipv4.tcp_rfc1337 = 0\n"[..], &comment, b"\n"].concat();
        assert_eq!(on_each(&long), [some("1"), some("0"), some("0")]);
        // `0 1`: kernel 3.10 takes the numbers one by one, the strict kernels the first.
        assert_eq!(
            on_each(b"net.ipv4.tcp_rfc1337 = 0 1\n"),
            [some("1"), some("0"), some("0")]
        );
        // 3.10 and 4.18 read an int: 2, -1 and 256 are "on"; kernel 6 refuses 256 and -1.
        assert_eq!(
            on_each(b"net.ipv4.tcp_rfc1337 = 2\n"),
            [some("2"), some("2"), some("2")]
        );
        assert_eq!(
            on_each(b"net.ipv4.tcp_rfc1337 = 256\n"),
            [some("256"), some("256"), some("0")]
        );
        assert_eq!(
            on_each(b"net.ipv4.tcp_rfc1337 = -1\n"),
            [some("-1"), some("-1"), some("0")]
        );
    }

    #[test]
    fn a_file_is_judged_for_the_platforms_that_may_run_the_appliance() {
        let v = |s| crate::domain::version::parse_version(s, None).unwrap();
        let iwsva = Platform::targets(&v("IWSVA 6.5-SP3_Build_Linux_1916"), None);
        let iwss_8 = Platform::targets(
            &v("IWSS 6.5 Patch 3"),
            Some("Red Hat Enterprise Linux release 8.10 (Ootpa)"),
        );
        let iwss_7 = Platform::targets(&v("IWSS 6.5 Patch 3"), Some("CentOS Linux release 7.9.2009 (Core)"));
        let unknown = Platform::targets(&v("IWSVA 7.0"), None);
        assert_eq!(iwsva, [Platform::Rhel7]);
        assert_eq!(iwss_8, [Platform::Rhel8]);
        assert_eq!(iwss_7, [Platform::Rhel7]);
        assert_eq!(unknown, Platform::ALL);
        let text: &[u8] = b"net.ipv4.tcp_rfc1337 = 0 1\n";
        let judge = |platforms: &[Platform]| effective(&[(SYSCTL_CONF, text)], "net.ipv4.tcp_rfc1337", platforms);
        assert_eq!(judge(&iwsva).value.as_deref(), Some("1"));
        assert_eq!(judge(&iwss_8).value.as_deref(), Some("0"));
        let any = judge(&unknown);
        assert_eq!(any.value, None);
        let why = any.unknown.unwrap();
        assert!(
            why.contains("RHEL 7") && why.contains("read the files differently"),
            "{why}"
        );
        // A restore writes a line every platform reads as 0.
        let fixed = set_value(text, "net.ipv4.tcp_rfc1337", "0", &unknown).unwrap();
        assert_eq!(judge_with(&fixed, &unknown), Some("0".into()));
    }

    fn judge_with(text: &[u8], platforms: &[Platform]) -> Option<String> {
        effective(&[(SYSCTL_CONF, text)], "net.ipv4.tcp_rfc1337", platforms).value
    }
}
