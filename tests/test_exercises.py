"""The exercise checkers: they accept the solutions, reject typical wrong answers by name, and never raise.

A checker that accepted a wrong answer would teach the wrong thing, so every checker is run here against
its solution in ``solutions/`` and against at least two typical mistakes, written independently of the
mistakes the checker itself knows about.
"""
import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from vit_tutorial import Attention, ViT, attention_scores, einsum_attention, exercises, prepend_cls_token
from vit_tutorial.exercises import EXERCISES

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


def scores(q, k):
    return q @ k.transpose(-2, -1)


def causal(n):
    return torch.ones(n, n, dtype=torch.bool).tril()


def lr(step, total, warmup, base, low, *, warm_from_zero=False, ignore_min=False, skip_warmup=False,
       cosine_from_zero=False):
    """lr_at rewritten with one switch per typical mistake."""
    if not skip_warmup and step < warmup:
        return base * (step if warm_from_zero else step + 1) / warmup
    start = 0 if cosine_from_zero or skip_warmup else warmup
    t = min(1.0, (step - start) / max(1, total - start))
    low = 0.0 if ignore_min else low
    return low + 0.5 * (base - low) * (1 + math.cos(math.pi * t))


def lr_unguarded(step, total, warmup, base, low):
    warm = base * (step + 1) / warmup  # ZeroDivisionError when there is no warm-up
    return warm if step < warmup else lr(step, total, warmup, base, low)


