import pytest
import torch
import torch.nn.functional as F

from vit_tutorial import Attention, einsum_attention, record_attention
from vit_tutorial.vit import ViT


def test_einsum_attention_matches_sdpa():
    q, k, v = (torch.randn(2, 3, 7, 8) for _ in range(3))
    out, w = einsum_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 7))


def test_einsum_attention_mask_matches_sdpa():
    q, k, v = (torch.randn(2, 5, 4) for _ in range(3))
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    out, w = einsum_attention(q, k, v, mask=causal)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=causal))
    assert torch.all(w.masked_select(~causal) == 0)


def test_attention_paths_agree_with_shared_weights():
    fast = Attention(dim=24, heads=3, dim_head=8, qkv_bias=True, impl="sdpa")
    slow = Attention(dim=24, heads=3, dim_head=8, qkv_bias=True, impl="einsum")
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(4, 10, 24)
    torch.testing.assert_close(fast(x), slow(x))


def test_attention_equals_multihead_attention_with_copied_weights():
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    ours = Attention(16, heads=4, dim_head=4, qkv_bias=True)
    with torch.no_grad():
        ours.to_qkv.weight.copy_(mha.in_proj_weight)
        ours.to_qkv.bias.copy_(mha.in_proj_bias)
        ours.to_out[0].weight.copy_(mha.out_proj.weight)
        ours.to_out[0].bias.copy_(mha.out_proj.bias)
    x = torch.randn(2, 9, 16)
    torch.testing.assert_close(ours(x), mha(x, x, x, need_weights=False)[0])


def test_record_attention_gives_weights_from_fast_path_and_restores():
    model = ViT(image_size=8, patch_size=4, num_classes=3, dim=16, depth=2, heads=2, mlp_dim=32,
                dim_head=8).eval()
    x = torch.randn(3, 3, 8, 8)
    plain = model(x)
    with record_attention(model) as maps:
        recorded = model(x)
    torch.testing.assert_close(plain, recorded)
    assert [tuple(m.shape) for m in maps] == [(3, 2, 5, 5)] * 2
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(3, 2, 5))
    assert all(layer._recorder is None for layer in model.modules() if isinstance(layer, Attention))
    model(x)
    assert len(maps) == 2  # nothing recorded after the block


def test_record_attention_restores_after_error():
    model = ViT(image_size=8, patch_size=4, num_classes=3, dim=16, depth=1, heads=2, mlp_dim=32)
    with pytest.raises(ValueError):
        with record_attention(model):
            model(torch.randn(1, 3, 9, 9))
    assert all(m._recorder is None for m in model.modules() if isinstance(m, Attention))


def test_record_attention_needs_attention_layers():
    with pytest.raises(ValueError, match="no vit_tutorial Attention"):
        with record_attention(torch.nn.Linear(2, 2)):
            pass


def test_unknown_attention_impl():
    with pytest.raises(ValueError, match="'flash'"):
        Attention(8, impl="flash")
