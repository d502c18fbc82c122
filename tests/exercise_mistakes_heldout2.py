"""A second held-out list of wrong answers for the 22 exercise checkers (issue 25, item 3).

Written from the notebooks' exercise text and stubs alone: the writer did not read the checkers, the solutions,
tests/test_exercises.py or the first held-out list (tests/exercise_mistakes_heldout.py). Each entry is a mistake a
learner who knows Python and PyTorch, but not transformers, would plausibly make, with the words a message that
names the mistake (or the property it breaks) would contain; any one of them counts, case-insensitively. The
keywords were fixed, and this file committed, before any entry was run through a checker.

``status`` is None for a wrong answer. An entry found to be correct under the exercise's own rules after the
measurement gets a string saying why instead; it stays in the list but is left out of the share.
"""

PRELUDE = """
import math
import torch
import torch.nn.functional as F
from torch import einsum, nn
from einops import rearrange, reduce, repeat
"""


def _entry(checker, label, keywords, source, status=None):
    return dict(checker=checker, label=label, keywords=keywords, source=source.strip("\n") + "\n", status=status)


SCALE = ["scale", "√d", "sqrt", "factor"]
IN_PLACE = ["in place", "in-place", "modif", "input changed"]
GRAD = ["gradient", "detach", "requires_grad", "learn"]

