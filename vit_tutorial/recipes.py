"""Notebook 05: what defines a training run (``TrainConfig``) and the named recipes the series uses.

A recipe is data, not code: the same ``train()`` runs the CPU recipe for the embedded digits
and the GPU recipes for CIFAR-10. Every field is checked when the run starts, with a message
that names the field and the value; the whole config is saved in each checkpoint and in
``metrics.json``, so a result can always be traced to the settings that made it.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field

from .cnn import ResidualCNN
from .devices import AMP_MODES
from .distill import DistilledViT
from .images import check_dataset
from .validate import SEED_RANGE, choice, flag, fraction, integer_in, non_negative_number, positive_int, positive_number
from .vit import PRESETS, ViT, preset_kwargs

#: Fields that had another name in earlier checkpoints (``train_config`` is read with these mapped).
RENAMED_FIELDS = {"model": "model_overrides"}


@dataclass
class TrainConfig:
    """Everything that defines a run. Saved in every checkpoint and in ``metrics.json``.

    The defaults are the recipe for the ``digits`` preset on the embedded digits (see
    ``RECIPES``): about 0.97 test accuracy in about a minute of training on two CPU cores.
    """

    dataset: str = "digits"  # 'digits', 'cifar10', or the path of a folder of class subfolders
    preset: str = "digits"  # a name in vit_tutorial.PRESETS: the model's size
    epochs: int = 36
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    augment: bool = True  # whether to augment; the data says which kind suits it
    # Stronger regularisation, for CIFAR-10 from scratch (vit_tutorial.augment); all off by default.
    trivial_augment: float = 0.0  # strength of TrivialAugment's per-image ops, after the data's own kind (0: off)
    random_erasing: float = 0.0  # share of images with a random rectangle painted over
    mixup: float = 0.0  # Beta alpha of Mixup (0: off); with cutmix too, each batch uses one of the two
    cutmix: float = 0.0  # Beta alpha of CutMix (0: off)
    ema_decay: float = 0.0  # evaluate a running average of the weights with this decay (0: off; e.g. 0.999)
    test_flip: bool = False  # evaluate the average of the logits for each image and its mirror image
    amp: str = "auto"
    compile: bool = False
    device: str | None = None
    seed: int = 0
    model_overrides: dict = field(default_factory=dict)  # ViT arguments that replace the preset's
    init: str | None = None  # start from weights: a checkpoint path, or "imagenet" (torchvision's ViT-B/16)
    image_size: int | None = None  # resize the images on the device first (fine-tuning at 224 px)
    model_kind: str = "vit"  # 'vit', 'cnn' (ResidualCNN) or 'distilled_vit' (DeiT: needs a teacher); notebook 10
    teacher: str | None = None  # distilled_vit: the teacher's checkpoint (or pass train(..., teacher=model))

    def validate(self) -> "TrainConfig":
        """Raise a ``ValueError`` that names the bad value and what would be valid."""
        check_dataset(self.dataset)  # a name, or a folder of class subfolders
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of: {', '.join(PRESETS)}")
        for name in ("epochs", "batch_size"):
            positive_int(name, getattr(self, name))
        positive_number("lr", self.lr)
        for name in ("weight_decay", "warmup_epochs", "grad_clip"):
            non_negative_number(name, getattr(self, name))
        for name in ("min_lr_ratio", "label_smoothing", "random_erasing"):
            fraction(name, getattr(self, name))
        if not (non_negative_number("trivial_augment", self.trivial_augment) <= 1):
            raise ValueError(f"trivial_augment is a strength from 0 (off) to 1 (the usual ranges), "
                             f"got {self.trivial_augment!r}")
        for name in ("mixup", "cutmix"):
            non_negative_number(name, getattr(self, name))
        if isinstance(self.ema_decay, bool) or not isinstance(self.ema_decay, (int, float)) \
                or not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be 0 (off) or a number below 1 such as 0.999, got {self.ema_decay!r}")
        for name in ("augment", "compile", "test_flip"):
            flag(name, getattr(self, name))
        choice("amp", self.amp, AMP_MODES)
        if self.device is not None and not isinstance(self.device, str):
            raise ValueError(f"device must be a string such as 'cpu' or 'cuda', or None, got {self.device!r}")
        integer_in("seed", self.seed, *SEED_RANGE)
        choice("model_kind", self.model_kind, tuple(MODEL_KINDS))
        _check_model_overrides(self.model_overrides, self.model_kind)
        if self.teacher is not None and not (isinstance(self.teacher, str) and self.teacher):
            raise ValueError(f"teacher must be a checkpoint path or None, got {self.teacher!r}")
        if (self.mixup or self.cutmix) and self.model_kind == "distilled_vit":
            raise ValueError("mixup and cutmix are not supported with model_kind='distilled_vit' (its loss takes "
                             "hard labels); set mixup=0 and cutmix=0")
        if self.teacher is not None and self.model_kind != "distilled_vit":
            raise ValueError(f"teacher is only used with model_kind='distilled_vit', got model_kind={self.model_kind!r}")
        if self.image_size is not None:
            positive_int("image_size", self.image_size)
        if self.init is not None and not (isinstance(self.init, str) and self.init):
            raise ValueError(f"init must be 'imagenet' or a checkpoint path, got {self.init!r}")
        if self.init == "imagenet" and self.preset != "ViT-B/16":
            raise ValueError(f"init='imagenet' loads torchvision's ViT-B/16, so preset must be 'ViT-B/16', "
                             f"got {self.preset!r}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> "TrainConfig":
        """The config a checkpoint recorded (older field names mapped, unknown fields ignored)."""
        if not isinstance(saved, dict):
            raise ValueError(f"a saved train_config must be a dict, got {type(saved).__name__}")
        saved = {RENAMED_FIELDS.get(k, k): v for k, v in saved.items()}
        return cls(**{k: v for k, v in saved.items() if k in cls.__dataclass_fields__})


#: ``TrainConfig.model_kind`` -> the class it builds. A checkpoint records the kind in its ``model_config``
#: as ``"kind"``, except for a ViT: configurations without a kind (every checkpoint made before
#: notebook 10, such as ``data/digits_vit.pt``) are ViTs.
MODEL_KINDS: dict[str, type] = {"vit": ViT, "cnn": ResidualCNN, "distilled_vit": DistilledViT}


def _arguments(kind: str) -> tuple[str, ...]:
    return tuple(inspect.signature(ResidualCNN if kind == "cnn" else ViT).parameters)


def _check_model_overrides(overrides, kind: str = "vit") -> None:
    name = "ResidualCNN" if kind == "cnn" else "ViT"
    if not isinstance(overrides, dict):
        raise ValueError(f"model_overrides must be a dict of {name} arguments (e.g. {{'dim': 64}}), got {overrides!r}")
    unknown = sorted(k for k in overrides if k not in _arguments(kind))
    if unknown:
        raise ValueError(f"model_overrides has {', '.join(map(repr, unknown))}, which {name} does not take; "
                         f"its arguments are: {', '.join(_arguments(kind))}")


#: Named recipes: what ``--recipe`` starts from. The GPU ones are written for one H100-class GPU;
#: benchmarks/README.md says what was measured with each and on what.
RECIPES: dict[str, TrainConfig] = {
    # The default: about a minute on two CPU cores, ~0.97 on the embedded digits.
    "digits": TrainConfig(),
    # The same with 14x14 patches: a 2x2 grid, 4 tokens + [CLS], under a third of the compute. Measured
    # on 2 Zen 5 cores (benchmarks/README.md, "The measured ladder"): 0.976/0.974/0.974 against 0.972/0.969/0.975, in
    # 0.57x the time. For a short workshop; the notebooks teach the 4x4 grid of the default.
    "digits-quick": TrainConfig(model_overrides={"patch_size": 14}),
    # CIFAR-10 from scratch on a GPU: the 'cifar10' preset, 64 tokens, bf16, compiled.
    "cifar10": TrainConfig(dataset="cifar10", preset="cifar10", epochs=200, batch_size=512, lr=1e-3,
                           weight_decay=0.05, warmup_epochs=5, label_smoothing=0.1, compile=True),
    # CIFAR-10 from scratch, fast: a plain ViT (linear patch embedding, no convolutions) with the regularisers
    # a ViT needs on 50,000 images, all run on the GPU (vit_tutorial.augment). 9 blocks of 192 with 12 heads
    # of 16 and MLP 384 (the same 2.7 M parameters as the 'cifar10' preset's 6 blocks). batch 500 divides
    # 50,000, so the compiled step sees one shape. Measured (benchmarks/cifar10_ladder.py, results in
    # benchmarks/results/cifar10-ladder-h200.json): 106 epochs, the most that fitted 5 minutes there, reached
    # 0.843 test accuracy on the CIFAR-10 JPEG q75 copy in 330 s of training on one H200, short of the 0.91
    # it was meant for. The GPU waited for the CPU to launch kernels most of each step (the README there says why).
    "cifar10-speedrun": TrainConfig(dataset="cifar10", preset="cifar10", epochs=106, batch_size=500, lr=1e-3,
                                    weight_decay=0.05, warmup_epochs=5, label_smoothing=0.1, compile=True,
                                    model_overrides=dict(depth=9, heads=12, dim_head=16, mlp_dim=384, dropout=0.0,
                                                         drop_path=0.1),
                                    trivial_augment=1.0, random_erasing=0.25, mixup=0.8, cutmix=1.0,
                                    ema_decay=0.999, test_flip=True),
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


def model_config_for(config: TrainConfig, data) -> dict:
    """The preset's ViT arguments with the overrides, and the data's image size, channels and classes.

    For ``model_kind='cnn'`` the preset is not used: ``ResidualCNN``'s defaults with the overrides.
    Every argument is written out, so the checkpoint rebuilds the same model whatever the defaults become.
    """
    if config.model_kind == "cnn":
        cfg = {k: p.default for k, p in inspect.signature(ResidualCNN).parameters.items()
               if p.default is not inspect.Parameter.empty}
        cfg.update(config.model_overrides)
    else:
        cfg = preset_kwargs(config.preset, **config.model_overrides)
    size = data.image_size[0] if data.image_size[0] == data.image_size[1] else data.image_size
    cfg.update(image_size=config.image_size or size, channels=data.channels, num_classes=len(data.classes))
    return cfg if config.model_kind == "vit" else {"kind": config.model_kind, **cfg}


def build_model(model_config: dict, vit: type = ViT):
    """The model a ``model_config`` describes: the one place ``train()`` and ``load_model`` build from.

    ``vit`` is the class for a ViT configuration: ``train()`` passes the name ``ViT`` it sees in its
    own module, so an experiment can swap in a subclass there (notebook 08's exercise does).
    """
    cfg = dict(model_config)
    kind = cfg.pop("kind", "vit")
    if kind not in MODEL_KINDS:
        raise ValueError(f"model_config has kind {kind!r}; known kinds: {', '.join(MODEL_KINDS)} (no kind: a ViT)")
    return (vit if kind == "vit" else MODEL_KINDS[kind])(**cfg)


__all__ = ["TrainConfig", "RECIPES", "RENAMED_FIELDS", "MODEL_KINDS", "recipe", "model_config_for", "build_model"]
