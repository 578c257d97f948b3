#!/usr/bin/env bash
# `status` and a restore's verification with 2,000 and 20,000 custom rules loaded in a network
# namespace (real iptables), each against a reference measured in the same run: one
# `iptables-save` + `ip6tables-save` + `bash -n` of the script for `status`; for `restore`
# (write, restart, verify) the same plus the restart's own `iptables-restore` of the rules.
# The bench root's restart loads the script's rules with one `iptables-restore`, so what is
# measured is the tool's work around it, not thousands of `iptables` processes.
# Prints a Markdown table. Usage: bash benches/loaded.sh OUTDIR BIN   (root; needs hyperfine)
set -euo pipefail
out=$1
bin=$2
if [ "$(id -u)" != 0 ] || ! unshare -n true 2>/dev/null; then
    echo "benches/loaded.sh: SKIPPED: needs root and network namespaces (unshare -n)" >&2
    exit 0
fi
here=$(cd "$(dirname "$0")/.." && pwd)
case_dir=$here/testdata/iwsva-sp3-to-sp3p1

# A live root: the case's after/ tree, the host's iptables, and a restart that loads the
# script's IPv4 rules in one iptables-restore.
make_root() { # dir
    local root=$1
    rm -rf "$root" && cp -a "$case_dir/after" "$root"
    mkdir -p "$root/usr/sbin" "$root/usr/bin" "$root/bin" "$root/etc/init.d"
    for prog in iptables ip6tables iptables-restore ip6tables-restore iptables-save ip6tables-save; do
        ln -sf "/usr/sbin/$prog" "$root/usr/sbin/$prog"
    done
    ln -sf /bin/bash "$root/bin/bash"
    ln -sf /bin/sh "$root/bin/sh"
    for tool in sed cat dirname; do ln -sf "$(command -v $tool)" "$root/usr/bin/$tool"; done
    ln -sf /proc "$root/proc"
    cat >"$root/etc/init.d/iptables" <<'EOF'
#!/bin/sh
# Bench restart: the firewall script's IPv4 rules, loaded in one iptables-restore.
root=$(cd "$(dirname "$0")/../.." && pwd)
{
    echo '*filter'
    for c in SCAN_SERV_IN ACL_IN LOCAL_SERV_IN; do echo ":$c - [0:0]"; done
    sed -n 's/^ *IPTABLE ipv4 \(-A .*\)$/\1/p; s/^ *IPTABLE \(-A .*\)$/\1/p' "$root/usr/iwss/iwsvafw.sh" | sed 's/ #.*$//'
    echo COMMIT
} | iptables-restore
EOF
    chmod 755 "$root/etc/init.d/iptables"
}

# The script with `n` custom rules after the stateful line.
with_rules() { # n < script > script
    awk -v n="$1" '{ print } /# stateful/ && !done { for (i = 0; i < n; i++) printf "IPTABLE ipv4 -A INPUT -p tcp -s 10.%d.%d.%d -j ACCEPT\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256; done = 1 }'
}

declare -A t
measure() { # name, prepare, command (inside the namespace)
    local json
    json=$out/loaded-$(echo "$1" | tr -c 'a-zA-Z0-9' _).json
    # Without -i: a command that fails (a restore rolled back, a rule not loaded) stops the bench.
    hyperfine --style none --warmup 1 --min-runs 5 --prepare "$2" --export-json "$json" "$3" >/dev/null
    t[$1]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$json")
}

for n in 2000 20000; do
    w=$out/loaded$n
    mkdir -p "$w"
    make_root "$w/root"
    rm -rf "$w/before" && cp -a "$case_dir/before" "$w/before"
    with_rules "$n" <"$case_dir/before/usr/iwss/iwsvafw.sh" >"$w/before/usr/iwss/iwsvafw.sh"
    with_rules "$n" <"$case_dir/after/usr/iwss/iwsvafw.sh" >"$w/restored.sh"
    cp "$case_dir/after/usr/iwss/iwsvafw.sh" "$w/upgraded.sh"
    export w n bin out
    export -f measure
    # One namespace for the whole case: rules loaded, status and restore measured in it.
    # shellcheck disable=SC2016
    unshare -n bash -c '
        set -euo pipefail
        declare -A t
        reset_upgraded="cp $w/upgraded.sh $w/root/usr/iwss/iwsvafw.sh && rm -rf $w/state && iptables -F INPUT"
        load_restored="cp $w/restored.sh $w/root/usr/iwss/iwsvafw.sh && $w/root/etc/init.d/iptables restart"
        sh -c "$load_restored"
        "$bin" --root "$w/root" --state-dir "$w/state0" snapshot >/dev/null
        # Protection set up, as on an appliance: `status` exits 0 only then.
        "$bin" --root "$w/root" --state-dir "$w/state0" register >/dev/null
        measure "status $n" "$load_restored" "$bin --root $w/root --state-dir $w/state0 status"
        measure "status reference $n" "$load_restored" "sh -c '\''iptables-save >/dev/null && ip6tables-save >/dev/null && bash -n $w/restored.sh'\''"
        measure "restore $n" "sh -c '\''$reset_upgraded'\''" "$bin --root $w/root --state-dir $w/state restore --from $w/before"
        measure "restore reference $n" "sh -c '\''$reset_upgraded'\''" "sh -c '\''bash -n $w/restored.sh && cp $w/restored.sh $w/root/usr/iwss/iwsvafw.sh && $w/root/etc/init.d/iptables restart && iptables-save >/dev/null && ip6tables-save >/dev/null'\''"
        for k in "${!t[@]}"; do echo "$k=${t[$k]}"; done > "$w/medians"
    '
    while IFS='=' read -r k v; do t[$k]=$v; done <"$w/medians"
done

echo
echo '| loaded custom rules | command | median | reference | ratio | target |'
echo '|---|---|---|---|---|---|'
for n in 2000 20000; do
    python3 - "$n" "${t[status $n]}" "${t[status reference $n]}" "${t[restore $n]}" "${t[restore reference $n]}" <<'PY'
import sys
n = int(sys.argv[1])
s, sr, r, rr = map(float, sys.argv[2:])
print(f"| {n:,} | status | {s*1000:.0f} ms | iptables-save + ip6tables-save + bash -n {sr*1000:.0f} ms | {s/sr:.1f}x | <= 5x |")
print(f"| {n:,} | restore (write, restart, verify) | {r*1000:.0f} ms | bash -n + restart + iptables-save + ip6tables-save {rr*1000:.0f} ms | {r/rr:.1f}x | <= 5x |")
PY
done
