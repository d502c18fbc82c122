"""Held-out wrong answers for the exercise checkers, written from the notebooks' exercise text only.

How this list was made (issue 25): the author had read the "Exercises" sections of the notebooks (each
exercise's markdown and its stub's signature and docstring) and nothing else of the exercise machinery:
not the checkers in ``vit_tutorial/exercises/``, not ``tests/test_exercises.py``, not the solutions. The
list was committed before any of those files was opened, and before the diagnosis layer was written.
Each entry is one typical wrong answer a learner could write from that text:

* ``checker``: the checker the notebook calls for it;
* ``label``: the mistake in a few words;
* ``keywords``: written WITH the answer, before any checker message was seen: the words a message that
  names this mistake (or the property it breaks) would contain; a message counts as naming it when it
  contains any of them (case-insensitive);
* ``source``: the answer; it defines ``answer`` (and any helper the exercise says it may call), run after
  ``PRELUDE``;
* ``status``: ``None``, or a note added after the measurement when an answer turned out ambiguous or
  actually correct (the answer and its keywords are then left exactly as written).

Not written by a separate person: the brief asked for a sub-helper that sees only the exercise texts, and
none could be started in that session; the same engineer wrote this list first and the diagnosis after.
"""

PRELUDE = """
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
"""


def _m(checker, label, keywords, source, status=None):
    return {"checker": checker, "label": label, "keywords": tuple(keywords), "source": source, "status": status}


SCALE = ("√d", "sqrt", "scale", "factor")

