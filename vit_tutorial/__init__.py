"""vit_tutorial: the code behind the notebook series, one idea per module, in the order the series teaches.

    attention     scaled dot-product attention, by hand (einsum) and fused (SDPA)   notebooks 01-02
    patches       an image as patch tokens (einops + Linear, or Conv2d); positions  notebook 03
    vit           the encoder block, the full ViT and the paper's model sizes       notebook 04
    imagedata     ImageData, what every dataset is in memory; the data errors       notebook 05
    data          the embedded digits, sample photos, batch augmentation            notebooks 00, 03, 05
    cifar         CIFAR-10: downloaded once, checked, read without trusting the files notebook 05
    locations     where the data is (a clone, an installed wheel, VIT_TUTORIAL_DATA) and where downloads go
    imageheaders  a file's image format, size and orientation, before decoding   notebook 07
    images        your own images, read without trusting them; folder datasets   notebooks 05, 07
    devices       CPU or GPU, mixed precision, and naming the hardware honestly     notebooks 05, 09
    optim         AdamW with decay on matrices only, the warm-up + cosine schedule  notebook 05
    step          one training step, one evaluation, accuracy                       notebook 05
    augment       CIFAR-10's regularisers on the GPU: TrivialAugment, erasing, Mixup/CutMix, EMA   notebooks 05, 09
    files         the one rule for every file written: atomic, never over yours     notebooks 05, 07, 11
    checkpoint    safe reads, resume state, weights-only export                     notebooks 05, 11
    recipes       TrainConfig and the named recipes                                 notebook 05
    distributed   several processes under torchrun (DistributedDataParallel)
    runs          what a run leaves in its folder: metrics.json, curves.png         notebook 11
    train         the training loop that puts the pieces above in order             notebooks 05, 07, 08
    plots         training curves, confusion matrices, image grids                  all
    analysis      attention rollout, mean attention distance, the paper's Fig. 7    notebook 06
    finetune      pre-trained weights into a new model: new head, resized positions notebook 07
    pretrained    torchvision's ViTs (vit_b_16, ...) loaded into this ViT           notebook 07
    predict       a trained model on your own images: top 5, attention rollout      notebook 07
    speed         the fast path, one measured rung at a time                        notebook 09
    cnn           a small residual CNN to compare with; the one-pixel shift probe   notebook 10
    distill       DeiT: a distillation token that learns from a CNN teacher         notebook 10
    datasize      the data-size experiment: budgets chosen on validation, runs probed notebook 10
    exercises     checkers for the exercises: instant, specific feedback            notebooks 01-07, 10
    validate      the argument checks every public entry point shares
    notebook      smoke mode (VIT_TUTORIAL_SMOKE=1) and the one-line device report  all
    cli           ``python -m vit_tutorial train|predict|export|check-data|download`` (``vit-tutorial ...``)

The data path of a training run: image (data) -> patches (patches) -> tokens + [CLS] + positions
-> encoder -> head (vit) -> loss and update (step, optim) -> checkpoint (checkpoint) -> report (runs).
"""
from .attention import Attention, attention_scores, einsum_attention, record_attention
from .patches import PatchEmbedding, conv_to_linear_weight, linear_to_conv_weight, pair, posemb_sincos_2d
from .pretrained import from_torchvision
from .vit import (PRESETS, Block, FeedForward, Transformer, ViT, count_parameters, create_vit, pool_tokens,
                  prepend_cls_token, preset_kwargs)

__version__ = "0.1.0"
