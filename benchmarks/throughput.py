"""Training and inference images/s of vit_tutorial's ViT against timm and vit-pytorch, same configurations.

    python benchmarks/throughput.py                           # CPU: the CIFAR-10 configuration
    python benchmarks/throughput.py --device cuda             # GPU, bf16: CIFAR-10, ViT-S/16, ViT-B/16
    python benchmarks/throughput.py --quick                   # CI-sized: a few tiny steps, checks it runs

One process. The contenders take turns (round-robin, several rounds) so that a slower or busier
moment of a shared machine hits all of them alike; the median over rounds is reported, and for each
contender the ratio ours / theirs within each round (median, min and max): ours is faster than a
contender with confidence only when even the worst round's ratio is above 1. A training
step is forward + backward + AdamW update; an inference step is a forward pass under inference_mode.
Contenders that are not installed are reported as such (pip install -e ".[bench]" installs both).

FLOPs are counted from the configuration, not measured: per image, a forward pass costs
    2 * P * (p*p*C) * D                        patch projection (P patches)
  + L * [ 2*N*D*3I + 2*N*N*I + 2*N*N*I + 2*N*I*D + 2 * 2*N*D*M ]   each of L blocks:
        qkv projection, q @ k^T, attn @ v, output projection, two MLP matmuls
  + 2 * D * K                                  classifier head
with N = P + 1 tokens, I = heads * dim_head, M = mlp_dim, K classes (multiply-add = 2 FLOPs;
softmax, norms and activations are left out: they are memory-bound and small). A training step
counts 3x the forward (the backward pass is about twice the forward). Achieved TFLOP/s is that
count times images/s; MFU divides it by the device's dense bf16 peak (a table of common GPUs
below, or --peak-tflops).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata as md
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vit_tutorial.devices import autocast, device_name  # noqa: E402
from vit_tutorial.step import train_step  # noqa: E402

CONFIGS = {  # the same three shapes for every contender
    "cifar10": dict(image_size=32, patch_size=4, dim=192, depth=6, heads=3, mlp_dim=768, num_classes=10),
    "ViT-S/16": dict(image_size=224, patch_size=16, dim=384, depth=12, heads=6, mlp_dim=1536, num_classes=1000),
    "ViT-B/16": dict(image_size=224, patch_size=16, dim=768, depth=12, heads=12, mlp_dim=3072, num_classes=1000),
}
CONTENDERS = ("vit_tutorial", "timm", "vit-pytorch")
# Dense bf16 tensor-core peaks from the vendors' data sheets (TFLOP/s, without sparsity).
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 PCIe": 756.0,
                    "H100": 989.0, "A100": 312.0, "L4": 121.0, "A10G": 70.0, "T4": 65.0, "V100": 125.0,
                    "RTX 4090": 165.0}


def forward_flops(c: dict, channels: int = 3) -> int:
    """FLOPs of one image's forward pass (see the module docstring for the formula)."""
    d, m, depth = c["dim"], c["mlp_dim"], c["depth"]
    inner = c["heads"] * (d // c["heads"])
    p = (c["image_size"] // c["patch_size"]) ** 2
    n = p + 1
    block = 2 * n * d * 3 * inner + 2 * 2 * n * n * inner + 2 * n * inner * d + 2 * 2 * n * d * m
    return 2 * p * c["patch_size"] ** 2 * channels * d + depth * block + 2 * d * c["num_classes"]


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():  # most specific names first
        if key in device_name:
            return value
    return None


def build(name: str, c: dict) -> torch.nn.Module:
    if name == "vit_tutorial":
        from vit_tutorial import ViT

        return ViT(**c, dim_head=c["dim"] // c["heads"], qkv_bias=True)
    if name == "timm":
        from timm.models.vision_transformer import VisionTransformer

        return VisionTransformer(img_size=c["image_size"], patch_size=c["patch_size"], num_classes=c["num_classes"],
                                 embed_dim=c["dim"], depth=c["depth"], num_heads=c["heads"],
                                 mlp_ratio=c["mlp_dim"] / c["dim"], qkv_bias=True)
    if name == "vit-pytorch":
        from vit_pytorch import ViT as LucidViT

        return LucidViT(**c, dim_head=c["dim"] // c["heads"])
    raise ValueError(f"unknown contender {name!r}")


def installed(name: str) -> str | None:
    """The version of a contender's package, or None if it is not installed."""
    if name == "vit_tutorial":
        return "this checkout"
    try:
        __import__({"timm": "timm", "vit-pytorch": "vit_pytorch"}[name])
        return md.version(name)
    except ImportError:
        return None


def measure(config_name: str, mode: str, a, dev: torch.device, dtype) -> dict:
    c = CONFIGS[config_name]
    names = [n for n in CONTENDERS if installed(n)]
    torch.manual_seed(0)
    x = torch.randn(a.batch_size, 3, c["image_size"], c["image_size"], device=dev)
    y = torch.randint(0, c["num_classes"], (a.batch_size,), device=dev)
    steps = {}
    for name in names:
        model = build(name, c).to(dev).train(mode == "train")
        fn = torch.compile(model) if a.compile else model
        if mode == "train":
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=dev.type in ("cuda", "cpu"))

            def step(fn=fn, opt=opt):  # the training loop's own step, for every contender
                train_step(fn, opt, x, y, amp_dtype=dtype)
        else:
            def step(fn=fn):
                with torch.inference_mode(), autocast(dev, dtype):
                    fn(x)
        steps[name] = (step, sum(p.numel() for p in model.parameters()))

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for step, _ in steps.values():  # warm-up: allocator, kernels, compilation
        for _ in range(a.warmup):
            step()
    sync()
    rates = {n: [] for n in names}
    for _ in range(a.rounds):
        for name in names:
            step = steps[name][0]
            t0 = time.perf_counter()
            for _ in range(a.steps):
                step()
            sync()
            rates[name].append(a.steps * a.batch_size / (time.perf_counter() - t0))
    flops = forward_flops(c) * (3 if mode == "train" else 1)
    out = {}
    for name in names:
        med = statistics.median(rates[name])
        # ours / this contender within each round: the two ran back to back, so a slow spell cancels out
        paired = [o / r for o, r in zip(rates["vit_tutorial"], rates[name])]  # ours is always installed
        out[name] = {"images_per_second": med, "all": rates[name], "params": steps[name][1],
                     "tflops": med * flops / 1e12,
                     "ours_over_this_by_round": {"median": statistics.median(paired), "min": min(paired),
                                                 "max": max(paired)}}
    for name in CONTENDERS:
        if name not in names:
            out[name] = {"images_per_second": None, "note": "not installed"}
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--configs", default=None, help=f"comma-separated, from {', '.join(CONFIGS)} "
                                                   "[cifar10 on CPU, all on GPU]")
    p.add_argument("--modes", default="train,infer")
    p.add_argument("--batch-size", type=int, default=None, help="[128 for cifar10; 64 at 224 px on CPU, 256 on GPU]")
    p.add_argument("--steps", type=int, default=10, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--amp", choices=["auto", "off", "bf16", "fp16"], default="auto",
                   help="auto: bf16 on GPU, fp32 on CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile every contender")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU")
    p.add_argument("--quick", action="store_true", help="CI-sized: batch 4, 1 step, 2 rounds, cifar10 only")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    if a.quick:
        a.configs, a.batch_size, a.steps, a.rounds, a.warmup = "cifar10", 4, 1, 2, 1
    configs = (a.configs or ("cifar10" if dev.type == "cpu" else ",".join(CONFIGS))).split(",")
    for name in configs:
        if name not in CONFIGS:
            raise SystemExit(f"error: unknown configuration {name!r}; choose from {', '.join(CONFIGS)}")
    amp = {"auto": "bf16" if dev.type == "cuda" else "off"}.get(a.amp, a.amp)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    where = device_name(dev)
    peak = a.peak_tflops or (peak_tflops(where) if dev.type == "cuda" else None)
    versions = {"python": platform.python_version(), "torch": str(torch.__version__),
                **{n: installed(n) for n in CONTENDERS[1:]}}
    print(f"# {where} | {datetime.date.today()} | " + " | ".join(f"{k} {v}" for k, v in versions.items())
          + f" | amp {amp}{' | compiled' if a.compile else ''}")
    result = {"device": where, "date": str(datetime.date.today()), "versions": versions, "amp": amp,
              "compile": a.compile, "peak_bf16_tflops": peak, "argv": sys.argv[1:], "results": []}
    for config_name in configs:
        batch = a.batch_size or (128 if config_name == "cifar10" else (64 if dev.type == "cpu" else 256))
        a_batch = argparse.Namespace(**{**vars(a), "batch_size": batch})
        for mode in a.modes.split(","):
            r = measure(config_name, mode, a_batch, dev, dtype)
            result["results"].append({"config": config_name, "mode": mode, "batch_size": batch,
                                      "forward_gflops_per_image": forward_flops(CONFIGS[config_name]) / 1e9,
                                      "contenders": r})
            ours = r["vit_tutorial"]["images_per_second"]
            print(f"\n{config_name} {mode}, batch {batch} "
                  f"({forward_flops(CONFIGS[config_name]) / 1e9:.2f} GFLOP forward per image)")
            print(f"{'model':<14}{'params':>13}{'images/s':>11}{'TFLOP/s':>9}{'MFU':>7}{'ours/this':>11}"
                  f"{'  by round: median (min-max)':>30}")
            for name, v in r.items():
                if v["images_per_second"] is None:
                    print(f"{name:<14}{'':>13}{'not installed':>11}")
                    continue
                mfu = f"{100 * v['tflops'] / peak:.1f}%" if peak else "-"
                v["mfu"] = v["tflops"] / peak if peak else None
                by_round = v["ours_over_this_by_round"]
                print(f"{name:<14}{v['params']:>13,}{v['images_per_second']:>11.0f}{v['tflops']:>9.2f}{mfu:>7}"
                      f"{ours / v['images_per_second']:>11.3f}"
                      f"{by_round['median']:>15.3f} ({by_round['min']:.3f}-{by_round['max']:.3f})")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
