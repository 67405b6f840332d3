"""The paper's fine-tuning baseline on the demo: for each class, fine-tune the shipped footwear DDPM on that class's 32
bundled reference images, then sample 64 images from the fine-tuned EMA model with deterministic DDIM from N(0, I),
exactly as the evaluation's "N(0,I) baseline" row samples the frozen model.

Per class (default trouser, pullover, dress, bag and sneaker, the control):
- start model and EMA from the shipped EMA weights (models/demo/fashion-footwear-ddpm-ema.ckpt);
- read the class's PNGs under models/demo/references/<class>/ as the Java side reads them (8-bit gray, x / 127.5 - 1);
- train with the ordinary DDPM loss (t uniform in 0..999, epsilon MSE), linear betas 1e-4..0.02, dropout 0.1 as in
  the demo's training, a random horizontal flip per image, gradient norm clipped at 1.0, Adam, an EMA of the weights.
  Each step's batch is a random permutation of the 32 references (--batch 32: every reference once per step);
- sample --count images with DDIM eta 0 from x_T ~ N(0, I) (torch generator, seed per class) on the evaluation's grid
  seq = floor(linspace(0, 1, --ddim-steps) * (T - 1)), x0 clipped to [-1, 1] (the evaluation's default --clip-x0),
  with the authors' DDIM step (make_ddim_fixtures.ddim_step).

Writes into --out (models/demo/baselines/finetune/): <class>.npy (float32, C order, (count, 1, 32, 32), in [-1, 1],
the decoded images, not quantized), <class>.png (an 8x8 grid), <class>.json (settings, times, losses, a memorization
check) and README.md (regenerated from the .json files after each class). The fine-tuned EMA weights and the
resumable training state stay out of the repository, under --state-dir.

Resumable: a class whose <class>.npy exists is skipped; within a class, the training state is saved every
--save-every steps (temporary file, then renamed) and the same command continues from it. Files are written to a
temporary name and renamed; the .npy is written last.

  /usr/bin/python3 reference/finetune_demo.py --steps 300 --threads 1
"""
import argparse
import io
import json
import os
import platform
import time
import zlib

import numpy as np
import torch
from PIL import Image

import ddpm_port
import fashion_mnist
from make_ddim_fixtures import ddim_step
from train_demo import CONFIG, atomic_save

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KEEP_MARKER = "<!-- written by hand below this line: finetune_demo.py keeps it when it rewrites this file -->"
CLASS_LABELS = {"trouser": 1, "pullover": 2, "dress": 3, "bag": 8, "sneaker": 7}


def read_references(folder):
    """8-bit gray PNGs, sorted by name, to float32 (N, 1, 32, 32) via x / 127.5 - 1 (as ImageSet.writePixels)."""
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".png"))
    imgs = []
    for n in names:
        im = Image.open(os.path.join(folder, n))
        if im.mode != "L":
            raise SystemExit(f"{folder}/{n}: mode {im.mode}, expected 8-bit gray (L)")
        a = np.asarray(im, dtype=np.uint8)
        if a.shape != (32, 32):
            raise SystemExit(f"{folder}/{n}: shape {a.shape}, expected (32, 32)")
        imgs.append(a.astype(np.float32) / 127.5 - 1.0)
    return names, np.stack(imgs)[:, None]


def to_uint8(x):
    """[-1, 1] to 0..255 as PngWriter.toByte (torchvision's save_image): floor((clamp(x) + 1) * 127.5 + 0.5)."""
    return np.clip(np.floor((np.clip(x, -1, 1) + 1.0) * 127.5 + 0.5), 0, 255).astype(np.uint8)


def write_grid(path, images, cols=8, pad=2):
    n = len(images)
    rows = (n + cols - 1) // cols
    h, w = images.shape[2], images.shape[3]
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = to_uint8(images[i, 0])
    tmp = path + ".tmp"
    Image.fromarray(canvas, mode="L").save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)


def save_npy(path, arr):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(arr, dtype=np.float32))
    os.replace(tmp, path)


def save_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def ddim_grid(num_timesteps, steps):
    """The evaluation's baseline grid: TimestepGrid.of(T - 1, steps), the authors' floor(linspace(0, 1, n) * t0)."""
    return [int(s) for s in list(np.linspace(0, 1, steps) * (num_timesteps - 1))]


