"""Notebook 10's pieces: balanced subsets, the CNN baseline, the conv stem, the shift probe, distillation."""
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from vit_tutorial import ViT, count_parameters, preset_kwargs
from vit_tutorial.cnn import ResidualCNN, pooled_features, shift_images, shift_sensitivity
from vit_tutorial.data import trained_digits_path
from vit_tutorial.distill import DistilledViT, distillation_loss, prepare_teacher
from vit_tutorial.patches import PatchEmbedding, conv_stem_depth
from vit_tutorial.recipes import MODEL_KINDS, build_model, model_config_for
from vit_tutorial.step import train_step
from vit_tutorial.train import TrainConfig, load_checkpoint, load_model, train

DIGITS = preset_kwargs("digits", image_size=28, channels=1, num_classes=10)


# --------------------------------------------------------------------------- balanced subsets

def test_per_class_takes_the_first_n_of_every_class_in_order(digits):
    small = digits.per_class(25)
    assert torch.bincount(small.y_train, minlength=10).tolist() == [25] * 10
    expected = [i for c in range(10) for i in (digits.y_train == c).nonzero().flatten()[:25].tolist()]
    rows = sorted(expected)
    assert torch.equal(small.x_train, digits.x_train[rows]) and torch.equal(small.y_train, digits.y_train[rows])
    assert small.x_test is digits.x_test and small.y_test is digits.y_test  # every size is scored on the same test set
    assert (small.mean, small.std, small.augmentation) == (digits.mean, digits.std, digits.augmentation)
    assert torch.equal(digits.per_class(400).x_train, digits.x_train)  # all 400 per class: the whole set


def test_per_class_refuses_sizes_it_cannot_balance(digits):
    with pytest.raises(ValueError, match=r"per_class\(401\): the training set of 'digits' has only 400 images "
                                         r"of class '0'; choose n <= 400"):
        digits.per_class(401)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        digits.per_class(0)


# --------------------------------------------------------------------------- the conv stem (hybrid)

def stem_parameters(channels, widths, dim):
    """By hand: 3x3 convolutions without bias, a BatchNorm (scale and shift) after each, then a 1x1 with bias."""
    total, c = 0, channels
    for w in widths:
        total += c * w * 9 + 2 * w
        c = w
    return total + c * dim + dim


def test_conv_stem_parameter_count_by_hand():
    stem = PatchEmbedding(28, 7, dim=96, channels=1, kind="conv_stem")
    assert count_parameters(stem) == stem_parameters(1, (24, 48, 96), 96) == 61_704
    big = PatchEmbedding(224, 16, dim=768, channels=3, kind="conv_stem")
    assert count_parameters(big) == stem_parameters(3, (96, 192, 384, 768), 768)
    linear = ViT(**DIGITS)
    hybrid = ViT(**{**DIGITS, "patch_embed": "conv_stem"})
    assert count_parameters(linear) == 306_826
    assert count_parameters(hybrid) - count_parameters(linear) == 61_704 - (7 * 7 * 96 + 96)


