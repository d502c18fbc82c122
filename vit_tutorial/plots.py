"""Every notebook: the pictures, and notebook 04's block diagram drawn from forward hooks.

Every figure has a title and labelled axes.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .attention import Attention
from .patches import PatchEmbedding
from .vit import Block


def plot_history(history: dict, title: str = "training"):
    """Loss and accuracy per epoch, train and test side by side."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ep = history["epoch"]
    ax1.plot(ep, history["train_loss"], label="train (with label smoothing)")
    ax1.plot(ep, history["test_loss"], label="test")
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax2.plot(ep, history["train_accuracy"], label="train (augmented)")
    ax2.plot(ep, history["test_accuracy"], label="test")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    if history["test_accuracy"]:
        ax2.set_title(f"accuracy (final test {history['test_accuracy'][-1]:.3f})")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true, y_pred, num_classes: int) -> torch.Tensor:
    """Counts ``[true, predicted]``."""
    y_true, y_pred = torch.as_tensor(y_true).long(), torch.as_tensor(y_pred).long()
    return torch.bincount(y_true * num_classes + y_pred, minlength=num_classes ** 2).view(num_classes, num_classes)


def plot_confusion(cm, classes, title: str = "confusion matrix"):
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(0.55 * len(classes) + 2, 0.55 * len(classes) + 1.5))
    im = ax.imshow(cm, cmap="Blues")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title=title)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.colorbar(im, ax=ax, label="images")
    fig.tight_layout()
    return fig


