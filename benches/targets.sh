#!/usr/bin/env bash
# The scale targets: at 100,000 rules (half custom ACCEPT rules, the upgrade dropping a quarter
# of all rules), `diff`, `--json diff`, `restore --dry-run` and `restore --no-restart`, each with
# the ratio to a reference measured in the same run (`diff -u` of the two scripts; `bash -n` of
# the restored script plus `diff -u`). run.sh runs it on one core. Prints a Markdown table.
# Usage: bash benches/targets.sh OUTDIR BIN   (OUTDIR/r100000 from benches/run.sh; needs hyperfine)
set -euo pipefail
out=$1
bin=$2
[ -x /usr/bin/time ] || { echo "install GNU time (apt-get install time)" >&2; exit 1; }
# The scale targets: at 100,000 rules, each command against a reference measured in the same
# run (`restore` against `bash -n` of the restored script plus `diff -u`).
big=$out/r100000
work=$out/work
mkdir -p "$work"
reset_root() {
    rm -rf "$work/root" && cp -a "$big/after" "$work/root" && mkdir -p "$work/root/bin" && ln -sf /bin/bash "$work/root/bin/bash"
}
reset_root
# Exit 1: the generated scripts hold lines the tool refuses (reported, never restored).
"$bin" --root "$work/root" --state-dir "$work/state0" restore --no-restart --from "$big/before" >/dev/null || [ $? -eq 1 ]
cp "$work/root/usr/iwss/iwsvafw.sh" "$work/restored.sh"
reset_root
declare -A t
measure() { # name, prepare, command
    local json
    json=$out/target-$(echo "$1" | tr -c 'a-zA-Z0-9' _).json
    if [ -n "$2" ]; then
        hyperfine --style none --warmup 2 --min-runs 10 -i --prepare "$2" --export-json "$json" "$3" >/dev/null 2>&1
    else
        hyperfine --style none --warmup 2 --min-runs 10 -i --export-json "$json" "$3" >/dev/null 2>&1
    fi
    t[$1]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$json")
}
measure diff "" "$bin --root $work/root --state-dir $work/state diff $big/before"
measure "diff -u" "" "diff -u $big/before/usr/iwss/iwsvafw.sh $big/after/usr/iwss/iwsvafw.sh"
measure "json diff" "" "$bin --json --root $work/root --state-dir $work/state diff $big/before"
measure "dry run" "" "$bin --root $work/root --state-dir $work/state restore --dry-run --from $big/before"
measure restore "rm -rf $work/state && cp $big/after/usr/iwss/iwsvafw.sh $work/root/usr/iwss/iwsvafw.sh && cp $big/after/etc/sysctl.conf $work/root/etc/sysctl.conf" \
    "$bin --root $work/root --state-dir $work/state restore --no-restart --from $big/before"
measure reference "" "sh -c 'bash -n $work/restored.sh && diff -u $big/after/usr/iwss/iwsvafw.sh $work/restored.sh >/dev/null; true'"
# Peak memory (GNU time, KiB: the tool's, or a child's it waited for if larger, such as bash) of
# `diff` and of `restore --no-restart` on the live-root layout, each on a freshly reset root (the
# timed restores left it restored). Exit 1 means "something to restore"; anything else stops the
# bench, so a run that failed early is never reported as small.
peak() { # output file, arguments of the tool
    local rss=$1 rc=0
    shift
    rm -rf "$work/state" && reset_root
    /usr/bin/time -f '%M' -o "$rss" "$bin" --root "$work/root" --state-dir "$work/state" "$@" >/dev/null 2>&1 || rc=$?
    if [ "$rc" -gt 1 ]; then
        echo "targets: $bin $* exited $rc; no memory figure" >&2
        exit 1
    fi
}
peak "$work/rss-diff" diff "$big/before"
peak "$work/rss-restore" restore --no-restart --from "$big/before"
input=$(du -cb "$big/before" "$big/after" | tail -1 | cut -f1)
echo
echo '| at 100,000 rules | median | reference | ratio | target |'
echo '|---|---|---|---|---|'
python3 - "${t[diff]}" "${t[diff -u]}" "${t[json diff]}" "${t[dry run]}" "${t[restore]}" "${t[reference]}" \
    "$(tail -1 "$work/rss-diff")" "$(tail -1 "$work/rss-restore")" "$input" <<'PY'
import sys
d, u, j, dry, r, ref = map(float, sys.argv[1:7])
# In MiB: GNU time gives KiB, du bytes.
rss_diff, rss_restore, size = (float(x) / k for x, k in zip(sys.argv[7:], (1024, 1024, 1 << 20)))
rows = [
    ("diff", d, "diff -u", u, "<= 3x"),
    ("--json diff", j, "bash -n + diff -u", ref, "<= 3x"),
    ("restore --dry-run", dry, "bash -n + diff -u", ref, "<= 3x"),
    ("restore --no-restart", r, "bash -n + diff -u", ref, "<= 1.5x"),
]
for name, v, rname, rv, target in rows:
    print(f"| {name} | {v*1000:.0f} ms | {rname} {rv*1000:.0f} ms | {v/rv:.1f}x | {target} |")
budget = 3 * size + 10
for name, rss in (("diff, peak RSS", rss_diff), ("restore --no-restart, peak RSS", rss_restore)):
    print(f"| {name} | {rss:.1f} MiB | 3x input ({size:.1f} MiB) + 10 MiB = {budget:.1f} MiB | {rss/budget:.2f} of it | <= 1.00 |")
PY
