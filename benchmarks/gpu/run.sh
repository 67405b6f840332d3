#!/usr/bin/env bash
# On the device machine (run from the repository root with .gpu carried): points the carried OpenCL ICD loader at
# the NVIDIA driver's OpenCL library, lists the devices, then times the same work with our opencl backend
# (DeviceTiming, once per convolution algorithm in CONVS: direct and winograd, F(2x2, 3x3)) and with PyTorch CUDA
# (torch_cuda.py). JSON lines in $OUT (or /tmp). CONFIG (celebahq256; cifar10, afhqdog256), BATCHES
# (1: one OpenCL arena holds at most 2 GiB, which a 256x256 DDPM fills at batch 2 or 3), FORWARDS (10), STEPS (20) change the work; locally, ICD=libpocl.so.2 runs the same script on PoCL.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
g="$root/.gpu"
out="${OUT:-/tmp}"
config="${CONFIG:-celebahq256}" batches="${BATCHES:-1}" forwards="${FORWARDS:-10}" steps="${STEPS:-20}"
lib="${ICD:-$(ls /usr/local/nvidia/lib64/libnvidia-opencl.so.1 /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1 \
  2>/dev/null | head -1)}"
mkdir -p /tmp/unseen-icd && echo "$lib" > /tmp/unseen-icd/device.icd
export OCL_ICD_VENDORS=/tmp/unseen-icd LD_LIBRARY_PATH="$g/opencl:${LD_LIBRARY_PATH:-}"
rm -rf /tmp/unseen-runtime && tar -xJf "$g/runtime.tar.xz" -C /tmp
java=(/tmp/unseen-runtime/bin/java --add-modules jdk.incubator.vector -XX:+UseG1GC -Xmx48g -Dunseen.opencl.arenaMB=2000)
echo "ICD: $lib"
"${java[@]}" -cp "$g/unseen-bench.jar" io.unseen.bench.DeviceTiming devices 2>&1 | tee "$out/devices.txt"
for conv in ${CONVS:-direct winograd}; do
  "${java[@]}" -Dunseen.conv="$conv" -cp "$g/unseen-bench.jar" io.unseen.bench.DeviceTiming "${DEVICE:-opencl}" "$config" \
    "$batches" "$forwards" "$steps" 2>&1 | grep -v 'incubator' | tee "$out/unseen-$config-$conv.jsonl"
done
if [ -z "${SKIP_TORCH:-}" ]; then
  PYTHONUNBUFFERED=1 python3 "$root/benchmarks/gpu/torch_cuda.py" "$config" "$batches" "$forwards" "$steps" 2>&1 | tee "$out/torch-$config.jsonl"
fi
