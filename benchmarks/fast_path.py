"""The "Making it fast" ladder from the command line: images/s per rung, and accuracy per rung.

    python benchmarks/fast_path.py --device cuda --json benchmarks/results/fast_path-h100.json
    python benchmarks/fast_path.py --device cpu --batch-size 128 --steps 5   # on a laptop

See vit_tutorial/speed.py for what each rung adds. --accuracy also trains the digits recipe
with the rungs that change arithmetic and prints their test accuracies.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vit_tutorial.speed import accuracy_check, fast_path  # noqa: E402
from vit_tutorial.devices import device_name  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--preset", default="cifar10")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--accuracy", action="store_true", help="also train digits once per arithmetic-changing rung")
    p.add_argument("--epochs", type=int, default=36, help="epochs of each --accuracy run")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    where = device_name(dev)
    rows = fast_path(dev, a.preset, a.batch_size, a.steps, a.rounds)
    print(f"# {where} | {datetime.date.today()} | torch {torch.__version__} | preset {a.preset}, batch {a.batch_size}")
    print(f"{'rung':<38}{'images/s':>10}{'speed-up':>10}")
    for r in rows:
        if r["images_per_second"] is None:
            print(f"{r['name']:<38}{'skipped: ' + r['skipped']:>20}")
        else:
            print(f"{r['name']:<38}{r['images_per_second']:>10.0f}{r['speedup']:>9.2f}x")
    result = {"device": where, "date": str(datetime.date.today()), "torch": str(torch.__version__),
              "python": platform.python_version(), "argv": sys.argv[1:], "preset": a.preset,
              "batch_size": a.batch_size, "rungs": rows}
    if a.accuracy:
        result["accuracy"] = accuracy_check(a.device, epochs=a.epochs)
        for r in result["accuracy"]:
            print(f"{r['variant']:<28} test accuracy {r['test_accuracy']:.4f}  ({r['train_seconds']:.1f} s)")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
