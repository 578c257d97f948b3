//! The value a key ends up with: what `sysctl --system` gives (or the boot-time
//! systemd-sysctl) on each platform, applied file by file and line by line, and what the
//! platforms agree on.

use super::*;

/// The value a key ends up with when `sysctl --system` applies `files` (every sysctl file, path
/// and content, in any order) on each of `platforms`: their value where they all agree, else
/// "cannot tell", saying what each gives.
pub fn effective(files: &[(&str, &[u8])], key: &str, platforms: &[Platform]) -> Effective {
    agreed(platforms, |p| effective_on(files, key, p))
}

/// [`effective`] where `unreadable` names the sysctl entries the tool could not read (path,
/// why: a FIFO, a directory named `*.conf`, no permission): when some platform's order uses one,
/// it could set the key, and the value is "cannot tell", naming it.
pub fn effective_with(
    files: &[(&str, &[u8])],
    unreadable: &[(&str, &str)],
    key: &str,
    platforms: &[Platform],
) -> Effective {
    let used = unreadable_used(files, unreadable, platforms, |paths, p| load_order(paths, p.procps()));
    used.map_or_else(|| effective(files, key, platforms), |u| cannot_read(u, key))
}

/// [`effective_at_boot`] with the entries the tool could not read, as [`effective_with`].
pub fn effective_at_boot_with(
    files: &[(&str, &[u8])],
    unreadable: &[(&str, &str)],
    key: &str,
    platforms: &[Platform],
) -> Effective {
    let used = unreadable_used(files, unreadable, platforms, |paths, p| boot_order_on(paths, p));
    used.map_or_else(|| effective_at_boot(files, key, platforms), |u| cannot_read(u, key))
}