@pytest.mark.parametrize("image_size,patch_size,depth", [(28, 7, 3), (28, 4, 2), (32, 4, 2), (224, 16, 4), (28, 28, 5)])
def test_conv_stem_gives_the_same_tokens_as_the_patch_projection(image_size, patch_size, depth):
    assert conv_stem_depth(image_size, patch_size) == depth
    x = torch.randn(2, 3, image_size, image_size)
    linear = PatchEmbedding(image_size, patch_size, dim=16, channels=3)
    stem = PatchEmbedding(image_size, patch_size, dim=16, channels=3, kind="conv_stem")
    assert stem(x).shape == linear(x).shape == (2, (image_size // patch_size) ** 2, 16)


def test_conv_stem_says_which_patch_sizes_fit():
    with pytest.raises(ValueError, match=r"image_size 24x24 with patch_size 3x3 \(grid 8x8\) never lands on it; "
                                         r"use patch_size 2 or 4 or 8 or 12, or patch_embed='linear'"):
        ViT(**{**DIGITS, "image_size": 24, "patch_size": 3, "patch_embed": "conv_stem"})


def test_conv_stem_starts_with_unit_scale_filters():
    """Every stem convolution gets the patch projection's LeCun start, not the 0.02 of the encoder."""
    torch.manual_seed(0)
    model = ViT(**{**DIGITS, "patch_embed": "conv_stem"})
    convs = [m for m in model.to_patch_embedding.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4
    for conv in convs:
        assert conv.weight.std().item() == pytest.approx(conv.weight[0].numel() ** -0.5, rel=0.25)


def test_seed_call_and_state_dict_keys_are_unchanged():
    """lucidrains' call still builds the linear projection, with the keys the shipped checkpoint has."""
    keys = {kind: [k for k in ViT(**{**DIGITS, "patch_embed": kind}).state_dict() if k.startswith("to_patch")]
            for kind in ("linear", "conv")}
    assert keys == {"linear": ["to_patch_embedding.proj.1.weight", "to_patch_embedding.proj.1.bias"],
                    "conv": ["to_patch_embedding.proj.0.weight", "to_patch_embedding.proj.0.bias"]}
    seed = ViT(image_size=28, patch_size=7, num_classes=10, dim=32, depth=1, heads=2, mlp_dim=64, channels=1)
    assert seed.to_patch_embedding.kind == "linear"


def test_a_checkpoint_without_a_kind_loads_as_a_vit():
    state = load_checkpoint(trained_digits_path())
    assert "kind" not in state["model_config"]
    assert type(load_model(trained_digits_path())) is ViT


# --------------------------------------------------------------------------- the CNN baseline

def test_cnn_parameter_count_by_hand_and_against_the_vit():
    def conv(c_in, c_out, k):
        return c_in * c_out * k * k

    def block(c_in, c_out):  # two 3x3 convolutions, a BatchNorm (scale, shift) after each; a 1x1 shortcut if widths differ
        shortcut = conv(c_in, c_out, 1) + 2 * c_out if c_in != c_out else 0
        return conv(c_in, c_out, 3) + conv(c_out, c_out, 3) + 2 * (2 * c_out) + shortcut

    stem = conv(1, 16, 3) + 2 * 16
    stages = block(16, 16) + block(16, 32) + block(32, 64) + block(64, 128)
    head = 128 * 10 + 10
    cnn = ResidualCNN(image_size=28, num_classes=10, channels=1)
    assert count_parameters(cnn) == stem + stages + head == 308_538
    assert abs(count_parameters(cnn) / count_parameters(ViT(**DIGITS)) - 1) < 0.006


def test_cnn_shapes_and_its_interface_matches_the_vit():
    cnn = ResidualCNN(image_size=28, num_classes=10, channels=1).eval()
    x = torch.randn(3, 1, 28, 28)
    assert cnn.forward_features(x).shape == (3, 128, 2, 2)  # 28 -> 14 (stem) -> 14 -> 7 -> 4 -> 2
    assert cnn(x).shape == (3, 10) and pooled_features(cnn, x).shape == (3, 128)
    assert pooled_features(ViT(**DIGITS).eval(), x).shape == (3, 96)
    deeper = ResidualCNN(image_size=32, num_classes=5, channels=3, widths=(8, 16), blocks=2, stem_stride=1)
    assert deeper(torch.randn(2, 3, 32, 32)).shape == (2, 5) and len(deeper.stages) == 4


@pytest.mark.parametrize("kw,match", [
    (dict(widths=()), r"widths must be a non-empty list of positive integers, one per stage, got \(\)"),
    (dict(widths=(32, 0)), "widths must be a positive integer, got 0"),
    (dict(blocks=0), "blocks must be a positive integer, got 0"),
])
def test_cnn_arguments_are_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        ResidualCNN(image_size=28, num_classes=10, channels=1, **kw)


def test_cnn_names_the_input_it_expects():
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 1, 28, 28\), got \(2, 3, 28, 28\)"):
        ResidualCNN(image_size=28, num_classes=10, channels=1)(torch.randn(2, 3, 28, 28))


# --------------------------------------------------------------------------- the shift probe

def test_shift_images_moves_content_and_fills_with_zeros():
    x = torch.arange(1, 10).reshape(1, 1, 3, 3)
    assert shift_images(x, 0, 1)[0, 0].tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    assert shift_images(x, -1, 0)[0, 0].tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]
    assert shift_images(x, 1, -1)[0, 0].tolist() == [[0, 0, 0], [2, 3, 0], [5, 6, 0]]
    assert torch.equal(shift_images(x, 0, 0), x) and not shift_images(x, 3, 0).any()
    assert shift_images(x.to(torch.uint8), 0, 1).dtype == torch.uint8


def test_shift_sensitivity_by_hand():
    img = torch.zeros(2, 1, 8, 8)
    img[0, 0, 4, 4], img[1, 0, 2, 5] = 1.0, 3.0
    # Flattened pixels: one bright pixel moves to another place, so |x' - x| = sqrt(2) |x|.
    assert shift_sensitivity(lambda x: x, img) == pytest.approx(math.sqrt(2))
    # The total brightness does not change when nothing falls off the edge: invariant.
    assert shift_sensitivity(lambda x: x.sum(dim=(1, 2, 3), keepdim=True), img) == pytest.approx(0.0)
    # Moving by 2 pixels: still disjoint, the same sqrt(2).
    assert shift_sensitivity(lambda x: x, img, pixels=2) == pytest.approx(math.sqrt(2))


# --------------------------------------------------------------------------- distillation

def test_distillation_token_and_head_parameters_by_hand():
    plain, dist = ViT(**DIGITS), DistilledViT(**DIGITS)
    dim, classes = 96, 10
    # [DIST] (dim), its row of the learned position table (dim), the second head (dim x classes + classes)
    assert count_parameters(dist) - count_parameters(plain) == dim + dim + dim * classes + classes == 1_162
    fixed = {**DIGITS, "pos_embedding": "sincos"}
    assert count_parameters(DistilledViT(**fixed)) - count_parameters(ViT(**fixed)) == dim + dim * classes + classes
    assert set(dist.state_dict()) - set(plain.state_dict()) == {"dist_token", "head_dist.weight", "head_dist.bias"}


def test_distilled_vit_tokens_and_heads():
    model = DistilledViT(**{**DIGITS, "pos_embedding": "sincos"})
    x = torch.randn(4, 1, 28, 28)
    assert model.forward_features(x).shape == (4, 2 + 16, 96)
    assert torch.equal(model.pos_embedding[0, :2], torch.zeros(2, 96))  # no position for [CLS] or [DIST]
    cls_logits, dist_logits = model.train()(x)  # training: both heads, for the loss
    model.eval()
    with torch.no_grad():
        both = model.heads(model.forward_features(x))
        torch.testing.assert_close(model(x), (both[0] + both[1]) / 2)  # test time: the average
    assert cls_logits.shape == dist_logits.shape == (4, 10)
    assert pooled_features(model, x).shape == (4, 96)


def test_distillation_loss_by_hand():
    cls_logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    dist_logits = torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    labels = torch.tensor([0, 2])
    teacher = torch.tensor([[0.1, 0.2, 3.0], [5.0, 0.0, 0.0]])  # its hard labels: 2 and 0

    def ce(row, k):  # -log softmax(row)[k]
        return -(row[k] - math.log(sum(math.exp(v) for v in row)))

    by_hand = 0.5 * (ce([2, 0, 0], 0) + ce([0, 1, 0], 2)) / 2 + 0.5 * (ce([0, 0, 1], 2) + ce([1, 1, 1], 0)) / 2
    assert distillation_loss(cls_logits, dist_logits, labels, teacher).item() == pytest.approx(by_hand, rel=1e-6)
    # Label smoothing touches the true-label term only.
    smoothed = 0.5 * F.cross_entropy(cls_logits, labels, label_smoothing=0.1) + 0.5 * (ce([0, 0, 1], 2) + math.log(3)) / 2
    assert distillation_loss(cls_logits, dist_logits, labels, teacher, 0.1).item() == pytest.approx(smoothed.item())


def test_train_step_with_a_teacher_uses_the_distillation_loss_and_leaves_the_teacher_alone():
    torch.manual_seed(0)
    student = DistilledViT(**{**DIGITS, "depth": 1}).train()
    teacher = prepare_teacher(ResidualCNN(image_size=28, num_classes=10, channels=1), "distilled_vit",
                              torch.randn(2, 1, 28, 28), 10, "cpu")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    x, y = torch.randn(8, 1, 28, 28), torch.randint(10, (8,))
    with torch.no_grad():
        expected = distillation_loss(*student(x), y, teacher(x), 0.1)
    loss, logits = train_step(student, torch.optim.SGD(student.parameters(), lr=0.1), x, y,
                              label_smoothing=0.1, teacher=teacher)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and logits.shape == (8, 10)
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())  # BatchNorm stats too
    assert all(p.grad is None for p in teacher.parameters())
    with pytest.raises(ValueError, match="a teacher needs a student with a distillation head"):
        train_step(ViT(**{**DIGITS, "depth": 1}), torch.optim.SGD(student.parameters(), lr=0.1), x, y, teacher=teacher)


