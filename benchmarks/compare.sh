#!/usr/bin/env bash
# Our JMH benchmarks against PyTorch CPU on the same shapes and thread count; prints a table of GFLOP/s.
# Usage: benchmarks/compare.sh [extra JMH options]   (defaults: -wi 3 -i 5 -f 1; THREADS=2; REBUILD=0 skips the build)
# (JMH forks take --add-modules=jdk.incubator.vector from the benchmarks' @Fork; do not pass -jvmArgsAppend.)
# The numbers are only as quiet as the machine: stop other heavy processes first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
threads="${THREADS:-2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$root"
if [[ ! -f benchmarks/target/benchmarks.jar || "${REBUILD:-1}" == 1 ]]; then
  ./mvnw -q -pl benchmarks -am package -DskipTests
fi

echo "== JMH (unseen.threads=$threads)" >&2
java -jar benchmarks/target/benchmarks.jar 'io.unseen.bench.(Conv2dBenchmark|SgemmBenchmark)' \
  -wi 3 -i 5 -f 1 -jvmArgsPrepend "-Dunseen.threads=$threads" -rf json -rff "$work/jmh.json" "$@" >&2

echo "== PyTorch (torch.set_num_threads($threads))" >&2
/usr/bin/python3 "$here/bench_torch.py" --threads "$threads" | tee "$work/torch.txt" >&2

/usr/bin/python3 - "$work/jmh.json" "$work/torch.txt" <<'PY'
import json, sys

def flops(bench, param):
    if bench.split("/")[0] == "conv3x3":
        c, s = (int(v) for v in param.split("x"))
        return 2.0 * c * c * 9 * s * s
    if bench == "sgemm":
        n = int(param)
        return 2.0 * n ** 3
    raise SystemExit("unknown benchmark " + bench)

ours, ours_best = {}, {}
for r in json.load(open(sys.argv[1])):
    bench = r["benchmark"].rsplit(".", 1)[1]
    params = r.get("params", {})
    if params.get("backend", "cpu") != "cpu":
        continue
    param = params.get("shape") or params.get("size")
    if params.get("conv", "direct") != "direct":
        bench += "/" + params["conv"]  # Winograd: direct-equivalent GFLOP/s, no PyTorch row
    ms = r["primaryMetric"]["score"]  # AverageTime in ms/op
    fastest = min(v for fork in r["primaryMetric"]["rawData"] for v in fork)  # best iteration's mean
    ours[(bench, param)] = flops(bench, param) / (ms * 1e-3) / 1e9
    ours_best[(bench, param)] = flops(bench, param) / (fastest * 1e-3) / 1e9

torch, torch_best = {}, {}
for line in open(sys.argv[2]):
    f = line.split()
    if len(f) >= 8 and f[5] == "GFLOP/s" and f[6] == "best":
        torch[(f[0], f[1])] = float(f[4])
        torch_best[(f[0], f[1])] = float(f[7])

# ours: JMH mean time; torch: median time. The "best" columns (our fastest 1 s iteration, torch's fastest call)
# show how far the machine's noise moved each; compare like with like.
print(f"{'benchmark':<18} {'shape':<8} {'ours GFLOP/s':>13} {'torch GFLOP/s':>14} {'ours/torch':>11} "
      f"{'ours best':>10} {'torch best':>11}")
fmt = lambda v: f"{v:.1f}" if v else "-"
for key in sorted(set(ours) | set(torch)):
    o, t = ours.get(key), torch.get(key)
    ratio = f"{o / t:.2f}" if o and t else "-"
    print(f"{key[0]:<18} {key[1]:<8} {fmt(o):>13} {fmt(t):>14} {ratio:>11} {fmt(ours_best.get(key)):>10} "
          f"{fmt(torch_best.get(key)):>11}")
PY
