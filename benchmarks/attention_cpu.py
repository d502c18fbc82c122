"""One attention call on a CPU, timed three ways: PyTorch's fused kernel, ``einsum``, and plain matrix products.

    python benchmarks/attention_cpu.py                   # the digits model's and the cifar10 preset's shapes
    python benchmarks/attention_cpu.py --json benchmarks/results/attention-cpu-<cpu>.json

For each shape (batch, heads, tokens, head width), forward + backward of one attention call with
``F.scaled_dot_product_attention`` (SDPA, what ``Attention`` uses by default), with ``einsum_attention``
(notebook 01) and with ``q @ kᵀ``, softmax, ``@ v``. They take turns, round after round, so a slower
moment of a shared machine hits all of them; the median and range over rounds are reported, and the
ratio to SDPA is taken within each round. Run it on a quiet machine.

Why it is here: for our short sequences the plain products beat SDPA's CPU kernel per call (2026-12-03,
Zen 5: 1.28x at 17 tokens, 1.09x at 65), so we tried them as the CPU default. Neither the main job nor
the training step of ``benchmarks/throughput.py`` got measurably faster, so the default stayed SDPA.
Two reasons, both measured the same day. Here q, k and v are separate contiguous tensors, while in the
model they are strided views of one projection, which the explicit path must copy (plain products at
17 tokens: 0.65 ms contiguous, 0.93 ms from views). And a kernel timed alone is not the kernel inside
the step: profiled inside ``train()`` (3 epochs of the digits), SDPA's two kernels took 468 ms in all,
about an eighth of the step, and the einsum path spent more than that on its products and copies.
SDPA alone also measured 0.88 ms and 1.76 ms per call on two runs an hour apart. Time the real loop.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vit_tutorial.attention import einsum_attention  # noqa: E402
from vit_tutorial.devices import device_name  # noqa: E402

#: name -> (batch, heads, tokens, head width): the shapes our two CPU-sized models train with
SHAPES = {"digits (batch 64, 17 tokens)": (64, 3, 17, 32), "cifar10 (batch 128, 65 tokens)": (128, 3, 65, 64)}


def matmul_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(dim=-1) @ v


IMPLS = {"sdpa": lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
         "einsum": lambda q, k, v: einsum_attention(q, k, v)[0],
         "matmul": matmul_attention}


def measure(shape: tuple[int, int, int, int], rounds: int, calls: int) -> dict:
    torch.manual_seed(0)
    q, k, v = (torch.randn(*shape, requires_grad=True) for _ in range(3))
    grad = torch.randn(*shape)

    def call(fn):
        fn(q, k, v).backward(grad)

    for fn in IMPLS.values():  # warm-up
        for _ in range(3):
            call(fn)
    ms = {name: [] for name in IMPLS}
    for _ in range(rounds):
        for name, fn in IMPLS.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                call(fn)
            ms[name].append((time.perf_counter() - t0) / calls * 1e3)
    out = {}
    for name, values in ms.items():
        ratio = [s / x for s, x in zip(ms["sdpa"], values)]  # > 1: faster than SDPA in that round
        out[name] = {"median_ms": statistics.median(values), "min_ms": min(values), "max_ms": max(values),
                     "speed_vs_sdpa_median": statistics.median(ratio), "speed_vs_sdpa_min": min(ratio)}
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=20, help="calls per round and implementation")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
    where = device_name("cpu")
    print(f"# {where} | {datetime.date.today()} | torch {torch.__version__} | forward + backward, ms per call")
    results = {}
    for label, shape in SHAPES.items():
        results[label] = measure(shape, a.rounds, a.calls)
        for name, r in results[label].items():
            print(f"{label:<32} {name:<14} {r['median_ms']:7.3f} ms (rounds {r['min_ms']:.3f}-{r['max_ms']:.3f}), "
                  f"{r['speed_vs_sdpa_median']:.2f}x SDPA (worst round {r['speed_vs_sdpa_min']:.2f}x)")
    result = {"device": where, "date": str(datetime.date.today()), "torch": str(torch.__version__),
              "python": platform.python_version(), "argv": sys.argv[1:] if argv is None else list(argv),
              "shapes": {k: list(v) for k, v in SHAPES.items()}, "results": results}
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
