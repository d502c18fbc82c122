"""Notebooks 05 and 09: what a ViT needs to learn CIFAR-10 from scratch, done on the GPU a batch at a time.

A ViT has no built-in locality or translation invariance, so on 50,000 images it memorises unless
every image looks different every epoch. The usual tools are torchvision's TrivialAugment and
timm's Mixup, CutMix and random erasing; they work on one image at a time in data-loader worker
processes, which at tens of thousands of images a second is the bottleneck (notebook 09). Here each
one works on a whole ``uint8`` batch ``(B, C, H, W)`` already on the device, every image with its
own random choice, in a handful of tensor operations:

* :func:`trivial_augment`: one random photometric or geometric op per image, of random strength;
* :func:`random_erasing`: a random rectangle of some images painted over;
* :func:`mix_batch`: Mixup or CutMix, which blend pairs of images and their labels;
* :class:`ModelEMA`: a running average of the weights, evaluated instead of the last weights;
* :func:`flip_averaged_logits`: the average of the predictions for an image and its mirror image.

The random numbers come from the run's own CPU generator, like the shuffles and crops of
``data.augment_batch``, so a run is the same on any device and resumes exactly; each call moves its
draws to the device in one copy that does not stall the GPU (``devices.host_to_device``).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from .devices import host_to_device

#: The ops :func:`trivial_augment` picks from, one per image, each equally likely.
TRIVIAL_OPS = ("identity", "brightness", "contrast", "saturation", "sharpness", "posterize", "solarize",
               "autocontrast", "rotate", "shear_x", "shear_y", "translate_x", "translate_y")

#: What strength 1 means for each op with a magnitude (a random fraction of it, either sign, is applied).
#: The ranges of RandAugment's and TrivialAugment's usual settings for 32x32 images.
MAX_MAGNITUDE = {"brightness": 0.9, "contrast": 0.9, "saturation": 0.9, "sharpness": 0.9,  # factor 1 +- this
                 "posterize": 4,  # bits removed: 8 bits kept at magnitude 0, 4 at full strength
                 "solarize": 256,  # how far the threshold drops below 256 (256: nothing is inverted)
                 "rotate": 30.0,  # degrees
                 "shear_x": 0.3, "shear_y": 0.3,  # shear factor
                 "translate_x": 0.3, "translate_y": 0.3}  # fraction of the image's width or height

_GREY = (0.299, 0.587, 0.114)  # ITU-R 601 luma weights: how PIL and torchvision turn RGB into grey


def _check_batch(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.dtype != torch.uint8:
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} takes a uint8 batch of shape (batch, channels, height, width), got {got}")


def _check_fraction(name: str, value: float, top: float = 1.0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
        raise ValueError(f"{name} must be a number from 0 to {top:g}, got {value!r}")


def _uniform(generator: torch.Generator | None, shape: tuple, device) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn on the CPU (reproducible on any device), moved in one copy."""
    return host_to_device(torch.rand(shape, generator=generator), device)


