"""Notebook 09: making training fast, one measured step at a time.

The ladder starts from the plainest correct training step and adds one thing per rung:

    0  einsum attention, fp32, batches prepared on the CPU and copied over, for-each AdamW
    1  + fused attention (``scaled_dot_product_attention``)
    2  + bf16 autocast (tensor cores; skipped on CPUs without native bf16)
    3  + ``torch.compile``
    4  + fused AdamW (one kernel for all parameters)
    5  + data kept on the device, augmented there (no per-batch copy; skipped on a CPU)

Each rung is cumulative, and every rung runs :func:`vit_tutorial.step.train_step`, the step of
the real training loop. :func:`fast_path` times them round-robin, so that a slow moment of a
shared machine hits all rungs alike, and returns images/s per rung. None of the rungs changes
what is computed beyond float rounding; :func:`accuracy_check` trains with the rungs that touch
the arithmetic (attention kernel, precision, compilation) to show it.
"""
from __future__ import annotations

import dataclasses
import statistics
import time

import torch

from .data import augment_batch, normalize
from .devices import cpu_supports_bf16
from .optim import param_groups
from .recipes import TrainConfig
from .step import train_step
from .train import train
from .vit import ViT, preset_kwargs

RUNGS = ("einsum attention, fp32, CPU data", "+ fused attention (SDPA)", "+ bf16 autocast",
         "+ torch.compile", "+ fused AdamW", "+ data on the device")


def _skip_reason(rung: int, device: torch.device) -> str | None:
    if rung == 2 and device.type == "cpu" and not cpu_supports_bf16():
        return "this CPU has no native bf16"
    if rung == 5 and device.type == "cpu":
        return "on a CPU the data is already where the model is"
    return None