@torch.no_grad()
def sample(model, count, seq, seed, clip, batch):
    """x_T ~ N(0, I), DDIM eta 0 from seq[n-1] down to seq[0], then to -1 (alpha_bar = 1)."""
    b = ddpm_port.linear_betas().float()
    gen = torch.Generator().manual_seed(seed)
    x_all = torch.randn((count, 1, 32, 32), generator=gen)
    out = []
    for s in range(0, count, batch):
        x = x_all[s:s + batch]
        for k in range(len(seq) - 1, -1, -1):
            x = ddim_step(model, x, seq[k], seq[k - 1] if k > 0 else -1, b, clip)
        out.append(x)
    return torch.cat(out).numpy().astype(np.float32)


def nearest_l2(a, refs):
    """Per row of a (N, D): the pixel L2 distance to its nearest row of refs (M, D) and that row's index."""
    d = np.sqrt(np.maximum(((a[:, None, :] - refs[None, :, :]) ** 2).sum(-1), 0))
    return d.min(1), d.argmin(1)


def held_out_real(name, ref_names, count):
    """The class's next `count` Fashion-MNIST test images after the references in export_demo_references' order
    (seed-0 permutation), padded to 32x32 as the references; None without the dataset."""
    try:
        images, labels = fashion_mnist.load("t10k")
    except OSError:
        return None
    order = np.random.RandomState(0).permutation(len(labels))
    ref_idx = {int(n[4:9]) for n in ref_names}
    picked = [i for i in order if labels[i] == CLASS_LABELS[name] and int(i) not in ref_idx][:count]
    return fashion_mnist.to_model_range_32(images[picked])


def memorization(samples, refs, real):
    """Nearest-reference pixel L2 of each sample, against the same for held-out real images of the class (how far
    new real images are from the 32 references) and for each reference to its nearest other reference. The training
    flips images, so the references are searched together with their mirror images."""
    flat = lambda x: x.reshape(len(x), -1).astype(np.float64)
    s, r = flat(samples), flat(refs)
    rf = np.concatenate([r, flat(refs[..., ::-1])])
    n = len(r)
    ds, idx = nearest_l2(s, rf)
    dd = np.sqrt(((r[:, None] - rf[None]) ** 2).sum(-1))
    dd[np.arange(n), np.arange(n)] = np.inf
    dd[np.arange(n), np.arange(n) + n] = np.inf
    rr = dd.min(1)
    ss = np.sqrt(((s[:, None] - s[None]) ** 2).sum(-1))
    np.fill_diagonal(ss, np.inf)
    res = dict(flips_searched=True, sample_nn_mean=float(ds.mean()), sample_nn_median=float(np.median(ds)),
               sample_nn_min=float(ds.min()), sample_nn_max=float(ds.max()),
               sample_nn_is_mirrored=int((idx >= n).sum()), ref_to_other_ref_nn_mean=float(rr.mean()),
               ref_to_other_ref_nn_min=float(rr.min()), distinct_nearest_refs=int(len(set((idx % n).tolist()))),
               sample_to_other_sample_nn_mean=float(ss.min(1).mean()), sample_to_other_sample_nn_min=float(ss.min()))
    if real is not None:
        dr, _ = nearest_l2(flat(real), rf)
        res.update(real_held_out=len(real), real_nn_mean=float(dr.mean()), real_nn_median=float(np.median(dr)),
                   real_nn_min=float(dr.min()), real_nn_p05=float(np.percentile(dr, 5)),
                   samples_below_real_p05=int((ds < np.percentile(dr, 5)).sum()),
                   samples_below_real_min=int((ds < dr.min()).sum()))
    # mean pairwise pixel distance within the samples (diversity) and within the references
    pw = lambda x: float(np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))[np.triu_indices(len(x), 1)].mean())
    res.update(sample_pairwise_mean=pw(s), ref_pairwise_mean=pw(r))
    return res


def check_samples(name, args):
    """The memorization check of a class's written samples (also run again by --readme-only)."""
    ref_names, refs = read_references(os.path.join(args.references, name))
    samples = np.load(os.path.join(args.out, f"{name}.npy"))
    return memorization(samples, refs, held_out_real(name, ref_names, 256))


