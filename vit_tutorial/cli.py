"""``python -m vit_tutorial train``: the training loop of :mod:`vit_tutorial.train` from a shell.

Also ``predict`` (your images through a trained model, :mod:`vit_tutorial.predict`), ``export``,
``check-data`` and ``download``. Installed from a wheel, the same commands are ``vit-tutorial ...``.

Every failure a user can cause (a bad option, a bad checkpoint, no data
offline, a diverging run) ends with one line on stderr and a non-zero exit.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from . import predict, validate
from .checkpoint import CheckpointError, export_weights, load_checkpoint
from .cifar import CIFAR10_BATCHES
from .data import DataUnavailableError
from .devices import AMP_MODES
from .images import check_dataset
from .recipes import RECIPES, TrainConfig
from .runs import RunFolderError, mean_images_per_second
from .train import TrainingDiverged, train
from .vit import PRESETS

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


def _option(check, convert, *args):
    """An argparse ``type=`` that parses with ``convert`` and checks with the package's own validator."""
    def parse(text: str):
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {'an integer' if convert is int else 'a number'}, "
                                             f"got {text!r}") from None
        try:
            return check("value", value, *args)
        except ValueError as e:  # "value must be ...": argparse already names the option
            raise argparse.ArgumentTypeError(str(e).removeprefix("value ")) from None
    return parse


_positive_int = _option(validate.positive_int, int)
_positive_float = _option(validate.positive_number, float)
_seed = _option(validate.integer_in, int, *validate.SEED_RANGE)


def _dataset(text: str) -> str:
    try:
        return check_dataset(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("dataset ")) from None


def _path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m vit_tutorial",
                                     description="Vision Transformer tutorial: command-line tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    t = sub.add_parser(
        "train", help="train a ViT and report its held-out test accuracy",
        description="Train a ViT. With no options: the 'digits' preset on the embedded digits, on the "
                    "best device here. Writes checkpoint.pt, metrics.json and curves.png into --out. "
                    "Defaults are in [brackets].")
    # Defaults are None so that --resume can tell what the user set from what the checkpoint says.
    t.add_argument("--recipe", choices=list(RECIPES), default=None,
                   help="start from a named recipe (the options below override it) [digits]")
    t.add_argument("--dataset", type=_dataset, default=None, metavar="digits|cifar10|PATH",
                   help=f"data to train on: a name, or a folder with one subfolder of images per class "
                        f"(train/ and test/ inside it are used as the split if present) [{d.dataset}]")
    t.add_argument("--preset", choices=list(PRESETS), default=None, metavar="NAME",
                   help=f"model size: {', '.join(PRESETS)} [{d.preset}]")
    t.add_argument("--epochs", type=_positive_int, default=None, help=f"[{d.epochs}]")
    t.add_argument("--batch-size", type=_positive_int, default=None, help=f"[{d.batch_size}]")
    t.add_argument("--lr", type=_positive_float, default=None, help=f"peak learning rate [{d.lr:g}]")
    t.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps [auto]")
    t.add_argument("--amp", choices=AMP_MODES, default=None,
                   help="mixed precision: auto = bf16/fp16 on GPU, off on CPU [auto]")
    t.add_argument("--compile", action="store_true", default=None,
                   help="use torch.compile (slow to start; pays off on long GPU runs)")
    t.add_argument("--seed", type=_seed, default=None, help=f"[{d.seed}]")
    t.add_argument("--init", default=None, metavar="PATH|imagenet",
                   help="fine-tune: start from a checkpoint's weights, or torchvision's ImageNet ViT-B/16")
    t.add_argument("--image-size", type=_positive_int, default=None,
                   help="resize images on the device to this size (e.g. 224 to fine-tune ViT-B/16)")
    t.add_argument("--out", type=_path, default=None,
                   help="output folder [runs/<dataset>-<preset>-<time>, or the --resume checkpoint's folder]")
    t.add_argument("--resume", type=_path, default=None, metavar="PATH",
                   help="continue from a checkpoint.pt; its configuration is used unless overridden")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    e = sub.add_parser(
        "export", help="write a small weights-only copy of a checkpoint (for sharing or data/)",
        description="Copy a training checkpoint without its optimizer and RNG state. The result "
                    "loads with vit_tutorial.train.load_model.")
    e.add_argument("checkpoint", type=_path, help="a checkpoint.pt written by 'train'")
    e.add_argument("dest", type=_path, help="where to write the weights-only file (a new file)")
    e.add_argument("--force", action="store_true", help="replace dest if it exists")
    sub.add_parser("check-data", help="list which data and weights are here (no network used)",
                   description="What the notebooks need, and whether it is where the package looks.")
    sub.add_parser("download", help="fetch CIFAR-10 and the ImageNet ViT-B/16 weights (check-data says where)",
                   description="Prepare a machine (or a classroom's shared folder) to run everything offline. "
                               "Downloads go to a clone's data/downloads, else to your user cache folder, "
                               "or to $VIT_TUTORIAL_DATA/downloads when that is set.")
    predict.add_parser(sub)
    return parser


