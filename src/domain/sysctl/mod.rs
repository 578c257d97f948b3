//! sysctl configuration files read as procps `sysctl -p` and systemd-sysctl read them.

pub mod procps;

use std::collections::BTreeMap;
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

/// The main file. `sysctl --system` (procps) applies it after every drop-in; systemd-sysctl at
/// boot reads it only through a drop-in link to it (`/etc/sysctl.d/99-sysctl.conf` on RHEL 7).
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";

/// Whether `path` is a sysctl file (the main file or a drop-in).
pub fn is_sysctl_file(path: &str) -> bool {
    path == SYSCTL_CONF
        || DROP_IN_DIRS
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
    /// Value with surrounding blanks trimmed.
    pub value: String,
    /// Byte range of the trimmed value within the file, for in-place edits.
    pub value_span: Range<usize>,
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

/// Calls `f(line number, key path, value span)` for every assignment of a file, read as
/// `sysctl -p` reads it ([`procps::lines`]); the key path is `None` when the key names no single
/// key. Allocates only for the key path.
fn scan(bytes: &[u8], mut f: impl FnMut(usize, Option<String>, Range<usize>)) {
    procps::lines(bytes, |l| f(l.number, procps::key_path(&bytes[l.key]), l.value));
}

/// Calls `f(line number, value span)` for every assignment of the key `canonical` (path form).
/// A key whose text does not even hold the last component is passed over without building its
/// path (large files hold thousands of other keys).
fn scan_key(bytes: &[u8], canonical: &str, mut f: impl FnMut(usize, Range<usize>)) {
    // The last component as written in either form (a dotted key writes `.` as `/`).
    let last = canonical.rsplit('/').next().unwrap_or(canonical).as_bytes();
    let swapped: Vec<u8> = last.iter().map(|&b| if b == b'.' { b'/' } else { b }).collect();
    let holds = |w: &[u8], part: &[u8]| part.is_empty() || w.windows(part.len()).any(|x| x == part);
    procps::lines(bytes, |l| {
        let written = &bytes[l.key];
        if (holds(written, last) || holds(written, &swapped)) && procps::key_path(written).as_deref() == Some(canonical)
        {
            f(l.number, l.value);
        }
    });
}

/// The largest value the kernel takes for a key whose type is known (`tcp_rfc1337` is a u8 with
/// no limits of its own on current kernels: 0..=255); `None`: values are compared as text.
fn kernel_max(key: &str) -> Option<u64> {
    match key {
        "net/ipv4/tcp_rfc1337" => Some(255),
        _ => None,
    }
}

/// Parses every assignment of a sysctl file (see `scan` for the rules).
pub fn parse(bytes: &[u8]) -> Vec<Assignment> {
    let mut out = Vec::new();
    scan(bytes, |line, key, span| {
        if let Some(key) = key {
            out.push(Assignment {
                line,
                key,
                value: String::from_utf8_lossy(&bytes[span.clone()]).into_owned(),
                value_span: span,
            })
        }
    });
    out
}

/// The files that configure the kernel, in the order systemd-sysctl applies them: drop-ins by
/// basename (an `/etc` basename hiding `/run` and `/usr/lib` ones), then `/etc/sysctl.conf`.
/// `paths` are absolute paths of the regular files available; the result keeps only those used.
pub fn load_order<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    order(paths, true)
}

/// The files systemd-sysctl applies at boot: the drop-ins in [`load_order`]'s order, without
/// hidden ones (`.x.conf`) and without `/etc/sysctl.conf` itself (a drop-in link to it counts, at
/// its own basename).
pub fn boot_order<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    order(paths, false)
}

/// `main_last`: procps `sysctl --system`; else systemd-sysctl.
fn order<'a>(paths: impl IntoIterator<Item = &'a str>, main_last: bool) -> Vec<&'a str> {
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
        let Some(prio) = DROP_IN_DIRS.iter().position(|d| *d == dir) else {
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

/// The value a key ends up with when `files` (path, content) are applied in order: later lines
/// win, a line the kernel refuses changes nothing, and a key set nowhere keeps the kernel default.
pub fn effective<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>, key: &str) -> Effective {
    let key = canonical_key(key);
    let max = kernel_max(&key);
    let mut result = Effective {
        value: kernel_default(&key).map(str::to_string),
        ..Effective::default()
    };
    for (path, bytes) in files {
        let first_rejected = result.rejected.len();
        scan_key(bytes, &key, |line, span| {
            for r in &mut result.rejected[first_rejected..] {
                r.last = false;
            }
            let text = String::from_utf8_lossy(&bytes[span.clone()]).into_owned();
            let parsed = match max {
                Some(max) => procps::kernel_unsigned(&bytes[span], max).map(|n| n.to_string()),
                None => Ok(text.clone()),
            };
            match parsed {
                Ok(value) => {
                    result.text = (value != text).then_some(text);
                    result.value = Some(value);
                    result.source = Some((path.to_string(), line));
                }
                Err(why) => result.rejected.push(Rejected {
                    file: path.to_string(),
                    line,
                    text,
                    reason: why.to_string(),
                    last: true,
                }),
            }
        });
    }
    result
}

/// The value a key ends up with when systemd-sysctl applies `files` at boot: it keeps only the
/// last assignment of each key across all files and writes that once, so a last line the kernel
/// refuses leaves the kernel default (an earlier accepted line does not count).
pub fn effective_at_boot<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>, key: &str) -> Effective {
    let key = canonical_key(key);
    let mut last = None;
    for (path, bytes) in files {
        scan_key(bytes, &key, |line, span| last = Some((path, line, &bytes[span])));
    }
    let default = Effective {
        value: kernel_default(&key).map(str::to_string),
        ..Effective::default()
    };
    let Some((path, line, raw)) = last else {
        return default;
    };
    let text = String::from_utf8_lossy(raw).into_owned();
    let parsed = match kernel_max(&key) {
        Some(max) => procps::kernel_unsigned(raw, max).map(|n| n.to_string()),
        None => Ok(text.clone()),
    };
    match parsed {
        Ok(value) => Effective {
            text: (value != text).then(|| text.clone()),
            value: Some(value),
            source: Some((path.to_string(), line)),
            rejected: Vec::new(),
        },
        Err(why) => Effective {
            rejected: vec![Rejected {
                file: path.to_string(),
                line,
                text,
                reason: why.to_string(),
                last: true,
            }],
            ..default
        },
    }
}

