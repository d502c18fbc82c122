import pytest
import torch

from vit_tutorial import PatchEmbedding, conv_to_linear_weight, linear_to_conv_weight, posemb_sincos_2d


@pytest.mark.parametrize("image_size,patch_size,channels", [(32, 4, 3), ((24, 16), (6, 8), 1)])
def test_linear_and_conv_patch_embeddings_identical_with_tied_weights(image_size, patch_size, channels):
    lin = PatchEmbedding(image_size, patch_size, dim=20, channels=channels, kind="linear")
    conv = PatchEmbedding(image_size, patch_size, dim=20, channels=channels, kind="conv")
    with torch.no_grad():
        conv.proj[0].weight.copy_(linear_to_conv_weight(lin.proj[1].weight, patch_size, channels))
        conv.proj[0].bias.copy_(lin.proj[1].bias)
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    x = torch.randn(2, channels, h, w)
    torch.testing.assert_close(lin(x), conv(x))
    assert lin(x).shape == (2, lin.num_patches, 20)
    torch.testing.assert_close(conv_to_linear_weight(conv.proj[0].weight), lin.proj[1].weight)


def test_patches_run_row_by_row():
    emb = PatchEmbedding(4, 2, dim=4, channels=1, kind="linear")
    with torch.no_grad():
        emb.proj[1].weight.copy_(torch.eye(4))
        emb.proj[1].bias.zero_()
    img = torch.arange(16.0).view(1, 1, 4, 4)
    # patch 0 is the top-left 2x2 block, patch 1 the top-right one
    assert emb(img)[0, 0].tolist() == [0, 1, 4, 5]
    assert emb(img)[0, 1].tolist() == [2, 3, 6, 7]


@pytest.mark.parametrize("image_size,patch_size,match", [
    (30, 4, "30x30 is not divisible by patch_size 4x4"),
    (0, 4, "image_size must be a positive int"),
    (32, -4, "patch_size must be a positive int"),
    ((32, 32, 3), 4, "pair of positive ints"),
    (32.0, 4, "image_size must be"),
])
def test_bad_sizes(image_size, patch_size, match):
    with pytest.raises(ValueError, match=match):
        PatchEmbedding(image_size, patch_size, dim=8)


def test_unknown_kind():
    with pytest.raises(ValueError, match="'dense'"):
        PatchEmbedding(8, 4, dim=8, kind="dense")


def test_sincos_embeddings():
    pe = posemb_sincos_2d(4, 5, 16)
    assert pe.shape == (20, 16)
    sim = torch.nn.functional.cosine_similarity(pe[:, None], pe[None], dim=-1)
    # neighbours are more alike than far-apart patches
    assert sim[0, 1] > sim[0, 4] and sim[0, 5] > sim[0, 15]
    with pytest.raises(ValueError, match="divisible by 4"):
        posemb_sincos_2d(4, 4, 10)
