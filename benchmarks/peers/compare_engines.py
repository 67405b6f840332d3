#!/usr/bin/python3
"""Unseen against ONNX Runtime's Java API and PyTorch CPU: the same UNet forwards, side by side, in one run.

Every engine gets the same weights (export_models.py writes one random-weight model per paper config in three
formats), the same thread count and the same timing rule (warm-up until the time per forward settles, then timed
forwards: `unseen bench --json`, io.unseen.bench.OnnxForward, torch_forward.py). Each measurement is a fresh
process; within a round the three engines run one after another in an order that rotates from round to round, so
that a machine growing busier or quieter moves all three alike. The table holds, per engine, the median over rounds
of each process's median time per forward, the share of the machine's FP32 FMA peak (measured by `unseen bench` in
its own processes of the same run) and the process's peak resident memory (VmHWM). Before timing, each config's
output is computed once by each engine on one input and compared (the engines compute the same function), and
those processes' wall times are the time to a first result: start-up, model load and a cold forward.

    benchmarks/peers/compare_engines.py [--rounds 3] [--only cifar10,...] [--models DIR] [--write]

--write puts the tables into benchmarks/RESULTS.md between its "engines" markers (the rest of the file is kept);
without it they go to stdout. Needs /usr/bin/python3 with torch (Debian python3-torch) and the benchmarks module
built (`./mvnw -q -pl benchmarks,cli -am package -DskipTests`; the script builds it when missing).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")
BEGIN, END = "<!-- engines:begin -->", "<!-- engines:end -->"
ENGINES = ("unseen", "onnxruntime", "pytorch")
PYTHON = "/usr/bin/python3"
JAVA = ["java", "--add-modules", "jdk.incubator.vector"]

# (table, config, batch, size, threads): the rows. None size: the config's resolution.
WORKLOADS = [
    ("Full forwards, 2 threads", "cifar10", 1, None, 2),
    ("Full forwards, 2 threads", "cifar10", 8, None, 2),
    ("Full forwards, 2 threads", "celebahq256", 1, None, 2),
    ("Full forwards, 2 threads", "afhqdog256", 1, None, 2),
    ("Batch scaling: CIFAR-10 DDPM, 2 threads", "cifar10", 2, None, 2),
    ("Batch scaling: CIFAR-10 DDPM, 2 threads", "cifar10", 4, None, 2),
    ("Batch scaling: CIFAR-10 DDPM, 2 threads", "cifar10", 16, None, 2),
    ("Thread scaling: 1 thread", "cifar10", 1, None, 1),
    ("Thread scaling: 1 thread", "celebahq256", 1, None, 1),
    ("Resolution scaling: the CelebA-HQ DDPM at 512x512, 2 threads", "celebahq256", 1, 512, 2),
]
RESOLUTION = {"cifar10": 32, "celebahq256": 256, "afhqdog256": 256}


def run(cmd, env=None):
    """(stdout, wall seconds) of a command; a failure stops the run with the command and its stderr."""
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return p.stdout, wall


def last_json(out):
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def unseen_env(threads):
    env = dict(os.environ)
    env["JAVA_OPTS"] = (env.get("JAVA_OPTS", "") + f" -Dunseen.threads={threads}").strip()
    return env


def ort_classpath():
    peers = os.path.join(ROOT, "benchmarks", "target", "peers")
    jars = [os.path.join(peers, j) for j in sorted(os.listdir(peers)) if j.endswith(".jar")]
    return os.pathsep.join([os.path.join(ROOT, "benchmarks", "target", "benchmarks.jar")] + jars)


def measure(engine, models, config, batch, size, threads, forwards):
    model = os.path.join(models, config)
    if engine == "unseen":
        cmd = [os.path.join(ROOT, "unseen"), "bench", "--model", model + ".safetensors", "--batch", str(batch),
               "--size", str(size), "--forwards", str(forwards), "--json"]
        out, _ = run(cmd, unseen_env(threads))
    elif engine == "onnxruntime":
        cmd = JAVA + ["-cp", ort_classpath(), "io.unseen.bench.OnnxForward", "--onnx", model + ".onnx",
                      "--batch", str(batch), "--size", str(size), "--threads", str(threads),
                      "--forwards", str(forwards)]
        out, _ = run(cmd)
    else:
        cmd = [PYTHON, os.path.join(HERE, "torch_forward.py"), "--model", model, "--batch", str(batch),
               "--size", str(size), "--threads", str(threads), "--forwards", str(forwards)]
        out, _ = run(cmd)
    return last_json(out)


def first_result(engine, models, config, x_path, out_path, threads):
    """One whole process: start, load the model, one cold forward on x, write the output. Returns wall seconds."""
    model = os.path.join(models, config)
    if engine == "unseen":
        cmd = [os.path.join(ROOT, "unseen"), "forward", "--model", model + ".safetensors", "--input", x_path,
               "--timesteps", "500", "--output", out_path]
        _, wall = run(cmd, unseen_env(threads))
    elif engine == "onnxruntime":
        cmd = JAVA + ["-cp", ort_classpath(), "io.unseen.bench.OnnxForward", "--onnx", model + ".onnx",
                      "--threads", str(threads), "--input", x_path, "--t", "500", "--output", out_path]
        _, wall = run(cmd)
    else:
        cmd = [PYTHON, os.path.join(HERE, "torch_forward.py"), "--model", model, "--threads", str(threads),
               "--input", x_path, "--t", "500", "--output", out_path]
        _, wall = run(cmd)
    return wall


def machine_facts():
    facts = {}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache", "Flags"):
                facts[key.strip()] = value.strip()
    except OSError:
        pass
    flags = facts.pop("Flags", "").split()
    facts["vector ISA"] = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "other"
    with open("/proc/meminfo") as f:
        facts["memory"] = f"{int(f.readline().split()[1]) / 1024 ** 2:.1f} GiB"
    facts["kernel"] = platform.release()
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    facts["JDK"] = java[1] if len(java) > 1 else java[0]
    facts["Python"] = platform.python_version()
    return facts


def gb(v):
    return f"{v / 1e9:.2f} GB" if v else "-"


def render(results, parity, firsts, facts, peak, rounds, load, command):
    lines = [BEGIN, "## Unseen, ONNX Runtime Java and PyTorch CPU, side by side", ""]
    lines.append(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{command}` ({rounds} rounds;"
                 f" load average {load[0]:.2f} before, {load[1]:.2f} after). Engines: {facts.pop('engines')}.")
    lines.append("")
    lines.append("Machine: " + "; ".join(f"{k} {v}" for k, v in facts.items()) + f". FP32 FMA peak measured in this"
                 f" run: {peak:.0f} GFLOP/s (median of `unseen bench`'s measurement in each of its processes).")
    lines.append("")
    lines.append("Times are seconds per forward (median over rounds of each process's median after warm-up); a ratio"
                 " below 1 means Unseen is faster; % peak is GFLOP per forward (`FlopCount`) over time over the peak;"
                 " memory is each process's peak resident set (VmHWM), runtime included. Random weights, the same"
                 " in all three (`export_models.py`), timestep 500.")
    tables = {}
    for key, per_engine in results.items():
        tables.setdefault(key[0], []).append((key, per_engine))
    for title, rows in tables.items():
        lines += ["", f"### {title}", "",
                  "| workload | Unseen s | ONNX RT s | PyTorch s | Unseen / ONNX RT | Unseen / PyTorch | % peak U / O / P"
                  " | peak memory U / O / P |", "|---|---|---|---|---|---|---|---|"]
        for (table, config, batch, size, threads), e in rows:
            size = size or RESOLUTION[config]
            med = {n: statistics.median(r["median_seconds"] for r in e[n]) for n in ENGINES}
            flops = e["unseen"][0]["flops_per_forward"]
            pct = " / ".join(f"{100 * flops / med[n] / 1e9 / peak:.0f}%" for n in ENGINES)
            mem = " / ".join(gb(max(r["peak_rss_bytes"] or 0 for r in e[n])) for n in ENGINES)
            lines.append(f"| {config} {size}x{size}, batch {batch}, {threads} thread{'s' if threads > 1 else ''} |"
                         f" {med['unseen']:.4g} | {med['onnxruntime']:.4g} | {med['pytorch']:.4g} |"
                         f" {med['unseen'] / med['onnxruntime']:.2f} | {med['unseen'] / med['pytorch']:.2f} | {pct} |"
                         f" {mem} |")
    lines += ["", "### Same function, and the time to a first result", "",
              "One input per config (batch 1, N(0, I), seed 0, timestep 500), one whole process per engine: start-up,"
              " model load, one cold forward, output written (`unseen forward`; `OnnxForward --input`;"
              " `torch_forward.py --input`). The differences are to PyTorch's output.", "",
              "| config | max abs diff Unseen | max abs diff ONNX RT | output std | first result Unseen s |"
              " ONNX RT s | PyTorch s |", "|---|---|---|---|---|---|---|"]
    for config, p in parity.items():
        f = firsts[config]
        lines.append(f"| {config} | {p['unseen']:.2e} | {p['onnxruntime']:.2e} | {p['std']:.3f} |"
                     f" {statistics.median(f['unseen']):.2f} | {statistics.median(f['onnxruntime']):.2f} |"
                     f" {statistics.median(f['pytorch']):.2f} |")
    lines += ["", END]
    return "\n".join(lines)


def write_results(section):
    text = open(RESULTS).read() if os.path.exists(RESULTS) else "# Results\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        head, sep, rest = text.partition("\n## ")
        text = head.rstrip("\n") + "\n\n" + section + "\n" + (sep + rest if sep else "")
    tmp = RESULTS + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, RESULTS)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--forwards", type=int, default=5, help="timed forwards per process (default 5)")
    ap.add_argument("--only", help="comma-separated configs (cifar10, celebahq256, afhqdog256)")
    ap.add_argument("--models", default=os.path.join(tempfile.gettempdir(), "unseen-peer-models"),
                    help="where export_models.py's files are (made when missing)")
    ap.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md's engines section")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else set(RESOLUTION)
    workloads = [w for w in WORKLOADS if w[1] in only]
    configs = sorted({w[1] for w in workloads}, key=list(RESOLUTION).index)

    if not os.path.exists(os.path.join(ROOT, "benchmarks", "target", "peers")):
        run([os.path.join(ROOT, "mvnw"), "-q", "-B", "-pl", "benchmarks,cli", "-am", "package", "-DskipTests"])
    run([PYTHON, os.path.join(HERE, "export_models.py"), "--out", args.models, "--configs", ",".join(configs)])
    load_before = os.getloadavg()[0]
    facts = machine_facts()

    parity, firsts = {}, {}
    with tempfile.TemporaryDirectory() as work:
        for config in configs:
            s = RESOLUTION[config]
            x = np.random.default_rng(0).standard_normal((1, 3, s, s)).astype(np.float32)
            x_path = os.path.join(work, config + "-x.npy")
            np.save(x_path, x)
            outs, firsts[config] = {}, {n: [] for n in ENGINES}
            for r in range(args.rounds):
                for n in ENGINES[r % 3:] + ENGINES[:r % 3]:
                    out_path = os.path.join(work, f"{config}-{n}.npy")
                    firsts[config][n].append(first_result(n, args.models, config, x_path, out_path, 2))
                    outs[n] = np.load(out_path)
            ref = outs["pytorch"]
            parity[config] = {n: float(np.abs(outs[n] - ref).max()) for n in ("unseen", "onnxruntime")}
            parity[config]["std"] = float(ref.std())
            print(f"{config}: same function? {parity[config]}; first result {firsts[config]}", file=sys.stderr)

    results = {w: {n: [] for n in ENGINES} for w in workloads}
    for r in range(args.rounds):
        order = ENGINES[r % 3:] + ENGINES[:r % 3]
        for w in workloads:
            _, config, batch, size, threads = w
            for n in order:
                m = measure(n, args.models, config, batch, size or RESOLUTION[config], threads, args.forwards)
                results[w][n].append(m)
                print(f"round {r + 1} {config} b{batch} s{size or RESOLUTION[config]} t{threads} {n}:"
                      f" {m['median_seconds']:.4f} s", file=sys.stderr, flush=True)
    versions = {n: results[workloads[0]][n][0].get("engine", n) for n in ENGINES}
    versions["unseen"] = "Unseen " + results[workloads[0]]["unseen"][0].get("device", "cpu")
    facts["engines"] = ", ".join(versions.values())
    peak = statistics.median(m["peak_gflops"] for w in workloads for m in results[w]["unseen"])
    command = "benchmarks/peers/compare_engines.py " + " ".join(sys.argv[1:])
    section = render(results, parity, firsts, facts, peak, args.rounds, (load_before, os.getloadavg()[0]),
                     command.strip())
    if args.write:
        write_results(section)
        print(f"wrote {RESULTS}", file=sys.stderr)
    else:
        print(section)


if __name__ == "__main__":
    main()
