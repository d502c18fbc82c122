import math

import pytest
import torch

from vit_tutorial import ViT, record_attention
from vit_tutorial.analysis import (attention_rollout, mean_attention_distance, patch_filter_components,
                                   position_similarity)


def test_rollout_by_hand():
    # two tokens, one head, two layers
    a1 = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
    a2 = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    # with the residual: 0.5 A + 0.5 I, rows already sum to 1
    r1 = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    r2 = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    expected = r2 @ r1  # [[0.625, 0.375], [0.625, 0.375]]
    torch.testing.assert_close(attention_rollout([a1, a2])[0], expected)
    assert expected[0].tolist() == [0.625, 0.375]
    # without it, the plain product of the attention matrices
    torch.testing.assert_close(attention_rollout([a1, a2], residual=False)[0], a2[0, 0] @ a1[0, 0])


def test_rollout_averages_heads_and_keeps_rows_stochastic():
    maps = [torch.rand(2, 3, 5, 5).softmax(-1) for _ in range(4)]
    r = attention_rollout(maps)
    assert r.shape == (2, 5, 5)
    torch.testing.assert_close(r.sum(-1), torch.ones(2, 5))
    one_head = [m.mean(1, keepdim=True) for m in maps]
    torch.testing.assert_close(attention_rollout(one_head), r)
    with pytest.raises(ValueError, match="at least one layer"):
        attention_rollout([])


def test_rollout_on_a_model_trained_on_the_fused_path():
    model = ViT(image_size=16, patch_size=4, num_classes=3, dim=16, depth=3, heads=2, mlp_dim=32, dim_head=8).eval()
    with torch.no_grad(), record_attention(model) as maps:
        model(torch.randn(2, 3, 16, 16))
    r = attention_rollout(maps)
    assert r.shape == (2, 17, 17) and torch.allclose(r.sum(-1), torch.ones(2, 17))


def constructed(grid, rule):
    """Attention (1 image, 1 head, CLS + patches) where each patch query attends as `rule` says."""
    n = grid[0] * grid[1]
    a = torch.zeros(1, 1, n + 1, n + 1)
    a[0, 0, 0, 0] = 1
    for q in range(n):
        for k, w in rule(q, n).items():
            a[0, 0, q + 1, k + 1] = w
        a[0, 0, q + 1, 0] = 0.3  # attention to CLS is dropped and the rest renormalised
    return a


def test_mean_attention_distance_known_answers():
    grid, p = (3, 3), 16
    self_only = constructed(grid, lambda q, n: {q: 1.0})
    assert mean_attention_distance(self_only, grid, p).item() == 0
    # on a 1x3 row, every patch attends to the next one on the right (wrapping to the first):
    # distances 16, 16 and 32 pixels -> mean 64/3
    row = constructed((1, 3), lambda q, n: {(q + 1) % n: 1.0})
    assert mean_attention_distance(row, (1, 3), p).item() == pytest.approx(64 / 3)
    # uniform attention over a 2x2 grid: per query distances 0, 16, 16, 16*sqrt(2), averaged over 4 keys
    uniform = constructed((2, 2), lambda q, n: {k: 0.25 for k in range(n)})
    assert mean_attention_distance(uniform, (2, 2), p).item() == pytest.approx((32 + 16 * math.sqrt(2)) / 4)


def test_mean_attention_distance_per_head_and_grid_check():
    a = torch.cat([constructed((1, 3), lambda q, n: {q: 1.0}),
                   constructed((1, 3), lambda q, n: {(q + 1) % n: 1.0})], dim=1)
    d = mean_attention_distance(a, (1, 3), (4, 8))
    assert d.shape == (2,) and d[0] == 0 and d[1].item() == pytest.approx(32 / 3)  # patches 8 px wide
    with pytest.raises(ValueError, match="does not fit a 2x2 grid"):
        mean_attention_distance(a, (2, 2), 8)


def test_position_similarity():
    pe = torch.randn(1, 1 + 12, 8)
    s = position_similarity(pe, (3, 4))
    assert s.shape == (3, 4, 3, 4)
    flat = s.reshape(12, 12)
    torch.testing.assert_close(flat.diagonal(), torch.ones(12))
    torch.testing.assert_close(flat, flat.T)
    with pytest.raises(ValueError, match="do not fit a 3x3 grid"):
        position_similarity(pe, (3, 3))


def test_patch_filter_components_find_the_dominant_pattern():
    g = torch.Generator().manual_seed(0)
    pattern = torch.zeros(3, 4, 4)
    pattern[:, :2] = 1.0  # a horizontal edge
    pattern /= pattern.norm()
    weights = torch.randn(64, 1, 1, 1, generator=g) * pattern + 0.01 * torch.randn(64, 3, 4, 4, generator=g)
    comps, share = patch_filter_components(weights, k=5)
    assert comps.shape == (5, 3, 4, 4) and share.shape == (5,)
    assert abs(torch.dot(comps[0].flatten(), pattern.flatten())).item() > 0.99
    assert share[0] > 0.9 and torch.all(share[:-1] >= share[1:])
