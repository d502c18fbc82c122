"""Notebook 05: the training loop, shared by ``python -m vit_tutorial train`` and the notebooks.

The data path of one run, each piece in its own module:
images (``data``) -> model (``vit``, sized by ``recipes``) -> one step at a time
(``step``, with ``optim``'s schedule, on ``devices``) -> checkpoint after every epoch
(``checkpoint``) -> ``metrics.json`` and ``curves.png`` (``runs``). This module only
puts them in order. The whole dataset lives in memory as tensors and is augmented a
batch at a time, so a CPU spends its time in the model, not in a data loader.

Runs are safe to interrupt: after every epoch the full state goes into ``checkpoint.pt``,
and ``resume=`` continues from it with the same random streams, so an interrupted run ends
where an uninterrupted one would.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import distributed
from .augment import ModelEMA, mix_batch, random_erasing, trivial_augment
from .checkpoint import (
    CHECKPOINT_FORMAT,
    HISTORY_KEYS,
    CheckpointError,
    config_diff,
    export_weights,
    load_checkpoint,
    load_model,
    restore_training_state,
    save_checkpoint,
    training_state,
)
from .data import ImageData, augment_batch, load_dataset, model_input
from .devices import (AMP_MODES, cpu_name, cpu_supports_bf16, device_name, grad_scaler, host_to_device, pick_device,
                      resolve_amp)
from .distill import prepare_teacher
from .finetune import load_pretrained, pretrained_state, resize_pos_embedding
from .optim import adamw, lr_at, param_groups, set_lr
from .recipes import RECIPES, TrainConfig, build_model, model_config_for, recipe
from .runs import RunFolder, RunFolderError, metrics_dict, run_folder, write_outputs
from .step import count_correct, evaluate, train_step
from .vit import PRESETS, ViT


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


@dataclass
class TrainResult:
    model: torch.nn.Module  # a ViT, or the kind TrainConfig.model_kind names
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


@dataclass
class _Run:
    """What one run holds while it trains (built by :func:`_set_up`)."""

    config: TrainConfig
    data: ImageData
    procs: distributed.Processes
    device: torch.device
    amp_dtype: torch.dtype | None
    model_config: dict
    model: torch.nn.Module
    step_model: torch.nn.Module  # the model as the step calls it: maybe compiled, maybe DDP-wrapped
    optimizer: torch.optim.Optimizer
    scaler: object
    generator: torch.Generator
    x_train: torch.Tensor
    y_train: torch.Tensor
    history: dict
    start_epoch: int = 0
    train_seconds: float = 0.0
    init_notes: list = field(default_factory=list)
    teacher: torch.nn.Module | None = None  # distillation: frozen, in eval mode
    ema: ModelEMA | None = None  # config.ema_decay > 0: the averaged weights, which are evaluated and returned

    @property
    def eval_model(self) -> torch.nn.Module:
        """The model the test accuracy describes: the weight average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.x_train) / self.config.batch_size)

    def lr(self, step: int) -> float:
        c, per_epoch = self.config, self.steps_per_epoch
        return lr_at(step, per_epoch * c.epochs, round(c.warmup_epochs * per_epoch), c.lr, c.lr * c.min_lr_ratio)


def train(config: TrainConfig | None = None, data: ImageData | None = None, out: str | Path | None = None,
          resume: str | Path | None = None, progress: bool | str = True, on_epoch_end=None,
          teacher: torch.nn.Module | None = None) -> TrainResult:
    """Train a ViT (or ``config.model_kind``) as ``config`` says; return the model, its history and test accuracy.

    ``data`` defaults to ``load_dataset(config.dataset)``. With ``out``, the run owns that folder
    (another run into it is refused) and writes ``checkpoint.pt`` and ``metrics.json`` there
    after every epoch, and ``curves.png`` as it goes (see ``runs``). ``resume`` continues from a
    checkpoint of the same configuration. ``on_epoch_end(epoch, history)`` is called after each
    epoch's checkpoint (it may raise to stop the run). ``progress``: ``True`` for a ``tqdm.auto``
    bar (a widget in Jupyter), ``"text"`` for a plain-text bar of a few frames (what a saved
    notebook shows on GitHub), ``False`` for none. ``teacher``: a trained model a
    ``distilled_vit`` learns from (else ``config.teacher``'s checkpoint).
    """
    config = dataclasses.replace(config or TrainConfig()).validate()
    saved = load_checkpoint(resume, training=True) if resume is not None else None
    _check_start(config, data, saved, resume)
    with distributed.process_group(config.device) as procs, \
            run_folder(out if procs.is_main else None, resume, saved) as folder:
        data = data if data is not None else load_dataset(  # a folder loads at the model's size
            config.dataset, image_size=config.image_size or PRESETS[config.preset]["image_size"])
        run = _set_up(config, data, procs, saved, resume, teacher)
        bar = _progress_bar(progress if procs.is_main else False, run)
        t_start = time.perf_counter()
        try:
            for epoch in range(run.start_epoch, config.epochs):
                # -- one pass over the shuffled training set, one optimizer step per batch
                t0 = time.perf_counter()
                loss_sum, correct, lr = _train_one_epoch(run, epoch, bar, folder)
                seconds = time.perf_counter() - t0
                run.train_seconds += seconds  # the evaluation below is not training time
                # -- the held-out test set, in eval mode
                test_loss, test_acc, _ = evaluate(run.eval_model, data.x_test, data.y_test, data.mean, data.std,
                                                  run.device, amp_dtype=run.amp_dtype, image_size=config.image_size,
                                                  test_flip=config.test_flip,
                                                  batch_size=2000 if run.device.type == "cuda" else 500)
                # -- record the epoch; checkpoint it and rewrite the report; let the caller look
                n = len(run.x_train)
                for key, value in zip(HISTORY_KEYS, (epoch + 1, loss_sum / n, correct / n, test_loss, test_acc,
                                                     lr, n / seconds, seconds)):
                    run.history[key].append(value)
                if folder is not None:
                    folder.save(_training_state(run, epoch + 1))
                    folder.write_outputs(_result(run, folder, time.perf_counter() - t_start),
                                         last=epoch + 1 == config.epochs)
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, run.history)
        finally:
            bar.close()
        return _result(run, folder, time.perf_counter() - t_start)


def _check_start(config: TrainConfig, data, saved: dict | None, source) -> None:
    """What can be refused before a folder is touched: foreign data, or a resume with nothing left to do."""
    if data is not None and not isinstance(data, ImageData):
        raise ValueError(f"data must be an ImageData (e.g. load_digits()), got {type(data).__name__}")
    if saved is not None and saved["epoch"] >= config.epochs:
        raise ValueError(f"{source} is already complete ({saved['epoch']} of {config.epochs} epochs); nothing was "
                         f"changed. To train it longer, ask for more epochs (--epochs N, N > {saved['epoch']})")


def _set_up(config: TrainConfig, data: ImageData, procs, saved: dict | None, source, teacher=None) -> _Run:
    """The model, its optimizer and where the run starts: from scratch, from ``init`` weights, or a checkpoint."""
    if len(data.x_train) == 0:
        raise ValueError(f"the training set of {data.name!r} is empty: there is nothing to train on")
    if config.batch_size % procs.world_size:
        raise ValueError(f"batch_size {config.batch_size} is the global batch and must divide evenly "
                         f"among {procs.world_size} processes")
    device = procs.device or pick_device(config.device)
    amp_dtype = resolve_amp(config.amp, device)
    model_config = model_config_for(config, data)
    if saved is not None and (diff := config_diff(saved["model_config"], model_config)):
        raise CheckpointError(f"{source} was made for a different model: " + "; ".join(diff))
    if teacher is None and config.teacher is not None:
        teacher = load_model(config.teacher)
    example = model_input(data.x_train[:2], data.mean, data.std, config.image_size)
    teacher = prepare_teacher(teacher, config.model_kind, example, len(data.classes), device)

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = build_model(model_config, ViT)  # the name ViT here, so an experiment can swap in a subclass
    init_notes = load_pretrained(model, pretrained_state(config.init)) if config.init and saved is None else []
    model = model.to(device)
    optimizer = adamw(param_groups(model, config.weight_decay), config.lr, device)
    scaler = grad_scaler(device, enabled=amp_dtype == torch.float16)
    run = _Run(config, data, procs, device, amp_dtype, model_config, model, model, optimizer, scaler, generator,
               data.x_train.to(device), data.y_train.to(device), {k: [] for k in HISTORY_KEYS},
               init_notes=init_notes, teacher=teacher,
               ema=ModelEMA(model, config.ema_decay) if config.ema_decay > 0 else None)
    if saved is not None:
        restore_training_state(saved, source, model, optimizer, scaler, generator)
        if run.ema is not None:  # the checkpoint's "model" is the average; the trained weights sit beside it
            if "training_model" not in saved:
                raise CheckpointError(f"{source} has no weight average, but this run asks for ema_decay="
                                      f"{config.ema_decay:g}; resume with the same settings it was made with")
            model.load_state_dict(saved["training_model"])
            run.ema.load_state_dict({"module": saved["model"], "updates": saved["ema_updates"]})
        run.history = {k: list(v) for k, v in saved["history"].items()}
        run.start_epoch, run.train_seconds = saved["epoch"], saved["train_seconds"]
    step_model = distributed.wrap(model, procs, device)  # gradients are averaged across processes in backward()
    run.step_model = torch.compile(step_model) if config.compile else step_model
    return run


