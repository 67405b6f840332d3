#!/usr/bin/env bash
# Builds target/unseen-VERSION-linux-x64.tar.gz: a jlink'ed Java runtime with only the modules the CLI uses, the
# CLI's shaded jar (without the other platforms' native libraries), the bundled demo model and references, and
# bin/unseen. Run by `./mvnw -Pdist package` (exec-maven-plugin); needs only the JDK that runs Maven.
# Usage: build-dist.sh JAVA_HOME VERSION REPO_ROOT TARGET_DIR
set -euo pipefail
java_home="$1" version="$2" repo="$(cd "$3" && pwd)" target="$4"
jar="$repo/cli/target/unseen.jar"
[ -f "$jar" ] || { echo "build-dist: $jar is missing (build the cli module first: ./mvnw -Pdist package)" >&2; exit 1; }
name="unseen-$version-linux-x64"
stage="$target/$name"
rm -rf "$stage" "$target/$name.tar.gz"
mkdir -p "$stage/bin" "$stage/lib" "$stage/models"

# The modules the jar needs, as jdeps finds them (java.desktop is ImageIO's; jdk.incubator.vector the engine's).
modules="$("$java_home/bin/jdeps" --multi-release 17 --ignore-missing-deps --print-module-deps "$jar")"
case ",$modules," in *,jdk.incubator.vector,*) ;; *) modules="$modules,jdk.incubator.vector" ;; esac
echo "build-dist: jlink $modules"
"$java_home/bin/jlink" --add-modules "$modules" --output "$stage/runtime" \
  --strip-debug --no-header-files --no-man-pages --compress=2

# The jar without the natives of other platforms (Aparapi and JLine ship Windows, macOS, BSD and ARM builds: 60 MB
# unpacked), repacked with the JDK's jar tool.
unpacked="$target/jar"
rm -rf "$unpacked" && mkdir -p "$unpacked"
(cd "$unpacked" && "$java_home/bin/jar" --extract --file "$jar")
rm -rf "$unpacked/win" "$unpacked/osx" "$unpacked"/linux/libaparapi_{x86,aarch64,armhf}.so \
  "$unpacked"/org/jline/nativ/{Windows,Mac,FreeBSD} "$unpacked"/org/jline/nativ/Linux/{x86,arm,armv6,armv7,arm64,ppc64}
"$java_home/bin/jar" --create --file "$stage/lib/unseen.jar" --manifest "$unpacked/META-INF/MANIFEST.MF" \
  -C "$unpacked" .
rm -rf "$unpacked"

cp -r "$repo/models/demo" "$stage/models/demo"
rm -rf "$stage/models/demo/results"  # the README's pictures
cp "$repo/dist/src/unseen" "$stage/bin/unseen"
cp "$repo/cli/src/main/sh/launch.sh" "$stage/lib/launch.sh"
chmod +x "$stage/bin/unseen"
cp "$repo/README.md" "$stage/README.md"

tar -C "$target" -czf "$target/$name.tar.gz" "$name"
echo "build-dist: $target/$name.tar.gz ($(du -h "$target/$name.tar.gz" | cut -f1))"
