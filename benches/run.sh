#!/usr/bin/env bash
# Whole-process benchmarks of iwss-keeper: release build, generated inputs, hyperfine medians,
# the ratio to `diff -u` on the same files, scaling from 10,000 to 100,000 rules, and peak memory.
# Prints a Markdown table. Usage: bash benches/run.sh [OUTDIR]   (needs hyperfine and GNU time)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)}
mkdir -p "$out"
command -v hyperfine >/dev/null || { echo "install hyperfine (apt-get install hyperfine)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "install GNU time (apt-get install time)" >&2; exit 1; }

cargo build --release --quiet --bin iwss-keeper --example bench-tree
bin=$PWD/target/release/iwss-keeper
gen=$PWD/target/release/examples/bench-tree
mkdir -p "$out/empty"
for n in 100 10000 100000; do
    [ -d "$out/r$n" ] || "$gen" "$out/r$n" "$n" 10000
done
stock=$PWD/testdata/iwsva-sp2-to-sp3

# name|input tree|command (exit 1 from diff means "something to restore" and is expected)
cases=(
    "restore --dry-run, stock SP2->SP3|$stock|$bin --root $stock/after restore --from $stock/before --dry-run"
    "diff, stock SP2->SP3|$stock|$bin --root $out/empty diff $stock/before $stock/after"
    "diff, 100 rules|$out/r100|$bin --root $out/empty diff $out/r100/before $out/r100/after"
    "diff, 10000 rules|$out/r10000|$bin --root $out/empty diff $out/r10000/before $out/r10000/after"
    "diff, 100000 rules|$out/r100000|$bin --root $out/empty diff $out/r100000/before $out/r100000/after"
    "diff -u, 10000 rules|$out/r10000|diff -u $out/r10000/before/usr/iwss/iwsvafw.sh $out/r10000/after/usr/iwss/iwsvafw.sh"
    "diff -u, 100000 rules|$out/r100000|diff -u $out/r100000/before/usr/iwss/iwsvafw.sh $out/r100000/after/usr/iwss/iwsvafw.sh"
)

printf '| case | median | min - max | peak RSS | input |\n|---|---|---|---|---|\n'
declare -A median
for entry in "${cases[@]}"; do
    name=${entry%%|*}
    rest=${entry#*|}
    tree=${rest%%|*}
    cmd=${rest#*|}
    json=$out/$(echo "$name" | tr -c 'a-zA-Z0-9' _).json
    hyperfine --style none --warmup 3 --min-runs 15 -i --export-json "$json" "$cmd" >/dev/null 2>&1
    read -r med lo hi < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(r["median"], r["min"], r["max"])' "$json")
    median[$name]=$med
    # shellcheck disable=SC2086
    /usr/bin/time -f '%M' -o "$out/rss" $cmd >/dev/null 2>&1 || true
    rss=$(tail -1 "$out/rss")
    input=$(du -cb "$tree/before" "$tree/after" | tail -1 | cut -f1)
    printf '| %s | %.2f ms | %.2f - %.2f ms | %.1f MB | %.0f KB |\n' "$name" \
        "$(python3 -c "print($med*1000)")" "$(python3 -c "print($lo*1000)")" "$(python3 -c "print($hi*1000)")" \
        "$(python3 -c "print($rss/1024)")" "$(python3 -c "print($input/1e3)")"
done
echo
python3 - "${median[diff, 10000 rules]}" "${median[diff, 100000 rules]}" \
    "${median[diff -u, 10000 rules]}" "${median[diff -u, 100000 rules]}" <<'PY'
import sys
d10, d100, u10, u100 = map(float, sys.argv[1:])
print(f"- ratio to `diff -u`: {d10/u10:.2f}x at 10,000 rules, {d100/u100:.2f}x at 100,000 rules")
print(f"- scaling 10,000 -> 100,000 rules (10x input): iwss-keeper {d100/d10:.1f}x, diff -u {u100/u10:.1f}x")
PY
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# The scale targets: at 100,000 rules, each command against a reference measured in the same
# run (`restore` against `bash -n` of the restored script plus `diff -u`).
big=$out/r100000
work=$out/work
mkdir -p "$work"
reset_root() {
    rm -rf "$work/root" && cp -a "$big/after" "$work/root" && mkdir -p "$work/root/bin" && ln -sf /bin/bash "$work/root/bin/bash"
}
reset_root
"$bin" --root "$work/root" --state-dir "$work/state0" restore --no-restart --from "$big/before" >/dev/null
cp "$work/root/usr/iwss/iwsvafw.sh" "$work/restored.sh"
reset_root
declare -A t
measure() { # name, prepare, command
    local json
    json=$out/target-$(echo "$1" | tr -c 'a-zA-Z0-9' _).json
    if [ -n "$2" ]; then
        hyperfine --style none --warmup 1 --min-runs 5 -i --prepare "$2" --export-json "$json" "$3" >/dev/null 2>&1
    else
        hyperfine --style none --warmup 1 --min-runs 5 -i --export-json "$json" "$3" >/dev/null 2>&1
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
echo
echo '| at 100,000 rules | median | reference | ratio | target |'
echo '|---|---|---|---|---|'
python3 - "${t[diff]}" "${t[diff -u]}" "${t[json diff]}" "${t[dry run]}" "${t[restore]}" "${t[reference]}" <<'PY'
import sys
d, u, j, dry, r, ref = map(float, sys.argv[1:])
rows = [
    ("diff", d, "diff -u", u, "<= 150 ms and <= 3x"),
    ("--json diff", j, "bash -n + diff -u", ref, "<= 3x"),
    ("restore --dry-run", dry, "bash -n + diff -u", ref, "<= 3x"),
    ("restore --no-restart", r, "bash -n + diff -u", ref, "<= 1.5x"),
]
for name, v, rname, rv, target in rows:
    print(f"| {name} | {v*1000:.0f} ms | {rname} {rv*1000:.0f} ms | {v/rv:.1f}x | {target} |")
PY
