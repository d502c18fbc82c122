"""Solution to the exercise of notebook 06 (what a ViT learns).

One possible answer; ``vit_tutorial.exercises.check_attention_rollout`` accepts it.
"""
import torch


def my_attention_rollout(maps):
    """Exercise 1: maps[l] is layer l's attention (b, heads, n, n) -> the rollout (b, n, n).

    Heads averaged; each layer mixed half-and-half with the identity (the residual path), rows
    renormalised; layers multiplied with the first one on the right: R = A_L ... A_2 A_1.
    """
    eye = torch.eye(maps[0].shape[-1])
    rollout = None
    for attn in maps:
        a = 0.5 * attn.mean(dim=1) + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout
