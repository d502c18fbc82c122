"""Notebooks 01-05: exercises with instant feedback, one module of checkers per notebook.

Why this exists: reading a tidy implementation is not the same as writing one. Each notebook ends
with a few small exercises: the learner fills in a function, then calls a checker from here, e.g.
``check_attention(my_attention)``. The checker runs the function on fresh random inputs (its own
seeded ``torch.Generator``, several shapes, batch > 1, non-square where it matters), compares the
result with the package's own implementation (``einsum_attention``, ``PatchEmbedding``, ``Block``,
``lr_at``, ...), so an exercise can never disagree with the rest of the series, and prints **one**
verdict:

* ``✅ ...`` when every test passes (returns ``True``);
* ``❌ ...`` plus ``Hint: ...`` when something is wrong (returns ``False``). Typical mistakes
  (a missing ``1/sqrt(d)``, the softmax over the wrong axis, patches in column order, the CLS
  token appended instead of prepended, ...) are recognised by name; otherwise the message gives
  the expected and actual shape, or the first wrong value;
* ``⏳ not done yet ...`` while the function still raises ``NotImplementedError`` (returns ``None``).

A checker never raises: an exception inside the learner's function becomes a one-line summary and
a hint, not a traceback. Solutions are in the project's ``solutions/`` folder, one file per notebook.

Every checker ``check_x`` has a solution ``my_x`` in ``solutions/NN_topic.py``; ``EXERCISES`` lists
them per notebook (the tests use it to run every checker against its solution and against typical
wrong answers).
"""
from .ex01_attention import check_attention, check_causal_attention, check_scaled_scores
from .ex02_einops import check_einsum_scores, check_merge_heads, check_split_heads
from .ex03_patches import check_patch_embedding, check_patchify
from .ex04_vit import check_add_cls_token, check_add_position_embedding, check_feedforward, check_pre_norm_block
from .ex05_training import check_accuracy, check_warmup_cosine_lr
from .ex10_small_data import check_distillation_loss, check_shift_images, check_shift_sensitivity

#: Notebook -> its checkers, in the order the notebook asks for them.
EXERCISES: dict[str, tuple[str, ...]] = {
    "01_attention": ("check_scaled_scores", "check_attention", "check_causal_attention"),
    "02_einops_and_einsum": ("check_split_heads", "check_merge_heads", "check_einsum_scores"),
    "03_patch_embedding": ("check_patchify", "check_patch_embedding"),
    "04_cls_token_and_vit": ("check_add_cls_token", "check_add_position_embedding", "check_feedforward",
                             "check_pre_norm_block"),
    "05_training": ("check_warmup_cosine_lr", "check_accuracy"),
    "10_small_data_and_inductive_bias": ("check_shift_images", "check_shift_sensitivity", "check_distillation_loss"),
}

__all__ = [name for names in EXERCISES.values() for name in names] + ["EXERCISES"]
