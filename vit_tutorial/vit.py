"""Step 3 of the series: the Vision Transformer itself.

image -> patch tokens -> prepend [CLS] -> add positions -> L pre-norm encoder
blocks -> final LayerNorm -> pool ([CLS] or mean) -> linear head.

The constructor keeps the seed's keyword arguments (``image_size, patch_size,
num_classes, dim, depth, heads, mlp_dim, pool, channels, dim_head, dropout,
emb_dropout``); everything after those is an optional extra with a default that
keeps the seed's call working.
"""
from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

from .attention import ATTENTION_IMPLS, Attention
from .patches import PATCH_EMBED_KINDS, PatchEmbedding, check_patch_grid, posemb_sincos_2d

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


class Block(nn.Module):
    """One pre-norm encoder block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))``.

    Normalising *before* each sub-layer keeps the residual path an identity,
    which is why ViTs train without the warm-up tricks post-norm needs.
    """

    def __init__(self, dim, heads, dim_head, mlp_dim, dropout=0.0, qkv_bias=False, attn_impl="sdpa",
                 norm_eps=1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, heads=heads, dim_head=dim_head, dropout=dropout,
                              qkv_bias=qkv_bias, impl=attn_impl)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = FeedForward(dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """``depth`` encoder blocks and the final LayerNorm (the paper's ``LN(z_L)``)."""

    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout=0.0, qkv_bias=False,
                 attn_impl="sdpa", final_norm=True, norm_eps=1e-5):
        super().__init__()
        self.layers = nn.ModuleList(
            Block(dim, heads, dim_head, mlp_dim, dropout, qkv_bias, attn_impl, norm_eps) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=norm_eps) if final_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _probability(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


class ViT(nn.Module):
    """Vision Transformer (Dosovitskiy et al., 2021) with the seed's constructor.

    Extras beyond the seed: ``qkv_bias`` (the paper and torchvision use biases),
    ``pos_embedding`` (``'learned'`` | ``'sincos'`` | ``'none'``), ``patch_embed``
    (``'linear'`` | ``'conv'``), ``attn_impl`` (``'sdpa'`` | ``'einsum'``) and
    ``final_norm`` and ``norm_eps`` (LayerNorm's epsilon: torchvision and the paper's
    checkpoints use 1e-6).
    """

    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim,
                 pool="cls", channels=3, dim_head=64, dropout=0.0, emb_dropout=0.0,
                 qkv_bias=False, pos_embedding="learned", patch_embed="linear",
                 attn_impl="sdpa", final_norm=True, norm_eps=1e-5):
        super().__init__()
        check_patch_grid(image_size, patch_size)
        for name, value in (("num_classes", num_classes), ("dim", dim), ("depth", depth),
                            ("heads", heads), ("mlp_dim", mlp_dim), ("channels", channels),
                            ("dim_head", dim_head)):
            _positive_int(name, value)
        _probability("dropout", dropout)
        _probability("emb_dropout", emb_dropout)
        _choice("pool", pool, POOLS)
        _choice("pos_embedding", pos_embedding, POS_EMBEDDINGS)
        _choice("patch_embed", patch_embed, PATCH_EMBED_KINDS)
        _choice("attn_impl", attn_impl, ATTENTION_IMPLS)
        if isinstance(norm_eps, bool) or not isinstance(norm_eps, numbers.Real) or not 0 < norm_eps < 1:
            raise ValueError(f"norm_eps must be a small positive number, got {norm_eps!r}")
        if pos_embedding == "sincos" and dim % 4:
            raise ValueError(f"pos_embedding='sincos' needs dim divisible by 4, got dim={dim}")

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
                                       qkv_bias, attn_impl, final_norm, norm_eps)
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
        # embeddings, and the model would see positions instead of pixels.
        proj = next(m for m in self.to_patch_embedding.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
        nn.init.trunc_normal_(proj.weight, std=proj.weight[0].numel() ** -0.5)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        if isinstance(self.pos_embedding, nn.Parameter):
            nn.init.trunc_normal_(self.pos_embedding, std=0.02)

    def check_input(self, img: torch.Tensor) -> None:
        """Raise a ``ValueError`` naming the expected shape if ``img`` cannot go through the model."""
        c, (h, w) = self.channels, self.image_size
        if not isinstance(img, torch.Tensor):
            raise ValueError(f"expected a torch.Tensor of shape (batch, {c}, {h}, {w}), got {type(img).__name__}")
        if img.dim() != 4 or tuple(img.shape[1:]) != (c, h, w):
            hint = " (add a batch dimension with img.unsqueeze(0))" if img.dim() == 3 else ""
            raise ValueError(f"expected input of shape (batch, {c}, {h}, {w}), got {tuple(img.shape)}{hint}")

    def forward_features(self, img: torch.Tensor) -> torch.Tensor:
        """All tokens after the encoder and final norm: ``(b, 1 + num_patches, dim)``."""
        self.check_input(img)
        x = self.to_patch_embedding(img)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embedding
        return self.transformer(self.dropout(x))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(img)
        x = x[:, 1:].mean(dim=1) if self.pool == "mean" else x[:, 0]
        return self.mlp_head(x)


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
    # (chosen by measured runs on 2 CPU cores: see the README's "Measured" section).
    "digits": dict(image_size=28, patch_size=7, num_classes=10, channels=1, dim=96, depth=4,
                   heads=3, dim_head=32, mlp_dim=192, pool="mean", pos_embedding="learned",
                   qkv_bias=True),
    # 32x32 CIFAR-10: 4x4 patches -> 64 tokens + CLS (the benchmark configuration).
    "cifar10": dict(image_size=32, patch_size=4, num_classes=10, channels=3, dim=192, depth=6,
                    heads=3, dim_head=64, mlp_dim=768, qkv_bias=True, dropout=0.1),
}


def preset(name: str, **overrides) -> dict:
    """A copy of ``PRESETS[name]`` with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return {**copy.deepcopy(PRESETS[name]), **overrides}


def create_vit(name: str, **overrides) -> ViT:
    """Build a :class:`ViT` from a preset, e.g. ``create_vit('ViT-B/16', num_classes=10)``."""
    return ViT(**preset(name, **overrides))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Every parameter, including ``cls_token`` and ``pos_embedding`` (which torchsummary misses)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["FeedForward", "Block", "Transformer", "ViT", "PRESETS", "preset", "create_vit",
           "count_parameters"]
