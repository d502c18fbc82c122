"""Solutions to the exercises of notebook 03 (patch embedding).

Each function is one possible answer; ``vit_tutorial.exercises.check_<name>`` accepts it.
"""
import torch.nn.functional as F
from einops import rearrange


def my_patchify(images, patch_size):
    """Exercise 1: (b, c, H, W) -> (b, num_patches, p*p*c); patches row by row, pixels as (p1 p2 c)."""
    return rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_size, p2=patch_size)


def my_patch_embedding(images, weight, bias, patch_size):
    """Exercise 2: patchify, then one shared linear map: (b, c, H, W) -> (b, num_patches, dim)."""
    return F.linear(my_patchify(images, patch_size), weight, bias)
