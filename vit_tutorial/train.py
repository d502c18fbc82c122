"""Step 5 of the series: one training loop, shared by ``python -m vit_tutorial train`` and notebook 05.

The recipe is the usual one for ViTs: AdamW, linear warm-up then cosine decay,
label smoothing, gradient clipping, mixed precision where the hardware has it,
optionally ``torch.compile``. The whole dataset lives in memory as tensors and
is augmented a batch at a time, so a CPU spends its time in the model, not in
a data loader.

Runs are safe to interrupt: after every epoch the full state goes into
``checkpoint.pt`` by an atomic rename, and ``resume=`` continues from it with
the same random streams, so an interrupted run ends where an uninterrupted one
would. Checkpoints are read with ``torch.load(weights_only=True)`` only.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .data import DATASETS, ImageData, augment_batch, load_dataset, normalize
from .vit import PRESETS, ViT, preset

CHECKPOINT_FORMAT = "vit_tutorial.checkpoint/1"
AMP_MODES = ("auto", "off", "bf16", "fp16")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, not ours, or made for another configuration."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


@dataclass
class TrainConfig:
    """Everything that defines a run. Saved in every checkpoint and in ``metrics.json``.

    The defaults are the recipe for the ``digits`` preset on the embedded digits: about
    0.97 test accuracy after under a minute of training on two CPU cores.
    """

    dataset: str = "digits"
    preset: str = "digits"
    epochs: int = 36
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    augment: bool = True
    amp: str = "auto"
    compile: bool = False
    device: str | None = None
    seed: int = 0
    model: dict = field(default_factory=dict)  # overrides of the preset's ViT arguments
    init: str | None = None  # start from weights: a checkpoint path, or "imagenet" (torchvision's ViT-B/16)
    image_size: int | None = None  # resize the images on the device first (fine-tuning at 224 px)

    def validate(self) -> "TrainConfig":
        """Raise a ``ValueError`` that names the bad value and what would be valid."""
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of: {', '.join(PRESETS)}")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        for name in ("weight_decay", "warmup_epochs", "grad_clip"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        for name in ("min_lr_ratio", "label_smoothing"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v < 1):
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.image_size is not None and (isinstance(self.image_size, bool)
                                            or not isinstance(self.image_size, int) or self.image_size < 1):
            raise ValueError(f"image_size must be a positive integer or None, got {self.image_size!r}")
        if self.init is not None and not (isinstance(self.init, str) and self.init):
            raise ValueError(f"init must be 'imagenet' or a checkpoint path, got {self.init!r}")
        if self.init == "imagenet" and self.preset != "ViT-B/16":
            raise ValueError(f"init='imagenet' loads torchvision's ViT-B/16, so preset must be 'ViT-B/16', "
                             f"got {self.preset!r}")
        return self


#: Named recipes: what ``--recipe`` starts from. The GPU ones are written for one H100-class GPU;
#: see the README for what was measured with each and on what.
RECIPES: dict[str, TrainConfig] = {
    # The default: about a minute on two CPU cores, ~0.97 on the embedded digits.
    "digits": TrainConfig(),
    # CIFAR-10 from scratch on a GPU: the 'cifar10' preset, 64 tokens, bf16, compiled.
    "cifar10": TrainConfig(dataset="cifar10", preset="cifar10", epochs=200, batch_size=512, lr=1e-3,
                           weight_decay=0.05, warmup_epochs=5, label_smoothing=0.1, compile=True),
    # The paper's point: pre-trained ViT-B/16 (ImageNet-1k) fine-tuned on CIFAR-10 at 224 px.
    # Zero-initialised new head, short warm-up, small learning rate, 3 epochs.
    "cifar10-finetune": TrainConfig(dataset="cifar10", preset="ViT-B/16", init="imagenet", image_size=224,
                                    epochs=3, batch_size=128, lr=1e-4, weight_decay=0.05,
                                    warmup_epochs=0.2, label_smoothing=0.1, compile=True),
}


def recipe(name: str, **overrides) -> TrainConfig:
    """A copy of ``RECIPES[name]`` with ``overrides`` applied, validated."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")
    return dataclasses.replace(RECIPES[name], **overrides).validate()


@dataclass
class TrainResult:
    model: ViT
    history: dict
    test_accuracy: float
    train_seconds: float  # time in training steps, summed over epochs (evaluation excluded)
    device: str
    config: TrainConfig
    model_config: dict
    out: Path | None = None
    wall_seconds: float = 0.0  # this call, start to end, evaluation and checkpoints included
    world_size: int = 1  # processes that trained together (torchrun); the batch size is their sum
    rank: int = 0
    init_notes: list = field(default_factory=list)  # what init= could not copy as it was