def finetune(name, args, weights, out_dir):
    state_dir = os.path.join(args.state_dir, name)
    os.makedirs(state_dir, exist_ok=True)
    state_path = os.path.join(state_dir, "state.pt")
    log_path = os.path.join(state_dir, "log.jsonl")
    ref_names, refs = read_references(os.path.join(args.references, name))
    data = torch.from_numpy(refs)
    seed = args.seed + zlib.crc32(name.encode()) % 100000

    torch.manual_seed(seed)
    model = ddpm_port.Model(**CONFIG)
    ema = ddpm_port.Model(**CONFIG)
    model.load_state_dict(weights)
    ema.load_state_dict(weights)
    ema.eval()
    for q in ema.parameters():
        q.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(seed)
    step, train_seconds = 0, 0.0
    if os.path.exists(state_path):
        st = torch.load(state_path)
        model.load_state_dict(st["model"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        torch.set_rng_state(st["torch_rng"])
        step, train_seconds = st["step"], st["train_seconds"]
        if os.path.exists(log_path):
            with open(log_path) as f:
                kept = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
            with open(log_path + ".tmp", "w") as f:
                f.writelines(kept)
            os.replace(log_path + ".tmp", log_path)
        print(f"{name}: resumed at step {step}", flush=True)
    elif os.path.exists(log_path):
        os.remove(log_path)
    print(f"{name}: {len(data)} references, seed {seed}, {args.steps} steps, batch {args.batch}, lr {args.lr}, "
          f"EMA {args.ema}", flush=True)

    betas = ddpm_port.linear_betas()
    abar = torch.cumprod(1.0 - betas, dim=0).float()
    model.train()
    t_start, losses = time.time(), []
    while step < args.steps:
        if args.batch == len(data):
            idx = torch.randperm(len(data), generator=gen)
        else:
            idx = torch.randint(0, len(data), (args.batch,), generator=gen)
        x0 = data[idx]
        flip = torch.rand(args.batch, generator=gen) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
        t = torch.randint(0, 1000, (args.batch,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = abar[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = torch.nn.functional.mse_loss(model(xt, t), noise)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(args.ema).add_(pm, alpha=1 - args.ema)
            for be, bm in zip(ema.buffers(), model.buffers()):
                be.copy_(bm)
        step += 1
        losses.append(loss.item())
        if step % args.log_every == 0 or step == args.steps:
            elapsed = time.time() - t_start
            train_seconds += elapsed
            rec = dict(step=step, loss=float(np.mean(losses)), sec_per_step=elapsed / len(losses),
                       time=time.strftime("%Y-%m-%dT%H:%M:%S"))
            print(name, json.dumps(rec), flush=True)
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            if step % args.save_every == 0 or step == args.steps:
                atomic_save(dict(model=model.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(),
                                 gen=gen.get_state(), torch_rng=torch.get_rng_state(), step=step,
                                 train_seconds=train_seconds, args=vars(args)), state_path)
            t_start, losses = time.time(), []
    atomic_save(ema.state_dict(), os.path.join(state_dir, "ema.ckpt"))
    with open(log_path) as f:
        log = [json.loads(line) for line in f if line.strip()]

    seq = ddim_grid(1000, args.ddim_steps)
    t0 = time.time()
    samples = sample(ema, args.count, seq, seed, not args.no_clip_x0, args.sample_batch)
    sample_seconds = time.time() - t0
    print(f"{name}: sampled {args.count} in {sample_seconds:.1f} s, range [{samples.min():.3f}, {samples.max():.3f}]",
          flush=True)
    real = held_out_real(name, ref_names, 256)
    mem = memorization(samples, refs, real)
    print(name, json.dumps(mem), flush=True)
    meta = dict(cls=name, references=len(refs), steps=args.steps, batch=args.batch, lr=args.lr, ema=args.ema,
                grad_clip=1.0, dropout=CONFIG["dropout"], seed=seed, threads=args.threads,
                train_seconds=train_seconds, sec_per_step=train_seconds / args.steps,
                final_loss=log[-1]["loss"], final_loss_steps=f"{log[-1]['step'] - args.log_every + 1}..{log[-1]['step']}"
                if len(log) > 0 and log[-1]["step"] % args.log_every == 0 else str(log[-1]["step"]),
                loss_log=[(r["step"], round(r["loss"], 5)) for r in log],
                interval_sec_per_step=[(r["step"], round(r["sec_per_step"], 3)) for r in log],
                ddim_steps=args.ddim_steps, grid=seq, clip_x0=not args.no_clip_x0, count=args.count,
                sample_seconds=sample_seconds, memorization=mem, torch=torch.__version__,
                machine=args.machine, finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    write_grid(os.path.join(out_dir, f"{name}.png"), samples)
    save_json(os.path.join(out_dir, f"{name}.json"), meta)
    save_npy(os.path.join(out_dir, f"{name}.npy"), samples)


def last100(meta):
    """The mean training loss over the last 100 steps, from the log's per-interval means (equal intervals)."""
    log = meta["loss_log"]
    tail = [l for s, l in log if s > meta["steps"] - 100]
    return f"{np.mean(tail):.4f} (last 100 steps)" if tail else "-"


def median_sps(meta):
    iv = meta.get("interval_sec_per_step")
    return f"{float(np.median([v for _, v in iv])):.2f}" if iv else "-"


def write_readme(out_dir, args):
    metas = []
    for name in CLASS_LABELS:
        p = os.path.join(out_dir, f"{name}.json")
        if os.path.exists(p) and os.path.exists(os.path.join(out_dir, f"{name}.npy")):
            with open(p) as f:
                m = json.load(f)
            if not m["memorization"].get("flips_searched"):
                m["memorization"] = check_samples(name, args)
                save_json(p, m)
            log_path = os.path.join(args.state_dir, name, "log.jsonl")
            if "interval_sec_per_step" not in m and os.path.exists(log_path):
                # records written before the field existed: fill it in from the training log
                with open(log_path) as f:
                    log = [json.loads(line) for line in f if line.strip()]
                m["interval_sec_per_step"] = [(r["step"], round(r["sec_per_step"], 3)) for r in log]
                save_json(p, m)
            metas.append(m)
    lines = ["# Fine-tuning baseline (the demo model)", "",
             "The paper's fine-tuning baseline: the shipped footwear DDPM (`../../fashion-footwear-ddpm-ema.ckpt`) "
             "fine-tuned, per class, on that class's 32 bundled references (`../../references/<class>/`), then "
             "sampled like the evaluation's `N(0,I) baseline` row: DDIM eta 0 from x_T ~ N(0, I) at t = 999, on the grid "
             "floor(linspace(0, 1, n) * 999), x0 clipped to [-1, 1]. Made by `reference/finetune_demo.py` (its "
             "docstring has the details).", "",
             "Files per class: `<class>.npy` (float32, C order, shape (64, 1, 32, 32), values in [-1, 1]: the decoded "
             "images, not quantized; the format `unseen evaluate --extra-row NAME=DIR` reads), `<class>.png` (the same "
             "images as an 8x8 grid), `<class>.json` (settings, training loss every few steps, times, the "
             "memorization check below).", "",
             "Command (from the repository root):", "",
             "    " + args.command_line, "",
             "Common settings: start from the shipped EMA weights (model and EMA), DDPM loss (t uniform in 0..999, "
             "epsilon MSE; linear betas 1e-4..0.02, T = 1000), dropout 0.1 and a random horizontal flip per image as "
             "in the demo's training, Adam, gradient norm clipped at 1.0, each batch a random permutation of the 32 "
             "references; sampling from the fine-tuned EMA weights. Machine: " + args.machine + ".", ""]
    if metas:
        lines += ["*s / step* is wall time over all steps (it includes any time the process was stopped or "
                  "starved by other jobs); *median s / step* is the median over the log's 10-step intervals.", "",
                  "| class | steps | batch | lr | EMA | seed | threads | s / step | median s / step | training time "
                  "| final loss | DDIM steps | sampling time |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for m in metas:
            lines.append(f"| {m['cls']} | {m['steps']} | {m['batch']} | {m['lr']:g} | {m['ema']} | {m['seed']} | "
                         f"{m['threads']} | {m['sec_per_step']:.2f} | {median_sps(m)} | {m['train_seconds'] / 60:.1f} min | "
                         f"{m['final_loss']:.4f} (steps {m['final_loss_steps']}); {last100(m)} | {m['ddim_steps']} | "
                         f"{m['sample_seconds']:.0f} s |")
        lines += ["", "Training loss (mean over the steps ending at the step shown):", ""]
        for m in metas:
            lines.append(f"- {m['cls']}: " + ", ".join(f"{s}: {l:.4f}" for s, l in m["loss_log"]
                                                      if s % max(args.log_every, 50) == 0 or s == m["steps"]))
        lines += ["", "## Memorization check", "",
                  "Pixel L2 distance (in [-1, 1] units, over the 1024 pixels) from each image to its nearest "
                  "reference, searching the 32 references and their mirror images (the fine-tuning flips them). "
                  "*Samples*: the fine-tuned samples. *Real*: 256 held-out Fashion-MNIST test images of the class "
                  "(not the references): how close a genuinely new image of the class falls. *Ref-ref*: each "
                  "reference to its nearest other reference (or its mirror image). Samples much closer to a "
                  "reference than real images are point to copies. *Sample-sample*: each sample to its nearest "
                  "other sample (near-duplicates among the samples).", "",
                  "| class | samples: mean | median | min | real: mean | median | 5th pct | min | ref-ref: mean "
                  "| samples below real's 5th pct | below real's min | distinct nearest refs | sample-sample: mean "
                  "| min | samples' pairwise mean | refs' pairwise mean |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for m in metas:
            x = m["memorization"]
            lines.append(f"| {m['cls']} | {x['sample_nn_mean']:.2f} | {x['sample_nn_median']:.2f} | "
                         f"{x['sample_nn_min']:.2f} | {x.get('real_nn_mean', float('nan')):.2f} | "
                         f"{x.get('real_nn_median', float('nan')):.2f} | {x.get('real_nn_p05', float('nan')):.2f} | "
                         f"{x.get('real_nn_min', float('nan')):.2f} | {x['ref_to_other_ref_nn_mean']:.2f} | "
                         f"{x.get('samples_below_real_p05', '-')} / {m['count']} | "
                         f"{x.get('samples_below_real_min', '-')} / {m['count']} | "
                         f"{x['distinct_nearest_refs']} / {m['references']} | "
                         f"{x['sample_to_other_sample_nn_mean']:.2f} | {x['sample_to_other_sample_nn_min']:.2f} | "
                         f"{x['sample_pairwise_mean']:.2f} | {x['ref_pairwise_mean']:.2f} |")
        lines.append("")
    readme = os.path.join(out_dir, "README.md")
    if os.path.exists(readme):
        with open(readme) as f:
            old = f.read()
        if KEEP_MARKER in old:
            lines += [KEEP_MARKER + old.split(KEEP_MARKER, 1)[1].rstrip(), ""]
    tmp = os.path.join(out_dir, "README.md.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, readme)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--classes", default="trouser,pullover,dress,bag,sneaker")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per class")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--ema", type=float, default=0.99)
    p.add_argument("--seed", type=int, default=20231015, help="base seed; each class adds crc32(name) mod 100000")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--count", type=int, default=64)
    p.add_argument("--ddim-steps", type=int, default=20, help="as the evaluation's --steps (default 20)")
    p.add_argument("--no-clip-x0", action="store_true", help="as the evaluation's --no-clip-x0")
    p.add_argument("--sample-batch", type=int, default=64)
    p.add_argument("--weights", default=os.path.join(ROOT, "models", "demo", "fashion-footwear-ddpm-ema.ckpt"))
    p.add_argument("--references", default=os.path.join(ROOT, "models", "demo", "references"))
    p.add_argument("--out", default=os.path.join(ROOT, "models", "demo", "baselines", "finetune"))
    p.add_argument("--state-dir", default=os.path.join(ROOT, "reference", "runs", "finetune"))
    p.add_argument("--machine", default="the 2-core development machine, shared with other jobs, torch "
                                        f"{torch.__version__} (Debian, CPU)")
    p.add_argument("--command-line", default=None, help="the command recorded in README.md")
    p.add_argument("--readme-only", action="store_true", help="only rewrite README.md from the .json files")
    args = p.parse_args()
    if args.command_line is None:
        args.command_line = "/usr/bin/python3 reference/finetune_demo.py --steps %d --threads %d" % (args.steps, args.threads)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    if args.readme_only:
        write_readme(args.out, args)
        return
    weights = torch.load(args.weights, map_location="cpu")
    for name in args.classes.split(","):
        if name not in CLASS_LABELS:
            raise SystemExit(f"unknown class {name}; choose from {list(CLASS_LABELS)}")
        if os.path.exists(os.path.join(args.out, f"{name}.npy")):
            print(f"{name}: {name}.npy exists, skipped", flush=True)
            continue
        t = time.time()
        finetune(name, args, weights, args.out)
        print(f"{name}: done in {time.time() - t:.0f} s", flush=True)
        write_readme(args.out, args)
    write_readme(args.out, args)
    print("done", flush=True)


if __name__ == "__main__":
    main()