/// The first unreadable entry some platform's `order` of all the entries uses.
pub(super) fn unreadable_used<'a>(
    files: &[(&'a str, &[u8])],
    unreadable: &[(&'a str, &'a str)],
    platforms: &[Platform],
    order: impl Fn(Vec<&'a str>, Platform) -> Vec<&'a str>,
) -> Option<(&'a str, &'a str)> {
    let paths: Vec<&str> = files
        .iter()
        .map(|(p, _)| *p)
        .chain(unreadable.iter().map(|(p, _)| *p))
        .collect();
    let used: HashSet<&str> = platforms.iter().flat_map(|&p| order(paths.clone(), p)).collect();
    unreadable.iter().copied().find(|(path, _)| used.contains(path))
}

pub(super) fn cannot_read((path, why): (&str, &str), key: &str) -> Effective {
    Effective {
        unknown: Some(format!("{path} cannot be read ({why}): it could set {key}")),
        unreadable: true,
        ..Effective::default()
    }
}

/// What every platform gives where they agree, else "cannot tell" with what each gives.
pub(super) fn agreed(platforms: &[Platform], on: impl Fn(Platform) -> Effective) -> Effective {
    let each: Vec<(Platform, Effective)> = platforms.iter().map(|&p| (p, on(p))).collect();
    let Some((_, first)) = each.first() else {
        return Effective::default();
    };
    if each.iter().all(|(_, e)| e.value == first.value && e.unknown.is_none()) {
        return first.clone();
    }
    let said: Vec<String> = each
        .iter()
        .map(|(p, e)| format!("{}: {}", p.name(), e.placed()))
        .collect();
    Effective {
        unknown: Some(format!(
            "the platforms that may run it read the files differently: {}",
            said.join("; ")
        )),
        rejected: first.rejected.clone(),
        ..Effective::default()
    }
}

/// The value a key ends up with when `sysctl --system` applies `files` on `platform`: its
/// procps reads each file in its order, later lines win, a line the kernel refuses changes
/// nothing, and a key set nowhere keeps the kernel default.
pub fn effective_on(files: &[(&str, &[u8])], key: &str, platform: Platform) -> Effective {
    let key = canonical_key(key);
    let mut result = Effective {
        value: kernel_default(&key).map(str::to_string),
        ..Effective::default()
    };
    let content: HashMap<&str, &[u8]> = files.iter().copied().collect();
    for path in load_order(files.iter().map(|(p, _)| *p), platform.procps()) {
        apply_file(&mut result, &key, platform, path, content[path]);
    }
    result
}

/// Every assignment of `key` (path form) in one file applied to `result`, as `sysctl -p FILE`
/// applies them on `platform`.
pub(super) fn apply_file(result: &mut Effective, key: &str, platform: Platform, path: &str, bytes: &[u8]) {
    let first_rejected = result.rejected.len();
    scan_key(bytes, key, platform.procps(), |l| {
        for r in &mut result.rejected[first_rejected..] {
            r.last = false;
        }
        apply_line(result, key, platform, (path, l.number), &l.value);
    });
}

/// One assignment of `key` (at `place`, writing `raw`) applied to `result` on `platform`.
pub(super) fn apply_line(result: &mut Effective, key: &str, platform: Platform, place: (&str, usize), raw: &[u8]) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let parsed = match key {
        RFC1337 => platform.kernel().write_rfc1337(raw).map(|n| n.to_string()),
        _ => Ok(text.clone()),
    };
    match parsed {
        Ok(value) => {
            result.text = (value != text).then_some(text);
            result.value = Some(value);
            result.source = Some((place.0.to_string(), place.1));
            result.unknown = None;
        }
        Err(why @ Rejection::Unmodelled) => {
            (result.value, result.source, result.text) = (None, None, None);
            result.unknown = Some(format!("{}:{}: {text:?}: {why}", place.0, place.1));
        }
        Err(why) => result.rejected.push(Rejected {
            file: place.0.to_string(),
            line: place.1,
            text,
            reason: why.to_string(),
            last: true,
        }),
    }
}

/// The value a key ends up with when systemd-sysctl applies `files` (every sysctl file, path
/// and content; a drop-in link to `/etc/sysctl.conf` read as that file) at boot on each of
/// `platforms`, where they agree.
pub fn effective_at_boot(files: &[(&str, &[u8])], key: &str, platforms: &[Platform]) -> Effective {
    agreed(platforms, |p| effective_at_boot_on(files, key, p))
}

/// The files `platform`'s systemd-sysctl reads at boot, in order: [`boot_order`], and on RHEL
/// 7 (systemd 219, Red Hat's tree) `/etc/sysctl.conf` once more at the end.
pub(super) fn boot_order_on(paths: Vec<&str>, platform: Platform) -> Vec<&str> {
    let main = paths.contains(&SYSCTL_CONF);
    let mut order = boot_order(paths);
    if platform.systemd() == systemd::Systemd::V219 && main {
        order.push(SYSCTL_CONF);
    }
    order
}

/// [`effective_at_boot`] on one platform: its systemd-sysctl reads the drop-ins in their order
/// (RHEL 7's 219 then `/etc/sysctl.conf` once more), keeps the last value of each key as it
/// spells it, and writes them in order; each write of a spelling that names the key is applied
/// as the platform's kernel takes it.
pub(super) fn effective_at_boot_on(files: &[(&str, &[u8])], key: &str, platform: Platform) -> Effective {
    let key = canonical_key(key);
    let systemd = platform.systemd();
    let order = boot_order_on(files.iter().map(|(p, _)| *p).collect(), platform);
    let content: HashMap<&str, &[u8]> = files.iter().copied().collect();
    let mut result = Effective {
        value: kernel_default(&key).map(str::to_string),
        ..Effective::default()
    };
    let written = systemd::to_write(order.into_iter().map(|p| (p, content[p])), systemd);
    for a in written {
        if procps::key_path(a.key.as_bytes(), Procps::V3_3_15).as_deref() == Some(key.as_str()) {
            apply_line(&mut result, &key, platform, (a.file, a.line), &a.value);
        }
    }
    result
}
