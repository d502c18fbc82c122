"""Notebook 08's ablations at the full default recipe: 8 variants x 3 seeds, saved for the notebook to read.

    python benchmarks/ablations.py                                  # writes benchmarks/results/ablations-digits.json
    python benchmarks/ablations.py --variants baseline,cls --seeds 0 --epochs 1 --json /tmp/a.json   # a smoke test

Each run is `train(TrainConfig(seed=s, model_overrides=changes))` on the embedded digits: the default
recipe of notebook 05 (36 epochs), one group of ViT arguments changed. 24 runs take about half an hour on
two CPU cores, which is why notebook 08 reads this file instead of training them all (it retrains one
of them live to show that the file is what this code produces). The CPU, the versions and the command
are saved with the results.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vit_tutorial.data import load_digits  # noqa: E402
from vit_tutorial.devices import device_name  # noqa: E402
from vit_tutorial.recipes import TrainConfig  # noqa: E402
from vit_tutorial.train import train  # noqa: E402

VARIANTS = {  # name -> the ViT arguments it changes (notebook 08 checks that it asks for the same)
    "baseline": {},
    "cls": {"pool": "cls"},
    "sincos": {"pos_embedding": "sincos"},
    "no_pos": {"pos_embedding": "none"},
    "patch4": {"patch_size": 4},
    "patch14": {"patch_size": 14},
    "depth2": {"depth": 2, "dim": 128, "heads": 4, "mlp_dim": 256},
    "depth8": {"depth": 8, "dim": 64, "heads": 2, "mlp_dim": 128},
}
OUT = Path(__file__).resolve().parent / "results" / "ablations-digits.json"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=None, help="[the default recipe's]")
    p.add_argument("--json", default=str(OUT))
    a = p.parse_args(argv)
    data, base = load_digits(), TrainConfig(device="cpu")
    if a.epochs is not None:
        base = dataclasses.replace(base, epochs=a.epochs)
    runs = []
    result = {"device": device_name("cpu"), "date": str(datetime.date.today()), "torch": str(torch.__version__),
              "python": platform.python_version(), "command": "python benchmarks/ablations.py " + " ".join(
                  sys.argv[1:] if argv is None else argv),
              "recipe": base.to_dict(), "variants": {n: VARIANTS[n] for n in a.variants.split(",")}, "runs": runs}
    for name in a.variants.split(","):
        for seed in (int(s) for s in a.seeds.split(",")):
            t0 = time.perf_counter()
            r = train(dataclasses.replace(base, seed=seed, model_overrides=VARIANTS[name]), data, progress=False)
            runs.append({"variant": name, "seed": seed, "test_accuracy": r.test_accuracy,
                         "train_seconds": round(r.train_seconds, 1), "history": r.history["test_accuracy"]})
            print(f"{name:9s} seed {seed}: {r.test_accuracy:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
            # written after every run, so an interrupted sweep keeps what it finished
            Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.json}")
    return result


if __name__ == "__main__":
    main()
