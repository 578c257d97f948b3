#!/usr/bin/env bash
# Runs the README's test command once as an unprivileged user, on a clean clone, as a newcomer
# without root would: root-only tests skip loudly (CI is unset for this run), everything else
# must pass. Called by .ci/run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

user=iwss-keeper-ci
id -u "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
work=$(mktemp -d /tmp/iwss-keeper-nonroot.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
git clone -q --no-hardlinks . "$work/src"
# Crates come from root's cargo cache, so this run needs no network.
mkdir -p "$work/cargo"
cp -a "${CARGO_HOME:-$HOME/.cargo}/registry" "$work/cargo/"
chown -R "$user:" "$work"
# The toolchain stays where rustup put it, often under root's 0700 home: the user may pass
# through (not list) each directory above it.
sysroot=$(rustc --print sysroot)
dir=$sysroot
while [ "$dir" != / ]; do
    chmod o+x "$dir"
    dir=$(dirname "$dir")
done
cd "$work/src"
runuser -u "$user" -- env -u CI HOME="$work" CARGO_HOME="$work/cargo" \
    PATH="$sysroot/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    cargo test --locked --offline
