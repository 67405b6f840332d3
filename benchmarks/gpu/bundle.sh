#!/usr/bin/env bash
# Builds .gpu/ (git-ignored) for the device comparison on a machine with a GPU but no Java: a jlink'ed runtime (the
# modules DeviceTiming loads; stored uncompressed, then xz'ed: 11 MB instead of 36), the benchmarks jar with only the
# x86-64 Linux Aparapi library, and the OpenCL ICD loader from Debian's ocl-icd-libopencl1 package. With the
# repository's own files it stays under the 64 MiB that travel to a device machine. Then, there:
# `benchmarks/gpu/run.sh` with .gpu carried.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/.gpu"
cd "$root"
./mvnw -q -B -DskipTests -pl benchmarks -am package
rm -rf "$out" && mkdir -p "$out/opencl"
rm -rf /tmp/unseen-runtime
jlink --add-modules java.base,java.logging,java.management,jdk.incubator.vector \
  --strip-debug --no-header-files --no-man-pages --compress=0 --output /tmp/unseen-runtime
tar -cJf "$out/runtime.tar.xz" -C /tmp unseen-runtime
cp benchmarks/target/benchmarks.jar "$out/unseen-bench.jar"
# Aparapi's jar carries its native library for every platform; the device is x86-64 Linux.
zip -q -d "$out/unseen-bench.jar" 'osx/*' 'win/*' 'linux/libaparapi_aarch64.so' 'linux/libaparapi_armhf.so' \
  'linux/libaparapi_x86.so' || true
(cd /tmp && rm -f ocl-icd-libopencl1_*.deb && apt-get download ocl-icd-libopencl1 >/dev/null \
  && dpkg -x ocl-icd-libopencl1_*.deb /tmp/ocl-icd)
cp -L /tmp/ocl-icd/usr/lib/x86_64-linux-gnu/libOpenCL.so.1 "$out/opencl/"
du -sh "$out"
