#!/usr/bin/env bash
# Whole-process benchmarks of iwss-keeper: release build, generated inputs, hyperfine medians,
# the ratio to `diff -u` on the same files, scaling from 10,000 to 100,000 rules, and peak memory.
# Everything measured runs on one core (`taskset -c 0`), the tool and its references alike: the
# appliances have one or two vCPUs. Prints Markdown tables.
# Usage: bash benches/run.sh [OUTDIR]   (needs hyperfine, GNU time and taskset)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${IWSS_BENCH_ONE_CORE:-}" ]; then
    cargo build --release --quiet --bin iwss-keeper --example bench-tree
    IWSS_BENCH_ONE_CORE=1 exec taskset -c 0 bash "$0" "$@"
fi
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
    "${median[diff -u, 10000 rules]}" "${median[diff -u, 100000 rules]}" \
    "${median[restore --dry-run, stock SP2->SP3]}" <<'PY'
import sys
d10, d100, u10, u100, stock = map(float, sys.argv[1:])
print(f"- restore --dry-run on the bundled example, process start to exit: {stock*1000:.2f} ms (target <= 5 ms)")
print(f"- ratio to `diff -u`: {d10/u10:.2f}x at 10,000 rules, {d100/u100:.2f}x at 100,000 rules")
print(f"- scaling 10,000 -> 100,000 rules (10x input): iwss-keeper {d100/d10:.1f}x, diff -u {u100/u10:.1f}x")
PY
echo "- machine: $(nproc --all) cores ($(nproc) used: taskset -c 0), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"


# The scale targets at 100,000 rules, each against a reference measured in the same run.
bash benches/targets.sh "$out" "$bin"

# status and a restore's verification with 2,000 and 20,000 rules loaded (root, network namespace).
bash benches/loaded.sh "$out" "$bin"
