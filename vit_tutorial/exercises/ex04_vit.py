"""Notebook 04's exercises: the [CLS] token, position embeddings, the MLP, a pre-norm block."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..vit import Block, FeedForward, prepend_cls_token
from .harness import Mistake, Trial, describe, fill, private_rng, randn, run_checks


def _token_trials(gen, with_positions: bool) -> list[Trial]:
    trials = []
    for b, n, dim in ((2, 4, 6), (3, 9, 8), (1, 16, 4)):
        tokens, cls = randn(gen, b, n, dim), randn(gen, 1, 1, dim)
        if with_positions:
            pos = randn(gen, 1, n + 1, dim)
            trials.append(Trial(describe(tokens=tokens, cls_token=cls, pos_embedding=pos), (tokens, cls, pos),
                                 prepend_cls_token(tokens, cls) + pos))
        else:
            trials.append(Trial(describe(tokens=tokens, cls_token=cls), (tokens, cls), prepend_cls_token(tokens, cls)))
    return trials


def _appended(tokens, cls):
    return torch.cat([tokens, cls.expand(tokens.shape[0], -1, -1)], dim=1)


_CLS_FIRST = ("the CLS token is at the end of the sequence; it must be first",
              "prepend it: torch.cat([cls, tokens], dim=1). The head reads token 0")
_EXPAND_HINT = ("cls_token is (1, 1, dim) and tokens are (b, n, dim): torch.cat needs the same batch size, "
                "so first give every image its copy with cls_token.expand(b, -1, -1)")


def check_add_cls_token(fn: Callable) -> bool | None:
    """``fn(tokens, cls_token)``: ``(b, n, dim), (1, 1, dim)`` -> ``(b, n + 1, dim)`` with CLS at position 0."""
    gen = torch.Generator().manual_seed(401)
    mistakes: list[Mistake] = [
        (_appended, *_CLS_FIRST),
        (lambda t, c: t + c, "you added the CLS vector to every token instead of inserting it as a new token",
         "the sequence must grow by one token: concatenate along dim=1"),
        (lambda t, c: torch.cat([c.expand(t.shape[0], t.shape[1], -1), t], dim=2),
         "you concatenated along the features (dim=2)", "tokens are axis 1: torch.cat(..., dim=1)"),
    ]
    return run_checks(fn, _token_trials(gen, with_positions=False), reference="vit_tutorial.prepend_cls_token",
                       mistakes=mistakes, hint="torch.cat([cls_token.expand(b, -1, -1), tokens], dim=1)",
                       shape_hint="one more token than before: (b, n + 1, dim)", error_hint=_EXPAND_HINT)


def check_add_position_embedding(fn: Callable) -> bool | None:
    """``fn(tokens, cls_token, pos_embedding)``: prepend CLS, then add the ``(1, n + 1, dim)`` position table."""
    gen = torch.Generator().manual_seed(402)
    mistakes: list[Mistake] = [
        (lambda t, c, p: _appended(t, c) + p, *_CLS_FIRST),
        (lambda t, c, p: prepend_cls_token(t + p[:, 1:], c),
         "the CLS token got no position embedding: you added the table to the patches before prepending CLS",
         "the table has n + 1 rows and row 0 is the CLS token's: prepend CLS first, then add the whole table"),
        (lambda t, c, p: prepend_cls_token(t + p[:, :-1], c),
         "the position rows are shifted by one: patch i got row i, but row 0 belongs to CLS",
         "prepend CLS first, then add the whole table in one go: x + pos_embedding"),
        (lambda t, c, p: prepend_cls_token(t, c), "the position embedding was not added",
         "finish with x + pos_embedding"),
        (lambda t, c, p: torch.cat([prepend_cls_token(t, c), p.expand(t.shape[0], -1, -1)], dim=1),
         "you concatenated the position table; positions are added", "x + pos_embedding"),
    ]
    return run_checks(fn, _token_trials(gen, with_positions=True), reference="vit_tutorial.prepend_cls_token",
                       mistakes=mistakes,
                       hint="x = torch.cat([cls_token.expand(b, -1, -1), tokens], dim=1), then x + pos_embedding",
                       shape_hint="positions are added, so the shape is that of the sequence with CLS: (b, n + 1, dim)",
                       error_hint=_EXPAND_HINT + "; pos_embedding has n + 1 rows (one for CLS): "
                                                 "add it after prepending")


def check_feedforward(fn: Callable) -> bool | None:
    """``fn(x, w1, b1, w2, b2)`` -> ``Linear(w1, b1) -> GELU -> Linear(w2, b2)``, like ``vit_tutorial.FeedForward``."""
    gen = torch.Generator().manual_seed(403)
    trials = []
    for shape, hidden in (((2, 5, 8), 16), ((1, 3, 6), 24), ((4, 2, 12), 20)):
        with private_rng():
            mlp = fill(FeedForward(shape[-1], hidden), gen)
        x = randn(gen, *shape, scale=2.0)
        first, last = mlp.net[0], mlp.net[3]
        args = (x, first.weight.detach().clone(), first.bias.detach().clone(),
                last.weight.detach().clone(), last.bias.detach().clone())
        with torch.no_grad():
            trials.append(Trial(describe(x=x, w1=args[1], b1=args[2], w2=args[3], b2=args[4]), args, mlp(x)))

    def two_layers(act):
        return lambda x, w1, b1, w2, b2: F.linear(act(F.linear(x, w1, b1)), w2, b2)

    mistakes: list[Mistake] = [
        (two_layers(F.relu), "the activation is ReLU; the ViT's MLP uses GELU", "use F.gelu (or nn.GELU())"),
        (two_layers(lambda h: h), "there is no activation between the two layers, so they collapse into one linear map",
         "apply F.gelu to the hidden features"),
        (two_layers(lambda h: F.gelu(h, approximate="tanh")),
         "you used GELU's tanh approximation; nn.GELU() and F.gelu default to the exact (erf) form",
         "call F.gelu(h) without approximate='tanh'"),
        (lambda x, w1, b1, w2, b2: F.linear(F.gelu(F.linear(x, w1)), w2), "the biases are missing",
         "each layer is x @ w.T + b"),
    ]
    return run_checks(fn, trials, reference="vit_tutorial.FeedForward", mistakes=mistakes,
                       hint="h = F.gelu(x @ w1.T + b1); return h @ w2.T + b2",
                       shape_hint="the MLP maps each token back to its own size: the output has x's shape",
                       error_hint="w1 has nn.Linear's layout (hidden, dim): x @ w1.T + b1, or F.linear(x, w1, b1)")


def check_pre_norm_block(fn: Callable) -> bool | None:
    """``fn(x, attn, mlp, norm1, norm2)``: ``x + attn(norm1(x))``, then ``+ mlp(norm2(.))``, like ``Block``."""
    gen = torch.Generator().manual_seed(404)
    trials = []
    for shape, heads, dim_head, mlp_dim in (((2, 5, 8), 2, 4, 16), ((1, 7, 12), 3, 4, 24), ((3, 4, 8), 2, 4, 16)):
        with private_rng():
            block = fill(Block(shape[-1], heads, dim_head, mlp_dim), gen)
        x = randn(gen, *shape)
        with torch.no_grad():
            trials.append(Trial(f"x {shape}, Block(dim={shape[-1]}, heads={heads}, mlp_dim={mlp_dim})",
                                 (x, block.attn, block.mlp, block.norm1, block.norm2), block(x)))

    def post_norm(x, attn, mlp, n1, n2):
        x = n1(x + attn(x))
        return n2(x + mlp(x))

    def normalised_residual(x, attn, mlp, n1, n2):
        h = n1(x)
        x = h + attn(h)
        h = n2(x)
        return h + mlp(h)

    mistakes: list[Mistake] = [
        (post_norm, "this is a post-norm block: the LayerNorm comes after the residual sum",
         "ViT normalises each sub-layer's input: x = x + attn(norm1(x)), then x + mlp(norm2(x))"),
        (lambda x, attn, mlp, n1, n2: mlp(n2(attn(n1(x)))), "the residual connections are missing",
         "add each sub-layer's input back: x = x + attn(norm1(x))"),
        (normalised_residual, "the residual path carries the normalised x",
         "keep the un-normalised x on the residual path: x + attn(norm1(x)), not norm1(x) + attn(norm1(x))"),
        (lambda x, attn, mlp, n1, n2: (lambda y: y + mlp(n1(y)))(x + attn(n1(x))),
         "the MLP's input goes through norm1; it has its own LayerNorm, norm2", "x + mlp(norm2(x))"),
        (lambda x, attn, mlp, n1, n2: x + attn(n1(x)) + mlp(n2(x)),
         "attention and MLP both read the block's input (in parallel); "
         "in ViT the MLP reads the result of the attention step",
         "update x after the attention step, then feed that x to the MLP"),
    ]
    return run_checks(fn, trials, reference="vit_tutorial.Block", mistakes=mistakes,
                       hint="two residual steps: x = x + attn(norm1(x)); return x + mlp(norm2(x))",
                       shape_hint="a block keeps the shape of its input: (batch, tokens, dim)",
                       error_hint="attn, mlp, norm1 and norm2 are modules: call them like functions, "
                                  "e.g. attn(norm1(x))")
