"""The exercise checkers: they accept the solutions, reject typical wrong answers by name, and never raise.

A checker that accepted a wrong answer would teach the wrong thing, and one that said only "wrong
values" would teach nothing. So every checker is run here against its solution in ``solutions/``, an
unfinished stub, and a list of typical mistakes (``WRONG``) written the way a learner would write
them, independently of the mistake tables inside the checkers: each must be rejected, and its
message must contain the words that name that mistake.
"""
import contextlib
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vit_tutorial import Attention, ViT, attention_scores, einsum_attention, exercises, pool_tokens, prepend_cls_token
from vit_tutorial.analysis import attention_rollout
from vit_tutorial.attention import merge_heads, split_heads
from vit_tutorial.exercises import EXERCISES
from vit_tutorial.finetune import resize_pos_embedding
from vit_tutorial.optim import lr_at
from vit_tutorial.step import accuracy, train_step

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
CHECKERS = [name for names in EXERCISES.values() for name in names]


def load_solutions(notebook: str):
    spec = importlib.util.spec_from_file_location(f"solutions_{notebook}", SOLUTIONS / f"{notebook}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution_for(checker: str):
    notebook = next(nb for nb, names in EXERCISES.items() if checker in names)
    return getattr(load_solutions(notebook), "my_" + checker.removeprefix("check_"))


def verdict(checker: str, fn, capsys):
    result = getattr(exercises, checker)(fn)
    return result, capsys.readouterr().out


# --------------------------------------------------------------------------- typical wrong answers
# Written as a learner would, independently of the checkers' own mistake tables (other code, same mistake).

def scores(q, k):
    return torch.matmul(q, k.transpose(-1, -2))


def sqrt_d(q):
    return math.sqrt(q.size(-1))


def causal(n):
    return torch.ones(n, n, dtype=torch.bool).tril()


def scores_in_place(q, k):
    q /= math.sqrt(q.shape[-1])
    return q @ k.mT


def attention_manual_softmax(q, k, v):
    e = torch.exp(scores(q, k) / sqrt_d(q))
    e /= e.sum(-1, keepdim=True)  # changes exp's output, which autograd saved
    return e @ v


def merge_rotated(x):
    heads = list(x.unbind(1))
    return torch.cat(heads[1:] + heads[:1], dim=-1)


def cls_on_first_image_only(t, c):
    out = torch.cat([torch.zeros_like(t[:, :1]), t], dim=1)
    out[0, 0] = c[0, 0]
    return out


def block_in_place(x, attn, mlp, norm1, norm2):
    x += attn(norm1(x))
    return x + mlp(norm2(x))


def block_swapped(x, attn, mlp, norm1, norm2):
    x = x + mlp(norm2(x))
    return x + attn(norm1(x))


def block_detached_residual(x, attn, mlp, norm1, norm2):
    x = x.detach() + attn(norm1(x))
    return x + mlp(norm2(x))


def head_mean_or_cls(x, pool, include_cls=False, dim=1):
    if pool == "cls":
        return x[:, 0]
    return x.mean(dim) if include_cls else x[:, 1:].mean(dim)


def lr(step, total, warmup, base, low, *, warm_from_zero=False, ignore_min=False, skip_warmup=False,
       cosine_from_zero=False, le=False, floor_div=False, quarter=False, over_total=False, add_min=False,
       full=False, no_half=False, early_end=False, constant=False):
    """lr_at rewritten with one switch per typical mistake."""
    if not skip_warmup and warmup and (step <= warmup if le else step < warmup):
        if floor_div:
            return (step + 1) // warmup * base
        return base * (step if warm_from_zero else step + 1) / warmup
    start = 0 if cosine_from_zero or skip_warmup else warmup
    span = total if over_total else total - start - (1 if early_end else 0)
    t = 0.0 if constant else min(1.0, (step - start) / max(1, span))
    low = 0.0 if ignore_min else low
    angle = math.pi * t * (0.5 if quarter else 2.0 if full else 1.0)
    if add_min:
        return low + 0.5 * base * (1 + math.cos(angle))
    return low + (1.0 if no_half else 0.5) * (base - low) * (1 + math.cos(angle))


def lr_unguarded(step, total, warmup, base, low):
    warm = base * (step + 1) / warmup  # ZeroDivisionError when there is no warm-up
    return warm if step < warmup else lr(step, total, warmup, base, low)


def lr_warmup_five(step, total, warmup, base, low):
    if step < 5:
        return base * (step + 1) / 5
    return lr(step, total, warmup, base, low)


def pad_shift(x, dy, dx):
    """A shift written another way than the package's: pad by |d| on both sides, then crop."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (abs(dx), abs(dx), abs(dy), abs(dy)))
    return padded[..., abs(dy) - dy:abs(dy) - dy + h, abs(dx) - dx:abs(dx) - dx + w]


def relative_max(f, x):
    base = f(x).flatten(1)
    return max(((f(pad_shift(x, dy, dx)).flatten(1) - base).norm(dim=1) / base.norm(dim=1)).max()
               for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)))


def relative_to_moved(f, x):
    base, out = f(x).flatten(1), []
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        moved = f(pad_shift(x, dy, dx)).flatten(1)
        out.append((moved - base).norm(dim=1) / moved.norm(dim=1))
    return torch.stack(out).mean()


def relative_change(f, x, moves=((0, 1), (0, -1), (1, 0), (-1, 0)), relative=True):
    base = f(x).flatten(1)
    out = [(f(pad_shift(x, dy, dx)).flatten(1) - base).norm(dim=1) / (base.norm(dim=1) if relative else 1)
           for dy, dx in moves]
    return torch.stack(out).mean()


def lr_linear(step, total, warmup, base, low):
    if step < warmup:
        return base * (step + 1) / warmup
    return base - (base - low) * (step - warmup) / (total - warmup)


def step_without_zero_grad(model, optimizer, images, labels):
    loss = nn.CrossEntropyLoss()(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_softmax_first(model, optimizer, images, labels):
    optimizer.zero_grad()
    probs = torch.softmax(model(images), dim=1)
    loss = nn.CrossEntropyLoss()(probs, labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_without_step(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    return loss.item()


def step_without_backward(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    optimizer.step()
    return loss.item()


def step_before_backward(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    optimizer.step()
    loss.backward()
    return loss.item()


def step_zero_grad_too_late(model, optimizer, images, labels):
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def step_own_optimizer(model, optimizer, images, labels):
    own = torch.optim.SGD(model.parameters(), lr=0.1)
    own.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    own.step()
    return loss.item()


def step_backward_on_item(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels).item()
    loss.backward()
    optimizer.step()
    return loss


def step_under_no_grad(model, optimizer, images, labels):
    optimizer.zero_grad()
    with torch.no_grad():
        logits = model(images)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_nll(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.nll_loss(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_summed(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels, reduction="sum")
    loss.backward()
    optimizer.step()
    return loss.item()


def step_loss_after_update(model, optimizer, images, labels):
    optimizer.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()
    with torch.no_grad():
        return F.cross_entropy(model(images), labels).item()


def step_no_return(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()


def evaluate_with(model, images, labels, *, eval_mode=True, no_grad=True, restore="came", score=None):
    was = model.training
    if eval_mode:
        model.eval()
    with torch.no_grad() if no_grad else contextlib.nullcontext():
        logits = model(images)
    if restore == "came":
        model.train(was)
    elif restore == "train":
        model.train()
    preds = logits.argmax(-1)
    return score(logits, labels) if score else (preds == labels).float().mean().item()


def rollout(maps, *, residual=True, order="left", heads="mean", combine="matmul", renorm=True, start=None):
    n = maps[0].shape[-1]
    r = start
    for a in maps:
        a = {"mean": a.mean(1), "max": a.max(1).values, "sum": a.sum(1)}[heads]
        if residual:
            a = a + torch.eye(n) if not renorm else (a + torch.eye(n)) / 2
        if r is None:
            r = a
        elif combine == "add":
            r = r + a
        elif combine == "mul":
            r = r * a
        else:
            r = a @ r if order == "left" else r @ a
    return r


def rollout_eye_five(maps):
    r = torch.eye(5)
    for a in maps:
        r = (0.5 * a.mean(1) + 0.5 * torch.eye(5)) @ r
    return r


def resize(pos, grid, *, mode="bicubic", corners=False, keep_cls=True, cls_last=False, swap=False, straight=False,
           columns=False, zero_cls=False, side=None):
    cls, rows = pos[:, :1], pos[:, 1:]
    s = side or int(rows.shape[1] ** 0.5)
    img = rows.reshape(1, -1, s, s) if straight else rows.reshape(1, s, s, -1).permute(0, 3, 1, 2)
    size = (grid[1], grid[0]) if swap else tuple(grid)
    extra = {} if mode == "nearest" else {"align_corners": corners}
    img = F.interpolate(img, size=size, mode=mode, **extra)
    rows = (img.permute(0, 3, 2, 1) if columns else img.permute(0, 2, 3, 1)).reshape(1, grid[0] * grid[1], -1)
    if zero_cls:
        cls = torch.zeros_like(cls)
    if not keep_cls:
        return rows
    return torch.cat([rows, cls] if cls_last else [cls, rows], dim=1)


def resize_1d(pos, grid, with_cls=False):
    seq = pos if with_cls else pos[:, 1:]
    new = F.interpolate(seq.permute(0, 2, 1), size=grid[0] * grid[1] + with_cls, mode="linear")
    return new.permute(0, 2, 1) if with_cls else torch.cat([pos[:, :1], new.permute(0, 2, 1)], dim=1)


def sdpa(q, k, v, **kw):
    return F.scaled_dot_product_attention(q, k, v, **kw)


def patch_rows(x, p, pattern="b c (h p1) (w p2) -> b (h w) (p1 p2 c)", **kw):
    return rearrange(x, pattern, **({"p1": p, "p2": p} if not kw else kw))


def conv_embed(x, w, b, p, stride=None, weight_order="p p c"):
    dim, c = w.shape[0], x.shape[1]
    kernel = w.view(dim, c, p, p) if weight_order == "c p p" else w.view(dim, p, p, c).permute(0, 3, 1, 2)
    return F.conv2d(x, kernel, b, stride=stride or p)


def mlp(x, w1, b1, w2, b2, act=F.gelu):
    return act(x @ w1.T + b1) @ w2.T + b2


def pool_head(x, norm, head, pool):
    return head(head_mean_or_cls(norm(x), pool))


# (checker, typical wrong answer, words its message must contain)
WRONG = [
    ("check_scaled_scores", lambda q, k: scores(q, k), "forgot to divide by √d"),
    ("check_scaled_scores", lambda q, k: torch.einsum("...id,...jd->...ij", q, k) / q.size(-1), "divided by d"),
    ("check_scaled_scores", lambda q, k: scores(q, k) * sqrt_d(q), "multiplied by √d"),
    ("check_scaled_scores", lambda q, k: torch.matmul(k, q.transpose(-1, -2)) / sqrt_d(q), "transposed"),
    ("check_scaled_scores", lambda q, k: scores(q, k) / math.sqrt(8), "hard-coded"),
    ("check_scaled_scores", lambda q, k: q @ k.T / sqrt_d(q), "reverses *all* its axes"),
    ("check_scaled_scores", scores_in_place, "changes its input `q` in place"),
    ("check_scaled_scores", lambda q, k: scores(q, k) / math.sqrt(q.shape[-2]), "number of queries"),
    ("check_scaled_scores", lambda q, k: (scores(q, k) / sqrt_d(q)).detach(), "no gradient history"),
    ("check_scaled_scores",
     lambda q, k: torch.from_numpy(q.numpy() @ np.swapaxes(k.numpy(), -1, -2) / math.sqrt(q.shape[-1])),
     "with gradients on"),

    ("check_attention", lambda q, k, v: sdpa(q, k, v, scale=1.0), "forgot to divide by √d"),
    ("check_attention", lambda q, k, v: torch.softmax(scores(q, k) / sqrt_d(q), dim=-2) @ v, "over the queries"),
    ("check_attention", lambda q, k, v: torch.softmax(scores(q, k) / sqrt_d(q), -1), "returned the attention weights"),
    ("check_attention", lambda q, k, v: scores(q, k) / sqrt_d(q) @ v, "no softmax"),
    ("check_attention", lambda q, k, v: F.softmax(scores(q, k) / sqrt_d(q)) @ v, "without dim="),
    ("check_attention", lambda q, k, v: torch.softmax(scores(q, k), -1) @ v / sqrt_d(q), "after the softmax"),
    ("check_attention", lambda q, k, v: torch.softmax(scores(q, k) / sqrt_d(q), -1) @ k, "averaged the keys"),
    ("check_attention", lambda q, k, v: torch.softmax(torch.softmax(scores(q, k) / sqrt_d(q), -1), -1) @ v,
     "applied twice"),
    ("check_attention", lambda q, k, v: einsum_attention(q, k, v), "tuple of 2 items"),
    ("check_attention", lambda q, k, v: F.softmax(scores(q, k) / sqrt_d(q), dim=1) @ v, "axis 1"),
    ("check_attention", attention_manual_softmax, "changed in place"),
    ("check_attention", lambda q, k, v: torch.softmax(scores(q, k) / math.sqrt(v.shape[-1]), -1) @ v, "v's"),
    ("check_attention", lambda q, k, v: torch.sigmoid(scores(q, k) / sqrt_d(q)) @ v, "sigmoid"),
    ("check_attention", lambda q, k, v: torch.softmax(scores(q, k) / sqrt_d(q), -1).mT @ v, "weights were transposed"),
    ("check_attention", lambda q, k, v: sdpa(q, k, v, is_causal=True), "causal mask"),

    ("check_causal_attention", lambda q, k, v: sdpa(q, k, v), "nothing is masked"),
    ("check_causal_attention", lambda q, k, v: sdpa(q, k, v, attn_mask=causal(q.shape[-2]).T), "wrong triangle"),
    ("check_causal_attention", lambda q, k, v: sdpa(q, k, v, attn_mask=causal(q.shape[-2]).tril(-1)), "diagonal"),
    ("check_causal_attention",
     lambda q, k, v: (scores(q, k) / sqrt_d(q)).masked_fill(causal(q.shape[-2]), float("-inf")).softmax(-1) @ v,
     "inverted"),
    ("check_causal_attention",
     lambda q, k, v: ((scores(q, k) / sqrt_d(q)).softmax(-1) * causal(q.shape[-2])) @ v, "after the softmax"),
    ("check_causal_attention",
     lambda q, k, v: torch.where(causal(q.shape[-2]), scores(q, k) / sqrt_d(q), 0.0).softmax(-1) @ v, "set to 0"),
    ("check_causal_attention",
     lambda q, k, v: (scores(q, k) / sqrt_d(q) + (1 - causal(q.shape[-2]).float()) * float("-inf")).softmax(-1) @ v,
     "NaN"),
    ("check_causal_attention",
     lambda q, k, v: (scores(q, k) / sqrt_d(q)).masked_fill(~causal(5), float("-inf")).softmax(-1) @ v,
     "mask's size"),
    ("check_causal_attention",
     lambda q, k, v: (scores(q, k) / sqrt_d(q)).masked_fill(~causal(q.shape[-1]), float("-inf")).softmax(-1) @ v,
     "mask's size"),
    ("check_causal_attention",
     lambda q, k, v: scores(q, k).masked_fill(~causal(q.shape[-2]), float("-inf")).softmax(-1) @ v, "not scaled"),
    ("check_causal_attention",
     lambda q, k, v: (scores(q, k) / sqrt_d(q)).masked_fill(~causal(q.shape[-2]), -1e9).softmax(-2) @ v,
     "over the queries"),

    ("check_split_heads", lambda x, h: rearrange(x, "b n (d h) -> b h n d", h=h), "interleaved"),
    ("check_split_heads", lambda x, h: x.view(x.shape[0], h, x.shape[1], -1), "without moving"),
    ("check_split_heads", lambda x, h: x.view(x.shape[0], x.shape[1], h, -1), "not moved in front"),
    ("check_split_heads", lambda x, h: rearrange(x, "b n (h d) -> b h n d", d=h), "as d"),
    ("check_split_heads", lambda x, h: x.view(x.shape[0], x.shape[1], h, -1).permute(0, 2, 3, 1),
     "last two axes are swapped"),
    ("check_split_heads", lambda x, h: rearrange(x, "b n (h d) -> (b h) n d", h=h), "merged into the batch"),
    ("check_split_heads", lambda x, h: rearrange(x, "b n (h d) -> b h n d", h=3), "hard-coded"),
    ("check_split_heads", lambda x, h: torch.stack(x.chunk(h, dim=-1), dim=0), "in front of the batch"),

    ("check_merge_heads", lambda x: rearrange(x, "b h n d -> b n (d h)"), "interleaved"),
    ("check_merge_heads", lambda x: x.reshape(x.shape[0], x.shape[2], -1), "without moving"),
    ("check_merge_heads", lambda x: x.transpose(1, 2), "not merged"),
    ("check_merge_heads", lambda x: x.mean(dim=1), "averaged the heads"),
    ("check_merge_heads", lambda x: torch.cat([x[:, i] for i in range(x.shape[1])], dim=1), "along the tokens"),
    ("check_merge_heads", lambda x: torch.cat([x[:, i] for i in reversed(range(x.shape[1]))], dim=-1),
     "reverse order"),
    ("check_merge_heads", lambda x: x.transpose(1, 2).view(x.shape[0], x.shape[2], -1), "`.view` needs"),
    ("check_merge_heads", merge_rotated, "wrong order"),
    ("check_merge_heads", lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1), "interleaved"),
    ("check_merge_heads", lambda x: x.transpose(1, 2).flatten(1), "flattened too"),

    ("check_einsum_scores", lambda q, k: torch.einsum("bhid,bhjd->bhij", q, k), "forgot to divide by √d"),
    ("check_einsum_scores", lambda q, k: torch.einsum("bhid,bhjd->bhji", q, k) / sqrt_d(q), "transposed"),
    ("check_einsum_scores", lambda q, k: torch.einsum("bhid,bhjd->bij", q, k) / sqrt_d(q), "summed away"),
    ("check_einsum_scores", lambda q, k: torch.einsum("bhid,bhid->bhi", q, k) / sqrt_d(q), "share one letter"),
    ("check_einsum_scores", lambda q, k: torch.einsum("bhid,bhjd->bhij", q, k) / q.shape[-1], "divided by d"),
    ("check_einsum_scores", lambda q, k: torch.einsum("bhid,bhjd->bhid", q, k) / sqrt_d(q), "over the keys"),
    ("check_einsum_scores", lambda q, k: torch.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(q.shape[2]),
     "number of queries"),
    ("check_einsum_scores", lambda q, k: torch.einsum("bhqd,bhkd->bhqk", q, k) * 8 ** -0.5, "hard-coded"),

    ("check_patchify", lambda x, p: patch_rows(x, p, "b c (h p1) (w p2) -> b (w h) (p1 p2 c)"), "column by column"),
    ("check_patchify", lambda x, p: patch_rows(x, p, "b c (h p1) (w p2) -> b (h w) (c p1 p2)"), "channel-first"),
    ("check_patchify", lambda x, p: F.unfold(x, p, stride=p).transpose(1, 2), "channel-first"),
    ("check_patchify", lambda x, p: F.unfold(x, p, stride=1).transpose(1, 2), "overlap"),
    ("check_patchify", lambda x, p: patch_rows(x, p, "b (h p1) (w p2) c -> b (h w) (p1 p2 c)"), "channels-last"),
    ("check_patchify", lambda x, p: patch_rows(x, p, "b c (p1 h) (p2 w) -> b (h w) (p1 p2 c)"), "strided"),
    ("check_patchify", lambda x, p: patch_rows(x, p, h=p, w=p), "number of patches per side"),
    ("check_patchify", lambda x, p: x.unfold(2, p, p).unfold(3, p, p).reshape(x.shape[0], -1, x.shape[1] * p * p),
     "without moving the channel axis"),
    ("check_patchify", lambda x, p: patch_rows(x, p, "b c (h p1) (w p2) -> b h w (p1 p2 c)"), "not flattened"),
    ("check_patchify", lambda x, p: patch_rows(x, p, "b c (h p1) (w p2) -> b (h w) p1 p2 c"), "not flattened"),
    ("check_patchify", lambda x, p: patch_rows(x.mean(1, keepdim=True), p), "channels are missing"),
    ("check_patchify", lambda x, p: rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=4, p2=4), "hard-coded"),
    ("check_patchify", lambda x, p: patch_rows(x, p, "b c (h p1) (w p2) -> b (h w) (p2 p1 c)"), "transposed"),
    ("check_patchify", lambda x, p: patch_rows(x, p, "b c (h p1) (w p2) -> (b h w) (p1 p2 c)"), "merged"),

    ("check_patch_embedding", lambda x, w, b, p: F.linear(patch_rows(x, p), w), "bias is missing"),
    ("check_patch_embedding", lambda x, w, b, p: patch_rows(x, p) @ w + b, "weight.T belongs"),
    ("check_patch_embedding", lambda x, w, b, p: conv_embed(x, w, b, p, weight_order="c p p").flatten(2).mT,
     "channel-first"),
    ("check_patch_embedding", lambda x, w, b, p: nn.Linear(w.shape[1], w.shape[0])(patch_rows(x, p)),
     "different answer every time"),
    ("check_patch_embedding",
     lambda x, w, b, p: F.linear(patch_rows(x, p, "b (h p1) (w p2) c -> b (h w) (p1 p2 c)"), w, b), "channels-last"),
    ("check_patch_embedding", lambda x, w, b, p: conv_embed(x, w, b, p, stride=1).flatten(2).mT, "overlap"),
    ("check_patch_embedding", lambda x, w, b, p: conv_embed(x, w, b, p), "still a grid"),
    ("check_patch_embedding",
     lambda x, w, b, p: F.linear(patch_rows(x, p, "b c (h p1) (w p2) -> b (w h) (p1 p2 c)"), w, b),
     "column by column"),
    ("check_patch_embedding", lambda x, w, b, p: conv_embed(x, w, b, p).flatten(2), "swapped"),
    ("check_patch_embedding", lambda x, w, b, p: F.linear(patch_rows(x, p), w.T, b), "weight.T belongs"),
    ("check_patch_embedding", lambda x, w, b, p: torch.relu(patch_rows(x, p) @ w.T + b), "activation (ReLU)"),

    ("check_add_cls_token", lambda t, c: torch.cat([t, c.repeat(len(t), 1, 1)], dim=1), "must be first"),
    ("check_add_cls_token", lambda t, c: t + c, "instead of inserting"),
    ("check_add_cls_token", lambda t, c: torch.cat([c, t], dim=1), "batch of one image"),
    ("check_add_cls_token", cls_on_first_image_only, "one image"),
    ("check_add_cls_token", lambda t, c: torch.cat([torch.zeros(len(t), 1, t.shape[-1]), t], 1), "all zeros"),
    ("check_add_cls_token",
     lambda t, c: torch.cat([nn.Parameter(torch.randn(1, 1, t.shape[-1])).expand(len(t), -1, -1), t], 1),
     "not the cls_token"),
    ("check_add_cls_token", lambda t, c: torch.cat([c.expand(len(t), t.shape[1], -1), t], dim=-1), "features"),
    ("check_add_cls_token", lambda t, c: torch.cat([c.expand(len(t), t.shape[1], -1), t], dim=1),
     "expanded the CLS token to n tokens"),
    ("check_add_cls_token", lambda t, c: torch.cat([c.expand(2, -1, -1), t], dim=1), "hard-coded"),
    ("check_add_cls_token", lambda t, c: torch.cat([c.expand(len(t), -1, -1), t], 1)[:, :t.shape[1]],
     "last patch token is missing"),

    ("check_add_position_embedding", lambda t, c, p: torch.cat([t, c.expand(len(t), -1, -1)], 1) + p, "must be first"),
    ("check_add_position_embedding", lambda t, c, p: prepend_cls_token(t + p[:, 1:], c), "got no position embedding"),
    ("check_add_position_embedding", lambda t, c, p: prepend_cls_token(t + p[:, :t.shape[1]], c), "shifted by one"),
    ("check_add_position_embedding", lambda t, c, p: prepend_cls_token(t, c), "was not added"),
    ("check_add_position_embedding", lambda t, c, p: prepend_cls_token(t, c) * p, "multiplied"),
    ("check_add_position_embedding", lambda t, c, p: torch.cat([c, t], dim=1) + p, "batch of one image"),
    ("check_add_position_embedding",
     lambda t, c, p: torch.cat([prepend_cls_token(t, c), p.repeat(len(t), 1, 1)], dim=1),
     "concatenated the position table"),
    ("check_add_position_embedding", lambda t, c, p: prepend_cls_token(t, c) + p[:, 0:1], "row 0 of the table"),
    ("check_add_position_embedding", lambda t, c, p: torch.cat([(c + p[:, :1]).expand(len(t), -1, -1), t], dim=1),
     "patch tokens got none"),

    ("check_feedforward", lambda x, w1, b1, w2, b2: mlp(x, w1, b1, w2, b2, act=torch.relu), "ReLU"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: F.gelu(x @ w1 + b1) @ w2 + b2, "w.T belongs"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: mlp(x, w1, b1, w2, b2, act=torch.sigmoid), "sigmoid"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: mlp(x, w1, b1, w2, b2, act=nn.GELU(approximate="tanh")),
     "tanh approximation"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: F.gelu(x @ w1.T + b1) @ w2.T, "second layer's bias"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: F.gelu(x @ w1.T) @ w2.T + b2, "first layer's bias"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: F.dropout(F.gelu(x @ w1.T + b1), 0.1) @ w2.T + b2,
     "different answer every time"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: x + mlp(x, w1, b1, w2, b2), "added the input back"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: F.gelu(mlp(x, w1, b1, w2, b2)), "after the second layer"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: mlp(x, w1, b1, w2, b2, act=nn.SiLU()), "SiLU"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: (x @ w1.T + b1) @ w2.T + b2, "no activation"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: mlp(x, w1, b1, w2, b2, act=nn.LeakyReLU()), "leaky ReLU"),
    ("check_feedforward",
     lambda x, w1, b1, w2, b2: nn.Linear(*w2.shape[::-1])(F.gelu(nn.Linear(*w1.shape[::-1])(x))),
     "different answer every time"),

    ("check_pre_norm_block", lambda x, a, m, n1, n2: (lambda y: n2(y + m(y)))(n1(x + a(x))), "post-norm"),
    ("check_pre_norm_block", block_in_place, "changes its input `x` in place"),
    ("check_pre_norm_block", lambda x, a, m, n1, n2: m(n2(a(n1(x)))), "residual connections are missing"),
    ("check_pre_norm_block", lambda x, a, m, n1, n2: (lambda y: m(n2(y)))(x + a(n1(x))), "MLP step has no residual"),
    ("check_pre_norm_block", lambda x, a, m, n1, n2: (lambda y: y + m(n2(y)))(a(n1(x))),
     "attention step has no residual"),
    ("check_pre_norm_block", block_swapped, "swapped"),
    ("check_pre_norm_block", lambda x, a, m, n1, n2: (lambda y: y + m(n1(y)))(x + a(n1(x))),
     "its own LayerNorm, norm2"),
    ("check_pre_norm_block", lambda x, a, m, n1, n2: (lambda y: y + m(y))(x + a(x)), "no LayerNorm at all"),
    ("check_pre_norm_block", lambda x, a, m, n1, n2: (lambda h: (lambda y: y + m(n2(y)))(h + a(h)))(n1(x)),
     "attention step's residual path carries the normalised x"),
    ("check_pre_norm_block", lambda x, a, m, n1, n2: (lambda y: n2(y + m(n2(y))))(x + a(n1(x))), "extra LayerNorm"),
    ("check_pre_norm_block",
     lambda x, a, m, n1, n2: (lambda y: y + m(F.layer_norm(y, y.shape[-1:])))(x + a(F.layer_norm(x, x.shape[-1:]))),
     "new LayerNorm"),
    ("check_pre_norm_block", lambda x, a, m, n1, n2: x + a(n1(x)) + m(n2(x)), "in parallel"),
    ("check_pre_norm_block", lambda x, a, m, n1, n2: (lambda h: (lambda y: n2(y) + m(n2(y)))(h + a(h)))(n1(x)),
     "carries the normalised x"),
    ("check_pre_norm_block", block_detached_residual, "bypasses autograd"),
    ("check_pre_norm_block", lambda x, a, m, n1, n2: (lambda y: y + m(n2(y)))(x + a(x)), "norm1 is missing"),

    ("check_vit_head", lambda x, norm, head, pool: head(head_mean_or_cls(x, pool)), "final LayerNorm is missing"),
    ("check_vit_head", lambda x, norm, head, pool: head(norm(head_mean_or_cls(x, pool))), "after pooling"),
    ("check_vit_head", lambda x, norm, head, pool: head(head_mean_or_cls(norm(x), pool, include_cls=True)),
     "includes the CLS token"),
    ("check_vit_head", lambda x, norm, head, pool: head(norm(x)[:, -1] if pool == "cls" else norm(x)[:, 1:].mean(1)),
     "last token"),
    ("check_vit_head", lambda x, norm, head, pool: head(norm(x)[:, 1] if pool == "cls" else norm(x)[:, 1:].mean(1)),
     "token 1"),
    ("check_vit_head", lambda x, norm, head, pool: head(norm(x)[:, 0] if pool == "cls" else norm(x)[:, :-1].mean(1)),
     "leaves out the last patch"),
    ("check_vit_head", lambda x, norm, head, pool: head(norm(x)[:, 0]), "is `pool` ignored"),
    ("check_vit_head", lambda x, norm, head, pool: pool_head(x, norm, head, pool.upper()), "is `pool` ignored"),
    ("check_vit_head", lambda x, norm, head, pool: pool_head(x, norm, head, pool).softmax(-1), "probabilities"),
    ("check_vit_head", lambda x, norm, head, pool: head(norm(x)[0] if pool == "cls" else norm(x)[:, 1:].mean(0)),
     "over the batch"),
    ("check_vit_head",
     lambda x, norm, head, pool: head(norm(x)[:, 0] if pool == "cls" else norm(x)[:, 1:].max(1).values), "maximum"),
    ("check_vit_head", lambda x, norm, head, pool: head(head_mean_or_cls(F.layer_norm(x, x.shape[-1:]), pool)),
     "new LayerNorm"),
    ("check_vit_head", lambda x, norm, head, pool: head(head_mean_or_cls(norm(x), pool, include_cls=True, dim=-1)),
     "over the features"),

    ("check_warmup_cosine_lr", lambda *a: lr(*a, warm_from_zero=True), "warm-up starts at 0"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, le=True), "off by one"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, floor_div=True), "integer division"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, ignore_min=True), "instead of min_lr"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, quarter=True), "never reaching the floor"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, over_total=True), "never gets down to its floor"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, skip_warmup=True), "no warm-up"),
    ("check_warmup_cosine_lr", lr_linear, "straight line"),
    ("check_warmup_cosine_lr", lr_unguarded, "divides by zero"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, cosine_from_zero=True), "counts from step 0"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, add_min=True), "added on top"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, full=True), "full cosine"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, no_half=True), "factor 0.5"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, constant=True), "stays at base_lr"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, early_end=True), "one step early"),
    ("check_warmup_cosine_lr", lr_warmup_five, "hard-coded"),

    ("check_accuracy", lambda logits, y: (logits.max(dim=1)[0] == y).float().mean(), "largest *values*"),
    ("check_accuracy", lambda logits, y: (logits.argmax(-1) == y).sum().item(), "number of correct predictions"),
    ("check_accuracy", lambda logits, y: 100.0 * (logits.argmax(-1) == y).float().mean(), "percentage"),
    ("check_accuracy", lambda logits, y: (logits.argmax(0) == y).float().mean(), "over the examples"),
    ("check_accuracy", lambda logits, y: (logits.argmax(-1) == y).mean(), "booleans"),
    ("check_accuracy", lambda logits, y: int((logits.argmax(-1) == y).sum()) // len(y), "integer division"),
    ("check_accuracy", lambda logits, y: (logits.argmax(-1) == y).sum().item() / logits.shape[-1],
     "number of classes"),
    ("check_accuracy", lambda logits, y: (logits.argmin(-1) == y).float().mean(), "argmin"),
    ("check_accuracy", lambda logits, y: logits.argmax(-1) == y, "one hit per example"),
    ("check_accuracy", lambda logits, y: (logits.argmax(-1) != y).float().mean(), "error rate"),
    ("check_accuracy", lambda logits, y: logits.softmax(-1).max(-1).values.mean(), "confidence"),

    ("check_train_step", step_without_zero_grad, "zero_grad() is missing"),
    ("check_train_step", step_softmax_first, "softmax before the loss"),
    ("check_train_step", step_without_step, "optimizer.step() is never called"),
    ("check_train_step", step_without_backward, "loss.backward() is never called"),
    ("check_train_step", step_before_backward, "runs before loss.backward()"),
    ("check_train_step", step_zero_grad_too_late, "cleared between"),
    ("check_train_step", step_own_optimizer, "not with the optimizer you were given"),
    ("check_train_step", step_backward_on_item, "plain number"),
    ("check_train_step", step_under_no_grad, "no gradient history"),
    ("check_train_step", step_nll, "nll_loss"),
    ("check_train_step", step_summed, "summed over the batch"),
    ("check_train_step", step_loss_after_update, "not the loss of this step"),
    ("check_train_step", step_no_return, "returned None"),

    ("check_evaluate", lambda m, x, y: evaluate_with(m, x, y, eval_mode=False), "train mode during the forward"),
    ("check_evaluate", lambda m, x, y: evaluate_with(m, x, y, no_grad=False), "gradients were on"),
    ("check_evaluate", lambda m, x, y: evaluate_with(m, x, y, restore=None), "left in eval mode"),
    ("check_evaluate", lambda m, x, y: evaluate_with(m, x, y, restore="train"), "came in eval mode"),
    ("check_evaluate", lambda m, x, y: evaluate_with(m, x, y, score=lambda lg, y: (lg.max(-1)[0] == y).float().mean()),
     "largest *values*"),
    ("check_evaluate", lambda m, x, y: evaluate_with(m, x, y, score=lambda lg, y: int((lg.argmax(1) == y).sum())),
     "number of correct"),
    ("check_evaluate",
     lambda m, x, y: evaluate_with(m, x, y, score=lambda lg, y: 100 * (lg.argmax(1) == y).float().mean()),
     "percentage"),
    ("check_evaluate", lambda m, x, y: evaluate_with(m, x, y, score=lambda lg, y: (lg.argmax(0) == y).float().mean()),
     "argmax over the classes"),

    ("check_attention_rollout", lambda maps: rollout(maps, residual=False), "residual identity is missing"),
    ("check_attention_rollout", lambda maps: rollout(maps, order="right"), "wrong order"),
    ("check_attention_rollout", lambda maps: rollout(maps, renorm=False), "not renormalised"),
    ("check_attention_rollout", lambda maps: rollout(maps, heads="max"), "maximum over the heads"),
    ("check_attention_rollout", lambda maps: rollout(maps[-1:]), "only the last layer"),
    ("check_attention_rollout", lambda maps: rollout(maps[1:]), "first layer is left out"),
    ("check_attention_rollout", lambda maps: rollout(maps, combine="add"), "added the layers"),
    ("check_attention_rollout", lambda maps: rollout(maps, combine="mul"), "elementwise"),
    ("check_attention_rollout", lambda maps: rollout(maps, start=torch.zeros(maps[0].shape[-1], maps[0].shape[-1])),
     "starts from zeros"),
    ("check_attention_rollout", lambda maps: rollout(maps, heads="sum"), "summed the heads"),
    ("check_attention_rollout", rollout_eye_five, "hard-coded"),
    ("check_attention_rollout", lambda maps: rollout(maps).transpose(-1, -2), "transposed"),

    ("check_resize_pos_embedding", lambda pos, grid: resize(pos, grid, keep_cls=False), "CLS row is missing"),
    ("check_resize_pos_embedding", lambda pos, grid: resize(pos, grid, mode="bilinear"), "bilinearly"),
    ("check_resize_pos_embedding", lambda pos, grid: resize_1d(pos, grid, with_cls=True), "1-D sequence"),
    ("check_resize_pos_embedding", lambda pos, grid: resize_1d(pos, grid), "1-D sequence"),
    ("check_resize_pos_embedding", lambda pos, grid: resize(pos, grid, swap=True), "swapped"),
    ("check_resize_pos_embedding", lambda pos, grid: resize(pos, grid, straight=True), "mixes features and positions"),
    ("check_resize_pos_embedding", lambda pos, grid: resize(pos, grid, mode="nearest"), "nearest"),
    ("check_resize_pos_embedding", lambda pos, grid: resize(pos, grid, corners=True), "align_corners"),
    ("check_resize_pos_embedding", lambda pos, grid: resize(pos, grid, cls_last=True), "at the end"),
    ("check_resize_pos_embedding", lambda pos, grid: resize(pos, grid, side=4), "hard-coded"),
    ("check_resize_pos_embedding", lambda pos, grid: resize(pos, grid, zero_cls=True), "not the old CLS row"),
    ("check_resize_pos_embedding", lambda pos, grid: resize(pos, grid, columns=True), "column by column"),
    # notebook 10
    ("check_shift_images", lambda x, dy, dx: torch.roll(x, shifts=(dy, dx), dims=(2, 3)), "torch.roll wraps around"),
    ("check_shift_images", lambda x, dy, dx: pad_shift(x, -dy, -dx), "the wrong way"),
    ("check_shift_images", lambda x, dy, dx: pad_shift(x, dx, dy), "swapped"),
    ("check_shift_sensitivity", lambda f, x: relative_change(f, x, ((0, 1),)), "one way only"),
    ("check_shift_sensitivity", lambda f, x: relative_change(f, x, relative=False), "not how far relative"),
    ("check_distillation_loss", lambda c, d, y, t: (F.cross_entropy(c, y) + F.cross_entropy(d, y)) / 2,
     "learned the true labels"),
    ("check_distillation_loss", lambda c, d, y, t: F.cross_entropy(c, y) + F.cross_entropy(d, t.argmax(1)),
     "averages them"),
    ("check_distillation_loss",
     lambda c, d, y, t: 0.5 * F.cross_entropy(c, y) - 0.5 * (t.softmax(1) * d.log_softmax(1)).sum(1).mean(),
     "teacher's probabilities"),
    ("check_shift_images", lambda x, dy, dx: pad_shift(x, 2 * dy, 2 * dx), "twice as far"),
    ("check_shift_images", lambda x, dy, dx: pad_shift(x, dy, 0), "dx was ignored"),
    ("check_shift_images", lambda x, dy, dx: pad_shift(x, 0, dx), "dy was ignored"),
    ("check_shift_images", lambda x, dy, dx: pad_shift(x, -dy, dx), "rows moved the wrong way"),
    ("check_shift_sensitivity", lambda f, x: relative_change(f, x, ((0, 2), (0, -2), (2, 0), (-2, 0))), "two pixels"),
    ("check_shift_sensitivity", lambda f, x: relative_max(f, x), "largest change"),
    ("check_shift_sensitivity", lambda f, x: relative_change(f, x, ((0, 1), (1, 0))), "right and down only"),
    ("check_shift_sensitivity", lambda f, x: relative_to_moved(f, x), "norm of the shifted features"),
    ("check_distillation_loss", lambda c, d, y, t: 0.5 * F.cross_entropy(d, y) + 0.5 * F.cross_entropy(c, t.argmax(1)),
     "heads are swapped"),
    ("check_distillation_loss",
     lambda c, d, y, t: (F.cross_entropy(c.softmax(1), y) + F.cross_entropy(d.softmax(1), t.argmax(1))) / 2,
     "softmax before the loss"),
    ("check_distillation_loss", lambda c, d, y, t: F.cross_entropy(c / 2 + d / 2, y), "never sees the teacher"),
    ("check_distillation_loss", lambda c, d, y, t: (F.cross_entropy(c, y) + F.cross_entropy(t, d.argmax(1))) / 2,
     "teacher and the student are swapped"),
]


def message(out: str) -> str:
    """The checker's message without the learner's quoted source lines (a test's lambda may contain its phrase)."""
    return "\n".join(line for line in out.splitlines() if "in your line:" not in line)


def test_every_checker_is_listed_and_tested():
    public = {name for name in dir(exercises) if name.startswith("check_")}
    assert public == set(CHECKERS)
    assert set(exercises.__all__) == public | {"EXERCISES"}
    assert len(CHECKERS) >= 19 and len(WRONG) >= 120
    for checker in CHECKERS:
        assert sum(c == checker for c, _, _ in WRONG) >= 5, f"{checker} needs at least five typical wrong answers"
    assert sorted(p.stem for p in SOLUTIONS.glob("*.py")) == sorted(EXERCISES)


@pytest.mark.parametrize("checker", CHECKERS)
def test_solution_passes(checker, capsys):
    result, out = verdict(checker, solution_for(checker), capsys)
    assert result is True, out
    assert out.startswith("✅") and out.count("\n") == 1


@pytest.mark.parametrize("checker, wrong, phrase", WRONG, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(WRONG)])
def test_typical_mistake_is_rejected_by_name(checker, wrong, phrase, capsys):
    result, out = verdict(checker, wrong, capsys)
    assert result is False, out
    assert out.startswith("❌") and out.count("❌") == 1 and "\nHint: " in out
    assert phrase in message(out), out


@pytest.mark.parametrize("checker", CHECKERS)
def test_unfinished_stub_is_not_done_yet(checker, capsys):
    def my_stub(*args):
        """The state every exercise cell is committed in."""
        raise NotImplementedError  # your code here

    result, out = verdict(checker, my_stub, capsys)
    assert result is None
    assert out.startswith("⏳ not done yet") and out.count("\n") == 1


@pytest.mark.parametrize("checker", CHECKERS)
def test_other_exceptions_become_a_short_message_and_a_hint(checker, capsys):
    def my_buggy(*args):
        detail = "second line that must not be shown"
        raise ValueError(f"something went wrong\n{detail}")

    result, out = verdict(checker, my_buggy, capsys)
    assert result is False
    assert "ValueError: something went wrong" in out and "second line" not in out
    assert "Traceback" not in out and "\nHint: " in out
    assert 'in your line: raise ValueError(f"something went wrong' in out  # the learner's own line is quoted


def test_an_einops_error_keeps_the_lines_that_explain_the_shapes(capsys):
    def my_patchify(images, patch_size):
        return rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_size + 1, p2=patch_size + 1)

    result, out = verdict("check_patchify", my_patchify, capsys)
    assert result is False
    assert "Input tensor shape: torch.Size([2, 3, 8, 12])" in out
    assert "can't divide axis of length 8 in chunks of 5" in out