/// Sets `key` to `value` in one file: the last assignment of the key is edited in place (every
/// other byte kept); without one, `key=value` is appended on a line of its own.
pub fn set_value(bytes: &[u8], key: &str, value: &str) -> Vec<u8> {
    let canonical = canonical_key(key);
    let mut last = None;
    scan_key(bytes, &canonical, |_, span| last = Some(span));
    match last {
        Some(span) => {
            let mut out = Vec::with_capacity(bytes.len() + value.len());
            out.extend_from_slice(&bytes[..span.start]);
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(&bytes[span.end..]);
            out
        }
        None => {
            let mut out = bytes.to_vec();
            if !out.is_empty() && !out.ends_with(b"\n") {
                // Keep the file's own line ending style.
                out.extend_from_slice(if out.contains(&b'\r') { b"\r\n" } else { b"\n" });
            }
            let crlf = bytes.windows(2).any(|w| w == b"\r\n");
            out.extend_from_slice(format!("{}={value}", display_key(&canonical)).as_bytes());
            out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let got = parse(text);
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].line, got[0].value.as_str()), (3, "1"));
        assert_eq!(
            (got[1].key.as_str(), got[1].value.as_str()),
            ("net/ipv4/ip_forward", "0")
        );
        assert_eq!(got[2].value, "0 # not a comment");
        assert_eq!(&text[got[0].value_span.clone()], b"1");
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
        let e = effective(files.iter().copied(), "net.ipv4.tcp_rfc1337");
        assert_eq!(e.value.as_deref(), Some("0"));
        assert_eq!(e.source, Some(("/etc/sysctl.conf".into(), 2)));
        let none = effective(Vec::<(&str, &[u8])>::new(), "net.ipv4.tcp_rfc1337");
        assert_eq!((none.value.as_deref(), none.source), (Some("0"), None));
        let unknown = effective(Vec::<(&str, &[u8])>::new(), "vm.swappiness");
        assert_eq!(unknown.value, None, "no default is assumed for other keys");
    }

    #[test]
    fn load_order_prefers_etc_and_puts_sysctl_conf_last() {
        let order = load_order([
            "/etc/sysctl.conf",
            "/usr/lib/sysctl.d/10-x.conf",
            "/etc/sysctl.d/10-x.conf",
            "/run/sysctl.d/05-y.conf",
            "/etc/sysctl.d/README",
            "/usr/lib/sysctl.d/99-z.conf",
        ]);
        assert_eq!(
            order,
            [
                "/run/sysctl.d/05-y.conf",
                "/etc/sysctl.d/10-x.conf",
                "/usr/lib/sysctl.d/99-z.conf",
                "/etc/sysctl.conf"
            ]
        );
    }

    #[test]
    fn set_value_edits_the_deciding_line_in_place() {
        let before = b"# vendor\nnet.ipv4.tcp_rfc1337 = 1\r\nkernel.x=2\nnet.ipv4.tcp_rfc1337=1  \n\xfe\xff\n";
        let after = set_value(before, "net.ipv4.tcp_rfc1337", "0");
        assert_eq!(
            after,
            b"# vendor\nnet.ipv4.tcp_rfc1337 = 1\r\nkernel.x=2\nnet.ipv4.tcp_rfc1337=0  \n\xfe\xff\n"
        );
    }

    #[test]
    fn set_value_appends_when_absent() {
        assert_eq!(
            set_value(b"a=1", "net.ipv4.tcp_rfc1337", "0"),
            b"a=1\nnet.ipv4.tcp_rfc1337=0\n"
        );
        assert_eq!(set_value(b"", "net/ipv4/tcp_rfc1337", "0"), b"net.ipv4.tcp_rfc1337=0\n");
        assert_eq!(set_value(b"a=1\r\n", "k.x", "0"), b"a=1\r\nk.x=0\r\n");
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
        assert_eq!(load_order(paths).last(), Some(&SYSCTL_CONF));
        let content = |p: &str| files.iter().find(|f| f.0 == p).unwrap().1;
        let system = effective(
            load_order(files.iter().map(|f| f.0))
                .into_iter()
                .map(|p| (p, content(p))),
            "net.ipv4.tcp_rfc1337",
        );
        let boot = effective(
            boot_order(files.iter().map(|f| f.0))
                .into_iter()
                .map(|p| (p, content(p))),
            "net.ipv4.tcp_rfc1337",
        );
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
        let e = effective(files.iter().copied(), "net/ipv4/conf/eth0.1/rp_filter");
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
        let e = effective(files.iter().copied(), "net.ipv4.tcp_rfc1337");
        assert_eq!((e.value.as_deref(), e.text.as_deref()), (Some("8"), Some("010")));
        assert_eq!((e.rejected[0].line, e.rejected[0].last), (2, true));
        let files: Vec<(&str, &[u8])> = vec![(SYSCTL_CONF, b"net.ipv4.tcp_rfc1337 = +1\n")];
        let after = effective(files.iter().copied(), "net.ipv4.tcp_rfc1337");
        assert_eq!(after.value.as_deref(), Some("0"), "the kernel default stands");
        let d = decide_same(
            "net.ipv4.tcp_rfc1337",
            eff("0", Some((SYSCTL_CONF, 1))),
            after,
            Some("0"),
        );
        assert_eq!(d.set_to.as_deref(), Some("0"));
        assert!(d.reason.contains("line 1: the kernel rejects \"+1\""), "{}", d.reason);
        let fixed = set_value(b"net.ipv4.tcp_rfc1337 = +1\n", "net.ipv4.tcp_rfc1337", "0");
        let files: Vec<(&str, &[u8])> = vec![(SYSCTL_CONF, &fixed)];
        let again = effective(files.iter().copied(), "net.ipv4.tcp_rfc1337");
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
}