def check_data() -> int:
    """Print what is present and whether the shipped files are intact (by SHA-256); exit 1 if something the
    offline notebooks need is missing or damaged."""
    from torchvision.models import get_model_weights

    from . import data
    from .locations import SHIPPED_SHA256, restore_hint, shipped_damage
    from .pretrained import weights_dir

    def shipped(relatives: list[str]) -> str | None:
        """None when all are intact, "missing" when all are missing, else what is wrong with each."""
        problems = {r: p for r in relatives if (p := shipped_damage(data.DATA_DIR, r)) is not None}
        if problems and len(problems) == len(relatives) and all(p == "missing" for p in problems.values()):
            return "missing"
        return "; ".join(f"{r} {p}" if len(relatives) > 1 else p for r, p in problems.items()) or None

    weights_file = weights_dir() / get_model_weights("vit_b_16").IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    cifar = data.DOWNLOAD_DIR / "cifar-10-batches-py"
    cifar_ok = all((cifar / n).is_file() for n in CIFAR10_BATCHES)
    photos = [r for r in SHIPPED_SHA256 if r.startswith("photos/")]
    rows = [  # (problem or None, needed offline, what, where, how to get it)
        (shipped(["digits.npz"]), True, "digits (embedded)", data.DATA_DIR / "digits.npz",
         restore_hint("digits.npz")),
        (shipped(photos), True, "sample photos", data.DATA_DIR / "photos", restore_hint("photos/")),
        (shipped(["digits_vit.pt"]), True, "trained digits model", data.DATA_DIR / "digits_vit.pt",
         f"{restore_hint('digits_vit.pt')}; or make it: {data.TRAINED_DIGITS_COMMAND}"),
        (None if cifar_ok else "missing", False, "CIFAR-10 (notebook 05 on a GPU, --dataset cifar10)", cifar,
         "python -m vit_tutorial download"),
        (None if weights_file.is_file() else "missing", False,
         "ImageNet ViT-B/16 weights (notebook 07, --init imagenet)", weights_file, "python -m vit_tutorial download"),
    ]
    print(f"data folder:      {data.DATA_DIR}  ({data.DATA_SOURCE})")
    print(f"downloads folder: {data.DOWNLOAD_DIR}  (CIFAR-10 and the ImageNet weights; created on first download)")
    for problem, _, what, where, how in rows:
        state = "ok     " if problem is None else "missing" if problem == "missing" else "damaged"
        detail = "" if problem in (None, "missing") else f" ({problem})"
        print(f"  {state}  {what}: {where}{detail}" + ("" if problem is None else f"\n           get it: {how}"))
    bad = [f"{what} ({'missing' if problem == 'missing' else 'damaged'})"
           for problem, needed, what, _, _ in rows if needed and problem is not None]
    if bad:
        print(f"error: the offline notebooks need: {', '.join(bad)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def download() -> int:
    from . import data
    from .pretrained import torchvision_vit, weights_dir

    data.load_cifar10(data.DOWNLOAD_DIR, download=True)
    print(f"CIFAR-10: ready in {data.DOWNLOAD_DIR}")
    torchvision_vit("vit_b_16", pretrained=True, progress=True)
    print(f"ImageNet ViT-B/16 weights: ready in {weights_dir()}")
    return check_data()


def _config_from_args(args) -> TrainConfig:
    base = RECIPES[args.recipe] if args.recipe else TrainConfig()
    if args.resume is not None:
        try:
            base = TrainConfig.from_dict(load_checkpoint(args.resume, training=True)["train_config"]).validate()
        except ValueError as e:
            raise CheckpointError(f"{args.resume} holds a train_config that is not valid ({e})") from None
    given = {f: getattr(args, f) for f in ("dataset", "preset", "epochs", "batch_size", "lr",
                                           "device", "amp", "compile", "seed", "init", "image_size")
             if getattr(args, f) is not None}
    return dataclasses.replace(base, **given).validate()


def run_train(args) -> int:
    config = _config_from_args(args)
    out = args.out
    if out is None and args.resume is not None:
        out = args.resume.parent
    elif out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{Path(config.dataset).name}-{config.preset.replace('/', '-')}-{stamp}"
    try:
        result = train(config, out=out, resume=args.resume, progress=not args.no_progress)
    except KeyboardInterrupt:
        print("\n" + _interrupted(out / "checkpoint.pt", args.resume), file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.rank != 0:  # under torchrun, the first process speaks for all
        return 0
    for note in result.init_notes:
        print(f"init: {note}")
    h = result.history
    procs = f" x {result.world_size} processes" if result.world_size > 1 else ""
    epochs = len(h["epoch"])
    print(f"test accuracy {result.test_accuracy:.4f} after {epochs} epoch{'' if epochs == 1 else 's'}, "
          f"{result.train_seconds:.1f} s of training on {result.device}{procs} "
          f"({mean_images_per_second(h):.0f} images/s on average); "
          f"wrote {out}/metrics.json, checkpoint.pt, curves.png")
    return 0


def _interrupted(checkpoint: Path, resume: Path | None) -> str:
    """What Ctrl-C left behind, with the command that continues from it."""
    if checkpoint.is_file():
        return f"interrupted; the last finished epoch is in {checkpoint}: continue with --resume {checkpoint}"
    if resume is not None:
        return (f"interrupted before an epoch finished; {resume} is unchanged: continue with --resume {resume}"
                + ("" if resume.parent == checkpoint.parent else f" --out {checkpoint.parent}"))
    return "interrupted before the first epoch finished; nothing was saved"


def _export(args) -> int:
    path = export_weights(args.checkpoint, args.dest, force=args.force)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, weights only)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return run_train(args)
        if args.command == "check-data":
            return check_data()
        if args.command == "download":
            return download()
        if args.command == "predict":
            return predict.run(args)
        if args.command == "export":
            return _export(args)
    except (ValueError, CheckpointError, DataUnavailableError, TrainingDiverged, RunFolderError) as e:
        print(f"error: {validate.first_line(e, 1000)}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:  # anything the file system refused that no check above foresaw
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or validate.first_line(e)}{where}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
