"""Notebooks 01-07: exercises with instant feedback that says *what* is wrong, one module of checkers per notebook.

Why this exists: reading a tidy implementation is not the same as writing one. Each notebook ends
with a few small exercises: the learner fills in a function, then calls a checker from here, e.g.
``check_attention(my_attention)``. The checker runs the function on fresh seeded inputs (several
shapes, batch > 1, non-square where it matters), compares the result with the function the package
itself uses (``einsum_attention``, ``PatchEmbedding``, ``Block``, ``ViT.forward_head``, ``lr_at``,
``train_step``, ``evaluate``, ``attention_rollout``, ``resize_pos_embedding``, ...), so an exercise can
never disagree with the rest of the series, and prints **one** verdict:

* ``✅ ...`` when every test passes (returns ``True``);
* ``❌ ...`` plus ``Hint: ...`` when something is wrong (returns ``False``). The typical mistakes of
  each exercise are recognised by name, with a hint that fixes that mistake: a missing ``1/√d``, a
  mask inverted or applied after the softmax, heads merged in the wrong order, channels-last
  images, a CLS token on the first image only, swapped sub-layers, an off-by-one at the end of the
  warm-up, a missing ``zero_grad()``, a softmax before the loss, dropout left on during evaluation,
  the layers of a rollout multiplied in the wrong order, ... Inputs are designed so that these
  mistakes give different outputs. What is not recognised is still located (which tokens, rows,
  steps are wrong), and a size hard-coded from test 1 or random numbers drawn inside are named;
* ``⏳ not done yet ...`` while the function still raises ``NotImplementedError`` (returns ``None``).

When no catalogued mistake fits, ``diagnose`` compares the wrong output with the right one by
property (the same values in another layout, a constant factor named after an input size, the wrong
axis normalised, a token missing or shifted by one, images of a batch influencing each other) and
says which property differs. Every checker also tries the exercise's edge cases (a zero shift, a
shift beyond the image, one token, a batch of one) and looks at what the function leaves behind:
modules it was handed keep their mode, ``requires_grad``, weights, gradients and dtype.

Checkers of functions that a model trains through run one more test with gradients on: a function
that edits its input in place (``x += ...``) or detaches its result passes under ``no_grad`` and
breaks ``backward()`` in training, and is told so. A checker never raises: an exception inside the
learner's function becomes its message (with the lines that explain shapes), the learner's own
line, and a hint. The machinery is in ``harness`` (the run), ``trial`` (one test), ``explain`` and ``diagnose``.

Every checker ``check_x`` has a solution ``my_x`` in ``solutions/NN_topic.py``; ``EXERCISES`` lists
them per notebook (the tests use it to run every checker against its solution and against typical
wrong answers).
"""
from .ex01_attention import check_attention, check_causal_attention, check_scaled_scores
from .ex02_einops import check_einsum_scores, check_merge_heads, check_split_heads
from .ex03_patches import check_patch_embedding, check_patchify
from .ex04_vit import (check_add_cls_token, check_add_position_embedding, check_feedforward, check_pre_norm_block,
                       check_vit_head)
from .ex05_loop import check_evaluate, check_train_step
from .ex05_training import check_accuracy, check_warmup_cosine_lr
from .ex06_rollout import check_attention_rollout
from .ex07_finetune import check_resize_pos_embedding
from .ex10_small_data import check_distillation_loss, check_shift_images, check_shift_sensitivity

#: Notebook -> its checkers, in the order the notebook asks for them.
EXERCISES: dict[str, tuple[str, ...]] = {
    "01_attention": ("check_scaled_scores", "check_attention", "check_causal_attention"),
    "02_einops_and_einsum": ("check_split_heads", "check_merge_heads", "check_einsum_scores"),
    "03_patch_embedding": ("check_patchify", "check_patch_embedding"),
    "04_cls_token_and_vit": ("check_add_cls_token", "check_add_position_embedding", "check_feedforward",
                             "check_pre_norm_block", "check_vit_head"),
    "05_training": ("check_warmup_cosine_lr", "check_accuracy", "check_train_step", "check_evaluate"),
    "06_what_a_vit_learns": ("check_attention_rollout",),
    "07_pretrained_vit_and_finetuning": ("check_resize_pos_embedding",),
    "10_small_data_and_inductive_bias": ("check_shift_images", "check_shift_sensitivity", "check_distillation_loss"),
}

__all__ = [name for names in EXERCISES.values() for name in names] + ["EXERCISES"]
