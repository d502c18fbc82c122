"""The block diagram of notebook 04, drawn from forward hooks on a tiny ViT."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vit_tutorial import ViT  # noqa: E402
from vit_tutorial.plots import draw_block_diagram  # noqa: E402


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_the_block_diagram_shows_the_shapes_the_hooks_saw(pool):
    model = ViT(image_size=16, patch_size=8, num_classes=3, dim=8, depth=2, heads=2, dim_head=4, mlp_dim=16,
                pool=pool).eval()
    fig = draw_block_diagram(model, torch.zeros(5, 3, 16, 16))
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        whole, block = fig.axes
        labels = texts(whole)
        assert "(5, 3, 16, 16)\n(batch, channels, height, width)" in labels
        assert "(5, 4, 8)\n(batch, patches, dim)" in labels            # 2x2 patches
        assert "(5, 5, 8)\n(batch, 1 + patches, dim)" in labels        # with [CLS]
        assert "(5, 3)\n(batch, classes)" in labels
        assert sum(t.startswith("encoder Block") for t in labels) == 2
        assert any(t.startswith(f"pool = {pool!r}") for t in labels)
        inside = texts(block)
        assert inside.count("+") == 2                                  # the two residual connections
        assert "(5, 5, 16)\n(batch, 1 + patches, mlp_dim)" in inside
        assert not any(m._forward_hooks for m in model.modules())      # every hook removed again
    finally:
        plt.close(fig)


def test_the_block_diagram_refuses_what_it_cannot_draw():
    with pytest.raises(ValueError, match="draws a vit_tutorial ViT; got a Linear"):
        draw_block_diagram(torch.nn.Linear(2, 2), torch.zeros(1, 3, 16, 16))
    model = ViT(image_size=16, patch_size=8, num_classes=3, dim=8, depth=1, heads=2, dim_head=4, mlp_dim=16)
    with pytest.raises(ValueError, match=r"images must be a batch \(b, c, h, w\); got torch.Size\(\[3, 16, 16\]\)"):
        draw_block_diagram(model, torch.zeros(3, 16, 16))