def _grey(img: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` float -> ``(B, 1, H, W)`` luma (the image itself when it has one channel)."""
    if img.shape[1] != 3:
        return img.mean(dim=1, keepdim=True)
    w = host_to_device(torch.tensor(_GREY, dtype=img.dtype), img.device).view(1, 3, 1, 1)
    return (img * w).sum(dim=1, keepdim=True)


def _blend(img: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``other + factor * (img - other)``, per image, clamped to the pixel range (factor 1: unchanged)."""
    return (other + factor.view(-1, 1, 1, 1) * (img - other)).clamp_(0, 255)


def _smoothed(img: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter on the inside pixels, the border kept: what 'sharpness' blends away from."""
    c = img.shape[1]
    k = host_to_device(torch.tensor([[1., 1., 1.], [1., 5., 1.], [1., 1., 1.]], dtype=img.dtype) / 13, img.device)
    inner = F.conv2d(img, k.expand(c, 1, 3, 3), groups=c)
    out = img.clone()
    out[..., 1:-1, 1:-1] = inner
    return out


def trivial_augment(x: torch.Tensor, generator: torch.Generator | None = None, strength: float = 1.0,
                    fill: int = 0) -> torch.Tensor:
    """TrivialAugment on a uint8 batch: each image gets one op from ``TRIVIAL_OPS``, at a random strength.

    TrivialAugment (Müller and Hutter, 2021) has no settings to search: per image, pick one op
    uniformly and a magnitude uniformly. ``strength`` scales every magnitude (``MAX_MAGNITUDE``):
    0 leaves every image as it was, 1 is the usual range. The ops without a magnitude
    (autocontrast) are blended in by ``min(1, strength)``. Equalize, which PIL's version also has,
    is left out: a per-image histogram is awkward to batch and its effect is close to autocontrast's.

    Every image is computed through every op with its own parameters, the identity for the ops it
    did not draw; on 32x32 images that costs less than one launch per op per image would. Geometric
    ops resample bilinearly and fill what comes in from outside with ``fill``.
    """
    _check_batch(x, "trivial_augment")
    _check_fraction("strength", strength)
    b, c, h, w = x.shape
    u = _uniform(generator, (b, 3), x.device)
    op = (u[:, 0] * len(TRIVIAL_OPS)).long().clamp_(max=len(TRIVIAL_OPS) - 1)
    signed = u[:, 1] * strength * torch.where(u[:, 2] < 0.5, -1.0, 1.0)  # in (-strength, strength)
    magnitude = u[:, 1] * strength  # in [0, strength)

    def amount(name: str, value: torch.Tensor, identity: float = 0.0) -> torch.Tensor:
        return torch.where(op == TRIVIAL_OPS.index(name), value, torch.full_like(value, identity))

    img = x.float()
    # -- geometric: one affine map per image (output pixel -> where it samples the input)
    angle = amount("rotate", signed * math.radians(MAX_MAGNITUDE["rotate"]))
    cos, sin = torch.cos(angle), torch.sin(angle)
    shx, shy = (amount(n, signed * MAX_MAGNITUDE[n]) for n in ("shear_x", "shear_y"))
    tx, ty = (amount(n, signed * MAX_MAGNITUDE[n] * 2) for n in ("translate_x", "translate_y"))  # grid units
    theta = torch.stack([torch.stack([cos, -sin + shx, tx], 1), torch.stack([sin + shy, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, [b, c, h, w], align_corners=False)
    if fill:
        img = F.grid_sample(img - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
    else:
        img = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # -- photometric: each a blend towards something, by a factor that is 1 for the other images
    img = _blend(img, torch.zeros_like(img), amount("brightness", 1 + signed * MAX_MAGNITUDE["brightness"], 1))
    img = _blend(img, _grey(img).mean(dim=(2, 3), keepdim=True).expand_as(img),
                 amount("contrast", 1 + signed * MAX_MAGNITUDE["contrast"], 1))
    img = _blend(img, _grey(img).expand_as(img), amount("saturation", 1 + signed * MAX_MAGNITUDE["saturation"], 1))
    img = _blend(img, _smoothed(img), amount("sharpness", 1 + signed * MAX_MAGNITUDE["sharpness"], 1))
    img = img.round_()
    step = 2 ** amount("posterize", (magnitude * MAX_MAGNITUDE["posterize"]).round()).view(-1, 1, 1, 1)
    img = torch.div(img, step, rounding_mode="floor") * step  # keep the top 8 - k bits
    threshold = amount("solarize", 256 - magnitude * MAX_MAGNITUDE["solarize"], 256).view(-1, 1, 1, 1)
    img = torch.where(img >= threshold, 255 - img, img)
    lo, hi = img.amin(dim=(2, 3), keepdim=True), img.amax(dim=(2, 3), keepdim=True)
    stretched = torch.where(hi > lo, (img - lo) * 255 / (hi - lo).clamp_(min=1), img)
    img = _blend(stretched, img, amount("autocontrast", torch.full_like(magnitude, min(1.0, strength))))
    return img.round_().clamp_(0, 255).to(torch.uint8)


def random_erasing(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.25,
                   area: tuple[float, float] = (0.02, 1 / 3), aspect: tuple[float, float] = (0.3, 3.3)) -> torch.Tensor:
    """Paint one random rectangle of each image, with probability ``p``, in a random colour.

    Random erasing (Zhong et al., 2020) hides a part of the object, so the model cannot lean on any
    one region. The rectangle covers a random fraction ``area`` of the image, with a random aspect
    ratio (drawn on a log scale, so tall and wide are equally likely); one colour per image.
    """
    _check_batch(x, "random_erasing")
    _check_fraction("p", p)
    if not (0 < area[0] <= area[1] <= 1 and 0 < aspect[0] <= aspect[1]):
        raise ValueError(f"random_erasing needs 0 < area[0] <= area[1] <= 1 and 0 < aspect[0] <= aspect[1], "
                         f"got area={area}, aspect={aspect}")
    b, c, h, w = x.shape
    u = _uniform(generator, (b, 5 + c), x.device)
    size = h * w * (area[0] + (area[1] - area[0]) * u[:, 1])
    ratio = torch.exp(math.log(aspect[0]) + (math.log(aspect[1]) - math.log(aspect[0])) * u[:, 2])
    eh = (size * ratio).sqrt().round().clamp(1, h)
    ew = (size / ratio).sqrt().round().clamp(1, w)
    top = (u[:, 3] * (h - eh + 1)).floor()
    left = (u[:, 4] * (w - ew + 1)).floor()
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + eh).view(-1, 1, 1))
              & (cols >= left.view(-1, 1, 1)) & (cols < (left + ew).view(-1, 1, 1)))
    inside &= (u[:, 0] < p).view(-1, 1, 1)
    colour = (u[:, 5:] * 256).floor().clamp_(max=255).to(torch.uint8).view(b, c, 1, 1)
    return torch.where(inside[:, None], colour, x)


def sample_beta(alpha: float, generator: torch.Generator | None = None) -> float:
    """One draw from Beta(alpha, alpha) with the run's generator (Jöhnk's method: two uniforms, accept or retry).

    Why not ``torch.distributions.Beta``: it cannot take a generator, so a run's mixing would not
    be reproducible from its seed, nor resume exactly.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    while True:
        u, v = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
        a, b = u ** (1 / alpha), v ** (1 / alpha)
        if 0 < a + b <= 1:
            return a / (a + b)


def mix_batch(x: torch.Tensor, labels: torch.Tensor, num_classes: int, generator: torch.Generator | None = None,
              mixup: float = 0.0, cutmix: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix on a float batch: every image blended with its neighbour in the batch.

    Returns the mixed images and soft targets ``(B, num_classes)`` whose rows sum to 1: each
    label weighted by how much of its image is in the mix. ``mixup`` and ``cutmix`` are the
    ``alpha`` of the Beta distribution the mixing share is drawn from (0: that one is off); with
    both on, each batch uses one of them, chosen by a coin flip. Mixup (Zhang et al., 2018) averages
    two images; CutMix (Yun et al., 2019) pastes a rectangle of one into the other, and the share
    is the rectangle's true area after it is clipped to the image.
    """
    for name, alpha in (("mixup", mixup), ("cutmix", cutmix)):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha < 0:
            raise ValueError(f"{name} must be a number >= 0 (the Beta distribution's alpha; 0 is off), got {alpha!r}")
    if not x.is_floating_point() or x.dim() != 4 or labels.shape != (x.shape[0],):
        raise ValueError(f"mix_batch takes a float batch (B, C, H, W) and B labels, got {x.dtype} "
                         f"{tuple(x.shape)} and labels {tuple(labels.shape)}")
    targets = F.one_hot(labels, num_classes).to(x.dtype)
    if not (mixup or cutmix):
        return x, targets
    use_cutmix = cutmix > 0 and (not mixup or torch.rand(1, generator=generator).item() < 0.5)
    share = sample_beta(cutmix if use_cutmix else mixup, generator)  # of each image itself
    partner = x.roll(1, dims=0)
    if use_cutmix:
        h, w = x.shape[-2:]
        cy, cx = (torch.rand(2, generator=generator) * torch.tensor([h, w])).tolist()
        side = math.sqrt(1 - share)
        top, bottom = int(max(0, round(cy - side * h / 2))), int(min(h, round(cy + side * h / 2)))
        left, right = int(max(0, round(cx - side * w / 2))), int(min(w, round(cx + side * w / 2)))
        x = x.clone()
        x[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
        share = 1 - (bottom - top) * (right - left) / (h * w)
    else:
        x = x * share + partner * (1 - share)
    return x, targets * share + targets.roll(1, dims=0) * (1 - share)


class ModelEMA:
    """A running average of a model's weights: ``ema = d * ema + (1 - d) * weights`` after every step.

    Late in training the weights keep jittering around a good point with every noisy batch; their
    average sits closer to it, so the averaged model usually tests better than the last weights,
    for free. The decay ``d`` starts small and grows to ``decay`` (``min(decay, (1 + t) / (10 + t))``
    at update ``t``), so the first updates do not keep the random start for thousands of steps.
    Buffers (fixed position tables) are copied, not averaged.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay < 1:
            raise ValueError(f"decay must be a number between 0 and 1 (e.g. 0.999), got {decay!r}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.updates = float(decay), 0

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.current_decay()
        self.updates += 1
        ema = dict(self.module.named_parameters())
        pairs = [(ema[n], p.detach()) for n, p in model.named_parameters()]
        mine, theirs = [a for a, _ in pairs], [b for _, b in pairs]
        if hasattr(torch, "_foreach_lerp_"):  # one call for every tensor: launches matter on a GPU
            torch._foreach_lerp_(mine, theirs, 1 - d)
        else:
            for a, b in pairs:
                a.lerp_(b, 1 - d)
        for (_, mine_b), (_, theirs_b) in zip(self.module.named_buffers(), model.named_buffers()):
            mine_b.copy_(theirs_b)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


def flip_averaged_logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The mean of the logits for ``x`` and for its mirror image: test-time augmentation for free.

    A mirrored cat is still a cat, and training showed the model both; averaging the two answers
    cancels some of the errors that depend on which way the object faces.
    """
    return (model(x) + model(x.flip(-1))) / 2


__all__ = ["TRIVIAL_OPS", "MAX_MAGNITUDE", "trivial_augment", "random_erasing", "sample_beta", "mix_batch",
           "ModelEMA", "flip_averaged_logits"]
