"""Notebook 04: the Vision Transformer itself, and the paper's model sizes.

image -> patch tokens -> prepend [CLS] -> add positions -> L pre-norm encoder
blocks -> final LayerNorm -> pool ([CLS] or mean) -> linear head.

The constructor takes the keyword arguments of lucidrains/vit-pytorch's ``ViT``
(``image_size, patch_size, num_classes, dim, depth, heads, mlp_dim, pool,
channels, dim_head, dropout, emb_dropout``), so code written for it runs here;
everything after those is an optional extra whose default keeps that call working.
Training, data and checkpoints live in their own modules: this one is only the model.
"""
from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

from .attention import ATTENTION_IMPLS, Attention
from .patches import PATCH_EMBED_KINDS, PatchEmbedding, check_patch_grid, posemb_sincos_2d
from .validate import choice, fraction, positive_int

POOLS = ("cls", "mean")
POS_EMBEDDINGS = ("learned", "sincos", "none")


class FeedForward(nn.Module):
    """The per-token MLP: widen to ``hidden_dim``, GELU, project back."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DropPath(nn.Module):
    """Stochastic depth: in training, skip a residual branch for a random ``p`` of the images.

    The kept branches are scaled by ``1 / (1 - p)`` so their expected sum is unchanged, and in eval
    mode nothing is dropped. Each image in a batch trains a randomly shallower network; the full
    one at test time behaves like an average of them (Huang et al., 2016; DeiT trains with it).
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class Block(nn.Module):
    """One pre-norm encoder block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))``.

    Normalising *before* each sub-layer keeps the residual path an identity,
    which is why ViTs train without the warm-up tricks post-norm needs.
    ``drop_path`` > 0 skips each branch for that share of the images while training (:class:`DropPath`).
    """

    def __init__(self, dim, heads, dim_head, mlp_dim, dropout=0.0, qkv_bias=False, attn_impl="sdpa",
                 norm_eps=1e-5, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, heads=heads, dim_head=dim_head, dropout=dropout,
                              qkv_bias=qkv_bias, impl=attn_impl)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = FeedForward(dim, mlp_dim, dropout)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None  # None: the block prints as before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_path is None:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class Transformer(nn.Module):
    """``depth`` encoder blocks and the final LayerNorm (the paper's ``LN(z_L)``).

    ``drop_path`` is the stochastic-depth rate of the last block; it grows linearly from 0 in the
    first, since early blocks compute what every later one builds on (as in DeiT).
    """

    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout=0.0, qkv_bias=False,
                 attn_impl="sdpa", final_norm=True, norm_eps=1e-5, drop_path=0.0):
        super().__init__()
        rates = [drop_path * i / max(1, depth - 1) for i in range(depth)]
        self.layers = nn.ModuleList(
            Block(dim, heads, dim_head, mlp_dim, dropout, qkv_bias, attn_impl, norm_eps, rate) for rate in rates)
        self.norm = nn.LayerNorm(dim, eps=norm_eps) if final_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no argument (and means CUDA)
        return torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()


def prepend_cls_token(tokens: torch.Tensor, cls_token: torch.Tensor) -> torch.Tensor:
    """``(b, n, dim)`` patch tokens -> ``(b, 1 + n, dim)``, the learned ``(1, 1, dim)`` [CLS] first.

    The one place the [CLS] token joins the sequence: ``expand`` gives every image the same
    vector without copying it, and the head reads position 0 at the end.
    """
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)


def pool_tokens(x: torch.Tensor, pool: str) -> torch.Tensor:
    """``(b, 1 + n, dim)`` encoder output -> ``(b, dim)``: the [CLS] token, or the mean of the patch tokens."""
    return x[:, 1:].mean(dim=1) if pool == "mean" else x[:, 0]


