//! Criterion benchmarks of the pure core: parsing firewall scripts and sysctl files, and the
//! compare + plan of an upgrade, on generated inputs of 100, 10,000 and 100,000 rules.

mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use iwss_keeper::domain::compare::{compare, Pair};
use iwss_keeper::domain::config::Config;
use iwss_keeper::domain::firewall::Script;
use iwss_keeper::domain::plan::plan;
use iwss_keeper::domain::snapshot::Snapshot;
use iwss_keeper::domain::sysctl;
use iwss_keeper::domain::version::parse_version;

fn snapshot(version: &str, script: &str, sysctl: &str) -> Snapshot {
    Snapshot::in_memory(
        parse_version(version, None).unwrap(),
        vec![
            ("/usr/iwss/iwsvafw.sh".into(), script.as_bytes().to_vec()),
            ("/etc/sysctl.conf".into(), sysctl.as_bytes().to_vec()),
        ],
    )
}

fn parse_script(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_script");
    group.sample_size(10);
    for rules in [100, 10_000, 100_000] {
        let (before, _) = support::scripts(rules);
        group.throughput(Throughput::Bytes(before.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(rules), &before, |b, text| {
            b.iter(|| Script::parse(text.as_bytes()).lines.len())
        });
    }
    group.finish();
}

fn compare_and_plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("compare_plan");
    group.sample_size(10);
    let config = Config::default();
    for rules in [100, 10_000, 100_000] {
        let (old, new) = support::scripts(rules);
        let before = snapshot("IWSVA 6.5 SP2", &old, "net.ipv4.tcp_rfc1337=0\n");
        let after = snapshot("IWSVA 6.5 SP3", &new, "");
        group.throughput(Throughput::Bytes((old.len() + new.len()) as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(rules),
            &(before, after),
            |b, (before, after)| {
                b.iter(|| {
                    let pair = Pair::read(before, after, &config.firewall_script).unwrap();
                    let cmp = compare(&pair, &config).unwrap();
                    plan(&pair, &cmp, &config).unwrap().changes.len()
                })
            },
        );
    }
    group.finish();
}

fn sysctl_files(c: &mut Criterion) {
    let text = support::sysctl(10_000, 1);
    let mut group = c.benchmark_group("sysctl_10000_keys");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| sysctl::parse(text.as_bytes(), sysctl::procps::Procps::V3_3_10).len())
    });
    group.bench_function("set_value", |b| {
        b.iter(|| {
            sysctl::set_value(text.as_bytes(), "net.ipv4.tcp_rfc1337", "0", &sysctl::Platform::ALL)
                .map_or(0, |v| v.len())
        })
    });
    group.finish();
}

criterion_group!(benches, parse_script, compare_and_plan, sysctl_files);
criterion_main!(benches);