MISTAKES = [
    # ---------------------------------------------------------------- 01 Exercise 1: scaled scores
    _m("check_scaled_scores", "no 1/sqrt(d)", SCALE, """
def answer(q, k):
    return q @ k.transpose(-2, -1)
"""),
    _m("check_scaled_scores", "divides by d instead of sqrt(d)", ("√d", "sqrt", "factor", "by d"), """
def answer(q, k):
    return q @ k.transpose(-2, -1) / q.shape[-1]
"""),
    _m("check_scaled_scores", "multiplies by sqrt(d)", ("√d", "sqrt", "factor", "multipl"), """
def answer(q, k):
    return q @ k.transpose(-2, -1) * math.sqrt(q.shape[-1])
"""),
    _m("check_scaled_scores", "k.T on a tensor with more than 2 axes", ("k.t", "transpose", "last two", ".mt"), """
def answer(q, k):
    return q @ k.T / math.sqrt(q.shape[-1])
"""),
    _m("check_scaled_scores", "scales by sqrt of the number of keys", ("√d", "sqrt", "factor", "n_k", "number of keys"), """
def answer(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(k.shape[-2])
"""),
    _m("check_scaled_scores", "keys against queries (transposed result)", ("transpos", "swap", "rows", "n_q"), """
def answer(q, k):
    return k @ q.transpose(-2, -1) / math.sqrt(q.shape[-1])
"""),
    _m("check_scaled_scores", "applies a softmax", ("softmax", "normalis", "normaliz", "sum to 1", "probabilit"), """
def answer(q, k):
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
"""),
    _m("check_scaled_scores", "operator precedence: d ** 1/2 is d/2", ("factor", "√d", "sqrt", "precedence", "d/2", "d / 2"), """
def answer(q, k):
    return q @ k.transpose(-2, -1) / (q.shape[-1] ** 1 / 2)
"""),
    _m("check_scaled_scores", "d hard-coded", ("√d", "sqrt", "factor", "hard-coded", "hard coded", "constant"), """
def answer(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(64)
"""),

    # ---------------------------------------------------------------- 01 Exercise 2: attention
    _m("check_attention", "softmax over the queries", ("axis", "dim", "queries", "column", "normalis", "normaliz"), """
def answer(q, k, v):
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-2)
    return w @ v
"""),
    _m("check_attention", "softmax over a fixed positive axis (dim=1)", ("axis", "dim", "normalis", "normaliz"), """
def answer(q, k, v):
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=1)
    return w @ v
"""),
    _m("check_attention", "no 1/sqrt(d)", SCALE, """
def answer(q, k, v):
    return (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v
"""),
    _m("check_attention", "returns (output, weights)", ("tuple", "only the output", "weights", "return"), """
def answer(q, k, v):
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    return w @ v, w
"""),
    _m("check_attention", "returns the weights, never multiplies by v", ("weight", "by v", "@ v", "value"), """
def answer(q, k, v):
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
"""),
    _m("check_attention", "scale applied after the softmax", ("scale", "√d", "after", "factor"), """
def answer(q, k, v):
    return (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v / math.sqrt(q.shape[-1])
"""),
    _m("check_attention", "scales by sqrt(d_v)", ("d_v", "√d", "sqrt", "scale"), """
def answer(q, k, v):
    return (q @ k.transpose(-2, -1) / math.sqrt(v.shape[-1])).softmax(dim=-1) @ v
"""),
    _m("check_attention", "scales q in place", ("in place", "in-place", "modif", "input"), """
def answer(q, k, v):
    q /= math.sqrt(q.shape[-1])
    return (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v
"""),
    _m("check_attention", "F.softmax without dim", ("dim", "axis", "normalis", "normaliz"), """
def answer(q, k, v):
    return F.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])) @ v
"""),

    # ---------------------------------------------------------------- 01 Exercise 3: causal attention
    _m("check_causal_attention", "diagonal masked too (triu diagonal=0)", ("diagonal", "nan", "itself", "j ≤ i", "j <= i", "own"), """
def answer(q, k, v):
    n = q.shape[-2]
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=0)
    return s.masked_fill(mask, float("-inf")).softmax(dim=-1) @ v
"""),
    _m("check_causal_attention", "mask inverted: sees the future", ("invert", "future", "j ≥ i", "j >= i", "later", "upper", "lower"), """
def answer(q, k, v):
    n = q.shape[-2]
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.tril(torch.ones(n, n, dtype=torch.bool), diagonal=-1)
    return s.masked_fill(mask, float("-inf")).softmax(dim=-1) @ v
"""),
    _m("check_causal_attention", "mask applied after the softmax, no renormalising", ("after", "renormal", "sum to 1", "normalis", "normaliz"), """
def answer(q, k, v):
    n = q.shape[-2]
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    w = w * torch.tril(torch.ones(n, n))
    return w @ v
"""),
    _m("check_causal_attention", "masked scores set to 0 instead of -inf", ("-inf", "inf", "zero", "large negative", "filled with 0"), """
def answer(q, k, v):
    n = q.shape[-2]
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    return s.masked_fill(mask, 0.0).softmax(dim=-1) @ v
"""),
    _m("check_causal_attention", "no 1/sqrt(d)", SCALE, """
def answer(q, k, v):
    n = q.shape[-2]
    s = q @ k.transpose(-2, -1)
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    return s.masked_fill(mask, float("-inf")).softmax(dim=-1) @ v
"""),
    _m("check_causal_attention", "mask size hard-coded", ("hard-coded", "hard coded", "shape", "size"), """
def answer(q, k, v):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
    return s.masked_fill(mask, float("-inf")).softmax(dim=-1) @ v
"""),
    _m("check_causal_attention", "scores multiplied by the mask (zeros, not -inf)", ("-inf", "inf", "zero", "multipl", "large negative"), """
def answer(q, k, v):
    n = q.shape[-2]
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return (s * torch.tril(torch.ones(n, n))).softmax(dim=-1) @ v
"""),
    _m("check_causal_attention", "softmax over the queries", ("dim", "axis", "normalis", "normaliz", "column"), """
def answer(q, k, v):
    n = q.shape[-2]
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    return s.masked_fill(mask, float("-inf")).softmax(dim=-2) @ v
"""),

    # ---------------------------------------------------------------- 02 Exercise 1: split heads
    _m("check_split_heads", "features read as (d h): heads interleaved", ("interleav", "order", "(h d)", "(heads d)", "first d", "head 0"), """
def answer(x, heads):
    return rearrange(x, "b n (d h) -> b h n d", h=heads)
"""),
    _m("check_split_heads", "heads not moved in front of the tokens", ("shape", "axes", "transpos", "order", "permut"), """
def answer(x, heads):
    return rearrange(x, "b n (h d) -> b n h d", h=heads)
"""),
    _m("check_split_heads", "view without a transpose", ("view", "reshape", "transpos", "layout", "permut", "mix"), """
def answer(x, heads):
    b, n, f = x.shape
    return x.reshape(b, heads, n, f // heads)
"""),
    _m("check_split_heads", "heads passed as d", ("heads", "d=", "h=", "number of heads", "swap"), """
def answer(x, heads):
    return rearrange(x, "b n (h d) -> b h n d", d=heads)
"""),
    _m("check_split_heads", "tokens and features swapped in the output", ("transpos", "last two", "swap", "n, d"), """
def answer(x, heads):
    return rearrange(x, "b n (h d) -> b h d n", h=heads)
"""),
    _m("check_split_heads", "number of heads hard-coded", ("heads", "hard-coded", "hard coded", "argument"), """
def answer(x, heads):
    return rearrange(x, "b n (h d) -> b h n d", h=4)
"""),

    # ---------------------------------------------------------------- 02 Exercise 2: merge heads
    _m("check_merge_heads", "merged as (d h): features interleaved", ("interleav", "order", "(h d)", "(heads d)", "head 0"), """
def answer(x):
    return rearrange(x, "b h n d -> b n (d h)")
"""),
    _m("check_merge_heads", "reshape without moving the heads", ("reshape", "view", "transpos", "permut", "mix", "layout"), """
def answer(x):
    b, h, n, d = x.shape
    return x.reshape(b, n, h * d)
"""),
    _m("check_merge_heads", "heads merged into the token axis", ("shape", "axis", "axes", "token"), """
def answer(x):
    return rearrange(x, "b h n d -> b (h n) d")
"""),
    _m("check_merge_heads", "batch and token axes swapped", ("batch", "swap", "axes", "transpos"), """
def answer(x):
    return rearrange(x, "b h n d -> n b (h d)")
"""),
    _m("check_merge_heads", "view on a transposed (non-contiguous) tensor", ("contiguous", "view", "reshape"), """
def answer(x):
    b, h, n, d = x.shape
    return x.transpose(1, 2).view(b, n, h * d)
"""),
    _m("check_merge_heads", "tokens and features swapped", ("transpos", "swap", "axes", "last two"), """
def answer(x):
    return rearrange(x, "b h n d -> b (h d) n")
"""),

    # ---------------------------------------------------------------- 02 Exercise 3: einsum scores
    _m("check_einsum_scores", "no 1/sqrt(d)", SCALE, """
def answer(q, k):
    return torch.einsum("bhqd,bhkd->bhqk", q, k)
"""),
    _m("check_einsum_scores", "output subscripts transposed", ("transpos", "swap", "n_q", "rows"), """
def answer(q, k):
    return torch.einsum("bhqd,bhkd->bhkq", q, k) / math.sqrt(q.shape[-1])
"""),
    _m("check_einsum_scores", "heads summed away", ("shape", "head", "sum"), """
def answer(q, k):
    return torch.einsum("bhqd,bhkd->bqk", q, k) / math.sqrt(q.shape[-1])
"""),
    _m("check_einsum_scores", "divides by d", ("√d", "sqrt", "factor"), """
def answer(q, k):
    return torch.einsum("bhqd,bhkd->bhqk", q, k) / q.shape[-1]
"""),
    _m("check_einsum_scores", "applies a softmax", ("softmax", "normalis", "normaliz", "sum to 1", "probab"), """
def answer(q, k):
    return torch.einsum("bhqd,bhkd->bhqk", q, k).div(math.sqrt(q.shape[-1])).softmax(-1)
"""),
    _m("check_einsum_scores", "k subscripted as if already transposed", ("subscript", "operand", "transpos", "size"), """
def answer(q, k):
    return torch.einsum("bhqd,bhdk->bhqk", q, k) / math.sqrt(q.shape[-1])
"""),
    _m("check_einsum_scores", "scales by sqrt(n_k)", ("√d", "sqrt", "factor", "n_k"), """
def answer(q, k):
    return torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(k.shape[-2])
"""),

    # ---------------------------------------------------------------- 03 Exercise 1: patchify
    _m("check_patchify", "pattern for channels-last images", ("channels", "channel-first", "channels-first", "(b, c, h, w)", "layout"), """
def answer(images, patch_size):
    return rearrange(images, "b (h p1) (w p2) c -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)
"""),
    _m("check_patchify", "numbers in a patch as (c p1 p2)", ("(p1 p2 c)", "inside a patch", "order", "channel"), """
def answer(images, patch_size):
    return rearrange(images, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=patch_size, p2=patch_size)
"""),
    _m("check_patchify", "patches column by column", ("column", "row by row", "order", "transpos", "permut"), """
def answer(images, patch_size):
    return rearrange(images, "b c (h p1) (w p2) -> b (w h) (p1 p2 c)", p1=patch_size, p2=patch_size)
"""),
    _m("check_patchify", "numbers in a patch as (p2 p1 c)", ("(p1 p2 c)", "order", "inside", "column", "transpos"), """
def answer(images, patch_size):
    return rearrange(images, "b c (h p1) (w p2) -> b (h w) (p2 p1 c)", p1=patch_size, p2=patch_size)
"""),
    _m("check_patchify", "grid assumed square (from the width)", ("square", "height", "width", "non-square", "h and w"), """
def answer(images, patch_size):
    g = images.shape[-1] // patch_size
    return rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", h=g, w=g)
"""),
    _m("check_patchify", "unfold then reshape without permuting", ("order", "layout", "permut", "reshape", "mix"), """
def answer(images, patch_size):
    b, c = images.shape[:2]
    p = patch_size
    u = images.unfold(2, p, p).unfold(3, p, p)
    return u.reshape(b, -1, c * p * p)
"""),
    _m("check_patchify", "strided patches: (p1 h) instead of (h p1)", ("stride", "contiguous", "(h p1)", "neighbour", "block", "interleav"), """
def answer(images, patch_size):
    return rearrange(images, "b c (p1 h) (p2 w) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)
"""),

    # ---------------------------------------------------------------- 03 Exercise 2: patch embedding
    _m("check_patch_embedding", "x @ weight without transposing", ("transpos", "weight.t", "nn.linear", "shape"), """
def answer(images, weight, bias, patch_size):
    x = rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)
    return x @ weight + bias
"""),
    _m("check_patch_embedding", "no bias", ("bias",), """
def answer(images, weight, bias, patch_size):
    x = rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)
    return x @ weight.T
"""),
    _m("check_patch_embedding", "patch numbers as (c p1 p2)", ("(p1 p2 c)", "order", "channel", "inside"), """
def answer(images, weight, bias, patch_size):
    x = rearrange(images, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=patch_size, p2=patch_size)
    return x @ weight.T + bias
"""),
    _m("check_patch_embedding", "conv2d with the weight reshaped as (dim, c, p, p)", ("order", "(p1 p2 c)", "channel", "reshape"), """
def answer(images, weight, bias, patch_size):
    p = patch_size
    c = images.shape[1]
    w = weight.reshape(weight.shape[0], c, p, p)
    return F.conv2d(images, w, bias, stride=p).flatten(2).transpose(1, 2)
"""),
    _m("check_patch_embedding", "ReLU after the linear map", ("activation", "relu", "nonlinear", "non-linear"), """
def answer(images, weight, bias, patch_size):
    x = rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)
    return F.relu(x @ weight.T + bias)
"""),
    _m("check_patch_embedding", "patches column by column", ("column", "row by row", "order", "permut"), """
def answer(images, weight, bias, patch_size):
    x = rearrange(images, "b c (h p1) (w p2) -> b (w h) (p1 p2 c)", p1=patch_size, p2=patch_size)
    return x @ weight.T + bias
"""),
    _m("check_patch_embedding", "F.linear given weight.T", ("transpos", "weight.t", "shape", "nn.linear"), """
def answer(images, weight, bias, patch_size):
    x = rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)
    return F.linear(x, weight.T, bias)
"""),

    # ---------------------------------------------------------------- 04 Exercise 1: CLS token
    _m("check_add_cls_token", "CLS at the end", ("end", "position 0", "front", "last"), """
def answer(tokens, cls_token):
    return torch.cat([tokens, cls_token.expand(tokens.shape[0], -1, -1)], dim=1)
"""),
    _m("check_add_cls_token", "CLS not expanded over the batch", ("expand", "batch", "every image", "repeat"), """
def answer(tokens, cls_token):
    return torch.cat([cls_token, tokens], dim=1)
"""),
    _m("check_add_cls_token", "CLS added to every token instead of prepended", ("add", "concaten", "n + 1", "shape", "cat"), """
def answer(tokens, cls_token):
    return tokens + cls_token
"""),
    _m("check_add_cls_token", "concatenated along the batch axis", ("dim", "axis", "batch", "token axis"), """
def answer(tokens, cls_token):
    return torch.cat([cls_token.expand(1, tokens.shape[1], -1), tokens], dim=0)
"""),
    _m("check_add_cls_token", "overwrites the first token in place", ("in place", "in-place", "modif", "replace", "n + 1", "overwrit"), """
def answer(tokens, cls_token):
    tokens[:, 0] = cls_token[:, 0]
    return tokens
"""),
    _m("check_add_cls_token", "a zero vector instead of the learned CLS", ("cls_token", "ignored", "zero", "learned"), """
def answer(tokens, cls_token):
    b, n, d = tokens.shape
    return torch.cat([torch.zeros(b, 1, d), tokens], dim=1)
"""),
    _m("check_add_cls_token", "CLS only in front of the first image", ("first image", "every image", "batch", "image 0"), """
def answer(tokens, cls_token):
    b, n, d = tokens.shape
    front = torch.zeros(b, 1, d)
    front[0] = cls_token[0]
    return torch.cat([front, tokens], dim=1)
"""),

    # ---------------------------------------------------------------- 04 Exercise 2: position embedding
    _m("check_add_position_embedding", "position row 0 never added to the CLS token", ("cls", "row 0", "position 0"), """
def my_add_cls_token(tokens, cls_token):
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)

def answer(tokens, cls_token, pos_embedding):
    return my_add_cls_token(tokens + pos_embedding[:, 1:], cls_token)
"""),
    _m("check_add_position_embedding", "patch tokens get rows 0..n-1 (off by one)", ("shift", "row 0", "off by one", "off-by-one", "one position"), """
def my_add_cls_token(tokens, cls_token):
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)

def answer(tokens, cls_token, pos_embedding):
    n = tokens.shape[1]
    x = my_add_cls_token(tokens + pos_embedding[:, :n], cls_token)
    return x
"""),
    _m("check_add_position_embedding", "CLS appended at the end, then the table added", ("end", "front", "position 0", "last"), """
def answer(tokens, cls_token, pos_embedding):
    x = torch.cat([tokens, cls_token.expand(tokens.shape[0], -1, -1)], dim=1)
    return x + pos_embedding
"""),
    _m("check_add_position_embedding", "multiplies by the table", ("multipl", "add", "product"), """
def my_add_cls_token(tokens, cls_token):
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)

def answer(tokens, cls_token, pos_embedding):
    return my_add_cls_token(tokens, cls_token) * pos_embedding
"""),
    _m("check_add_position_embedding", "adds to the input tokens in place", ("in place", "in-place", "modif"), """
def answer(tokens, cls_token, pos_embedding):
    tokens += pos_embedding[:, 1:]
    cls = cls_token + pos_embedding[:, :1]
    return torch.cat([cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
"""),
    _m("check_add_position_embedding", "concatenates the table instead of adding", ("add", "concaten", "shape", "cat"), """
def my_add_cls_token(tokens, cls_token):
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)

def answer(tokens, cls_token, pos_embedding):
    x = my_add_cls_token(tokens, cls_token)
    return torch.cat([x, pos_embedding.expand(x.shape[0], -1, -1)], dim=-1)
"""),
    _m("check_add_position_embedding", "table added to the first image only", ("first image", "batch", "every image", "image 0"), """
def my_add_cls_token(tokens, cls_token):
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)

def answer(tokens, cls_token, pos_embedding):
    x = my_add_cls_token(tokens, cls_token)
    return torch.cat([x[:1] + pos_embedding, x[1:]], dim=0)
"""),

    # ---------------------------------------------------------------- 04 Exercise 3: feed-forward
    _m("check_feedforward", "ReLU instead of GELU", ("gelu", "relu", "activation"), """
def answer(x, w1, b1, w2, b2):
    return F.relu(x @ w1.T + b1) @ w2.T + b2
"""),
    _m("check_feedforward", "no activation", ("gelu", "activation", "linear"), """
def answer(x, w1, b1, w2, b2):
    return (x @ w1.T + b1) @ w2.T + b2
"""),
    _m("check_feedforward", "x @ w1 without transposing", ("transpos", "w1.t", "nn.linear", "shape"), """
def answer(x, w1, b1, w2, b2):
    return F.gelu(x @ w1 + b1) @ w2 + b2
"""),
    _m("check_feedforward", "second bias forgotten", ("bias", "b2"), """
def answer(x, w1, b1, w2, b2):
    return F.gelu(x @ w1.T + b1) @ w2.T
"""),
    _m("check_feedforward", "activation after the second linear too", ("gelu", "activation", "second", "after"), """
def answer(x, w1, b1, w2, b2):
    return F.gelu(F.gelu(x @ w1.T + b1) @ w2.T + b2)
"""),
    _m("check_feedforward", "GELU's tanh approximation", ("gelu", "tanh", "approximat"), """
def answer(x, w1, b1, w2, b2):
    return F.gelu(x @ w1.T + b1, approximate="tanh") @ w2.T + b2
"""),
    _m("check_feedforward", "dropout left on", ("random", "dropout", "determin", "differ"), """
def answer(x, w1, b1, w2, b2):
    return F.dropout(F.gelu(x @ w1.T + b1), 0.1) @ w2.T + b2
"""),

    # ---------------------------------------------------------------- 04 Exercise 4: pre-norm block
    _m("check_pre_norm_block", "post-norm", ("post-norm", "pre-norm", "before", "after"), """
def answer(x, attn, mlp, norm1, norm2):
    x = norm1(x + attn(x))
    return norm2(x + mlp(x))
"""),
    _m("check_pre_norm_block", "no residual connections", ("residual", "skip", "x +"), """
def answer(x, attn, mlp, norm1, norm2):
    x = attn(norm1(x))
    return mlp(norm2(x))
"""),
    _m("check_pre_norm_block", "residual adds the normalised x", ("residual", "normalised", "normalized", "un-normalised"), """
def answer(x, attn, mlp, norm1, norm2):
    h = norm1(x)
    x = h + attn(h)
    h = norm2(x)
    return h + mlp(h)
"""),
    _m("check_pre_norm_block", "norm1 and norm2 swapped", ("norm1", "norm2", "swap"), """
def answer(x, attn, mlp, norm1, norm2):
    x = x + attn(norm2(x))
    return x + mlp(norm1(x))
"""),
    _m("check_pre_norm_block", "MLP before attention", ("order", "swap", "mlp", "first"), """
def answer(x, attn, mlp, norm1, norm2):
    x = x + mlp(norm2(x))
    return x + attn(norm1(x))
"""),
    _m("check_pre_norm_block", "attention and MLP in parallel", ("parallel", "sequen", "after", "output of the attention"), """
def answer(x, attn, mlp, norm1, norm2):
    return x + attn(norm1(x)) + mlp(norm2(x))
"""),
    _m("check_pre_norm_block", "norm1 used for both", ("norm2", "norm1", "same norm"), """
def answer(x, attn, mlp, norm1, norm2):
    x = x + attn(norm1(x))
    return x + mlp(norm1(x))
"""),

    # ---------------------------------------------------------------- 04 Exercise 5: ViT head
    _m("check_vit_head", "mean-pools before the final norm", ("before", "after", "order"), """
def answer(x, norm, head, pool):
    if pool == "cls":
        return head(norm(x)[:, 0])
    return head(norm(x[:, 1:].mean(dim=1)))
"""),
    _m("check_vit_head", "mean includes the CLS token", ("cls", "includ", "exclud"), """
def answer(x, norm, head, pool):
    x = norm(x)
    return head(x[:, 0] if pool == "cls" else x.mean(dim=1))
"""),
    _m("check_vit_head", "CLS read from the last position", ("last", "position 0", "first"), """
def answer(x, norm, head, pool):
    x = norm(x)
    return head(x[:, -1] if pool == "cls" else x[:, 1:].mean(dim=1))
"""),
    _m("check_vit_head", "final norm forgotten", ("norm", "layernorm"), """
def answer(x, norm, head, pool):
    return head(x[:, 0] if pool == "cls" else x[:, 1:].mean(dim=1))
"""),
    _m("check_vit_head", "pool ignored: always CLS", ("pool", "mean"), """
def answer(x, norm, head, pool):
    return head(norm(x)[:, 0])
"""),
    _m("check_vit_head", "mean over the features", ("axis", "dim", "token", "feature"), """
def answer(x, norm, head, pool):
    x = norm(x)
    return head(x[:, 0] if pool == "cls" else x[:, 1:].mean(dim=-1))
"""),
    _m("check_vit_head", "mean over the batch", ("batch", "axis", "images", "each other", "influenc"), """
def answer(x, norm, head, pool):
    x = norm(x)
    if pool == "cls":
        return head(x[:, 0])
    return head(x[:, 1:].mean(dim=0))
"""),
    _m("check_vit_head", "softmax on the logits", ("softmax", "logits", "probab"), """
def answer(x, norm, head, pool):
    x = norm(x)
    return head(x[:, 0] if pool == "cls" else x[:, 1:].mean(dim=1)).softmax(dim=-1)
"""),

    # ---------------------------------------------------------------- 05 Exercise 1: warm-up + cosine
    _m("check_warmup_cosine_lr", "warm-up starts at 0 (step / warmup)", ("off by one", "off-by-one", "step 0", "step + 1", "shift", "one step"), """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))
"""),
    _m("check_warmup_cosine_lr", "cosine spread over all steps, not the remaining ones", ("remaining", "total_steps - warmup", "progress", "length"), """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = step / total_steps
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))
"""),
    _m("check_warmup_cosine_lr", "a full cosine period instead of half", ("half", "full", "π", "pi"), """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(2 * math.pi * t))
"""),
    _m("check_warmup_cosine_lr", "min_lr ignored (decays to 0)", ("min_lr", "minimum", "floor", "offset"), """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * base_lr * (1 + math.cos(math.pi * t))
"""),
    _m("check_warmup_cosine_lr", "division by zero when warmup_steps is 0", ("warmup_steps = 0", "warmup_steps=0", "zero", "division", "no warm-up"), """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step <= warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))
"""),
    _m("check_warmup_cosine_lr", "returns a tensor", ("float", "tensor", "type"), """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return torch.tensor(base_lr * (step + 1) / warmup_steps)
    t = torch.tensor((step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + torch.cos(math.pi * t))
"""),
    _m("check_warmup_cosine_lr", "cosine progress one step ahead", ("off by one", "off-by-one", "one step", "shift"), """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps + 1) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))
"""),
    _m("check_warmup_cosine_lr", "linear decay instead of cosine", ("cosine", "linear"), """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr - (base_lr - min_lr) * t
"""),

    # ---------------------------------------------------------------- 05 Exercise 2: accuracy
    _m("check_accuracy", "argmax over the examples", ("dim", "axis", "classes", "examples"), """
def answer(logits, labels):
    return (logits.argmax(dim=0) == labels).float().mean().item()
"""),
    _m("check_accuracy", "count instead of fraction", ("fraction", "count", "divide", "factor", "number of examples"), """
def answer(logits, labels):
    return (logits.argmax(dim=1) == labels).sum().item()
"""),
    _m("check_accuracy", "returns a tensor", ("float", "tensor", ".item", "number"), """
def answer(logits, labels):
    return (logits.argmax(dim=1) == labels).float().mean()
"""),
    _m("check_accuracy", "percentage", ("percent", "100", "factor", "fraction"), """
def answer(logits, labels):
    return 100.0 * (logits.argmax(dim=1) == labels).float().mean().item()
"""),
    _m("check_accuracy", "argmin", ("argmin", "smallest", "largest", "argmax"), """
def answer(logits, labels):
    return (logits.argmin(dim=1) == labels).float().mean().item()
"""),
    _m("check_accuracy", "integer division", ("integer", "division", "//", "float"), """
def answer(logits, labels):
    return (logits.argmax(dim=1) == labels).sum().item() // len(labels)
"""),
    _m("check_accuracy", "compares the max values, not their positions", ("max", "indices", "argmax", "values"), """
def answer(logits, labels):
    return (logits.max(dim=1).values == labels).float().mean().item()
"""),

    # ---------------------------------------------------------------- 05 Exercise 3: train step
    _m("check_train_step", "no zero_grad", ("zero_grad", "accumulat", "clear"), """
def answer(model, optimizer, images, labels):
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
    _m("check_train_step", "zero_grad between backward and step", ("zero_grad", "order", "before", "after"), """
def answer(model, optimizer, images, labels):
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()
"""),
    _m("check_train_step", "step before backward", ("order", "before", "backward"), """
def answer(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    optimizer.step()
    loss.backward()
    return loss.item()
"""),
    _m("check_train_step", "softmax before the cross-entropy", ("softmax", "logits", "probab"), """
def answer(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images).softmax(dim=-1), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
    _m("check_train_step", "puts the model in eval mode", ("mode", "eval", "train mode", "model.train"), """
def answer(model, optimizer, images, labels):
    model.eval()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
    _m("check_train_step", "nll_loss on raw logits", ("cross-entropy", "cross_entropy", "log_softmax", "nll"), """
def answer(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.nll_loss(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
    _m("check_train_step", "forward pass under no_grad", ("no_grad", "gradient", "grad"), """
def answer(model, optimizer, images, labels):
    optimizer.zero_grad()
    with torch.no_grad():
        logits = model(images)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
    _m("check_train_step", "returns the loss after the update", ("after", "before the update", "order"), """
def answer(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        return F.cross_entropy(model(images), labels).item()
"""),

    # ---------------------------------------------------------------- 05 Exercise 4: evaluate
    _m("check_evaluate", "no model.eval()", ("eval", "dropout"), """
def answer(model, images, labels):
    with torch.no_grad():
        return (model(images).argmax(dim=1) == labels).float().mean().item()
"""),
    _m("check_evaluate", "left in eval mode", ("mode", "train mode", "restore", "model.train", "came in"), """
def answer(model, images, labels):
    model.eval()
    with torch.no_grad():
        return (model(images).argmax(dim=1) == labels).float().mean().item()
"""),
    _m("check_evaluate", "always back to train mode", ("mode", "eval mode", "came in", "restore"), """
def answer(model, images, labels):
    model.eval()
    with torch.no_grad():
        acc = (model(images).argmax(dim=1) == labels).float().mean().item()
    model.train()
    return acc
"""),
    _m("check_evaluate", "no torch.no_grad()", ("no_grad", "gradient", "grad"), """
def answer(model, images, labels):
    was = model.training
    model.eval()
    acc = (model(images).argmax(dim=1) == labels).float().mean().item()
    model.train(was)
    return acc
"""),
    _m("check_evaluate", "count instead of fraction", ("fraction", "count", "divide", "factor"), """
def answer(model, images, labels):
    was = model.training
    model.eval()
    with torch.no_grad():
        acc = (model(images).argmax(dim=1) == labels).sum().item()
    model.train(was)
    return acc
"""),
    _m("check_evaluate", "returns a tensor", ("float", "tensor", ".item", "number"), """
def answer(model, images, labels):
    was = model.training
    model.eval()
    with torch.no_grad():
        acc = (model(images).argmax(dim=1) == labels).float().mean()
    model.train(was)
    return acc
"""),
    _m("check_evaluate", "argmax over the examples", ("dim", "axis", "classes", "examples"), """
def answer(model, images, labels):
    was = model.training
    model.eval()
    with torch.no_grad():
        acc = (model(images).argmax(dim=0) == labels[: model(images).shape[1]]).float().mean().item()
    model.train(was)
    return acc
"""),
    _m("check_evaluate", "switches requires_grad off and leaves it off", ("requires_grad",), """
def answer(model, images, labels):
    was = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    acc = (model(images).argmax(dim=1) == labels).float().mean().item()
    model.train(was)
    return acc
"""),

    # ---------------------------------------------------------------- 06 Exercise 1: attention rollout
    _m("check_attention_rollout", "first layer on the left", ("order", "left", "right", "first layer", "revers"), """
def answer(maps):
    out = None
    for a in maps:
        a = a.mean(dim=1)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1])
        a = a / a.sum(dim=-1, keepdim=True)
        out = a if out is None else out @ a
    return out
"""),
    _m("check_attention_rollout", "no identity (residual) mix", ("identity", "residual", "0.5", "half"), """
def answer(maps):
    out = None
    for a in maps:
        a = a.mean(dim=1)
        a = a / a.sum(dim=-1, keepdim=True)
        out = a if out is None else a @ out
    return out
"""),
    _m("check_attention_rollout", "rows not renormalised, identity mixed at full weight", ("renormal", "normalis", "normaliz", "rows sum", "sum to 1"), """
def answer(maps):
    out = None
    for a in maps:
        a = a.mean(dim=1)
        a = a + torch.eye(a.shape[-1])
        out = a if out is None else a @ out
    return out
"""),
    _m("check_attention_rollout", "max over the heads", ("head", "mean", "average", "max"), """
def answer(maps):
    out = None
    for a in maps:
        a = a.max(dim=1).values
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1])
        a = a / a.sum(dim=-1, keepdim=True)
        out = a if out is None else a @ out
    return out
"""),
    _m("check_attention_rollout", "renormalises the columns", ("column", "rows", "axis", "dim"), """
def answer(maps):
    out = None
    for a in maps:
        a = a.mean(dim=1)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1])
        a = a / a.sum(dim=-2, keepdim=True)
        out = a if out is None else a @ out
    return out
"""),
    _m("check_attention_rollout", "first layer skipped", ("layer", "missing", "first layer", "skip"), """
def answer(maps):
    out = None
    for a in maps[1:]:
        a = a.mean(dim=1)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1])
        a = a / a.sum(dim=-1, keepdim=True)
        out = a if out is None else a @ out
    return out
