#!/usr/bin/env bash
# Tests the distribution as a user without a JDK gets it: unpacks the tarball into a temporary folder and runs
# `bin/unseen demo --count 2` from another folder with JAVA_HOME unset and a PATH that holds only the few tools the
# launcher uses (no java), then checks the demo's outputs. Usage: test-dist.sh [TARBALL]
# (default: dist/target/unseen-*-linux-x64.tar.gz; build it with ./mvnw -Pdist package).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
tarball="${1:-$(ls "$repo"/dist/target/unseen-*-linux-x64.tar.gz 2>/dev/null | head -1)}"
[ -f "$tarball" ] || { echo "test-dist: no tarball (build it: ./mvnw -Pdist package)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tar -C "$tmp" -xzf "$tarball"
home="$(ls -d "$tmp"/unseen-*)"
mkdir "$tmp/tools" "$tmp/work"
for t in bash readlink dirname grep; do
  ln -s "$(command -v "$t")" "$tmp/tools/$t"
done
if env -u JAVA_HOME PATH="$tmp/tools" bash -c 'command -v java' >/dev/null; then
  echo "test-dist: java is still on the test PATH" >&2; exit 1
fi
echo "test-dist: $(basename "$tarball") ($(du -h "$tarball" | cut -f1)), running bin/unseen demo --count 2 without a JDK"
(cd "$tmp/work" && env -u JAVA_HOME PATH="$tmp/tools" "$home/bin/unseen" demo --count 2 --steps 10 --output out)
out="$tmp/work/out"
for f in samples-dress/sample-00000.png samples-dress/sample-00001.png samples-dress/grid.png \
         reconstruction-dress/grid.png report/index.html prior-dress.safetensors; do
  [ -s "$out/$f" ] || { echo "test-dist: the demo wrote no $f" >&2; exit 1; }
done
echo "test-dist: ok"
