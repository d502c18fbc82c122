"""Time the GPU recipes on CIFAR-10-shaped random data (speed only: no accuracy can come from this).

    python benchmarks/recipe_time.py --recipe cifar10 --epochs 3
    python benchmarks/recipe_time.py --recipe cifar10-finetune --epochs 1 --no-init

For machines where CIFAR-10 cannot be downloaded: it measures seconds per epoch of the real
training loop (vit_tutorial.train.train) on 50,000 random 32x32 images, and projects the
recipe's full training time from the epochs after the first (which includes compilation).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vit_tutorial.data import CIFAR10_CLASSES, ImageData  # noqa: E402
from vit_tutorial.devices import device_name  # noqa: E402
from vit_tutorial.train import recipe, train  # noqa: E402


def fake_cifar10(n_train: int = 50_000, n_test: int = 10_000) -> ImageData:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n_train + n_test, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n_train + n_test,), generator=g)
    return ImageData("cifar10-shaped random data", x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                     list(CIFAR10_CLASSES), (0.49, 0.48, 0.45), (0.25, 0.24, 0.26), augmentation="crop_flip")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="cifar10")
    p.add_argument("--epochs", type=int, default=3, help="epochs to time (the recipe's own count is projected)")
    p.add_argument("--no-init", action="store_true", help="random weights instead of the recipe's init (offline)")
    p.add_argument("--n-train", type=int, default=50_000, help="images per epoch (fewer for a smoke test)")
    p.add_argument("--compile", choices=["recipe", "on", "off"], default="recipe")
    p.add_argument("--json")
    a = p.parse_args(argv)
    full = recipe(a.recipe)
    config = dataclasses.replace(full, epochs=a.epochs, init=None if a.no_init else full.init,
                                 compile=full.compile if a.compile == "recipe" else a.compile == "on")
    result = train(config, fake_cifar10(a.n_train, a.n_train // 5), progress=False)
    secs = result.history["seconds"]
    steady = sum(secs[1:]) / max(1, len(secs) - 1) if len(secs) > 1 else secs[0]
    out = {"recipe": a.recipe, "device": device_name(result.device), "torch": str(torch.__version__),
           "epochs_timed": a.epochs, "seconds_per_epoch": secs, "first_epoch_seconds": secs[0],
           "steady_epoch_seconds": steady, "images_per_second": a.n_train / steady, "n_train": a.n_train,
           # first epoch = start-up (compilation) + one steady epoch; scale the steady part to 50,000 images
           "projected_train_seconds": (secs[0] - steady) + steady * full.epochs * 50_000 / a.n_train, "recipe_epochs": full.epochs,
           "config": dataclasses.asdict(config)}
    print(f"{a.recipe} on {out['device']}: first epoch {secs[0]:.1f} s" + (" (with compilation)" if config.compile else "") + ", then "
          f"{steady:.2f} s/epoch ({out['images_per_second']:.0f} images/s); {full.epochs} epochs would take "
          f"~{out['projected_train_seconds'] / 60:.1f} min of training (evaluation excluded)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
