"""CIFAR-10 from scratch on one GPU: the speedrun recipe, and the ladder that shows what each piece buys.

    python benchmarks/cifar10_ladder.py --data PATH --out results.json                  # both parts
    python benchmarks/cifar10_ladder.py --data PATH --out r.json --part final --final-seconds 540
    python benchmarks/cifar10_ladder.py --data PATH --out r.json --part ladder --ladder-epochs 15
    python benchmarks/cifar10_ladder.py --smoke --out /tmp/r.json                       # tiny synthetic data, CPU

``PATH`` is a folder of class subfolders with ``train/`` and ``test/`` inside (the layout the
``--dataset`` option reads) or a ``.tar.gz`` of one, which is unpacked into a temporary folder first.

**final**: the ``cifar10-speedrun`` recipe on all 50,000 training images, scored on the test set.
Its number of epochs is fixed before it starts: a short compiled probe on 10,000 images measures
images/s on this GPU, and the epochs are as many as fit in ``--final-seconds`` of training (the
script records the probe, and the recipe in ``vit_tutorial/recipes.py`` states what was measured).

**notebook05**: notebook 05's GPU branch as the notebook runs it (the ``cifar10`` recipe for
``NOTEBOOK05_EPOCHS`` epochs, not compiled), for its time and accuracy.

**ladder**: each rung adds one thing to the rung above it, starting from today's ``cifar10`` recipe.
Every rung trains for the same ``--ladder-epochs`` on 45,000 images and is scored on the last 500
training images of each class (``ImageData.validation_split``), which is what any choice should read;
the test set is scored once per rung, at the end, and chooses nothing. A short, equal budget is a
screen, not a verdict: strong regularisers pay off late, so a rung that loses here may win at the
full budget (the results file says which budget every number had).

Each run is the real ``train()``; training time excludes the evaluation after each epoch, as in
``metrics.json``. Results are written after every run, with the GPU, the versions and the command.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import platform
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vit_tutorial.data import ImageData, load_dataset  # noqa: E402
from vit_tutorial.devices import device_name, pick_device, resolve_amp  # noqa: E402
from vit_tutorial.recipes import RECIPES, recipe  # noqa: E402
from vit_tutorial.train import train  # noqa: E402

#: The rungs, in order: (name, what it adds, the TrainConfig changes so far). Each starts from the one above.
_BASE = dict(batch_size=500)  # 45,000 and 50,000 divide by 500: no ragged last batch for the compiler
_RUNGS = [
    ("cifar10", "the cifar10 recipe: 6 blocks of 192, MLP 768, dropout 0.1, crop + flip", {}),
    ("+trivial", "+ TrivialAugment (one random op per image, on the GPU)", dict(trivial_augment=1.0)),
    ("+erasing", "+ random erasing (a quarter of the images)", dict(random_erasing=0.25)),
    ("+mix", "+ Mixup (alpha 0.8) or CutMix (alpha 1.0), one per batch", dict(mixup=0.8, cutmix=1.0)),
    ("+droppath", "+ stochastic depth 0.1 instead of dropout 0.1", dict(model_overrides=dict(dropout=0.0, drop_path=0.1))),
    ("+shape", "+ 9 blocks, 12 heads of 16, MLP 384 (the same parameter count, 3 more blocks)",
     dict(model_overrides=dict(dropout=0.0, drop_path=0.1, depth=9, heads=12, dim_head=16, mlp_dim=384))),
    ("+ema", "+ evaluate a running average of the weights (decay 0.999)", dict(ema_decay=0.999)),
    ("+flip", "+ test-time flip (average of the image and its mirror image)", dict(test_flip=True)),
]
#: Epochs of notebook 05's GPU branch (``recipe("cifar10", epochs=...)``, not compiled): sized so that a
#: free Colab T4 takes at most about 5 minutes, estimated from the time measured here (see the notebook).
NOTEBOOK05_EPOCHS = 15

#: A variant beside the top rung, not a rung: the only learning-rate question the ladder asks.
_SIDE = [("+flip, lr 2e-3", "the top rung with peak learning rate 2e-3 instead of 1e-3", dict(lr=2e-3))]


def ladder_configs(epochs: int, compile: bool, smoke: bool = False) -> list[tuple[str, str, object]]:
    """The cumulative rungs as (name, description, TrainConfig), then the side variants."""
    out, changes = [], dict(_BASE)
    for name, what, step in _RUNGS:
        changes = {**changes, **step}
        out.append((name, what, dict(changes)))
    top = dict(changes)
    out += [(name, what, {**top, **step}) for name, what, step in _SIDE]
    return [(name, what, _config("cifar10", epochs, compile, smoke, **ch)) for name, what, ch in out]


def _config(name: str, epochs: int, compile: bool, smoke: bool, **changes):
    overrides = dict(RECIPES[name].model_overrides, **changes.pop("model_overrides", {}))
    if smoke:  # a model small enough for a CPU test; the recipe's settings otherwise
        overrides.update(dim=16, depth=min(2, overrides.get("depth", 2)), heads=2, dim_head=8, mlp_dim=32)
        changes.update(batch_size=50, warmup_epochs=0.5)
    return recipe(name, epochs=epochs, compile=compile, model_overrides=overrides, **changes)


def synthetic_data(n_train: int = 400, n_test: int = 100, size: int = 32, seed: int = 0) -> ImageData:
    """Ten classes of random colour images, each class a little brighter in its own channel: a smoke test."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        y = torch.arange(n) % 10
        x = torch.randint(0, 160, (n, 3, size, size), generator=g)
        x[torch.arange(n), y % 3] += (y * 9)[:, None, None]
        return x.clamp(0, 255).to(torch.uint8), y

    (xt, yt), (xv, yv) = make(n_train), make(n_test)
    return ImageData("synthetic", xt, yt, xv, yv, [f"class{i}" for i in range(10)],
                     (0.4, 0.4, 0.4), (0.25, 0.25, 0.25), augmentation="crop_flip")


