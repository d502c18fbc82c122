import pytest
import torch

from vit_tutorial import PRESETS, ViT, count_parameters, create_vit, preset_kwargs

SEED_CALL = dict(image_size=32, patch_size=8, num_classes=5, dim=64, depth=2, heads=4, mlp_dim=128,
                 pool="cls", channels=3, dim_head=16, dropout=0.1, emb_dropout=0.1)


def small(**kw):
    return ViT(**{**SEED_CALL, "dropout": 0.0, "emb_dropout": 0.0, **kw}).eval()


def test_seed_call_works_and_gives_logits():
    model = ViT(**SEED_CALL)
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 5)


def test_rectangular_images_and_patches():
    model = ViT(image_size=(24, 40), patch_size=(8, 10), num_classes=2, dim=32, depth=1, heads=2, mlp_dim=64)
    assert model.pos_embedding.shape == (1, 3 * 4 + 1, 32)
    assert model(torch.randn(2, 3, 24, 40)).shape == (2, 2)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_pooling_reads_the_right_tokens(pool):
    model = small(pool=pool)
    x = torch.randn(2, 3, 32, 32)
    tokens = model.forward_features(x)
    pooled = tokens[:, 0] if pool == "cls" else tokens[:, 1:].mean(1)
    torch.testing.assert_close(model(x), model.mlp_head(pooled))


def test_einsum_and_sdpa_models_agree():
    fast = small(attn_impl="sdpa")
    slow = small(attn_impl="einsum")
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(fast(x), slow(x))


def test_linear_and_conv_patch_models_agree_with_tied_weights():
    from vit_tutorial import linear_to_conv_weight

    lin, conv = small(patch_embed="linear"), small(patch_embed="conv")
    state = lin.state_dict()
    state["to_patch_embedding.proj.0.weight"] = linear_to_conv_weight(
        state.pop("to_patch_embedding.proj.1.weight"), 8, 3)
    state["to_patch_embedding.proj.0.bias"] = state.pop("to_patch_embedding.proj.1.bias")
    conv.load_state_dict(state)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(lin(x), conv(x))


@pytest.mark.parametrize("kind", ["sincos", "none"])
def test_fixed_position_tables_are_buffers_not_parameters(kind):
    model = small(pos_embedding=kind)
    assert "pos_embedding" not in dict(model.named_parameters())
    assert "pos_embedding" not in model.state_dict()
    assert (model.pos_embedding[0, 0] == 0).all()  # the CLS slot gets no position


def test_without_positions_the_model_ignores_patch_order():
    model = small(pos_embedding="none", pool="mean")
    x = torch.randn(1, 3, 32, 32)
    blocks = x.unfold(2, 8, 8).unfold(3, 8, 8)  # (1, 3, 4, 4, 8, 8)
    shuffled = blocks.flip(2).permute(0, 1, 2, 4, 3, 5).reshape(1, 3, 32, 32)
    torch.testing.assert_close(model(x), model(shuffled))
    learned = small(pos_embedding="learned", pool="mean")
    assert not torch.allclose(learned(x), learned(shuffled))