def check_vit_arguments(image_size, patch_size, num_classes, dim, depth, heads, mlp_dim, pool, channels,
                        dim_head, dropout, emb_dropout, pos_embedding, patch_embed, attn_impl, norm_eps,
                        drop_path=0.0) -> None:
    """Raise a ``ValueError`` that names the first bad argument of :class:`ViT` and what would be valid."""
    check_patch_grid(image_size, patch_size)
    for name, value in (("num_classes", num_classes), ("dim", dim), ("depth", depth), ("heads", heads),
                        ("mlp_dim", mlp_dim), ("channels", channels), ("dim_head", dim_head)):
        positive_int(name, value)
    fraction("dropout", dropout)
    fraction("emb_dropout", emb_dropout)
    if isinstance(drop_path, bool) or not isinstance(drop_path, numbers.Real) or not 0 <= drop_path < 1:
        raise ValueError(f"drop_path must be a number from 0 up to (not including) 1, got {drop_path!r}")
    choice("pool", pool, POOLS)
    choice("pos_embedding", pos_embedding, POS_EMBEDDINGS)
    choice("patch_embed", patch_embed, PATCH_EMBED_KINDS)
    choice("attn_impl", attn_impl, ATTENTION_IMPLS)
    if isinstance(norm_eps, bool) or not isinstance(norm_eps, numbers.Real) or not 0 < norm_eps < 1:
        raise ValueError(f"norm_eps must be a small positive number, got {norm_eps!r}")
    if pos_embedding == "sincos" and dim % 4:
        raise ValueError(f"pos_embedding='sincos' needs dim divisible by 4, got dim={dim}")