@pytest.mark.parametrize("checker", [c for c in CHECKERS if c not in
                                     ("check_warmup_cosine_lr", "check_train_step", "check_evaluate")])
def test_wrong_shape_names_expected_and_got(checker, capsys):
    result, out = verdict(checker, lambda *args: torch.zeros(1, 2, 3), capsys)
    assert result is False
    assert "wrong shape: expected (" in out and "got (1, 2, 3)" in out and "\nHint: " in out


def test_an_unrecognised_mistake_is_still_located(capsys):
    def my_scaled_scores(q, k):
        s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        return torch.cat([s[..., :1, :] + 1, s[..., 1:, :]], dim=-2)  # query 0's scores are off

    result, out = verdict("check_scaled_scores", my_scaled_scores, capsys)
    assert result is False
    assert "wrong values at query 0 (of 0–4) (the rest is right)" in out


def test_a_constant_factor_is_reported(capsys):
    result, out = verdict("check_attention", lambda q, k, v: 3 * einsum_attention(q, k, v)[0], capsys)
    assert result is False and "every value is 3 × the right one" in out


def test_bad_return_values_are_explained(capsys):
    assert exercises.check_attention(lambda q, k, v: None) is False
    assert "returned None" in capsys.readouterr().out
    assert exercises.check_warmup_cosine_lr(lambda *a: [0.1]) is False
    assert "expected a number" in capsys.readouterr().out
    assert exercises.check_accuracy(lambda logits, labels: True) is False
    assert "a bool" in capsys.readouterr().out
    assert exercises.check_attention("my_attention") is False
    assert "expected a function" in capsys.readouterr().out


def test_checkers_are_deterministic_and_leave_the_global_rng_alone(capsys):
    state = torch.get_rng_state()
    for checker in CHECKERS:
        getattr(exercises, checker)(solution_for(checker))
    first = capsys.readouterr().out
    assert torch.equal(state, torch.get_rng_state())
    for checker in CHECKERS:
        getattr(exercises, checker)(solution_for(checker))
    assert capsys.readouterr().out == first


def test_a_learner_drawing_random_numbers_leaves_the_global_rng_alone(capsys):
    state = torch.get_rng_state()
    exercises.check_scaled_scores(lambda q, k: torch.randn(q.shape[-2], k.shape[-2]))
    assert torch.equal(state, torch.get_rng_state())
    assert "different answer every time" in capsys.readouterr().out


# --------------------------------------------------------------------------- one source of truth

@pytest.mark.parametrize("checker, package_function", [
    ("check_scaled_scores", lambda q, k: attention_scores(q, k)),
    ("check_attention", lambda q, k, v: einsum_attention(q, k, v)[0]),
    ("check_split_heads", lambda x, h: split_heads(x, h)),
    ("check_merge_heads", lambda x: merge_heads(x)),
    ("check_einsum_scores", lambda q, k: attention_scores(q, k)),
    ("check_add_cls_token", lambda t, c: prepend_cls_token(t, c)),
    ("check_vit_head", lambda x, norm, head, pool: head(pool_tokens(norm(x), pool))),
    ("check_warmup_cosine_lr", lambda *a: lr_at(*a)),
    ("check_accuracy", lambda logits, labels: accuracy(logits, labels)),
    ("check_train_step", lambda model, opt, x, y: train_step(model, opt, x, y)[0]),
    ("check_attention_rollout", lambda maps: attention_rollout(maps)),
    ("check_resize_pos_embedding", lambda pos, grid: resize_pos_embedding(pos, grid)),
])
def test_the_package_passes_its_own_exercises(checker, package_function, capsys):
    result, out = verdict(checker, package_function, capsys)
    assert result is True, out


def test_reference_scores_are_the_package_attention_scores():
    q, k = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8)
    torch.testing.assert_close(attention_scores(q, k).softmax(-1), einsum_attention(q, k, torch.randn(2, 3, 7, 4))[1])


def test_split_and_merge_heads_rebuild_the_package_attention():
    sol = load_solutions("02_einops_and_einsum")
    layer = Attention(dim=24, heads=3, dim_head=8, qkv_bias=True).eval()
    x = torch.randn(2, 6, 24)
    q, k, v = (sol.my_split_heads(t, 3) for t in layer.to_qkv(x).chunk(3, dim=-1))
    out = layer.to_out(sol.my_merge_heads(einsum_attention(q, k, v)[0]))
    torch.testing.assert_close(out, layer(x))


def test_cls_position_and_head_references_match_vit_forward():
    model = ViT(image_size=8, patch_size=4, num_classes=3, dim=16, depth=1, heads=2, dim_head=8, mlp_dim=32,
                pool="mean").eval()
    seen = []
    model.dropout.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    model.transformer.norm.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    img = torch.randn(3, 3, 8, 8)
    sol = load_solutions("04_cls_token_and_vit")
    with torch.no_grad():
        logits = model(img)
        tokens = model.to_patch_embedding(img)
        ours = sol.my_add_position_embedding(tokens, model.cls_token, model.pos_embedding)
        head = sol.my_vit_head(seen[1], model.transformer.norm, model.mlp_head, model.pool)
    torch.testing.assert_close(ours, seen[0])
    torch.testing.assert_close(head, logits)


