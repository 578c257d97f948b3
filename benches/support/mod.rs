//! Generated benchmark inputs: firewall scripts and sysctl files of a chosen size, shared by the
//! criterion benches and the `bench-tree` example that writes them to disk.
#![allow(dead_code)]

use std::fmt::Write as _;

/// A small deterministic generator (64-bit LCG), so every run measures the same inputs.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

const HEAD: &str = "#!/bin/bash\n# generated benchmark firewall script\nIPTABLE() {\n    case \"$1\" in\n        ipv4) shift; iptables \"$@\" ;;\n        ipv6) shift; ip6tables \"$@\" ;;\n        *) iptables \"$@\" && ip6tables \"$@\" ;;\n    esac\n}\nIPTABLE -P INPUT DROP\nIPTABLE -A INPUT -i lo -j ACCEPT\nIPTABLE -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT # stateful\n";

/// The before and after scripts of an upgrade with `rules` rules: half vendor rules in several
/// chains and spellings, half custom ACCEPT rules with a source address, half of which the
/// upgrade discards (a quarter of all rules). The vendor rules survive, some respelled.
pub fn scripts(rules: usize) -> (String, String) {
    let mut rng = Lcg::new(rules as u64);
    let mut before = String::from(HEAD);
    let mut after = String::from(HEAD);
    let chains = ["SCAN_SERV_IN", "ACL_IN", "LOCAL_SERV_IN", "INPUT"];
    for i in 0..rules {
        if i % 2 == 1 {
            let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
            let line = if i % 3 == 0 {
                format!("IPTABLE ipv4 -A INPUT -p tcp -s {ip}/32 -j ACCEPT # proxy {i}\n")
            } else {
                format!("IPTABLE ipv4 -A INPUT -p tcp -s {ip} -j ACCEPT\n")
            };
            before.push_str(&line);
            if rng.next() % 2 == 0 {
                after.push_str(&line);
            }
        } else {
            let chain = chains[(rng.next() % 4) as usize];
            // Valid ports only (1024..=65023): a port iptables refuses would be a refused line.
            let port = 1024 + i % 64000;
            let _ = writeln!(before, "IPTABLE -A {chain} -p tcp --dport {port} -j ACCEPT");
            if rng.next() % 4 == 0 {
                let _ = writeln!(
                    after,
                    "IPTABLE --append {chain} --protocol tcp --destination-port {port} --jump ACCEPT"
                );
            } else {
                let _ = writeln!(after, "IPTABLE -A {chain} -p tcp --dport {port} -j ACCEPT");
            }
        }
    }
    (before, after)
}

/// A sysctl file with `keys` keys, `tcp_rfc1337` among them.
pub fn sysctl(keys: usize, rfc1337: u8) -> String {
    let mut out = String::from("# generated benchmark sysctl.conf\n");
    for i in 0..keys {
        if i == keys / 2 {
            let _ = writeln!(out, "net.ipv4.tcp_rfc1337 = {rfc1337}");
        } else {
            let _ = writeln!(out, "net.bench.key{i} = {}", i % 7);
        }
    }
    out
}
