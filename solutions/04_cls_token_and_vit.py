"""Solutions to the exercises of notebook 04 (the CLS token and the whole ViT).

Each function is one possible answer; ``vit_tutorial.exercises.check_<name>`` accepts it.
"""
import torch
import torch.nn.functional as F


def my_add_cls_token(tokens, cls_token):
    """Exercise 1: (b, n, dim) and (1, 1, dim) -> (b, n + 1, dim), the CLS token first."""
    cls = cls_token.expand(tokens.shape[0], -1, -1)  # one copy per image, without copying memory
    return torch.cat([cls, tokens], dim=1)


def my_add_position_embedding(tokens, cls_token, pos_embedding):
    """Exercise 2: prepend CLS, then add the (1, n + 1, dim) position table (row 0 is CLS's)."""
    return my_add_cls_token(tokens, cls_token) + pos_embedding


def my_feedforward(x, w1, b1, w2, b2):
    """Exercise 3: the per-token MLP, Linear -> GELU -> Linear (weights in nn.Linear's layout)."""
    return F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2)


def my_pre_norm_block(x, attn, mlp, norm1, norm2):
    """Exercise 4: a pre-norm encoder block, z' = z + MSA(LN(z)), then z' + MLP(LN(z'))."""
    x = x + attn(norm1(x))
    return x + mlp(norm2(x))


def my_vit_head(x, norm, head, pool):
    """Exercise 5: the encoder's final LayerNorm on every token, then pool ('cls': token 0, 'mean': the
    average of the patch tokens), then the linear head -> logits (b, num_classes)."""
    x = norm(x)
    pooled = x[:, 0] if pool == "cls" else x[:, 1:].mean(dim=1)
    return head(pooled)
