#!/usr/bin/env bash
# Tests the distribution as a user without a JDK gets it: unpacks the tarball into a temporary folder whose name has
# a space and runs `bin/unseen demo --count 2` from another folder with JAVA_HOME unset and a PATH that holds only
# the few tools the launcher uses (no java), then checks the demo's outputs; `bin/unseen env`, which preloads libjsig
# from that path, must write nothing on stderr, and a JAVA_OPTS the JVM refuses must be one line.
# Usage: test-dist.sh [TARBALL]
# (default: dist/target/unseen-*-linux-x64.tar.gz; build it with ./mvnw -Pdist package).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
tarball="${1:-$(ls "$repo"/dist/target/unseen-*-linux-x64.tar.gz 2>/dev/null | head -1)}"
[ -f "$tarball" ] || { echo "test-dist: no tarball (build it: ./mvnw -Pdist package)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/install dir"
tar -C "$tmp/install dir" -xzf "$tarball"
home="$(ls -d "$tmp/install dir"/unseen-*)"
mkdir "$tmp/tools" "$tmp/work"
for t in bash readlink dirname mkdir ln; do
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
export XDG_CACHE_HOME="$tmp/cache"  # where the launcher links libjsig from, its path having a space here
err="$(cd "$tmp/work" && env -u JAVA_HOME PATH="$tmp/tools" "$home/bin/unseen" env 2>&1 >/dev/null)"
[ -z "$err" ] || { echo "test-dist: bin/unseen env wrote on stderr: $err" >&2; exit 1; }
compgen -G "$XDG_CACHE_HOME/unseen/libjsig-*.so" >/dev/null || {
  echo "test-dist: bin/unseen env did not link libjsig into $XDG_CACHE_HOME/unseen" >&2; exit 1; }
err="$(cd "$tmp/work" && env -u JAVA_HOME PATH="$tmp/tools" JAVA_OPTS=-XX:+Bogus "$home/bin/unseen" env 2>&1)" && {
  echo "test-dist: JAVA_OPTS=-XX:+Bogus did not fail" >&2; exit 1; }
[[ "$err" == "unseen: JAVA_OPTS: Unrecognized VM option 'Bogus' "* && "$err" != *$'\n'* ]] || {
  echo "test-dist: JAVA_OPTS=-XX:+Bogus is not one line: $err" >&2; exit 1; }
echo "test-dist: ok"