def test_prepare_teacher_copies_freezes_and_checks():
    mine = ResidualCNN(image_size=28, num_classes=10, channels=1).train()
    frozen = prepare_teacher(mine, "distilled_vit", torch.randn(2, 1, 28, 28), 10, "cpu")
    assert frozen is not mine and not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    assert mine.training and all(p.requires_grad for p in mine.parameters())  # the caller's model is untouched
    with pytest.raises(ValueError, match=r"the teacher cannot label these images \(expected input of shape "
                                         r"\(batch, 3, 28, 28\), got \(2, 1, 28, 28\)\)"):
        prepare_teacher(ResidualCNN(image_size=28, num_classes=10), "distilled_vit", torch.randn(2, 1, 28, 28), 10, "cpu")
    with pytest.raises(ValueError, match=r"the teacher must return logits of shape \(batch, 10\), got \(2, 5\)"):
        prepare_teacher(ResidualCNN(image_size=28, num_classes=5, channels=1), "distilled_vit",
                        torch.randn(2, 1, 28, 28), 10, "cpu")


# --------------------------------------------------------------------------- through train() and checkpoints

def test_train_trains_a_cnn_and_its_checkpoint_says_so(tiny_data, tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, epochs=1, model_kind="cnn", model_overrides=dict(widths=(8, 16)))
    result = train(config, data=tiny_data, out=tmp_path, progress=False)
    assert isinstance(result.model, ResidualCNN) and result.model_config["kind"] == "cnn"
    assert result.model_config == dict(kind="cnn", image_size=28, num_classes=10, channels=1, widths=(8, 16),
                                       blocks=1, stem_stride=2)
    loaded = load_model(tmp_path / "checkpoint.pt")
    x = torch.randn(2, 1, 28, 28)
    assert isinstance(loaded, ResidualCNN) and torch.equal(loaded(x), result.model(x))


