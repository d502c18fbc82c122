"""Notebook 06's exercise: attention rollout through all layers."""
from __future__ import annotations

from typing import Callable

import torch

from ..analysis import attention_rollout
from .harness import Mistake, Trial, run_checks


def _maps(gen, layers, b, heads, n) -> list[torch.Tensor]:
    """Attention-like maps: each row a distribution, sharper than uniform, different per head."""
    return [(torch.randn(b, heads, n, n, generator=gen) * 2).softmax(-1) for _ in range(layers)]


def _roll(maps, heads=lambda a: a.mean(1), step=lambda a, eye: 0.5 * a + 0.5 * eye, renorm=True,
          combine=lambda a, r: a @ r, start=None):
    """attention_rollout's recipe with one piece replaceable: each typical mistake below changes exactly one."""
    n = maps[0].shape[-1]
    eye = torch.eye(n)
    rollout = start
    for a in maps:
        a = step(heads(a), eye)
        if renorm:
            a = a / a.sum(-1, keepdim=True)
        rollout = a if rollout is None else combine(a, rollout)
    return rollout


_ROLLOUT_MISTAKES: list[Mistake] = [
    (lambda maps: attention_rollout(maps, residual=False),
     "the residual identity is missing: each block's skip connection passes half of every token on unchanged",
     "per layer: a = 0.5 * a + 0.5 * torch.eye(n), rows renormalised, before multiplying"),
    (lambda maps: _roll(maps, combine=lambda a, r: r @ a),
     "the layers are multiplied in the wrong order: the first layer must be on the right (R = A_L … A_2 A_1)",
     "rollout = a @ rollout: each later layer acts on what the earlier ones made"),
    (lambda maps: _roll(maps, step=lambda a, eye: a + eye, renorm=False),
     "the identity was added but the rows were not renormalised: each row now sums to 2 per layer",
     "a = 0.5 * a + 0.5 * eye keeps every row a distribution (or divide by a.sum(-1, keepdim=True))"),
    (lambda maps: _roll(maps, step=lambda a, eye: 0.5 * a + eye),
     "the attention and the identity got unequal weights (0.5 · A + I): the skip connection and the attention each "
     "carry half", "a = 0.5 * a + 0.5 * torch.eye(n)"),
    *[(lambda maps, r=renorm: _roll(maps, heads=lambda a: a.amax(1), renorm=r),
       "you took the maximum over the heads; rollout averages them", "a = attn.mean(dim=1)")
      for renorm in (True, False)],
    *[(lambda maps, r=renorm: _roll(maps, heads=lambda a: a.sum(1), renorm=r),
       "you summed the heads; rollout averages them, so each row stays a distribution", "a = attn.mean(dim=1)")
      for renorm in (True, False)],
    (lambda maps: _roll(maps, heads=lambda a: a[:, 0]), "you used only head 0; rollout averages all heads",
     "a = attn.mean(dim=1)"),
    (lambda maps: _roll(maps, heads=lambda a: a.transpose(-2, -1).mean(1)),
     "each map was transposed: row i of an attention map is what query i reads, keep it that way",
     "a = attn.mean(dim=1), without a transpose"),
    (lambda maps: _roll(maps, combine=lambda a, r: a + r),
     "you added the layers; rollout multiplies them", "rollout = a @ rollout"),
    (lambda maps: _roll(maps, combine=lambda a, r: a * r),
     "you multiplied elementwise (*); rollout is a matrix product", "rollout = a @ rollout"),
    (lambda maps: _roll(maps[1:]), "the first layer is left out; rollout goes through every layer",
     "loop over all the maps, from maps[0]"),
    (lambda maps: _roll(maps[:-1]), "the last layer is left out; rollout goes through every layer",
     "loop over all the maps, up to maps[-1]"),
    (lambda maps: _roll(maps[-1:]), "only the last layer is used; rollout goes through every layer",
     "loop over all the maps: for a in maps: …"),
    (lambda maps: _roll(maps[:1]), "only the first layer is used; rollout goes through every layer",
     "loop over all the maps: for a in maps: …"),
    (lambda maps: _roll(maps, start=torch.zeros(maps[0].shape[-1], maps[0].shape[-1])),
     "the rollout starts from zeros, so every product stays zero", "start from the identity (or from the first layer)"),
]


def _which_rows(out: torch.Tensor, trial: Trial) -> tuple[str, str] | None:
    if out.shape == trial.expected.shape and not torch.allclose(out.sum(-1), torch.ones(1, dtype=out.dtype),
                                                               atol=1e-4):
        return ("the rows of your rollout do not sum to 1, so they are not distributions over the input tokens",
                "every factor 0.5 · A + 0.5 · I has rows that sum to 1, and so does their product")
    return None


def check_attention_rollout(fn: Callable) -> bool | None:
    """``fn(maps)``: a list of ``(b, heads, n, n)`` maps, one per layer -> ``(b, n, n)``, like ``attention_rollout``."""
    gen = torch.Generator().manual_seed(601)
    trials = []
    for layers, b, heads, n in ((3, 2, 3, 5), (2, 1, 2, 7), (4, 3, 4, 4), (1, 2, 2, 3)):
        maps = _maps(gen, layers, b, heads, n)
        trials.append(Trial(f"{layers} layers of maps ({b}, {heads}, {n}, {n})", (maps,), attention_rollout(maps),
                            edge="a model of one layer" if layers == 1 else None))
    return run_checks(fn, trials, reference="vit_tutorial.analysis.attention_rollout", mistakes=_ROLLOUT_MISTAKES,
                       diagnose=_which_rows, axes=("image", "output token", "input token"),
                       hint="for each layer: a = attn.mean(dim=1); a = 0.5 * a + 0.5 * torch.eye(n); "
                            "a = a / a.sum(-1, keepdim=True); rollout = a @ rollout (start with the first layer)",
                       shape_hint="one (n, n) matrix per image: (batch, n, n); the heads are averaged away",
                       error_hint="maps is a Python list of tensors (batch, heads, n, n): loop over it, and build "
                                  "the identity with torch.eye(n), n = maps[0].shape[-1]")