class ViT(nn.Module):
    """Vision Transformer (Dosovitskiy et al., 2021), with lucidrains/vit-pytorch's constructor.

    The data path is ``forward_features`` (image -> patch tokens -> [CLS] + positions -> encoder ->
    final norm) then ``forward_head`` (pool -> linear head). Extras beyond the original keyword
    arguments: ``qkv_bias`` (the paper and torchvision use biases), ``pos_embedding``
    (``'learned'`` | ``'sincos'`` | ``'none'``), ``patch_embed`` (``'linear'`` | ``'conv'`` |
    ``'conv_stem'``, a small convolutional stem: the hybrid of notebook 10),
    ``attn_impl`` (``'sdpa'`` | ``'einsum'``), ``final_norm`` and ``norm_eps`` (LayerNorm's
    epsilon: torchvision and the paper's checkpoints use 1e-6) and ``drop_path`` (stochastic depth,
    the rate of the last block; see :class:`Transformer`).
    """

    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim,
                 pool="cls", channels=3, dim_head=64, dropout=0.0, emb_dropout=0.0,
                 qkv_bias=False, pos_embedding="learned", patch_embed="linear",
                 attn_impl="sdpa", final_norm=True, norm_eps=1e-5, drop_path=0.0):
        super().__init__()
        check_vit_arguments(image_size, patch_size, num_classes, dim, depth, heads, mlp_dim, pool, channels,
                            dim_head, dropout, emb_dropout, pos_embedding, patch_embed, attn_impl, norm_eps,
                            drop_path)
        self.pool, self.channels = pool, channels
        self.to_patch_embedding = PatchEmbedding(image_size, patch_size, dim, channels, patch_embed)
        self.image_size = self.to_patch_embedding.image_size
        n = self.to_patch_embedding.num_patches

        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if pos_embedding == "learned":
            self.pos_embedding = nn.Parameter(torch.empty(1, n + 1, dim))
        else:
            # Fixed table, not saved in checkpoints: it is rebuilt from the config.
            table = torch.zeros(1, n + 1, dim)
            if pos_embedding == "sincos":
                table[0, 1:] = posemb_sincos_2d(*self.to_patch_embedding.grid, dim)
            self.register_buffer("pos_embedding", table, persistent=False)
        self.dropout = nn.Dropout(emb_dropout)
        self.transformer = Transformer(dim, depth, heads, dim_head, mlp_dim, dropout,
                                       qkv_bias, attn_impl, final_norm, norm_eps, drop_path)
        self.mlp_head = nn.Linear(dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal(0.02) for weights and embeddings, zero biases: the usual ViT start."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # The patch projection gets LeCun-normal (std 1/sqrt(fan_in)), as in the paper's JAX code:
        # with std 0.02, a 7x7 grey patch would give tokens ~50x smaller than the position
        # embeddings, and the model would see positions instead of pixels. (A conv stem gets the same
        # for each of its convolutions; 'linear' and 'conv' have just one layer.)
        for proj in self.to_patch_embedding.modules():
            if isinstance(proj, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(proj.weight, std=proj.weight[0].numel() ** -0.5)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        if isinstance(self.pos_embedding, nn.Parameter):
            nn.init.trunc_normal_(self.pos_embedding, std=0.02)

    def check_input(self, img: torch.Tensor) -> None:
        """Raise a ``ValueError`` naming the expected shape and dtype if ``img`` cannot go through the model."""
        c, (h, w) = self.channels, self.image_size
        if not isinstance(img, torch.Tensor):
            raise ValueError(f"expected a torch.Tensor of shape (batch, {c}, {h}, {w}), got {type(img).__name__}")
        if img.dim() != 4 or tuple(img.shape[1:]) != (c, h, w):
            hint = " (add a batch dimension with img.unsqueeze(0))" if img.dim() == 3 else ""
            raise ValueError(f"expected input of shape (batch, {c}, {h}, {w}), got {tuple(img.shape)}{hint}")
        dtype = self.cls_token.dtype
        if img.dtype != dtype and not (img.is_floating_point() and _autocast_on(img.device.type)):
            how = ("scale it to floats first, e.g. vit_tutorial.data.normalize(img, mean, std)"
                   if not img.is_floating_point() else f"convert it with img.to({dtype})")
            raise ValueError(f"expected {dtype} input (the model's dtype), got {img.dtype}: {how}")

    def forward_features(self, img: torch.Tensor) -> torch.Tensor:
        """All tokens after the encoder and the final norm: ``(b, 1 + num_patches, dim)``."""
        self.check_input(img)
        x = prepend_cls_token(self.to_patch_embedding(img), self.cls_token) + self.pos_embedding
        return self.transformer(self.dropout(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Encoder output -> class logits ``(b, num_classes)``; ``pre_logits`` stops before the linear
        head and returns the pooled ``(b, dim)`` vector (what fine-tuning and analysis look at)."""
        x = pool_tokens(x, self.pool)
        return x if pre_logits else self.mlp_head(x)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(img))


def _paper(dim, depth, heads, mlp_dim, patch):
    return dict(image_size=224, patch_size=patch, num_classes=1000, dim=dim, depth=depth,
                heads=heads, mlp_dim=mlp_dim, dim_head=dim // heads, qkv_bias=True,
                patch_embed="conv", norm_eps=1e-6)  # LayerNorm epsilon of the paper's checkpoints


#: Name -> ``ViT`` keyword arguments. The first five are the paper's (Ti and S from DeiT)
#: at 224x224 with 1000 classes; the last two are the ones the series trains.
PRESETS: dict[str, dict] = {
    "ViT-Ti/16": _paper(192, 12, 3, 768, 16),
    "ViT-S/16": _paper(384, 12, 6, 1536, 16),
    "ViT-B/16": _paper(768, 12, 12, 3072, 16),
    "ViT-L/16": _paper(1024, 24, 16, 4096, 16),
    "ViT-H/14": _paper(1280, 32, 16, 5120, 14),
    # 28x28 grey digits: 7x7 patches -> 16 tokens + CLS, small enough to train on a CPU in a minute
    # (chosen by measured runs on 2 CPU cores: benchmarks/README.md, "The main job on a CPU").
    "digits": dict(image_size=28, patch_size=7, num_classes=10, channels=1, dim=96, depth=4,
                   heads=3, dim_head=32, mlp_dim=192, pool="mean", pos_embedding="learned",
                   qkv_bias=True),
    # 32x32 CIFAR-10: 4x4 patches -> 64 tokens + CLS (the benchmark configuration).
    "cifar10": dict(image_size=32, patch_size=4, num_classes=10, channels=3, dim=192, depth=6,
                    heads=3, dim_head=64, mlp_dim=768, qkv_bias=True, dropout=0.1),
}


def preset_kwargs(name: str, **overrides) -> dict:
    """A copy of ``PRESETS[name]`` with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return {**copy.deepcopy(PRESETS[name]), **overrides}


def create_vit(name: str, **overrides) -> ViT:
    """Build a :class:`ViT` from a preset, e.g. ``create_vit('ViT-B/16', num_classes=10)``."""
    return ViT(**preset_kwargs(name, **overrides))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Every parameter, including ``cls_token`` and ``pos_embedding`` (which torchsummary misses)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["FeedForward", "Block", "Transformer", "ViT", "PRESETS", "preset_kwargs", "create_vit",
           "count_parameters", "prepend_cls_token", "pool_tokens"]