def test_train_distils_from_a_teacher_object_or_checkpoint(tiny_data, tiny_config, tmp_path):
    cnn = train(dataclasses.replace(tiny_config, epochs=1, model_kind="cnn", model_overrides=dict(widths=(8,))),
                data=tiny_data, out=tmp_path / "teacher", progress=False)
    student = dataclasses.replace(tiny_config, epochs=1, model_kind="distilled_vit")
    by_object = train(student, data=tiny_data, out=tmp_path / "student", progress=False, teacher=cnn.model)
    by_path = train(dataclasses.replace(student, teacher=str(tmp_path / "teacher" / "checkpoint.pt")),
                    data=tiny_data, progress=False)
    assert by_object.model_config["kind"] == "distilled_vit"
    assert by_path.history["train_loss"] == pytest.approx(by_object.history["train_loss"], rel=1e-5)
    loaded = load_model(tmp_path / "student" / "checkpoint.pt")
    x = torch.randn(2, 1, 28, 28)
    assert type(loaded) is DistilledViT and torch.equal(loaded(x), by_object.model(x))
    assert cnn.model.training is False and all(p.requires_grad for p in cnn.model.parameters())


def test_distillation_without_a_teacher_or_a_teacher_without_distillation_is_refused(tiny_data, tiny_config):
    with pytest.raises(ValueError, match=r"model_kind='distilled_vit' learns from a teacher: pass "
                                         r"train\(\.\.\., teacher=a_trained_model\)"):
        train(dataclasses.replace(tiny_config, model_kind="distilled_vit"), data=tiny_data, progress=False)
    with pytest.raises(ValueError, match="a teacher is only used with model_kind='distilled_vit', got model_kind='vit'"):
        train(tiny_config, data=tiny_data, progress=False, teacher=ResidualCNN(image_size=28, num_classes=10))
    with pytest.raises(ValueError, match="teacher is only used with model_kind='distilled_vit', got model_kind='cnn'"):
        TrainConfig(model_kind="cnn", teacher="teacher.pt").validate()


@pytest.mark.parametrize("change,match", [
    (dict(model_kind="resnet"), "model_kind must be one of 'vit', 'cnn', 'distilled_vit', got 'resnet'"),
    (dict(model_kind="cnn", model_overrides={"dim": 64}),
     "model_overrides has 'dim', which ResidualCNN does not take; its arguments are: image_size, num_classes"),
    (dict(model_kind="distilled_vit", model_overrides={"widths": (8,)}), "'widths', which ViT does not take"),
    (dict(model_kind="distilled_vit", teacher=""), "teacher must be a checkpoint path or None, got ''"),
])
def test_config_checks_the_model_kind(change, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**change).validate()


def test_build_model_reads_the_kind(digits):
    vit_cfg = model_config_for(TrainConfig(), digits)
    assert "kind" not in vit_cfg and type(build_model(vit_cfg)) is ViT  # as every older checkpoint records it
    assert type(build_model(model_config_for(TrainConfig(model_kind="distilled_vit"), digits))) is DistilledViT
    assert set(MODEL_KINDS) == {"vit", "cnn", "distilled_vit"}
    with pytest.raises(ValueError, match="model_config has kind 'mlp'; known kinds: vit, cnn, distilled_vit"):
        build_model({**vit_cfg, "kind": "mlp"})