# --------------------------------------------------------------------------- what a function leaves behind, edges,
# and the diagnosis by property (issue 25)

def step_leaving_eval_mode(model, optimizer, images, labels):
    model.eval()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def shift_by_slicing(x, dy, dx):
    """Right for every shift smaller than the image; a shift beyond it makes the slices disagree."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out


def block_switching_norm_to_train(x, attn, mlp, norm1, norm2):
    norm1.train()
    x = x + attn(norm1(x))
    return x + mlp(norm2(x))


def evaluate_freezing(model, images, labels):
    was = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    acc = (model(images).argmax(-1) == labels).float().mean().item()
    model.train(was)
    return acc


@pytest.mark.parametrize("checker, wrong, phrase", [
    ("check_train_step", step_leaving_eval_mode, "left it in eval mode"),
    ("check_shift_images", shift_by_slicing, "a shift larger than the image"),
    ("check_pre_norm_block", block_switching_norm_to_train, "came in eval mode and was left in train mode"),
    ("check_evaluate", evaluate_freezing, "requires_grad"),
])
def test_state_left_behind_and_edge_cases_are_named(checker, wrong, phrase, capsys):
    result, out = verdict(checker, wrong, capsys)
    assert result is False and phrase in out, out


def test_a_module_changed_by_one_test_is_restored_for_the_next(capsys):
    def scaling_norm_in_place(x, attn, mlp, norm1, norm2):
        with torch.no_grad():
            norm1.weight.mul_(2)
        x = x + attn(norm1(x))
        return x + mlp(norm2(x))

    result, out = verdict("check_pre_norm_block", scaling_norm_in_place, capsys)
    assert result is False and "changed `norm1`'s weights (weight) in place" in out
    result, out = verdict("check_pre_norm_block", solution_for("check_pre_norm_block"), capsys)
    assert result is True, out


def test_the_package_train_step_returning_a_tensor_counts_as_a_number(capsys):
    def step_returning_the_tensor(model, optimizer, images, labels):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss.detach()

    result, out = verdict("check_train_step", step_returning_the_tensor, capsys)
    assert result is True, out


@pytest.mark.parametrize("checker, wrong, phrase", [
    # written to hit no catalogue entry: each is found by a property of the output
    ("check_merge_heads", lambda x: rearrange(x, "b h n d -> b n (h d)").flip(1), "the token axis is reversed"),
    ("check_add_cls_token", lambda t, c: torch.cat([t[:, :1], c.expand(len(t), -1, -1), t[:, 1:]], dim=1),
     "your positions hold tokens 1, 0, 2"),
    ("check_scaled_scores", lambda q, k: scores(q, k) / sqrt_d(q) * q.shape[-2], "the size of `q`'s axis -2"),
    ("check_scaled_scores", lambda q, k: scores(q, k) / sqrt_d(q) + 0.25, "off by the same amount, +0.25"),
    ("check_merge_heads", lambda x: rearrange(x, "b h n d -> n b (h d)"),
     "two axes swapped: the image axis and the token axis"),
    ("check_scaled_scores", lambda q, k: (scores(q, k) / sqrt_d(q)).softmax(-2), "sum to 1 along the query axis"),
    ("check_add_position_embedding", lambda t, c, p: prepend_cls_token(t, c)[:, :-1] + p[:, :-1],
     "one token is missing"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: mlp(x, w1, b1, w2, b2) + x.mean(0, keepdim=True) * 1e-2,
     "influence each other"),
    ("check_warmup_cosine_lr", lambda s, total, w, base, low: lr_at(s + 1, total, w, base, low),
     "shifted by one position along the step axis"),
])


def test_mistakes_outside_the_catalogue_are_diagnosed_by_property(checker, wrong, phrase, capsys):
    result, out = verdict(checker, wrong, capsys)
    assert result is False and phrase in out, out