def pad_shift(x, dy, dx):
    """A shift written another way than the package's: pad by |d| on both sides, then crop."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (abs(dx), abs(dx), abs(dy), abs(dy)))
    return padded[..., abs(dy) - dy:abs(dy) - dy + h, abs(dx) - dx:abs(dx) - dx + w]


def relative_change(f, x, moves=((0, 1), (0, -1), (1, 0), (-1, 0)), relative=True):
    base = f(x).flatten(1)
    out = [(f(pad_shift(x, dy, dx)).flatten(1) - base).norm(dim=1) / (base.norm(dim=1) if relative else 1)
           for dy, dx in moves]
    return torch.stack(out).mean()


def block_post_norm(x, attn, mlp, n1, n2):
    x = n1(x + attn(x))
    return n2(x + mlp(x))


def block_norm1_twice(x, attn, mlp, n1, n2):
    x = x + attn(n1(x))
    return x + mlp(n1(x))


# (checker, typical wrong answer, a phrase its message must contain)
WRONG = [
    ("check_scaled_scores", lambda q, k: scores(q, k), "forgot to divide by √d"),
    ("check_scaled_scores", lambda q, k: scores(q, k) / q.shape[-1], "divided by d"),
    ("check_scaled_scores", lambda q, k: scores(k, q) / math.sqrt(q.shape[-1]), "transposed"),
    ("check_attention", lambda q, k, v: scores(q, k).softmax(-1) @ v, "forgot to divide by √d"),
    ("check_attention", lambda q, k, v: (scores(q, k) / math.sqrt(q.shape[-1])).softmax(dim=-2) @ v,
     "over the queries"),
    ("check_attention", lambda q, k, v: (scores(q, k) / math.sqrt(q.shape[-1])).softmax(-1),
     "returned the attention weights"),
    ("check_attention", lambda q, k, v: scores(q, k) / math.sqrt(q.shape[-1]) @ v, "no softmax"),
    ("check_causal_attention", lambda q, k, v: F.scaled_dot_product_attention(q, k, v), "nothing is masked"),
    ("check_causal_attention",
     lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=causal(q.shape[-2]).T), "wrong triangle"),
    ("check_causal_attention",
     lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=causal(q.shape[-2]).tril(-1)), "diagonal"),
    ("check_causal_attention",
     lambda q, k, v: ((scores(q, k) / math.sqrt(q.shape[-1])).softmax(-1) * causal(q.shape[-2])) @ v,
     "after the softmax"),
    ("check_causal_attention",
     lambda q, k, v: (scores(q, k) / math.sqrt(q.shape[-1])).masked_fill(~causal(q.shape[-2]), 0).softmax(-1) @ v,
     "set to 0"),
    ("check_split_heads", lambda x, h: rearrange(x, "b n (d h) -> b h n d", h=h), "interleaved"),
    ("check_split_heads", lambda x, h: x.view(x.shape[0], h, x.shape[1], -1), "without moving"),
    ("check_split_heads", lambda x, h: rearrange(x, "b n (h d) -> b n h d", h=h), "wrong shape: expected"),
    ("check_merge_heads", lambda x: rearrange(x, "b h n d -> b n (d h)"), "interleaved"),
    ("check_merge_heads", lambda x: x.reshape(x.shape[0], x.shape[2], -1), "without moving"),
    ("check_einsum_scores", lambda q, k: torch.einsum("bhid,bhjd->bhij", q, k), "forgot to divide by √d"),
    ("check_einsum_scores", lambda q, k: torch.einsum("bhid,bhjd->bhji", q, k) / math.sqrt(q.shape[-1]),
     "transposed"),
    ("check_einsum_scores", lambda q, k: torch.einsum("bhid,bhjd->bij", q, k) / math.sqrt(q.shape[-1]),
     "heads were summed"),
    ("check_patchify", lambda x, p: rearrange(x, "b c (h p1) (w p2) -> b (w h) (p1 p2 c)", p1=p, p2=p),
     "column by column"),
    ("check_patchify", lambda x, p: rearrange(x, "b c (h p1) (w p2) -> b (h w) (p2 p1 c)", p1=p, p2=p),
     "transposed"),
    ("check_patchify", lambda x, p: rearrange(x, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p),
     "channel-first"),
    ("check_patchify", lambda x, p: rearrange(x, "b c (p1 h) (p2 w) -> b (h w) (p1 p2 c)", p1=p, p2=p), "strided"),
    ("check_patchify", lambda x, p: rearrange(x, "b c (h p1) (w p2) -> b (w h) (c p2 p1)", p1=p, p2=p),
     "wrong order"),
    ("check_patch_embedding",
     lambda x, w, b, p: rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p) @ w.T, "bias is missing"),
    ("check_patch_embedding",
     lambda x, w, b, p: F.linear(rearrange(x, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p), w, b),
     "channel-first"),
    ("check_patch_embedding",
     lambda x, w, b, p: rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p) @ w + b,
     "nn.Linear's layout"),
    ("check_add_cls_token", lambda t, c: torch.cat([t, c.expand(len(t), -1, -1)], dim=1), "must be first"),
    ("check_add_cls_token", lambda t, c: t + c, "instead of inserting"),
    ("check_add_cls_token", lambda t, c: torch.cat([c, t], dim=1), "expand(b, -1, -1)"),
    ("check_add_position_embedding",
     lambda t, c, p: torch.cat([t, c.expand(len(t), -1, -1)], dim=1) + p, "must be first"),
    ("check_add_position_embedding",
     lambda t, c, p: torch.cat([c.expand(len(t), -1, -1), t + p[:, 1:]], dim=1), "got no position embedding"),
    ("check_add_position_embedding", lambda t, c, p: torch.cat([c.expand(len(t), -1, -1), t], dim=1),
     "was not added"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: F.linear(F.relu(F.linear(x, w1, b1)), w2, b2), "ReLU"),
    ("check_feedforward", lambda x, w1, b1, w2, b2: F.linear(F.linear(x, w1, b1), w2, b2), "no activation"),
    ("check_feedforward",
     lambda x, w1, b1, w2, b2: F.linear(F.gelu(F.linear(x, w1, b1), approximate="tanh"), w2, b2),
     "tanh approximation"),
    ("check_pre_norm_block", block_post_norm, "post-norm"),
    ("check_pre_norm_block", lambda x, attn, mlp, n1, n2: mlp(n2(attn(n1(x)))), "residual connections are missing"),
    ("check_pre_norm_block", block_norm1_twice, "its own LayerNorm, norm2"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, warm_from_zero=True), "warm-up starts at 0"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, ignore_min=True), "instead of min_lr"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, skip_warmup=True), "no warm-up"),
    ("check_warmup_cosine_lr", lambda *a: lr(*a, cosine_from_zero=True), "counts from step 0"),
    ("check_warmup_cosine_lr", lr_unguarded, "do not divide by it"),
    ("check_accuracy", lambda logits, y: (logits.argmax(-1) == y).sum().item(), "number of correct predictions"),
    ("check_accuracy", lambda logits, y: 100.0 * (logits.argmax(-1) == y).float().mean(), "percentage"),
    ("check_accuracy", lambda logits, y: (logits.argmax(0) == y).float().mean(), "argmax(dim=-1)"),
    ("check_accuracy", lambda logits, y: logits.argmax(-1) == y, "one hit per example"),
] + [  # notebook 10
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
]


def test_every_checker_is_listed_and_tested():
    public = {name for name in dir(exercises) if name.startswith("check_")}
    assert public == set(CHECKERS)
    assert set(exercises.__all__) == public | {"EXERCISES"}
    assert len(CHECKERS) >= 8
    for checker in CHECKERS:
        assert sum(c == checker for c, _, _ in WRONG) >= 2, f"{checker} needs at least two typical wrong answers"
    assert sorted(p.stem for p in SOLUTIONS.glob("*.py")) == sorted(EXERCISES)


@pytest.mark.parametrize("checker", CHECKERS)
def test_solution_passes(checker, capsys):
    result, out = verdict(checker, solution_for(checker), capsys)
    assert result is True, out
    assert out.startswith("✅") and out.count("\n") == 1


@pytest.mark.parametrize("checker, wrong, phrase", WRONG,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(WRONG)])
def test_typical_mistake_is_rejected_by_name(checker, wrong, phrase, capsys):
    result, out = verdict(checker, wrong, capsys)
    assert result is False, out
    assert out.startswith("❌") and out.count("❌") == 1 and "\nHint: " in out
    assert phrase in out, out


@pytest.mark.parametrize("checker", CHECKERS)
def test_unfinished_stub_is_not_done_yet(checker, capsys):
    def my_stub(*args):
        """The state every exercise cell is committed in."""
        raise NotImplementedError  # your code here

    result, out = verdict(checker, my_stub, capsys)
    assert result is None
    assert out.startswith("⏳ not done yet") and out.count("\n") == 1


@pytest.mark.parametrize("checker", CHECKERS)
def test_other_exceptions_become_one_line_and_a_hint(checker, capsys):
    def my_buggy(*args):
        detail = "second line that must not be shown"
        raise ValueError(f"something went wrong\n{detail}")

    result, out = verdict(checker, my_buggy, capsys)
    assert result is False
    assert "ValueError: something went wrong" in out and "second line" not in out
    assert "Traceback" not in out and "\nHint: " in out
    assert 'in your line: raise ValueError(f"something went wrong' in out  # the learner's own line is quoted


@pytest.mark.parametrize("checker", [c for c in CHECKERS if c != "check_warmup_cosine_lr"])
def test_wrong_shape_names_expected_and_got(checker, capsys):
    result, out = verdict(checker, lambda *args: torch.zeros(1, 2, 3), capsys)
    assert result is False
    assert "wrong shape: expected (" in out and "got (1, 2, 3)" in out and "\nHint: " in out


def test_bad_return_values_are_explained(capsys):
    assert exercises.check_attention(lambda q, k, v: None) is False
    assert "returned None" in capsys.readouterr().out
    assert exercises.check_attention(lambda q, k, v: einsum_attention(q, k, v)) is False
    assert "tuple of 2 items" in capsys.readouterr().out
    assert exercises.check_warmup_cosine_lr(lambda *a: [0.1]) is False
    assert "expected a number" in capsys.readouterr().out
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


def test_inputs_are_fresh_copies(capsys):
    """A solution that edits its input in place must not spoil the reference."""
    def my_in_place(q, k):
        q /= math.sqrt(q.shape[-1])
        return q @ k.transpose(-2, -1)

    assert exercises.check_scaled_scores(my_in_place) is True


# --------------------------------------------------------------------------- references agree with the package

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


def test_cls_and_position_references_match_vit_forward():
    model = ViT(image_size=8, patch_size=4, num_classes=3, dim=16, depth=1, heads=2, dim_head=8, mlp_dim=32).eval()
    seen = []
    model.dropout.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    img = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        model(img)
        tokens = model.to_patch_embedding(img)
        ours = prepend_cls_token(tokens, model.cls_token) + model.pos_embedding
    torch.testing.assert_close(ours, seen[0])
