"""Training throughput of vit_tutorial's ViT against timm and vit-pytorch, same configuration and batch.

    python benchmarks/throughput.py                     # CPU, the issue's configuration
    python benchmarks/throughput.py --device cuda --batch-size 256 --amp bf16

One process; the three models take turns (round-robin) so that a slower or
busier moment of the machine hits all of them alike; the median over rounds is
reported. A step is forward + backward + AdamW update, as in training.
Needs the [bench] extra: pip install -e ".[bench]".
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F


def build(name: str, a) -> torch.nn.Module:
    common = dict(image_size=a.image_size, patch_size=a.patch_size, num_classes=10, dim=a.dim, depth=a.depth,
                  heads=a.heads, mlp_dim=a.mlp_dim)
    if name == "vit_tutorial":
        from vit_tutorial import ViT

        return ViT(**common, dim_head=a.dim // a.heads, qkv_bias=True)
    if name == "timm":
        from timm.models.vision_transformer import VisionTransformer

        return VisionTransformer(img_size=a.image_size, patch_size=a.patch_size, num_classes=10,
                                 embed_dim=a.dim, depth=a.depth, num_heads=a.heads,
                                 mlp_ratio=a.mlp_dim / a.dim, qkv_bias=True)
    if name == "vit-pytorch":
        from vit_pytorch import ViT as LucidViT

        return LucidViT(**common, dim_head=a.dim // a.heads)
    raise ValueError(name)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--patch-size", type=int, default=4)
    p.add_argument("--dim", type=int, default=192)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--heads", type=int, default=3)
    p.add_argument("--mlp-dim", type=int, default=768)
    p.add_argument("--steps", type=int, default=10, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--amp", choices=["off", "bf16", "fp16"], default="off")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args()
    dev = torch.device(a.device)
    torch.manual_seed(0)
    names = ["vit_tutorial", "timm", "vit-pytorch"]
    runs = {}
    for name in names:
        model = build(name, a).to(dev).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        runs[name] = (model, opt)
    x = torch.randn(a.batch_size, 3, a.image_size, a.image_size, device=dev)
    y = torch.randint(0, 10, (a.batch_size,), device=dev)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.amp)

    def step(model, opt):
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for model, opt in runs.values():  # warm-up: allocator, kernels, caches
        for _ in range(3):
            step(model, opt)
    sync()
    rates = {n: [] for n in names}
    for _ in range(a.rounds):
        for name in names:
            model, opt = runs[name]
            t0 = time.perf_counter()
            for _ in range(a.steps):
                step(model, opt)
            sync()
            rates[name].append(a.steps * a.batch_size / (time.perf_counter() - t0))

    from vit_tutorial.train import cpu_name

    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{cpu_name()}, {torch.get_num_threads()} threads"
    print(f"# {where} | torch {torch.__version__} | python {platform.python_version()} | batch {a.batch_size}, "
          f"{a.image_size}x{a.image_size}, patch {a.patch_size}, dim {a.dim}, depth {a.depth}, heads {a.heads}, "
          f"mlp {a.mlp_dim}, amp {a.amp}")
    ours = statistics.median(rates["vit_tutorial"])
    result = {"device": where, "torch": torch.__version__, "config": vars(a), "images_per_second": {}}
    print(f"{'model':<14}{'params':>12}{'images/s (median)':>20}{'min..max':>18}{'ours / this':>13}")
    for name in names:
        med = statistics.median(rates[name])
        n_params = sum(p.numel() for p in runs[name][0].parameters())
        result["images_per_second"][name] = {"median": med, "all": rates[name], "params": n_params}
        print(f"{name:<14}{n_params:>12,}{med:>20.0f}{min(rates[name]):>9.0f}..{max(rates[name]):<7.0f}"
              f"{ours / med:>12.3f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
