//! Writes a before/after pair of root trees for benchmarks: `bench-tree DIR RULES SYSCTL_KEYS`.

#[path = "../benches/support/mod.rs"]
mod support;

use std::fs;
use std::path::Path;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, rules, keys] = args.as_slice() else {
        eprintln!("usage: bench-tree DIR RULES SYSCTL_KEYS");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    let (before, after) = support::scripts(rules.parse().unwrap());
    let keys: usize = keys.parse().unwrap();
    for (side, script, version, rfc) in [
        ("before", &before, "IWSVA 6.5-SP2_Build_Linux_1784", 0),
        ("after", &after, "IWSVA 6.5-SP3_Build_Linux_1916", 1),
    ] {
        let root = dir.join(side);
        write(&root, "usr/iwss/iwsvafw.sh", script);
        write(&root, "usr/iwss/version", &format!("{version}\n"));
        write(&root, "etc/sysctl.conf", &support::sysctl(keys, rfc));
    }
}
