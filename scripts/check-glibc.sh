#!/bin/sh
# Fails when a binary needs a newer glibc than the oldest appliance has.
# usage: check-glibc.sh BINARY [MAX_VERSION]   (MAX_VERSION defaults to 2.17: RHEL/CentOS 7)
# Prints every dynamic symbol whose GLIBC_ version is newer than MAX_VERSION, and the newest
# version the binary needs. Needs objdump (binutils).
set -eu
bin=${1:?usage: check-glibc.sh BINARY [MAX_VERSION]}
max=${2:-2.17}
[ -f "$bin" ] || { echo "check-glibc: $bin: no such file" >&2; exit 2; }
command -v objdump >/dev/null 2>&1 || { echo "check-glibc: objdump not found (install binutils)" >&2; exit 2; }
symbols=$(objdump -T "$bin") || { echo "check-glibc: objdump -T $bin failed" >&2; exit 2; }
# objdump -T lines end in "GLIBC_2.14  memcpy" (or "(GLIBC_2.2.5) memcpy" for hidden versions).
needed=$(printf '%s\n' "$symbols" | sed -n 's/.*[( ]GLIBC_\([0-9][0-9.]*\)[) ]*\([^ ]*\)$/\1 \2/p' | sort -u)
if [ -z "$needed" ]; then
    echo "check-glibc: $bin has no GLIBC_ symbol versions (static or not glibc)"
    exit 0
fi
newest=$(printf '%s\n' "$needed" | cut -d' ' -f1 | sort -uV | tail -n 1)
too_new=$(printf '%s\n' "$needed" | while read -r version symbol; do
    if [ "$(printf '%s\n%s\n' "$version" "$max" | sort -V | tail -n 1)" != "$max" ]; then
        echo "  GLIBC_$version $symbol"
    fi
done)
if [ -n "$too_new" ]; then
    echo "check-glibc: $bin needs glibc $newest, newer than $max, for:" >&2
    printf '%s\n' "$too_new" >&2
    exit 1
fi
echo "check-glibc: $bin needs at most glibc $newest (limit $max): ok"