def show_images(images, titles=None, ncols: int = 8, title: str | None = None, cmap="gray"):
    """A grid of images: ``uint8``/float tensors ``(N, C, H, W)`` or arrays ``(N, H, W[, C])``."""
    images = [_to_hwc(im) for im in images]
    nrows = max(1, -(-len(images) // ncols))
    row_h = 1.4 + (0.35 if titles is not None else 0.0)  # room for each row's titles
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.4 * ncols, row_h * nrows + (0.4 if title else 0.0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, im in enumerate(images):
        ax = axes.flat[k]
        ax.imshow(im.squeeze(-1) if im.shape[-1] == 1 else im, cmap=cmap)
        if titles is not None:
            ax.set_title(titles[k], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _to_hwc(im):
    if isinstance(im, torch.Tensor):
        im = im.detach().cpu()
        if im.dim() == 3 and im.shape[0] in (1, 3):
            im = im.permute(1, 2, 0)
        im = im.numpy()
    im = np.asarray(im)
    return im[..., None] if im.ndim == 2 else im


def draw_block_diagram(model, images: torch.Tensor):
    """A ViT drawn from its own modules: the whole model, and inside its first encoder block (notebook 04).

    Why hooks and not a hand-drawn picture: a forward hook on each part records the shape it really
    received and returned for ``images``, so the diagram cannot disagree with the code. Where the shape
    changes *between* two modules, ``forward`` did something outside any module (the CLS token and the
    positions joining, the pooling); those steps are labelled from ``model.pool``. Returns the figure.
    """
    layers = getattr(getattr(model, "transformer", None), "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or not hasattr(model, "to_patch_embedding"):
        raise ValueError(f"draw_block_diagram draws a vit_tutorial ViT; got a {type(model).__name__}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"images must be a batch (b, c, h, w); got {getattr(images, 'shape', type(images))}")
    top = {}
    for name, m in model.named_children():
        parts = {f"{name}.{n}": c for n, c in m.named_children() if n != "layers"} if name == "transformer" else {}
        top.update(parts or {name: m})
    top.update({f"transformer.layers.{i}": block for i, block in enumerate(layers)})
    whole = _hooked_shapes(model, images, top)
    inside = _hooked_shapes(model, images, _working_parts(layers[0], "transformer.layers.0"))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 7))
    _flow(ax1, model, _model_steps(model, whole), "the whole ViT")
    steps, skips = _block_steps(model, inside, "transformer.layers.0.")
    _flow(ax2, model, steps, "inside one encoder block (pre-norm)", skips)
    fig.suptitle(f"ViT drawn from its own modules: each shape is what a forward hook saw for a batch of "
                 f"{len(images)} images\n(orange: the residual connections, z + f(LN(z)))", fontsize=10)
    fig.tight_layout()
    return fig


def _hooked_shapes(model, images, modules: dict) -> list:
    """One forward pass with a hook on each of ``modules`` (name -> module): what ran, in order, as
    ``(name, module, input shape, output shape)``. The hooks are removed again, even after an error."""
    ran, handles = [], []
    for name, m in modules.items():
        handles.append(m.register_forward_hook(
            lambda m, args, out, name=name: ran.append((name, m, tuple(args[0].shape), tuple(out.shape)))))
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()
    return ran


def _working_parts(module, prefix: str) -> dict:
    """The modules that do the work, in definition order: layers without children, Attention as one unit."""
    found, skip = {}, ()
    for name, m in module.named_modules(prefix=prefix):
        if skip and name.startswith(skip):
            continue
        if isinstance(m, Attention) or not list(m.children()):
            found[name] = m
            skip = name + "." if isinstance(m, Attention) else ()
    return found


def _model_steps(model, whole: list) -> list:
    """(label, code name, shape) for each stage of the whole model, with the steps ``forward`` does itself."""
    steps = [("input images", "", whole[0][2])]
    for (name, m, shape_in, shape_out), previous in zip(whole, [None] + whole[:-1]):
        if previous is not None and previous[3] != shape_in:  # something happened between two modules
            what = ("prepend [CLS]\nadd pos_embedding" if len(shape_in) == 3 else
                    f"pool = {model.pool!r}\n" + ("token 0 ([CLS])" if model.pool == "cls" else
                                                  "mean of the patch tokens"))
            steps.append((what, "", shape_in))
        steps.append((_describe(model, name, m), name, shape_out))
    return steps


def _block_steps(model, inside: list, prefix: str) -> tuple[list, list]:
    """The block's stages, with a "+" after each residual branch, and the (from, to) of each skip arrow."""
    steps, skips, start = [("block input z", "", inside[0][2])], [], 0
    shorts = [name[len(prefix):] for name, *_ in inside]
    for k, ((name, m, _, shape_out), short) in enumerate(zip(inside, shorts)):
        if short.startswith("norm"):
            start = len(steps) - 1
        steps.append((_describe(model, name, m), short, shape_out))
        if not short.startswith("norm") and (k + 1 == len(shorts) or shorts[k + 1].startswith("norm")):
            steps.append(("+", "", shape_out))  # the branch ends: its output is added to its input
            skips.append((start, len(steps) - 1))
    return steps, skips


def _describe(model, name: str, m) -> str:
    if isinstance(m, torch.nn.Linear):
        return f"Linear {m.in_features} → {m.out_features}"
    if isinstance(m, torch.nn.Dropout):
        return f"Dropout (p = {m.p:g})"
    if isinstance(m, Attention):
        return f"Attention: {m.heads} heads × {m.dim_head}"
    if isinstance(m, PatchEmbedding):
        how = {"linear": "Linear", "conv": "Conv2d"}.get(m.kind, m.kind.replace("_", " "))
        return f"PatchEmbedding\n{m.patch_size[0]}×{m.patch_size[1]} patches → {how}"
    if isinstance(m, Block):
        return f"encoder Block {int(name.rsplit('.', 1)[1]) + 1} of {len(model.transformer.layers)}"
    return type(m).__name__


def _axis_names(model, shape: tuple) -> str:
    """Name each axis of a shape: the batch first, then what the size means in this model."""
    if len(shape) == 4:
        return "(batch, channels, height, width)"
    n = model.to_patch_embedding.num_patches
    block = model.transformer.layers[0]
    names = {n: "patches", n + 1: "1 + patches", model.mlp_head.in_features: "dim",
             model.mlp_head.out_features: "classes", 3 * block.attn.heads * block.attn.dim_head: "3 · heads · dim_head",
             block.mlp.net[0].out_features: "mlp_dim"}
    return "(" + ", ".join(["batch"] + [names.get(s, str(s)) for s in shape[1:]]) + ")"


def _flow(ax, model, steps: list, title: str, skips=()):
    """Draw ``steps`` (label, code name, shape) top to bottom; ``skips`` are (from, to) residual arrows."""
    for i, (label, code, shape) in enumerate(steps):
        plus = label == "+"
        ax.text(0, -i, label, ha="center", va="center", fontsize=12 if plus else 8.5,
                bbox=dict(boxstyle="circle" if plus else "round,pad=0.35",
                          fc="white" if plus else "#dbe9f6", ec="#1f4e79"))
        if code:
            ax.text(-2.6, -i, code, ha="right", va="center", fontsize=7, family="monospace", color="#555")
        if shape:
            ax.text(1.9, -i, f"{shape}\n{_axis_names(model, shape)}", ha="left", va="center", fontsize=7,
                    linespacing=1.1)
        if i:
            ax.annotate("", xy=(0, -i + 0.3), xytext=(0, -i + 1 - 0.3), arrowprops=dict(arrowstyle="->", color="#1f4e79"))
    for a, b in skips:  # from the main path, out to the left, down, and into the "+"
        x, split = -2.1, -a - 0.5
        ax.plot([0, x, x], [split, split, -b], color="tab:orange", lw=1.3)
        ax.plot([0], [split], "o", ms=3, color="tab:orange")
        ax.annotate("", xy=(-0.2, -b), xytext=(x, -b), arrowprops=dict(arrowstyle="->", color="tab:orange", lw=1.3))
    ax.set(xlim=(-5.2, 5.2), ylim=(-len(steps) + 0.4, 0.7))
    ax.set_title(title, fontsize=10)
    ax.axis("off")
