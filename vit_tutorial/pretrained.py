"""Notebook 07: the real, pretrained ViT, in this package's own class.

torchvision's ``VisionTransformer`` (``vit_b_16``, ``vit_b_32``, ``vit_l_16``,
``vit_l_32``, ``vit_h_14``) is the paper's architecture with different names.
:func:`from_torchvision` maps every one of its weights into a
:class:`vit_tutorial.ViT`, so the model built by hand in notebooks 01-04 can run
ImageNet weights, and everything the series draws (attention maps, rollout)
works on it too.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch
from torch import nn

from . import data
from .data import DataUnavailableError, network_timeout
from .validate import first_line
from .vit import ViT

TORCHVISION_VITS = ("vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14")


def weights_dir() -> Path:
    """Where downloaded weights live: ``weights/`` in the downloads folder (a clone's git-ignored
    ``data/downloads/``, else the user's cache folder; copy it to prepare an offline room)."""
    return data.DOWNLOAD_DIR / "weights"


def torchvision_vit(name: str = "vit_b_16", pretrained: bool = True,
                    progress: bool = False) -> tuple[ViT, list[str] | None]:
    """torchvision's ``name`` as a :class:`ViT` in eval mode, and its ImageNet class names.

    With ``pretrained``, the ImageNet-1k weights (``IMAGENET1K_V1``) are read from
    :func:`weights_dir`, downloaded there first if missing; offline and without a copy this
    raises :class:`DataUnavailableError` with one line saying which file to put where.
    Without ``pretrained``: random weights and ``None`` for the class names (no network used).
    """
    import torchvision.models as tvm

    if name not in TORCHVISION_VITS:
        raise ValueError(f"unknown torchvision ViT {name!r}; choose one of: {', '.join(TORCHVISION_VITS)}")
    builder = getattr(tvm, name)
    if not pretrained:
        return from_torchvision(builder().eval()), None
    weights = tvm.get_model_weights(name).IMAGENET1K_V1
    folder = weights_dir()
    filename = weights.url.rsplit("/", 1)[-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with network_timeout():
            state = torch.hub.load_state_dict_from_url(weights.url, model_dir=str(folder), progress=progress,
                                                       check_hash=True, weights_only=True)
    except (OSError, RuntimeError) as e:  # urllib's URLError is an OSError
        reason = first_line(getattr(e, "reason", None) or e, 120)
        raise DataUnavailableError(
            f"the ImageNet weights of {name} are not in {folder} and could not be downloaded "
            f"({type(e).__name__}: {reason}). Put {filename} from {weights.url} into {folder}.") from None
    model = builder()
    model.load_state_dict(state)
    return from_torchvision(model.eval()), list(weights.meta["categories"])


def notebook_torchvision_vit(name: str = "vit_b_16") -> tuple[ViT | None, list[str] | None, str]:
    """:func:`torchvision_vit` for a notebook: ``(model, class names, line to print)``, or ``(None, None, why)``.

    A notebook's saved output is read by others (on GitHub, in the docs), so this keeps out of it
    what only describes the machine that ran it: torch.hub's download messages, which name the
    local folder, and the network error of an offline run. Instead of raising when the weights
    are missing, it returns ``None`` and a short text that says how to get them, with the folder
    shown relative to the project (or to ``~``), so the notebook can skip what needs them.
    """
    import torchvision.models as tvm

    if name not in TORCHVISION_VITS:
        raise ValueError(f"unknown torchvision ViT {name!r}; choose one of: {', '.join(TORCHVISION_VITS)}")
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            model, categories = torchvision_vit(name)
    except DataUnavailableError:
        url = tvm.get_model_weights(name).IMAGENET1K_V1.url
        filename, folder = url.rsplit("/", 1)[-1], weights_dir()
        if (folder / filename).is_file():
            return None, None, (f"{filename} is in {_shown(folder)} but could not be loaded: delete it, then run "
                                "`python -m vit_tutorial download` again while online.")
        return None, None, (f"The ImageNet weights of {name} are not here, so the cells that need them skip.\n"
                            "To get them: run `python -m vit_tutorial download` once while online, open this "
                            f"notebook in Colab, or put {filename} from {url} into {_shown(folder)}.")
    n = sum(p.numel() for p in model.parameters())
    return model, categories, f"ImageNet weights loaded: {name} as a ViT with {n:,} parameters, {len(categories)} classes"


def _shown(path: Path) -> str:
    """``path`` as a reader of someone else's notebook should see it: relative to the project, or to ``~``."""
    for base, prefix in ((data.DATA_DIR.parent, ""), (Path.home(), "~/")):
        with contextlib.suppress(ValueError):
            return prefix + path.relative_to(base).as_posix()
    return str(path)


def from_torchvision(model: nn.Module) -> ViT:
    """A :class:`ViT` with exactly the weights of a torchvision ``VisionTransformer``.

    The result computes the same logits (up to float rounding) and is in the
    same train/eval mode as ``model``. Models with a ``representation_size``
    (an extra pre-logits layer, used by no torchvision weights) are refused.
    """
    from torchvision.models.vision_transformer import VisionTransformer

    if not isinstance(model, VisionTransformer):
        raise ValueError(f"expected a torchvision VisionTransformer (e.g. vit_b_16()), got {type(model).__name__}")
    if getattr(model, "representation_size", None) is not None:
        raise ValueError("torchvision ViTs with representation_size (a pre-logits layer) are not supported")
    first = model.encoder.layers[0]
    heads = first.self_attention.num_heads
    vit = ViT(image_size=model.image_size, patch_size=model.patch_size, num_classes=model.num_classes,
              dim=model.hidden_dim, depth=len(model.encoder.layers), heads=heads,
              mlp_dim=model.mlp_dim, dim_head=model.hidden_dim // heads, pool="cls",
              qkv_bias=True, patch_embed="conv", pos_embedding="learned", norm_eps=first.ln_1.eps)
    vit.load_state_dict(_map_state(model), strict=True)
    return vit.train(model.training)


def _map_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """torchvision parameter names -> this package's names; every weight is moved exactly once."""
    src = model.state_dict()
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        used.add(key)
        return src[key]

    out = {
        "cls_token": take("class_token"),
        "pos_embedding": take("encoder.pos_embedding"),
        "to_patch_embedding.proj.0.weight": take("conv_proj.weight"),
        "to_patch_embedding.proj.0.bias": take("conv_proj.bias"),
        "transformer.norm.weight": take("encoder.ln.weight"),
        "transformer.norm.bias": take("encoder.ln.bias"),
        "mlp_head.weight": take("heads.head.weight"),
        "mlp_head.bias": take("heads.head.bias"),
    }
    pairs = {  # ours -> torchvision's, inside one encoder block
        "norm1.{}": "ln_1.{}", "norm2.{}": "ln_2.{}",
        "attn.to_qkv.{}": "self_attention.in_proj_{}",  # same (three h d) layout of the output features
        "attn.to_out.0.{}": "self_attention.out_proj.{}",
        "mlp.net.0.{}": "mlp.0.{}", "mlp.net.3.{}": "mlp.3.{}",
    }
    for i in range(len(model.encoder.layers)):
        for ours, theirs in pairs.items():
            for p in ("weight", "bias"):
                out[f"transformer.layers.{i}." + ours.format(p)] = take(
                    f"encoder.layers.encoder_layer_{i}." + theirs.format(p))
    if unmapped := sorted(set(src) - used):
        raise ValueError(f"torchvision weights with no place in ViT: {unmapped[:5]}")
    return out
