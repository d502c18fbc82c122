"""The main job (`python -m vit_tutorial train`, defaults), measured: accuracy and training time per seed.

    python benchmarks/main_job.py                                    # the default recipe, seeds 0, 1, 2
    python benchmarks/main_job.py --variants default,epochs24,patch14,patch14_e48  # the measured ladder
    python benchmarks/main_job.py --json benchmarks/results/main-job-<cpu>.json
    python benchmarks/main_job.py --validation 100 --variants default,width64,depth3  # choose on validation

Each variant is the default TrainConfig with the changes it names; each run is the real `train()` (the
evaluation after each epoch is not counted in the training time, as in metrics.json). To choose between
variants, use ``--validation N``: it trains on all but the last N training images of each class and scores
on those, so the test set plays no part in the choice (see data/README.md). For each seed the
variants take turns, so a slower spell of a shared machine hits them alike. Run it on a quiet machine:
another busy process on the same cores slows PyTorch's threads badly. The CPU (model, threads, AVX-512)
and the library versions are recorded with the results.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vit_tutorial.data import load_digits  # noqa: E402
from vit_tutorial.devices import device_name  # noqa: E402
from vit_tutorial.recipes import TrainConfig  # noqa: E402
from vit_tutorial.train import train  # noqa: E402

#: name -> (what it is, TrainConfig changes, the digits' augmentation or None for the default)
VARIANTS = {
    "default": ("the default recipe: 36 epochs, batch 64, affine augmentation", {}, None),
    "shift": ("the earlier recipe: shift augmentation only (up to 2 pixels)", {}, "shift"),
    "epochs30": ("30 epochs instead of 36", {"epochs": 30}, None),
    "epochs24": ("24 epochs instead of 36", {"epochs": 24}, None),
    "epochs20": ("20 epochs instead of 36", {"epochs": 20}, None),
    "patch14": ("14x14 patches (a 2x2 grid: 4 tokens and the [CLS] slot) instead of 7x7 (16 + 1)",
                {"model_overrides": {"patch_size": 14}}, None),
    "patch14_e48": ("14x14 patches and 48 epochs", {"epochs": 48, "model_overrides": {"patch_size": 14}}, None),
    "width64": ("a narrower model: dim 64, 2 heads of 32, MLP 128 (the 4x4 grid kept; under half the multiply-adds)",
                {"model_overrides": {"dim": 64, "heads": 2, "mlp_dim": 128}}, None),
    "width64_e48": ("the narrower model (dim 64, 2 heads, MLP 128) and 48 epochs",
                    {"epochs": 48, "model_overrides": {"dim": 64, "heads": 2, "mlp_dim": 128}}, None),
    "depth3": ("3 blocks instead of 4", {"model_overrides": {"depth": 3}}, None),
    "heads2": ("2 heads of 32 instead of 3 (attention 64 wide inside a 96-wide model)",
               {"model_overrides": {"heads": 2}}, None),
    "wd0.1": ("weight decay 0.1 instead of 0.05", {"weight_decay": 0.1}, None),
    "dropout0.1": ("dropout 0.1 after attention and in the MLP (the default has none)",
                   {"model_overrides": {"dropout": 0.1}}, None),
    "lr3e-3": ("peak learning rate 3e-3 instead of 2e-3", {"lr": 3e-3}, None),
    "batch128": ("batch 128 and peak learning rate 3e-3 (half the steps)", {"batch_size": 128, "lr": 3e-3}, None),
    "warmup3": ("3 warm-up epochs instead of 1", {"warmup_epochs": 3.0}, None),
    "smooth0": ("no label smoothing (the default smooths by 0.1)", {"label_smoothing": 0.0}, None),
    "compile": ("the default with torch.compile (compilation counted as training time)", {"compile": True}, None),
    "bf16": ("the default with bf16 autocast (allowed only on a CPU with native bf16: AVX512-BF16 or AMX)",
             {"amp": "bf16"}, None),
}


def run(name: str, seed: int, data, epochs: int | None = None, key: str = "test_accuracy") -> dict:
    """One training run, scored on ``data``'s held-out set: the test set, or a validation split (``key`` says)."""
    what, change, augmentation = VARIANTS[name]
    change = {**change, **({"epochs": epochs} if epochs is not None else {})}
    d = dataclasses.replace(data, augmentation=augmentation) if augmentation else data
    r = train(dataclasses.replace(TrainConfig(), seed=seed, device="cpu", **change), d, progress=False)
    return {"variant": name, "what": what, "seed": seed, key: r.test_accuracy,
            "train_seconds": round(r.train_seconds, 1), "epochs": len(r.history["epoch"])}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="default", help=f"comma-separated, from {', '.join(VARIANTS)}")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=None, help="override every variant's epochs (for a smoke test)")
    p.add_argument("--validation", type=int, default=0, metavar="N",
                   help="score on the last N training images of each class, trained on the rest, and leave the "
                        "test set alone: how to choose between variants (0: score on the test set)")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
    names = a.variants.split(",")
    for name in names:
        if name not in VARIANTS:
            raise SystemExit(f"error: unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    data, where = load_digits(), device_name("cpu")
    scored, key = "test", "test_accuracy"
    if a.validation:
        data, key = data.validation_split(a.validation), "validation_accuracy"
        scored = f"validation ({a.validation} per class held out of training; the test set unused)"
    print(f"# {where} | {datetime.date.today()} | torch {torch.__version__} | python {platform.python_version()}")
    print(f"# scored on: {scored}; training images: {len(data.y_train)}")
    rows = []
    for seed in (int(s) for s in a.seeds.split(",")):  # variants take turns, so a slow spell hits them alike
        for name in names:
            rows.append(run(name, seed, data, a.epochs, key))
            print(f"{name:<10} seed {seed}: {key.replace('_', ' ')} {rows[-1][key]:.3f}, "
                  f"{rows[-1]['train_seconds']:.1f} s of training", flush=True)
    summary = {}
    for name in names:
        acc = [r[key] for r in rows if r["variant"] == name]
        secs = [r["train_seconds"] for r in rows if r["variant"] == name]
        summary[name] = {"mean_accuracy": statistics.mean(acc), "min_accuracy": min(acc),
                         "mean_seconds": statistics.mean(secs)}
        print(f"{name:<10} mean {statistics.mean(acc):.4f} (min {min(acc):.3f}), {statistics.mean(secs):.1f} s "
              f"mean training time — {VARIANTS[name][0]}")
    result = {"device": where, "date": str(datetime.date.today()), "torch": str(torch.__version__),
              "python": platform.python_version(), "argv": sys.argv[1:] if argv is None else list(argv),
              "scored_on": scored, "training_images": len(data.y_train), "runs": rows, "summary": summary}
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
