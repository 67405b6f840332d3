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
declare -A best
run() {
  local name="$1"; shift
  rm -rf "$work/out-$name"
  local start end
  start=$(date +%s.%N)
  "$@" --output "$work/out-$name" >/dev/null 2>"$work/$name.log"
  end=$(date +%s.%N)
  local s
  s=$(echo "$end - $start" | bc)
  printf '%-10s %6.1f s  %6.3f s/sample  load %s\n' "$name" "$s" "$(echo "$s / $count" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
  if [ -z "${best[$name]:-}" ] || (( $(echo "$s < ${best[$name]}" | bc) )); then best[$name]=$s; fi
}
for ((r = 0; r < rounds; r++)); do
  run cli ./unseen sample "${args[@]}"
  run local1 ./unseen-spark sample --master 'local[1]' "${args[@]}"
  run local2 ./unseen-spark sample --master 'local[2]' "${args[@]}"
done
for name in cli local1 local2; do
  cmp -s "$work/out-cli/grid.png" "$work/out-$name/grid.png" || { echo "$name: grid.png differs from the CLI's" >&2; exit 1; }
  printf 'best %-10s %6.1f s  %6.3f s/sample\n' "$name" "${best[$name]}" "$(echo "${best[$name]} / $count" | bc -l)"
done
