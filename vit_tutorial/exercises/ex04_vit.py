"""Notebook 04's exercises: the [CLS] token, position embeddings, the MLP, a pre-norm block, the head."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..vit import ViT, Block, FeedForward, pool_tokens, prepend_cls_token
from .harness import Mistake, Probe, Trial, close, describe, fill, private_rng, randn, run_checks


def _with_positions(tokens, cls_token, pos_embedding):
    return prepend_cls_token(tokens, cls_token) + pos_embedding


def _token_trials(gen, with_positions: bool) -> list[Trial]:
    trials = []
    for b, n, dim in ((2, 4, 6), (3, 9, 8), (1, 16, 4), (2, 1, 5)):
        tokens, cls = randn(gen, b, n, dim), randn(gen, 1, 1, dim)
        if with_positions:
            pos = randn(gen, 1, n + 1, dim)
            trials.append(Trial(describe(tokens=tokens, cls_token=cls, pos_embedding=pos), (tokens, cls, pos),
                                _with_positions(tokens, cls, pos), reference=_with_positions))
        else:
            trials.append(Trial(describe(tokens=tokens, cls_token=cls), (tokens, cls), prepend_cls_token(tokens, cls),
                                reference=prepend_cls_token))
    trials[-1].edge = "a single patch token"
    return trials


def _appended(tokens, cls):
    return torch.cat([tokens, cls.expand(tokens.shape[0], -1, -1)], dim=1)


_CLS_FIRST = ("the CLS token is at the end of the sequence; it must be first",
              "prepend it: torch.cat([cls, tokens], dim=1). The head reads token 0")
_EXPAND_HINT = ("cls_token is (1, 1, dim) and tokens are (b, n, dim): torch.cat needs the same batch size, "
                "so first give every image its copy with cls_token.expand(b, -1, -1)")
_ONE_IMAGE = ("it is right for a batch of one image, but not for b images: only one image got the CLS token, "
              "or the batch size is assumed to be 1", _EXPAND_HINT)


def _one_at_a_time(f):
    return lambda t, *rest: torch.cat([f(t[i:i + 1], *rest) for i in range(len(t))])


def _cls_slot(out: torch.Tensor, trial: Trial) -> tuple[str, str] | None:
    """Only token 0 wrong: a new CLS vector, or the given one on the first image only."""
    exp = trial.expected
    if out.shape != exp.shape or not close(out[:, 1:], exp[:, 1:], 1e-4, 1e-5):
        return None
    if out.shape[0] > 1 and close(out[:1], exp[:1], 1e-4, 1e-5):
        return "only the first image got the CLS token; token 0 of the other images is wrong", _EXPAND_HINT
    if torch.count_nonzero(out[:, 0]) == 0:
        return ("token 0 is all zeros: you made a new CLS token inside the function",
                "use the cls_token you are given (the model's learned one), not torch.zeros or a new nn.Parameter")
    return ("the patch tokens are right, but token 0 is not the cls_token you were given",
            "token 0 of every image is exactly cls_token[0, 0]")


def check_add_cls_token(fn: Callable) -> bool | None:
    """``fn(tokens, cls_token)``: ``(b, n, dim), (1, 1, dim)`` -> ``(b, n + 1, dim)`` with CLS at position 0."""
    gen = torch.Generator().manual_seed(401)
    mistakes: list[Mistake] = [
        (_appended, *_CLS_FIRST),
        (lambda t, c: t + c, "you added the CLS vector to every token instead of inserting it as a new token",
         "the sequence must grow by one token: concatenate along dim=1"),
        (lambda t, c: torch.cat([c.expand(t.shape[0], t.shape[1], -1), t], dim=2),
         "you concatenated along the features (dim=2)", "tokens are axis 1: torch.cat(..., dim=1)"),
        (lambda t, c: prepend_cls_token(t[:, :-1], c), "the last patch token is missing: CLS must be added, not "
         "swapped in for a patch", "keep all n patch tokens: the result has n + 1"),
        (lambda t, c: prepend_cls_token(t[:, 1:], c), "the first patch token is missing: CLS must be added, not "
         "written over patch 0", "keep all n patch tokens: torch.cat([cls, tokens], dim=1)"),
        (lambda t, c: torch.cat([c.expand(t.shape[0], t.shape[1], -1), t], dim=1),
         "you expanded the CLS token to n tokens: there must be exactly one, in front",
         "expand only the batch axis: cls_token.expand(b, -1, -1)"),
    ]
    probes: list[Probe] = [(_one_at_a_time, *_ONE_IMAGE)]
    return run_checks(fn, _token_trials(gen, with_positions=False), reference="vit_tutorial.prepend_cls_token",
                       grad=True, mistakes=mistakes, probes=probes, diagnose=_cls_slot, batched=(0,),
                       axes=("image", "token", None), hint="torch.cat([cls_token.expand(b, -1, -1), tokens], dim=1)",
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
        (lambda t, c, p: prepend_cls_token(t, c) + p[:, :1], "you added row 0 of the table to every token; "
         "each token gets its own row", "x + pos_embedding adds row i to token i"),
        (lambda t, c, p: torch.cat([c.expand(t.shape[0], -1, -1) + p[:, :1], t], dim=1),
         "only the CLS token got its position; the patch tokens got none", "add the whole table: x + pos_embedding"),
        (lambda t, c, p: prepend_cls_token(t, c) * p, "you multiplied by the position table; positions are added",
         "x + pos_embedding"),
        (lambda t, c, p: torch.cat([prepend_cls_token(t, c), p.expand(t.shape[0], -1, -1)], dim=1),
         "you concatenated the position table; positions are added", "x + pos_embedding"),
        (lambda t, c, p: prepend_cls_token(t, c) + p.flip(1),
         "the position table is applied in reverse order", "row i of the table belongs to token i: x + pos_embedding"),
    ]
    probes: list[Probe] = [(_one_at_a_time, *_ONE_IMAGE)]
    return run_checks(fn, _token_trials(gen, with_positions=True), reference="vit_tutorial.prepend_cls_token",
                       grad=True, mistakes=mistakes, probes=probes, axes=("image", "token", None), batched=(0,),
                       hint="x = torch.cat([cls_token.expand(b, -1, -1), tokens], dim=1), then x + pos_embedding",
                       shape_hint="positions are added, so the shape is that of the sequence with CLS: (b, n + 1, dim)",
                       error_hint=_EXPAND_HINT + "; pos_embedding has n + 1 rows (one for CLS): "
                                                 "add it after prepending")


def _feedforward_trials(gen) -> list[Trial]:
    trials = []
    for shape, hidden in (((2, 5, 8), 16), ((1, 3, 6), 24), ((4, 2, 12), 20), ((3, 8), 12)):
        with private_rng():
            mlp = fill(FeedForward(shape[-1], hidden), gen)
        x = randn(gen, *shape, scale=2.0)
        weights = {name: p.detach().clone() for name, p in mlp.named_parameters()}
        args = (x, *weights.values())  # net.0.weight, net.0.bias, net.3.weight, net.3.bias

        def reference(x, w1, b1, w2, b2, mlp=mlp, names=tuple(weights)):
            return functional_call(mlp, dict(zip(names, (w1, b1, w2, b2))), (x,))

        trials.append(Trial(describe(x=x, w1=args[1], b1=args[2], w2=args[3], b2=args[4]), args,
                            reference(*args), reference=reference))
    trials[-1].edge = "x with no batch axis, (tokens, dim): the MLP acts on the last axis whatever comes before"
    return trials


def _two_layers(act, bias1=True, bias2=True):
    return lambda x, w1, b1, w2, b2: F.linear(act(F.linear(x, w1, b1 if bias1 else None)), w2, b2 if bias2 else None)


def check_feedforward(fn: Callable) -> bool | None:
    """``fn(x, w1, b1, w2, b2)`` -> ``Linear(w1, b1) -> GELU -> Linear(w2, b2)``, like ``vit_tutorial.FeedForward``."""
    gen = torch.Generator().manual_seed(403)
    act_hint = "use F.gelu (or nn.GELU()), the activation of the ViT paper"
    mistakes: list[Mistake] = [
        (_two_layers(F.relu), "the activation is ReLU; the ViT's MLP uses GELU", act_hint),
        (_two_layers(torch.sigmoid), "the activation is a sigmoid; the ViT's MLP uses GELU", act_hint),
        (_two_layers(F.silu), "the activation is SiLU (x·sigmoid(x)); the ViT's MLP uses GELU", act_hint),
        (_two_layers(torch.tanh), "the activation is tanh; the ViT's MLP uses GELU", act_hint),
        (_two_layers(F.leaky_relu), "the activation is leaky ReLU; the ViT's MLP uses GELU", act_hint),
        (_two_layers(F.elu), "the activation is ELU; the ViT's MLP uses GELU", act_hint),
        (_two_layers(F.softplus), "the activation is softplus; the ViT's MLP uses GELU", act_hint),
        (_two_layers(lambda h: h),
         "there is no activation between the two layers, so they collapse into one linear map",
         "apply F.gelu to the hidden features"),
        (_two_layers(lambda h: F.gelu(h, approximate="tanh")),
         "you used GELU's tanh approximation; nn.GELU() and F.gelu default to the exact (erf) form",
         "call F.gelu(h) without approximate='tanh'"),
        (_two_layers(F.gelu, False, False), "the biases are missing", "each layer is x @ w.T + b"),
        (_two_layers(F.gelu, bias1=False), "the first layer's bias b1 is missing", "h = F.gelu(x @ w1.T + b1)"),
        (_two_layers(F.gelu, bias2=False), "the second layer's bias b2 is missing", "finish with h @ w2.T + b2"),
        (lambda x, w1, b1, w2, b2: F.gelu(_two_layers(F.gelu)(x, w1, b1, w2, b2)),
         "there is a GELU after the second layer too; the MLP ends with the linear layer",
         "only the hidden features go through the activation"),
        (lambda x, w1, b1, w2, b2: x + _two_layers(F.gelu)(x, w1, b1, w2, b2),
         "you added the input back (a residual): that belongs to the block, not to the MLP",
         "return the second layer's output only; the block adds x itself"),
    ]
    probes: list[Probe] = [
        (lambda f: lambda x, w1, b1, w2, b2: f(x, w1.T.contiguous(), b1, w2.T.contiguous(), b2),
         "you multiplied by w where w.T belongs: nn.Linear stores its weight as (out, in)",
         "x @ w1.T + b1, or F.linear(x, w1, b1), which transposes for you")]
    return run_checks(fn, _feedforward_trials(gen), reference="vit_tutorial.FeedForward", grad=True,
                       mistakes=mistakes, probes=probes, axes=("image", "token", None), batched=(0,),
                       hint="h = F.gelu(x @ w1.T + b1); return h @ w2.T + b2",
                       shape_hint="the MLP maps each token back to its own size: the output has x's shape",
                       error_hint="w1 has nn.Linear's layout (hidden, dim): x @ w1.T + b1, or F.linear(x, w1, b1)")


def _block_trials(gen) -> list[Trial]:
    trials = []
    for shape, heads, dim_head, mlp_dim in (((2, 5, 8), 2, 4, 16), ((1, 7, 12), 3, 4, 24), ((3, 4, 8), 2, 4, 16),
                                            ((2, 1, 8), 2, 4, 16)):
        with private_rng():
            block = fill(Block(shape[-1], heads, dim_head, mlp_dim), gen)
        x = randn(gen, *shape)
        with torch.no_grad():
            trials.append(Trial(f"x {shape}, Block(dim={shape[-1]}, heads={heads}, mlp_dim={mlp_dim})",
                                (x, block.attn, block.mlp, block.norm1, block.norm2), block(x),
                                reference=lambda x, *modules, block=block: block(x)))
    trials[-1].edge = "a sequence of one token"
    return trials


def _plain_norm(x):
    return F.layer_norm(x, x.shape[-1:])


def _post_norm(x, attn, mlp, n1, n2):
    x = n1(x + attn(x))
    return n2(x + mlp(x))


def _normalised_residual(x, attn, mlp, n1, n2):
    h = n1(x)
    x = h + attn(h)
    h = n2(x)
    return h + mlp(h)


def _step(x, sub, norm, residual=True):
    return (x if residual else 0) + sub(norm(x) if norm is not None else x)


_BLOCK_MISTAKES: list[Mistake] = [
    (_post_norm, "this is a post-norm block: the LayerNorm comes after the residual sum",
     "ViT normalises each sub-layer's input: x = x + attn(norm1(x)), then x + mlp(norm2(x))"),
    (lambda x, a, m, n1, n2: m(n2(a(n1(x)))), "the residual connections are missing",
     "add each sub-layer's input back: x = x + attn(norm1(x))"),
    (lambda x, a, m, n1, n2: _step(a(n1(x)), m, n2), "the attention step has no residual: x + attn(norm1(x))",
     "keep x on the side and add: x = x + attn(norm1(x))"),
    (lambda x, a, m, n1, n2: m(n2(_step(x, a, n1))), "the MLP step has no residual: x + mlp(norm2(x))",
     "return x + mlp(norm2(x)), not mlp(norm2(x))"),
    (_normalised_residual, "the residual path carries the normalised x",
     "keep the un-normalised x on the residual path: x + attn(norm1(x)), not norm1(x) + attn(norm1(x))"),
    (lambda x, a, m, n1, n2: _step(n1(x) + a(n1(x)), m, n2),
     "the attention step's residual path carries the normalised x: norm1(x) + attn(norm1(x))",
     "keep the un-normalised x on the residual path: x = x + attn(norm1(x))"),
    (lambda x, a, m, n1, n2: (lambda y: n2(y) + m(n2(y)))(_step(x, a, n1)),
     "the MLP step's residual path carries the normalised x: norm2(x) + mlp(norm2(x))",
     "keep the un-normalised x on the residual path: x + mlp(norm2(x))"),
    (lambda x, a, m, n1, n2: _step(_step(x, a, n1), m, n1),
     "the MLP's input goes through norm1; it has its own LayerNorm, norm2", "x + mlp(norm2(x))"),
    (lambda x, a, m, n1, n2: _step(_step(x, a, n2), m, n2),
     "the attention's input goes through norm2; it has its own LayerNorm, norm1", "x + attn(norm1(x))"),
    (lambda x, a, m, n1, n2: _step(_step(x, m, n2), a, n1),
     "the two sub-layers are swapped: the MLP runs before the attention", "attention first, then the MLP"),
    (lambda x, a, m, n1, n2: x + a(n1(x)) + m(n2(x)),
     "attention and MLP both read the block's input (in parallel); in ViT the MLP reads the result of the "
     "attention step",
     "update x after the attention step, then feed that x to the MLP"),
    (lambda x, a, m, n1, n2: _step(_step(x, a, None), m, n2), "norm1 is missing: attention reads x un-normalised",
     "x = x + attn(norm1(x))"),
    (lambda x, a, m, n1, n2: _step(_step(x, a, n1), m, None), "norm2 is missing: the MLP reads x un-normalised",
     "x + mlp(norm2(x))"),
    (lambda x, a, m, n1, n2: _step(_step(x, a, None), m, None), "there is no LayerNorm at all",
     "normalise each sub-layer's input: attn(norm1(x)), mlp(norm2(x))"),
    (lambda x, a, m, n1, n2: n2(_step(_step(x, a, n1), m, n2)),
     "there is an extra LayerNorm on the block's output; the final LayerNorm belongs to the encoder, after all blocks",
     "return x + mlp(norm2(x)) as it is"),
    (lambda x, a, m, n1, n2: _step(_step(x, a, lambda y: n1(n1(y))), m, lambda y: n2(n2(y))),
     "each input is normalised twice", "one LayerNorm per sub-layer: attn(norm1(x))"),
    (lambda x, a, m, n1, n2: _step(_step(x, a, _plain_norm), m, _plain_norm),
     "you normalised with a new LayerNorm (F.layer_norm or nn.LayerNorm(dim)), not the norm1/norm2 you were given, "
     "so their learned scale and shift are lost", "call the modules you are given: norm1(x), norm2(x)"),
]


def check_pre_norm_block(fn: Callable) -> bool | None:
    """``fn(x, attn, mlp, norm1, norm2)``: ``x + attn(norm1(x))``, then ``+ mlp(norm2(.))``, like ``Block``."""
    gen = torch.Generator().manual_seed(404)
    return run_checks(fn, _block_trials(gen), reference="vit_tutorial.Block", grad=True,
                       mistakes=_BLOCK_MISTAKES, axes=("image", "token", None), batched=(0,),
                       hint="two residual steps: x = x + attn(norm1(x)); return x + mlp(norm2(x))",
                       shape_hint="a block keeps the shape of its input: (batch, tokens, dim)",
                       error_hint="attn, mlp, norm1 and norm2 are modules: call them like functions, "
                                  "e.g. attn(norm1(x))")


def _head_trials(gen) -> list[Trial]:
    trials = []
    for pool, b, side, dim, classes in (("cls", 2, 4, 6, 3), ("mean", 3, 6, 10, 4), ("mean", 2, 4, 8, 5),
                                         ("cls", 3, 6, 8, 2), ("mean", 1, 2, 6, 3)):
        with private_rng():
            model = fill(ViT(image_size=side, patch_size=2, num_classes=classes, dim=dim, depth=1, heads=1,
                             dim_head=4, mlp_dim=8, pool=pool, channels=1), gen)
        x = randn(gen, b, 1 + (side // 2) ** 2, dim)
        norm, head = model.transformer.norm, model.mlp_head
        with torch.no_grad():
            expected = model.forward_head(norm(x))
        trials.append(Trial(f"x {tuple(x.shape)} (CLS + {x.shape[1] - 1} patch tokens), pool={pool!r}",
                            (x, norm, head, pool), expected,
                            reference=lambda x, norm, head, pool, model=model: model.forward_head(norm(x))))
    trials[-1].edge = "a batch of one image with a single patch token"
    return trials


def _head(pool_fn, final=True):
    return lambda x, norm, head, pool: head(pool_fn(norm(x) if final else x, pool))


_HEAD_MISTAKES: list[Mistake] = [
    (_head(pool_tokens, final=False), "the final LayerNorm is missing: the head reads un-normalised tokens",
     "normalise all tokens first: head(pool(norm(x)))"),
    (lambda x, norm, head, pool: head(norm(pool_tokens(x, pool))),
     "you normalised after pooling: the mean of normalised tokens is not the normalised mean",
     "the encoder's final LayerNorm acts on every token, then the head pools: head(pool(norm(x)))"),
    (_head(lambda x, pool: x[:, 0]), "with pool='mean' your head reads the CLS token (token 0): is `pool` ignored, "
     "or are the two cases swapped?", "pool='mean' averages the patch tokens x[:, 1:]; only 'cls' reads x[:, 0]"),
    (_head(lambda x, pool: x[:, 1:].mean(1)), "with pool='cls' your head reads the mean of the patch tokens: is `pool` "
     "ignored, or are the two cases swapped?", "pool='cls' reads token 0: x[:, 0]"),
    (_head(lambda x, pool: x.mean(1) if pool == "mean" else x[:, 0]),
     "the mean includes the CLS token; mean pooling averages the patch tokens only", "x[:, 1:].mean(dim=1)"),
    (_head(lambda x, pool: x.mean(-1) if pool == "mean" else x[:, 0]),
     "you averaged over the features (dim=-1); mean pooling averages over the tokens", "x[:, 1:].mean(dim=1)"),
    (_head(lambda x, pool: x[:, 1:].sum(1) if pool == "mean" else x[:, 0]),
     "you summed the patch tokens; mean pooling averages them", "x[:, 1:].mean(dim=1)"),
    (_head(lambda x, pool: x[:, 1:].amax(1) if pool == "mean" else x[:, 0]),
     "you took the maximum over the patch tokens; mean pooling averages them", "x[:, 1:].mean(dim=1)"),
    (_head(lambda x, pool: x[:, -1] if pool == "cls" else x[:, 1:].mean(1)),
     "you read the last token; the CLS token is the first, token 0", "x[:, 0]"),
    (_head(lambda x, pool: x[:, 1] if pool == "cls" else x[:, 1:].mean(1)),
     "you read token 1, the first patch; the CLS token is token 0", "x[:, 0]"),
    (_head(lambda x, pool: x[:, :-1].mean(1) if pool == "mean" else x[:, 0]),
     "your mean covers tokens 0 to n - 1: it includes the CLS token and leaves out the last patch",
     "the patch tokens are x[:, 1:]"),
    (_head(lambda x, pool: x.mean(0)[1:] if pool == "mean" else x[0]),
     "you pooled over the batch (dim 0) instead of over the tokens",
     "tokens are axis 1: x[:, 0] or x[:, 1:].mean(dim=1)"),
    (lambda x, norm, head, pool: _head(pool_tokens)(x, norm, head, pool).softmax(-1),
     "you returned probabilities (a softmax); the head returns logits", "stop at the linear head: the loss applies the "
     "softmax itself"),
    (lambda x, norm, head, pool: head(pool_tokens(_plain_norm(x), pool)),
     "you normalised with a new LayerNorm, not the norm you were given, so its learned scale and shift are lost",
     "call the module you are given: norm(x)"),
]


def check_vit_head(fn: Callable) -> bool | None:
    """``fn(x, norm, head, pool)``: encoder tokens ``(b, 1 + n, dim)`` -> logits, like ``ViT.forward_head``."""
    gen = torch.Generator().manual_seed(405)
    return run_checks(fn, _head_trials(gen), reference="vit_tutorial.ViT.forward_head after the final norm",
                       grad=True, mistakes=_HEAD_MISTAKES, axes=("image", "class"), batched=(0,),
                       hint="x = norm(x); pooled = x[:, 0] if pool == 'cls' else x[:, 1:].mean(dim=1); "
                            "return head(pooled)",
                       shape_hint="one row of logits per image: (batch, num_classes)",
                       error_hint="norm and head are modules (call them like functions); pool is 'cls' or 'mean'")