"""),
    _m("check_attention_rollout", "averages over the batch instead of the heads", ("batch", "head", "axis", "dim"), """
def answer(maps):
    out = None
    for a in maps:
        a = a.mean(dim=0)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1])
        a = a / a.sum(dim=-1, keepdim=True)
        out = a if out is None else a @ out
    return out
"""),
    _m("check_attention_rollout", "element-wise product instead of matrix product", ("matmul", "matrix", "@", "element"), """
def answer(maps):
    out = None
    for a in maps:
        a = a.mean(dim=1)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1])
        a = a / a.sum(dim=-1, keepdim=True)
        out = a if out is None else a * out
    return out
"""),

    # ---------------------------------------------------------------- 07 Exercise 1: resize position table
    _m("check_resize_pos_embedding", "grid rows taken from row 0 on (CLS row inside the grid)", ("cls", "row 0", "shift", "off by one", "one position"), """
def answer(pos, grid):
    h, w = grid
    s = int(math.sqrt(pos.shape[1]))
    x = pos[:, : s * s].reshape(1, s, s, -1).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], x.permute(0, 2, 3, 1).reshape(1, h * w, -1)], dim=1)
"""),
    _m("check_resize_pos_embedding", "bilinear", ("bicubic", "bilinear", "mode"), """