# --------------------------------------------------------------------------- devices and precision


def pick_device(requested: str | None = None) -> torch.device:
    """``cuda`` if present, else Apple's ``mps``, else ``cpu``; or check the one asked for."""
    if requested in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(requested)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {requested!r} does not exist: {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but Apple's Metal backend is not available here")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {requested!r}; use auto, cpu, cuda, cuda:N or mps")
    return dev


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 math (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(torch.cpu, probe, None)
        if fn is not None:
            try:
                if fn():
                    return True
            except RuntimeError:
                pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or ``None`` for full fp32.

    ``auto``: bf16 on GPUs that have it, fp16 (with a gradient scaler) on older
    GPUs, fp32 on CPU and MPS. ``bf16`` on a CPU is allowed only where it is native.
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "fp16":
            return torch.float16
        if amp == "bf16" and not torch.cuda.is_bf16_supported():
            raise ValueError("this GPU has no bf16 support; use --amp fp16 or --amp auto")
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        if amp == "bf16":
            if not cpu_supports_bf16():
                raise ValueError("this CPU has no native bf16 (AVX512-BF16/AMX); use --amp off")
            return torch.bfloat16
        if amp == "fp16":
            raise ValueError("fp16 autocast is for GPUs; on a CPU use --amp bf16 (where supported) or off")
        return None
    # mps
    if amp == "auto":
        return None
    return torch.float16 if amp == "fp16" else torch.bfloat16


def _adamw(groups: list[dict], lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with the fused kernel where this torch has one for the device: one fused call per
    parameter group instead of a dozen small ops per tensor (measured for the digits model on 2 CPU
    cores: 0.4 ms per step instead of about 2 ms)."""
    if device.type in ("cuda", "cpu"):
        try:
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        except (RuntimeError, TypeError):  # older torch: no fused CPU kernel
            pass
    return torch.optim.AdamW(groups, lr=lr)


def _grad_scaler(device: torch.device, enabled: bool):
    """fp16 needs loss scaling (its range is small); bf16 and fp32 do not."""
    if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
        return torch.amp.GradScaler(device.type, enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled and device.type == "cuda")


# --------------------------------------------------------------------------- schedule


def lr_at(step: int, total_steps: int, warmup_steps: int, base_lr: float, min_lr: float = 0.0) -> float:
    """Linear warm-up from 0 to ``base_lr`` over ``warmup_steps``, then cosine down to ``min_lr``.

    Warm-up matters for transformers: Adam's early steps are noisy and large,
    and an un-warmed attention layer can lock into a bad pattern.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: decaying biases, norms and embeddings hurts and helps nothing."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or name.endswith(("cls_token", "pos_embedding")):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` so that ``path`` always holds either the old or the new file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely (``weights_only=True``: tensors and plain data, never code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is damaged or foreign
        raise CheckpointError(f"{path} is not a readable checkpoint (not a PyTorch zip archive: "
                              f"truncated, corrupt, or not made by torch.save)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt zip, truncated file, pickle that wants to run code, ...
        raise CheckpointError(f"{path} is not a readable checkpoint ({_why(e)})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a vit_tutorial checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    return state


def _why(e: Exception) -> str:
    """One line from torch's (long, coloured) load error: the refused global if there is one."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(e).splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        m = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", line)
        if m:
            return f"it asks for {m.group(1)}; weights_only=True refuses anything that could run code"
    return f"{type(e).__name__}: {lines[0][:160] if lines else ''}"


def _config_diff(a: dict, b: dict) -> list[str]:
    return [f"{k}: checkpoint {a.get(k)!r}, expected {b.get(k)!r}"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def load_model(path: str | Path, expected_config: dict | None = None, device="cpu") -> ViT:
    """A ready :class:`ViT` (in eval mode) from a checkpoint; with ``expected_config``, refuse any other."""
    state = load_checkpoint(path)
    cfg = state["model_config"]
    if expected_config is not None and (diff := _config_diff(cfg, expected_config)):
        raise CheckpointError(f"{path} was made for a different model: " + "; ".join(diff))
    model = ViT(**cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the model ({str(e).splitlines()[0]})") from None
    return model.to(device).eval()


def export_weights(checkpoint: str | Path, dest: str | Path) -> Path:
    """A small, weights-only copy of a training checkpoint: what a notebook needs to use the model.

    Drops the optimizer, scaler and RNG state (two thirds of the file) and keeps the model, its
    configuration, the data's normalisation and how it was made. :func:`load_model` reads it.
    """
    state = load_checkpoint(checkpoint)
    history = state.get("history") or {}
    slim = {"format": CHECKPOINT_FORMAT, "model_config": state["model_config"],
            "train_config": state["train_config"], "data": state["data"],
            "model": {k: v.detach().clone() for k, v in state["model"].items()},
            "epoch": state["epoch"], "train_seconds": state["train_seconds"],
            "test_accuracy": (history.get("test_accuracy") or [None])[-1],
            "versions": {"torch": str(torch.__version__), "python": platform.python_version()}}
    if Path(dest).resolve() == Path(checkpoint).resolve():
        raise ValueError(f"export would overwrite its own source {checkpoint}; choose another destination")
    return save_checkpoint(dest, slim)


def resize_pos_embedding(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """A ``(1, 1 + h*w, dim)`` position table for another patch grid: the CLS row kept, the
    patch rows interpolated in 2-D (bicubic), as the paper does when fine-tuning at a new size."""
    n_old = pos.shape[1] - 1
    side = math.isqrt(n_old)
    if side * side != n_old:
        raise ValueError(f"cannot resize a position table of {n_old} patches: not a square grid")
    patches = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches.float(), size=grid, mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], patches.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1).to(pos.dtype)], 1)


def load_pretrained(model: ViT, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy pre-trained weights into ``model`` for fine-tuning, and say what did not fit as it was.

    A head for another number of classes is replaced by a zero-initialised one (the paper's
    choice: the new task starts from "no opinion"); a position table for another grid is
    interpolated. Any other mismatch means another architecture, and nothing is loaded.
    """
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or extra:
        raise CheckpointError(f"the pre-trained weights are for another architecture "
                              f"(missing {missing[:3]}, unexpected {extra[:3]})")
    new, notes = {}, []
    for k, v in state.items():
        if v.shape == own[k].shape:
            new[k] = v
        elif k == "pos_embedding":
            new[k] = resize_pos_embedding(v, model.to_patch_embedding.grid)
            notes.append(f"pos_embedding interpolated from {tuple(v.shape)} to {tuple(own[k].shape)}")
        elif k.startswith("mlp_head."):
            new[k] = torch.zeros_like(own[k])
            notes.append(f"{k} {tuple(v.shape)} -> {tuple(own[k].shape)}, zero-initialised")
        else:
            raise CheckpointError(f"the pre-trained {k} has shape {tuple(v.shape)}, the model needs "
                                  f"{tuple(own[k].shape)}: another architecture; nothing was loaded")
    model.load_state_dict(new)
    return notes


def _init_state(source: str) -> dict[str, torch.Tensor]:
    if source == "imagenet":
        from .pretrained import torchvision_vit

        return torchvision_vit("vit_b_16", pretrained=True)[0].state_dict()
    return load_checkpoint(source)["model"]


# --------------------------------------------------------------------------- several processes (torchrun)


def _init_distributed(requested_device: str | None) -> tuple[int, int, torch.device | None, bool]:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1): join the process group, NCCL on GPUs, gloo on CPUs.

    Returns ``(rank, world_size, device or None, created)``; ``created`` says we must leave the group.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None, False
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (requested_device in (None, "", "auto")
                                          or str(requested_device).startswith("cuda"))
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", local % torch.cuda.device_count()) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device, created


def _all_sum(t: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        import torch.distributed as dist

        t = t.clone()
        dist.all_reduce(t)
    return t


# --------------------------------------------------------------------------- training


def model_config_for(config: TrainConfig, data: ImageData) -> dict:
    """The preset's ViT arguments, with the data's image size, channels and classes filled in."""
    cfg = preset(config.preset, **config.model)
    size = data.image_size[0] if data.image_size[0] == data.image_size[1] else data.image_size
    cfg.update(image_size=config.image_size or size, channels=data.channels, num_classes=len(data.classes))
    return cfg


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


@torch.inference_mode()
def evaluate(model, x, y, mean, std, device, batch_size: int = 500, amp_dtype=None, image_size=None):
    """Mean cross-entropy, accuracy and predictions of ``model`` on uint8 images ``x``
    (resized to ``image_size`` first, if given)."""
    was_training = model.training
    model.eval()
    total_loss, preds = 0.0, []
    for i in range(0, len(x), batch_size):
        xb = _resize(normalize(x[i:i + batch_size].to(device, non_blocking=True), mean, std), image_size)
        yb = y[i:i + batch_size].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(xb)
        total_loss += F.cross_entropy(logits.float(), yb, reduction="sum").item()
        preds.append(logits.argmax(-1).cpu())
    model.train(was_training)
    preds = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
    acc = (preds == y.cpu()).float().mean().item() if len(y) else float("nan")
    return total_loss / max(1, len(x)), acc, preds


def _rng_state(gen: torch.Generator) -> dict:
    state = {"generator": gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(gen: torch.Generator, state: dict) -> None:
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(config: TrainConfig | None = None, data: ImageData | None = None, out: str | Path | None = None,
          resume: str | Path | None = None, progress: bool | str = True, on_epoch_end=None) -> TrainResult:
    """Train a ViT as ``config`` says and return the model, its history and its test accuracy.

    ``data`` defaults to ``load_dataset(config.dataset)``. With ``out``, a
    checkpoint is written there after every epoch, and ``metrics.json`` and
    ``curves.png`` at the end. ``resume`` continues from a checkpoint of the
    same configuration. ``on_epoch_end(epoch, history)`` is called after each
    epoch's checkpoint (it may raise to stop the run). ``progress``: ``True`` for a
    ``tqdm.auto`` bar (a widget in Jupyter), ``"text"`` for a plain-text bar (what a
    saved notebook shows on GitHub), ``False`` for none.
    """
    if progress == "text":
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm

    config = dataclasses.replace(config or TrainConfig()).validate()
    resumed = None
    if resume is not None:
        resumed = load_checkpoint(resume)
    data = data if data is not None else load_dataset(config.dataset)
    rank, world, dist_device, created_group = _init_distributed(config.device)
    try:
        return _train(config, data, out, resume, resumed, progress, on_epoch_end, tqdm, rank, world,
                      dist_device or pick_device(config.device))
    finally:
        if created_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(config, data, out, resume, resumed, progress, on_epoch_end, tqdm, rank, world, device) -> TrainResult:
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} is the global batch and must divide evenly "
                         f"among {world} processes")
    amp_dtype = resolve_amp(config.amp, device)
    model_cfg = model_config_for(config, data)
    if resumed is not None and (diff := _config_diff(resumed["model_config"], model_cfg)):
        raise CheckpointError(f"{resume} was made for a different model: " + "; ".join(diff))

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = ViT(**model_cfg)
    init_notes = []
    if config.init is not None and resumed is None:
        init_notes = load_pretrained(model, _init_state(config.init))
    model = model.to(device)
    opt = _adamw(param_groups(model, config.weight_decay), config.lr, device)
    scaler = _grad_scaler(device, enabled=amp_dtype == torch.float16)
    n = len(data.x_train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    history = {k: [] for k in ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                               "lr", "images_per_second", "seconds")}
    start_epoch, train_seconds = 0, 0.0

    if resumed is not None:
        try:
            model.load_state_dict(resumed["model"])
            opt.load_state_dict(resumed["optimizer"])
            if resumed.get("scaler"):
                scaler.load_state_dict(resumed["scaler"])
            _set_rng_state(gen, resumed["rng"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{resume} does not match this run ({str(e).splitlines()[0][:160]})") from None
        history = {k: list(v) for k, v in resumed["history"].items()}
        start_epoch, train_seconds = resumed["epoch"], resumed["train_seconds"]

    step_model = model
    if world > 1:  # gradients are averaged across processes in backward()
        from torch.nn.parallel import DistributedDataParallel

        step_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    step_model = torch.compile(step_model) if config.compile else step_model
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    lead = rank == 0  # only the first process reports and writes files
    ckpt_path = Path(out) / "checkpoint.pt" if out is not None and lead else None
    progress = progress if lead else False

    t_start = time.perf_counter()
    bar = tqdm(total=total_steps, initial=start_epoch * steps_per_epoch, disable=not progress,
               desc="training", unit="step", dynamic_ncols=True,
               mininterval=2.0 if progress == "text" else 0.1)  # a saved notebook keeps every text frame
    try:
        for epoch in range(start_epoch, config.epochs):
            model.train()
            t0 = time.perf_counter()
            order = torch.randperm(n, generator=gen).to(device)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            for i in range(steps_per_epoch):
                step = epoch * steps_per_epoch + i
                lr = lr_at(step, total_steps, warmup_steps, config.lr, config.lr * config.min_lr_ratio)
                for group in opt.param_groups:
                    group["lr"] = lr
                idx = order[i * config.batch_size:(i + 1) * config.batch_size]
                xb = x_train[idx]
                if config.augment:  # drawn for the whole global batch, so every process stays in step
                    xb = augment_batch(xb, data.augment, gen)
                yb = y_train[idx]
                if world > 1:  # this process's shard of the global batch
                    xb, yb = xb.tensor_split(world)[rank], yb.tensor_split(world)[rank]
                xb = _resize(normalize(xb, data.mean, data.std), config.image_size)
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    logits = step_model(xb)
                    loss = F.cross_entropy(logits.float(), yb, label_smoothing=config.label_smoothing)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.grad_clip > 0:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                scaler.step(opt)
                scaler.update()
                loss_sum += loss.detach() * len(yb)
                correct += (logits.detach().argmax(-1) == yb).sum()
                if i % 10 == 9 or i == steps_per_epoch - 1:  # every process checks the same sum
                    running = _all_sum(loss_sum, world).item() / min(n, (i + 1) * config.batch_size)
                    if not math.isfinite(running):
                        raise TrainingDiverged(
                            f"the loss became {running} in epoch {epoch + 1}, step {i + 1}; stopped. "
                            + (f"The last good checkpoint is {ckpt_path}. " if ckpt_path and ckpt_path.exists() else "")
                            + f"Try a lower learning rate (now {config.lr:g}) or --amp off.")
                    bar.set_postfix(epoch=f"{epoch + 1}/{config.epochs}", loss=f"{running:.3f}", lr=f"{lr:.2e}")
                bar.update(1)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            train_seconds += seconds  # time in training steps; the evaluation below is not counted
            test_loss, test_acc, _ = evaluate(model, data.x_test, data.y_test, data.mean, data.std,
                                              device, amp_dtype=amp_dtype, image_size=config.image_size)
            loss_sum, correct = _all_sum(loss_sum, world), _all_sum(correct, world)
            for k, v in (("epoch", epoch + 1), ("train_loss", loss_sum.item() / n),
                         ("train_accuracy", correct.item() / n), ("test_loss", test_loss),
                         ("test_accuracy", test_acc), ("lr", lr), ("images_per_second", n / seconds),
                         ("seconds", seconds)):
                history[k].append(v)
            if ckpt_path is not None:
                save_checkpoint(ckpt_path, {
                    "format": CHECKPOINT_FORMAT, "model_config": model_cfg,
                    "train_config": dataclasses.asdict(config),
                    "data": {"name": data.name, "mean": list(data.mean), "std": list(data.std),
                             "classes": list(data.classes)},
                    "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                    "epoch": epoch + 1, "train_seconds": train_seconds,
                    "history": history, "rng": _rng_state(gen)})
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, history)
    finally:
        bar.close()

    result = TrainResult(model.eval(), history, history["test_accuracy"][-1] if history["epoch"] else float("nan"),
                         train_seconds, str(device), config, model_cfg, Path(out) if out is not None else None,
                         wall_seconds=time.perf_counter() - t_start, world_size=world, rank=rank,
                         init_notes=init_notes)
    if out is not None and lead:
        write_outputs(result)
    return result


def metrics_dict(result: TrainResult) -> dict:
    return {
        "test_accuracy": result.test_accuracy, "train_seconds": round(result.train_seconds, 2),
        "wall_seconds": round(result.wall_seconds, 2),
        "epochs": len(result.history["epoch"]), "device": result.device,
        "world_size": result.world_size, "global_batch_size": result.config.batch_size,
        "batch_size_per_process": result.config.batch_size // result.world_size,
        "device_name": _device_name(result.device),
        "images_per_second": result.history["images_per_second"][-1] if result.history["epoch"] else None,
        "config": dataclasses.asdict(result.config), "model_config": result.model_config,
        "versions": {"python": platform.python_version(), "torch": str(torch.__version__)},
    }


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_name()


def cpu_name() -> str:
    """The CPU's model name, for honest timing reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_outputs(result: TrainResult) -> None:
    """``metrics.json`` and ``curves.png`` beside the checkpoint."""
    from .plots import plot_history

    out = result.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics_dict(result), indent=2) + "\n")
    fig = plot_history(result.history, title=f"{result.config.preset} on {result.config.dataset}")
    fig.savefig(out / "curves.png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