MISTAKES = [
    # ---------------------------------------------------------------- 01 attention: scaled scores
    _entry("check_scaled_scores", "no 1/sqrt(d) at all", SCALE, """
def answer(q, k):
    return q @ k.transpose(-2, -1)
"""),
    _entry("check_scaled_scores", "k.T on batched tensors", ["transpos", ".T", "2-d", "axes"], """
def answer(q, k):
    return q @ k.T / math.sqrt(q.shape[-1])
"""),
    _entry("check_scaled_scores", "divides by d instead of sqrt(d)", SCALE, """
def answer(q, k):
    return q @ k.transpose(-2, -1) / q.shape[-1]
"""),
    _entry("check_scaled_scores", "keys against queries: (n_k, n_q)", ["transpos", "swap", "keys and queries",
                                                                       "queries and keys"], """
def answer(q, k):
    return k @ q.transpose(-2, -1) / math.sqrt(q.shape[-1])
"""),
    _entry("check_scaled_scores", "sqrt of the number of keys instead of d", SCALE, """
def answer(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(k.shape[-2])
"""),
    _entry("check_scaled_scores", "softmax applied: returns weights, not scores", ["softmax", "normalis",
                                                                                   "sum to 1", "probabilit"], """
def answer(q, k):
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
"""),
    # ---------------------------------------------------------------- 01 attention: attention
    _entry("check_attention", "softmax over the queries (dim=-2)", ["axis", "columns", "dim=", "over the queries"], """
def answer(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.softmax(dim=-2) @ v
"""),
    _entry("check_attention", "scale applied after the softmax", ["scale", "√d", "sqrt", "before the softmax"], """
def answer(q, k, v):
    weights = (q @ k.transpose(-2, -1)).softmax(dim=-1)
    return weights / math.sqrt(q.shape[-1]) @ v
"""),
    _entry("check_attention", "returns (output, weights)", ["tuple", "only the output", "two values"], """
def answer(q, k, v):
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    return weights @ v, weights
"""),
    _entry("check_attention", "scales by sqrt(d_v) instead of sqrt(d)", ["scale", "√d", "sqrt", "d_v"], """
def answer(q, k, v):
    weights = (q @ k.transpose(-2, -1) / math.sqrt(v.shape[-1])).softmax(dim=-1)
    return weights @ v
"""),
    _entry("check_attention", "scales q in place", IN_PLACE, """
def answer(q, k, v):
    q /= math.sqrt(q.shape[-1])
    return (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v
"""),
    _entry("check_attention", "weights transposed before multiplying v", ["transpos", "softmax", "axis",
                                                                          "columns"], """
def answer(q, k, v):
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    return weights.transpose(-2, -1) @ v
"""),
    # ---------------------------------------------------------------- 01 attention: causal
    _entry("check_causal_attention", "mask hides the diagonal too (triu diagonal=0)", ["diagonal", "itself", "nan",
                                                                                       "its own"], """
def answer(q, k, v):
    n = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.ones(n, n, dtype=torch.bool).triu()
    return scores.masked_fill(mask, float("-inf")).softmax(dim=-1) @ v
"""),
    _entry("check_causal_attention", "mask the wrong triangle: queries see the future", ["future", "above the diagonal",
                                                                                         "below the diagonal",
                                                                                         "transpos"], """
def answer(q, k, v):
    n = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.ones(n, n, dtype=torch.bool).tril(diagonal=-1)
    return scores.masked_fill(mask, float("-inf")).softmax(dim=-1) @ v
"""),
    _entry("check_causal_attention", "mask applied after the softmax, rows not renormalised",
           ["after the softmax", "renormal", "sum to 1", "rows sum"], """
def answer(q, k, v):
    n = q.shape[-2]
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)
    return (weights * torch.ones(n, n).tril()) @ v
"""),
    _entry("check_causal_attention", "masked scores set to 0 instead of -inf", ["−∞", "-inf", "infinity",
                                                                                "zero score"], """
def answer(q, k, v):
    n = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores * torch.ones(n, n).tril()
    return scores.softmax(dim=-1) @ v
"""),
    _entry("check_causal_attention", "no 1/sqrt(d)", SCALE, """
def answer(q, k, v):
    n = q.shape[-2]
    scores = q @ k.transpose(-2, -1)
    mask = torch.ones(n, n, dtype=torch.bool).triu(diagonal=1)
    return scores.masked_fill(mask, float("-inf")).softmax(dim=-1) @ v
"""),
    _entry("check_causal_attention", "softmax over the queries", ["axis", "columns", "dim=", "over the queries"], """
def answer(q, k, v):
    n = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.ones(n, n, dtype=torch.bool).triu(diagonal=1)
    return scores.masked_fill(mask, float("-inf")).softmax(dim=-2) @ v
"""),
    # ---------------------------------------------------------------- 02 einops: split heads
    _entry("check_split_heads", "(d h) order: heads interleaved", ["interleav", "order", "first d features",
                                                                   "head 0"], """
def answer(x, heads):
    return rearrange(x, "b n (d h) -> b h n d", h=heads)
"""),
    _entry("check_split_heads", "reshape straight to (b, heads, n, d)", ["reshape", "view", "transpose",
                                                                         "mixed"], """
def answer(x, heads):
    b, n, f = x.shape
    return x.reshape(b, heads, n, f // heads)
"""),
    _entry("check_split_heads", "heads not moved in front of tokens: (b, n, h, d)", ["transpos", "swap", "axes",
                                                                                    "heads and tokens"], """
def answer(x, heads):
    return rearrange(x, "b n (h d) -> b n h d", h=heads)
"""),
    _entry("check_split_heads", "heads passed as d=", ["number of heads", "d=", "per head", "heads="], """
def answer(x, heads):
    return rearrange(x, "b n (h d) -> b h n d", d=heads)
"""),
    _entry("check_split_heads", "last two axes swapped: (b, h, d, n)", ["transpos", "swap", "last two",
                                                                        "n and d"], """
def answer(x, heads):
    return rearrange(x, "b n (h d) -> b h d n", h=heads)
"""),
    _entry("check_split_heads", "heads stacked in front of the batch", ["batch", "swap", "axes", "transpos"], """
def answer(x, heads):
    return torch.stack(x.chunk(heads, dim=-1), dim=0)
"""),
    # ---------------------------------------------------------------- 02 einops: merge heads
    _entry("check_merge_heads", "(d h) order: features interleaved", ["interleav", "order", "head 0",
                                                                      "first d"], """
def answer(x):
    return rearrange(x, "b h n d -> b n (d h)")
"""),
    _entry("check_merge_heads", "reshape without moving the heads back", ["reshape", "view", "transpose",
                                                                          "mixed"], """
def answer(x):
    b, h, n, d = x.shape
    return x.reshape(b, n, h * d)
"""),
    _entry("check_merge_heads", "heads merged into the tokens: (b, h*n, d)", ["shape", "axis", "tokens"], """
def answer(x):
    return rearrange(x, "b h n d -> b (h n) d")
"""),
    _entry("check_merge_heads", "view after transpose (not contiguous)", ["contiguous", "reshape", "view"], """
def answer(x):
    b, h, n, d = x.shape
    return x.transpose(1, 2).view(b, n, h * d)
"""),
    _entry("check_merge_heads", "heads averaged instead of concatenated", ["concaten", "mean", "averag",
                                                                           "shape"], """
def answer(x):
    return reduce(x, "b h n d -> b n d", "mean")
"""),
    # ---------------------------------------------------------------- 02 einops: einsum scores
    _entry("check_einsum_scores", "no 1/sqrt(d)", SCALE, """
def answer(q, k):
    return einsum("bhid,bhjd->bhij", q, k)
"""),
    _entry("check_einsum_scores", "output indices swapped: (b, h, n_k, n_q)", ["transpos", "swap", "layout",
                                                                               "keys and queries"], """
def answer(q, k):
    return einsum("bhid,bhjd->bhji", q, k) / math.sqrt(q.shape[-1])
"""),
    _entry("check_einsum_scores", "h dropped from the output: summed over heads", ["heads", "summed", "shape"], """
def answer(q, k):
    return einsum("bhid,bhjd->bij", q, k) / math.sqrt(q.shape[-1])
"""),
    _entry("check_einsum_scores", "scaled by 1/d", SCALE, """
def answer(q, k):
    return einsum("bhid,bhjd->bhij", q, k) / q.shape[-1]
"""),
    _entry("check_einsum_scores", "scaled by the number of heads", SCALE, """
def answer(q, k):
    return einsum("bhid,bhjd->bhij", q, k) / math.sqrt(q.shape[1])
"""),
    _entry("check_einsum_scores", "k's axes labelled as if already transposed", ["transpos", "index", "subscript",
                                                                                 "axes"], """
def answer(q, k):
    return einsum("bhid,bhdj->bhij", q, k) / math.sqrt(q.shape[-1])
"""),
    # ---------------------------------------------------------------- 03 patches: patchify
    _entry("check_patchify", "numbers inside a patch as (c p1 p2)", ["channel", "(p1 p2 c)", "order",
                                                                     "inside a patch"], """
def answer(images, patch_size):
    return rearrange(images, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=patch_size, p2=patch_size)
"""),
    _entry("check_patchify", "patches column by column", ["column", "row by row", "order", "transpos"], """
def answer(images, patch_size):
    return rearrange(images, "b c (h p1) (w p2) -> b (w h) (p1 p2 c)", p1=patch_size, p2=patch_size)
"""),
    _entry("check_patchify", "(p1 h) instead of (h p1): strided pixels, not blocks", ["stride", "block", "interleav",
                                                                                      "(h p1)"], """
def answer(images, patch_size):
    return rearrange(images, "b c (p1 h) (p2 w) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)
"""),
    _entry("check_patchify", "grid size taken from the width for both sides", ["square", "h and w", "height",
                                                                               "width"], """
def answer(images, patch_size):
    side = images.shape[-1] // patch_size
    return rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", h=side, w=side)
"""),
    _entry("check_patchify", "channels-last pattern on channels-first images", ["channels-first", "channel",
                                                                                "(b, c, h, w)", "layout"], """
def answer(images, patch_size):
    return rearrange(images, "b (h p1) (w p2) c -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)
"""),
    _entry("check_patchify", "unfold then reshape without permuting", ["channel", "order", "(p1 p2 c)",
                                                                       "permut"], """
def answer(images, patch_size):
    b, c, H, W = images.shape
    p = patch_size
    patches = images.unfold(2, p, p).unfold(3, p, p)  # (b, c, h, w, p, p)
    return patches.reshape(b, -1, c * p * p)
"""),
    # ---------------------------------------------------------------- 03 patches: patch embedding
    _entry("check_patch_embedding", "weight not transposed: patches @ weight",
           ["transpos", "weight.t", "nn.linear"], """
def answer(images, weight, bias, patch_size):
    p = patch_size
    patches = rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)
    return patches @ weight + bias
"""),
    _entry("check_patch_embedding", "bias forgotten", ["bias", "offset", "constant"], """
def answer(images, weight, bias, patch_size):
    p = patch_size
    patches = rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)
    return patches @ weight.T
"""),
    _entry("check_patch_embedding", "patchify with (c p1 p2) inside a patch", ["channel", "(p1 p2 c)", "order",
                                                                              "patchify"], """
def answer(images, weight, bias, patch_size):
    p = patch_size
    patches = rearrange(images, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p)
    return F.linear(patches, weight, bias)
"""),
    _entry("check_patch_embedding", "F.linear with weight.T", ["transpos", "weight.t", "nn.linear"], """
def answer(images, weight, bias, patch_size):
    p = patch_size
    patches = rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)
    return F.linear(patches, weight.T, bias)
"""),
    _entry("check_patch_embedding", "conv2d with the weight viewed as (dim, c, p, p)", ["channel", "(p1 p2 c)",
                                                                                       "order", "weight layout"], """
def answer(images, weight, bias, patch_size):
    p, c = patch_size, images.shape[1]
    out = F.conv2d(images, weight.view(weight.shape[0], c, p, p), bias, stride=p)
    return out.flatten(2).transpose(1, 2)
"""),
    _entry("check_patch_embedding", "conv2d output left as (b, dim, n)", ["transpos", "swap", "axes",
                                                                          "(b, num_patches, dim)"], """
def answer(images, weight, bias, patch_size):
    p, c = patch_size, images.shape[1]
    w = rearrange(weight, "d (p1 p2 c) -> d c p1 p2", p1=p, p2=p, c=c)
    return F.conv2d(images, w, bias, stride=p).flatten(2)
"""),
    # ---------------------------------------------------------------- 04 vit: CLS token
    _entry("check_add_cls_token", "CLS appended at the end", ["at the end", "appended", "position 0", "front"], """
def answer(tokens, cls_token):
    return torch.cat([tokens, cls_token.expand(tokens.shape[0], -1, -1)], dim=1)
"""),
    _entry("check_add_cls_token", "concatenated along the batch axis", ["batch", "dim=1", "axis", "shape"], """
def answer(tokens, cls_token):
    return torch.cat([cls_token.expand(-1, tokens.shape[1], -1), tokens], dim=0)
"""),
    _entry("check_add_cls_token", "CLS added to every token instead of prepended", ["concaten", "added", "n + 1",
                                                                                    "shape"], """
def answer(tokens, cls_token):
    return tokens + cls_token
"""),
    _entry("check_add_cls_token", "no expand: only works for a batch of one", ["expand", "batch", "every image",
                                                                               "repeat"], """
def answer(tokens, cls_token):
    return torch.cat([cls_token, tokens], dim=1)
"""),
    _entry("check_add_cls_token", "token 0 overwritten in place", ["in place", "replac", "n + 1", "modif"], """
def answer(tokens, cls_token):
    tokens[:, 0] = cls_token[0]
    return tokens
"""),
    _entry("check_add_cls_token", "CLS detached: it never learns", GRAD, """
def answer(tokens, cls_token):
    return torch.cat([cls_token.detach().expand(tokens.shape[0], -1, -1), tokens], dim=1)
"""),
    # ---------------------------------------------------------------- 04 vit: position embedding
    _entry("check_add_position_embedding", "table added before the CLS: rows shifted by one",
           ["shift", "row 0", "off by one", "one position"], """
def answer(tokens, cls_token, pos_embedding):
    n = tokens.shape[1]
    x = tokens + pos_embedding[:, :n]
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), x], dim=1)
"""),
    _entry("check_add_position_embedding", "CLS put at the end", ["at the end", "appended", "position 0", "front"], """
def answer(tokens, cls_token, pos_embedding):
    x = torch.cat([tokens, cls_token.expand(tokens.shape[0], -1, -1)], dim=1)
    return x + pos_embedding
"""),
    _entry("check_add_position_embedding", "tokens += table in place", IN_PLACE, """
def answer(tokens, cls_token, pos_embedding):
    tokens += pos_embedding[:, 1:]
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1) + pos_embedding[:, :1], tokens], dim=1)
"""),
    _entry("check_add_position_embedding", "CLS gets no position row", ["row 0", "position 0", "cls row",
                                                                        "first row"], """
def answer(tokens, cls_token, pos_embedding):
    x = tokens + pos_embedding[:, 1:]
    return torch.cat([cls_token.expand(tokens.shape[0], -1, -1), x], dim=1)
"""),
    _entry("check_add_position_embedding", "table multiplied instead of added", ["multipl", "instead of add",
                                                                                 "product"], """
def answer(tokens, cls_token, pos_embedding):
    x = torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
    return x * pos_embedding
"""),
    _entry("check_add_position_embedding", "table detached: it never learns", GRAD, """
def answer(tokens, cls_token, pos_embedding):
    x = torch.cat([cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
    return x + pos_embedding.detach()
"""),
    # ---------------------------------------------------------------- 04 vit: feedforward
    _entry("check_feedforward", "ReLU instead of GELU", ["gelu", "relu", "activation"], """
def answer(x, w1, b1, w2, b2):
    return F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)
"""),
    _entry("check_feedforward", "tanh-approximated GELU", ["gelu", "tanh", "approximat", "exact"], """
def answer(x, w1, b1, w2, b2):
    return F.linear(F.gelu(F.linear(x, w1, b1), approximate="tanh"), w2, b2)
"""),
    _entry("check_feedforward", "no activation between the layers", ["activation", "gelu", "nonlinear",
                                                                     "non-linear"], """
def answer(x, w1, b1, w2, b2):
    return F.linear(F.linear(x, w1, b1), w2, b2)
"""),
    _entry("check_feedforward", "weights not transposed: x @ w1", ["transpos", "w1.t", "nn.linear"], """
def answer(x, w1, b1, w2, b2):
    return F.gelu(x @ w1 + b1) @ w2 + b2
"""),
    _entry("check_feedforward", "GELU after the second layer too", ["last layer", "second linear",
                                                                    "after the second", "output layer"], """
def answer(x, w1, b1, w2, b2):
    return F.gelu(F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2))
"""),
    _entry("check_feedforward", "residual added inside the MLP",
           ["residual", "skip", "input added", "the input itself"], """
def answer(x, w1, b1, w2, b2):
    return x + F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2)
"""),
    # ---------------------------------------------------------------- 04 vit: pre-norm block
    _entry("check_pre_norm_block", "post-norm block",
           ["post-norm", "after the residual", "norm after", "before the attention"], """
def answer(x, attn, mlp, norm1, norm2):
    x = norm1(x + attn(x))
    return norm2(x + mlp(x))
"""),
    _entry("check_pre_norm_block", "no residual connections", ["residual", "skip", "shortcut"], """
def answer(x, attn, mlp, norm1, norm2):
    x = attn(norm1(x))
    return mlp(norm2(x))
"""),
    _entry("check_pre_norm_block", "attention and MLP in parallel on the same input", ["parallel", "sequen",
                                                                                       "same input",
                                                                                       "updated"], """
def answer(x, attn, mlp, norm1, norm2):
    return x + attn(norm1(x)) + mlp(norm2(x))
"""),
    _entry("check_pre_norm_block", "norm1 used twice", ["norm2", "second norm", "same norm", "norm1 twice"], """
def answer(x, attn, mlp, norm1, norm2):
    x = x + attn(norm1(x))
    return x + mlp(norm1(x))
"""),
    _entry("check_pre_norm_block", "residual taken from the normalised input", ["residual", "skip",
                                                                                "un-normalised", "before the norm"], """
def answer(x, attn, mlp, norm1, norm2):
    h = norm1(x)
    x = h + attn(h)
    h = norm2(x)
    return h + mlp(h)
"""),
    _entry("check_pre_norm_block", "x += ... in place", IN_PLACE, """
def answer(x, attn, mlp, norm1, norm2):
    x += attn(norm1(x))
    x += mlp(norm2(x))
    return x
"""),
    # ---------------------------------------------------------------- 04 vit: head
    _entry("check_vit_head", "mean pooling includes the CLS token", ["patch tokens", "position 0", "include",
                                                                     "token 0"], """
def answer(x, norm, head, pool):
    x = norm(x)
    x = x[:, 0] if pool == "cls" else x.mean(dim=1)
    return head(x)
"""),
    _entry("check_vit_head", "final norm after pooling", ["before pooling", "after pooling", "before the pooling",
                                                          "after the pooling"], """
def answer(x, norm, head, pool):
    x = x[:, 0] if pool == "cls" else x[:, 1:].mean(dim=1)
    return head(norm(x))
"""),
    _entry("check_vit_head", "CLS read from the last token", ["last", "position 0", "token 0", "x[:, 0]"], """
def answer(x, norm, head, pool):
    x = norm(x)
    x = x[:, -1] if pool == "cls" else x[:, 1:].mean(dim=1)
    return head(x)
"""),
    _entry("check_vit_head", "final LayerNorm forgotten", ["layernorm", "final norm", "normalis"], """
def answer(x, norm, head, pool):
    x = x[:, 0] if pool == "cls" else x[:, 1:].mean(dim=1)
    return head(x)
"""),
    _entry("check_vit_head", "pool argument ignored: always CLS", ["mean", "pool"], """
def answer(x, norm, head, pool):
    return head(norm(x)[:, 0])
"""),
    _entry("check_vit_head", "mean over the batch axis", ["batch", "axis", "dim=1", "shape"], """
def answer(x, norm, head, pool):
    x = norm(x)
    x = x[:, 0] if pool == "cls" else x[:, 1:].mean(dim=0)
    return head(x)
"""),
    # ---------------------------------------------------------------- 05 training: learning-rate schedule
    _entry("check_warmup_cosine_lr", "warm-up starts at 0 (step, not step + 1)", ["off by one", "step 0", "step + 1",
                                                                                  "shift"], """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * progress))
"""),
    _entry("check_warmup_cosine_lr", "divides by warmup_steps even when it is 0",
           ["warmup_steps=0", "warmup_steps = 0", "no warm-up", "zerodivision"], """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    warm = base_lr * min(1.0, (step + 1) / warmup_steps)
    if step < warmup_steps:
        return warm
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * progress))
"""),
    _entry("check_warmup_cosine_lr", "cosine over all steps, not the remaining ones", ["remaining", "after the warm-up",
                                                                                      "progress", "offset"], """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = step / total_steps
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * progress))
"""),
    _entry("check_warmup_cosine_lr", "a full cosine period instead of half", ["half", "2π", "2*pi", "full period"], """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(2 * math.pi * progress))
"""),
    _entry("check_warmup_cosine_lr", "min_lr ignored: decays to 0", ["min_lr", "minimum", "floor", "offset"], """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return 0.5 * base_lr * (1 + math.cos(math.pi * progress))
"""),
    _entry("check_warmup_cosine_lr", "returns a tensor", ["float", "tensor", "type"], """
def answer(step, total_steps, warmup_steps, base_lr, min_lr):
    if step < warmup_steps:
        return torch.tensor(base_lr * (step + 1) / warmup_steps)
    progress = torch.tensor((step - warmup_steps) / (total_steps - warmup_steps))
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + torch.cos(math.pi * progress))
"""),
    # ---------------------------------------------------------------- 05 training: accuracy
    _entry("check_accuracy", "count instead of fraction", ["count", "fraction", "number of examples",
                                                           "divide"], """
def answer(logits, labels):
    return (logits.argmax(dim=1) == labels).sum().item()
"""),
    _entry("check_accuracy", "argmax over the examples (dim=0)",
           ["axis", "dim=", "argmax(dim=1)", "over the classes"], """
def answer(logits, labels):
    return (logits.argmax(dim=0) == labels).float().mean().item()
"""),
    _entry("check_accuracy", "mean of a bool tensor", ["bool", "float", "dtype"], """
def answer(logits, labels):
    return (logits.argmax(dim=1) == labels).mean().item()
"""),
    _entry("check_accuracy", "true-class probability above 0.5 instead of argmax", ["argmax", "largest", "0.5",
                                                                                    "threshold"], """
def answer(logits, labels):
    p = logits.softmax(dim=1).gather(1, labels[:, None]).squeeze(1)
    return (p > 0.5).float().mean().item()
"""),
    _entry("check_accuracy", "percentage instead of fraction", ["percent", "factor", "fraction", "×100"], """
def answer(logits, labels):
    return 100.0 * (logits.argmax(dim=1) == labels).float().mean().item()
"""),
    _entry("check_accuracy", "integer division of the count", ["integer", "fraction", "divide", "floor division"], """
def answer(logits, labels):
    return int((logits.argmax(dim=1) == labels).sum()) // len(labels)
"""),
    # ---------------------------------------------------------------- 05 training: train step
    _entry("check_train_step", "gradients never cleared", ["zero_grad", "accumulat", "clear"], """
def answer(model, optimizer, images, labels):
    model.train()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
    _entry("check_train_step", "zero_grad between backward and step", ["zero_grad", "order", "cleared",
                                                                       "before backward"], """
def answer(model, optimizer, images, labels):
    model.train()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()
"""),
    _entry("check_train_step", "softmax before the cross-entropy", ["softmax", "probabilit", "twice"], """
def answer(model, optimizer, images, labels):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images).softmax(dim=-1), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
    _entry("check_train_step", "model put in eval mode to avoid dropout noise",
           ["train mode", "eval mode", "model.train", "mode after"], """
def answer(model, optimizer, images, labels):
    model.eval()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
    _entry("check_train_step", "optimizer.step() before backward()",
           ["order", "before backward", "before loss.backward", "after backward"], """
def answer(model, optimizer, images, labels):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    optimizer.step()
    loss.backward()
    return loss.item()
"""),
    _entry("check_train_step", "nll_loss on raw logits", ["nll", "log_softmax", "log-probab"], """
def answer(model, optimizer, images, labels):
    model.train()
    optimizer.zero_grad()
    loss = F.nll_loss(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
    # ---------------------------------------------------------------- 05 training: evaluate
    _entry("check_evaluate", "model.eval() forgotten", ["eval()", "dropout", "eval mode", "model.eval"], """
def answer(model, images, labels):
    with torch.no_grad():
        return (model(images).argmax(dim=1) == labels).float().mean().item()
"""),
    _entry("check_evaluate", "model left in eval mode", ["train mode", "restore", "model.train", "mode it came in"], """
def answer(model, images, labels):
    model.eval()
    with torch.no_grad():
        return (model(images).argmax(dim=1) == labels).float().mean().item()
"""),
    _entry("check_evaluate", "always switches back to train mode",
           ["came in", "eval mode", "restore", "mode it came"], """
def answer(model, images, labels):
    model.eval()
    with torch.no_grad():
        acc = (model(images).argmax(dim=1) == labels).float().mean().item()
    model.train()
    return acc
"""),
    _entry("check_evaluate", "no torch.no_grad()", ["no_grad", "gradient", "grad"], """
def answer(model, images, labels):
    was_training = model.training
    model.eval()
    acc = (model(images).argmax(dim=1) == labels).float().mean().item()
    model.train(was_training)
    return acc
"""),
    _entry("check_evaluate", "count instead of fraction", ["count", "fraction", "divide"], """
def answer(model, images, labels):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        correct = (model(images).argmax(dim=1) == labels).sum().item()
    model.train(was_training)
    return correct
"""),
    _entry("check_evaluate", "argmax over the batch axis", ["axis", "dim=", "argmax(dim=1)", "over the classes"], """
def answer(model, images, labels):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        acc = (model(images).argmax(dim=0) == labels).float().mean().item()
    model.train(was_training)
    return acc
"""),
    # ---------------------------------------------------------------- 06 analysis: rollout
    _entry("check_attention_rollout", "residual (identity) path left out", ["residual", "identity", "eye",
                                                                            "half"], """
def answer(maps):
    r = None
    for m in maps:
        a = m.mean(dim=1)
        r = a if r is None else a @ r
    return r
"""),
    _entry("check_attention_rollout", "layers multiplied with the first on the left", ["order", "revers",
                                                                                       "first layer", "right"], """
def answer(maps):
    n = maps[0].shape[-1]
    eye = torch.eye(n)
    r = eye
    for m in maps:
        a = 0.5 * m.mean(dim=1) + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        r = r @ a
    return r
"""),
    _entry("check_attention_rollout", "max over heads instead of the mean", ["mean", "average", "max"], """
def answer(maps):
    n = maps[0].shape[-1]
    eye = torch.eye(n)
    r = eye
    for m in maps:
        a = 0.5 * m.max(dim=1).values + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        r = a @ r
    return r
"""),
    _entry("check_attention_rollout", "rows renormalised over the columns axis", ["rows", "columns", "normalis",
                                                                                  "axis"], """
def answer(maps):
    n = maps[0].shape[-1]
    eye = torch.eye(n)
    r = eye
    for m in maps:
        a = 0.5 * m.mean(dim=1) + 0.5 * eye
        a = a / a.sum(dim=-2, keepdim=True)
        r = a @ r
    return r
"""),
    _entry("check_attention_rollout", "layers summed instead of multiplied",
           ["product", "multipl", "summed", "added up"], """
def answer(maps):
    n = maps[0].shape[-1]
    eye = torch.eye(n)
    r = 0
    for m in maps:
        a = 0.5 * m.mean(dim=1) + 0.5 * eye
        r = r + a / a.sum(dim=-1, keepdim=True)
    return r / len(maps)
"""),
    _entry("check_attention_rollout", "last layer dropped (off by one in the loop)",
           ["missing", "one fewer", "layer count",
                                                                                      "last layer"], """
def answer(maps):
    n = maps[0].shape[-1]
    eye = torch.eye(n)
    r = eye
    for i in range(len(maps) - 1):
        a = 0.5 * maps[i].mean(dim=1) + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        r = a @ r
    return r
"""),
    # ---------------------------------------------------------------- 07 finetuning: resize position table
    _entry("check_resize_pos_embedding", "CLS row dropped", ["row 0", "shape", "missing", "cls row"], """
def answer(pos, grid):
    s = int(math.isqrt(pos.shape[1] - 1))
    img = rearrange(pos[:, 1:], "1 (s1 s2) d -> 1 d s1 s2", s1=s, s2=s)
    img = F.interpolate(img, size=grid, mode="bicubic", align_corners=False)
    return rearrange(img, "1 d h w -> 1 (h w) d")
"""),
    _entry("check_resize_pos_embedding", "bilinear instead of bicubic", ["bicubic", "bilinear", "mode="], """
def answer(pos, grid):
    s = int(math.isqrt(pos.shape[1] - 1))
    img = rearrange(pos[:, 1:], "1 (s1 s2) d -> 1 d s1 s2", s1=s, s2=s)
    img = F.interpolate(img, size=grid, mode="bilinear", align_corners=False)
    return torch.cat([pos[:, :1], rearrange(img, "1 d h w -> 1 (h w) d")], dim=1)
"""),
    _entry("check_resize_pos_embedding", "align_corners=True", ["align_corners", "corner"], """
def answer(pos, grid):
    s = int(math.isqrt(pos.shape[1] - 1))
    img = rearrange(pos[:, 1:], "1 (s1 s2) d -> 1 d s1 s2", s1=s, s2=s)
    img = F.interpolate(img, size=grid, mode="bicubic", align_corners=True)
    return torch.cat([pos[:, :1], rearrange(img, "1 d h w -> 1 (h w) d")], dim=1)
"""),
    _entry("check_resize_pos_embedding", "reshape to (1, dim, s, s) without permuting", ["reshape", "permut",
                                                                                        "channel", "layout"], """
def answer(pos, grid):
    dim = pos.shape[-1]
    s = int(math.isqrt(pos.shape[1] - 1))
    img = pos[:, 1:].reshape(1, dim, s, s)
    img = F.interpolate(img, size=grid, mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], img.reshape(1, dim, -1).transpose(1, 2)], dim=1)
"""),
    _entry("check_resize_pos_embedding", "new grid given as (w, h)", ["swap", "transpos", "height", "(h, w)"], """
def answer(pos, grid):
    h, w = grid
    s = int(math.isqrt(pos.shape[1] - 1))
    img = rearrange(pos[:, 1:], "1 (s1 s2) d -> 1 d s1 s2", s1=s, s2=s)
    img = F.interpolate(img, size=(w, h), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], rearrange(img, "1 d a b -> 1 (a b) d")], dim=1)
"""),
    _entry("check_resize_pos_embedding", "flattened back column by column", ["column", "row by row", "transpos",
                                                                             "order"], """
def answer(pos, grid):
    s = int(math.isqrt(pos.shape[1] - 1))
    img = rearrange(pos[:, 1:], "1 (s1 s2) d -> 1 d s1 s2", s1=s, s2=s)
    img = F.interpolate(img, size=grid, mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], rearrange(img, "1 d h w -> 1 (w h) d")], dim=1)
"""),
    # ---------------------------------------------------------------- 10 small data: shift images
    _entry("check_shift_images", "torch.roll: pixels wrap round", ["wrap", "roll", "zero"], """
def answer(x, dy, dx):
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))
"""),
    _entry("check_shift_images", "direction reversed", ["direction", "negative", "opposite", "revers"], """
def answer(x, dy, dx):
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    dy, dx = -dy, -dx
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out
"""),
    _entry("check_shift_images", "dy moves columns and dx rows",
           ["swap", "rows and columns", "columns and rows", "transpos"], """
def answer(x, dy, dx):
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    dy, dx = dx, dy
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out
"""),
    _entry("check_shift_images", "x[..., :-dy] breaks for a zero shift", ["zero shift", "dy=0", "dy = 0",
                                                                          "no shift"], """
def answer(x, dy, dx):
    out = torch.zeros_like(x)
    if dy >= 0:
        out[..., dy:, :] = x[..., :-dy, :]
    else:
        out[..., :dy, :] = x[..., -dy:, :]
    res = torch.zeros_like(x)
    if dx >= 0:
        res[..., :, dx:] = out[..., :, :-dx]
    else:
        res[..., :, :dx] = out[..., :, -dx:]
    return res
"""),
    _entry("check_shift_images", "breaks for a shift larger than the image", ["larger than", "beyond",
                                                                              "bigger than", "outside"], """
def answer(x, dy, dx):
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out
"""),
    _entry("check_shift_images", "edge pixels replicated instead of zeros", ["zero", "replicat", "edge",
                                                                             "fill"], """
def answer(x, dy, dx):
    h, w = x.shape[-2:]
    padded = F.pad(x, (abs(dx), abs(dx), abs(dy), abs(dy)), mode="replicate")
    top, left = abs(dy) - dy, abs(dx) - dx
    return padded[..., top:top + h, left:left + w]
"""),
    # ---------------------------------------------------------------- 10 small data: shift sensitivity
    _entry("check_shift_sensitivity", "only two of the four shifts",
           ["four", "two shifts", "left and up", "missing shift"], """
def _shift(x, dy, dx):
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]

def answer(features, images):
    f = features(images).flatten(1)
    changes = []
    for dy, dx in [(0, 1), (1, 0)]:
        g = features(_shift(images, dy, dx)).flatten(1)
        changes.append((g - f).norm(dim=1) / f.norm(dim=1))
    return torch.cat(changes).mean().item()
"""),
    _entry("check_shift_sensitivity", "norms of the whole batch, not per image",
           ["per image", "each image", "whole batch",
                                                                                  "influence"], """
def _shift(x, dy, dx):
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]

def answer(features, images):
    f = features(images)
    changes = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        g = features(_shift(images, dy, dx))
        changes.append(((g - f).norm() / f.norm()).item())
    return sum(changes) / len(changes)
"""),
    _entry("check_shift_sensitivity", "absolute change, not relative", ["relative", "divide", "denominator",
                                                                        "|features(image)|"], """
def _shift(x, dy, dx):
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]

def answer(features, images):
    f = features(images).flatten(1)
    changes = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        g = features(_shift(images, dy, dx)).flatten(1)
        changes.append((g - f).norm(dim=1))
    return torch.cat(changes).mean().item()
"""),
    _entry("check_shift_sensitivity", "divides by the shifted image's features",
           ["denominator", "relative", "divide"], """
def _shift(x, dy, dx):
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]

def answer(features, images):
    f = features(images).flatten(1)
    changes = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        g = features(_shift(images, dy, dx)).flatten(1)
        changes.append((g - f).norm(dim=1) / g.norm(dim=1))
    return torch.cat(changes).mean().item()
"""),
    _entry("check_shift_sensitivity", "shifts with torch.roll", ["wrap", "roll", "zero"], """
def answer(features, images):
    f = features(images).flatten(1)
    changes = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        g = features(torch.roll(images, shifts=(dy, dx), dims=(2, 3))).flatten(1)
        changes.append((g - f).norm(dim=1) / f.norm(dim=1))
    return torch.cat(changes).mean().item()
"""),
    _entry("check_shift_sensitivity", "squared norms", ["squared", "square"], """
def _shift(x, dy, dx):
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]

def answer(features, images):
    f = features(images).flatten(1)
    changes = []
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        g = features(_shift(images, dy, dx)).flatten(1)
        changes.append(((g - f) ** 2).sum(dim=1) / (f ** 2).sum(dim=1))
    return torch.cat(changes).mean().item()
"""),
    # ---------------------------------------------------------------- 10 small data: distillation loss
    _entry("check_distillation_loss", "soft teacher targets instead of its argmax", ["hard", "argmax", "soft",
                                                                                     "predicted class"], """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    return 0.5 * F.cross_entropy(cls_logits, labels) + 0.5 * F.cross_entropy(dist_logits,
                                                                              teacher_logits.softmax(dim=-1))
"""),
    _entry("check_distillation_loss", "no halves: the sum of the two losses", ["half", "factor", "twice", "double"], """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    return F.cross_entropy(cls_logits, labels) + F.cross_entropy(dist_logits, teacher_logits.argmax(dim=-1))
"""),
    _entry("check_distillation_loss", "heads swapped: class head on the teacher", ["swap", "the other way",
                                                                                   "class head",
                                                                                   "distillation head"], """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    return 0.5 * F.cross_entropy(dist_logits, labels) + 0.5 * F.cross_entropy(cls_logits,
                                                                               teacher_logits.argmax(dim=-1))
"""),
    _entry("check_distillation_loss", "teacher's argmax over the examples",
           ["axis", "dim=", "argmax(dim=-1)", "over the classes"], """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    return 0.5 * F.cross_entropy(cls_logits, labels) + 0.5 * F.cross_entropy(dist_logits,
                                                                              teacher_logits.argmax(dim=0))
"""),
    _entry("check_distillation_loss", "teacher ignored: both heads on the labels",
           ["ignored", "argmax", "predicted class", "labels twice"], """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    return 0.5 * F.cross_entropy(cls_logits, labels) + 0.5 * F.cross_entropy(dist_logits, labels)
"""),
    _entry("check_distillation_loss", "class head used twice, distillation head unused", ["dist_logits",
                                                                                          "distillation head",
                                                                                          "unused"], """
def answer(cls_logits, dist_logits, labels, teacher_logits):
    return 0.5 * F.cross_entropy(cls_logits, labels) + 0.5 * F.cross_entropy(cls_logits,
                                                                              teacher_logits.argmax(dim=-1))
"""),
]