def answer(pos, grid):
    h, w = grid
    s = math.isqrt(pos.shape[1] - 1)
    x = pos[:, 1:].reshape(1, s, s, -1).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return torch.cat([pos[:, :1], x.permute(0, 2, 3, 1).reshape(1, h * w, -1)], dim=1)
"""),
    _m("check_resize_pos_embedding", "align_corners=True", ("align_corners",), """
def answer(pos, grid):
    h, w = grid
    s = math.isqrt(pos.shape[1] - 1)
    x = pos[:, 1:].reshape(1, s, s, -1).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=True)
    return torch.cat([pos[:, :1], x.permute(0, 2, 3, 1).reshape(1, h * w, -1)], dim=1)
"""),
    _m("check_resize_pos_embedding", "reshaped to (1, dim, s, s) without permuting", ("channel", "permut", "layout", "dim-channel"), """
def answer(pos, grid):
    h, w = grid
    s = math.isqrt(pos.shape[1] - 1)
    d = pos.shape[-1]
    x = pos[:, 1:].reshape(1, d, s, s)
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], x.reshape(1, h * w, d)], dim=1)
"""),
    _m("check_resize_pos_embedding", "grid read as (w, h)", ("swap", "(h, w)", "transpos", "height", "width"), """
def answer(pos, grid):
    h, w = grid
    s = math.isqrt(pos.shape[1] - 1)
    x = pos[:, 1:].reshape(1, s, s, -1).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(w, h), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], x.permute(0, 2, 3, 1).reshape(1, h * w, -1)], dim=1)