def load(path: str) -> tuple[ImageData, dict]:
    """The dataset at ``path`` (a folder, or a .tar.gz of one) at 32x32, and where it came from."""
    p = Path(path)
    source = {"path": str(p)}
    t0 = time.perf_counter()
    if p.is_file():
        source["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
        folder = Path(tempfile.mkdtemp(prefix="cifar10-"))
        with tarfile.open(p) as tar:
            tar.extractall(folder, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(folder)
        tops = [d for d in folder.iterdir() if d.is_dir()]
        p = tops[0] if len(tops) == 1 and not (folder / "train").is_dir() else folder
    data = load_dataset(str(p), image_size=32)
    source["decode_seconds"] = round(time.perf_counter() - t0, 1)
    return data, source


def _run(name: str, what: str, config, data: ImageData, test: ImageData | None, log) -> dict:
    """One training run; the row the results file keeps (or the error, so the other runs still happen)."""
    row = {"name": name, "what": what, "config": config.to_dict()}
    t0 = time.perf_counter()

    def line(epoch, h):
        log(f"  {name}: epoch {epoch}/{config.epochs}  loss {h['train_loss'][-1]:.3f}  "
            f"scored {h['test_accuracy'][-1]:.4f}  {h['images_per_second'][-1]:,.0f} img/s")

    try:
        r = train(config, data, progress=False, on_epoch_end=line)
    except Exception as e:  # noqa: BLE001 - keep going; the row says what broke
        row["error"] = "".join(traceback.format_exception_only(type(e), e)).strip()
        log(f"  {name}: FAILED {row['error']}")
        return row
    h = r.history
    row.update(epochs=len(h["epoch"]), train_seconds=round(r.train_seconds, 2),
               wall_seconds=round(time.perf_counter() - t0, 2), device=r.device,
               images_per_second_last_epoch=round(h["images_per_second"][-1]),
               scored_accuracy=r.test_accuracy, scored_on=data.name if test is not None else "test",
               history={k: h[k] for k in ("train_loss", "train_accuracy", "test_accuracy", "seconds")})
    if test is not None:  # the validation split was scored during training; the test set once, now
        from vit_tutorial.step import evaluate
        dev = torch.device(r.device)
        _, acc, _ = evaluate(r.model.to(dev), test.x_test, test.y_test, test.mean, test.std, dev,
                             batch_size=2000, amp_dtype=resolve_amp(config.amp, dev), test_flip=config.test_flip)
        row["validation_accuracy"], row["test_accuracy"] = r.test_accuracy, acc
    else:
        row["test_accuracy"] = r.test_accuracy
    log(f"  {name}: done, {row['train_seconds']:.1f} s of training, test {row['test_accuracy']:.4f}")
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="CIFAR-10 as class folders with train/ and test/, or a .tar.gz of them")
    ap.add_argument("--data-label", default="CIFAR-10, JPEG q75 copy",
                    help="what the data is, written with every result (default: %(default)s)")
    ap.add_argument("--out", required=True, help="results JSON, rewritten after every run")
    ap.add_argument("--part", choices=("final", "notebook05", "ladder", "both"), default="both",
                    help="both: the final run, then notebook 05's GPU branch, then the ladder")
    ap.add_argument("--final-seconds", type=float, default=540.0,
                    help="training time the final run's epochs are sized to fill (default: %(default)s)")
    ap.add_argument("--final-epochs", type=int, help="fix the final run's epochs instead of probing")
    ap.add_argument("--max-final-epochs", type=int, default=400)
    ap.add_argument("--ladder-epochs", type=int, default=15, help="epochs of every rung (default: %(default)s)")
    ap.add_argument("--ladder-compile", action="store_true", help="compile the rungs too (each new shape compiles)")
    ap.add_argument("--rungs", help="comma-separated rung names to run (default: all)")
    ap.add_argument("--deadline", type=float, help="stop starting runs this many seconds after the start")
    ap.add_argument("--smoke", action="store_true", help="tiny synthetic data and model, 1 epoch: a test")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    if not args.smoke and not args.data:
        ap.error("--data is needed (or --smoke)")
    if args.smoke:  # every code path, one epoch each
        args.max_final_epochs = 1

    def log(msg):
        print(f"[{time.perf_counter() - start:6.1f} s] {msg}", flush=True)

    device = pick_device(None)
    if args.smoke and not args.data:
        data, source = synthetic_data(), {"path": "synthetic (smoke test)"}
        label = "synthetic smoke-test images"
    else:
        data, source = load(args.data)
        label = args.data_label
    log(f"data: {data} (decoded in {source.get('decode_seconds', 0)} s)")
    results = {"device": device_name(device), "date": datetime.date.today().isoformat(),
               "torch": str(torch.__version__), "python": platform.python_version(),
               "argv": sys.argv[1:] if argv is None else list(argv), "data": label, "data_source": source,
               "final": None, "probe": None, "notebook05": None, "ladder": [], "skipped": []}
    out = Path(args.out)

    def save():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")

    def time_left() -> float:
        return math.inf if args.deadline is None else args.deadline - (time.perf_counter() - start)

    compile_final = device.type == "cuda"  # the recipe compiles; a CPU smoke test should not wait for it
    if args.part in ("final", "both"):
        epochs = args.final_epochs
        final = _speedrun(1, compile_final, args.smoke)
        if epochs is None:  # measure this GPU on 10,000 images (20 steps an epoch), then size the run
            probe_data = data.subset(min(len(data.x_train), 100 if args.smoke else 10_000), 500)
            r = train(dataclasses.replace(final, epochs=2 if args.smoke else 3), probe_data, progress=False)
            ips = max(r.history["images_per_second"][1:])
            epochs = max(1, min(args.max_final_epochs, int(args.final_seconds * ips / len(data.x_train))))
            results["probe"] = {"images": len(probe_data.x_train), "images_per_second": r.history["images_per_second"],
                                "epoch_seconds": r.history["seconds"], "chosen_epochs": epochs}
            log(f"probe: {ips:,.0f} img/s after compiling -> {epochs} epochs for {args.final_seconds:.0f} s")
            save()
        final = _speedrun(epochs, compile_final, args.smoke)
        log(f"final run: cifar10-speedrun, {epochs} epochs on {len(data.x_train):,} images")
        results["final"] = _run("cifar10-speedrun", "the speedrun recipe, all training images", final, data, None, log)
        save()
    if args.part in ("notebook05", "both"):  # notebook 05's GPU branch, exactly as the notebook calls it
        config = _config("cifar10", 1 if args.smoke else NOTEBOOK05_EPOCHS, False, args.smoke)
        log(f"notebook 05's GPU branch: the cifar10 recipe, {config.epochs} epochs, not compiled")
        results["notebook05"] = _run("notebook05", "notebook 05's GPU branch: recipe('cifar10', epochs="
                                     f"{config.epochs}), not compiled", config, data, None, log)
        save()
    if args.part in ("ladder", "both"):
        per_class = len(data.x_train) // len(data.classes)  # 5,000 for CIFAR-10: 500 of each held out
        train_part, test_part = data.validation_split(max(1, min(500, per_class // 10))), data
        wanted = set(args.rungs.split(",")) if args.rungs else None
        per_epoch = None
        for name, what, config in ladder_configs(1 if args.smoke else args.ladder_epochs,
                                                 args.ladder_compile and device.type == "cuda", args.smoke):
            if wanted is not None and name not in wanted:
                continue
            need = None if per_epoch is None else per_epoch * config.epochs * 1.6 + 15
            if need is not None and need > time_left():
                results["skipped"].append({"name": name, "why": f"out of time: needs about {need:.0f} s, "
                                                                f"{time_left():.0f} s left"})
                log(f"  {name}: skipped (out of time)")
                save()
                continue
            row = _run(name, what, config, train_part, test_part, log)
            if "history" in row:
                per_epoch = max(row["history"]["seconds"]) if per_epoch is None else per_epoch
            results["ladder"].append(row)
            save()
    log("done")
    save()
    return results


def _speedrun(epochs: int, compile: bool, smoke: bool):
    return _config("cifar10-speedrun", epochs, compile, smoke)


if __name__ == "__main__":
    main()
