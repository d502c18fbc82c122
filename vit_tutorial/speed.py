"""Step 8 of the series: making training fast, one measured step at a time.

The ladder starts from the plainest correct training step and adds one thing per rung:

    0  einsum attention, fp32, batches prepared on the CPU and copied over, for-each AdamW
    1  + fused attention (``scaled_dot_product_attention``)
    2  + bf16 autocast (tensor cores; skipped on CPUs without native bf16)
    3  + ``torch.compile``
    4  + fused AdamW (one kernel for all parameters)
    5  + data kept on the device, augmented there (no per-batch copy; skipped on a CPU)

Each rung is cumulative. :func:`fast_path` times them round-robin, so that a slow moment of a
shared machine hits all rungs alike, and returns images/s per rung. None of the rungs changes
what is computed beyond float rounding; :func:`accuracy_check` trains with the rungs that touch
the arithmetic (attention kernel, precision, compilation) to show it.
"""
from __future__ import annotations

import dataclasses
import statistics
import time

import torch
import torch.nn.functional as F

from .data import augment_batch, normalize
from .train import TrainConfig, cpu_supports_bf16, param_groups, train
from .vit import ViT, preset

RUNGS = ("einsum attention, fp32, CPU data", "+ fused attention (SDPA)", "+ bf16 autocast",
         "+ torch.compile", "+ fused AdamW", "+ data on the device")


def _skip_reason(rung: int, device: torch.device) -> str | None:
    if rung == 2 and device.type == "cpu" and not cpu_supports_bf16():
        return "this CPU has no native bf16"
    if rung == 5 and device.type == "cpu":
        return "on a CPU the data is already where the model is"
    return None


def fast_path(device: str | torch.device = "cpu", model_preset: str = "cifar10", batch_size: int = 256,
              steps: int = 10, rounds: int = 3, warmup: int = 3, rungs: tuple[int, ...] = tuple(range(6)),
              n_images: int = 4096, compile_mode: str | None = None) -> list[dict]:
    """Training images/s of each rung of the ladder on ``device`` (synthetic CIFAR-shaped data).

    Returns one dict per rung: ``rung``, ``name``, ``images_per_second`` (median over rounds, or
    None with ``skipped`` saying why) and ``speedup`` against rung 0.
    """
    device = torch.device(device)
    cfg = preset(model_preset)
    size, ch = cfg["image_size"], cfg.get("channels", 3)
    g = torch.Generator().manual_seed(0)
    x_cpu = torch.randint(0, 256, (n_images, ch, size, size), dtype=torch.uint8, generator=g)
    y_cpu = torch.randint(0, cfg["num_classes"], (n_images,), generator=g)
    if device.type == "cuda":
        x_cpu, y_cpu = x_cpu.pin_memory(), y_cpu.pin_memory()
    x_dev, y_dev = x_cpu.to(device), y_cpu.to(device)
    mean, std = (0.5,) * ch, (0.25,) * ch

    def make(rung: int):
        torch.manual_seed(0)
        model = ViT(**{**cfg, "attn_impl": "einsum" if rung < 1 else "sdpa"}).to(device).train()
        dtype = torch.bfloat16 if rung >= 2 else None
        fn = torch.compile(model, mode=compile_mode) if rung >= 3 else model
        fused = rung >= 4
        opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4, fused=fused or None,
                                foreach=None if fused else True)
        on_device = rung >= 5
        state = {"i": 0}

        def step():
            i = state["i"] % (n_images // batch_size)
            state["i"] += 1
            sl = slice(i * batch_size, (i + 1) * batch_size)
            if on_device:
                xb, yb = augment_batch(x_dev[sl], "crop_flip", g), y_dev[sl]
            else:  # the usual loader: augment on the CPU, then copy the batch over
                xb = augment_batch(x_cpu[sl], "crop_flip", g).to(device, non_blocking=True)
                yb = y_cpu[sl].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = F.cross_entropy(fn(normalize(xb, mean, std)).float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    results, steps_fns = [], {}
    for r in rungs:
        reason = _skip_reason(r, device)
        results.append({"rung": r, "name": RUNGS[r], "images_per_second": None, "skipped": reason})
        if reason is None:
            steps_fns[r] = make(r)
            for _ in range(warmup):
                steps_fns[r]()
    sync()
    rates = {r: [] for r in steps_fns}
    for _ in range(rounds):
        for r, step in steps_fns.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            sync()
            rates[r].append(steps * batch_size / (time.perf_counter() - t0))
    base = statistics.median(rates[rungs[0]]) if rungs[0] in rates else None
    for row in results:
        if row["rung"] in rates:
            row["images_per_second"] = statistics.median(rates[row["rung"]])
            row["all"] = rates[row["rung"]]
            row["speedup"] = row["images_per_second"] / base if base else None
    return results


def accuracy_check(device: str | None = None, epochs: int = 36, seed: int = 0, data=None,
                   base: TrainConfig | None = None) -> list[dict]:
    """Train the digits recipe with the rungs that change arithmetic; the accuracies should agree.

    Fused AdamW and device-resident data are always on inside :func:`vit_tutorial.train.train`
    (they change no arithmetic), so the variants are: einsum fp32, SDPA fp32, SDPA bf16 (where the
    device has bf16), SDPA bf16 compiled.
    """
    base = dataclasses.replace(base or TrainConfig(), epochs=epochs, seed=seed, device=device)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    bf16 = dev.type == "cuda" or cpu_supports_bf16()
    variants = [("einsum attention, fp32", dict(model={**base.model, "attn_impl": "einsum"}, amp="off")),
                ("SDPA, fp32", dict(amp="off"))]
    if bf16:
        variants += [("SDPA, bf16", dict(amp="bf16")), ("SDPA, bf16, compiled", dict(amp="bf16", compile=True))]
    else:
        variants += [("SDPA, fp32, compiled", dict(amp="off", compile=True))]
    out = []
    for name, change in variants:
        r = train(dataclasses.replace(base, **change), data, progress=False)
        out.append({"variant": name, "test_accuracy": r.test_accuracy, "train_seconds": r.train_seconds,
                    "device": r.device})
    return out


__all__ = ["RUNGS", "fast_path", "accuracy_check"]