"""),
    _m("check_resize_pos_embedding", "flattened column by column", ("column", "row by row", "transpos", "order"), """
def answer(pos, grid):
    h, w = grid
    s = math.isqrt(pos.shape[1] - 1)
    x = pos[:, 1:].reshape(1, s, s, -1).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], x.permute(0, 3, 2, 1).reshape(1, h * w, -1)], dim=1)
"""),
    _m("check_resize_pos_embedding", "CLS row dropped", ("cls", "row 0", "missing", "1 + h"), """
def answer(pos, grid):
    h, w = grid
    s = math.isqrt(pos.shape[1] - 1)
    x = pos[:, 1:].reshape(1, s, s, -1).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(1, h * w, -1)
"""),
    _m("check_resize_pos_embedding", "view after permute", ("contiguous", "view", "reshape"), """
def answer(pos, grid):
    h, w = grid
    s = math.isqrt(pos.shape[1] - 1)
    x = pos[:, 1:].reshape(1, s, s, -1).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], x.permute(0, 2, 3, 1).view(1, h * w, -1)], dim=1)
"""),

    # ---------------------------------------------------------------- 10 Exercise 1: shift images
    _m("check_shift_images", "torch.roll (wraps round)", ("roll", "wrap"), """
def answer(x, dy, dx):
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))
"""),
    _m("check_shift_images", "direction inverted", ("direction", "sign", "opposite", "revers"), """