EXPECTED = {  # torchvision's vit_b_16 / vit_l_16 / vit_h_14 have exactly these counts
    "ViT-B/16": 86_567_656, "ViT-L/16": 304_326_632, "ViT-H/14": 632_045_800,
    "ViT-Ti/16": 5_717_416, "ViT-S/16": 22_050_664,
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_paper_preset_parameter_counts(name):
    with torch.device("meta"):
        model = create_vit(name)
    assert count_parameters(model) == EXPECTED[name]


def test_vit_b16_count_equals_torchvision():
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        assert count_parameters(tv.models.vit_b_16()) == count_parameters(create_vit("ViT-B/16"))


@pytest.mark.parametrize("name", ["digits", "cifar10"])
def test_training_presets_build_and_run(name):
    cfg = PRESETS[name]
    model = create_vit(name)
    x = torch.randn(2, cfg["channels"], cfg["image_size"], cfg["image_size"])
    assert model(x).shape == (2, 10)


def test_preset_returns_a_copy_with_overrides():
    cfg = preset_kwargs("ViT-B/16", num_classes=10)
    assert cfg["num_classes"] == 10 and PRESETS["ViT-B/16"]["num_classes"] == 1000
    with pytest.raises(ValueError, match="unknown preset 'ViT-X'.*ViT-B/16"):
        preset_kwargs("ViT-X")


@pytest.mark.parametrize("change,match", [
    (dict(pool="max"), "pool must be one of 'cls', 'mean', got 'max'"),
    (dict(dim=0), "dim must be a positive integer, got 0"),
    (dict(depth=-1), "depth must be a positive integer, got -1"),
    (dict(heads=2.5), "heads must be a positive integer, got 2.5"),
    (dict(mlp_dim=None), "mlp_dim must be a positive integer, got None"),
    (dict(num_classes=0), "num_classes must be a positive integer"),
    (dict(channels=0), "channels must be a positive integer"),
    (dict(dim_head=0), "dim_head must be a positive integer"),
    (dict(image_size=30), "image_size 30x30 is not divisible by patch_size 8x8"),
    (dict(patch_size=0), "patch_size must be a positive int"),
    (dict(dropout=1.5), r"dropout must be a number in \[0, 1\), got 1.5"),
    (dict(emb_dropout=-0.1), "emb_dropout must be"),
    (dict(pos_embedding="rope"), "pos_embedding must be one of"),
    (dict(pos_embedding="sincos", dim=66, heads=2, dim_head=33), "divisible by 4, got dim=66"),
    (dict(attn_impl="flash"), "attn_impl must be one of"),
    (dict(patch_embed="mlp"), "patch_embed must be one of"),
    (dict(norm_eps=0), "norm_eps must be a small positive number, got 0"),
])
def test_bad_configuration_gives_clear_value_error(change, match):
    with pytest.raises(ValueError, match=match):
        ViT(**{**SEED_CALL, **change})


@pytest.mark.parametrize("shape,match", [
    ((2, 1, 32, 32), r"expected input of shape \(batch, 3, 32, 32\), got \(2, 1, 32, 32\)"),
    ((2, 3, 28, 28), r"got \(2, 3, 28, 28\)"),
    ((2, 3, 32, 64), r"got \(2, 3, 32, 64\)"),
    ((3, 32, 32), "add a batch dimension"),
])
def test_bad_input_gives_clear_value_error(shape, match):
    with pytest.raises(ValueError, match=match):
        small()(torch.randn(*shape))


def test_non_tensor_input():
    with pytest.raises(ValueError, match="expected a torch.Tensor"):
        small()([[1.0]])


def test_validation_survives_python_O():
    # The seed validated with `assert`, which `python -O` strips; ours are real checks.
    import subprocess
    import sys

    code = ("from vit_tutorial import ViT\n"
            "try:\n    ViT(image_size=30, patch_size=8, num_classes=2, dim=8, depth=1, heads=1, mlp_dim=8)\n"
            "except ValueError as e:\n    print('ValueError', e)\n")
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("ValueError image_size 30x30")


def test_forward_is_features_then_head_and_pre_logits_stops_before_the_linear_layer():
    from vit_tutorial import pool_tokens

    model = small(pool="cls")
    x = torch.randn(2, 3, 32, 32)
    tokens = model.forward_features(x)
    pooled = model.forward_head(tokens, pre_logits=True)
    assert pooled.shape == (2, 64) and torch.equal(pooled, pool_tokens(tokens, "cls"))
    torch.testing.assert_close(model.forward_head(tokens), model.mlp_head(pooled))
    torch.testing.assert_close(model(x), model.forward_head(tokens))


def test_prepend_cls_token_is_where_the_cls_token_joins():
    from vit_tutorial import prepend_cls_token

    tokens, cls = torch.randn(3, 4, 8), torch.randn(1, 1, 8)
    out = prepend_cls_token(tokens, cls)
    assert out.shape == (3, 5, 8)
    assert all(torch.equal(out[i, 0], cls[0, 0]) for i in range(3)) and torch.equal(out[:, 1:], tokens)


@pytest.mark.parametrize("dtype,match", [
    (torch.float64, r"expected torch.float32 input \(the model's dtype\), got torch.float64: convert it"),
    (torch.uint8, "got torch.uint8: scale it to floats first"),
    (torch.int64, "got torch.int64: scale it to floats first"),
])
def test_input_of_another_dtype_gives_a_value_error_that_says_what_to_do(dtype, match):
    with pytest.raises(ValueError, match=match):
        small()(torch.zeros(2, 3, 32, 32, dtype=dtype))


def test_patch_embedding_checks_its_own_input():
    from vit_tutorial import PatchEmbedding

    embed = PatchEmbedding(32, 8, dim=16, channels=3)
    assert embed(torch.randn(2, 3, 32, 32)).shape == (2, 16, 16)
    with pytest.raises(ValueError, match=r"expects images of shape \(batch, 3, 32, 32\) \(4x4 patches of 8x8\), "
                                         r"got \(2, 3, 30, 32\)"):
        embed(torch.randn(2, 3, 30, 32))
    with pytest.raises(ValueError, match=r"got \(3, 32, 32\)"):
        embed(torch.randn(3, 32, 32))


def test_an_image_size_with_no_divisor_still_gets_a_complete_message():
    with pytest.raises(ValueError) as e:
        ViT(**{**SEED_CALL, "image_size": 1, "patch_size": 7})
    assert str(e.value).endswith("(for 1x1: e.g. 1)") and "e.g. )" not in str(e.value)
