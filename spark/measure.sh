#!/usr/bin/env bash
# Throughput of `unseen sample` against `unseen-spark sample` on local[1] and local[2], on the bundled demo model
# (32x32 DDPM): the numbers in spark/README.md. Usage: spark/measure.sh [COUNT] [ROUNDS]. Writes under
# ${TMPDIR:-/tmp}/unseen-spark-measure; prints one line per run and the best of each.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
count="${1:-64}"
rounds="${2:-1}"
work="${TMPDIR:-/tmp}/unseen-spark-measure"
mkdir -p "$work"
cd "$root"
[ -f "$work/demo.safetensors" ] || ./unseen convert models/demo/fashion-footwear-ddpm-ema.ckpt -o "$work/demo.safetensors" >/dev/null 2>&1
[ -f "$work/dress.safetensors" ] || ./unseen invert --model "$work/demo.safetensors" --images models/demo/references/dress \
  --t0 500 --steps 20 --output "$work/dress.safetensors" >/dev/null 2>&1
./unseen-spark --help >/dev/null  # builds the module first, outside the timings
args=(--model "$work/demo.safetensors" --prior "$work/dress.safetensors" --count "$count" --method gaussian --seed 1
  --batch-size 16)
# a JVM stopped for a while (a shared machine's benchmark pausing the others) must not lose its executor to the
# heartbeat timeout
patient=(--conf spark.network.timeout=100000s --conf spark.executor.heartbeatInterval=10000s)
declare -A best bestcpu
# wall time, and CPU time (user + sys of the JVM and its threads): on a shared machine the CPU time moves less
run() {
  local name="$1"; shift
  rm -rf "$work/out-$name"
  local t wall cpu
  t=$( { TIMEFORMAT='%R %U %S'; time "$@" --output "$work/out-$name" >/dev/null 2>"$work/$name.log"; } 2>&1 )
  wall=$(echo "$t" | cut -d' ' -f1)
  cpu=$(echo "$t" | awk '{print $2 + $3}')
  printf '%-7s wall %6.1f s (%6.3f s/sample)  cpu %6.1f s (%6.3f s/sample)  load %s\n' "$name" "$wall" \
    "$(echo "$wall / $count" | bc -l)" "$cpu" "$(echo "$cpu / $count" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
  if [ -z "${best[$name]:-}" ] || (( $(echo "$wall < ${best[$name]}" | bc) )); then best[$name]=$wall; fi
  if [ -z "${bestcpu[$name]:-}" ] || (( $(echo "$cpu < ${bestcpu[$name]}" | bc) )); then bestcpu[$name]=$cpu; fi
}
for ((r = 0; r < rounds; r++)); do
  run cli ./unseen sample "${args[@]}"
  run local1 ./unseen-spark sample --master 'local[1]' "${args[@]}" "${patient[@]}"
  run local2 ./unseen-spark sample --master 'local[2]' "${args[@]}" "${patient[@]}"
done
for name in cli local1 local2; do
  diff -r -q -x summary.json "$work/out-cli" "$work/out-$name" >&2 || { echo "$name: files differ from the CLI's" >&2; exit 1; }
  printf 'best %-7s wall %6.1f s (%6.3f s/sample)  cpu %6.1f s (%6.3f s/sample)\n' "$name" "${best[$name]}" \
    "$(echo "${best[$name]} / $count" | bc -l)" "${bestcpu[$name]}" "$(echo "${bestcpu[$name]} / $count" | bc -l)"
done