def answer(x, dy, dx):
    dy, dx = -dy, -dx
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out
"""),
    _m("check_shift_images", "dy and dx swapped", ("swap", "dx", "dy", "rows", "columns"), """
def answer(x, dy, dx):
    dy, dx = dx, dy
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out
"""),
    _m("check_shift_images", "pads then crops the same side for negative shifts", ("negative", "left", "up"), """
def answer(x, dy, dx):
    h, w = x.shape[-2:]
    p = F.pad(x, (abs(dx), abs(dx), abs(dy), abs(dy)))
    return p[..., abs(dy) - dy if dy >= 0 else 0: abs(dy) - dy + h if dy >= 0 else h,
             abs(dx) - dx if dx >= 0 else 0: abs(dx) - dx + w if dx >= 0 else w]
"""),
    _m("check_shift_images", "slicing :-d breaks a zero shift", ("zero shift", "dy = 0", "dy=0", "shift of 0", "no shift", "shift 0", "dx = 0", "dx=0"), """
def answer(x, dy, dx):
    out = torch.zeros_like(x)
    ys, yd = (slice(0, -dy), slice(dy, None)) if dy >= 0 else (slice(-dy, None), slice(0, dy))
    xs, xd = (slice(0, -dx), slice(dx, None)) if dx >= 0 else (slice(-dx, None), slice(0, dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out
"""),
    _m("check_shift_images", "shift larger than the image wraps through negative slicing", ("larger", "≥", ">=", "size", "beyond", "bigger", "whole image"), """
def answer(x, dy, dx):
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out
"""),
    _m("check_shift_images", "edits x in place", ("in place", "in-place", "modif"), """
def answer(x, dy, dx):
    x.copy_(torch.roll(x, shifts=(dy, dx), dims=(2, 3)))
    if dy > 0:
        x[..., :dy, :] = 0
    elif dy < 0:
        x[..., dy:, :] = 0
    if dx > 0:
        x[..., :, :dx] = 0
    elif dx < 0:
        x[..., :, dx:] = 0
    return x
"""),
    _m("check_shift_images", "gap filled with the image mean", ("zero", "fill", "gap"), """
def answer(x, dy, dx):
    y = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    fill = x.mean()
    if dy > 0:
        y[..., :dy, :] = fill
    elif dy < 0:
        y[..., dy:, :] = fill
    if dx > 0:
        y[..., :, :dx] = fill
    elif dx < 0:
        y[..., :, dx:] = fill
    return y
"""),

    # ---------------------------------------------------------------- 10 Exercise 2: shift probe
    _m("check_shift_sensitivity", "two shifts only (right and down)", ("four", "missing", "left", "up"), """
def my_shift_images(x, dy, dx):
    y = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy > 0: y[..., :dy, :] = 0
    if dy < 0: y[..., dy:, :] = 0
    if dx > 0: y[..., :, :dx] = 0
    if dx < 0: y[..., :, dx:] = 0
    return y

def answer(features, images):
    base = features(images).flatten(1)
    out = []
    for dy, dx in [(0, 1), (1, 0)]:
        moved = features(my_shift_images(images, dy, dx)).flatten(1)
        out.append((moved - base).norm(dim=1) / base.norm(dim=1))
    return torch.cat(out).mean().item()
"""),
    _m("check_shift_sensitivity", "norms over the whole batch", ("per image", "each image", "batch", "whole"), """
def my_shift_images(x, dy, dx):
    y = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy > 0: y[..., :dy, :] = 0
    if dy < 0: y[..., dy:, :] = 0
    if dx > 0: y[..., :, :dx] = 0
    if dx < 0: y[..., :, dx:] = 0
    return y

def answer(features, images):
    base = features(images)
    out = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        moved = features(my_shift_images(images, dy, dx))
        out.append(((moved - base).norm() / base.norm()).item())
    return sum(out) / len(out)
"""),
    _m("check_shift_sensitivity", "ratio of means instead of mean of ratios", ("mean of", "ratio", "each image", "per image"), """
def my_shift_images(x, dy, dx):
    y = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy > 0: y[..., :dy, :] = 0
    if dy < 0: y[..., dy:, :] = 0
    if dx > 0: y[..., :, :dx] = 0
    if dx < 0: y[..., :, dx:] = 0
    return y

def answer(features, images):
    base = features(images).flatten(1)
    num, den = [], []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        moved = features(my_shift_images(images, dy, dx)).flatten(1)
        num.append((moved - base).norm(dim=1))
        den.append(base.norm(dim=1))
    return (torch.cat(num).mean() / torch.cat(den).mean()).item()
"""),
    _m("check_shift_sensitivity", "divides by the shifted image's features", ("denominator", "divid", "shifted"), """
def my_shift_images(x, dy, dx):
    y = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy > 0: y[..., :dy, :] = 0
    if dy < 0: y[..., dy:, :] = 0
    if dx > 0: y[..., :, :dx] = 0
    if dx < 0: y[..., :, dx:] = 0
    return y

def answer(features, images):
    base = features(images).flatten(1)
    out = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        moved = features(my_shift_images(images, dy, dx)).flatten(1)
        out.append((moved - base).norm(dim=1) / moved.norm(dim=1))
    return torch.cat(out).mean().item()
"""),
    _m("check_shift_sensitivity", "signed mean difference instead of a norm", ("norm", "absolute", "|"), """
def my_shift_images(x, dy, dx):
    y = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy > 0: y[..., :dy, :] = 0
    if dy < 0: y[..., dy:, :] = 0
    if dx > 0: y[..., :, :dx] = 0
    if dx < 0: y[..., :, dx:] = 0
    return y

def answer(features, images):
    base = features(images).flatten(1)
    out = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        moved = features(my_shift_images(images, dy, dx)).flatten(1)
        out.append((moved - base).mean(dim=1) / base.norm(dim=1))
    return torch.cat(out).mean().item()
"""),
    _m("check_shift_sensitivity", "shifts with torch.roll", ("roll", "wrap"), """
def answer(features, images):
    base = features(images).flatten(1)
    out = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        moved = features(torch.roll(images, shifts=(dy, dx), dims=(2, 3))).flatten(1)
        out.append((moved - base).norm(dim=1) / base.norm(dim=1))
    return torch.cat(out).mean().item()
"""),
    _m("check_shift_sensitivity", "squared norms", ("square", "²"), """
def my_shift_images(x, dy, dx):
    y = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy > 0: y[..., :dy, :] = 0
    if dy < 0: y[..., dy:, :] = 0
    if dx > 0: y[..., :, :dx] = 0
    if dx < 0: y[..., :, dx:] = 0
    return y

def answer(features, images):
    base = features(images).flatten(1)
    out = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        moved = features(my_shift_images(images, dy, dx)).flatten(1)
        out.append((moved - base).pow(2).sum(dim=1) / base.pow(2).sum(dim=1))
    return torch.cat(out).mean().item()
"""),
    _m("check_shift_sensitivity", "returns a tensor", ("float", "tensor", "number", ".item"), """
def my_shift_images(x, dy, dx):
    y = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy > 0: y[..., :dy, :] = 0
    if dy < 0: y[..., dy:, :] = 0
    if dx > 0: y[..., :, :dx] = 0
    if dx < 0: y[..., :, dx:] = 0
    return y

def answer(features, images):
    base = features(images).flatten(1)
    out = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        moved = features(my_shift_images(images, dy, dx)).flatten(1)
        out.append((moved - base).norm(dim=1) / base.norm(dim=1))
    return torch.cat(out).mean()
"""),

    # ---------------------------------------------------------------- 10 Exercise 3: distillation loss
    _m("check_distillation_loss", "teacher's soft probabilities instead of its classes", ("argmax", "hard", "soft", "predicted class"), """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    soft = teacher_logits.softmax(dim=-1)
    return 0.5 * F.cross_entropy(cls_logits, labels) + 0.5 * F.cross_entropy(dist_logits, soft)
"""),
    _m("check_distillation_loss", "no halves", ("half", "0.5", "factor"), """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    return F.cross_entropy(cls_logits, labels) + F.cross_entropy(dist_logits, teacher_logits.argmax(dim=-1))
"""),
    _m("check_distillation_loss", "heads swapped", ("swap", "head", "cls_logits", "dist_logits"), """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    return 0.5 * F.cross_entropy(dist_logits, labels) + 0.5 * F.cross_entropy(cls_logits, teacher_logits.argmax(dim=-1))
"""),
    _m("check_distillation_loss", "teacher argmax over the examples", ("dim", "axis", "argmax", "classes"), """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    t = teacher_logits.argmax(dim=0)[: len(labels)] % cls_logits.shape[1]
    if len(t) < len(labels):
        t = torch.cat([t, t.new_zeros(len(labels) - len(t))])
    return 0.5 * F.cross_entropy(cls_logits, labels) + 0.5 * F.cross_entropy(dist_logits, t)
"""),
    _m("check_distillation_loss", "teacher ignored: both heads against the labels", ("teacher",), """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    return 0.5 * F.cross_entropy(cls_logits, labels) + 0.5 * F.cross_entropy(dist_logits, labels)
"""),
    _m("check_distillation_loss", "returns the two halves as a tuple", ("tuple", "one number", "sum", "scalar"), """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    return 0.5 * F.cross_entropy(cls_logits, labels), 0.5 * F.cross_entropy(dist_logits, teacher_logits.argmax(dim=-1))
"""),
    _m("check_distillation_loss", "sums over the examples instead of averaging", ("mean", "sum", "reduction", "factor", "number of examples"), """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    t = teacher_logits.argmax(dim=-1)
    return 0.5 * F.cross_entropy(cls_logits, labels, reduction="sum") + 0.5 * F.cross_entropy(dist_logits, t, reduction="sum")
"""),
]

#: Added after the first measurement; the answers and keywords above are exactly as first written.
#: "correct": the answer is right under the exercise's own rules; "ambiguous": it is not one clear mistake.
#: Both are still run (the checker must not raise) but are left out of the share of messages that name the mistake.
_NUMBER = ("correct: the series' checkers take 'a number' to be a float or a 0-d tensor (the package's own "
           "train_step and distillation_loss return 0-d tensors), and this answer returns the right 0-d tensor")
STATUS = {
    ("check_accuracy", "returns a tensor"): _NUMBER,
    ("check_evaluate", "returns a tensor"): _NUMBER,
    ("check_shift_sensitivity", "returns a tensor"): _NUMBER,
    ("check_resize_pos_embedding", "view after permute"):
        "correct: F.interpolate returns its result in the channels-last memory layout of its permuted input, so the "
        ".view after .permute(0, 2, 3, 1) is legal and gives the right table",
    ("check_warmup_cosine_lr", "division by zero when warmup_steps is 0"):
        "ambiguous: as written the answer has two mistakes, `step <= warmup_steps` and the division by zero; "
        "the checker names the first",
}
for _entry in MISTAKES:
    _entry["status"] = STATUS.get((_entry["checker"], _entry["label"]))
assert sum(e["status"] is not None for e in MISTAKES) == len(STATUS)