def _train_one_epoch(run: _Run, epoch: int, bar, folder: RunFolder | None) -> tuple[float, float, float]:
    """One pass over the training set; returns the summed loss, the number correct, and the last learning rate."""
    c, procs, n = run.config, run.procs, len(run.x_train)
    run.model.train()
    order = host_to_device(torch.randperm(n, generator=run.generator), run.device)
    loss_sum = torch.zeros((), device=run.device)
    correct = torch.zeros((), device=run.device, dtype=torch.long)
    for i in range(run.steps_per_epoch):
        lr = run.lr(epoch * run.steps_per_epoch + i)
        set_lr(run.optimizer, lr)
        idx = order[i * c.batch_size:(i + 1) * c.batch_size]
        xb, yb = run.x_train[idx], run.y_train[idx]
        if c.augment:  # drawn for the whole global batch, so every process stays in step
            xb = augment_batch(xb, run.data.augmentation, run.generator)
            if c.trivial_augment:
                xb = trivial_augment(xb, run.generator, c.trivial_augment)
            if c.random_erasing:
                xb = random_erasing(xb, run.generator, c.random_erasing)
        xb, yb = distributed.shard(xb, procs), distributed.shard(yb, procs)
        inputs, targets = model_input(xb, run.data.mean, run.data.std, c.image_size), yb
        if c.augment and (c.mixup or c.cutmix):  # soft targets; accuracy below is still counted on the labels
            inputs, targets = mix_batch(inputs, yb, len(run.data.classes), run.generator, c.mixup, c.cutmix)
        loss, logits = train_step(run.step_model, run.optimizer, inputs, targets,
                                  amp_dtype=run.amp_dtype, scaler=run.scaler, grad_clip=c.grad_clip,
                                  label_smoothing=c.label_smoothing, teacher=run.teacher)
        if run.ema is not None:
            run.ema.update(run.model)
        loss_sum += loss * len(yb)
        correct += count_correct(logits, yb)
        if i % 10 == 9 or i == run.steps_per_epoch - 1:  # every process checks the same sum
            running = distributed.all_sum(loss_sum, procs).item() / min(n, (i + 1) * c.batch_size)
            if not math.isfinite(running):
                _diverged(run, running, epoch, i, folder)
            bar.set_postfix(epoch=f"{epoch + 1}/{c.epochs}", loss=f"{running:.3f}", lr=f"{lr:.2e}",
                            refresh=False)
        bar.update(1)
    if run.device.type == "cuda":
        torch.cuda.synchronize()
    totals = distributed.all_sum(loss_sum, procs).item(), distributed.all_sum(correct, procs).item()
    return totals[0], totals[1], lr


def _diverged(run: _Run, loss: float, epoch: int, step: int, folder: RunFolder | None):
    ckpt = folder.checkpoint if folder is not None else None
    raise TrainingDiverged(
        f"the loss became {loss} in epoch {epoch + 1}, step {step + 1}; stopped. "
        + (f"The last good checkpoint is {ckpt}. " if ckpt is not None and ckpt.exists() else "")
        + f"Try a lower learning rate (now {run.config.lr:g}) or --amp off.")


def _progress_bar(progress: bool | str, run: _Run):
    if progress == "text":
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    total = run.steps_per_epoch * run.config.epochs
    # A saved notebook keeps every frame of a text bar: about 25 of them, whatever the run's length.
    frames = dict(miniters=max(1, total // 25), mininterval=0.5) if progress == "text" else dict(mininterval=0.1)
    return tqdm(total=total, initial=run.start_epoch * run.steps_per_epoch, disable=not progress,
                desc="training", unit="step", dynamic_ncols=True, **frames)


def _training_state(run: _Run, epoch: int) -> dict:
    state = training_state(model_config=run.model_config, train_config=run.config.to_dict(), data=run.data,
                           model=run.model, optimizer=run.optimizer, scaler=run.scaler, epoch=epoch,
                           train_seconds=run.train_seconds, history=run.history, generator=run.generator)
    if run.ema is not None:  # "model" is what load_model and export give: the weights the accuracy describes
        state["training_model"], state["model"] = state["model"], run.ema.module.state_dict()
        state["ema_updates"] = run.ema.updates
    return state


def _result(run: _Run, folder: RunFolder | None, wall_seconds: float) -> TrainResult:
    h = run.history
    return TrainResult(run.eval_model.eval(), h, h["test_accuracy"][-1] if h["epoch"] else float("nan"),
                       run.train_seconds, str(run.device), run.config, run.model_config,
                       folder.path if folder is not None else None,
                       wall_seconds=wall_seconds, world_size=run.procs.world_size, rank=run.procs.rank,
                       init_notes=run.init_notes)


# Names that notebooks and older code import from here; each now lives in the module of its idea.
__all__ = ["train", "TrainResult", "TrainingDiverged", "TrainConfig", "RECIPES", "recipe", "model_config_for",
           "CHECKPOINT_FORMAT", "CheckpointError", "save_checkpoint", "load_checkpoint", "load_model",
           "export_weights", "load_pretrained", "resize_pos_embedding", "evaluate", "lr_at", "param_groups",
           "AMP_MODES", "pick_device", "resolve_amp", "cpu_supports_bf16", "cpu_name", "device_name",
           "metrics_dict", "write_outputs", "RunFolderError", "HISTORY_KEYS"]