@dataclasses.dataclass
class _Batches:
    """Synthetic CIFAR-shaped data, on the CPU (as a loader would hand it over) and on the device."""

    x_cpu: torch.Tensor
    y_cpu: torch.Tensor
    x_dev: torch.Tensor
    y_dev: torch.Tensor
    generator: torch.Generator
    batch_size: int

    @classmethod
    def make(cls, cfg: dict, n_images: int, batch_size: int, device: torch.device) -> "_Batches":
        size, ch = cfg["image_size"], cfg.get("channels", 3)
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (n_images, ch, size, size), dtype=torch.uint8, generator=g)
        y = torch.randint(0, cfg["num_classes"], (n_images,), generator=g)
        if device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return cls(x, y, x.to(device), y.to(device), g, batch_size)

    def get(self, i: int, on_device: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        i %= len(self.x_cpu) // self.batch_size
        sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
        if on_device:
            return augment_batch(self.x_dev[sl], "crop_flip", self.generator), self.y_dev[sl]
        # the usual loader: augment on the CPU, then copy the batch over
        xb = augment_batch(self.x_cpu[sl], "crop_flip", self.generator).to(device, non_blocking=True)
        return xb, self.y_cpu[sl].to(device, non_blocking=True)


def _rung_step(rung: int, cfg: dict, batches: _Batches, device: torch.device, compile_mode: str | None):
    """A zero-argument function that runs one training step with everything up to ``rung`` switched on."""
    # bf16 from rung 2 on, but only where rung 2 runs: a rung skipped here must not change the ones after it
    dtype = torch.bfloat16 if rung >= 2 and _skip_reason(2, device) is None else None
    return _step_fn(cfg, batches, device, sdpa=rung >= 1, compiled=rung >= 3, fused=rung >= 4, amp_dtype=dtype,
                    on_device=rung >= 5, compile_mode=compile_mode)


def _step_fn(cfg: dict, batches: _Batches, device: torch.device, sdpa: bool, compiled: bool, fused: bool,
             amp_dtype=None, on_device: bool = False, compile_mode: str | None = None, threads: int | None = None):
    """One training step of a fresh seeded ViT, with the choices of a rung of either ladder.

    ``threads``: set before building and before every step (the CPU ladder's rungs differ in it, and
    they take turns); None leaves PyTorch's setting alone.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ViT(**{**cfg, "attn_impl": "sdpa" if sdpa else "einsum"}).to(device).train()
    fn = torch.compile(model, mode=compile_mode) if compiled else model
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4, fused=fused or None, foreach=None if fused else True)
    mean, std = (0.5,) * model.channels, (0.25,) * model.channels
    count = iter(range(1 << 62))

    def step():
        if threads is not None:
            torch.set_num_threads(threads)
        xb, yb = batches.get(next(count), on_device, device)
        train_step(fn, opt, normalize(xb, mean, std), yb, amp_dtype=amp_dtype)
    return step


def _time_round_robin(steps_fns: dict, steps: int, rounds: int, batch_sizes: dict, device: torch.device) -> dict:
    """images/s of each step function per round; ``batch_sizes``: the images of one step, per rung."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    sync()
    rates = {r: [] for r in steps_fns}
    for _ in range(rounds):
        for r, step in steps_fns.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            sync()
            rates[r].append(steps * batch_sizes[r] / (time.perf_counter() - t0))
    return rates


def fast_path(device: str | torch.device = "cpu", model_preset: str = "cifar10", batch_size: int = 256,
              steps: int = 10, rounds: int = 3, warmup: int = 3, rungs: tuple[int, ...] = tuple(range(6)),
              n_images: int = 4096, compile_mode: str | None = None) -> list[dict]:
    """Training images/s of each rung of the ladder on ``device`` (synthetic CIFAR-shaped data).

    Returns one dict per rung: ``rung``, ``name``, ``images_per_second`` (median over rounds, or
    None with ``skipped`` saying why) and ``speedup`` against rung 0.
    """
    device = torch.device(device)
    cfg = preset_kwargs(model_preset)
    batches = _Batches.make(cfg, n_images, batch_size, device)
    results, steps_fns = [], {}
    for r in rungs:
        reason = _skip_reason(r, device)
        results.append({"rung": r, "name": RUNGS[r], "images_per_second": None, "skipped": reason})
        if reason is None:
            steps_fns[r] = _rung_step(r, cfg, batches, device, compile_mode)
            for _ in range(warmup):
                steps_fns[r]()
    rates = _time_round_robin(steps_fns, steps, rounds, {r: batch_size for r in steps_fns}, device)
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
    variants = [("einsum attention, fp32", dict(model_overrides={**base.model_overrides, "attn_impl": "einsum"},
                                                amp="off")),
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


#: The CPU ladder: fp32 throughout (a CPU without native bf16 only emulates it), one change per rung.
CPU_RUNGS = ("einsum attention, fp32, 1 thread, batch 64", "+ fused attention (SDPA)", "+ torch.compile",
             "+ fused AdamW", "+ every thread", "+ batch 256")


def cpu_ladder(model_preset: str = "digits", steps: int = 5, rounds: int = 5, warmup: int = 2,
               compile: bool = True, n_images: int = 2048) -> list[dict]:
    """Training images/s of the CPU ladder (``CPU_RUNGS``) in fp32, timed round-robin like :func:`fast_path`.

    Why a second ladder: the GPU ladder's rungs are what a GPU needs; on a CPU the questions are which
    kernels, how many threads and how large a batch. Rung 4 uses every thread PyTorch had when this was
    called. ``compile=False`` skips the compiled rungs (2 to 5; they say so), for quick smoke runs.
    Returns one dict per rung like :func:`fast_path`, plus ``threads`` and ``batch_size``, and
    ``verdict``: "faster", "slower" or "within the spread" against the rung before it. The rounds are
    paired: in each round the two rungs ran one right after the other, so a slow spell of a shared machine
    hits both; "faster" means faster in every round's pair (``ratios``: this rung's speed over the one
    before, round by round).
    """
    every = torch.get_num_threads()
    cfg = preset_kwargs(model_preset)
    plan = [dict(sdpa=r >= 1, compiled=r >= 2, fused=r >= 3, threads=every if r >= 4 else 1, batch=256 if r >= 5 else 64)
            for r in range(len(CPU_RUNGS))]
    results, fns = [], {}
    try:
        for r, p in enumerate(plan):
            skipped = None if compile or not p["compiled"] else "compiled rungs off (compile=False)"
            results.append({"rung": r, "name": CPU_RUNGS[r], "images_per_second": None, "skipped": skipped,
                            "threads": p["threads"], "batch_size": p["batch"], "verdict": None, "ratios": []})
            if skipped is None:
                cpu = torch.device("cpu")
                fns[r] = _step_fn(cfg, _Batches.make(cfg, n_images, p["batch"], cpu), cpu, p["sdpa"], p["compiled"],
                                  p["fused"], threads=p["threads"])
                for _ in range(warmup):  # compiles here, with the rung's own thread count
                    fns[r]()
        rates = _time_round_robin(fns, steps, rounds, {r: plan[r]["batch"] for r in fns}, torch.device("cpu"))
    finally:
        torch.set_num_threads(every)
    prev = None
    for row in results:
        if row["rung"] in rates:
            row["all"] = rates[row["rung"]]
            row["images_per_second"] = statistics.median(row["all"])
            row["speedup"] = row["images_per_second"] / results[0]["images_per_second"]
            row["ratios"] = [] if prev is None else [a / b for a, b in zip(row["all"], prev["all"])]
            row["verdict"] = None if prev is None else ("faster" if min(row["ratios"]) > 1 else
                                                        "slower" if max(row["ratios"]) < 1 else "within the spread")
            prev = row
    return results


__all__ = ["RUNGS", "CPU_RUNGS", "fast_path", "cpu_ladder", "accuracy_check"]
