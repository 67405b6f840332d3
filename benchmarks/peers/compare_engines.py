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

The training rows (issue 24) time one fine-tuning step of the demo DDPM at batch 32 in Unseen (`unseen bench
--train --json`: `unseen finetune`'s step) and PyTorch CPU (torch_train.py: the Python recipe's loop body), with the
same weights (the shipped demo checkpoint, converted once by `unseen convert` for Unseen), the same thread count,
the same warm-up rule, fresh processes and an order that alternates from round to round; before timing, both
engines compute the loss and every parameter's gradient of one fixed batch without dropout (`unseen gradients`,
torch_train.py --input), and the run stops when they differ by more than TRAINING_TOLERANCE. ONNX Runtime is not in
these rows: the Java package this module uses is an inference build ("Training is not enabled in this build of ONNX
Runtime").

    benchmarks/peers/compare_engines.py [--rounds 3] [--only cifar10,...,training] [--models DIR] [--write]
    benchmarks/peers/compare_engines.py --only training --rounds 3 --write      # the training rows alone
    benchmarks/peers/compare_engines.py --only training --quick                 # a smoke run of the whole path

--write puts the tables into benchmarks/RESULTS.md between its "engines" markers, the training rows between its
"training" markers (the rest of the file is kept; a section not measured in this run is left as it was); without
it they go to stdout. --quick runs every selected row once with the smallest settings (training rows at batch
QUICK_BATCH, one timed forward or step per process, one round): it proves the path works, its numbers mean nothing,
and it cannot --write. Needs /usr/bin/python3 with torch (Debian python3-torch) and the benchmarks module built
(`./mvnw -q -pl benchmarks,cli -am package -DskipTests`; the script builds it when missing).
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

TRAINING = "training"  # --only's name for the training-step rows
TRAINING_BEGIN, TRAINING_END = "<!-- training:begin -->", "<!-- training:end -->"
TRAINING_ENGINES = ("unseen", "pytorch")
# (table, batch, threads): issue 24's rows, one fine-tuning step of the demo DDPM
TRAINING_WORKLOADS = [
    ("Training step: the demo DDPM", 32, 2),
    ("Training step: the demo DDPM", 32, 1),
]
DEMO_CHECKPOINT = os.path.join(ROOT, "models", "demo", "fashion-footwear-ddpm-ema.ckpt")
DEMO_SIZE = 32
QUICK_BATCH = 2
# the same-function check: loss within 1e-5 relative; each parameter's gradient within 1e-4 x its largest |value| in
# PyTorch (1e-4 x the whole model's largest where a parameter's own gradient is below 1e-6 of that: near-zero
# gradients, e.g. the bias before a GroupNorm, are all rounding); float32 in both engines, summed in other orders
TRAINING_TOLERANCE = {"loss": 1e-5, "gradient": 1e-4, "tiny": 1e-6}


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


def demo_model(models):
    """The demo checkpoint as Unseen reads it: converted once into the models folder by `unseen convert` (as `unseen
    demo` converts it). PyTorch loads the checkpoint itself, so both engines train the same weights."""
    path = os.path.join(models, "demo.safetensors")
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(DEMO_CHECKPOINT):
        os.makedirs(models, exist_ok=True)
        run([os.path.join(ROOT, "unseen"), "convert", DEMO_CHECKPOINT, "-o", path, "--image-size", str(DEMO_SIZE)])
    return path


def measure_training(engine, demo, batch, threads, steps):
    if engine == "unseen":
        cmd = [os.path.join(ROOT, "unseen"), "bench", "--train", "--model", demo, "--batch", str(batch),
               "--steps", str(steps), "--json"]
        out, _ = run(cmd, unseen_env(threads))
    else:
        cmd = [PYTHON, os.path.join(HERE, "torch_train.py"), "--weights", DEMO_CHECKPOINT, "--batch", str(batch),
               "--size", str(DEMO_SIZE), "--threads", str(threads), "--steps", str(steps)]
        out, _ = run(cmd)
    return last_json(out)


def read_safetensors(path):
    """({name: float32 array}, metadata) of a safetensors file of F32 tensors (what `unseen gradients` writes)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {e['dtype']}, expected F32")
        start, end = e["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(e["shape"])
    return tensors, metadata


def training_parity(demo, work, batch):
    """The training step's function in both engines: the loss mean((model(x, t) - y)^2) and every parameter's
    gradient for one fixed batch (x, y ~ N(0, I), seed 0; timesteps uniform in 0..999) without dropout (`unseen
    gradients`; torch_train.py --input). Stops the run when they differ by more than TRAINING_TOLERANCE."""
    rng = np.random.default_rng(0)
    shape = (batch, 1, DEMO_SIZE, DEMO_SIZE)
    x_path, y_path = os.path.join(work, "train-x.npy"), os.path.join(work, "train-y.npy")
    np.save(x_path, rng.standard_normal(shape).astype(np.float32))
    np.save(y_path, rng.standard_normal(shape).astype(np.float32))
    t = ",".join(str(int(v)) for v in rng.integers(0, 1000, batch))
    ours_path, theirs_path = os.path.join(work, "train-g.safetensors"), os.path.join(work, "train-g.npz")
    run([os.path.join(ROOT, "unseen"), "gradients", "--model", demo, "--input", x_path, "--timesteps", t,
         "--target", y_path, "--output", ours_path], unseen_env(2))
    run([PYTHON, os.path.join(HERE, "torch_train.py"), "--weights", DEMO_CHECKPOINT, "--input", x_path,
         "--timesteps", t, "--target", y_path, "--output", theirs_path])
    ours, metadata = read_safetensors(ours_path)
    theirs = dict(np.load(theirs_path))
    loss = {"unseen": float(metadata["unseen.loss"]), "pytorch": float(theirs.pop("loss"))}
    if set(ours) != set(theirs):
        raise SystemExit(f"the engines' gradients name other parameters: only Unseen {sorted(set(ours) - set(theirs))},"
                         f" only PyTorch {sorted(set(theirs) - set(ours))}")
    largest = max(float(np.abs(g).max()) for g in theirs.values())
    worst, worst_name = 0.0, None
    for name, ref in theirs.items():
        own = float(np.abs(ref).max())
        scale = own if own >= TRAINING_TOLERANCE["tiny"] * largest else largest
        err = float(np.abs(ours[name].astype(np.float64) - ref).max()) / scale
        if err >= worst:
            worst, worst_name = err, name
    diff = np.sqrt(sum(float(((ours[n].astype(np.float64) - theirs[n]) ** 2).sum()) for n in theirs))
    norm = np.sqrt(sum(float((theirs[n].astype(np.float64) ** 2).sum()) for n in theirs))
    p = {"batch": batch, "loss": loss, "loss_rel": abs(loss["unseen"] - loss["pytorch"]) / abs(loss["pytorch"]),
         "worst": worst, "worst_name": worst_name, "l2_rel": float(diff / norm), "parameters": len(theirs)}
    if p["loss_rel"] > TRAINING_TOLERANCE["loss"] or worst > TRAINING_TOLERANCE["gradient"]:
        raise SystemExit(f"the training step is not the same function in both engines: {p} (tolerance"
                         f" {TRAINING_TOLERANCE})")
    return p


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


QUICK_NOTE = "**A --quick smoke run: batch, steps and rounds cut to the least; these numbers mean nothing.**"


def run_header(marker, heading, facts, peak, rounds, load, command, quick):
    """A table section's first lines: its marker and heading, when, how and on what machine it was measured."""
    lines = [marker, heading, ""]
    if quick:
        lines += [QUICK_NOTE, ""]
    engines = facts.pop("engines")
    lines.append(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{command}` ({rounds} rounds;"
                 f" load average {load[0]:.2f} before, {load[1]:.2f} after). Engines: {engines}.")
    lines.append("")
    lines.append("Machine: " + "; ".join(f"{k} {v}" for k, v in facts.items()) + f". FP32 FMA peak measured in this"
                 f" run: {peak:.0f} GFLOP/s (median of `unseen bench`'s measurement in each of its processes).")
    lines.append("")
    return lines


def render(results, parity, firsts, facts, peak, rounds, load, command, quick):
    lines = run_header(BEGIN, "## Unseen, ONNX Runtime Java and PyTorch CPU, side by side", facts, peak, rounds,
                       load, command, quick)
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


def render_training(results, parity, facts, peak, rounds, load, command, quick):
    lines = run_header(TRAINING_BEGIN, "## Training step: Unseen and PyTorch CPU", facts, peak, rounds, load,
                       command, quick)
    lines.append("One fine-tuning step of the recipe (`reference/finetune_demo.py`, `unseen finetune`'s defaults) on"
                 " the demo DDPM (`models/demo/fashion-footwear-ddpm-ema.ckpt`, 1.6M parameters; Unseen reads it"
                 " converted by `unseen convert --image-size 32`): a random permutation of as many random images as"
                 " the batch (the recipe's batch of 32 is every reference once), random flips, t ~ U{0..999}, dropout"
                 " 0.1, the loss's gradients, the gradient norm clipped at 1, Adam (lr 1e-4), the EMA (0.99) and the"
                 " weights updated. Unseen: `unseen bench --train --json`; PyTorch: `torch_train.py`. Times are"
                 " seconds per step (median over rounds of each process's median after warm-up); a ratio below 1"
                 " means Unseen is faster (issue 24's goal: Unseen / PyTorch at or below 0.7, and peak memory at or"
                 " below PyTorch's); % peak is three forwards' FLOPs per step (`FlopCount`) over time over the peak;"
                 " memory is each process's peak resident set (VmHWM), runtime included. ONNX Runtime is not in this"
                 " table: its Java package is an inference build (\"Training is not enabled in this build of ONNX"
                 " Runtime\").")
    tables = {}
    for key, per_engine in results.items():
        tables.setdefault(key[0], []).append((key, per_engine))
    for title, rows in tables.items():
        lines += ["", f"### {title}", "",
                  "| workload | Unseen s | PyTorch s | Unseen / PyTorch | % peak U / P | peak memory U / P |"
                  " memory Unseen / PyTorch |", "|---|---|---|---|---|---|---|"]
        for (_, batch, threads), e in rows:
            med = {n: statistics.median(r["median_seconds"] for r in e[n]) for n in TRAINING_ENGINES}
            flops = e["unseen"][0]["flops_per_step"]
            pct = " / ".join(f"{100 * flops / med[n] / 1e9 / peak:.0f}%" for n in TRAINING_ENGINES)
            mem = {n: max(r["peak_rss_bytes"] or 0 for r in e[n]) for n in TRAINING_ENGINES}
            mem_ratio = f"{mem['unseen'] / mem['pytorch']:.2f}" if mem["unseen"] and mem["pytorch"] else "-"
            lines.append(f"| demo DDPM {DEMO_SIZE}x{DEMO_SIZE}, batch {batch}, {threads} thread"
                         f"{'s' if threads > 1 else ''} | {med['unseen']:.4g} | {med['pytorch']:.4g} |"
                         f" {med['unseen'] / med['pytorch']:.2f} | {pct} | {gb(mem['unseen'])} / {gb(mem['pytorch'])} |"
                         f" {mem_ratio} |")
    p = parity
    lines += ["", f"Same function, checked before timing: the loss mean((model(x, t) - y)^2) and every parameter's"
              f" gradient for one fixed batch of {p['batch']} (x, y ~ N(0, I), seed 0, timesteps uniform in 0..999),"
              f" dropout off (`unseen gradients`, `torch_train.py --input`): loss {p['loss']['unseen']:.6g} (Unseen)"
              f" and {p['loss']['pytorch']:.6g} (PyTorch), relative difference {p['loss_rel']:.1e} (tolerance"
              f" {TRAINING_TOLERANCE['loss']:g}); the largest gradient difference, relative to the parameter's largest"
              f" gradient, {p['worst']:.1e} (`{p['worst_name']}`; tolerance {TRAINING_TOLERANCE['gradient']:g}), over"
              f" all {p['parameters']} parameters as one vector {p['l2_rel']:.1e} (relative L2).", "", TRAINING_END]
    return "\n".join(lines)


def write_results(section, begin=BEGIN, end=END):
    """Puts the section between its markers in RESULTS.md; a new section goes after the engines section (or before
    the first "## " heading)."""
    text = open(RESULTS).read() if os.path.exists(RESULTS) else "# Results\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    elif begin != BEGIN and END in text:
        cut = text.index(END) + len(END)
        text = text[:cut] + "\n\n" + section + text[cut:]
    else:
        head, sep, rest = text.partition("\n## ")
        text = head.rstrip("\n") + "\n\n" + section + "\n" + (sep + rest if sep else "")
    tmp = RESULTS + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, RESULTS)


def forward_section(args, workloads, configs, facts, command):
    """The forward tables: the same-function check and first results, then every workload in rotating order."""
    run([PYTHON, os.path.join(HERE, "export_models.py"), "--out", args.models, "--configs", ",".join(configs)])
    load_before = os.getloadavg()[0]
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
    peak = statistics.median(m["peak_gflops"] for w in workloads for m in results[w]["unseen"])
    return render(results, parity, firsts, dict(facts, engines=", ".join(versions.values())), peak, args.rounds,
                  (load_before, os.getloadavg()[0]), command, args.quick)


def training_section(args, rows, facts, command):
    """The training rows: the same-function check, then every row in an order that alternates from round to round."""
    demo = demo_model(args.models)
    with tempfile.TemporaryDirectory() as work:
        parity = training_parity(demo, work, rows[0][1])
    print(f"training: same function? {parity}", file=sys.stderr, flush=True)
    load_before = os.getloadavg()[0]
    results = {w: {n: [] for n in TRAINING_ENGINES} for w in rows}
    for r in range(args.rounds):
        order = TRAINING_ENGINES[r % 2:] + TRAINING_ENGINES[:r % 2]
        for w in rows:
            _, batch, threads = w
            for n in order:
                m = measure_training(n, demo, batch, threads, args.steps)
                results[w][n].append(m)
                print(f"round {r + 1} training b{batch} t{threads} {n}: {m['median_seconds']:.4f} s per step",
                      file=sys.stderr, flush=True)
    first = results[rows[0]]
    engines = f"Unseen {first['unseen'][0].get('device', 'cpu')}, {first['pytorch'][0].get('engine', 'pytorch')}"
    peak = statistics.median(m["peak_gflops"] for w in rows for m in results[w]["unseen"])
    return render_training(results, parity, dict(facts, engines=engines), peak, args.rounds,
                           (load_before, os.getloadavg()[0]), command, args.quick)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--forwards", type=int, default=5, help="timed forwards per process (default 5)")
    ap.add_argument("--steps", type=int, default=5, help="timed training steps per process (default 5)")
    ap.add_argument("--only", help="comma-separated rows: configs (cifar10, celebahq256, afhqdog256) for the forward"
                                   " rows, training for the training-step rows (default: all)")
    ap.add_argument("--models", default=os.path.join(tempfile.gettempdir(), "unseen-peer-models"),
                    help="where export_models.py's files and the converted demo model are (made when missing)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: one round, one timed forward or step per"
                    f" process, training rows at batch {QUICK_BATCH}; the numbers mean nothing (no --write)")
    ap.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md's engines and training"
                                                         " sections (those measured)")
    args = ap.parse_args()
    names = list(RESOLUTION) + [TRAINING]
    only = set(args.only.split(",")) if args.only else set(names)
    if only - set(names):
        raise SystemExit(f"--only: {', '.join(sorted(only - set(names)))} is not a row name (give some of"
                         f" {', '.join(names)})")
    if args.quick and args.write:
        raise SystemExit("--quick: its numbers mean nothing, so it does not --write (drop one of them)")
    if args.quick:
        args.rounds, args.forwards, args.steps = 1, 1, 1
    workloads = [w for w in WORKLOADS if w[1] in only]
    configs = sorted({w[1] for w in workloads}, key=list(RESOLUTION).index)
    training = [(title, QUICK_BATCH if args.quick else batch, threads)
                for title, batch, threads in TRAINING_WORKLOADS] if TRAINING in only else []

    if workloads and not os.path.exists(os.path.join(ROOT, "benchmarks", "target", "peers")):
        run([os.path.join(ROOT, "mvnw"), "-q", "-B", "-pl", "benchmarks,cli", "-am", "package", "-DskipTests"])
    facts = machine_facts()
    command = ("benchmarks/peers/compare_engines.py " + " ".join(sys.argv[1:])).strip()
    sections = []
    if workloads:
        sections.append((BEGIN, END, forward_section(args, workloads, configs, facts, command)))
    if training:
        sections.append((TRAINING_BEGIN, TRAINING_END, training_section(args, training, facts, command)))
    for begin, end, section in sections:
        if args.write:
            write_results(section, begin, end)
            print(f"wrote {RESULTS} ({begin})", file=sys.stderr)
        else:
            print(section)


if __name__ == "__main__":
    main()
