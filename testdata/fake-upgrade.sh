#!/bin/sh
# A stand-in for an IWSVA service pack / IWSS patch package, for tests only: runs the registered
# pre-install hooks, lays the new version's files (version file included) over the root, then
# runs the post-install hooks, as the vendor package is assumed to do.
# usage: fake-upgrade.sh ROOT HOOK_DIR NEW_TREE [--no-hooks]
set -e
root=$1
hooks=$2
new=$3
mode=${4:-}
run_hooks() {
    [ "$mode" = --no-hooks ] && return 0
    for hook in "$root$hooks/$1"/*; do
        if [ -x "$hook" ]; then
            "$hook"
        fi
    done
}
run_hooks pre-install.d
cp -R "$new"/. "$root"/
run_hooks post-install.d
echo "upgrade done"
