"""Every notebook: the pictures. Every figure has a title and labelled axes."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


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
