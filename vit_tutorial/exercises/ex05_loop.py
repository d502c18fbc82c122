"""Notebook 05's exercises, part 2: one training step and one evaluation, the two things a training loop repeats.

Both run the learner's function on a small seeded ViT and watch it work: hooks count the calls of
``optimizer.step()`` and of ``backward()``, note whether gradients were there when ``step()`` ran,
and record the model's mode and whether gradients were on during each forward pass. After each call
they look at what the function left behind: the model's train/eval mode, ``requires_grad``, the
parameters' dtype, and (for an evaluation) gradients on the parameters. What the function returns,
the parameters after each step and these observations form one result tensor, compared with what
``vit_tutorial.step.train_step`` and ``vit_tutorial.step.evaluate`` give.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..data import normalize
from ..step import evaluate, train_step
from ..vit import ViT
from .harness import Mistake, Trial, fill, number, private_rng, run_checks

_STEPS, _LR = 3, 0.5
_SEEN = 7  # the observations in front of a training run's result: see _train_run


def _tiny_vit(dropout: float = 0.0) -> ViT:
    return ViT(image_size=8, patch_size=4, num_classes=3, dim=8, depth=1, heads=2, dim_head=4, mlp_dim=16,
               channels=1, dropout=dropout, emb_dropout=dropout)


def _watch(model, optimizer) -> dict:
    """Count ``step()`` and ``backward()`` calls, and note what ``step()`` found."""
    log = {"steps": 0, "backwards": 0, "since_step": 0, "empty": 0, "early": 0}
    head = model.mlp_head.weight

    def backward_done(p):
        log["backwards"] += 1
        log["since_step"] += 1

    def before_step(opt, args, kwargs):
        log["steps"] += 1
        log["early"] += log["since_step"] == 0
        log["empty"] += head.grad is None or not bool(head.grad.abs().sum() > 0)
        log["since_step"] = 0

    head.register_post_accumulate_grad_hook(backward_done)
    optimizer.register_step_pre_hook(before_step)
    return log


def _left_as_found(model, training: bool) -> list[bool]:
    """[the mode it came in, every parameter still requires grad, still float32]."""
    params = list(model.parameters())
    return [all(m.training == training for m in model.modules()), all(p.requires_grad for p in params),
            all(p.dtype == torch.float32 for p in params)]


def _train_run(fn, state, images, labels) -> torch.Tensor:
    """``_STEPS`` calls of ``fn(model, optimizer, images, labels)`` -> [calls per step: step(), backward();
    steps that found no gradients; steps before any backward(); after every call: still in train mode, still
    requiring gradients, still float32; the losses; the parameters after each step]."""
    with private_rng():
        model = _tiny_vit()
    model.load_state_dict(state)
    optimizer = torch.optim.SGD(model.parameters(), lr=_LR)
    log, losses, params, kept = _watch(model, optimizer), [], [], [True, True, True]
    with torch.enable_grad():
        for x, y in zip(images, labels):
            losses.append(number(fn(model, optimizer, x, y)))
            params.append(torch.cat([p.detach().float().flatten() for p in model.parameters()]))
            kept = [a and b for a, b in zip(kept, _left_as_found(model, training=True))]
            model.train()  # the next step starts as a training loop would start it
    seen = [log["steps"] / _STEPS, log["backwards"] / _STEPS, log["empty"], log["early"], *kept]
    return torch.cat([torch.tensor(seen + losses, dtype=torch.float32), *params])


def _step_with(loss_fn, zero_grad=True):
    def step(model, optimizer, images, labels):
        loss = loss_fn(model(images), labels)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


_STEP_MISTAKES: list[Mistake] = [
    (_step_with(F.cross_entropy, zero_grad=False),
     "optimizer.zero_grad() is missing: the gradients of earlier steps add up, so from the second step on "
     "the update uses the sum of all gradients so far", "call optimizer.zero_grad() before loss.backward()"),
    (_step_with(lambda logits, y: F.cross_entropy(logits.softmax(-1), y)),
     "you applied softmax before the loss: cross_entropy expects raw logits (it applies log-softmax itself), "
     "so the loss and the gradients are wrong", "loss = F.cross_entropy(logits, labels), on the model's raw output"),
    (_step_with(lambda logits, y: F.nll_loss(logits, y)),
     "nll_loss on raw logits: it expects log-probabilities", "use F.cross_entropy(logits, labels)"),
    (_step_with(lambda logits, y: F.nll_loss(logits.softmax(-1), y)),
     "nll_loss on probabilities (after a softmax): it expects log-probabilities",
     "use F.cross_entropy(logits, labels)"),
    (_step_with(lambda logits, y: F.cross_entropy(logits, y, reduction="sum")),
     "the loss is summed over the batch instead of averaged, so every update is batch-size times too large",
     "F.cross_entropy averages by default: leave out reduction='sum'"),
    (_step_with(lambda logits, y: F.mse_loss(logits, F.one_hot(y, logits.shape[-1]).float())),
     "you used a squared error on one-hot labels; classification uses cross-entropy on the logits",
     "loss = F.cross_entropy(logits, labels)"),
]


def _step_story(out: torch.Tensor, trial: Trial) -> tuple[str, str] | None:
    """What the hooks saw, in the order a learner should fix it."""
    steps, backwards, empty, early, mode, grads, dtype = out[:_SEEN].tolist()
    params = out[_SEEN + _STEPS:].reshape(_STEPS, -1)
    start = torch.cat([p.flatten() for p in trial.args[0].values()])
    order = "the order is: optimizer.zero_grad(), logits = model(images), loss, loss.backward(), optimizer.step()"
    if not mode:
        return ("the model came in train mode and your step left it in eval mode: the next step of the loop would "
                "train with dropout off (state left behind)",
                "a training step leaves the mode alone: no model.eval() inside it (evaluation restores the mode "
                "itself)")
    if not grads:
        return ("after your step some parameters no longer require gradients (requires_grad changed): "
                "training would stop updating them", "do not call requires_grad_(False) on the model in a step")
    if not dtype:
        return ("after your step the parameters are no longer float32: the model's dtype changed",
                "no .double(), .half() or .to(dtype) on the model inside a step")
    if steps == 0 and not torch.allclose(params[-1], start):
        return ("the parameters moved, but not with the optimizer you were given: did you make a new one?",
                "use the `optimizer` argument: it holds the learning rate (and, for Adam, state) of the run")
    if steps == 0:
        return "optimizer.step() is never called, so the parameters never change", order
    if backwards == 0:
        return "loss.backward() is never called: the optimizer has no gradients to use", order
    if steps > 1 or backwards > 1:
        what = "optimizer.step()" if steps > 1 else "loss.backward()"
        return f"{what} runs more than once per training step", "one forward, one backward and one step per batch"
    if early:
        return "optimizer.step() runs before loss.backward(), so it uses no (or last step's) gradients", order
    if empty:
        return ("the gradients are cleared between loss.backward() and optimizer.step(), so the step uses none",
                "zero_grad() belongs before backward() (or after step()), never between the two")
    exp = trial.expected
    right = torch.isclose(out, exp, rtol=1e-4, atol=1e-6)
    if right[_SEEN + _STEPS:].all():
        return ("the parameters are updated correctly, but the loss you return is not the loss of this step",
                "return loss.item() of the loss you called backward() on (computed before the update)")
    first = next(i for i in range(_STEPS) if not right[_SEEN + _STEPS:].reshape(_STEPS, -1)[i].all())
    if first > 0:
        return (f"step 1 is right, but step {first + 1} is not: something carries over from one step to the next",
                "each step must start from clean gradients: optimizer.zero_grad() before loss.backward()")
    if right[_SEEN]:
        return ("the loss of step 1 is right, but the update is not: the gradients used differ from this loss's "
                "(a rescaled loss, a second backward(), clipping?)", "loss.backward() once, then optimizer.step()")
    return (f"the loss of step 1 is {out[_SEEN]:.5g}, but F.cross_entropy(model(images), labels) is "
            f"{exp[_SEEN]:.5g}, "
            "so the update differs too", "the loss is the cross-entropy of the model's raw logits and the labels")


def _step_trials(gen) -> list[Trial]:
    trials = []
    for batch in (6, 5):
        with private_rng():
            state = {k: v.clone() for k, v in fill(_tiny_vit(), gen).state_dict().items()}
        images = torch.randn(_STEPS, batch, 1, 8, 8, generator=gen)
        labels = torch.randint(3, (_STEPS, batch), generator=gen)
        args = (state, images, labels)
        reference = (lambda model, opt, x, y: train_step(model, opt, x, y)[0])
        trials.append(Trial(f"a small ViT, SGD(lr={_LR}), {_STEPS} steps on batches of {batch} images", args,
                            _train_run(reference, *args), call=_train_run))
    return trials


def check_train_step(fn: Callable) -> bool | None:
    """``fn(model, optimizer, images, labels)`` -> the loss: one step, like ``vit_tutorial.step.train_step``."""
    gen = torch.Generator().manual_seed(502)
    return run_checks(fn, _step_trials(gen), reference="vit_tutorial.step.train_step", mistakes=_STEP_MISTAKES,
                       diagnose=_step_story, atol=1e-6, properties=False,
                       hint="optimizer.zero_grad(); loss = F.cross_entropy(model(images), labels); loss.backward(); "
                            "optimizer.step(); return loss.item() (the loss as a number: a float, or the 0-d loss "
                            "tensor, which is what the package's train_step returns)",
                       error_hint="the loss must be a tensor with gradient history: compute it from model(images) "
                                  "outside torch.no_grad(), and call .backward() on it (not on loss.item())")


def _eval_run(fn, state, training, images, labels) -> torch.Tensor:
    """-> [the returned accuracy, mode restored, every forward in eval mode, every forward without gradients,
    requires_grad and dtype as they were, no gradients left on the parameters]."""
    with private_rng():
        model = _tiny_vit(dropout=0.5)
    model.load_state_dict(state)
    model.train(training)
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append((m.training, torch.is_grad_enabled())))
    with torch.enable_grad():
        acc = number(fn(model, images, labels))
    kept = _left_as_found(model, training)
    clean = all(p.grad is None for p in model.parameters())
    return torch.tensor([acc, kept[0], bool(seen) and not any(t for t, _ in seen),
                         bool(seen) and not any(g for _, g in seen), kept[1] and kept[2], clean], dtype=torch.float64)


def _evaluating(score):
    def evaluate_with(model, images, labels):
        was = model.training
        model.eval()
        with torch.no_grad():
            logits = model(images)
        model.train(was)
        return score(logits, labels)
    return evaluate_with


_EVAL_MISTAKES: list[Mistake] = [
    (_evaluating(lambda lg, y: (lg.max(-1).values == y).float().mean()),
     "you compared the largest *values* with the labels; the prediction is the *index* of the largest logit",
     "logits.argmax(dim=-1)"),
    (_evaluating(lambda lg, y: (lg.argmax(-1) == y).sum()), "you returned the number of correct predictions, "
     "not the fraction", "divide by len(labels), or .float().mean()"),
    (_evaluating(lambda lg, y: (lg.argmax(-1) == y).float().mean() * 100), "you returned a percentage",
     "return a fraction between 0 and 1"),
    (_evaluating(lambda lg, y: 1 - (lg.argmax(-1) == y).float().mean()), "you returned the error rate",
     "count the predictions that equal the label"),
]


def _eval_story(out: torch.Tensor, trial: Trial) -> tuple[str, str] | None:
    if out.shape != (6,):
        return None
    _, restored, in_eval, no_grad, kept, clean = out.tolist()
    came_in = "train" if trial.args[1] else "eval"
    if not in_eval:
        return ("the model was in train mode during the forward pass, so dropout was still switching off "
                "random features: the accuracy is noisy and too low", "call model.eval() before the forward pass")
    if not kept:
        return ("the evaluation changed the model's parameters' requires_grad (or dtype) and left them so: training "
                "would no longer update them (state left behind)",
                "use `with torch.no_grad():` instead of requires_grad_(False); leave the parameters as they came")
    if not clean:
        return ("the evaluation left gradients on the parameters: it ran backward() (state left behind)",
                "an evaluation only computes: no loss.backward() in it")
    if not no_grad:
        return ("gradients were on during the evaluation: autograd kept the whole graph for nothing",
                "wrap the forward pass in `with torch.no_grad():`")
    if not restored:
        return (f"the model came in {came_in} mode and left in {'eval' if came_in == 'train' else 'train'} mode",
                "remember was_training = model.training first, and end with model.train(was_training)")
    return (f"eval mode, no gradients and the mode restored are all right, but the accuracy you return is "
            f"{out[0]:.4g} where evaluate() measures {trial.expected[0]:.4g} on the same model and images",
            "the prediction is logits.argmax(dim=-1); the accuracy is the fraction of predictions equal to the labels")


def _eval_trials(gen) -> list[Trial]:
    mean, std = (0.45,), (0.25,)
    with private_rng():
        model = fill(_tiny_vit(dropout=0.5), gen)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    trials = []
    for training, n in ((True, 40), (False, 30), (True, 25), (False, 1)):
        x = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=gen)
        images = normalize(x, mean, std)  # what evaluate() feeds the model
        with torch.no_grad():
            guess = model.eval()(images).argmax(-1)
        labels = torch.where(torch.rand(n, generator=gen) < 0.6, guess, torch.randint(3, (n,), generator=gen))

        def reference(model, images, labels, x=x):
            return evaluate(model, x, labels, mean, std, torch.device("cpu"))[1]
        args = (state, training, images, labels)
        trials.append(Trial(f"a small ViT with dropout, in {'train' if training else 'eval'} mode, {n} images",
                            args, _eval_run(reference, *args), call=_eval_run,
                            edge="a batch of one image" if n == 1 else None))
    return trials


def check_evaluate(fn: Callable) -> bool | None:
    """``fn(model, images, labels)`` -> accuracy, in eval mode without gradients, like ``step.evaluate``."""
    gen = torch.Generator().manual_seed(503)
    clues = [(r"must match the size of tensor b", "your predictions and the labels have different sizes",
              "take the argmax over the classes, logits.argmax(dim=-1): one prediction per image")]
    return run_checks(fn, _eval_trials(gen), reference="vit_tutorial.step.evaluate", mistakes=_EVAL_MISTAKES,
                       diagnose=_eval_story, clues=clues, rtol=1e-6, atol=1e-9, properties=False,
                       hint="was_training = model.training; model.eval(); "
                            "with torch.no_grad(): logits = model(images); "
                            "model.train(was_training); return (logits.argmax(dim=-1) == labels).float().mean().item()",
                       error_hint="the model returns logits (images, classes): the prediction is logits.argmax(dim=-1)")
