"""vit_tutorial: the code behind the notebook series, one module per step.

    attention   scaled dot-product attention, by hand (einsum) and fused (SDPA)   notebooks 01-02
    patches     patch embedding (einops + Linear, or Conv2d) and 2-D positions     notebook 03
    vit         the encoder block, the full ViT and the paper's presets           notebook 04
    data        the embedded digits, CIFAR-10, sample photos                      notebooks 03, 05
    train       one training loop for the CLI and the notebooks, checkpoints      notebook 05
    plots       training curves, confusion matrices, image grids                  all
    analysis    attention rollout, mean attention distance, the paper's Fig. 7    notebook 06
    pretrained  torchvision's ViTs (vit_b_16, ...) loaded into this ViT           notebook 07
    speed       the fast path, one measured rung at a time                        notebook 09
    exercises   checkers for the exercises: instant, specific feedback            notebooks 01-05
    notebook    smoke mode (VIT_TUTORIAL_SMOKE=1) and the one-line device report  all
    cli         ``python -m vit_tutorial train|export``: the training loop from a shell
"""
from .attention import Attention, einsum_attention, record_attention
from .patches import PatchEmbedding, conv_to_linear_weight, linear_to_conv_weight, pair, posemb_sincos_2d
from .pretrained import from_torchvision
from .vit import PRESETS, Block, FeedForward, Transformer, ViT, count_parameters, create_vit, preset

__version__ = "0.1.0"
