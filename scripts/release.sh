#!/bin/sh
# Builds what ships: a release binary that runs on glibc 2.17 (RHEL/CentOS 7, the oldest appliance
# userland) and an RPM holding it with the hooks, the boot guard unit, an example config, man pages
# and shell completions. Everything lands in target/artifacts/:
#   iwss-keeper-VERSION-x86_64-linux-gnu      the single binary
#   iwss-keeper-VERSION-1.x86_64.rpm          the package
#   SHA256SUMS
# Needs: cargo-zigbuild and zig (pip install ziglang), cargo-generate-rpm, objdump, gzip.
# usage: scripts/release.sh
set -eu
cd "$(dirname "$0")/.."
# The package's asset paths (Cargo.toml) are under ./target.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR

glibc=2.17
triple=x86_64-unknown-linux-gnu
profile=dist
dist=target/artifacts

missing=
command -v cargo-zigbuild >/dev/null 2>&1 || missing="$missing cargo-zigbuild(cargo install cargo-zigbuild)"
command -v cargo-generate-rpm >/dev/null 2>&1 || missing="$missing cargo-generate-rpm(cargo install cargo-generate-rpm)"
command -v zig >/dev/null 2>&1 || python3 -m ziglang version >/dev/null 2>&1 || missing="$missing zig(pip install ziglang)"
command -v objdump >/dev/null 2>&1 || missing="$missing objdump(binutils)"
if [ -n "$missing" ]; then
    echo "release: missing:$missing" >&2
    exit 2
fi

version=$(cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "iwss-keeper"))')

echo "== build $version for $triple with glibc $glibc"
cargo zigbuild --locked --profile "$profile" --target "$triple.$glibc"
bin=target/$triple/$profile/iwss-keeper

echo "== glibc check"
scripts/check-glibc.sh "$bin" "$glibc"

echo "== man pages and completions"
rm -rf "$dist"
mkdir -p "$dist/assets"
cargo run --locked --quiet --example man-and-completions -- "$dist/assets" >/dev/null
gzip -9n "$dist"/assets/man/*.1

echo "== rpm"
# File times and the build time clamped to the last commit's: the same commit gives the same RPM.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
# xz, not the default zstd: the rpm of RHEL/CentOS 7 cannot read zstd payloads.
cargo generate-rpm --target "$triple" --profile "$profile" --payload-compress xz \
    --auto-req builtin -o "$dist/"
cp "$bin" "$dist/iwss-keeper-$version-x86_64-linux-gnu"
(cd "$dist" && sha256sum iwss-keeper-*.rpm "iwss-keeper-$version-x86_64-linux-gnu" >SHA256SUMS)
echo "== done"
ls -l "$dist"
